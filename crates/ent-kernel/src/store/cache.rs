//! A cache of identical reads, valid only while the database has not changed.
//!
//! Each entry is stamped with the store's *generation*, a counter that moves
//! - whenever this process reaches the database by any other path than a cached read
//!   ([`Store::pool`], [`Store::conn`], [`Store::begin_write`]): a write made here is
//!   never followed by a stale read here;
//! - after every request that may write and every job run ([`Store::note_change`],
//!   called by the server), so that a write's answer leaves after the cache is dropped;
//! - when the watcher learns of a commit made by another connection, process or replica:
//!   on SQLite, `PRAGMA data_version` read every [`WATCH_INTERVAL`] on a connection of
//!   its own (any commit); on PostgreSQL, the notification that the triggers of the
//!   registry's tables (`orgs`, `org_members`, migration 0018) send at commit. Whatever
//!   is cached must be read from those tables only, or its tables must notify too.
//!
//! The lockout's reads (one entry per key checked, kernel `throttle`) are kept on a
//! [`Shelf`] of their own, with its own generation and its own bound: a failure counted
//! (here, or on another replica: `auth_failures` notifies `entcp_lockout`, migration 0037)
//! drops that shelf only, and a flood of keys never pushes the registry's entries out.
//! Whatever drops the registry's shelf drops the lockout's too (it may be any change).
//!
//! An entry is served only if the generation has not moved since it was read, and only
//! while the watcher runs: a store whose watcher is not started (commands, jobs run
//! from the command line) or has lost the database reads through every time.

use super::{Backend, Store};
use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, Connection};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the SQLite watcher looks for commits made elsewhere: the longest a write
/// made by another process can go unseen by this one's cached reads.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(25);

/// Where a cached read is kept, and what drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shelf {
    /// Reads of the registry's tables (and of anything else whose tables notify
    /// `entcp_registry`): dropped by any change.
    Registry,
    /// The failure counts of one throttle key (`auth_failures`): dropped when a failure
    /// is counted or forgiven (and by any change the registry's shelf is dropped for).
    Lockout,
}

impl Shelf {
    const ALL: [Shelf; 2] = [Shelf::Registry, Shelf::Lockout];

    /// Entries kept at most; past it the shelf starts again empty. A registry list page
    /// is 30 to 120 KB; a key's failure counts are a few rows (one per client checked).
    fn max_entries(self) -> usize {
        match self {
            Shelf::Registry => 256,
            Shelf::Lockout => 4096,
        }
    }
}

/// The longest the watcher waits for its database before it stops serving entries.
const WATCH_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) struct ReadCache {
    /// Off by configuration (`database.read_cache: false`) or for a bench's comparison.
    enabled: AtomicBool,
    /// One per [`Shelf`], in the order of [`Shelf::ALL`].
    shelves: [Entries; 2],
    watching: AtomicBool,
    watcher_started: AtomicBool,
    /// The watcher runs (it stops when the store is closed or dropped).
    watcher_running: AtomicBool,
    closed: AtomicBool,
    closing: tokio::sync::Notify,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache {
            enabled: AtomicBool::new(true),
            shelves: Default::default(),
            watching: AtomicBool::default(),
            watcher_started: AtomicBool::default(),
            watcher_running: AtomicBool::default(),
            closed: AtomicBool::default(),
            closing: tokio::sync::Notify::new(),
            hits: AtomicU64::default(),
            misses: AtomicU64::default(),
        }
    }
}

/// The entries of one shelf and the generation they are valid at.
#[derive(Default)]
struct Entries {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    generation: u64,
    value: Arc<dyn Any + Send + Sync>,
}

tokio::task_local! {
    /// Set while a cached read loads: its own use of the pool does not move the generation.
    static LOADING: ();
}

/// Hits and misses of the read cache since start, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

impl ReadCache {
    /// The database may have changed: every entry read before is stale.
    pub(super) fn invalidate(&self) {
        for shelf in Shelf::ALL {
            self.invalidate_shelf(shelf);
        }
    }

    /// Only what `shelf` holds may have changed.
    fn invalidate_shelf(&self, shelf: Shelf) {
        self.shelf(shelf).generation.fetch_add(1, Ordering::AcqRel);
    }

    fn shelf(&self, shelf: Shelf) -> &Entries {
        &self.shelves[shelf as usize]
    }

    /// [`ReadCache::invalidate`] unless called from inside a cached read.
    pub(super) fn touched(&self) {
        if LOADING.try_with(|_| ()).is_err() {
            self.invalidate();
        }
    }

