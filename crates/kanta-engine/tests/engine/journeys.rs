//! Journeys run by the engine: the welcome journey, time, guardrails at send time, at most
//! once, refused recipients, dry runs, exits mid-wait, DST, the journey feed, update, split,
//! webhook and wait_for steps against a local receiver, pauses and late runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanta_domain::{ManualClock, Timestamp};
use kanta_engine::{Engine, EngineConfig};
use kanta_journey::{AnyTemplate, FrequencyCap, Guardrails, QuietHours};
use kanta_mail::settings::HiddenSecret;
use kanta_mail::{EmailConfig, EmailSettings, SmtpUrl};
use kanta_store::journey::{CustomerRun, Entered, MessageStatus, RunStatus};
use kanta_store::record::{Record, parse_batch};
use kanta_store::testing::TestDb;
use kanta_store::{Customer, Event, ModelScores, NewScoreRun, Order, ScoreRow};
use serde_json::{Value, json};

use kanta_mail::testing::Smtpd;

kanta_store::on_both_backends!(
    #[tokio::test] |db| db;
    the_welcome_journey_thanks_at_once_and_suggests_a_second_order_at_ten_local_unless_there_was_one,
    a_thirty_day_journey_completes_in_milliseconds,
    consent_revoked_between_scheduling_and_sending_sends_nothing,
    quiet_hours_defer_to_eight_local_and_then_send,
    the_cap_skips_the_second_marketing_email_and_transactional_mail_bypasses_it,
    a_message_left_in_sending_by_a_crashed_worker_becomes_in_doubt_and_is_never_sent,
    a_refused_recipient_fails_only_its_own_message,
    a_dry_run_journey_records_and_renders_and_sends_nothing,
    an_order_exits_the_win_back_run_in_the_middle_of_its_wait,
    wait_until_nine_in_helsinki_fires_at_seven_utc_before_the_dst_change_and_six_after,
    orders_and_events_reach_journeys_through_the_feed_and_stale_ones_start_nothing,
    stage_changes_and_segment_transitions_in_the_feed_start_and_end_runs,
    a_run_renders_its_own_versions_template_after_the_file_changes_and_is_applied_again,
    update_split_webhook_and_wait_for_steps_run_against_a_local_receiver,
    a_url_webhook_step_is_signed_with_the_journeys_secret_or_not_sent,
    a_paused_journey_admits_nobody_and_a_late_run_skips_its_sends,
    holdout_customers_get_no_step_and_both_arms_are_followed_for_the_goal,
    the_global_holdout_keeps_its_share_out_of_marketing_journeys_only,
    the_report_compares_a_splits_arms_and_counts_runs_per_step,
);

const SECOND: u64 = 1;
const DAY: u64 = 86_400 * SECOND;

