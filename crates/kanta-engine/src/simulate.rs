//! `kanta journeys simulate`: a journey run against the current store for the next days
//! without entering, sending or writing anything — who would enter, where their runs would go,
//! and what the guardrails would do to the messages.
//!
//! **Who enters**, by trigger:
//!
//! - `stage_becomes` and `predicted_next_purchase`: each customer's purchases are drawn from
//!   the fitted customer model — the parameters of the latest scoring run, the ones the stored
//!   scores came from — and the daily rescoring is replayed on them
//!   ([`kanta_score::future`]): a customer enters on the day their projected stage becomes the
//!   trigger's, or on the local day their projected next purchase (as that day's scores would
//!   put it) is the trigger's offset away.
//! - `enters_segment` / `leaves_segment`: the same draws, and the saved segment's expression
//!   evaluated on every projected day ([`kanta_segment::project`]): its conditions on orders,
//!   days since the first or last order, stage, P(alive) and days to the next purchase on the
//!   projected values, its other conditions (consent, attributes, CLV…) as they hold today. A
//!   segment with conditions the projection cannot follow (`days_in_stage`, `orders_in_last`,
//!   …) is replayed instead, and the result says so.
//! - `date`: from the calendar, as the engine's date triggers do, for the local days of the
//!   window in each customer's zone.
//! - `schedule`: every occurrence in the window enters the segment's current members.
//! - `event` (`order.created` included): the last `days` days replayed, shifted forward by
//!   `days` — the next month looks like the last one.
//!
//! **Where runs go**: [`kanta_journey::project::walk`] with the journey's waits, splits (the arm
//! a real run of the customer takes) and the customer's zone; a branch holds when the customer
//! matches its condition now; a `wait_for` an order, and `exit_when` an order or a stage (and a
//! goal that exits on an order), are answered by the customer's drawn purchases and projected
//! stages when the model is fitted. Re-entry rules apply across the window and to the journey's
//! earlier runs in the store; holdout and global-holdout customers enter as control and get no
//! step, as in a real run. **Messages** then go through quiet hours and the frequency cap
//! ([`kanta_journey::project::plan`]), counting the marketing messages already sent before now.
//!
//! Consent, suppressions and `max_concurrent_journeys` are not projected: they are the
//! customer's state at send or entry time, and the result says so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use kanta_core::lifecycle::Stage;
use kanta_domain::Timestamp;
use kanta_domain::contact::{CustomerId, TimeZoneName};
use kanta_journey::project::{self, End, Message, Outcomes, Planned, Visit};
use kanta_journey::reentry::{Entry, PreviousRun};
use kanta_journey::{
    Action, Awaited, Compiled, CompiledStep, ExitCondition, FrequencyCap, GoalKind, Holdout, Journey, Trigger, dates,
    zone,
};
use kanta_score::future::{Day, LapseThresholds, Projector};
use kanta_segment::project::{Moving, Projection, State};
use kanta_store::journey::{CustomerKey, Happening};
use kanta_uplift::arm::{Arm, assign, assign_global};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

use crate::triggers::{Calendar, DayFilters, fires_on, next_occurrence};
use crate::{DAY_MICROS, Engine, EngineError};

const DAY: Duration = Duration::from_secs(86_400);
const PAGE: u32 = 20_000;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulateOptions {
    /// Days after now.
    pub days: u32,
    /// Seed of the purchase draws (the same seed, store and journey give the same result).
    pub seed: u64,
    /// Independent draws of the customers' futures whose counts are averaged (only where the
    /// model is used; a single draw's entries vary by several per cent).
    pub draws: u32,
    /// The scoring settings' lapse threshold override, as the scoring job uses it.
    pub lapse_days: Option<u32>,
    /// The scoring settings' P(alive) below which a valuable customer is slipping.
    pub slipping_below: f64,
}

/// A simulation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// The journey.
    pub journey: String,
    /// The window: from now, RFC 3339.
    pub from: String,
    /// Its end, RFC 3339.
    pub until: String,
    /// Its length in days.
    pub days: u32,
    /// The seed of the draws.
    pub seed: u64,
    /// How many draws the counts are the mean of (1 without the model).
    pub draws: u32,
    /// How the entries were projected, in a sentence.
    pub entries_from: String,
    /// The customer model the draws came from, when one was used.
    pub model: Option<String>,
    /// Customers in the store (not erased).
    pub customers: u64,
    /// The entries (every count here and below: the mean over the draws).
    pub entries: Entries,
    /// The fewest and most entries in one draw.
    pub entries_range: [u64; 2],
    /// Entries (all arms) per UTC calendar day of the window (today's first: the window starts
    /// now, inside it, and ends inside the last).
    pub entries_per_day: Vec<DayCount>,
    /// Runs that pass each step (treatment only), in the journey's step order.
    pub steps: Vec<StepCount>,
    /// How the treated runs end within the window.
    pub ends: Ends,
    /// The messages.
    pub messages: Messages,
    /// The fewest and most emails in one draw.
    pub emails_range: [u64; 2],
    /// Emails (sent when queued or deferred to then) and webhooks per UTC calendar day of the
    /// window, as `entries_per_day`.
    pub sends_per_day: Vec<DaySends>,
    /// Emails per customer per week of the window.
    pub per_customer_week: PerWeek,
    /// What the projection does not know.
    pub caveats: Vec<String>,
}

/// Entries by arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Entries {
    /// All entries (every arm).
    pub total: u64,
    /// Treated: they walk the steps.
    pub treatment: u64,
    /// The journey's holdout.
    pub control: u64,
    /// The global holdout.
    pub global_control: u64,
    /// Distinct customers entered.
    pub customers: u64,
    /// Trigger occurrences refused by the re-entry rule (or an active run).
    pub refused: u64,
}

/// A count on one day of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The UTC date.
    pub day: String,
    /// The count.
    pub entries: u64,
}

/// Runs passing a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepCount {
    /// The step's id.
    pub step: String,
    /// Its kind (`send_email`, `wait`, …).
    pub kind: &'static str,
    /// Runs that pass it within the window.
    pub runs: u64,
}

/// How treated runs end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Ends {
    /// Ran to the last step.
    pub completed: u64,
    /// Exited (an `exit` step, `exit_when`, the goal).
    pub exited: u64,
    /// Still on their way at the end of the window.
    pub running: u64,
}

/// The messages of the treated runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Messages {
    /// Emails queued by the runs.
    pub emails: u64,
    /// Of them transactional (exempt from the cap and quiet hours).
    pub transactional: u64,
    /// Sent when queued.
    pub sent: u64,
    /// Deferred by quiet hours (and sent later).
    pub deferred: u64,
    /// Skipped by the frequency cap.
    pub capped: u64,
    /// Deferred past the end of the window.
    pub after_window: u64,
    /// Webhook calls.
    pub webhooks: u64,
    /// Customer updates.
    pub updates: u64,
}

