//! Journeys as data: lifecycle conversations (a welcome series, a next-purchase reminder, a
//! win-back offer) written as YAML or JSON documents, checked with every problem's position, and
//! the pure rules that decide when a step is due and whether a message may go.
//!
//! Pure and IO-free: the store keeps documents and runs, the server's engine drives them with the
//! injected clock, and `kanta-mail` renders and sends what this crate decides.
//!
//! The rules of what is due and what may go (every instant is an argument, nothing reads a
//! clock): [`zone`] (IANA zones, the customer → journey → settings → UTC chain, the one rule for
//! DST gaps and folds), [`when`] (`wait_until` a local time on allowed weekdays), [`guard`]
//! (consent, suppression, frequency cap and quiet hours, combined by [`guard::decide`]),
//! [`reentry`], [`dates`] (date and predicted-purchase triggers, catch-up after downtime),
//! [`cron`] (schedules), [`split`] (stable weighted splits), [`backoff`](mod@backoff) (retry
//! waits) and [`duration`] (`90d`, `3/7d`'s window); [`project`] walks a run without running
//! it and plans its messages under quiet hours and the cap (the step walk of a simulation).
//!
//! The documents: [`validate_yaml`] and [`validate_json`] check a document and report **every**
//! problem ([`Problems`]: line, column, path such as `steps[3].branch.if`, and a message naming
//! the value and what was expected); the result is a typed [`Journey`] ([`document`]), whose
//! [`canonical_json`](Journey::canonical_json) and [`digest`](Journey::digest) tell an unchanged
//! re-apply from a new version, and whose [`compile`](Journey::compile)d form ([`compile`]) is
//! the flat step graph the engine walks, a run's position being one step id.
//!
//! # The journey language
//!
//! ```yaml
//! name: welcome                      # a slug: a-z, 0-9, `-`, `_`
//! description: First-order thank-you # optional
//! trigger:                           # exactly one kind, see below
//!   event: order.created
//!   first_order: true
//! entry:                             # optional
//!   reentry: once                    # once (default) | always | { after: 90d }
//!   max_concurrent_journeys: 3       # optional: not entered while in 3 active runs
//! exit_when:                         # optional: ends a run as soon as one arrives, mid-wait too
//!   - event: order.created           # or enters_segment: / leaves_segment: / stage_becomes:
//! timezone: Europe/Helsinki          # optional: for customers without a zone of their own
//! dry_run: true                      # optional: record, send nothing
//! skip_if_late_by: 2d                # optional: after downtime, skip what is later than this
//! holdout: 10%                       # optional: a randomised control group (needs a goal)
//! goal: { event: order.created, within: 30d, exit: true }   # optional: for the uplift report
//! steps:
//!   - send_email: { subject: "Thanks!", template: thanks }
//! ```
//!
//! **Triggers**: `event: NAME` (any event posted to `/v1/events`; `first_order: true` only with
//! `order.created`; `key: PROPERTY` for one run per customer and property value, such as
//! `cart_id`); `enters_segment: NAME`, `leaves_segment: NAME`; `stage_becomes: STAGE`
//! (`new`, `repeat`, `loyal`, `slipping`, `lapsing`, `lost`); `date: birthday | first_purchase |
//! attributes.NAME` with `offset: -14d` (days or weeks, negative for before) and `yearly: BOOL`
//! (default true for `birthday`, false otherwise); `predicted_next_purchase: { offset: -3d }`;
//! `schedule: { cron: "0 9 * * mon", segment: NAME }` (five cron fields, names and ranges, in the
//! journey's zone).
//!
//! **Steps** (each a mapping with one kind key and an optional `id`, or the word `exit`):
//! `wait: 3d` (a whole number and `s`, `m`, `h`, `d` or `w`);
//! `wait_until: { local_time: "10:00", weekdays: [mon-fri] }` (weekdays optional);
//! `wait_for: { event: NAME, match_key: true, timeout: 2d, on_timeout: continue | exit | [steps] }`
//! or `wait_for: { enters_segment: NAME, timeout: …, on_timeout: … }`: on arrival the run goes on
//! with the next step; on timeout it takes `on_timeout`, by default `continue` (so a `wait_for`
//! alone means "until X, at most T"); `match_key` needs a keyed event trigger;
//! `branch: { if: "<segment condition>", then: exit | [steps], else: exit | [steps] }` (an
//! absent arm goes on with the next step; arms rejoin after the branch);
//! `split: [{ weight: 50, steps: [...] }, { weight: 50, steps: [] }]` (two or more arms, positive
//! whole weights, stable per customer);
//! `send_email: { subject, html | template, text, transactional }` (`template: NAME` is
//! `templates/NAME.html`, and `templates/NAME.txt` when present);
//! `webhook: { endpoint: NAME | url: URL, body: {...} }`;
//! `update: { set: { attributes.NAME: value, ... }, tag: NAME | [NAMES] }`; `exit`.
//!
//! **Step ids**: a step's `id` (a slug starting with a letter) keeps a run's position across
//! edits; without one a step's id is its path, 0-based like the paths in messages: `3` is the
//! fourth top-level step, `4.then.0` the first step of step 4's `then` arm, `4.else.1`,
//! `5.split.1.0` (step 5, arm 1, its first step), `2.on_timeout.0`. Nested path ids start from
//! the parent's id, so a parent with an `id` keeps its children's ids stable too.
//!
//! **Templates** (`templates`, `layout`; JSON documents only need them, files take them from
//! the folder): a version carries the templates it renders, so that a run in progress keeps
//! rendering its own version's text after the files change ([`templates`]):
//! `templates: { NAME: { html: "...", text: "..." } }` (either part may be left out, not both)
//! and `layout: { html: "...", text: "..." }`. A `template: NAME` must be embedded or, for a
//! file, be `templates/NAME.html` beside it; `kanta journeys apply` embeds the files.
//!
//! `journeys/README.md` in the repository has the full reference and examples.

