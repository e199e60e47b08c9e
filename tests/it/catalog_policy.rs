//! Who may declare what (DESIGN.md §3), attacked as a tenant would: every hostile field in a
//! server of one's own or in an override of an admin's server is a 400 `policy_violation`
//! naming the field, in YAML and in JSON, and leaves the data dir byte for byte as it was;
//! layers placed on disk by other means fail the merge (API and CLI) instead of being
//! applied; no catalog of anyone may name the front door's own objects; what users may do
//! still works.

use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_json, tree_hash, Frontdoor, Proto};
use serde_json::{json, Value};
use std::process::Command;

fn token(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, &[])))
}

/// The init volume of some front door build: the target of the demonstrated takeover.
const INIT_VOLUME: &str = "mcp-fd-init-0123456789ab:/.mcp-frontdoor";

/// `(what, server entry, the field the refusal must name)`.
fn hostile_servers() -> Vec<(&'static str, Value, &'static str)> {
    let ok = "example/tool:1";
    vec![
        (
            "host root",
            json!({"image": ok, "volumes": ["/:/host"]}),
            "volumes",
        ),
        (
            "engine socket",
            json!({"image": ok, "volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}),
            "volumes",
        ),
        (
            "init volume",
            json!({"image": ok, "volumes": [INIT_VOLUME]}),
            "volumes",
        ),
        ("root user", json!({"image": ok, "user": "0:0"}), "user"),
        (
            "command",
            json!({"image": ok, "command": ["sh", "-c", "id"]}),
            "command",
        ),
        ("image not allowed", json!({"image": "alpine:3"}), "image"),
        (
            "allowHosts",
            json!({"image": ok, "allowHosts": ["169.254.169.254:80"]}),
            "allowHosts",
        ),
        (
            "extraHosts",
            json!({"image": ok, "extraHosts": ["db:10.0.0.1"]}),
            "extraHosts",
        ),
        (
            "remote url",
            json!({"type": "remote", "remote": {"url": "https://attacker.example.net/mcp"}}),
            "remote.url",
        ),
        (
            "unknown field",
            json!({"image": ok, "privileged": true}),
            "privileged",
        ),
    ]
}

/// Sends `body` (a JSON value) as JSON or as block-style YAML.
async fn put_catalogs(
    fd: &Frontdoor,
    auth: &str,
    user: &str,
    body: &Value,
    yaml: bool,
) -> (u16, Value) {
    let c = fd.client(Proto::H1);
    let (ct, text) = if yaml {
        ("application/yaml", serde_saphyr::to_string(body).unwrap())
    } else {
        ("application/json", body.to_string())
    };
    let resp = c
        .send_body(
            c.req("PUT", &format!("/api/v1/users/{user}/catalogs"))
                .header("authorization", auth)
                .header("content-type", ct),
            text,
        )
        .await;
    (resp.status().as_u16(), body_json(resp).await)
}

async fn get(fd: &Frontdoor, auth: &str, path: &str) -> (u16, Value) {
    let c = fd.client(Proto::H1);
    let resp = c
        .send(c.req("GET", path).header("authorization", auth))
        .await;
    (resp.status().as_u16(), body_json(resp).await)
}

fn assert_refused(what: &str, (status, json): &(u16, Value), field: &str) {
    assert_eq!(*status, 400, "{what}: {json}");
    assert_eq!(json["error"], "policy_violation", "{what}: {json}");
    let msg = json["message"].as_str().unwrap_or_default();
    assert!(msg.contains(field), "{what}: {field} not named in {msg}");
}

#[tokio::test]
async fn hostile_servers_of_ones_own_are_refused_and_nothing_is_written() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let alice = token("alice", false);
    // Something on disk to overwrite, so a partial write would show.
    let seed = json!({"custom": {"registry": {"mine": {"image": "example/mine:1"}}},
                      "overrides": {"fetch": false}});
    let (status, json) = put_catalogs(&fd, &alice, "me", &seed, false).await;
    assert_eq!(status, 200, "{json}");
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    for (what, server, field) in hostile_servers() {
        for yaml in [false, true] {
            let body = json!({"custom": {"registry": {"evil": server}}});
            let got = put_catalogs(&fd, &alice, "me", &body, yaml).await;
            let what = format!("{what} ({})", if yaml { "YAML" } else { "JSON" });
            assert_refused(&what, &got, &format!("custom.registry.evil.{field}"));
            assert_eq!(tree_hash(&data), before, "{what} changed the data dir");
        }
    }
    // An admin writing into a user's layers is held to the same policy: those layers run in
    // the user's gateway whoever wrote them.
    let body = json!({"custom": {"registry": {"evil": {"image": "example/x:1", "volumes": [INIT_VOLUME]}}}});
    let got = put_catalogs(&fd, &token("root", true), "alice", &body, false).await;
    assert_refused("admin for a user", &got, "custom.registry.evil.volumes");
    // A top-level key would be layered into the merged catalog's top level.
    let body = json!({"custom": {"policy": {"allow": true}, "registry": {}}});
    let got = put_catalogs(&fd, &alice, "me", &body, false).await;
    assert_refused("top-level key", &got, "custom.policy");
    assert_eq!(tree_hash(&data), before);
}

#[tokio::test]
async fn by_default_users_may_add_no_server_of_their_own() {
    let fd = Frontdoor::builder().start().await;
    let body = json!({"custom": {"registry": {"mine": {"image": "example/mine:1"}}}});
    let got = put_catalogs(&fd, &token("bob", false), "me", &body, true).await;
    assert_refused("default policy", &got, "custom.registry.mine");
    assert!(got.1["message"]
        .as_str()
        .unwrap()
        .contains("custom_servers"));
    // Nothing of the catalog is written; a write claims the user's directory first (its
    // owner marker, see README "Data directory"), and that is all it may hold.
    let dir = fd.dir.path().join("data/users/bob");
    if dir.exists() {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["owner"], "{names:?}");
    }
}

