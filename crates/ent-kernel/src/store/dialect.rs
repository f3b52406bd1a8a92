//! Where the SQL of the two backends differs: row locks, advisory locks, commit
//! durability, write concurrency, multi-row upserts. Domain code calls these
//! functions and never branches on [`Backend`] itself.

use super::{Backend, Store};
use std::borrow::Cow;
use std::fmt::Write;

/// Transaction-scoped advisory locks that serialise a series of writers on
/// PostgreSQL (on SQLite `begin_write` already holds the only write lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialLock {
    /// Appenders of the audit chain.
    AuditLog,
    /// Counters of failed authentications (kernel `throttle`): a count read then
    /// written is never read by another counter in between.
    Lockout,
    /// What puts a convention in force on its schools (a signature, the daily completion, a
    /// tacit renewal): each checks the others on its schools as committed, never two at once.
    ConventionCoverage,
    /// Annuaire imports taking their académies' locks (`import_locks`): each checks the locks
    /// of the others as committed, so that no two take académies that overlap.
    ImportLocks,
}

impl SerialLock {
    /// The lock's key (stable: two versions running side by side must agree).
    pub(super) fn key(self) -> i64 {
        match self {
            SerialLock::AuditLog => 7239001,
            SerialLock::Lockout => 7239002,
            SerialLock::ConventionCoverage => 7239003,
            SerialLock::ImportLocks => 7239004,
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

    /// The clause that keeps the selected rows from being updated until the end of the
    /// transaction, while others may read and share them; empty on SQLite, as above.
    pub fn for_share(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR SHARE",
        }
    }

    /// Whether a write transaction must lock the rows its decisions read ([`Backend::for_update`]):
    /// on PostgreSQL another transaction may change them between the read and the write; on
    /// SQLite `begin_write` holds every other writer off from its start.
    pub fn locks_rows(self) -> bool {
        !self.for_update().is_empty()
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

/// Takes `lock` until the end of the transaction open on `tx` (PostgreSQL; nothing to do on SQLite).
pub async fn serialise(tx: &mut sqlx::AnyConnection, backend: Backend, lock: SerialLock) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock.key()).execute(tx).await?;
    }
    Ok(())
}

/// Lets `tx` commit without waiting for its flush to disk (PostgreSQL): for writes
/// that a rerun restores, such as an idempotent import batch lost in a crash.
/// `tx` is a connection inside a transaction.
pub async fn relax_durability(tx: &mut sqlx::AnyConnection, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SET LOCAL synchronous_commit = off").execute(tx).await?;
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

/// SQLite: values per multi-row `VALUES` statement at most (its limit on bound
/// variables is 32,766), with positional `?` markers (numbered `$n` markers cost the
/// driver a name lookup each, quadratic in the row count).
const SQLITE_VALUES_PER_STATEMENT: usize = 16_384;

/// SQLite: the row counts of the statements that write `rows` rows of `width` values:
/// as many of the largest power of two that fits [`SQLITE_VALUES_PER_STATEMENT`] as
/// there are, then the rest by decreasing powers of two. Few distinct statements, each
/// prepared once by the driver's statement cache (keyed by the SQL text) and reused by
/// every later batch.
fn sqlite_statement_rows(rows: usize, width: usize) -> impl Iterator<Item = usize> {
    let largest = sqlite_rows_cap(width);
    let (full, rest) = (rows / largest, rows % largest);
    std::iter::repeat_n(largest, full).chain((0..usize::BITS).rev().map(|b| 1usize << b).filter(move |p| rest & p != 0))
}

/// The largest power of two of rows of `width` values within [`SQLITE_VALUES_PER_STATEMENT`] (at least 1).
fn sqlite_rows_cap(width: usize) -> usize {
    let fit = (SQLITE_VALUES_PER_STATEMENT / width.max(1)).max(1);
    1 << fit.ilog2()
}

/// Runs `statement(source)` over `rows`, where `source` is a row source with
/// `columns` (name, and `true` for an integer column) in that order, to put after
/// `INSERT INTO t (columns)`: multi-row `VALUES` on SQLite (by chunks), one
/// delimited-text parameter split by the server on PostgreSQL (one statement; JSON
/// when a value holds a delimiter). `tx` is a connection inside a transaction.
pub async fn write_rows(
    tx: &mut sqlx::AnyConnection,
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
    tx: &mut sqlx::AnyConnection,
    width: usize,
    rows: &[Vec<BulkValue<'_>>],
    statement: impl Fn(&str) -> String,
) -> sqlx::Result<()> {
    let row = format!("({})", vec!["?"; width].join(", "));
    let mut done = 0;
    for count in sqlite_statement_rows(rows.len(), width) {
        let chunk = &rows[done..done + count];
        done += count;
        let sql = statement(&format!("VALUES {}", vec![row.as_str(); chunk.len()].join(", ")));
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                BulkValue::Text(text) => query.bind(text.as_deref()),
                BulkValue::Int(int) => query.bind(*int),
            };
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// PostgreSQL: rows sent as one text parameter, split by the server with
/// `string_to_array` (several times cheaper for it than parsing JSON): values end at
/// [`PG_FIELD`], rows at [`PG_ROW`], and [`PG_NULL`] alone stands for NULL.
const PG_FIELD: char = '\u{1f}';
const PG_ROW: char = '\u{1e}';
const PG_NULL: char = '\u{1d}';

async fn write_rows_postgres(
    tx: &mut sqlx::AnyConnection,
    columns: &[(&str, bool)],
    rows: &[Vec<BulkValue<'_>>],
    statement: impl Fn(&str) -> String,
) -> sqlx::Result<()> {
    let (source, parameter) = match delimited_rows(columns.len(), rows) {
        Some(text) => (delimited_source(columns), text),
        None => (json_source(columns), json_rows(columns, rows)),
    };
    sqlx::query(&statement(&source)).bind(parameter).execute(tx).await?;
    Ok(())
}

/// The rows as delimited text, or `None` when a value holds a delimiter (or a row a
/// single column, which `string_to_array` would read as no value at all).
fn delimited_rows(width: usize, rows: &[Vec<BulkValue<'_>>]) -> Option<String> {
    if width < 2 {
        return None;
    }
    let mut out = String::with_capacity(rows.len() * width * 16);
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            out.push(PG_ROW);
        }
        for (c, value) in row.iter().enumerate() {
            if c > 0 {
                out.push(PG_FIELD);
            }
            match value {
                BulkValue::Text(Some(text)) if text.contains([PG_FIELD, PG_ROW, PG_NULL]) => return None,
                BulkValue::Text(Some(text)) => out.push_str(text),
                BulkValue::Int(Some(int)) => {
                    let _ = write!(out, "{int}");
                }
                BulkValue::Text(None) | BulkValue::Int(None) => out.push(PG_NULL),
            }
        }
    }
    Some(out)
}

/// `SELECT f[1] AS a, f[2]::bigint AS b ... FROM` the rows of [`delimited_rows`] in `$1`.
fn delimited_source(columns: &[(&str, bool)]) -> String {
    let values: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, int))| format!("f[{}]{} AS {name}", i + 1, if *int { "::bigint" } else { "" }))
        .collect();
    format!(
        "SELECT {} FROM unnest(string_to_array($1, chr({}))) AS r(line), string_to_array(r.line, chr({}), chr({})) AS f",
        values.join(", "),
        u32::from(PG_ROW),
        u32::from(PG_FIELD),
        u32::from(PG_NULL)
    )
}

