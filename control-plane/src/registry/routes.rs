//! HTTP routes of the registry.

use super::import::{import_annuaire, ImportOptions, ImportReport};
use super::manage::{self, NewOrg, OrgPatch};
use super::queries::{self, OrgFilter, Page};
use super::{Org, OrgKind, OrgRef};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::{etag, if_match_version, ApiRoute, AppState, Caller};
use crate::error::{Problem, ProblemKind};
use crate::identity::authz::{
    forbidden, Scope, IMPORTS_ANNUAIRE, ORGS_CREATE, ORGS_MEMBERS_WRITE, ORGS_READ, ORGS_UPDATE,
};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/v1/orgs",
            "registre",
            "Lister et rechercher les organisations de son périmètre",
            &ORGS_READ,
            get(list),
        )
        .query::<OrgFilter>()
        .responds::<Page<Org>>(StatusCode::OK),
        ApiRoute::new(
            Method::POST,
            "/api/v1/orgs",
            "registre",
            "Créer un EPCI, syndicat mixte, éditeur ou hébergeur",
            &ORGS_CREATE,
            post(create),
        )
        .idempotent()
        .json_body::<NewOrg>()
        .responds::<Org>(StatusCode::CREATED),
        ApiRoute::new(
            Method::GET,
            "/api/v1/orgs/{key}",
            "registre",
            "Consulter une organisation (id, code, ou type:code)",
            &ORGS_READ,
            get(show),
        )
        .responds::<OrgDetail>(StatusCode::OK),
        ApiRoute::new(
            Method::PATCH,
            "/api/v1/orgs/{key}",
            "registre",
            "Modifier le nom ou le contact d'une organisation (If-Match requis)",
            &ORGS_UPDATE,
            patch(update),
        )
        .json_body::<OrgPatch>()
        .responds::<Org>(StatusCode::OK),
        ApiRoute::new(
            Method::GET,
            "/api/v1/orgs/{key}/covers",
            "registre",
            "Organisations couvertes par une organisation",
            &ORGS_READ,
            get(covers),
        )
        .query::<PageQuery>()
        .responds::<Page<Org>>(StatusCode::OK),
        ApiRoute::new(
            Method::GET,
            "/api/v1/orgs/{key}/members",
            "registre",
            "Communes membres d'un EPCI ou syndicat mixte",
            &ORGS_READ,
            get(members),
        )
        .responds::<Vec<Member>>(StatusCode::OK),
        ApiRoute::new(
            Method::PUT,
            "/api/v1/orgs/{key}/members/{commune}",
            "registre",
            "Ajouter une commune à un EPCI ou syndicat mixte",
            &ORGS_MEMBERS_WRITE,
            put(add_member),
        )
        .json_body::<MembershipBody>()
        .responds::<Vec<Member>>(StatusCode::OK),
        ApiRoute::new(
            Method::DELETE,
            "/api/v1/orgs/{key}/members/{commune}",
            "registre",
            "Retirer une commune d'un EPCI ou syndicat mixte",
            &ORGS_MEMBERS_WRITE,
            delete(remove_member),
        ),
        ApiRoute::new(
            Method::POST,
            "/api/v1/imports/annuaire",
            "registre",
            "Importer l'export CSV de l'Annuaire de l'éducation (lignes de son périmètre)",
            &IMPORTS_ANNUAIRE,
            post(import),
        )
        .query::<ImportQuery>()
        .csv_body()
        .responds::<ImportReport>(StatusCode::OK),
    ]
}

