//! `/api/v1/tenants`: the DAN for its académie's tenants, a collectivité for
//! those it funds, a chef d'établissement reads its own.

use super::{
    annex_warnings, apply, create_or_same, destruction, events_read_by, market_warnings, page_tenants, read_by,
    transition, Applied, EntTenant, Move, Status, Tenant, TenantEvent, TenantFilter,
};
use crate::tenants::TenantsState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_kernel::clock::today_in_france;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::route_table;
use ent_kernel::store::Page;
use ent_platform::identity::authz::{Call, Op, TENANTS_READ, TENANTS_TRANSITION, TENANTS_WRITE};
use ent_platform::identity::{Actor, Caller};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

route_table!(TenantsState, "tenants", |api| vec![
    api.get("/api/v1/tenants", "Lister les tenants de son périmètre", &TENANTS_READ, list)
        .pages::<TenantFilter, Tenant>(),
    api.post(
        "/api/v1/tenants",
        "Créer un tenant depuis un document EntTenant (renvoyé à l'identique : inchangé)",
        &TENANTS_WRITE,
        apply_doc
    )
    .json_body::<EntTenant>()
    .ok_versioned::<ApplyResult>()
    .created::<ApplyResult>(),
    api.get("/api/v1/tenants/{slug}", "Consulter un tenant", &TENANTS_READ, show).ok_versioned::<Tenant>(),
    api.put("/api/v1/tenants/{slug}", "Remplacer la spécification (If-Match requis)", &TENANTS_WRITE, replace)
        .if_match_update::<EntTenant, ApplyResult>(),
    api.post("/api/v1/tenants/{slug}/transition", "Faire avancer le cycle de vie", &TENANTS_TRANSITION, move_to)
        .json_body::<TransitionBody>()
        .ok_versioned::<Moved>(),
    api.get("/api/v1/tenants/{slug}/events", "Événements du tenant", &TENANTS_READ, tenant_events)
        .ok::<Vec<TenantEvent>>(),
    api.get(
        "/api/v1/tenants/{slug}/destruction",
        "Télécharger l'attestation de destruction des données d'un tenant purgé (HTML, tel que conservé)",
        &TENANTS_READ,
        destruction_document
    )
    .produces(StatusCode::OK, &["text/html; charset=utf-8"]),
    api.get("/api/v1/tenant-schema", "Schéma JSON du document EntTenant", &TENANTS_READ, schema)
        .ok::<serde_json::Value>(),
]);

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplyResult {
    /// `created`, `configured` or `unchanged`.
    pub result: Applied,
    pub tenant: Tenant,
    /// In French: the accord-cadre of a groupement de commandes that binds it (its titulaire
    /// taken as éditeur when `spec.vendor` is absent, or another éditeur named), then each
    /// service of the tenant that the signed Art. 28 annex of a convention in force covering it
    /// does not list (an avenant must add it), the convention named to whom reads it.
    pub warnings: Vec<String>,
}

/// The tenant after a lifecycle move, with the warnings of its services outside a signed annex.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Moved {
    #[serde(flatten)]
    pub tenant: Tenant,
    /// As [`ApplyResult::warnings`].
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    pub to: Status,
    /// Why (one line, 500 characters at most): required to move to `suspended` or
    /// `decommissioning`. In the tenant's event, the audit record and the e-mail to the people
    /// concerned.
    pub reason: Option<String>,
    /// Admin only: provision without an active convention, for this reason.
    pub override_reason: Option<String>,
}

impl TransitionBody {
    /// The move the body asks for.
    fn step(&self) -> Move<'_> {
        Move { to: self.to, reason: self.reason.as_deref(), override_reason: self.override_reason.as_deref() }
    }
}

/// The tenant of the path, if the caller may act on its organisation.
async fn find(state: &TenantsState, caller: &Caller, slug: &str) -> Result<Tenant, Problem> {
    // Out of scope and unreadable: the 404 of a slug that names nothing, in the same words,
    // after the same work (`find_for`: one query over what the caller reads).
    super::find_for(&state.store, caller, slug, || Problem::not_found(format!("aucun tenant « {slug} »"))).await
}

async fn list(
    State(state): State<TenantsState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<TenantFilter>,
) -> Result<Json<Page<Tenant>>, Problem> {
    let mut page = page_tenants(&state.store, &filter, super::read_scope(&state.store, &caller.actor).await?).await?;
    read_by(&state.store, &caller.actor, &mut page.items).await?;
    Ok(Json(page))
}

