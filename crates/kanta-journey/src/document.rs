//! The typed journey: what a document says once [`validate`](crate::validate) has accepted it.
//! Every value here has been checked; nothing is stringly typed that has a rule (durations,
//! local times, weekdays, zones, stages, cron schedules, step ids). Names of segments, events,
//! templates and endpoints stay text: they are looked up elsewhere (the store, the settings).
//!
//! The serde form of a [`Journey`] is the document itself as JSON ([`Journey::to_value`]), and
//! reading one back validates it: a stored journey can never hold what the validator refuses.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use kanta_core::lifecycle::Stage;

use kanta_uplift::arm::Holdout;

use crate::cron::Schedule;
use crate::reentry::Reentry;
use crate::when::Weekdays;

/// A journey, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// The journey's name, a slug (`welcome`, `win-back`); unique in a store.
    pub name: String,
    /// What the journey is for, free text.
    pub description: Option<String>,
    /// What starts a run.
    pub trigger: Trigger,
    /// Who may enter, and how often.
    pub entry: EntryRules,
    /// Events and transitions that end a run as soon as they arrive, even mid-wait.
    pub exit_when: Vec<ExitCondition>,
    /// The zone of local times for customers without one of their own (IANA).
    pub timezone: Option<Tz>,
    /// Runs record what they would do but send nothing.
    pub dry_run: bool,
    /// A step or date trigger due longer ago than this (after downtime) is skipped, not run late.
    pub skip_if_late_by: Option<Duration>,
    /// The share of eligible customers held out as a randomised control group: recorded as
    /// entered and followed for the goal, sent nothing (`holdout: 10%`; none by default).
    pub holdout: Holdout,
    /// What counts as success for the uplift report, and whether reaching it ends the run.
    pub goal: Option<Goal>,
    /// The steps, in order; never empty.
    pub steps: Vec<Step>,
    /// The email templates the version carries, by name (`template: NAME` is the entry `NAME`;
    /// files the templates include or import are entries too): `kanta journeys apply` embeds
    /// them from the `templates/` folder beside the file, so a run renders the text of its own
    /// version wherever the engine runs ([`crate::templates`]).
    pub templates: BTreeMap<String, TemplateSource>,
    /// The shared layout (`layout.html`, `layout.txt`) that wraps every message, embedded like
    /// the templates.
    pub layout: Option<TemplateSource>,
}

/// What a journey is for: a conversion is the first time a customer reaches it within `within`
/// of entering, credited to that run (treatment or control alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    /// What reaching the goal is.
    pub reached: GoalKind,
    /// How long after entering a run a conversion counts for it.
    pub within: Duration,
    /// Whether a treated customer's run ends when they convert (as an `exit_when` would).
    pub exit: bool,
}

/// What reaching a goal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalKind {
    /// The customer did this event (`order.created`: placed an order).
    Event(String),
    /// The customer entered this saved segment.
    EntersSegment(String),
}

impl Goal {
    /// The goal as written: `event order.created within 30d`.
    pub fn describe(&self) -> String {
        let reached = match &self.reached {
            GoalKind::Event(event) => format!("event {event}"),
            GoalKind::EntersSegment(segment) => format!("enters segment {segment}"),
        };
        format!("{reached} within {}", duration_text(self.within))
    }
}

impl Trigger {
    /// What starts a run, in words: `event order.created (first order)`, `stage becomes lost`.
    pub fn describe(&self) -> String {
        let days = |d: i32| match d {
            0 => "on the day".to_owned(),
            d if d < 0 => format!("{} days before", -d),
            d => format!("{d} days after"),
        };
        match self {
            Trigger::Event { name, first_order, key } => {
                let first = if *first_order { " (first order)" } else { "" };
                let key = key.as_ref().map(|k| format!(", one run per {k}")).unwrap_or_default();
                format!("event {name}{first}{key}")
            }
            Trigger::EntersSegment(s) => format!("enters segment {s}"),
            Trigger::LeavesSegment(s) => format!("leaves segment {s}"),
            Trigger::StageBecomes(stage) => format!("stage becomes {}", stage.name()),
            Trigger::Date { field, offset_days, yearly } => {
                format!("{} {field}{}", days(*offset_days), if *yearly { ", every year" } else { "" })
            }
            Trigger::PredictedNextPurchase { offset_days } => {
                format!("{} the predicted next purchase", days(*offset_days))
            }
            Trigger::Schedule { cron, segment } => format!("schedule `{}` for segment {segment}", cron.as_str()),
        }
    }
}

