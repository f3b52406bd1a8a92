//! Failure throttling: counts failures per key (a client address, a token id, a sign-in
//! login) in a sliding window. The count is kept in the database (`auth_failures`), so
//! every replica of `entctl serve` sees the same one and a restart forgets none. A key
//! with `max_failures` failures in the last `window` is blocked until the oldest of them
//! leaves the window.
//!
//! Two ways to count. [`Throttle::attempt`] counts an attempt *before* it is judged (a
//! password checked): in one serialised transaction it refuses if a key is at its limit,
//! and counts otherwise, so that attempts fired at once never get past the limit and an
//! attempt that cannot be counted is never judged; a successful one is taken back
//! ([`Throttle::take_back`]). [`Throttle::record_failure`] counts a failure once known (a
//! bearer token refused, cheap to check).
//!
//! Checking a key ([`Throttle::retry_after`], on every API request) reads that key's most
//! recent failures only, through the primary key, cached per key on the store's lockout
//! shelf (`store::Shelf::Lockout`): no query while nothing fails, and a failure counted
//! drops the lockout's cached reads only, never the registry's. Time is passed in by the
//! caller (the injectable clock), never read here.

use crate::error::{Problem, ProblemKind};
use crate::store::{serialise, timestamp, SerialLock, Shelf, Store};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::sync::Arc;

/// How many failures in which window block a key.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failures that block a key (0: never blocks).
    pub max_failures: u32,
    /// Length of the sliding window, in seconds.
    pub window_seconds: u64,
    /// Failures that block a client address ([`address_key`]), which a school or an académie
    /// may share behind one NAT; 0: `max_failures`.
    pub max_failures_per_address: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { max_failures: 20, window_seconds: 300, max_failures_per_address: 0 }
    }
}

/// What [`Throttle::attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted against every key; `tripped` when it completes a key's count (the lockout
    /// begins with it if it fails: audit it then, once).
    Counted { tripped: bool },
    /// A key is at its limit: nothing counted, nothing to judge; blocked for so many seconds.
    Refused { retry_after: u64 },
}

/// A key's failures, most recent first: (instant, failures at that instant).
type Failures = Vec<(String, i64)>;

/// A key's most recent failures, at most `limit` rows (each counts one failure or more, so
/// they are enough to tell whether the key is blocked): a backward range of the primary
/// key (scope, subject, failed_at), whatever the number of other keys.
const RECENT_FAILURES: &str = "SELECT failed_at, failures FROM auth_failures \
     WHERE scope = $1 AND subject = $2 ORDER BY failed_at DESC LIMIT $3";

/// Failure counts of one scope (`api`, `sign_in`: two throttles never share a key),
/// in the store; cheap to share behind an `Arc`.
pub struct Throttle {
    store: Store,
    scope: &'static str,
    config: ThrottleConfig,
}

