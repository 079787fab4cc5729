//! Goals: what a journey is for, credited to the run a conversion falls in.
//!
//! Every order, event and segment entry of the feed is checked against the current version of
//! every journey's `goal` **before** it enters anyone (so the order that starts a welcome run is
//! not that run's conversion) and credited by [`GoalStore::record_conversion`] to the
//! customer's latest run entered within the goal's window — treated and held-out runs alike,
//! since the uplift report compares the two. A goal with `exit: true` then ends the customer's
//! active runs of the journey, as an `exit_when` would (a held-out run has no steps to end).
//!
//! The goals are read once per batch of the feed ([`Engine::goals`]). Paused journeys are
//! credited too: pausing stops the messages, not the measurement. A
//! cancelled order reaches no goal (it was never a purchase); a refunded one does — its revenue,
//! negative, is netted in the report's revenue per customer.

use kanta_domain::Timestamp;
use kanta_journey::{Goal, GoalKind};
use kanta_store::journey::{GoalSource, NewConversion};

use crate::{Engine, EngineError};

/// Something the feed saw that may reach a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached<'a> {
    /// An order (`orders.id`).
    Order(Option<i64>),
    /// An event by name (`events.id`).
    Event(&'a str, Option<i64>),
    /// A segment entry.
    Segment(&'a str),
}

/// A journey's goal, as the current version states it.
pub(crate) type JourneyGoal = (String, Goal);

impl Engine {
    /// The goals of the journeys' current versions, by journey name.
    pub(crate) async fn goals(&self) -> Result<Vec<JourneyGoal>, EngineError> {
        let heads = self.cache.heads(&*self.store).await?;
        Ok(heads
            .into_iter()
            .filter_map(|(journey, head)| head.loaded.journey.goal.clone().map(|goal| (journey, goal)))
            .collect())
    }

    /// Credit what `customer` (internal id) did at `at` to every journey of `goals` whose goal it
    /// reaches; end the customer's active runs of those whose goal exits. Returns the
    /// conversions recorded.
    pub(crate) async fn reach_goals(
        &self,
        goals: &[JourneyGoal],
        customer: i64,
        reached: Reached<'_>,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<usize, EngineError> {
        let mut recorded = 0;
        for (journey, goal) in goals {
            let source = match (&goal.reached, reached) {
                (GoalKind::Event(name), Reached::Order(id)) if name == "order.created" => match id {
                    Some(id) => GoalSource::Order(id),
                    None => GoalSource::Event(None),
                },
                (GoalKind::Event(name), Reached::Event(event, id)) if name == event => GoalSource::Event(id),
                (GoalKind::EntersSegment(name), Reached::Segment(segment)) if name == segment => GoalSource::Segment,
                _ => continue,
            };
            let conversion = NewConversion { journey, customer, at, within: goal.within, source };
            if self.store.record_conversion(&conversion, now).await?.is_some() {
                recorded += 1;
            }
            if goal.exit {
                self.store.exit_runs(customer, journey, None, "goal reached", now).await?;
            }
        }
        Ok(recorded)
    }
}
