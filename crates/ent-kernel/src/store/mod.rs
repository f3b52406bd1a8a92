//! One store API over SQLite (embedded default) and PostgreSQL (production).
//!
//! Queries go through sqlx's `Any` driver with portable SQL (`$1` placeholders,
//! `ON CONFLICT`, text timestamps); what differs between backends is decided here.

mod cache;
pub mod constraint;
mod copy;
pub mod counters;
mod decode;
mod deferred_indexes;
mod dialect;
mod idempotency;
pub mod json;
mod key_lock;
mod migrate_lock;
pub mod migrations;
mod ready;
pub mod sql;
mod version;

pub use constraint::on_constraint;
pub use copy::{copy_rows, serialise_copy, CopyTx};
pub use sql::{page_size, Condition, Page, PageQuery, SqlValue, DEFAULT_PAGE, MAX_PAGE};
pub use version::{expect_same_version, expect_version, update_versioned};

pub use cache::{CacheCounts, Shelf, WATCH_INTERVAL};
pub use decode::{first_column, Flag, JsonObject, JsonText, Nullable, UnknownValue};
pub use deferred_indexes::{
    defer_indexes_if_empty, restore_indexes, restore_indexes_on, secondary_index_names, RestoreOnDrop,
};
pub use dialect::{relax_durability, serialise, write_rows, BulkValue, SerialLock};
pub use idempotency::{
    purge_idempotency_keys, IdempotencyKey, StoredAnswer, FORM_TOKENS_KEPT, IDEMPOTENCY_KEPT, RAN_UNANSWERED,
    RAN_UNANSWERED_STATUS,
};
pub use key_lock::KeyLock;
pub use ready::{FORGOTTEN_AFTER, READY_REUSE};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Transaction};
use std::path::PathBuf;
use std::time::Duration;

pub type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cache: std::sync::Arc<cache::ReadCache>,
    /// PostgreSQL: a native pool beside `Any`, for `COPY` ([`Store::begin_copy`]).
    native: Option<sqlx::PgPool>,
    /// PostgreSQL: the connections holding [`Store::lock_key`]'s advisory locks ([`key_lock::lock_pool`]).
    locks: Option<sqlx::PgPool>,
    /// The readiness heartbeat of this process ([`Store::check_ready`]).
    ready: std::sync::Arc<ready::Readiness>,
}

/// How long a request waits for a pooled connection before the store answers
/// « indisponible » (503 + `Retry-After`) rather than queueing for long.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL: how long a statement may run before the server cancels it (`statement_timeout`).
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// PostgreSQL: how long a transaction may wait for its client before the server ends the
/// session (`idle_in_transaction_session_timeout`): a hung request gives its locks back.
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// PostgreSQL: the statement limit of the bulk pool (`COPY` batches and index builds of a
/// large import), which may run longer than a request's statements.
pub const BULK_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// SQLite: how long a writer waits for the write lock before `database is locked`.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite: WAL pages after which a commit copies the WAL into the database file (its default).
const SQLITE_WAL_AUTOCHECKPOINT: u32 = 1000;

/// Pool settings; `Store::connect` uses the defaults.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Pool size; 8 on SQLite and 10 on PostgreSQL when absent.
    pub max_connections: Option<u32>,
    /// Longest wait for a free connection (and for a new connection to open).
    pub acquire_timeout: Duration,
    /// PostgreSQL: `statement_timeout` of every connection (zero: no limit). Migrations run
    /// without it; the bulk pool has [`BULK_STATEMENT_TIMEOUT`].
    pub statement_timeout: Duration,
    /// PostgreSQL: `idle_in_transaction_session_timeout` of every connection (zero: no limit).
    pub idle_in_transaction_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: None,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            idle_in_transaction_timeout: DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
        }
    }
}

