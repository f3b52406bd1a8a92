//! `GET /api/v1/audit`: the log, newest first, scoped like everything else, and the records of
//! a kind whose register is read more narrowly as that register is ([`super::KindRules`]).

use super::AuditState;
use super::{list, AuditFilter, AuditRecord};
use crate::identity::authz::{Call, AUDIT_READ};
use axum::Json;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::ApiQuery;
use ent_kernel::route_table;
use ent_kernel::store::Page;

route_table!(AuditState, "audit", |api| vec![api
    .get("/api/v1/audit", "Consulter le journal d'audit", &AUDIT_READ, audit_log)
    .pages::<AuditFilter, AuditRecord>()]);

async fn audit_log(
    Call { state, caller }: Call<AuditState>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    let reader = state.rules.reader(&caller.actor, caller.scope().condition());
    Ok(Json(list(&state.store, &filter, reader).await?))
}
