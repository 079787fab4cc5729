//! Journeys: versions, runs and their leases, the message outbox (claims, in doubt, resend),
//! the frequency cap count, suppressions, erasure.

use std::collections::HashSet;
use std::time::Duration;

use kanta_store::journey::{
    Applied, Bounce, Channel, ClaimedMessage, ClaimedRun, Entered, EntryRules, FeedItem, FeedKind, Lease,
    MessageStatus, NewMessage, NewRun, Next, Outcome, Reentry, RunEnd, RunId, RunStatus, RunUpdate, Signal, Skip,
    StepRecord, SuppressionReason, Wait, idempotency_key,
};
use serde_json::{Value, json};

use super::*;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    journeys_are_versioned_by_digest_and_runs_finish_on_their_version,
    one_run_is_active_per_journey_customer_and_key_and_entry_rules_hold,
    a_run_moves_only_under_its_lease_and_an_expired_lease_is_claimed_again,
    awaited_events_and_segment_entries_wake_runs_and_exits_end_them,
    messages_in_sending_after_their_lease_become_in_doubt_and_are_resent_only_by_hand,
    a_claimed_message_whose_send_never_started_is_due_again_after_the_lease,
    the_cap_counts_what_went_or_may_have_gone_from_since_inclusive,
    addresses_are_suppressed_after_soft_bounces_or_at_once_case_insensitively,
    erasing_a_customer_ends_their_runs_and_redacts_their_messages,
    a_branch_condition_is_evaluated_for_one_customer_by_internal_id,
    the_feed_holds_new_orders_events_and_transitions_while_a_journey_is_active,
    feed_rows_are_claimed_by_one_worker_and_deleted_only_by_their_holder,
);

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
const LEASE: Duration = Duration::from_secs(60);
const ONCE: EntryRules = EntryRules { reentry: Reentry::Once, max_active: None, once_per_key: false };

/// Customers with these ids (and `ID@Example.org` addresses); their internal ids.
async fn customers(db: &TestDb, ids: &[&str]) -> Vec<i64> {
    let records: Vec<Value> = ids.iter().map(|id| json!({"id": id, "email": format!("{id}@Example.org")})).collect();
    let batch: Vec<Customer> = checked(&serde_json::to_string(&records).expect("JSON"));
    db.store.write_customers(&batch, at(NOW)).await.expect("write");
    let mut keys = Vec::new();
    for id in ids {
        keys.push(db.store.customer_key(id).await.expect("read").expect("the customer"));
    }
    keys
}

/// Apply a one-line document under `name`; the digest is the text itself.
async fn apply(db: &TestDb, name: &str, doc: &str, now: i64) -> Applied {
    db.store.apply_journey(name, doc, doc, at(now)).await.expect("apply")
}

fn new_run<'a>(journey: &'a str, version: i64, customer: i64, key: &'a str, context: &'a Value) -> NewRun<'a> {
    NewRun {
        journey,
        version,
        customer,
        key,
        step: "1",
        due_at: Some(at(NOW)),
        wait: None,
        context,
        arm: kanta_store::journey::RunArm::Treatment,
    }
}

async fn start(db: &TestDb, run: &NewRun<'_>) -> RunId {
    match db.store.start_run(run, &ONCE, at(NOW)).await.expect("start") {
        Entered::Started(id) => id,
        other => panic!("not started: {other:?}"),
    }
}

/// An email message of `run` at `step`, due at `not_before`.
fn email(run: &ClaimedRun, step: &str, occurrence: i64, not_before: i64) -> NewMessage {
    let key = idempotency_key(&run.journey, run.version, run.customer, run.id, step, occurrence);
    NewMessage {
        step: step.into(),
        occurrence,
        channel: Channel::Email,
        transactional: false,
        recipient: "ann@example.org".into(),
        payload: json!({"subject": "Welcome", "text": "Hello"}).to_string(),
        message_id: format!("<{key}@kanta.test>"),
        not_before: at(not_before),
        skip: None,
    }
}

fn to_step(step: &str, due_at: Option<i64>) -> Next {
    Next::Step { step: step.into(), due_at: due_at.map(at), wait: None }
}

fn record(step: &str, outcome: &str, now: i64) -> StepRecord {
    StepRecord { step: step.into(), occurrence: 1, at: at(now), outcome: outcome.into(), detail: None }
}

/// A run of `journey` for a new customer `who`, claimed by `owner` at NOW.
async fn claimed_run(db: &TestDb, journey: &str, who: &str, owner: &str) -> ClaimedRun {
    apply(db, journey, "{}", NOW).await;
    let [customer] = customers(db, &[who]).await[..] else { panic!("one customer") };
    let context = json!({});
    let id = start(db, &new_run(journey, 1, customer, "", &context)).await;
    let claimed = db.store.claim_due_runs(owner, at(NOW), LEASE, 100).await.expect("claim");
    claimed.into_iter().find(|r| r.id == id).expect("the run is due")
}