impl Throttle {
    pub fn new(store: Store, scope: &'static str, config: ThrottleConfig) -> Throttle {
        Throttle { store, scope, config }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.window_seconds).unwrap_or(i64::MAX / 1000))
    }

    /// Whether the throttle counts nothing (`max_failures` 0).
    fn off(&self) -> bool {
        self.config.max_failures == 0
    }

    /// The failures that block `key`.
    fn limit(&self, key: &str) -> i64 {
        let per_address = self.config.max_failures_per_address;
        match key.starts_with(ADDRESS_PREFIX) && per_address > 0 {
            true => i64::from(per_address),
            false => i64::from(self.config.max_failures),
        }
    }

    /// Whole seconds until `key` may try again, if it is blocked at `now`.
    pub async fn retry_after(&self, key: &str, now: DateTime<Utc>) -> Result<Option<u64>, Problem> {
        if self.off() {
            return Ok(None);
        }
        let limit = self.limit(key);
        let load = async {
            let rows: Failures = sqlx::query_as(RECENT_FAILURES)
                .bind(self.scope)
                .bind(key)
                .bind(limit)
                .fetch_all(self.store.pool())
                .await?;
            Ok::<_, Problem>(Arc::new(rows))
        };
        let cache_key = format!("throttle:{}:{limit}:{key}", self.scope);
        let failures = self.store.cached_on(Shelf::Lockout, cache_key, load).await?;
        self.blocked_for(&failures, limit, now)
    }

    /// Whole seconds until a key with these `failures` (most recent first) may try again.
    fn blocked_for(&self, failures: &[(String, i64)], limit: i64, now: DateTime<Utc>) -> Result<Option<u64>, Problem> {
        let window_start = now - self.window();
        let mut counted = 0;
        for (at, count) in failures {
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|e| Problem::new(ProblemKind::Internal, format!("date d'échec illisible : {e}")))?
                .with_timezone(&Utc);
            if at <= window_start {
                break;
            }
            counted += count;
            if counted >= limit {
                // Blocked until the failure that completes the count leaves the window.
                let seconds = (at + self.window() - now).num_milliseconds().max(0) as u64;
                return Ok(Some(seconds.div_ceil(1000).max(1)));
            }
        }
        Ok(None)
    }

    /// Counts an attempt of `keys` at `now` before it is judged, unless one of them is
    /// blocked: then nothing is counted and the attempt is refused. One transaction,
    /// serialised with every other count, so that attempts fired at once are judged at
    /// most `max_failures` times. An error means the attempt could not be counted: refuse it.
    pub async fn attempt(&self, keys: &[String], now: DateTime<Utc>) -> Result<Attempt, Problem> {
        if self.off() {
            return Ok(Attempt::Counted { tripped: false });
        }
        let mut tx = self.begin().await?;
        self.forget_expired(&mut tx, now).await?;
        let mut blocked = None;
        for key in keys {
            let failures: Failures = sqlx::query_as(RECENT_FAILURES)
                .bind(self.scope)
                .bind(key)
                .bind(self.limit(key))
                .fetch_all(&mut *tx)
                .await?;
            blocked = blocked.max(self.blocked_for(&failures, self.limit(key), now)?);
        }
        let decided = match blocked {
            Some(retry_after) => Attempt::Refused { retry_after },
            None => {
                let mut tripped = false;
                for key in keys {
                    tripped |= self.count(&mut tx, key, now).await? == self.limit(key);
                }
                Attempt::Counted { tripped }
            }
        };
        self.commit(tx).await?;
        Ok(decided)
    }

    /// Takes back one attempt of `key` counted at `now` by [`Throttle::attempt`] (it
    /// succeeded: a school's shared address is not blocked by its own sign-ins).
    pub async fn take_back(&self, key: &str, now: DateTime<Utc>) -> Result<(), Problem> {
        let mut tx = self.begin().await?;
        for sql in [
            "UPDATE auth_failures SET failures = failures - 1 WHERE scope = $1 AND subject = $2 AND failed_at = $3",
            "DELETE FROM auth_failures WHERE scope = $1 AND subject = $2 AND failed_at = $3 AND failures <= 0",
        ] {
            sqlx::query(sql).bind(self.scope).bind(key).bind(timestamp(now)).execute(&mut *tx).await?;
        }
        self.commit(tx).await
    }

    /// Counts a failure of `key` at `now`, by an atomic upsert (two replicas counting at
    /// once lose neither); true when it is the one that blocks the key. Failures of the
    /// scope that left the window are deleted on the way.
    pub async fn record_failure(&self, key: &str, now: DateTime<Utc>) -> Result<bool, Problem> {
        if self.off() {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        self.forget_expired(&mut tx, now).await?;
        let counted = self.count(&mut tx, key, now).await?;
        self.commit(tx).await?;
        Ok(counted == self.limit(key))
    }

    /// Forgets every failure of `key` (a successful sign-in of the account).
    pub async fn reset(&self, key: &str) -> Result<(), Problem> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM auth_failures WHERE scope = $1 AND subject = $2")
            .bind(self.scope)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }

    /// A write of the counts, serialised with every other one (PostgreSQL; SQLite has a
    /// single writer), that keeps the registry's cached reads.
    async fn begin(&self) -> Result<crate::store::Tx, Problem> {
        let mut tx = self.store.begin_lockout_write().await?;
        serialise(&mut tx, self.store.backend(), SerialLock::Lockout).await?;
        Ok(tx)
    }

    /// Commits, then drops the lockout's cached reads (never before: a read in between
    /// would cache the counts of before).
    async fn commit(&self, tx: crate::store::Tx) -> Result<(), Problem> {
        tx.commit().await?;
        self.store.note_lockout_change();
        Ok(())
    }

    /// Deletes the failures of the scope that left the window.
    async fn forget_expired(&self, tx: &mut AnyConnection, now: DateTime<Utc>) -> Result<(), Problem> {
        sqlx::query("DELETE FROM auth_failures WHERE scope = $1 AND failed_at <= $2")
            .bind(self.scope)
            .bind(timestamp(now - self.window()))
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Counts one failure of `key` at `now` (atomic upsert); the key's count in the window after it.
    async fn count(&self, tx: &mut AnyConnection, key: &str, now: DateTime<Utc>) -> Result<i64, Problem> {
        sqlx::query(
            "INSERT INTO auth_failures (scope, subject, failed_at, failures) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (scope, subject, failed_at) DO UPDATE SET failures = auth_failures.failures + 1",
        )
        .bind(self.scope)
        .bind(key)
        .bind(timestamp(now))
        .execute(&mut *tx)
        .await?;
        let counted: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM auth_failures \
             WHERE scope = $1 AND subject = $2 AND failed_at > $3",
        )
        .bind(self.scope)
        .bind(key)
        .bind(timestamp(now - self.window()))
        .fetch_one(&mut *tx)
        .await?;
        Ok(counted)
    }
}

