//! Development tokens (HS256), for `mcp-frontdoor token` and `serve --dev`.

use crate::config::AuthConfig;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// What goes into a dev token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub sub: String,
    pub roles: Vec<String>,
    pub teams: Vec<String>,
    pub ttl: Duration,
}

/// Signs an HS256 token with the claim names and issuer/audience of `cfg`.
pub fn mint_hs256(
    secret: &[u8],
    cfg: &AuthConfig,
    req: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = Map::new();
    claims.insert(cfg.user_claim.clone(), json!(req.sub));
    claims.insert(cfg.roles_claim.clone(), json!(req.roles));
    claims.insert(cfg.teams_claim.clone(), json!(req.teams));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now + req.ttl.as_secs()));
    if let Some(iss) = &cfg.issuer {
        claims.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = cfg.audience.first() {
        claims.insert("aud".into(), json!(aud));
    }
    encode(
        &Header::default(),
        &Value::Object(claims),
        &EncodingKey::from_secret(secret),
    )
}
