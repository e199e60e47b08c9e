//! The create-body policy on bodies captured from the docker CLI 28.2 inside the real gateway
//! image (`tests/fixtures/dockerapi/capture.py`).

use super::create::{police_create, CreatePolicy};
use super::images::AllowedImages;
use super::refusal::Reason;
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/dockerapi/", $name, ".json"))
    };
}

const NET: &str = "mcp-fd-capture-alice";
const GIB: i64 = 1 << 30;

fn labels() -> Vec<(String, String)> {
    vec![
        ("mcp-frontdoor.instance".into(), "t1".into()),
        ("mcp-frontdoor.user".into(), "alice".into()),
        ("mcp-frontdoor.role".into(), "server".into()),
        ("mcp-frontdoor.gateway".into(), NET.into()),
    ]
}

fn police(body: &str) -> Result<Value, super::Refusal> {
    police_with(body, &[], &[])
}

fn police_with(body: &str, caps: &[&str], binds: &[&str]) -> Result<Value, super::Refusal> {
    police_ids(body, caps, binds, &[])
}

fn police_ids(
    body: &str,
    caps: &[&str],
    binds: &[&str],
    ids: &[String],
) -> Result<Value, super::Refusal> {
    let labels = labels();
    let images = AllowedImages::new(["mcp-test-stdio:dev"]);
    let caps: Vec<String> = caps.iter().map(|s| s.to_string()).collect();
    let binds: Vec<String> = binds.iter().map(|s| s.to_string()).collect();
    let p = CreatePolicy {
        network: NET,
        network_ids: ids,
        labels: &labels,
        images: &images,
        memory: GIB,
        nano_cpus: 500_000_000,
        pids: 128,
        cap_add: &caps,
        binds: &binds,
    };
    police_create(&p, body.as_bytes()).map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn the_gateways_own_server_call_passes_rewritten() {
    let out = police(fixture!("gateway_stdio_server")).unwrap();
    let h = &out["HostConfig"];
    assert_eq!(h["Memory"], GIB, "2 GiB asked, capped");
    assert_eq!(h["MemorySwap"], GIB);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["PidsLimit"], 128, "0 (unlimited) asked, capped");
    assert_eq!(h["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(h["SecurityOpt"], serde_json::json!(["no-new-privileges"]));
    assert_eq!(h["NetworkMode"], NET);
    assert_eq!(h["AutoRemove"], true);
    let l = &out["Labels"];
    assert_eq!(l["docker-mcp"], "true", "the gateway's labels stay");
    assert_eq!(l["mcp-frontdoor.user"], "alice");
    assert_eq!(l["mcp-frontdoor.instance"], "t1");
    assert_eq!(l["mcp-frontdoor.role"], "server");
    // What the server needs is untouched.
    assert_eq!(
        out["Env"],
        serde_json::json!(["HASH_SECRET=fixture-not-a-secret"])
    );
    assert_eq!(out["Image"], "mcp-test-stdio:dev");
    assert_eq!(out["OpenStdin"], true);
}

#[test]
fn no_limits_and_default_network_get_the_caps_and_the_users_network() {
    let mut body: Value = serde_json::from_str(fixture!("no_limits")).unwrap();
    body["HostConfig"]["NetworkMode"] = "default".into();
    body["NetworkingConfig"]["EndpointsConfig"] = serde_json::json!({"default": {}});
    let out = police(&body.to_string()).unwrap();
    assert_eq!(
        out["NetworkingConfig"]["EndpointsConfig"],
        serde_json::json!({NET: {}})
    );
    let h = &out["HostConfig"];
    assert_eq!(h["Memory"], GIB);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["PidsLimit"], 128);
    assert_eq!(h["NetworkMode"], NET);
}

#[test]
fn client_labels_cannot_claim_another_user() {
    let mut body: Value = serde_json::from_str(fixture!("gateway_stdio_server")).unwrap();
    body["Labels"]["mcp-frontdoor.user"] = "bob".into();
    body["Labels"]["mcp-frontdoor.managed"] = "true".into();
    let out = police(&body.to_string()).unwrap();
    assert_eq!(out["Labels"]["mcp-frontdoor.user"], "alice");
    assert!(out["Labels"].get("mcp-frontdoor.managed").is_none());
}

#[test]
fn each_dangerous_call_is_refused_naming_its_field() {
    for (body, field) in [
        (fixture!("privileged"), "HostConfig.Privileged"),
        (fixture!("bind_root"), "HostConfig.Binds"),
        (fixture!("bind_engine_socket"), "HostConfig.Binds"),
        (fixture!("mount_bind"), "HostConfig.Mounts"),
        (fixture!("named_volume"), "HostConfig.Binds"),
        (fixture!("pid_host"), "HostConfig.PidMode"),
        (fixture!("ipc_host"), "HostConfig.IpcMode"),
        (fixture!("uts_host"), "HostConfig.UTSMode"),
        (fixture!("userns_host"), "HostConfig.UsernsMode"),
        (fixture!("cgroupns_host"), "HostConfig.CgroupnsMode"),
        (fixture!("network_host"), "HostConfig.NetworkMode"),
        (fixture!("network_other"), "HostConfig.NetworkMode"),
        (fixture!("cap_add"), "HostConfig.CapAdd"),
        (fixture!("device"), "HostConfig.Devices"),
        (fixture!("sysctl"), "HostConfig.Sysctls"),
        (fixture!("seccomp_unconfined"), "HostConfig.SecurityOpt"),
        (fixture!("apparmor_unconfined"), "HostConfig.SecurityOpt"),
        (fixture!("systempaths_unconfined"), "HostConfig.MaskedPaths"),
        (fixture!("publish"), "HostConfig.PortBindings"),
        (fixture!("restart_always"), "HostConfig.RestartPolicy"),
        (fixture!("runtime"), "HostConfig.Runtime"),
        (fixture!("volumes_from"), "HostConfig.VolumesFrom"),
        (fixture!("oom_score"), "HostConfig.OomScoreAdj"),
        (fixture!("cgroup_parent"), "HostConfig.CgroupParent"),
        (fixture!("log_driver"), "HostConfig.LogConfig"),
    ] {
        let r = police(body).expect_err(field);
        assert_eq!(r.reason, Reason::Field, "{field}: {r:?}");
        assert_eq!(r.status, http::StatusCode::FORBIDDEN);
        assert!(r.message.contains(field), "{field}: {}", r.message);
        assert!(
            !r.message.contains("fixture-not-a-secret"),
            "no env value in messages"
        );
    }
}

#[test]
fn images_outside_the_catalog_are_refused() {
    let r = police(fixture!("image_not_in_catalog")).unwrap_err();
    assert_eq!(r.reason, Reason::Image);
    assert!(r.message.contains("alpine:3"), "{}", r.message);
    let mut body: Value = serde_json::from_str(fixture!("gateway_stdio_server")).unwrap();
    for other in [
        "sha256:fa15d982622c80fb82ad7eec0205a7c0c3808ee629683502e3d4f3a2cc5fc42a",
        "mcp-test-stdio",
        "",
        "evil/mcp-test-stdio:dev",
    ] {
        body["Image"] = other.into();
        assert_eq!(
            police(&body.to_string()).unwrap_err().reason,
            Reason::Image,
            "{other}"
        );
    }
    body.as_object_mut().unwrap().remove("Image");
    assert_eq!(police(&body.to_string()).unwrap_err().reason, Reason::Image);
}

#[test]
fn admin_policy_can_allow_a_capability_and_a_bind() {
    let out = police_with(fixture!("cap_add"), &["SYS_ADMIN"], &[]).unwrap();
    assert_eq!(
        out["HostConfig"]["CapAdd"],
        serde_json::json!(["CAP_SYS_ADMIN"])
    );
    assert_eq!(out["HostConfig"]["CapDrop"], serde_json::json!(["ALL"]));
    police_with(fixture!("named_volume"), &[], &["somevol"]).unwrap();
    assert!(police_with(fixture!("bind_root"), &[], &["somevol"]).is_err());
}

#[test]
fn unknown_fields_pass_only_when_empty_and_junk_is_a_body_error() {
    let mut body: Value = serde_json::from_str(fixture!("gateway_stdio_server")).unwrap();
    body["HostConfig"]["SomeFutureField"] = Value::Null;
    body["AnotherOne"] = serde_json::json!({});
    police(&body.to_string()).unwrap();
    body["HostConfig"]["SomeFutureField"] = "host".into();
    let r = police(&body.to_string()).unwrap_err();
    assert!(
        r.message.contains("HostConfig.SomeFutureField"),
        "{}",
        r.message
    );
    body["HostConfig"]["SomeFutureField"] = Value::Null;
    body["NetworkingConfig"]["EndpointsConfig"] = serde_json::json!({"mcp-fd-capture-bob": {}});
    let r = police(&body.to_string()).unwrap_err();
    assert!(r.message.contains("EndpointsConfig"), "{}", r.message);
    body["NetworkingConfig"]["EndpointsConfig"] = serde_json::json!({NET: {"Aliases": ["x"]}});
    police(&body.to_string()).unwrap();
    for junk in ["", "[]", "{", "\"x\""] {
        assert_eq!(police(junk).unwrap_err().reason, Reason::Body, "{junk:?}");
    }
    body["HostConfig"] = "privileged".into();
    assert_eq!(police(&body.to_string()).unwrap_err().reason, Reason::Field);
}

/// Bodies the CLI does not send but a hostile client can: an anonymous volume (`-v /data`,
/// a set-like map `{"/data": {}}` that would pass a naive "all members zero" check) and field
/// names in another case (the engine's JSON decoder matches field names case-insensitively).
#[test]
fn set_like_maps_and_other_spellings_are_refused() {
    let base: Value = serde_json::from_str(fixture!("gateway_stdio_server")).unwrap();
    let with = |path: &[&str], v: Value| {
        let mut b = base.clone();
        let mut at = &mut b;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        serde_json::to_string(&b).unwrap()
    };
    for (body, field) in [
        (
            with(&["Volumes"], serde_json::json!({"/data": {}})),
            "Volumes",
        ),
        (
            with(&["HostConfig", "privileged"], Value::Bool(true)),
            "HostConfig.privileged",
        ),
        (
            with(&["hostconfig"], serde_json::json!({"Privileged": true})),
            "hostconfig",
        ),
        (
            with(
                &["HostConfig", "Sysctls"],
                serde_json::json!({"kernel.x": ""}),
            ),
            "HostConfig.Sysctls",
        ),
    ] {
        let r = police(&body).expect_err(field);
        assert_eq!(r.reason, Reason::Field, "{field}: {r:?}");
        assert!(r.message.contains(field), "{field}: {}", r.message);
    }
    // The empty forms the CLI sends stay accepted.
    police(&with(&["Volumes"], serde_json::json!({}))).unwrap();
}

/// A Swarm overlay's id (25 characters) and an id prefix.
const OVERLAY_ID: &str = "q3k0x9ilm2s4v8w1a5d7f6g2h";

#[test]
fn the_users_network_by_an_id_the_engine_resolved_is_rewritten_to_its_name() {
    let mut body: Value = serde_json::from_str(fixture!("no_limits")).unwrap();
    body["HostConfig"]["NetworkMode"] = OVERLAY_ID.into();
    body["NetworkingConfig"]["EndpointsConfig"] = serde_json::json!({&OVERLAY_ID[..6]: {}});
    let text = body.to_string();
    assert_eq!(
        super::create::network_refs(text.as_bytes(), NET),
        [OVERLAY_ID, &OVERLAY_ID[..6]],
        "the references the front door looks up"
    );
    let ids = [OVERLAY_ID.to_string(), OVERLAY_ID[..6].to_string()];
    let out = police_ids(&text, &[], &[], &ids).unwrap();
    assert_eq!(out["HostConfig"]["NetworkMode"], NET);
    assert_eq!(
        out["NetworkingConfig"]["EndpointsConfig"],
        serde_json::json!({NET: {}})
    );
    // Not resolved to the user's network (another user's id): refused, both places.
    let err = police(&text).unwrap_err();
    assert!(
        err.message.contains("HostConfig.NetworkMode")
            && err.message.contains("NetworkingConfig.EndpointsConfig"),
        "{}",
        err.message
    );
}

#[test]
fn network_refs_skip_what_needs_no_lookup_and_are_bounded() {
    let refs = |v: Value| super::create::network_refs(v.to_string().as_bytes(), NET);
    let none: Vec<String> = Vec::new();
    assert_eq!(
        refs(serde_json::json!({"HostConfig": {"NetworkMode": "default"},
            "NetworkingConfig": {"EndpointsConfig": {NET: {}, "none": {}}}})),
        none
    );
    let many: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("net{i}"), serde_json::json!({})))
        .collect();
    let r = refs(serde_json::json!({"HostConfig": {"NetworkMode": "net0"},
        "NetworkingConfig": {"EndpointsConfig": many}}));
    assert_eq!(r.len(), super::create::MAX_NETWORK_REFS);
    assert_eq!(r[0], "net0", "no duplicates");
    assert!(super::create::network_refs(b"not json", NET).is_empty());
}
