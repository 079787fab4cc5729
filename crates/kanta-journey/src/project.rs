//! Projecting runs without running them: where one customer's run would go and when, and what
//! the guardrails would do to its messages — the step walk of `kanta journeys simulate`.
//!
//! [`walk`] follows a compiled journey from an entry instant as the engine would: waits end at
//! their due time (`wait_until` at the local time in the customer's zone, across DST as the
//! engine computes it, [`next_local_time`]); splits take the arm [`crate::split::choose`] gives
//! this customer, exactly as a real run; what the projection cannot know — whether a branch's
//! condition holds, whether an awaited event comes before its timeout — is asked of an
//! [`Outcomes`], which the caller answers from the store or from a model. The walk stops at
//! the journey's end, an exit, or the `horizon`.
//!
//! [`plan`] then applies the send-time guardrails to every projected message of a population:
//! quiet hours defer a marketing message to the next allowed local time
//! ([`QuietHours::next_allowed`]); the frequency cap skips one when the customer has already had
//! `max` marketing messages in the rolling window before it (projected ones and those the store
//! says were sent); transactional messages bypass both. Consent and suppression are not
//! projected (they are the customer's state at send time).

use std::collections::HashMap;
use std::time::Duration;

use chrono_tz::Tz;
use kanta_domain::Timestamp;

use crate::compile::{Action, Compiled, CompiledStep, Next};
use crate::document::{Awaited, StepId};
use crate::guard::{FrequencyCap, QuietHours};
use crate::when::next_local_time;
use crate::zone::OutOfRange;

/// What the walk asks about one customer.
pub trait Outcomes {
    /// Whether the branch `condition` at `step` holds for the customer at `at`.
    fn branch(&mut self, step: &CompiledStep, condition: &str, at: Timestamp) -> bool;

    /// When what `step` awaits arrives, if it does before `deadline` (the timeout), for a wait
    /// that started at `since`.
    fn arrival(
        &mut self,
        step: &CompiledStep,
        awaited: &Awaited,
        since: Timestamp,
        deadline: Timestamp,
    ) -> Option<Timestamp>;
}

/// What happened at a step of a projected run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// An email would be sent (queued) at this instant.
    Email {
        /// Exempt from the cap and quiet hours.
        transactional: bool,
    },
    /// A webhook would be called.
    Webhook,
    /// The customer would be updated.
    Update,
    /// A wait ended (its due time, or the awaited arrival).
    Waited,
    /// A branch went `then` (true) or `else`.
    Branch(bool),
    /// A split took this arm.
    Split(usize),
}

/// One step of a projected run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step.
    pub step: StepId,
    /// When the run passes it.
    pub at: Timestamp,
    /// What happens there.
    pub visit: Visit,
}

/// How a projected run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It ran to the last step.
    Completed(Timestamp),
    /// An `exit` ended it.
    Exited(Timestamp),
    /// It was still on its way at the horizon.
    Running,
}

/// A projected run: the steps passed before the horizon, and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The end.
    pub end: End,
}

/// The most steps one run may pass (compiled journeys only go forward, so this is a guard
/// against a bug, not a limit a journey can reach).
const MAX_STEPS: usize = 10_000;

