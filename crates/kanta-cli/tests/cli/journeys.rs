//! `kanta journeys validate`: the example journeys pass, and a broken journey and template get
//! every problem at its line and column.

use std::path::Path;

use crate::support::kanta_in;

/// The repository's root, where the examples are `journeys/*.yaml`.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_example_journeys_validate() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("journeys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("journeys/{name}"))
        .collect();
    files.sort();
    let mut args = vec!["journeys", "validate"];
    args.extend(files.iter().map(String::as_str));
    let run = kanta_in(root(), &args, &[]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert_eq!(
        run.stdout,
        "journeys/abandoned-cart.yaml: ok (2 steps)\n\
         journeys/birthday.yaml: ok (2 steps)\n\
         journeys/feedback.yaml: ok (3 steps)\n\
         journeys/next-purchase.yaml: ok (2 steps)\n\
         journeys/re-engagement.yaml: ok (3 steps)\n\
         journeys/vip-thanks.yaml: ok (4 steps)\n\
         journeys/welcome.yaml: ok (5 steps)\n\
         journeys/win-back.yaml: ok (5 steps)\n"
    );
}

const BROKEN: &str = r#"name: broken
trigger:
  event: cart.updated
  first_order: true
steps:
  - wait: 3 days
  - wait_until: { local_time: "25:00", weekdays: [mon, tues] }
  - branch:
      if: "orders >= 2 and clv > 100"
      then: exit
  - send_email:
      subject: "Hello {{ custmer.name }}"
      template: goood
  - exit
  - wait: 1d
"#;

#[test]
fn a_broken_journey_gets_every_problem_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/good.html"), "<p>Hi {{ customer.name }}</p>\n").unwrap();
    std::fs::write(dir.path().join("templates/typo.html"), "<p>Hi</p>\n<p>{{ custmer.name }}</p>\n").unwrap();
    std::fs::write(dir.path().join("templates/notes.md"), "{{ not checked").unwrap();
    std::fs::write(dir.path().join("broken.yaml"), BROKEN).unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        "name: ok\ntrigger: { event: signup }\nsteps:\n  - send_email: { subject: Hi, template: good }\n",
    )
    .unwrap();
    let run = kanta_in(dir.path(), &["journeys", "validate", "ok.yaml", "broken.yaml", "missing.yaml"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "ok.yaml: ok (1 step)\n");
    let fields = "email, phone, name, timezone, locale, orders, revenue, average_order_value, \
        days_since_last_order, days_since_first_order, consent.email, consent.sms, stage, days_in_stage, \
        rfm_segment, r_score, f_score, m_score, p_alive, expected_purchases_30d, expected_purchases_90d, \
        expected_purchases_365d, p_purchase_30d, expected_spend, clv_12m, days_to_next_purchase, value_tier, \
        main_category, next_category, attributes.NAME";
    let names = "customer, scores, orders, next_category, unsubscribe_url, content, subject";
    let expected = [
        format!("templates/typo.html:2: unknown name `custmer`: a message can use {names}"),
        "broken.yaml:4:3: trigger.first_order: `first_order` applies only to `event: order.created`, not to `cart.updated`".into(),
        "broken.yaml:6:11: steps[0].wait: `3 days` is not a duration: the unit is not one of `s`, `m`, `h`, `d`, `w`; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`".into(),
        "broken.yaml:7:31: steps[1].wait_until.local_time: `25:00` is not a local time: the hour is not 00 to 23; expected `HH:MM` on the 24-hour clock, such as `10:00` or `18:30`".into(),
        "broken.yaml:7:56: steps[1].wait_until.weekdays[1]: `tues` is not a weekday: expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun` or a range such as `mon-fri`; did you mean `tue`?".into(),
        // The expression's column 17 is the file's column 28 (after `if: "`).
        format!("broken.yaml:9:28: steps[2].branch.if: column 17: unknown field `clv`; fields are {fields}"),
        format!("broken.yaml:12:16: steps[3].send_email.subject: this template cannot be rendered: line 1: unknown name `custmer`: a message can use {names}"),
        "broken.yaml:13:17: steps[3].send_email.template: there is no template `goood` (templates/goood.html); did you mean `good`?".into(),
        "broken.yaml:15:5: steps[5]: this step is never reached: `steps[4]` always ends the run before it".into(),
        "missing.yaml: cannot read: No such file or directory (os error 2)".into(),
        "error: 3 files with problems".into(),
    ];
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines, expected);
}

