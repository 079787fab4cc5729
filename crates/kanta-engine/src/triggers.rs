//! The triggers that fire from the calendar: a date of the customer (`date: birthday |
//! first_purchase | attributes.NAME`, with an offset, once or yearly), the model's predicted next
//! purchase (`predicted_next_purchase`), and cron schedules that enter a segment's members
//! (`schedule`). [`Engine::evaluate_triggers`] runs them; [`Engine::run`] calls it every tick
//! before advancing runs.
//!
//! **The window.** Each such journey has a cursor in the store, the instant its trigger was
//! evaluated through; an evaluation at `now` handles the window `(cursor, now]` and then moves
//! the cursor to `now`. A journey seen for the first time starts its cursor at `now`: it does not
//! fire for days (or occurrences) before it was applied.
//!
//! **Dates.** A customer's days are calendar days in their zone
//! (`kanta_journey::effective_zone`: the customer's, the journey's, the settings' default, UTC).
//! A date trigger is due on the local day `date + offset_days` (yearly: on each anniversary plus
//! the offset, with February 29 falling on February 28 in common years, as
//! `kanta_journey::dates::anniversary` says) and fires at the local midnight that starts that
//! day; a predicted-purchase trigger on the local day of `next_purchase_at` plus the offset. So
//! the window contains, per zone, the local days whose midnight lies in it: one day on an
//! ordinary tick after midnight, none the rest of the day, every missed day after downtime (at
//! most [`kanta_journey::dates::MAX_CATCH_UP_DAYS`], the latest ones; older days are dropped and counted). Each
//! missed day fires once, late, unless `skip_if_late_by` says it is too late (measured from
//! that day's local midnight). Only customers in zones whose midnight the window crossed are
//! read, and only those whose stored date can match (by month and day, or by the instant's
//! range): the store narrows, this module decides.
//!
//! **Schedules.** Occurrences of the cron expression on the wall clock of the journey's zone
//! (the journey's, the settings' default, UTC). Of several occurrences in one window (after
//! downtime) only the **latest** enters the segment's members: a schedule enters "everyone in
//! the segment now", so three missed daily runs would send the same members the same message
//! three times in a row, minutes apart; the latest one is the one the operator would want. It is
//! skipped when too late by `skip_if_late_by`. Members are the segment's as of its last refresh.
//!
//! **Entering.** Every entry goes through [`Engine::enter`] (entry rules, the limit of
//! concurrent journeys) with the run keyed by the **occurrence**: the local day
//! (`2026-12-04`) for a date, the RFC 3339 instant for a cron run, under
//! `EntryRules::once_per_key`, so one customer never enters twice for one occurrence. The run's
//! context says what fired (`{"date": "2026-12-04", "field": "birthday"}`,
//! `{"occurrence": "…", "segment": "vip"}`).
//!
//! **Paused journeys** admit nobody, and the days (or occurrences) that pass while a journey is
//! paused are **skipped**, not kept for later: the cursor moves on, so resuming a journey after
//! a week does not send a week of birthday greetings at once, days late.
//!
//! **Architecture Invariant:** a journey's cursor moves only after its whole window was
//! processed, by the worker holding the window's lease. A crash leaves the cursor where it was
//! and the window is evaluated again; two servers on one database take turns by the lease, and
//! if both ever evaluate one window, the occurrence keys enter each customer once.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use kanta_domain::Timestamp;
use kanta_domain::contact::TimeZoneName;
use kanta_journey::dates::{self, DateTrigger};
use kanta_journey::{DateField, Trigger, zone};
use kanta_store::journey::{DateCandidate, DateScan, DateValue, DayMatch, Entered, TriggerCursor, Zones};
use serde_json::{Value, json};

use crate::cache::Head;
use crate::entry::Entrant;
use crate::{Engine, EngineError};

/// Customers read and entered per page of a scan.
const CHUNK: u32 = 1000;

/// Customers entered per store transaction: one commit (and on PostgreSQL one set of customer
/// locks held until it) for this many rather than one each; per-customer commits' disk flushes
/// were most of a day's evaluation (`bench/journeys.sh` part a).
const ENTER_BATCH: usize = 100;

