//! What of a gateway's log may leave the container: its lines with every part of a secret
//! masked. docker/mcp-gateway is told not to log verbosely (default args), and this is the
//! second fence, for images or flags that log anyway.

/// A gateway's log text with every part of the user's secrets masked (read off the request
/// path: rendering the secrets reads the disk).
pub(super) async fn redact_user(
    secrets: &std::sync::Arc<crate::secrets::SecretStore>,
    slug: &str,
    log: &str,
) -> String {
    let secrets = secrets.clone();
    let slug = slug.to_string();
    let rendered = tokio::task::spawn_blocking(move || secrets.render_gateway_secrets(&slug))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    redact(log, &secret_values(&rendered))
}

/// What replaces a masked word.
const MASK: &str = "[redacted]";
/// Secret values shorter than this are not searched for (they would mask ordinary words).
const MIN_SECRET: usize = 4;

/// Masks, in `log`: every whitespace-separated word that ends in `****` (docker/mcp-gateway
/// prints secrets as their first four characters followed by `****`), and every occurrence of
/// one of `secrets` (the user's own values, at least [`MIN_SECRET`] characters).
pub fn redact(log: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(log.len());
    for (i, line) in log.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = mask_starred(line);
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET) {
            if line.contains(s) {
                line = line.replace(s, MASK);
            }
        }
        out.push_str(&line);
    }
    out
}

/// `KEY: secr****` → `KEY: [redacted]`, keeping the whitespace as it was.
fn mask_starred(line: &str) -> String {
    if !line.contains("****") {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.ends_with("****") {
            out.push_str(MASK);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The values of a rendered secrets file (`server.key=value` lines).
pub fn secret_values(rendered: &str) -> Vec<&str> {
    rendered
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v))
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starred_prefixes_and_known_values_are_masked() {
        let log = "- Reading secrets [REALGW_SECRET]\n  REALGW_SECRET: secr****\nvalue hunter22 in a line\nplain ****";
        let out = redact(log, &["hunter22", "ab"]);
        assert_eq!(
            out,
            "- Reading secrets [REALGW_SECRET]\n  REALGW_SECRET: [redacted]\nvalue [redacted] in a line\nplain [redacted]"
        );
        assert!(!out.contains("secr*"));
        // Too short to search for without masking ordinary text.
        assert!(redact("about", &["ab"]).contains("ab"));
    }

    #[test]
    fn values_come_from_the_rendered_file() {
        assert_eq!(
            secret_values("a.b=one\nc.d=two=2\ne.f=\n"),
            ["one", "two=2"]
        );
    }
}
