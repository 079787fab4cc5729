//! Numbers too costly to compute while a page waits (a journey's uplift report reads every
//! entry: about a minute and a half per million), computed in the background and served from
//! memory until they are older than their time to live.
//!
//! A request for a missing or stale value starts one computation for its key (never two at
//! once) and is answered at once: with the last value and the time it was computed, or, the
//! first time, with "being computed". So a page stays fast however large the store is, at the
//! price of numbers up to the time to live old — which the page says.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a request gets.
pub enum Cached<T> {
    /// The latest value, computed at `computed_at` (µs by the dashboard's clock); `refreshing`
    /// when a newer one is being computed.
    Ready {
        /// The value.
        value: Arc<T>,
        /// When it was computed.
        computed_at: i64,
        /// Whether a newer one is on its way.
        refreshing: bool,
    },
    /// The first computation is running.
    Pending,
    /// The last computation failed (it is tried again [`RETRY`] after the failure).
    Failed(String),
}

/// How long after a failed computation the next request starts another.
pub const RETRY: Duration = Duration::from_secs(30);

struct Slot<T> {
    value: Option<(Arc<T>, i64)>,
    running: bool,
    /// The last failure and when it happened.
    error: Option<(String, i64)>,
}

/// Values of type `T` by key, each recomputed when older than the time to live.
pub struct Background<T> {
    slots: Arc<Mutex<HashMap<String, Slot<T>>>>,
    ttl: Duration,
}

impl<T: Send + Sync + 'static> Background<T> {
    /// Values that live `ttl`.
    pub fn new(ttl: Duration) -> Background<T> {
        Background { slots: Arc::default(), ttl }
    }

    /// The value of `key` as of `now` (µs); starts `compute` on the runtime when there is none,
    /// it is stale or the last attempt failed, unless one is already running.
    pub fn get<F>(&self, key: &str, now: i64, compute: impl FnOnce() -> F) -> Cached<T>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
    {
        let ttl = i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX);
        // A poisoned lock only means a panic elsewhere mid-update of a cache: start afresh.
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            guard.clear();
            guard
        });
        let slot = slots.entry(key.to_owned()).or_insert(Slot { value: None, running: false, error: None });
        let stale = slot.value.as_ref().is_none_or(|(_, at)| now.saturating_sub(*at) >= ttl);
        let retry = i64::try_from(RETRY.as_micros()).unwrap_or(i64::MAX);
        let backing_off = slot.error.as_ref().is_some_and(|(_, at)| now.saturating_sub(*at) < retry);
        if stale && !slot.running && !backing_off {
            slot.running = true;
            let future = compute();
            let slots = self.slots.clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                let result = future.await;
                let mut slots = slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(slot) = slots.get_mut(&key) {
                    slot.running = false;
                    match result {
                        Ok(value) => {
                            slot.value = Some((Arc::new(value), now));
                            slot.error = None;
                        }
                        Err(e) => slot.error = Some((e, now)),
                    }
                }
            });
        }
        match (&slot.value, &slot.error) {
            (Some((value, at)), _) => {
                Cached::Ready { value: value.clone(), computed_at: *at, refreshing: slot.running }
            }
            (None, Some((e, _))) if !slot.running => Cached::Failed(e.clone()),
            (None, _) => Cached::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    async fn settled(cache: &Background<u32>) {
        for _ in 0..200 {
            let running = cache.slots.lock().map(|s| s.values().any(|slot| slot.running)).unwrap_or(false);
            if !running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the computation did not finish");
    }

    #[tokio::test]
    async fn values_are_computed_once_served_until_stale_and_refreshed_in_the_background() {
        let cache = Background::<u32>::new(Duration::from_secs(600));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let compute = |n: u32| {
            let calls = calls.clone();
            move || async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(n)
            }
        };
        assert!(matches!(cache.get("a", 0, compute(1)), Cached::Pending));
        // A second request while the first computes starts nothing.
        assert!(matches!(cache.get("a", MINUTE, compute(2)), Cached::Pending));
        settled(&cache).await;
        match cache.get("a", 2 * MINUTE, compute(3)) {
            Cached::Ready { value, computed_at, refreshing } => {
                assert_eq!((*value, computed_at, refreshing), (1, 0, false))
            }
            _ => panic!("ready"),
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Stale: the old value is served while the new one is computed.
        match cache.get("a", 10 * MINUTE, compute(4)) {
            Cached::Ready { value, refreshing, .. } => assert_eq!((*value, refreshing), (1, true)),
            _ => panic!("ready"),
        }
        settled(&cache).await;
        match cache.get("a", 11 * MINUTE, compute(5)) {
            Cached::Ready { value, computed_at, .. } => assert_eq!((*value, computed_at), (4, 10 * MINUTE)),
            _ => panic!("ready"),
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Keys are apart; a failure is reported, and tried again once RETRY has passed.
        assert!(matches!(cache.get("b", 0, || async { Err::<u32, _>("no".to_string()) }), Cached::Pending));
        settled(&cache).await;
        assert!(matches!(cache.get("b", MINUTE / 4, || async { Ok(7) }), Cached::Failed(e) if e == "no"));
        assert!(matches!(cache.get("b", MINUTE, || async { Ok(8) }), Cached::Pending), "retried after RETRY");
        settled(&cache).await;
        assert!(matches!(cache.get("b", MINUTE, || async { Ok(9) }), Cached::Ready { value, .. } if *value == 8));
    }
}
