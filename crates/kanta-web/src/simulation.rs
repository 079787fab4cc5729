//! A journey simulation (`kanta_engine::Engine::simulate`) as a page shows it: the headline
//! figures and the chart data, shared by the dashboard's simulation view and `kanta journeys
//! simulate --html`.

use kanta_engine::simulate::Simulation;
use kanta_report::format::thousands;

/// The HTML page's view of a simulation.
pub fn page(s: &Simulation) -> kanta_report::simulation::SimulationPage<'_> {
    kanta_report::simulation::SimulationPage {
        journey: &s.journey,
        from: &s.from,
        until: &s.until,
        days: s.days,
        seed: s.seed,
        entries_from: &s.entries_from,
        summary: summary(s),
        steps: s.steps.iter().map(|step| (step.step.clone(), step.kind, step.runs)).collect(),
        day_labels: s.sends_per_day.iter().map(|d| d.day.clone()).collect(),
        entries: s.entries_per_day.iter().map(|d| d.entries).collect(),
        sent: s.sends_per_day.iter().map(|d| d.sent).collect(),
        deferred: s.sends_per_day.iter().map(|d| d.deferred).collect(),
        webhooks: s.sends_per_day.iter().map(|d| d.webhooks).collect(),
        per_week: s.per_customer_week.histogram.clone(),
        caveats: &s.caveats,
    }
}

/// The headline figures as (label, value) rows, for the text and the page.
pub fn summary(s: &Simulation) -> Vec<(String, String)> {
    let e = &s.entries;
    let m = &s.messages;
    let w = &s.per_customer_week;
    let spread = |[low, high]: [u64; 2]| {
        if s.draws > 1 {
            format!(" ({}–{} in {} draws)", thousands(low), thousands(high), s.draws)
        } else {
            String::new()
        }
    };
    let mut rows = vec![
        ("customers in the store".to_owned(), thousands(s.customers)),
        (
            "entries".to_owned(),
            format!(
                "{}{} ({} treated, {} control, {} global control; {} customers; {} refused by the re-entry rule)",
                thousands(e.total),
                spread(s.entries_range),
                thousands(e.treatment),
                thousands(e.control),
                thousands(e.global_control),
                thousands(e.customers),
                thousands(e.refused)
            ),
        ),
        (
            "treated runs".to_owned(),
            format!(
                "{} completed, {} exited, {} still running at the end",
                thousands(s.ends.completed),
                thousands(s.ends.exited),
                thousands(s.ends.running)
            ),
        ),
        (
            "emails".to_owned(),
            format!(
                "{}{} queued: {} sent at once, {} delayed by quiet hours ({} past the window), {} skipped by the \
                 frequency cap; {} transactional",
                thousands(m.emails),
                spread(s.emails_range),
                thousands(m.sent),
                thousands(m.deferred),
                thousands(m.after_window),
                thousands(m.capped),
                thousands(m.transactional)
            ),
        ),
        ("webhooks, updates".to_owned(), format!("{}, {}", thousands(m.webhooks), thousands(m.updates))),
        (
            "emails per customer per week".to_owned(),
            format!("mean {:.2}, at most {} ({} customers get email)", w.mean, w.max, thousands(w.customers)),
        ),
    ];
    if let Some(model) = &s.model {
        rows.push(("customer model".to_owned(), model.clone()));
    }
    rows
}
