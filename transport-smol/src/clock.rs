//! The adapter's clock: the core's [`Now`] from the OS clocks, and back.

use std::time::{SystemTime, UNIX_EPOCH};

use socp_core::time::{Instant as CoreInstant, Now};

/// Builds the core's [`Now`]: a monotonic instant (microseconds since this
/// clock was made) and the Unix time in milliseconds. Copy it freely: every
/// copy has the same origin, so one clock can serve several state machines.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose monotonic origin is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time, as the core takes it.
    #[must_use]
    pub fn now(&self) -> Now {
        let micros = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Now::new(CoreInstant::from_micros(micros), unix_ms)
    }

    /// The instant of a core instant from this clock, for a `smol::Timer`
    /// (`Timer::at`). An instant too far away to represent (e.g.
    /// [`CoreInstant::FAR_FUTURE`]) becomes one about thirty years from now.
    #[must_use]
    pub fn instant_to_deadline(&self, at: CoreInstant) -> std::time::Instant {
        let far = core::time::Duration::from_secs(30 * 365 * 24 * 3600);
        let offset = core::time::Duration::from_micros(at.as_micros())
            .min(self.origin.elapsed().saturating_add(far));
        self.origin
            .checked_add(offset)
            .or_else(|| std::time::Instant::now().checked_add(far))
            .unwrap_or_else(std::time::Instant::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn now_and_deadlines_agree() {
        let clock = Clock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b.mono >= a.mono);
        assert!(a.unix_ms > 1_600_000_000_000);
        let d = clock.instant_to_deadline(a.mono + Duration::from_secs(5));
        let left = d.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(5));
        assert!(left >= Duration::from_secs(4));
        let far = clock.instant_to_deadline(CoreInstant::FAR_FUTURE);
        assert!(far > Instant::now() + Duration::from_secs(3600));
    }
}