fn t(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("an RFC 3339 time")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn checked<T: Record + std::fmt::Debug>(json: &Value) -> Vec<T> {
    let text = json.to_string();
    let batch = parse_batch::<T>(text.as_bytes(), kanta_domain::TimeRange::ALL).expect("a JSON array");
    assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
    batch.valid.into_iter().map(|(_, r)| r).collect()
}

fn email_config(port: u16) -> EmailConfig {
    EmailSettings {
        smtp_url: SmtpUrl::new(format!("smtp://127.0.0.1:{port}")),
        from: Some("Shop <hello@shop.example>".into()),
        public_url: "https://shop.example".into(),
        rate_per_second: 1000.0,
        timeout_seconds: 10,
        unsubscribe_secret: Some(HiddenSecret::new("test-secret-0123456789")),
        ..EmailSettings::default()
    }
    .check(|_| None)
    .expect("email settings")
}

/// The store, the clock and an engine sending to `smtpd`.
struct Harness {
    db: TestDb,
    clock: Arc<ManualClock>,
    engine: Engine,
}

fn guardrails(cap: &str, quiet: &str) -> Guardrails {
    Guardrails {
        consent: kanta_journey::ConsentMode::OptIn,
        cap: FrequencyCap::parse(cap).expect("cap"),
        quiet: QuietHours::parse(quiet).expect("quiet hours"),
    }
}

fn harness(db: TestDb, smtpd: Option<&Smtpd>, guardrails: Guardrails, start: &str) -> Harness {
    harness_with(db, smtpd, guardrails, start, Vec::new())
}

fn harness_with(
    db: TestDb,
    smtpd: Option<&Smtpd>,
    guardrails: Guardrails,
    start: &str,
    webhooks: Vec<kanta_engine::WebhookEndpoint>,
) -> Harness {
    let clock = Arc::new(ManualClock::new(t(start)));
    let mut config = EngineConfig::new("engine-test");
    config.webhooks = webhooks;
    config.guardrails = guardrails;
    config.email = smtpd.map(|s| email_config(s.port));
    config.message_lease = Duration::from_secs(60);
    config.run_lease = Duration::from_secs(60);
    let engine = Engine::new(db.store.clone(), config, clock.clone()).expect("engine");
    Harness { db, clock, engine }
}

impl Harness {
    fn now(&self) -> Timestamp {
        self.engine.now()
    }

    /// Moves the clock to `to`.
    fn at(&self, to: &str) {
        self.clock.set(t(to));
    }

    fn later(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    /// Advance and deliver until neither finds anything due now.
    async fn tick(&self) {
        for _ in 0..100 {
            let advanced = self.engine.advance(self.now()).await.expect("advance");
            let delivered = self.engine.deliver(self.now()).await.expect("deliver");
            if advanced == 0 && delivered == 0 {
                return;
            }
        }
        panic!("the engine never settled");
    }

    /// Applies a journey document (YAML) as the CLI does, with the templates of the examples'
    /// folder embedded.
    async fn apply(&self, yaml: &str) -> String {
        self.apply_with(yaml, &repo().join("journeys/templates")).await.0
    }

    /// Applies a journey document (YAML) as the CLI does, with the templates of `templates`
    /// embedded: its name, version and whether the version is new.
    async fn apply_with(&self, yaml: &str, templates: &Path) -> (String, i64, bool) {
        let mut journey = kanta_journey::validate_yaml(yaml, &AnyTemplate).expect("a valid journey");
        journey.embed_templates(|file| kanta_mail::read_source(templates, file)).expect("the templates");
        let applied = self
            .db
            .store
            .apply_journey(&journey.name, &journey.canonical_json(), &journey.digest(), self.now())
            .await
            .expect("apply");
        (journey.name, applied.version, applied.created)
    }

    async fn apply_file(&self, file: &str) -> String {
        let text = std::fs::read_to_string(repo().join("journeys").join(file)).expect("the example journey");
        self.apply(&text).await
    }

    /// A customer `id` (address `id@example.org`) in `zone`, with email consent granted.
    async fn customer(&self, id: &str, zone: &str) {
        let record = json!([{"id": id, "email": format!("{id}@example.org"), "name": id.to_uppercase(), "timezone": zone,
            "consent": [{"channel": "email", "status": "granted", "time": "2025-01-01T00:00:00Z"}]}]);
        self.db.store.write_customers(&checked::<Customer>(&record), self.now()).await.expect("write customer");
    }

    async fn order(&self, customer: &str, id: &str, time: &str) {
        let record = json!([{"id": id, "customer_id": customer, "time": time, "amount": "20", "currency": "EUR"}]);
        self.db.store.write_orders(&checked::<Order>(&record), self.now()).await.expect("write order");
    }

    async fn runs(&self, customer: &str) -> Vec<CustomerRun> {
        self.db.store.customer_journeys(customer).await.expect("runs")
    }

    async fn run(&self, customer: &str) -> CustomerRun {
        let mut runs = self.runs(customer).await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.remove(0)
    }

    async fn enter(&self, journey: &str, customer: &str) {
        let entered = self.engine.enter(journey, customer, "", &json!({}), self.now()).await.expect("enter");
        assert!(matches!(entered, Entered::Started(_)), "{entered:?}");
    }
}

fn statuses(run: &CustomerRun) -> Vec<(String, MessageStatus)> {
    run.messages.iter().map(|m| (m.step.clone(), m.status)).collect()
}

/// The subjects received, sorted (Maildir names order messages only to the second).
fn subjects(smtpd: &Smtpd) -> Vec<String> {
    let mut subjects: Vec<String> = smtpd.messages().iter().map(|m| header(m, "Subject").expect("Subject")).collect();
    subjects.sort();
    subjects
}

/// Header `name` of a received message, encoded words decoded.
fn header(message: &[u8], name: &str) -> Option<String> {
    kanta_mail::headers::headers(message)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| kanta_mail::headers::decode_encoded_words(&v))
}

async fn the_welcome_journey_thanks_at_once_and_suggests_a_second_order_at_ten_local_unless_there_was_one(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    // Monday 2026-01-05 14:00 in Helsinki (UTC+2).
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-01-05T12:00:00Z");
    h.apply_file("welcome.yaml").await;
    for (who, order) in [("ann", "o-ann"), ("bob", "o-bob")] {
        h.customer(who, "Europe/Helsinki").await;
        h.order(who, order, "2026-01-05T11:59:00Z").await;
        let outcome = h
            .engine
            .on_event(who, "order.created", &json!({"order_id": order}), true, h.now())
            .await
            .expect("on_event");
        assert_eq!(outcome.entered.len(), 1, "{outcome:?}");
        assert!(matches!(outcome.entered[0].1, Entered::Started(_)));
    }
    // Not a first order: nobody enters again, and a second first order finds the run active.
    let again = h.engine.on_event("ann", "order.created", &json!({}), false, h.now()).await.expect("on_event");
    assert!(again.entered.is_empty());

    h.tick().await;
    let received = smtpd.messages();
    assert_eq!(received.len(), 2);
    let mut to: Vec<String> = received.iter().map(|m| header(m, "To").expect("To")).collect();
    to.sort();
    assert_eq!(to, ["ANN <ann@example.org>", "BOB <bob@example.org>"]);
    for m in &received {
        assert!(header(m, "Subject").expect("Subject").starts_with("Thanks for your first order, "));
        let unsubscribe = header(m, "List-Unsubscribe").expect("List-Unsubscribe");
        assert!(unsubscribe.starts_with("<https://shop.example/"), "{unsubscribe}");
        assert_eq!(header(m, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        assert!(header(m, "Message-ID").expect("Message-ID").ends_with("@shop.example>"));
    }
    let ann = h.run("ann").await;
    assert_eq!(statuses(&ann), [("0".to_owned(), MessageStatus::Sent)]);
    assert_eq!((ann.run.step.as_str(), ann.run.due_at), ("1", Some(t("2026-01-08T12:00:00Z"))));

    // Bob orders again meanwhile.
    h.order("bob", "o-bob-2", "2026-01-06T09:00:00Z").await;

    // Three days later: the run waits until 10:00 in Helsinki, 08:00 UTC the next morning.
    h.later(3 * DAY);
    h.tick().await;
    let ann = h.run("ann").await;
    assert_eq!((ann.run.step.as_str(), ann.run.due_at), ("2", Some(t("2026-01-09T08:00:00Z"))));
    assert_eq!(smtpd.messages().len(), 2);

    // At 10:00 local the branch: Bob (two orders) exits, Ann gets the second email.
    h.at("2026-01-09T08:00:00Z");
    h.tick().await;
    let bob = h.run("bob").await;
    assert_eq!((bob.run.status, bob.run.exit_reason.as_deref()), (RunStatus::Exited, Some("exit step")));
    let ann = h.run("ann").await;
    assert_eq!(ann.run.status, RunStatus::Completed);
    assert_eq!(statuses(&ann), [("0".to_owned(), MessageStatus::Sent), ("4".to_owned(), MessageStatus::Sent)]);
    let received = smtpd.messages();
    assert_eq!(received.len(), 3);
    let second = received
        .iter()
        .find(|m| header(m, "Subject").as_deref() == Some("Something for your next order"))
        .expect("the second email");
    assert_eq!(header(second, "To").as_deref(), Some("ANN <ann@example.org>"));
    assert_eq!(header(second, "Subject").as_deref(), Some("Something for your next order"));
    let body = String::from_utf8_lossy(second);
    assert!(body.contains("We hope your first order arrived safely"), "the second-order template: {body}");
}

async fn a_thirty_day_journey_completes_in_milliseconds(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(
        r#"
name: month
trigger: { event: signup }
steps:
  - send_email: { subject: "Day 0", html: "<p>0</p>" }
  - wait: 10d
  - send_email: { subject: "Day 10", html: "<p>10</p>" }
  - wait: 10d
  - send_email: { subject: "Day 20", html: "<p>20</p>" }
  - wait: 10d
  - send_email: { subject: "Day 30", html: "<p>30</p>" }
"#,
    )
    .await;
    h.customer("ann", "UTC").await;
    let started = Instant::now();
    h.engine.on_event("ann", "signup", &json!({}), false, h.now()).await.expect("on_event");
    h.tick().await;
    for _ in 0..3 {
        h.later(10 * DAY);
        h.tick().await;
    }
    let elapsed = started.elapsed();
    let run = h.run("ann").await;
    assert_eq!(run.run.status, RunStatus::Completed);
    assert_eq!(run.run.ended_at, Some(t("2026-03-04T12:00:00Z")));
    assert_eq!(subjects(&smtpd), ["Day 0", "Day 10", "Day 20", "Day 30"]);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

const TWO_EMAILS: &str = r#"
name: pair
trigger: { event: signup }
steps:
  - send_email: { subject: "First", html: "<p>1</p>" }
  - wait: 1d
  - send_email: { subject: "Second", html: "<p>2</p>" }
  - wait: 1d
  - send_email: { subject: "Receipt", html: "<p>r</p>", transactional: true }
"#;

async fn consent_revoked_between_scheduling_and_sending_sends_nothing(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(TWO_EMAILS).await;
    h.customer("ann", "UTC").await;
    h.enter("pair", "ann").await;
    // Scheduled (the message is queued) but not delivered yet.
    assert_eq!(h.engine.advance(h.now()).await.expect("advance"), 1);
    assert_eq!(statuses(&h.run("ann").await), [("0".to_owned(), MessageStatus::Pending)]);
    let revoked =
        json!([{"id": "ann", "consent": [{"channel": "email", "status": "revoked", "time": "2026-02-02T12:00:00Z"}]}]);
    h.db.store.write_customers(&checked::<Customer>(&revoked), h.now()).await.expect("revoke");
    h.tick().await;
    assert_eq!(statuses(&h.run("ann").await), [("0".to_owned(), MessageStatus::NoConsent)]);
    assert_eq!(smtpd.messages().len(), 0);
}

async fn quiet_hours_defer_to_eight_local_and_then_send(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    // 22:00 in Helsinki.
    let h = harness(db, Some(&smtpd), guardrails("off", "21:00-08:00"), "2026-02-02T20:00:00Z");
    h.apply(TWO_EMAILS).await;
    h.customer("ann", "Europe/Helsinki").await;
    h.enter("pair", "ann").await;
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(statuses(&run), [("0".to_owned(), MessageStatus::Pending)]);
    assert_eq!(run.messages[0].not_before, t("2026-02-03T06:00:00Z"), "08:00 in Helsinki");
    assert_eq!(smtpd.messages().len(), 0);
    h.at("2026-02-03T05:59:59Z");
    h.tick().await;
    assert_eq!(smtpd.messages().len(), 0);
    h.at("2026-02-03T06:00:00Z");
    h.tick().await;
    assert_eq!(statuses(&h.run("ann").await)[0], ("0".to_owned(), MessageStatus::Sent));
    assert_eq!(smtpd.messages().len(), 1);
}

async fn the_cap_skips_the_second_marketing_email_and_transactional_mail_bypasses_it(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("1/7d", "off"), "2026-02-02T12:00:00Z");
    h.apply(TWO_EMAILS).await;
    h.customer("ann", "UTC").await;
    h.enter("pair", "ann").await;
    h.tick().await;
    h.later(DAY);
    h.tick().await;
    h.later(DAY);
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(run.run.status, RunStatus::Completed);
    assert_eq!(
        statuses(&run),
        [
            ("0".to_owned(), MessageStatus::Sent),
            ("2".to_owned(), MessageStatus::Capped),
            ("4".to_owned(), MessageStatus::Sent)
        ]
    );
    assert_eq!(subjects(&smtpd), ["First", "Receipt"]);
    let receipt = smtpd.messages().into_iter().find(|m| header(m, "Subject").as_deref() == Some("Receipt"));
    assert_eq!(
        header(&receipt.expect("the receipt"), "List-Unsubscribe"),
        None,
        "transactional mail has no unsubscribe header"
    );
}

async fn a_message_left_in_sending_by_a_crashed_worker_becomes_in_doubt_and_is_never_sent(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(TWO_EMAILS).await;
    h.customer("ann", "UTC").await;
    h.enter("pair", "ann").await;
    h.engine.advance(h.now()).await.expect("advance");
    // A worker claims the message, starts its send and dies before it records anything.
    let claimed = h.db.store.claim_messages("crashed", h.now(), Duration::from_secs(60), 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(h.db.store.start_message(claimed[0].id, &claimed[0].lease, h.now()).await.expect("start"));
    drop(claimed);
    // Within its lease the message is nobody else's.
    assert_eq!(h.engine.deliver(h.now()).await.expect("deliver"), 0);
    h.later(61);
    assert_eq!(h.engine.deliver(h.now()).await.expect("deliver"), 0);
    assert_eq!(statuses(&h.run("ann").await), [("0".to_owned(), MessageStatus::InDoubt)]);
    h.later(DAY);
    h.tick().await;
    assert_eq!(statuses(&h.run("ann").await)[0], ("0".to_owned(), MessageStatus::InDoubt));
    assert_eq!(subjects(&smtpd), ["Second"], "the first message is never sent automatically");
}

async fn a_refused_recipient_fails_only_its_own_message(db: TestDb) {
    let smtpd = Smtpd::script(&["--reject", "bad@example.org=550 5.1.1 no such user"]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(TWO_EMAILS).await;
    for who in ["bad", "good", "fine"] {
        h.customer(who, "UTC").await;
        h.enter("pair", who).await;
    }
    h.tick().await;
    let bad = h.run("bad").await;
    assert_eq!(statuses(&bad), [("0".to_owned(), MessageStatus::Failed)]);
    for who in ["good", "fine"] {
        assert_eq!(statuses(&h.run(who).await), [("0".to_owned(), MessageStatus::Sent)]);
    }
    let mut to: Vec<String> = smtpd.messages().iter().map(|m| header(m, "To").expect("To")).collect();
    to.sort();
    assert_eq!(to, ["FINE <fine@example.org>", "GOOD <good@example.org>"]);
    let failed = h.db.store.journey_runs("pair", None, 10).await.expect("runs");
    assert_eq!(failed.0.len(), 3);
    // The refused mailbox is suppressed (a hard bounce at SMTP time); the others are not.
    assert!(h.db.store.is_suppressed("bad@example.org").await.expect("read"));
    assert!(!h.db.store.is_suppressed("good@example.org").await.expect("read"));
}

async fn a_dry_run_journey_records_and_renders_and_sends_nothing(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(&TWO_EMAILS.replace("name: pair", "name: pair\ndry_run: true")).await;
    h.customer("ann", "UTC").await;
    h.enter("pair", "ann").await;
    h.tick().await;
    h.later(DAY);
    h.tick().await;
    h.later(DAY);
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(run.run.status, RunStatus::Completed);
    assert_eq!(
        statuses(&run),
        [
            ("0".to_owned(), MessageStatus::DryRun),
            ("2".to_owned(), MessageStatus::DryRun),
            ("4".to_owned(), MessageStatus::DryRun)
        ]
    );
    let outcomes: Vec<&str> = run.steps.iter().filter(|s| s.step == "0").map(|s| s.outcome.as_str()).collect();
    assert_eq!(outcomes, ["dry_run"]);
    assert_eq!(smtpd.messages().len(), 0);
}

async fn an_order_exits_the_win_back_run_in_the_middle_of_its_wait(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply_file("win-back.yaml").await;
    h.customer("ann", "Europe/Helsinki").await;
    h.order("ann", "o-1", "2025-01-05T10:00:00Z").await;
    h.enter("win-back", "ann").await;
    // The first step waits until 10:00 in Helsinki: 08:00 UTC tomorrow.
    assert_eq!(h.run("ann").await.run.due_at, Some(t("2026-02-03T08:00:00Z")));
    h.at("2026-02-03T08:00:00Z");
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(statuses(&run), [("first-offer".to_owned(), MessageStatus::Sent)]);
    assert_eq!((run.run.step.as_str(), run.run.due_at), ("2", Some(t("2026-02-17T08:00:00Z"))));
    // A week into the 14-day wait, an order.
    h.later(7 * DAY);
    h.order("ann", "o-2", "2026-02-10T08:00:00Z").await;
    let outcome = h.engine.on_event("ann", "order.created", &json!({}), false, h.now()).await.expect("on_event");
    assert_eq!(outcome.exited.len(), 1);
    let run = h.run("ann").await;
    assert_eq!((run.run.status, run.run.exit_reason.as_deref()), (RunStatus::Exited, Some("event order.created")));
    h.later(14 * DAY);
    h.tick().await;
    assert_eq!(smtpd.messages().len(), 1, "no second offer");
}

async fn wait_until_nine_in_helsinki_fires_at_seven_utc_before_the_dst_change_and_six_after(db: TestDb) {
    let h = harness(db, None, guardrails("off", "off"), "2026-03-27T12:00:00Z");
    h.apply(
        r#"
name: mornings
trigger: { event: signup }
dry_run: true
steps:
  - wait_until: { local_time: "09:00" }
  - send_email: { subject: "Morning", html: "<p>m</p>" }
  - wait: 12h
  - wait_until: { local_time: "09:00" }
  - send_email: { subject: "Morning again", html: "<p>m</p>" }
"#,
    )
    .await;
    h.customer("ann", "Europe/Helsinki").await;
    h.enter("mornings", "ann").await;
    // Saturday 2026-03-28 09:00 EET (UTC+2).
    assert_eq!(h.run("ann").await.run.due_at, Some(t("2026-03-28T07:00:00Z")));
    h.at("2026-03-28T06:59:59Z");
    h.tick().await;
    assert_eq!(h.run("ann").await.messages.len(), 0, "not before 09:00 local");
    h.at("2026-03-28T07:00:00Z");
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(run.messages.len(), 1);
    assert_eq!(run.run.due_at, Some(t("2026-03-28T19:00:00Z")));
    h.at("2026-03-28T19:00:00Z");
    h.tick().await;
    // Sunday 2026-03-29 09:00 EEST (UTC+3): the clocks went forward at 03:00 local.
    assert_eq!(h.run("ann").await.run.due_at, Some(t("2026-03-29T06:00:00Z")));
    h.at("2026-03-29T06:00:00Z");
    h.tick().await;
    let run = h.run("ann").await;
    assert_eq!(run.run.status, RunStatus::Completed);
    assert_eq!(run.messages.len(), 2);
    assert!(run.messages.iter().all(|m| m.status == MessageStatus::DryRun));
}

impl Harness {
    async fn event(&self, customer: &str, id: &str, name: &str, properties: Value) {
        let record = json!([{"id": id, "customer_id": customer, "name": name, "time": self.now().to_string(),
            "properties": properties}]);
        self.db.store.write_events(&checked::<Event>(&record), self.now()).await.expect("write event");
    }

    /// Everything the feed holds, handled; returns (claimed, entered).
    async fn feed(&self) -> (usize, usize) {
        let outcome = self.engine.consume_feed(self.now()).await.expect("the feed");
        assert_eq!(outcome.claimed, outcome.handled, "{outcome:?}");
        (outcome.claimed, outcome.entered)
    }
}

async fn orders_and_events_reach_journeys_through_the_feed_and_stale_ones_start_nothing(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-01-05T12:00:00Z");
    h.apply_file("welcome.yaml").await;
    h.apply_file("abandoned-cart.yaml").await;
    h.customer("ann", "Europe/Helsinki").await;
    h.customer("bob", "Europe/Helsinki").await;
    h.order("ann", "o-1", "2026-01-05T11:59:00Z").await;
    // Two days old when it arrives (an import of history): older than max_event_age.
    h.order("bob", "o-2", "2026-01-03T11:59:00Z").await;
    assert_eq!(h.feed().await, (2, 1));
    h.tick().await;
    assert_eq!(subjects(&smtpd), ["Thanks for your first order, ANN"]);
    assert_eq!(h.runs("bob").await.len(), 0);
    // Ann's second order is not a first order; her two carts start one run each.
    h.order("ann", "o-3", "2026-01-05T12:00:00Z").await;
    h.event("ann", "e-1", "cart.updated", json!({"cart_id": "c1"})).await;
    h.event("ann", "e-2", "cart.updated", json!({"cart_id": "c2"})).await;
    h.event("ann", "e-3", "cart.updated", json!({"cart_id": "c2"})).await;
    assert_eq!(h.feed().await, (4, 2));
    let mut carts: Vec<String> =
        h.runs("ann").await.into_iter().filter(|r| r.run.journey == "abandoned-cart").map(|r| r.run.key).collect();
    carts.sort();
    assert_eq!(carts, ["c1", "c2"]);
    // Bob's cart c3 waits too.
    h.event("bob", "e-5", "cart.updated", json!({"cart_id": "c3"})).await;
    assert_eq!(h.feed().await, (1, 1));
    // The checkout of cart c1, posted as an event with the cart's id, ends that wait only.
    h.later(3600);
    h.event("ann", "e-4", "order.created", json!({"cart_id": "c1"})).await;
    assert_eq!(h.feed().await, (1, 0));
    // An order of Bob's (orders carry no cart id) is about all his carts: it ends c3's wait.
    h.order("bob", "o-4", &(h.now().to_rfc3339())).await;
    assert_eq!(h.feed().await, (1, 0));
    h.later(4 * 3600);
    h.tick().await;
    assert_eq!(subjects(&smtpd), ["Thanks for your first order, ANN", "You left something in your cart"]);
    let cart_runs = |runs: Vec<CustomerRun>| -> Vec<(String, RunStatus)> {
        let mut out: Vec<_> =
            runs.into_iter().filter(|r| r.run.journey == "abandoned-cart").map(|r| (r.run.key, r.run.status)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(
        cart_runs(h.runs("ann").await),
        [("c1".into(), RunStatus::Completed), ("c2".into(), RunStatus::Completed)]
    );
    assert_eq!(cart_runs(h.runs("bob").await), [("c3".into(), RunStatus::Completed)]);
    let reminded: Vec<String> = smtpd.messages().iter().filter_map(|m| header(m, "To")).collect();
    assert!(!reminded.iter().any(|to| to.contains("bob")), "{reminded:?}");
    assert_eq!(h.db.store.feed_depth().await.expect("depth"), 0);
}

fn score(customer: i64, stage: &'static str) -> ScoreRow {
    ScoreRow {
        customer,
        r: 3,
        f: 3,
        m: 3,
        rfm_segment: "Loyal",
        stage,
        value_tier: "top",
        main_category: None,
        next_category: None,
        model: Some(ModelScores {
            p_alive: 0.4,
            expected_30d: 0.1,
            expected_90d: 0.3,
            expected_365d: 1.0,
            p_purchase_30d: 0.1,
            expected_spend: Some(90.0),
            clv_12m: Some(500.0),
            next_purchase_at: None,
        }),
    }
}

fn score_run(at: Timestamp) -> NewScoreRun {
    NewScoreRun {
        started_at: at.micros(),
        finished_at: at.micros(),
        as_of: at.to_string(),
        orders: 1,
        model: None,
        diagnostics: json!({}),
    }
}

async fn stage_changes_and_segment_transitions_in_the_feed_start_and_end_runs(db: TestDb) {
    let h = harness(db, None, guardrails("off", "off"), "2026-02-03T12:00:00Z");
    h.apply_file("re-engagement.yaml").await;
    h.apply(
        r#"
name: vip-welcome
trigger: { enters_segment: vip }
exit_when:
  - leaves_segment: vip
steps:
  - wait: 7d
  - send_email: { subject: "Welcome to VIP", html: "<p>hi</p>" }
"#,
    )
    .await;
    h.customer("ann", "Europe/Helsinki").await;
    h.order("ann", "o-1", "2025-06-01T10:00:00Z").await;
    assert_eq!(h.feed().await, (1, 0), "last year's order starts nothing");
    let ann = h.db.store.customer_key("ann").await.expect("read").expect("ann");
    h.db.store.write_scores(&score_run(h.now()), &[score(ann, "loyal")]).await.expect("scores");
    h.later(DAY);
    h.db.store.write_scores(&score_run(h.now()), &[score(ann, "slipping")]).await.expect("scores");
    // `loyal` (first scoring, a day old now) starts nothing; `slipping` starts re-engagement.
    assert_eq!(h.feed().await, (2, 1));
    let run = h.run("ann").await;
    assert_eq!((run.run.journey.as_str(), run.run.status), ("re-engagement", RunStatus::Active));

    let expr = kanta_segment::parse("orders >= 1").expect("valid");
    let seg = h.db.store.create_segment("vip", "orders >= 1", &expr, h.now().micros()).await.expect("create");
    assert_eq!(seg.members, 1, "the baseline is no transition");
    h.customer("bob", "UTC").await;
    h.order("bob", "o-2", &h.now().to_string()).await;
    h.db.store.refresh_segment(seg.id, &expr, h.now().micros()).await.expect("refresh");
    assert_eq!(h.feed().await, (2, 1), "bob's order (no journey) and his entry into vip");
    assert_eq!(h.run("bob").await.run.journey, "vip-welcome");
    // Bob's order is refunded: he leaves vip, and his run ends mid-wait.
    let refund = json!([{"id": "o-2", "customer_id": "bob", "time": h.now().to_string(), "amount": "20",
        "currency": "EUR", "status": "refunded"}]);
    h.db.store.write_orders(&checked::<Order>(&refund), h.now()).await.expect("refund");
    h.later(60);
    h.db.store.refresh_segment(seg.id, &expr, h.now().micros()).await.expect("refresh");
    assert_eq!(h.feed().await, (1, 0));
    let bob = h.run("bob").await;
    assert_eq!((bob.run.status, bob.run.exit_reason.as_deref()), (RunStatus::Exited, Some("left segment vip")));
}

async fn a_run_renders_its_own_versions_template_after_the_file_changes_and_is_applied_again(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    let folder = tempfile::tempdir().expect("a folder");
    let write = |text: &str| std::fs::write(folder.path().join("note.txt"), text).expect("write");
    std::fs::write(folder.path().join("note.html"), "<p>{% include \"sign.html\" %}</p>").expect("write");
    std::fs::write(folder.path().join("sign.html"), "Signed").expect("write");
    write("Version one for {{ customer.name }}\n");
    let yaml = "name: note\ntrigger: { event: signup }\nentry: { reentry: always }\n\
                steps:\n  - wait: 1d\n  - send_email: { subject: Note, template: note }\n";
    assert_eq!(h.apply_with(yaml, folder.path()).await, ("note".to_owned(), 1, true));
    // Nothing changed: the same version.
    assert_eq!(h.apply_with(yaml, folder.path()).await, ("note".to_owned(), 1, false));
    h.customer("ann", "UTC").await;
    h.enter("note", "ann").await;
    h.tick().await;
    // Ann waits on version 1; the text changes and is applied: version 2 for new entries.
    write("Version two for {{ customer.name }}\n");
    assert_eq!(h.apply_with(yaml, folder.path()).await, ("note".to_owned(), 2, true));
    h.customer("bob", "UTC").await;
    h.enter("note", "bob").await;
    h.later(DAY);
    h.tick().await;
    let body = |to: &str| -> String {
        let message = smtpd
            .messages()
            .into_iter()
            .find(|m| header(m, "To").is_some_and(|t| t.contains(to)))
            .unwrap_or_else(|| panic!("no message to {to}"));
        String::from_utf8_lossy(&message).into_owned()
    };
    let (ann, bob) = (body("ann@"), body("bob@"));
    assert!(ann.contains("Version one for ANN") && !ann.contains("Version two"), "{ann}");
    assert!(bob.contains("Version two for BOB") && !bob.contains("Version one"), "{bob}");
    // The included file travels with the version too.
    assert!(ann.contains("<p>Signed</p>") && bob.contains("<p>Signed</p>"), "{ann}");
    assert_eq!((h.run("ann").await.run.version, h.run("bob").await.run.version), (1, 2));
}

/// A local HTTP receiver: answers 200 to every POST and keeps (kanta-signature, body).
struct Receiver {
    url: String,
    received: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = received.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buffer).into_owned();
                        let Some(end) = text.find("\r\n\r\n") else { continue };
                        let head = text[..end].to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buffer.len() < end + 4 + length {
                            continue;
                        }
                        let signature = head
                            .lines()
                            .find_map(|l| l.strip_prefix("kanta-signature:"))
                            .map(|v| v.trim().to_owned())
                            .unwrap_or_default();
                        let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).into_owned();
                        keep.lock().expect("lock").push((signature, body));
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                });
            }
        });
        Receiver { url, received }
    }

    fn bodies(&self) -> Vec<(String, Value)> {
        let received = self.received.lock().expect("lock").clone();
        received.into_iter().map(|(sig, body)| (sig, serde_json::from_str(&body).expect("a JSON body"))).collect()
    }
}