/// One embedded template: the sources of `NAME.html` and `NAME.txt` (at least one is given).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateSource {
    /// The HTML part's source (`NAME.html`).
    pub html: Option<String>,
    /// The text part's source (`NAME.txt`); without it the text is derived from the HTML.
    pub text: Option<String>,
}

/// What starts a run of a journey. Exactly one kind per journey.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "one trigger per journey: boxing the schedule would save nothing")]
pub enum Trigger {
    /// An event posted to `/v1/events` (or made by the store, such as `order.created`).
    Event {
        /// The event's name.
        name: String,
        /// Only a customer's first order (`order.created` only).
        first_order: bool,
        /// The event property whose value keys the run: one active run per customer **and**
        /// key (one abandoned-cart run per cart).
        key: Option<String>,
    },
    /// The customer entered a saved segment.
    EntersSegment(String),
    /// The customer left a saved segment.
    LeavesSegment(String),
    /// The customer's lifecycle stage changed to this one.
    StageBecomes(Stage),
    /// A date of the customer, on the customer's local day.
    Date {
        /// Which date.
        field: DateField,
        /// Days after the date (negative: before).
        offset_days: i32,
        /// On every anniversary rather than once.
        yearly: bool,
    },
    /// The model's predicted next purchase date, moved by a number of days.
    PredictedNextPurchase {
        /// Days after the predicted date (negative: before).
        offset_days: i32,
    },
    /// On a schedule, every member of a segment.
    Schedule {
        /// Five-field cron, in the journey's zone.
        cron: Schedule,
        /// The segment whose members enter.
        segment: String,
    },
}

/// The date a date trigger reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateField {
    /// The customer's `birthday`.
    Birthday,
    /// The day of the customer's first purchase.
    FirstPurchase,
    /// A date attribute (`attributes.renewal_date`): the name after `attributes.`.
    Attribute(String),
}

impl fmt::Display for DateField {
    /// As written in documents: `birthday`, `first_purchase`, `attributes.NAME`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateField::Birthday => f.write_str("birthday"),
            DateField::FirstPurchase => f.write_str("first_purchase"),
            DateField::Attribute(name) => write!(f, "attributes.{name}"),
        }
    }
}

/// Who may enter a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryRules {
    /// Whether a customer who has run through the journey may enter again.
    pub reentry: Reentry,
    /// A customer already in this many active runs (of any journey) does not enter.
    pub max_concurrent_journeys: Option<u32>,
}

/// An arrival that ends a run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitCondition {
    /// The customer did this event (`order.created`).
    Event(String),
    /// The customer entered this segment.
    EntersSegment(String),
    /// The customer left this segment.
    LeavesSegment(String),
    /// The customer's stage changed to this one.
    StageBecomes(Stage),
}

/// A step's id: a slug that starts with a letter (`thanks`, `second-offer`), given in the
/// document so that a run's position survives edits, or the step's path (`3`, `4.then.0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId(String);

impl StepId {
    /// Longest id.
    pub const MAX_LEN: usize = 64;

