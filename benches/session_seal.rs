//! Sealed MCP session ids (`src/proxy/sealed.rs`): what sealing costs the response that hands
//! out a session id, and what opening it costs every later request of the session (README,
//! "Sessions travel with the client"). `cargo bench --bench session_seal`
// Benchmark set-up may unwrap: a bench that cannot set up should stop at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_frontdoor::proxy::sealed::SessionSeal;
use std::hint::black_box;

/// What docker/mcp-gateway and the SDKs hand out: a UUID.
const UPSTREAM: &str = "6f1c2b9e-3d4a-4f5b-8c7d-2e1f0a9b8c7d";

fn seal(c: &mut Criterion) {
    let s = SessionSeal::random().unwrap();
    let sealed = s.seal("alice", UPSTREAM).unwrap();
    c.bench_function("session id: seal (response with a new session)", |b| {
        b.iter(|| s.seal(black_box("alice"), black_box(UPSTREAM)))
    });
    c.bench_function("session id: open (every request of a session)", |b| {
        b.iter(|| s.open(black_box("alice"), black_box(&sealed)))
    });
    c.bench_function("session id: refused (another user's id)", |b| {
        b.iter(|| s.open(black_box("bob"), black_box(&sealed)))
    });
}

criterion_group!(benches, seal);
criterion_main!(benches);
