//! The body of `POST /containers/create`, read and rewritten: a pure function of the body
//! and the gateway's [`CreatePolicy`], so every rule is a unit test.
//!
//! Socket proxies that filter URLs only are bypassed through this body (`Privileged`, a bind of
//! `/`, `PidMode: host` all ride on an allowed URL). Here every field the docker CLI sends is
//! known: the harmless ones pass, a few are forced (labels, network, limits, capabilities,
//! no-new-privileges), and every other field, including ones newer engines add, must be
//! empty, zero or false, or the call is refused naming the fields.

use super::images::AllowedImages;
use super::refusal::{Reason, Refusal};
use serde_json::{Map, Value};

/// Largest create body read (the CLI sends a few KB; env with big values stays far below).
pub const MAX_CREATE_BODY: usize = 1 << 20;

/// The label prefix clients may not set: the front door's own.
const OWN_LABEL_PREFIX: &str = "mcp-frontdoor.";

/// What one gateway's server containers may be.
#[derive(Debug, Clone)]
pub struct CreatePolicy<'a> {
    /// The user's network (name): the only one a server joins (besides `none`).
    pub network: &'a str,
    /// Other references in the body (ids, id prefixes) the engine resolved to the user's
    /// network ([`network_refs`] lists the candidates): rewritten to its name.
    pub network_ids: &'a [String],
    /// Put on every server container, replacing any `mcp-frontdoor.*` the client sent.
    pub labels: &'a [(String, String)],
    pub images: &'a AllowedImages,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids: i64,
    /// Capabilities that may be added back (upper case, without `CAP_`).
    pub cap_add: &'a [String],
    /// Bind sources allowed (exact).
    pub binds: &'a [String],
}

/// Config fields with no bearing on the host (any value).
const CONFIG_FREE: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// HostConfig fields with no bearing on the host or other tenants (any value).
const HOST_FREE: &[&str] = &[
    "ConsoleSize",
    "AutoRemove",
    "Init",
    "ReadonlyRootfs",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "Tmpfs",
    "ShmSize",
    "CpuShares",
    "CpusetCpus",
    "CpusetMems",
    "BlkioWeight",
    "MemoryReservation",
    "MemorySwappiness",
    "ContainerIDFile",
];

/// Whether a JSON value is the zero value Go's encoder writes for an unset field.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        // A member that is itself `{}` marks a set-like map (`Volumes: {"/data": {}}`, an
        // anonymous volume): its keys are the content. A map member that is an empty string
        // (`Sysctls: {"kernel.x": ""}`) still names something to set.
        Value::Object(o) => o.values().all(|m| match m {
            Value::Object(inner) => !inner.is_empty() && is_zero(m),
            Value::String(_) => false,
            _ => is_zero(m),
        }),
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Checks and rewrites a create body; the new body, or the refusal naming what was refused.
pub fn police_create(p: &CreatePolicy, body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut v: Value = serde_json::from_slice(body).map_err(|_| {
        Refusal::new(
            Reason::Body,
            http::StatusCode::BAD_REQUEST,
            "the create body is not JSON",
        )
    })?;
    let obj = v.as_object_mut().ok_or_else(|| {
        Refusal::new(
            Reason::Body,
            http::StatusCode::BAD_REQUEST,
            "the create body is not a JSON object",
        )
    })?;
    let image = obj.get("Image").map(str_of).unwrap_or("");
    if !p.images.allows(image) {
        return Err(Refusal::forbidden(
            Reason::Image,
            format!("image `{}` is not in this user's catalog", printable(image)),
        ));
    }
    let mut refused = Vec::new();
    for (k, val) in obj.iter() {
        let known = CONFIG_FREE.contains(&k.as_str())
            || matches!(
                k.as_str(),
                "Image" | "Labels" | "HostConfig" | "NetworkingConfig"
            );
        if !known && !is_zero(val) {
            refused.push(field(k));
        }
    }
    let labels = obj
        .entry("Labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(l) = labels.as_object_mut() {
        l.retain(|k, _| !k.starts_with(OWN_LABEL_PREFIX));
        for (k, val) in p.labels {
            l.insert(k.clone(), Value::String(val.clone()));
        }
    }
    let host = obj
        .entry("HostConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    if host.is_null() {
        *host = Value::Object(Map::new());
    }
    let none_network = match host.as_object_mut() {
        Some(h) => police_host(p, h, &mut refused),
        None => {
            refused.push("HostConfig".into());
            false
        }
    };
    if let Some(nc) = obj.get_mut("NetworkingConfig") {
        police_networking(p, nc, none_network, &mut refused);
    }
    if !refused.is_empty() {
        refused.sort();
        refused.dedup();
        return Err(Refusal::forbidden(
            Reason::Field,
            format!(
                "gateways may not create containers with {}",
                refused.join(", ")
            ),
        ));
    }
    serde_json::to_vec(&v).map_err(|_| {
        Refusal::new(
            Reason::Body,
            http::StatusCode::BAD_REQUEST,
            "the create body could not be rewritten",
        )
    })
}