/// Retry waits after temporary delivery failures: exponential, capped, deterministic jitter.
pub mod backoff;
/// The compiled journey: a flat step graph keyed by step id.
pub mod compile;
/// Cron schedules evaluated on a zone's wall clock.
pub mod cron;
/// Date triggers, predicted-purchase triggers and the catch-up of missed days.
pub mod dates;
/// The typed journey document.
pub mod document;
/// Written durations (`90d`) and saturating instant arithmetic.
pub mod duration;
/// The send-time guardrails and their combination.
pub mod guard;
/// A journey as JSON: the document form, canonical text and digest.
mod json;
/// Problems of a document, with their positions.
pub mod problem;
/// Projecting runs without running them (`kanta journeys simulate`).
pub mod project;
/// Whether a customer may enter a journey again.
pub mod reentry;
/// Weighted random splits, stable per customer.
pub mod split;
/// The templates a journey version carries, and embedding them from files.
pub mod templates;
/// The document as a tree of nodes that know their line and column.
mod tree;
/// Checking a document (YAML or JSON) into a journey, reporting every problem.
pub mod validate;
/// `wait_until`: the next local time of day on allowed weekdays.
pub mod when;
/// Time zones and the local-time rules every other module uses.
pub mod zone;

pub use backoff::{Backoff, backoff};
pub use compile::{Action, Compiled, CompiledStep, Next};
pub use cron::{Schedule, ScheduleError};
pub use dates::{CatchUp, DateTrigger, MAX_CATCH_UP_DAYS, catch_up_days, predicted_day, too_late};
pub use document::{
    Arm, Awaited, Body, DateField, Email, EntryRules, ExitCondition, Goal, GoalKind, Journey, OnTimeout, SplitArm,
    Step, StepId, StepKind, TemplateSource, Trigger, Update, Webhook, WebhookTarget,
};
pub use duration::{DurationError, parse_duration};
pub use guard::{
    Cap, ConsentMode, ConsentState, Decision, FrequencyCap, Guardrails, MessageKind, QuietHours, Recipient,
    SettingError, SkipReason, decide,
};
pub use kanta_uplift::arm::Holdout;
pub use problem::{Problem, Problems};
pub use reentry::{Entry, PreviousRun, Reentry};
pub use validate::{AnyTemplate, Templates, validate_json, validate_yaml};
pub use when::{Weekdays, WeekdaysError, next_local_time};
pub use zone::{EffectiveZone, OutOfRange, UnknownZone, ZoneSource, effective_zone, local_day, parse_zone};
