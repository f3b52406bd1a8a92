//! Optimistic locking: an update names the version it was based on
//! (`… WHERE id = $n AND version = $m`); no row changed means another writer
//! moved the version first.

use crate::error::{precondition_failed, Problem};
use sqlx::any::AnyQueryResult;

/// The tail of a versioned update: `412` with the `current` version when the
/// update changed no row.
pub fn expect_version(done: &AnyQueryResult, current: i64) -> Result<(), Problem> {
    if done.rows_affected() == 0 {
        return Err(precondition_failed(current));
    }
    Ok(())
}

/// The check of an update that locked its row first: `412` with the `current`
/// version unless it is the `expected` one.
pub fn expect_same_version(expected: i64, current: i64) -> Result<(), Problem> {
    if expected != current {
        return Err(precondition_failed(current));
    }
    Ok(())
}
