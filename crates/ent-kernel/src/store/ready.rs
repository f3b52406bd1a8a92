//! Readiness (`/readyz`): the database takes a write, proven by a heartbeat row.
//!
//! A probe never costs more than one heartbeat per process: the beat in flight (or the one
//! finished less than [`READY_REUSE`] ago) answers every probe; a flood of anonymous probes
//! holds at most one pooled connection. Each process writes its own row of
//! `store_heartbeat` (a random key; releases before this one all write row 1, which is
//! left to them during a rolling upgrade), so a lock held on another replica's row never
//! makes this one unready; on PostgreSQL the beat gives up on a lock after
//! [`LOCK_TIMEOUT`], within the probe's own limit. Each beat also deletes the rows no process
//! wrote for [`FORGOTTEN_AFTER`] (processes gone), skipping those another transaction holds.

use super::{timestamp, Store};
use crate::error::{Problem, ProblemKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a heartbeat's answer is reused by the probes that follow it.
pub const READY_REUSE: Duration = Duration::from_secs(1);

/// The longest the heartbeat waits for a row lock (shorter than the probe's limit).
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// A heartbeat row written longer ago than this belongs to a process gone: a beat deletes it.
/// A live process rewrites its row at each probe (every few seconds), and an earlier release
/// writes row 1 again with its next probe.
pub const FORGOTTEN_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A beat still unanswered after this long (a socket gone silent) no longer holds back the next.
const STUCK_AFTER: Duration = Duration::from_secs(10);

/// A beat's answer: the problem kind and detail when the database did not take the write.
type Outcome = Result<(), (ProblemKind, String)>;

/// The heartbeat state of one process (shared by the clones of its [`Store`]).
pub(super) struct Readiness {
    /// This process's key in `store_heartbeat`: random, never 1 (the earlier releases' row).
    row: i64,
    /// The last beat started: when, and its answer once known.
    last: Mutex<Option<(Instant, watch::Receiver<Option<Outcome>>)>>,
    started: AtomicU64,
}

impl Default for Readiness {
    fn default() -> Self {
        let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
        Readiness { row: ((high >> 1) as i64).max(2), last: Mutex::new(None), started: AtomicU64::new(0) }
    }
}

impl Store {
    /// Readiness: within `limit`, the database took a write (this process's heartbeat row,
    /// committed) less than [`READY_REUSE`] ago, so that a full disk, a read-only file or a
    /// lost server shows. The heartbeat runs in its own task: the timeout abandons the wait,
    /// never cancels a `BEGIN` half-way (on PostgreSQL that leaves the pooled connection
    /// inside a transaction sqlx no longer tracks, sqlx#4393).
    pub async fn check_ready(&self, limit: Duration) -> Result<(), Problem> {
        let mut answer = self.heartbeat_round();
        let outcome = match tokio::time::timeout(limit, answer.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome.clone(),
            Ok(Err(_)) => Some(Err((ProblemKind::Unavailable, "le contrôle de la base s'est interrompu".into()))),
            Err(_) => return Err(Problem::from(sqlx::Error::PoolTimedOut)),
        };
        match outcome {
            Some(Err((kind, detail))) => Err(Problem::new(kind, detail)),
            _ => Ok(()),
        }
    }

    /// How many heartbeats this process started (one per [`READY_REUSE`] at most while they answer).
    pub fn heartbeats_started(&self) -> u64 {
        self.ready.started.load(Ordering::Relaxed)
    }

    /// The answer of the beat in flight or just finished, else of a new beat.
    fn heartbeat_round(&self) -> watch::Receiver<Option<Outcome>> {
        let mut last = self.ready.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, answer)) = last.as_ref() {
            let in_flight = answer.borrow().is_none();
            if at.elapsed() < READY_REUSE || (in_flight && at.elapsed() < STUCK_AFTER) {
                return answer.clone();
            }
        }
        let (send, answer) = watch::channel(None);
        self.ready.started.fetch_add(1, Ordering::Relaxed);
        let store = self.clone();
        tokio::spawn(async move {
            let outcome = store.heartbeat().await.map_err(unready);
            send.send_replace(Some(outcome));
        });
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn heartbeat(&self) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        super::limit_lock_waits(&mut tx, self.backend, LOCK_WAIT).await?;
        let now = chrono::Utc::now();
        sqlx::query("INSERT INTO store_heartbeat (id, at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET at = $2")
            .bind(self.ready.row)
            .bind(timestamp(now))
            .execute(&mut *tx)
            .await?;
        // PostgreSQL: the rows another beat is deleting (or an old release writing) are skipped,
        // never waited for; SQLite: `begin_write` holds the only write lock.
        let skip_locked = self.backend.for_update_skip_locked();
        let forget = format!(
            "DELETE FROM store_heartbeat WHERE id IN (SELECT id FROM store_heartbeat WHERE at < $1{skip_locked})"
        );
        sqlx::query(&forget).bind(timestamp(now - FORGOTTEN_AFTER)).execute(&mut *tx).await?;
        tx.commit().await
    }
}

/// A failed heartbeat as the probe answers it: the database fault's own type (full, read-only),
/// else « indisponible » (a lock wait given up, an unexpected error: logged).
fn unready(e: sqlx::Error) -> (ProblemKind, String) {
    let problem = Problem::from(e);
    if problem.kind != ProblemKind::Internal {
        return (problem.kind, problem.detail);
    }
    tracing::error!(error = %problem.detail, "readiness heartbeat failed");
    (ProblemKind::Unavailable, "La base de données n'a pas pris l'écriture de contrôle à temps.".into())
}
