//! Allow-list patterns for images and remote URLs, and the one URL form they are matched
//! against.
//!
//! `*` matches any run of characters except `/`, `**` any run at all; everything else matches
//! itself. So `registry.example.com/mcp/*` allows the images directly under `mcp/` (any tag or
//! digest) but not `registry.example.com/mcp/x/y`, and a `*` in a URL's host cannot reach into
//! its path.

use std::fmt;

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(String);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Star,
    DoubleStar,
}

impl Pattern {
    /// A pattern as written in the config.
    pub fn new(text: impl Into<String>) -> Self {
        Pattern(text.into())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn tokens(&self) -> Vec<Tok> {
        let b = self.0.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'*' {
                if b.get(i + 1) == Some(&b'*') {
                    out.push(Tok::DoubleStar);
                    i += 2;
                } else {
                    out.push(Tok::Star);
                    i += 1;
                }
            } else {
                out.push(Tok::Lit(b[i]));
                i += 1;
            }
        }
        out
    }

    /// Whether `text` matches the whole pattern. Dynamic programming over (pattern, text)
    /// positions, so a pattern full of stars costs O(p·t), never exponential time.
    pub fn matches(&self, text: &str) -> bool {
        let toks = self.tokens();
        let t = text.as_bytes();
        // row[j]: the tokens so far match t[..j].
        let mut row = vec![false; t.len() + 1];
        row[0] = true;
        for tok in &toks {
            let mut next = vec![false; t.len() + 1];
            match tok {
                Tok::Lit(c) => {
                    for j in 0..t.len() {
                        next[j + 1] = row[j] && t[j] == *c;
                    }
                }
                Tok::Star | Tok::DoubleStar => {
                    next[0] = row[0];
                    for j in 0..t.len() {
                        let crosses = *tok == Tok::DoubleStar || t[j] != b'/';
                        next[j + 1] = row[j + 1] || (next[j] && crosses);
                    }
                }
            }
            row = next;
        }
        row[t.len()]
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when any pattern of `list` matches `text`.
pub fn any_matches(list: &[Pattern], text: &str) -> bool {
    list.iter().any(|p| p.matches(text))
}

/// The list as `a, b, c` for messages.
pub fn describe(list: &[Pattern]) -> String {
    list.iter()
        .map(Pattern::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A remote server URL reduced to `scheme://host[:port]/path[?query]` with a lower-case host,
/// or why it cannot be allowed. Userinfo (`https://good@evil`), fragments, backslashes and
/// percent-escapes in the host are refused rather than interpreted, so a pattern sees the host
/// the gateway will connect to.
pub fn canonical_url(url: &str) -> Result<String, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains(['\\', '#']) {
        return Err("must not contain whitespace, `\\` or `#`".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "must be an http(s) URL".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err("must be an http(s) URL".into());
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if authority.contains('@') {
        return Err("must not carry user information (`user@host`)".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && if let Some(v6) = host.strip_prefix('[') {
            v6.strip_suffix(']')
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
    if !host_ok {
        return Err(format!("has an unusable host {host:?}"));
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!("has an invalid port {p:?}"));
        }
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    if !tail.starts_with('/') {
        out.push('/');
    }
    out.push_str(tail);
    Ok(out)
}

/// The lower-case host of an http(s) URL, if it has a usable one.
pub fn url_host(url: &str) -> Option<String> {
    let c = canonical_url(url).ok()?;
    let rest = &c[c.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    Some(match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => h.to_string(),
        _ => authority.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_one_segment_double_star_does_not() {
        let p = Pattern::new("registry.example.com/mcp/*");
        assert!(p.matches("registry.example.com/mcp/fetch:1.2"));
        assert!(p.matches("registry.example.com/mcp/fetch@sha256:abc"));
        assert!(!p.matches("registry.example.com/mcp/x/y:1"));
        assert!(!p.matches("registry.example.com.evil.io/mcp/x"));
        assert!(!p.matches("registry.example.com/mcpx/fetch"));
        let pp = Pattern::new("registry.example.com/**");
        assert!(pp.matches("registry.example.com/mcp/x/y:1"));
        assert!(!pp.matches("registry.example.com:5000/x"));
        assert!(Pattern::new("**").matches("anything/at/all:1"));
        assert!(Pattern::new("mcp/fetch:1").matches("mcp/fetch:1"));
        assert!(!Pattern::new("mcp/fetch:1").matches("mcp/fetch:12"));
        assert!(Pattern::new("a*b*c").matches("abc"));
        assert!(Pattern::new("a*b*c").matches("aXXbYYc"));
        assert!(!Pattern::new("a*b*c").matches("aXXbYY"));
        assert!(!Pattern::new("").matches("x"));
    }

    #[test]
    fn many_stars_are_not_exponential() {
        let p = Pattern::new("*a".repeat(60));
        let text = "a".repeat(59) + "b";
        let start = std::time::Instant::now();
        assert!(!p.matches(&text));
        assert!(start.elapsed() < std::time::Duration::from_millis(200));
    }

    #[test]
    fn urls_are_canonical_or_refused() {
        assert_eq!(
            canonical_url("HTTPS://MCP.Example.com/mcp").unwrap(),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(
            canonical_url("https://mcp.example.com:8443").unwrap(),
            "https://mcp.example.com:8443/"
        );
        assert_eq!(
            canonical_url("https://a.example.com?x=1").unwrap(),
            "https://a.example.com/?x=1"
        );
        for bad in [
            "https://good.example.com@evil.com/",
            "https://evil.com#.example.com/",
            "https://evil.com\\.example.com/",
            "https://evil%2ecom/",
            "ftp://x/",
            "https://x:99999/",
            "https:///x",
            "mcp.example.com/x",
        ] {
            assert!(canonical_url(bad).is_err(), "{bad}");
        }
        let p = Pattern::new("https://*.example.com/*");
        assert!(p.matches(&canonical_url("https://mcp.example.com/mcp").unwrap()));
        assert!(!p.matches(&canonical_url("https://evil.com/x.example.com/").unwrap()));
        assert!(!p.matches(&canonical_url("https://evil.com?.example.com/").unwrap()));
        assert_eq!(
            url_host("http://mcp-fd-bob:8811/mcp").as_deref(),
            Some("mcp-fd-bob")
        );
        assert_eq!(url_host("https://[::1]:1/").as_deref(), Some("[::1]"));
    }
}
