//! Steps: each kind's keys and rules, step ids, and steps that can never be reached.

use std::collections::BTreeMap;

use crate::document::{
    Arm, Awaited, Body, Email, OnTimeout, SplitArm, Step, StepId, StepKind, Update, Webhook, WebhookTarget,
    step_always_exits,
};
use crate::problem::Path;
use crate::tree::{Node, Value};
use crate::validate::Checker;
use crate::validate::fields::{Fields, boolean, closest, one_kind, positive, text};
use crate::validate::values::{Name, duration, local_time, name, url, weekdays};
use crate::when::Weekdays;

/// The kinds of step, each the key that holds the step's settings.
pub(crate) const STEP_KINDS: &[&str] =
    &["wait", "wait_until", "wait_for", "branch", "split", "send_email", "webhook", "update", "exit"];

/// A list of steps. `prefix` starts the path ids of its steps (`""` at the top, `4.then.` in
/// the `then` arm of step 4).
pub(super) fn list(ck: &mut Checker<'_>, node: &Node, path: &Path, prefix: &str, depth: usize) -> Option<Vec<Step>> {
    let Value::Seq(items) = &node.value else {
        ck.report(node, path, format!("expected a list of steps, found {}", node.describe()));
        return None;
    };
    let mut out = Some(Vec::with_capacity(items.len()));
    // The first step of the list that always ends the run, once a step after it is reported.
    let mut exits_at: Option<Path> = None;
    let mut reported = false;
    for (i, item) in items.iter().enumerate() {
        let item_path = path.index(i);
        if let (Some(exit_path), false) = (&exits_at, reported) {
            ck.report(
                item,
                &item_path,
                format!("this step is never reached: `{exit_path}` always ends the run before it"),
            );
            reported = true;
        }
        let step = step(ck, item, &item_path, &format!("{prefix}{i}"), depth);
        if let Some(step) = &step
            && exits_at.is_none()
            && step_always_exits(&step.kind)
        {
            exits_at = Some(item_path);
        }
        out = out.zip(step).map(|(mut out, step)| {
            out.push(step);
            out
        });
    }
    out
}

/// An example of each kind, for messages.
fn example(kind: &str) -> &'static str {
    match kind {
        "wait" => "`wait: 3d`",
        "wait_until" => "`wait_until: { local_time: \"10:00\" }`",
        "wait_for" => "`wait_for: { event: order.created, timeout: 2d }`",
        "branch" => "`branch: { if: \"orders >= 2\", then: exit }`",
        "split" => "`split: [{ weight: 50, steps: [...] }, { weight: 50, steps: [] }]`",
        "send_email" => "`send_email: { subject: ..., template: NAME }`",
        "webhook" => "`webhook: { endpoint: NAME }`",
        "update" => "`update: { set: { attributes.NAME: value } }`",
        _ => "`exit`",
    }
}

