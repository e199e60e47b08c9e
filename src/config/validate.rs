//! Cross-field checks, collected so an operator sees every problem in one run.

use super::{
    ConfigError, DockerConfig, EngineHost, GatewayEngine, RawConfig, Reach, RuntimeKind,
    HOME_TEMPLATE,
};

/// Checks `raw` and returns the resolved public URL.
pub(super) fn validate(raw: &RawConfig) -> Result<String, ConfigError> {
    let mut errs = Vec::new();
    let public_url = check_server(raw, &mut errs);
    check_auth(raw, &mut errs);
    check_gateways(raw, &mut errs);
    check_audit(raw, &mut errs);
    check_events(raw, &mut errs);
    check_catalogs(raw, &mut errs);
    check_replicas(raw, &mut errs);
    // Port 0 asks the OS for a free port (tests), so equal addresses are fine there.
    if raw.metrics.listen == raw.server.listen && raw.server.listen.port() != 0 {
        errs.push(format!(
            "metrics.listen and server.listen are both {}; give them different ports",
            raw.server.listen
        ));
    }
    if raw.metrics.bearer_token_env.is_some() && raw.metrics.bearer_token_file.is_some() {
        errs.push("metrics: set bearer_token_env or bearer_token_file, not both".into());
    }
    if errs.is_empty() {
        Ok(public_url)
    } else {
        Err(ConfigError::Invalid(errs))
    }
}

fn check_server(raw: &RawConfig, errs: &mut Vec<String>) -> String {
    let s = &raw.server;
    if let Some(tls) = &s.tls {
        for (key, path) in [("server.tls.cert", &tls.cert), ("server.tls.key", &tls.key)] {
            if !path.is_file() {
                errs.push(format!(
                    "{key}: {} does not exist (create a dev pair with `mcp-frontdoor certs generate`)",
                    path.display()
                ));
            }
        }
    }
    check_edge(s, errs);
    for o in &s.allowed_origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            errs.push(format!(
                "server.allowed_origins: `{o}` must be `*` or an origin such as https://app.example.com"
            ));
        }
    }
    match &s.public_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_string()
        }
        Some(url) => {
            errs.push(format!(
                "server.public_url: `{url}` must start with https:// or http://"
            ));
            String::new()
        }
        None => {
            let scheme = if s.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://localhost:{}", s.listen.port())
        }
    }
}

/// The connection bounds: every deadline is needed (zero would close every connection at
/// once), and the reserve is a part of the cap.
fn check_edge(s: &super::ServerConfig, errs: &mut Vec<String>) {
    for (key, d) in [
        ("server.tls_handshake_timeout", s.tls_handshake_timeout.0),
        ("server.first_request_timeout", s.first_request_timeout.0),
        ("server.idle_timeout", s.idle_timeout.0),
        (
            "server.reserve_first_request_timeout",
            s.reserve_first_request_timeout.0,
        ),
    ] {
        if d.is_zero() {
            errs.push(format!("{key}: must be more than 0s"));
        }
    }
    if s.max_connections == 0 {
        errs.push("server.max_connections: must be at least 1".into());
    }
    if s.reserved_connections >= s.max_connections.max(1) {
        errs.push(format!(
            "server.reserved_connections: {} must be less than server.max_connections ({})",
            s.reserved_connections, s.max_connections
        ));
    }
}

