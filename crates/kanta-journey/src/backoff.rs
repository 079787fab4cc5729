//! How long to wait before retrying a message after a temporary failure (an SMTP 4xx, a
//! connection refused, a webhook 5xx).
//!
//! Exponential with a cap, and "equal jitter": the wait after attempt `n` is drawn from
//! `[d/2, d]` where `d = min(base · 2^(n−1), max)`. The jitter spreads the retries of messages
//! that failed together (an outage of the mail server) so they do not all come back in the same
//! second; the lower half keeps the exponential growth. The draw is deterministic, a hash of the
//! message's key and the attempt number ([`crate::split`]'s SHA-256 under its own domain), so a
//! retry time is reproducible in tests and the same in every worker.

use std::time::Duration;

use crate::split::{scale, stable_u64};

/// The parameters of the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The ceiling of every wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 seconds doubling to one hour: the webhook dispatcher's defaults, so both outboxes
    /// retry alike.
    fn default() -> Backoff {
        Backoff { base: Duration::from_secs(30), max: Duration::from_secs(3_600) }
    }
}

impl Backoff {
    /// The ceiling `d = min(base · 2^(attempt−1), max)` of the wait after failed attempt
    /// `attempt` (the first attempt is 1; 0 is treated as 1). Saturates instead of overflowing.
    pub fn ceiling(self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let micros = u64::try_from(self.base.as_micros()).unwrap_or(u64::MAX).saturating_mul(factor);
        Duration::from_micros(micros).min(self.max)
    }

    /// The wait after failed attempt `attempt` of the message `key`: in `[d/2, d]` for
    /// `d = ceiling(attempt)`, at a point fixed by `key` and `attempt`.
    pub fn delay(self, attempt: u32, key: &str) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_micros()).unwrap_or(u64::MAX);
        let half = ceiling / 2;
        let u = stable_u64("kanta-backoff-v1", &[key.as_bytes(), &attempt.to_be_bytes()]);
        // `ceiling − half + 1` possible jitters: 0 ..= ceiling − half.
        let jitter = scale(u, (ceiling - half).saturating_add(1));
        Duration::from_micros(half + jitter)
    }
}

/// [`Backoff::delay`] with the default parameters (30 s doubling to 1 h).
pub fn backoff(attempt: u32, key: &str) -> Duration {
    Backoff::default().delay(attempt, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_ceiling_doubles_from_the_base_up_to_the_cap() {
        let b = Backoff::default();
        let ceilings: Vec<_> = (0..=9).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [30, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(b.ceiling(u32::MAX), secs(3_600));
        let huge = Backoff { base: Duration::MAX, max: Duration::MAX };
        assert_eq!(huge.ceiling(40), Duration::from_micros(u64::MAX));
    }

    #[test]
    fn every_delay_lies_in_the_upper_half_of_its_ceiling() {
        let b = Backoff::default();
        for attempt in 1..=12 {
            let ceiling = b.ceiling(attempt);
            for i in 0..200 {
                let delay = b.delay(attempt, &format!("message-{i}"));
                assert!(ceiling / 2 <= delay && delay <= ceiling, "attempt {attempt}: {delay:?} of {ceiling:?}");
            }
        }
    }

    #[test]
    fn delays_are_fixed_by_the_key_and_differ_between_keys() {
        // Pinned: recomputed outside Rust from the rule (SHA-256 of "kanta-backoff-v1", the
        // length-prefixed key and the big-endian attempt number).
        assert_eq!(backoff(1, "msg-1"), Duration::from_micros(PINNED[0]));
        assert_eq!(backoff(2, "msg-1"), Duration::from_micros(PINNED[1]));
        assert_eq!(backoff(1, "msg-2"), Duration::from_micros(PINNED[2]));
        assert_eq!(backoff(9, "msg-1"), Duration::from_micros(PINNED[3]));
        // Spread: 1,000 messages failing together come back at many different instants.
        let mut delays: Vec<_> = (0..1_000).map(|i| backoff(3, &format!("m{i}")).as_micros()).collect();
        delays.sort_unstable();
        delays.dedup();
        assert!(delays.len() > 990, "{}", delays.len());
    }

    const PINNED: [u64; 4] = [26_765_328, 37_568_508, 24_286_037, 1_817_475_720];
}