async fn update_split_webhook_and_wait_for_steps_run_against_a_local_receiver(db: TestDb) {
    let receiver = Receiver::start().await;
    let secret = b"journey-webhook-secret".to_vec();
    let endpoint =
        kanta_engine::WebhookEndpoint { name: "crm".into(), url: receiver.url.clone(), secret: secret.clone() };
    let h = harness_with(db, None, guardrails("off", "off"), "2026-02-02T12:00:00Z", vec![endpoint]);
    h.apply(
        r#"
name: steps
trigger: { event: signup }
steps:
  - update: { set: { attributes.plan: gold }, tag: vip }
  - split:
      - { weight: 50, steps: [ { webhook: { endpoint: crm, body: { arm: a } } } ] }
      - { weight: 50, steps: [ { webhook: { endpoint: crm, body: { arm: b } } } ] }
  - wait_for: { event: purchase, timeout: 1d, on_timeout: exit }
  - webhook: { endpoint: crm, body: { arm: bought } }
"#,
    )
    .await;
    let who: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    for id in &who {
        h.customer(id, "UTC").await;
        h.enter("steps", id).await;
    }
    h.tick().await;
    // update: the attribute and the tag.
    let c00 = h.db.store.customer("c00", 0).await.expect("read").expect("c00");
    let attributes = c00.profile.attributes.clone().unwrap_or_default();
    assert_eq!((&attributes["plan"], &attributes["tags"]), (&json!("gold"), &json!(["vip"])), "{attributes}");
    // split: every customer took one arm, both arms were taken, and a customer's arm is the
    // stable choice of their id; each call is signed with the endpoint's secret.
    let calls = receiver.bodies();
    assert_eq!(calls.len(), 20);
    let now = h.now().micros() / 1_000_000;
    let mut arms = std::collections::BTreeMap::new();
    for (signature, body) in &calls {
        assert_eq!((&body["type"], &body["journey"]), (&json!("journey.webhook"), &json!("steps")));
        let arm = body["data"]["arm"].as_str().expect("an arm").to_owned();
        let customer = body["customer"].as_str().expect("the customer").to_owned();
        arms.entry(arm).or_insert_with(Vec::new).push(customer);
        assert!(signature.starts_with("t="), "signed: {signature}");
    }
    let received = receiver.received.lock().expect("lock").clone();
    for (signature, body) in &received {
        kanta_webhooks::sign::verify(&secret, signature, body.as_bytes(), now, 300).expect("a valid signature");
    }
    assert_eq!(arms.len(), 2, "{arms:?}");
    assert_eq!(arms.values().map(Vec::len).sum::<usize>(), 20);
    // wait_for: half of them buy; they go on at once, the others exit when the day is over.
    for id in who.iter().take(10) {
        h.engine.on_event(id, "purchase", &json!({}), false, h.now()).await.expect("on_event");
    }
    h.tick().await;
    assert_eq!(receiver.bodies().iter().filter(|(_, b)| b["data"]["arm"] == "bought").count(), 10);
    assert_eq!(h.run("c00").await.run.status, RunStatus::Completed);
    assert_eq!(h.run("c19").await.run.status, RunStatus::Active);
    h.later(DAY);
    h.tick().await;
    let late = h.run("c19").await;
    assert_eq!(late.run.status, RunStatus::Exited);
    assert_eq!(receiver.bodies().len(), 30, "no call for the ones who timed out");
}

