//! `kanta journeys run [--until-idle]`: the journey engine of `kanta serve` without the HTTP
//! API, for deployments that run journeys from cron or beside a server started with
//! `[journeys] enabled = false` (this command runs them whatever that setting says: asking for
//! it is the point).
//!
//! It repeats [`kanta_engine::Engine::pass`] (one batch each of the journey feed, due runs and
//! due messages) while there is work, and when a pass finds nothing due *now* it either sleeps
//! a `[journeys] tick` (until SIGTERM or Ctrl-C, as `kanta serve` stops: the batch in hand is
//! finished first) or, with `--until-idle`, stops. Waits that end later, messages deferred by
//! quiet hours and retries after a backoff are not due now: they are left for the next run.
//! Either way it ends with a one-line summary of what it did on standard output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kanta_engine::{Engine, Pass};

use crate::cli::JourneysRunArgs;

/// Runs the engine as the flags say; prints the summary.
pub fn run(args: &JourneysRunArgs) -> anyhow::Result<()> {
    let settings = args.store.settings()?;
    let config = settings.engine_config(&kanta_server::worker_name())?;
    let tick = config.tick;
    // As `kanta serve`: the SMTP sends of a batch and the store's connections work in parallel.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let (total, elapsed) = runtime.block_on(async {
        let store = settings.database.open().await?;
        let engine = Engine::new(store, config, Arc::new(kanta_domain::SystemClock))?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            kanta_api::shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        anyhow::Ok(drive(&engine, stop, args.until_idle, tick).await)
    })?;
    outln!("{}", summary(&total, elapsed))?;
    Ok(())
}

/// Passes until idle (`until_idle`) or until `stop`, sleeping `tick` whenever nothing is due;
/// what they did in total and how long it took.
async fn drive(
    engine: &Engine,
    mut stop: tokio::sync::watch::Receiver<bool>,
    until_idle: bool,
    tick: Duration,
) -> (Pass, Duration) {
    let bar = crate::progress::spinner("journeys", false);
    let started = Instant::now();
    let mut total = Pass::default();
    // The calendar triggers once per tick, as in `kanta serve`.
    let mut evaluate = true;
    loop {
        if std::mem::take(&mut evaluate)
            && let Err(e) = engine.evaluate_triggers(engine.now()).await
        {
            tracing::warn!("journey engine: evaluating date and schedule triggers failed: {e}");
        }
        let pass = engine.pass().await;
        total.add(&pass);
        bar.set_message(summary(&total, started.elapsed()));
        if *stop.borrow() {
            break;
        }
        if pass.is_idle() {
            if until_idle {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => evaluate = true,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
    bar.finish_and_clear();
    (total, started.elapsed())
}

/// `12 runs advanced (30 steps), 24 messages: 20 sent, 4 skipped, … in 1.23 s`.
fn summary(total: &Pass, elapsed: Duration) -> String {
    let d = &total.delivered;
    format!(
        "journeys run: {} feed rows, {} runs advanced ({} steps), {} messages: {} sent, {} skipped, {} deferred, \
         {} retried, {} failed, {} unknown (in doubt after the lease); {:.2} s",
        total.fed,
        total.advanced.runs,
        total.advanced.steps,
        d.claimed,
        d.sent,
        d.skipped,
        d.deferred,
        d.retried,
        d.failed,
        d.unknown,
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let mut pass = Pass { fed: 3, ..Pass::default() };
        pass.advanced.runs = 2;
        pass.advanced.steps = 7;
        pass.delivered.claimed = 6;
        pass.delivered.sent = 1;
        pass.delivered.skipped = 2;
        pass.delivered.retried = 3;
        assert_eq!(
            summary(&pass, Duration::from_millis(1_234)),
            "journeys run: 3 feed rows, 2 runs advanced (7 steps), 6 messages: 1 sent, 2 skipped, 0 deferred, \
             3 retried, 0 failed, 0 unknown (in doubt after the lease); 1.23 s"
        );
    }
}
