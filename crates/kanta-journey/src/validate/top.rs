//! The top level of a document: its name and settings, the trigger, entry rules and exit
//! conditions.

use crate::cron::Schedule;
use std::collections::BTreeMap;

use kanta_uplift::arm::Holdout;

use crate::document::{DateField, EntryRules, ExitCondition, Goal, GoalKind, Journey, TemplateSource, Trigger};
use crate::problem::Path;
use crate::reentry::Reentry;
use crate::tree::{Node, Value};
use crate::validate::Checker;
use crate::validate::fields::{Fields, boolean, one_kind, positive, text};
use crate::validate::steps::{self, inline_template};
use crate::validate::values::{Name, day_offset, duration, name, stage, zone};

/// The keys of a journey document.
const KEYS: &[&str] = &[
    "name",
    "description",
    "trigger",
    "entry",
    "exit_when",
    "timezone",
    "dry_run",
    "skip_if_late_by",
    "holdout",
    "goal",
    "steps",
    "templates",
    "layout",
];

/// The kinds of trigger: exactly one per trigger.
const TRIGGER_KINDS: &[&str] =
    &["event", "enters_segment", "leaves_segment", "stage_becomes", "date", "predicted_next_purchase", "schedule"];

/// The keys that qualify a trigger kind, with the kind they belong to.
const TRIGGER_OPTIONS: &[(&str, &str)] =
    &[("first_order", "event"), ("key", "event"), ("offset", "date"), ("yearly", "date")];

/// The kinds of exit condition.
const EXIT_KINDS: &[&str] = &["event", "enters_segment", "leaves_segment", "stage_becomes"];

/// What a goal can be.
const GOAL_KINDS: &[&str] = &["event", "enters_segment"];

/// The event `first_order` qualifies.
const ORDER_CREATED: &str = "order.created";

/// The whole document.
pub(super) fn journey(ck: &mut Checker<'_>, root: &Node) -> Option<Journey> {
    let path = Path::root();
    let mut fields = Fields::of(ck, root, &path, "a journey (a mapping with `name`, `trigger` and `steps`)")?;
    let journey_name = fields
        .require(ck, "name", "the journey's name, such as `welcome`")
        .and_then(|n| name(ck, n, &path.key("name"), Name::Journey));
    let description = fields.get("description").and_then(|d| text(ck, d, &path.key("description"), "text"));
    // The trigger first: the steps' `match_key` needs to know whether it has a key.
    let trigger = match fields.require(ck, "trigger", "what starts a run, such as `event: order.created`") {
        Some(node) => trigger(ck, node, &path.key("trigger")),
        None => None,
    };
    ck.trigger_broken = trigger.is_none();
    ck.trigger_key = match &trigger {
        Some(Trigger::Event { key, .. }) => key.clone(),
        _ => None,
    };
    let entry = match fields.get("entry") {
        Some(node) => entry(ck, node, &path.key("entry")),
        None => Some(EntryRules::default()),
    };
    let exit_when = match fields.get("exit_when") {
        Some(node) => exit_when(ck, node, &path.key("exit_when")),
        None => Some(Vec::new()),
    };
    let timezone = match fields.get("timezone") {
        Some(node) => zone(ck, node, &path.key("timezone")).map(Some),
        None => Some(None),
    };
    let dry_run = match fields.get("dry_run") {
        Some(node) => boolean(ck, node, &path.key("dry_run")),
        None => Some(false),
    };
    let skip_if_late_by = match fields.get("skip_if_late_by") {
        Some(node) => duration(ck, node, &path.key("skip_if_late_by")).map(Some),
        None => Some(None),
    };
    let holdout = match fields.get("holdout") {
        Some(node) => holdout(ck, node, &path.key("holdout")),
        None => Some(Holdout::NONE),
    };
    let goal = match fields.get("goal") {
        Some(node) => goal(ck, node, &path.key("goal")).map(Some),
        None => Some(None),
    };
    // A control group is compared on the goal: without one there is nothing to measure.
    if let (Some(h), Some(None), Some(node)) = (holdout, &goal, fields.get("holdout"))
        && h != Holdout::NONE
    {
        ck.report(
            node,
            &path.key("holdout"),
            "a holdout needs a `goal` to compare the groups on, such as `goal: { event: order.created, within: 30d }`",
        );
    }
    // The embedded templates before the steps: a step's `template: NAME` may name one.
    let templates = match fields.get("templates") {
        Some(node) => templates(ck, node, &path.key("templates")),
        None => Some(BTreeMap::new()),
    };
    let layout = match fields.get("layout") {
        Some(node) => template_source(ck, node, &path.key("layout")).map(Some),
        None => Some(None),
    };
    let steps = match fields.require(ck, "steps", "the list of steps") {
        Some(node) => {
            let steps_path = path.key("steps");
            match &node.value {
                Value::Seq(items) if items.is_empty() => {
                    ck.report(node, &steps_path, "`steps` is empty; a journey needs at least one step");
                    None
                }
                _ => steps::list(ck, node, &steps_path, "", 0),
            }
        }
        None => None,
    };
    fields.finish(ck, "a journey", KEYS);
    Some(Journey {
        name: journey_name?.to_owned(),
        description: description.map(str::to_owned),
        trigger: trigger?,
        entry: entry?,
        exit_when: exit_when?,
        timezone: timezone?,
        dry_run: dry_run?,
        skip_if_late_by: skip_if_late_by?,
        holdout: holdout?,
        goal: goal?,
        steps: steps?,
        templates: templates?,
        layout: layout?,
    })
}

