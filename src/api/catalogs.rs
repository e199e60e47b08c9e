//! Admin base catalogs and team catalogs.

use super::audit::admit;
use super::body::{blocking, format_of, read_capped, DocBody};
use super::caller::Caller;
use super::page::{paginate, PageQuery};
use crate::audit::{Action, Target};
use crate::catalog::{parse_validated, Catalog, Format};
use crate::error::Error;
use crate::state::AppState;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// A base catalog's name and merge priority (higher wins).
#[derive(Debug, Serialize, ToSchema)]
pub struct BaseCatalogInfo {
    pub name: String,
    pub priority: i64,
}

/// One page of base catalogs, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaseCatalogPage {
    pub items: Vec<BaseCatalogInfo>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of team catalog names.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamPage {
    pub items: Vec<String>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A team catalog as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCatalogInfo {
    pub team: String,
    /// The servers it offers.
    pub servers: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PriorityQuery {
    /// Merge priority; omitted keeps the current one (0 for a new catalog).
    pub priority: Option<i64>,
    /// Catalog name, for a non-multipart `POST` whose catalog has no `name`.
    pub name: Option<String>,
}

/// A catalog as YAML when the client asks for YAML, JSON otherwise.
pub fn catalog_response(
    catalog: &Catalog,
    accept: Option<&http::HeaderValue>,
) -> Result<Response, Error> {
    let wants_yaml = accept
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("yaml"));
    if wants_yaml {
        let yaml = catalog.to_yaml()?;
        Ok(([(http::header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
    } else {
        Ok(Json(catalog).into_response())
    }
}

/// List base catalogs, by name, a page at a time.
#[utoipa::path(get, path = "/catalogs/base", tag = "catalogs", operation_id = "list_base_catalogs",
    params(PageQuery),
    responses((status = 200, body = BaseCatalogPage), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_base(
    State(s): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<BaseCatalogPage>, Error> {
    caller.require_admin()?;
    let store = s.services.catalogs.clone();
    let list = blocking(move || Ok(store.list_base()?)).await?;
    let all = list
        .into_iter()
        .map(|b| BaseCatalogInfo {
            name: b.name,
            priority: b.priority,
        })
        .collect();
    let (items, next_cursor) = paginate(all, |b| &b.name, &page)?;
    Ok(Json(BaseCatalogPage { items, next_cursor }))
}

/// One base catalog (priority in the `X-Catalog-Priority` header).
#[utoipa::path(get, path = "/catalogs/base/{name}", operation_id = "get_base_catalog", tag = "catalogs",
    params(("name" = String, Path, description = "catalog name")),
    responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_base(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, Error> {
    caller.require_admin()?;
    let store = s.services.catalogs.clone();
    let (info, catalog) = blocking(move || Ok(store.get_base(&name)?)).await?;
    let mut resp = catalog_response(&catalog, headers.get(http::header::ACCEPT))?;
    resp.headers_mut()
        .insert("x-catalog-priority", http::HeaderValue::from(info.priority));
    Ok(resp)
}

async fn put_base_inner(
    s: &AppState,
    name: String,
    catalog: Catalog,
    priority: Option<i64>,
) -> Result<BaseCatalogInfo, Error> {
    let store = s.services.catalogs.clone();
    blocking(move || {
        let priority = store.put_base(&name, &catalog, priority)?;
        Ok(BaseCatalogInfo { name, priority })
    })
    .await
}

/// Create or replace a base catalog (body: the catalog, YAML or JSON). Like every `PUT` of
/// this API it answers 200 with what is now stored, whether it created or replaced.
#[utoipa::path(put, path = "/catalogs/base/{name}", tag = "catalogs", operation_id = "put_base_catalog",
    params(("name" = String, Path, description = "catalog name"), PriorityQuery),
    request_body(content = Object, content_type = "application/json", description = "a docker/mcp-gateway catalog (application/yaml also accepted)"),
    responses((status = 200, body = BaseCatalogInfo), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn put_base(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PriorityQuery>,
    body: DocBody,
) -> Result<Json<BaseCatalogInfo>, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::base_catalog(&name);
    let result = async {
        caller.require_admin()?;
        let catalog = parse_validated(&body.bytes, body.format)?;
        put_base_inner(&s, name, catalog, q.priority).await
    }
    .await;
    permit
        .record(&s, Action::BaseCatalogPut, target, result)
        .await
        .map(Json)
}

/// Create a base catalog from the seed portal's multipart form (`name`, `file`, `priority`)
/// or from a YAML/JSON body (`?name=` or the catalog's own `name`). A name that exists is a
/// 409 (`PUT /catalogs/base/{name}` replaces); 201 names the new catalog in `Location`.
#[utoipa::path(post, path = "/catalogs/base", tag = "catalogs", operation_id = "create_base_catalog",
    params(PriorityQuery),
    request_body(content = Object, content_type = "application/json", description = "a catalog (application/yaml and multipart/form-data with name, file, priority also accepted)"),
    responses((status = 201, body = BaseCatalogInfo, headers(("Location" = String, description = "the new catalog's URL"))), (status = 400), (status = 401), (status = 403), (status = 409), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn post_base(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<PriorityQuery>,
    req: Request,
) -> Result<Response, Error> {
    let permit = admit(&s, &caller)?;
    let mut target_name = q.name.clone().unwrap_or_default();
    let result = async {
        caller.require_admin()?;
        let (name, catalog, priority) = parse_post(&s, q, req).await?;
        target_name = name.clone();
        let store = s.services.catalogs.clone();
        blocking(
            move || match store.create_base(&name, &catalog, priority)? {
                Some(priority) => Ok(BaseCatalogInfo { name, priority }),
                None => Err(Error::Conflict(format!(
                    "base catalog `{name}` exists; PUT /catalogs/base/{name} replaces it"
                ))),
            },
        )
        .await
    }
    .await;
    let info = permit
        .record(
            &s,
            Action::BaseCatalogPut,
            Target::base_catalog(&target_name),
            result,
        )
        .await?;
    // Names are validated ([a-z0-9_.-]), so the path needs no escaping.
    let location = format!("/api/v1/catalogs/base/{}", info.name);
    let mut resp = (StatusCode::CREATED, Json(info)).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn parse_post(
    s: &AppState,
    q: PriorityQuery,
    req: Request,
) -> Result<(String, Catalog, Option<i64>), Error> {
    let ct = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if ct.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, s)
            .await
            .map_err(|e| Error::BadRequest(format!("multipart form: {e}")))?;
        let (mut name, mut file, mut priority) = (q.name, None, q.priority);
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| Error::BadRequest(format!("multipart form: {e}")))?
        {
            let field_name = field.name().unwrap_or("").to_string();
            let file_format = field.file_name().map(|f| {
                if f.ends_with(".json") {
                    Format::Json
                } else {
                    Format::Yaml
                }
            });
            let data = field
                .bytes()
                .await
                .map_err(|e| Error::BadRequest(format!("multipart field `{field_name}`: {e}")))?;
            match field_name.as_str() {
                "name" => name = Some(String::from_utf8_lossy(&data).trim().to_string()),
                "priority" => {
                    let p = String::from_utf8_lossy(&data);
                    priority = Some(p.trim().parse().map_err(|_| {
                        Error::BadRequest(format!("priority `{}` is not an integer", p.trim()))
                    })?);
                }
                "file" => file = Some((data, file_format.unwrap_or(Format::Yaml))),
                _ => {}
            }
        }
        let (bytes, format) =
            file.ok_or_else(|| Error::BadRequest("the form has no `file` field".into()))?;
        let catalog = parse_validated(&bytes, format)?;
        let name = name
            .or_else(|| catalog.name.clone())
            .ok_or_else(|| Error::BadRequest("the form has no `name` field".into()))?;
        return Ok((name, catalog, priority));
    }
    let format = format_of(Some(&ct)).ok_or_else(|| {
        Error::UnsupportedMediaType(
            "send application/json, application/yaml or multipart/form-data".into(),
        )
    })?;
    let bytes = read_capped(req, s.max_body).await?;
    let catalog = parse_validated(&bytes, format)?;
    let name = q.name.or_else(|| catalog.name.clone()).ok_or_else(|| {
        Error::BadRequest("name the catalog with ?name= or its `name` field".into())
    })?;
    Ok((name, catalog, q.priority))
}

/// Delete a base catalog.
#[utoipa::path(delete, path = "/catalogs/base/{name}", operation_id = "delete_base_catalog", tag = "catalogs",
    params(("name" = String, Path, description = "catalog name")),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 429), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_base(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::base_catalog(&name);
    let result = async {
        caller.require_admin()?;
        let store = s.services.catalogs.clone();
        blocking(move || Ok(store.delete_base(&name)?)).await
    }
    .await;
    permit
        .record(&s, Action::BaseCatalogDelete, target, result)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

/// List team catalogs, by name, a page at a time.
#[utoipa::path(get, path = "/catalogs/teams", tag = "catalogs", operation_id = "list_team_catalogs",
    params(PageQuery),
    responses((status = 200, body = TeamPage), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_teams(
    State(s): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<TeamPage>, Error> {
    caller.require_admin()?;
    let store = s.services.catalogs.clone();
    let all = blocking(move || Ok(store.list_teams()?)).await?;
    let (items, next_cursor) = paginate(all, |t| t, &page)?;
    Ok(Json(TeamPage { items, next_cursor }))
}

/// One team catalog (admins, and members of the team).
#[utoipa::path(get, path = "/catalogs/teams/{team}", operation_id = "get_team_catalog", tag = "catalogs",
    params(("team" = String, Path, description = "team name")),
    responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, Error> {
    if !caller.0.teams.contains(&team) {
        caller.require_admin()?;
    }
    let store = s.services.catalogs.clone();
    let catalog: Arc<Catalog> = blocking(move || Ok(store.get_team(&team)?)).await?;
    catalog_response(&catalog, headers.get(http::header::ACCEPT))
}

/// Create or replace a team catalog; 200 with what is now stored, like every `PUT`.
#[utoipa::path(put, path = "/catalogs/teams/{team}", tag = "catalogs", operation_id = "put_team_catalog",
    params(("team" = String, Path, description = "team name")),
    request_body(content = Object, content_type = "application/json", description = "a catalog (application/yaml also accepted)"),
    responses((status = 200, body = TeamCatalogInfo), (status = 400), (status = 401), (status = 403), (status = 429), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn put_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    body: DocBody,
) -> Result<Json<TeamCatalogInfo>, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::team_catalog(&team);
    let result = async {
        caller.require_admin()?;
        let catalog = parse_validated(&body.bytes, body.format)?;
        let store = s.services.catalogs.clone();
        blocking(move || {
            store.put_team(&team, &catalog)?;
            let servers = catalog.server_names().map(str::to_string).collect();
            Ok(TeamCatalogInfo { team, servers })
        })
        .await
    }
    .await;
    permit
        .record(&s, Action::TeamCatalogPut, target, result)
        .await
        .map(Json)
}

/// Delete a team catalog.
#[utoipa::path(delete, path = "/catalogs/teams/{team}", operation_id = "delete_team_catalog", tag = "catalogs",
    params(("team" = String, Path, description = "team name")),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 429), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::team_catalog(&team);
    let result = async {
        caller.require_admin()?;
        let store = s.services.catalogs.clone();
        blocking(move || Ok(store.delete_team(&team)?)).await
    }
    .await;
    permit
        .record(&s, Action::TeamCatalogDelete, target, result)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}
