//! The server's suites, one binary: each spawns the whole application (`kanta_server::testing`)
//! and drives it over HTTP or raw TCP.

mod api;
mod application;
mod dashboard;
mod dashboard_browser;
mod http_limits;
mod journeys;

/// Customers `ids` (already stored) entered into journey `promo` version 1 at `step`, 40 days
/// before the application's clock — the `t…` ones treated, the rest in the holdout — and `t1`
/// converted the next day: a report with matured arms, without waiting for the engine.
async fn enter_promo_arms(app: &kanta_server::testing::TestApp, step: &str, ids: &[&str]) {
    use kanta_store::journey::{EntryRules, GoalSource, NewConversion, NewRun, Reentry, RunArm};
    let day = std::time::Duration::from_secs(86_400);
    let entered = kanta_domain::Timestamp::from_micros(
        kanta_domain::Clock::now(app.clock.as_ref()).micros() - 40 * 86_400_000_000,
    );
    let rules = EntryRules { reentry: Reentry::Once, max_active: None, once_per_key: false };
    let context = serde_json::json!({});
    for &id in ids {
        let customer = app.store.customer_key(id).await.expect("read").expect("the customer");
        let arm = if id.starts_with('t') { RunArm::Treatment } else { RunArm::Control };
        let run = NewRun {
            journey: "promo",
            version: 1,
            customer,
            key: "",
            step,
            due_at: None,
            wait: None,
            context: &context,
            arm,
        };
        app.store.start_run(&run, &rules, entered).await.expect("entered");
        if id == "t1" {
            let at = entered.saturating_add(day);
            let conversion =
                NewConversion { journey: "promo", customer, at, within: 30 * day, source: GoalSource::Event(None) };
            assert!(app.store.record_conversion(&conversion, at).await.expect("recorded").is_some());
        }
    }
}
