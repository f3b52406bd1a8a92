//! The `idempotency_keys` table: a key of one actor, taken by one request at a time under a
//! short lease, then holding the answer its first request gave (status 0 while in flight), so
//! that the same request sent again is answered without being run twice. Serves the API's
//! `Idempotency-Key` header and the console's one-time form tokens.
//!
//! A request runs inside [`IdempotencyKey::scope`]: each write transaction it begins
//! ([`Store::begin_write`]) marks the key, in that transaction, as `committed`. The mark
//! therefore exists exactly when one of the request's writes committed, and a request that
//! fails after that (its answer lost, e.g. a read-back after the commit) keeps its key
//! ([`IdempotencyKey::release`]): sent again, it is told it ran, never run a second time.
//! The key is then kept as done, its answer the 409 [`RAN_UNANSWERED`] problem itself, so that
//! a replica of a release that ignores `committed` (a rolling upgrade) replays that 409 too.

use super::{timestamp, Flag, JsonText, Store};
use crate::error::Problem;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use std::future::Future;

tokio::task_local! {
    /// The key of the request running in this task ([`IdempotencyKey::scope`]).
    static RUNNING: IdempotencyKey;
}

/// One key of one actor.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub actor: String,
    pub key: String,
}

/// What a key holds: the request it answers and the answer (status 0 while in flight).
#[derive(sqlx::FromRow)]
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: i64,
    pub response: Option<String>,
    pub headers: Option<JsonText<Vec<(String, String)>>>,
    /// One of the request's write transactions committed.
    #[sqlx(try_from = "Flag")]
    pub committed: bool,
    pub locked_until: Option<String>,
}

impl StoredAnswer {
    /// The key's request wrote (committed) but gave no answer to keep: it failed afterwards,
    /// or its process died (lease over). Sent again, it must not run again.
    /// Kept by [`IdempotencyKey::release`] (status 409) or left in flight by a dead process.
    pub fn ran_unanswered(&self, now: DateTime<Utc>) -> bool {
        let dead_in_flight = self.status == 0
            && self.committed
            && self.locked_until.as_deref().is_none_or(|until| until <= timestamp(now).as_str());
        dead_in_flight || (self.committed && self.status == i64::from(RAN_UNANSWERED_STATUS))
    }
}

/// What the answer to a request that ran but whose answer was lost says (API and console).
pub const RAN_UNANSWERED: &str =
    "La requête a déjà été exécutée mais sa réponse n'a pas pu être envoyée ; consultez la ressource avant de réessayer.";
/// The status of that answer, kept as the key's answer by [`IdempotencyKey::release`].
pub const RAN_UNANSWERED_STATUS: u16 = 409;

impl IdempotencyKey {
    /// Takes the key for the request `request_hash` until `until`: new, or left in flight by
    /// the same request whose lease ran out (its process died) before anything it wrote
    /// committed. False when it is done, held by a live request, ran (committed), or was
    /// taken by another request.
    pub async fn claim(
        &self,
        store: &Store,
        request_hash: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, Problem> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (actor, idem_key, request_hash, status, created_at, locked_until) \
             VALUES ($1, $2, $3, 0, $4, $5) \
             ON CONFLICT (actor, idem_key) DO UPDATE SET locked_until = excluded.locked_until \
             WHERE idempotency_keys.status = 0 AND idempotency_keys.committed = 0 \
             AND idempotency_keys.request_hash = excluded.request_hash \
             AND (idempotency_keys.locked_until IS NULL OR idempotency_keys.locked_until <= excluded.created_at)",
        )
        .bind(&self.actor)
        .bind(&self.key)
        .bind(request_hash)
        .bind(timestamp(now))
        .bind(timestamp(until))
        .execute(store.pool())
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Extends the lease of a key still in flight.
    pub async fn renew(&self, store: &Store, until: DateTime<Utc>) -> Result<(), Problem> {
        sqlx::query("UPDATE idempotency_keys SET locked_until = $1 WHERE actor = $2 AND idem_key = $3 AND status = 0")
            .bind(timestamp(until))
            .bind(&self.actor)
            .bind(&self.key)
            .execute(store.pool())
            .await?;
        Ok(())
    }