/// One step; `auto_id` is its path id, used when the document gives none.
fn step(ck: &mut Checker<'_>, node: &Node, path: &Path, auto_id: &str, depth: usize) -> Option<Step> {
    const EXPECTED: &str = "a step (a mapping with one of `wait`, `wait_until`, `wait_for`, `branch`, `split`, `send_email`, `webhook`, `update`, or `exit`)";
    match &node.value {
        Value::Str(s) if s == "exit" => return Some(Step { id: None, kind: StepKind::Exit }),
        Value::Str(s) if STEP_KINDS.contains(&s.as_str()) => {
            ck.report(node, path, format!("`{s}` needs its settings, such as {}", example(s)));
            return None;
        }
        Value::Str(s) => {
            let hint = closest(s, STEP_KINDS).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
            ck.report(node, path, format!("expected {EXPECTED}, found {}{hint}", node.describe()));
            return None;
        }
        _ => {}
    }
    let mut fields = Fields::of(ck, node, path, EXPECTED)?;
    let id = match fields.get("id") {
        Some(id_node) => {
            let id =
                text(ck, id_node, &path.key("id"), "a step id such as `thanks`").and_then(
                    |written| match StepId::parse(written) {
                        Ok(id) => Some(id),
                        Err(problem) => {
                            ck.report(id_node, &path.key("id"), format!("`{written}` is not a step id: {problem}"));
                            None
                        }
                    },
                );
            if let Some(id) = &id {
                ck.claim_id(id, id_node, &path.key("id"));
            }
            id.map(Some)
        }
        None => Some(None),
    };
    let own_id = match &id {
        Some(Some(id)) => id.as_str().to_owned(),
        _ => auto_id.to_owned(),
    };
    let kind = match one_kind(ck, &mut fields, STEP_KINDS, "a step") {
        Some((kind, value)) => {
            let path = path.key(kind);
            match kind {
                "wait" => duration(ck, value, &path).map(StepKind::Wait),
                "wait_until" => wait_until(ck, value, &path),
                "wait_for" => wait_for(ck, value, &path, &own_id, depth),
                "branch" => branch(ck, value, &path, &own_id, depth),
                "split" => split(ck, value, &path, &own_id, depth),
                "send_email" => send_email(ck, value, &path).map(StepKind::SendEmail),
                "webhook" => webhook(ck, value, &path).map(StepKind::Webhook),
                "update" => update(ck, value, &path).map(StepKind::Update),
                _ => exit(ck, value, &path),
            }
        }
        None => None,
    };
    let known: Vec<&str> = std::iter::once("id").chain(STEP_KINDS.iter().copied()).collect();
    fields.finish(ck, "a step", &known);
    Some(Step { id: id?, kind: kind? })
}

fn exit(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<StepKind> {
    match &node.value {
        Value::Null => Some(StepKind::Exit),
        Value::Map(entries) if entries.is_empty() => Some(StepKind::Exit),
        _ => {
            ck.report(node, path, format!("`exit` takes no settings, found {}", node.describe()));
            None
        }
    }
}

fn wait_until(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<StepKind> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ local_time: \"10:00\" }`")?;
    let time = fields
        .require(ck, "local_time", "the local time to wait for, such as `\"10:00\"`")
        .and_then(|node| local_time(ck, node, &path.key("local_time")));
    let days = match fields.get("weekdays") {
        Some(node) => weekdays(ck, node, &path.key("weekdays")),
        None => Some(Weekdays::ALL),
    };
    fields.finish(ck, "wait_until", &["local_time", "weekdays"]);
    Some(StepKind::WaitUntil { local_time: time?, weekdays: days? })
}