async fn a_url_webhook_step_is_signed_with_the_journeys_secret_or_not_sent(db: TestDb) {
    let receiver = Receiver::start().await;
    let journey = format!(
        "name: hook\ntrigger: {{ event: signup }}\nsteps:\n  - webhook: {{ url: \"{}\", body: {{ hello: \"{{{{ customer.id }}}}\" }} }}\n",
        receiver.url
    );
    // Without [journeys] webhook_secret: failed, saying why, and nothing reached the receiver.
    let unsigned = harness_with(db, None, guardrails("off", "off"), "2026-02-02T12:00:00Z", vec![]);
    unsigned.apply(&journey).await;
    unsigned.customer("ann", "UTC").await;
    unsigned.enter("hook", "ann").await;
    unsigned.tick().await;
    let ann = unsigned.run("ann").await;
    assert_eq!(statuses(&ann), [("0".to_owned(), MessageStatus::Failed)]);
    let why = ann.messages[0].last_response.clone().unwrap_or_default();
    assert!(why.contains("webhook_secret"), "{why}");
    assert!(receiver.bodies().is_empty(), "an unsigned call was made");
    // With it: signed with that secret, verifiable by the receiver.
    let secret = b"journeys-wide-secret-0123".to_vec();
    let mut config = EngineConfig::new("engine-test-signed");
    config.guardrails = guardrails("off", "off");
    config.webhook_secret = Some(secret.clone());
    let signed = Engine::new(unsigned.db.store.clone(), config, unsigned.clock.clone()).expect("engine");
    unsigned.customer("bob", "UTC").await;
    unsigned.enter("hook", "bob").await;
    signed.advance(unsigned.now()).await.expect("advance");
    assert_eq!(signed.deliver(unsigned.now()).await.expect("deliver"), 1);
    let calls = receiver.received.lock().expect("lock").clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (signature, body) = &calls[0];
    let now = unsigned.now().micros() / 1_000_000;
    kanta_webhooks::sign::verify(&secret, signature, body.as_bytes(), now, 300).expect("signed with the secret");
    let body: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!((&body["customer"], &body["data"]["hello"]), (&json!("bob"), &json!("bob")), "{body}");
    assert_eq!(statuses(&unsigned.run("bob").await), [("0".to_owned(), MessageStatus::Sent)]);
}