#[test]
fn validate_needs_at_least_one_file() {
    let run = kanta_in(root(), &["journeys", "validate"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("<FILE>..."), "{}", run.stderr);
}

const WELCOME: &str = "name: welcome\ntrigger:\n  event: order.created\nsteps:\n  - wait: 1d\n  - exit\n";

/// `kanta journeys …` against a fresh SQLite store in `dir`.
fn journeys(dir: &Path, args: &[&str]) -> crate::support::Run {
    let db = format!("sqlite://{}", dir.join("k.db").display());
    let mut all = vec!["journeys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", &db]);
    kanta_in(dir, &all, &[])
}

#[test]
fn apply_versions_changed_documents_and_list_show_pause_and_resume_read_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("welcome.yaml");
    std::fs::write(&file, WELCOME).unwrap();
    let applied = journeys(dir.path(), &["apply", "welcome.yaml"]);
    assert_eq!((applied.code, applied.stdout.as_str(), applied.stderr.as_str()), (0, "welcome: version 1 (new)\n", ""));
    let again = journeys(dir.path(), &["apply", "welcome.yaml"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, "welcome: version 1 (unchanged)\n"));
    // A comment or reordered keys say the same thing: same digest, same version.
    std::fs::write(&file, format!("# the welcome series\n{WELCOME}")).unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "welcome.yaml"]).stdout, "welcome: version 1 (unchanged)\n");
    std::fs::write(&file, WELCOME.replace("1d", "2d")).unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "welcome.yaml"]).stdout, "welcome: version 2 (new)\n");

    let list = journeys(dir.path(), &["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    let fields: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(fields[..4], ["welcome", "2", "no", "0"]);

    let paused = journeys(dir.path(), &["pause", "welcome"]);
    assert_eq!((paused.code, paused.stdout.as_str()), (0, "welcome: paused\n"));
    let list = journeys(dir.path(), &["list"]);
    assert_eq!(list.stdout.lines().nth(1).unwrap().split_whitespace().nth(2), Some("yes"));
    let show = journeys(dir.path(), &["show", "welcome"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.starts_with("welcome: version 2 (paused), 0 active runs\n"), "{}", show.stdout);
    let versions: Vec<&str> =
        show.stdout.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<i64>().is_ok()).collect();
    assert_eq!(versions, ["1", "2"], "{}", show.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&journeys(dir.path(), &["show", "welcome", "--json"]).stdout).unwrap();
    assert_eq!(
        (json["name"].as_str(), json["version"].as_i64(), json["paused"].as_bool()),
        (Some("welcome"), Some(2), Some(true))
    );
    assert_eq!(json["versions"].as_array().map(Vec::len), Some(2));
    let resumed = journeys(dir.path(), &["resume", "welcome"]);
    assert_eq!((resumed.code, resumed.stdout.as_str()), (0, "welcome: resumed\n"));

    let missing = journeys(dir.path(), &["pause", "nope"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no journey `nope` in the store"), "{}", missing.stderr);
    assert_ne!(journeys(dir.path(), &["show", "nope"]).code, 0);
}

#[test]
fn a_file_with_problems_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("welcome.yaml"), WELCOME).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "name: broken\ntrigger:\n  event: x\nsteps:\n  - wait: soon\n")
        .unwrap();
    let run = journeys(dir.path(), &["apply", "welcome.yaml", "broken.yaml"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    assert!(run.stderr.contains("broken.yaml:5:"), "{}", run.stderr);
    assert!(run.stderr.contains("1 file with problems; nothing was applied"), "{}", run.stderr);
    let list = journeys(dir.path(), &["list"]);
    assert_eq!(list.stdout.lines().count(), 1, "only the header: {}", list.stdout);
}

#[test]
fn doubts_lists_messages_in_doubt_and_resend_queues_one_explicitly() {
    use kanta_store::journey::{Channel, Entered, EntryRules, NewMessage, NewRun, Reentry};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("welcome.yaml"), WELCOME).unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "welcome.yaml"]).code, 0);
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let now = kanta_domain::Timestamp::from_micros(1_700_000_000_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = runtime.block_on(async {
        let store = kanta_store::open(&db).await.unwrap();
        let batch = kanta_store::record::parse_batch::<kanta_domain::record::Customer>(
            br#"[{"id": "c-1", "email": "ann@example.org"}]"#,
            kanta_domain::TimeRange::ALL,
        )
        .unwrap();
        let customers: Vec<_> = batch.valid.into_iter().map(|(_, c)| c).collect();
        store.write_customers(&customers, now).await.unwrap();
        let customer = store.customer_key("c-1").await.unwrap().unwrap();
        let context = serde_json::json!({});
        let run = NewRun {
            journey: "welcome",
            version: 1,
            customer,
            key: "",
            step: "0",
            due_at: Some(now),
            wait: None,
            context: &context,
        };
        let rules = EntryRules { reentry: Reentry::Once, max_active: None, once_per_key: false };
        let Entered::Started(run) = store.start_run(&run, &rules, now).await.unwrap() else { panic!("not started") };
        let message = NewMessage {
            step: "0".into(),
            occurrence: 1,
            channel: Channel::Email,
            transactional: false,
            recipient: "ann@example.org".into(),
            payload: "{}".into(),
            message_id: "<m-1@kanta.test>".into(),
            not_before: now,
            skip: None,
        };
        store.enqueue_message(run, &message, now).await.unwrap().unwrap();
        let claimed = store.claim_messages("w", now, std::time::Duration::from_secs(60), 10).await.unwrap();
        let later = kanta_domain::Timestamp::from_micros(now.micros() + 61_000_000);
        assert_eq!(store.mark_in_doubt(later).await.unwrap(), 1);
        claimed[0].id.0
    });
    let doubts = journeys(dir.path(), &["doubts"]);
    assert_eq!(doubts.code, 0, "{}", doubts.stderr);
    let row: Vec<&str> = doubts.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [id.to_string().as_str(), "welcome", "v1", "0", "c-1", "ann@example.org", "2023-11-14T22:13:20Z"],
        "{}",
        doubts.stdout
    );
    let resend = journeys(dir.path(), &["resend", &id.to_string()]);
    assert_eq!(resend.code, 0, "{}", resend.stderr);
    assert_eq!(
        resend.stdout,
        format!("message {id} (welcome v1, step 0, to ann@example.org) queued to be sent again\n")
    );
    assert_eq!(journeys(dir.path(), &["doubts"]).stdout.lines().count(), 1);
    let again = journeys(dir.path(), &["resend", &id.to_string()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains(&format!("message {id} is not in doubt")), "{}", again.stderr);
}