async fn apply_doc(
    Call { state, caller }: Call<TenantsState>,
    ApiJson(doc): ApiJson<EntTenant>,
) -> Result<Response, Problem> {
    let (result, tenant) = create_or_same(&state, &caller.actor, &doc).await?;
    if result != Applied::Unchanged {
        crate::provisioning::reconcile::reconcile_soon(&state.provisioning(), &tenant.slug);
    }
    let status = if result == Applied::Created { StatusCode::CREATED } else { StatusCode::OK };
    let version = tenant.version;
    let warnings = apply_warnings(&state, &caller.actor, &tenant).await?;
    let tenant = shown(&state, &caller, tenant).await?;
    Ok(Versioned::new(status, version, ApplyResult { result, tenant, warnings }).into_response())
}

/// The warnings of a document applied: the accord-cadre that binds the tenant
/// ([`market_warnings`]), then its services outside a signed annex ([`annex_warnings`]); the
/// console's tenant page shows the same.
async fn apply_warnings(state: &TenantsState, actor: &Actor, tenant: &Tenant) -> Result<Vec<String>, Problem> {
    let today = today_in_france(state.clock.now());
    let mut warnings = market_warnings(&state.store, tenant, today).await?;
    warnings.extend(annex_warnings(state, actor, tenant).await?);
    Ok(warnings)
}

async fn show(Op { state, caller, key: slug }: Op<TenantsState>) -> Result<Response, Problem> {
    let tenant = shown(&state, &caller, find(&state, &caller, &slug).await?).await?;
    let version = tenant.version;
    Ok(Versioned::new(StatusCode::OK, version, tenant).into_response())
}

/// `tenant` as `caller` reads it ([`read_by`]: the people it names masked where it does not read them).
async fn shown(state: &TenantsState, caller: &Caller, mut tenant: Tenant) -> Result<Tenant, Problem> {
    read_by(&state.store, &caller.actor, std::slice::from_mut(&mut tenant)).await?;
    Ok(tenant)
}

async fn replace(
    Op { state, caller, key: slug }: Op<TenantsState>,
    if_match: IfMatchHeader,
    ApiJson(doc): ApiJson<EntTenant>,
) -> Result<Response, Problem> {
    let current = find(&state, &caller, &slug).await?;
    if doc.metadata.name != slug {
        return Err(Problem::invalid_field("metadata.name", "le nom du document diffère de celui de l'adresse"));
    }
    let version = if_match.version(current.version)?;
    let (result, tenant) = apply(&state, &caller.actor, &doc, Some(version)).await?;
    if result != Applied::Unchanged {
        crate::provisioning::reconcile::reconcile_soon(&state.provisioning(), &tenant.slug);
    }
    let version = tenant.version;
    let warnings = apply_warnings(&state, &caller.actor, &tenant).await?;
    let tenant = shown(&state, &caller, tenant).await?;
    Ok(Versioned::new(StatusCode::OK, version, ApplyResult { result, tenant, warnings }).into_response())
}

async fn move_to(
    Op { state, caller, key: slug }: Op<TenantsState>,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Response, Problem> {
    let tenant = find(&state, &caller, &slug).await?;
    super::declared_elsewhere(&tenant, None)?;
    let moved = transition(&state, &caller.actor, &tenant, body.step()).await?;
    crate::provisioning::reconcile::reconcile_soon(&state.provisioning(), &moved.slug);
    let version = moved.version;
    let warnings = annex_warnings(&state, &caller.actor, &moved).await?;
    let moved = shown(&state, &caller, moved).await?;
    Ok(Versioned::new(StatusCode::OK, version, Moved { tenant: moved, warnings }).into_response())
}

async fn tenant_events(Op { state, caller, key: slug }: Op<TenantsState>) -> Result<Json<Vec<TenantEvent>>, Problem> {
    let tenant = find(&state, &caller, &slug).await?;
    Ok(Json(events_read_by(&state.store, &caller.actor, &tenant.id).await?))
}

/// The attestation of destruction of a purged tenant, as stored at its purge, with its SHA-256
/// in `X-Document-SHA256`; a tenant not purged has none (404, in the words of a slug naming none
/// for one out of scope).
async fn destruction_document(Op { state, caller, key: slug }: Op<TenantsState>) -> Result<Response, Problem> {
    let tenant = find(&state, &caller, &slug).await?;
    let missing = || Problem::not_found(format!("aucune attestation de destruction pour le tenant « {slug} »"));
    destruction::document(&state.store, &tenant.id).await?.ok_or_else(missing)
}

async fn schema() -> Json<serde_json::Value> {
    Json(super::json_schema())
}
