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