/// Sends on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySends {
    /// The UTC date.
    pub day: String,
    /// Emails sent when queued.
    pub sent: u64,
    /// Emails sent at the end of quiet hours.
    pub deferred: u64,
    /// Webhook calls.
    pub webhooks: u64,
}

/// Emails per customer and week (weeks counted from now; the last may be shorter).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerWeek {
    /// Customers who get at least one email.
    pub customers: u64,
    /// Mean emails per customer-week, over the weeks in which the customer gets any (pooled
    /// over the draws).
    pub mean: f64,
    /// The most emails one customer gets in one week (in any draw).
    pub max: u64,
    /// Customer-weeks by the number of emails in them: `[emails, customer-weeks]`.
    pub histogram: Vec<[u64; 2]>,
}

/// A projected entry.
#[derive(Debug, Clone)]
struct Entrant {
    customer: i64,
    at: Timestamp,
    key: String,
}

/// One customer's projected future: purchase instants and the daily rescoring's stages.
#[derive(Debug, Clone, Default)]
struct Future {
    purchases: Vec<Timestamp>,
    stages: Vec<Stage>,
}

/// The customers by internal id, with their zones resolved for the journey.
struct Directory {
    /// By internal id, ascending (the order the store pages them in).
    keys: Vec<CustomerKey>,
    zones: Vec<Tz>,
    /// External id → internal id, built the first time a segment or a branch needs it (a
    /// million owned strings are not free, and most simulations never look one up).
    by_external: std::sync::OnceLock<HashMap<String, i64>>,
}

impl Directory {
    fn get(&self, id: i64) -> Option<(&CustomerKey, Tz)> {
        let i = self.keys.binary_search_by_key(&id, |k| k.id).ok()?;
        Some((&self.keys[i], self.zones[i]))
    }

    /// The internal id of the customer with external id `external`.
    fn internal(&self, external: &str) -> Option<i64> {
        self.by_external
            .get_or_init(|| self.keys.iter().map(|k| (k.external_id.clone(), k.id)).collect())
            .get(external)
            .copied()
    }
}

