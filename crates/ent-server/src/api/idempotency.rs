//! `Idempotency-Key` on POST creations: the same key and body replay the first
//! response (status, body, `ETag`, `Location`); the same key with another body
//! answers 422; a request still in flight with that key answers 409.
//!
//! A key in flight is held with a short lease, renewed while its handler runs.
//! The handler runs in its own task, so a client that hangs up (a timeout) does
//! not cancel it: its retry gets the original result. A key left in flight by a
//! crashed process is claimed again by the next request once its lease ran out.
//!
//! The handler runs inside [`Key::scope`]: its write transactions mark the key as committed.
//! A failing request whose writes all rolled back frees its key (sent again, it runs); one
//! that committed something and then failed (its answer lost) keeps it, stored as done with
//! that 409 as its answer ([`Key::release`]), and the same request sent again is answered 409
//! ([`RAN_UNANSWERED`]) by any replica, one of the previous release included, never run twice.

use super::{AppState, JSON_BODY_LIMIT};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::{IdempotencyKey as Key, RAN_UNANSWERED};
use ent_platform::identity::Caller;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// How long a key in flight is held without renewal.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How often a running handler renews its key's lease.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// Response headers replayed with the body.
const REPLAYED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

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
    let key = Key { actor, key };
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, JSON_BODY_LIMIT).await.map_err(|_| {
        Problem::new(ProblemKind::PayloadTooLarge, "le corps de la requête dépasse la taille autorisée")
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    // From here on the work goes to its own task: a client hanging up drops this
    // future, not the claim, the handler, nor the recording of its response.
    let request = Request::from_parts(parts, Body::from(bytes));
    // The request's span (and its x-request-id) goes with it.
    let work = claim_and_handle(state, key, request_hash, request, next);
    let task = tokio::spawn(tracing::Instrument::instrument(work, tracing::Span::current()));
    task.await.map_err(|e| Problem::from(anyhow::anyhow!("idempotent handler task: {e}")))?
}

async fn claim_and_handle(
    state: AppState,
    key: Key,
    request_hash: String,
    request: Request,
    next: Next,
) -> Result<Response, Problem> {
    // A first request that fails releases its key: between our failed claim and
    // our read, the key may be free again, so claim it once more.
    let mut attempts = 0;
    while !claim(&state, &key, &request_hash).await? {
        if let Some(response) = replay(&state, &key, &request_hash).await? {
            return Ok(response);
        }
        attempts += 1;
        if attempts == 3 {
            return Err(Problem::conflict("une requête avec cette clé d'idempotence est en cours"));
        }
    }
    let response = run_renewing(&state, &key, key.scope(next.run(request))).await;
    if !response.status().is_success() {
        if !key.release(&state.store).await? {
            tracing::warn!(status = %response.status(), "a request that committed failed: its idempotency key is kept");
        }
        return Ok(response);
    }
    record(&state, &key, response).await
}

/// Takes the key for [`LEASE`] (see [`Key::claim`]).
async fn claim(state: &AppState, key: &Key, request_hash: &str) -> Result<bool, Problem> {
    let now = state.clock.now();
    key.claim(&state.store, request_hash, now, now + LEASE).await
}

/// Runs the handler, renewing the key's lease while it runs.
async fn run_renewing(state: &AppState, key: &Key, handler: impl std::future::Future<Output = Response>) -> Response {
    let (_running, ended) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(renew_lease(state.clone(), key.clone(), ended));
    handler.await
}

/// Renews the key's lease every [`RENEW_EVERY`] until `ended` (its sender dropped). Its own
/// task: a renewal waiting on the key's row (PostgreSQL: locked by the handler's write
/// transaction, which marks it) never keeps the handler from going on and committing.
async fn renew_lease(state: AppState, key: Key, mut ended: tokio::sync::oneshot::Receiver<()>) {
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            _ = &mut ended => return,
            _ = renew.tick() => {
                if let Err(problem) = key.renew(&state.store, state.clock.now() + LEASE).await {
                    tracing::warn!(error = %problem.detail, "idempotency key lease not renewed");
                }
            }
        }
    }
}

/// Stores a successful response for replay and returns it.
async fn record(state: &AppState, key: &Key, response: Response) -> Result<Response, Problem> {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(|e| anyhow::anyhow!("response body: {e}"))?;
    let headers: Vec<(&str, &str)> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str(), parts.headers.get(name)?.to_str().ok()?)))
        .collect();
    let headers = serde_json::to_string(&headers).expect("headers serialise");
    key.finish(&state.store, status.as_u16(), &String::from_utf8_lossy(&body), Some(&headers)).await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The stored answer to a taken key; `None` when the key was released meanwhile.
async fn replay(state: &AppState, key: &Key, request_hash: &str) -> Result<Option<Response>, Problem> {
    let Some(row) = key.stored(&state.store).await? else {
        return Ok(None);
    };
    if row.request_hash != request_hash {
        return Err(Problem::new(
            ProblemKind::IdempotencyKeyReused,
            "cette clé d'idempotence a déjà servi pour une autre requête",
        ));
    }
    if row.ran_unanswered(state.clock.now()) {
        return Err(Problem::conflict(RAN_UNANSWERED));
    }
    let status = row.status;
    if status == 0 {
        return Err(Problem::conflict("une requête avec cette clé d'idempotence est en cours"));
    }
    let body = row.response.unwrap_or_default();
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let headers = row.headers.map(|h| h.0).unwrap_or_default();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}
