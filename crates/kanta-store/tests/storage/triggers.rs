//! Calendar triggers: candidate scans by zone and date, the trigger cursor's lease and
//! compare-and-set, and runs keyed by occurrence (`once_per_key`).

use std::time::Duration;

use kanta_store::journey::{
    DateCandidate, DateScan, DateValue, DayMatch, Entered, EntryRules, NewRun, Next, Reentry, RunEnd, RunUpdate,
    TriggerCursor, Zones,
};
use serde_json::json;

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    date_candidates_are_scanned_by_zone_and_date_in_pages,
    first_and_predicted_purchases_are_scanned_as_instants,
    a_trigger_window_is_held_by_one_worker_and_the_cursor_moves_only_from_where_it_was,
    an_occurrence_key_is_entered_once_ever_and_other_checks_span_every_key,
);

const HOUR: i64 = 3_600_000_000;
const LEASE: Duration = Duration::from_secs(60);

const CUSTOMERS: &str = r#"[
  {"id":"hel","timezone":"Europe/Helsinki","birthday":"1990-12-04","attributes":{"renewal_date":"2027-01-01"}},
  {"id":"la","timezone":"America/Los_Angeles","birthday":"1985-12-04","attributes":{"renewal_date":"2027-01-01T09:00:00Z"}},
  {"id":"utc","birthday":"2000-12-04","attributes":{"renewal_date":"2027-02-01","plan":"gold"}},
  {"id":"other-day","timezone":"Europe/Helsinki","birthday":"1990-12-05","attributes":{"renewal_date":42}},
  {"id":"no-date","timezone":"Asia/Tokyo"},
  {"id":"gone","timezone":"Asia/Tokyo","birthday":"1970-12-04"}
]"#;

async fn write(db: &TestDb) {
    let customers: Vec<Customer> = checked(CUSTOMERS);
    db.store.write_customers(&customers, at(NOW)).await.expect("customers");
    assert!(db.store.erase_customer("gone", None, NOW).await.expect("erase"));
}

/// Every page of a scan, with the number of pages.
async fn scan_all(db: &TestDb, scan: DateScan<'_>, zones: Zones<'_>, limit: u32) -> (Vec<DateCandidate>, usize) {
    let (mut all, mut pages, mut after) = (Vec::new(), 0, None);
    loop {
        let (page, next) = db.store.date_candidates(scan, zones, after, limit).await.expect("scan");
        pages += 1;
        all.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => return (all, pages),
        }
    }
}

fn ids(candidates: &[DateCandidate]) -> Vec<&str> {
    candidates.iter().map(|c| c.external_id.as_str()).collect()
}

