//! Acting on the journey feed: new orders and events, stage changes and segment transitions,
//! written by the store in the transactions that made them (see `kanta_store::journey::feed`).
//! Each claimed row is turned into [`Engine::on_event`] or a transition (exits, woken waits,
//! entries), then deleted.
//!
//! **Stale entries.** A row older than [`EngineConfig::max_event_age`](crate::EngineConfig)
//! when the engine sees it still ends runs and wakes waits, but starts no journey: importing
//! last year's orders into a store with a welcome journey must not welcome every customer again,
//! and a server that was down for a week should not start a week of abandoned-cart reminders.

use kanta_domain::Timestamp;
use kanta_journey::Trigger;
use kanta_store::journey::{Entered, FeedItem, FeedKind};
use serde_json::json;

use crate::entry::EngineSignal;
use crate::goal::{JourneyGoal, Reached};
use crate::{Engine, EngineError};

/// What one pass over the feed did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedOutcome {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows handled and deleted.
    pub handled: usize,
    /// Runs started.
    pub entered: usize,
}

impl Engine {
    /// Claim a batch of the journey feed and act on each row in order; returns what was done.
    /// A row whose handling fails on the store stays claimed and is handled again when its
    /// lease runs out; a row that cannot be handled at all (a journey that no longer loads) is
    /// logged and dropped, so it cannot hold up the feed.
    pub async fn consume_feed(&self, now: Timestamp) -> Result<FeedOutcome, EngineError> {
        let owner = &self.config.owner;
        let items = self.store.claim_feed(owner, now, self.config.run_lease, self.config.feed_batch).await?;
        let mut outcome = FeedOutcome { claimed: items.len(), ..FeedOutcome::default() };
        let mut done = Vec::with_capacity(items.len());
        // The journeys' goals once per batch, not once per row (each read of the heads asks the
        // store whether a journey changed); none read when the batch is empty.
        let goals = if items.is_empty() { Vec::new() } else { self.goals().await? };
        for item in &items {
            match self.handle(item, &goals, now).await {
                Ok(entered) => {
                    outcome.entered += entered;
                    done.push(item.id);
                }
                Err(EngineError::Store(e)) => {
                    tracing::warn!("journey feed: row {} left for a retry: {e}", item.id);
                    break;
                }
                Err(e) => {
                    tracing::warn!("journey feed: {} `{}` passed over: {e}", kind_name(&item.kind), item.name);
                    done.push(item.id);
                }
            }
        }
        outcome.handled = usize::try_from(self.store.ack_feed(owner, &done).await?).unwrap_or(usize::MAX);
        Ok(outcome)
    }

    /// One row: returns how many runs it started.
    async fn handle(&self, item: &FeedItem, goals: &[JourneyGoal], now: Timestamp) -> Result<usize, EngineError> {
        // An erased customer's rows are deleted with them; one erased after the claim is gone.
        let Some(customer) = item.customer.as_deref() else { return Ok(0) };
        let fresh = self.config.max_event_age.is_none_or(|age| !kanta_journey::too_late(item.time, now, Some(age)));
        // Goals before entries: what starts a run is not that run's conversion. A cancelled
        // order was never a purchase: it reaches no goal.
        let cancelled =
            item.properties.get("status").and_then(|s| s.as_str()) == Some(kanta_domain::purchase::CANCELLED);
        let reached = match item.kind {
            FeedKind::Order { .. } if cancelled => None,
            FeedKind::Order { .. } => Some(Reached::Order(item.reference)),
            FeedKind::Event => Some(Reached::Event(&item.name, item.reference)),
            FeedKind::SegmentEnter => Some(Reached::Segment(&item.name)),
            FeedKind::Stage | FeedKind::SegmentExit => None,
        };
        if let Some(reached) = reached {
            self.reach_goals(goals, item.customer_key, reached, item.time, now).await?;
        }
        let signal = match item.kind {
            FeedKind::Order { first } => {
                let outcome = self.event(customer, "order.created", &item.properties, first, fresh, now).await?;
                return Ok(started(&outcome.entered));
            }
            FeedKind::Event => {
                let outcome = self.event(customer, &item.name, &item.properties, false, fresh, now).await?;
                return Ok(started(&outcome.entered));
            }
            FeedKind::Stage => EngineSignal::StageBecomes(&item.name),
            FeedKind::SegmentEnter => EngineSignal::EntersSegment(&item.name),
            FeedKind::SegmentExit => EngineSignal::LeavesSegment(&item.name),
        };
        match self.on_transition(customer, signal, fresh, now).await {
            Ok(entered) => Ok(started(&entered)),
            Err(EngineError::UnknownCustomer(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    async fn event(
        &self,
        customer: &str,
        name: &str,
        properties: &serde_json::Value,
        first: bool,
        enter: bool,
        now: Timestamp,
    ) -> Result<crate::EventOutcome, EngineError> {
        match self.on_event_entering(customer, name, properties, first, enter, now).await {
            Err(EngineError::UnknownCustomer(_)) => Ok(crate::EventOutcome::default()),
            other => other,
        }
    }

    /// A stage change or segment transition for `customer`: exits and woken waits
    /// ([`Engine::signal`]), then, when `enter`, every journey it triggers (not paused).
    pub async fn on_transition(
        &self,
        customer: &str,
        signal: EngineSignal<'_>,
        enter: bool,
        now: Timestamp,
    ) -> Result<Vec<(String, Entered)>, EngineError> {
        self.signal(customer, signal, now).await?;
        if !enter {
            return Ok(Vec::new());
        }
        let heads = self.cache.heads(&*self.store).await?;
        let mut entered = Vec::new();
        for (journey, head) in &heads {
            let context = match (&head.loaded.journey.trigger, signal) {
                (Trigger::EntersSegment(a), EngineSignal::EntersSegment(b)) if a == b => json!({"segment": b}),
                (Trigger::LeavesSegment(a), EngineSignal::LeavesSegment(b)) if a == b => json!({"segment": b}),
                (Trigger::StageBecomes(stage), EngineSignal::StageBecomes(b)) if stage.name() == b => {
                    json!({"stage": b})
                }
                _ => continue,
            };
            if head.paused {
                continue;
            }
            if let Some(result) = self.enter_unless_paused(journey, customer, "", &context, now).await? {
                entered.push((journey.clone(), result));
            }
        }
        Ok(entered)
    }
}

fn started(entered: &[(String, Entered)]) -> usize {
    entered.iter().filter(|(_, e)| matches!(e, Entered::Started(_))).count()
}

fn kind_name(kind: &FeedKind) -> &'static str {
    match kind {
        FeedKind::Order { .. } => "order",
        FeedKind::Event => "event",
        FeedKind::Stage => "stage change",
        FeedKind::SegmentEnter => "segment entry",
        FeedKind::SegmentExit => "segment exit",
    }
}
