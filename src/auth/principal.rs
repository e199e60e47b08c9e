//! Who is calling: the verified user id, teams and roles, and the slug used for names.

use sha2::{Digest, Sha256};

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The raw user id from the token; never used as a path or a Docker name.
    pub user: String,
    /// `[a-z0-9-]`, at most 40 characters; safe for paths, container and network names.
    pub slug: String,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    /// Holds the configured admin role.
    pub admin: bool,
    /// Token expiry (seconds since the epoch).
    pub expires_at: u64,
}

const MAX_SLUG: usize = 40;

/// Maps a raw user id to a slug. Ids that are already `[a-z0-9-]{1,40}` are kept as they are;
/// any other id gets a readable prefix plus a hash suffix, so `Alice` and `alice` never collide.
pub fn slug(raw: &str) -> String {
    let clean = !raw.is_empty()
        && raw.len() <= MAX_SLUG
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if clean {
        return raw.to_string();
    }
    let digest = Sha256::digest(raw.as_bytes());
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let mut readable = String::with_capacity(MAX_SLUG);
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (readable.is_empty() || readable.ends_with('-')) {
            continue;
        }
        readable.push(c);
        if readable.len() >= MAX_SLUG - suffix.len() - 1 {
            break;
        }
    }
    let readable = readable.trim_end_matches('-');
    if readable.is_empty() {
        format!("u-{suffix}")
    } else {
        format!("{readable}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    fn is_safe(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    #[test]
    fn clean_ids_are_kept() {
        assert_eq!(slug("alice"), "alice");
        assert_eq!(slug("team-7-bob"), "team-7-bob");
    }

    #[test]
    fn other_ids_get_a_hash_suffix_and_stay_safe() {
        for raw in [
            "Alice",
            "alice@example.com",
            "../../etc/passwd",
            "",
            "日本語",
            &"x".repeat(200),
            "auth0|5f3a",
        ] {
            let s = slug(raw);
            assert!(is_safe(&s), "{raw:?} -> {s:?}");
        }
        assert_ne!(slug("Alice"), slug("alice"));
        assert_ne!(slug("a@b.c"), slug("a.b@c"));
        assert!(slug("alice@example.com").starts_with("alice-example-com-"));
        assert_eq!(slug("Alice"), slug("Alice"), "deterministic");
    }
}
