//! Mapping token claims to a principal: configurable claim names, dotted paths for nested
//! claims (Keycloak's `realm_access.roles`), lists given as arrays or space-separated strings.

use super::principal::{slug, Principal};
use super::AuthFailure;
use crate::config::AuthConfig;
use serde_json::Value;

/// Which claims hold the user, roles and teams.
pub(super) struct ClaimMap {
    user: String,
    roles: String,
    teams: String,
    admin_role: String,
}

impl ClaimMap {
    pub(super) fn from_config(cfg: &AuthConfig) -> Self {
        Self {
            user: cfg.user_claim.clone(),
            roles: cfg.roles_claim.clone(),
            teams: cfg.teams_claim.clone(),
            admin_role: cfg.admin_role.clone(),
        }
    }

    pub(super) fn principal(&self, claims: &Value) -> Result<Principal, AuthFailure> {
        let user = match lookup(claims, &self.user) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(AuthFailure::MissingClaim),
        };
        let roles = list(lookup(claims, &self.roles));
        let teams = list(lookup(claims, &self.teams));
        let expires_at = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok(Principal {
            slug: slug(&user),
            admin: roles.iter().any(|r| r == &self.admin_role),
            user,
            roles,
            teams,
            expires_at,
        })
    }
}

fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    // A claim literally named with dots (some IdPs use URLs as claim names) wins over a path.
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, seg| v.get(seg))
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map() -> ClaimMap {
        ClaimMap::from_config(&AuthConfig {
            roles_claim: "realm_access.roles".into(),
            ..AuthConfig::default()
        })
    }

    #[test]
    fn nested_roles_and_string_lists() {
        let p = map()
            .principal(&json!({"sub": "Bob", "exp": 5, "realm_access": {"roles": ["admin"]}, "groups": "ml ops"}))
            .unwrap();
        assert!(p.admin);
        assert_eq!(p.teams, vec!["ml", "ops"]);
        assert_ne!(p.slug, "Bob");
    }

    #[test]
    fn missing_user_claim_is_refused() {
        assert_eq!(
            map().principal(&json!({"exp": 5})).unwrap_err(),
            AuthFailure::MissingClaim
        );
    }
}