/// Every UTC offset in use today is a whole number of quarter hours (Nepal +05:45, Chatham
/// +12:45), so a local midnight always falls on a quarter hour in UTC: a window that contains
/// none needs no look at the customers' zones.
const QUARTER_HOUR_MICROS: i64 = 15 * 60 * 1_000_000;

/// What [`Engine::evaluate_triggers`] did, per journey whose window it evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerOutcome {
    /// One entry per journey evaluated, by name; journeys with nothing due are left out.
    pub journeys: Vec<JourneyTriggered>,
}

impl TriggerOutcome {
    /// Customers entered across every journey.
    pub fn entered(&self) -> u64 {
        self.journeys.iter().map(|j| j.entered).sum()
    }
}

/// One journey's evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JourneyTriggered {
    /// The journey.
    pub journey: String,
    /// Runs started.
    pub entered: u64,
    /// Customers recorded as entered in a control arm (the journey's holdout or the global
    /// one): followed for the goal, no step.
    pub held_out: u64,
    /// Not entered because the customer already has a run for this occurrence (a window
    /// evaluated again), an active run of the journey, or the re-entry rule says no.
    pub already: u64,
    /// Not entered because the customer is at `max_concurrent_journeys`.
    pub at_limit: u64,
    /// Entries not made because their day's midnight (or the cron occurrence) is later than
    /// `skip_if_late_by` ago; for a schedule, the occurrence counts once (its members are not
    /// read).
    pub too_late: u64,
    /// Missed days beyond [`kanta_journey::dates::MAX_CATCH_UP_DAYS`] that were not evaluated (the most in any zone).
    pub days_dropped: u64,
    /// Cron occurrences collapsed into the latest one of the window.
    pub collapsed: u64,
    /// The journey is paused: nobody was entered and the window was skipped.
    pub paused: bool,
}

/// Whether a trigger fires from the calendar, keying its runs by occurrence
/// (`EntryRules::once_per_key`).
pub(crate) fn keys_occurrences(trigger: &Trigger) -> bool {
    matches!(trigger, Trigger::Date { .. } | Trigger::PredictedNextPurchase { .. } | Trigger::Schedule { .. })
}

/// The calendar trigger of a journey, if it has one.
pub(crate) enum Calendar<'a> {
    /// A date of the customer.
    Date { field: &'a DateField, rule: DateTrigger },
    /// The predicted next purchase, moved by `offset_days`.
    Predicted { offset_days: i32 },
    /// A cron schedule over a segment.
    Schedule { cron: &'a kanta_journey::cron::Schedule, segment: &'a str },
}