    /// An id as written in a document: 1–64 lowercase letters, digits, `-` and `_`, starting
    /// with a letter (so it never equals a path id, which starts with a digit).
    pub fn parse(text: &str) -> Result<StepId, String> {
        let mut chars = text.chars();
        match chars.next() {
            None => Err("it is empty".to_owned()),
            Some(c) if !c.is_ascii_lowercase() => Err("it does not start with a lowercase letter".to_owned()),
            _ if text.len() > Self::MAX_LEN => Err(format!("it is longer than {} characters", Self::MAX_LEN)),
            _ if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') => {
                Err("it has a character other than `a`–`z`, `0`–`9`, `-` and `_`".to_owned())
            }
            _ => Ok(StepId(text.to_owned())),
        }
    }

    /// An id made from a step's path (`3`, `4.then.0`).
    pub(crate) fn from_path(path: String) -> StepId {
        StepId(path)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The id given in the document, if any (the compiled form gives every step one).
    pub id: Option<StepId>,
    /// What the step does.
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Wait this long.
    Wait(Duration),
    /// Wait until the customer's local clock shows a time, on allowed weekdays.
    WaitUntil {
        /// The local time of day.
        local_time: NaiveTime,
        /// The days it may fire on ([`Weekdays::ALL`] when not given).
        weekdays: Weekdays,
    },
    /// Wait for an event or a segment entry, at most `timeout`.
    WaitFor {
        /// What is awaited; when it arrives the run goes on with the next step.
        awaited: Awaited,
        /// The longest wait.
        timeout: Duration,
        /// What happens when the timeout passes first.
        on_timeout: OnTimeout,
    },
    /// Go one way or another by a segment condition on the customer.
    Branch {
        /// The condition, in the segment language (checked).
        condition: String,
        /// Taken when the condition holds; `None`: go on with the next step.
        then: Option<Arm>,
        /// Taken otherwise; `None`: go on with the next step.
        otherwise: Option<Arm>,
    },
    /// A weighted random split, stable per customer (two or more arms).
    Split(Vec<SplitArm>),
    /// Send an email.
    SendEmail(Email),
    /// Call a webhook.
    Webhook(Webhook),
    /// Change the customer's attributes or tags.
    Update(Update),
    /// End the run here.
    Exit,
}

impl StepKind {
    /// The key that names the kind in a document (`wait`, `send_email`, …).
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Wait(_) => "wait",
            StepKind::WaitUntil { .. } => "wait_until",
            StepKind::WaitFor { .. } => "wait_for",
            StepKind::Branch { .. } => "branch",
            StepKind::Split(_) => "split",
            StepKind::SendEmail(_) => "send_email",
            StepKind::Webhook(_) => "webhook",
            StepKind::Update(_) => "update",
            StepKind::Exit => "exit",
        }
    }
}

/// What a `wait_for` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// An event of the customer.
    Event {
        /// The event's name.
        name: String,
        /// Only an event whose trigger-key property equals the run's key (the order of this
        /// cart).
        match_key: bool,
    },
    /// The customer entering a segment.
    EntersSegment(String),
}

/// A branch arm.
#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    /// End the run.
    Exit,
    /// Run these steps, then go on after the branch.
    Steps(Vec<Step>),
}

/// What a `wait_for` does when its timeout passes first.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum OnTimeout {
    /// Go on with the next step, as on arrival (the default: a `wait_for` is "until X, at most T").
    #[default]
    Continue,
    /// End the run.
    Exit,
    /// Run these steps, then go on with the step after the `wait_for`.
    Steps(Vec<Step>),
}

/// One arm of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitArm {
    /// Its relative weight, positive.
    pub weight: u32,
    /// Its steps; after them the run goes on after the split. May be empty (a control group).
    pub steps: Vec<Step>,
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The subject line (a template).
    pub subject: String,
    /// Where the body comes from.
    pub body: Body,
    /// A transactional message: exempt from marketing consent, the cap and quiet hours.
    pub transactional: bool,
}

/// An email's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Written in the document.
    Inline {
        /// The HTML part (a template).
        html: String,
        /// The text part (a template); without it the text is derived from the HTML.
        text: Option<String>,
    },
    /// `templates/NAME.html` (and `templates/NAME.txt` for the text part, if there is one).
    Template(String),
}

/// A webhook call, signed like kanta's outbound webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where to.
    pub target: WebhookTarget,
    /// The JSON body (templated string values); without it a standard body describing the run.
    pub body: Option<serde_json::Value>,
}

/// Where a webhook goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTarget {
    /// A configured endpoint, by name (its URL and secret come from the settings).
    Endpoint(String),
    /// A URL (signed with the journeys' webhook secret).
    Url(String),
}

/// A change to the customer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// Attributes to set, by name (without the `attributes.` prefix).
    pub set: BTreeMap<String, serde_json::Value>,
    /// Tags to add.
    pub tags: Vec<String>,
}

impl Journey {
    /// Whether the journey is marketing, so the global holdout keeps its share of customers out
    /// of it: every journey but one whose messages are all `transactional` emails (a receipt
    /// or a password reset must reach everyone; a webhook step may be anything, so it counts
    /// as marketing).
    pub fn is_marketing(&self) -> bool {
        let steps = self.all_steps();
        let mut emails = 0;
        for step in steps {
            match &step.kind {
                StepKind::SendEmail(email) if email.transactional => emails += 1,
                StepKind::SendEmail(_) | StepKind::Webhook(_) => return true,
                _ => {}
            }
        }
        emails == 0
    }

