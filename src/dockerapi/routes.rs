//! Which Engine API call a request is. An optional `/v1.NN` prefix is set aside before
//! matching; paths with percent escapes or `.`/`..` segments are refused before they get here
//! (the docker CLI sends neither), so what is matched is what the engine routes. Anything not
//! listed here is [`Route::Other`] and refused.

use http::Method;

/// What a container-scoped call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Attach,
    Start,
    Wait,
    Logs,
    Stop,
    Kill,
    Resize,
    Remove,
}

impl ContainerOp {
    /// The path segment after the id (`None` for `DELETE /containers/{id}`).
    pub fn segment(self) -> Option<&'static str> {
        Some(match self {
            ContainerOp::Inspect => "json",
            ContainerOp::Attach => "attach",
            ContainerOp::Start => "start",
            ContainerOp::Wait => "wait",
            ContainerOp::Logs => "logs",
            ContainerOp::Stop => "stop",
            ContainerOp::Kill => "kill",
            ContainerOp::Resize => "resize",
            ContainerOp::Remove => return None,
        })
    }
}

/// A classified call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    ContainerCreate,
    ContainerList,
    Container {
        id: String,
        op: ContainerOp,
    },
    /// `GET /images/{name}/json`, the name decoded (it may hold `/`).
    ImageInspect(String),
    /// `POST /images/create` (pull; `fromSrc` imports are refused by the handler).
    ImagePull,
    NetworkInspect(String),
    /// Anything else; the first path segment says what kind (for logs: a closed set).
    Other(&'static str),
}

impl Route {
    /// A bounded name of the call for log lines.
    pub fn class(&self) -> &'static str {
        match self {
            Route::Ping => "ping",
            Route::Version => "version",
            Route::Info => "info",
            Route::ContainerCreate => "container_create",
            Route::ContainerList => "container_list",
            Route::Container { op, .. } => match op {
                ContainerOp::Inspect => "container_inspect",
                ContainerOp::Attach => "container_attach",
                ContainerOp::Start => "container_start",
                ContainerOp::Wait => "container_wait",
                ContainerOp::Logs => "container_logs",
                ContainerOp::Stop => "container_stop",
                ContainerOp::Kill => "container_kill",
                ContainerOp::Resize => "container_resize",
                ContainerOp::Remove => "container_remove",
            },
            Route::ImageInspect(_) => "image_inspect",
            Route::ImagePull => "image_pull",
            Route::NetworkInspect(_) => "network_inspect",
            Route::Other(kind) => kind,
        }
    }
}

/// The API version prefix of a path (`v1.41`), if any, and the path without it.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix('/') else {
        return (None, path);
    };
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let is_version = first
        .strip_prefix('v')
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    if is_version {
        let rest = if tail.is_empty() {
            "/"
        } else {
            &path[first.len() + 1..]
        };
        (Some(first), rest)
    } else {
        (None, path)
    }
}

/// Percent-decodes a query component; `None` for a malformed escape or bytes that are not UTF-8.
pub fn decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Classifies a decoded path without its version prefix.
pub fn classify(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // The engine's router cleans `.`/`..` (answering with a redirect); never ours to follow.
    if segs.iter().any(|s| matches!(*s, "." | "..")) {
        return Route::Other("other");
    }
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segs.as_slice() {
        ["_ping"] if get => Route::Ping,
        ["version"] if get => Route::Version,
        ["info"] if get => Route::Info,
        ["containers", "create"] if post => Route::ContainerCreate,
        ["containers", "json"] if get => Route::ContainerList,
        ["containers", id] if method == Method::DELETE => container(id, ContainerOp::Remove),
        ["containers", id, op] => {
            let op = match (*op, get, post) {
                ("json", true, _) => ContainerOp::Inspect,
                ("logs", true, _) => ContainerOp::Logs,
                ("attach", _, true) => ContainerOp::Attach,
                ("start", _, true) => ContainerOp::Start,
                ("wait", _, true) => ContainerOp::Wait,
                ("stop", _, true) => ContainerOp::Stop,
                ("kill", _, true) => ContainerOp::Kill,
                ("resize", _, true) => ContainerOp::Resize,
                ("exec", ..) => return Route::Other("exec"),
                _ => return Route::Other("containers"),
            };
            container(id, op)
        }
        ["images", "create"] if post => Route::ImagePull,
        ["images", name @ .., "json"] if get && !name.is_empty() => {
            Route::ImageInspect(name.join("/"))
        }
        ["networks", id] if get && !id.is_empty() => Route::NetworkInspect(id.to_string()),
        [first, ..] => Route::Other(kind_of(first)),
        [] => Route::Other("other"),
    }
}