impl PoolOptions {
    /// The session settings of a PostgreSQL connection, in milliseconds (0: no limit).
    fn postgres_session(&self, statement_timeout: Duration) -> [(&'static str, u128); 2] {
        [
            ("statement_timeout", statement_timeout.as_millis()),
            ("idle_in_transaction_session_timeout", self.idle_in_transaction_timeout.as_millis()),
        ]
    }
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("URL de base de données non prise en charge : {} (sqlite:// ou postgres://)", redact(url))
        }
    }

    /// Reads `url` as the connection will (its backend's driver): an unknown scheme, an invalid
    /// port, an unknown `sslmode`… are refused before anything starts. The error is the
    /// driver's reason only, never the URL (it may carry a password).
    pub fn check_url(url: &str) -> Result<Backend, String> {
        use std::str::FromStr;
        let backend = Backend::from_url(url).map_err(|_| "sqlite:// ou postgres:// attendu".to_string())?;
        let read = match backend {
            Backend::Sqlite => sqlx::sqlite::SqliteConnectOptions::from_str(url).map(drop),
            Backend::Postgres => sqlx::postgres::PgConnectOptions::from_str(url).map(drop),
        };
        read.map_err(|e| e.to_string())?;
        Ok(backend)
    }
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed).
    pub async fn connect(url: &str, max_connections: Option<u32>) -> anyhow::Result<Store> {
        Store::connect_with(url, PoolOptions { max_connections, ..PoolOptions::default() }).await
    }

    /// [`Store::connect`] with explicit pool settings.
    pub async fn connect_with(url: &str, options: PoolOptions) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        if backend == Backend::Sqlite {
            create_sqlite_file(url)?;
            open_sqlite_once(url, options).await?;
        }
        let default_size = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 10,
        };
        let size = options.max_connections.unwrap_or(default_size);
        let pool = AnyPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it hands out (a round trip per query on top of
            // the one on release); only one idle long enough to have been cut is checked.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta.idle_for)))
            // A connection still inside a transaction once released (its rollback failed,
            // e.g. after SQLITE_FULL or a broken socket) is closed instead of poisoning the
            // pool with « begin_with at non-zero transaction depth ».
            .after_release(move |conn, _meta| Box::pin(reusable(conn, backend)))
            .after_connect(move |conn, _meta| Box::pin(set_up_session(conn, backend, options)))
            .connect(url)
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(e) => return Err(unreachable(url, e).await),
        };
        let (native, locks) = match backend {
            Backend::Postgres => {
                (Some(copy::native_pool(url, &options)?), Some(key_lock::lock_pool(url, &options, size)?))
            }
            Backend::Sqlite => (None, None),
        };
        Ok(Store { pool, backend, cache: Default::default(), native, locks, ready: Default::default() })
    }

    /// Applies the pending migrations of this backend, then builds the indexes an
    /// interrupted bulk load left set aside.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = migrations::for_backend(self.backend);
        // PostgreSQL: sqlx holds an advisory lock; SQLite: a file lock, held until the end.
        let _lock = match self.backend {
            Backend::Sqlite => migrate_lock::sqlite(self.pool.connect_options().database_url.as_str()).await?,
            Backend::Postgres => None,
        };
        // Migrations may rewrite large tables, and wait for another replica's: no statement
        // limit, on a connection that then leaves the pool with its session.
        let mut conn = self.pool().acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
        }
        let ran = migrator.run(&mut *conn).await;
        match self.backend {
            Backend::Postgres => {
                use sqlx::Connection;
                let _ = conn.detach().close().await;
            }
            // Given back before the indexes below take one (a pool of one connection would wait).
            Backend::Sqlite => drop(conn),
        }
        ran.map_err(migrations::refusal)?;
        // Indexes a bulk load set aside and did not live to build again.
        deferred_indexes::restore_indexes(self).await?;
        Ok(())
    }

    /// The pool. Reaching the database this way (or by `conn`, `begin_write`) outside a
    /// [`Store::cached`] read drops every cached read: it may be a write.
    pub fn pool(&self) -> &AnyPool {
        self.cache.touched();
        &self.pool
    }

    /// One pooled connection, for helpers that take `&mut AnyConnection` so that
    /// inside a transaction they read through it (never a second connection).
    pub async fn conn(&self) -> sqlx::Result<sqlx::pool::PoolConnection<Any>> {
        self.pool().acquire().await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so that a read-then-write transaction never fails on
    /// lock upgrade; the busy timeout then queues writers instead. Inside a request run
    /// under an idempotency key, it marks the key in the transaction
    /// ([`IdempotencyKey::scope`]).
    pub async fn begin_write(&self) -> sqlx::Result<Tx> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        idempotency::mark_committed(&mut tx).await?;
        Ok(tx)
    }

    /// [`Store::begin_write`] for the lockout's counts only (`auth_failures`, kernel
    /// `throttle`): it keeps the registry's cached reads, and its writer calls
    /// [`Store::note_lockout_change`] once committed (a count changed must not stay cached).
    pub(crate) async fn begin_lockout_write(&self) -> sqlx::Result<Tx> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// [`Store::begin_write`] on a connection the caller holds: a bulk load keeps one
    /// from batch to batch, and with it SQLite's page cache (each pooled connection has its
    /// own, which reads again every page another connection wrote).
    pub async fn begin_write_on<'c>(&self, conn: &'c mut sqlx::AnyConnection) -> sqlx::Result<Transaction<'c, Any>> {
        use sqlx::Connection;
        self.cache.touched();
        let mut tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        idempotency::mark_committed(&mut tx).await?;
        Ok(tx)
    }

    /// SQLite: a connection of its own for a bulk load's batches (out of the pool: closed
    /// when dropped, never handed out again with its settings), whose commits stay in the
    /// WAL instead of being copied into the database file every 1,000 pages or so, with an
    /// `fsync` each (`wal_autocheckpoint = 0`): durability is the WAL's, as for any commit.
    /// [`Store::checkpoint_as_usual`] ends that before the load's last transaction, whose
    /// commit then copies the whole load at once. Its index builds sort their keys in one
    /// growing buffer (`temp_store = DEFAULT`: with `MEMORY`, SQLite's sorter allocates and
    /// frees each key on its own; a sort larger than the page cache spills to a temporary file).
    pub async fn bulk_connection(&self) -> sqlx::Result<sqlx::AnyConnection> {
        let mut conn = self.conn().await?.detach();
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
            sqlx::query("PRAGMA temp_store = DEFAULT").execute(&mut conn).await?;
        }
        Ok(conn)
    }

    /// SQLite: gives a [`Store::bulk_connection`] SQLite's usual checkpoints back.
    pub async fn checkpoint_as_usual(&self, conn: &mut sqlx::AnyConnection) -> sqlx::Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query(&format!("PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT}")).execute(conn).await?;
        }
        Ok(())
    }

    /// SQLite: copies the pages the WAL holds into the database file now, on a pooled
    /// connection, without waiting for readers or writers (`PASSIVE`); nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> sqlx::Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Refreshes the planner statistics of `table` (optionally `table (columns)`; PostgreSQL; SQLite plans
    /// these queries from its indexes alone: its statistics are averages, which a skewed column such
    /// as `orgs.kind` — three rows in four are schools — would mislead).
    pub async fn analyze(&self, table: &'static str) -> sqlx::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("ANALYZE {table}")).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// `sql` prefixed to return its plan: SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`.
    pub fn explain_statement(&self, sql: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            Backend::Postgres => format!("EXPLAIN {sql}"),
        }
    }

    /// One step of a plan read with [`Store::explain_statement`].
    pub fn plan_step(&self, row: &AnyRow) -> sqlx::Result<String> {
        use sqlx::Row;
        match self.backend {
            Backend::Sqlite => row.try_get("detail"),
            Backend::Postgres => row.try_get(0),
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.stop_watching().await;
        if let Some(native) = &self.native {
            native.close().await;
        }
        if let Some(locks) = &self.locks {
            locks.close().await;
        }
        self.pool.close().await
    }
}