    /// Keeps the answer of the key's request: its status, body and replayed headers (JSON).
    pub async fn finish(
        &self,
        store: &Store,
        status: u16,
        response: &str,
        headers: Option<&str>,
    ) -> Result<(), Problem> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, response = $2, headers = $3, locked_until = NULL \
             WHERE actor = $4 AND idem_key = $5",
        )
        .bind(i64::from(status))
        .bind(response)
        .bind(headers)
        .bind(&self.actor)
        .bind(&self.key)
        .execute(store.pool())
        .await?;
        Ok(())
    }

    /// Frees the key of a request that failed, when none of its writes committed: it can be
    /// sent again (true). When one did, the key is kept as done (false), its answer the 409
    /// problem [`RAN_UNANSWERED`] (`application/problem+json`), which every replica replays,
    /// one of a release before the `committed` column included ([`StoredAnswer::ran_unanswered`]).
    pub async fn release(&self, store: &Store) -> Result<bool, Problem> {
        let freed = sqlx::query("DELETE FROM idempotency_keys WHERE actor = $1 AND idem_key = $2 AND committed = 0")
            .bind(&self.actor)
            .bind(&self.key)
            .execute(store.pool())
            .await?;
        if freed.rows_affected() > 0 {
            return Ok(true);
        }
        let problem = Problem::conflict(RAN_UNANSWERED);
        debug_assert_eq!(problem.kind.status().as_u16(), RAN_UNANSWERED_STATUS);
        let headers = serde_json::json!([["content-type", "application/problem+json"]]).to_string();
        self.finish(store, RAN_UNANSWERED_STATUS, &problem.body().to_string(), Some(&headers)).await?;
        Ok(false)
    }

    /// Runs `work` as this key's request: each write transaction it begins in this task
    /// marks the key as committed with it (see the module's documentation).
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        RUNNING.scope(self.clone(), work).await
    }

    /// What the key holds; `None` when it was released meanwhile (or never taken).
    pub async fn stored(&self, store: &Store) -> Result<Option<StoredAnswer>, Problem> {
        Ok(sqlx::query_as(
            "SELECT request_hash, status, response, headers, committed, locked_until FROM idempotency_keys \
             WHERE actor = $1 AND idem_key = $2",
        )
        .bind(&self.actor)
        .bind(&self.key)
        .fetch_optional(store.pool())
        .await?)
    }
}

/// Inside [`IdempotencyKey::scope`], marks the running request's key as committed in the
/// transaction `conn` has just begun: the mark commits, or rolls back, with the request's writes.
pub(super) async fn mark_committed(conn: &mut AnyConnection) -> sqlx::Result<()> {
    let Ok(key) = RUNNING.try_with(IdempotencyKey::clone) else { return Ok(()) };
    sqlx::query(
        "UPDATE idempotency_keys SET committed = 1 WHERE actor = $1 AND idem_key = $2 AND status = 0 AND committed = 0",
    )
    .bind(&key.actor)
    .bind(&key.key)
    .execute(conn)
    .await?;
    Ok(())
}

/// How long an API key keeps its answer: a request sent again with the same key later than
/// this is a new request.
pub const IDEMPOTENCY_KEPT: chrono::Duration = chrono::Duration::hours(24);
/// How long a console form token (`console:…`) keeps where its post led: a page kept open or
/// reloaded for longer may post it again as a new one. It holds no personal data (a path).
pub const FORM_TOKENS_KEPT: chrono::Duration = chrono::Duration::days(30);

/// Deletes the keys taken more than [`IDEMPOTENCY_KEPT`] (console form tokens:
/// [`FORM_TOKENS_KEPT`]) before `now`: answered ones (an API answer may hold personal data,
/// e.g. a ticket's description) and ones whose request died in flight (lease over); a key whose
/// request is still in flight stays. Returns how many.
pub async fn purge_idempotency_keys(store: &Store, now: DateTime<Utc>) -> Result<u64, Problem> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE created_at < (CASE WHEN idem_key LIKE 'console:%' THEN $1 ELSE $2 END) \
         AND (status <> 0 OR locked_until IS NULL OR locked_until < $3)",
    )
    .bind(timestamp(now - FORM_TOKENS_KEPT))
    .bind(timestamp(now - IDEMPOTENCY_KEPT))
    .bind(timestamp(now))
    .execute(store.pool())
    .await?;
    Ok(deleted.rows_affected())
}