async fn a_paused_journey_admits_nobody_and_a_late_run_skips_its_sends(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-02-02T12:00:00Z");
    h.apply(
        r#"
name: late
trigger: { event: signup }
skip_if_late_by: 1h
steps:
  - wait: 1d
  - send_email: { subject: "On time", html: "<p>hi</p>" }
"#,
    )
    .await;
    h.customer("ann", "UTC").await;
    h.customer("bob", "UTC").await;
    h.enter("late", "ann").await;
    h.enter("late", "bob").await;
    // Paused: nobody enters, and due runs are not moved.
    assert!(h.db.store.set_journey_paused("late", true, h.now()).await.expect("pause"));
    h.customer("cy", "UTC").await;
    let refused = h.engine.enter("late", "cy", "", &json!({}), h.now()).await;
    assert!(matches!(refused, Err(kanta_engine::EngineError::Paused(_))), "{refused:?}");
    h.later(DAY);
    h.tick().await;
    assert_eq!(h.run("ann").await.run.status, RunStatus::Active, "paused runs wait");
    // Resumed within the hour: sent, late but within skip_if_late_by.
    assert!(h.db.store.set_journey_paused("late", false, h.now()).await.expect("resume"));
    h.later(30 * 60);
    h.engine.advance(h.now()).await.expect("advance");
    h.tick().await;
    assert_eq!(subjects(&smtpd), ["On time", "On time"]);
    // A run due longer ago than skip_if_late_by records its send as skipped.
    h.customer("dan", "UTC").await;
    h.enter("late", "dan").await;
    h.later(DAY + 2 * 3600);
    h.tick().await;
    let dan = h.run("dan").await;
    assert_eq!(dan.run.status, RunStatus::Completed);
    let outcomes: Vec<&str> = dan.steps.iter().map(|s| s.outcome.as_str()).collect();
    assert!(outcomes.contains(&"skipped_late"), "{outcomes:?}");
    assert_eq!(smtpd.messages().len(), 2);
}

