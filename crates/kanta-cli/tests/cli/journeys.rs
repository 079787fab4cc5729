//! `kanta journeys`: the example journeys validate, a broken journey and template get every
//! problem at its line and column; apply versions documents with their templates embedded;
//! preview renders a step for a customer of the store.

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
        "broken.yaml:13:17: steps[3].send_email.template: there is no template `goood` (templates/goood.html, or `templates.goood` embedded); did you mean `good`?".into(),
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
            arm: kanta_store::journey::RunArm::Treatment,
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
        // Its send started; the worker died.
        assert!(store.start_message(claimed[0].id, &claimed[0].lease, now).await.unwrap());
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

/// Three customers' orders: Ann bought coffee twice; Bo and Cy went on from coffee to cups,
/// so Ann's `next_category` is `cups`.
const PREVIEW_ORDERS: &str = "\
order_id,customer_id,order_date,product,category,amount
A1,c-1,2025-01-05T10:00:00Z,beans,coffee,10.00
A2,c-1,2025-03-01T09:00:00Z,beans,coffee,10.00
B1,c-2,2025-01-07T10:00:00Z,beans,coffee,12.00
B2,c-2,2025-02-07T10:00:00Z,cup,cups,7.00
C1,c-3,2025-01-09T10:00:00Z,beans,coffee,9.00
C2,c-3,2025-04-09T10:00:00Z,saucer,cups,4.00
";

const EMAIL_SETTINGS: &str = "[email]\nsmtp_url = \"smtp://127.0.0.1:2525\"\nfrom = \"Shop <hello@shop.example>\"\n\
public_url = \"https://shop.example\"\nunsubscribe_secret = \"preview-secret-0123456789\"\n";