async fn date_candidates_are_scanned_by_zone_and_date_in_pages(db: TestDb) {
    write(&db).await;
    // The erased customer's zone is gone with them.
    assert_eq!(
        db.store.customer_zones().await.expect("zones"),
        [None, Some("America/Los_Angeles".into()), Some("Asia/Tokyo".into()), Some("Europe/Helsinki".into())]
    );
    let everywhere: Vec<String> =
        ["America/Los_Angeles", "Asia/Tokyo", "Europe/Helsinki"].iter().map(|z| z.to_string()).collect();
    let all = Zones { names: &everywhere, unset: true };
    let dec_4 = ["12-04".to_string()];
    let (found, pages) = scan_all(&db, DateScan::Birthday(DayMatch::MonthDay(&dec_4)), all, 1).await;
    assert_eq!(ids(&found), ["hel", "la", "utc"]);
    assert_eq!(pages, 3, "one candidate a page, the last page knows it is the last");
    assert_eq!(found[0].value, DateValue::Text("1990-12-04".into()));
    assert_eq!(found[0].timezone.as_deref(), Some("Europe/Helsinki"));
    assert_eq!(found[2].timezone, None);

    // Zones narrow the scan; customers without one come only with `unset`.
    let helsinki = ["Europe/Helsinki".to_string()];
    let (found, _) =
        scan_all(&db, DateScan::Birthday(DayMatch::MonthDay(&dec_4)), Zones { names: &helsinki, unset: false }, 10)
            .await;
    assert_eq!(ids(&found), ["hel"]);
    let (found, _) =
        scan_all(&db, DateScan::Birthday(DayMatch::MonthDay(&dec_4)), Zones { names: &[], unset: true }, 10).await;
    assert_eq!(ids(&found), ["utc"]);
    let both_days = ["12-04".to_string(), "12-05".to_string()];
    let (found, _) = scan_all(&db, DateScan::Birthday(DayMatch::MonthDay(&both_days)), all, 10).await;
    assert_eq!(ids(&found), ["hel", "la", "utc", "other-day"]);
    let (found, _) = scan_all(&db, DateScan::Birthday(DayMatch::MonthDay(&[])), all, 10).await;
    assert!(found.is_empty());

    // An attribute's text: a date or the date part of an RFC 3339 text; a number never matches.
    let new_year = ["2027-01-01".to_string()];
    let renewal = DateScan::Attribute { name: "renewal_date", matching: DayMatch::Date(&new_year) };
    let (found, _) = scan_all(&db, renewal, all, 10).await;
    assert_eq!(ids(&found), ["hel", "la"]);
    assert_eq!(found[1].value, DateValue::Text("2027-01-01T09:00:00Z".into()));
    let firsts = ["01-01".to_string(), "02-01".to_string()];
    let yearly = DateScan::Attribute { name: "renewal_date", matching: DayMatch::MonthDay(&firsts) };
    assert_eq!(ids(&scan_all(&db, yearly, all, 10).await.0), ["hel", "la", "utc"]);
    let absent = DateScan::Attribute { name: "missing", matching: DayMatch::Date(&new_year) };
    assert!(scan_all(&db, absent, all, 10).await.0.is_empty());
}

async fn first_and_predicted_purchases_are_scanned_as_instants(db: TestDb) {
    write(&db).await;
    let orders: Vec<Order> = checked(
        r#"[
      {"id":"p1","customer_id":"hel","time":"2025-12-04T21:30:00Z","amount":"10","currency":"EUR"},
      {"id":"p2","customer_id":"hel","time":"2026-01-04T10:00:00Z","amount":"10","currency":"EUR"},
      {"id":"p0","customer_id":"hel","time":"2025-11-01T10:00:00Z","amount":"10","currency":"EUR","status":"cancelled"},
      {"id":"p3","customer_id":"la","time":"2026-02-01T10:00:00Z","amount":"10","currency":"EUR"}
    ]"#,
    );
    db.store.write_orders(&orders, at(NOW)).await.expect("orders");
    let zones = ["Europe/Helsinki".to_string(), "America/Los_Angeles".to_string()];
    let zones = Zones { names: &zones, unset: true };
    let (found, _) = scan_all(&db, DateScan::FirstPurchase, zones, 10).await;
    assert_eq!(ids(&found), ["hel", "la"]);
    // The first completed purchase: the cancelled order before it does not count.
    let first = Timestamp::parse_rfc3339("2025-12-04T21:30:00Z").expect("a time");
    assert_eq!(found[0].value, DateValue::At(first));

    let key = |id: &str| {
        let id = id.to_owned();
        let db = &db;
        async move { db.store.customer_key(&id).await.expect("read").expect("customer") }
    };
    let (hel, la) = (key("hel").await, key("la").await);
    let mut early = score_row(hel, "new", 0.9);
    early.model.as_mut().expect("model scores").next_purchase_at = Some(at(NOW + 10 * HOUR));
    let mut late = score_row(la, "new", 0.9);
    late.model.as_mut().expect("model scores").next_purchase_at = Some(at(NOW + 30 * HOUR));
    db.store.write_scores(&run(NOW), &[early, late]).await.expect("scores");
    let window = |from, until| DateScan::NextPurchase { from: at(from), until: at(until) };
    assert_eq!(ids(&scan_all(&db, window(NOW, NOW + 24 * HOUR), zones, 10).await.0), ["hel"]);
    // From inclusive, until exclusive.
    assert_eq!(ids(&scan_all(&db, window(NOW + 10 * HOUR, NOW + 30 * HOUR), zones, 10).await.0), ["hel"]);
    assert_eq!(ids(&scan_all(&db, window(NOW, NOW + 31 * HOUR), zones, 10).await.0), ["hel", "la"]);
    let (found, _) = scan_all(&db, window(NOW + 11 * HOUR, NOW + 31 * HOUR), zones, 10).await;
    assert_eq!(found[0].value, DateValue::At(at(NOW + 30 * HOUR)));
}

