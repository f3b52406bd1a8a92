//! Failure throttling: counts failures per key (a client address, a token id, later a
//! sign-in login) in a sliding window, in memory, per process. A key with `max_failures`
//! failures in the last `window` is blocked until the oldest of them leaves the window.
//! Time is passed in by the caller (the injectable clock), never read here.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

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

/// Keys tracked before expired ones are swept (bounds memory under a spread attack).
const SWEEP_ABOVE: usize = 10_000;

/// Failure counts per key; cheap to share behind an `Arc`.
pub struct Throttle {
    config: ThrottleConfig,
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle { config, failures: Mutex::new(HashMap::new()) }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.window_seconds).unwrap_or(i64::MAX / 1000))
    }

    /// Whole seconds until `key` may try again, if it is blocked at `now`.
    pub fn retry_after(&self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let limit = self.config.max_failures as usize;
        if limit == 0 {
            return None;
        }
        let failures = self.failures.lock().expect("throttle lock");
        let recent = failures.get(key)?;
        let in_window: Vec<_> = recent.iter().filter(|at| **at > now - self.window()).collect();
        if in_window.len() < limit {
            return None;
        }
        // Blocked until the failure that completes the count leaves the window.
        let frees_at = *in_window[in_window.len() - limit] + self.window();
        let seconds = (frees_at - now).num_milliseconds().max(0) as u64;
        Some(seconds.div_ceil(1000).max(1))
    }

    /// Counts a failure of `key` at `now`; true when it is the one that blocks the key.
    pub fn record_failure(&self, key: &str, now: DateTime<Utc>) -> bool {
        let limit = self.config.max_failures as usize;
        if limit == 0 {
            return false;
        }
        let window_start = now - self.window();
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, recent| recent.back().is_some_and(|at| *at > window_start));
        }
        let recent = failures.entry(key.to_string()).or_default();
        recent.retain(|at| *at > window_start);
        recent.push_back(now);
        // Only the last `limit` failures can decide whether the key is blocked.
        while recent.len() > limit {
            recent.pop_front();
        }
        recent.len() == limit
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

    #[test]
    fn a_key_is_blocked_after_max_failures_until_the_window_slides() {
        let throttle = Throttle::new(ThrottleConfig { max_failures: 3, window_seconds: 60 });
        assert!(!throttle.record_failure("ip:a", at(0)));
        assert!(!throttle.record_failure("ip:a", at(10)));
        assert_eq!(throttle.retry_after("ip:a", at(10)), None);
        assert!(throttle.record_failure("ip:a", at(20)));
        assert_eq!(throttle.retry_after("ip:a", at(20)), Some(40));
        assert_eq!(throttle.retry_after("ip:b", at(20)), None);
        // The first failure leaves the window at 60: two remain, under the limit.
        assert_eq!(throttle.retry_after("ip:a", at(59)), Some(1));
        assert_eq!(throttle.retry_after("ip:a", at(60)), None);
    }

    #[test]
    fn zero_max_failures_never_blocks() {
        let throttle = Throttle::new(ThrottleConfig { max_failures: 0, window_seconds: 60 });
        for s in 0..100 {
            throttle.record_failure("ip:a", at(s));
        }
        assert_eq!(throttle.retry_after("ip:a", at(100)), None);
    }
}