/// An admin server with a fixed env entry, one it fills from config, and no network.
const CORP: &str = r#"{"registry": {"tool": {
    "image": "registry.example.com/corp/tool:2",
    "env": [{"name": "TOOL_URL", "value": "{{tool.url}}"}, {"name": "MODE", "value": "safe"}],
    "secrets": [{"name": "tool.token", "env": "TOOL_TOKEN"}],
    "allowHosts": ["api.corp.example.com:443"],
    "disableNetwork": true}}}"#;

#[tokio::test]
async fn overrides_of_admin_servers_pass_only_what_users_may_set() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let put = c
        .send_body(
            c.req("PUT", "/api/v1/catalogs/base/corp?priority=20")
                .header("authorization", token("root", true))
                .header("content-type", "application/json"),
            CORP,
        )
        .await;
    assert_eq!(put.status(), 200);
    let alice = token("alice", false);
    let seed = json!({"overrides": {"wiki": false}});
    assert_eq!(put_catalogs(&fd, &alice, "me", &seed, false).await.0, 200);
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    let env_ok = json!([{"name": "TOOL_URL", "value": "https://mine.example.com"},
                        {"name": "MODE", "value": "safe"}]);
    let cases: Vec<(&str, Value, &str)> = vec![
        // The issue's example: volumes added to an admin's server.
        (
            "volumes on github",
            json!({"github": {"volumes": ["/:/host"]}}),
            "overrides.github.volumes",
        ),
        (
            "init volume",
            json!({"tool": {"volumes": [INIT_VOLUME]}}),
            "overrides.tool.volumes",
        ),
        (
            "image",
            json!({"tool": {"image": "evil/miner:1"}}),
            "overrides.tool.image",
        ),
        (
            "command",
            json!({"tool": {"command": ["sh"]}}),
            "overrides.tool.command",
        ),
        (
            "user",
            json!({"tool": {"user": "0:0"}}),
            "overrides.tool.user",
        ),
        (
            "allowHosts",
            json!({"tool": {"allowHosts": ["*"]}}),
            "overrides.tool.allowHosts",
        ),
        (
            "remote",
            json!({"tickets": {"remote": {"url": "https://evil.example.net/"}}}),
            "overrides.tickets.remote",
        ),
        (
            "secrets",
            json!({"tool": {"secrets": [{"name": "tool.token", "env": "LD_PRELOAD"}]}}),
            "overrides.tool.secrets",
        ),
        (
            "network back on",
            json!({"tool": {"disableNetwork": false}}),
            "overrides.tool.disableNetwork",
        ),
        (
            "fixed env changed",
            json!({"tool": {"env": [{"name": "TOOL_URL", "value": "x"}, {"name": "MODE", "value": "unsafe"}]}}),
            "overrides.tool.env[1]",
        ),
        (
            "env added",
            json!({"tool": {"env": [{"name": "MODE", "value": "safe"}, {"name": "NODE_OPTIONS", "value": "--require /x"}]}}),
            "overrides.tool.env[1]",
        ),
        (
            "fixed env dropped",
            json!({"github": {"env": null}}),
            "overrides.github.env",
        ),
    ];
    for (what, overrides, field) in cases {
        for yaml in [false, true] {
            let body = json!({"overrides": overrides});
            let got = put_catalogs(&fd, &alice, "me", &body, yaml).await;
            assert_refused(what, &got, field);
            assert_eq!(tree_hash(&data), before, "{what} changed the data dir");
        }
    }

    // What users may do: disable an offered server, keep one, set a value the server takes
    // from its config, cut a server's network, rename it for themselves.
    let body = json!({"overrides": {"fetch": false, "wiki": true,
        "tool": {"env": env_ok, "title": "My tool", "disableNetwork": true}}});
    let (status, json) = put_catalogs(&fd, &alice, "me", &body, true).await;
    assert_eq!(status, 200, "{json}");
    let servers = json["servers"].as_array().unwrap();
    assert!(!servers.contains(&json!("fetch")) && servers.contains(&json!("tool")));
    let (status, got) = get(&fd, &alice, "/api/v1/users/me/catalogs?include=all").await;
    assert_eq!(status, 200, "{got}");
    let tool = &got["merged"]["registry"]["tool"];
    assert_eq!(tool["env"], env_ok);
    assert_eq!(tool["image"], "registry.example.com/corp/tool:2");
    assert_eq!(tool["title"], "My tool");
    assert_eq!(got["policy"]["custom_servers"], false);
    assert!(got["policy"]["override_fields"]
        .as_array()
        .unwrap()
        .contains(&json!("env")));
}