/// Walks `compiled` for customer `customer` (external id, as splits key it) of journey `journey`
/// entering at `entered` in `zone`, up to `horizon` (steps due later are not taken).
pub fn walk(
    compiled: &Compiled,
    journey: &str,
    customer: &str,
    entered: Timestamp,
    zone: Tz,
    horizon: Timestamp,
    outcomes: &mut dyn Outcomes,
) -> Result<Run, OutOfRange> {
    let mut steps = Vec::new();
    let mut at = entered;
    let mut next = compiled.first.clone();
    for _ in 0..MAX_STEPS {
        let id = match &next {
            Next::Step(id) => id.clone(),
            Next::End => return Ok(Run { steps, end: End::Completed(at) }),
            Next::Exit => return Ok(Run { steps, end: End::Exited(at) }),
        };
        let Some(step) = compiled.step(id.as_str()) else {
            return Ok(Run { steps, end: End::Completed(at) });
        };
        let (due, visit, then) = match &step.action {
            Action::Wait(d) => (at.saturating_add(*d), Visit::Waited, step.next.clone()),
            Action::WaitUntil { local_time, weekdays } => {
                (next_local_time(at, zone, *local_time, *weekdays)?, Visit::Waited, step.next.clone())
            }
            Action::WaitFor { awaited, timeout, on_timeout } => {
                let deadline = at.saturating_add(*timeout);
                match outcomes.arrival(step, awaited, at, deadline) {
                    Some(arrived) if arrived < deadline => (arrived.max(at), Visit::Waited, step.next.clone()),
                    _ => (deadline, Visit::Waited, on_timeout.clone()),
                }
            }
            Action::Branch { condition, then, otherwise } => {
                let holds = outcomes.branch(step, condition, at);
                (at, Visit::Branch(holds), if holds { then.clone() } else { otherwise.clone() })
            }
            Action::Split { arms } => {
                let weights: Vec<u32> = arms.iter().map(|(w, _)| *w).collect();
                let arm = crate::split::choose(customer, journey, step.id.as_str(), &weights).unwrap_or(0);
                (at, Visit::Split(arm), arms.get(arm).map_or_else(|| step.next.clone(), |(_, n)| n.clone()))
            }
            Action::SendEmail(email) => (at, Visit::Email { transactional: email.transactional }, step.next.clone()),
            Action::Webhook(_) => (at, Visit::Webhook, step.next.clone()),
            Action::Update(_) => (at, Visit::Update, step.next.clone()),
            Action::Exit => return Ok(Run { steps, end: End::Exited(at) }),
        };
        if due > horizon {
            return Ok(Run { steps, end: End::Running });
        }
        at = due;
        steps.push(Step { step: step.id.clone(), at, visit });
        next = then;
    }
    Ok(Run { steps, end: End::Running })
}

/// A projected message to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// The customer (any key the caller uses; the cap counts per key).
    pub customer: u64,
    /// When the run queues it.
    pub at: Timestamp,
    /// The customer's zone (quiet hours).
    pub zone: Tz,
    /// Exempt from quiet hours and the cap.
    pub transactional: bool,
}

/// What the guardrails do to a projected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// Sent when queued.
    Sent(Timestamp),
    /// Sent later, at the end of the customer's quiet hours.
    Deferred(Timestamp),
    /// Skipped: the cap was reached.
    Capped,
}

/// Applies quiet hours and the cap to `messages` (any order), given each customer's marketing
/// messages already sent before (`earlier`, by customer key): the plan of each message, in the
/// order given. Messages are decided in order of their send time, as the engine's outbox would
/// send them.
pub fn plan(
    messages: &[Message],
    quiet: QuietHours,
    cap: FrequencyCap,
    earlier: &HashMap<u64, Vec<Timestamp>>,
) -> Result<Vec<Planned>, OutOfRange> {
    let mut due: Vec<(Timestamp, usize)> = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let at = if m.transactional { m.at } else { quiet.next_allowed(m.at, m.zone)? };
        due.push((at, i));
    }
    due.sort_unstable();
    let mut sent: HashMap<u64, Vec<Timestamp>> = HashMap::new();
    let mut out = vec![Planned::Capped; messages.len()];
    for (at, i) in due {
        let m = &messages[i];
        if m.transactional {
            out[i] = Planned::Sent(at);
            continue;
        }
        if let FrequencyCap::Limit(limit) = cap {
            let counted = |times: Option<&Vec<Timestamp>>| {
                times.map_or(0, |t| t.iter().filter(|&&s| limit.counts(s, at)).count())
            };
            let in_window = counted(earlier.get(&m.customer)) + counted(sent.get(&m.customer));
            if limit.is_reached(u32::try_from(in_window).unwrap_or(u32::MAX)) {
                continue;
            }
        }
        sent.entry(m.customer).or_default().push(at);
        out[i] = if at == m.at { Planned::Sent(at) } else { Planned::Deferred(at) };
    }
    Ok(out)
}

