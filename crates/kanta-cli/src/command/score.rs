//! `kanta score`: the scoring job once, from the command line.

use anyhow::Context;
use kanta_jobs::segments::refresh_all;
use kanta_jobs::{ScoreOutcome, score_store};

use crate::cli::ScoreArgs;
use crate::progress::spinner;
use kanta_report::format::thousands;

pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    let settings = args.store.settings()?;
    let mut scoring = settings.scoring.clone();
    if let Some(model) = args.model {
        scoring.model = model;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let busy = spinner("scoring the customers in the store", args.quiet || args.json);
    let (outcome, refreshed) = runtime.block_on(async {
        let store = settings.database.open().await?;
        let now = kanta_store::now_micros();
        let mut job = scoring.job();
        job.in_memory |= args.in_memory;
        let outcome = score_store(store.as_ref(), &job, now).await.context("scoring")?;
        busy.set_message("refreshing the saved segments");
        let refreshed = refresh_all(store.as_ref(), now).await.context("refreshing the segments")?;
        anyhow::Ok((outcome, refreshed))
    })?;
    busy.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome.run).context("rendering the run")?)?;
    } else if !args.quiet {
        out!("{}", render(&outcome))?;
        for line in kanta_jobs::segments::describe(&refreshed) {
            outln!("{line}")?;
        }
    }
    Ok(())
}

/// The summary printed after a run.
fn render(o: &ScoreOutcome) -> String {
    use std::fmt::Write;
    let run = &o.run;
    let mut out = String::new();
    let took: f64 = o.phases.iter().map(|p| p.1.as_secs_f64()).sum();
    let _ = writeln!(
        out,
        "scored {} customers from {} orders as of {} in {took:.1} s (run {})",
        thousands(run.customers.max(0) as u64),
        thousands(run.orders.max(0) as u64),
        run.as_of,
        run.id
    );
    match (&run.model, &o.models_skipped) {
        (Some(model), _) => {
            let _ = writeln!(out, "model: {model} (P(alive), expected purchases, CLV and next purchase stored)");
        }
        (None, Some(why)) => {
            let _ = writeln!(out, "models not fitted: {why} (RFM and rule-based stages stored)");
        }
        (None, None) => {}
    }
    let stages: Vec<String> = o.stages.iter().map(|(name, n)| format!("{name} {}", thousands(*n))).collect();
    if !stages.is_empty() {
        let _ = writeln!(out, "stages: {}", stages.join(" · "));
    }
    let _ = writeln!(out, "stage changes: {}", thousands(run.stage_changes.max(0) as u64));
    let phases: Vec<String> = o
        .phases
        .iter()
        .map(|&(name, d)| match name {
            "models" if !o.product_groups.is_zero() => {
                format!(
                    "models {:.1} s (product groups {:.1} s beside them)",
                    d.as_secs_f64(),
                    o.product_groups.as_secs_f64()
                )
            }
            _ => format!("{name} {:.1} s", d.as_secs_f64()),
        })
        .collect();
    let _ = writeln!(out, "time: {}", phases.join(" · "));
    if let Some(p) = &o.pushdown {
        let _ = writeln!(
            out,
            "push-down: {} orders aggregated in the database; pulled {} distinct histories and {} spend keys ({} bytes); {} statements",
            thousands(p.orders),
            thousands(p.histories as u64),
            thousands(p.spend_keys as u64),
            thousands(p.bytes_received),
            p.statements
        );
    }
    out
}
