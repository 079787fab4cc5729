//! A journey as JSON: the document form (the same keys as YAML, defaults left out), its
//! canonical text and digest, and the way back.
//!
//! The canonical text is the document form with every mapping's keys sorted, no whitespace,
//! and defaults omitted, so a re-applied document that differs only in comments, layout, key
//! order, quoting or spelled-out defaults (`dry_run: false`, `14d` for `2w`) has the same
//! [`Journey::digest`], and the store can tell it from a new version.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use kanta_uplift::arm::Holdout;

use crate::document::{
    Arm, Awaited, Body, DateField, EntryRules, ExitCondition, GoalKind, Journey, OnTimeout, Step, StepKind,
    TemplateSource, Trigger, WebhookTarget, duration_text,
};
use crate::problem::{Path, Problem, Problems};
use crate::reentry::Reentry;
use crate::validate::{AnyTemplate, validate_json};
use crate::when::Weekdays;

impl Journey {
    /// The journey as a JSON document (what [`validate_json`] reads), defaults left out.
    pub fn to_value(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("name".into(), json!(self.name));
        if let Some(description) = &self.description {
            doc.insert("description".into(), json!(description));
        }
        doc.insert("trigger".into(), trigger(&self.trigger));
        if self.entry != EntryRules::default() {
            doc.insert("entry".into(), entry(self.entry));
        }
        if !self.exit_when.is_empty() {
            doc.insert("exit_when".into(), Value::Array(self.exit_when.iter().map(exit_condition).collect()));
        }
        if let Some(tz) = self.timezone {
            doc.insert("timezone".into(), json!(tz.name()));
        }
        if self.dry_run {
            doc.insert("dry_run".into(), json!(true));
        }
        if let Some(late) = self.skip_if_late_by {
            doc.insert("skip_if_late_by".into(), json!(duration_text(late)));
        }
        if self.holdout != Holdout::NONE {
            doc.insert("holdout".into(), json!(self.holdout.to_string()));
        }
        if let Some(goal) = &self.goal {
            let mut g = Map::new();
            match &goal.reached {
                GoalKind::Event(name) => g.insert("event".into(), json!(name)),
                GoalKind::EntersSegment(name) => g.insert("enters_segment".into(), json!(name)),
            };
            g.insert("within".into(), json!(duration_text(goal.within)));
            if goal.exit {
                g.insert("exit".into(), json!(true));
            }
            doc.insert("goal".into(), Value::Object(g));
        }
        doc.insert("steps".into(), steps(&self.steps));
        if !self.templates.is_empty() {
            let templates = self.templates.iter().map(|(name, source)| (name.clone(), template(source))).collect();
            doc.insert("templates".into(), Value::Object(templates));
        }
        if let Some(layout) = &self.layout {
            doc.insert("layout".into(), template(layout));
        }
        Value::Object(doc)
    }

    /// The canonical JSON text: [`Journey::to_value`] with sorted keys and no whitespace.
    pub fn canonical_json(&self) -> String {
        sorted(self.to_value()).to_string()
    }

