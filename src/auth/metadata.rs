//! OAuth 2.0 Protected Resource Metadata (RFC 9728), which MCP clients read after a 401 to
//! learn where to get a token.

use serde_json::{json, Value};

/// Where the metadata document lives for a resource at `public_url`.
pub fn metadata_url(public_url: &str) -> String {
    format!("{public_url}/.well-known/oauth-protected-resource")
}

/// The metadata document. `path` is the resource path suffix (`/mcp`), or empty for the root.
pub fn document(public_url: &str, path: &str, authorization_servers: &[String]) -> Value {
    json!({
        "resource": format!("{public_url}{path}"),
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-frontdoor",
    })
}
