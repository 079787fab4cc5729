//! The compiled journey: every step, nested ones included, in one flat list, each with its id,
//! what it does and where the run goes next, so the engine keeps a run's position as one step
//! id and never walks the document's nesting.
//!
//! Where a nested list ends the run rejoins its parent: the last step of a branch arm, a split
//! arm or an `on_timeout` list goes on with the step after the branch, split or `wait_for`;
//! after the last top-level step the run ends ([`Next::End`]); an `exit` ends it early
//! ([`Next::Exit`]).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::NaiveTime;

use crate::document::{Arm, Awaited, Email, Journey, OnTimeout, Step, StepId, StepKind, Update, Webhook};
use crate::problem::{Path, Segment};
use crate::when::Weekdays;

/// Where a run goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Next {
    /// To this step.
    Step(StepId),
    /// The journey is complete: there are no more steps.
    End,
    /// The run exits here (an `exit` step or arm).
    Exit,
}

impl Next {
    /// The step id, if the run goes to a step.
    pub fn step(&self) -> Option<&StepId> {
        match self {
            Next::Step(id) => Some(id),
            _ => None,
        }
    }
}

impl fmt::Display for Next {
    /// The step id, or `(end)` / `(exit)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Next::Step(id) => f.write_str(id.as_str()),
            Next::End => f.write_str("(end)"),
            Next::Exit => f.write_str("(exit)"),
        }
    }
}

/// What a compiled step does; its targets are [`Next`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Wait this long, then go to `next`.
    Wait(Duration),
    /// Wait until the local time on an allowed weekday, then go to `next`.
    WaitUntil {
        /// The local time of day.
        local_time: NaiveTime,
        /// The allowed days.
        weekdays: Weekdays,
    },
    /// Wait for an arrival (then `next`) or the timeout (then `on_timeout`).
    WaitFor {
        /// What is awaited.
        awaited: Awaited,
        /// The longest wait.
        timeout: Duration,
        /// Where the run goes when the timeout passes first.
        on_timeout: Next,
    },
    /// Evaluate the condition on the customer.
    Branch {
        /// The segment condition.
        condition: String,
        /// Where the run goes when it holds.
        then: Next,
        /// Where the run goes when it does not.
        otherwise: Next,
    },
    /// Choose an arm by [`crate::split::choose`] over the weights, keyed by this step's id.
    Split {
        /// Each arm's weight and where it leads.
        arms: Vec<(u32, Next)>,
    },
    /// Send an email, then go to `next`.
    SendEmail(Email),
    /// Call a webhook, then go to `next`.
    Webhook(Webhook),
    /// Update the customer, then go to `next`.
    Update(Update),
    /// End the run (its `next` is [`Next::Exit`]).
    Exit,
}

/// One step of the compiled journey.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledStep {
    /// The step's id: the document's `id`, or its path id (`3`, `4.then.0`).
    pub id: StepId,
    /// Where it is in the document (`steps[4].branch.then[0]`), for messages.
    pub path: Path,
    /// What it does.
    pub action: Action,
    /// Where the run goes after it (for a branch or split: after the arm that was taken
    /// rejoins; the arms' own targets are in the action).
    pub next: Next,
}

impl CompiledStep {
    /// How deeply the step is nested: 0 in the journey's own list, 1 in an arm of a branch or
    /// split or in a wait's `on_timeout`, and so on.
    pub fn depth(&self) -> usize {
        self.lists().count().saturating_sub(1)
    }

    /// For the first step of a nested list, the list it opens: `then`, `else`, `on timeout`
    /// or `arm N` (of a split, counted from 1); `None` otherwise.
    pub fn opens(&self) -> Option<String> {
        let (key, index) = self.lists().last()?;
        if index != 0 || self.depth() == 0 {
            return None;
        }
        Some(match key {
            "then" | "else" => key.to_owned(),
            "on_timeout" => "on timeout".to_owned(),
            _ => {
                // A split arm's steps: `…split[A].steps[K]`.
                let segments = self.path.segments();
                let arm = segments.iter().rev().skip(2).find_map(|s| match s {
                    Segment::Index(a) => Some(a + 1),
                    Segment::Key(_) => None,
                });
                format!("arm {}", arm.unwrap_or(1))
            }
        })
    }

    /// Every list the step is in, outermost first: the key naming it and the step's index.
    fn lists(&self) -> impl Iterator<Item = (&str, usize)> {
        self.path.segments().windows(2).filter_map(|pair| match pair {
            [Segment::Key(key), Segment::Index(i)]
                if matches!(key.as_str(), "steps" | "then" | "else" | "on_timeout") =>
            {
                Some((key.as_str(), *i))
            }
            _ => None,
        })
    }
}