impl Engine {
    /// Simulates `journey` over the next `options.days` days from now; see the module docs.
    pub async fn simulate(&self, journey: &Journey, options: &SimulateOptions) -> Result<Simulation, EngineError> {
        let now = self.now();
        let horizon = now.saturating_add(DAY * options.days);
        // The step graph, compiled once for every walk, count and check below.
        let compiled = journey.compile();
        let reacts = reacts_to_purchases(journey, &compiled);
        let from_model = model_trigger(&journey.trigger);
        let on_segment = matches!(journey.trigger, Trigger::EntersSegment(_) | Trigger::LeavesSegment(_));
        let needs_model = from_model || on_segment || reacts;
        // The customers' keys and the purchases' analysis are two long reads: side by side.
        let (directory, inputs) = tokio::join!(self.directory(journey), async {
            if needs_model { Some(self.model_inputs(now, options).await) } else { None }
        });
        let directory = directory?;
        let mut caveats = vec![
            "consent, suppressions and max_concurrent_journeys are not projected: they are decided at send and entry time"
                .to_owned(),
        ];
        let mut segment = match &journey.trigger {
            Trigger::EntersSegment(name) | Trigger::LeavesSegment(name) => {
                self.segment_plan(journey, name, &directory, now, &mut caveats).await?
            }
            _ => None,
        };
        let base = match inputs {
            None => None,
            Some(Ok(inputs)) => Some(ModelBase::new(inputs, &directory)),
            Some(Err(EngineError::Simulate(why))) if !from_model => {
                if segment.take().is_some() {
                    caveats.push(format!("the segment's entries and exits are replayed: {why}"));
                }
                if reacts {
                    caveats.push(format!("runs are not ended by orders or stage changes: {why}"));
                }
                None
            }
            Some(Err(e)) => return Err(e),
        };
        let drawn_entries = from_model || segment.is_some();
        let (fixed, entries_from) = match &journey.trigger {
            Trigger::StageBecomes(_) | Trigger::PredictedNextPurchase { .. } => {
                let name = base.as_ref().map_or("", |b| b.fitted.name.as_str());
                (Vec::new(), format!("each customer's purchases drawn from the fitted {name} model, rescored daily"))
            }
            Trigger::EntersSegment(name) | Trigger::LeavesSegment(name) if segment.is_some() => {
                let model = base.as_ref().map_or("", |b| b.fitted.name.as_str());
                (
                    Vec::new(),
                    format!(
                        "each customer's purchases drawn from the fitted {model} model, rescored daily, and segment \
                     `{name}`'s conditions on them evaluated every day (its other conditions as they are today)"
                    ),
                )
            }
            Trigger::Date { .. } => {
                (self.date_entries(journey, &directory, now, horizon).await?, "the calendar".into())
            }
            Trigger::Schedule { cron, segment } => (
                self.schedule_entries(journey, cron, segment, &directory, now, horizon).await?,
                format!("every occurrence of the schedule entering segment `{segment}`'s current members"),
            ),
            Trigger::Event { .. } | Trigger::EntersSegment(_) | Trigger::LeavesSegment(_) => (
                self.replayed_entries(journey, now, options.days).await?,
                format!("the last {} days replayed", options.days),
            ),
        };
        let members = self.branch_members(&compiled, &directory, now).await?;
        let previous = self.previous_runs(journey).await?;
        let earlier = self.earlier_marketing(now).await?;
        // Draws differ only where the model is used; without it one run is the answer.
        let draws = if base.is_some() && (drawn_entries || reacts) { options.draws.max(1) } else { 1 };
        let mut runs = Vec::with_capacity(draws as usize);
        for draw in 0..draws {
            let seed = options.seed.wrapping_add(u64::from(draw).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (mut entrants, futures) = match &base {
                Some(base) => base.draw(journey, now, options, seed, drawn_entries, segment.as_ref())?,
                None => (Vec::new(), HashMap::new()),
            };
            if !drawn_entries {
                entrants.clone_from(&fixed);
            }
            entrants.sort_by_key(|a| (a.at, a.customer));
            let global = self.config.global_holdout;
            let walked = walk_all(
                journey,
                &compiled,
                &entrants,
                &directory,
                &futures,
                &members,
                previous.clone(),
                global,
                (now, horizon),
            )?;
            let guard = &self.config.guardrails;
            let planned = project::plan(&walked.messages, guard.quiet, guard.cap, &earlier)?;
            runs.push(tally(&compiled, now, options, walked, &planned));
        }
        let model = base.map(|b| b.fitted.name);
        Ok(Simulation::from_draws(
            journey,
            &compiled,
            now,
            options,
            directory.keys.len() as u64,
            entries_from,
            model,
            runs,
            caveats,
        ))
    }

    /// A segment trigger's plan: the saved segment's expression split for the projection, and
    /// the customers its fixed parts hold today; `None` (with the reason in `caveats`) when it
    /// is replayed instead: a segment that does not exist, or one whose conditions the
    /// projection cannot follow.
    async fn segment_plan(
        &self,
        journey: &Journey,
        name: &str,
        directory: &Directory,
        now: Timestamp,
        caveats: &mut Vec<String>,
    ) -> Result<Option<SegmentPlan>, EngineError> {
        let Some(info) = self.store.segments().await?.into_iter().find(|s| s.name == name) else {
            caveats.push(format!("segment `{name}` does not exist: nobody enters or leaves it"));
            return Ok(None);
        };
        let expr = kanta_segment::parse(&info.expression)
            .map_err(|e| EngineError::Simulate(format!("segment `{name}`'s expression does not parse: {e}")))?;
        let projection = match Projection::split(&expr) {
            Ok(p) => p,
            Err(why) => {
                caveats.push(format!("segment `{name}`'s entries and exits are replayed from the last days: {why}"));
                return Ok(None);
            }
        };
        let mut fixed = Vec::with_capacity(projection.fixed.len());
        for part in &projection.fixed {
            fixed.push(self.members_of(part, directory, now).await?);
        }
        let enters = matches!(journey.trigger, Trigger::EntersSegment(_));
        Ok(Some(SegmentPlan { projection, fixed, enters }))
    }

    /// The customers (internal ids) a segment expression selects now.
    async fn members_of(
        &self,
        expr: &kanta_segment::Expr,
        directory: &Directory,
        now: Timestamp,
    ) -> Result<HashSet<i64>, EngineError> {
        let profiles =
            every_page(async |after| self.store.segment_members(expr, now.micros(), after, PAGE).await).await?;
        Ok(profiles.iter().filter_map(|p| directory.internal(&p.id)).collect())
    }

    /// Every customer's key and zone (customer → journey → settings → UTC).
    async fn directory(&self, journey: &Journey) -> Result<Directory, EngineError> {
        let mut keys = every_page(async |after| self.store.customer_keys(after, PAGE).await).await?;
        // The store pages by internal id (sorting sorted input is one pass).
        keys.sort_by_key(|k| k.id);
        let mut parsed: HashMap<Option<String>, Tz> = HashMap::new();
        let zones = keys
            .iter()
            .map(|k| match parsed.get(&k.timezone) {
                Some(tz) => *tz,
                None => {
                    let name = k.timezone.as_deref().and_then(|z| TimeZoneName::parse(z).ok());
                    let tz =
                        kanta_journey::effective_zone(name.as_ref(), journey.timezone, self.config.default_zone).tz;
                    parsed.insert(k.timezone.clone(), tz);
                    tz
                }
            })
            .collect();
        Ok(Directory { keys, zones, by_external: std::sync::OnceLock::new() })
    }

    /// What the draws need, read and computed once: the fitted models, the store analysed as
    /// the scoring job does it, who is valuable.
    async fn model_inputs(&self, now: Timestamp, options: &SimulateOptions) -> Result<ModelInputs, EngineError> {
        let fitted = self.fitted_model().await?;
        let Some(store) = kanta_jobs::analyse_store(&*self.store, now.micros(), options.lapse_days)
            .await
            .map_err(|e| EngineError::Simulate(e.to_string()))?
        else {
            return Err(EngineError::Simulate("the store has no purchases".into()));
        };
        let summaries = &store.analysis.customers;
        let score_options = kanta_score::ScoreOptions { slipping_below: options.slipping_below, ..Default::default() };
        let scores = kanta_score::score_with(summaries, fitted.model.as_ref(), fitted.spend.as_ref(), &score_options)
            .map_err(EngineError::Simulate)?;
        let valuable = kanta_score::valuable(summaries, &scores);
        Ok(ModelInputs { fitted, store, valuable })
    }

    /// The latest scoring run's fitted models.
    async fn fitted_model(&self) -> Result<Fitted, EngineError> {
        let runs = self.store.score_runs(20).await?;
        let Some(run) = runs.iter().find(|r| r.status == "completed" && r.model.is_some()) else {
            return Err(EngineError::Simulate(
                "no scoring run has fitted a customer model yet: run `kanta score` (or let `kanta serve` score) first"
                    .into(),
            ));
        };
        let models = &run.diagnostics["models"];
        let chosen = models["chosen"].as_str().unwrap_or_default();
        let params = models["candidates"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["model"] == chosen && c["fit"]["params"].is_array()))
            .map(|c| &c["fit"]["params"])
            .ok_or_else(|| {
                EngineError::Simulate(format!("score run {} records no parameters of `{chosen}`", run.id))
            })?;
        let param = |json: &serde_json::Value, name: &str| {
            json.as_array()?.iter().find(|p| p["name"] == name).and_then(|p| p["value"].as_f64())
        };
        let model =
            kanta_score::transaction_model(chosen, &|name| param(params, name)).map_err(EngineError::Simulate)?;
        let spend_params = &models["spend"]["params"];
        let spend = match (param(spend_params, "p"), param(spend_params, "q"), param(spend_params, "gamma")) {
            (Some(p), Some(q), Some(g)) => kanta_models::GammaGamma::new(p, q, g).ok(),
            _ => None,
        };
        Ok(Fitted { name: chosen.to_owned(), model, spend })
    }

    /// Date triggers: the local days of the window in each customer's zone.
    async fn date_entries(
        &self,
        journey: &Journey,
        directory: &Directory,
        now: Timestamp,
        horizon: Timestamp,
    ) -> Result<Vec<Entrant>, EngineError> {
        let Some(calendar) = Calendar::of(&journey.trigger) else { return Ok(Vec::new()) };
        // Every UTC date of the window with a day's margin: no zone is a day away from UTC.
        let first = zone::local_day(now, Tz::UTC)?;
        let span: Vec<NaiveDate> =
            first.iter_days().take(usize::try_from(project::day_index(now, horizon)).unwrap_or(0) + 3).collect();
        let filters = DayFilters::new(&calendar, &span);
        let Some(scan) = filters.scan(&calendar, &span) else { return Ok(Vec::new()) };
        let names: Vec<String> = self.store.customer_zones().await?.into_iter().flatten().collect();
        let zones = kanta_store::journey::Zones { names: &names, unset: true };
        let candidates = every_page(async |after| self.store.date_candidates(scan, zones, after, PAGE).await).await?;
        let mut entrants = Vec::new();
        for candidate in &candidates {
            let Some((_, tz)) = directory.get(candidate.customer) else { continue };
            let (from, to) = (zone::local_day(now, tz)?, zone::local_day(horizon, tz)?);
            for day in from.iter_days().skip(1).take_while(|d| *d <= to) {
                if fires_on(&calendar, candidate, day, tz)? {
                    let at = dates::due_at(day, tz)?.max(now);
                    entrants.push(Entrant { customer: candidate.customer, at, key: day.to_string() });
                }
            }
        }
        Ok(entrants)
    }

