//! Calendar triggers: birthdays at local midnight, date attributes with offsets, first-purchase
//! anniversaries, predicted purchases, catch-up after downtime, cron schedules over a segment,
//! windows evaluated twice or by two engines at once, paused journeys.

use std::sync::Arc;
use std::time::Duration;

use kanta_domain::{ManualClock, Timestamp};
use kanta_engine::{Engine, EngineConfig, JourneyTriggered, TriggerOutcome};
use kanta_journey::AnyTemplate;
use kanta_store::journey::{RunStatus, TriggerCursor};
use kanta_store::testing::TestDb;
use kanta_store::{Customer, ModelScores, NewScoreRun, Order, ScoreRow};
use serde_json::{Value, json};

use crate::{checked, t};

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    a_birthday_fires_at_local_midnight_in_helsinki_and_in_los_angeles_once,
    a_renewal_date_fires_two_weeks_before_and_a_first_purchase_on_its_anniversary,
    a_predicted_purchase_fires_three_days_before_on_the_customers_local_day,
    after_three_days_down_each_missed_day_fires_once_unless_too_late,
    a_schedule_enters_the_segments_members_and_collapses_missed_occurrences,
    a_window_evaluated_again_enters_nobody,
    two_engines_evaluating_at_once_enter_each_customer_once,
    a_paused_journey_enters_nobody_and_the_days_it_was_paused_are_skipped,
);

struct Harness {
    db: TestDb,
    clock: Arc<ManualClock>,
    engine: Engine,
}

fn engine(db: &TestDb, clock: &Arc<ManualClock>, owner: &str, lease: Duration) -> Engine {
    let mut config = EngineConfig::new(owner);
    config.run_lease = lease;
    Engine::new(db.store.clone(), config, clock.clone()).expect("engine")
}

fn harness(db: TestDb, start: &str) -> Harness {
    let clock = Arc::new(ManualClock::new(t(start)));
    let engine = engine(&db, &clock, "trigger-test", Duration::from_secs(60));
    Harness { db, clock, engine }
}

impl Harness {
    fn now(&self) -> Timestamp {
        self.engine.now()
    }

    async fn apply(&self, yaml: &str) {
        let journey = kanta_journey::validate_yaml(yaml, &AnyTemplate).expect("a valid journey");
        self.db
            .store
            .apply_journey(&journey.name, &journey.canonical_json(), &journey.digest(), self.now())
            .await
            .expect("apply");
    }

    async fn apply_file(&self, file: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../journeys").join(file);
        self.apply(&std::fs::read_to_string(path).expect("the example journey")).await;
    }

    async fn customers(&self, records: Value) {
        self.db.store.write_customers(&checked::<Customer>(&records), self.now()).await.expect("customers");
    }

    /// Evaluate at `at`.
    async fn evaluate(&self, at: &str) -> TriggerOutcome {
        self.clock.set(t(at));
        self.engine.evaluate_triggers(self.now()).await.expect("evaluate")
    }

    /// Customers entered per journey, by journey.
    async fn entered(&self, at: &str) -> Vec<(String, u64)> {
        self.evaluate(at).await.journeys.into_iter().map(|j| (j.journey, j.entered)).collect()
    }

