//! The server's scheduler: scoring and then the segment refresh every interval, until
//! shutdown.
//!
//! One cycle at a time: the next starts `every` after the previous one finished, so a slow
//! run on a large store delays the next instead of piling up. The first cycle starts at once,
//! so a freshly started server has scores.
//!
//! Shutdown and the time budget both go through a [`Cancel`]: the run stops at its next safe
//! point (between chunks of the read, between phases) and is recorded as `cancelled` without
//! writing scores (the stored scores stay the previous run's). On shutdown the scheduler waits
//! at most [`SHUTDOWN_WAIT`] for that record and then returns anyway, so a model fit in progress
//! (seconds on a large store) never holds `kanta serve` after SIGTERM; the process leaves the
//! worker thread behind (its runtime is shut down with a timeout).

use std::sync::Arc;
use std::time::Duration;

use kanta_domain::Clock;
use kanta_store::Storage;
use tokio::sync::watch;

use crate::segments::{Refreshed, refresh_all};
use crate::{Cancel, JobError, ScoreJob, ScoreOutcome, score_store_until};

/// How long shutdown waits for a cancelled run to record itself.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// When the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Pause between the end of one cycle and the start of the next.
    pub every: Duration,
    /// A scoring run still going after this long is cancelled (`None`: no limit).
    pub budget: Option<Duration>,
}

/// What one cycle did.
#[derive(Debug)]
pub struct Cycle {
    /// The scoring run.
    pub score: Result<ScoreOutcome, JobError>,
    /// The segment refresh (done even when scoring failed: the previous scores still hold).
    pub segments: Result<Vec<Refreshed>, JobError>,
}

/// Score and refresh the segments once, at `now`.
pub async fn cycle(store: &dyn Storage, job: &ScoreJob, now: i64) -> Cycle {
    cycle_until(store, job, now, &Cancel::default()).await
}

/// [`cycle`] that stops when `cancel` is set; a cancelled cycle refreshes no segment.
pub async fn cycle_until(store: &dyn Storage, job: &ScoreJob, now: i64, cancel: &Cancel) -> Cycle {
    let score = score_store_until(store, job, now, cancel).await;
    let segments = if cancel.is_cancelled() { Ok(Vec::new()) } else { refresh_all(store, now).await };
    Cycle { score, segments }
}

/// Run a [`cycle`] per `schedule` until `stop` turns true, reading the time from `clock`;
/// `report` hears each cycle, cancelled ones included.
pub async fn run(
    store: Arc<dyn Storage>,
    job: ScoreJob,
    schedule: Schedule,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&Cycle) + Send,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let cancel = Cancel::default();
        let work = cycle_until(store.as_ref(), &job, clock.now().micros(), &cancel);
        tokio::pin!(work);
        let over_budget = async {
            match schedule.budget {
                Some(budget) => tokio::time::sleep(budget).await,
                None => std::future::pending().await,
            }
        };
        let mut done = tokio::select! {
            c = &mut work => Some(c),
            () = over_budget => {
                let budget = schedule.budget.unwrap_or_default();
                cancel.cancel(format!("time budget of {} s exceeded", budget.as_secs()));
                None
            }
            _ = stop.wait_for(|s| *s) => None,
        };
        if done.is_none() && !*stop.borrow() {
            // Over budget: the run stops at its next safe point and records itself.
            done = tokio::select! {
                c = &mut work => Some(c),
                _ = stop.wait_for(|s| *s) => None,
            };
        }
        let Some(done) = done else {
            cancel.cancel("shutdown");
            if let Ok(c) = tokio::time::timeout(SHUTDOWN_WAIT, work).await {
                report(&c);
            }
            return;
        };
        report(&done);
        tokio::select! {
            () = tokio::time::sleep(schedule.every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A one-line account of a scoring run, for the server's log.
pub fn describe(result: &Result<ScoreOutcome, JobError>) -> String {
    match result {
        Ok(o) => {
            let took: Duration = o.phases.iter().map(|p| p.1).sum();
            format!(
                "scoring run {}: {} customers, {} orders, model {}, {} stage changes, {:.1} s",
                o.run.id,
                o.run.customers,
                o.run.orders,
                o.run.model.as_deref().unwrap_or("none"),
                o.run.stage_changes,
                took.as_secs_f64()
            )
        }
        Err(e @ JobError::Cancelled { .. }) => format!("scoring run {e}"),
        Err(e) => format!("scoring failed: {e}"),
    }
}

/// The log lines of a cycle.
pub fn describe_cycle(c: &Cycle) -> Vec<String> {
    let mut lines = vec![describe(&c.score)];
    match &c.segments {
        Ok(r) => lines.extend(crate::segments::describe(r)),
        Err(e) => lines.push(format!("segment refresh failed: {e}")),
    }
    lines
}
