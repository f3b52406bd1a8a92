//! Reference series (`CONV-2026-000012`, `GC-2026-000001`, `ENT-2026-000042`): one counter
//! per series and year, taken by an atomic upsert inside the creating transaction, so two
//! creations never get the same number and a rolled-back one gives its number back.

use super::Tx;
use sqlx::Row;

/// The next reference of `series` for `year`: `{series}-{year}-{n:06}`.
pub async fn next_reference(tx: &mut Tx, series: &str, year: i32) -> sqlx::Result<String> {
    let n: i64 = sqlx::query(
        "INSERT INTO counters (series, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (series, year) DO UPDATE SET last = counters.last + 1 RETURNING last",
    )
    .bind(series)
    .bind(i64::from(year))
    .fetch_one(&mut **tx)
    .await?
    .try_get("last")?;
    Ok(format!("{series}-{year}-{n:06}"))
}
