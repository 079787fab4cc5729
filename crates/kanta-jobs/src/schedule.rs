//! The server's scheduler: scoring and then the segment refresh every interval, until
//! shutdown.
//!
//! One cycle at a time: the next starts `every` after the previous one finished, so a slow
//! run on a large store delays the next instead of piling up. The first cycle starts at once,
//! so a freshly started server has scores. Shutdown interrupts the wait; a run in progress is
//! dropped with it, which rolls its transaction back (the stored scores stay the previous
//! run's).

use std::sync::Arc;
use std::time::Duration;

use kanta_store::Storage;
use tokio::sync::watch;

use crate::segments::{Refreshed, refresh_all};
use crate::{JobError, ScoreJob, ScoreOutcome, score_store};

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
    let score = score_store(store, job, now).await;
    let segments = refresh_all(store, now).await;
    Cycle { score, segments }
}

/// Run a [`cycle`] every `every` until `stop` turns true; `report` hears each cycle.
pub async fn run(
    store: Arc<dyn Storage>,
    job: ScoreJob,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&Cycle) + Send,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let done = tokio::select! {
            c = cycle(store.as_ref(), &job, kanta_store::now_micros()) => c,
            _ = stop.wait_for(|s| *s) => return,
        };
        report(&done);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
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