fn wait_for(ck: &mut Checker<'_>, node: &Node, path: &Path, own_id: &str, depth: usize) -> Option<StepKind> {
    const KEYS: &[&str] = &["event", "enters_segment", "match_key", "timeout", "on_timeout"];
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ event: order.created, timeout: 2d }`")?;
    let awaited = match one_kind(ck, &mut fields, &["event", "enters_segment"], "a wait_for") {
        Some(("event", value)) => name(ck, value, &path.key("event"), Name::Event).map(|e| (true, e)),
        Some((_, value)) => name(ck, value, &path.key("enters_segment"), Name::Segment).map(|s| (false, s)),
        None => None,
    };
    let match_key = match fields.get("match_key") {
        Some(node) => {
            let key_path = path.key("match_key");
            let at = fields.key("match_key").and_then(|k| k.at);
            match boolean(ck, node, &key_path) {
                Some(true) if matches!(awaited, Some((false, _))) => {
                    ck.report_at(at, &key_path, "`match_key` applies to a `wait_for` an event, not a segment");
                    None
                }
                Some(true) if ck.trigger_key.is_none() && !ck.trigger_broken => {
                    ck.report_at(
                        at,
                        &key_path,
                        "`match_key` needs an event trigger with a `key` (such as `key: cart_id`); this journey's trigger has none",
                    );
                    None
                }
                other => other,
            }
        }
        None => Some(false),
    };
    let timeout = fields
        .require(ck, "timeout", "the longest wait, such as `2d`")
        .and_then(|node| duration(ck, node, &path.key("timeout")));
    let on_timeout = match fields.get("on_timeout") {
        Some(node) => on_timeout(ck, node, &path.key("on_timeout"), &format!("{own_id}.on_timeout."), depth),
        None => Some(OnTimeout::Continue),
    };
    fields.finish(ck, "wait_for", KEYS);
    let awaited = match awaited? {
        (true, event) => Awaited::Event { name: event.to_owned(), match_key: match_key? },
        (false, segment) => Awaited::EntersSegment(segment.to_owned()),
    };
    Some(StepKind::WaitFor { awaited, timeout: timeout?, on_timeout: on_timeout? })
}

fn on_timeout(ck: &mut Checker<'_>, node: &Node, path: &Path, prefix: &str, depth: usize) -> Option<OnTimeout> {
    match &node.value {
        Value::Str(s) if s == "continue" => Some(OnTimeout::Continue),
        Value::Str(s) if s == "exit" => Some(OnTimeout::Exit),
        Value::Seq(items) if !items.is_empty() => list(ck, node, path, prefix, depth + 1).map(OnTimeout::Steps),
        _ => {
            ck.report(
                node,
                path,
                format!("expected `continue`, `exit` or a non-empty list of steps, found {}", node.describe()),
            );
            None
        }
    }
}

fn branch(ck: &mut Checker<'_>, node: &Node, path: &Path, own_id: &str, depth: usize) -> Option<StepKind> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ if: \"orders >= 2\", then: exit }`")?;
    let condition = fields
        .require(ck, "if", "the condition, in the segment language, such as `\"orders >= 2\"`")
        .and_then(|node| condition(ck, node, &path.key("if")));
    let then = match fields.get("then") {
        Some(node) => arm(ck, node, &path.key("then"), &format!("{own_id}.then."), depth).map(Some),
        None => Some(None),
    };
    let otherwise = match fields.get("else") {
        Some(node) => arm(ck, node, &path.key("else"), &format!("{own_id}.else."), depth).map(Some),
        None => Some(None),
    };
    if fields.key("then").is_none() && fields.key("else").is_none() {
        ck.report(node, path, "a branch needs `then`, `else` or both (each `exit` or a list of steps)");
    }
    fields.finish(ck, "branch", &["if", "then", "else"]);
    Some(StepKind::Branch { condition: condition?.to_owned(), then: then?, otherwise: otherwise? })
}

/// A segment condition, its error placed at its column inside the file.
fn condition<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path) -> Option<&'n str> {
    let written = text(ck, node, path, "a condition in the segment language, such as `\"orders >= 2\"`")?;
    let checked = kanta_segment::parse(written).and_then(|expr| kanta_segment::check(written, &expr));
    match checked {
        Ok(()) => Some(written),
        Err(e) => {
            ck.report_inside(node, e.column.saturating_sub(1), path, e.to_string());
            None
        }
    }
}

fn arm(ck: &mut Checker<'_>, node: &Node, path: &Path, prefix: &str, depth: usize) -> Option<Arm> {
    match &node.value {
        Value::Str(s) if s == "exit" => Some(Arm::Exit),
        Value::Seq(items) if items.is_empty() => {
            ck.report(node, path, "the list of steps is empty; leave the arm out to go on with the next step");
            None
        }
        Value::Seq(_) => list(ck, node, path, prefix, depth + 1).map(Arm::Steps),
        _ => {
            ck.report(node, path, format!("expected `exit` or a list of steps, found {}", node.describe()));
            None
        }
    }
}

fn split(ck: &mut Checker<'_>, node: &Node, path: &Path, own_id: &str, depth: usize) -> Option<StepKind> {
    let items = match &node.value {
        Value::Seq(items) if items.len() >= 2 => items,
        _ => {
            ck.report(
                node,
                path,
                format!(
                    "expected a list of two or more arms such as `[{{ weight: 50, steps: [...] }}, {{ weight: 50, steps: [] }}]`, found {}",
                    match &node.value {
                        Value::Seq(items) => format!("{} arm", items.len()),
                        _ => node.describe(),
                    }
                ),
            );
            return None;
        }
    };
    let mut arms = Some(Vec::new());
    for (i, item) in items.iter().enumerate() {
        let arm_path = path.index(i);
        let arm = split_arm(ck, item, &arm_path, &format!("{own_id}.split.{i}."), depth);
        arms = arms.zip(arm).map(|(mut arms, arm)| {
            arms.push(arm);
            arms
        });
    }
    arms.map(StepKind::Split)
}