/// A store in `dir` with the example welcome journey applied (templates embedded from
/// `journeys/templates/`), Ann (`c-1`, with consent) and the orders of [`PREVIEW_ORDERS`],
/// scored.
fn preview_store(dir: &Path) {
    let welcome = root().join("journeys/welcome.yaml");
    let applied = journeys(dir, &["apply", welcome.to_str().expect("a UTF-8 path")]);
    assert_eq!((applied.code, applied.stdout.as_str()), (0, "welcome: version 1 (new)\n"), "{}", applied.stderr);
    std::fs::write(dir.join("customers.csv"), "id,email,name,consent_email\nc-1,ann@example.org,Ann,granted\n")
        .expect("write customers");
    std::fs::write(dir.join("orders.csv"), PREVIEW_ORDERS).expect("write orders");
    let db = format!("sqlite://{}", dir.join("k.db").display());
    for args in [
        vec!["import", "customers", "customers.csv", "--db", &db],
        vec!["import", "orders", "orders.csv", "--currency", "EUR", "--db", &db],
        vec!["score", "--db", &db],
    ] {
        let run = kanta_in(dir, &args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn journeys_preview_renders_a_step_with_the_customers_data_and_the_headers_a_send_carries() {
    let dir = tempfile::tempdir().unwrap();
    preview_store(dir.path());
    // Without [email]: the parts and the addressing, and a note on what is missing.
    let plain = journeys(dir.path(), &["preview", "welcome", "4", "--customer", "c-1"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let (head, parts) = plain.stdout.split_once("\n\n").unwrap();
    assert_eq!(
        head,
        "# welcome version 1, step 4 (marketing), customer c-1\nTo: Ann <ann@example.org>\nSubject: Something for your next order"
    );
    // The text part is templates/second-order.txt with Ann's name and next category.
    let (text, html) = parts.strip_prefix("--- text ---\n").unwrap().split_once("--- html ---\n").unwrap();
    assert!(text.starts_with("Hello Ann,\n\nWe hope your first order arrived safely.\n"), "{text}");
    assert!(text.contains("Customers who liked it often go on to our cups."), "{text}");
    // The HTML part is second-order.html in layout.html.
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("<title>Something for your next order</title>"), "{html}");
    assert!(html.contains("go on to our <strong>cups</strong>."), "{html}");
    assert!(plain.stderr.contains("no [email] settings"), "{}", plain.stderr);
    // One part alone.
    let only_text = journeys(dir.path(), &["preview", "welcome", "4", "--customer", "c-1", "--text"]);
    assert_eq!(only_text.stdout, text);
    let only_html = journeys(dir.path(), &["preview", "welcome", "0", "--customer", "c-1", "--html"]);
    assert!(only_html.stdout.contains("<p>Hello Ann, thanks for shopping with us.</p>"), "{}", only_html.stdout);

    // With [email] (./kanta.toml): every header of the real message, List-Unsubscribe included.
    std::fs::write(dir.path().join("kanta.toml"), EMAIL_SETTINGS).unwrap();
    let full = journeys(dir.path(), &["preview", "welcome", "4", "--customer", "c-1"]);
    assert_eq!((full.code, full.stderr.as_str()), (0, ""));
    let head = full.stdout.split_once("\n\n").unwrap().0;
    let header = |name: &str| {
        head.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("{name}: {head}"))
    };
    assert_eq!(header("From"), "Shop <hello@shop.example>");
    assert_eq!(header("To"), "Ann <ann@example.org>");
    assert_eq!(header("Subject"), "Something for your next order");
    assert!(header("List-Unsubscribe").starts_with("<https://shop.example/unsubscribe/"), "{head}");
    assert_eq!(header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    // As a real send's: journey, version, the internal customer id, the run (none: 0), step, occurrence.
    assert_eq!(header("Message-ID"), "<welcome.1.1.0.4.1@shop.example>");
    assert!(!head.contains("Content-Type"), "{head}");
    let eml = dir.path().join("m.eml");
    let written =
        journeys(dir.path(), &["preview", "welcome", "4", "--customer", "c-1", "--eml", eml.to_str().unwrap()]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    let message = std::fs::read_to_string(&eml).unwrap();
    assert!(message.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{message}");
    assert!(message.contains("Content-Type: multipart/alternative"), "{message}");
}

#[test]
fn journeys_preview_names_what_is_unknown_and_lists_the_send_email_steps() {
    let dir = tempfile::tempdir().unwrap();
    preview_store(dir.path());
    for (args, expected) in [
        (vec!["nope", "0", "--customer", "c-1"], "no journey `nope` in the store (see `kanta journeys list`)"),
        (
            vec!["welcome", "1", "--customer", "c-1"],
            "journey `welcome` has no send_email step `1`; its send_email steps: 0, 4",
        ),
        (
            vec!["welcome", "9", "--customer", "c-1"],
            "journey `welcome` has no send_email step `9`; its send_email steps: 0, 4",
        ),
        (vec!["welcome", "0", "--customer", "c-9"], "no customer `c-9` in the store"),
    ] {
        let mut all = vec!["preview"];
        all.extend(args);
        let run = journeys(dir.path(), &all);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{all:?}: {}", run.stderr);
        assert_eq!(run.stderr, format!("error: {expected}\n"), "{all:?}");
    }
    let eml = journeys(dir.path(), &["preview", "welcome", "0", "--customer", "c-1", "--eml", "m.eml"]);
    assert_eq!(eml.code, 2);
    assert!(eml.stderr.contains("--eml needs the [email] settings"), "{}", eml.stderr);
}

#[test]
fn applying_again_after_a_template_changed_makes_a_new_version_that_carries_the_new_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let yaml = "name: note\ntrigger: { event: signup }\nsteps:\n  - send_email: { subject: Note, template: note }\n";
    std::fs::write(dir.path().join("note.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join("templates/note.html"), "<p>One</p>").unwrap();
    std::fs::write(dir.path().join("templates/other.html"), "<p>Not used</p>").unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "note.yaml"]).stdout, "note: version 1 (new)\n");
    // A file the journey does not use changes nothing.
    std::fs::write(dir.path().join("templates/other.html"), "<p>Still not used</p>").unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "note.yaml"]).stdout, "note: version 1 (unchanged)\n");
    std::fs::write(dir.path().join("templates/note.html"), "<p>Two</p>").unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "note.yaml"]).stdout, "note: version 2 (new)\n");
    std::fs::write(dir.path().join("templates/layout.html"), "<main>{{ content }}</main>").unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "note.yaml"]).stdout, "note: version 3 (new)\n");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let definitions: Vec<serde_json::Value> = runtime.block_on(async {
        let store = kanta_store::open(&db).await.unwrap();
        let mut out = Vec::new();
        for version in 1..=3 {
            let stored = store.journey_version("note", version).await.unwrap().unwrap();
            out.push(serde_json::from_str(&stored.definition).unwrap());
        }
        out
    });
    assert_eq!(definitions[0]["templates"], serde_json::json!({"note": {"html": "<p>One</p>"}}));
    assert_eq!(definitions[1]["templates"], serde_json::json!({"note": {"html": "<p>Two</p>"}}));
    assert_eq!(definitions[1].get("layout"), None);
    assert_eq!(definitions[2]["layout"], serde_json::json!({"html": "<main>{{ content }}</main>"}));
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
    let header = "journey                   entered held out  already at limit too late  dropped collapsed  paused\n";
    // The first evaluation starts the journey's cursor.
    let first = journeys(dir.path(), &["triggers", "--now", "2026-12-03T12:00:00Z"]);
    assert_eq!((first.code, first.stdout.as_str(), first.stderr.as_str()), (0, header, ""));
    let midnight = journeys(dir.path(), &["triggers", "--now", "2026-12-04T00:00:00Z"]);
    assert_eq!(midnight.code, 0, "{}", midnight.stderr);
    let row: Vec<&str> = midnight.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["greet", "2", "0", "0", "0", "0", "0", "0", "no"], "{}", midnight.stdout);
    // The same window again: nothing to evaluate.
    let again = journeys(dir.path(), &["triggers", "--now", "2026-12-04T00:00:00Z"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, header));
    let bad = journeys(dir.path(), &["triggers", "--now", "tomorrow"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--now `tomorrow` is not an RFC 3339 time"), "{}", bad.stderr);
}

/// Two emails, then a wait of a day before a third: `run --until-idle` sends the first two and
/// leaves the wait for a later run.
const GREET: &str = r#"name: greet
trigger:
  event: signup
steps:
  - send_email:
      subject: "Hello {{ customer.name }}"
      html: "<p>Welcome, {{ customer.name }}.</p>"
  - send_email:
      subject: "Tips for {{ customer.name }}"
      html: "<p>Three tips.</p>"
  - wait: 1d
  - send_email:
      subject: "A day later"
      html: "<p>Still here?</p>"
"#;

#[test]
fn journeys_run_until_idle_sends_what_is_due_to_the_smtp_server_and_leaves_later_waits() {
    let smtpd = kanta_mail::testing::Smtpd::cli(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greet.yaml"), GREET).unwrap();
    // Every guardrail but quiet hours as configured by default (opt-in consent, 3/7d); quiet
    // hours off so the test does not depend on the time of day.
    std::fs::write(
        dir.path().join("kanta.toml"),
        format!(
            "[email]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"Shop <hello@shop.example>\"\n\
             public_url = \"https://shop.example\"\nunsubscribe_secret = \"run-secret-0123456789\"\n\
             [guardrails]\nquiet_hours = \"off\"\n",
            smtpd.port
        ),
    )
    .unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "greet.yaml"]).code, 0);
    // Cy gave no consent: her messages are queued and skipped at send time.
    std::fs::write(
        dir.path().join("customers.csv"),
        "id,email,name,consent_email\nc-1,ann@example.org,Ann,granted\nc-2,bo@example.org,Bo,granted\n\
         c-3,cy@example.org,Cy,\n",
    )
    .unwrap();
    // Events of now: older ones than `[journeys] max_event_age` would start no journey.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    std::fs::write(
        dir.path().join("events.csv"),
        format!("customer_id,name,time\nc-1,signup,{now}\nc-2,signup,{now}\nc-3,signup,{now}\n"),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    for what in ["customers", "events"] {
        let file = format!("{what}.csv");
        let run = kanta_in(dir.path(), &["import", what, &file, "--db", &db, "-q"], &[]);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    }

    let run = journeys(dir.path(), &["run", "--until-idle"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Each run: two messages queued, then waiting at the wait (3 steps); 4 sent, Cy's 2 skipped.
    let (counts, seconds) = run.stdout.trim_end().rsplit_once("; ").unwrap();
    assert_eq!(
        counts,
        "journeys run: 3 feed rows, 3 runs advanced (9 steps), 6 messages: 4 sent, 2 skipped, 0 deferred, \
         0 retried, 0 failed, 0 unknown (in doubt after the lease)"
    );
    assert!(seconds.strip_suffix(" s").unwrap().parse::<f64>().unwrap() > 0.0, "{seconds}");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);

    let mut received: Vec<(String, String)> = smtpd
        .messages()
        .iter()
        .map(|m| {
            let headers = kanta_mail::headers::headers(m);
            let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).unwrap().1.clone();
            (header("To"), header("Subject"))
        })
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            ("Ann <ann@example.org>".to_owned(), "Hello Ann".to_owned()),
            ("Ann <ann@example.org>".to_owned(), "Tips for Ann".to_owned()),
            ("Bo <bo@example.org>".to_owned(), "Hello Bo".to_owned()),
            ("Bo <bo@example.org>".to_owned(), "Tips for Bo".to_owned()),
        ]
    );
    // The waits end tomorrow: left for a later run, which finds nothing due now.
    let list = journeys(dir.path(), &["list"]);
    assert_eq!(list.stdout.lines().nth(1).unwrap().split_whitespace().nth(3), Some("3"), "{}", list.stdout);
    let again = journeys(dir.path(), &["run", "--until-idle"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.starts_with("journeys run: 0 feed rows, 0 runs advanced (0 steps), 0 messages: 0 sent,"),
        "{}",
        again.stdout
    );
    assert_eq!(smtpd.messages().len(), 4);
}

