//! Cross-field checks, collected so an operator sees every problem in one run.

use super::units::parse_bytes;
use super::{ConfigError, GatewayEngine, RawConfig, HOME_TEMPLATE};

/// Checks `raw` and returns the resolved public URL.
pub(super) fn validate(raw: &RawConfig) -> Result<String, ConfigError> {
    let mut errs = Vec::new();
    let public_url = check_server(raw, &mut errs);
    check_auth(raw, &mut errs);
    check_gateways(raw, &mut errs);
    check_audit(raw, &mut errs);
    // Port 0 asks the OS for a free port (tests), so equal addresses are fine there.
    if raw.metrics.listen == raw.server.listen && raw.server.listen.port() != 0 {
        errs.push(format!(
            "metrics.listen and server.listen are both {}; give them different ports",
            raw.server.listen
        ));
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
        if !jwks_url_is_safe(url) {
            errs.push(format!(
                "auth.jwks_url: `{url}` must be https:// (plain http:// only to a loopback address)"
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

/// Keys fetched over plain HTTP could be swapped in transit, so only loopback may use it.
fn jwks_url_is_safe(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    // Strip a port, but not the colons of a bracketed IPv6 address.
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !port.contains(']') => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_gateways(raw: &RawConfig, errs: &mut Vec<String>) {
    let g = &raw.gateways;
    if g.max_running == 0 {
        errs.push("gateways.max_running must be at least 1".into());
    }
    if g.max_concurrent_starts == 0 {
        errs.push("gateways.max_concurrent_starts must be at least 1".into());
    }
    if let Some(url) = &g.upstream_url {
        match url.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => {}
            _ => errs.push(format!(
                "gateways.upstream_url: `{url}` must be http://host:port (gateways speak plain HTTP on their private network)"
            )),
        }
    }
    let d = &g.docker;
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
    match parse_cidr(&d.subnet_pool) {
        Some((_, pool_prefix)) if d.subnet_prefix >= pool_prefix && d.subnet_prefix <= 29 => {}
        Some((_, pool_prefix)) => errs.push(format!(
            "gateways.docker.subnet_prefix: {} must be between the pool's /{pool_prefix} and /29",
            d.subnet_prefix
        )),
        None => errs.push(format!(
            "gateways.docker.subnet_pool: `{}` is not an IPv4 CIDR such as 10.213.0.0/16",
            d.subnet_pool
        )),
    }
    if let Err(e) = parse_bytes(&d.memory) {
        errs.push(format!("gateways.docker.memory: {e}"));
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
    if d.frontdoor_container.trim().is_empty() {
        errs.push(
            "gateways.docker.frontdoor_container must be auto, none, or a container name".into(),
        );
    }
    if g.idle_timeout.0.is_zero() || g.spawn_timeout.0.is_zero() {
        errs.push("gateways.idle_timeout and spawn_timeout must be positive".into());
    }
    if d.gateway_engine() == GatewayEngine::Host {
        if let Some(h) = d.host.as_deref().filter(|h| !h.starts_with("unix://")) {
            errs.push(format!(
                "gateways.docker.engine_for_gateways: host mounts the engine's unix socket into gateways, but gateways.docker.host is `{h}`"
            ));
        }
    }
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

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(text: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((addr.parse().ok()?, prefix))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_http_only_on_loopback() {
        assert!(jwks_url_is_safe("https://idp.example.com/jwks"));
        assert!(jwks_url_is_safe("http://127.0.0.1:8080/jwks"));
        assert!(jwks_url_is_safe("http://localhost/jwks"));
        assert!(!jwks_url_is_safe("http://idp.example.com/jwks"));
        assert!(!jwks_url_is_safe("http://127.0.0.1.evil.com/jwks"));
        assert!(jwks_url_is_safe("http://[::1]:8080/jwks"));
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
    fn docker_file_paths_timeouts_and_mounts_are_checked() {
        let mut raw = RawConfig::default();
        raw.auth.hs256_secret_env = Some("S".into());
        assert!(validate(&raw).is_ok(), "defaults are valid");
        let d = &mut raw.gateways.docker;
        d.catalog_path = "relative.yaml".into();
        d.secrets_path = "/secrets".into();
        d.api_timeout = crate::config::units::HumanDuration::secs(0);
        d.frontdoor_container = " ".into();
        d.mounts = vec!["/var/run/docker.sock".into(), "vol:/data:rw".into()];
        let err = validate(&raw).unwrap_err().to_string();
        for key in [
            "catalog_path",
            "secrets_path",
            "api_timeout",
            "frontdoor_container",
            "/var/run/docker.sock",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(!err.contains("vol:/data:rw"), "{err}");
    }
}
