//! Integration tests of the gateway lifecycle against the real Docker engine, with the test
//! gateway image (`test-gateway/build-image.sh` → `mcp-test-gateway:dev`, or
//! `MCP_TEST_GATEWAY_IMAGE`).
//!
//! Each test uses its own `gateways.docker.instance`, so tests run in parallel on one engine,
//! and an [`engine::Engine`] guard that removes everything labelled with that instance, even
//! when the test panics. Without a reachable engine (or image) a test prints why and passes;
//! with `CI=true` it fails instead.
// Test code may unwrap (the lint's allow-*-in-tests in .clippy.toml covers #[test] functions
// and #[cfg(test)] modules, not the helpers of an integration test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unused_imports)]
#[path = "../it/support/mod.rs"]
mod support;

mod adoption;
mod api;
mod capacity;
mod engine;
mod failures;
mod gateway_api;
mod isolation;
mod lifecycle;
mod mcp;
mod measure;
mod replicas;
mod swarm;
mod teardown;
