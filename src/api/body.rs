//! Request bodies: YAML or JSON by `Content-Type`, read with a size cap so an oversized body
//! is refused without being held in memory.

use crate::catalog::Format;
use crate::error::Error;
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// A capped body and the format its `Content-Type` names.
pub struct DocBody {
    pub bytes: Bytes,
    pub format: Format,
}

/// The format a `Content-Type` names, if it is one we read.
pub fn format_of(content_type: Option<&str>) -> Option<Format> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    match ct.as_str() {
        "application/json" => Some(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            Some(Format::Yaml)
        }
        _ if ct.ends_with("+json") => Some(Format::Json),
        _ => None,
    }
}

/// Reads at most `limit` bytes of `req`'s body.
pub async fn read_capped(req: Request, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::PayloadTooLarge(limit)),
        Err(e) => Err(Error::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

impl FromRequest<AppState> for DocBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let ct = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let format = format_of(ct).ok_or_else(|| {
            Error::UnsupportedMediaType(
                "send the body as Content-Type: application/json or application/yaml".into(),
            )
        })?;
        let bytes = read_capped(req, state.max_body).await?;
        Ok(Self { bytes, format })
    }
}

/// Runs blocking file work off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}