    /// A schedule: each occurrence in the window enters the segment's current members.
    async fn schedule_entries(
        &self,
        journey: &Journey,
        cron: &kanta_journey::cron::Schedule,
        segment: &str,
        directory: &Directory,
        now: Timestamp,
        horizon: Timestamp,
    ) -> Result<Vec<Entrant>, EngineError> {
        let tz = journey.timezone.or(self.config.default_zone).unwrap_or(Tz::UTC);
        let mut occurrences = Vec::new();
        let mut at = now;
        while let Some(next) = next_occurrence(cron, at, tz)?.filter(|o| *o <= horizon) {
            occurrences.push(next);
            at = next;
        }
        let Some(info) = self.store.segments().await?.into_iter().find(|s| s.name == segment) else {
            return Err(EngineError::Simulate(format!(
                "the journey schedules segment `{segment}`, which does not exist"
            )));
        };
        let profiles = every_page(async |after| self.store.segment_customers(info.id, after, PAGE).await).await?;
        let members: Vec<i64> = profiles.iter().filter_map(|p| directory.internal(&p.id)).collect();
        Ok(occurrences
            .iter()
            .flat_map(|o| members.iter().map(move |&customer| Entrant { customer, at: *o, key: o.to_rfc3339() }))
            .collect())
    }

    /// Event and segment triggers: the last `days` days, shifted forward by `days`.
    async fn replayed_entries(
        &self,
        journey: &Journey,
        now: Timestamp,
        days: u32,
    ) -> Result<Vec<Entrant>, EngineError> {
        let shift = DAY * days;
        let from = kanta_journey::duration::saturating_sub(now, shift);
        let (what, first_only, key) = match &journey.trigger {
            Trigger::Event { name, first_order, key } if name == "order.created" => {
                (Happening::Orders, *first_order, key.as_deref())
            }
            Trigger::Event { name, key, .. } => (Happening::Event(name), false, key.as_deref()),
            Trigger::EntersSegment(name) => (Happening::SegmentEnter(name), false, None),
            Trigger::LeavesSegment(name) => (Happening::SegmentExit(name), false, None),
            _ => return Ok(Vec::new()),
        };
        let happened = every_page(async |after| self.store.happened(what, from, now, after, PAGE).await).await?;
        let mut entrants = Vec::new();
        for h in happened {
            if first_only && !h.first_order {
                continue;
            }
            let key = match key {
                Some(key) => match crate::entry::key_text(h.properties.as_ref().and_then(|p| p.get(key))) {
                    Some(value) => value,
                    None => continue,
                },
                None => String::new(),
            };
            entrants.push(Entrant { customer: h.customer, at: h.at.saturating_add(shift), key });
        }
        Ok(entrants)
    }

    /// For each branch condition of the journey, the customers matching it now.
    async fn branch_members(
        &self,
        compiled: &Compiled,
        directory: &Directory,
        now: Timestamp,
    ) -> Result<HashMap<String, HashSet<i64>>, EngineError> {
        let mut out = HashMap::new();
        for step in &compiled.steps {
            let Action::Branch { condition, .. } = &step.action else { continue };
            if out.contains_key(condition) {
                continue;
            }
            let expr = kanta_segment::parse(condition).map_err(|e| {
                EngineError::Simulate(format!("step {}: the condition `{condition}` does not parse: {e}", step.id))
            })?;
            let members = self.members_of(&expr, directory, now).await?;
            out.insert(condition.clone(), members);
        }
        Ok(out)
    }

    /// The journey's runs in the store: each customer's latest (per key, for a keyed event
    /// trigger), for the re-entry rule.
    async fn previous_runs(&self, journey: &Journey) -> Result<HashMap<(i64, String), PreviousRun>, EngineError> {
        let keyed = per_key(journey);
        let mut out: HashMap<(i64, String), PreviousRun> = HashMap::new();
        for run in every_page(async |after| self.store.earlier_runs(&journey.name, after, PAGE).await).await? {
            let previous = PreviousRun { entered_at: run.entered_at, ended_at: run.ended_at };
            out.entry((run.customer, if keyed { run.key } else { String::new() }))
                .and_modify(|p| {
                    if previous.entered_at >= p.entered_at {
                        *p = previous;
                    }
                })
                .or_insert(previous);
        }
        Ok(out)
    }

    /// Marketing messages sent within the cap's window before now, by customer.
    async fn earlier_marketing(&self, now: Timestamp) -> Result<HashMap<u64, Vec<Timestamp>>, EngineError> {
        let FrequencyCap::Limit(limit) = self.config.guardrails.cap else { return Ok(HashMap::new()) };
        let from = limit.window_start(now);
        let mut out: HashMap<u64, Vec<Timestamp>> = HashMap::new();
        for (customer, at) in every_page(async |after| self.store.marketing_sent(from, now, after, PAGE).await).await? {
            out.entry(customer as u64).or_default().push(at);
        }
        Ok(out)
    }
}

/// A scoring run's models, rebuilt from its recorded parameters.
struct Fitted {
    name: String,
    model: Box<dyn kanta_models::TransactionModel + Send + Sync>,
    spend: Option<kanta_models::GammaGamma>,
}

/// An analysed customer in the directory: (row of the analysis, internal id, zone).
type Row = (usize, i64, Tz);

/// One part's projection: its entries, and the futures kept (by internal id).
type Projected = (Vec<Entrant>, Vec<(i64, Future)>);

/// The model and the analysed store, shared by every draw.
struct ModelBase {
    fitted: Fitted,
    store: kanta_jobs::StoreAnalysis,
    valuable: Vec<bool>,
    /// Analysed customers in the directory: (row, internal id, zone).
    customers: Vec<Row>,
}

/// [`ModelBase`] before the directory is known (they are read side by side).
struct ModelInputs {
    fitted: Fitted,
    store: kanta_jobs::StoreAnalysis,
    valuable: Vec<bool>,
}

impl ModelBase {
    fn new(inputs: ModelInputs, directory: &Directory) -> ModelBase {
        let ModelInputs { fitted, store, valuable } = inputs;
        let customers =
            store.ids.iter().enumerate().filter_map(|(i, &id)| directory.get(id).map(|(_, tz)| (i, id, tz))).collect();
        ModelBase { fitted, store, valuable, customers }
    }

