//! A refused call: why (a closed set, the metric's label), the status Docker itself would use,
//! and a Docker-style body (`{"message": ...}`) that the gateway's `docker` CLI prints as
//! "Error response from daemon: ...".

use super::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

/// Why a call was refused; the `reason` label of `gateway_api_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A call no gateway may make (exec, volumes, build, swarm, plugins, networks, ...).
    Route,
    /// An image the user's catalog does not name.
    Image,
    /// A create body field gateways may not set (privileged, binds, host namespaces, ...).
    Field,
    /// A container that is not one of this gateway's servers.
    Container,
    /// A network other than the user's own.
    Network,
    /// A body that is not JSON, or too large.
    Body,
    /// A container name (names are global on the engine; servers go by id).
    Name,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Route => "route",
            Reason::Image => "image",
            Reason::Field => "field",
            Reason::Container => "container",
            Reason::Network => "network",
            Reason::Body => "body",
            Reason::Name => "name",
        }
    }
}

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub status: StatusCode,
    /// Names fields, images and routes; never a value from the body (env values are secrets).
    pub message: String,
}

impl Refusal {
    pub fn new(reason: Reason, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            reason,
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(reason, StatusCode::FORBIDDEN, message)
    }

    /// The answer the gateway gets.
    pub fn response(&self) -> Response<Body> {
        let body = serde_json::json!({ "message": format!("mcp-frontdoor: {}", self.message) });
        json_response(self.status, Bytes::from(body.to_string()))
    }
}

/// A JSON response with `body`.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
