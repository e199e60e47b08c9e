//! The auth matrix: every accepted token kind passes, every bad one is a 401 with the
//! RFC 9728 challenge, and nothing unauthenticated reaches the gateway.

use crate::support::tokens::{self, claims, now, sign, Signer};
use crate::support::{body_json, Frontdoor, Proto, TestUpstream};
use serde_json::json;

async fn setup() -> (TestUpstream, Frontdoor) {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    (up, fd)
}

#[tokio::test]
async fn valid_tokens_of_every_key_kind_pass() {
    let (up, fd) = setup().await;
    let c = fd.client(Proto::H1);
    for (i, signer) in [Signer::Hs256, Signer::Rs256, Signer::Es256, Signer::Jwks]
        .into_iter()
        .enumerate()
    {
        let token = sign(signer, &claims("alice", &[], &[]));
        let resp = c
            .send(
                c.req("POST", "/mcp")
                    .header("authorization", format!("Bearer {token}")),
            )
            .await;
        assert_eq!(resp.status(), 200, "{signer:?}");
        assert_eq!(up.seen().len(), i + 1, "{signer:?} reached the gateway");
    }
}

#[tokio::test]
async fn every_bad_token_is_a_401_with_the_resource_metadata_challenge() {
    let (up, fd) = setup().await;
    let c = fd.client(Proto::H1);
    let mut wrong_iss = claims("alice", &[], &[]);
    wrong_iss["iss"] = json!("https://other-issuer.test");
    let mut wrong_aud = claims("alice", &[], &[]);
    wrong_aud["aud"] = json!("someone-else");
    let mut expired = claims("alice", &[], &[]);
    expired["exp"] = json!(now() - 3600);
    let mut not_yet = claims("alice", &[], &[]);
    not_yet["nbf"] = json!(now() + 3600);
    let good = sign(Signer::Hs256, &claims("alice", &[], &[]));
    // Change a character inside the signature, not its last one: the last base64url
    // character of a 32-byte signature carries padding bits, and a non-canonical one is a
    // decoding error ("malformed"), not a bad signature.
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        (
            "expired",
            Some(sign(Signer::Rs256, &expired)),
            "/mcp",
            "expired",
        ),
        (
            "not yet valid",
            Some(sign(Signer::Es256, &not_yet)),
            "/mcp",
            "not valid yet",
        ),
        (
            "wrong issuer",
            Some(sign(Signer::Hs256, &wrong_iss)),
            "/mcp",
            "issuer",
        ),
        (
            "wrong audience",
            Some(sign(Signer::Jwks, &wrong_aud)),
            "/mcp",
            "audience",
        ),
        ("bad signature", Some(tampered), "/mcp", "signature"),
        (
            "other secret",
            Some(tokens::sign_hs256_with(
                b"another-secret-of-enough-length-0123456789",
                &claims("alice", &[], &[]),
            )),
            "/mcp",
            "signature",
        ),
        (
            "alg none",
            Some(tokens::alg_none(&claims("alice", &[], &[]))),
            "/mcp",
            "malformed",
        ),
        (
            "HS256 signed with the RSA public key",
            Some(tokens::sign_hs256_with(
                &tokens::rsa_public_pem(),
                &claims("alice", &[], &[]),
            )),
            "/mcp",
            "signature",
        ),
        ("malformed", Some("not.a.jwt".into()), "/mcp", "malformed"),
        ("garbage", Some("x".into()), "/mcp", "malformed"),
        ("missing header", None, "/mcp", "missing"),
        (
            "token only in the query",
            None,
            "/mcp?access_token=GOOD",
            "query",
        ),
        (
            "token in query and header",
            Some(good.clone()),
            "/mcp?access_token=GOOD",
            "query",
        ),
    ];
    let challenge = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        fd.base()
    );
    for (name, token, path, message_part) in cases {
        let path = path.replace("GOOD", &good);
        let mut req = c.req("POST", &path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = c.send(req).await;
        assert_eq!(resp.status(), 401, "{name}");
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(challenge.as_str()),
            "{name}"
        );
        let body = body_json(resp).await;
        assert_eq!(crate::support::reason(&body), "unauthorized", "{name}");
        let msg = crate::support::message(&body);
        let msg = msg.as_str().unwrap();
        assert!(msg.contains(message_part), "{name}: {msg}");
        assert!(!msg.contains(&good), "{name}: token echoed");
    }
    assert!(
        up.seen().is_empty(),
        "no unauthenticated request reached the gateway"
    );
    let metrics = fd.metrics_text().await;
    for reason in [
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "bad_signature",
        "malformed",
        "missing",
        "query_token",
    ] {
        assert!(
            metrics.contains(&format!(
                "mcp_frontdoor_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "metric for {reason}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn resource_metadata_is_served_without_a_token() {
    let (_up, fd) = setup().await;
    let c = fd.client(Proto::H2);
    let resp = c
        .send(c.req("GET", "/.well-known/oauth-protected-resource"))
        .await;
    assert_eq!(resp.status(), 200);
    let doc = body_json(resp).await;
    assert_eq!(doc["resource"], fd.base());
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    let resp = c
        .send(c.req("GET", "/.well-known/oauth-protected-resource/mcp"))
        .await;
    assert_eq!(
        body_json(resp).await["resource"],
        format!("{}/mcp", fd.base())
    );
}

#[tokio::test]
async fn repeated_tokens_are_served_from_the_cache() {
    let (up, fd) = setup().await;
    let c = fd.client(Proto::H1);
    let token = sign(Signer::Rs256, &claims("bob", &["admin"], &["ml"]));
    for _ in 0..5 {
        let resp = c
            .send(
                c.req("GET", "/mcp")
                    .header("authorization", format!("Bearer {token}")),
            )
            .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(up.seen().len(), 5);
}

#[tokio::test]
async fn jwks_url_keys_are_fetched_and_refreshed_in_the_background() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let hits2 = hits.clone();
    let jwks = std::fs::read(tokens::fixture("jwks.json")).unwrap();
    let (_idp, _up, fd) = jwks_url_frontdoor("200ms", move || {
        hits2.fetch_add(1, Ordering::SeqCst);
        jwks.clone()
    })
    .await;
    let c = fd.client(Proto::H1);
    let token = sign(Signer::Jwks, &claims("dana", &[], &[]));
    let resp = c
        .send(
            c.req("GET", "/mcp")
                .header("authorization", format!("Bearer {token}")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let first = hits.load(Ordering::SeqCst);
    assert!(first >= 1);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(hits.load(Ordering::SeqCst) > first, "no background refresh");
    let ready = c.send(c.req("GET", "/readyz")).await;
    assert_eq!(ready.status(), 200);
}

/// The JWKS fixture with its signing key under another kid: the same document shape, but
/// `jwks-key-1` (what [`Signer::Jwks`] tokens name) has left the set.
fn jwks_without_key_1() -> Vec<u8> {
    let text = std::fs::read_to_string(tokens::fixture("jwks.json")).unwrap();
    assert!(text.contains("\"jwks-key-1\""));
    text.replace("\"jwks-key-1\"", "\"jwks-key-2\"")
        .into_bytes()
}

async fn wait_until_refused(c: &crate::support::client::Client, token: &str) -> serde_json::Value {
    for _ in 0..100 {
        let resp = c
            .send(
                c.req("GET", "/mcp")
                    .header("authorization", format!("Bearer {token}")),
            )
            .await;
        if resp.status() == 401 {
            return body_json(resp).await;
        }
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("a token of a removed key was still accepted after 5 s");
}

#[tokio::test]
async fn a_cached_token_dies_when_its_key_leaves_the_jwks_url() {
    let doc = std::sync::Arc::new(parking_lot::Mutex::new(
        std::fs::read(tokens::fixture("jwks.json")).unwrap(),
    ));
    let served = doc.clone();
    let (_idp, up, fd) = jwks_url_frontdoor("100ms", move || served.lock().clone()).await;
    let c = fd.client(Proto::H1);
    let token = sign(Signer::Jwks, &claims("dana", &[], &[]));
    for _ in 0..3 {
        let resp = c
            .send(
                c.req("GET", "/mcp")
                    .header("authorization", format!("Bearer {token}")),
            )
            .await;
        assert_eq!(resp.status(), 200, "verified, then served from the cache");
    }
    let served_before = up.seen().len();
    *doc.lock() = jwks_without_key_1();
    let body = wait_until_refused(&c, &token).await;
    assert_eq!(crate::support::reason(&body), "unauthorized");
    assert!(
        crate::support::message(&body)
            .as_str()
            .unwrap()
            .contains("no configured key"),
        "{body}"
    );
    assert!(fd
        .metrics_text()
        .await
        .contains("mcp_frontdoor_auth_failures_total{reason=\"unknown_key\"}"));
    let after = up.seen().len();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let resp = c
        .send(
            c.req("GET", "/mcp")
                .header("authorization", format!("Bearer {token}")),
        )
        .await;
    assert_eq!(resp.status(), 401, "and it stays refused");
    assert_eq!(up.seen().len(), after);
    assert!(after >= served_before);
}

#[tokio::test]
async fn a_cached_token_dies_when_its_key_leaves_the_jwks_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::copy(tokens::fixture("jwks.json"), &file).unwrap();
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder()
        .upstream(&up.url())
        .auth(&format!("jwks_file: {}", file.display()))
        .auth("jwks_refresh: 100ms")
        .start()
        .await;
    let c = fd.client(Proto::H1);
    let token = sign(Signer::Jwks, &claims("dana", &[], &[]));
    let resp = c
        .send(
            c.req("GET", "/mcp")
                .header("authorization", format!("Bearer {token}")),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Replaced the way an operator would: a new file renamed over the old one.
    let next = dir.path().join("jwks.json.new");
    std::fs::write(&next, jwks_without_key_1()).unwrap();
    std::fs::rename(&next, &file).unwrap();
    let body = wait_until_refused(&c, &token).await;
    assert!(
        crate::support::message(&body)
            .as_str()
            .unwrap()
            .contains("no configured key"),
        "{body}"
    );
}

/// An identity provider on loopback serving what `jwks` returns at each fetch, and a front
/// door whose only key source is that URL (the file source is replaced), refreshed every
/// `refresh`. The servers live as long as the returned handles.
async fn jwks_url_frontdoor(
    refresh: &str,
    jwks: impl Fn() -> Vec<u8> + Send + Sync + 'static,
) -> (TestUpstream, TestUpstream, Frontdoor) {
    let idp = TestUpstream::start(move |_req| {
        let body = jwks();
        async move {
            http::Response::builder()
                .header("content-type", "application/json")
                .body(crate::support::upstream::full(body))
                .unwrap()
        }
    })
    .await;
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder()
        .upstream(&up.url())
        .auth(&format!("jwks_url: http://{}/jwks", idp.addr))
        .auth("jwks_allow_http: true")
        .auth(&format!("jwks_refresh: {refresh}"))
        .auth("jwks_file: null")
        .start()
        .await;
    (idp, up, fd)
}

/// One gate guards the proxied routes and the API: a refused token is answered with the same
/// challenge and counted once by reason on each of them, an unknown API route included.
#[tokio::test]
async fn every_guarded_route_counts_and_challenges_a_refused_token() {
    let (up, fd) = setup().await;
    let c = fd.client(Proto::H1);
    let paths = ["/mcp", "/api/v1/users/me/catalogs", "/api/v1/no-such-route"];
    for path in paths {
        let resp = c.send(c.req("GET", path)).await;
        assert_eq!(resp.status(), 401, "{path}");
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("resource_metadata="),
            "{path}: {challenge}"
        );
    }
    let text = fd.metrics_text().await;
    assert!(
        text.contains("mcp_frontdoor_auth_failures_total{reason=\"missing\"} 3"),
        "{text}"
    );
    assert!(up.seen().is_empty());
}
