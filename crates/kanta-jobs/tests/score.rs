//! The scoring job on both backends: its stored scores are exactly what `kanta analyze`'s
//! analysis and models give on the same orders.

use std::collections::HashMap;

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{AnalysisOptions, analyze};
use kanta_core::time::Day;
use kanta_domain::{Currency, CustomerId};
use kanta_jobs::schedule::{Cycle, Schedule};
use kanta_jobs::{Cancel, JobError, ScoreJob, score_store, score_store_until};
use kanta_score::{ScoreOptions, score};
use kanta_store::record::{Order, OrderStatus};
use kanta_store::testing::TestDb;

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
    stored_scores_equal_the_analysis_and_models_of_the_same_orders,
    a_small_store_gets_rfm_and_stages_without_models,
    order_lines_give_each_customer_a_main_category_and_a_cross_sell_hint,
    a_cancelled_run_writes_nothing_and_is_recorded_as_cancelled,
    the_schedule_cancels_a_run_over_its_budget_and_at_shutdown,
);

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A generated shop, as store orders (returns become refunded orders).
fn shop(customers: u64, end: Day) -> Vec<Order> {
    let config = kanta_gen::Config { customers, seed: 11, end, ..kanta_gen::Config::default() };
    kanta_gen::simulate(&config)
        .expect("a valid configuration")
        .iter()
        .map(|o| Order {
            id: format!("O{}", o.number),
            customer_id: CustomerId::parse(format!("C{:07}", o.customer)).expect("an id"),
            time: o.time.into(),
            amount: if o.value.raw() < 0 { -o.value } else { o.value },
            currency: Currency::parse("EUR").expect("a currency"),
            status: if o.value.raw() < 0 { OrderStatus::Refunded } else { OrderStatus::Completed },
            lines: Vec::new(),
        })
        .collect()
}

async fn store_orders(db: &TestDb, orders: &[Order]) {
    for batch in orders.chunks(5_000) {
        db.store.write_orders(batch, kanta_domain::Timestamp::EPOCH).await.expect("write");
    }
}