    /// A journey's runs as (customer, key), by customer then key.
    async fn runs(&self, journey: &str) -> Vec<(String, String)> {
        let (runs, _) = self.db.store.journey_runs(journey, None, 1000).await.expect("runs");
        let mut runs: Vec<(String, String)> = runs.into_iter().map(|r| (r.customer, r.key)).collect();
        runs.sort();
        runs
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn counts(journey: &str, entered: u64) -> Vec<(String, u64)> {
    vec![(journey.to_owned(), entered)]
}

async fn a_birthday_fires_at_local_midnight_in_helsinki_and_in_los_angeles_once(db: TestDb) {
    let h = harness(db, "2026-12-03T12:00:00Z");
    // journeys/birthday.yaml: yearly, reentry always, the journey's zone Europe/Helsinki.
    h.apply_file("birthday.yaml").await;
    h.customers(json!([
        {"id": "hel", "timezone": "Europe/Helsinki", "birthday": "1990-12-04"},
        {"id": "la", "timezone": "America/Los_Angeles", "birthday": "1985-12-04"},
        {"id": "zoneless", "birthday": "2001-12-04"},
        {"id": "tomorrow", "timezone": "Europe/Helsinki", "birthday": "1990-12-05"},
        {"id": "nobirthday", "timezone": "Europe/Helsinki"}
    ]))
    .await;
    // The first evaluation starts the cursor: nothing before it fires.
    assert_eq!(h.evaluate("2026-12-03T12:00:00Z").await, TriggerOutcome::default());
    // 23:59 in Helsinki: still December 3 there.
    assert_eq!(h.entered("2026-12-03T21:59:00Z").await, counts("birthday", 0));
    // Helsinki's midnight (22:00 UTC): the Helsinki customer and the one without a zone (read
    // in the journey's zone).
    assert_eq!(h.entered("2026-12-03T22:00:00Z").await, counts("birthday", 2));
    assert_eq!(h.runs("birthday").await, pairs(&[("hel", "2026-12-04"), ("zoneless", "2026-12-04")]));
    // UTC midnight is nobody's midnight here: nobody enters (and no customer is read).
    assert_eq!(h.evaluate("2026-12-04T00:00:00Z").await.journeys.len(), 1);
    assert_eq!(h.entered("2026-12-04T07:59:59Z").await, counts("birthday", 0));
    // Los Angeles' midnight (08:00 UTC, PST).
    assert_eq!(h.entered("2026-12-04T08:00:00Z").await, counts("birthday", 1));
    // Within one quarter hour nothing is evaluated; later ticks the same day find nobody new.
    assert_eq!(h.entered("2026-12-04T08:05:00Z").await, Vec::<(String, u64)>::new());
    assert_eq!(h.entered("2026-12-04T20:00:00Z").await, counts("birthday", 0));
    assert_eq!(h.runs("birthday").await.len(), 3);
    // The next Helsinki midnight: tomorrow's birthday.
    assert_eq!(h.entered("2026-12-04T22:00:00Z").await, counts("birthday", 1));
    // The run's context says what fired; its first step waits until 08:00 local.
    let claimed = h.db.store.claim_due_runs("w", t("2026-12-05T06:00:00Z"), Duration::from_secs(60), 10).await;
    let claimed = claimed.expect("claim");
    let hel = claimed.iter().find(|r| r.key == "2026-12-04").expect("a run of December 4");
    assert_eq!(hel.context, json!({"date": "2026-12-04", "field": "birthday"}));
}

async fn a_renewal_date_fires_two_weeks_before_and_a_first_purchase_on_its_anniversary(db: TestDb) {
    let h = harness(db, "2026-12-17T12:00:00Z");
    h.apply("name: renewal\ntrigger:\n  date: attributes.renewal_date\n  offset: -14d\nsteps:\n  - wait: 30d\n").await;
    h.apply("name: anniversary\ntrigger:\n  date: first_purchase\n  yearly: true\nsteps:\n  - wait: 30d\n").await;
    h.customers(json!([
        {"id": "renews", "attributes": {"renewal_date": "2027-01-01"}},
        {"id": "renews-later", "attributes": {"renewal_date": "2027-01-02"}},
        {"id": "buyer", "timezone": "Europe/Helsinki"},
        {"id": "new-buyer", "timezone": "Europe/Helsinki"}
    ]))
    .await;
    let orders = json!([
        // December 17 in Helsinki (22:30 UTC on the 16th is 00:30 there), a year ago.
        {"id": "o1", "customer_id": "buyer", "time": "2025-12-16T22:30:00Z", "amount": "20", "currency": "EUR"},
        {"id": "o2", "customer_id": "buyer", "time": "2026-03-01T10:00:00Z", "amount": "20", "currency": "EUR"},
        // A first purchase this December 18: not its own anniversary.
        {"id": "o3", "customer_id": "new-buyer", "time": "2026-12-17T23:00:00Z", "amount": "20", "currency": "EUR"}
    ]);
    h.db.store.write_orders(&checked::<Order>(&orders), h.now()).await.expect("orders");
    h.evaluate("2026-12-17T12:00:00Z").await;
    // Helsinki's December 18 starts: no anniversary (the buyer's day is December 17 in their
    // zone, though the order's UTC date is the 16th; the new buyer's first purchase is not its
    // own anniversary), and no UTC midnight yet for the renewal.
    assert_eq!(h.entered("2026-12-17T22:00:00Z").await, [("anniversary".into(), 0), ("renewal".into(), 0)]);
    // UTC December 18: 14 days before January 1.
    assert_eq!(h.entered("2026-12-18T00:00:00Z").await, [("anniversary".into(), 0), ("renewal".into(), 1)]);
    assert_eq!(h.runs("renewal").await, pairs(&[("renews", "2026-12-18")]));
    assert_eq!(h.entered("2026-12-19T00:00:00Z").await, [("anniversary".into(), 0), ("renewal".into(), 1)]);
    assert!(h.runs("anniversary").await.is_empty());
    // The buyer's first anniversary (2026-12-17 in Helsinki) had begun before the journey was
    // applied; the second one fires at Helsinki's midnight, as does the new buyer's first.
    h.evaluate("2027-12-16T21:00:00Z").await;
    assert_eq!(h.entered("2027-12-16T22:00:00Z").await, [("anniversary".into(), 1), ("renewal".into(), 0)]);
    assert_eq!(h.runs("anniversary").await, pairs(&[("buyer", "2027-12-17")]));
    assert_eq!(h.entered("2027-12-17T22:00:00Z").await, [("anniversary".into(), 1), ("renewal".into(), 0)]);
    assert_eq!(h.runs("anniversary").await, pairs(&[("buyer", "2027-12-17"), ("new-buyer", "2027-12-18")]));
}

/// Scores for `customer` (external id) with its predicted next purchase at `at`.
async fn predict(h: &Harness, customers: &[(&str, &str)]) {
    let mut rows = Vec::new();
    for (id, at) in customers {
        let key = h.db.store.customer_key(id).await.expect("read").expect("customer");
        rows.push(ScoreRow {
            customer: key,
            r: 3,
            f: 3,
            m: 3,
            rfm_segment: "Loyal",
            stage: "repeat",
            value_tier: "mid",
            main_category: None,
            next_category: None,
            model: Some(ModelScores {
                p_alive: 0.9,
                expected_30d: 0.5,
                expected_90d: 1.0,
                expected_365d: 3.0,
                p_purchase_30d: 0.4,
                expected_spend: None,
                clv_12m: None,
                next_purchase_at: Some(t(at)),
            }),
        });
    }
    let now = h.now().micros();
    let run = NewScoreRun {
        started_at: now,
        finished_at: now,
        as_of: "2026-12-01".into(),
        orders: 0,
        model: Some("bgnbd".into()),
        diagnostics: json!({}),
    };
    h.db.store.write_scores(&run, &rows).await.expect("scores");
}

async fn a_predicted_purchase_fires_three_days_before_on_the_customers_local_day(db: TestDb) {
    let h = harness(db, "2026-12-01T12:00:00Z");
    // journeys/next-purchase.yaml: three days before, reentry after 30 days.
    h.apply_file("next-purchase.yaml").await;
    h.customers(json!([
        {"id": "hel", "timezone": "Europe/Helsinki"},
        {"id": "ny", "timezone": "America/New_York"},
        {"id": "later", "timezone": "Europe/Helsinki"}
    ]))
    .await;
    // 23:30 UTC on December 6 is December 7 in Helsinki and December 6 in New York.
    predict(&h, &[("hel", "2026-12-06T23:30:00Z"), ("ny", "2026-12-06T23:30:00Z"), ("later", "2026-12-20T10:00:00Z")])
        .await;
    h.evaluate("2026-12-01T12:00:00Z").await;
    // 23:59 on December 2 in New York, 06:59 on December 3 in Helsinki: nobody's day yet.
    assert_eq!(h.entered("2026-12-03T04:59:00Z").await, counts("next-purchase", 0));
    // New York's December 3 (= 6 − 3).
    assert_eq!(h.entered("2026-12-03T05:00:00Z").await, counts("next-purchase", 1));
    assert_eq!(h.runs("next-purchase").await, pairs(&[("ny", "2026-12-03")]));
    // Helsinki's December 4 (= 7 − 3).
    assert_eq!(h.entered("2026-12-03T22:00:00Z").await, counts("next-purchase", 1));
    assert_eq!(h.runs("next-purchase").await, pairs(&[("hel", "2026-12-04"), ("ny", "2026-12-03")]));
    let claimed = h.db.store.claim_due_runs("w", t("2026-12-31T00:00:00Z"), Duration::from_secs(60), 10).await;
    let hel = claimed.expect("claim").into_iter().find(|r| r.key == "2026-12-04").expect("hel's run");
    assert_eq!(
        hel.context,
        json!({"date": "2026-12-04", "field": "predicted_next_purchase", "predicted_at": "2026-12-06T23:30:00Z"})
    );
}

async fn after_three_days_down_each_missed_day_fires_once_unless_too_late(db: TestDb) {
    let h = harness(db, "2026-12-01T12:00:00Z");
    h.apply("name: patient\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nsteps:\n  - wait: 1h\n").await;
    h.apply(
        "name: punctual\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nskip_if_late_by: 1d\nsteps:\n  - wait: 1h\n",
    )
    .await;
    h.customers(json!([
        {"id": "d1", "birthday": "1990-12-01"},
        {"id": "d2", "birthday": "1990-12-02"},
        {"id": "d3", "birthday": "1990-12-03"},
        {"id": "d4", "birthday": "1990-12-04"},
        {"id": "d5", "birthday": "1990-12-05"}
    ]))
    .await;
    h.evaluate("2026-12-01T12:00:00Z").await;
    // Down from December 1 noon to December 4, 12:00 UTC: December 2, 3 and 4 were missed.
    let outcome = h.evaluate("2026-12-04T12:00:00Z").await;
    let by_name = |name: &str| outcome.journeys.iter().find(|j| j.journey == name).expect("evaluated").clone();
    assert_eq!(by_name("patient"), JourneyTriggered { journey: "patient".into(), entered: 3, ..Default::default() });
    // 2.5 and 1.5 days late are later than a day; December 4 (12 hours late) still runs.
    assert_eq!(
        by_name("punctual"),
        JourneyTriggered { journey: "punctual".into(), entered: 1, too_late: 2, ..Default::default() }
    );
    assert_eq!(h.runs("patient").await, pairs(&[("d2", "2026-12-02"), ("d3", "2026-12-03"), ("d4", "2026-12-04")]));
    assert_eq!(h.runs("punctual").await, pairs(&[("d4", "2026-12-04")]));
    // Each missed day once: later the same day nothing more, the next midnight the next day.
    assert_eq!(h.entered("2026-12-04T23:00:00Z").await, [("patient".into(), 0), ("punctual".into(), 0)]);
    assert_eq!(h.entered("2026-12-05T00:00:00Z").await, [("patient".into(), 1), ("punctual".into(), 1)]);
    // A downtime longer than the catch-up limit drops the oldest days, and says how many.
    let outcome = h.evaluate("2027-01-15T00:00:00Z").await;
    assert_eq!(outcome.journeys[0].days_dropped, 41 - 31);
}

async fn a_schedule_enters_the_segments_members_and_collapses_missed_occurrences(db: TestDb) {
    let h = harness(db, "2026-12-01T08:00:00Z");
    let daily = "name: vip-daily\ntrigger:\n  schedule:\n    cron: \"0 9 * * *\"\n    segment: vip\n\
                 timezone: Europe/Helsinki\nentry:\n  reentry: always\nsteps:\n  - update:\n      tag: vip-mail\n";
    h.apply(daily).await;
    let late = "name: vip-late\ntrigger:\n  schedule:\n    cron: \"0 9 * * *\"\n    segment: vip\n\
                entry:\n  reentry: always\nskip_if_late_by: 1h\nsteps:\n  - update:\n      tag: vip-mail\n";
    h.apply(late).await;
    h.customers(json!([{"id": "ann"}, {"id": "bob"}, {"id": "cy"}])).await;
    let orders = json!([
        {"id": "o1", "customer_id": "ann", "time": "2026-11-01T10:00:00Z", "amount": "500", "currency": "EUR"},
        {"id": "o2", "customer_id": "bob", "time": "2026-11-01T10:00:00Z", "amount": "300", "currency": "EUR"},
        {"id": "o3", "customer_id": "cy", "time": "2026-11-01T10:00:00Z", "amount": "5", "currency": "EUR"}
    ]);
    h.db.store.write_orders(&checked::<Order>(&orders), h.now()).await.expect("orders");
    let expr = kanta_segment::parse("revenue >= 100").expect("a segment");
    h.db.store.create_segment("vip", "revenue >= 100", &expr, h.now().micros()).await.expect("segment");
    h.evaluate("2026-12-01T06:00:00Z").await;
    // 09:00 Helsinki is 07:00 UTC; vip-late runs at 09:00 UTC.
    let outcome = h.evaluate("2026-12-01T07:00:00Z").await;
    assert_eq!(outcome.journeys.len(), 1, "only the Helsinki schedule is due");
    assert_eq!((outcome.journeys[0].journey.as_str(), outcome.journeys[0].entered), ("vip-daily", 2));
    assert_eq!(h.runs("vip-daily").await, pairs(&[("ann", "2026-12-01T07:00:00Z"), ("bob", "2026-12-01T07:00:00Z")]));
    assert_eq!(h.entered("2026-12-01T09:30:00Z").await, counts("vip-late", 2));
    // The runs complete (the update step), so the next occurrence may enter them again.
    while h.engine.advance(h.now()).await.expect("advance") > 0 {}
    // Down three days: the occurrences of December 2, 3 and 4 collapse into December 4's.
    let outcome = h.evaluate("2026-12-04T10:30:00Z").await;
    let daily = outcome.journeys.iter().find(|j| j.journey == "vip-daily").expect("evaluated");
    assert_eq!((daily.entered, daily.collapsed, daily.too_late), (2, 2, 0));
    // vip-late's December 4 run (09:00 UTC) is 90 minutes late: skipped, members not read.
    let late = outcome.journeys.iter().find(|j| j.journey == "vip-late").expect("evaluated");
    assert_eq!((late.entered, late.collapsed, late.too_late), (0, 2, 1));
    let keys: Vec<String> = h.runs("vip-daily").await.into_iter().filter(|(c, _)| c == "ann").map(|(_, k)| k).collect();
    assert_eq!(keys, ["2026-12-01T07:00:00Z", "2026-12-04T07:00:00Z"]);
    let cursor = h.db.store.trigger_cursor("vip-daily").await.expect("read").expect("cursor");
    assert_eq!(cursor.last_occurrence, Some(t("2026-12-04T07:00:00Z")));
    // Nothing more until the next occurrence.
    assert_eq!(h.entered("2026-12-05T06:59:00Z").await, Vec::<(String, u64)>::new());
}

async fn a_window_evaluated_again_enters_nobody(db: TestDb) {
    let h = harness(db, "2026-12-03T12:00:00Z");
    h.apply("name: greet\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nsteps:\n  - exit\n").await;
    h.customers(json!([{"id": "a", "birthday": "1990-12-04"}, {"id": "b", "birthday": "1991-12-04"}])).await;
    h.evaluate("2026-12-03T12:00:00Z").await;
    assert_eq!(h.entered("2026-12-04T00:00:00Z").await, counts("greet", 2));
    // The runs end at once (`exit`); even so, and under `reentry: always`, the same window
    // evaluated again (a crash before the cursor moved) enters nobody.
    while h.engine.advance(h.now()).await.expect("advance") > 0 {}
    let (runs, _) = h.db.store.journey_runs("greet", None, 10).await.expect("runs");
    assert!(runs.iter().all(|r| r.status != RunStatus::Active), "{runs:?}");
    let s = &h.db.store;
    let from = s.claim_trigger_window("greet", "x", h.now(), Duration::ZERO).await.expect("claim").expect("free");
    let back = TriggerCursor { evaluated_to: t("2026-12-03T12:00:00Z"), last_occurrence: None };
    assert!(s.finish_trigger_window("greet", "x", &from, &back, h.now()).await.expect("move back"));
    let outcome = h.evaluate("2026-12-04T00:00:00Z").await;
    assert_eq!(outcome.journeys[0], JourneyTriggered { journey: "greet".into(), already: 2, ..Default::default() });
    assert_eq!(h.runs("greet").await.len(), 2);
}

async fn two_engines_evaluating_at_once_enter_each_customer_once(db: TestDb) {
    let h = harness(db, "2026-12-03T12:00:00Z");
    h.apply("name: greet\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nsteps:\n  - wait: 1d\n").await;
    let people: Vec<Value> = (0..60).map(|i| json!({"id": format!("c{i:02}"), "birthday": "1990-12-04"})).collect();
    h.customers(Value::Array(people)).await;
    h.evaluate("2026-12-03T12:00:00Z").await;
    h.clock.set(t("2026-12-04T00:00:00Z"));
    // A lease of zero lets the second engine take the window over while the first works on it:
    // both scan and enter the same customers, and the occurrence keys keep it to one run each.
    let one = engine(&h.db, &h.clock, "one", Duration::ZERO);
    let two = engine(&h.db, &h.clock, "two", Duration::ZERO);
    let now = h.now();
    let (a, b) = tokio::join!(one.evaluate_triggers(now), two.evaluate_triggers(now));
    let (a, b) = (a.expect("one"), b.expect("two"));
    assert_eq!(a.entered() + b.entered(), 60, "{a:?} {b:?}");
    assert_eq!(h.runs("greet").await.len(), 60);
    // With a real lease one engine holds the window and the other passes it over.
    let three = engine(&h.db, &h.clock, "three", Duration::from_secs(60));
    let four = engine(&h.db, &h.clock, "four", Duration::from_secs(60));
    h.clock.set(t("2026-12-05T00:00:00Z"));
    let now = h.now();
    let (c, d) = tokio::join!(three.evaluate_triggers(now), four.evaluate_triggers(now));
    let (c, d) = (c.expect("three"), d.expect("four"));
    assert_eq!(c.journeys.len() + d.journeys.len(), 1, "{c:?} {d:?}");
    assert_eq!(h.runs("greet").await.len(), 60);
}

async fn a_paused_journey_enters_nobody_and_the_days_it_was_paused_are_skipped(db: TestDb) {
    let h = harness(db, "2026-12-02T12:00:00Z");
    h.apply("name: greet\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nsteps:\n  - wait: 1d\n").await;
    h.customers(json!([
        {"id": "d3", "birthday": "1990-12-03"},
        {"id": "d4", "birthday": "1990-12-04"},
        {"id": "d5", "birthday": "1990-12-05"}
    ]))
    .await;
    h.evaluate("2026-12-02T12:00:00Z").await;
    assert!(h.db.store.set_journey_paused("greet", true, h.now()).await.expect("pause"));
    let outcome = h.evaluate("2026-12-03T00:00:00Z").await;
    assert_eq!(outcome.journeys[0], JourneyTriggered { journey: "greet".into(), paused: true, ..Default::default() });
    h.evaluate("2026-12-04T00:00:00Z").await;
    assert!(h.db.store.set_journey_paused("greet", false, h.now()).await.expect("resume"));
    // Resumed on December 4 after midnight: December 3 and 4 passed while paused and are not
    // caught up; December 5 fires.
    assert_eq!(h.entered("2026-12-04T12:00:00Z").await, counts("greet", 0));
    assert_eq!(h.entered("2026-12-05T00:00:00Z").await, counts("greet", 1));
    assert_eq!(h.runs("greet").await, pairs(&[("d5", "2026-12-05")]));
}