fn container(id: &str, op: ContainerOp) -> Route {
    Route::Container {
        id: id.to_string(),
        op,
    }
}

/// A closed set of names for refused calls' log lines (never the attacker's text).
fn kind_of(first: &str) -> &'static str {
    match first {
        "containers" => "containers",
        "exec" => "exec",
        "images" => "images",
        "networks" => "networks",
        "volumes" => "volumes",
        "build" => "build",
        "swarm" => "swarm",
        "services" => "services",
        "nodes" => "nodes",
        "tasks" => "tasks",
        "secrets" => "secrets",
        "configs" => "configs",
        "plugins" => "plugins",
        "system" => "system",
        "events" => "events",
        "commit" => "commit",
        "auth" => "auth",
        "session" => "session",
        "distribution" => "distribution",
        "grpc" => "grpc",
        _ => "other",
    }
}

/// Container ids and names as the engine spells them (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, an
/// optional leading `/`); anything else never reaches the engine.
pub fn valid_container_ref(id: &str) -> bool {
    let id = id.strip_prefix('/').unwrap_or(id);
    let mut chars = id.chars();
    id.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: &str, p: &str) -> Route {
        let (_, rest) = split_version(p);
        classify(&Method::from_bytes(m.as_bytes()).unwrap(), rest)
    }

    #[test]
    fn what_docker_run_needs_is_classified() {
        assert_eq!(route("HEAD", "/_ping"), Route::Ping);
        assert_eq!(route("GET", "/v1.41/version"), Route::Version);
        assert_eq!(
            route("POST", "/v1.41/containers/create"),
            Route::ContainerCreate
        );
        assert_eq!(
            route("POST", "/v1.41/containers/abc/attach"),
            Route::Container {
                id: "abc".into(),
                op: ContainerOp::Attach
            }
        );
        assert_eq!(
            route("DELETE", "/v1.41/containers/abc"),
            Route::Container {
                id: "abc".into(),
                op: ContainerOp::Remove
            }
        );
        assert_eq!(
            route("GET", "/v1.41/images/ghcr.io/o/i:1/json"),
            Route::ImageInspect("ghcr.io/o/i:1".into())
        );
        assert_eq!(route("POST", "/images/create"), Route::ImagePull);
        assert_eq!(
            route("GET", "/v1.41/networks/mcp-fd-a"),
            Route::NetworkInspect("mcp-fd-a".into())
        );
    }

    #[test]
    fn everything_else_is_other_with_a_bounded_kind() {
        for (m, p, kind) in [
            ("POST", "/v1.41/containers/abc/exec", "exec"),
            ("POST", "/exec/abc/start", "exec"),
            ("POST", "/v1.41/volumes/create", "volumes"),
            ("GET", "/volumes", "volumes"),
            ("POST", "/build", "build"),
            ("POST", "/swarm/init", "swarm"),
            ("GET", "/plugins", "plugins"),
            ("POST", "/networks/create", "networks"),
            ("POST", "/networks/x/connect", "networks"),
            ("DELETE", "/networks/x", "networks"),
            ("GET", "/events", "events"),
            ("POST", "/commit", "commit"),
            ("GET", "/containers/abc/export", "containers"),
            ("PUT", "/containers/abc/archive", "containers"),
            ("GET", "/images/json", "images"),
            ("DELETE", "/images/alpine", "images"),
            ("GET", "/system/df", "system"),
            ("POST", "/containers/abc/update", "containers"),
            ("GET", "/containers/abc/start", "containers"),
        ] {
            assert_eq!(route(m, p), Route::Other(kind), "{m} {p}");
        }
    }

    #[test]
    fn version_prefix_and_encoding() {
        assert_eq!(split_version("/v1.41/_ping"), (Some("v1.41"), "/_ping"));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(decode("/a%2"), None);
        assert_eq!(decode("/%ff"), None);
        assert_eq!(
            route("POST", "/containers/x/../../exec/y/start"),
            Route::Other("other")
        );
        assert_eq!(
            route("GET", "/images/../containers/x/json"),
            Route::Other("other")
        );
    }

    #[test]
    fn container_refs() {
        assert!(valid_container_ref("0123abc"));
        assert!(valid_container_ref("/mcp-fd-x_1.2"));
        assert!(!valid_container_ref("../x"));
        assert!(!valid_container_ref("a/b"));
        assert!(!valid_container_ref("a?b"));
        assert!(!valid_container_ref(""));
    }
}