async fn stored_scores_equal_the_analysis_and_models_of_the_same_orders(db: TestDb) {
    let end = Day::from_ymd(2024, 6, 30).expect("a date");
    let orders = shop(3_000, end);
    store_orders(&db, &orders).await;
    // Scored the day after the window: every stage occurs.
    let now = i64::from(end.0 + 1) * MICROS_PER_DAY + 3_600_000_000;
    let outcome = score_store(db.store.as_ref(), &ScoreJob::default(), now).await.expect("scoring");
    // PostgreSQL aggregates its orders itself; SQLite reads them.
    let pushed = db.store.backend() == kanta_store::Backend::Postgres;
    assert_eq!(outcome.pushdown.as_ref().map(|p| p.orders as usize), pushed.then_some(orders.len()));

    // The same orders through `kanta analyze`'s functions.
    let mut aggregator = Aggregator::new();
    for o in &orders {
        let amount = if o.status == OrderStatus::Refunded { -o.amount } else { o.amount };
        let line = OrderLine {
            customer: o.customer_id.as_str().as_bytes(),
            order: Some(o.id.as_bytes()),
            time: o.time.into(),
            amount,
        };
        aggregator.push(line).expect("a line");
    }
    let base = aggregator.finish();
    let as_of = Day(end.0 + 1);
    let mut analysis =
        analyze(&base, &AnalysisOptions { as_of: Some(as_of), ..AnalysisOptions::default() }).expect("analysis");
    let scores = score(&analysis, &ScoreOptions::default()).expect("models");
    let slipping: Vec<bool> = scores.customers.iter().map(|c| c.slipping).collect();
    analysis.mark_slipping(&slipping);

    assert_eq!(outcome.run.customers as usize, analysis.customers.len());
    assert_eq!(outcome.run.orders as usize, orders.len());
    assert_eq!(outcome.run.stage_changes, outcome.run.customers, "the first run finds every stage");
    assert_eq!(outcome.run.as_of, "2024-07-01");
    assert_eq!(outcome.run.model.as_deref(), Some(scores.summary.chosen));
    assert_eq!(outcome.run.diagnostics["models"]["chosen"], scores.summary.chosen);
    let stages: HashMap<&str, u64> = outcome.stages.iter().copied().collect();
    for row in &analysis.summary.stages {
        assert_eq!(stages.get(row.name.as_str()).copied(), Some(row.customers), "{}", row.name);
    }
    assert!(stages["slipping"] > 0 && stages["lost"] > 0 && stages["new"] > 0, "{stages:?}");

    // Every 37th customer, compared field by field.
    let net: Vec<_> = analysis.customers.iter().map(|c| c.revenue - c.returned).collect();
    let tiers = kanta_core::tier::tiers(&net);
    for (i, c) in analysis.customers.iter().enumerate().step_by(37) {
        let id = String::from_utf8_lossy(base.id(c.customer)).into_owned();
        let record = db.store.customer(&id, 0).await.expect("read").expect("stored");
        let stored = record.scores.expect("scored");
        assert_eq!((stored.r, stored.f, stored.m), (c.r, c.f, c.m), "{id}");
        assert_eq!((stored.stage.as_str(), stored.rfm_segment.as_str()), (c.stage.name(), c.segment.name()), "{id}");
        assert_eq!(stored.value_tier.as_deref(), Some(tiers[i].name()), "{id}");
        let model = stored.model.expect("model scores");
        let want = &scores.customers[i];
        assert_eq!(model.p_alive, want.p_alive, "{id}");
        assert_eq!(model.expected_90d, want.expected_purchases[1], "{id}");
        assert_eq!(model.clv_12m, want.clv_12m, "{id}");
        let next = as_of.0 as f64 * MICROS_PER_DAY as f64 + want.next_purchase_days * MICROS_PER_DAY as f64;
        assert_eq!(model.next_purchase_at.map(|t| t.micros()), Some(next.round() as i64), "{id}");
        assert_eq!(record.stage_history.len(), 1, "{id}");
    }

    // The same day again: nothing changes stage.
    let again = score_store(db.store.as_ref(), &ScoreJob::default(), now + 60_000_000).await.expect("scoring");
    assert_eq!((again.run.stage_changes, again.run.customers), (0, outcome.run.customers));
    // A year later everyone has gone quiet: stages move, and the history shows it; a saved
    // segment of lost customers records who entered it.
    let lost_text = "stage = \"lost\"";
    let lost = kanta_segment::parse(lost_text).expect("valid");
    let saved = db.store.create_segment("lost", lost_text, &lost, now).await.expect("segment");
    assert_eq!(saved.members as u64, stages["lost"]);
    let cycle = kanta_jobs::schedule::cycle(db.store.as_ref(), &ScoreJob::default(), now + 365 * MICROS_PER_DAY).await;
    let lines = kanta_jobs::schedule::describe_cycle(&cycle);
    assert!(lines[1].starts_with("segment `lost`: "), "{lines:?}");
    let later = cycle.score.expect("scoring");
    let refreshed = cycle.segments.expect("refresh");
    let counts = refreshed[0].result.as_ref().expect("refreshed");
    assert_eq!(counts.members as u64 - stages["lost"], counts.entered - counts.exited);
    assert!(counts.entered > 0);
    assert!(later.run.stage_changes > 0);
    let lost_now = db.store.segment_count(&lost, now + 365 * MICROS_PER_DAY).await.expect("count");
    assert_eq!(Some(lost_now as u64), later.stages.iter().find(|s| s.0 == "lost").map(|s| s.1));
    assert!(lost_now as u64 > stages["lost"]);
}

async fn a_small_store_gets_rfm_and_stages_without_models(db: TestDb) {
    let end = Day::from_ymd(2024, 6, 30).expect("a date");
    let orders = shop(12, end);
    store_orders(&db, &orders).await;
    let now = i64::from(end.0 + 1) * MICROS_PER_DAY;
    let outcome = score_store(db.store.as_ref(), &ScoreJob::default(), now).await.expect("scoring");
    let why = outcome.models_skipped.expect("too few customers for the models");
    assert!(why.contains("customers"), "{why}");
    assert_eq!(outcome.run.model, None);
    assert_eq!(outcome.run.diagnostics["models_skipped"], why.as_str());
    assert!(outcome.run.customers > 0);
    let first = orders.iter().find(|o| o.status == OrderStatus::Completed).expect("a purchase");
    let record = db.store.customer(first.customer_id.as_str(), 0).await.expect("read").expect("stored");
    let stored = record.scores.expect("scored");
    assert!((1..=5).contains(&stored.r) && stored.model.is_none());

    // An empty store: a run with nobody in it, not an error.
    let empty = kanta_store::testing::sqlite().await.expect("a store");
    let outcome = score_store(empty.store.as_ref(), &ScoreJob::default(), now).await.expect("scoring");
    assert_eq!((outcome.run.customers, outcome.run.orders), (0, 0));
}

