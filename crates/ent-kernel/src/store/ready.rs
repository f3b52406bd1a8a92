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
//!
//! SQLite: rewriting the heartbeat row needs no new page, and succeeded on a full disk while
//! every insert failed. The beat also allocates fresh pages in a savepoint it rolls back (a
//! size limit shows), and the probe reads the free space of the database's volume: below
//! [`SQLITE_MIN_FREE_BYTES`] it answers 507 « espace de stockage épuisé ».

use super::{timestamp, Backend, Store, Tx};
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

/// SQLite: the free space of the database's volume below which the probe answers 507. A commit
/// appends its pages to the WAL, which grows by up to [`super::SQLITE_WAL_AUTOCHECKPOINT`] pages
/// between checkpoints; below a few of them, the next writes fail.
pub const SQLITE_MIN_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// SQLite: how many bytes the beat writes in its savepoint (rolled back): more than a page,
/// so that it needs pages the file does not have (the heartbeat row is rewritten in place).
const FRESH_PAGES_BYTES: usize = 8192;

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
        if let Some(full) = self.sqlite_free_bytes().and_then(storage_verdict) {
            return Err(full);
        }
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
        if self.backend == Backend::Sqlite {
            self.fresh_pages(&mut tx).await?;
        }
        tx.commit().await
    }

    /// SQLite: a write that needs pages the file does not have yet (a row of
    /// [`FRESH_PAGES_BYTES`] under a key no process uses), undone by its savepoint: a database at
    /// its size limit fails it as it fails every insert (`SQLITE_FULL`).
    async fn fresh_pages(&self, tx: &mut Tx) -> sqlx::Result<()> {
        sqlx::query("SAVEPOINT readiness_space").execute(&mut **tx).await?;
        sqlx::query("INSERT INTO store_heartbeat (id, at) VALUES ($1, $2)")
            .bind(-self.ready.row)
            .bind("0".repeat(FRESH_PAGES_BYTES))
            .execute(&mut **tx)
            .await?;
        sqlx::query("ROLLBACK TO readiness_space").execute(&mut **tx).await?;
        sqlx::query("RELEASE readiness_space").execute(&mut **tx).await?;
        Ok(())
    }

    /// SQLite: the bytes an unprivileged writer may still use on the volume of the database
    /// file; `None` on PostgreSQL, for a database in memory, or when the system does not say.
    fn sqlite_free_bytes(&self) -> Option<u64> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let file = super::sqlite_file_path(self.pool.connect_options().database_url.as_str())?;
        let folder = file.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        free_bytes(folder)
    }
}

#[cfg(unix)]
fn free_bytes(folder: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(folder).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_folder: &std::path::Path) -> Option<u64> {
    None
}

/// The probe's answer for `free` bytes left on the SQLite database's volume: 507 below
/// [`SQLITE_MIN_FREE_BYTES`], nothing to say otherwise.
fn storage_verdict(free: u64) -> Option<Problem> {
    (free < SQLITE_MIN_FREE_BYTES).then(|| {
        Problem::new(
            ProblemKind::StorageFull,
            format!(
                "Le volume de la base de données est presque plein ({} Kio libres, moins de {} Mio) : \
                 libérez de l'espace ou agrandissez le volume.",
                free / 1024,
                SQLITE_MIN_FREE_BYTES / (1024 * 1024)
            ),
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_with_less_than_the_minimum_free_is_storage_full() {
        let full = storage_verdict(0).expect("no space left");
        assert_eq!((full.kind, full.kind.status().as_u16()), (ProblemKind::StorageFull, 507));
        assert!(full.detail.contains("0 Kio libres"), "{}", full.detail);
        assert!(storage_verdict(SQLITE_MIN_FREE_BYTES - 1).is_some());
        assert!(storage_verdict(SQLITE_MIN_FREE_BYTES).is_none());
        assert!(storage_verdict(u64::MAX).is_none());
    }

    #[test]
    fn the_volume_of_a_folder_that_exists_says_its_free_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|free| free > 0));
        assert_eq!(free_bytes(&dir.path().join("absent")), None);
    }
}