/// Most network references of one body the front door looks up ([`network_refs`]).
pub const MAX_NETWORK_REFS: usize = 4;

/// The network references of a create body other than the ones [`police_create`] knows
/// without asking the engine (`network`, `none`, `default`, empty): `HostConfig.NetworkMode`
/// and the keys of `NetworkingConfig.EndpointsConfig`, at most [`MAX_NETWORK_REFS`]. Those
/// the engine resolves to the user's network go into [`CreatePolicy::network_ids`]; the rest
/// are refused as before.
pub fn network_refs(body: &[u8], network: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mode = v.pointer("/HostConfig/NetworkMode").and_then(Value::as_str);
    let keys = v
        .pointer("/NetworkingConfig/EndpointsConfig")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys().map(String::as_str));
    let mut out: Vec<String> = Vec::new();
    for r in mode.into_iter().chain(keys) {
        if !matches!(r, "" | "default" | "none") && r != network && !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    out.truncate(MAX_NETWORK_REFS);
    out
}

/// A field name for a message: printable and short (it is the client's text).
fn field(k: &str) -> String {
    printable(k).chars().take(64).collect()
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(256).collect()
}

/// Checks and rewrites `HostConfig`; true when the container gets no network.
fn police_host(p: &CreatePolicy, h: &mut Map<String, Value>, refused: &mut Vec<String>) -> bool {
    let mut bad = |k: &str| refused.push(format!("HostConfig.{}", field(k)));
    for (k, val) in h.iter() {
        let ok = match k.as_str() {
            k if HOST_FREE.contains(&k) => true,
            // Forced or checked below.
            "Memory" | "MemorySwap" | "NanoCpus" | "PidsLimit" | "CapDrop" | "CapAdd"
            | "SecurityOpt" | "NetworkMode" | "Binds" | "Mounts" => true,
            // An empty list here means "unmask everything" (`systempaths=unconfined`).
            "MaskedPaths" | "ReadonlyPaths" => val.is_null(),
            "RestartPolicy" => matches!(val.get("Name").map(str_of).unwrap_or(""), "" | "no"),
            "LogConfig" => {
                val.get("Type").map(str_of).unwrap_or("").is_empty()
                    && val.get("Config").is_none_or(is_zero)
            }
            "Isolation" => matches!(str_of(val), "" | "default"),
            "CgroupnsMode" => matches!(str_of(val), "" | "private"),
            "IpcMode" => matches!(str_of(val), "" | "private" | "none" | "shareable"),
            // Negative values make the container the last one the OOM killer picks.
            "OomScoreAdj" => val.as_i64().unwrap_or(0) >= 0,
            _ => is_zero(val),
        };
        if !ok {
            bad(k);
        }
    }
    if let Some(binds) = h.get("Binds").and_then(Value::as_array) {
        for b in binds {
            let source = str_of(b).split(':').next().unwrap_or("");
            if !p.binds.iter().any(|a| a == source) {
                bad("Binds");
            }
        }
    } else if h.get("Binds").is_some_and(|b| !b.is_null()) {
        bad("Binds");
    }
    if let Some(mounts) = h.get("Mounts").and_then(Value::as_array) {
        for m in mounts {
            let kind = m.get("Type").map(str_of).unwrap_or("");
            let source = m.get("Source").map(str_of).unwrap_or("");
            let ok = match kind {
                "tmpfs" => source.is_empty(),
                "bind" | "volume" => p.binds.iter().any(|a| a == source),
                _ => false,
            };
            if !ok {
                bad("Mounts");
            }
        }
    } else if h.get("Mounts").is_some_and(|m| !m.is_null()) {
        bad("Mounts");
    }
    if let Some(caps) = h.get("CapAdd").and_then(Value::as_array) {
        for c in caps {
            let name = str_of(c).to_ascii_uppercase();
            let name = name.trim_start_matches("CAP_");
            if !p.cap_add.iter().any(|a| a == name) {
                bad("CapAdd");
            }
        }
    } else if h.get("CapAdd").is_some_and(|c| !c.is_null()) {
        bad("CapAdd");
    }
    if let Some(opts) = h.get("SecurityOpt").and_then(Value::as_array) {
        for o in opts {
            if !matches!(
                str_of(o),
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
            ) {
                bad("SecurityOpt");
            }
        }
    } else if h.get("SecurityOpt").is_some_and(|o| !o.is_null()) {
        bad("SecurityOpt");
    }
    let network = h.get("NetworkMode").map(str_of).unwrap_or("").to_string();
    let none_network = network == "none";
    match network.as_str() {
        "" | "default" => {
            h.insert("NetworkMode".into(), Value::String(p.network.into()));
        }
        n if n == p.network || n == "none" => {}
        // By name from here on: what was checked is what the engine acts on.
        n if p.network_ids.iter().any(|i| i == n) => {
            h.insert("NetworkMode".into(), Value::String(p.network.into()));
        }
        _ => bad("NetworkMode"),
    }
    // Limits: a request above the cap (or none) gets the cap.
    let capped = |v: Option<&Value>, cap: i64| match v.and_then(Value::as_i64) {
        Some(n) if n > 0 && n <= cap => n,
        _ => cap,
    };
    let memory = capped(h.get("Memory"), p.memory);
    h.insert("Memory".into(), memory.into());
    // No swap beyond the memory cap.
    h.insert("MemorySwap".into(), memory.into());
    let cpus = capped(h.get("NanoCpus"), p.nano_cpus);
    h.insert("NanoCpus".into(), cpus.into());
    let pids = capped(h.get("PidsLimit"), p.pids);
    h.insert("PidsLimit".into(), pids.into());
    h.insert("CapDrop".into(), Value::Array(vec!["ALL".into()]));
    h.insert(
        "SecurityOpt".into(),
        Value::Array(vec!["no-new-privileges".into()]),
    );
    none_network
}

