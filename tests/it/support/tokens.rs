//! Test tokens signed with the fixture keys in tests/fixtures/keys (generated with openssl:
//! `openssl genrsa`, `openssl ecparam -name prime256v1`, and a JWKS built from a third RSA key).

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "mcp-frontdoor";
/// The HS256 secret the test front door is configured with.
pub const HS_SECRET: &str = "test-hs256-secret-that-is-long-enough-0123456789";

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture key")
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Valid claims for `sub` with the given roles and teams.
pub fn claims(sub: &str, roles: &[&str], teams: &[&str]) -> Value {
    json!({
        "sub": sub, "iss": ISSUER, "aud": AUDIENCE,
        "exp": now() + 3600, "nbf": now() - 10, "iat": now() - 10,
        "roles": roles, "groups": teams,
    })
}

/// Which key signs a token.
#[derive(Debug, Clone, Copy)]
pub enum Signer {
    Hs256,
    Rs256,
    Es256,
    /// The RSA key published in the JWKS fixture, with its kid.
    Jwks,
}

pub fn sign(signer: Signer, claims: &Value) -> String {
    let (header, key) = match signer {
        Signer::Hs256 => (
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(HS_SECRET.as_bytes()),
        ),
        Signer::Rs256 => (
            Header::new(Algorithm::RS256),
            EncodingKey::from_rsa_pem(&read("rsa-private.pem")).unwrap(),
        ),
        Signer::Es256 => (
            Header::new(Algorithm::ES256),
            EncodingKey::from_ec_pem(&read("ec-private.pem")).unwrap(),
        ),
        Signer::Jwks => {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some("jwks-key-1".into());
            (
                h,
                EncodingKey::from_rsa_pem(&read("jwks-rsa-private.pem")).unwrap(),
            )
        }
    };
    encode(&header, claims, &key).unwrap()
}

/// A valid HS256 token for `sub`.
pub fn user(sub: &str) -> String {
    sign(Signer::Hs256, &claims(sub, &[], &[]))
}

/// `Authorization` value for a valid token of `sub`.
pub fn bearer(sub: &str) -> String {
    format!("Bearer {}", user(sub))
}

/// Signs HS256 with arbitrary key bytes (for the algorithm-confusion case).
pub fn sign_hs256_with(secret: &[u8], claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// An unsigned `alg: none` token.
pub fn alg_none(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// Public key PEM bytes of the RSA fixture.
pub fn rsa_public_pem() -> Vec<u8> {
    read("rsa-public.pem")
}
