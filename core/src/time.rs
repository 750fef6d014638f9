//! Time as an input.
//!
//! The core never reads a clock. Every `handle_*` call receives a [`Now`]: a
//! monotonic [`Instant`] for timers and the Unix time in milliseconds for wire
//! timestamps (SOCP `ts`). Adapters build it from their runtime's clocks; the
//! simulator and fuzz targets build it from a virtual clock, which makes runs
//! repeat exactly.

use core::ops::{Add, AddAssign};
use core::time::Duration;

/// A point on a monotonic clock, in microseconds since an arbitrary origin.
///
/// Only differences between instants mean anything. Unlike `std::time::Instant`
/// any value can be constructed, so virtual clocks and fuzzers can drive the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(0);
    /// An instant later than any other (used as "never").
    pub const FAR_FUTURE: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after the origin.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the origin.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(micros))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

/// The current time, as given to every input of a state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers and timeouts.
    pub mono: Instant,
    /// Unix time in milliseconds, for wire timestamps and freshness checks.
    pub unix_ms: u64,
}

impl Now {
    /// Builds a `Now` from its two clocks.
    #[must_use]
    pub const fn new(mono: Instant, unix_ms: u64) -> Self {
        Self { mono, unix_ms }
    }

    /// The same moment `d` later on both clocks.
    #[must_use]
    pub fn advanced(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            mono: self.mono + d,
            unix_ms: self.unix_ms.saturating_add(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_micros(5);
        assert_eq!(
            t.saturating_duration_since(Instant::from_micros(9)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::FAR_FUTURE + Duration::from_secs(1),
            Instant::FAR_FUTURE
        );
        let now = Now::new(Instant::ZERO, 1000).advanced(Duration::from_millis(1500));
        assert_eq!(now.unix_ms, 2500);
        assert_eq!(now.mono.as_micros(), 1_500_000);
    }
}
