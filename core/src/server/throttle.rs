//! Online guessing throttle for logins.
//!
//! A password can only be tested online through `KEYSTORE_FETCH` (its proof
//! is an HMAC under the password-derived verifier); a login itself needs the
//! RSA key, which cannot be guessed. So:
//!
//! - per **account**, wrong keystore proofs are counted, and once
//!   [`ServerConfig::login_failures_per_account`](super::ServerConfig::login_failures_per_account)
//!   are outstanding, further fetches of that account get `RATE_LIMITED`
//!   before any proof is checked. Logging in with the key is never throttled
//!   per account, so an attacker who locks an account's fetch out does not lock
//!   its owner out of a machine that holds the keystore;
//! - per **address** (the peer's IP, without the port), every failed
//!   authentication (wrong proof, bad login signature, unknown account) is
//!   counted, and past
//!   [`ServerConfig::login_failures_per_address`](super::ServerConfig::login_failures_per_address)
//!   that address gets `RATE_LIMITED` for any `AUTH_HELLO`.
//!
//! Each count decays by one every
//! [`ServerConfig::login_failure_decay`](super::ServerConfig::login_failure_decay)
//! (a leaky bucket). At most [`MAX_TRACKED`] keys are tracked; beyond that
//! the ones with the fewest outstanding failures are forgotten first.

use core::time::Duration;
use std::collections::BTreeMap;

use crate::time::Instant;

/// Most accounts and addresses tracked at once.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    /// When the last decay step was applied.
    since: Instant,
}

/// Failure counts for one kind of key (accounts, or addresses).
#[derive(Debug)]
pub(super) struct Throttle {
    limit: u32,
    decay: Duration,
    counts: BTreeMap<String, Count>,
}

impl Throttle {
    pub(super) fn new(limit: u32, decay: Duration) -> Self {
        Self {
            limit,
            decay: decay.max(Duration::from_millis(1)),
            counts: BTreeMap::new(),
        }
    }

    fn decayed(&self, count: Count, now: Instant) -> Count {
        let elapsed = now.saturating_duration_since(count.since);
        let steps = elapsed.as_micros() / self.decay.as_micros().max(1);
        let steps32 = u32::try_from(steps).unwrap_or(u32::MAX);
        if steps32 == 0 {
            return count;
        }
        let advance = self
            .decay
            .checked_mul(steps32)
            .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        Count {
            failures: count.failures.saturating_sub(steps32),
            since: Instant::from_micros(
                count
                    .since
                    .as_micros()
                    .saturating_add(u64::try_from(advance.as_micros()).unwrap_or(u64::MAX)),
            ),
        }
    }

    /// `Some(retry_in)` when `key` is over its limit at `now`.
    pub(super) fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let count = self.decayed(*self.counts.get(key)?, now);
        (count.failures >= self.limit).then(|| {
            let next = count
                .since
                .as_micros()
                .saturating_add(u64::try_from(self.decay.as_micros()).unwrap_or(u64::MAX));
            Duration::from_micros(next.saturating_sub(now.as_micros()))
        })
    }

    /// Counts a failure for `key`.
    pub(super) fn fail(&mut self, key: &str, now: Instant) {
        let count = match self.counts.get(key) {
            Some(c) => self.decayed(*c, now),
            None => Count {
                failures: 0,
                since: now,
            },
        };
        let count = Count {
            failures: count.failures.saturating_add(1),
            since: if count.failures == 0 {
                now
            } else {
                count.since
            },
        };
        self.counts.insert(key.to_owned(), count);
        if self.counts.len() > MAX_TRACKED {
            self.prune(now);
        }
    }

    /// Forgets fully decayed keys, then the least-failed ones, down to 3/4 of
    /// [`MAX_TRACKED`].
    fn prune(&mut self, now: Instant) {
        let decayed: Vec<(String, Count)> = self
            .counts
            .iter()
            .map(|(k, c)| (k.clone(), self.decayed(*c, now)))
            .collect();
        self.counts = decayed
            .into_iter()
            .filter(|(_, c)| c.failures > 0)
            .collect();
        let target = MAX_TRACKED / 4 * 3;
        if self.counts.len() > target {
            let mut by_failures: Vec<(u32, String)> = self
                .counts
                .iter()
                .map(|(k, c)| (c.failures, k.clone()))
                .collect();
            by_failures.sort();
            let excess = self.counts.len() - target;
            for (_, key) in by_failures.into_iter().take(excess) {
                self.counts.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.counts.len()
    }
}

/// The address part of an adapter's `remote` (`"10.0.0.1:5000"` →
/// `"10.0.0.1"`, `"[::1]:5000"` → `"::1"`); anything else as given.
#[must_use]
pub(super) fn address_of(remote: &str) -> &str {
    if let Some(rest) = remote.strip_prefix('[')
        && let Some((ip, _port)) = rest.split_once(']')
    {
        return ip;
    }
    match remote.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => remote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    #[test]
    fn blocks_at_the_limit_and_decays_one_per_period() {
        let mut t = Throttle::new(3, MIN);
        for _ in 0..2 {
            t.fail("a", at(0));
        }
        assert_eq!(t.blocked("a", at(0)), None);
        t.fail("a", at(0));
        assert_eq!(t.blocked("a", at(1)), Some(Duration::from_secs(59)));
        assert_eq!(t.blocked("b", at(1)), None);
        // One failure forgiven after a period: one more try, then blocked again.
        assert_eq!(t.blocked("a", at(60)), None);
        t.fail("a", at(61));
        assert!(t.blocked("a", at(61)).is_some());
        assert_eq!(t.blocked("a", at(61 + 180)), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut t = Throttle::new(3, MIN);
        for i in 0..(MAX_TRACKED + 10) {
            t.fail(&format!("k{i}"), at(0));
        }
        assert!(t.tracked() <= MAX_TRACKED);
        t.fail("hot", at(0));
        t.fail("hot", at(0));
        t.fail("hot", at(0));
        assert!(t.blocked("hot", at(0)).is_some());
    }

    #[test]
    fn addresses_drop_the_port() {
        assert_eq!(address_of("10.0.0.1:5000"), "10.0.0.1");
        assert_eq!(address_of("[::1]:5000"), "::1");
        assert_eq!(address_of("::1"), "::1");
        assert_eq!(address_of("user-3"), "user-3");
    }
}
