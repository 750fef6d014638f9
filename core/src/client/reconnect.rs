//! Reconnecting: exponential backoff with jitter and a cap.
//!
//! The delay before attempt `n` (from 0) is `b = min(max, initial · 2ⁿ)`,
//! drawn uniformly from `[b/2, b]` ("equal jitter"), so clients that lost the
//! same server do not all come back at once, and none waits longer than `max`.
//! A frame received on the new link (other than `ERROR`) resets `n`.

use core::time::Duration;

use rand_core::Rng;

use crate::crypto::CoreRng;

#[derive(Debug, Clone)]
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
        }
    }

    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt.
    pub(super) fn next_delay(&mut self, rng: &mut CoreRng) -> Duration {
        let factor = 1u32 << self.attempt.min(16);
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 {
            0
        } else {
            rng.next_u64() % (span + 1)
        };
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rng_from_seed;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut rng = rng_from_seed([1; 32]);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut prev_base = Duration::ZERO;
        for n in 0..12u32 {
            let base = (Duration::from_millis(500) * 2u32.pow(n)).min(Duration::from_secs(30));
            let d = b.next_delay(&mut rng);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {n}: {d:?} not in [{:?}, {base:?}]",
                base / 2
            );
            assert!(base >= prev_base);
            prev_base = base;
        }
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(500));
    }
}
