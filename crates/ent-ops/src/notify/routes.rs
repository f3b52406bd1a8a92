//! HTTP routes of the outbox.

use super::NotifyState;
use super::{OutboxFilter, OutboxMessage};
use axum::extract::{Path, State};
use axum::Json;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::ApiQuery;
use ent_kernel::store::Page;

ent_kernel::route_table!(NotifyState, "courriels", |api| vec![
    api.get(
        "/api/v1/outbox",
        "Lister la file d'envoi des courriels (filtre par statut)",
        &ent_platform::identity::authz::OUTBOX_READ,
        list,
    )
    .pages::<OutboxFilter, OutboxMessage>(),
    api.post(
        "/api/v1/outbox/{id}/retry",
        "Réessayer tout de suite un courriel en attente, en échec, ou bloqué en envoi (bail expiré)",
        &ent_platform::identity::authz::OUTBOX_RETRY,
        retry,
    )
    .ok::<OutboxMessage>(),
]);

async fn list(
    State(state): State<NotifyState>,
    ApiQuery(filter): ApiQuery<OutboxFilter>,
) -> Result<Json<Page<OutboxMessage>>, Problem> {
    Ok(Json(super::list(&state.store, &filter).await?))
}

async fn retry(
    State(state): State<NotifyState>,
    caller: ent_platform::identity::Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboxMessage>, Problem> {
    Ok(Json(super::retry(&state.store, &caller.actor, &id, state.clock.now()).await?))
}
