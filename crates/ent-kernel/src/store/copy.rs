//! PostgreSQL `COPY FROM STDIN` for bulk loads: the fastest way in for many new rows
//! (no statement to parse per row, no conflict check), through a native pool the store
//! holds beside the `Any` one (whose driver has no COPY). SQLite has no such pool: its
//! bulk writes stay multi-row `VALUES` ([`super::write_rows`]).

use super::{BulkValue, SerialLock, Store};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use std::fmt::Write;

/// A transaction on the store's native PostgreSQL pool.
pub type CopyTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Connections of the native pool: as many as bulk writers run at once.
const COPY_CONNECTIONS: u32 = 2;

/// The native pool of a PostgreSQL URL, connecting on first use (never for a store
/// that does not bulk load).
pub(super) fn native_pool(url: &str, acquire_timeout: std::time::Duration) -> sqlx::Result<PgPool> {
    PgPoolOptions::new().max_connections(COPY_CONNECTIONS).acquire_timeout(acquire_timeout).connect_lazy(url)
}

impl Store {
    /// A transaction for [`copy_rows`], committing without waiting for its flush to
    /// disk (for writes that a rerun restores, as [`super::relax_durability`]);
    /// `None` on SQLite.
    pub async fn begin_copy(&self) -> sqlx::Result<Option<CopyTx>> {
        let Some(pool) = &self.native else { return Ok(None) };
        self.cache.touched();
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        Ok(Some(tx))
    }
}

/// Takes `lock` until the end of the native transaction `tx` (as [`super::serialise`]).
pub async fn serialise_copy(tx: &mut PgConnection, lock: SerialLock) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock.key()).execute(tx).await?;
    Ok(())
}

/// Writes `rows` into `table` (`columns` in row order) by one `COPY FROM STDIN`;
/// returns how many rows went in. A row that breaks a constraint fails the whole copy.
pub async fn copy_rows(
    tx: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<BulkValue<'_>>],
) -> sqlx::Result<u64> {
    let mut copy = tx.copy_in_raw(&format!("COPY {table} ({}) FROM STDIN", columns.join(", "))).await?;
    copy.send(copy_text(rows).into_bytes()).await?;
    copy.finish().await
}

/// `rows` in COPY's text format: tab between values, a line per row, `\N` for NULL,
/// backslash escapes for the characters that would end a value or a row.
fn copy_text(rows: &[Vec<BulkValue<'_>>]) -> String {
    let mut out = String::with_capacity(rows.len() * rows.first().map_or(0, Vec::len) * 16);
    for row in rows {
        for (c, value) in row.iter().enumerate() {
            if c > 0 {
                out.push('\t');
            }
            match value {
                BulkValue::Text(Some(text)) => push_escaped(&mut out, text),
                BulkValue::Int(Some(int)) => {
                    let _ = write!(out, "{int}");
                }
                BulkValue::Text(None) | BulkValue::Int(None) => out.push_str("\\N"),
            }
        }
        out.push('\n');
    }
    out
}

fn push_escaped(out: &mut String, text: &str) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn values_are_escaped_and_nulls_marked() {
        let text = |v: &'static str| BulkValue::Text(Some(Cow::Borrowed(v)));
        let rows = vec![
            vec![text("a\tb\\c\nd\re"), BulkValue::Int(Some(-3))],
            vec![BulkValue::Text(None), BulkValue::Int(None)],
            vec![text("\\N"), text("")],
        ];
        assert_eq!(copy_text(&rows), "a\\tb\\\\c\\nd\\re\t-3\n\\N\t\\N\n\\\\N\t\n");
    }
}