async fn a_trigger_window_is_held_by_one_worker_and_the_cursor_moves_only_from_where_it_was(db: TestDb) {
    let s = &db.store;
    assert_eq!(s.trigger_cursor("birthday").await.expect("read"), None);
    assert_eq!(s.claim_trigger_window("birthday", "a", at(NOW), LEASE).await.expect("claim"), None, "no cursor yet");
    assert!(s.start_trigger_cursor("birthday", at(NOW)).await.expect("start"));
    assert!(!s.start_trigger_cursor("birthday", at(NOW + HOUR)).await.expect("start"), "started once");
    let start = TriggerCursor { evaluated_to: at(NOW), last_occurrence: None };
    assert_eq!(s.trigger_cursor("birthday").await.expect("read"), Some(start));

    let later = at(NOW + 24 * HOUR);
    assert_eq!(s.claim_trigger_window("birthday", "a", later, LEASE).await.expect("claim"), Some(start));
    assert_eq!(s.claim_trigger_window("birthday", "b", later, LEASE).await.expect("claim"), None, "a holds it");
    let moved = TriggerCursor { evaluated_to: later, last_occurrence: Some(at(NOW + 9 * HOUR)) };
    assert!(!s.finish_trigger_window("birthday", "b", &start, &moved, later).await.expect("finish"), "not b's");
    assert!(s.finish_trigger_window("birthday", "a", &start, &moved, later).await.expect("finish"));
    assert_eq!(s.trigger_cursor("birthday").await.expect("read"), Some(moved));
    // Released: the next claim is anyone's; finishing from a stale cursor writes nothing.
    let next = at(NOW + 25 * HOUR);
    assert_eq!(s.claim_trigger_window("birthday", "b", next, LEASE).await.expect("claim"), Some(moved));
    assert!(!s.finish_trigger_window("birthday", "b", &start, &start, next).await.expect("stale"));
    // A lease that ran out (its holder died) is taken over; the dead holder can finish nothing.
    let after_lease = next.saturating_add(LEASE);
    assert_eq!(s.claim_trigger_window("birthday", "c", after_lease, LEASE).await.expect("claim"), Some(moved));
    let done = TriggerCursor { evaluated_to: after_lease, last_occurrence: None };
    assert!(!s.finish_trigger_window("birthday", "b", &moved, &done, after_lease).await.expect("finish"));
    assert!(s.finish_trigger_window("birthday", "c", &moved, &done, after_lease).await.expect("finish"));
    assert_eq!(s.trigger_cursor("birthday").await.expect("read"), Some(done));
    // Journeys have cursors of their own.
    assert_eq!(s.trigger_cursor("other").await.expect("read"), None);
}