/// The settings of every new connection: SQLite's pragmas (WAL, busy timeout, foreign
/// keys…); PostgreSQL's statement and idle-in-transaction limits ([`PoolOptions`]).
async fn set_up_session(conn: &mut sqlx::AnyConnection, backend: Backend, options: PoolOptions) -> sqlx::Result<()> {
    let statements: Vec<String> = match backend {
        Backend::Sqlite => [
            "PRAGMA journal_mode = WAL".to_string(),
            format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis()),
            "PRAGMA foreign_keys = ON".into(),
            "PRAGMA synchronous = NORMAL".into(),
            "PRAGMA cache_size = -65536".into(),
            "PRAGMA temp_store = MEMORY".into(),
        ]
        .into(),
        Backend::Postgres => options
            .postgres_session(options.statement_timeout)
            .iter()
            .map(|(setting, millis)| format!("SET {setting} = {millis}"))
            .collect(),
    };
    for statement in &statements {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// How long a pooled connection may stay idle and still be handed out unchecked.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Whether an idle connection may be handed out: pinged when idle longer than
/// [`IDLE_BEFORE_PING`] (a restarted server or a cut socket then shows here).
async fn ping_if_idle(conn: &mut sqlx::AnyConnection, idle_for: Duration) -> sqlx::Result<bool> {
    use sqlx::Connection;
    if idle_for > IDLE_BEFORE_PING {
        conn.ping().await?;
    }
    Ok(true)
}

/// False when a released connection is still inside a transaction. SQLite rolls a
/// dropped transaction back on its worker thread: the ping waits for that rollback.
/// PostgreSQL: sqlx counts a transaction only once `BEGIN` has answered, so a future cut
/// while `BEGIN` was in flight (a request timed out, a client gone) leaves the server inside
/// a transaction sqlx does not know of (sqlx#4385, fixed after 0.8.6); the server is asked.
async fn reusable(conn: &mut sqlx::AnyConnection, backend: Backend) -> sqlx::Result<bool> {
    use sqlx::Connection;
    if backend == Backend::Sqlite && conn.is_in_transaction() {
        conn.ping().await?;
    }
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("connection released inside a transaction (failed rollback): closed");
        return Ok(false);
    }
    if backend == Backend::Postgres && open_on_server(conn).await? {
        tracing::warn!("connection released inside a transaction begun by a cancelled task: closed");
        return Ok(false);
    }
    Ok(true)
}

