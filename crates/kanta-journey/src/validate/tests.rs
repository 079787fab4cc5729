//! The validator on whole documents: the examples, and each kind of problem with its exact
//! position and message.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveTime;
use kanta_core::lifecycle::Stage;

use super::*;
use crate::compile::{Action, CompiledStep, Next};
use crate::document::{
    Arm, Awaited, Body, Email, EntryRules, Goal, GoalKind, OnTimeout, Step, StepId, StepKind, Trigger,
};
use crate::when::Weekdays;
use kanta_uplift::arm::Holdout;

const WELCOME: &str = include_str!("../../../../journeys/welcome.yaml");

fn journeys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../journeys")
}

/// The names of `journeys/templates/*.html`.
fn example_templates() -> BTreeSet<String> {
    std::fs::read_dir(journeys_dir().join("templates"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".html").map(str::to_owned)
        })
        .collect()
}

/// The problems of a YAML document (with the templates `second-order` and `layout`), printed.
#[track_caller]
fn problems(yaml: &str) -> Vec<String> {
    let templates = ["second-order", "layout"];
    match validate_yaml(yaml, &templates) {
        Ok(journey) => panic!("accepted: {journey:?}"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// A journey with these steps (written from column 3), starting at line 4.
fn with_steps(steps: &str) -> String {
    format!("name: t\ntrigger: {{ event: signup }}\nsteps:\n{steps}")
}

#[test]
fn the_welcome_journey_validates_to_its_typed_form() {
    let journey = validate_yaml(WELCOME, &["second-order"]).unwrap();
    assert_eq!(journey.name, "welcome");
    assert_eq!(journey.trigger, Trigger::Event { name: "order.created".into(), first_order: true, key: None });
    assert_eq!(journey.entry, EntryRules::default());
    assert_eq!((journey.dry_run, journey.timezone, journey.skip_if_late_by), (false, None, None));
    let step = |kind| Step { id: None, kind };
    assert_eq!(
        journey.steps,
        [
            step(StepKind::SendEmail(Email {
                subject: "Thanks for your first order, {{ customer.name | default('there') }}".into(),
                body: Body::Inline {
                    html: "<p>Hello {{ customer.name | default('there') }}, thanks for shopping with us.</p>".into(),
                    text: None
                },
                transactional: false,
            })),
            step(StepKind::Wait(Duration::from_secs(3 * 86_400))),
            step(StepKind::WaitUntil {
                local_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
                weekdays: Weekdays::ALL
            }),
            step(StepKind::Branch { condition: "orders >= 2".into(), then: Some(Arm::Exit), otherwise: None }),
            step(StepKind::SendEmail(Email {
                subject: "Something for your next order".into(),
                body: Body::Template("second-order".into()),
                transactional: false,
            })),
        ]
    );
}

#[test]
fn the_welcome_journey_compiles_to_a_flat_step_graph() {
    let journey = validate_yaml(WELCOME, &["second-order"]).unwrap();
    let compiled = journey.compile();
    let id = |s: &str| StepId::from_path(s.to_owned());
    let to = |s: &str| Next::Step(id(s));
    let path = |i: usize, kind: &str| crate::problem::Path::root().key("steps").index(i).key(kind);
    let email = |i: usize| match &journey.steps[i].kind {
        StepKind::SendEmail(email) => email.clone(),
        other => panic!("{other:?}"),
    };
    let expected = [
        CompiledStep { id: id("0"), path: path(0, "send_email"), action: Action::SendEmail(email(0)), next: to("1") },
        CompiledStep {
            id: id("1"),
            path: path(1, "wait"),
            action: Action::Wait(Duration::from_secs(259_200)),
            next: to("2"),
        },
        CompiledStep {
            id: id("2"),
            path: path(2, "wait_until"),
            action: Action::WaitUntil {
                local_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
                weekdays: Weekdays::ALL,
            },
            next: to("3"),
        },
        CompiledStep {
            id: id("3"),
            path: path(3, "branch"),
            action: Action::Branch { condition: "orders >= 2".into(), then: Next::Exit, otherwise: to("4") },
            next: to("4"),
        },
        CompiledStep { id: id("4"), path: path(4, "send_email"), action: Action::SendEmail(email(4)), next: Next::End },
    ];
    // `path` of a compiled step is the step's own path, without the kind.
    let expected: Vec<CompiledStep> = expected
        .into_iter()
        .map(|mut s| {
            let mut segments = s.path.segments().to_vec();
            segments.pop();
            s.path = crate::problem::Path::from_segments(segments);
            s
        })
        .collect();
    assert_eq!(compiled.first, to("0"));
    assert_eq!(compiled.steps, expected);
    assert_eq!(compiled.step("3").unwrap().path.to_string(), "steps[3]");
    assert_eq!(compiled.step("9"), None);
}

#[test]
fn nested_steps_get_path_ids_under_their_parent_and_rejoin_after_it() {
    let yaml = with_steps(
        "  - id: check
    branch:
      if: \"orders >= 2\"
      then:
        - wait: 1d
        - exit
      else:
        - split:
            - { weight: 1, steps: [{ wait: 2h }] }
            - { weight: 3, steps: [] }
  - wait_for:
      event: order.created
      timeout: 2d
      on_timeout: [{ update: { tag: late } }]
  - wait_for: { enters_segment: vip, timeout: 1w, on_timeout: exit }
",
    );
    let compiled = validate_yaml(&yaml, &AnyTemplate).unwrap().compile();
    let table: Vec<String> = compiled
        .steps
        .iter()
        .map(|s| {
            let targets = match &s.action {
                Action::Branch { then, otherwise, .. } => format!(" then {then} else {otherwise}"),
                Action::Split { arms } => arms.iter().map(|(w, to)| format!(" {w}:{to}")).collect::<Vec<_>>().join(""),
                Action::WaitFor { on_timeout, .. } => format!(" timeout {on_timeout}"),
                _ => String::new(),
            };
            format!("{} [{}]{targets} -> {}", s.id, s.path, s.next)
        })
        .collect();
    assert_eq!(
        table,
        [
            "check [steps[0]] then check.then.0 else check.else.0 -> 1",
            "check.then.0 [steps[0].branch.then[0]] -> check.then.1",
            "check.then.1 [steps[0].branch.then[1]] -> (exit)",
            "check.else.0 [steps[0].branch.else[0]] 1:check.else.0.split.0.0 3:1 -> 1",
            "check.else.0.split.0.0 [steps[0].branch.else[0].split[0].steps[0]] -> 1",
            "1 [steps[1]] timeout 1.on_timeout.0 -> 2",
            "1.on_timeout.0 [steps[1].wait_for.on_timeout[0]] -> 2",
            "2 [steps[2]] timeout (exit) -> (end)",
        ]
    );
}

#[test]
fn compiled_steps_say_how_deep_they_are_which_arm_they_open_and_what_they_do() {
    let yaml = with_steps(
        "  - id: check
    branch:
      if: \"orders >= 2\"
      then:
        - wait: 1d
        - exit
      else:
        - split:
            - { weight: 1, steps: [{ wait: 2h }] }
            - { weight: 3, steps: [{ webhook: { url: \"https://crm.example/hook\" } }] }
  - wait_for:
      event: order.created
      timeout: 2d
      on_timeout: [{ update: { tag: late } }]
  - wait_until: { local_time: \"10:00\", weekdays: mon-fri }
  - send_email: { subject: \"Hello\", html: \"<p>Hi</p>\" }
  - branch: { if: \"orders > 3\", else: exit }
",
    );
    let compiled = validate_yaml(&yaml, &AnyTemplate).unwrap().compile();
    let rows: Vec<(usize, Option<String>, String)> =
        compiled.steps.iter().map(|s| (s.depth(), s.opens(), s.action.describe())).collect();
    let row = |depth, opens: Option<&str>, text: &str| (depth, opens.map(str::to_owned), text.to_owned());
    assert_eq!(
        rows,
        [
            row(0, None, "if orders >= 2"),
            row(1, Some("then"), "wait 1d"),
            row(1, None, "exit"),
            row(1, Some("else"), "split 25% / 75%"),
            row(2, Some("arm 1"), "wait 2h"),
            row(2, Some("arm 2"), "call https://crm.example/hook"),
            row(0, None, "wait for event order.created, at most 2d"),
            row(1, Some("on timeout"), "update: tag late"),
            row(0, None, "wait until 10:00 local time on mon,tue,wed,thu,fri"),
            row(0, None, "send email “Hello”"),
            row(0, None, "if orders > 3; if not, exit"),
        ]
    );
}

#[test]
fn every_example_journey_validates() {
    let templates = example_templates();
    assert!(templates.contains("second-order") && templates.contains("layout"), "{templates:?}");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(journeys_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let journey =
            validate_yaml(&text, &templates).unwrap_or_else(|p| panic!("{}", p.in_file(path.display().to_string())));
        // The file is named after the journey.
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), journey.name);
        // And reads back from its canonical form.
        assert_eq!(Journey::from_json(&journey.canonical_json()).unwrap(), journey);
        names.push(journey.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "abandoned-cart",
            "birthday",
            "feedback",
            "next-purchase",
            "re-engagement",
            "vip-thanks",
            "welcome",
            "win-back"
        ]
    );
}

#[test]
fn yaml_to_journey_to_canonical_json_to_journey_round_trips() {
    let journey = validate_yaml(WELCOME, &["second-order"]).unwrap();
    let json = journey.canonical_json();
    assert_eq!(
        json,
        r#"{"name":"welcome","steps":[{"send_email":{"html":"<p>Hello {{ customer.name | default('there') }}, thanks for shopping with us.</p>","subject":"Thanks for your first order, {{ customer.name | default('there') }}"}},{"wait":"3d"},{"wait_until":{"local_time":"10:00"}},{"branch":{"if":"orders >= 2","then":"exit"}},{"send_email":{"subject":"Something for your next order","template":"second-order"}}],"trigger":{"event":"order.created","first_order":true}}"#
    );
    let back = Journey::from_json(&json).unwrap();
    assert_eq!(back, journey);
    assert_eq!(back.canonical_json(), json);
    // Through serde too, as the store would.
    let via_serde: Journey = serde_json::from_str(&serde_json::to_string(&journey).unwrap()).unwrap();
    assert_eq!(via_serde, journey);
    // The digest is the SHA-256 of the canonical text.
    assert_eq!(journey.digest().len(), 64);
    let reference: String = {
        use sha2::Digest;
        sha2::Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(journey.digest(), reference);
}

#[test]
fn documents_that_say_the_same_thing_have_the_same_digest() {
    let reformatted = "# the same journey, written differently\n\
        trigger: { first_order: true, event: order.created }\n\
        name: 'welcome'\n\
        dry_run: false\n\
        entry: { reentry: once }\n\
        steps:\n\
        - send_email: { html: \"<p>Hello {{ customer.name | default('there') }}, thanks for shopping with us.</p>\", \
                        subject: \"Thanks for your first order, {{ customer.name | default('there') }}\", transactional: false }\n\
        - wait: 72h\n\
        - wait_until: { local_time: '10:00', weekdays: [mon-sun] }\n\
        - branch: { if: orders >= 2, then: exit }\n\
        - send_email: { subject: Something for your next order, template: second-order }\n";
    let a = validate_yaml(WELCOME, &["second-order"]).unwrap();
    let b = validate_yaml(reformatted, &["second-order"]).unwrap();
    assert_eq!(a.digest(), b.digest());
    let changed = WELCOME.replace("wait: 3d", "wait: 4d");
    assert_ne!(validate_yaml(&changed, &["second-order"]).unwrap().digest(), a.digest());
}

#[test]
fn unknown_keys_are_reported_with_the_closest_known_key() {
    let yaml = with_steps("  - send_email:\n      sujbect: Hi\n      html: <p>x</p>\n      colour: red\n");
    assert_eq!(
        problems(&yaml),
        [
            "5:7: steps[0].send_email: missing key `subject` (the subject line)",
            "5:7: steps[0].send_email.sujbect: unknown key `sujbect` in send_email; did you mean `subject`?",
            "7:7: steps[0].send_email.colour: unknown key `colour` in send_email; expected one of `subject`, `html`, `template`, `text`, `transactional`",
        ]
    );
    assert_eq!(
        problems("name: t\ntrigger: { event: x }\nstep:\n  - exit\n"),
        [
            "1:1: missing key `steps` (the list of steps)",
            "3:1: step: unknown key `step` in a journey; did you mean `steps`?",
        ]
    );
}

#[test]
fn missing_keys_and_wrong_types_name_what_was_found() {
    assert_eq!(
        problems("description: [a]\ndry_run: yes\nsteps: {}\n"),
        [
            "1:1: missing key `name` (the journey's name, such as `welcome`)",
            "1:1: missing key `trigger` (what starts a run, such as `event: order.created`)",
            "1:14: description: expected text, found a list",
            "2:10: dry_run: expected `true` or `false`, found the text `yes`",
            "3:8: steps: expected a list of steps, found a mapping",
        ]
    );
    assert_eq!(
        problems("- just a list\n"),
        ["1:1: expected a journey (a mapping with `name`, `trigger` and `steps`), found a list"]
    );
    assert_eq!(
        problems(""),
        ["1:1: the file is empty; expected a journey (a mapping with `name`, `trigger` and `steps`)"]
    );
}

#[test]
fn bad_durations_and_offsets_are_reported() {
    let yaml = with_steps("  - wait: 3 days\n  - wait: 3\n  - wait_for: { event: x, timeout: 2 }\n");
    assert_eq!(
        problems(&yaml),
        [
            "4:11: steps[0].wait: `3 days` is not a duration: the unit is not one of `s`, `m`, `h`, `d`, `w`; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`",
            "5:11: steps[1].wait: expected a duration such as `3d`, `12h` or `30m`, found the number 3",
            "6:36: steps[2].wait_for.timeout: expected a duration such as `3d`, `12h` or `30m`, found the number 2",
        ]
    );
    assert_eq!(
        problems("name: t\ntrigger:\n  predicted_next_purchase: { offset: -3h }\nsteps: [exit]\n"),
        [
            "3:38: trigger.predicted_next_purchase.offset: `-3h` is not a day offset: the unit is not `d` or `w`; expected a whole number of days or weeks, negative for before, such as `-3d` or `2w`"
        ]
    );
}

#[test]
fn bad_local_times_and_weekdays_are_reported() {
    let yaml = with_steps(
        "  - wait_until: { local_time: \"25:00\" }\n  - wait_until: { local_time: \"9:75\", weekdays: [mon, tues, fri-sat] }\n  - wait_until: { local_time: noon }\n",
    );
    assert_eq!(
        problems(&yaml),
        [
            "4:31: steps[0].wait_until.local_time: `25:00` is not a local time: the hour is not 00 to 23; expected `HH:MM` on the 24-hour clock, such as `10:00` or `18:30`",
            "5:31: steps[1].wait_until.local_time: `9:75` is not a local time: the minute is not 00 to 59; expected `HH:MM` on the 24-hour clock, such as `10:00` or `18:30`",
            "5:55: steps[1].wait_until.weekdays[1]: `tues` is not a weekday: expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun` or a range such as `mon-fri`; did you mean `tue`?",
            "6:31: steps[2].wait_until.local_time: `noon` is not a local time: it is not hours and minutes; expected `HH:MM` on the 24-hour clock, such as `10:00` or `18:30`",
        ]
    );
}

#[test]
fn bad_cron_schedules_are_reported_with_crons_reason() {
    let found = problems("name: t\ntrigger:\n  schedule: { cron: \"0 9 * *\", segment: vip }\nsteps: [exit]\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("3:21: trigger.schedule.cron: `0 9 * *` is not a cron schedule: "), "{}", found[0]);
    assert!(found[0].ends_with("such as `0 9 * * mon`"), "{}", found[0]);
    assert_eq!(
        problems("name: t\ntrigger:\n  schedule: { cron: \"0 9 * * FOO\", segment: vip }\nsteps: [exit]\n").len(),
        1
    );
    // Names, ranges and steps are cron's own.
    let ok = "name: t\ntrigger:\n  schedule: { cron: \"*/15 9-17 * JAN-MAR mon-fri\", segment: vip }\nsteps: [exit]\n";
    assert!(validate_yaml(ok, &AnyTemplate).is_ok());
}

#[test]
fn unknown_templates_are_reported_with_the_closest_name() {
    let yaml = with_steps(
        "  - send_email: { subject: Hi, template: second-ordr }\n  - send_email: { subject: Hi, template: ../secrets }\n",
    );
    assert_eq!(
        problems(&yaml),
        [
            "4:42: steps[0].send_email.template: there is no template `second-ordr` (templates/second-ordr.html, or `templates.second-ordr` embedded); did you mean `second-order`?",
            "5:42: steps[1].send_email.template: `../secrets` is not a name: only letters, digits, `-` and `_` may be used",
        ]
    );
}

#[test]
fn inline_templates_are_checked_by_the_callers_template_language() {
    struct Strict;
    impl Templates for Strict {
        fn contains(&self, _: &str) -> bool {
            true
        }
        fn check(&self, source: &str) -> Result<(), String> {
            if source.contains("{{ custmer") { Err("line 1: unknown name `custmer`".into()) } else { Ok(()) }
        }
    }
    let yaml = with_steps("  - send_email: { subject: \"Hi {{ custmer.name }}\", html: <p>x</p> }\n");
    let found: Vec<String> = validate_yaml(&yaml, &Strict).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        ["4:28: steps[0].send_email.subject: this template cannot be rendered: line 1: unknown name `custmer`"]
    );
}

#[test]
fn every_text_of_a_webhook_body_is_checked_as_a_template_where_it_is_written() {
    struct Strict;
    impl Templates for Strict {
        fn contains(&self, _: &str) -> bool {
            true
        }
        fn check(&self, source: &str) -> Result<(), String> {
            if source.contains("{{ custmer") { Err("line 1: unknown name `custmer`".into()) } else { Ok(()) }
        }
    }
    let yaml = with_steps(
        "  - webhook:\n      url: https://crm.example/hook\n      body:\n        id: \"{{ customer.id }}\"\n        \
         tags: [vip, \"{{ custmer.name }}\"]\n        n: 3\n",
    );
    let found: Vec<String> = validate_yaml(&yaml, &Strict).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        ["8:21: steps[0].webhook.body.tags[1]: this template cannot be rendered: line 1: unknown name `custmer`"]
    );
}

#[test]
fn steps_after_an_exit_are_unreachable() {
    let yaml = with_steps(
        "  - wait: 1d\n  - exit\n  - wait: 2d\n  - wait: 3d\n  - branch:\n      if: orders > 1\n      then: [exit]\n      else: exit\n",
    );
    // One problem per list, at its first unreachable step.
    assert_eq!(
        problems(&yaml),
        ["6:5: steps[2]: this step is never reached: `steps[1]` always ends the run before it"]
    );
    let yaml = with_steps(
        "  - branch:\n      if: orders > 1\n      then: [exit]\n      else: exit\n  - wait: 2d\n  - split:\n      - { weight: 1, steps: [exit, { wait: 1d }] }\n      - { weight: 1, steps: [] }\n",
    );
    assert_eq!(
        problems(&yaml),
        [
            "8:5: steps[1]: this step is never reached: `steps[0]` always ends the run before it",
            "10:36: steps[2].split[0].steps[1]: this step is never reached: `steps[2].split[0].steps[0]` always ends the run before it",
        ]
    );
}

#[test]
fn segment_errors_point_into_the_file_whatever_the_quoting() {
    // Plain: the expression starts at column 11; `>=` then `x` at expression column 11.
    let plain = with_steps("  - branch:\n      if: orders >= x\n      then: exit\n");
    let found = problems(&plain);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("5:21: steps[0].branch.if: column 11: "), "{}", found[0]);
    // Double-quoted with escapes before the error: the value's `x` is its character 26, the
    // file's column 39 (each `\"` is two characters of the file, one of the value).
    let double = with_steps("  - branch:\n      if: \"name = \\\"a\\\" and orders >= x\"\n      then: exit\n");
    let found = problems(&double);
    assert!(found[0].starts_with("5:39: steps[0].branch.if: column 26: "), "{}", found[0]);
    // Single-quoted: `''` is one quote in the value.
    let single = with_steps("  - branch:\n      if: 'name = \"a''s\" and ordrs >= 2'\n      then: exit\n");
    let found = problems(&single);
    assert!(found[0].starts_with("5:30: steps[0].branch.if: column 18: unknown field `ordrs`"), "{}", found[0]);
    // In JSON, the pointer and the column in the expression.
    let json = serde_json::json!({
        "name": "t", "trigger": {"event": "x"},
        "steps": [{"branch": {"if": "orders >= x", "then": "exit"}}]
    });
    let found: Vec<String> = validate_json(&json, &AnyTemplate).unwrap_err().iter().map(ToString::to_string).collect();
    assert!(found[0].starts_with("/steps/0/branch/if: column 11: "), "{}", found[0]);
}

#[test]
fn split_weights_must_be_positive_whole_numbers() {
    let yaml = with_steps(
        "  - split:\n      - { weight: 0, steps: [] }\n      - { weight: -5, steps: [] }\n      - { weight: 1.5, steps: [] }\n      - { weight: \"50\", steps: [] }\n      - { steps: [] }\n  - split: [{ weight: 1, steps: [] }]\n",
    );
    assert_eq!(
        problems(&yaml),
        [
            "5:19: steps[0].split[0].weight: a split weight must be a positive whole number, found the number 0",
            "6:19: steps[0].split[1].weight: a split weight must be a positive whole number, found the number -5",
            "7:19: steps[0].split[2].weight: a split weight must be a positive whole number, found the number 1.5",
            "8:19: steps[0].split[3].weight: a split weight must be a positive whole number, found the text `50`",
            "9:9: steps[0].split[4]: missing key `weight` (the arm's share, a positive whole number)",
            "10:12: steps[1].split: expected a list of two or more arms such as `[{ weight: 50, steps: [...] }, { weight: 50, steps: [] }]`, found 1 arm",
        ]
    );
}

#[test]
fn step_ids_must_be_unique_slugs() {
    let yaml = with_steps(
        "  - { id: hello, wait: 1d }\n  - branch:\n      if: orders > 1\n      then: [{ id: hello, wait: 2d }]\n  - { id: 7up, exit }\n",
    );
    assert_eq!(
        problems(&yaml),
        [
            "7:20: steps[1].branch.then[0].id: the step id `hello` is already used by `steps[0]`; step ids are unique in a journey",
            "8:11: steps[2].id: `7up` is not a step id: it does not start with a lowercase letter",
        ]
    );
}

#[test]
fn an_empty_step_list_is_refused() {
    assert_eq!(
        problems("name: t\ntrigger: { event: x }\nsteps: []\n"),
        ["3:8: steps: `steps` is empty; a journey needs at least one step"]
    );
}

#[test]
fn a_trigger_has_exactly_one_kind() {
    assert_eq!(
        problems("name: t\ntrigger:\n  event: x\n  enters_segment: vip\n  first_order: true\nsteps: [exit]\n"),
        ["4:3: trigger.enters_segment: a trigger has one kind; this one has `event` and `enters_segment`"]
    );
    assert_eq!(
        problems("name: t\ntrigger: { key: x }\nsteps: [exit]\n"),
        [
            "2:10: trigger: a trigger needs one of `event`, `enters_segment`, `leaves_segment`, `stage_becomes`, `date`, `predicted_next_purchase`, `schedule`"
        ]
    );
    assert_eq!(
        problems("name: t\ntrigger: { stage_becomes: slippin, key: x }\nsteps: [exit]\n"),
        [
            "2:27: trigger.stage_becomes: `slippin` is not a lifecycle stage: expected one of `new`, `repeat`, `loyal`, `slipping`, `lapsing`, `lost`; did you mean `slipping`?",
            "2:36: trigger.key: `key` applies to a `event` trigger, not to `stage_becomes`",
        ]
    );
}

#[test]
fn first_order_applies_only_to_order_created() {
    assert_eq!(
        problems("name: t\ntrigger:\n  event: cart.updated\n  first_order: true\nsteps: [exit]\n"),
        ["4:3: trigger.first_order: `first_order` applies only to `event: order.created`, not to `cart.updated`"]
    );
}

#[test]
fn match_key_needs_a_keyed_event_trigger() {
    let yaml = with_steps("  - wait_for: { event: order.created, match_key: true, timeout: 4h }\n");
    assert_eq!(
        problems(&yaml),
        [
            "4:39: steps[0].wait_for.match_key: `match_key` needs an event trigger with a `key` (such as `key: cart_id`); this journey's trigger has none"
        ]
    );
    let keyed = yaml.replace("{ event: signup }", "{ event: cart.updated, key: cart_id }");
    assert!(validate_yaml(&keyed, &AnyTemplate).is_ok());
    let segment = keyed.replace("event: order.created", "enters_segment: vip");
    assert_eq!(
        problems(&segment),
        ["4:38: steps[0].wait_for.match_key: `match_key` applies to a `wait_for` an event, not a segment"]
    );
}

#[test]
fn bad_time_zones_are_reported() {
    assert_eq!(
        problems("name: t\ntimezone: europe/helsinki\ntrigger: { event: x }\nsteps: [exit]\n"),
        [
            "2:11: timezone: `europe/helsinki` is not an IANA time zone name such as `Europe/Helsinki` or `UTC` (names are case-sensitive)"
        ]
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let yaml = "name: Bad Name\ntrigger: { event: order.created, first_order: maybe }\nentry: { reentry: sometimes, max_concurrent_journeys: 0 }\nexit_when: [{ event: order.created, stage_becomes: lost }]\nsteps:\n  - wait: soon\n  - send_email: { subject: Hi }\n  - webhook: { url: ftp://x }\n  - update: { set: { plan: gold } }\n  - wait_for: { event: x, timeout: 1d, on_timeout: later }\n  - branch: { if: orders > 1 }\n  - wait\n  - frobnicate\n";
    assert_eq!(
        problems(yaml),
        [
            "1:7: name: `Bad Name` is not a journey name: only `a`–`z`, `0`–`9`, `-` and `_` may be used",
            "2:47: trigger.first_order: expected `true` or `false`, found the text `maybe`",
            "3:19: entry.reentry: expected `once`, `always` or `{ after: 90d }`, found the text `sometimes`",
            "3:55: entry.max_concurrent_journeys: `max_concurrent_journeys` must be a positive whole number, found the number 0",
            "4:37: exit_when[0].stage_becomes: an exit condition has one kind; this one has `event` and `stage_becomes`",
            "6:11: steps[0].wait: `soon` is not a duration: it does not start with a number; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`",
            "7:17: steps[1].send_email: missing key `html` or `template` (the message's body)",
            "8:21: steps[2].webhook.url: `ftp://x` is not a webhook URL: expected `https://` or `http://`, a host and a path, without spaces",
            "9:22: steps[3].update.set.plan: `plan` cannot be set: only customer attributes can, as `attributes.NAME`",
            "10:52: steps[4].wait_for.on_timeout: expected `continue`, `exit` or a non-empty list of steps, found the text `later`",
            "11:13: steps[5].branch: a branch needs `then`, `else` or both (each `exit` or a list of steps)",
            "12:5: steps[6]: `wait` needs its settings, such as `wait: 3d`",
            "13:5: steps[7]: expected a step (a mapping with one of `wait`, `wait_until`, `wait_for`, `branch`, `split`, `send_email`, `webhook`, `update`, or `exit`), found the text `frobnicate`",
        ]
    );
}

#[test]
fn json_documents_are_checked_alike_with_pointers() {
    let json = serde_json::json!({
        "name": "t",
        "trigger": {"event": "x", "first_order": true},
        "steps": [{"wait": "3 days"}, {"send_email": {"subject": "Hi", "template": "nope"}}]
    });
    let found: Vec<String> =
        validate_json(&json, &["second-order"]).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "/trigger/first_order: `first_order` applies only to `event: order.created`, not to `x`",
            "/steps/0/wait: `3 days` is not a duration: the unit is not one of `s`, `m`, `h`, `d`, `w`; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`",
            "/steps/1/send_email/template: there is no template `nope` (templates/nope.html, or `templates.nope` embedded)",
        ]
    );
    // The same journey as YAML and as JSON is the same journey.
    let yaml = validate_yaml(WELCOME, &["second-order"]).unwrap();
    let from_json = validate_json(&yaml.to_value(), &["second-order"]).unwrap();
    assert_eq!(from_json, yaml);
}

#[test]
fn every_trigger_kind_and_option_reads_into_its_typed_form() {
    let trigger = |t: &str| {
        let yaml = format!("name: t\ntrigger: {t}\nsteps: [exit]\n");
        validate_yaml(&yaml, &AnyTemplate).unwrap_or_else(|p| panic!("{p}")).trigger
    };
    assert_eq!(
        trigger("{ event: cart.updated, key: cart_id }"),
        Trigger::Event { name: "cart.updated".into(), first_order: false, key: Some("cart_id".into()) }
    );
    assert_eq!(trigger("{ leaves_segment: VIP customers }"), Trigger::LeavesSegment("VIP customers".into()));
    assert_eq!(trigger("{ stage_becomes: lost }"), Trigger::StageBecomes(Stage::Lost));
    assert_eq!(
        trigger("{ date: birthday }"),
        Trigger::Date { field: crate::DateField::Birthday, offset_days: 0, yearly: true }
    );
    assert_eq!(
        trigger("{ date: attributes.renewal_date, offset: -2w }"),
        Trigger::Date { field: crate::DateField::Attribute("renewal_date".into()), offset_days: -14, yearly: false }
    );
    assert_eq!(
        trigger("{ date: first_purchase, offset: 0, yearly: true }"),
        Trigger::Date { field: crate::DateField::FirstPurchase, offset_days: 0, yearly: true }
    );
    assert_eq!(
        trigger("{ predicted_next_purchase: { offset: -3d } }"),
        Trigger::PredictedNextPurchase { offset_days: -3 }
    );
    let Trigger::Schedule { cron, segment } = trigger("{ schedule: { cron: \"0 9 * * MON\", segment: vip } }") else {
        panic!()
    };
    assert_eq!((cron.as_str(), segment.as_str()), ("0 9 * * MON", "vip"));
    assert_eq!(
        problems("name: t\ntrigger: { date: anniversary }\nsteps: [exit]\n"),
        [
            "2:18: trigger.date: `anniversary` is not a date of the customer: expected `birthday`, `first_purchase` or `attributes.NAME`"
        ]
    );
}

#[test]
fn wait_for_defaults_to_continue_on_timeout() {
    let yaml = with_steps("  - wait_for: { event: order.created, timeout: 2d }\n");
    let journey = validate_yaml(&yaml, &AnyTemplate).unwrap();
    assert_eq!(
        journey.steps[0].kind,
        StepKind::WaitFor {
            awaited: Awaited::Event { name: "order.created".into(), match_key: false },
            timeout: Duration::from_secs(2 * 86_400),
            on_timeout: OnTimeout::Continue,
        }
    );
    let compiled = journey.compile();
    assert_eq!(
        compiled.steps[0].action,
        Action::WaitFor {
            awaited: Awaited::Event { name: "order.created".into(), match_key: false },
            timeout: Duration::from_secs(2 * 86_400),
            on_timeout: Next::End,
        }
    );
}

#[test]
fn a_journey_using_every_key_round_trips_through_canonical_json() {
    let yaml = r#"
name: everything
description: Every key of the language.
trigger: { event: cart.updated, key: cart_id }
entry: { reentry: { after: 14d }, max_concurrent_journeys: 2 }
exit_when:
  - event: order.created
  - enters_segment: vip
  - leaves_segment: active
  - stage_becomes: lost
timezone: America/New_York
dry_run: true
skip_if_late_by: 36h
holdout: 12.50%
goal: { event: order.created, within: 720h, exit: true }
steps:
  - { id: first, wait: 90m }
  - wait_until: { local_time: "7:05", weekdays: [sat, mon-tue] }
  - wait_for:
      event: order.created
      match_key: true
      timeout: 4h
      on_timeout:
        - send_email: { subject: Hi, html: <p>Hi</p>, text: Hi, transactional: true }
  - wait_for: { enters_segment: vip, timeout: 1w, on_timeout: exit }
  - id: check
    branch:
      if: clv_12m > 200 and attributes.plan = "gold"
      then: [{ webhook: { url: "https://hooks.example/x", body: { n: 1, ok: true, tags: [a] } } }]
      else: [{ webhook: { endpoint: crm } }]
  - split:
      - { weight: 9, steps: [{ update: { set: { attributes.group: test, attributes.score: 1.5 }, tag: [a, b] } }] }
      - { weight: 1, steps: [] }
  - { id: bye, exit: }
"#;
    let journey = validate_yaml(yaml, &AnyTemplate).unwrap_or_else(|p| panic!("{p}"));
    let json = journey.canonical_json();
    let back = Journey::from_json(&json).unwrap_or_else(|p| panic!("{p}\n{json}"));
    assert_eq!(back, journey);
    assert_eq!(back.digest(), journey.digest());
    // Values are canonical in the JSON: 7:05 → 07:05, 90m stays, 36h stays, 14d → 2w, weekdays expanded.
    for needle in [
        r#""local_time":"07:05""#,
        r#""weekdays":["mon","tue","sat"]"#,
        r#""reentry":{"after":"2w"}"#,
        r#""skip_if_late_by":"36h""#,
        r#""wait":"90m""#,
        r#"{"exit":null,"id":"bye"}"#,
        r#""set":{"attributes.group":"test","attributes.score":1.5}"#,
        r#""timezone":"America/New_York""#,
        r#""holdout":"12.5%""#,
        r#""goal":{"event":"order.created","exit":true,"within":"30d"}"#,
    ] {
        assert!(json.contains(needle), "{needle} not in {json}");
    }
    let ids: Vec<String> = journey.compile().steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(
        ids,
        ["first", "1", "2", "2.on_timeout.0", "3", "check", "check.then.0", "check.else.0", "5", "5.split.0.0", "bye"]
    );
}

#[test]
fn holdout_and_goal_read_into_their_types() {
    let journey = validate_yaml(
        "name: t\ntrigger: { stage_becomes: slipping }\nholdout: 10%\ngoal: { enters_segment: active, within: 2w }\n\
         steps: [{ send_email: { subject: Hi, html: <p>Hi</p> } }]\n",
        &AnyTemplate,
    )
    .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(journey.holdout.parts_per_million(), 100_000);
    assert_eq!(
        journey.goal,
        Some(Goal {
            reached: GoalKind::EntersSegment("active".into()),
            within: Duration::from_secs(14 * 86_400),
            exit: false
        })
    );
    assert!(journey.is_marketing());
    // Left out, they are no holdout and no goal, and the canonical text (so the digest of
    // journeys applied before they existed) does not mention them.
    let plain = validate_yaml(&with_steps("  - wait: 1d\n"), &AnyTemplate).unwrap();
    assert_eq!((plain.holdout, plain.goal.as_ref()), (Holdout::NONE, None));
    assert!(!plain.canonical_json().contains("holdout") && !plain.canonical_json().contains("goal"));
}

#[test]
fn holdout_and_goal_problems_are_named_at_their_position() {
    let doc = |extra: &str| format!("name: t\ntrigger: {{ event: signup }}\n{extra}steps: [{{ wait: 1d }}]\n");
    assert_eq!(
        problems(&doc("holdout: 10\ngoal: { event: order.created, within: 30d }\n")),
        ["3:10: holdout: expected a percentage such as `10%`, found the number 10"]
    );
    assert_eq!(
        problems(&doc("holdout: 100%\ngoal: { event: order.created, within: 30d }\n")),
        ["3:10: holdout: holdout `100%` would hold out every customer: use less than 100%"]
    );
    assert_eq!(
        problems(&doc("holdout: 1.23456%\ngoal: { event: order.created, within: 30d }\n")),
        ["3:10: holdout: holdout `1.23456%` has more than 4 decimals"]
    );
    assert_eq!(
        problems(&doc("holdout: 10%\n")),
        [
            "3:10: holdout: a holdout needs a `goal` to compare the groups on, such as `goal: { event: order.created, within: 30d }`"
        ]
    );
    assert_eq!(
        problems(&doc("goal: { event: order.created }\n")),
        ["3:7: goal: missing key `within` (how long after entering a conversion counts, such as `30d`)"]
    );
    assert_eq!(
        problems(&doc("goal: { event: order.created, within: 0d, exit: maybe }\n")),
        [
            "3:39: goal.within: `within` must be longer than 0s",
            "3:49: goal.exit: expected `true` or `false`, found the text `maybe`"
        ]
    );
    assert_eq!(
        problems(&doc("goal: { within: 3d, wtihin: 3d }\n")).len(),
        2,
        "a goal without its kind and an unknown key: {:?}",
        problems(&doc("goal: { within: 3d, wtihin: 3d }\n"))
    );
}

#[test]
fn only_journeys_of_transactional_emails_are_not_marketing() {
    let transactional = validate_yaml(
        &with_steps("  - send_email: { subject: Receipt, html: <p>r</p>, transactional: true }\n"),
        &AnyTemplate,
    )
    .unwrap();
    assert!(!transactional.is_marketing());
    let mixed = validate_yaml(
        &with_steps(
            "  - send_email: { subject: Receipt, html: <p>r</p>, transactional: true }\n  - webhook: { endpoint: crm }\n",
        ),
        &AnyTemplate,
    )
    .unwrap();
    assert!(mixed.is_marketing());
}

proptest::proptest! {
    /// Whatever the text, validation answers with a journey or problems, never a panic, and
    /// every problem of a YAML text has a position inside it.
    #[test]
    fn any_text_gets_an_answer_with_positions(text in "[a-z_:{}\\[\\], \"'|>\\n#&*!0-9.-]{0,200}") {
        if let Err(problems) = validate_yaml(&text, &AnyTemplate) {
            proptest::prop_assert!(!problems.is_empty());
            let lines = text.lines().count().max(1) + 1;
            for p in &problems {
                proptest::prop_assert!(p.line.is_some_and(|l| (1..=lines).contains(&l)), "{p}");
                proptest::prop_assert!(p.column.is_some_and(|c| c >= 1), "{p}");
            }
        }
    }
}

/// Checks template sources as a mailer would, in miniature: `{{` must be closed.
struct Braces;

impl Templates for Braces {
    fn contains(&self, _name: &str) -> bool {
        false
    }

    fn check(&self, source: &str) -> Result<(), String> {
        match source.lines().position(|l| l.matches("{{").count() != l.matches("}}").count()) {
            Some(i) => Err(format!("line {}: unclosed `{{{{`", i + 1)),
            None => Ok(()),
        }
    }
}

#[test]
fn embedded_templates_satisfy_template_names_and_are_checked_where_they_are() {
    let doc = |templates: serde_json::Value| {
        serde_json::json!({
            "name": "t",
            "trigger": {"event": "x"},
            "steps": [{"send_email": {"subject": "Hi", "template": "thanks"}}],
            "templates": templates,
            "layout": {"html": "<body>{{ content }}</body>"},
        })
    };
    let ok = doc(serde_json::json!({"thanks": {"html": "<p>Hi {{ customer.name }}</p>", "text": "Hi"}}));
    let journey = validate_json(&ok, &Braces).unwrap();
    assert_eq!(journey.templates["thanks"].text.as_deref(), Some("Hi"));
    assert_eq!(journey.layout.as_ref().and_then(|l| l.html.as_deref()), Some("<body>{{ content }}</body>"));
    // The canonical form carries them, reads back the same, and its digest follows their text.
    assert_eq!(Journey::from_json(&journey.canonical_json()).unwrap(), journey);
    let mut edited = journey.clone();
    edited.templates.get_mut("thanks").unwrap().text = Some("Hello".into());
    assert_ne!(edited.digest(), journey.digest());
    let problems = |templates| -> Vec<String> {
        validate_json(&doc(templates), &Braces).unwrap_err().iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        problems(
            serde_json::json!({"thanks": {"html": "<p>\n{{ customer.name </p>"}, "Bad/Name": {"html": "x"}, "empty": {}})
        ),
        [
            "/templates/thanks/html: this template cannot be rendered: line 2: unclosed `{{`",
            "/templates/Bad~1Name: `Bad/Name` is not a template name: only letters, digits, `-` and `_` may be used",
            "/templates/empty: a template needs `html`, `text` or both",
            "/steps/0/send_email/template: there is no template `thanks` (templates/thanks.html, or `templates.thanks` embedded)",
        ]
    );
    // A text part alone does not make a template a step can name.
    assert_eq!(
        problems(serde_json::json!({"thanks": {"text": "Hi", "html": 3}})),
        [
            "/templates/thanks/html: expected the HTML part's source, found the number 3",
            "/steps/0/send_email/template: there is no template `thanks` (templates/thanks.html, or `templates.thanks` embedded)",
        ]
    );
}