fn check_auth(raw: &RawConfig, errs: &mut Vec<String>) {
    let a = &raw.auth;
    let sources = a.hs256_secret_env.is_some() as u8
        + a.hs256_secret_file.is_some() as u8
        + !a.public_key_files.is_empty() as u8
        + a.jwks_url.is_some() as u8
        + a.jwks_file.is_some() as u8;
    if sources == 0 {
        errs.push(
            "auth: no JWT key source; set one of hs256_secret_env, hs256_secret_file, \
             public_key_files, jwks_url, jwks_file (or run `serve --dev`)"
                .into(),
        );
    }
    if a.hs256_secret_env.is_some() && a.hs256_secret_file.is_some() {
        errs.push("auth: set hs256_secret_env or hs256_secret_file, not both".into());
    }
    if let Some(url) = &a.jwks_url {
        if !jwks_url_is_allowed(url, a.jwks_allow_http) {
            errs.push(format!(
                "auth.jwks_url: `{url}` must be https:// (plain http:// only with \
                 auth.jwks_allow_http: true, for tests and development)"
            ));
        }
    }
    for (key, v) in [
        ("auth.user_claim", &a.user_claim),
        ("auth.roles_claim", &a.roles_claim),
        ("auth.teams_claim", &a.teams_claim),
        ("auth.admin_role", &a.admin_role),
    ] {
        if v.trim().is_empty() {
            errs.push(format!("{key} must not be empty"));
        }
    }
    if a.cache_size == 0 {
        errs.push("auth.cache_size must be at least 1".into());
    }
}

/// Keys fetched over plain HTTP could be swapped in transit (a forged key verifies forged
/// tokens), so http needs the explicit opt-in.
fn jwks_url_is_allowed(url: &str, allow_http: bool) -> bool {
    let has_host = |rest: &str| !rest.split(['/', '?', '#']).next().unwrap_or("").is_empty();
    match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => has_host(rest),
        (None, Some(rest)) => allow_http && has_host(rest),
        _ => false,
    }
}

fn check_gateways(raw: &RawConfig, errs: &mut Vec<String>) {
    let g = &raw.gateways;
    if g.max_running == 0 {
        errs.push("gateways.max_running must be at least 1".into());
    }
    if g.max_concurrent_starts == 0 {
        errs.push("gateways.max_concurrent_starts must be at least 1".into());
    }
    let d = &g.docker;
    if g.runtime == RuntimeKind::Swarm {
        check_swarm(d, errs);
    }
    let instance_ok = !d.instance.is_empty()
        && d.instance.len() <= 20
        && d.instance
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !instance_ok {
        errs.push(format!(
            "gateways.docker.instance: `{}` must be 1-20 characters of [a-z0-9-]",
            d.instance
        ));
    }
    if d.image.trim().is_empty() {
        errs.push("gateways.docker.image must not be empty".into());
    }
    if d.port == 0 {
        errs.push("gateways.docker.port must not be 0".into());
    }
    if !d.health_path.starts_with('/') {
        errs.push(format!(
            "gateways.docker.health_path: `{}` must start with /",
            d.health_path
        ));
    }
    let pool_prefix = d.subnet_pool.prefix;
    if d.subnet_prefix < pool_prefix || d.subnet_prefix > 29 {
        errs.push(format!(
            "gateways.docker.subnet_prefix: {} must be between the pool's /{pool_prefix} and /29",
            d.subnet_prefix
        ));
    }
    // A size Docker takes as a signed number of bytes.
    if i64::try_from(d.memory.0).is_err() {
        errs.push("gateways.docker.memory is too large".into());
    }
    if d.cpus <= 0.0 || !d.cpus.is_finite() {
        errs.push("gateways.docker.cpus must be a positive number".into());
    }
    if d.pids <= 0 {
        errs.push("gateways.docker.pids must be positive".into());
    }
    for (key, path) in [
        ("gateways.docker.catalog_path", &d.catalog_path),
        ("gateways.docker.secrets_path", &d.secrets_path),
    ] {
        let path = &path.replace(HOME_TEMPLATE, "/root");
        let ok = path.starts_with('/')
            && !path.ends_with('/')
            && !path.split('/').any(|c| c == ".." || c == ".")
            && path.matches('/').count() >= 2;
        if !ok {
            errs.push(format!(
                "{key}: `{path}` must be an absolute file path below a directory, such as /run/mcp/file"
            ));
        }
    }
    if d.catalog_path == d.secrets_path {
        errs.push("gateways.docker.catalog_path and secrets_path must differ".into());
    }
    if d.api_timeout.0.is_zero() || d.pull_timeout.0.is_zero() {
        errs.push("gateways.docker.api_timeout and pull_timeout must be positive".into());
    }
    if g.idle_timeout.0.is_zero() || g.spawn_timeout.0.is_zero() {
        errs.push("gateways.idle_timeout and spawn_timeout must be positive".into());
    }
    check_gateway_engine(d, errs);
    for m in &d.mounts {
        let parts: Vec<&str> = m.split(':').collect();
        let ok = matches!(parts.len(), 2 | 3)
            && !parts[0].is_empty()
            && parts[1].starts_with('/')
            && parts.get(2).is_none_or(|o| matches!(*o, "ro" | "rw"));
        if !ok {
            errs.push(format!(
                "gateways.docker.mounts: `{m}` must be source:/target or source:/target:ro (source a host path or a volume name)"
            ));
        }
    }
}