/// PostgreSQL: whether the session is inside a transaction block. Sent by the simple
/// protocol (no arguments), this statement is the first of its own transaction unless one
/// is open, and only then do the two clocks differ (PostgreSQL's documented behaviour).
pub(super) const OPEN_TRANSACTION: &str = "SELECT statement_timestamp() <> transaction_timestamp()";

/// Whether the PostgreSQL session behind `conn` is inside a transaction block, whatever
/// the client counts ([`OPEN_TRANSACTION`]); a failed transaction's session answers an error.
async fn open_on_server(conn: &mut sqlx::AnyConnection) -> sqlx::Result<bool> {
    use sqlx::{Executor, Row};
    conn.fetch_one(OPEN_TRANSACTION).await?.try_get(0)
}

/// A SQLite file this process cannot use: its folder cannot be created, the file or its volume
/// is read-only, or it is no database. A deployment's mistake (volume mode, `fsGroup`), told at
/// once with the path and the cause; `entctl` exits as for a configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableDatabaseFile(String);

/// Creates the SQLite file (0600, in a 0700 folder) before SQLite does with the
/// umask's mode; its WAL and shared-memory files inherit the file's mode.
fn create_sqlite_file(url: &str) -> Result<(), UnusableDatabaseFile> {
    let Some(path) = sqlite_file_path(url) else { return Ok(()) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::private_dir(dir).map_err(|e| {
            UnusableDatabaseFile(format!("création du dossier de la base SQLite {} impossible : {e}", dir.display()))
        })?;
    }
    crate::files::touch_private(&path)
        .map_err(|e| UnusableDatabaseFile(format!("création de la base SQLite {} impossible : {e}", path.display())))
}

