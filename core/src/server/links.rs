//! Per-link state: how a link came to be, who it turned out to be, its timers.

use core::time::Duration;

use crate::time::Instant;

/// How a link was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// Someone connected to us.
    Inbound,
    /// We dialed an introducer from the bootstrap list (index into it).
    Join { entry: usize },
    /// We dialed a known server to link with it.
    Peer { server_id: String },
}

/// Who is on the other end, as established by the link's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    /// Not identified yet.
    Pending,
    /// A user, after an accepted USER_HELLO.
    User(String),
    /// A server, after an accepted HELLO_JOIN / HELLO_LINK / ANNOUNCE / WELCOME.
    Server(String),
    /// Being closed: frames from it are ignored.
    Closing,
}

/// One connection.
#[derive(Debug)]
pub(super) struct Link {
    pub origin: Origin,
    pub role: Role,
    /// For dials: whether the adapter reported the connection up.
    pub up: bool,
    pub last_rx: Instant,
    pub errors: TokenBucket,
    /// The peer's address without the port (inbound links; empty for dials).
    pub remote: String,
    /// Where the link stands in the secure profile.
    pub secure: super::secure::SecureLink,
}

impl Link {
    pub(super) fn new(origin: Origin, up: bool, now: Instant, errors_per_second: u32) -> Self {
        Self {
            origin,
            role: Role::Pending,
            up,
            last_rx: now,
            errors: TokenBucket::new(errors_per_second, now),
            remote: String::new(),
            secure: super::secure::SecureLink::Off,
        }
    }

    /// Whether we dialed this link.
    pub(super) fn dialed_by_us(&self) -> bool {
        !matches!(self.origin, Origin::Inbound)
    }
}

/// A token bucket: `rate` tokens per second, holding at most `rate` (burst = one
/// second's worth). Used to rate-limit the errors we send (no error storms).
#[derive(Debug)]
pub(super) struct TokenBucket {
    rate: u32,
    /// Tokens in thousandths.
    milli_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate,
            milli_tokens: u64::from(rate) * 1000,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        let cap = u64::from(self.rate) * 1000;
        let refill = u64::try_from(elapsed.min(Duration::from_secs(3600)).as_millis())
            .unwrap_or(0)
            .saturating_mul(u64::from(self.rate));
        self.milli_tokens = self.milli_tokens.saturating_add(refill).min(cap);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let t0 = Instant::ZERO;
        let mut bucket = TokenBucket::new(3, t0);
        assert!(bucket.take(t0) && bucket.take(t0) && bucket.take(t0));
        assert!(!bucket.take(t0));
        assert!(bucket.take(t0 + Duration::from_millis(334)));
        assert!(!bucket.take(t0 + Duration::from_millis(334)));
    }
}