#[tokio::test]
async fn a_server_of_ones_own_with_an_allowed_image_works_when_the_policy_permits() {
    let fd = Frontdoor::builder()
        .catalogs(r#"user_policy: {custom_servers: true, images: ["example/*"], require_digest: true, remote_urls: ["https://*.example.com/**"]}"#)
        .start()
        .await;
    let alice = token("alice", false);
    let digest = format!("example/notes@sha256:{}", "a".repeat(64));
    let body = json!({"custom": {"registry": {
        "notes": {"image": digest, "title": "Notes", "env": [{"name": "MODE", "value": "fast"}],
                  "secrets": [{"name": "notes.key", "env": "NOTES_KEY"}]},
        "hosted": {"type": "remote", "remote": {"url": "https://mcp.example.com/mcp"}}}}});
    let (status, json) = put_catalogs(&fd, &alice, "me", &body, false).await;
    assert_eq!(status, 200, "{json}");
    let servers = json["servers"].as_array().unwrap();
    assert!(servers.contains(&json!("notes")) && servers.contains(&json!("hosted")));
    // The same image by tag is refused: this policy wants digests.
    let body = json!({"custom": {"registry": {"notes": {"image": "example/notes:1"}}}});
    let got = put_catalogs(&fd, &alice, "me", &body, true).await;
    assert_refused("tag not digest", &got, "custom.registry.notes.image");
}

#[tokio::test]
async fn no_catalog_of_anyone_may_name_the_front_doors_objects() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let admin = token("root", true);
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    let evil =
        json!({"name": "evil", "registry": {"x": {"image": "a/b:1", "volumes": [INIT_VOLUME]}}});
    let sock = json!({"registry": {"x": {"image": "a/b:1", "volumes": ["/var/run:/var/run"]}}});
    for (method, path, body, field) in [
        (
            "PUT",
            "/api/v1/catalogs/base/evil?priority=99",
            &evil,
            "registry.x.volumes[0]",
        ),
        (
            "POST",
            "/api/v1/catalogs/base",
            &evil,
            "registry.x.volumes[0]",
        ),
        (
            "PUT",
            "/api/v1/catalogs/teams/ml",
            &sock,
            "registry.x.volumes[0]",
        ),
    ] {
        let resp = c
            .send_body(
                c.req(method, path)
                    .header("authorization", &admin)
                    .header("content-type", "application/json"),
                body.to_string(),
            )
            .await;
        let got = (resp.status().as_u16(), body_json(resp).await);
        assert_refused(path, &got, field);
        assert_eq!(
            tree_hash(&data),
            before,
            "{method} {path} changed the data dir"
        );
    }
    // Admins may otherwise use every field.
    let fine = json!({"registry": {"fs": {"image": "mcp/filesystem:1", "user": "1000:1000",
        "command": ["/data"], "volumes": ["/srv/shared:/data:ro"], "allowHosts": ["db:5432"]}}});
    let resp = c
        .send_body(
            c.req("PUT", "/api/v1/catalogs/base/fs")
                .header("authorization", &admin)
                .header("content-type", "application/json"),
            fine.to_string(),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", body_json(resp).await);
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-frontdoor"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FRONTDOOR_") {
            c.env_remove(k);
        }
    }
    c
}