    /// One draw of every customer's future (seeded by `seed` and the customer's id): the
    /// entries of a stage or predicted-purchase trigger when `enter`, and the futures of the
    /// entrants (of every customer when not `enter`: the runs of other triggers need them).
    fn draw(
        &self,
        journey: &Journey,
        now: Timestamp,
        options: &SimulateOptions,
        seed: u64,
        enter: bool,
        segment: Option<&SegmentPlan>,
    ) -> Result<(Vec<Entrant>, HashMap<i64, Future>), EngineError> {
        let summaries = &self.store.analysis.customers;
        let projector = Projector {
            model: self.fitted.model.as_ref(),
            loyal_orders: kanta_core::analysis::AnalysisOptions::default().loyal_orders,
            slipping_below: options.slipping_below,
            days: options.days,
            fraction_of_today: fraction_of_day(now),
            now_days: now.micros() as f64 / DAY_MICROS as f64,
            p_alive_for_all: segment.is_some_and(|s| s.projection.reads(Moving::PAlive)),
            next_purchase: matches!(journey.trigger, Trigger::PredictedNextPurchase { .. })
                || segment.is_some_and(|s| s.projection.reads(Moving::DaysToNextPurchase)),
        };
        let task = ModelTask { projector, now, seed, enter, trigger: journey.trigger.clone(), segment };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let parts: Vec<&[Row]> = self.customers.chunks(self.customers.len().div_ceil(threads).max(1)).collect();
        // First the draws, and the gaps between purchase days they add (the lapse threshold of
        // each day depends on everyone's); then each customer's days under those thresholds.
        let drawn = in_parallel(&parts, |part| task.draw(part, summaries));
        let mut thresholds = LapseThresholds::new(self.store.gaps.clone(), options.days, options.lapse_days);
        replay_newcomers(summaries, self.store.analysis.as_of, options.days, &mut thresholds);
        let mut purchases = Vec::with_capacity(parts.len());
        for (part, added) in drawn {
            purchases.push(part);
            thresholds.merge(added);
        }
        let lapse = thresholds.thresholds();
        let work: Vec<(&[Row], &Vec<Vec<f64>>)> = parts.iter().copied().zip(&purchases).collect();
        let results = in_parallel(&work, |(part, drawn)| task.project(part, drawn, summaries, &self.valuable, &lapse));
        let mut entrants = Vec::new();
        let mut futures = HashMap::new();
        for result in results {
            let (part, kept) = result?;
            entrants.extend(part);
            futures.extend(kept);
        }
        Ok((entrants, futures))
    }
}

/// The per-customer part of [`ModelBase::draw`], run on worker threads.
struct ModelTask<'a> {
    projector: Projector<'a>,
    now: Timestamp,
    seed: u64,
    enter: bool,
    trigger: Trigger,
    segment: Option<&'a SegmentPlan>,
}

