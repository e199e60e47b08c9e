//! Syntax check for Docker image references (`[host[:port]/]path[:tag][@algo:hex]`).
//!
//! Follows the grammar of distribution/reference: lower-case path components separated by
//! `/`, an optional registry host first, a tag of `[\w][\w.-]{0,127}`, and a digest.

/// Longest accepted reference (name part limit 255 plus tag and digest).
pub const MAX_IMAGE_REF_LEN: usize = 512;

/// Checks an image reference; the error says what to change.
pub fn check_image_ref(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("is empty".into());
    }
    if r.len() > MAX_IMAGE_REF_LEN {
        return Err(format!("is longer than {MAX_IMAGE_REF_LEN} characters"));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    if let Some((scheme, _)) = r.split_once("://") {
        return Err(format!(
            "starts with a URL scheme ({scheme}://); image references have none, \
             e.g. ghcr.io/org/image:tag"
        ));
    }
    let (rest, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        check_digest(d)?;
    }
    // A ':' after the last '/' is a tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    check_name(name)
}

fn check_tag(t: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = t.chars();
    let ok = t.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "has an invalid tag {t:?} (1-128 of [A-Za-z0-9_.-], not starting with '.' or '-')"
        ))
    }
}

fn check_digest(d: &str) -> Result<(), String> {
    let hex_len = match d.split_once(':') {
        Some(("sha256", hex)) => (hex, 64),
        Some(("sha512", hex)) => (hex, 128),
        _ => {
            return Err(format!(
                "has an invalid digest {d:?} (expected sha256:<64 hex>)"
            ))
        }
    };
    let (hex, len) = hex_len;
    if hex.len() == len && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        Ok(())
    } else {
        Err(format!(
            "has an invalid digest {d:?} (expected {len} lower-case hex digits)"
        ))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("has no repository name".into());
    }
    if name.len() > 255 {
        return Err("has a repository name longer than 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // Same rule as Docker: the first part is a registry host when it looks like one.
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            check_host(first)?;
            parts.remove(0);
        }
    }
    for p in parts {
        check_path_component(p)?;
    }
    Ok(())
}

fn check_host(h: &str) -> Result<(), String> {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("has an invalid registry port in {h:?}"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("has an invalid registry host {h:?}"))
    }
}

fn check_path_component(p: &str) -> Result<(), String> {
    // alnum+ ( ('.' | '_' | '__' | '-'+) alnum+ )*
    let bytes = p.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bad = || {
        if p.chars().any(|c| c.is_ascii_uppercase()) {
            format!("has upper-case letters in {p:?} (repository paths are lower-case)")
        } else {
            format!(
                "has an invalid path component {p:?} (lower-case letters and digits, \
                 separated by '.', '_', '__' or '-')"
            )
        }
    };
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references() {
        let d = "a".repeat(64);
        for r in [
            "alpine".to_string(),
            "mcp/fetch".into(),
            "mcp/fetch:latest".into(),
            "ghcr.io/github/github-mcp-server:v0.12.1".into(),
            "localhost:5000/x/y_z__w".into(),
            "registry.example.com:443/team/image-name.v2:1.0".into(),
            format!("mcp/fetch@sha256:{d}"),
            format!("mcp/fetch:1.2@sha256:{d}"),
            "docker.io/library/a--b:tag_1".into(),
        ] {
            assert!(
                check_image_ref(&r).is_ok(),
                "{r}: {:?}",
                check_image_ref(&r)
            );
        }
    }

    #[test]
    fn invalid_references_say_why() {
        let cases = [
            ("", "empty"),
            ("mcp/fetch latest", "whitespace"),
            ("https://ghcr.io/a/b", "scheme"),
            ("MCP/fetch", "upper-case"),
            ("mcp/fetch:", "tag"),
            ("mcp/fetch:.x", "tag"),
            ("mcp/fetch@sha256:abc", "digest"),
            ("mcp/fetch@md5:abc", "digest"),
            ("mcp//fetch", "path component"),
            ("mcp/-fetch", "path component"),
            ("mcp/fe..tch", "path component"),
            ("bad_host.com:99999999/x", "port"),
            ("-bad.com/x", "host"),
        ];
        for (r, want) in cases {
            let err = check_image_ref(r).expect_err(r);
            assert!(err.contains(want), "{r}: {err}");
        }
    }
}