/// An organisation with the organisations that cover it and, for an
/// établissement, the collectivité that funds its ENT.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrgDetail {
    #[serde(flatten)]
    pub org: Org,
    pub covering_parents: Vec<OrgRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding_collectivite: Option<OrgRef>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Member {
    #[serde(flatten)]
    pub commune: OrgRef,
    /// The commune delegated its ENT (and its funding) to the group.
    pub ent_delegated: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    #[serde(default)]
    pub ent_delegated: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ImportQuery {
    /// Report what would change without writing.
    #[serde(default)]
    pub dry_run: bool,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<OrgFilter>,
) -> Result<Json<Page<Org>>, Problem> {
    Ok(Json(queries::list_orgs(&state.store, &filter, caller.scope().condition()).await?))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewOrg>,
) -> Result<(StatusCode, Response), Problem> {
    if !caller.actor.is_admin() {
        // A DAN creates the groups of its académie: their département must be in its scope.
        if !new.kind.groups_communes() {
            return Err(forbidden("seul un administrateur enregistre les éditeurs et hébergeurs"));
        }
        let code = new.departement.as_deref().ok_or_else(|| {
            Problem::invalid_field(
                "departement",
                "précisez le département du groupement (il situe le groupement dans votre périmètre)",
            )
        })?;
        let code =
            super::codes::parse_departement(code).map_err(|e| Problem::invalid_field("departement", e.to_string()))?;
        let departement = queries::get_by_code(&state.store, OrgKind::Departement, &code)
            .await?
            .ok_or_else(|| Problem::invalid_field("departement", format!("département {code} absent du registre")))?;
        caller.require(&state.store, &departement).await?;
    }
    let org = manage::create_org(&state.store, &caller.actor, new, state.clock.now()).await?;
    Ok((StatusCode::CREATED, org_response(org)))
}

fn org_response(org: Org) -> Response {
    let tag = etag(org.version);
    let mut response = Json(org).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

pub async fn org_detail(store: &crate::store::Store, org: Org) -> Result<OrgDetail, Problem> {
    let covering_parents = queries::covering_parents(store, &org).await?;
    let funding_collectivite = queries::funding_collectivite(store, &org).await?.map(|o| o.as_ref());
    Ok(OrgDetail { org, covering_parents, funding_collectivite })
}

/// Resolves the organisation of a path and checks the caller may act on it.
async fn target(state: &AppState, caller: &Caller, key: &str) -> Result<Org, Problem> {
    let org = queries::resolve_org(&state.store, key).await?;
    caller.require(&state.store, &org).await?;
    Ok(org)
}

async fn show(State(state): State<AppState>, caller: Caller, Path(key): Path<String>) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let tag = etag(org.version);
    let mut response = Json(org_detail(&state.store, org).await?).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OrgPatch>,
) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let version = if_match_version(&headers, org.version)?;
    let updated = manage::update_org(&state.store, &caller.actor, &org, version, body, state.clock.now()).await?;
    Ok(org_response(updated))
}

async fn covers(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Org>>, Problem> {
    let org = target(&state, &caller, &key).await?;
    let scope = caller.scope().condition();
    Ok(Json(queries::covers(&state.store, &org, scope, page.cursor.as_deref(), page.limit).await?))
}

async fn member_list(store: &crate::store::Store, group: &Org) -> Result<Vec<Member>, Problem> {
    let members = queries::members_of_group(store, &group.id).await?;
    Ok(members.into_iter().map(|(commune, ent_delegated)| Member { commune, ent_delegated }).collect())
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Vec<Member>>, Problem> {
    let group = target(&state, &caller, &key).await?;
    if !group.kind.groups_communes() {
        return Err(Problem::not_found(format!("{} n'est ni un EPCI ni un syndicat mixte", group.name)));
    }
    Ok(Json(member_list(&state.store, &group).await?))
}

/// The commune of a membership path: an INSEE code means the commune, not a DSDEN.
async fn resolve_commune(store: &crate::store::Store, key: &str) -> Result<Org, Problem> {
    match super::codes::parse_insee_commune(key) {
        Ok(code) => queries::resolve_org(store, &format!("commune:{code}")).await,
        Err(_) => queries::resolve_org(store, key).await,
    }
}

async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, commune)): Path<(String, String)>,
    ApiJson(body): ApiJson<MembershipBody>,
) -> Result<Json<Vec<Member>>, Problem> {
    let group = target(&state, &caller, &key).await?;
    let commune = resolve_commune(&state.store, &commune).await?;
    manage::set_member(&state.store, &caller.actor, &group, &commune, body.ent_delegated, state.clock.now()).await?;
    Ok(Json(member_list(&state.store, &group).await?))
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((key, commune)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let group = target(&state, &caller, &key).await?;
    let commune = resolve_commune(&state.store, &commune).await?;
    manage::remove_member(&state.store, &caller.actor, &group, &commune, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The académies whose rows a caller may import; `None` for everything (admin).
fn importable_academies(caller: &Caller) -> Option<HashSet<String>> {
    match caller.scope() {
        Scope::All => None,
        Scope::Orgs(orgs) => Some(
            orgs.into_iter()
                .filter_map(|o| match o.kind {
                    OrgKind::Academie => Some(o.code),
                    _ => o.academie_code,
                })
                .collect(),
        ),
    }
}

/// Streams the CSV body into the importer: the upload is never held whole in memory.
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportReport>, Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "envoyez le fichier de l'annuaire en text/csv (séparateur point-virgule)",
        ));
    }
    let limited = http_body_util::Limited::new(body, state.config.server.max_body_bytes);
    let stream =
        limited.into_data_stream().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let options = ImportOptions {
        dry_run: query.dry_run,
        batch_size: state.config.import.batch_size,
        academies: importable_academies(&caller),
    };
    let report = import_annuaire(&state.store, &caller.actor, reader, options, state.clock.now()).await?;
    Ok(Json(report))
}
