//! One annuaire import at a time per académie (`import_locks`): an import takes the locks of
//! the académies it may write in (its scope's; `*`, every académie, for an administrator's)
//! before it reads its file, and a second import that touches one of them is refused (409,
//! who holds it and since when). The locks are a lease: renewed while the import runs,
//! deleted at its end (or when its request is dropped), and taken over once run out (a
//! crashed process's), or at once by an import on the same host when the process that took
//! them is gone (`entctl import` killed, then run again), or by this process when the run that
//! took them is over (a dropped import whose rows are not deleted yet). A dry run writes nothing
//! and takes none.

use super::import::ImportScope;
use crate::identity::Actor;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::clock::french_moment;
use ent_kernel::error::Problem;
use ent_kernel::store::{markers, new_id, serialise, timestamp, SerialLock, Store};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// How long a lock holds without being renewed (it is renewed every third of it), unless
/// configured (`import.lease_seconds`).
pub const IMPORT_LEASE: Duration = Duration::minutes(2);

/// The key of an import that may write in every académie (an administrator's).
const EVERY_ACADEMIE: &str = "*";

/// The runs of this process that hold (or are taking) locks: a lock this process took for a
/// run no longer in it was left by an import dropped before its rows were deleted.
static LIVE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// A run of this process in [`LIVE`], until dropped.
struct LiveRun(String);

impl LiveRun {
    fn new() -> LiveRun {
        let run_id = new_id();
        LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(run_id.clone());
        LiveRun(run_id)
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&self.0);
    }
}

/// The locks one import holds, until [`ImportLock::release`] (or dropped: released by a task).
pub struct ImportLock {
    store: Store,
    run: LiveRun,
    renewal: tokio::task::JoinHandle<()>,
    lease: Arc<Lease>,
    released: bool,
}

/// The lease of an import's locks as this process knows it, shared by the import and its
/// renewals; its clock is the import's (`std::time::Instant`, as its renewals' times).
struct Lease {
    duration: std::time::Duration,
    /// When the lease was last renewed (taken, at first): the moment the renewal that
    /// succeeded was sent, from which the expiry it wrote counts.
    renewed: Mutex<std::time::Instant>,
    /// Set when a renewal found the locks taken over, or the lease run out before it.
    lost: AtomicBool,
}

impl Lease {
    /// Whether a lease has passed since the last renewal: another import may have taken
    /// the locks over since, whether or not one did.
    fn ran_out(&self) -> bool {
        self.renewed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).elapsed() >= self.duration
    }
}

/// The renewals of every import of this process and the time they took (`entctl bench import`).
static RENEWALS: AtomicU64 = AtomicU64::new(0);
static RENEWAL_MICROS: AtomicU64 = AtomicU64::new(0);

/// How many lock renewals the imports of this process made, and the time they took in all.
pub fn renewals_so_far() -> (u64, std::time::Duration) {
    let micros = RENEWAL_MICROS.load(Ordering::Relaxed);
    (RENEWALS.load(Ordering::Relaxed), std::time::Duration::from_micros(micros))
}

