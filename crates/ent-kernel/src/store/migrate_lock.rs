//! An exclusive lock around migrations on SQLite, as sqlx takes an advisory lock
//! on PostgreSQL: two processes starting at once on a fresh file must not both
//! apply the same migration. The lock is a `flock` on a file next to the database.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// Waits for and holds the migration lock of the SQLite database at `url` until
/// the returned file is dropped; `None` for an in-memory database.
pub async fn sqlite(url: &str) -> anyhow::Result<Option<File>> {
    let Some(path) = lock_path(url) else { return Ok(None) };
    let file = crate::files::touch_private(&path)
        .and_then(|()| OpenOptions::new().write(true).open(&path))
        .map_err(|e| anyhow::anyhow!("verrou de migration {} impossible : {e}", path.display()))?;
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await??;
    Ok(Some(file))
}

/// `<database file>.migrate-lock`, from a `sqlite:` URL.
fn lock_path(url: &str) -> Option<PathBuf> {
    let mut path = super::sqlite_file_path(url)?.into_os_string();
    path.push(".migrate-lock");
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_next_to_the_database() {
        assert_eq!(lock_path("sqlite://./data/entcp.db?mode=rwc"), Some(PathBuf::from("./data/entcp.db.migrate-lock")));
        assert_eq!(lock_path("sqlite::memory:"), None);
    }
}