impl ModelTask<'_> {
    /// The customer's own random stream: the same seed gives the same draws whatever the
    /// thread count.
    fn rng(&self, customer: i64) -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(self.seed ^ mix(customer as u64))
    }

    /// Draws the purchases of `customers`, and the gaps they add.
    fn draw(
        &self,
        customers: &[Row],
        summaries: &[kanta_core::analysis::CustomerSummary],
    ) -> (Vec<Vec<f64>>, LapseThresholds) {
        let mut gaps = LapseThresholds::new(Vec::new(), self.projector.days, None);
        let mut all = Vec::with_capacity(customers.len());
        let mut purchases = Vec::new();
        for &(i, id, _) in customers {
            self.projector.draw(&summaries[i], &mut self.rng(id), &mut purchases);
            self.projector.new_gaps(&summaries[i], &purchases, &mut |k, g| gaps.add(k, g));
            all.push(if purchases.is_empty() { Vec::new() } else { purchases.clone() });
        }
        (all, gaps)
    }

    /// The days of `customers` under the thresholds `lapse`: their entries, and the futures
    /// of those entering (of everyone when not entering).
    fn project(
        &self,
        customers: &[Row],
        drawn: &[Vec<f64>],
        summaries: &[kanta_core::analysis::CustomerSummary],
        valuable: &[bool],
        lapse: &[u32],
    ) -> Result<Projected, EngineError> {
        let mut days = Vec::new();
        let mut entrants = Vec::new();
        let mut kept = Vec::new();
        for (&(i, id, tz), purchases) in customers.iter().zip(drawn) {
            self.projector.days(&summaries[i], valuable[i], purchases, lapse, &mut days);
            let before = entrants.len();
            if self.enter {
                self.entries(id, tz, &days, &mut entrants)?;
            }
            if !self.enter || entrants.len() > before {
                let purchases = purchases.iter().map(|t| self.now.saturating_add(days_duration(*t))).collect();
                kept.push((id, Future { purchases, stages: days.iter().map(|d| d.stage).collect() }));
            }
        }
        Ok((entrants, kept))
    }

    /// The entries of one customer's projected days.
    fn entries(&self, customer: i64, tz: Tz, days: &[Day], out: &mut Vec<Entrant>) -> Result<(), EngineError> {
        for k in 1..days.len() {
            let at = self.now.saturating_add(DAY * k as u32);
            match &self.trigger {
                Trigger::StageBecomes(stage) => {
                    if days[k].stage == *stage && days[k - 1].stage != *stage {
                        out.push(Entrant { customer, at, key: String::new() });
                    }
                }
                Trigger::PredictedNextPurchase { offset_days } => {
                    let ahead = days[k].next_purchase_days + f64::from(*offset_days);
                    // Only a prediction about a day from now can be due today (no zone is a
                    // day away from UTC): skip the calendar arithmetic for the others.
                    if !days[k].next_purchase_days.is_finite() || ahead.abs() > 2.5 {
                        continue;
                    }
                    let scored = utc_midnight(at).saturating_add(days_duration(days[k].next_purchase_days));
                    let today = zone::local_day(at, tz)?;
                    if dates::predicted_day(scored, *offset_days, tz)? == today {
                        out.push(Entrant { customer, at, key: today.to_string() });
                    }
                }
                Trigger::EntersSegment(_) | Trigger::LeavesSegment(_) => {
                    let Some(plan) = self.segment else { return Ok(()) };
                    let member = |day: &Day| plan.member(customer, day, self.projector.fraction_of_today);
                    let (before, after) = (member(&days[k - 1]), member(&days[k]));
                    if before != after && after == plan.enters {
                        out.push(Entrant { customer, at, key: String::new() });
                    }
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}

/// A segment trigger projected from the model: the saved segment's expression split into the
/// conditions the draws move and the parts that keep today's value (read once).
struct SegmentPlan {
    projection: Projection,
    /// For each fixed part, the customers (internal ids) it holds for today.
    fixed: Vec<HashSet<i64>>,
    /// `enters_segment` (else `leaves_segment`).
    enters: bool,
}

impl SegmentPlan {
    /// Whether the customer is a member on a projected day.
    fn member(&self, customer: i64, day: &Day, fraction_of_today: f64) -> bool {
        let state = State {
            orders: f64::from(day.orders),
            days_since_last_order: day.days_since_last_order,
            days_since_first_order: day.days_since_first_order,
            stage: Some(day.stage.name()),
            p_alive: day.p_alive,
            // The scores put the next purchase at the scoring day's midnight plus the median
            // wait; the rescoring is `fraction_of_today` into the day.
            days_to_next_purchase: day
                .next_purchase_days
                .is_finite()
                .then_some(day.next_purchase_days - fraction_of_today),
        };
        self.projection.eval(&state, &|i| self.fixed.get(i).is_some_and(|m| m.contains(&customer)))
    }
}

/// What [`walk_all`] found.
struct Walked {
    entries: Entries,
    entered: HashSet<i64>,
    entered_at: Vec<Timestamp>,
    steps: BTreeMap<usize, u64>,
    ends: Ends,
    messages: Vec<Message>,
    webhooks: Vec<Timestamp>,
    updates: u64,
}

/// Walks every entry in time order under the re-entry rule and the holdout arms.
#[allow(clippy::too_many_arguments, reason = "the simulation's inputs, each from its own source")]
fn walk_all(
    journey: &Journey,
    compiled: &Compiled,
    entrants: &[Entrant],
    directory: &Directory,
    futures: &HashMap<i64, Future>,
    members: &HashMap<String, HashSet<i64>>,
    mut previous: HashMap<(i64, String), PreviousRun>,
    global: Holdout,
    (now, horizon): (Timestamp, Timestamp),
) -> Result<Walked, EngineError> {
    let order: HashMap<&str, usize> = compiled.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let marketing = journey.is_marketing();
    let reentry = journey.entry.reentry;
    let exits = ExitRules::of(journey);
    let keyed = per_key(journey);
    let mut walked = Walked {
        entries: Entries::default(),
        entered: HashSet::new(),
        entered_at: Vec::new(),
        steps: BTreeMap::new(),
        ends: Ends::default(),
        messages: Vec::new(),
        webhooks: Vec::new(),
        updates: 0,
    };
    let empty = Future::default();
    for entrant in entrants {
        let Some((key, zone)) = directory.get(entrant.customer) else { continue };
        let slot = (entrant.customer, if keyed { entrant.key.clone() } else { String::new() });
        if !matches!(reentry.may_enter(previous.get(&slot), entrant.at), Entry::Enter) {
            walked.entries.refused += 1;
            continue;
        }
        walked.entries.total += 1;
        walked.entered.insert(entrant.customer);
        walked.entered_at.push(entrant.at);
        // A control run is held out: ended as it enters, never due.
        let held_out = PreviousRun { entered_at: entrant.at, ended_at: Some(entrant.at) };
        match arm_of(&journey.name, journey.holdout, marketing, &key.external_id, global) {
            SimArm::GlobalControl => {
                walked.entries.global_control += 1;
                previous.insert(slot, held_out);
                continue;
            }
            SimArm::Control => {
                walked.entries.control += 1;
                previous.insert(slot, held_out);
                continue;
            }
            SimArm::Treatment => walked.entries.treatment += 1,
        }
        let future = futures.get(&entrant.customer).unwrap_or(&empty);
        let mut outcomes = Answers { members, customer: entrant.customer, future };
        let mut run =
            project::walk(compiled, &journey.name, &key.external_id, entrant.at, zone, horizon, &mut outcomes)?;
        // An exit on an order or a stage ends the run where it falls.
        if let Some(exit) = exits.first_exit(future, entrant.at, now, horizon) {
            let ends_later = match run.end {
                End::Completed(t) | End::Exited(t) => t > exit,
                End::Running => true,
            };
            if ends_later {
                run.steps.retain(|s| s.at <= exit);
                run.end = End::Exited(exit);
            }
        }
        for step in &run.steps {
            if let Some(&i) = order.get(step.step.as_str()) {
                *walked.steps.entry(i).or_default() += 1;
            }
            match step.visit {
                Visit::Email { transactional } => walked.messages.push(Message {
                    customer: entrant.customer as u64,
                    at: step.at,
                    zone,
                    transactional,
                }),
                Visit::Webhook => walked.webhooks.push(step.at),
                Visit::Update => walked.updates += 1,
                _ => {}
            }
        }
        let ended_at = match run.end {
            End::Completed(t) => {
                walked.ends.completed += 1;
                Some(t)
            }
            End::Exited(t) => {
                walked.ends.exited += 1;
                Some(t)
            }
            End::Running => {
                walked.ends.running += 1;
                None
            }
        };
        previous.insert(slot, PreviousRun { entered_at: entrant.at, ended_at });
    }
    Ok(walked)
}

/// What ends a run early, as far as the projection knows: an order (an `exit_when` order, a
/// goal on orders that exits) or a stage.
struct ExitRules {
    on_order: bool,
    on_stages: Vec<Stage>,
}

impl ExitRules {
    fn of(journey: &Journey) -> ExitRules {
        let order = |name: &str| name == "order.created";
        let mut on_order =
            journey.goal.as_ref().is_some_and(|g| g.exit && matches!(&g.reached, GoalKind::Event(name) if order(name)));
        let mut on_stages = Vec::new();
        for condition in &journey.exit_when {
            match condition {
                ExitCondition::Event(name) if order(name) => on_order = true,
                ExitCondition::StageBecomes(stage) => on_stages.push(*stage),
                _ => {}
            }
        }
        ExitRules { on_order, on_stages }
    }

    /// The first instant after `entered` (and by `horizon`) at which the customer's projected
    /// future ends the run: a drawn purchase, or the rescoring (`k` days after the start of
    /// the simulation, `now`) that changes their stage to an exit stage (a change, as
    /// `stage_becomes` means: a customer already in the stage does not exit).
    fn first_exit(&self, future: &Future, entered: Timestamp, now: Timestamp, horizon: Timestamp) -> Option<Timestamp> {
        let order = self.on_order.then(|| future.purchases.iter().copied().find(|t| *t > entered)).flatten();
        let stage = (!self.on_stages.is_empty())
            .then(|| {
                future.stages.windows(2).enumerate().find_map(|(k, pair)| {
                    let at = now.saturating_add(DAY * (k + 1) as u32);
                    (at > entered && pair[0] != pair[1] && self.on_stages.contains(&pair[1])).then_some(at)
                })
            })
            .flatten();
        [order, stage].into_iter().flatten().filter(|t| *t <= horizon).min()
    }
}

/// The walk's answers for one customer.
struct Answers<'a> {
    members: &'a HashMap<String, HashSet<i64>>,
    customer: i64,
    future: &'a Future,
}

impl Outcomes for Answers<'_> {
    fn branch(&mut self, _: &CompiledStep, condition: &str, _: Timestamp) -> bool {
        self.members.get(condition).is_some_and(|m| m.contains(&self.customer))
    }

    fn arrival(
        &mut self,
        _: &CompiledStep,
        awaited: &Awaited,
        since: Timestamp,
        deadline: Timestamp,
    ) -> Option<Timestamp> {
        match awaited {
            Awaited::Event { name, .. } if name == "order.created" => {
                self.future.purchases.iter().copied().find(|t| *t > since && *t < deadline)
            }
            _ => None,
        }
    }
}

/// A projected entry's arm.
enum SimArm {
    Treatment,
    Control,
    GlobalControl,
}

/// The arm as the engine assigns it (`entry::arm_of`): the global holdout first (marketing
/// journeys only), then the journey's own; both stable hashes of the names.
fn arm_of(journey: &str, holdout: Holdout, marketing: bool, external: &str, global: Holdout) -> SimArm {
    let Ok(customer) = CustomerId::parse(external) else { return SimArm::Treatment };
    if marketing && global != Holdout::NONE && assign_global(&customer, global) == Arm::Control {
        SimArm::GlobalControl
    } else if holdout != Holdout::NONE && assign(&customer, journey, holdout) == Arm::Control {
        SimArm::Control
    } else {
        SimArm::Treatment
    }
}

/// One draw's counts, before they are averaged over the draws.
#[derive(Debug, Clone, Default)]
struct Tally {
    entries: Entries,
    entries_per_day: Vec<u64>,
    steps: Vec<u64>,
    ends: Ends,
    messages: Messages,
    sends: Vec<[u64; 3]>,
    /// Customers who get email.
    emailed: u64,
    /// Emails per customer-week with any (the histogram's source).
    weeks: Vec<u64>,
}

/// The counts and series of one draw. Per-day series are by UTC calendar day, from today's
/// (part of it is before now) to the window's last; weeks are counted from now.
fn tally(compiled: &Compiled, now: Timestamp, options: &SimulateOptions, walked: Walked, planned: &[Planned]) -> Tally {
    let elapsed = options.days as usize;
    let days = calendar_days(now, options.days);
    let horizon = now.saturating_add(DAY * options.days);
    let calendar = |at: Timestamp| {
        usize::try_from(at.micros().div_euclid(DAY_MICROS) - now.micros().div_euclid(DAY_MICROS)).unwrap_or(0)
    };
    let mut entries_per_day = vec![0u64; days];
    for &at in &walked.entered_at {
        entries_per_day[calendar(at).min(days - 1)] += 1;
    }
    let mut sends = vec![[0u64; 3]; days];
    let mut messages =
        Messages { emails: walked.messages.len() as u64, updates: walked.updates, ..Messages::default() };
    messages.transactional = walked.messages.iter().filter(|m| m.transactional).count() as u64;
    messages.webhooks = walked.webhooks.len() as u64;
    for &at in &walked.webhooks {
        if let Some(day) = sends.get_mut(calendar(at)).filter(|_| at <= horizon) {
            day[2] += 1;
        }
    }
    let weeks = elapsed.div_ceil(7).max(1);
    let mut per_week: HashMap<(u64, usize), u64> = HashMap::new();
    for (m, plan) in walked.messages.iter().zip(planned) {
        let (at, deferred) = match plan {
            Planned::Capped => {
                messages.capped += 1;
                continue;
            }
            Planned::Sent(at) => (*at, false),
            Planned::Deferred(at) => (*at, true),
        };
        if deferred {
            messages.deferred += 1;
        } else {
            messages.sent += 1;
        }
        if at > horizon {
            messages.after_window += 1;
            continue;
        }
        if let Some(day) = sends.get_mut(calendar(at)) {
            day[usize::from(deferred)] += 1;
        }
        let week = usize::try_from(project::day_index(now, at) / 7).unwrap_or(usize::MAX);
        *per_week.entry((m.customer, week.min(weeks - 1))).or_default() += 1;
    }
    let steps = (0..compiled.steps.len()).map(|i| walked.steps.get(&i).copied().unwrap_or(0)).collect();
    let mut entries = walked.entries;
    entries.customers = walked.entered.len() as u64;
    Tally {
        entries,
        entries_per_day,
        steps,
        ends: walked.ends,
        messages,
        sends,
        emailed: per_week.keys().map(|(c, _)| *c).collect::<HashSet<_>>().len() as u64,
        weeks: per_week.into_values().collect(),
    }
}

/// The mean of `values` over `n` draws, rounded to a whole count.
fn mean(values: impl Iterator<Item = u64>, n: usize) -> u64 {
    (values.sum::<u64>() as f64 / n.max(1) as f64).round() as u64
}

impl Simulation {
    /// The result: every count the mean of the draws' (rounded), with the range of the entries
    /// and emails over the draws.
    #[allow(clippy::too_many_arguments, reason = "the simulation's parts, gathered once")]
    fn from_draws(
        journey: &Journey,
        compiled: &Compiled,
        now: Timestamp,
        options: &SimulateOptions,
        customers: u64,
        entries_from: String,
        model: Option<String>,
        draws: Vec<Tally>,
        caveats: Vec<String>,
    ) -> Simulation {
        let n = draws.len();
        let days = calendar_days(now, options.days);
        let label = |d: usize| {
            zone::local_day(now.saturating_add(DAY * d as u32), Tz::UTC)
                .map_or_else(|_| d.to_string(), |day| day.to_string())
        };
        let each = |f: &dyn Fn(&Tally) -> u64| mean(draws.iter().map(f), n);
        let range = |f: &dyn Fn(&Tally) -> u64| {
            [draws.iter().map(f).min().unwrap_or(0), draws.iter().map(f).max().unwrap_or(0)]
        };
        let entries = Entries {
            total: each(&|t| t.entries.total),
            treatment: each(&|t| t.entries.treatment),
            control: each(&|t| t.entries.control),
            global_control: each(&|t| t.entries.global_control),
            customers: each(&|t| t.entries.customers),
            refused: each(&|t| t.entries.refused),
        };
        let messages = Messages {
            emails: each(&|t| t.messages.emails),
            transactional: each(&|t| t.messages.transactional),
            sent: each(&|t| t.messages.sent),
            deferred: each(&|t| t.messages.deferred),
            capped: each(&|t| t.messages.capped),
            after_window: each(&|t| t.messages.after_window),
            webhooks: each(&|t| t.messages.webhooks),
            updates: each(&|t| t.messages.updates),
        };
        let ends = Ends {
            completed: each(&|t| t.ends.completed),
            exited: each(&|t| t.ends.exited),
            running: each(&|t| t.ends.running),
        };
        let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
        for n in draws.iter().flat_map(|t| &t.weeks) {
            *histogram.entry(*n).or_default() += 1;
        }
        let weeks: Vec<u64> = draws.iter().flat_map(|t| t.weeks.iter().copied()).collect();
        let per_customer_week = PerWeek {
            customers: each(&|t| t.emailed),
            mean: if weeks.is_empty() { 0.0 } else { weeks.iter().sum::<u64>() as f64 / weeks.len() as f64 },
            max: weeks.iter().copied().max().unwrap_or(0),
            histogram: histogram.into_iter().map(|(k, c)| [k, mean(std::iter::once(c), n)]).collect(),
        };
        Simulation {
            journey: journey.name.clone(),
            from: now.to_rfc3339(),
            until: now.saturating_add(DAY * options.days).to_rfc3339(),
            days: options.days,
            seed: options.seed,
            draws: n as u32,
            entries_from,
            model,
            customers,
            entries,
            entries_range: range(&|t| t.entries.total),
            entries_per_day: (0..days)
                .map(|d| DayCount { day: label(d), entries: each(&|t| t.entries_per_day.get(d).copied().unwrap_or(0)) })
                .collect(),
            steps: compiled
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepCount {
                    step: s.id.to_string(),
                    kind: kind(&s.action),
                    runs: each(&|t| t.steps.get(i).copied().unwrap_or(0)),
                })
                .collect(),
            ends,
            messages,
            emails_range: range(&|t| t.messages.emails),
            sends_per_day: (0..days)
                .map(|d| {
                    let at = |k: usize| each(&|t| t.sends.get(d).map_or(0, |s| s[k]));
                    DaySends { day: label(d), sent: at(0), deferred: at(1), webhooks: at(2) }
                })
                .collect(),
            per_customer_week,
            caveats,
        }
    }
}

