//! Whole-configuration routes of a user: bulk enable/disable of servers, and export/import
//! of their custom catalog + overrides (secrets excluded). Every write takes the path of
//! `PUT /users/{user}/catalogs` ([`super::users::change_catalogs`]): same policy, one audit
//! line, the merged catalog regenerated.

use super::body::{blocking, DocBody};
use super::caller::Caller;
use super::users::{change_catalogs, MergedSummary};
use crate::audit::Action;
use crate::catalog::{parse_import, ServerToggle};
use crate::error::Error;
use crate::owners::Access;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderValue};

/// Enable and disable several servers in one change of the user's overrides:
/// `{"enable": [...], "disable": [...]}` (at most 500 names). Disabling writes `false`;
/// enabling removes a `false` and keeps any patch. Every name must be offered to the user
/// (base or team catalog) or be in their custom catalog.
#[utoipa::path(post, path = "/users/{user}/servers", operation_id = "toggle_user_servers", tag = "users",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    request_body(content = Object, content_type = "application/json", description = "{enable: [<server>...], disable: [<server>...]} (application/yaml also accepted)"),
    responses((status = 200, body = MergedSummary), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn toggle_servers(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: DocBody,
) -> Result<Json<MergedSummary>, Error> {
    change_catalogs(
        &s,
        &caller,
        &user,
        Action::UserServers,
        &body,
        ServerToggle::parse,
        |store, slug, teams, toggle| store.toggle_servers(slug, teams, toggle),
    )
    .await
}

/// Export a user's configuration: `{version: 1, user, custom, overrides}` (`custom` is null
/// when they have none; secrets are never part of it). `Accept: application/yaml` gives YAML.
#[utoipa::path(get, path = "/users/{user}/config", operation_id = "export_user_config", tag = "users",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 200, content(
            (Object = "application/json"),
            (String = "application/yaml")),
            description = "The configuration document"),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn export_config(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let user = caller.user(&user, Access::Read).await?;
    let yaml = wants_yaml(&headers);
    let services = s.services.clone();
    blocking(move || {
        let config = services.catalogs.export_user_config(&user.slug)?;
        if yaml {
            let text = config.to_yaml()?;
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/yaml"),
                )],
                text,
            )
                .into_response())
        } else {
            Ok(Json(config).into_response())
        }
    })
    .await
}

/// True when `Accept` names YAML before (or without) JSON.
fn wants_yaml(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .find_map(|t| match t {
            "application/yaml" | "application/x-yaml" | "text/yaml" => Some(true),
            "application/json" => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// Import a configuration (the export's shape, JSON or YAML): replaces the user's custom
/// catalog and overrides together, validated like `PUT /users/{user}/catalogs`; a refusal
/// writes nothing. `version` must be 1; `user` is ignored (the path names the user, so one
/// user's export can be imported into another); `custom: null` removes the custom catalog.
#[utoipa::path(put, path = "/users/{user}/config", operation_id = "import_user_config", tag = "users",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    request_body(content = Object, content_type = "application/json", description = "{version: 1, user, custom: <catalog> | null, overrides: {...}} (application/yaml also accepted)"),
    responses((status = 200, body = MergedSummary), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn import_config(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: DocBody,
) -> Result<Json<MergedSummary>, Error> {
    change_catalogs(
        &s,
        &caller,
        &user,
        Action::UserConfigImport,
        &body,
        parse_import,
        |store, slug, teams, update| store.put_user_catalogs(slug, teams, update),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_first_named_format() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_static(v));
            wants_yaml(&m)
        };
        assert!(h("application/yaml"));
        assert!(h(
            "text/html, application/yaml;q=0.9, application/json;q=0.8"
        ));
        assert!(!h("application/json, application/yaml"));
        assert!(!h("*/*"));
        assert!(!wants_yaml(&HeaderMap::new()));
    }
}