async fn journeys_are_versioned_by_digest_and_runs_finish_on_their_version(db: TestDb) {
    assert_eq!(db.store.journeys_generation().await.expect("generation"), 0);
    assert_eq!(apply(&db, "welcome", r#"{"steps":["a"]}"#, NOW).await, Applied { version: 1, created: true });
    let first = db.store.journeys_generation().await.expect("generation");
    assert!(first > 0);
    assert_eq!(apply(&db, "welcome", r#"{"steps":["a"]}"#, NOW + 1).await, Applied { version: 1, created: false });
    assert_eq!(db.store.journeys_generation().await.expect("generation"), first, "nothing changed");

    let [ann] = customers(&db, &["ann"]).await[..] else { panic!("one customer") };
    let context = json!({"source": "signup"});
    let run = start(&db, &new_run("welcome", 1, ann, "", &context)).await;

    assert_eq!(apply(&db, "welcome", r#"{"steps":["b"]}"#, NOW + 2).await, Applied { version: 2, created: true });
    let second = db.store.journeys_generation().await.expect("generation");
    assert!(second > first);
    let heads = db.store.journey_heads().await.expect("heads");
    assert_eq!(
        heads.iter().map(|h| (h.name.as_str(), h.version, h.paused, h.definition.as_str())).collect::<Vec<_>>(),
        [("welcome", 2, false, r#"{"steps":["b"]}"#)]
    );
    let v1 = db.store.journey_version("welcome", 1).await.expect("read").expect("version 1");
    assert_eq!(
        (v1.definition.as_str(), v1.digest.as_str(), v1.created_at),
        (r#"{"steps":["a"]}"#, r#"{"steps":["a"]}"#, at(NOW))
    );
    assert_eq!(db.store.journey_version("welcome", 3).await.expect("read"), None);

    // The run started on version 1 stays there.
    let claimed = db.store.claim_due_runs("w", at(NOW + 3), LEASE, 10).await.expect("claim");
    assert_eq!(claimed.iter().map(|r| (r.id, r.version, r.context.clone())).collect::<Vec<_>>(), [(run, 1, context)]);

    // Going back to the first document is a change too: versions only grow.
    assert_eq!(apply(&db, "welcome", r#"{"steps":["a"]}"#, NOW + 4).await, Applied { version: 3, created: true });

    // Pausing is a change (once); a paused journey's runs are not claimed.
    assert!(db.store.set_journey_paused("welcome", true, at(NOW + 5)).await.expect("pause"));
    let paused = db.store.journeys_generation().await.expect("generation");
    assert!(paused > second);
    assert!(db.store.set_journey_paused("welcome", true, at(NOW + 6)).await.expect("pause"));
    assert_eq!(db.store.journeys_generation().await.expect("generation"), paused, "already paused");
    assert!(!db.store.set_journey_paused("nobody", true, at(NOW)).await.expect("pause"));
    let later = NOW + 10 * DAY;
    assert_eq!(db.store.claim_due_runs("w", at(later), LEASE, 10).await.expect("claim"), []);
    let list = db.store.journeys().await.expect("list");
    assert_eq!(
        list.iter().map(|j| (j.name.as_str(), j.version, j.paused, j.active_runs)).collect::<Vec<_>>(),
        [("welcome", 3, true, 1)]
    );
    assert!(db.store.set_journey_paused("welcome", false, at(NOW + 7)).await.expect("resume"));
    assert_eq!(db.store.claim_due_runs("w", at(later), LEASE, 10).await.expect("claim").len(), 1);

    let report = db.store.journey_report("welcome").await.expect("report").expect("the journey");
    assert_eq!(
        report.versions.iter().map(|v| (v.version, v.active_runs)).collect::<Vec<_>>(),
        [(1, 1), (2, 0), (3, 0)]
    );
    assert_eq!(
        report.steps.iter().map(|s| (s.version, s.step.as_str(), s.active_runs)).collect::<Vec<_>>(),
        [(1, "1", 1)]
    );
    assert_eq!(db.store.journey_report("nobody").await.expect("report"), None);
}

async fn one_run_is_active_per_journey_customer_and_key_and_entry_rules_hold(db: TestDb) {
    apply(&db, "cart", "{}", NOW).await;
    apply(&db, "winback", "{}", NOW).await;
    let [ann, bob] = customers(&db, &["ann", "bob"]).await[..] else { panic!("two customers") };
    let context = json!({});
    let first = start(&db, &new_run("cart", 1, ann, "", &context)).await;
    let again = db
        .store
        .start_run(
            &new_run("cart", 1, ann, "", &context),
            &EntryRules { reentry: Reentry::Always, max_active: None, once_per_key: false },
            at(NOW),
        )
        .await;
    assert_eq!(again.expect("start"), Entered::AlreadyActive(first));
    let keyed = start(&db, &new_run("cart", 1, ann, "cart-2", &context)).await;
    assert_ne!(keyed, first, "another key is another run");
    start(&db, &new_run("cart", 1, bob, "", &context)).await;

    // ann has two active runs: a limit of two keeps her out of a third journey.
    let limited = |max| EntryRules { reentry: Reentry::Once, max_active: Some(max), once_per_key: false };
    let winback = new_run("winback", 1, ann, "", &context);
    assert_eq!(db.store.start_run(&winback, &limited(2), at(NOW)).await.expect("start"), Entered::AtLimit);

    // Re-entry after the first run completed.
    let claimed = db.store.claim_due_runs("w", at(NOW), LEASE, 10).await.expect("claim");
    let run = claimed.iter().find(|r| r.id == first).expect("claimed");
    let done =
        RunUpdate { next: Next::End { end: RunEnd::Completed, reason: None }, history: vec![], messages: vec![] };
    assert!(db.store.advance_run(first, &run.lease, &done, at(NOW + SECOND)).await.expect("advance"));
    let rules = |reentry| EntryRules { reentry, max_active: None, once_per_key: false };
    let cart = new_run("cart", 1, ann, "", &context);
    assert_eq!(
        db.store.start_run(&cart, &rules(Reentry::Once), at(NOW + DAY)).await.expect("start"),
        Entered::NotAgain
    );
    // `Since` is inclusive: the first run entered at exactly NOW.
    let since_entry = rules(Reentry::Since(at(NOW)));
    assert_eq!(db.store.start_run(&cart, &since_entry, at(NOW + DAY)).await.expect("start"), Entered::NotAgain);
    let after_entry = rules(Reentry::Since(at(NOW + 1)));
    let Entered::Started(third) = db.store.start_run(&cart, &after_entry, at(NOW + DAY)).await.expect("start") else {
        panic!("re-entered after the period")
    };
    assert_eq!(
        db.store.start_run(&cart, &rules(Reentry::Always), at(NOW + DAY)).await.expect("start"),
        Entered::AlreadyActive(third)
    );
    // One run ended, one started: still two active; a limit of three lets her in.
    assert!(matches!(db.store.start_run(&winback, &limited(3), at(NOW)).await.expect("start"), Entered::Started(_)));
    assert!(
        db.store.start_run(&new_run("cart", 1, i64::MAX, "", &context), &ONCE, at(NOW)).await.is_err(),
        "no such customer"
    );
}

async fn a_run_moves_only_under_its_lease_and_an_expired_lease_is_claimed_again(db: TestDb) {
    let a = claimed_run(&db, "welcome", "ann", "a").await;
    assert_eq!((a.lease.owner.as_str(), a.lease.until), ("a", at(NOW).saturating_add(LEASE)));
    assert_eq!(db.store.claim_due_runs("b", at(NOW + SECOND), LEASE, 10).await.expect("claim"), [], "leased");

    // Another owner (even with the right counter) cannot move it.
    let forged = Lease { owner: "b".into(), ..a.lease.clone() };
    let send = RunUpdate {
        next: to_step("2", Some(NOW + DAY)),
        history: vec![record("1", "sent", NOW + 2 * SECOND)],
        messages: vec![email(&a, "1", 1, NOW)],
    };
    assert!(!db.store.advance_run(a.id, &forged, &send, at(NOW + 2 * SECOND)).await.expect("advance"));

    // The lease runs out and b claims the run: a's late step writes nothing.
    let expired = NOW + 61 * SECOND;
    let b = db.store.claim_due_runs("b", at(expired), LEASE, 10).await.expect("claim");
    assert_eq!(b.iter().map(|r| r.id).collect::<Vec<_>>(), [a.id]);
    assert!(b[0].lease.seq > a.lease.seq);
    assert!(!db.store.advance_run(a.id, &a.lease, &send, at(expired)).await.expect("advance"), "stolen");
    let trail = db.store.customer_journeys("ann").await.expect("360");
    assert_eq!((trail[0].steps.len(), trail[0].messages.len()), (0, 0), "nothing of a's step was written");

    // The same owner name claiming again does not revive an older claim either.
    // Written in a batch, each move is decided alone: the stale claim writes nothing, the
    // live one goes through, in one transaction.
    let again = Lease { owner: "b".into(), seq: b[0].lease.seq - 1, until: b[0].lease.until };
    let batch = [(a.id, &again, &send), (a.id, &b[0].lease, &send)];
    assert_eq!(db.store.advance_runs(&batch, at(expired)).await.expect("advance"), [false, true]);
    assert!(!db.store.advance_run(a.id, &b[0].lease, &send, at(expired)).await.expect("advance"), "released");

    // At step 2, due in a day.
    assert_eq!(db.store.claim_due_runs("c", at(NOW + DAY - 1), LEASE, 10).await.expect("claim"), []);
    let c = db.store.claim_due_runs("c", at(NOW + DAY), LEASE, 10).await.expect("claim");
    assert_eq!((c[0].step.as_str(), c[0].due_at), ("2", Some(at(NOW + DAY))));

    let trail = db.store.customer_journeys("ann").await.expect("360");
    assert_eq!(trail.len(), 1);
    assert_eq!((trail[0].run.step.as_str(), trail[0].run.status), ("2", RunStatus::Active));
    assert_eq!(
        trail[0].steps.iter().map(|s| (s.step.as_str(), s.outcome.as_str(), s.at)).collect::<Vec<_>>(),
        [("1", "sent", at(NOW + 2 * SECOND))]
    );
    let message = &trail[0].messages[0];
    let key = idempotency_key("welcome", 1, a.customer, a.id, "1", 1);
    assert_eq!(
        (message.message_id.clone(), message.status, message.customer.as_str()),
        (format!("<{key}@kanta.test>"), MessageStatus::Pending, "ann")
    );

    // Enqueueing the same key again enqueues nothing.
    assert_eq!(db.store.enqueue_message(a.id, &email(&a, "1", 1, NOW), at(NOW)).await.expect("enqueue"), None);
    assert!(db.store.enqueue_message(a.id, &email(&a, "2", 1, NOW), at(NOW)).await.expect("enqueue").is_some());
    let (runs, next) = db.store.journey_runs("welcome", None, 10).await.expect("runs");
    assert_eq!((runs.iter().map(|r| r.id).collect::<Vec<_>>(), next), (vec![a.id], None));
}

async fn awaited_events_and_segment_entries_wake_runs_and_exits_end_them(db: TestDb) {
    let run = claimed_run(&db, "cart", "ann", "w").await;
    let waiting = Wait::Event { name: "purchase".into(), keyed: true };
    let update = RunUpdate {
        next: Next::Step { step: "2".into(), due_at: Some(at(NOW + DAY)), wait: Some(waiting) },
        history: vec![record("1", "waiting", NOW)],
        messages: vec![],
    };
    assert!(db.store.advance_run(run.id, &run.lease, &update, at(NOW)).await.expect("advance"));
    let ann = run.customer;
    let keyed = |journey, name, key| Signal::KeyedEvent { name, journey, key };
    let wake = |name| Signal::Event { name };
    assert_eq!(db.store.wake_runs(ann, &wake("browse"), at(NOW + 1)).await.expect("wake"), []);
    // A keyed wait: not by the event without keys, nor another key's, nor another journey's.
    assert_eq!(db.store.wake_runs(ann, &wake("purchase"), at(NOW + 1)).await.expect("wake"), [], "keyed");
    let other_cart = keyed("cart", "purchase", Some("other-cart"));
    assert_eq!(db.store.wake_runs(ann, &other_cart, at(NOW + 1)).await.expect("wake"), []);
    let other_journey = keyed("welcome", "purchase", None);
    assert_eq!(db.store.wake_runs(ann, &other_journey, at(NOW + 1)).await.expect("wake"), []);
    // The run's key is empty: an event with the empty key matches it.
    let own = keyed("cart", "purchase", Some(""));
    assert_eq!(db.store.wake_runs(ann, &own, at(NOW + 2)).await.expect("wake"), [run.id]);
    assert_eq!(db.store.wake_runs(ann, &own, at(NOW + 3)).await.expect("wake"), [], "once");
    let woken = db.store.claim_due_runs("w", at(NOW + 2), LEASE, 10).await.expect("claim");
    assert_eq!(
        (woken[0].woken_at, woken[0].wait.clone(), woken[0].due_at),
        (Some(at(NOW + 2)), None, Some(at(NOW + 2)))
    );

    // A segment wait without a timeout is only moved by the entry.
    let update = RunUpdate {
        next: Next::Step { step: "3".into(), due_at: None, wait: Some(Wait::Segment { name: "vip".into() }) },
        history: vec![],
        messages: vec![email(&woken[0], "2", 1, NOW + DAY)],
    };
    assert!(db.store.advance_run(run.id, &woken[0].lease, &update, at(NOW + 3)).await.expect("advance"));
    assert_eq!(db.store.claim_due_runs("w", at(NOW + 100 * DAY), LEASE, 10).await.expect("claim"), []);
    let entered = Signal::SegmentEntry { name: "vip" };
    assert_eq!(db.store.wake_runs(ann + 1, &entered, at(NOW + 4)).await.expect("wake"), [], "another customer");
    assert_eq!(db.store.wake_runs(ann, &entered, at(NOW + 4)).await.expect("wake"), [run.id]);
    let held = db.store.claim_due_runs("w", at(NOW + 4), LEASE, 10).await.expect("claim");
    assert_eq!(held.len(), 1);

    // An exit ends the run mid-step: the holder's advance writes nothing, the message not yet
    // sent is cancelled.
    assert_eq!(db.store.exit_runs(ann, "cart", Some("x"), "purchased", at(NOW + 5)).await.expect("exit"), [], "key");
    assert_eq!(db.store.exit_runs(ann, "cart", None, "purchased", at(NOW + 5)).await.expect("exit"), [run.id]);
    let next =
        RunUpdate { next: to_step("4", Some(NOW)), history: vec![record("3", "entered", NOW)], messages: vec![] };
    assert!(!db.store.advance_run(run.id, &held[0].lease, &next, at(NOW + 6)).await.expect("advance"));
    let trail = db.store.customer_journeys("ann").await.expect("360");
    assert_eq!(
        (trail[0].run.status, trail[0].run.exit_reason.as_deref(), trail[0].run.ended_at, trail[0].run.step.as_str()),
        (RunStatus::Exited, Some("purchased"), Some(at(NOW + 5)), "3")
    );
    assert_eq!(trail[0].messages[0].status, MessageStatus::Cancelled);
    assert_eq!(trail[0].steps.len(), 1);
    assert_eq!(db.store.claim_messages("s", at(NOW + 2 * DAY), LEASE, 10).await.expect("claim"), []);
}

/// Enqueue messages of one run (ann's, journey `j`), each due at its time; their ids.
async fn outbox(
    db: &TestDb,
    who: &str,
    messages: &[(i64, bool, Channel)],
) -> (ClaimedRun, Vec<kanta_store::journey::MessageId>) {
    let run = claimed_run(db, &format!("j-{who}"), who, "w").await;
    let mut ids = Vec::new();
    for (i, &(not_before, transactional, channel)) in messages.iter().enumerate() {
        let message = NewMessage { transactional, channel, ..email(&run, "1", i as i64 + 1, not_before) };
        ids.push(db.store.enqueue_message(run.id, &message, at(NOW)).await.expect("enqueue").expect("new"));
    }
    (run, ids)
}

async fn claim_at(db: &TestDb, owner: &str, now: i64) -> Vec<ClaimedMessage> {
    db.store.claim_messages(owner, at(now), LEASE, 100).await.expect("claim")
}

async fn messages_in_sending_after_their_lease_become_in_doubt_and_are_resent_only_by_hand(db: TestDb) {
    let later = NOW + DAY;
    let (_, ids) = outbox(
        &db,
        "ann",
        &[(NOW, false, Channel::Email), (NOW, false, Channel::Email), (later, false, Channel::Email)],
    )
    .await;
    let claimed = claim_at(&db, "a", NOW).await;
    assert_eq!(claimed.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(ids[0], 1), (ids[1], 1)]);
    assert_eq!(claimed[0].recipient, "ann@example.org");
    assert_eq!(claim_at(&db, "b", NOW).await, [], "claimed already, and the third is not due");
    // Both sends start; the worker dies.
    for m in &claimed {
        assert!(db.store.start_message(m.id, &m.lease, at(NOW + SECOND)).await.expect("start"));
    }
    let other = Lease { owner: "b".into(), ..claimed[0].lease.clone() };
    assert!(!db.store.start_message(claimed[0].id, &other, at(NOW)).await.expect("start"), "not b's lease");

    // Within the lease nothing is in doubt; at its end exactly, the two sending rows are, and
    // the pending row is not touched.
    assert_eq!(db.store.mark_in_doubt(at(NOW + 59 * SECOND)).await.expect("mark"), 0);
    assert_eq!(db.store.mark_in_doubt(at(NOW + 60 * SECOND)).await.expect("mark"), 2);
    assert_eq!(db.store.mark_in_doubt(at(NOW + 61 * SECOND)).await.expect("mark"), 0);
    let doubts = db.store.in_doubt_messages().await.expect("doubts");
    assert_eq!(
        doubts.iter().map(|m| (m.id, m.status)).collect::<Vec<_>>(),
        [(ids[0], MessageStatus::InDoubt), (ids[1], MessageStatus::InDoubt)]
    );
    let metrics = db.store.journey_metrics(at(later + 5 * SECOND)).await.expect("metrics");
    assert_eq!(
        (metrics.in_doubt, metrics.outbox_depth, metrics.outbox_due, metrics.oldest_due_age),
        (2, 1, 1, Some(Duration::from_secs(5)))
    );
    assert_eq!(metrics.active_runs, [("j-ann".to_owned(), 1)]);
    // A second earlier: the third message is waiting but not due.
    let before = db.store.journey_metrics(at(later - SECOND)).await.expect("metrics");
    assert_eq!((before.outbox_depth, before.outbox_due, before.oldest_due_age), (1, 0, None));

    // Never claimed again on their own.
    let third = claim_at(&db, "b", later + 5 * SECOND).await;
    assert_eq!(third.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[2]]);

    // The first worker was alive after all: its answer ends the doubt. Another owner's does not.
    let not_a = Lease { owner: "b".into(), ..claimed[0].lease.clone() };
    let sent = Outcome::Sent { response: "250 2.0.0 Ok: queued".into() };
    assert!(!db.store.complete_message(ids[0], &not_a, &sent, at(later)).await.expect("complete"));
    assert!(db.store.complete_message(ids[0], &claimed[0].lease, &sent, at(later)).await.expect("complete"));
    assert!(!db.store.complete_message(ids[0], &claimed[0].lease, &sent, at(later)).await.expect("complete"), "done");
    assert!(!db.store.resend_message(ids[0], None, at(later)).await.expect("resend"), "not in doubt");

    // The operator resends the second: the old worker can no longer complete it, a new claim
    // sends it.
    assert!(db.store.resend_message(ids[1], Some(7), at(later + 10 * SECOND)).await.expect("resend"));
    assert!(!db.store.resend_message(ids[1], Some(7), at(later + 10 * SECOND)).await.expect("resend"), "once");
    let (audit, _) = db.store.audit_entries(None, 10).await.expect("audit");
    assert_eq!(
        audit.iter().map(|e| (e.action.as_str(), e.token_id, e.customer.as_deref())).collect::<Vec<_>>(),
        [("journey_resend", Some(7), Some("ann"))]
    );
    assert!(!db.store.complete_message(ids[1], &claimed[1].lease, &sent, at(later)).await.expect("complete"));
    let resent = claim_at(&db, "c", later + 10 * SECOND).await;
    assert_eq!(resent.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(ids[1], 2)]);

    // A temporary refusal waits for its backoff; a deferral and a skip are not attempts.
    let retry = Outcome::Retry { response: "451 4.7.1 try later".into(), not_before: at(later + DAY) };
    assert!(
        db.store.complete_message(ids[1], &resent[0].lease, &retry, at(later + 11 * SECOND)).await.expect("complete")
    );
    assert_eq!(claim_at(&db, "c", later + DAY - 1).await, []);
    let retried = claim_at(&db, "c", later + DAY).await;
    assert_eq!(retried.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(ids[1], 3)]);
    let quiet = Outcome::Deferred { not_before: at(later + 2 * DAY) };
    assert!(db.store.complete_message(ids[1], &retried[0].lease, &quiet, at(later + DAY)).await.expect("complete"));
    let capped = Outcome::Skipped { skip: Skip::Capped, detail: Some("3 in 7 days".into()) };
    assert!(db.store.complete_message(ids[2], &third[0].lease, &capped, at(later + DAY)).await.expect("complete"));

    let trail = db.store.customer_journeys("ann").await.expect("360");
    let states: Vec<_> =
        trail[0].messages.iter().map(|m| (m.status, m.attempts, m.last_response.as_deref(), m.sent_at)).collect();
    assert_eq!(
        states,
        [
            (MessageStatus::Sent, 1, Some("250 2.0.0 Ok: queued"), Some(at(later))),
            (MessageStatus::Pending, 2, Some("451 4.7.1 try later"), None),
            (MessageStatus::Capped, 0, Some("3 in 7 days"), None),
        ]
    );
    assert_eq!(trail[0].messages[1].not_before, at(later + 2 * DAY));
    let metrics = db.store.journey_metrics(at(later + DAY)).await.expect("metrics");
    let counts: Vec<_> =
        metrics.messages.iter().map(|c| (c.journey.as_str(), c.step.as_str(), c.status, c.count)).collect();
    assert_eq!(
        counts,
        [
            ("j-ann", "1", MessageStatus::Capped, 1),
            ("j-ann", "1", MessageStatus::Pending, 1),
            ("j-ann", "1", MessageStatus::Sent, 1)
        ]
    );
    assert_eq!((metrics.in_doubt, metrics.outbox_depth, metrics.outbox_due, metrics.oldest_due_age), (0, 1, 0, None));
    let report = db.store.journey_report("j-ann").await.expect("report").expect("the journey");
    let step = &report.steps[0];
    assert_eq!(
        step.messages.iter().map(|(s, n)| (s.as_str(), *n)).collect::<Vec<_>>(),
        [("capped", 1), ("pending", 1), ("sent", 1)]
    );
}

async fn the_cap_counts_what_went_or_may_have_gone_from_since_inclusive(db: TestDb) {
    let since = NOW + 10 * DAY;
    let (run, ids) = outbox(
        &db,
        "ann",
        &[
            (since - 1, false, Channel::Email),   // 0: sent a microsecond before the window
            (since, false, Channel::Email),       // 1: sent at its first microsecond
            (since + 5, true, Channel::Email),    // 2: transactional
            (since + 6, false, Channel::Webhook), // 3: a webhook call
            (since + 7, false, Channel::Email),   // 4: in doubt
            (since + 8, false, Channel::Email),   // 5: failed
            (since + 100, false, Channel::Email), // 6, 7: sending at once
            (since + 100, false, Channel::Email),
        ],
    )
    .await;
    let sent = Outcome::Sent { response: "250 ok".into() };
    for (i, t) in [(0, since - 1), (1, since), (2, since + 5), (3, since + 6)] {
        let claimed = claim_at(&db, "w", t).await;
        assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[i]]);
        assert!(db.store.complete_message(ids[i], &claimed[0].lease, &sent, at(t)).await.expect("complete"));
    }
    let doubtful = claim_at(&db, "w", since + 7).await;
    assert!(db.store.start_message(ids[4], &doubtful[0].lease, at(since + 7)).await.expect("start"));
    assert_eq!(db.store.mark_in_doubt(at(since + 7).saturating_add(LEASE)).await.expect("mark"), 1);
    let failing = claim_at(&db, "w", since + 8).await;
    let failed = Outcome::Failed { response: "550 no such user".into() };
    assert!(db.store.complete_message(ids[5], &failing[0].lease, &failed, at(since + 8)).await.expect("complete"));
    let both = claim_at(&db, "w", since + 100).await;
    assert_eq!(both.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[6], ids[7]]);

    // Someone else's messages do not count.
    let _ = outbox(&db, "bob", &[(since, false, Channel::Email)]).await;
    let bobs = claim_at(&db, "w", since + 100).await;
    assert!(db.store.complete_message(bobs[0].id, &bobs[0].lease, &sent, at(since + 100)).await.expect("complete"));

    let count = |since: i64, excluding| {
        let store = db.store.clone();
        async move { store.marketing_sent_since(run.customer, at(since), excluding).await.expect("count") }
    };
    // sent at `since`, in doubt, and both sending.
    assert_eq!(count(since, None).await, 4);
    assert_eq!(count(since + 1, None).await, 3, "the edge message is out of a window starting after it");
    assert_eq!(count(since - 1, None).await, 5, "and the earlier one is in");
    // Of the two sending at once, the earlier claim counts against the later, not back.
    assert_eq!(count(since, Some(ids[6])).await, 2);
    assert_eq!(count(since, Some(ids[7])).await, 3);
}

/// Two claimers over one outbox: on PostgreSQL two pools (as two `kanta serve` would have), on
/// SQLite two stores on one file.
mod concurrent {
    use super::*;

    kanta_store::on_both_backends!(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
        two_concurrent_claimers_never_get_the_same_message,
        concurrent_entries_of_one_customer_start_one_run_and_respect_the_limit,
    );

    async fn concurrent_entries_of_one_customer_start_one_run_and_respect_the_limit(db: TestDb) {
        for journey in ["a", "b", "c"] {
            apply(&db, journey, "{}", NOW).await;
        }
        let [ann] = customers(&db, &["ann"]).await[..] else { panic!("one customer") };
        let other = kanta_store::open(&db.url).await.expect("a second store on the same database");
        // Twelve entries at once from two stores, four per journey, with a limit of two
        // concurrent runs: two journeys get one run each, and nothing else starts.
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            let journey = ["a", "b", "c"][i % 3];
            tasks.push(tokio::spawn(async move {
                let context = json!({});
                let run = new_run(journey, 1, ann, "", &context);
                let rules = EntryRules { reentry: Reentry::Always, max_active: Some(2), once_per_key: false };
                store.start_run(&run, &rules, at(NOW)).await.expect("start")
            }));
        }
        let mut started = Vec::new();
        for task in tasks {
            if let Entered::Started(id) = task.await.expect("task") {
                started.push(id);
            }
        }
        assert_eq!(started.len(), 2, "{started:?}");
        let runs = db.store.customer_journeys("ann").await.expect("360");
        let mut journeys: Vec<&str> = runs.iter().map(|r| r.run.journey.as_str()).collect();
        journeys.dedup();
        assert_eq!((runs.len(), journeys.len()), (2, 2));
    }

    async fn two_concurrent_claimers_never_get_the_same_message(db: TestDb) {
        const MESSAGES: i64 = 1_000;
        let run = claimed_run(&db, "blast", "ann", "w").await;
        let update = RunUpdate {
            next: Next::End { end: RunEnd::Completed, reason: None },
            history: vec![],
            messages: (1..=MESSAGES).map(|n| email(&run, "1", n, NOW)).collect(),
        };
        assert!(db.store.advance_run(run.id, &run.lease, &update, at(NOW)).await.expect("advance"));
        let other = kanta_store::open(&db.url).await.expect("a second store on the same database");
        let claimer = |store: std::sync::Arc<dyn kanta_store::Storage>, owner: &'static str| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store.claim_messages(owner, at(NOW), LEASE, 7).await.expect("claim");
                    if batch.is_empty() {
                        return got;
                    }
                    assert!(batch.iter().all(|m| m.lease.owner == owner));
                    got.extend(batch.into_iter().map(|m| m.id));
                }
            })
        };
        let (a, b) = (claimer(db.store.clone(), "a"), claimer(other, "b"));
        let (a, b) = (a.await.expect("claimer a"), b.await.expect("claimer b"));
        let a_set: HashSet<_> = a.iter().copied().collect();
        let b_set: HashSet<_> = b.iter().copied().collect();
        assert_eq!(a_set.len(), a.len(), "a claimed a message twice");
        assert_eq!(b_set.len(), b.len(), "b claimed a message twice");
        assert!(a_set.is_disjoint(&b_set), "a message was claimed by both");
        assert_eq!(a.len() + b.len(), MESSAGES as usize, "every message was claimed");
    }
}