/// The JSON array of row objects read by [`json_source`].
fn json_rows(columns: &[(&str, bool)], rows: &[Vec<BulkValue<'_>>]) -> String {
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
    serde_json::Value::Array(objects).to_string()
}

/// `SELECT a, b ... FROM json_to_recordset($1::json)`.
fn json_source(columns: &[(&str, bool)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<String> =
        columns.iter().map(|(name, int)| format!("{name} {}", if *int { "bigint" } else { "text" })).collect();
    format!("SELECT {} FROM json_to_recordset($1::json) AS r({})", names.join(", "), types.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values are joined by the delimiters, NULL is its own marker, and a value that
    /// holds a delimiter sends the batch as JSON instead.
    #[test]
    fn rows_are_delimited_unless_a_value_holds_a_delimiter() {
        let text = |v: &'static str| BulkValue::Text(Some(Cow::Borrowed(v)));
        let rows = vec![vec![text("a"), BulkValue::Int(Some(-3))], vec![BulkValue::Text(None), BulkValue::Int(None)]];
        assert_eq!(delimited_rows(2, &rows).as_deref(), Some("a\u{1f}-3\u{1e}\u{1d}\u{1f}\u{1d}"));
        for odd in ["x\u{1f}", "\u{1e}", "\u{1d}"] {
            assert_eq!(delimited_rows(2, &[vec![text(odd), text("b")]]), None, "{odd:?}");
        }
        assert_eq!(delimited_rows(1, &[vec![text("")]]), None);
        let source = delimited_source(&[("a", false), ("n", true)]);
        assert!(source.starts_with("SELECT f[1] AS a, f[2]::bigint AS n FROM"), "{source}");
    }

    /// SQLite statements write a fixed, power-of-two number of rows within the variable
    /// limit, then the rest by decreasing powers of two: every row once, few distinct texts.
    #[test]
    fn sqlite_statements_have_few_distinct_sizes() {
        assert_eq!(sqlite_statement_rows(1500, 22).collect::<Vec<_>>(), [512, 512, 256, 128, 64, 16, 8, 4]);
        assert_eq!(sqlite_statement_rows(3, 1).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(sqlite_statement_rows(0, 22).count(), 0);
        for (rows, width) in [(82_660, 22), (1, 40_000), (99_999, 3)] {
            let sizes: Vec<usize> = sqlite_statement_rows(rows, width).collect();
            assert_eq!(sizes.iter().sum::<usize>(), rows);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && (s * width <= SQLITE_VALUES_PER_STATEMENT || *s == 1)));
        }
    }

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
