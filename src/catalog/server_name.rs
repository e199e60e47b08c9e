//! Server names (the keys of a catalog's registry) and secret names (`<server>.<key>`, the
//! form the gateway's `--secrets` file uses). Leaf code: catalog validation, overrides, the
//! secrets store and audit use it.

/// Longest server name.
pub const MAX_SERVER_NAME_LEN: usize = 128;

/// Longest accepted secret name.
pub const MAX_SECRET_NAME_LEN: usize = 200;

/// Checks `<server>.<key>`: the part before the last dot is a server-name-like prefix
/// (`[a-z0-9][a-z0-9._-]*`), the key after it is `[A-Za-z0-9_-]+`.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_SECRET_NAME_LEN {
        return Err(format!(
            "secret name is longer than {MAX_SECRET_NAME_LEN} characters"
        ));
    }
    let Some((server, key)) = name.rsplit_once('.') else {
        return Err(format!(
            "secret name {name:?} must have the form <server>.<key>, e.g. github.personal_access_token"
        ));
    };
    let key_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !key_ok {
        return Err(format!(
            "secret name {name:?}: the key after the last '.' must match [A-Za-z0-9_-]+"
        ));
    }
    if check_server_name(server).is_err() {
        return Err(format!(
            "secret name {name:?}: the server part before the last '.' must match [a-z0-9][a-z0-9._-]*"
        ));
    }
    Ok(())
}

/// Server name rule: `[a-z0-9][a-z0-9._-]*`, at most 128 characters.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if name.len() > MAX_SERVER_NAME_LEN {
        Err(format!(
            "server name is longer than {MAX_SERVER_NAME_LEN} characters"
        ))
    } else if !first_ok || !rest_ok {
        Err(format!(
            "server name {name:?} must match [a-z0-9][a-z0-9._-]* (lower-case)"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_gateway_style_names() {
        for n in [
            "github.personal_access_token",
            "a.b",
            "my-srv.v2.API_KEY",
            "x.key-1",
        ] {
            assert!(check_secret_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_other_shapes() {
        for n in [
            "", "nodot", ".key", "srv.", "Srv.key", "srv.k=v", "srv.k\n", "srv.k ey", "a/b.c",
        ] {
            assert!(check_secret_name(n).is_err(), "{n:?}");
        }
        assert!(check_secret_name(&format!("a.{}", "k".repeat(200))).is_err());
    }

    #[test]
    fn server_name_limits() {
        assert!(check_server_name("a").is_ok());
        assert!(check_server_name("github.official_v2-x").is_ok());
        assert!(check_server_name(&"a".repeat(129)).is_err());
        for bad in ["", ".a", "-a", "A", "a b", "a/b"] {
            assert!(check_server_name(bad).is_err(), "{bad}");
        }
    }
}
