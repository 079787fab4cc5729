//! `kanta journeys simulate FILE [--days 30] [--json] [--html FILE]`: a journey file projected
//! over the next days against the current store (`kanta_engine::Engine::simulate`), entering
//! and sending nothing, as tables, JSON or an HTML page with charts.
//!
//! The file is checked as `kanta journeys validate` checks it. The engine takes the settings'
//! guardrails (quiet hours, the frequency cap), default zone and global holdout, and the
//! scoring settings' slipping threshold, so the projection runs under the rules a real run
//! would.

use std::sync::Arc;

use anyhow::Context;
use kanta_engine::simulate::{SimulateOptions, Simulation};

use crate::cli::JourneysSimulateArgs;
use crate::command::journeys::check_files;
use kanta_report::format::thousands;

/// Runs the simulation and prints it.
pub fn simulate(args: &JourneysSimulateArgs) -> anyhow::Result<()> {
    let now = super::now_or(args.now.as_deref())?;
    let (mut checked, failed) = check_files(std::slice::from_ref(&args.file));
    let journey = match (failed, checked.pop()) {
        (0, Some((_, journey))) => journey,
        _ => anyhow::bail!("{}: the journey has problems (listed above); nothing was simulated", args.file.display()),
    };
    let settings = args.store.settings()?;
    let config = settings.engine_config(&kanta_server::worker_name())?;
    let options = SimulateOptions {
        days: args.days,
        seed: args.seed,
        draws: args.draws,
        lapse_days: None,
        slipping_below: settings.scoring.slipping_below,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let simulation = runtime.block_on(async {
        let store = settings.database.open().await?;
        let bar = crate::progress::spinner("simulating", false);
        bar.set_message(format!("{} over {} days", journey.name, args.days));
        let engine = kanta_engine::Engine::new(store, config, Arc::new(kanta_domain::ManualClock::new(now)))?;
        let result = engine.simulate(&journey, &options).await;
        bar.finish_and_clear();
        anyhow::Ok(result?)
    })?;
    if let Some(file) = &args.html {
        let html = kanta_report::simulation::render_simulation_html(&kanta_web::simulation::page(&simulation))
            .map_err(|e| anyhow::anyhow!("rendering the simulation page: {e}"))?;
        std::fs::write(file, html).with_context(|| format!("writing {}", file.display()))?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&simulation)?)?;
    } else {
        for line in text(&simulation) {
            outln!("{line}")?;
        }
    }
    Ok(())
}

/// The simulation as lines of text.
pub fn text(s: &Simulation) -> Vec<String> {
    let mut out = vec![
        format!(
            "{}: {} days from {} to {} (seed {}{})",
            s.journey,
            s.days,
            s.from,
            s.until,
            s.seed,
            if s.draws > 1 { format!("; every count the mean of {} draws", s.draws) } else { String::new() }
        ),
        format!("entries from {}", s.entries_from),
        String::new(),
    ];
    for (label, value) in kanta_web::simulation::summary(s) {
        out.push(format!("{label:<30} {value}"));
    }
    out.push(String::new());
    out.push(format!("{:<28} {:<12} {:>10}", "step", "kind", "runs"));
    for step in &s.steps {
        out.push(format!("{:<28} {:<12} {:>10}", step.step, step.kind, thousands(step.runs)));
    }
    out.push(String::new());
    out.push(format!("{:<8} {:>14}", "emails", "customer-weeks"));
    for [emails, weeks] in &s.per_customer_week.histogram {
        out.push(format!("{emails:<8} {:>14}", thousands(*weeks)));
    }
    out.push(String::new());
    out.push(format!("{:<12} {:>9} {:>9} {:>9} {:>9}", "day", "entries", "sent", "delayed", "webhooks"));
    for (entries, d) in s.entries_per_day.iter().zip(&s.sends_per_day) {
        out.push(format!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}",
            d.day,
            thousands(entries.entries),
            thousands(d.sent),
            thousands(d.deferred),
            thousands(d.webhooks)
        ));
    }
    for caveat in &s.caveats {
        out.push(format!("note: {caveat}"));
    }
    out
}