/// Outcomes that are the same for everyone: every branch goes one way, nothing awaited arrives
/// (every `wait_for` times out) — the pessimistic default for a first look at a journey's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// What every branch condition is taken to be.
    pub branches: bool,
}

impl Outcomes for Fixed {
    fn branch(&mut self, _: &CompiledStep, _: &str, _: Timestamp) -> bool {
        self.branches
    }

    fn arrival(&mut self, _: &CompiledStep, _: &Awaited, _: Timestamp, _: Timestamp) -> Option<Timestamp> {
        None
    }
}

/// Whole days from `from` to `to` (0 when `to` is not later), for per-day tallies.
pub fn day_index(from: Timestamp, to: Timestamp) -> u64 {
    crate::duration::elapsed(from, to).as_secs() / Duration::from_secs(86_400).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{AnyTemplate, validate_yaml};

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn compiled(yaml: &str) -> Compiled {
        validate_yaml(yaml, &AnyTemplate).unwrap_or_else(|p| panic!("{p}")).compile()
    }

    fn summary(run: &Run) -> Vec<(String, String, Visit)> {
        run.steps.iter().map(|s| (s.step.to_string(), s.at.to_rfc3339(), s.visit)).collect()
    }

    const WELCOME: &str = include_str!("../../../journeys/welcome.yaml");

    #[test]
    fn the_welcome_journey_sends_at_once_and_three_days_later_at_ten_local() {
        let journey = compiled(WELCOME);
        let zone: Tz = "Europe/Helsinki".parse().unwrap();
        let entered = t("2026-03-02T15:30:00Z");
        let horizon = t("2026-04-01T00:00:00Z");
        // The branch `orders >= 2` does not hold: the second email goes.
        let run = walk(&journey, "welcome", "ann", entered, zone, horizon, &mut Fixed { branches: false }).unwrap();
        let email = Visit::Email { transactional: false };
        assert_eq!(
            summary(&run),
            [
                ("0".into(), "2026-03-02T15:30:00Z".into(), email),
                ("1".into(), "2026-03-05T15:30:00Z".into(), Visit::Waited),
                // 10:00 in Helsinki (UTC+2) on 6 March: at 17:30 local on the 5th, 10:00 had passed.
                ("2".into(), "2026-03-06T08:00:00Z".into(), Visit::Waited),
                ("3".into(), "2026-03-06T08:00:00Z".into(), Visit::Branch(false)),
                ("4".into(), "2026-03-06T08:00:00Z".into(), email),
            ]
        );
        assert_eq!(run.end, End::Completed(t("2026-03-06T08:00:00Z")));
        // When it holds, the run exits at the branch.
        let exits = walk(&journey, "welcome", "ann", entered, zone, horizon, &mut Fixed { branches: true }).unwrap();
        assert_eq!((exits.steps.len(), exits.end), (4, End::Exited(t("2026-03-06T08:00:00Z"))));
        // A horizon before the wait ends leaves the run waiting.
        let cut =
            walk(&journey, "welcome", "ann", entered, zone, t("2026-03-04T00:00:00Z"), &mut Fixed { branches: false })
                .unwrap();
        assert_eq!((cut.steps.len(), cut.end), (1, End::Running));
    }

    struct Arrives(Option<Timestamp>);

    impl Outcomes for Arrives {
        fn branch(&mut self, _: &CompiledStep, _: &str, _: Timestamp) -> bool {
            false
        }
        fn arrival(&mut self, _: &CompiledStep, _: &Awaited, _: Timestamp, _: Timestamp) -> Option<Timestamp> {
            self.0
        }
    }

    #[test]
    fn a_wait_for_goes_on_at_the_arrival_or_takes_its_timeout_branch() {
        let journey = compiled(
            "name: cart\ntrigger: { event: cart.updated, key: cart_id }\nsteps:\n\
             \x20 - wait_for: { event: order.created, match_key: true, timeout: 4h, on_timeout: [{ send_email: { subject: Cart, html: <p>c</p> } }] }\n\
             \x20 - update: { set: { attributes.done: true } }\n",
        );
        let entered = t("2026-03-02T12:00:00Z");
        let horizon = t("2026-03-09T00:00:00Z");
        let arrived =
            walk(&journey, "cart", "bob", entered, Tz::UTC, horizon, &mut Arrives(Some(t("2026-03-02T13:00:00Z"))))
                .unwrap();
        assert_eq!(
            summary(&arrived),
            [
                ("0".into(), "2026-03-02T13:00:00Z".into(), Visit::Waited),
                ("1".into(), "2026-03-02T13:00:00Z".into(), Visit::Update),
            ]
        );
        let timed_out = walk(&journey, "cart", "bob", entered, Tz::UTC, horizon, &mut Arrives(None)).unwrap();
        assert_eq!(
            summary(&timed_out),
            [
                ("0".into(), "2026-03-02T16:00:00Z".into(), Visit::Waited),
                ("0.on_timeout.0".into(), "2026-03-02T16:00:00Z".into(), Visit::Email { transactional: false }),
                ("1".into(), "2026-03-02T16:00:00Z".into(), Visit::Update),
            ]
        );
    }

    #[test]
    fn a_split_takes_the_arm_a_real_run_of_the_customer_would() {
        let journey = compiled(
            "name: ab\ntrigger: { event: signup }\nsteps:\n  - split:\n\
             \x20     - { weight: 1, steps: [] }\n\
             \x20     - { weight: 3, steps: [{ send_email: { subject: B, html: <p>B</p> } }] }\n",
        );
        for customer in ["a", "b", "c", "d", "e", "f"] {
            let run = walk(
                &journey,
                "ab",
                customer,
                t("2026-03-02T12:00:00Z"),
                Tz::UTC,
                t("2026-04-02T12:00:00Z"),
                &mut Fixed { branches: false },
            )
            .unwrap();
            let arm = crate::split::choose(customer, "ab", "0", &[1, 3]).unwrap();
            assert_eq!(run.steps[0].visit, Visit::Split(arm), "{customer}");
            assert_eq!(run.steps.len(), 1 + arm, "{customer}");
        }
    }

    #[test]
    fn plans_defer_quiet_hours_skip_over_the_cap_and_let_transactional_mail_through() {
        let zone: Tz = "America/New_York".parse().unwrap();
        let quiet = QuietHours::parse("21:00-08:00").unwrap();
        let cap = FrequencyCap::parse("2/7d").unwrap();
        let m = |customer, at: &str, transactional| Message { customer, at: t(at), zone, transactional };
        let messages = [
            // 23:00 in New York (EST, UTC−5) on 2 March: deferred to 08:00 local on 3 March.
            m(1, "2026-03-03T04:00:00Z", false),
            m(1, "2026-03-03T15:00:00Z", false),
            // The third marketing message in 7 days: capped.
            m(1, "2026-03-04T15:00:00Z", false),
            // Transactional: at once, at night, over the cap.
            m(1, "2026-03-04T04:00:00Z", true),
            // Another customer with one message sent the day before: one more fits.
            m(2, "2026-03-03T15:00:00Z", false),
            m(2, "2026-03-04T15:00:00Z", false),
        ];
        let earlier = HashMap::from([(2, vec![t("2026-03-02T15:00:00Z")])]);
        let planned = plan(&messages, quiet, cap, &earlier).unwrap();
        assert_eq!(
            planned,
            [
                Planned::Deferred(t("2026-03-03T13:00:00Z")),
                Planned::Sent(t("2026-03-03T15:00:00Z")),
                Planned::Capped,
                Planned::Sent(t("2026-03-04T04:00:00Z")),
                Planned::Sent(t("2026-03-03T15:00:00Z")),
                Planned::Capped,
            ]
        );
        // A week after the first two, the window has room again.
        let later = [
            m(1, "2026-03-03T04:00:00Z", false),
            m(1, "2026-03-03T15:00:00Z", false),
            m(1, "2026-03-10T15:00:00Z", false),
        ];
        let planned = plan(&later, quiet, cap, &HashMap::new()).unwrap();
        assert_eq!(planned[2], Planned::Sent(t("2026-03-10T15:00:00Z")));
        assert_eq!(day_index(t("2026-03-02T12:00:00Z"), t("2026-03-10T11:59:59Z")), 7);
    }
}
