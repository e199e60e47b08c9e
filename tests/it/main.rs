//! Integration tests of the data plane: one binary (fast to build), one module per concern.
// Test code may unwrap (the lint's allow-*-in-tests in .clippy.toml covers #[test] functions
// and #[cfg(test)] modules, not the helpers of an integration test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod audit;
mod auth;
mod catalog_policy;
mod cli;
mod client_errors;
mod config_files;
mod conventions;
mod edge;
mod events;
mod h1_wire;
mod headers;
mod identities;
mod keepalive;
mod metrics_listener;
mod ops_files;
mod relay;
mod routing;
mod secrets;
mod sessions;
mod shutdown;
mod streaming;
mod support;
mod tls;
mod ui;
mod upstream_errors;
mod user_config;