#[test]
fn triggers_enters_the_days_birthdays_once_and_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let greet = "name: greet\ntrigger:\n  date: birthday\nentry:\n  reentry: always\nsteps:\n  - wait: 1d\n";
    std::fs::write(dir.path().join("greet.yaml"), greet).unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "greet.yaml"]).code, 0);
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = kanta_store::open(&db).await.unwrap();
        let batch = kanta_store::record::parse_batch::<kanta_domain::record::Customer>(
            br#"[{"id": "a", "birthday": "1990-12-04"}, {"id": "b", "birthday": "1980-12-04"},
                 {"id": "c", "birthday": "1980-12-05"}]"#,
            kanta_domain::TimeRange::ALL,
        )
        .unwrap();
        let customers: Vec<_> = batch.valid.into_iter().map(|(_, c)| c).collect();
        store.write_customers(&customers, kanta_domain::Timestamp::from_micros(0)).await.unwrap();
    });
    let header = "journey                   entered  already at limit too late  dropped collapsed  paused\n";
    // The first evaluation starts the journey's cursor.
    let first = journeys(dir.path(), &["triggers", "--now", "2026-12-03T12:00:00Z"]);
    assert_eq!((first.code, first.stdout.as_str(), first.stderr.as_str()), (0, header, ""));
    let midnight = journeys(dir.path(), &["triggers", "--now", "2026-12-04T00:00:00Z"]);
    assert_eq!(midnight.code, 0, "{}", midnight.stderr);
    let row: Vec<&str> = midnight.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["greet", "2", "0", "0", "0", "0", "0", "no"], "{}", midnight.stdout);
    // The same window again: nothing to evaluate.
    let again = journeys(dir.path(), &["triggers", "--now", "2026-12-04T00:00:00Z"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, header));
    let bad = journeys(dir.path(), &["triggers", "--now", "tomorrow"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--now `tomorrow` is not an RFC 3339 time"), "{}", bad.stderr);
}