#[tokio::test]
async fn layers_placed_on_disk_that_break_the_policy_fail_the_merge_naming_the_field() {
    let fd = Frontdoor::builder().start().await;
    let carol = token("carol", false);
    let data = fd.dir.path().join("data");
    let dir = data.join("users/carol");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("custom.yaml"),
        format!("registry:\n  evil:\n    image: example/x:1\n    volumes: [\"{INIT_VOLUME}\"]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("overrides.yaml"), "github:\n  user: \"0:0\"\n").unwrap();

    // The merge refuses, naming both files' fields and saying whose they are.
    let got = get(&fd, &carol, "/api/v1/users/me/catalogs?include=merged").await;
    assert_refused("stored custom", &got, "custom.registry.evil.volumes");
    assert_refused("stored overrides", &got, "overrides.github.user");
    let msg = got.1["message"].as_str().unwrap();
    assert!(msg.contains("stored for user carol"), "{msg}");
    assert!(!msg.contains(&*data.to_string_lossy()), "no paths: {msg}");
    // Shown as stored, so the user can see what to fix.
    let (status, shown) = get(&fd, &carol, "/api/v1/users/me/catalogs?include=custom").await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown["custom"]["registry"]["evil"].is_object());
    // A change that leaves a bad layer in place is refused too, and writes nothing.
    let before = tree_hash(&data);
    let body = json!({"overrides": {"fetch": false}});
    let got = put_catalogs(&fd, &carol, "me", &body, false).await;
    assert_refused(
        "put beside a bad layer",
        &got,
        "custom.registry.evil.volumes",
    );
    assert_eq!(tree_hash(&data), before);
    assert!(!dir.join("merged.yaml").exists(), "never merged");
    // Replacing both layers fixes it.
    let body = json!({"custom": {"registry": {}}, "overrides": {"fetch": false}});
    let (status, json) = put_catalogs(&fd, &carol, "me", &body, false).await;
    assert_eq!(status, 200, "{json}");

    // `catalog merge` reads the same files and fails the same way.
    std::fs::write(
        dir.join("overrides.yaml"),
        "github:\n  volumes: [\"/:/host\"]\n",
    )
    .unwrap();
    let cfg = fd.dir.path().join("cli.yaml");
    std::fs::write(&cfg, format!("data_dir: {}\n", data.display())).unwrap();
    let out = bin()
        .args(["catalog", "merge", "--user", "carol", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("overrides.github.volumes"), "{err}");
    assert!(out.stdout.is_empty(), "nothing merged is printed");
}