async fn order_lines_give_each_customer_a_main_category_and_a_cross_sell_hint(db: TestDb) {
    use kanta_core::money::Money;
    use kanta_store::record::Line;
    let day = |d: i64| (19_700 + d) * MICROS_PER_DAY;
    let order = |id: &str, customer: &str, d: i64, categories: &[&str]| Order {
        id: id.into(),
        customer_id: CustomerId::parse(customer).expect("an id"),
        time: kanta_domain::Timestamp::from_micros(day(d)),
        amount: Money::from_raw(10_0000 * categories.len().max(1) as i64),
        currency: Currency::parse("EUR").expect("a currency"),
        status: OrderStatus::Completed,
        lines: categories
            .iter()
            .map(|c| Line {
                product: format!("{c}-1"),
                category: Some((*c).to_string()),
                quantity: Money::from_raw(10_000),
                price: Money::from_raw(10_0000),
            })
            .collect(),
    };
    // ann and bob went from coffee to grinders, cy from coffee to mugs; dee has only coffee
    // (twice, and tea once); eve's order has no lines; fay's coffee order was cancelled.
    let mut orders = vec![
        order("a1", "ann", 1, &["coffee"]),
        order("a2", "ann", 5, &["grinders", "coffee"]),
        order("b1", "bob", 2, &["coffee"]),
        order("b2", "bob", 9, &["grinders"]),
        order("c1", "cy", 1, &["coffee"]),
        order("c2", "cy", 3, &["mugs"]),
        order("d1", "dee", 4, &["coffee"]),
        order("d2", "dee", 6, &["coffee", "tea"]),
        order("e1", "eve", 4, &[]),
        order("f1", "fay", 4, &["coffee"]),
    ];
    orders[9].status = OrderStatus::Cancelled;
    orders.push(order("f2", "fay", 5, &["tea"]));
    db.store.write_orders(&orders, kanta_domain::Timestamp::from_micros(day(10))).await.expect("orders");
    score_store(db.store.as_ref(), &ScoreJob::default(), day(10)).await.expect("scoring");
    let groups = |id: &'static str| {
        let store = db.store.clone();
        async move {
            let s = store.customer(id, 0).await.expect("read").expect("stored").scores.expect("scored");
            (s.main_category, s.next_category)
        }
    };
    let pair = |main: &str, next: Option<&str>| (Some(main.to_string()), next.map(str::to_string));
    // coffee → grinders 2, mugs 1; tea never led anywhere.
    assert_eq!(groups("dee").await, pair("coffee", Some("grinders")));
    assert_eq!(groups("ann").await, pair("coffee", Some("mugs")));
    assert_eq!(groups("cy").await, pair("coffee", Some("grinders")));
    assert_eq!(groups("fay").await, (Some("tea".to_string()), None), "the cancelled coffee order does not count");
    assert_eq!(groups("eve").await, (None, None));
    let expr = kanta_segment::parse("next_category = \"grinders\" and main_category = \"coffee\"").expect("valid");
    assert_eq!(db.store.segment_count(&expr, day(10)).await.expect("count"), 2);
}

/// Regression (issue 16): a run could only be dropped, never asked to stop, so SIGTERM waited
/// for it (300 s on a base whose models spun).
async fn a_cancelled_run_writes_nothing_and_is_recorded_as_cancelled(db: TestDb) {
    let end = Day::from_ymd(2024, 6, 30).expect("a date");
    store_orders(&db, &shop(300, end)).await;
    let now = i64::from(end.0 + 1) * MICROS_PER_DAY;
    let first = score_store(db.store.as_ref(), &ScoreJob::default(), now).await.expect("scoring");

    let cancel = Cancel::default();
    cancel.cancel("shutdown");
    cancel.cancel("a second reason does not replace the first");
    let err = score_store_until(db.store.as_ref(), &ScoreJob::default(), now + MICROS_PER_DAY, &cancel)
        .await
        .expect_err("cancelled");
    assert!(matches!(&err, JobError::Cancelled { phase: "read", reason } if reason == "shutdown"), "{err:?}");
    assert_eq!(err.to_string(), "cancelled during read (shutdown); nothing was written");

    let runs = db.store.score_runs(10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].status.as_str(), runs[0].customers, runs[0].model.as_deref()), ("cancelled", 0, None));
    assert_eq!(runs[0].diagnostics, serde_json::json!({"cancelled": {"phase": "read", "reason": "shutdown"}}));
    assert_eq!(runs[0].as_of, "2024-07-02");
    assert_eq!((runs[1].id, runs[1].status.as_str()), (first.run.id, "completed"));
    // The stored scores are still the completed run's.
    let record = db.store.customer("C0000001", 0).await.expect("read").expect("a customer");
    assert_eq!(record.scores.expect("scores").run_id, first.run.id);
}