/// The Docker API gateways get: the host's socket only when asked for in so many words, the
/// policed one only on an engine address it can forward to.
fn check_gateway_engine(d: &super::DockerConfig, errs: &mut Vec<String>) {
    match d.gateway_engine() {
        GatewayEngine::Host => {
            if !d.allow_host_engine {
                errs.push(
                    "gateways.docker.engine_for_gateways: host hands every tenant root on this host; \
                     use `policed` (the default), or also set allow_host_engine: true"
                        .into(),
                );
            }
            if let Some(h) = d.host.as_ref().filter(|h| h.unix_socket().is_none()) {
                errs.push(format!(
                    "gateways.docker.engine_for_gateways: host mounts the engine's unix socket into gateways, but gateways.docker.host is `{h}`"
                ));
            }
        }
        // Every engine address config reads (unix, tcp, http) can be policed.
        GatewayEngine::Policed => {}
        GatewayEngine::None => {}
    }
    if !d.allow_host_engine {
        for m in &d.mounts {
            let engine = d
                .host
                .as_ref()
                .and_then(EngineHost::unix_socket)
                .and_then(std::path::Path::to_str);
            if carries_engine_socket(m.split(':').next().unwrap_or(""), engine) {
                errs.push(format!(
                    "gateways.docker.mounts: `{m}` hands gateways the engine's socket (root on this host); \
                     the policed API (engine_for_gateways: policed) is the safe way, or set allow_host_engine: true"
                ));
            }
        }
    }
    let s = &d.servers;
    // A size Docker takes as a signed number of bytes.
    if i64::try_from(s.memory.0).is_err() {
        errs.push("gateways.docker.servers.memory is too large".into());
    }
    if !(s.cpus > 0.0 && s.cpus.is_finite()) || s.pids <= 0 {
        errs.push("gateways.docker.servers.cpus and pids must be positive".into());
    }
    for c in &s.cap_add {
        let name = c.trim_start_matches("CAP_");
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.eq_ignore_ascii_case("ALL")
        {
            errs.push(format!(
                "gateways.docker.servers.cap_add: `{c}` must name one capability, such as NET_BIND_SERVICE"
            ));
        }
    }
}

/// Whether a mount source is (or is a directory holding) the engine's socket: any
/// `docker.sock`, the configured engine socket `engine`, and the directories they live in.
pub(crate) fn carries_engine_socket(source: &str, engine: Option<&str>) -> bool {
    let s = source.trim_end_matches('/');
    let holds = |sock: &str| sock == s || sock.starts_with(&format!("{s}/"));
    engine.is_some_and(holds)
        || s.contains("docker.sock")
        || s.contains("containerd.sock")
        || s.ends_with("/docker")
        || matches!(s, "" | "/" | "/var" | "/var/run" | "/run" | "/var/lib")
}

