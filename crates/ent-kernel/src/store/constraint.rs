//! Unique constraints: a concurrent or repeated insert that hits one is the
//! caller's conflict (409 with a sentence saying what already exists), any
//! other database error keeps its own mapping.

use crate::error::Problem;

/// For `.map_err(..)` on a write: a unique violation becomes a 409 with `detail`.
pub fn on_constraint(detail: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Problem {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Problem::conflict(detail.into()),
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_keep_their_own_mapping() {
        let problem = on_constraint("existe déjà")(sqlx::Error::RowNotFound);
        assert_ne!(problem.detail, "existe déjà");
    }
}
