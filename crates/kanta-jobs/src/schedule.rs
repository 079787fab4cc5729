//! The server's scheduler: scoring every interval, until shutdown.
//!
//! One run at a time: the next run starts `every` after the previous one finished, so a slow
//! run on a large store delays the next instead of piling up. The first run starts at once, so
//! a freshly started server has scores. Shutdown interrupts the wait; a run in progress is
//! dropped with it, which rolls its transaction back (the stored scores stay the previous
//! run's).

use std::sync::Arc;
use std::time::Duration;

use kanta_store::Storage;
use tokio::sync::watch;

use crate::{JobError, ScoreJob, ScoreOutcome, score_store};

/// Run the scoring job every `every` until `stop` turns true; `report` hears each run's result.
pub async fn run(
    store: Arc<dyn Storage>,
    job: ScoreJob,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&Result<ScoreOutcome, JobError>) + Send,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let result = tokio::select! {
            r = score_store(store.as_ref(), &job, kanta_store::now_micros()) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        report(&result);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A one-line account of a run, for the server's log.
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