/// SQLite: opens the file once as each pooled connection will (its session's pragmas create the
/// WAL beside it), so that a file that cannot be written is told at once with its cause, not
/// after the pool's acquire timeout as a server that does not answer (the pool retries a failed
/// connection set-up until then, and keeps only the timeout). Other errors are left to the pool.
async fn open_sqlite_once(url: &str, options: PoolOptions) -> Result<(), UnusableDatabaseFile> {
    use sqlx::Connection;
    let Some(path) = sqlite_file_path(url) else { return Ok(()) };
    let opened = async {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        let set_up = set_up_session(&mut conn, Backend::Sqlite, options).await;
        let _ = conn.close().await;
        set_up
    };
    let Err(e) = opened.await else { return Ok(()) };
    match sqlite_unusable_reason(&e) {
        Some(reason) => {
            Err(UnusableDatabaseFile(format!("base SQLite {} inutilisable : {reason} — {e}", path.display())))
        }
        None => Ok(()),
    }
}

/// Why SQLite refused to open or write a file, in French, for the result codes that a retry
/// does not change: read-only (`SQLITE_READONLY` and its extended codes), cannot open
/// (`SQLITE_CANTOPEN`), not a database (`SQLITE_NOTADB`).
fn sqlite_unusable_reason(e: &sqlx::Error) -> Option<&'static str> {
    let sqlx::Error::Database(db) = e else { return None };
    let code: i64 = db.code()?.parse().ok()?;
    match code & 0xff {
        8 => Some(
            "fichier ou dossier en lecture seule (volume monté en lecture seule, ou droits insuffisants \
             pour l'utilisateur du processus : propriétaire, mode, fsGroup)",
        ),
        14 => Some(
            "ouverture du fichier impossible (dossier absent ou non inscriptible, droits du fichier, \
             volume en lecture seule)",
        ),
        26 => Some("ce fichier n'est pas une base SQLite"),
        _ => None,
    }
}

/// Bounds how long the rest of `tx` waits for a row lock another transaction holds (PostgreSQL:
/// `lock_timeout`, answered as a timeout); SQLite's one writer waits on its busy timeout.
pub async fn limit_lock_waits(tx: &mut Tx, backend: Backend, limit: std::time::Duration) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        let statement = format!("SET LOCAL lock_timeout = '{}ms'", limit.as_millis());
        sqlx::query(&statement).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The file of a `sqlite:` URL; `None` for an in-memory database.
pub fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:").split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || path.starts_with("file::memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Hides the password of a database URL for logs and messages: in its user information
/// (`user:pw@`) and in a `password=` query parameter (both forms reach the driver).
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), userinfo_end(url)) {
        (Some(scheme_end), Some(at)) => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url,
    }
}

/// Where the user information of a URL ends: its last `@`, as the driver reads a password
/// holding `@`. A password may also hold `/`, `?` or `#` (the driver then refuses the URL, and
/// the message quoting it must still hide it), so the authority is not cut at them; only an `@`
/// inside a query parameter's value (`?application_name=a@b`) is not the end of it.
fn userinfo_end(url: &str) -> Option<usize> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let in_query_value = |at: usize| match rest[..at].find('?') {
        Some(question) => rest[question..at].contains('='),
        None => false,
    };
    rest.rmatch_indices('@').map(|(at, _)| at).find(|at| !in_query_value(*at)).map(|at| start + at)
}

