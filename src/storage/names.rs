//! Names that become path components: base catalog names, team names and user slugs.
//!
//! Every path under the data dir is built from a name that passed [`validate_name`], so a
//! name from a URL, a token or a file listing can never escape its directory.

use std::fmt;

/// Longest accepted base catalog name, team name or user slug.
pub const MAX_NAME_LEN: usize = 64;

/// What a name is used for; it decides the charset and appears in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// `catalogs/base/<name>.yaml`
    BaseCatalog,
    /// `catalogs/teams/<team>.yaml`
    Team,
    /// `users/<slug>/`
    UserSlug,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::BaseCatalog => "base catalog name",
            NameKind::Team => "team name",
            NameKind::UserSlug => "user slug",
        })
    }
}

impl NameKind {
    /// What a name of this kind names, for "not found" messages.
    pub fn noun(self) -> &'static str {
        match self {
            NameKind::BaseCatalog => "base catalog",
            NameKind::Team => "team catalog",
            NameKind::UserSlug => "user",
        }
    }
}

/// A name refused by [`validate_name`]; `name` is shown escaped so control bytes stay visible.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {name:?}: {reason}")]
pub struct NameError {
    /// What the name was for.
    pub kind: NameKind,
    /// The refused name (truncated to 80 chars so a huge input does not flood a log).
    pub name: String,
    /// Why it was refused, phrased so the caller knows what to change.
    pub reason: &'static str,
}

/// Checks that `name` is safe as a single path component for `kind`.
///
/// Refused: empty, longer than [`MAX_NAME_LEN`], NUL or control characters, `/` or `\`,
/// `..`, a leading dot, `%` (percent-encodings such as `%2F` are never decoded), absolute
/// paths, and anything outside `[A-Za-z0-9._-]` (`[a-z0-9-]` for user slugs, DESIGN §2);
/// base catalog names must not end in `.meta`.
pub fn validate_name(kind: NameKind, name: &str) -> Result<(), NameError> {
    let fail = |reason| {
        Err(NameError {
            kind,
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    // Specific checks first so the message says what is wrong, then a whitelist that
    // catches everything else.
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("is longer than 64 characters");
    }
    if name.contains('\0') || name.chars().any(char::is_control) {
        return fail("contains NUL or control characters");
    }
    if name.contains('/') || name.contains('\\') {
        return fail("contains a path separator ('/' or '\\')");
    }
    if name.contains("..") {
        return fail("contains '..'");
    }
    if name.starts_with('.') {
        return fail("starts with a dot");
    }
    if name.contains('%') {
        return fail("contains '%' (percent-encoded names are not decoded; send the plain name)");
    }
    if name.chars().any(char::is_whitespace) {
        return fail("contains whitespace");
    }
    // `<name>.meta.yaml` is the priority file of base catalog `<name>`.
    if kind == NameKind::BaseCatalog && name.ends_with(".meta") {
        return fail("must not end in \".meta\" (reserved for priority files)");
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    match kind {
        NameKind::UserSlug => {
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
            if !name.chars().all(ok) || !first_ok {
                return fail("must match [a-z0-9][a-z0-9-]*");
            }
        }
        NameKind::BaseCatalog | NameKind::Team => {
            let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if !name.chars().all(ok) || !first_ok {
                return fail("must match [A-Za-z0-9][A-Za-z0-9._-]*");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["official", "org-2024", "team_a.b", "A1"] {
            assert!(validate_name(NameKind::BaseCatalog, n).is_ok(), "{n}");
            assert!(validate_name(NameKind::Team, n).is_ok(), "{n}");
        }
        assert!(validate_name(NameKind::UserSlug, "alice-3f2a").is_ok());
        assert!(validate_name(NameKind::UserSlug, &"a".repeat(64)).is_ok());
        assert!(validate_name(NameKind::Team, "x.meta").is_ok());
        assert!(validate_name(NameKind::BaseCatalog, "x.meta").is_err());
    }

    #[test]
    fn refuses_traversal_and_encodings() {
        let bad = [
            "",
            "..",
            "../etc",
            "a/b",
            "a\\b",
            "%2F",
            "a%2fb",
            "%2e%2e",
            "a\0b",
            "/etc/passwd",
            "C:\\x",
            ".hidden",
            "a b",
            "tab\there",
            "é",
            "-lead",
        ];
        for kind in [NameKind::BaseCatalog, NameKind::Team, NameKind::UserSlug] {
            for n in bad {
                assert!(validate_name(kind, n).is_err(), "{kind}: {n:?} accepted");
            }
            assert!(validate_name(kind, &"a".repeat(65)).is_err());
        }
    }

    #[test]
    fn slugs_are_lowercase_without_dots() {
        for n in ["Alice", "a.b", "a_b"] {
            assert!(validate_name(NameKind::UserSlug, n).is_err(), "{n}");
        }
    }

    #[test]
    fn message_names_kind_and_reason() {
        let err = validate_name(NameKind::Team, "../x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("team name"), "{msg}");
        assert!(msg.contains("path separator"), "{msg}");
    }
}