/// `holdout`: a percentage below 100 % (`10%`, `2.5%`).
fn holdout(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Holdout> {
    let written = text(ck, node, path, "a percentage such as `10%`")?;
    match Holdout::parse(written) {
        Ok(h) if h.parts_per_million() >= 1_000_000 => {
            ck.report(node, path, format!("holdout `{written}` would hold out every customer: use less than 100%"));
            None
        }
        Ok(h) => Some(h),
        Err(e) => {
            ck.report(node, path, e.to_string());
            None
        }
    }
}

/// `goal`: `{ event: NAME | enters_segment: NAME, within: DURATION, exit: BOOL }`.
fn goal(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Goal> {
    let mut fields = Fields::of(ck, node, path, "a goal such as `{ event: order.created, within: 30d }`")?;
    let reached = match one_kind(ck, &mut fields, GOAL_KINDS, "a goal") {
        Some(("event", value)) => {
            name(ck, value, &path.key("event"), Name::Event).map(|e| GoalKind::Event(e.to_owned()))
        }
        Some(("enters_segment", value)) => {
            name(ck, value, &path.key("enters_segment"), Name::Segment).map(|s| GoalKind::EntersSegment(s.to_owned()))
        }
        _ => None,
    };
    let within =
        fields.require(ck, "within", "how long after entering a conversion counts, such as `30d`").and_then(|node| {
            let d = duration(ck, node, &path.key("within"))?;
            if d.is_zero() {
                ck.report(node, &path.key("within"), "`within` must be longer than 0s");
                return None;
            }
            Some(d)
        });
    let exit = match fields.get("exit") {
        Some(node) => boolean(ck, node, &path.key("exit")),
        None => Some(false),
    };
    fields.finish(ck, "a goal", &["event", "enters_segment", "within", "exit"]);
    Some(Goal { reached: reached?, within: within?, exit: exit? })
}

/// `templates`: embedded templates by name.
fn templates(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<BTreeMap<String, TemplateSource>> {
    let Value::Map(entries) = &node.value else {
        let found = node.describe();
        ck.report(node, path, format!("expected a mapping of template names to `{{ html, text }}`, found {found}"));
        return None;
    };
    let mut out = Some(BTreeMap::new());
    for (key, value) in entries {
        let entry_path = path.key(&key.name);
        if let Some(problem) = Name::File.problem(&key.name) {
            ck.report_at(key.at, &entry_path, format!("`{}` is not a template name: {problem}", key.name));
            out = None;
            continue;
        }
        let source = template_source(ck, value, &entry_path);
        if let Some(source) = &source
            && source.html.is_some()
        {
            ck.embedded.insert(key.name.clone());
        }
        out = out.zip(source).map(|(mut out, source)| {
            out.insert(key.name.clone(), source);
            out
        });
    }
    out
}

/// One embedded template, `{ html, text }`, each part checked by the caller's template language.
fn template_source(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<TemplateSource> {
    let mut fields = Fields::of(ck, node, path, "a template (a mapping such as `{ html: \"<p>...</p>\" }`)")?;
    let mut part = |ck: &mut Checker<'_>, key: &str, what: &str| match fields.get(key) {
        Some(node) => inline_template(ck, node, &path.key(key), what).map(|s| Some(s.to_owned())),
        None => Some(None),
    };
    let html = part(ck, "html", "the HTML part's source");
    let text = part(ck, "text", "the text part's source");
    if let (Some(None), Some(None)) = (&html, &text) {
        ck.report(node, path, "a template needs `html`, `text` or both");
        return None;
    }
    fields.finish(ck, "a template", &["html", "text"]);
    Some(TemplateSource { html: html?, text: text? })
}

/// The trigger.
fn trigger(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Trigger> {
    let mut fields = Fields::of(ck, node, path, "a trigger (a mapping such as `event: order.created`)")?;
    let kind = one_kind(ck, &mut fields, TRIGGER_KINDS, "a trigger");
    // Options of another kind than the one given.
    if let Some((kind, _)) = kind {
        for (option, owner) in TRIGGER_OPTIONS {
            if *owner != kind
                && let Some(key) = fields.key(option)
            {
                ck.report_at(
                    key.at,
                    &path.key(option),
                    format!("`{option}` applies to a `{owner}` trigger, not to `{kind}`"),
                );
                fields.get(option);
            }
        }
    }
    let known: Vec<&str> = TRIGGER_KINDS.iter().chain(TRIGGER_OPTIONS.iter().map(|(o, _)| o)).copied().collect();
    let result =
        match kind {
            Some(("event", value)) => event_trigger(ck, &mut fields, value, path),
            Some(("enters_segment", value)) => name(ck, value, &path.key("enters_segment"), Name::Segment)
                .map(|s| Trigger::EntersSegment(s.to_owned())),
            Some(("leaves_segment", value)) => name(ck, value, &path.key("leaves_segment"), Name::Segment)
                .map(|s| Trigger::LeavesSegment(s.to_owned())),
            Some(("stage_becomes", value)) => stage(ck, value, &path.key("stage_becomes")).map(Trigger::StageBecomes),
            Some(("date", value)) => date_trigger(ck, &mut fields, value, path),
            Some(("predicted_next_purchase", value)) => predicted(ck, value, &path.key("predicted_next_purchase")),
            Some(("schedule", value)) => schedule(ck, value, &path.key("schedule")),
            _ => None,
        };
    fields.finish(ck, "the trigger", &known);
    result
}

fn event_trigger(ck: &mut Checker<'_>, fields: &mut Fields<'_>, value: &Node, path: &Path) -> Option<Trigger> {
    let event = name(ck, value, &path.key("event"), Name::Event);
    let first_order = match fields.get("first_order") {
        Some(node) => {
            let first = boolean(ck, node, &path.key("first_order"));
            match event {
                Some(event) if event != ORDER_CREATED => {
                    let at = fields.key("first_order").and_then(|k| k.at);
                    ck.report_at(
                        at,
                        &path.key("first_order"),
                        format!("`first_order` applies only to `event: {ORDER_CREATED}`, not to `{event}`"),
                    );
                    None
                }
                _ => first,
            }
        }
        None => Some(false),
    };
    let key = match fields.get("key") {
        Some(node) => name(ck, node, &path.key("key"), Name::Property).map(|k| Some(k.to_owned())),
        None => Some(None),
    };
    Some(Trigger::Event { name: event?.to_owned(), first_order: first_order?, key: key? })
}

fn date_trigger(ck: &mut Checker<'_>, fields: &mut Fields<'_>, value: &Node, path: &Path) -> Option<Trigger> {
    const EXPECTED: &str = "`birthday`, `first_purchase` or `attributes.NAME`";
    let field_path = path.key("date");
    let field = match text(ck, value, &field_path, EXPECTED) {
        None => None,
        Some("birthday") => Some(DateField::Birthday),
        Some("first_purchase") => Some(DateField::FirstPurchase),
        Some(written) => match written.strip_prefix("attributes.") {
            Some(attribute) => match Name::Property.problem(attribute) {
                None => Some(DateField::Attribute(attribute.to_owned())),
                Some(problem) => {
                    ck.report(value, &field_path, format!("`{written}` is not a date attribute: its name {problem}"));
                    None
                }
            },
            None => {
                ck.report(
                    value,
                    &field_path,
                    format!("`{written}` is not a date of the customer: expected {EXPECTED}"),
                );
                None
            }
        },
    };
    let offset_days = match fields.get("offset") {
        Some(node) => day_offset(ck, node, &path.key("offset")),
        None => Some(0),
    };
    // A birthday recurs; "once, on the birth date" would be in the past for everyone.
    let yearly = match fields.get("yearly") {
        Some(node) => boolean(ck, node, &path.key("yearly")),
        None => Some(field == Some(DateField::Birthday)),
    };
    Some(Trigger::Date { field: field?, offset_days: offset_days?, yearly: yearly? })
}

fn predicted(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Trigger> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ offset: -3d }`")?;
    let offset_days = match fields.get("offset") {
        Some(node) => day_offset(ck, node, &path.key("offset")),
        None => Some(0),
    };
    fields.finish(ck, "predicted_next_purchase", &["offset"]);
    Some(Trigger::PredictedNextPurchase { offset_days: offset_days? })
}

fn schedule(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Trigger> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ cron: \"0 9 * * mon\", segment: NAME }`")?;
    let cron = fields.require(ck, "cron", "when, as five cron fields such as `0 9 * * mon`").and_then(|node| {
        let written = text(ck, node, &path.key("cron"), "a cron schedule such as `\"0 9 * * mon\"`")?;
        match Schedule::parse(written) {
            Ok(schedule) => Some(schedule),
            Err(e) => {
                ck.report(node, &path.key("cron"), e.to_string());
                None
            }
        }
    });
    let segment = fields
        .require(ck, "segment", "the saved segment whose members enter")
        .and_then(|node| name(ck, node, &path.key("segment"), Name::Segment));
    fields.finish(ck, "schedule", &["cron", "segment"]);
    Some(Trigger::Schedule { cron: cron?, segment: segment?.to_owned() })
}

/// `entry`: the re-entry policy and the concurrency limit.
fn entry(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<EntryRules> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ reentry: once }`")?;
    let reentry = match fields.get("reentry") {
        Some(node) => reentry(ck, node, &path.key("reentry")),
        None => Some(Reentry::Once),
    };
    let max = match fields.get("max_concurrent_journeys") {
        Some(node) => positive(ck, node, &path.key("max_concurrent_journeys"), "`max_concurrent_journeys`").map(Some),
        None => Some(None),
    };
    fields.finish(ck, "entry", &["reentry", "max_concurrent_journeys"]);
    Some(EntryRules { reentry: reentry?, max_concurrent_journeys: max? })
}

fn reentry(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Reentry> {
    const EXPECTED: &str = "`once`, `always` or `{ after: 90d }`";
    match &node.value {
        Value::Str(s) if s == "once" => Some(Reentry::Once),
        Value::Str(s) if s == "always" => Some(Reentry::Always),
        Value::Map(_) => {
            let mut fields = Fields::of(ck, node, path, EXPECTED)?;
            let after = fields
                .require(ck, "after", "how long after entering a customer may enter again")
                .and_then(|node| duration(ck, node, &path.key("after")));
            fields.finish(ck, "reentry", &["after"]);
            after.map(Reentry::After)
        }
        _ => {
            ck.report(node, path, format!("expected {EXPECTED}, found {}", node.describe()));
            None
        }
    }
}

/// `exit_when`: a list of exit conditions.
fn exit_when(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Vec<ExitCondition>> {
    let Value::Seq(items) = &node.value else {
        ck.report(
            node,
            path,
            format!("expected a list such as `[{{ event: order.created }}]`, found {}", node.describe()),
        );
        return None;
    };
    let mut out = Some(Vec::new());
    for (i, item) in items.iter().enumerate() {
        let path = path.index(i);
        let condition = exit_condition(ck, item, &path);
        out = out.zip(condition).map(|(mut out, c)| {
            out.push(c);
            out
        });
    }
    out
}

fn exit_condition(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<ExitCondition> {
    let mut fields = Fields::of(ck, node, path, "an exit condition such as `{ event: order.created }`")?;
    let kind = one_kind(ck, &mut fields, EXIT_KINDS, "an exit condition");
    let result = match kind {
        Some(("event", value)) => {
            name(ck, value, &path.key("event"), Name::Event).map(|e| ExitCondition::Event(e.to_owned()))
        }
        Some(("enters_segment", value)) => name(ck, value, &path.key("enters_segment"), Name::Segment)
            .map(|s| ExitCondition::EntersSegment(s.to_owned())),
        Some(("leaves_segment", value)) => name(ck, value, &path.key("leaves_segment"), Name::Segment)
            .map(|s| ExitCondition::LeavesSegment(s.to_owned())),
        Some(("stage_becomes", value)) => stage(ck, value, &path.key("stage_becomes")).map(ExitCondition::StageBecomes),
        _ => None,
    };
    fields.finish(ck, "an exit condition", EXIT_KINDS);
    result
}