async fn an_occurrence_key_is_entered_once_ever_and_other_checks_span_every_key(db: TestDb) {
    write(&db).await;
    let doc = r#"{"name":"birthday"}"#;
    db.store.apply_journey("birthday", doc, doc, at(NOW)).await.expect("apply");
    let hel = db.store.customer_key("hel").await.expect("read").expect("hel");
    let context = json!({"date": "2026-12-04", "field": "birthday"});
    let run = |key| NewRun {
        journey: "birthday",
        version: 1,
        customer: hel,
        key,
        step: "0",
        due_at: Some(at(NOW)),
        wait: None,
        context: &context,
        arm: kanta_store::journey::RunArm::Treatment,
    };
    let always = EntryRules { reentry: Reentry::Always, max_active: None, once_per_key: true };
    let Entered::Started(first) = db.store.start_run(&run("2026-12-04"), &always, at(NOW)).await.expect("start") else {
        panic!("not started")
    };
    // Another occurrence while the first run is active: the active check spans keys.
    assert_eq!(
        db.store.start_run(&run("2027-12-04"), &always, at(NOW)).await.expect("start"),
        Entered::AlreadyActive(first)
    );
    // The run ends; the same occurrence again (a window evaluated twice) is refused even under
    // `always`, the next occurrence is entered.
    let claimed = db.store.claim_due_runs("w", at(NOW), LEASE, 10).await.expect("claim");
    let update =
        RunUpdate { next: Next::End { end: RunEnd::Completed, reason: None }, history: vec![], messages: vec![] };
    assert!(db.store.advance_run(claimed[0].id, &claimed[0].lease, &update, at(NOW)).await.expect("end"));
    assert_eq!(
        db.store.start_run(&run("2026-12-04"), &always, at(NOW + HOUR)).await.expect("start"),
        Entered::NotAgain
    );
    assert!(matches!(
        db.store.start_run(&run("2027-12-04"), &always, at(NOW + HOUR)).await.expect("start"),
        Entered::Started(_)
    ));
    // Without occurrence keys the same key may come back under `always` (the existing rule).
    let plain = EntryRules { once_per_key: false, ..always };
    let claimed = db.store.claim_due_runs("w", at(NOW + HOUR), LEASE, 10).await.expect("claim");
    assert!(db.store.advance_run(claimed[0].id, &claimed[0].lease, &update, at(NOW + HOUR)).await.expect("end"));
    assert!(matches!(
        db.store.start_run(&run("2026-12-04"), &plain, at(NOW + 2 * HOUR)).await.expect("start"),
        Entered::Started(_)
    ));
    // `reentry: after` spans occurrences: a run of any key entered since blocks a new key.
    let since = EntryRules { reentry: Reentry::Since(at(NOW)), max_active: None, once_per_key: true };
    let claimed = db.store.claim_due_runs("w", at(NOW + 2 * HOUR), LEASE, 10).await.expect("claim");
    assert!(db.store.advance_run(claimed[0].id, &claimed[0].lease, &update, at(NOW + 2 * HOUR)).await.expect("end"));
    assert_eq!(
        db.store.start_run(&run("2028-12-04"), &since, at(NOW + 3 * HOUR)).await.expect("start"),
        Entered::NotAgain
    );
    let long_ago = EntryRules { reentry: Reentry::Since(at(NOW + 3 * HOUR)), ..since };
    assert!(matches!(
        db.store.start_run(&run("2028-12-04"), &long_ago, at(NOW + 3 * HOUR)).await.expect("start"),
        Entered::Started(_)
    ));
    // Several at once, in one transaction, each decided as if alone and in the order given:
    // hel is active already; another customer enters once, and the same entry again right
    // after it in the batch is refused (an occurrence key enters once ever).
    let other = db.store.customer_key("utc").await.expect("read").expect("utc");
    let for_other = NewRun { customer: other, ..run("2029-12-04") };
    let batch = [run("2029-12-04"), for_other.clone(), for_other];
    let entered = db.store.start_runs(&batch, &always, at(NOW + 4 * HOUR)).await.expect("start");
    assert!(matches!(entered[..], [Entered::AlreadyActive(_), Entered::Started(_), Entered::NotAgain]), "{entered:?}");
    // An unknown customer fails the whole batch: nothing of it is kept.
    let ghost = NewRun { customer: i64::MAX, ..run("2030-12-04") };
    let third = db.store.customer_key("no-date").await.expect("read").expect("no-date");
    let fresh = NewRun { customer: third, ..run("2030-12-04") };
    assert!(db.store.start_runs(&[fresh.clone(), ghost], &always, at(NOW + 5 * HOUR)).await.is_err());
    assert!(matches!(
        db.store.start_runs(&[fresh], &always, at(NOW + 5 * HOUR)).await.expect("start")[..],
        [Entered::Started(_)]
    ));
}