/// How [`address_key`] starts.
const ADDRESS_PREFIX: &str = "ip:";

/// Throttle key of a client address; IPv6 clients are counted per /64 (one subscriber's range).
pub fn address_key(client: &str) -> String {
    use std::net::IpAddr;
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => format!("ip:{client}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), address_key("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
        assert_eq!(address_key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(address_key("192.0.2.7"), "ip:192.0.2.7");
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Some(1)).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    /// A throttle of `scope` over `store` allowing `max_failures` a minute, with no limit per address.
    fn minute_throttle(store: Store, scope: &'static str, max_failures: u32) -> Throttle {
        Throttle::new(store, scope, ThrottleConfig { max_failures, window_seconds: 60, max_failures_per_address: 0 })
    }

    #[tokio::test]
    async fn a_key_is_blocked_after_max_failures_until_the_window_slides() {
        let (store, _dir) = store().await;
        let throttle = minute_throttle(store.clone(), "test", 3);
        assert!(!throttle.record_failure("ip:a", at(0)).await.unwrap());
        assert!(!throttle.record_failure("ip:a", at(10)).await.unwrap());
        assert_eq!(throttle.retry_after("ip:a", at(10)).await.unwrap(), None);
        assert!(throttle.record_failure("ip:a", at(20)).await.unwrap());
        assert_eq!(throttle.retry_after("ip:a", at(20)).await.unwrap(), Some(40));
        assert_eq!(throttle.retry_after("ip:b", at(20)).await.unwrap(), None);
        // The first failure leaves the window at 60: two remain, under the limit.
        assert_eq!(throttle.retry_after("ip:a", at(59)).await.unwrap(), Some(1));
        assert_eq!(throttle.retry_after("ip:a", at(60)).await.unwrap(), None);
        // Another scope never sees this one's keys; a throttle over the same store does.
        let other = minute_throttle(store.clone(), "autre", 3);
        assert_eq!(other.retry_after("ip:a", at(20)).await.unwrap(), None);
        let replica = minute_throttle(store, "test", 3);
        assert_eq!(replica.retry_after("ip:a", at(20)).await.unwrap(), Some(40));
    }

    #[tokio::test]
    async fn failures_at_one_instant_all_count_and_a_reset_forgets_them() {
        let (store, _dir) = store().await;
        let throttle = minute_throttle(store, "test", 3);
        for _ in 0..2 {
            assert!(!throttle.record_failure("login:a", at(0)).await.unwrap());
        }
        assert!(throttle.record_failure("login:a", at(0)).await.unwrap());
        assert_eq!(throttle.retry_after("login:a", at(0)).await.unwrap(), Some(60));
        throttle.reset("login:a").await.unwrap();
        assert_eq!(throttle.retry_after("login:a", at(0)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_attempt_is_counted_before_it_is_judged_and_refused_past_the_limit() {
        let (store, _dir) = store().await;
        let throttle = minute_throttle(store, "test", 2);
        let keys = ["ip:a".to_string(), "login:a".to_string()];
        assert_eq!(throttle.attempt(&keys, at(0)).await.unwrap(), Attempt::Counted { tripped: false });
        // A success is taken back from the address: it never adds up to a lockout.
        throttle.take_back("ip:a", at(0)).await.unwrap();
        assert_eq!(throttle.attempt(&keys[..1], at(1)).await.unwrap(), Attempt::Counted { tripped: false });
        // The account's second attempt completes its count (tripped), the next is refused
        // and counted nowhere (the address, at one, is not blocked by it).
        assert_eq!(throttle.attempt(&keys[1..], at(2)).await.unwrap(), Attempt::Counted { tripped: true });
        assert_eq!(throttle.attempt(&keys, at(3)).await.unwrap(), Attempt::Refused { retry_after: 57 });
        assert_eq!(throttle.retry_after("ip:a", at(3)).await.unwrap(), None);
        assert_eq!(throttle.retry_after("login:a", at(3)).await.unwrap(), Some(57));
    }

    #[tokio::test]
    async fn zero_max_failures_never_blocks() {
        let (store, _dir) = store().await;
        let throttle = minute_throttle(store, "test", 0);
        for s in 0..10 {
            throttle.record_failure("ip:a", at(s)).await.unwrap();
        }
        assert_eq!(throttle.retry_after("ip:a", at(10)).await.unwrap(), None);
    }
}
