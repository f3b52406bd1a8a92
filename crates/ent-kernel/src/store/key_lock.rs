//! A lock on one key (a groupement's membership) held across the several write transactions
//! of one change: in this process a mutex per key, so that a waiter holds no connection; on
//! PostgreSQL also a transaction-scoped advisory lock, so that every process sharing the
//! database waits its turn (SQLite's database is one process's). That lock is held on a
//! connection of the store's lock pool ([`lock_pool`]), never of the pool the change then
//! reads and writes through: a change holding the lock takes one connection of that pool at
//! a time, so that more changes at once than pooled connections queue instead of each holding
//! one and waiting for a second.

use super::{PoolOptions, Store};
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use tokio::sync::OwnedMutexGuard;

/// The mutexes of the keys locked in this process (an entry dies with its last holder).
static LOCAL: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

/// The two-key advisory lock space of [`Store::lock_key`] (apart from [`super::SerialLock`]'s
/// one-key space), the key's namespace as its first key.
fn namespace_key(namespace: &str) -> i32 {
    namespace.bytes().fold(7239_i32, |h, b| h.wrapping_mul(31).wrapping_add(i32::from(b)))
}

/// Connections of the lock pool at most ([`lock_pool`]): changes holding a key lock beyond them
/// (rare: a coordinator's decisions on several groupements at once) queue for one.
pub(super) const LOCK_CONNECTIONS: u32 = 4;

/// How long a key lock's transaction may stay idle before the server ends it: a change
/// holding the lock (a few transactions of a groupement's membership) takes seconds.
const LOCK_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// How long a change waits for a connection of the lock pool: it queues there as it does
/// for the key's mutex (its request's own timeout bounds it first), not the pool's seconds.
const LOCK_CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The pool of the connections holding the advisory locks of [`Store::lock_key`] (PostgreSQL),
/// connecting on first use: [`LOCK_CONNECTIONS`], no more than the store's pool has (`size`: a
/// holder beyond it would only wait for one of that pool), its sessions, and the native pool's
/// release check (a connection left inside a transaction is closed, its lock with it). Its
/// transactions are idle by design while the change they guard runs on other connections:
/// their idle limit is [`LOCK_IDLE_LIMIT`], far above any change (the pool's would release
/// the lock under a change still running), and TCP keepalives let the server notice a holder
/// whose host vanished within about two minutes rather than the system's two hours.
pub(super) fn lock_pool(url: &str, options: &PoolOptions, size: u32) -> sqlx::Result<PgPool> {
    use std::str::FromStr;
    // Zero is no limit, as configured for the pool.
    let configured = options.idle_in_transaction_timeout;
    let idle = if configured.is_zero() { configured } else { LOCK_IDLE_LIMIT.max(configured) };
    let session = [
        ("statement_timeout", options.statement_timeout.as_millis()),
        ("idle_in_transaction_session_timeout", idle.as_millis()),
        ("tcp_keepalives_idle", 60),
        ("tcp_keepalives_interval", 10),
        ("tcp_keepalives_count", 6),
    ];
    let connect = sqlx::postgres::PgConnectOptions::from_str(url)?.options(session);
    Ok(PgPoolOptions::new()
        .max_connections(size.min(LOCK_CONNECTIONS))
        .acquire_timeout(LOCK_CONNECTION_WAIT.max(options.acquire_timeout))
        .after_release(|conn, _meta| Box::pin(super::copy::reusable(conn)))
        .connect_lazy_with(connect))
}

/// Held until dropped or [`KeyLock::release`]d.
pub struct KeyLock {
    _local: OwnedMutexGuard<()>,
    /// PostgreSQL: the transaction, on a connection of the lock pool, holding the advisory lock.
    held: Option<sqlx::Transaction<'static, Postgres>>,
}

impl KeyLock {
    /// Releases the lock (PostgreSQL: ends the transaction holding it, which wrote nothing).
    pub async fn release(self) -> sqlx::Result<()> {
        if let Some(tx) = self.held {
            tx.rollback().await?;
        }
        Ok(())
    }
}

impl Store {
    /// Waits for, then holds, the lock of `key` in `namespace`: whoever changes what the key
    /// names across several transactions takes it first, and reads what it changes after.
    pub async fn lock_key(&self, namespace: &str, key: &str) -> sqlx::Result<KeyLock> {
        let mutex = {
            let mut map = LOCAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            map.retain(|_, held| held.strong_count() > 0);
            let name = format!("{namespace}:{key}");
            match map.get(&name).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(name, Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        let local = mutex.lock_owned().await;
        // PostgreSQL only: SQLite has no lock pool.
        let held = match &self.locks {
            None => None,
            Some(locks) => {
                let mut tx = locks.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(namespace_key(namespace))
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                Some(tx)
            }
        };
        Ok(KeyLock { _local: local, held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_have_stable_distinct_keys() {
        assert_eq!(namespace_key("groupement"), namespace_key("groupement"));
        assert_ne!(namespace_key("groupement"), namespace_key("tenant"));
    }
}
