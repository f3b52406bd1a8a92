//! Optimistic locking: an update names the version it was based on
//! (`… WHERE id = $n AND version = $m`); no row changed means another writer
//! moved the version first.

use super::sql::AnyQuery;
use super::timestamp;
use crate::error::{precondition_failed, Problem};
use chrono::{DateTime, Utc};
use sqlx::any::AnyQueryResult;
use sqlx::AnyConnection;

/// The tail of a versioned update: `412` with the `current` version when the
/// update changed no row.
pub fn expect_version(done: &AnyQueryResult, current: i64) -> Result<(), Problem> {
    if done.rows_affected() == 0 {
        return Err(precondition_failed(current));
    }
    Ok(())
}

/// Runs a versioned update whose last three parameters are its `updated_at` (`now`), the
/// row's `id` and the version the change was `based_on`
/// (`… updated_at = $n WHERE id = $n+1 AND version = $n+2`): [`expect_version`] with `current`.
pub async fn update_versioned<'q>(
    conn: &mut AnyConnection,
    query: AnyQuery<'q>,
    now: DateTime<Utc>,
    id: &'q str,
    based_on: i64,
    current: i64,
) -> Result<(), Problem> {
    let done = query.bind(timestamp(now)).bind(id).bind(based_on).execute(conn).await?;
    expect_version(&done, current)
}

/// The check of an update that locked its row first: `412` with the `current`
/// version unless it is the `expected` one.
pub fn expect_same_version(expected: i64, current: i64) -> Result<(), Problem> {
    if expected != current {
        return Err(precondition_failed(current));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_version_is_a_412_naming_the_current_one() {
        assert!(expect_same_version(3, 3).is_ok());
        let problem = expect_same_version(2, 3).unwrap_err();
        assert!(problem.to_string().contains("version actuelle 3"));
    }
}