async fn addresses_are_suppressed_after_soft_bounces_or_at_once_case_insensitively(db: TestDb) {
    let soft = |address: &'static str, now: i64| {
        let store = db.store.clone();
        async move { store.record_bounce(address, Bounce::Soft, 3, at(now)).await.expect("bounce") }
    };
    assert!(!soft("Ann@Example.org", NOW).await);
    assert!(!soft("ann@example.org", NOW + 1).await);
    assert!(!db.store.is_suppressed("ann@example.org").await.expect("read"));
    assert!(soft(" ANN@EXAMPLE.ORG", NOW + 2).await, "the third soft bounce");
    assert!(db.store.is_suppressed("aNN@example.ORG").await.expect("read"));
    assert!(!soft("cat@example.org", NOW).await);

    assert!(db.store.record_bounce("Bob@Example.org", Bounce::Hard, 3, at(NOW)).await.expect("bounce"));
    assert!(db.store.record_bounce("dan@example.org", Bounce::Complaint, 3, at(NOW)).await.expect("bounce"));
    // A later soft bounce neither unsuppresses nor changes the reason.
    assert!(db.store.record_bounce("bob@example.org", Bounce::Soft, 3, at(NOW + 5)).await.expect("bounce"));
    db.store.suppress("Eve@Example.org", SuppressionReason::Unsubscribed, at(NOW + 6)).await.expect("suppress");

    let list = db.store.suppressions().await.expect("list");
    let rows: Vec<_> =
        list.iter().map(|s| (s.address.as_str(), s.reason, s.soft_bounces, s.suppressed, s.suppressed_at)).collect();
    assert_eq!(
        rows,
        [
            ("ann@example.org", SuppressionReason::SoftBounce, 3, true, Some(at(NOW + 2))),
            ("bob@example.org", SuppressionReason::HardBounce, 1, true, Some(at(NOW))),
            ("cat@example.org", SuppressionReason::SoftBounce, 1, false, None),
            ("dan@example.org", SuppressionReason::Complaint, 0, true, Some(at(NOW))),
            ("eve@example.org", SuppressionReason::Unsubscribed, 0, true, Some(at(NOW + 6))),
        ]
    );
    assert!(db.store.unsuppress("ANN@example.org").await.expect("unsuppress"));
    assert!(!db.store.unsuppress("ann@example.org").await.expect("unsuppress"));
    assert!(!db.store.is_suppressed("ann@example.org").await.expect("read"));
    assert!(!db.store.is_suppressed("nobody@example.org").await.expect("read"));
}