fn check_catalogs(raw: &RawConfig, errs: &mut Vec<String>) {
    let c = &raw.catalogs;
    let p = &c.user_policy;
    let patterns = [
        ("catalogs.user_policy.images", &p.images),
        ("catalogs.user_policy.remote_urls", &p.remote_urls),
    ];
    for (key, list) in patterns {
        for pat in list {
            if pat.is_empty()
                || pat.len() > 256
                || pat.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                errs.push(format!(
                    "{key}: `{pat}` must be 1-256 characters without spaces"
                ));
            }
        }
    }
    for url in &p.remote_urls {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            errs.push(format!(
                "catalogs.user_policy.remote_urls: `{url}` must start with https:// (or http://), e.g. https://*.example.com/**"
            ));
        }
    }
    if p.custom_servers && p.images.is_empty() && p.remote_urls.is_empty() {
        errs.push(
            "catalogs.user_policy.custom_servers is true but neither images nor remote_urls \
             allows anything; list the images users may run, e.g. images: [\"registry.example.com/mcp/*\"]"
                .into(),
        );
    }
    for s in &c.protected_sources {
        if s.is_empty() || s.contains(':') || s.chars().any(char::is_whitespace) {
            errs.push(format!(
                "catalogs.protected_sources: `{s}` must be an absolute host path or a volume name"
            ));
        }
    }
}

/// Largest `events.history`: each kept event is a few hundred bytes, held in memory.
const MAX_EVENTS_HISTORY: usize = 1 << 20;

fn check_events(raw: &RawConfig, errs: &mut Vec<String>) {
    let e = &raw.events;
    if e.history == 0 || e.history > MAX_EVENTS_HISTORY {
        errs.push(format!(
            "events.history must be between 1 and {MAX_EVENTS_HISTORY}"
        ));
    }
    if e.max_streams_per_user == 0 {
        errs.push("events.max_streams_per_user must be at least 1".into());
    }
}

/// Smallest `audit.max_file_size`: a rotation per line or two would churn files for nothing.
const MIN_AUDIT_FILE_SIZE: u64 = 1 << 10;

fn check_audit(raw: &RawConfig, errs: &mut Vec<String>) {
    let a = &raw.audit;
    if a.max_file_size.0 < MIN_AUDIT_FILE_SIZE {
        errs.push(format!(
            "audit.max_file_size must be at least {MIN_AUDIT_FILE_SIZE} bytes (1k)"
        ));
    }
    if a.max_files == 0 {
        // Rotation would delete the file the chain continues from.
        errs.push("audit.max_files must be at least 1".into());
    }
    if a.user_rate == 0 {
        errs.push("audit.user_rate must be at least 1 (audited actions per minute)".into());
    }
    if a.user_burst == 0 {
        errs.push("audit.user_burst must be at least 1".into());
    }
}

/// What the Swarm runtime cannot do: publish on the host's loopback (Docker Desktop has no
/// Swarm overlay reach either), and hand gateways the host's engine socket. The policed API
/// works: its socket is a file of this host, so such gateways are placed on this node.
fn check_swarm(d: &DockerConfig, errs: &mut Vec<String>) {
    if d.reach == Reach::Loopback {
        errs.push(
            "gateways.docker.reach: loopback is not available with gateways.runtime: swarm".into(),
        );
    }
    if d.gateway_engine() == GatewayEngine::Host {
        errs.push(
            "gateways.runtime: swarm does not hand gateways the host's engine socket (engine_for_gateways: host); use `policed` (the default: gateways then run on the front door's node) or `none`"
                .into(),
        );
    }
}

