//! PostgreSQL `COPY FROM STDIN` for bulk loads: the fastest way in for many new rows
//! (no statement to parse per row, no conflict check), through a native pool the store
//! holds beside the `Any` one (whose driver has no COPY). SQLite has no such pool: its
//! bulk writes stay multi-row `VALUES` ([`super::write_rows`]).

use super::{BulkValue, SerialLock, Store};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

/// A transaction on the store's native PostgreSQL pool.
pub type CopyTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Connections of the native pool: enough for the bulk writers
/// ([`super::Backend::bulk_writers`]) and for building the secondary indexes of `orgs`
/// set aside by a first import all at once ([`super::restore_indexes`]).
pub(super) const BULK_CONNECTIONS: u32 = 5;

/// The native pool of a PostgreSQL URL, connecting on first use (never for a store
/// that does not bulk load). Its sessions have the store's idle-in-transaction limit and the
/// bulk statement limit ([`super::BULK_STATEMENT_TIMEOUT`]): a batch may run longer than a request.
pub(super) fn native_pool(url: &str, options: &super::PoolOptions) -> sqlx::Result<PgPool> {
    use std::str::FromStr;
    let session = options.postgres_session(super::BULK_STATEMENT_TIMEOUT);
    let connect = sqlx::postgres::PgConnectOptions::from_str(url)?.options(session);
    Ok(PgPoolOptions::new()
        .max_connections(BULK_CONNECTIONS)
        .acquire_timeout(options.acquire_timeout)
        // As the `Any` pool's release check (`super::reusable`): a `BEGIN` cut in flight
        // leaves the server inside a transaction the client does not count.
        .after_release(|conn, _meta| Box::pin(reusable(conn)))
        .connect_lazy_with(connect))
}

/// False when a released native connection is inside a transaction, counted or not.
pub(super) async fn reusable(conn: &mut PgConnection) -> sqlx::Result<bool> {
    use sqlx::{Connection, Executor, Row};
    if conn.is_in_transaction() {
        return Ok(false);
    }
    let open: bool = conn.fetch_one(super::OPEN_TRANSACTION).await?.try_get(0)?;
    Ok(!open)
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
    copy.send(copy_text(rows)).await?;
    copy.finish().await
}

/// `rows` in COPY's text format: tab between values, a line per row, `\N` for NULL,
/// backslash escapes for the characters that would end a value or a row.
fn copy_text(rows: &[Vec<BulkValue<'_>>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * rows.first().map_or(0, Vec::len) * 16);
    let mut digits = [0; 20];
    for row in rows {
        for (c, value) in row.iter().enumerate() {
            if c > 0 {
                out.push(b'\t');
            }
            match value {
                BulkValue::Text(Some(text)) => push_escaped(&mut out, text.as_bytes()),
                BulkValue::Int(Some(int)) => out.extend_from_slice(format_int(&mut digits, *int)),
                BulkValue::Text(None) | BulkValue::Int(None) => out.extend_from_slice(b"\\N"),
            }
        }
        out.push(b'\n');
    }
    out
}

/// Appends `text` with the bytes COPY reads as separators escaped (all ASCII: a UTF-8
/// sequence never holds them), copying the runs between them whole.
fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    let mut run = 0;
    for (i, byte) in text.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&text[run..i]);
        out.extend_from_slice(escaped);
        run = i + 1;
    }
    out.extend_from_slice(&text[run..]);
}

/// `int` in decimal, written at the end of `buffer` (room for any `i64`).
fn format_int(buffer: &mut [u8; 20], int: i64) -> &[u8] {
    let mut n = int.unsigned_abs();
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if int < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
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
        let ints = [0, 7, -1, 1_234_567, i64::MAX, i64::MIN];
        let row: Vec<Vec<BulkValue>> = vec![ints.iter().map(|i| BulkValue::Int(Some(*i))).collect()];
        let expected: Vec<String> = ints.iter().map(i64::to_string).collect();
        assert_eq!(String::from_utf8(copy_text(&row)).unwrap(), format!("{}\n", expected.join("\t")));
        assert_eq!(copy_text(&[vec![text("é\tè")]]), "é\\tè\n".as_bytes());
        assert_eq!(copy_text(&rows), b"a\\tb\\\\c\\nd\\re\t-3\n\\N\t\\N\n\\\\N\t\n");
    }
}