async fn erasing_a_customer_ends_their_runs_and_redacts_their_messages(db: TestDb) {
    let (run, ids) = outbox(&db, "ann", &[(NOW, false, Channel::Email), (NOW + DAY, false, Channel::Email)]).await;
    let first = claim_at(&db, "w", NOW).await;
    let sent = Outcome::Sent { response: "250 ok <ann@example.org>".into() };
    assert!(db.store.complete_message(ids[0], &first[0].lease, &sent, at(NOW)).await.expect("complete"));
    assert!(db.store.erase_customer("ann", None, NOW + 1).await.expect("erase"));

    assert_eq!(db.store.customer_journeys("ann").await.expect("360"), [], "the id is gone");
    let anonymous = format!("erased:{}", run.customer);
    let trail = db.store.customer_journeys(&anonymous).await.expect("360");
    assert_eq!(
        (trail[0].run.status, trail[0].run.exit_reason.as_deref()),
        (RunStatus::Exited, Some("the customer was erased"))
    );
    let messages: Vec<_> =
        trail[0].messages.iter().map(|m| (m.status, m.recipient.as_str(), m.last_response.as_deref())).collect();
    assert_eq!(
        messages,
        [(MessageStatus::Sent, "", None), (MessageStatus::Cancelled, "", Some("cancelled: the customer was erased"))]
    );
    assert_eq!(claim_at(&db, "w", NOW + 2 * DAY).await, [], "never sent");
    assert_eq!(db.store.claim_due_runs("w", at(NOW + 2 * DAY), LEASE, 10).await.expect("claim"), []);
}

