//! A user's catalogs (custom + overrides, the layers that apply, the merged result) and
//! secrets (values go in, only names come out).

use super::audit::admit;
use super::body::{blocking, DocBody};
use super::caller::{Caller, UserRef};
use super::page::{paginate, PageQuery};
use crate::audit::{Action, Target};
use crate::catalog::merge;
use crate::catalog::regen::read_merged_header;
use crate::catalog::{
    regenerate_user, CatalogError, CatalogStore, Format, UserCatalogUpdate, UserFile,
};
use crate::error::Error;
use crate::owners::Access;
use crate::secrets::SecretValue;
use crate::services::Services;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct IncludeQuery {
    /// `base`, `custom`, `merged` or `all` (default).
    pub include: Option<String>,
}

/// The parts of a user's catalog that were asked for.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UserCatalogs {
    pub user: String,
    /// Base catalogs, by ascending priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub base: Option<Vec<Value>>,
    /// Team catalogs of the user's teams.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub teams: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub merged: Option<Value>,
    /// Hash of the merge inputs (the gateway container's `catalog-hash` label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_hash: Option<String>,
    /// With `merged`: every server the user's layers offer, by name, and where it comes from
    /// (`base:<name>`, `team:<team>` or `custom`). Taken before the overrides: a server listed
    /// here but absent from `merged` is one the user disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<std::collections::BTreeMap<String, String>>,
    /// What this user may declare (`catalogs.user_policy` and the fields it lets through).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
}

/// The result of changing a user's catalogs.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergedSummary {
    pub user: String,
    pub merged_hash: String,
    pub servers: Vec<String>,
}

/// Teams for a user's merge: from the token when it is the caller, else as last recorded.
pub(super) fn teams_of(services: &Services, user: &UserRef) -> Result<Vec<String>, Error> {
    if let Some(t) = &user.own_teams {
        return Ok(t.clone());
    }
    let path = services
        .layout
        .user_file(&user.slug, UserFile::Merged)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok(read_merged_header(&path)?
        .map(|(_, teams)| teams)
        .unwrap_or_default())
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("serializing: {e}")))
}