impl<'a> Calendar<'a> {
    pub(crate) fn of(trigger: &'a Trigger) -> Option<Calendar<'a>> {
        match trigger {
            Trigger::Date { field, offset_days, yearly } => {
                Some(Calendar::Date { field, rule: DateTrigger { offset_days: *offset_days, yearly: *yearly } })
            }
            Trigger::PredictedNextPurchase { offset_days } => Some(Calendar::Predicted { offset_days: *offset_days }),
            Trigger::Schedule { cron, segment } => Some(Calendar::Schedule { cron, segment }),
            _ => None,
        }
    }
}

/// The customers' zones, read at most once per evaluation, with the zone each stored name
/// resolves to for one journey.
#[derive(Default)]
struct ZoneList {
    names: Option<Vec<Option<String>>>,
}

/// Customers of one set of zones whose window contains the same local days.
#[derive(Default)]
struct ZoneGroup {
    names: Vec<String>,
    unset: bool,
}

/// The counts of one window, and the cursor to move to.
struct Window {
    counts: JourneyTriggered,
    last_occurrence: Option<Timestamp>,
}

impl Engine {
    /// Evaluate every date, predicted-purchase and schedule trigger for the window since each
    /// journey's cursor up to `now`, entering the customers whose occurrence fell due in it
    /// (see the module documentation for the rules), then move the cursors to `now`.
    ///
    /// Cheap when nothing is due: one cursor read per such journey, and no customer is read
    /// unless a local midnight (a quarter hour in UTC) or a cron occurrence lies in a window.
    /// A journey whose window another worker holds is passed over. On an error the journey's
    /// cursor stays (its window is evaluated again next time) and the error is returned.
    pub async fn evaluate_triggers(&self, now: Timestamp) -> Result<TriggerOutcome, EngineError> {
        let heads = self.cache.heads(&*self.store).await?;
        let mut zones = ZoneList::default();
        let mut outcome = TriggerOutcome::default();
        for (name, head) in &heads {
            let Some(calendar) = Calendar::of(&head.loaded.journey.trigger) else { continue };
            let Some(cursor) = self.store.trigger_cursor(name).await? else {
                self.store.start_trigger_cursor(name, now).await?;
                continue;
            };
            if !self.window_due(head, &calendar, cursor, now)? {
                continue;
            }
            let owner = self.config.owner.as_str();
            let Some(from) = self.store.claim_trigger_window(name, owner, now, self.config.run_lease).await? else {
                continue;
            };
            // Another worker may have finished the window between the read and the claim.
            if !self.window_due(head, &calendar, from, now)? {
                self.store.finish_trigger_window(name, owner, &from, &from, now).await?;
                continue;
            }
            match self.evaluate_window(name, head, &calendar, from, now, &mut zones).await {
                Ok(window) => {
                    let to = TriggerCursor {
                        evaluated_to: now.max(from.evaluated_to),
                        last_occurrence: window.last_occurrence.or(from.last_occurrence),
                    };
                    if !self.store.finish_trigger_window(name, owner, &from, &to, now).await? {
                        tracing::warn!("journey engine: the trigger window of `{name}` was taken over meanwhile");
                    }
                    outcome.journeys.push(JourneyTriggered { journey: name.clone(), ..window.counts });
                }
                Err(e) => {
                    // Release the lease so the next tick evaluates the window again.
                    self.store.finish_trigger_window(name, owner, &from, &from, now).await?;
                    return Err(e);
                }
            }
        }
        Ok(outcome)
    }

    /// Whether `(cursor, now]` may hold something: a quarter hour (for dates) or an occurrence.
    fn window_due(
        &self,
        head: &Head,
        calendar: &Calendar<'_>,
        cursor: TriggerCursor,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        let from = cursor.evaluated_to;
        if now <= from {
            return Ok(false);
        }
        Ok(match calendar {
            Calendar::Date { .. } | Calendar::Predicted { .. } => {
                now.micros().div_euclid(QUARTER_HOUR_MICROS) > from.micros().div_euclid(QUARTER_HOUR_MICROS)
            }
            Calendar::Schedule { cron, .. } => {
                next_occurrence(cron, from, self.schedule_zone(head))?.is_some_and(|next| next <= now)
            }
        })
    }

    /// The zone a journey's schedule runs in.
    fn schedule_zone(&self, head: &Head) -> Tz {
        head.loaded.journey.timezone.or(self.config.default_zone).unwrap_or(Tz::UTC)
    }

    async fn evaluate_window(
        &self,
        name: &str,
        head: &Head,
        calendar: &Calendar<'_>,
        from: TriggerCursor,
        now: Timestamp,
        zones: &mut ZoneList,
    ) -> Result<Window, EngineError> {
        let mut window = Window { counts: JourneyTriggered::default(), last_occurrence: None };
        if head.paused {
            window.counts.paused = true;
            return Ok(window);
        }
        match calendar {
            Calendar::Schedule { cron, segment } => {
                self.evaluate_schedule(name, head, cron, segment, from, now, &mut window).await?;
            }
            Calendar::Date { .. } | Calendar::Predicted { .. } => {
                if zones.names.is_none() {
                    zones.names = Some(self.store.customer_zones().await?);
                }
                let names = zones.names.as_deref().unwrap_or_default();
                self.evaluate_dates(name, head, calendar, names, from.evaluated_to, now, &mut window.counts).await?;
            }
        }
        Ok(window)
    }