async fn a_branch_condition_is_evaluated_for_one_customer_by_internal_id(db: TestDb) {
    // ORDERS: 00042 has two orders, c7 one; ann has none.
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
    let [ann] = customers(&db, &["ann"]).await[..] else { panic!("one customer") };
    let two = db.store.customer_key("00042").await.expect("read").expect("00042");
    let one = db.store.customer_key("c7").await.expect("read").expect("c7");
    assert_eq!(db.store.customer_external_id(two).await.expect("read").as_deref(), Some("00042"));
    assert_eq!(db.store.customer_external_id(-1).await.expect("read"), None);
    let expr = kanta_segment::parse("orders >= 2").expect("valid");
    let matches = |c| {
        let expr = expr.clone();
        let store = db.store.clone();
        async move { store.customer_matches(c, &expr, at(NOW)).await.expect("evaluate") }
    };
    assert_eq!((matches(two).await, matches(one).await, matches(ann).await), (true, false, false));
    // String values are bound, not spliced: a quote in one is just a character.
    let quoted = kanta_segment::parse("attributes.tier = \"x' OR 1=1 --\"").expect("valid");
    assert!(!db.store.customer_matches(two, &quoted, at(NOW)).await.expect("evaluate"));
    // An erased customer matches nothing.
    assert!(db.store.erase_customer("00042", None, NOW).await.expect("erase"));
    assert!(
        !db.store
            .customer_matches(two, &kanta_segment::parse("orders >= 0").expect("valid"), at(NOW))
            .await
            .expect("evaluate")
    );
}

