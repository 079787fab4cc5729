//! Cron schedules: "a schedule (cron) that enters a segment's members" (issue 17).
//!
//! Five fields, `minute hour day-of-month month day-of-week`, evaluated on the wall clock of a
//! zone by the `croner` crate, whose DST handling is tested upstream and agrees with this
//! crate's rule for fixed times ([`crate::zone::resolve_local`]): a fixed time in a
//! spring-forward gap runs once, when the gap ends; one in a fall-back fold runs once, at its
//! first occurrence. Interval fields (`*/15`) run by the wall clock: skipped in a gap, repeated
//! in a fold. When both day fields are restricted either may match (Vixie cron). Names
//! (`mon`, `jan`) and nicknames (`@daily`, `@weekly`) are accepted; seconds and years are not.

use std::fmt;

use chrono::Utc;
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use kanta_domain::time::Timestamp;

use crate::zone::{self, OutOfRange};

/// A parsed five-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The expression as written, for messages and for storing it back.
    text: String,
    cron: Cron,
}

/// Why a schedule did not parse or has no next run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Not a five-field cron expression.
    #[error(
        "`{value}` is not a cron schedule: {reason}; expected five fields `minute hour day-of-month month day-of-week` such as `0 9 * * mon`"
    )]
    Invalid {
        /// The expression as given.
        value: String,
        /// croner's explanation.
        reason: String,
    },
    /// No run after the instant (a date that never comes, such as `0 0 30 2 *`, or beyond
    /// croner's last supported year, 4999).
    #[error("the cron schedule `{value}` has no run after {after}")]
    NoRun {
        /// The expression.
        value: String,
        /// The instant searched from.
        after: Timestamp,
    },
    /// The instant searched from is outside the calendar.
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
}

impl Schedule {
    /// Parses a five-field cron expression (or a nickname such as `@daily`).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron =
            parser.parse(text).map_err(|e| ScheduleError::Invalid { value: text.to_owned(), reason: e.to_string() })?;
        Ok(Schedule { text: text.to_owned(), cron })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first run **strictly after** `after`, on the wall clock of `tz`. A scheduler that
    /// ran at `t` asks from `t` and never runs `t` twice.
    pub fn next_after(&self, after: Timestamp, tz: Tz) -> Result<Timestamp, ScheduleError> {
        let start = zone::local_zoned(after, tz)?;
        let no_run = || ScheduleError::NoRun { value: self.text.clone(), after };
        let next = self.cron.find_next_occurrence(&start, false).map_err(|_| no_run())?;
        let next = Timestamp::from_micros(next.with_timezone(&Utc).timestamp_micros());
        // croner searches by whole seconds from the second after `after`'s: a run at or before
        // `after` would be a bug there, never a run to report.
        if next > after { Ok(next) } else { Err(no_run()) }
    }
}

impl fmt::Display for Schedule {
    /// The expression as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn runs(expr: &str, zone: Tz, from: &str, n: usize) -> Vec<String> {
        let schedule = Schedule::parse(expr).unwrap();
        let mut at = t(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at, zone).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn a_weekly_schedule_runs_by_the_local_clock() {
        // Mondays 09:00 in Helsinki: EET (07:00Z) before 2026-03-29, EEST (06:00Z) after.
        assert_eq!(
            runs("0 9 * * mon", Tz::Europe__Helsinki, "2026-03-20T00:00:00Z", 3),
            ["2026-03-23T07:00:00Z", "2026-03-30T06:00:00Z", "2026-04-06T06:00:00Z"]
        );
    }

    #[test]
    fn the_next_run_is_strictly_after_the_instant() {
        let daily = Schedule::parse("0 9 * * *").unwrap();
        assert_eq!(daily.next_after(t("2026-01-14T08:59:59.5Z"), Tz::UTC).unwrap(), t("2026-01-14T09:00:00Z"));
        assert_eq!(daily.next_after(t("2026-01-14T09:00:00Z"), Tz::UTC).unwrap(), t("2026-01-15T09:00:00Z"));
        assert_eq!(daily.next_after(t("2026-01-14T09:00:00.000001Z"), Tz::UTC).unwrap(), t("2026-01-15T09:00:00Z"));
    }

    #[test]
    fn a_fixed_time_runs_once_across_new_yorks_dst_changes() {
        // 02:30 is skipped on 2026-03-08: it runs at 03:00 EDT (07:00Z), once.
        assert_eq!(
            runs("30 2 * * *", Tz::America__New_York, "2026-03-07T00:00:00Z", 3),
            ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
        // 01:30 is repeated on 2026-11-01: it runs at the first, 01:30 EDT (05:30Z), once.
        assert_eq!(
            runs("30 1 * * *", Tz::America__New_York, "2026-10-31T00:00:00Z", 3),
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn names_nicknames_and_vixie_day_fields_are_understood() {
        assert_eq!(runs("@daily", Tz::UTC, "2026-01-14T12:00:00Z", 1), ["2026-01-15T00:00:00Z"]);
        // The 1st of the month or a Friday: 2026-01-16 is a Friday, 2026-02-01 a Sunday.
        assert_eq!(
            runs("0 8 1 * fri", Tz::UTC, "2026-01-14T00:00:00Z", 4),
            ["2026-01-16T08:00:00Z", "2026-01-23T08:00:00Z", "2026-01-30T08:00:00Z", "2026-02-01T08:00:00Z"]
        );
    }

    #[test]
    fn bad_schedules_name_the_value() {
        let err = Schedule::parse("0 9 * *").unwrap_err();
        let ScheduleError::Invalid { value, .. } = &err else { panic!("{err:?}") };
        assert_eq!(value, "0 9 * *");
        assert!(err.to_string().starts_with("`0 9 * *` is not a cron schedule: "), "{err}");
        assert!(
            err.to_string()
                .ends_with("expected five fields `minute hour day-of-month month day-of-week` such as `0 9 * * mon`")
        );
        // Seconds are not accepted.
        assert!(Schedule::parse("0 0 9 * * *").is_err());
        assert!(Schedule::parse("61 9 * * *").is_err());
        assert!(Schedule::parse("").is_err());
    }

    #[test]
    fn a_schedule_that_never_runs_says_so() {
        let never = Schedule::parse("0 0 30 2 *").unwrap();
        let err = never.next_after(t("2026-01-01T00:00:00Z"), Tz::UTC).unwrap_err();
        assert_eq!(err.to_string(), "the cron schedule `0 0 30 2 *` has no run after 2026-01-01T00:00:00Z");
    }
}