/// The académies an import of `scope` may write in: its académies and its DSDEN's (`*` for
/// every one); none for a scope that holds no académie (such an import writes nothing).
fn keys(scope: Option<&ImportScope>) -> Vec<String> {
    let Some(scope) = scope else {
        return vec![EVERY_ACADEMIE.to_string()];
    };
    let mut keys: Vec<String> =
        scope.academies.iter().cloned().chain(scope.departements.values().flatten().cloned()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A lock another import holds, as read.
#[derive(sqlx::FromRow)]
struct Held {
    academie_code: String,
    run_id: String,
    holder: String,
    process: String,
    started_at: String,
    expires_at: String,
}

/// This process, as a lock names it: `host:pid`.
fn this_process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{host}:{}", std::process::id())
}

/// Whether the run `run_id` of the process a lock names (`host:pid`) is known gone: this
/// process and a run no longer in it (an import dropped, its rows not yet deleted), or another
/// process of this host no longer running (Linux: no `/proc/<pid>`). A process elsewhere is
/// never known gone: its lock lasts its lease.
fn is_gone(process: &str, run_id: &str) -> bool {
    let here = this_process();
    if process == here {
        return !LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(run_id);
    }
    let Some((host, pid)) = process.rsplit_once(':') else {
        return false;
    };
    let (this_host, this_pid) = here.rsplit_once(':').expect("host:pid");
    let proc_fs = std::path::Path::new("/proc/self").exists();
    proc_fs && host == this_host && pid != this_pid && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl ImportLock {
    /// Takes the locks of the académies an import of `scope` may write in, at `now`, for `lease`
    /// (moving on from `now` with the time the import takes, renewed every third of it). `None`
    /// when there is none to take. Refused (409) while another import holds one of them, or `*`,
    /// or holds any when this import is an administrator's; locks whose lease ran out are taken over.
    pub async fn take(
        store: &Store,
        actor: &Actor,
        scope: Option<&ImportScope>,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ImportLock>, Problem> {
        let keys = keys(scope);
        if keys.is_empty() {
            return Ok(None);
        }
        let run = LiveRun::new();
        let run_id = run.0.clone();
        let started = std::time::Instant::now();
        let mut tx = store.begin_write().await?;
        serialise(&mut tx, store.backend(), SerialLock::ImportLocks).await?;
        let expired = sqlx::query("DELETE FROM import_locks WHERE expires_at <= $1")
            .bind(timestamp(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if expired > 0 {
            tracing::warn!(expired, "annuaire import: locks of imports whose lease ran out taken over");
        }
        for held in conflicts(&mut tx, store, &keys).await? {
            if is_gone(&held.process, &held.run_id) {
                tracing::warn!(process = %held.process, "annuaire import: locks of a process gone taken over");
                sqlx::query("DELETE FROM import_locks WHERE run_id = $1").bind(&held.run_id).execute(&mut *tx).await?;
                continue;
            }
            let detail = refusal(&mut tx, store, &held).await?;
            tx.rollback().await?;
            return Err(Problem::conflict(detail));
        }
        let expires = timestamp(now + lease);
        for key in &keys {
            sqlx::query(
                "INSERT INTO import_locks (academie_code, run_id, holder, process, started_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key)
            .bind(&run_id)
            .bind(actor.email())
            .bind(this_process())
            .bind(timestamp(now))
            .bind(&expires)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let shared = Arc::new(Lease {
            duration: lease.to_std().unwrap_or(std::time::Duration::ZERO),
            renewed: Mutex::new(started),
            lost: AtomicBool::new(false),
        });
        let renewal = tokio::spawn(renew(store.clone(), run_id.clone(), now, started, shared.clone()));
        Ok(Some(ImportLock { store: store.clone(), run, renewal, lease: shared, released: false }))
    }

    /// Whether the import may no longer write under its locks: a renewal found them taken over
    /// by another import, or its lease ran out here (no renewal succeeded for a lease, the import
    /// stalled: another may have taken them over), even before its next renewal comes.
    pub fn is_lost(&self) -> bool {
        self.lease.lost.load(Ordering::Relaxed) || self.lease.ran_out() || EXITING.load(Ordering::Relaxed)
    }

    /// Deletes the locks.
    pub async fn release(mut self) -> Result<(), Problem> {
        self.released = true;
        self.renewal.abort();
        delete(&self.store, &self.run.0).await
    }
}

/// Set when this process gives its locks back before it exits ([`release_at_exit`]): its
/// imports still going stop before their next batch, as if their locks had been taken over.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Deletes every lock this process holds (`host:pid`), once `serve` stopped serving: an import
/// whose request the shutdown deadline cut is not dropped (a task that a process about to exit
/// never runs would release it), and another pod would wait for its lease. Its imports still
/// going stop before their next batch ([`ImportLock::is_lost`]). Returns how many were deleted.
pub async fn release_at_exit(store: &Store) -> Result<u64, Problem> {
    EXITING.store(true, Ordering::Relaxed);
    let deleted =
        sqlx::query("DELETE FROM import_locks WHERE process = $1").bind(this_process()).execute(store.pool()).await?;
    Ok(deleted.rows_affected())
}

impl Drop for ImportLock {
    /// An import dropped before its end (its request cut) releases its locks in a task (and
    /// `serve`, before it exits, whatever its imports hold: [`release_at_exit`]).
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        let (store, run_id) = (self.store.clone(), self.run.0.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = delete(&store, &run_id).await {
                    tracing::warn!(error = %e.detail, "annuaire import: its locks are left to their lease");
                }
            });
        }
    }
}

async fn delete(store: &Store, run_id: &str) -> Result<(), Problem> {
    sqlx::query("DELETE FROM import_locks WHERE run_id = $1").bind(run_id).execute(store.pool()).await?;
    Ok(())
}

/// « 2 minutes », « 1 minute », « 90 secondes »: a lease as the refusals say it.
pub fn duration_in_words(d: Duration) -> String {
    let seconds = d.num_seconds();
    match (seconds % 60, seconds / 60) {
        (0, 1) => "1 minute".into(),
        (0, minutes) if minutes > 1 => format!("{minutes} minutes"),
        _ => format!("{seconds} secondes"),
    }
}

/// Renews the locks of `run_id` for its lease every third of it, the time from `now` (taken at
/// `started`) moving on; marks the lease lost when they were taken over, or when it ran out
/// before a renewal succeeded (a renewal then would extend a lease another import may have
/// taken meanwhile: the import stops rather than go on).
async fn renew(store: Store, run_id: String, now: DateTime<Utc>, started: std::time::Instant, lease: Arc<Lease>) {
    let every = (lease.duration / 3).max(std::time::Duration::from_secs(1));
    let duration = Duration::from_std(lease.duration).unwrap_or(IMPORT_LEASE);
    loop {
        tokio::time::sleep(every).await;
        let sent = std::time::Instant::now();
        if lease.ran_out() {
            lease.lost.store(true, Ordering::Relaxed);
            return;
        }
        let current = now + Duration::from_std(started.elapsed()).unwrap_or_default();
        let renewed = sqlx::query("UPDATE import_locks SET expires_at = $1 WHERE run_id = $2")
            .bind(timestamp(current + duration))
            .bind(&run_id)
            .execute(store.pool())
            .await;
        RENEWALS.fetch_add(1, Ordering::Relaxed);
        RENEWAL_MICROS.fetch_add(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        match renewed {
            Ok(done) if done.rows_affected() == 0 || lease.ran_out() => {
                lease.lost.store(true, Ordering::Relaxed);
                return;
            }
            Ok(_) => *lease.renewed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = sent,
            Err(e) => tracing::warn!(error = %e, "annuaire import: lock not renewed, tried again later"),
        }
    }
}

/// The locks other imports hold among `keys` (any, for `*`), and `*`, the oldest first.
async fn conflicts(tx: &mut sqlx::AnyConnection, store: &Store, keys: &[String]) -> Result<Vec<Held>, Problem> {
    let columns = "academie_code, run_id, holder, process, started_at, expires_at";
    let sql = match keys.iter().any(|k| k == EVERY_ACADEMIE) {
        true => format!("SELECT {columns} FROM import_locks ORDER BY started_at, academie_code"),
        false => format!(
            "SELECT {columns} FROM import_locks WHERE academie_code IN ({}) ORDER BY started_at, academie_code",
            markers(store.backend(), 1, keys.len() + 1)
        ),
    };
    let mut query = sqlx::query_as::<_, Held>(&sql);
    if !keys.iter().any(|k| k == EVERY_ACADEMIE) {
        for key in keys.iter().map(String::as_str).chain([EVERY_ACADEMIE]) {
            query = query.bind(key);
        }
    }
    Ok(query.fetch_all(&mut *tx).await?)
}

/// Why an import is refused: the import that holds the lock, by whom and since when.
async fn refusal(tx: &mut sqlx::AnyConnection, store: &Store, held: &Held) -> Result<String, Problem> {
    let place = match held.academie_code.as_str() {
        EVERY_ACADEMIE => "de toutes les académies".to_string(),
        code => {
            let sql =
                format!("SELECT name FROM orgs WHERE kind = 'academie' AND code = {}", markers(store.backend(), 1, 1));
            let name: Option<String> = sqlx::query_scalar(&sql).bind(code).fetch_optional(&mut *tx).await?;
            format!("touchant {}", academie_phrase(name.as_deref(), code))
        }
    };
    Ok(format!(
        "un import de l'annuaire {place} est déjà en cours, lancé par {} le {} : réessayez une fois \
         celui-ci terminé (s'il a été interrompu, son verrou expire le {})",
        held.holder,
        french_moment(&held.started_at),
        french_moment(&held.expires_at),
    ))
}

/// « l'académie de Créteil » from its name « Académie de Créteil »; « l'académie 24 » without one.
fn academie_phrase(name: Option<&str>, code: &str) -> String {
    match name.and_then(|n| n.strip_prefix("Académie ")) {
        Some(rest) => format!("l'académie {rest}"),
        None => format!("l'académie {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_said_in_minutes_when_it_is_whole_minutes() {
        assert_eq!(duration_in_words(IMPORT_LEASE), "2 minutes");
        assert_eq!(duration_in_words(Duration::seconds(60)), "1 minute");
        assert_eq!(duration_in_words(Duration::seconds(90)), "90 secondes");
        assert_eq!(duration_in_words(Duration::seconds(3)), "3 secondes");
    }

    #[test]
    fn an_academie_is_named_with_its_article() {
        assert_eq!(academie_phrase(Some("Académie de Créteil"), "24"), "l'académie de Créteil");
        assert_eq!(academie_phrase(Some("Académie d'Amiens"), "20"), "l'académie d'Amiens");
        assert_eq!(academie_phrase(None, "24"), "l'académie 24");
    }

    #[test]
    fn only_a_process_of_this_host_that_ended_is_known_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let here = this_process();
        let (host, _) = here.rsplit_once(':').unwrap();
        assert!(is_gone(&format!("{host}:{ended}"), "run"));
        assert!(!is_gone(&format!("{host}:1"), "run"), "init lives");
        assert!(!is_gone(&format!("ailleurs-{host}:{ended}"), "run"), "another host's process may live");
        assert!(!is_gone("illisible", "run"));
        let live = LiveRun::new();
        assert!(!is_gone(&here, &live.0), "a run of this process under way");
        let ended = live.0.clone();
        drop(live);
        assert!(is_gone(&here, &ended), "a run of this process dropped");
    }

    #[test]
    fn an_import_locks_the_academies_of_its_scope_or_every_one() {
        assert_eq!(keys(None), ["*"]);
        let scope = ImportScope {
            academies: ["24".to_string()].into(),
            departements: [("92".to_string(), Some("25".to_string())), ("94".to_string(), Some("24".to_string()))]
                .into(),
        };
        assert_eq!(keys(Some(&scope)), ["24", "25"]);
        assert!(keys(Some(&ImportScope::default())).is_empty());
    }
}
