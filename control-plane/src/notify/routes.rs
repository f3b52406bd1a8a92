//! HTTP routes of the outbox.

use super::NotifyState;
use super::{OutboxFilter, OutboxMessage};
use crate::error::Problem;
use crate::http::extract::ApiQuery;
use crate::http::ApiRoute;
use crate::store::Page;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::Json;

pub fn routes<S>() -> Vec<ApiRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    NotifyState: axum::extract::FromRef<S>,
{
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/v1/outbox",
            "courriels",
            "Lister la file d'envoi des courriels (filtre par statut)",
            &crate::identity::authz::OUTBOX_READ,
            get(list),
        )
        .query::<OutboxFilter>()
        .responds::<Page<OutboxMessage>>(StatusCode::OK),
        ApiRoute::new(
            Method::POST,
            "/api/v1/outbox/{id}/retry",
            "courriels",
            "Réessayer tout de suite un courriel en attente, en échec, ou bloqué en envoi (bail expiré)",
            &crate::identity::authz::OUTBOX_RETRY,
            post(retry),
        )
        .responds::<OutboxMessage>(StatusCode::OK),
    ]
}

async fn list(
    State(state): State<NotifyState>,
    ApiQuery(filter): ApiQuery<OutboxFilter>,
) -> Result<Json<Page<OutboxMessage>>, Problem> {
    Ok(Json(super::list(&state.store, &filter).await?))
}

async fn retry(
    State(state): State<NotifyState>,
    caller: crate::identity::Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboxMessage>, Problem> {
    Ok(Json(super::retry(&state.store, &caller.actor, &id, state.clock.now()).await?))
}