    /// Every step of the journey, nested ones included, in document order.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                match &step.kind {
                    StepKind::Branch { then, otherwise, .. } => {
                        for arm in [then, otherwise].into_iter().flatten() {
                            if let Arm::Steps(steps) = arm {
                                walk(steps, out);
                            }
                        }
                    }
                    StepKind::WaitFor { on_timeout: OnTimeout::Steps(steps), .. } => walk(steps, out),
                    StepKind::Split(arms) => arms.iter().for_each(|arm| walk(&arm.steps, out)),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }
}

/// Whether every way through `steps` ends the run (so nothing after them is reached).
pub(crate) fn always_exits(steps: &[Step]) -> bool {
    steps.iter().any(|step| step_always_exits(&step.kind))
}

/// Whether a step ends the run whatever happens: an `exit`, a branch both of whose arms exit,
/// a split all of whose arms exit. (A `wait_for` goes on when its event arrives.)
pub(crate) fn step_always_exits(kind: &StepKind) -> bool {
    let arm_exits = |arm: &Option<Arm>| match arm {
        Some(Arm::Exit) => true,
        Some(Arm::Steps(steps)) => always_exits(steps),
        None => false,
    };
    match kind {
        StepKind::Exit => true,
        StepKind::Branch { then, otherwise, .. } => arm_exits(then) && arm_exits(otherwise),
        StepKind::Split(arms) => arms.iter().all(|arm| always_exits(&arm.steps)),
        _ => false,
    }
}

/// The canonical text of a duration: the largest of `w`, `d`, `h`, `m`, `s` that divides it
/// (`14d` → `2w`, `90m` → `90m`), so equal durations print alike and
/// [`parse_duration`](crate::duration::parse_duration) reads it back exactly.
pub fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_their_largest_exact_unit() {
        let text = |s| duration_text(Duration::from_secs(s));
        assert_eq!(text(14 * 86_400), "2w");
        assert_eq!(text(3 * 86_400), "3d");
        assert_eq!(text(36 * 3_600), "36h");
        assert_eq!(text(90 * 60), "90m");
        assert_eq!(text(61), "61s");
        assert_eq!(text(0), "0s");
        for s in [0, 61, 3_600, 86_400, 90 * 86_400] {
            assert_eq!(crate::duration::parse_duration(&text(s)).unwrap(), Duration::from_secs(s));
        }
    }

    #[test]
    fn step_ids_are_slugs_that_start_with_a_letter() {
        assert_eq!(StepId::parse("second-offer").unwrap().as_str(), "second-offer");
        assert_eq!(StepId::parse("a_1").unwrap().as_str(), "a_1");
        assert_eq!(StepId::parse("3").unwrap_err(), "it does not start with a lowercase letter");
        assert_eq!(StepId::parse("").unwrap_err(), "it is empty");
        assert_eq!(StepId::parse("Thanks").unwrap_err(), "it does not start with a lowercase letter");
        assert_eq!(StepId::parse("a.b").unwrap_err(), "it has a character other than `a`–`z`, `0`–`9`, `-` and `_`");
        assert_eq!(StepId::parse(&"a".repeat(65)).unwrap_err(), "it is longer than 64 characters");
    }

    #[test]
    fn a_step_list_always_exits_when_one_step_always_does() {
        let step = |kind| Step { id: None, kind };
        let wait = || step(StepKind::Wait(Duration::from_secs(1)));
        let branch = |then, otherwise| step(StepKind::Branch { condition: "orders > 1".into(), then, otherwise });
        assert!(!always_exits(&[wait()]));
        assert!(always_exits(&[wait(), step(StepKind::Exit)]));
        assert!(!always_exits(&[branch(Some(Arm::Exit), None)]));
        assert!(always_exits(&[branch(Some(Arm::Exit), Some(Arm::Steps(vec![wait(), step(StepKind::Exit)])))]));
        let split = |arms| step(StepKind::Split(arms));
        let arm = |steps| SplitArm { weight: 1, steps };
        assert!(always_exits(&[split(vec![arm(vec![step(StepKind::Exit)]), arm(vec![step(StepKind::Exit)])])]));
        assert!(!always_exits(&[split(vec![arm(vec![step(StepKind::Exit)]), arm(vec![])])]));
    }
}