    /// Date and predicted-purchase triggers over `(from, now]`.
    #[allow(clippy::too_many_arguments, reason = "one window's state, passed down once")]
    async fn evaluate_dates(
        &self,
        name: &str,
        head: &Head,
        calendar: &Calendar<'_>,
        stored_zones: &[Option<String>],
        from: Timestamp,
        now: Timestamp,
        counts: &mut JourneyTriggered,
    ) -> Result<(), EngineError> {
        let journey_zone = head.loaded.journey.timezone;
        // Each stored zone name → the zone its customers' days are read in, and the days whose
        // midnight the window crossed there; names with the same days are scanned together.
        let mut tz_of: HashMap<Option<String>, Tz> = HashMap::new();
        let mut groups: BTreeMap<Vec<NaiveDate>, ZoneGroup> = BTreeMap::new();
        for stored in stored_zones {
            let parsed = stored.as_deref().and_then(|z| TimeZoneName::parse(z).ok());
            let tz = kanta_journey::effective_zone(parsed.as_ref(), journey_zone, self.config.default_zone).tz;
            tz_of.insert(stored.clone(), tz);
            let catch_up = dates::catch_up_days(Some(zone::local_day(from, tz)?), zone::local_day(now, tz)?);
            counts.days_dropped = counts.days_dropped.max(catch_up.skipped);
            if catch_up.days.is_empty() {
                continue;
            }
            let group = groups.entry(catch_up.days).or_default();
            match stored {
                Some(z) => group.names.push(z.clone()),
                None => group.unset = true,
            }
        }
        for (days, group) in &groups {
            let filters = DayFilters::new(calendar, days);
            let Some(scan) = filters.scan(calendar, days) else { return Ok(()) };
            let zones = Zones { names: &group.names, unset: group.unset };
            let mut after = None;
            loop {
                let (page, next) = self.store.date_candidates(scan, zones, after, CHUNK).await?;
                let mut entrants = Vec::new();
                for candidate in &page {
                    let tz = tz_of.get(&candidate.timezone).copied().unwrap_or_else(|| {
                        // A zone set after the zones were read: resolved the same way.
                        let parsed = candidate.timezone.as_deref().and_then(|z| TimeZoneName::parse(z).ok());
                        kanta_journey::effective_zone(parsed.as_ref(), journey_zone, self.config.default_zone).tz
                    });
                    for day in days {
                        if !fires_on(calendar, candidate, *day, tz)? {
                            continue;
                        }
                        if dates::too_late(dates::due_at(*day, tz)?, now, head.loaded.journey.skip_if_late_by) {
                            counts.too_late += 1;
                            continue;
                        }
                        entrants.push(Entrant {
                            customer: candidate.customer,
                            external: candidate.external_id.clone(),
                            key: day.format("%Y-%m-%d").to_string(),
                            context: date_context(calendar, candidate, *day),
                            zone: tz,
                        });
                    }
                }
                if !self.enter_counted(name, &entrants, now, counts).await? {
                    counts.paused = true;
                    return Ok(());
                }
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// A schedule over `(from, now]`: the latest occurrence enters the segment's members.
    #[allow(clippy::too_many_arguments, reason = "one window's state, passed down once")]
    async fn evaluate_schedule(
        &self,
        name: &str,
        head: &Head,
        cron: &kanta_journey::cron::Schedule,
        segment: &str,
        from: TriggerCursor,
        now: Timestamp,
        window: &mut Window,
    ) -> Result<(), EngineError> {
        let tz = self.schedule_zone(head);
        let Some(mut latest) = next_occurrence(cron, from.evaluated_to, tz)?.filter(|o| *o <= now) else {
            return Ok(());
        };
        while let Some(next) = next_occurrence(cron, latest, tz)?.filter(|o| *o <= now) {
            latest = next;
            window.counts.collapsed += 1;
        }
        window.last_occurrence = Some(latest);
        if dates::too_late(latest, now, head.loaded.journey.skip_if_late_by) {
            window.counts.too_late += 1;
            return Ok(());
        }
        let Some(info) = self.store.segments().await?.into_iter().find(|s| s.name == segment) else {
            tracing::warn!("journey engine: `{name}` schedules segment `{segment}`, which does not exist");
            return Ok(());
        };
        let key = latest.to_rfc3339();
        let context = json!({"occurrence": key, "segment": segment});
        let mut after = None;
        loop {
            let (members, next) = self.store.segment_customers(info.id, after, CHUNK).await?;
            let mut entrants = Vec::with_capacity(members.len());
            for member in &members {
                // Erased between the scan and now: passed over.
                let Some(customer) = self.store.customer_key(&member.id).await? else { continue };
                let stored = member.timezone.as_deref().and_then(|z| TimeZoneName::parse(z).ok());
                let zone = kanta_journey::effective_zone(
                    stored.as_ref(),
                    head.loaded.journey.timezone,
                    self.config.default_zone,
                )
                .tz;
                entrants.push(Entrant {
                    customer,
                    external: member.id.clone(),
                    key: key.clone(),
                    context: context.clone(),
                    zone,
                });
            }
            if !self.enter_counted(name, &entrants, now, &mut window.counts).await? {
                window.counts.paused = true;
                return Ok(());
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// `entrants` (by internal id) entered [`ENTER_BATCH`] to a store transaction, counted;
    /// `false` when the journey turned out paused (stop the window). The journey's head is read
    /// again for each batch, so a pause or a new version applied meanwhile takes effect.
    async fn enter_counted(
        &self,
        journey: &str,
        entrants: &[Entrant],
        now: Timestamp,
        counts: &mut JourneyTriggered,
    ) -> Result<bool, EngineError> {
        for batch in entrants.chunks(ENTER_BATCH) {
            let heads = self.cache.heads(&*self.store).await?;
            let Some(head) = heads.get(journey) else { return Ok(false) };
            let entered = match self.enter_many(journey, head, batch, now).await {
                Ok(entered) => entered,
                Err(EngineError::Paused(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            for e in entered {
                match e {
                    Entered::Started(_) => counts.entered += 1,
                    Entered::HeldOut(_) => counts.held_out += 1,
                    Entered::AlreadyActive(_) | Entered::NotAgain => counts.already += 1,
                    Entered::AtLimit => counts.at_limit += 1,
                }
            }
        }
        Ok(true)
    }
}

/// The text filters of a date scan for some local days: the `MM-DD`s of yearly triggers, the
/// dates of one-time ones.
pub(crate) struct DayFilters {
    month_days: Vec<String>,
    dates: Vec<String>,
}

impl DayFilters {
    pub(crate) fn new(calendar: &Calendar<'_>, days: &[NaiveDate]) -> DayFilters {
        match calendar {
            Calendar::Date { rule, .. } if rule.yearly => {
                DayFilters { month_days: anniversary_month_days(days, rule.offset_days), dates: Vec::new() }
            }
            Calendar::Date { rule, .. } => DayFilters {
                month_days: Vec::new(),
                dates: days
                    .iter()
                    .filter_map(|d| shift(*d, -rule.offset_days))
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .collect(),
            },
            _ => DayFilters { month_days: Vec::new(), dates: Vec::new() },
        }
    }

    /// The scan of the candidates of `calendar` on `days`; `None` for a schedule.
    pub(crate) fn scan<'a>(&'a self, calendar: &Calendar<'a>, days: &[NaiveDate]) -> Option<DateScan<'a>> {
        Some(match calendar {
            Calendar::Date { field, rule } => {
                let matching =
                    if rule.yearly { DayMatch::MonthDay(&self.month_days) } else { DayMatch::Date(&self.dates) };
                match field {
                    DateField::Birthday => DateScan::Birthday(matching),
                    DateField::Attribute(attribute) => DateScan::Attribute { name: attribute, matching },
                    DateField::FirstPurchase => DateScan::FirstPurchase,
                }
            }
            Calendar::Predicted { offset_days } => predicted_range(days, *offset_days),
            Calendar::Schedule { .. } => return None,
        })
    }
}

/// The first occurrence of `cron` strictly after `after` in `tz`; `None` when there is none
/// (a date that never comes).
pub(crate) fn next_occurrence(
    cron: &kanta_journey::cron::Schedule,
    after: Timestamp,
    tz: Tz,
) -> Result<Option<Timestamp>, EngineError> {
    use kanta_journey::cron::ScheduleError;
    match cron.next_after(after, tz) {
        Ok(next) => Ok(Some(next)),
        Err(ScheduleError::OutOfRange(e)) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// `day` moved by `offset` calendar days.
fn shift(day: NaiveDate, offset: i32) -> Option<NaiveDate> {
    let by = Days::new(u64::from(offset.unsigned_abs()));
    if offset >= 0 { day.checked_add_days(by) } else { day.checked_sub_days(by) }
}

/// The `MM-DD` of the dates whose anniversary plus `offset` is one of `days`: each day minus the
/// offset, and February 29 too when that is February 28 of a common year (a leap-day date's
/// anniversary, `dates::anniversary`).
fn anniversary_month_days(days: &[NaiveDate], offset: i32) -> Vec<String> {
    let mut out = Vec::new();
    for base in days.iter().filter_map(|d| shift(*d, -offset)) {
        out.push(base.format("%m-%d").to_string());
        if base.month() == 2 && base.day() == 28 && NaiveDate::from_ymd_opt(base.year(), 2, 29).is_none() {
            out.push("02-29".to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The instants a predicted purchase can be at for its local day plus `offset` to be one of
/// `days`, in any zone: from a day before the earliest base day's UTC midnight to a day after
/// the latest's end (no zone is a day away from UTC).
fn predicted_range(days: &[NaiveDate], offset: i32) -> DateScan<'static> {
    let bases: Vec<NaiveDate> = days.iter().filter_map(|d| shift(*d, -offset)).collect();
    let (Some(first), Some(last)) = (bases.iter().min(), bases.iter().max()) else {
        return DateScan::NextPurchase { from: Timestamp::from_micros(0), until: Timestamp::from_micros(0) };
    };
    let utc_start = |d: NaiveDate| Timestamp::from_micros(d.and_time(NaiveTime::MIN).and_utc().timestamp_micros());
    let day = std::time::Duration::from_secs(86_400);
    DateScan::NextPurchase {
        from: kanta_journey::duration::saturating_sub(utc_start(*first), day),
        until: utc_start(*last).saturating_add(day * 2),
    }
}

/// Whether `candidate`'s trigger is due on local `day` in `tz`.
pub(crate) fn fires_on(
    calendar: &Calendar<'_>,
    candidate: &DateCandidate,
    day: NaiveDate,
    tz: Tz,
) -> Result<bool, EngineError> {
    Ok(match (calendar, &candidate.value) {
        (Calendar::Date { rule, .. }, DateValue::Text(text)) => {
            // A date, or the date part of an RFC 3339 text; anything else never fires.
            let date = text.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            date.is_some_and(|date| rule.due_on(date, day))
        }
        (Calendar::Date { rule, .. }, DateValue::At(at)) => rule.due_on(zone::local_day(*at, tz)?, day),
        (Calendar::Predicted { offset_days }, DateValue::At(at)) => dates::predicted_day(*at, *offset_days, tz)? == day,
        _ => false,
    })
}

/// The run's context: what fired, on which day.
fn date_context(calendar: &Calendar<'_>, candidate: &DateCandidate, day: NaiveDate) -> Value {
    let date = day.format("%Y-%m-%d").to_string();
    match (calendar, &candidate.value) {
        (Calendar::Predicted { .. }, DateValue::At(at)) => {
            json!({"date": date, "field": "predicted_next_purchase", "predicted_at": at.to_rfc3339()})
        }
        (Calendar::Date { field, .. }, _) => json!({"date": date, "field": field.to_string()}),
        _ => json!({"date": date}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn month_days_include_the_leap_day_on_february_28_of_common_years() {
        assert_eq!(anniversary_month_days(&[d("2027-02-28")], 0), ["02-28", "02-29"]);
        assert_eq!(anniversary_month_days(&[d("2028-02-28")], 0), ["02-28"]);
        // Two weeks before: the dates whose day is the window's day plus 14.
        assert_eq!(anniversary_month_days(&[d("2026-12-22"), d("2026-12-23")], -14), ["01-05", "01-06"]);
    }

    #[test]
    fn the_predicted_range_covers_every_zone_of_the_base_days() {
        let DateScan::NextPurchase { from, until } = predicted_range(&[d("2026-12-04")], -3) else { panic!("a range") };
        assert_eq!(from.to_rfc3339(), "2026-12-06T00:00:00Z");
        assert_eq!(until.to_rfc3339(), "2026-12-09T00:00:00Z");
    }
}