/// The feed's rows as (kind, customer, name), claimed by `owner` at `now`.
async fn feed(db: &TestDb, owner: &str, now: i64) -> Vec<FeedItem> {
    db.store.claim_feed(owner, at(now), LEASE, 100).await.expect("claim")
}

fn kinds(items: &[FeedItem]) -> Vec<(FeedKind, Option<&str>, &str)> {
    items.iter().map(|i| (i.kind.clone(), i.customer.as_deref(), i.name.as_str())).collect()
}

async fn the_feed_holds_new_orders_events_and_transitions_while_a_journey_is_active(db: TestDb) {
    // No journey yet: writes leave nothing behind.
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
    assert_eq!(db.store.feed_depth().await.expect("depth"), 0);
    apply(&db, "welcome", "{}", NOW).await;

    // New orders only; dan's earlier order is his first even though it comes second in the batch.
    let orders = r#"[
      {"id":"o4","customer_id":"dan","time":"2024-03-02T10:00:00Z","amount":"25.50","currency":"EUR"},
      {"id":"o5","customer_id":"dan","time":"2024-03-01T10:00:00Z","amount":5,"currency":"EUR"},
      {"id":"o6","customer_id":"00042","time":"2024-03-03T10:00:00Z","amount":7,"currency":"EUR"},
      {"id":"o1","customer_id":"00042","time":"2024-01-05T10:00:00Z","amount":"19.90","currency":"EUR",
       "lines":[{"product":"beans","category":"coffee","quantity":2,"price":"9.95"}]}
    ]"#;
    db.store.write_orders(&checked::<Order>(orders), at(NOW)).await.expect("write");
    // An update of a known order is not new.
    let changed = r#"[{"id":"o4","customer_id":"dan","time":"2024-03-02T10:00:00Z","amount":26,"currency":"EUR"}]"#;
    db.store.write_orders(&checked::<Order>(changed), at(NOW)).await.expect("write");
    let events = r#"[{"id":"e1","customer_id":"dan","name":"cart.abandoned","time":"2024-03-04T10:00:00Z",
                      "properties":{"cart_id":"c-9","value":12}}]"#;
    db.store.write_events(&checked::<Event>(events), at(NOW)).await.expect("write");
    db.store.write_events(&checked::<Event>(events), at(NOW)).await.expect("again: not new");
    assert_eq!(db.store.feed_depth().await.expect("depth"), 4);
    let items = feed(&db, "w", NOW).await;
    assert_eq!(
        kinds(&items),
        [
            (FeedKind::Order { first: false }, Some("dan"), "order.created"),
            (FeedKind::Order { first: true }, Some("dan"), "order.created"),
            (FeedKind::Order { first: false }, Some("00042"), "order.created"),
            (FeedKind::Event, Some("dan"), "cart.abandoned"),
        ]
    );
    // The order as it is when claimed (the update changed the amount, not the row).
    assert_eq!(
        items[0].properties,
        json!({"order_id": "o4", "amount": 26.0, "currency": "EUR", "status": "completed",
               "time": "2024-03-02T10:00:00Z"})
    );
    assert_eq!(items[0].time, at(1_709_373_600_000_000));
    assert_eq!(items[3].properties, json!({"cart_id": "c-9", "value": 12}));
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    assert_eq!(db.store.ack_feed("w", &ids).await.expect("ack"), 4);
    assert_eq!(db.store.feed_depth().await.expect("depth"), 0);

    // Stage changes of a scoring run, and segment transitions (not the baseline).
    let dan = db.store.customer_key("dan").await.expect("read").expect("dan");
    let ann = customers(&db, &["ann"]).await[0];
    db.store.write_scores(&run(NOW), &[score_row(dan, "repeat", 0.9)]).await.expect("scores");
    db.store.write_scores(&run(NOW + DAY), &[score_row(dan, "slipping", 0.4)]).await.expect("scores");
    let expr = kanta_segment::parse("orders >= 2").expect("valid");
    let seg = db.store.create_segment("repeaters", "orders >= 2", &expr, NOW).await.expect("create");
    let more = r#"[{"id":"o7","customer_id":"ann","time":"2024-03-05T10:00:00Z","amount":3,"currency":"EUR"},
                   {"id":"o8","customer_id":"ann","time":"2024-03-06T10:00:00Z","amount":3,"currency":"EUR"}]"#;
    db.store.write_orders(&checked::<Order>(more), at(NOW)).await.expect("write");
    db.store.refresh_segment(seg.id, &expr, NOW + 2 * DAY).await.expect("refresh");
    let items = feed(&db, "w", NOW).await;
    assert_eq!(
        kinds(&items),
        [
            (FeedKind::Stage, Some("dan"), "repeat"),
            (FeedKind::Stage, Some("dan"), "slipping"),
            (FeedKind::Order { first: true }, Some("ann"), "order.created"),
            (FeedKind::Order { first: false }, Some("ann"), "order.created"),
            (FeedKind::SegmentEnter, Some("ann"), "repeaters"),
        ]
    );
    assert_eq!(items[1].time, at(NOW + DAY));
    assert_eq!(items[4].customer, Some("ann".to_owned()), "ann = {ann}");

    // Erasing a customer deletes their rows; a paused journey is not active.
    db.store.ack_feed("w", &items.iter().map(|i| i.id).collect::<Vec<_>>()).await.expect("ack");
    let late = r#"[{"id":"e2","customer_id":"ann","name":"visit","time":"2024-03-07T10:00:00Z"}]"#;
    db.store.write_events(&checked::<Event>(late), at(NOW)).await.expect("write");
    assert_eq!(db.store.feed_depth().await.expect("depth"), 1);
    assert!(db.store.erase_customer("ann", None, NOW).await.expect("erase"));
    assert_eq!(db.store.feed_depth().await.expect("depth"), 0);
    assert!(db.store.set_journey_paused("welcome", true, at(NOW)).await.expect("pause"));
    let paused = r#"[{"id":"e3","customer_id":"dan","name":"visit","time":"2024-03-07T10:00:00Z"}]"#;
    db.store.write_events(&checked::<Event>(paused), at(NOW)).await.expect("write");
    assert_eq!(db.store.feed_depth().await.expect("depth"), 0);
}