/// A promotion with a holdout of half the customers and an order goal that ends the run.
const PROMO: &str = r#"
name: promo
trigger: { event: signup }
holdout: 50%
goal: { event: order.created, within: 30d, exit: true }
steps:
  - send_email: { subject: "Hi {{ customer.name }}", html: "<p>Hi</p>" }
  - wait: 7d
  - send_email: { subject: "Again", html: "<p>Again</p>" }
"#;

/// The arm the hash gives customer `id` in `journey` with `share` held out.
fn arm_of(id: &str, journey: &str, share: &str) -> kanta_uplift::arm::Arm {
    let customer = kanta_domain::contact::CustomerId::parse(id).expect("an id");
    kanta_uplift::arm::assign(&customer, journey, kanta_uplift::arm::Holdout::parse(share).expect("a share"))
}

async fn holdout_customers_get_no_step_and_both_arms_are_followed_for_the_goal(db: TestDb) {
    use kanta_store::journey::RunArm;
    use kanta_uplift::arm::Arm;
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-03-02T12:00:00Z");
    h.apply(PROMO).await;
    let ids: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
    for id in &ids {
        h.customer(id, "UTC").await;
    }
    for (i, id) in ids.iter().enumerate() {
        h.event(id, &format!("s{i}"), "signup", json!({})).await;
    }
    let treated: Vec<&String> = ids.iter().filter(|id| arm_of(id, "promo", "50%") == Arm::Treatment).collect();
    assert!((12..=28).contains(&treated.len()), "an even split of 40: {}", treated.len());
    // Runs started count only the treated; the held-out are recorded all the same.
    assert_eq!(h.feed().await, (40, treated.len()));
    h.tick().await;
    for id in &ids {
        let run = h.run(id).await;
        let expected = if treated.contains(&id) {
            (RunArm::Treatment, RunStatus::Active, 1)
        } else {
            (RunArm::Control, RunStatus::HeldOut, 0)
        };
        assert_eq!((run.run.arm, run.run.status, run.messages.len()), expected, "{id}");
    }
    assert_eq!(smtpd.messages().len(), treated.len());
    // A day later the first ten order, in either arm: each run converts, and a treated run
    // ends on its goal.
    h.later(DAY);
    for (i, id) in ids.iter().take(10).enumerate() {
        h.order(id, &format!("o{i}"), &h.now().to_rfc3339()).await;
    }
    // Two cancelled orders: never purchases, so no conversion and no exit.
    for id in &ids[10..12] {
        let record = json!([{"id": format!("x-{id}"), "customer_id": id, "time": h.now().to_rfc3339(), "amount": "20",
            "currency": "EUR", "status": "cancelled"}]);
        h.db.store.write_orders(&checked::<Order>(&record), h.now()).await.expect("write order");
    }
    assert_eq!(h.feed().await, (12, 0));
    for id in &ids[10..12] {
        let expected = if treated.contains(&id) { RunStatus::Active } else { RunStatus::HeldOut };
        assert_eq!(h.run(id).await.run.status, expected, "{id}");
    }
    for id in ids.iter().take(10) {
        let run = h.run(id).await;
        let expected = if treated.contains(&id) { RunStatus::Exited } else { RunStatus::HeldOut };
        assert_eq!(run.run.status, expected, "{id}");
        if treated.contains(&id) {
            assert_eq!(run.run.exit_reason.as_deref(), Some("goal reached"));
        }
    }
    // The second email goes only to the treated who did not order.
    h.later(7 * DAY);
    h.tick().await;
    let again = smtpd.messages().iter().filter(|m| header(m, "Subject").as_deref() == Some("Again")).count();
    let treated_ordering = treated.iter().filter(|id| ids[..10].contains(id)).count();
    assert_eq!(again, treated.len() - treated_ordering);
    // Thirty days after entry every window has passed: the report compares the arms.
    h.later(23 * DAY);
    let report = kanta_engine::uplift::uplift_report(&*h.db.store, "promo", h.now(), Default::default())
        .await
        .expect("the report")
        .expect("the journey");
    let r = &report.report;
    let (n_t, n_c) = (treated.len() as u64, 40 - treated.len() as u64);
    let (conv_t, conv_c) = (treated_ordering as u64, 10 - treated_ordering as u64);
    assert_eq!((r.treatment.customers, r.treatment.matured, r.treatment.conversions), (n_t, n_t, conv_t));
    assert_eq!((r.control.customers, r.control.matured, r.control.conversions), (n_c, n_c, conv_c));
    assert!((r.treatment.revenue_per_customer - 20.0 * conv_t as f64 / n_t as f64).abs() < 1e-12);
    assert_eq!(r.control.messages, 0);
    let c = r.conversion.as_ref().expect("both arms matured");
    assert!((c.difference.difference - (conv_t as f64 / n_t as f64 - conv_c as f64 / n_c as f64)).abs() < 1e-12);
    // Ten conversions in all: far too few for a verdict.
    assert_eq!(r.verdict(), kanta_uplift::power::Verdict::TooEarly);
    assert_eq!(report.goal.as_deref(), Some("event order.created within 30d"));
    assert_eq!(report.entries, [(RunArm::Control, n_c as i64), (RunArm::Treatment, n_t as i64)]);
}