async fn the_schedule_cancels_a_run_over_its_budget_and_at_shutdown(db: TestDb) {
    let end = Day::from_ymd(2024, 6, 30).expect("a date");
    store_orders(&db, &shop(2_000, end)).await;
    let clock: std::sync::Arc<dyn kanta_domain::Clock> = std::sync::Arc::new(kanta_domain::ManualClock::new(
        kanta_domain::Timestamp::from_micros(i64::from(end.0 + 1) * MICROS_PER_DAY),
    ));
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel::<String>();
    let report = move |c: &Cycle| {
        let _ = reports_tx.send(kanta_jobs::schedule::describe(&c.score));
    };

    // A budget far shorter than any run (reading and fitting 2,000 customers takes tens of
    // milliseconds at least): the run stops at its next safe point and says why.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let schedule =
        Schedule { every: std::time::Duration::from_secs(3600), budget: Some(std::time::Duration::from_nanos(1)) };
    let scheduler = tokio::spawn(kanta_jobs::schedule::run(
        db.store.clone(),
        ScoreJob::default(),
        schedule,
        clock.clone(),
        stop,
        report.clone(),
    ));
    let line = reports.recv().await.expect("a cycle");
    assert!(
        line.starts_with("scoring run cancelled during ")
            && line.ends_with("(time budget of 0 s exceeded); nothing was written"),
        "{line}"
    );
    stop_tx.send(true).expect("stop");
    scheduler.await.expect("the scheduler stops");
    let runs = db.store.score_runs(10).await.expect("runs");
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["cancelled"]);

    // Shutdown while the run is going: it is cancelled and recorded, and the scheduler returns.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let schedule = Schedule { every: std::time::Duration::from_secs(3600), budget: None };
    let scheduler =
        tokio::spawn(kanta_jobs::schedule::run(db.store.clone(), ScoreJob::default(), schedule, clock, stop, report));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    stop_tx.send(true).expect("stop");
    let started = std::time::Instant::now();
    scheduler.await.expect("the scheduler stops");
    // Bounded by SHUTDOWN_WAIT (plus slack for a loaded machine), not by the run.
    assert!(started.elapsed() <= kanta_jobs::schedule::SHUTDOWN_WAIT + std::time::Duration::from_secs(3));
    let line = reports.recv().await.expect("the cancelled cycle is reported");
    assert!(line.contains("(shutdown); nothing was written"), "{line}");
    let runs = db.store.score_runs(10).await.expect("runs");
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["cancelled", "cancelled"]);
    assert_eq!(runs[0].diagnostics["cancelled"]["reason"], "shutdown");
}

/// A generated shop with what the push-down must get right besides the models: order lines in
/// categories (two at once now and then, for shared adoption credit), cancelled orders, zero
/// amounts and returns.
fn shop_with_lines(customers: u64, end: Day) -> Vec<Order> {
    use kanta_core::money::Money;
    use kanta_store::record::Line;
    const CATEGORIES: [&str; 7] = ["books", "coffee", "filters", "grinders", "mugs", "tea", "Tea"];
    let mut orders = shop(customers, end);
    for (i, o) in orders.iter_mut().enumerate() {
        let pick = |k: usize| CATEGORIES[(k * 7 + i / 3) % CATEGORIES.len()].to_string();
        let line = |category: String| Line {
            product: format!("{category}-{}", i % 5),
            category: Some(category),
            quantity: Money::from_raw(10_000),
            price: o.amount,
        };
        o.lines = match i % 4 {
            0 => vec![line(pick(i))],
            1 => vec![line(pick(i)), line(pick(i + 1))],
            2 => vec![line(pick(i / 2))],
            _ => Vec::new(),
        };
        if i % 29 == 5 {
            o.status = OrderStatus::Cancelled;
        }
        if i % 31 == 7 && o.status == OrderStatus::Completed {
            o.amount = Money::ZERO;
        }
    }
    orders
}

