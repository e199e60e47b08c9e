//! Who is calling: the verified user id, teams and roles, and the slug used for names.
//!
//! A slug names a user's data directory (`data/users/<slug>`), gateway container and network
//! (`mcp-fd-<slug>`) and MCP sessions, so two ids must never share one. The scheme is
//! injective by construction:
//! - a *plain* id, `^[a-z0-9]+(-[a-z0-9]+)*$` and at most 40 characters, is its own slug; a
//!   plain slug never contains `--`;
//! - every other id becomes `<readable>--<hash>`: a short readable prefix (cosmetic) and 24
//!   base32 characters (120 bits) of sha256 of the id. Such a slug always contains `--`, so it
//!   never equals a plain one, and two of them are equal only if 120 bits of sha256 collide.
//!
//! Before this scheme, any `[a-z0-9-]{1,40}` id was kept and every other id became
//! `<readable>-<10 hex>`: a plain id could be chosen to equal another user's hashed slug.
//! [`legacy_slug`] keeps that old mapping for the one-time move of old directories
//! (`crate::owners`).

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

/// Longest slug (Docker names get `mcp-fd-<instance>-` in front).
pub const MAX_SLUG: usize = 40;
/// Base32 characters of the hash in a hashed slug (5 bits each: 120 bits).
const HASH_CHARS: usize = 24;
/// Longest readable prefix of a hashed slug: the rest of [`MAX_SLUG`] after `--<hash>`.
const MAX_READABLE: usize = MAX_SLUG - 2 - HASH_CHARS;
/// RFC 4648 base32, lowercase: only `[a-z2-7]`, valid in paths and Docker names.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Maps a raw user id to its slug; distinct ids always get distinct slugs (module docs).
pub fn slug(raw: &str) -> String {
    if is_plain(raw) {
        return raw.to_string();
    }
    let digest = Sha256::digest(raw.as_bytes());
    let readable = readable_prefix(raw);
    let readable = if readable.is_empty() { "u" } else { &readable };
    format!("{readable}--{}", base32_prefix(&digest, HASH_CHARS))
}

/// True for ids kept as their own slug: `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 40 characters.
pub fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// True for slugs of the hashed form `<plain prefix>--<24 base32>` that [`slug`] makes.
pub fn is_hashed_slug(s: &str) -> bool {
    let Some((readable, hash)) = s.split_once("--") else {
        return false;
    };
    readable.len() <= MAX_READABLE
        && is_plain(readable)
        && hash.len() == HASH_CHARS
        && hash.bytes().all(|b| BASE32.contains(&b))
}

/// Lowercase ASCII letters and digits of `raw`, every other run as one `-`, trimmed, at most
/// [`MAX_READABLE`] characters: a plain string (no `--`, no hyphen at either end).
fn readable_prefix(raw: &str) -> String {
    let mut out = String::with_capacity(MAX_READABLE);
    let mut gap = false;
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if gap && !out.is_empty() {
                if out.len() + 2 > MAX_READABLE {
                    break;
                }
                out.push('-');
            }
            if out.len() + 1 > MAX_READABLE {
                break;
            }
            out.push(c);
            gap = false;
        } else {
            gap = true;
        }
    }
    out
}

/// The first `n` base32 characters of `bytes` (big-endian bit order, as RFC 4648).
fn base32_prefix(bytes: &[u8], n: usize) -> String {
    let mut out = String::with_capacity(n);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 && out.len() < n {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
        if out.len() == n {
            break;
        }
    }
    out
}

