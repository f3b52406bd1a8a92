//! Failure throttling: counts failures per key (a client address, a token id, a sign-in
//! login) in a sliding window. The count is kept in the database (`auth_failures`), so
//! every replica of `entctl serve` sees the same one and a restart forgets none. A key
//! with `max_failures` failures in the last `window` is blocked until the oldest of them
//! leaves the window. Checking a key is a cached read (the keys over their limit, one entry
//! per scope), so that the check every API request makes costs no query while nothing fails. Time is passed in by the caller (the injectable clock), never read here.

use crate::error::{Problem, ProblemKind};
use crate::store::{timestamp, Store};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How many failures in which window block a key.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failures that block a key (0: never blocks).
    pub max_failures: u32,
    /// Length of the sliding window, in seconds.
    pub window_seconds: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { max_failures: 20, window_seconds: 300 }
    }
}

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

    /// Whole seconds until `key` may try again, if it is blocked at `now`.
    pub async fn retry_after(&self, key: &str, now: DateTime<Utc>) -> Result<Option<u64>, Problem> {
        let limit = i64::from(self.config.max_failures);
        if limit == 0 {
            return Ok(None);
        }
        let window_start = now - self.window();
        let mut counted = 0;
        // Most recent first: one row per instant, each counting at least one failure.
        for (_, at, failures) in self.over_limit().await?.iter().filter(|(subject, _, _)| subject == key) {
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|e| Problem::new(ProblemKind::Internal, format!("date d'échec illisible : {e}")))?
                .with_timezone(&Utc);
            if at <= window_start {
                break;
            }
            counted += failures;
            if counted >= limit {
                // Blocked until the failure that completes the count leaves the window.
                let seconds = (at + self.window() - now).num_milliseconds().max(0) as u64;
                return Ok(Some(seconds.div_ceil(1000).max(1)));
            }
        }
        Ok(None)
    }

    /// The failures of the keys of this scope that count `max_failures` or more, whenever
    /// they happened (the caller keeps those in its window), most recent first. One cached
    /// read for the whole scope: every request checks its address, and the answer changes
    /// only when a failure is counted (a write, here or on another replica, drops it) or
    /// as time passes (applied by the caller, never cached).
    async fn over_limit(&self) -> Result<Arc<Vec<(String, String, i64)>>, Problem> {
        let limit = i64::from(self.config.max_failures);
        let load = async {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT subject, failed_at, failures FROM auth_failures WHERE scope = $1 AND subject IN \
                 (SELECT subject FROM auth_failures WHERE scope = $1 GROUP BY subject HAVING SUM(failures) >= $2) \
                 ORDER BY failed_at DESC",
            )
            .bind(self.scope)
            .bind(limit)
            .fetch_all(self.store.pool())
            .await?;
            Ok::<_, Problem>(Arc::new(rows))
        };
        self.store.cached(format!("throttle:{}:{limit}", self.scope), load).await
    }

    /// Counts a failure of `key` at `now`, by an atomic upsert (two replicas counting at
    /// once lose neither); true when it is the one that blocks the key. Failures of the
    /// scope that left the window are deleted on the way.
    pub async fn record_failure(&self, key: &str, now: DateTime<Utc>) -> Result<bool, Problem> {
        let limit = i64::from(self.config.max_failures);
        if limit == 0 {
            return Ok(false);
        }
        let window_start = timestamp(now - self.window());
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM auth_failures WHERE scope = $1 AND failed_at <= $2")
            .bind(self.scope)
            .bind(&window_start)
            .execute(&mut *tx)
            .await?;
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
        .bind(&window_start)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(counted == limit)
    }

    /// Forgets every failure of `key` (a successful sign-in of the account).
    pub async fn reset(&self, key: &str) -> Result<(), Problem> {
        sqlx::query("DELETE FROM auth_failures WHERE scope = $1 AND subject = $2")
            .bind(self.scope)
            .bind(key)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

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

    #[tokio::test]
    async fn a_key_is_blocked_after_max_failures_until_the_window_slides() {
        let (store, _dir) = store().await;
        let throttle = Throttle::new(store.clone(), "test", ThrottleConfig { max_failures: 3, window_seconds: 60 });
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
        let other = Throttle::new(store.clone(), "autre", ThrottleConfig { max_failures: 3, window_seconds: 60 });
        assert_eq!(other.retry_after("ip:a", at(20)).await.unwrap(), None);
        let replica = Throttle::new(store, "test", ThrottleConfig { max_failures: 3, window_seconds: 60 });
        assert_eq!(replica.retry_after("ip:a", at(20)).await.unwrap(), Some(40));
    }

    #[tokio::test]
    async fn failures_at_one_instant_all_count_and_a_reset_forgets_them() {
        let (store, _dir) = store().await;
        let throttle = Throttle::new(store, "test", ThrottleConfig { max_failures: 3, window_seconds: 60 });
        for _ in 0..2 {
            assert!(!throttle.record_failure("login:a", at(0)).await.unwrap());
        }
        assert!(throttle.record_failure("login:a", at(0)).await.unwrap());
        assert_eq!(throttle.retry_after("login:a", at(0)).await.unwrap(), Some(60));
        throttle.reset("login:a").await.unwrap();
        assert_eq!(throttle.retry_after("login:a", at(0)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn zero_max_failures_never_blocks() {
        let (store, _dir) = store().await;
        let throttle = Throttle::new(store, "test", ThrottleConfig { max_failures: 0, window_seconds: 60 });
        for s in 0..10 {
            throttle.record_failure("ip:a", at(s)).await.unwrap();
        }
        assert_eq!(throttle.retry_after("ip:a", at(10)).await.unwrap(), None);
    }
}
