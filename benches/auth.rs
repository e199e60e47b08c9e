//! Token verification: the signature check a cache miss pays, and the cached path every
//! further request of the same token takes. `cargo bench --bench auth`
// Benchmark set-up may unwrap: a bench that cannot set up should stop at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use mcp_frontdoor::auth::Authenticator;
use mcp_frontdoor::config::AuthConfig;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-hs256-secret-that-is-long-enough-0123456789";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn token(alg: Algorithm, sub: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "sub": sub, "iss": "bench", "aud": "mcp", "exp": now + 3600, "nbf": now - 5,
        "roles": ["user"], "groups": ["ml", "ops"],
    });
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-private.pem")).unwrap()).unwrap()
        }
        Algorithm::ES256 => {
            EncodingKey::from_ec_pem(&std::fs::read(fixture("ec-private.pem")).unwrap()).unwrap()
        }
        _ => unreachable!(),
    };
    encode(&Header::new(alg), &claims, &key).unwrap()
}

fn authenticator(rt: &tokio::runtime::Runtime, cache_size: usize, dir: &Path) -> Authenticator {
    let secret = dir.join("hs");
    std::fs::write(&secret, SECRET).unwrap();
    let cfg = AuthConfig {
        issuer: Some("bench".into()),
        audience: vec!["mcp".into()],
        hs256_secret_file: Some(secret),
        public_key_files: vec![fixture("rsa-public.pem"), fixture("ec-public.pem")],
        cache_size,
        ..AuthConfig::default()
    };
    rt.block_on(Authenticator::from_config(
        &cfg,
        "https://bench",
        CancellationToken::new(),
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A one-entry cache fed two alternating tokens misses every time: the cold path.
    let cold = authenticator(&rt, 1, dir.path());
    let warm = authenticator(&rt, 10_000, dir.path());
    let mut g = c.benchmark_group("verify");
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
        let pair = [token(alg, "alice"), token(alg, "bob")];
        let mut i = 0usize;
        g.bench_function(format!("{alg:?}/cold"), |b| {
            b.to_async(&rt).iter(|| {
                i += 1;
                cold.verify(&pair[i % 2])
            })
        });
        let t = token(alg, "carol");
        rt.block_on(warm.verify(&t)).unwrap();
        g.bench_function(format!("{alg:?}/cached"), |b| {
            b.to_async(&rt).iter(|| warm.verify(&t))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
