//! `GET /api/v1/audit`: the log, newest first, scoped like everything else.

use super::AuditState;
use super::{list, AuditFilter, AuditRecord};
use crate::identity::authz::AUDIT_READ;
use crate::identity::Caller;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use axum::Json;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::ApiQuery;
use ent_kernel::http::ApiRoute;
use ent_kernel::store::Page;

pub fn routes<S>() -> Vec<ApiRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    AuditState: axum::extract::FromRef<S>,
{
    vec![ApiRoute::new(
        Method::GET,
        "/api/v1/audit",
        "audit",
        "Consulter le journal d'audit",
        &AUDIT_READ,
        get(audit_log),
    )
    .query::<AuditFilter>()
    .responds::<Page<AuditRecord>>(StatusCode::OK)]
}

async fn audit_log(
    State(state): State<AuditState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    Ok(Json(list(&state.store, &filter, caller.scope().condition()).await?))
}
