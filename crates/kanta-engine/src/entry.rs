//! Customers entering journeys, and what arrives for them: events that start runs, wake waits
//! and end runs (`exit_when`), segment transitions and stage changes.

use std::collections::BTreeSet;

use kanta_domain::Timestamp;
use kanta_journey::{Action, ExitCondition, Next, Reentry, Trigger};
use kanta_store::journey::{Entered, EntryRules, NewRun, RunId, Signal};
use serde_json::Value;

use crate::advance::wait_position;
use crate::{Engine, EngineError};

/// Something that arrived for a customer, as exit conditions and waits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSignal<'a> {
    /// An event (or `order.created`), with the value of its key property, if any.
    Event {
        /// The event's name.
        name: &'a str,
        /// The key a keyed wait compares with the run's key.
        key: Option<&'a str>,
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
fn key_text(value: Option<&Value>) -> Option<String> {
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
        let loaded = &head.loaded;
        let Next::Step(first) = &loaded.compiled.first else {
            // A validated journey has steps; one without would end at once.
            return Ok(Entered::NotAgain);
        };
        let (mut due_at, mut wait) = (Some(now), None);
        if let Some(step) = loaded.compiled.step(first.as_str())
            && matches!(step.action, Action::Wait(_) | Action::WaitUntil { .. } | Action::WaitFor { .. })
        {
            let record = self.store.customer(customer, 0).await?;
            let tz = crate::context::zone(record.as_ref(), loaded.journey.timezone, self.config.default_zone);
            (due_at, wait) = wait_position(&step.action, tz, now)?;
        }
        let rules = EntryRules {
            reentry: match loaded.journey.entry.reentry {
                Reentry::Once => kanta_store::journey::Reentry::Once,
                Reentry::Always => kanta_store::journey::Reentry::Always,
                Reentry::After(d) => {
                    kanta_store::journey::Reentry::Since(kanta_journey::duration::saturating_sub(now, d))
                }
            },
            max_active: loaded.journey.entry.max_concurrent_journeys,
            // Calendar triggers key runs by their occurrence (crate::triggers).
            once_per_key: crate::triggers::keys_occurrences(&loaded.journey.trigger),
        };
        let run = NewRun {
            journey,
            version: loaded.version,
            customer: internal,
            key,
            step: first.as_str(),
            due_at,
            wait,
            context,
        };
        Ok(self.store.start_run(&run, &rules, now).await?)
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
            EngineSignal::Event { name, key } => {
                self.store.wake_runs(internal, &Signal::Event { name, key }, now).await?
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
        let heads = self.cache.heads(&*self.store).await?;
        // Each journey's trigger key names a property; the event carries a value for some.
        let keys: BTreeSet<String> = heads
            .values()
            .filter_map(|h| match &h.loaded.journey.trigger {
                Trigger::Event { key: Some(key), .. } => key_text(properties.get(key)),
                _ => None,
            })
            .collect();
        let mut outcome = EventOutcome::default();
        let first_key = keys.first().map(String::as_str);
        let (exited, woken) = self.signal(customer, EngineSignal::Event { name, key: first_key }, now).await?;
        outcome.exited = exited;
        outcome.woken = woken;
        if keys.len() > 1
            && let Some(internal) = self.store.customer_key(customer).await?
        {
            for key in keys.iter().skip(1) {
                let signal = Signal::Event { name, key: Some(key) };
                outcome.woken.extend(self.store.wake_runs(internal, &signal, now).await?);
            }
        }
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

/// The exit reason stored with the run.
fn exit_reason(condition: &ExitCondition) -> String {
    match condition {
        ExitCondition::Event(name) => format!("event {name}"),
        ExitCondition::EntersSegment(name) => format!("entered segment {name}"),
        ExitCondition::LeavesSegment(name) => format!("left segment {name}"),
        ExitCondition::StageBecomes(stage) => format!("stage became {}", stage.name()),
    }
}
