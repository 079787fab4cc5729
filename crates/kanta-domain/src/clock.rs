//! The injected clock.
//!
//! Whatever decides what is due (ingest time checks today; the scheduler, the webhook dispatcher
//! and journeys next) asks a [`Clock`] instead of the system, so that a test can advance a
//! [`ManualClock`] through a 30-day journey in milliseconds instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::time::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // Before 1970 (a badly set clock) reads as the epoch; after year 294,247 saturates.
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_micros(micros)
    }
}

/// A clock that moves only when told to: shared by a test and the code under test.
#[derive(Debug)]
pub struct ManualClock {
    // Atomic rather than a mutex: readers on several threads never block each other.
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { micros: AtomicI64::new(start.micros()) }
    }

    /// Moves the clock to `to` (also backwards: clocks of real machines do that too).
    pub fn set(&self, to: Timestamp) {
        self.micros.store(to.micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by` (saturating at the end of representable time).
    pub fn advance(&self, by: std::time::Duration) {
        let step = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self.micros.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| Some(m.saturating_add(step)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_is_shared() {
        let start = Timestamp::parse_rfc3339("2026-03-29T00:30:00Z").unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let seen_by_other: Arc<dyn Clock> = clock.clone();
        assert_eq!(seen_by_other.now(), start);
        clock.advance(Duration::from_secs(30 * 86_400));
        assert_eq!(seen_by_other.now().to_rfc3339(), "2026-04-28T00:30:00Z");
        clock.set(start);
        assert_eq!(clock.now(), start);
        clock.set(Timestamp::from_micros(i64::MAX - 1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now().micros(), i64::MAX);
    }

    #[test]
    fn the_system_clock_reads_the_present() {
        let now = SystemClock.now();
        // Written in 2026; any machine running this test is later.
        assert!(now > Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(), "{now}");
        assert!(now < Timestamp::parse_rfc3339("2200-01-01T00:00:00Z").unwrap(), "{now}");
    }
}