/// A user's catalogs. Reading never writes: the merge is computed, not stored.
#[utoipa::path(get, path = "/users/{user}/catalogs", operation_id = "get_user_catalogs", tag = "users",
    params(("user" = String, Path, description = "user id, slug, or `me`"), IncludeQuery),
    responses((status = 200, body = UserCatalogs), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn get_catalogs(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<IncludeQuery>,
) -> Result<Json<UserCatalogs>, Error> {
    let user = caller.user(&user, Access::Read).await?;
    let include = q.include.unwrap_or_else(|| "all".into());
    let (base, custom, merged) = match include.as_str() {
        "all" => (true, true, true),
        "base" => (true, false, false),
        "custom" => (false, true, false),
        "merged" => (false, false, true),
        other => {
            return Err(Error::BadRequest(format!(
                "include=`{other}`: use base, custom, merged or all"
            )))
        }
    };
    let services = s.services.clone();
    blocking(move || {
        let teams = teams_of(&services, &user)?;
        // Shown as stored even when they break the policy, so the user sees what to fix;
        // the merge below refuses them.
        let inputs = services.catalogs.load_layers(&user.slug, &teams)?;
        let mut out = UserCatalogs {
            user: user.slug.clone(),
            ..Default::default()
        };
        if include == "all" {
            out.policy = Some(to_value(&services.catalogs.policy().view())?);
        }
        if base {
            out.base = Some(
                inputs
                    .base
                    .iter()
                    .map(|b| {
                        Ok(serde_json::json!({"name": b.name, "priority": b.priority,
                            "catalog": to_value(&**b.catalog.value())?}))
                    })
                    .collect::<Result<_, Error>>()?,
            );
            out.teams = Some(
                inputs
                    .teams
                    .iter()
                    .map(|t| Ok(serde_json::json!({"team": t.team, "catalog": to_value(&**t.catalog.value())?})))
                    .collect::<Result<_, Error>>()?,
            );
        }
        if custom {
            out.custom = inputs.custom.as_ref().map(|c| to_value(&**c.value())).transpose()?;
            out.overrides = Some(to_value(&**inputs.overrides.value())?);
        }
        if merged {
            services.catalogs.check_stored(&user.slug, &inputs)?;
            let m = services.cache.get_or_merge(&user.slug, &inputs);
            out.merged = Some(to_value(&*m.catalog)?);
            out.merged_hash = Some(m.hash.as_str().to_string());
            out.origins = Some(
                merge::origins(&inputs)
                    .into_iter()
                    .map(|(name, origin)| (name, origin.to_string()))
                    .collect(),
            );
        }
        Ok(Json(out))
    })
    .await
}

/// Replace a user's custom catalog and/or overrides (`{custom, overrides}`; an absent key
/// leaves that part alone). The merged catalog is regenerated and the gateway told.
#[utoipa::path(put, path = "/users/{user}/catalogs", operation_id = "put_user_catalogs", tag = "users",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    request_body(content = Object, content_type = "application/json", description = "{custom: <catalog>, overrides: {<server>: false | {...}}} (application/yaml also accepted)"),
    responses((status = 200, body = MergedSummary), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn put_catalogs(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: DocBody,
) -> Result<Json<MergedSummary>, Error> {
    change_catalogs(
        &s,
        &caller,
        &user,
        Action::UserCatalogPut,
        &body,
        UserCatalogUpdate::parse,
        |store, slug, teams, update| store.put_user_catalogs(slug, teams, update),
    )
    .await
}

/// One audited change of a user's layers (custom catalog, overrides), the same for every
/// route that makes one: the caller's write permit first, then the user the path names, the
/// body read by `parse`, `change` applied under the catalog policy (a refusal writes nothing),
/// the merged catalog regenerated, and one audit line whatever happened.
pub(super) async fn change_catalogs<U: Send + 'static>(
    s: &AppState,
    caller: &Caller,
    path_user: &str,
    action: Action,
    body: &DocBody,
    parse: impl FnOnce(&[u8], Format) -> Result<U, CatalogError>,
    change: impl FnOnce(&CatalogStore, &str, &[String], &U) -> Result<(), CatalogError> + Send + 'static,
) -> Result<Json<MergedSummary>, Error> {
    let permit = admit(s, caller)?;
    let target_slug = caller.target_slug(path_user);
    let result = async {
        let user = caller.user(path_user, Access::Write).await?;
        let update = parse(&body.bytes, body.format)?;
        let services = s.services.clone();
        blocking(move || {
            let teams = teams_of(&services, &user)?;
            change(&services.catalogs, &user.slug, &teams, &update)?;
            let r = regenerate_user(&services.catalogs, &services.cache, &user.slug, &teams)?;
            Ok(MergedSummary {
                user: user.slug,
                merged_hash: r.hash.as_str().to_string(),
                servers: r.catalog.server_names().map(str::to_string).collect(),
            })
        })
        .await
    }
    .await;
    permit
        .record(s, action, Target::user_catalog(&target_slug), result)
        .await
        .map(Json)
}

/// Secret names (values are never returned).
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretNames {
    pub user: String,
    /// `<server>.<key>` names, sorted.
    pub names: Vec<String>,
    /// `GET`: pass as `?cursor=` for the next page; `null` on the last page (a `PUT` lists
    /// every name).
    pub next_cursor: Option<String>,
}

/// List a user's secret names, sorted, a page at a time.
#[utoipa::path(get, path = "/users/{user}/secrets", operation_id = "list_secrets", tag = "secrets",
    params(("user" = String, Path, description = "user id, slug, or `me`"), PageQuery),
    responses((status = 200, body = SecretNames), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_secrets(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<SecretNames>, Error> {
    let user = caller.user(&user, Access::Read).await?;
    let secrets = s.services.secrets.clone();
    let slug = user.slug.clone();
    let all = blocking(move || Ok(secrets.list_names(&slug)?)).await?;
    let (names, next_cursor) = paginate(all, |n| n, &page)?;
    Ok(Json(SecretNames {
        user: user.slug,
        names,
        next_cursor,
    }))
}

/// Store secrets: a map `{"<server>.<key>": "<value>"}`. All or nothing; one audit line
/// (names only, at most 20 listed, and their count).
#[utoipa::path(put, path = "/users/{user}/secrets", operation_id = "put_secrets", tag = "secrets",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    request_body(content = HashMap<String, String>, content_type = "application/json", description = "secret values by name (application/yaml also accepted)"),
    responses((status = 200, body = SecretNames), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn put_secrets(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: DocBody,
) -> Result<Json<SecretNames>, Error> {
    let permit = admit(&s, &caller)?;
    let target_slug = caller.target_slug(&user);
    // The names, for the one audit line of this change (empty when the body did not parse).
    let mut names: Vec<String> = Vec::new();
    let result = async {
        let user = caller.user(&user, Access::Write).await?;
        let values: IndexMap<String, String> = match body.format {
            Format::Json => serde_json::from_slice(&body.bytes).map_err(|e| {
                Error::BadRequest(format!(
                    "expected a JSON object of name → string value: {e}"
                ))
            })?,
            Format::Yaml => serde_saphyr::from_slice(&body.bytes).map_err(|e| {
                Error::BadRequest(format!("expected a YAML map of name → string value: {e}"))
            })?,
        };
        if values.is_empty() {
            return Err(Error::BadRequest("no secrets in the body".into()));
        }
        names = values.keys().cloned().collect();
        let secrets = s.services.secrets.clone();
        let slug = user.slug.clone();
        let listed = blocking(move || {
            let sealed: Vec<(String, SecretValue)> = values
                .into_iter()
                .map(|(k, v)| (k, SecretValue::new(v)))
                .collect();
            let items: Vec<(&str, &SecretValue)> =
                sealed.iter().map(|(k, v)| (k.as_str(), v)).collect();
            secrets.put_many(&slug, &items)?;
            let mut names = secrets.list_names(&slug)?;
            names.sort();
            Ok(names)
        })
        .await?;
        Ok(SecretNames {
            user: user.slug,
            names: listed,
            next_cursor: None,
        })
    }
    .await;
    // One line for the whole change, however many names it carried.
    permit
        .record_secrets(
            &s,
            Action::SecretPut,
            Target::secrets(&target_slug),
            &names,
            result,
        )
        .await
        .map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SecretQuery {
    /// The secret to delete (`<server>.<key>`).
    pub name: String,
}

/// Delete one secret by name.
#[utoipa::path(delete, path = "/users/{user}/secrets", operation_id = "delete_secret", tag = "secrets",
    params(("user" = String, Path, description = "user id, slug, or `me`"), SecretQuery),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 429), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_secret(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<SecretQuery>,
) -> Result<StatusCode, Error> {
    let permit = admit(&s, &caller)?;
    let slug = caller.target_slug(&user);
    let target = Target::secret(&slug, &q.name);
    let result = async {
        let user = caller.user(&user, Access::Read).await?;
        let secrets = s.services.secrets.clone();
        blocking(move || Ok(secrets.delete(&user.slug, &q.name)?)).await
    }
    .await;
    permit
        .record(&s, Action::SecretDelete, target, result)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}