/// A new sortable id (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The store's timestamp format: UTC, microseconds, sortable as text.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A stored timestamp (RFC 3339, as [`timestamp`] writes it) read back; `None` when it is not one.
pub fn parse_timestamp(stored: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(stored).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Bind markers for `count` values starting at position `first`: numbered
/// (`$3, $4`) on PostgreSQL, positional (`?, ?`) on SQLite, whose driver looks
/// every numbered marker up by name (quadratic in long lists). A statement must
/// then use positional markers throughout on SQLite.
pub fn markers(backend: Backend, first: usize, count: usize) -> String {
    match backend {
        Backend::Sqlite => vec!["?"; count].join(", "),
        Backend::Postgres => placeholders(first, count),
    }
}

/// `$first, $first+1, ...` placeholders for `count` values.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Reads an optional text column.
pub fn opt_text(row: &AnyRow, column: &str) -> Option<String> {
    use sqlx::Row;
    row.try_get::<Option<String>, _>(column).ok().flatten()
}

/// Why the database at `url` cannot be reached, in French. The pool only says that it timed
/// out waiting for a connection: one direct connection is tried to name the cause (refused,
/// password, unknown database), which the message then gives as the driver words it.
async fn unreachable(url: &str, error: sqlx::Error) -> anyhow::Error {
    let cause = match error {
        sqlx::Error::PoolTimedOut => {
            match tokio::time::timeout(Duration::from_secs(5), <sqlx::AnyConnection as sqlx::Connection>::connect(url))
                .await
            {
                Ok(Err(e)) => e,
                _ => sqlx::Error::PoolTimedOut,
            }
        }
        other => other,
    };
    anyhow::anyhow!("connexion à la base impossible ({}) : {}{cause}", redact(url), unreachable_hint(&cause))
}

/// The French reading of a connection error's usual causes, ending in « — » ("" otherwise).
fn unreachable_hint(cause: &sqlx::Error) -> &'static str {
    match cause {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "le serveur refuse la connexion (arrêté, ou un autre hôte ou port ?) — "
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01") => "mot de passe refusé — ",
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            "cette base n'existe pas sur le serveur — "
        }
        sqlx::Error::PoolTimedOut => "le serveur ne répond pas dans le délai (database.acquire_timeout_seconds) — ",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.cargo/config.toml` builds SQLite without memory statistics (a global mutex
    /// on every allocation that concurrent reads queued on).
    #[tokio::test]
    async fn sqlite_is_built_without_memory_statistics() {
        use sqlx::Row;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Some(1)).await.unwrap();
        let options: Vec<String> = sqlx::query("PRAGMA compile_options")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://ent:p@ss@db/ent"), "postgres://ent:***@db/ent");
        assert_eq!(
            redact("postgres://ent:p@ss@db/ent?application_name=a@b"),
            "postgres://ent:***@db/ent?application_name=a@b"
        );
        assert_eq!(redact("sqlite://./data/entcp.db"), "sqlite://./data/entcp.db");
        // A password holding a URL delimiter is hidden whole (the driver refuses such a URL,
        // and its error message quotes it).
        assert_eq!(redact("postgres://ent:Xy#9k@db/ent"), "postgres://ent:***@db/ent");
        assert_eq!(redact("postgres://ent:ab?cd@db"), "postgres://ent:***@db");
        assert_eq!(redact("postgres://ent:12?x@db"), "postgres://ent:***@db");
        assert_eq!(redact("postgres://ent:a/b@db/ent"), "postgres://ent:***@db/ent");
        assert_eq!(redact("postgres://ent:a@b#c@db/ent"), "postgres://ent:***@db/ent");
        assert_eq!(redact("postgres://pg/entcp?user=x&email=a@b"), "postgres://pg/entcp?user=x&email=a@b");
        assert_eq!(
            redact("postgres://pg/entcp?user=entcp&Password=S3cr3t&sslmode=require"),
            "postgres://pg/entcp?user=entcp&Password=***&sslmode=require"
        );
    }

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