/// Every stored score row of `ids`, as the store shows them.
async fn stored_scores(db: &TestDb, ids: &[String]) -> Vec<(String, Option<kanta_store::ScoreView>, usize)> {
    let mut out = Vec::new();
    for id in ids {
        let record = db.store.customer(id, 0).await.expect("read").expect("stored");
        out.push((id.clone(), record.scores, record.stage_history.len()));
    }
    out
}

/// Issue 20: on PostgreSQL the scoring job pushes down; what it stores — every score of every
/// customer, the run, its diagnostics, the stage changes — is what reading every order into
/// memory stores, on a first run and on a rescoring run that moves stages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_down_stores_what_the_in_memory_job_stores() {
    let end = Day::from_ymd(2024, 6, 30).expect("a date");
    let orders = shop_with_lines(1_500, end);
    let mut ids: Vec<String> = orders.iter().map(|o| o.customer_id.as_str().to_owned()).collect();
    ids.sort();
    ids.dedup();
    let (Some(pushed), Some(memory)) = (
        kanta_store::testing::postgres().await.expect("a store"),
        kanta_store::testing::postgres().await.expect("a store"),
    ) else {
        return;
    };
    for db in [&pushed, &memory] {
        store_orders(db, &orders).await;
    }
    let in_memory = ScoreJob { in_memory: true, ..ScoreJob::default() };
    let day = |d: i32| i64::from(end.0 + d) * MICROS_PER_DAY + 3_600_000_000;
    // The day after the window, then half a year later (stages move, the rest stays).
    for now in [day(1), day(180)] {
        let a = score_store(pushed.store.as_ref(), &ScoreJob::default(), now).await.expect("push-down");
        let b = score_store(memory.store.as_ref(), &in_memory, now).await.expect("in memory");
        let stats = a.pushdown.as_ref().expect("pushed down");
        assert!(b.pushdown.is_none());
        assert!(stats.histories > 0 && stats.histories < a.run.customers as usize, "{stats:?}");
        let (ra, rb) = (&a.run, &b.run);
        assert_eq!(
            (ra.customers, ra.orders, &ra.model, ra.stage_changes, &ra.as_of, &ra.status),
            (rb.customers, rb.orders, &rb.model, rb.stage_changes, &rb.as_of, &rb.status)
        );
        // The fitted models and the business summary.
        let mut differences = Vec::new();
        json_differences("", &ra.diagnostics, &rb.diagnostics, &mut differences);
        assert!(differences.is_empty(), "{differences:#?}");
        assert_eq!(a.stages, b.stages);
        assert_eq!(a.models_skipped, b.models_skipped);
        let (sa, sb) = (stored_scores(&pushed, &ids).await, stored_scores(&memory, &ids).await);
        let mut grouped = 0;
        for ((id, a, ha), (_, b, hb)) in sa.iter().zip(&sb) {
            assert_eq!(ha, hb, "{id}: stage history");
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let run = |mut v: kanta_store::ScoreView| {
                        (v.run_id, v.scored_at) = (0, String::new());
                        v
                    };
                    grouped += usize::from(a.next_category.is_some());
                    assert_eq!(run(a.clone()), run(b.clone()), "{id}");
                }
                _ => panic!("{id}: scored on one path only: {a:?} / {b:?}"),
            }
        }
        assert!(grouped > 100, "cross-sell hints: {grouped}");
    }
    // The stage changes, oldest first, as the webhooks read them.
    let events = |db: &TestDb| {
        let store = db.store.clone();
        async move {
            let (events, _) = store.stage_events(None, 10_000).await.expect("events");
            events.into_iter().map(|e| (e.customer, e.change.from, e.change.to, e.change.time)).collect::<Vec<_>>()
        }
    };
    let (ea, eb) = (events(&pushed).await, events(&memory).await);
    assert!(ea.len() > 1_500, "{}", ea.len());
    assert_eq!(ea, eb);
}

/// Where two JSON values differ, by path: floats by more than 1e-9 relative (a sum of every
/// customer's CLV is added up in another order in the database), the rest exactly.
fn json_differences(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (u, v) = (x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null));
                json_differences(&format!("{path}.{key}"), u, v, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                json_differences(&format!("{path}[{i}]"), u, v, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (u, v) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            if (u - v).abs() > 1e-9 * u.abs().max(v.abs()) {
                out.push(format!("{path}: {a} ≠ {b}"));
            }
        }
        _ if a != b => out.push(format!("{path}: {a} ≠ {b}")),
        _ => {}
    }
}
