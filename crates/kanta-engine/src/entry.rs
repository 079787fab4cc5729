//! Customers entering journeys, and what arrives for them: events that start runs, wake waits
//! and end runs (`exit_when`), segment transitions and stage changes.

use chrono_tz::Tz;
use kanta_domain::Timestamp;
use kanta_domain::contact::CustomerId;
use kanta_journey::{Action, Awaited, ExitCondition, Holdout, Next, Reentry, Trigger};
use kanta_store::journey::{Entered, EntryRules, NewRun, RunArm, RunId, Signal};
use kanta_uplift::arm::{Arm, assign, assign_global};
use serde_json::Value;

use crate::advance::wait_position;
use crate::cache::Head;
use crate::{Engine, EngineError};

/// Something that arrived for a customer, as exit conditions and waits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSignal<'a> {
    /// An event (or `order.created`), with its properties.
    Event {
        /// The event's name.
        name: &'a str,
        /// Its properties: a keyed wait compares the value of its journey's key property with
        /// the run's key.
        properties: &'a Value,
    },
    /// The customer entered a saved segment.
    EntersSegment(&'a str),
    /// The customer left a saved segment.
    LeavesSegment(&'a str),
    /// The customer's lifecycle stage became this (`lost`, `repeat`, …).
    StageBecomes(&'a str),
}

/// What [`Engine::on_event`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOutcome {
    /// Runs ended by an `exit_when`.
    pub exited: Vec<RunId>,
    /// Waiting runs woken.
    pub woken: Vec<RunId>,
    /// Journeys entered (or not), by name.
    pub entered: Vec<(String, Entered)>,
}

impl ExitMatch for ExitCondition {
    fn matches(&self, signal: &EngineSignal<'_>) -> bool {
        match (self, signal) {
            (ExitCondition::Event(a), EngineSignal::Event { name, .. }) => a == name,
            (ExitCondition::EntersSegment(a), EngineSignal::EntersSegment(b))
            | (ExitCondition::LeavesSegment(a), EngineSignal::LeavesSegment(b)) => a == b,
            (ExitCondition::StageBecomes(stage), EngineSignal::StageBecomes(b)) => stage.name() == *b,
            _ => false,
        }
    }
}

trait ExitMatch {
    fn matches(&self, signal: &EngineSignal<'_>) -> bool;
}

/// A property's value as a run key: text as is, numbers and booleans printed.
pub(crate) fn key_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Engine {
    /// Enter customer `customer` (external id) into `journey` with `key` (empty for a trigger
    /// without a key) and the trigger's `context`, under the journey's entry rules: never two
    /// active runs of one journey for one customer and key, re-entry once / after / always,
    /// the limit of concurrent journeys. A paused journey admits nobody
    /// ([`EngineError::Paused`]). The first step runs at the next [`Engine::advance`]; a
    /// first step that waits starts waiting now.
    pub async fn enter(
        &self,
        journey: &str,
        customer: &str,
        key: &str,
        context: &Value,
        now: Timestamp,
    ) -> Result<Entered, EngineError> {
        let heads = self.cache.heads(&*self.store).await?;
        let head = heads.get(journey).ok_or_else(|| EngineError::UnknownJourney(journey.to_owned()))?;
        if head.paused {
            return Err(EngineError::Paused(journey.to_owned()));
        }
        let internal = self
            .store
            .customer_key(customer)
            .await?
            .ok_or_else(|| EngineError::UnknownCustomer(customer.to_owned()))?;
        let record;
        let zone = if first_step_waits(head) {
            record = self.store.customer(customer, 0).await?;
            crate::context::zone(record.as_ref(), head.loaded.journey.timezone, self.config.default_zone)
        } else {
            Tz::UTC // not read
        };
        let arm = arm_of(journey, head, customer, self.config.global_holdout);
        let Some(run) = new_run(journey, head, internal, key, context, zone, arm, now)? else {
            return Ok(Entered::NotAgain);
        };
        Ok(self.store.start_run(&run, &entry_rules(head, now), now).await?)
    }

    /// [`Engine::enter`] for customers whose internal id and zone the caller knows (the
    /// calendar triggers, a chunk at a time), in one store transaction, decided in order as if
    /// each entered alone; the results in that order. A paused journey admits nobody
    /// ([`EngineError::Paused`]).
    pub(crate) async fn enter_many(
        &self,
        journey: &str,
        head: &Head,
        entrants: &[Entrant],
        now: Timestamp,
    ) -> Result<Vec<Entered>, EngineError> {
        if head.paused {
            return Err(EngineError::Paused(journey.to_owned()));
        }
        let mut runs = Vec::with_capacity(entrants.len());
        for e in entrants {
            let arm = arm_of(journey, head, &e.external, self.config.global_holdout);
            match new_run(journey, head, e.customer, &e.key, &e.context, e.zone, arm, now)? {
                Some(run) => runs.push(run),
                // A journey without steps (never validated) admits nobody.
                None => return Ok(vec![Entered::NotAgain; entrants.len()]),
            }
        }
        Ok(self.store.start_runs(&runs, &entry_rules(head, now), now).await?)
    }

    /// [`Engine::enter`] for a journey an event or transition triggers, whose head was read
    /// unpaused: `None` when it was paused since (it admits nobody, which is no error here).
    pub(crate) async fn enter_unless_paused(
        &self,
        journey: &str,
        customer: &str,
        key: &str,
        context: &Value,
        now: Timestamp,
    ) -> Result<Option<Entered>, EngineError> {
        match self.enter(journey, customer, key, context, now).await {
            Ok(entered) => Ok(Some(entered)),
            Err(EngineError::Paused(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Something arrived for customer `customer` (external id): every active run of a journey
    /// whose `exit_when` names it ends now (also mid-wait), then waits for it (an event, a
    /// segment entry) are woken. Returns the runs exited and woken.
    pub async fn signal(
        &self,
        customer: &str,
        signal: EngineSignal<'_>,
        now: Timestamp,
    ) -> Result<(Vec<RunId>, Vec<RunId>), EngineError> {
        let Some(internal) = self.store.customer_key(customer).await? else {
            return Err(EngineError::UnknownCustomer(customer.to_owned()));
        };
        let heads = self.cache.heads(&*self.store).await?;
        let mut exited = Vec::new();
        for (name, head) in &heads {
            // Runs of older versions exit by the current document's conditions: an exit
            // condition added in a new version is meant for everyone in the journey.
            if let Some(condition) = head.loaded.journey.exit_when.iter().find(|c| c.matches(&signal)) {
                let reason = exit_reason(condition);
                exited.extend(self.store.exit_runs(internal, name, None, &reason, now).await?);
            }
        }
        let woken = match signal {
            EngineSignal::Event { name, properties } => {
                let mut woken = self.store.wake_runs(internal, &Signal::Event { name }, now).await?;
                // Keyed waits, per journey: its trigger's key property names the value compared.
                for (journey, head) in &heads {
                    let Trigger::Event { key: Some(property), .. } = &head.loaded.journey.trigger else { continue };
                    if !awaits_keyed(head, name) {
                        continue;
                    }
                    let key = match properties.get(property) {
                        None | Some(Value::Null) => None,
                        // A key that is no text or number (an object) matches no run.
                        Some(value) => match key_text(Some(value)) {
                            Some(key) => Some(key),
                            None => continue,
                        },
                    };
                    let keyed = Signal::KeyedEvent { name, journey, key: key.as_deref() };
                    woken.extend(self.store.wake_runs(internal, &keyed, now).await?);
                }
                woken.sort_unstable();
                woken
            }
            EngineSignal::EntersSegment(name) => {
                self.store.wake_runs(internal, &Signal::SegmentEntry { name }, now).await?
            }
            EngineSignal::LeavesSegment(_) | EngineSignal::StageBecomes(_) => Vec::new(),
        };
        Ok((exited, woken))
    }

    /// An event was stored for customer `customer` (external id): apply exit conditions, wake
    /// waits (keyed waits by the journeys' key properties) and enter every journey the event
    /// triggers (`event: NAME`; `first_order: true` only when `is_first_order`; `key: PROP`
    /// keyed by the property's value, not entered without it). Paused journeys are passed
    /// over. The journey feed ([`Engine::consume_feed`]) calls this for every stored event.
    pub async fn on_event(
        &self,
        customer: &str,
        name: &str,
        properties: &Value,
        is_first_order: bool,
        now: Timestamp,
    ) -> Result<EventOutcome, EngineError> {
        self.on_event_entering(customer, name, properties, is_first_order, true, now).await
    }

    /// [`Engine::on_event`], entering journeys only when `enter` (a stale event still exits
    /// runs and wakes waits).
    pub(crate) async fn on_event_entering(
        &self,
        customer: &str,
        name: &str,
        properties: &Value,
        is_first_order: bool,
        enter: bool,
        now: Timestamp,
    ) -> Result<EventOutcome, EngineError> {
        let mut outcome = EventOutcome::default();
        (outcome.exited, outcome.woken) = self.signal(customer, EngineSignal::Event { name, properties }, now).await?;
        let heads = self.cache.heads(&*self.store).await?;
        for (journey, head) in &heads {
            let Trigger::Event { name: trigger, first_order, key } = &head.loaded.journey.trigger else { continue };
            if !enter || trigger != name || (*first_order && !is_first_order) || head.paused {
                continue;
            }
            let run_key = match key {
                Some(key) => match key_text(properties.get(key)) {
                    Some(value) => value,
                    None => continue,
                },
                None => String::new(),
            };
            if let Some(entered) = self.enter_unless_paused(journey, customer, &run_key, properties, now).await? {
                outcome.entered.push((journey.clone(), entered));
            }
        }
        Ok(outcome)
    }
}

/// A customer a calendar trigger enters ([`Engine::enter_many`]).
#[derive(Debug, Clone)]
pub(crate) struct Entrant {
    /// Internal id.
    pub customer: i64,
    /// External id (the holdout arms hash it).
    pub external: String,
    /// The occurrence key.
    pub key: String,
    /// The trigger's context.
    pub context: Value,
    /// The zone a first step that waits is measured in (customer → journey → settings → UTC).
    pub zone: Tz,
}

/// Whether the journey's first step is a wait, so an entry needs the customer's zone.
fn first_step_waits(head: &Head) -> bool {
    let compiled = &head.loaded.compiled;
    let Next::Step(first) = &compiled.first else { return false };
    compiled
        .step(first.as_str())
        .is_some_and(|step| matches!(step.action, Action::Wait(_) | Action::WaitUntil { .. } | Action::WaitFor { .. }))
}

/// The arm of customer `external` in `journey` when they become eligible: the global holdout
/// first (marketing journeys only), then the journey's own. Both are stable hashes of the names
/// ([`kanta_uplift::arm`]), so the arm never changes across versions and re-entries.
fn arm_of(journey: &str, head: &Head, external: &str, global: Holdout) -> RunArm {
    let loaded = &head.loaded;
    let holdout = loaded.journey.holdout;
    if holdout == Holdout::NONE && (global == Holdout::NONE || !loaded.marketing) {
        return RunArm::Treatment;
    }
    let Ok(customer) = CustomerId::parse(external) else {
        // The store only holds ids that parsed when they were written.
        tracing::warn!("journey engine: customer id `{external}` does not parse; treated");
        return RunArm::Treatment;
    };
    if loaded.marketing && assign_global(&customer, global) == Arm::Control {
        RunArm::GlobalControl
    } else if assign(&customer, journey, holdout) == Arm::Control {
        RunArm::Control
    } else {
        RunArm::Treatment
    }
}

/// The run a customer would start: at the first step, or already waiting at it when it is a
/// wait (measured in `zone`). `None` for a journey without steps.
#[allow(clippy::too_many_arguments, reason = "the fields of the run, each from its own source")]
fn new_run<'a>(
    journey: &'a str,
    head: &'a Head,
    customer: i64,
    key: &'a str,
    context: &'a Value,
    zone: Tz,
    arm: RunArm,
    now: Timestamp,
) -> Result<Option<NewRun<'a>>, EngineError> {
    let loaded = &head.loaded;
    let Next::Step(first) = &loaded.compiled.first else {
        // A validated journey has steps; one without would end at once.
        return Ok(None);
    };
    let (mut due_at, mut wait) = (Some(now), None);
    if first_step_waits(head)
        && let Some(step) = loaded.compiled.step(first.as_str())
    {
        (due_at, wait) = wait_position(&step.action, zone, now)?;
    }
    Ok(Some(NewRun {
        journey,
        version: loaded.version,
        customer,
        key,
        step: first.as_str(),
        due_at,
        wait,
        context,
        arm,
    }))
}

/// The journey's entry rules at `now`, as the store checks them.
fn entry_rules(head: &Head, now: Timestamp) -> EntryRules {
    let journey = &head.loaded.journey;
    EntryRules {
        reentry: match journey.entry.reentry {
            Reentry::Once => kanta_store::journey::Reentry::Once,
            Reentry::Always => kanta_store::journey::Reentry::Always,
            Reentry::After(d) => kanta_store::journey::Reentry::Since(kanta_journey::duration::saturating_sub(now, d)),
        },
        max_active: journey.entry.max_concurrent_journeys,
        // Calendar triggers key runs by their occurrence (crate::triggers).
        once_per_key: crate::triggers::keys_occurrences(&journey.trigger),
    }
}

/// Whether some step of the journey's current version waits for event `name` with
/// `match_key` (only then are its runs' keyed waits looked at for it).
fn awaits_keyed(head: &Head, name: &str) -> bool {
    head.loaded.compiled.steps.iter().any(|step| {
        matches!(&step.action, Action::WaitFor { awaited: Awaited::Event { name: awaited, match_key: true }, .. }
            if awaited == name)
    })
}

/// The exit reason stored with the run.
fn exit_reason(condition: &ExitCondition) -> String {
    match condition {
        ExitCondition::Event(name) => format!("event {name}"),
        ExitCondition::EntersSegment(name) => format!("entered segment {name}"),
        ExitCondition::LeavesSegment(name) => format!("left segment {name}"),
        ExitCondition::StageBecomes(stage) => format!("stage became {}", stage.name()),
    }
}