async fn the_global_holdout_keeps_its_share_out_of_marketing_journeys_only(db: TestDb) {
    use kanta_store::journey::RunArm;
    use kanta_uplift::arm::{Arm, Holdout, assign_global};
    let smtpd = Smtpd::cli(&[]);
    let clock = Arc::new(ManualClock::new(t("2026-03-02T12:00:00Z")));
    let mut config = EngineConfig::new("engine-test");
    config.guardrails = guardrails("off", "off");
    config.email = Some(email_config(smtpd.port));
    config.global_holdout = Holdout::parse("30%").expect("a share");
    let engine = Engine::new(db.store.clone(), config, clock.clone()).expect("engine");
    let h = Harness { db, clock, engine };
    h.apply("name: news\ntrigger: { event: signup }\nsteps: [{ send_email: { subject: News, html: <p>n</p> } }]\n")
        .await;
    h.apply(
        "name: receipt\ntrigger: { event: signup }\n\
         steps: [{ send_email: { subject: Receipt, html: <p>r</p>, transactional: true } }]\n",
    )
    .await;
    let ids: Vec<String> = (0..30).map(|i| format!("g{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        h.customer(id, "UTC").await;
        h.event(id, &format!("s{i}"), "signup", json!({})).await;
    }
    h.feed().await;
    h.tick().await;
    let held: Vec<&String> = ids
        .iter()
        .filter(|id| {
            let customer = kanta_domain::contact::CustomerId::parse(id.as_str()).expect("an id");
            assign_global(&customer, Holdout::parse("30%").expect("a share")) == Arm::Control
        })
        .collect();
    assert!(!held.is_empty() && held.len() < 20, "{}", held.len());
    for id in &ids {
        let mut runs = h.runs(id).await;
        runs.sort_by(|a, b| a.run.journey.cmp(&b.run.journey));
        let arms: Vec<(&str, RunArm)> = runs.iter().map(|r| (r.run.journey.as_str(), r.run.arm)).collect();
        let news = if held.contains(&id) { RunArm::GlobalControl } else { RunArm::Treatment };
        // The receipt is transactional: the global holdout does not apply.
        assert_eq!(arms, [("news", news), ("receipt", RunArm::Treatment)], "{id}");
    }
    let news = smtpd.messages().iter().filter(|m| header(m, "Subject").as_deref() == Some("News")).count();
    assert_eq!(news, ids.len() - held.len());
}

async fn the_report_compares_a_splits_arms_and_counts_runs_per_step(db: TestDb) {
    let smtpd = Smtpd::cli(&[]);
    let h = harness(db, Some(&smtpd), guardrails("off", "off"), "2026-03-02T12:00:00Z");
    h.apply(
        "name: ab\ntrigger: { event: signup }\ngoal: { event: order.created, within: 30d }\nsteps:\n  - split:\n\
         \x20     - { weight: 1, steps: [] }\n\
         \x20     - { weight: 1, steps: [{ send_email: { subject: B, html: <p>B</p> } }] }\n",
    )
    .await;
    let ids: Vec<String> = (0..30).map(|i| format!("a{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        h.customer(id, "UTC").await;
        h.event(id, &format!("s{i}"), "signup", json!({})).await;
    }
    h.feed().await;
    h.tick().await;
    let arm = |id: &str| kanta_journey::split::choose(id, "ab", "0", &[1, 1]).expect("an arm");
    let b: Vec<&String> = ids.iter().filter(|id| arm(id) == 1).collect();
    assert!(!b.is_empty() && b.len() < 30);
    assert_eq!(smtpd.messages().len(), b.len());
    // The first five order within the window, whatever their arm.
    h.later(DAY);
    for (i, id) in ids.iter().take(5).enumerate() {
        h.order(id, &format!("o{i}"), &h.now().to_rfc3339()).await;
    }
    h.feed().await;
    h.later(30 * DAY);
    let report = kanta_engine::uplift::uplift_report(&*h.db.store, "ab", h.now(), Default::default())
        .await
        .expect("the report")
        .expect("the journey");
    // No holdout: everyone is treated, and the split's arms are the comparison.
    assert_eq!((report.report.treatment.customers, report.report.control.customers), (30, 0));
    let [split] = &report.splits[..] else { panic!("one split comparison: {:?}", report.splits) };
    assert_eq!((split.step.as_str(), split.arm, split.baseline), ("0", 1, 0));
    let converted_b = ids.iter().take(5).filter(|id| arm(id) == 1).count() as u64;
    assert_eq!((split.report.treatment.customers, split.report.treatment.conversions), (b.len() as u64, converted_b));
    assert_eq!(
        (split.report.control.customers, split.report.control.conversions),
        (30 - b.len() as u64, 5 - converted_b)
    );
    let funnel: Vec<(&str, &str, i64)> =
        report.funnel.iter().map(|r| (r.step.as_str(), r.outcome.as_str(), r.runs)).collect();
    assert_eq!(funnel, [("0", "split", 30), ("0.split.1.0", "queued", b.len() as i64)]);
}