fn split_arm(ck: &mut Checker<'_>, node: &Node, path: &Path, prefix: &str, depth: usize) -> Option<SplitArm> {
    let mut fields = Fields::of(ck, node, path, "a split arm such as `{ weight: 50, steps: [...] }`")?;
    let weight = fields
        .require(ck, "weight", "the arm's share, a positive whole number")
        .and_then(|node| positive(ck, node, &path.key("weight"), "a split weight"));
    let steps = match fields.require(ck, "steps", "the arm's steps; `[]` for a control group") {
        Some(node) => list(ck, node, &path.key("steps"), prefix, depth + 1),
        None => None,
    };
    fields.finish(ck, "a split arm", &["weight", "steps"]);
    Some(SplitArm { weight: weight?, steps: steps? })
}

fn send_email(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Email> {
    const KEYS: &[&str] = &["subject", "html", "template", "text", "transactional"];
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ subject: ..., template: NAME }`")?;
    let subject = fields.require(ck, "subject", "the subject line").and_then(|node| {
        let subject = inline_template(ck, node, &path.key("subject"), "the subject line")?;
        if subject.trim().is_empty() {
            ck.report(node, &path.key("subject"), "the subject is empty");
            return None;
        }
        Some(subject)
    });
    let html = fields.get("html").map(|node| inline_template(ck, node, &path.key("html"), "the HTML body"));
    let template = fields.get("template").map(|node| template(ck, node, &path.key("template")));
    let text_part = fields.get("text").map(|node| inline_template(ck, node, &path.key("text"), "the text body"));
    let transactional = match fields.get("transactional") {
        Some(node) => boolean(ck, node, &path.key("transactional")),
        None => Some(false),
    };
    let body = match (html, template, text_part) {
        (Some(_), Some(_), _) => {
            let at = fields.key("template").and_then(|k| k.at);
            ck.report_at(
                at,
                &path.key("template"),
                "a message has one body: `html` (written here) or `template` (a file), not both",
            );
            None
        }
        (None, None, _) => {
            ck.report(node, path, "missing key `html` or `template` (the message's body)");
            None
        }
        (None, Some(_), Some(_)) => {
            let at = fields.key("text").and_then(|k| k.at);
            ck.report_at(
                at,
                &path.key("text"),
                "`text` goes with `html`; a template's text part is `templates/NAME.txt`",
            );
            None
        }
        (Some(html), None, text_part) => match (html, text_part) {
            (Some(html), None) => Some(Body::Inline { html: html.to_owned(), text: None }),
            (Some(html), Some(Some(text))) => Some(Body::Inline { html: html.to_owned(), text: Some(text.to_owned()) }),
            _ => None,
        },
        (None, Some(template), None) => template.map(|t| Body::Template(t.to_owned())),
    };
    fields.finish(ck, "send_email", KEYS);
    Some(Email { subject: subject?.to_owned(), body: body?, transactional: transactional? })
}

/// A template written in the document (a subject, an inline part, an embedded template's
/// source), checked by the caller's template language.
pub(super) fn inline_template<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path, what: &str) -> Option<&'n str> {
    let source = text(ck, node, path, what)?;
    match ck.templates.check(source) {
        Ok(()) => Some(source),
        Err(problem) => {
            ck.report(node, path, format!("this template cannot be rendered: {problem}"));
            None
        }
    }
}

/// A template name that is embedded in the document (`templates: { NAME: { html } }`) or
/// exists where the caller looks (a file beside the journey).
fn template<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path) -> Option<&'n str> {
    let written = name(ck, node, path, Name::File)?;
    if ck.embedded.contains(written) || ck.templates.contains(written) {
        return Some(written);
    }
    let mut names = ck.templates.names();
    names.extend(ck.embedded.iter().cloned());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = closest(written, &names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
    let message =
        format!("there is no template `{written}` (templates/{written}.html, or `templates.{written}` embedded){hint}");
    ck.report(node, path, message);
    None
}

fn webhook(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Webhook> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ endpoint: NAME }`")?;
    let target = match one_kind(ck, &mut fields, &["endpoint", "url"], "a webhook") {
        Some(("endpoint", value)) => {
            name(ck, value, &path.key("endpoint"), Name::File).map(|e| WebhookTarget::Endpoint(e.to_owned()))
        }
        Some((_, value)) => url(ck, value, &path.key("url")).map(|u| WebhookTarget::Url(u.to_owned())),
        None => None,
    };
    let body = match fields.get("body") {
        Some(node @ Node { value: Value::Map(_), .. }) => {
            body_templates(ck, node, &path.key("body"));
            Some(Some(node.to_json()))
        }
        Some(node) => {
            ck.report(
                node,
                &path.key("body"),
                format!("expected a mapping (the JSON body), found {}", node.describe()),
            );
            None
        }
        None => Some(None),
    };
    fields.finish(ck, "webhook", &["endpoint", "url", "body"]);
    Some(Webhook { target: target?, body: body? })
}