/// `NetworkingConfig.EndpointsConfig`: only the user's network, without links or driver
/// options (and nothing at all for a container on `none`).
fn police_networking(
    p: &CreatePolicy,
    nc: &mut Value,
    none_network: bool,
    refused: &mut Vec<String>,
) {
    // `docker run` without `--network` names the endpoint `default`, which is the user's
    // network here (NetworkMode was rewritten to it).
    if let Some(eps) = nc.get_mut("EndpointsConfig").and_then(Value::as_object_mut) {
        if !none_network {
            // The user's network by id is the user's network by name.
            for key in ["default"]
                .into_iter()
                .chain(p.network_ids.iter().map(String::as_str))
            {
                if eps.contains_key(p.network) {
                    break;
                }
                if let Some(ep) = eps.remove(key) {
                    eps.insert(p.network.to_string(), ep);
                }
            }
        }
    }
    let Some(nc) = nc.as_object() else {
        if !nc.is_null() {
            refused.push("NetworkingConfig".into());
        }
        return;
    };
    for (k, val) in nc {
        if k != "EndpointsConfig" && !is_zero(val) {
            refused.push(format!("NetworkingConfig.{}", field(k)));
        }
    }
    let Some(eps) = nc.get("EndpointsConfig").and_then(Value::as_object) else {
        return;
    };
    for (name, ep) in eps {
        let ok = if none_network {
            name == "none"
        } else {
            name == p.network
        };
        let clean = ["Links", "DriverOpts"]
            .iter()
            .all(|k| ep.get(*k).is_none_or(is_zero));
        if !ok || !clean {
            refused.push("NetworkingConfig.EndpointsConfig".into());
        }
    }
}
