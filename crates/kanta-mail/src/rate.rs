//! The send rate: a token bucket shared by every sending task.
//!
//! [`TokenBucket`] is the rule, pure and with time passed in: the generic cell rate algorithm
//! (GCRA), which is a token bucket kept as one number, the "theoretical arrival time" of the
//! next message, in exact integer nanoseconds. At `rate` messages per second, messages are
//! spaced `1/rate` apart; up to `burst` may go at once after a quiet spell. [`RateLimiter`]
//! shares one bucket between tasks and sleeps on tokio's clock, so tests can pause and advance
//! it instead of waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bucket: `burst` tokens at most, one added every `interval`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    /// How far ahead of now the schedule may run: `interval × (burst − 1)`.
    tolerance: Duration,
    origin: Instant,
    /// When the next message is due on a steady schedule, as an offset from `origin`.
    next: Duration,
}

impl TokenBucket {
    /// A full bucket at `now` for `per_second` messages per second (a positive, finite number;
    /// anything else is read as one per second) and bursts of `burst` (at least 1).
    pub fn new(per_second: f64, burst: u32, now: Instant) -> TokenBucket {
        let per_second = if per_second.is_finite() && per_second > 0.0 { per_second } else { 1.0 };
        // `as` saturates: a tiny rate gives the longest interval, a huge one 1 ns.
        let nanos = (1e9 / per_second).round() as u64;
        let interval = Duration::from_nanos(nanos.max(1));
        let tolerance = interval.saturating_mul(burst.max(1) - 1);
        TokenBucket { interval, tolerance, origin: now, next: Duration::ZERO }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let now = now.saturating_duration_since(self.origin);
        let next = self.next.max(now);
        let earliest = next.saturating_sub(self.tolerance);
        if earliest <= now {
            self.next = next.saturating_add(self.interval);
            Ok(())
        } else {
            Err(earliest - now)
        }
    }
}

/// A [`TokenBucket`] shared across tasks, waiting on tokio's clock.
#[derive(Debug)]
pub struct RateLimiter {
    // A std mutex: it is held only for the arithmetic of `try_take`, never across an await.
    bucket: Mutex<TokenBucket>,
}

impl RateLimiter {
    /// `per_second` messages per second, evenly spaced (a burst of one).
    pub fn new(per_second: f64) -> RateLimiter {
        RateLimiter::with_burst(per_second, 1)
    }

    /// `per_second` messages per second, with bursts of up to `burst`.
    pub fn with_burst(per_second: f64, burst: u32) -> RateLimiter {
        let now = tokio::time::Instant::now().into_std();
        RateLimiter { bucket: Mutex::new(TokenBucket::new(per_second, burst, now)) }
    }

    /// Waits until a message may be sent, and takes its token.
    pub async fn acquire(&self) {
        loop {
            let now = tokio::time::Instant::now().into_std();
            let wait = {
                // A poisoned lock only means another task panicked mid-arithmetic; the bucket
                // is still a valid schedule.
                let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
                match bucket.try_take(now) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// How many of `attempts` evenly spread over `span` a bucket lets through.
    fn taken(bucket: &mut TokenBucket, start: Instant, span: Duration, attempts: u32) -> u32 {
        (0..attempts).filter(|i| bucket.try_take(start + span / attempts * *i).is_ok()).count() as u32
    }

    #[test]
    fn ten_per_second_lets_ten_through_per_second_however_often_asked() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 1, start);
        // 1,000 attempts in the first second: one every 100 ms gets through.
        assert_eq!(taken(&mut bucket, start, Duration::from_secs(1), 1000), 10);
        // And the next ten seconds, asked 7 times a millisecond: a hundred.
        assert_eq!(taken(&mut bucket, start + Duration::from_secs(1), Duration::from_secs(10), 70_000), 100);
        // Refused, it says how long to wait, and that wait is exactly enough.
        let mut bucket = TokenBucket::new(4.0, 1, start);
        assert_eq!(bucket.try_take(start), Ok(()));
        assert_eq!(bucket.try_take(start + Duration::from_millis(100)), Err(Duration::from_millis(150)));
        assert_eq!(bucket.try_take(start + Duration::from_millis(250)), Ok(()));
    }

    #[test]
    fn a_burst_goes_at_once_after_a_quiet_spell_and_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 5, start);
        assert_eq!((0..100).filter(|_| bucket.try_take(start).is_ok()).count(), 5);
        // Then 2 a second: at 0.5 s, 1 s, 1.5 s, 2 s and 2.5 s.
        assert_eq!(taken(&mut bucket, start, Duration::from_secs(3), 3000), 5);
        // Idle for a minute: the bucket holds 5, not 120.
        let later = start + Duration::from_secs(63);
        assert_eq!((0..100).filter(|_| bucket.try_take(later).is_ok()).count(), 5);
    }

    #[test]
    fn odd_rates_are_read_safely() {
        let start = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut bucket = TokenBucket::new(rate, 1, start);
            assert_eq!(taken(&mut bucket, start, Duration::from_secs(1), 100), 1, "{rate} reads as 1/s");
        }
        let mut fast = TokenBucket::new(1e12, 1, start);
        assert_eq!(taken(&mut fast, start, Duration::from_secs(1), 100), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_sharing_a_limiter_send_at_its_rate_together() {
        let limiter = Arc::new(RateLimiter::new(5.0));
        let sent = Arc::new(AtomicU32::new(0));
        for _ in 0..4 {
            let (limiter, sent) = (limiter.clone(), sent.clone());
            tokio::spawn(async move {
                loop {
                    limiter.acquire().await;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Paused time moves only when every task waits, so these counts are exact: one at 0,
        // then one every 200 ms, whatever the number of tasks (read between the due times).
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(1099)).await;
        assert_eq!(sent.load(Ordering::SeqCst), 6, "0, 200, …, 1000 ms");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(sent.load(Ordering::SeqCst), 56, "0, 200, …, 11000 ms");
    }
}