    /// The SHA-256 of [`Journey::canonical_json`], in lowercase hex: equal for documents that
    /// say the same thing.
    pub fn digest(&self) -> String {
        Sha256::digest(self.canonical_json().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a journey back from JSON text (the canonical form, or any JSON document),
    /// validating it. Template names are not looked up and embedded templates are not checked
    /// again: both were when the journey was applied (a version applied before versions carried
    /// their templates names templates it does not hold; rendering those fails the message).
    pub fn from_json(text: &str) -> Result<Journey, Problems> {
        let value: Value = serde_json::from_str(text).map_err(|e| Problems {
            file: None,
            problems: vec![Problem {
                line: Some(e.line()),
                column: Some(e.column()),
                path: Path::root(),
                message: format!("this is not valid JSON: {e}"),
            }],
        })?;
        validate_json(&value, &AnyTemplate)
    }
}

impl Serialize for Journey {
    /// As [`Journey::to_value`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Journey {
    /// Any JSON document, validated ([`validate_json`], templates not looked up).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Journey, D::Error> {
        let value = Value::deserialize(deserializer)?;
        validate_json(&value, &AnyTemplate).map_err(D::Error::custom)
    }
}

/// An embedded template: `{ "html": ..., "text": ... }`, absent parts left out.
fn template(source: &TemplateSource) -> Value {
    let mut t = Map::new();
    if let Some(html) = &source.html {
        t.insert("html".into(), json!(html));
    }
    if let Some(text) = &source.text {
        t.insert("text".into(), json!(text));
    }
    Value::Object(t)
}

/// `value` with the keys of every object sorted.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A day offset as written: `-14d`, `3d`.
fn offset_text(days: i32) -> String {
    format!("{days}d")
}

fn trigger(trigger: &Trigger) -> Value {
    match trigger {
        Trigger::Event { name, first_order, key } => {
            let mut t = Map::new();
            t.insert("event".into(), json!(name));
            if *first_order {
                t.insert("first_order".into(), json!(true));
            }
            if let Some(key) = key {
                t.insert("key".into(), json!(key));
            }
            Value::Object(t)
        }
        Trigger::EntersSegment(segment) => json!({ "enters_segment": segment }),
        Trigger::LeavesSegment(segment) => json!({ "leaves_segment": segment }),
        Trigger::StageBecomes(stage) => json!({ "stage_becomes": stage.name() }),
        Trigger::Date { field, offset_days, yearly } => {
            let mut t = Map::new();
            t.insert("date".into(), json!(field.to_string()));
            if *offset_days != 0 {
                t.insert("offset".into(), json!(offset_text(*offset_days)));
            }
            if *yearly != (*field == DateField::Birthday) {
                t.insert("yearly".into(), json!(yearly));
            }
            Value::Object(t)
        }
        Trigger::PredictedNextPurchase { offset_days } => {
            let mut p = Map::new();
            if *offset_days != 0 {
                p.insert("offset".into(), json!(offset_text(*offset_days)));
            }
            json!({ "predicted_next_purchase": p })
        }
        Trigger::Schedule { cron, segment } => {
            json!({ "schedule": { "cron": cron.as_str(), "segment": segment } })
        }
    }
}

fn entry(entry: EntryRules) -> Value {
    let mut e = Map::new();
    match entry.reentry {
        Reentry::Once => {}
        Reentry::Always => {
            e.insert("reentry".into(), json!("always"));
        }
        Reentry::After(d) => {
            e.insert("reentry".into(), json!({ "after": duration_text(d) }));
        }
    }
    if let Some(max) = entry.max_concurrent_journeys {
        e.insert("max_concurrent_journeys".into(), json!(max));
    }
    Value::Object(e)
}

fn exit_condition(condition: &ExitCondition) -> Value {
    match condition {
        ExitCondition::Event(event) => json!({ "event": event }),
        ExitCondition::EntersSegment(segment) => json!({ "enters_segment": segment }),
        ExitCondition::LeavesSegment(segment) => json!({ "leaves_segment": segment }),
        ExitCondition::StageBecomes(stage) => json!({ "stage_becomes": stage.name() }),
    }
}

fn steps(steps: &[Step]) -> Value {
    Value::Array(steps.iter().map(step).collect())
}

fn step(step: &Step) -> Value {
    if step.kind == StepKind::Exit && step.id.is_none() {
        return json!("exit");
    }
    let mut s = Map::new();
    if let Some(id) = &step.id {
        s.insert("id".into(), json!(id.as_str()));
    }
    s.insert(step.kind.name().into(), kind(&step.kind));
    Value::Object(s)
}

fn kind(kind: &StepKind) -> Value {
    match kind {
        StepKind::Wait(d) => json!(duration_text(*d)),
        StepKind::WaitUntil { local_time, weekdays } => {
            let mut w = Map::new();
            w.insert("local_time".into(), json!(local_time.format("%H:%M").to_string()));
            if *weekdays != Weekdays::ALL {
                let names: Vec<String> = weekdays.to_string().split(',').map(str::to_owned).collect();
                w.insert("weekdays".into(), json!(names));
            }
            Value::Object(w)
        }
        StepKind::WaitFor { awaited, timeout, on_timeout } => {
            let mut w = Map::new();
            match awaited {
                Awaited::Event { name, match_key } => {
                    w.insert("event".into(), json!(name));
                    if *match_key {
                        w.insert("match_key".into(), json!(true));
                    }
                }
                Awaited::EntersSegment(segment) => {
                    w.insert("enters_segment".into(), json!(segment));
                }
            }
            w.insert("timeout".into(), json!(duration_text(*timeout)));
            match on_timeout {
                OnTimeout::Continue => {}
                OnTimeout::Exit => {
                    w.insert("on_timeout".into(), json!("exit"));
                }
                OnTimeout::Steps(list) => {
                    w.insert("on_timeout".into(), steps(list));
                }
            }
            Value::Object(w)
        }
        StepKind::Branch { condition, then, otherwise } => {
            let mut b = Map::new();
            b.insert("if".into(), json!(condition));
            for (key, arm) in [("then", then), ("else", otherwise)] {
                match arm {
                    Some(Arm::Exit) => {
                        b.insert(key.into(), json!("exit"));
                    }
                    Some(Arm::Steps(list)) => {
                        b.insert(key.into(), steps(list));
                    }
                    None => {}
                }
            }
            Value::Object(b)
        }
        StepKind::Split(arms) => {
            Value::Array(arms.iter().map(|arm| json!({ "weight": arm.weight, "steps": steps(&arm.steps) })).collect())
        }
        StepKind::SendEmail(email) => {
            let mut e = Map::new();
            e.insert("subject".into(), json!(email.subject));
            match &email.body {
                Body::Inline { html, text } => {
                    e.insert("html".into(), json!(html));
                    if let Some(text) = text {
                        e.insert("text".into(), json!(text));
                    }
                }
                Body::Template(name) => {
                    e.insert("template".into(), json!(name));
                }
            }
            if email.transactional {
                e.insert("transactional".into(), json!(true));
            }
            Value::Object(e)
        }
        StepKind::Webhook(webhook) => {
            let mut w = Map::new();
            match &webhook.target {
                WebhookTarget::Endpoint(name) => w.insert("endpoint".into(), json!(name)),
                WebhookTarget::Url(url) => w.insert("url".into(), json!(url)),
            };
            if let Some(body) = &webhook.body {
                w.insert("body".into(), body.clone());
            }
            Value::Object(w)
        }
        StepKind::Update(update) => {
            let mut u = Map::new();
            if !update.set.is_empty() {
                let set: Map<String, Value> =
                    update.set.iter().map(|(k, v)| (format!("attributes.{k}"), v.clone())).collect();
                u.insert("set".into(), Value::Object(set));
            }
            if !update.tags.is_empty() {
                u.insert("tag".into(), json!(update.tags));
            }
            Value::Object(u)
        }
        StepKind::Exit => Value::Null,
    }
}