/// A step's kind as written in documents.
fn kind(action: &Action) -> &'static str {
    match action {
        Action::Wait(_) => "wait",
        Action::WaitUntil { .. } => "wait_until",
        Action::WaitFor { .. } => "wait_for",
        Action::Branch { .. } => "branch",
        Action::Split { .. } => "split",
        Action::SendEmail(_) => "send_email",
        Action::Webhook(_) => "webhook",
        Action::Update(_) => "update",
        Action::Exit => "exit",
    }
}

/// Whether the re-entry rule counts per run key (a keyed event trigger: one run per cart) rather
/// than per customer (calendar triggers key their runs by occurrence, but `reentry` is about the
/// customer).
fn per_key(journey: &Journey) -> bool {
    matches!(&journey.trigger, Trigger::Event { key: Some(_), .. })
}

/// Whether entries come from the customer model.
fn model_trigger(trigger: &Trigger) -> bool {
    matches!(trigger, Trigger::StageBecomes(_) | Trigger::PredictedNextPurchase { .. })
}

/// Whether runs react to orders or stages (exits, waits, an exiting goal).
fn reacts_to_purchases(journey: &Journey, compiled: &Compiled) -> bool {
    let exits = ExitRules::of(journey);
    exits.on_order
        || !exits.on_stages.is_empty()
        || compiled.steps.iter().any(|s| {
            matches!(&s.action, Action::WaitFor { awaited: Awaited::Event { name, .. }, .. } if name == "order.created")
        })
}

