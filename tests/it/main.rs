//! Integration tests of the data plane: one binary (fast to build), one module per concern.

mod api;
mod audit;
mod auth;
mod cli;
mod config_files;
mod headers;
mod routing;
mod secrets;
mod sessions;
mod shutdown;
mod streaming;
mod support;
mod tls;
mod upstream_errors;
