use super::*;
use crate::catalog::digest::Digested;
use crate::catalog::format::Format;
use crate::catalog::merge::{BaseLayer, TeamLayer};

fn cat(yaml: &str) -> Catalog {
    Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap()
}

fn permissive() -> CatalogPolicy {
    let mut p = CatalogPolicy::default();
    p.user.custom_servers = true;
    p.user.images = vec![Pattern::new("example/*"), Pattern::new("ghcr.io/me/**")];
    p.user.remote_urls = vec![Pattern::new("https://*.example.com/**")];
    p
}

fn paths(e: PolicyError) -> Vec<String> {
    e.issues.into_iter().map(|i| i.path).collect()
}

/// The admin layers every override test lands on.
fn inputs(custom: Option<&str>, overrides: &str) -> MergeInputs {
    let mut i = MergeInputs::empty();
    i.base.push(BaseLayer {
        name: "official".into(),
        priority: 0,
        catalog: Digested::new(cat(r#"
registry:
  github:
    image: ghcr.io/github/github-mcp-server:1
    env:
      - {name: GITHUB_HOST, value: "{{github.host}}"}
      - {name: LOG_LEVEL, value: info}
    secrets: [{name: github.token, env: GITHUB_TOKEN}]
    allowHosts: [api.github.com:443]
  offline: {image: mcp/time:1, disableNetwork: true}
"#)),
    });
    i.teams.push(TeamLayer {
        team: "ml".into(),
        catalog: Digested::new(cat(
            "registry:\n  notebook: {image: ml/nb:1, env: [{name: MODE, value: fixed}]}\n",
        )),
    });
    i.custom = custom.map(|c| Digested::new(cat(c)));
    i.overrides = Digested::new(Overrides::parse(overrides.as_bytes(), Format::Yaml).unwrap());
    i
}

#[test]
fn default_policy_allows_no_server_of_ones_own() {
    let e = CatalogPolicy::default()
        .check_custom(&cat("registry:\n  mine: {image: example/x:1}\n"))
        .unwrap_err();
    assert_eq!(
        paths(e.clone()),
        ["custom.registry.mine", "custom.registry.mine.image"]
    );
    assert!(e.to_string().contains("custom_servers is false"), "{e}");
    assert!(CatalogPolicy::default()
        .check_custom(&cat("registry: {}\n"))
        .is_ok());
}

#[test]
fn every_field_that_changes_what_runs_or_mounts_is_named() {
    let p = permissive();
    let e = p
        .check_custom(&cat(r#"
x-top: nope
registry:
  vol: {image: "example/a:1", volumes: ["/:/host"]}
  sock: {image: "example/a:1", volumes: ["/var/run/docker.sock:/var/run/docker.sock"]}
  init: {image: "example/a:1", volumes: ["mcp-fd-init-0123456789ab:/x"]}
  root: {image: "example/a:1", user: "0:0"}
  cmd: {image: "example/a:1", command: ["sh", "-c", "id"]}
  hosts: {image: "example/a:1", extraHosts: ["db:10.0.0.1"]}
  reach: {image: "example/a:1", allowHosts: ["169.254.169.254:80"]}
  other: {image: "evil/miner:1"}
  nested: {image: "example/a/b:1"}
  far: {type: remote, remote: {url: "https://evil.com/mcp"}}
  sse: {type: remote, sseEndpoint: "http://10.0.0.1/sse"}
  trick: {type: remote, remote: {url: "https://x.example.com@evil.com/"}}
  poci: {type: poci, tools: [{name: t, container: {image: "example/a:1"}}]}
  oauth: {image: "example/a:1", oauth: {providers: [{provider: x}]}}
  newfield: {image: "example/a:1", privileged: true}
"#))
        .unwrap_err();
    let got = paths(e);
    for want in [
        "custom.x-top",
        "custom.registry.vol.volumes",
        "custom.registry.sock.volumes",
        "custom.registry.sock.volumes[0]",
        "custom.registry.init.volumes",
        "custom.registry.init.volumes[0]",
        "custom.registry.root.user",
        "custom.registry.cmd.command",
        "custom.registry.hosts.extraHosts",
        "custom.registry.reach.allowHosts",
        "custom.registry.other.image",
        "custom.registry.nested.image",
        "custom.registry.far.remote.url",
        "custom.registry.sse.sseEndpoint",
        "custom.registry.trick.remote.url",
        "custom.registry.poci.type",
        "custom.registry.poci.tools[0].container",
        "custom.registry.oauth.oauth",
        "custom.registry.newfield.privileged",
    ] {
        assert!(got.iter().any(|g| g == want), "missing {want} in {got:#?}");
    }
}

#[test]
fn allowed_servers_of_ones_own_pass() {
    let p = permissive();
    p.check_custom(&cat(r#"
name: mine
displayName: Mine
registry:
  tool:
    image: "example/tool:1"
    title: Tool
    env: [{name: MODE, value: fast}]
    secrets: [{name: tool.key, env: KEY}]
    config: [{name: tool, type: object}]
    disableNetwork: true
    longLived: false
    tools: [{name: go, description: runs}]
    metadata: {category: x}
  deep: {image: "ghcr.io/me/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000"}
  hosted: {type: remote, remote: {url: "https://mcp.example.com/mcp", transport_type: streamable-http, headers: {X: y}}}
"#))
    .unwrap();
    let mut pinned = p.clone();
    pinned.user.require_digest = true;
    let e = pinned
        .check_custom(&cat("registry:\n  tool: {image: \"example/tool:1\"}\n"))
        .unwrap_err();
    assert!(e.to_string().contains("pinned by digest"), "{e}");
    let mut no_remote = p;
    no_remote.user.remote_urls.clear();
    let e = no_remote
        .check_custom(&cat(
            "registry:\n  r: {type: remote, remote: {url: \"https://mcp.example.com/\"}}\n",
        ))
        .unwrap_err();
    assert_eq!(
        paths(e),
        ["custom.registry.r.type", "custom.registry.r.remote.url"]
    );
}

#[test]
fn overrides_pass_only_user_settable_parts() {
    let p = CatalogPolicy::default();
    let ok = "github:\n  title: Mine\n  env:\n    - {name: GITHUB_HOST, value: \"https://ghe.me\"}\n    - {name: LOG_LEVEL, value: info}\noffline: {disableNetwork: true}\nnotebook: false\nfetch: true\n";
    p.check_user_layers(&inputs(None, ok), None).unwrap();
    // Dropping a templated entry is fine too (the server then gets no value for it).
    let drop = "github:\n  env: [{name: LOG_LEVEL, value: info}]\n";
    p.check_user_layers(&inputs(None, drop), None).unwrap();

    let cases = [
        ("github: {image: \"evil/x:1\"}\n", "overrides.github.image"),
        ("github: {volumes: [\"/:/host\"]}\n", "overrides.github.volumes"),
        ("github: {command: [sh]}\n", "overrides.github.command"),
        ("github: {user: \"0:0\"}\n", "overrides.github.user"),
        ("github: {allowHosts: [\"*\"]}\n", "overrides.github.allowHosts"),
        ("github: {allowHosts: null}\n", "overrides.github.allowHosts"),
        ("github: {remote: {url: \"https://evil.com\"}}\n", "overrides.github.remote"),
        ("github: {secrets: null}\n", "overrides.github.secrets"),
        ("github: {type: remote}\n", "overrides.github.type"),
        ("github: {extraHosts: [\"a:1.2.3.4\"]}\n", "overrides.github.extraHosts"),
        ("github: {longLived: true}\n", "overrides.github.longLived"),
        ("offline: {disableNetwork: false}\n", "overrides.offline.disableNetwork"),
        ("offline: {disableNetwork: null}\n", "overrides.offline.disableNetwork"),
        (
            "github:\n  env:\n    - {name: GITHUB_HOST, value: x}\n    - {name: LOG_LEVEL, value: debug}\n",
            "overrides.github.env[1]",
        ),
        ("github:\n  env: [{name: LD_PRELOAD, value: /x.so}, {name: LOG_LEVEL, value: info}]\n", "overrides.github.env[0]"),
        ("github: {env: null}\n", "overrides.github.env"),
        ("notebook: {env: [{name: MODE, value: other}]}\n", "overrides.notebook.env[0]"),
        // A patch for a server that is not offered (yet) is still held to the static rules.
        ("ghost: {volumes: [\"/:/h\"]}\n", "overrides.ghost.volumes"),
    ];
    for (yaml, want) in cases {
        let e = p.check_user_layers(&inputs(None, yaml), None).unwrap_err();
        let got = paths(e);
        assert!(
            got.iter().any(|g| g == want),
            "{yaml}: want {want} in {got:?}"
        );
    }
}

#[test]
fn patches_on_ones_own_server_follow_the_custom_rules() {
    let p = permissive();
    let custom = "registry:\n  github: {image: \"example/gh:1\", env: [{name: A, value: fixed}]}\n";
    // Shadowing an admin server with one's own: its env is the user's to set.
    p.check_user_layers(
        &inputs(Some(custom), "github: {env: [{name: B, value: x}]}\n"),
        None,
    )
    .unwrap();
    let e = p
        .check_user_layers(&inputs(Some(custom), "github: {image: \"evil/x\"}\n"), None)
        .unwrap_err();
    assert_eq!(paths(e), ["overrides.github.image"]);
}

#[test]
fn stored_refusals_say_whose_files_and_how_to_fix() {
    let e = CatalogPolicy::default()
        .check_user_layers(
            &inputs(None, "github: {volumes: [\"/:/h\"]}\n"),
            Some("alice"),
        )
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("stored for user alice"), "{msg}");
    assert!(msg.contains("overrides.github.volumes:"), "{msg}");
    assert!(!msg.contains("data/"), "no file paths: {msg}");
}

#[test]
fn admin_catalogs_may_use_every_field_but_the_front_doors_objects() {
    let p = CatalogPolicy::default();
    p.check_admin(&cat(r#"
registry:
  fs:
    image: mcp/filesystem:1
    user: "1000:1000"
    command: ["/data"]
    volumes: ["/home/shared:/data:ro"]
    extraHosts: ["db:10.0.0.1"]
    allowHosts: ["db:5432"]
"#))
        .unwrap();
    let e = p
        .check_admin(&cat(
            "registry:\n  x: {image: a/b, volumes: [\"mcp-fd-init-0123456789ab:/x\"]}\n",
        ))
        .unwrap_err();
    assert_eq!(paths(e), ["registry.x.volumes[0]"]);
}

#[test]
fn from_config_protects_data_dir_and_engine_host() {
    let mut raw = RawConfig {
        data_dir: "/srv/fd-data".into(),
        ..Default::default()
    };
    raw.gateways.docker.host = Some("unix:///opt/engine/api.sock".parse().unwrap());
    raw.catalogs.protected_sources = vec!["/srv/secret".into(), "team-vol".into()];
    raw.catalogs.user_policy.custom_servers = true;
    raw.catalogs.user_policy.images = vec!["example/*".into()];
    let p = CatalogPolicy::from_config(&raw);
    for v in [
        "/srv/fd-data:/d",
        "/opt/engine:/e",
        "/srv/secret/x:/s",
        "team-vol:/t",
        "/srv:/s",
    ] {
        let c = cat(&format!(
            "registry:\n  a: {{image: a/b, volumes: [{v:?}]}}\n"
        ));
        assert!(p.check_admin(&c).is_err(), "{v}");
    }
    assert!(p
        .check_custom(&cat("registry:\n  a: {image: example/x:1}\n"))
        .is_ok());
    let view = p.view();
    assert!(view.custom_servers && view.images == ["example/*"]);
    assert!(view.override_fields.contains(&"env"));
    assert!(view.protected.iter().any(|s| s == "/srv/fd-data"));
}