impl Action {
    /// What the step does, in a few words (for the dashboard's flow).
    pub fn describe(&self) -> String {
        match self {
            Action::Wait(d) => format!("wait {}", short(*d)),
            Action::WaitUntil { local_time, weekdays } => {
                let days = if *weekdays == Weekdays::ALL { String::new() } else { format!(" on {weekdays}") };
                format!("wait until {} local time{days}", local_time.format("%H:%M"))
            }
            Action::WaitFor { awaited, timeout, .. } => {
                let what = match awaited {
                    Awaited::Event { name, .. } => format!("event {name}"),
                    Awaited::EntersSegment(segment) => format!("entering segment {segment}"),
                };
                format!("wait for {what}, at most {}", short(*timeout))
            }
            Action::Branch { condition, then, otherwise } => {
                // An arm that is only `exit` has no step of its own to show: say it here.
                let then = if *then == Next::Exit { "; if so, exit" } else { "" };
                let otherwise = if *otherwise == Next::Exit { "; if not, exit" } else { "" };
                format!("if {condition}{then}{otherwise}")
            }
            Action::Split { arms } => {
                let total: u32 = arms.iter().map(|a| a.0).sum();
                let shares: Vec<String> =
                    arms.iter().map(|a| format!("{:.0}%", 100.0 * f64::from(a.0) / f64::from(total.max(1)))).collect();
                format!("split {}", shares.join(" / "))
            }
            Action::SendEmail(email) => {
                let kind = if email.transactional { "transactional email" } else { "email" };
                format!("send {kind} “{}”", email.subject)
            }
            Action::Webhook(w) => match &w.target {
                crate::document::WebhookTarget::Endpoint(name) => format!("call webhook {name}"),
                crate::document::WebhookTarget::Url(url) => format!("call {url}"),
            },
            Action::Update(u) => {
                let mut parts: Vec<String> = u.set.keys().map(|k| format!("set {k}")).collect();
                parts.extend(u.tags.iter().map(|t| format!("tag {t}")));
                format!("update: {}", parts.join(", "))
            }
            Action::Exit => "exit".into(),
        }
    }
}

fn short(d: Duration) -> String {
    crate::document::duration_text(d)
}

/// A journey as the engine walks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// Where a new run starts.
    pub first: Next,
    /// Every step, in document order (a step before the steps nested in it).
    pub steps: Vec<CompiledStep>,
    index: HashMap<StepId, usize>,
}

impl Compiled {
    /// The step with this id (a run's stored position), if the journey has it.
    pub fn step(&self, id: &str) -> Option<&CompiledStep> {
        self.index.get(&StepId::from_path(id.to_owned())).map(|&i| &self.steps[i])
    }

    /// How many steps there are, nested ones included.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are none (never, for a validated journey).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Journey {
    /// The flat step graph of this journey.
    pub fn compile(&self) -> Compiled {
        let mut steps = Vec::new();
        let first = list(&self.steps, "", &Path::root().key("steps"), Next::End, &mut steps);
        let index = steps.iter().enumerate().map(|(i, s): (usize, &CompiledStep)| (s.id.clone(), i)).collect();
        Compiled { first, steps, index }
    }
}

/// Compiles `steps` into `out`, each going on to the next and the last to `after`; returns
/// where the list starts (`after` when it is empty).
fn list(steps: &[Step], prefix: &str, path: &Path, after: Next, out: &mut Vec<CompiledStep>) -> Next {
    let ids: Vec<StepId> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| step.id.clone().unwrap_or_else(|| StepId::from_path(format!("{prefix}{i}"))))
        .collect();
    for (i, step) in steps.iter().enumerate() {
        let next = ids.get(i + 1).map_or_else(|| after.clone(), |id| Next::Step(id.clone()));
        let id = &ids[i];
        let path = path.index(i);
        let kind_path = path.key(step.kind.name());
        // The step goes in before its nested steps, whose place is then known.
        let at = out.len();
        out.push(CompiledStep { id: id.clone(), path, action: Action::Exit, next: next.clone() });
        let action = match &step.kind {
            StepKind::Wait(d) => Action::Wait(*d),
            StepKind::WaitUntil { local_time, weekdays } => {
                Action::WaitUntil { local_time: *local_time, weekdays: *weekdays }
            }
            StepKind::WaitFor { awaited, timeout, on_timeout } => {
                let on_timeout = match on_timeout {
                    OnTimeout::Continue => next.clone(),
                    OnTimeout::Exit => Next::Exit,
                    OnTimeout::Steps(steps) => {
                        list(steps, &format!("{id}.on_timeout."), &kind_path.key("on_timeout"), next.clone(), out)
                    }
                };
                Action::WaitFor { awaited: awaited.clone(), timeout: *timeout, on_timeout }
            }
            StepKind::Branch { condition, then, otherwise } => {
                let mut arm = |arm: &Option<Arm>, key: &str| match arm {
                    None => next.clone(),
                    Some(Arm::Exit) => Next::Exit,
                    Some(Arm::Steps(steps)) => {
                        list(steps, &format!("{id}.{key}."), &kind_path.key(key), next.clone(), out)
                    }
                };
                let then = arm(then, "then");
                let otherwise = arm(otherwise, "else");
                Action::Branch { condition: condition.clone(), then, otherwise }
            }
            StepKind::Split(arms) => {
                let arms = arms
                    .iter()
                    .enumerate()
                    .map(|(a, arm)| {
                        let arm_path = kind_path.index(a).key("steps");
                        (arm.weight, list(&arm.steps, &format!("{id}.split.{a}."), &arm_path, next.clone(), out))
                    })
                    .collect();
                Action::Split { arms }
            }
            StepKind::SendEmail(email) => Action::SendEmail(email.clone()),
            StepKind::Webhook(webhook) => Action::Webhook(webhook.clone()),
            StepKind::Update(update) => Action::Update(update.clone()),
            StepKind::Exit => Action::Exit,
        };
        if action == Action::Exit {
            out[at].next = Next::Exit;
        }
        out[at].action = action;
    }
    ids.first().map_or(after, |id| Next::Step(id.clone()))
}