async fn feed_rows_are_claimed_by_one_worker_and_deleted_only_by_their_holder(db: TestDb) {
    apply(&db, "welcome", "{}", NOW).await;
    db.store.write_orders(&checked::<Order>(ORDERS), at(NOW)).await.expect("write");
    let first = feed(&db, "w1", NOW).await;
    assert_eq!(first.len(), 3);
    assert_eq!(feed(&db, "w2", NOW + SECOND).await, [], "held by w1");
    assert_eq!(db.store.ack_feed("w2", &[first[0].id]).await.expect("ack"), 0, "not w2's to delete");
    // w1 dies; after its lease w2 takes the rows over, and w1's late acknowledgement deletes nothing.
    let second = feed(&db, "w2", NOW + 61 * SECOND).await;
    assert_eq!(second.iter().map(|i| i.id).collect::<Vec<_>>(), first.iter().map(|i| i.id).collect::<Vec<_>>());
    assert_eq!(db.store.ack_feed("w1", &[first[0].id]).await.expect("ack"), 0);
    assert_eq!(db.store.ack_feed("w2", &[second[0].id, second[1].id]).await.expect("ack"), 2);
    assert_eq!(db.store.feed_depth().await.expect("depth"), 1);
    // Concurrent claimers take disjoint rows.
    db.store
        .write_orders(
            &checked::<Order>(
                r#"[
      {"id":"x1","customer_id":"a","time":"2024-01-01T00:00:00Z","amount":1,"currency":"EUR"},
      {"id":"x2","customer_id":"b","time":"2024-01-01T00:00:00Z","amount":1,"currency":"EUR"},
      {"id":"x3","customer_id":"c","time":"2024-01-01T00:00:00Z","amount":1,"currency":"EUR"},
      {"id":"x4","customer_id":"d","time":"2024-01-01T00:00:00Z","amount":1,"currency":"EUR"}
    ]"#,
            ),
            at(NOW),
        )
        .await
        .expect("write");
    let later = NOW + 200 * SECOND;
    let (a, b) =
        tokio::join!(db.store.claim_feed("a", at(later), LEASE, 3), db.store.claim_feed("b", at(later), LEASE, 3));
    let (a, b) = (a.expect("claim"), b.expect("claim"));
    let mut all: Vec<i64> = a.iter().chain(&b).map(|i| i.id).collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((n, all.len()), (5, 5), "every row once: {a:?} {b:?}");
}