/// Every text in a webhook body is a template (rendered per customer at the step): each is
/// checked where it is written.
fn body_templates(ck: &mut Checker<'_>, node: &Node, path: &Path) {
    match &node.value {
        Value::Str(_) => {
            inline_template(ck, node, path, "a template");
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                body_templates(ck, item, &path.index(i));
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                body_templates(ck, value, &path.key(&key.name));
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

fn update(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Update> {
    let mut fields = Fields::of(ck, node, path, "a mapping such as `{ set: { attributes.NAME: value } }`")?;
    let set = match fields.get("set") {
        Some(node) => set(ck, node, &path.key("set")),
        None => Some(BTreeMap::new()),
    };
    let tags = match fields.get("tag") {
        Some(node) => tags(ck, node, &path.key("tag")),
        None => Some(Vec::new()),
    };
    if fields.key("set").is_none() && fields.key("tag").is_none() {
        ck.report(node, path, "an update needs `set`, `tag` or both");
    }
    fields.finish(ck, "update", &["set", "tag"]);
    Some(Update { set: set?, tags: tags? })
}

fn set(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<BTreeMap<String, serde_json::Value>> {
    let Value::Map(entries) = &node.value else {
        ck.report(
            node,
            path,
            format!("expected a mapping such as `{{ attributes.NAME: value }}`, found {}", node.describe()),
        );
        return None;
    };
    if entries.is_empty() {
        ck.report(node, path, "`set` is empty");
        return None;
    }
    let mut out = Some(BTreeMap::new());
    for (key, value) in entries {
        let key_path = path.key(&key.name);
        let attribute = match key.name.strip_prefix("attributes.") {
            Some(attribute) => match Name::Property.problem(attribute) {
                None => Some(attribute),
                Some(problem) => {
                    ck.report_at(key.at, &key_path, format!("`{}` is not an attribute: its name {problem}", key.name));
                    None
                }
            },
            None => {
                ck.report_at(
                    key.at,
                    &key_path,
                    format!("`{}` cannot be set: only customer attributes can, as `attributes.NAME`", key.name),
                );
                None
            }
        };
        out = out.zip(attribute).map(|(mut out, attribute)| {
            out.insert(attribute.to_owned(), value.to_json());
            out
        });
    }
    out
}

fn tags(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Vec<String>> {
    match &node.value {
        Value::Str(_) => name(ck, node, path, Name::Tag).map(|t| vec![t.to_owned()]),
        Value::Seq(items) if !items.is_empty() => {
            let mut out = Some(Vec::new());
            for (i, item) in items.iter().enumerate() {
                let tag = name(ck, item, &path.index(i), Name::Tag);
                out = out.zip(tag).map(|(mut out, tag)| {
                    out.push(tag.to_owned());
                    out
                });
            }
            out
        }
        _ => {
            ck.report(node, path, format!("expected a tag or a non-empty list of tags, found {}", node.describe()));
            None
        }
    }
}
