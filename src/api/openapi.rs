//! What the annotated handlers leave out of the OpenAPI document, filled in one place so no
//! route can forget it: the bearer security scheme, the one error schema (`ErrorBody`) on
//! every 4xx/5xx response, and a description on every response (OpenAPI requires one).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, Response};
use utoipa::{PartialSchema, ToSchema};

/// Every error the API answers: a stable machine-readable code and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `not_found`, `conflict`, `policy_violation`, `rate_limited`.
    pub error: String,
    /// What went wrong and what to do, in words.
    pub message: String,
}

/// Registered on the API's `#[openapi]` (see `api::ApiDoc`).
pub struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components
            .schemas
            .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
        let error_ref = RefOr::Ref(utoipa::openapi::Ref::from_schema_name(ErrorBody::name()));
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (status, resp) in op.responses.responses.iter_mut() {
                    if let RefOr::T(resp) = resp {
                        fill(status, resp, &error_ref);
                    }
                }
            }
        }
    }
}

fn fill(status: &str, resp: &mut Response, error_ref: &RefOr<utoipa::openapi::schema::Schema>) {
    if resp.description.is_empty() {
        resp.description = default_description(status).to_string();
    }
    let is_error = status.starts_with('4') || status.starts_with('5');
    if is_error && resp.content.is_empty() {
        resp.content.insert(
            "application/json".into(),
            RefOr::T(Content::new(Some(error_ref.clone()))),
        );
    }
}

/// What a status means on this API when the route says nothing more specific.
fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created (`Location` names the new resource)",
        "202" => "Accepted; runs in the background",
        "204" => "Done; no body",
        "207" => "Some parts failed; the body says which and why",
        "400" => "Bad input (the message names it); nothing was changed",
        "401" => {
            "Missing, expired or invalid bearer token (`WWW-Authenticate` says where to get one)"
        }
        "403" => "The caller may not do this (admin role needed, or another user's resource)",
        "404" => "No such resource",
        "405" => "Method not allowed on this path (`Allow` lists the ones that are)",
        "409" => {
            "Conflicts with the current state (already exists, or not possible in this deployment)"
        }
        "413" => "Request body too large",
        "415" => "Unsupported Content-Type (send JSON or YAML)",
        "429" => {
            "Too many changes, or no room for another gateway; retry after `Retry-After` seconds"
        }
        "500" => "Internal error; the server log has the details",
        "502" => "Every part of the operation failed upstream; the body says why",
        "503" => "Not available now; retry after `Retry-After` seconds",
        _ => "See the error body",
    }
}
