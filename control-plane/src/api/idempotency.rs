//! `Idempotency-Key` on POST creations: the same key and body replay the first
//! response; the same key with another body answers 422; a request still in
//! flight with that key answers 409.

use super::{AppState, Caller, JSON_BODY_LIMIT};
use crate::error::{Problem, ProblemKind};
use crate::store::timestamp;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::Row;

pub const HEADER: &str = "idempotency-key";

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(state, req, next).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn run(state: AppState, req: Request, next: Next) -> Result<Response, Problem> {
    let Some(key) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return Ok(next.run(req).await);
    };
    if key.is_empty() || key.chars().count() > 200 {
        return Err(Problem::invalid_field("Idempotency-Key", "clé de 1 à 200 caractères"));
    }
    let actor = req.extensions().get::<Caller>().map(|c| c.actor.name.clone()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, JSON_BODY_LIMIT).await.map_err(|_| {
        Problem::new(ProblemKind::PayloadTooLarge, "le corps de la requête dépasse la taille autorisée")
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    let store = &state.store;
    // A first request that fails releases its key: between our failed claim and
    // our read, the key may be free again, so claim it once more.
    let mut attempts = 0;
    while !claim(&state, &actor, &key, &request_hash).await? {
        if let Some(response) = replay(&state, &actor, &key, &request_hash).await? {
            return Ok(response);
        }
        attempts += 1;
        if attempts == 3 {
            return Err(Problem::conflict("une requête avec cette clé d'idempotence est en cours"));
        }
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if !response.status().is_success() {
        sqlx::query("DELETE FROM idempotency_keys WHERE actor = $1 AND idem_key = $2")
            .bind(&actor)
            .bind(&key)
            .execute(store.pool())
            .await?;
        return Ok(response);
    }
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(|e| anyhow::anyhow!("response body: {e}"))?;
    sqlx::query("UPDATE idempotency_keys SET status = $1, response = $2 WHERE actor = $3 AND idem_key = $4")
        .bind(i64::from(status.as_u16()))
        .bind(stored_response(&parts.headers, &body))
        .bind(&actor)
        .bind(&key)
        .execute(store.pool())
        .await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Records the key as in flight; false when it is already taken.
async fn claim(state: &AppState, actor: &str, key: &str, request_hash: &str) -> Result<bool, Problem> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (actor, idem_key, request_hash, status, created_at) VALUES ($1, $2, $3, 0, $4) \
         ON CONFLICT (actor, idem_key) DO NOTHING",
    )
    .bind(actor)
    .bind(key)
    .bind(request_hash)
    .bind(timestamp(state.clock.now()))
    .execute(state.store.pool())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The stored answer to a taken key; `None` when the key was released meanwhile.
async fn replay(state: &AppState, actor: &str, key: &str, request_hash: &str) -> Result<Option<Response>, Problem> {
    let row =
        sqlx::query("SELECT request_hash, status, response FROM idempotency_keys WHERE actor = $1 AND idem_key = $2")
            .bind(actor)
            .bind(key)
            .fetch_optional(state.store.pool())
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.get::<String, _>("request_hash") != request_hash {
        return Err(Problem::new(
            ProblemKind::IdempotencyKeyReused,
            "cette clé d'idempotence a déjà servi pour une autre requête",
        ));
    }
    let status: i64 = row.get("status");
    if status == 0 {
        return Err(Problem::conflict("une requête avec cette clé d'idempotence est en cours"));
    }
    let stored: String = row.try_get::<Option<String>, _>("response").ok().flatten().unwrap_or_default();
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let (headers, body) = replayed_response(&stored);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}

/// Headers of the first response that a replay repeats.
const REPLAYED_HEADERS: [header::HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// Marks a stored response that carries its headers (older rows hold the body only).
const ENVELOPE: &str = "entcp_replay";

/// The first response as stored: its replayed headers and its body, in one JSON text.
fn stored_response(headers: &HeaderMap, body: &[u8]) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str().to_string(), headers.get(name)?.to_str().ok()?.into())))
        .collect();
    serde_json::json!({ ENVELOPE: 1, "headers": kept, "body": String::from_utf8_lossy(body) }).to_string()
}

/// The headers and body of a stored response.
fn replayed_response(stored: &str) -> (Vec<(HeaderName, HeaderValue)>, String) {
    let Ok(serde_json::Value::Object(envelope)) = serde_json::from_str::<serde_json::Value>(stored) else {
        return (Vec::new(), stored.to_string());
    };
    if !envelope.contains_key(ENVELOPE) {
        return (Vec::new(), stored.to_string());
    }
    let headers = envelope
        .get("headers")
        .and_then(|h| h.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            Some((HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_str(value.as_str()?).ok()?))
        })
        .collect();
    let body = envelope.get("body").and_then(|b| b.as_str()).unwrap_or_default().to_string();
    (headers, body)
}