/// The UTC calendar days a window of `days` days from `now` touches: today's and every later one
/// up to the window's end.
fn calendar_days(now: Timestamp, days: u32) -> usize {
    let end = now.saturating_add(DAY * days);
    usize::try_from(end.micros().div_euclid(DAY_MICROS) - now.micros().div_euclid(DAY_MICROS) + 1).unwrap_or(1).max(1)
}

/// The part of `at`'s UTC day gone, in [0, 1).
fn fraction_of_day(at: Timestamp) -> f64 {
    at.micros().rem_euclid(DAY_MICROS) as f64 / DAY_MICROS as f64
}

/// The UTC midnight starting `at`'s day (where the scoring job puts its `as_of`).
fn utc_midnight(at: Timestamp) -> Timestamp {
    Timestamp::from_micros(at.micros() - at.micros().rem_euclid(DAY_MICROS))
}

/// A number of days as a duration (negative and non-finite as zero).
fn days_duration(days: f64) -> Duration {
    Duration::try_from_secs_f64(days * 86_400.0).unwrap_or(Duration::ZERO)
}

/// The customers the next days will bring are not in the store, but their first repeat
/// purchases add short gaps that hold the lapse threshold down: the first repeat gaps of the
/// customers who started in the last `days` days, replayed `days` later (the day the scoring
/// saw each, shifted).
fn replay_newcomers(
    summaries: &[kanta_core::analysis::CustomerSummary],
    today: kanta_core::time::Day,
    days: u32,
    thresholds: &mut LapseThresholds,
) {
    let start = today.0 - i32::try_from(days).unwrap_or(i32::MAX);
    for c in summaries {
        let first = c.first_purchase.day().0;
        let Some(gap) = c.first_repeat_gap else { continue };
        let second = first + gap;
        if first >= start && second < today.0 && gap > 0 {
            thresholds.add(usize::try_from(second - start + 1).unwrap_or(0), gap as u32);
        }
    }
}

/// Every page of a keyset read (`page(after)` → the items and where the next page starts), in
/// order.
async fn every_page<T>(
    mut page: impl AsyncFnMut(Option<i64>) -> Result<(Vec<T>, Option<i64>), kanta_store::StoreError>,
) -> Result<Vec<T>, kanta_store::StoreError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (items, next) = page(after).await?;
        all.extend(items);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// `f` over `items` on one scoped thread each (the draws are independent per customer).
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(move || f(item))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// SplitMix64's finaliser: spreads a customer id over the seed's bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_run_exits_at_the_first_drawn_order_or_the_rescoring_that_changes_the_stage() {
        let now = t("2026-12-04T06:00:00Z");
        let horizon = t("2027-01-03T06:00:00Z");
        let entered = t("2026-12-05T06:00:00Z");
        let rules = ExitRules { on_order: true, on_stages: vec![Stage::Repeat] };
        let future = Future {
            purchases: vec![t("2026-12-05T01:00:00Z"), t("2026-12-09T12:00:00Z")],
            stages: vec![Stage::Lost, Stage::Lost, Stage::Lost, Stage::Repeat, Stage::Repeat],
        };
        // The order before entry does not count; the stage changes to repeat at day 3, before the
        // second order.
        assert_eq!(rules.first_exit(&future, entered, now, horizon), Some(t("2026-12-07T06:00:00Z")));
        let orders_only = ExitRules { on_order: true, on_stages: Vec::new() };
        assert_eq!(orders_only.first_exit(&future, entered, now, horizon), Some(t("2026-12-09T12:00:00Z")));
        // Already repeat when entering: `stage_becomes` needs a change.
        let already = Future { purchases: Vec::new(), stages: vec![Stage::Repeat; 5] };
        assert_eq!(rules.first_exit(&already, entered, now, horizon), None);
        // After the horizon: no exit in the window.
        let late = Future { purchases: vec![t("2027-01-05T00:00:00Z")], stages: Vec::new() };
        assert_eq!(orders_only.first_exit(&late, entered, now, horizon), None);
    }

    #[test]
    fn a_window_touches_one_calendar_day_more_than_its_length() {
        assert_eq!(calendar_days(t("2026-12-04T12:00:00Z"), 30), 31);
        assert_eq!(calendar_days(t("2026-12-04T00:00:00Z"), 1), 2);
        assert_eq!(fraction_of_day(t("2026-12-04T06:00:00Z")), 0.25);
        assert_eq!(utc_midnight(t("2026-12-04T06:00:00Z")), t("2026-12-04T00:00:00Z"));
        // Distinct customers get distinct streams.
        assert_ne!(mix(1), mix(2));
    }
}
