//! Holdout arms and goals: held-out runs, conversions credited to the run they fall in, and
//! the uplift report's rows (first entries, revenue net of returns before and after entry).

use std::time::Duration;

use kanta_store::journey::{
    Entered, EntryRules, GoalSource, NewConversion, NewRun, Reentry, RunArm, RunId, RunStatus, UpliftEntry,
};
use serde_json::{Value, json};

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    held_out_runs_count_for_reentry_but_are_never_due,
    a_conversion_goes_to_the_latest_open_run_once_and_only_inside_its_window,
    uplift_rows_are_first_entries_with_net_revenue_before_and_after,
);

const DAY: i64 = 86_400 * 1_000_000;
const MONTH: Duration = Duration::from_secs(30 * 86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);
const ONCE: EntryRules = EntryRules { reentry: Reentry::Once, max_active: None, once_per_key: false };
const ALWAYS: EntryRules = EntryRules { reentry: Reentry::Always, max_active: None, once_per_key: false };

async fn setup(db: &TestDb, ids: &[&str]) -> Vec<i64> {
    db.store.apply_journey("j", "{}", "{}", at(NOW)).await.expect("apply");
    let records: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    let batch: Vec<Customer> = checked(&serde_json::to_string(&records).expect("JSON"));
    db.store.write_customers(&batch, at(NOW)).await.expect("write");
    let mut keys = Vec::new();
    for id in ids {
        keys.push(db.store.customer_key(id).await.expect("read").expect("the customer"));
    }
    keys
}

fn run(customer: i64, arm: RunArm, context: &Value) -> NewRun<'_> {
    NewRun { journey: "j", version: 1, customer, key: "", step: "0", due_at: Some(at(NOW)), wait: None, context, arm }
}

async fn enter(db: &TestDb, new: &NewRun<'_>, rules: &EntryRules, when: i64) -> Entered {
    db.store.start_run(new, rules, at(when)).await.expect("start")
}

async fn held_out_runs_count_for_reentry_but_are_never_due(db: TestDb) {
    let [a, b, c] = setup(&db, &["a", "b", "c"]).await[..] else { panic!("three") };
    let context = json!({});
    let Entered::HeldOut(held) = enter(&db, &run(a, RunArm::Control, &context), &ONCE, NOW).await else {
        panic!("held out")
    };
    let Entered::HeldOut(global) = enter(&db, &run(b, RunArm::GlobalControl, &context), &ONCE, NOW).await else {
        panic!("held out")
    };
    let Entered::Started(treated) = enter(&db, &run(c, RunArm::Treatment, &context), &ONCE, NOW).await else {
        panic!("started")
    };
    // Only the treated run is ever due.
    let due = db.store.claim_due_runs("w", at(NOW + DAY), Duration::from_secs(60), 100).await.expect("claim");
    assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), [treated]);
    // A held-out customer has entered: `once` keeps them out as it keeps a treated one.
    assert_eq!(enter(&db, &run(a, RunArm::Control, &context), &ONCE, NOW + DAY).await, Entered::NotAgain);
    let (runs, _) = db.store.journey_runs("j", None, 10).await.expect("runs");
    let shown: Vec<(RunId, RunStatus, RunArm, Option<&str>, bool)> =
        runs.iter().map(|r| (r.id, r.status, r.arm, r.exit_reason.as_deref(), r.ended_at == Some(at(NOW)))).collect();
    assert_eq!(
        shown,
        [
            (held, RunStatus::HeldOut, RunArm::Control, Some("holdout"), true),
            (global, RunStatus::HeldOut, RunArm::GlobalControl, Some("global holdout"), true),
            (treated, RunStatus::Active, RunArm::Treatment, None, false),
        ]
    );
    let report = db.store.journey_report("j").await.expect("report").expect("the journey");
    assert_eq!((report.versions[0].held_out_runs, report.versions[0].active_runs), (2, 1));
    assert_eq!(
        db.store.entries_by_arm("j").await.expect("arms"),
        [(RunArm::Control, 1), (RunArm::GlobalControl, 1), (RunArm::Treatment, 1)]
    );
}

fn conversion(customer: i64, when: i64, source: GoalSource) -> NewConversion<'static> {
    NewConversion { journey: "j", customer, at: at(when), within: MONTH, source }
}

