//! Where the SQL of the two backends differs: row locks, advisory locks, commit
//! durability, write concurrency, multi-row upserts. Domain code calls these
//! functions and never branches on [`Backend`] itself.

use super::{Backend, Store, Tx};
use std::borrow::Cow;

/// Transaction-scoped advisory locks that serialise a series of writers on
/// PostgreSQL (on SQLite `begin_write` already holds the only write lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialLock {
    /// Appenders of the audit chain.
    AuditLog,
}

impl SerialLock {
    /// The lock's key (stable: two versions running side by side must agree).
    fn key(self) -> i64 {
        match self {
            SerialLock::AuditLog => 7239001,
        }
    }
}

impl Backend {
    /// `sqlite` or `postgres` (metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// True for a database server (PostgreSQL), where a scratch database must be created.
    /// The backend `conn` talks to, for the dialect functions below when only a
    /// connection (not the [`Store`]) is at hand.
    pub fn of_connection(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == Backend::Postgres.label() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn is_postgres(self) -> bool {
        self == Backend::Postgres
    }

    /// `SQLite` or `PostgreSQL` (what a reader sees).
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// The clause (with its leading space) that locks the selected rows until the end of
    /// the transaction; empty on SQLite, where `begin_write` holds the only write lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// [`Backend::for_update`] skipping the rows other transactions hold, so that
    /// concurrent claimers share the work.
    pub fn for_update_skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// How many write transactions are worth running at once: SQLite has one writer,
    /// PostgreSQL's own backend is the bottleneck of a bulk write beyond two.
    pub fn bulk_writers(self) -> usize {
        match self {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        }
    }
}

/// Takes `lock` until the end of `tx` (PostgreSQL; nothing to do on SQLite).
pub async fn serialise(tx: &mut Tx, backend: Backend, lock: SerialLock) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock.key()).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Lets `tx` commit without waiting for its flush to disk (PostgreSQL): for writes
/// that a rerun restores, such as an idempotent import batch lost in a crash.
pub async fn relax_durability(tx: &mut Tx, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// [`Backend::bulk_writers`] of this store.
    pub fn bulk_writers(&self) -> usize {
        self.backend.bulk_writers()
    }
}

/// One value of a row written by [`write_rows`]: text or integer, possibly NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkValue<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
}

/// SQLite: rows per multi-row `VALUES` statement, with positional `?` markers
/// (numbered `$n` markers cost the driver a name lookup each, quadratic in the row count).
const SQLITE_ROWS_PER_STATEMENT: usize = 500;

/// Runs `statement(source)` over `rows`, where `source` is a row source with
/// `columns` (name, and `true` for an integer column) in that order, to put after
/// `INSERT INTO t (columns)`: multi-row `VALUES` on SQLite (by chunks), one JSON
/// parameter expanded by `jsonb_to_recordset` on PostgreSQL (one statement).
pub async fn write_rows(
    tx: &mut Tx,
    backend: Backend,
    columns: &[(&str, bool)],
    rows: &[Vec<BulkValue<'_>>],
    statement: impl Fn(&str) -> String,
) -> sqlx::Result<()> {
    match backend {
        Backend::Sqlite => write_rows_sqlite(tx, columns.len(), rows, statement).await,
        Backend::Postgres => write_rows_postgres(tx, columns, rows, statement).await,
    }
}

async fn write_rows_sqlite(
    tx: &mut Tx,
    width: usize,
    rows: &[Vec<BulkValue<'_>>],
    statement: impl Fn(&str) -> String,
) -> sqlx::Result<()> {
    let row = format!("({})", vec!["?"; width].join(", "));
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let sql = statement(&format!("VALUES {}", vec![row.as_str(); chunk.len()].join(", ")));
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                BulkValue::Text(text) => query.bind(text.as_deref()),
                BulkValue::Int(int) => query.bind(*int),
            };
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_rows_postgres(
    tx: &mut Tx,
    columns: &[(&str, bool)],
    rows: &[Vec<BulkValue<'_>>],
    statement: impl Fn(&str) -> String,
) -> sqlx::Result<()> {
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let fields = columns.iter().zip(row).map(|((name, _), value)| {
                let value = match value {
                    BulkValue::Text(text) => serde_json::json!(text.as_deref()),
                    BulkValue::Int(int) => serde_json::json!(int),
                };
                (name.to_string(), value)
            });
            serde_json::Value::Object(fields.collect())
        })
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<String> =
        columns.iter().map(|(name, int)| format!("{name} {}", if *int { "bigint" } else { "text" })).collect();
    let source = format!("SELECT {} FROM jsonb_to_recordset($1::jsonb) AS r({})", names.join(", "), types.join(", "));
    sqlx::query(&statement(&source)).bind(serde_json::Value::Array(objects).to_string()).execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection names its backend, so a helper that only holds one locks rows
    /// on PostgreSQL and not on SQLite.
    #[tokio::test]
    async fn a_connection_knows_its_backend() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Some(1)).await.unwrap();
        let mut conn = store.conn().await.unwrap();
        assert_eq!(Backend::of_connection(&conn), Backend::Sqlite);
        assert_eq!(Backend::of_connection(&conn).for_update(), "");
        drop(conn);
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            let store = Store::connect(&url, Some(1)).await.unwrap();
            conn = store.conn().await.unwrap();
            assert_eq!(Backend::of_connection(&conn), Backend::Postgres);
            assert_eq!(Backend::of_connection(&conn).for_update(), " FOR UPDATE");
        }
    }
}
