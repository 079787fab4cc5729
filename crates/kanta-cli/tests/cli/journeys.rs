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