async fn a_conversion_goes_to_the_latest_open_run_once_and_only_inside_its_window(db: TestDb) {
    let [a] = setup(&db, &["a"]).await[..] else { panic!("one") };
    let context = json!({});
    let Entered::HeldOut(first) = enter(&db, &run(a, RunArm::Control, &context), &ALWAYS, NOW).await else {
        panic!("held out")
    };
    let Entered::HeldOut(second) = enter(&db, &run(a, RunArm::Control, &context), &ALWAYS, NOW + 10 * DAY).await else {
        panic!("held out")
    };
    let record = async |c: NewConversion<'_>| db.store.record_conversion(&c, at(NOW + 50 * DAY)).await.expect("record");
    // Before the first entry: no run was open.
    assert_eq!(record(conversion(a, NOW - DAY, GoalSource::Segment)).await, None);
    // Both runs are open on day 12: the latest entered gets it.
    assert_eq!(record(conversion(a, NOW + 12 * DAY, GoalSource::Event(Some(7)))).await, Some(second));
    // The same arrival again (a feed row handled twice) converts nothing else.
    assert_eq!(record(conversion(a, NOW + 12 * DAY, GoalSource::Event(Some(7)))).await, None);
    // Another one: the second run has converted, the first is still in its window.
    assert_eq!(record(conversion(a, NOW + 13 * DAY, GoalSource::Segment)).await, Some(first));
    // On day 41 the second run's window (days 10–40) has closed and the first converted.
    assert_eq!(record(conversion(a, NOW + 41 * DAY, GoalSource::Segment)).await, None);
    let (rows, _) = db.store.uplift_entries("j", MONTH, YEAR, None, 10).await.expect("rows");
    assert_eq!(rows.iter().map(|e| (e.run, e.converted_at)).collect::<Vec<_>>(), [(first, Some(at(NOW + 13 * DAY)))]);
}

async fn uplift_rows_are_first_entries_with_net_revenue_before_and_after(db: TestDb) {
    let [a, b] = setup(&db, &["a", "b"]).await[..] else { panic!("two") };
    let context = json!({});
    let time = |micros: i64| kanta_store::rfc3339(micros);
    let orders = format!(
        r#"[
      {{"id":"o1","customer_id":"a","time":"{}","amount":"20","currency":"EUR"}},
      {{"id":"o2","customer_id":"a","time":"{}","amount":"5.5","currency":"EUR","status":"refunded"}},
      {{"id":"o3","customer_id":"a","time":"{}","amount":"7","currency":"EUR"}},
      {{"id":"o4","customer_id":"a","time":"{}","amount":"100","currency":"EUR","status":"cancelled"}},
      {{"id":"o5","customer_id":"a","time":"{}","amount":"1000","currency":"EUR"}},
      {{"id":"o6","customer_id":"a","time":"{}","amount":"3","currency":"EUR"}}
    ]"#,
        time(NOW + 2 * DAY),   // after entry
        time(NOW + 20 * DAY),  // a refund after entry: −5.50
        time(NOW - 100 * DAY), // the year before
        time(NOW - 50 * DAY),  // cancelled: not revenue
        time(NOW - 400 * DAY), // more than a year before
        time(NOW + 30 * DAY),  // the window's end is exclusive
    );
    db.store.write_orders(&checked::<Order>(&orders), at(NOW)).await.expect("write");
    let Entered::Started(ra) = enter(&db, &run(a, RunArm::Treatment, &context), &ALWAYS, NOW).await else {
        panic!("started")
    };
    let Entered::HeldOut(rb) = enter(&db, &run(b, RunArm::Control, &context), &ALWAYS, NOW + DAY).await else {
        panic!("held out")
    };
    // A's later entry is the same customer again, not a new unit.
    db.store.exit_runs(a, "j", None, "test", at(NOW + 3 * DAY)).await.expect("exit");
    enter(&db, &run(a, RunArm::Treatment, &context), &ALWAYS, NOW + 5 * DAY).await;
    let (rows, next) = db.store.uplift_entries("j", MONTH, YEAR, None, 10).await.expect("rows");
    assert_eq!(next, None);
    assert_eq!(
        rows,
        [
            UpliftEntry {
                run: ra,
                customer: a,
                arm: RunArm::Treatment,
                entered_at: at(NOW),
                converted_at: None,
                revenue_after: 145_000,
                orders_after: 1,
                revenue_before: 70_000,
                messages_sent: 0,
                clv_12m: None,
            },
            UpliftEntry {
                run: rb,
                customer: b,
                arm: RunArm::Control,
                entered_at: at(NOW + DAY),
                converted_at: None,
                revenue_after: 0,
                orders_after: 0,
                revenue_before: 0,
                messages_sent: 0,
                clv_12m: None,
            },
        ]
    );
    // A page at a time.
    let (page, next) = db.store.uplift_entries("j", MONTH, YEAR, None, 1).await.expect("rows");
    assert_eq!((page.len(), next), (1, Some(ra)));
    let (page, _) = db.store.uplift_entries("j", MONTH, YEAR, next, 1).await.expect("rows");
    assert_eq!(page.iter().map(|e| e.run).collect::<Vec<_>>(), [rb]);
}