fn check_replicas(raw: &RawConfig, errs: &mut Vec<String>) {
    let r = &raw.replicas;
    if let Some(id) = &r.id {
        let ok = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            errs.push(format!(
                "replicas.id `{id}` must be 1 to 32 of a-z, 0-9 and -"
            ));
        }
    }
    if r.peers.is_empty() {
        return;
    }
    if r.id.is_none() {
        errs.push(
            "replicas.peers is set but replicas.id is not: give each replica its own id (its audit log is audit/<id>/audit.log; two writers break the hash chain)"
                .into(),
        );
    }
    if raw.gateways.stop_on_shutdown {
        errs.push(
            "gateways.stop_on_shutdown removes every gateway of the instance, also those the other replicas serve: it cannot be used with replicas.peers (stop them with `mcp-frontdoor gateways stop-all` when the last replica goes)"
                .into(),
        );
    }
    for p in &r.peers {
        let port_ok = p
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            errs.push(format!(
                "replicas.peers: `{p}` must be host:port (a peer's metrics.listen)"
            ));
        }
    }
    if r.peer_timeout.0.is_zero() {
        errs.push("replicas.peer_timeout must be more than 0".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::HumanBytes;

    #[test]
    fn jwks_url_is_https_unless_http_is_opted_into() {
        assert!(jwks_url_is_allowed("https://idp.example.com/jwks", false));
        for url in [
            "http://idp.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:8080/jwks",
        ] {
            assert!(!jwks_url_is_allowed(url, false), "{url}");
            assert!(jwks_url_is_allowed(url, true), "{url}");
        }
        for url in ["ftp://x/jwks", "https://", "/jwks", "HTTPS//x"] {
            assert!(!jwks_url_is_allowed(url, true), "{url}");
        }
    }

    #[test]
    fn plain_http_jwks_without_the_opt_in_is_a_config_error_naming_the_key() {
        let mut raw = RawConfig::default();
        raw.auth.jwks_url = Some("http://127.0.0.1:9/jwks".into());
        let err = validate(&raw).unwrap_err().to_string();
        assert!(err.contains("auth.jwks_url"), "{err}");
        assert!(err.contains("auth.jwks_allow_http"), "{err}");
        raw.auth.jwks_allow_http = true;
        assert!(validate(&raw).is_ok());
    }

    fn with_key() -> RawConfig {
        let mut raw = RawConfig::default();
        raw.auth.jwks_url = Some("https://idp.example.com/jwks".into());
        raw
    }

    #[test]
    fn the_hosts_engine_reaches_gateways_only_when_allowed_in_so_many_words() {
        let mut raw = with_key();
        assert_eq!(
            raw.gateways.docker.gateway_engine(),
            GatewayEngine::Policed,
            "policed is the default"
        );
        raw.gateways.docker.engine_for_gateways = Some(GatewayEngine::Host);
        let err = validate(&raw).unwrap_err().to_string();
        assert!(err.contains("allow_host_engine"), "{err}");
        raw.gateways.docker.allow_host_engine = true;
        assert!(validate(&raw).is_ok());

        let mut raw = with_key();
        for m in [
            "/var/run/docker.sock:/var/run/docker.sock",
            "/run:/r:ro",
            "/var/run/:/x",
            "/:/host",
            "/srv/podman/docker.sock.d:/s",
        ] {
            raw.gateways.docker.mounts = vec![m.into()];
            let err = validate(&raw).unwrap_err().to_string();
            assert!(err.contains("gateways.docker.mounts"), "{m}: {err}");
        }
        raw.gateways.docker.host = Some("unix:///srv/engine/api.sock".parse().unwrap());
        raw.gateways.docker.mounts = vec!["/srv/engine:/e".into()];
        assert!(
            validate(&raw).is_err(),
            "the configured engine socket's directory"
        );
        raw.gateways.docker.mounts = vec!["/srv/data:/data:ro".into()];
        assert!(validate(&raw).is_ok());
        raw.gateways.docker.mounts = vec!["/var/run/docker.sock:/s".into()];
        raw.gateways.docker.allow_host_engine = true;
        assert!(validate(&raw).is_ok());
    }

    #[test]
    fn server_caps_are_checked() {
        let mut raw = with_key();
        raw.gateways.docker.servers.memory = HumanBytes(u64::MAX);
        raw.gateways.docker.servers.pids = 0;
        raw.gateways.docker.servers.cap_add = vec!["ALL".into()];
        let err = validate(&raw).unwrap_err().to_string();
        assert!(err.contains("servers.memory is too large"), "{err}");
        assert!(err.contains("cpus and pids"), "{err}");
        assert!(err.contains("servers.cap_add"), "{err}");
    }

    #[test]
    fn metrics_listen_defaults_to_loopback() {
        let raw = RawConfig::default();
        assert_eq!(raw.metrics.listen, "127.0.0.1:9464".parse().unwrap());
        let mut raw = RawConfig::default();
        raw.metrics.bearer_token_env = Some("A".into());
        raw.metrics.bearer_token_file = Some("/b".into());
        let err = validate(&raw).unwrap_err().to_string();
        assert!(
            err.contains("bearer_token_env or bearer_token_file"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let mut raw = RawConfig::default();
        raw.gateways.max_running = 0;
        raw.gateways.docker.instance = "Bad Name".into();
        let err = validate(&raw).unwrap_err().to_string();
        assert!(err.contains("no JWT key source"), "{err}");
        assert!(err.contains("max_running"), "{err}");
        assert!(err.contains("instance"), "{err}");
    }

    #[test]
    fn audit_limits_are_checked() {
        let mut raw = RawConfig::default();
        raw.auth.hs256_secret_env = Some("S".into());
        raw.audit.max_file_size = crate::config::units::HumanBytes(100);
        raw.audit.max_files = 0;
        raw.audit.user_rate = 0;
        raw.audit.user_burst = 0;
        let err = validate(&raw).unwrap_err().to_string();
        for key in ["max_file_size", "max_files", "user_rate", "user_burst"] {
            assert!(err.contains(&format!("audit.{key}")), "{key}: {err}");
        }
    }

    #[test]
    fn catalog_policy_keys_are_checked() {
        let mut raw = RawConfig::default();
        raw.auth.hs256_secret_env = Some("S".into());
        let p = &mut raw.catalogs.user_policy;
        p.custom_servers = true;
        let err = validate(&raw).unwrap_err().to_string();
        assert!(err.contains("neither images nor remote_urls"), "{err}");
        let p = &mut raw.catalogs.user_policy;
        p.images = vec!["registry.example.com/mcp/*".into(), "bad pattern".into()];
        p.remote_urls = vec!["*.example.com".into()];
        raw.catalogs.protected_sources = vec!["vol:/x".into()];
        let err = validate(&raw).unwrap_err().to_string();
        for key in [
            "`bad pattern`",
            "`*.example.com` must start with https://",
            "vol:/x",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(!err.contains("registry.example.com/mcp/*"), "{err}");
        raw.catalogs.user_policy.images.pop();
        raw.catalogs.user_policy.remote_urls = vec!["https://*.example.com/**".into()];
        raw.catalogs.protected_sources = vec!["/srv/x".into(), "my-vol".into()];
        assert!(validate(&raw).is_ok());
    }

    #[test]
    fn docker_file_paths_timeouts_and_mounts_are_checked() {
        let mut raw = RawConfig::default();
        raw.auth.hs256_secret_env = Some("S".into());
        assert!(validate(&raw).is_ok(), "defaults are valid");
        let d = &mut raw.gateways.docker;
        d.catalog_path = "relative.yaml".into();
        d.secrets_path = "/secrets".into();
        d.api_timeout = crate::config::units::HumanDuration::secs(0);
        d.mounts = vec!["/var/run/docker.sock".into(), "vol:/data:rw".into()];
        let err = validate(&raw).unwrap_err().to_string();
        for key in [
            "catalog_path",
            "secrets_path",
            "api_timeout",
            "/var/run/docker.sock",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(!err.contains("vol:/data:rw"), "{err}");
    }
}