async fn a_claimed_message_whose_send_never_started_is_due_again_after_the_lease(db: TestDb) {
    let (_, ids) = outbox(&db, "ann", &[(NOW, false, Channel::Email), (NOW, false, Channel::Email)]).await;
    // Worker a claims both, starts the first and dies before starting the second.
    let claimed = claim_at(&db, "a", NOW).await;
    assert!(db.store.start_message(ids[0], &claimed[0].lease, at(NOW)).await.expect("start"));
    assert_eq!(db.store.mark_in_doubt(at(NOW + 60 * SECOND)).await.expect("mark"), 1, "only the started one");
    // The unstarted one is due again, its lost claim not counted as an attempt; a late start
    // by the dead worker fails, so it cannot go twice.
    assert!(!db.store.start_message(ids[1], &claimed[1].lease, at(NOW + 61 * SECOND)).await.expect("start"));
    let again = claim_at(&db, "b", NOW + 61 * SECOND).await;
    assert_eq!(again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(ids[1], 1)]);
    assert!(db.store.start_message(ids[1], &again[0].lease, at(NOW + 61 * SECOND)).await.expect("start"));
    let sent = Outcome::Sent { response: "250 ok".into() };
    assert!(db.store.complete_message(ids[1], &again[0].lease, &sent, at(NOW + 62 * SECOND)).await.expect("done"));
    let doubts = db.store.in_doubt_messages().await.expect("doubts");
    assert_eq!(doubts.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[0]]);
}