    fn get<V: Clone + 'static>(&self, shelf: Shelf, key: &str, generation: u64) -> Option<V> {
        let entries = self.shelf(shelf).entries.lock().ok()?;
        let entry = entries.get(key).filter(|e| e.generation == generation)?;
        entry.value.downcast_ref::<V>().cloned()
    }

    fn put<V: Send + Sync + 'static>(&self, shelf: Shelf, key: String, generation: u64, value: V) {
        let Ok(mut entries) = self.shelf(shelf).entries.lock() else { return };
        if entries.len() >= shelf.max_entries() {
            entries.clear();
        }
        entries.insert(key, Entry { generation, value: Arc::new(value) });
    }
}

impl Store {
    /// The value of `load`, or the one it gave for the same `key` if the database has
    /// not changed since (see the module's documentation). `key` must name everything
    /// the value depends on — the query, its parameters, the caller's scope.
    pub async fn cached<V, E, F>(&self, key: String, load: F) -> Result<V, E>
    where
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        self.cached_on(Shelf::Registry, key, load).await
    }

    /// [`Store::cached`] on `shelf`, which only the changes of its own tables (and any
    /// change of unknown kind) drop.
    pub async fn cached_on<V, E, F>(&self, shelf: Shelf, key: String, load: F) -> Result<V, E>
    where
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let cache = &self.cache;
        if !self.caching() {
            return load.await;
        }
        let generation = cache.shelf(shelf).generation.load(Ordering::Acquire);
        if let Some(value) = cache.get::<V>(shelf, &key, generation) {
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        cache.misses.fetch_add(1, Ordering::Relaxed);
        let value = LOADING.scope((), load).await?;
        // Kept only if nothing moved while it was read.
        if self.caching() && cache.shelf(shelf).generation.load(Ordering::Acquire) == generation {
            cache.put(shelf, key, generation, value.clone());
        }
        Ok(value)
    }

    /// This process has committed a change of the lockout's counts only (kernel
    /// `throttle`): the lockout's cached reads are dropped, the registry's kept.
    pub(crate) fn note_lockout_change(&self) {
        self.cache.invalidate_shelf(Shelf::Lockout);
    }

    /// Something this process did may have changed the database (a request that may
    /// write has ended, a job has run): no cached read from before is served again.
    pub fn note_change(&self) {
        self.cache.invalidate();
    }

    /// The pool's connections (in use, idle, at most), read without touching the cache.
    pub fn pool_status(&self) -> (u64, u64, u64) {
        let idle = self.pool.num_idle() as u64;
        let size = u64::from(self.pool.size());
        (size.saturating_sub(idle), idle, u64::from(self.pool.options().get_max_connections()))
    }

    /// Whether cached reads are served now (the watcher runs and sees the database).
    pub fn caching(&self) -> bool {
        self.cache.enabled.load(Ordering::Acquire) && self.cache.watching.load(Ordering::Acquire)
    }

    /// Stops the watcher and waits (at most [`WATCH_TIMEOUT`]) for it to let its connection
    /// go, so that the database can be dropped at once (a bench, a test).
    pub(super) async fn stop_watching(&self) {
        self.cache.closed.store(true, Ordering::Release);
        self.cache.stop_serving("");
        self.cache.closing.notify_waiters();
        let deadline = tokio::time::Instant::now() + WATCH_TIMEOUT;
        while self.cache.watcher_running.load(Ordering::Acquire) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Turns cached reads on or off (on by default, once [`Store::watch_changes`] runs).
    pub fn set_read_cache(&self, enabled: bool) {
        self.cache.invalidate();
        self.cache.enabled.store(enabled, Ordering::Release);
    }

    pub fn cache_counts(&self) -> CacheCounts {
        CacheCounts { hits: self.cache.hits.load(Ordering::Relaxed), misses: self.cache.misses.load(Ordering::Relaxed) }
    }

    /// Starts, once, the task that watches the database for commits made by any
    /// connection; cached reads are served only while it runs. Needs a Tokio runtime
    /// (without one, nothing is cached). An in-memory SQLite database is never cached:
    /// no other connection sees it, so nothing could be watched.
    pub fn watch_changes(&self) {
        let url = self.pool.connect_options().database_url.to_string();
        if self.backend == Backend::Sqlite && url.contains(":memory:") {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.cache.watcher_started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.cache.watcher_running.store(true, Ordering::Release);
        runtime.spawn(watch(Arc::downgrade(&self.cache), url, self.backend));
    }
}

/// The watcher: stops when the last clone of its store is dropped.
async fn watch(cache: Weak<ReadCache>, url: String, backend: Backend) {
    match backend {
        Backend::Sqlite => watch_sqlite(cache.clone(), url).await,
        Backend::Postgres => watch_postgres(cache.clone(), url).await,
    }
    if let Some(cache) = cache.upgrade() {
        cache.watcher_running.store(false, Ordering::Release);
    }
}

/// The watcher's store, unless it was closed or dropped.
fn open_cache(cache: &Weak<ReadCache>) -> Option<Arc<ReadCache>> {
    cache.upgrade().filter(|c| !c.closed.load(Ordering::Acquire))
}

impl ReadCache {
    fn start_serving(&self) {
        self.invalidate();
        self.watching.store(true, Ordering::Release);
    }

    /// The database cannot be watched: nothing cached is served until it can again.
    fn stop_serving(&self, reason: &str) {
        self.invalidate();
        if self.watching.swap(false, Ordering::AcqRel) && !reason.is_empty() {
            tracing::warn!(reason, "read cache off: the database cannot be watched");
        }
    }
}

/// SQLite: `PRAGMA data_version`, on a connection of its own, moves whenever another
/// connection commits — the pool's as well as other processes'.
async fn watch_sqlite(cache: Weak<ReadCache>, url: String) {
    let mut conn: Option<AnyConnection> = None;
    let mut seen: Option<i64> = None;
    let mut ticks = crate::clock::ticks_every(WATCH_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(cache) = open_cache(&cache) else { break };
        match tokio::time::timeout(WATCH_TIMEOUT, data_version(&mut conn, &url)).await {
            Ok(Ok(version)) if seen == Some(version) => {}
            Ok(Ok(version)) => {
                seen = Some(version);
                cache.start_serving();
            }
            failed => {
                cache.stop_serving(&failure(failed));
                conn = None;
                seen = None;
            }
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

async fn data_version(conn: &mut Option<AnyConnection>, url: &str) -> sqlx::Result<i64> {
    if conn.is_none() {
        *conn = Some(AnyConnection::connect(url).await?);
    }
    let conn = conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
    let (version,): (i64,) = sqlx::query_as("PRAGMA data_version").fetch_one(conn).await?;
    Ok(version)
}

/// The channel the registry's triggers notify at commit (migration 0018).
const POSTGRES_CHANNEL: &str = "entcp_registry";

/// The channel `auth_failures`'s trigger notifies at commit (migration 0037).
const POSTGRES_LOCKOUT_CHANNEL: &str = "entcp_lockout";

/// PostgreSQL: the notifications of the registry's triggers (and of the lockout's, which
/// drop its shelf only), sent at commit to every listener. The listening connection is checked every second: a notification lost
/// with it would leave entries stale.
async fn watch_postgres(cache: Weak<ReadCache>, url: String) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(strong) = open_cache(&cache) else { break };
        let Some(active) = listener.as_mut() else {
            match tokio::time::timeout(WATCH_TIMEOUT, listen(&url)).await {
                Ok(Ok(connected)) => {
                    listener = Some(connected);
                    strong.start_serving();
                }
                failed => {
                    strong.stop_serving(&failure(failed));
                    tokio::select! {
                        () = strong.closing.notified() => break,
                        () = tokio::time::sleep(WATCH_TIMEOUT) => {}
                    }
                }
            }
            continue;
        };
        let heard = tokio::select! {
            () = strong.closing.notified() => break,
            heard = active.try_recv() => match heard {
                Ok(Some(heard)) => Ok(Some(heard.channel() == POSTGRES_LOCKOUT_CHANNEL)),
                // The connection was lost, and what was notified meanwhile with it.
                Ok(None) => Err(sqlx::Error::Protocol("connexion d'écoute perdue".into())),
                Err(e) => Err(e),
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                tokio::time::timeout(WATCH_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *active))
                    .await
                    .unwrap_or(Err(sqlx::Error::PoolTimedOut))
                    .map(|_| None)
            }
        };
        drop(strong);
        let Some(cache) = open_cache(&cache) else { break };
        match heard {
            Ok(Some(true)) => cache.invalidate_shelf(Shelf::Lockout),
            Ok(Some(false)) => cache.invalidate(),
            Ok(None) => {}
            Err(e) => {
                cache.stop_serving(&e.to_string());
                listener = None;
            }
        }
    }
    drop(listener);
}

async fn listen(url: &str) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen_all([POSTGRES_CHANNEL, POSTGRES_LOCKOUT_CHANNEL]).await?;
    Ok(listener)
}

fn failure<T>(failed: Result<sqlx::Result<T>, tokio::time::error::Elapsed>) -> String {
    match failed {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => String::new(),
        Err(_) => "délai dépassé".to_string(),
    }
}
