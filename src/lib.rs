//! mcp-frontdoor: a single TLS front door to per-user MCP gateway containers.
#![forbid(unsafe_code)]

pub mod audit;
pub mod catalog;
pub mod secrets;
