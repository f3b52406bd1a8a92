//! Bulk loads into an empty table, as database loaders do them: the table's secondary
//! indexes are set aside while the rows go in and built after, one sort each, instead
//! of one B-tree insertion per row and index. The keys behind a constraint (primary
//! key, `UNIQUE`) stay: upserts need them.
//!
//! A definition set aside is recorded in `deferred_indexes` by the transaction that
//! drops its index, and deleted by the one that builds it again: a load interrupted in
//! between leaves its committed rows and what to rebuild, which [`restore_indexes`]
//! (the next load, the next start) builds. On PostgreSQL the indexes are built at once,
//! each on its own connection of the native pool and in its own transaction (`CREATE
//! INDEX` takes a `SHARE` lock, which does not conflict with itself): the definitions
//! left in `deferred_indexes` are always exactly the indexes still missing.

use super::{timestamp, Backend, Store};
use sqlx::Row;

/// When `table` holds no row, sets its secondary indexes aside until
/// [`restore_indexes`] and returns true (also when another load already did);
/// returns false and changes nothing when the table holds rows.
pub async fn defer_indexes_if_empty(store: &Store, table: &'static str) -> sqlx::Result<bool> {
    let mut tx = store.begin_write().await?;
    // Lost in a crash, this transaction leaves the indexes and no record: consistent.
    super::relax_durability(&mut tx, store.backend()).await?;
    let has_rows = sqlx::query(&format!("SELECT 1 FROM {table} LIMIT 1")).fetch_optional(&mut *tx).await?.is_some();
    if has_rows {
        tx.rollback().await?;
        return Ok(false);
    }
    let now = timestamp(chrono::Utc::now());
    for (name, definition) in secondary_indexes(&mut tx, store.backend(), table).await? {
        sqlx::query(
            "INSERT INTO deferred_indexes (name, table_name, definition, deferred_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(table)
        .bind(&definition)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DROP INDEX IF EXISTS {name}")).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Builds the indexes set aside again if dropped before [`RestoreOnDrop::done`]: a load cut
/// mid-way (its request dropped when the client or the ingress hangs up) does not leave
/// them missing until the next start or load; the build then runs in a task of its own.
pub struct RestoreOnDrop(Option<Store>);

impl RestoreOnDrop {
    pub fn new(store: &Store) -> RestoreOnDrop {
        RestoreOnDrop(Some(store.clone()))
    }

    /// The load built them itself.
    pub fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let Some(store) = self.0.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            match restore_indexes(&store).await {
                Ok(built) => tracing::info!(built, "bulk load cut short: the indexes it set aside are built again"),
                Err(e) => tracing::warn!(error = %e, "bulk load cut short: indexes left to the next start or load"),
            }
        });
    }
}

/// Builds every index set aside by [`defer_indexes_if_empty`]; returns how many. Cheap
/// when there is none (one read of an empty table). On SQLite in one transaction, on
/// PostgreSQL all at once (see [`restore_in_parallel`]).
pub async fn restore_indexes(store: &Store) -> sqlx::Result<usize> {
    match &store.native {
        Some(native) => restore_in_parallel(store, native).await,
        None => restore_indexes_on(store, &mut *store.conn().await?).await,
    }
}

/// PostgreSQL: builds the indexes set aside at once, on as many connections of the
/// native pool (at most [`super::copy::BULK_CONNECTIONS`]), each index in its own
/// transaction that deletes its record: a build interrupted or failed leaves exactly the
/// missing indexes recorded (every other build still runs; the first error is returned).
/// The record's row lock makes a concurrent restorer of the same index wait, then find
/// it built. Returns how many this call built.
async fn restore_in_parallel(store: &Store, native: &sqlx::PgPool) -> sqlx::Result<usize> {
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT name FROM deferred_indexes ORDER BY name").fetch_all(&store.pool).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    store.cache.touched();
    let queue = std::sync::Mutex::new(pending.iter());
    let next = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
    let builder = || async {
        let mut conn = native.acquire().await?;
        let (mut built, mut failed) = (0, None);
        while let Some(name) = next() {
            match build_one(&mut conn, name).await {
                Ok(done) => built += usize::from(done),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(built), Err)
    };
    let builders = pending.len().min(super::copy::BULK_CONNECTIONS as usize);
    let results = futures_util::future::join_all((0..builders).map(|_| builder())).await;
    results.into_iter().sum()
}

/// Builds the index recorded under `name` and deletes its record, in one transaction;
/// false (nothing done) when another restorer built it meanwhile.
async fn build_one(conn: &mut sqlx::PgConnection, name: &str) -> sqlx::Result<bool> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    // Lost in a crash, the build leaves its record: the index is built again.
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
    let definition: Option<String> =
        sqlx::query_scalar("DELETE FROM deferred_indexes WHERE name = $1 RETURNING definition")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(definition) = definition else { return Ok(false) };
    sqlx::query(&if_not_exists(&definition)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// [`restore_indexes`] on a connection the caller holds (the one that loaded the rows,
/// whose page cache holds them on SQLite), in one transaction.
pub async fn restore_indexes_on(store: &Store, conn: &mut sqlx::AnyConnection) -> sqlx::Result<usize> {
    let pending = sqlx::query("SELECT 1 FROM deferred_indexes LIMIT 1").fetch_optional(&mut *conn).await?;
    if pending.is_none() {
        return Ok(0);
    }
    let mut tx = store.begin_write_on(conn).await?;
    let rows = sqlx::query("SELECT name, definition FROM deferred_indexes ORDER BY name").fetch_all(&mut *tx).await?;
    for row in &rows {
        let definition: String = row.try_get("definition")?;
        sqlx::query(&if_not_exists(&definition)).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM deferred_indexes").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// The names of the indexes of `table` that back no constraint (those a bulk load sets aside).
pub async fn secondary_index_names(store: &Store, table: &str) -> sqlx::Result<Vec<String>> {
    let mut conn = store.conn().await?;
    let indexes = secondary_indexes(&mut conn, store.backend(), table).await?;
    Ok(indexes.into_iter().map(|(name, _)| name).collect())
}

/// `CREATE [UNIQUE] INDEX name ...` as `CREATE [UNIQUE] INDEX IF NOT EXISTS name ...`
/// (a concurrent load may have built it already).
fn if_not_exists(definition: &str) -> String {
    match definition.split_once("INDEX ") {
        Some((head, rest)) if !rest.starts_with("IF NOT EXISTS") => format!("{head}INDEX IF NOT EXISTS {rest}"),
        _ => definition.to_string(),
    }
}

/// The (name, definition) of the indexes of `table` that back no constraint.
async fn secondary_indexes(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    table: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    let sql = match backend {
        // Constraint indexes (`sqlite_autoindex_…`) have no SQL text.
        Backend::Sqlite => {
            "SELECT name, sql AS definition FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT indexname::text AS name, indexdef AS definition FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1 \
             AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1)) \
             ORDER BY indexname"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((row.try_get("name")?, row.try_get("definition")?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_rebuilt_only_if_missing() {
        let plain = "CREATE INDEX IF NOT EXISTS a ON t (x)";
        for (given, built) in [
            ("CREATE INDEX a ON t (x)", plain),
            ("CREATE UNIQUE INDEX a ON t (x)", "CREATE UNIQUE INDEX IF NOT EXISTS a ON t (x)"),
            (plain, plain),
        ] {
            assert_eq!(if_not_exists(given), built);
        }
    }
}