/// The slug the previous scheme gave `raw` (kept for moving old directories; never use it to
/// name anything new): `[a-z0-9-]{1,40}` kept, anything else `<readable>-<10 hex>`.
pub fn legacy_slug(raw: &str) -> String {
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

/// True when `s` has the shape the previous scheme gave hashed ids (`...-<10 hex>`): a
/// directory of that name may have been made for some other id than the plain one it spells.
pub fn looks_legacy_hashed(s: &str) -> bool {
    s.len() <= MAX_SLUG
        && s.len() > 11
        && s.as_bytes()[s.len() - 11] == b'-'
        && s[s.len() - 10..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn is_safe(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= MAX_SLUG
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && crate::catalog::validate_name(crate::catalog::NameKind::UserSlug, s).is_ok()
    }

    #[test]
    fn plain_ids_are_kept() {
        for id in ["alice", "team-7-bob", "a", &"x".repeat(40), "0-0"] {
            assert_eq!(slug(id), id);
        }
    }

    #[test]
    fn the_issue_pair_no_longer_collides() {
        // Under the old scheme the token sub on the right WAS the user on the left.
        assert_eq!(
            legacy_slug("Victim@Example.com"),
            "victim-example-com-e664e0e07c"
        );
        let victim = slug("Victim@Example.com");
        let attacker = slug("victim-example-com-e664e0e07c");
        assert_eq!(attacker, "victim-example-com-e664e0e07c");
        assert_ne!(victim, attacker);
        assert!(victim.starts_with("victim-example--"), "{victim}");
        assert!(is_hashed_slug(&victim));
        assert!(looks_legacy_hashed(&attacker));
    }

    #[test]
    fn case_hyphens_length_and_unicode_are_all_hashed_apart() {
        let ids = [
            "Alice",
            "alice",
            "ALICE",
            "a--b",
            "a-b",
            "a---b",
            "bob-",
            "bob",
            "-bob",
            "bob--",
            "",
            "-",
            "--",
            "日本語",
            "日本",
            "Ñandú",
            "nand",
            &"x".repeat(41),
            &"x".repeat(40),
            &"x".repeat(200),
            &"x".repeat(201),
            "auth0|5f3a",
            "../../etc/passwd",
            "a@b.c",
            "a.b@c",
            "u",
        ];
        let mut seen: HashMap<String, &str> = HashMap::new();
        for id in ids {
            let s = slug(id);
            assert!(is_safe(&s), "{id:?} -> {s:?}");
            assert_eq!(s, slug(id), "deterministic");
            assert_eq!(is_plain(id), s == id, "{id:?}");
            assert!(is_plain(&s) || is_hashed_slug(&s), "{id:?} -> {s:?}");
            assert!(!is_plain(&s) || !s.contains("--"));
            if let Some(other) = seen.insert(s.clone(), id) {
                panic!("{id:?} and {other:?} share {s:?}");
            }
        }
        assert!(slug("alice@example.com").starts_with("alice-example--"));
        assert!(slug("日本語").starts_with("u--"));
        assert!(!is_hashed_slug("alice"));
        assert!(!is_hashed_slug("a--b"));
    }

    #[test]
    fn a_hashed_looking_id_is_hashed_again_not_kept() {
        // An id spelled like somebody's hashed slug is not plain (it has `--`), so it gets a
        // slug of its own instead of that somebody's.
        let victim = slug("Alice@Example.com");
        let copycat = slug(&victim);
        assert_ne!(copycat, victim);
        assert!(is_hashed_slug(&copycat));
    }

    #[test]
    fn randomized_ids_never_share_a_slug() {
        // Deterministic pseudo-random ids from a small alphabet that makes near-collisions
        // likely: case, hyphens, dots, at signs, and lengths around the 40-character edge.
        let alphabet: Vec<char> = "aA-0.@-z_Zé-".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for _ in 0..20_000 {
            let len = (next() % 46) as usize;
            let id: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let s = slug(&id);
            assert!(is_safe(&s), "{id:?} -> {s:?}");
            if let Some(other) = seen.insert(s.clone(), id.clone()) {
                assert_eq!(other, id, "two ids share {s:?}");
            }
        }
        assert!(seen.len() > 10_000, "the generator repeats too much");
    }

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vectors "fooba" -> "MZXW6YTB", "foobar" -> "MZXW6YTBOI======" (only
        // whole 5-bit groups are taken: a slug never needs padding).
        assert_eq!(base32_prefix(b"fooba", 8), "mzxw6ytb");
        assert_eq!(base32_prefix(b"foobar", 9), "mzxw6ytbo");
    }

    #[test]
    fn legacy_shape() {
        assert!(looks_legacy_hashed("alice-example-com-1a2b3c4d5e"));
        assert!(looks_legacy_hashed("u-1a2b3c4d5e"));
        assert!(looks_legacy_hashed("user-2024110512"));
        assert!(!looks_legacy_hashed("alice"));
        assert!(!looks_legacy_hashed("-1a2b3c4d5e"));
        assert!(!looks_legacy_hashed("alice-1a2b3c4d5g"));
        assert_eq!(legacy_slug("alice"), "alice");
        assert_eq!(legacy_slug("bob-"), "bob-");
    }
}
