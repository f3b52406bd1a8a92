//! HTTP routes of the outbox.

use super::preferences::{self, MailChoices, MailPreferences};
use super::NotifyState;
use super::{OutboxFilter, OutboxMessage};
use axum::extract::{Path, State};
use axum::Json;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::route_table;
use ent_kernel::store::Page;
use ent_platform::identity::authz::{OUTBOX_READ, OUTBOX_RETRY, SELF_PREFERENCES, SELF_READ};
use ent_platform::identity::Caller;

route_table!(NotifyState, "courriels", |api| vec![
    api.get("/api/v1/outbox", "Lister la file d'envoi des courriels (filtre par statut)", &OUTBOX_READ, list)
        .pages::<OutboxFilter, OutboxMessage>(),
    api.post(
        "/api/v1/outbox/{id}/retry",
        "Réessayer tout de suite un courriel en attente, en échec, ou bloqué en envoi (bail expiré)",
        &OUTBOX_RETRY,
        retry,
    )
    .ok::<OutboxMessage>(),
    api.get(
        "/api/v1/me/notification-preferences",
        "Mes préférences de courriel : catégories facultatives et courriels toujours envoyés",
        &SELF_READ,
        my_preferences,
    )
    .ok::<MailPreferences>(),
    api.put(
        "/api/v1/me/notification-preferences",
        "Choisir les catégories de courriels reçues (les catégories absentes restent inchangées)",
        &SELF_PREFERENCES,
        set_my_preferences,
    )
    .json_body::<MailChoices>()
    .ok::<MailPreferences>(),
]);

/// The signed-in user of the call; a token without a user (the operator) has no preferences.
fn user_of(caller: &Caller) -> Result<&str, Problem> {
    caller.actor.user_id.as_deref().ok_or_else(|| Problem::not_found("aucun utilisateur pour ce jeton"))
}

async fn my_preferences(State(state): State<NotifyState>, caller: Caller) -> Result<Json<MailPreferences>, Problem> {
    Ok(Json(preferences::preferences_of(&state.store, user_of(&caller)?).await?))
}

async fn set_my_preferences(
    State(state): State<NotifyState>,
    caller: Caller,
    ApiJson(body): ApiJson<MailChoices>,
) -> Result<Json<MailPreferences>, Problem> {
    let user = user_of(&caller)?;
    preferences::set(&state.store, &caller.actor, user, &body.choices(), state.clock.now()).await?;
    Ok(Json(preferences::preferences_of(&state.store, user).await?))
}

async fn list(
    State(state): State<NotifyState>,
    ApiQuery(filter): ApiQuery<OutboxFilter>,
) -> Result<Json<Page<OutboxMessage>>, Problem> {
    Ok(Json(super::list(&state.store, &filter).await?))
}

async fn retry(
    State(state): State<NotifyState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboxMessage>, Problem> {
    Ok(Json(super::retry(&state.store, &caller.actor, &id, state.clock.now()).await?))
}