const PROMO: &str = "name: promo\ntrigger: { event: signup }\nholdout: 50%\n\
    goal: { event: order.created, within: 30d }\nsteps: [{ send_email: { subject: Hi, html: <p>Hi</p> } }]\n";

#[test]
fn report_compares_the_arms_on_the_goal_and_revenue_as_text_and_json() {
    use kanta_store::journey::{EntryRules, GoalSource, NewConversion, NewRun, Reentry, RunArm};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("promo.yaml"), PROMO).unwrap();
    assert_eq!(journeys(dir.path(), &["apply", "promo.yaml"]).code, 0);
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let now = kanta_domain::Timestamp::parse_rfc3339("2026-03-02T12:00:00Z").unwrap();
    let day = 86_400_000_000;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = kanta_store::open(&db).await.unwrap();
        let ids = ["t1", "t2", "t3", "t4", "k1", "k2", "k3", "k4"];
        let records: Vec<serde_json::Value> = ids.iter().map(|id| serde_json::json!({"id": id})).collect();
        let batch = kanta_store::record::parse_batch::<kanta_domain::record::Customer>(
            serde_json::to_string(&records).unwrap().as_bytes(),
            kanta_domain::TimeRange::ALL,
        )
        .unwrap();
        let customers: Vec<_> = batch.valid.into_iter().map(|(_, c)| c).collect();
        store.write_customers(&customers, now).await.unwrap();
        // t1 and t2 order 20 a day after entering, k1 orders 10; t1 had spent 30 the year before.
        let orders = serde_json::json!([
            {"id": "o1", "customer_id": "t1", "time": "2026-03-03T12:00:00Z", "amount": 20, "currency": "EUR"},
            {"id": "o2", "customer_id": "t2", "time": "2026-03-03T12:00:00Z", "amount": 20, "currency": "EUR"},
            {"id": "o3", "customer_id": "k1", "time": "2026-03-03T12:00:00Z", "amount": 10, "currency": "EUR"},
            {"id": "o0", "customer_id": "t1", "time": "2025-12-01T12:00:00Z", "amount": 30, "currency": "EUR"},
        ]);
        let batch = kanta_store::record::parse_batch::<kanta_domain::record::Order>(
            orders.to_string().as_bytes(),
            kanta_domain::TimeRange::ALL,
        )
        .unwrap();
        let orders: Vec<_> = batch.valid.into_iter().map(|(_, o)| o).collect();
        store.write_orders(&orders, now).await.unwrap();
        let context = serde_json::json!({});
        let rules = EntryRules { reentry: Reentry::Once, max_active: None, once_per_key: false };
        for id in ids {
            let customer = store.customer_key(id).await.unwrap().unwrap();
            let arm = if id.starts_with('t') { RunArm::Treatment } else { RunArm::Control };
            let run = NewRun {
                journey: "promo",
                version: 1,
                customer,
                key: "",
                step: "0",
                due_at: Some(now),
                wait: None,
                context: &context,
                arm,
            };
            store.start_run(&run, &rules, now).await.unwrap();
            if ["t1", "t2", "k1"].contains(&id) {
                let at = kanta_domain::Timestamp::from_micros(now.micros() + day);
                let conversion = NewConversion {
                    journey: "promo",
                    customer,
                    at,
                    within: std::time::Duration::from_secs(30 * 86_400),
                    source: GoalSource::Event(None),
                };
                assert!(store.record_conversion(&conversion, at).await.unwrap().is_some());
            }
        }
    });
    let report = journeys(dir.path(), &["report", "promo", "--now", "2026-04-02T12:00:00Z"]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert_eq!(lines[0], "promo: version 1, holdout 50%, goal event order.created within 30d");
    let row = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
    assert_eq!(row(4), ["treatment", "4", "4", "2", "50.00%", "10.00", "0"], "{}", report.stdout);
    assert_eq!(row(5), ["control", "4", "4", "1", "25.00%", "2.50", "0"], "{}", report.stdout);
    assert!(lines[7].starts_with("conversion rate   +25.00 pp") && lines[7].ends_with("→ too early to tell"));
    let json = journeys(dir.path(), &["report", "promo", "--json", "--now", "2026-04-02T12:00:00Z"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["treatment"]["conversions"], 2);
    assert_eq!(value["control"]["revenue_per_customer"], 2.5);
    assert_eq!(value["conversion"]["difference"], 0.25);
    assert_eq!(value["conversion"]["verdict"], "too_early");
    assert_eq!(value["revenue"]["welch"]["difference"], 7.5);
    assert_eq!(value["entries"], serde_json::json!([["control", 4], ["treatment", 4]]));
    // The page: the arms, the comparisons and the chart of both curves.
    let html = journeys(dir.path(), &["report", "promo", "--html", "uplift.html", "--now", "2026-04-02T12:00:00Z"]);
    assert_eq!(html.code, 0, "{}", html.stderr);
    let page = std::fs::read_to_string(dir.path().join("uplift.html")).unwrap();
    assert!(page.contains("<td>conversion rate</td><td>+25.00 pp</td>"), "{page}");
    assert!(page.contains("aria-label=\"Cumulative conversion by day since entry\""), "{page}");
    if let Some(browser) = crate::report::chromium() {
        let (dom, console) =
            crate::report::load(&browser, &dir.path().join("uplift.html"), &dir.path().join("profile"));
        assert!(console.is_empty(), "console messages: {console:?}");
        assert_eq!(dom.matches("class=\"chart\"").count(), 1);
        assert!(!dom.contains("chart-error") && !dom.contains("src=\"http"));
    }
    // The same seed gives the same bootstrap interval to the last digit.
    let again = journeys(dir.path(), &["report", "promo", "--json", "--now", "2026-04-02T12:00:00Z"]);
    assert_eq!(again.stdout, json.stdout);
    // Before the windows have passed nothing is compared.
    let early = journeys(dir.path(), &["report", "promo", "--now", "2026-03-10T12:00:00Z"]);
    assert!(early.stdout.contains("conversion rate   too early to tell"), "{}", early.stdout);
    let unknown = journeys(dir.path(), &["report", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no journey `nope` in the store"), "{}", unknown.stderr);
}

/// A generated shop up to yesterday, imported and scored as of now, for simulations.
fn scored_shop(dir: &Path) -> String {
    let db = format!("sqlite://{}", dir.join("k.db").display());
    let today = chrono::Utc::now().date_naive();
    let (start, end) = (today - chrono::Days::new(730), today - chrono::Days::new(1));
    let (start, end) = (start.to_string(), end.to_string());
    let generate = ["generate", "--customers", "3000", "--start", &start, "--end", &end, "--out", "shop.csv", "-q"];
    assert_eq!(kanta_in(dir, &generate, &[]).code, 0);
    let import = kanta_in(dir, &["import", "orders", "shop.csv", "--currency", "EUR", "--db", &db], &[]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let score = kanta_in(dir, &["score", "--db", &db], &[]);
    assert_eq!(score.code, 0, "{}", score.stderr);
    db
}

/// `kanta journeys simulate FILE --json` on an example journey.
fn simulate(dir: &Path, db: &str, file: &str, extra: &[&str]) -> serde_json::Value {
    let path = root().join("journeys").join(file);
    let path = path.to_str().expect("a UTF-8 path");
    let mut args = vec!["journeys", "simulate", path, "--json", "--db", db];
    args.extend_from_slice(extra);
    let run = kanta_in(dir, &args, &[]);
    assert_eq!(run.code, 0, "{file}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{file}: {e}: {}", run.stdout))
}

/// Orders of the generated CSV in `[from, until)`: all of them, and first orders.
fn orders_between(dir: &Path, from: &str, until: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(dir.join("shop.csv")).expect("the generated shop");
    let mut seen = std::collections::HashSet::new();
    let mut orders = std::collections::HashSet::new();
    let (mut all, mut first) = (0, 0);
    // Rows are in time order; an order has one row per line.
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (order, customer, time_text) = (fields[0], fields[1], fields[2]);
        let new_customer = seen.insert(customer.to_owned());
        if !orders.insert(order.to_owned()) {
            continue;
        }
        let time = |text: &str| kanta_domain::Timestamp::parse_rfc3339(text).expect("an RFC 3339 time");
        if time(time_text) >= time(from) && time(time_text) < time(until) {
            all += 1;
            first += u64::from(new_customer);
        }
    }
    (all, first)
}

#[test]
fn simulate_projects_every_example_journey_over_the_next_thirty_days() {
    let dir = tempfile::tempdir().unwrap();
    let db = scored_shop(dir.path());
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root().join("journeys"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    for file in &files {
        let s = simulate(dir.path(), &db, file, &["--draws", "1"]);
        assert_eq!((s["days"].as_u64(), s["draws"].as_u64(), n(&s["customers"])), (Some(30), Some(1), 3000), "{file}");
        // UTC calendar days: today's (from now) to the 30th day after (to now).
        assert_eq!(s["entries_per_day"].as_array().unwrap().len(), 31, "{file}");
        let per_day: u64 = s["entries_per_day"].as_array().unwrap().iter().map(|d| n(&d["entries"])).sum();
        assert_eq!(per_day, n(&s["entries"]["total"]), "{file}");
        let e = &s["entries"];
        assert_eq!(n(&e["treatment"]) + n(&e["control"]) + n(&e["global_control"]), n(&e["total"]), "{file}");
        let m = &s["messages"];
        let emails: u64 = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["kind"] == "send_email")
            .map(|st| n(&st["runs"]))
            .sum();
        assert_eq!(n(&m["emails"]), emails, "{file}");
        assert_eq!(n(&m["sent"]) + n(&m["deferred"]) + n(&m["capped"]), emails, "{file}");
        let ends = &s["ends"];
        assert_eq!(n(&ends["completed"]) + n(&ends["exited"]) + n(&ends["running"]), n(&e["treatment"]), "{file}");
        // What the store and the calendar say, computed here from the generated file.
        let from = s["from"].as_str().unwrap();
        let window_start = kanta_domain::Timestamp::parse_rfc3339(from).unwrap().micros() - 30 * 86_400_000_000;
        let window_start = kanta_domain::Timestamp::from_micros(window_start).to_rfc3339();
        let (orders, first_orders) = orders_between(dir.path(), &window_start, from);
        match file.as_str() {
            // Nobody has a birthday, an abandoned cart or a `vip` segment in a generated shop.
            "birthday.yaml" | "abandoned-cart.yaml" | "vip-thanks.yaml" => assert_eq!(n(&e["total"]), 0, "{file}"),
            // The last 30 days' first orders again (welcome) and every order (feedback, keyed
            // by order: one run each).
            "welcome.yaml" => {
                assert!(first_orders > 50, "{first_orders}");
                assert_eq!(n(&e["total"]), first_orders);
            }
            "feedback.yaml" => {
                assert!(orders > first_orders, "{orders}");
                assert_eq!(n(&e["total"]) + n(&e["refused"]), orders);
            }
            // Stage changes drawn from the model: some customers become lost and slip in a month.
            "win-back.yaml" | "re-engagement.yaml" => {
                assert!(n(&e["total"]) > 0, "{file}: {s}");
                assert_eq!(s["model"], "bgnbd", "{file}");
            }
            _ => {}
        }
    }
    // Ten draws by default, with the range of the entries, and an HTML page with its charts.
    let html = dir.path().join("win-back.html");
    let s = simulate(dir.path(), &db, "win-back.yaml", &["--html", html.to_str().unwrap()]);
    assert_eq!(n(&s["draws"]), 10);
    let [low, high] = [n(&s["entries_range"][0]), n(&s["entries_range"][1])];
    assert!(low <= n(&s["entries"]["total"]) && n(&s["entries"]["total"]) <= high && low < high, "{s}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Simulation of journey “win-back”") && page.matches("<svg").count() >= 2, "{page}");
    // The same seed gives the same numbers.
    assert_eq!(simulate(dir.path(), &db, "win-back.yaml", &[])["entries"], s["entries"]);
}

#[test]
fn simulate_refuses_a_broken_file_and_a_store_without_a_fitted_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "name: bad\ntrigger: { stage_becomes: gone }\nsteps: []\n").unwrap();
    let run = journeys(dir.path(), &["simulate", "bad.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("bad.yaml:2:") && run.stderr.contains("nothing was simulated"), "{}", run.stderr);
    let win_back = root().join("journeys/win-back.yaml");
    let run = journeys(dir.path(), &["simulate", win_back.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no scoring run has fitted a customer model yet: run `kanta score`"), "{}", run.stderr);
}
