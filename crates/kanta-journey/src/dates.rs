//! Date triggers: on which local day a date attribute (a birthday, a first-purchase
//! anniversary, a renewal date with an offset such as −14 days) or a predicted next purchase
//! enters a customer, and how missed days are caught up after downtime.
//!
//! From issue 17: "a date attribute relative to the day in the customer's time zone …; the
//! model's predicted next purchase date ± N days"; "a server that was down for a day runs the
//! steps that fell due once, late, and date triggers of missed days once (journeys can set
//! skip_if_late_by)".
//!
//! Days are calendar days in the customer's zone ([`crate::zone::local_day`]); a trigger that is
//! due on a day is due from that day's start ([`due_at`](crate::dates::due_at)).

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate};
use chrono_tz::Tz;
use kanta_domain::time::Timestamp;

use crate::duration::elapsed;
use crate::zone::{self, OutOfRange};

/// A trigger on a date value: due `offset_days` after the date (negative: before), once or on
/// every anniversary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTrigger {
    /// Days after the date (or anniversary) on which the trigger is due; −14 is two weeks before.
    pub offset_days: i32,
    /// Every year (birthdays, anniversaries) rather than once.
    pub yearly: bool,
}

/// `day` moved by `offset` calendar days; `None` outside chrono's calendar.
fn shift(day: NaiveDate, offset: i32) -> Option<NaiveDate> {
    let by = Days::new(u64::from(offset.unsigned_abs()));
    if offset >= 0 { day.checked_add_days(by) } else { day.checked_sub_days(by) }
}

/// The anniversary of `date` in `year`: the same month and day, except that February 29 falls
/// on **February 28** in years without one (a leap-day birthday is celebrated on the last day of
/// February, not in March). `None` outside chrono's calendar.
pub fn anniversary(date: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, date.month(), date.day()).or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
}

impl DateTrigger {
    /// Whether the trigger for a customer whose attribute holds `value` is due on local day
    /// `day`.
    ///
    /// Once: `day == value + offset`. Yearly: `day == anniversary(value, Y) + offset` for some
    /// year `Y` **after** `value`'s year: the date itself is not its own anniversary (a first
    /// purchase is not celebrated the day it is made; a birth date is in the past anyway).
    pub fn due_on(self, value: NaiveDate, day: NaiveDate) -> bool {
        // The date the day is `offset` days away from.
        let Some(base) = shift(day, -self.offset_days) else {
            return false;
        };
        if self.yearly {
            base.year() > value.year() && anniversary(value, base.year()) == Some(base)
        } else {
            base == value
        }
    }

    /// The first local day on or after `from` on which the trigger is due for `value`; `None`
    /// when there is none (a one-time trigger already past, or beyond the calendar).
    pub fn next_due(self, value: NaiveDate, from: NaiveDate) -> Option<NaiveDate> {
        if !self.yearly {
            return shift(value, self.offset_days).filter(|due| *due >= from);
        }
        let first_year = shift(from, -self.offset_days)?.year().max(value.year().checked_add(1)?);
        // The anniversary in `first_year` may be due before `from`; the next year's cannot be,
        // as its date is after `from − offset`, so two years suffice.
        (first_year..first_year.saturating_add(2))
            .filter_map(|year| shift(anniversary(value, year)?, self.offset_days))
            .find(|due| *due >= from)
    }
}

/// The local day of a predicted instant moved by `offset_days` calendar days: the day of the
/// model's next purchase (`ModelScores::next_purchase_at`) in the customer's zone, then ± N days
/// (calendar days, so "3 days before" is the same local date whatever DST does in between).
pub fn predicted_day(at: Timestamp, offset_days: i32, tz: Tz) -> Result<NaiveDate, OutOfRange> {
    shift(zone::local_day(at, tz)?, offset_days).ok_or(OutOfRange { at })
}

/// The instant a date trigger due on local `day` becomes due: the start of that day in the
/// customer's zone ([`zone::start_of_day`]). Lateness ([`too_late`]) is measured from it.
pub fn due_at(day: NaiveDate, tz: Tz) -> Result<Timestamp, OutOfRange> {
    zone::start_of_day(day, tz)
}

/// Whether something due at `due_at` is too late to run at `now` under a journey's
/// `skip_if_late_by`: only when a limit is set and `now − due_at` **exceeds** it (late by
/// exactly the limit still runs). Without a limit nothing is too late: downtime delays, it does
/// not drop.
pub fn too_late(due_at: Timestamp, now: Timestamp, skip_if_late_by: Option<Duration>) -> bool {
    skip_if_late_by.is_some_and(|limit| elapsed(due_at, now) > limit)
}

/// At most this many missed days are caught up: a month of downtime is replayed, a longer gap's
/// older days are dropped (and counted) rather than flooding customers with a season of
/// birthdays at once.
pub const MAX_CATCH_UP_DAYS: u64 = 31;

/// The local days whose date triggers are to be evaluated now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The days, oldest first; at most [`MAX_CATCH_UP_DAYS`].
    pub days: Vec<NaiveDate>,
    /// Missed days dropped because there were more than [`MAX_CATCH_UP_DAYS`] (the oldest).
    pub skipped: u64,
}

/// The days to evaluate given the last local day already evaluated and today (both in the same
/// zone): each day after `last_evaluated` up to and including `today`, once, so a server that
/// was down runs every missed day once, late. Nothing before today the first time
/// (`last_evaluated` = `None`: a new journey does not fire for past dates), nothing when
/// `last_evaluated` is today or later (already done, or the clock went back); of more than
/// [`MAX_CATCH_UP_DAYS`] days, the latest ones.
pub fn catch_up_days(last_evaluated: Option<NaiveDate>, today: NaiveDate) -> CatchUp {
    let Some(last) = last_evaluated else {
        return CatchUp { days: vec![today], skipped: 0 };
    };
    let missed = u64::try_from((today - last).num_days()).unwrap_or(0);
    let kept = missed.min(MAX_CATCH_UP_DAYS);
    // Counting back from today; `kept` ≤ 31, so the subtraction only fails at the calendar's start.
    let days = (0..kept).rev().filter_map(|back| today.checked_sub_days(Days::new(back))).collect();
    CatchUp { days, skipped: missed - kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    const BIRTHDAY: DateTrigger = DateTrigger { offset_days: 0, yearly: true };

    /// Every day of `year` on which `trigger` is due for `value`.
    fn due_days(trigger: DateTrigger, value: &str, year: i32) -> Vec<String> {
        let mut day = d(&format!("{year}-01-01"));
        let mut due = Vec::new();
        while day.year() == year {
            if trigger.due_on(d(value), day) {
                due.push(day.to_string());
            }
            day = day.succ_opt().unwrap();
        }
        due
    }

    #[test]
    fn a_birthday_is_due_once_a_year_on_its_date() {
        assert_eq!(due_days(BIRTHDAY, "1990-06-15", 2026), ["2026-06-15"]);
        assert_eq!(BIRTHDAY.next_due(d("1990-06-15"), d("2026-06-16")), Some(d("2027-06-15")));
        assert_eq!(BIRTHDAY.next_due(d("1990-06-15"), d("2026-06-15")), Some(d("2026-06-15")));
    }

    #[test]
    fn a_leap_day_birthday_is_due_on_february_28_in_other_years() {
        assert_eq!(due_days(BIRTHDAY, "2000-02-29", 2026), ["2026-02-28"]);
        assert_eq!(due_days(BIRTHDAY, "2000-02-29", 2028), ["2028-02-29"]);
        assert_eq!(BIRTHDAY.next_due(d("2000-02-29"), d("2026-03-01")), Some(d("2027-02-28")));
        assert_eq!(BIRTHDAY.next_due(d("2000-02-29"), d("2027-03-01")), Some(d("2028-02-29")));
        // A February 28 birthday stays on the 28th in leap years.
        assert_eq!(due_days(BIRTHDAY, "2001-02-28", 2028), ["2028-02-28"]);
    }

    #[test]
    fn the_date_itself_is_not_its_own_anniversary() {
        let anniversary = DateTrigger { offset_days: 0, yearly: true };
        assert_eq!(due_days(anniversary, "2026-03-10", 2026), Vec::<String>::new());
        assert_eq!(due_days(anniversary, "2026-03-10", 2027), ["2027-03-10"]);
        assert_eq!(anniversary.next_due(d("2026-03-10"), d("2026-01-01")), Some(d("2027-03-10")));
    }

    #[test]
    fn an_offset_moves_the_day_across_month_and_year_ends() {
        let before_renewal = DateTrigger { offset_days: -14, yearly: false };
        assert_eq!(due_days(before_renewal, "2026-03-05", 2026), ["2026-02-19"]);
        assert_eq!(before_renewal.next_due(d("2026-03-05"), d("2026-02-19")), Some(d("2026-02-19")));
        assert_eq!(before_renewal.next_due(d("2026-03-05"), d("2026-02-20")), None);
        // Two weeks before a January 5 birthday is December 22 of the year before.
        let before_birthday = DateTrigger { offset_days: -14, yearly: true };
        assert_eq!(due_days(before_birthday, "1990-01-05", 2026), ["2026-12-22"]);
        assert_eq!(before_birthday.next_due(d("1990-01-05"), d("2026-01-01")), Some(d("2026-12-22")));
        // A week after a leap-day birthday in a common year: March 7 (February 28 + 7).
        let after = DateTrigger { offset_days: 7, yearly: true };
        assert_eq!(due_days(after, "2000-02-29", 2027), ["2027-03-07"]);
        assert_eq!(due_days(after, "2000-02-29", 2028), ["2028-03-07"]);
    }

    #[test]
    fn a_trigger_is_due_by_the_customers_local_day() {
        let value = d("1990-06-15");
        // 2026-06-14T22:30Z is already June 15 in Helsinki but still June 14 in New York.
        let now = t("2026-06-14T22:30:00Z");
        let helsinki_today = zone::local_day(now, Tz::Europe__Helsinki).unwrap();
        let new_york_today = zone::local_day(now, Tz::America__New_York).unwrap();
        assert!(BIRTHDAY.due_on(value, helsinki_today));
        assert!(!BIRTHDAY.due_on(value, new_york_today));
        assert_eq!(due_at(d("2026-06-15"), Tz::Europe__Helsinki).unwrap(), t("2026-06-14T21:00:00Z"));
        assert_eq!(due_at(d("2026-06-15"), Tz::America__New_York).unwrap(), t("2026-06-15T04:00:00Z"));
    }

    #[test]
    fn a_predicted_purchase_falls_on_the_local_day_moved_by_whole_days() {
        // 2026-03-29T22:30Z is March 30 in Helsinki, March 29 in New York.
        let at = t("2026-03-29T22:30:00Z");
        assert_eq!(predicted_day(at, 0, Tz::Europe__Helsinki).unwrap(), d("2026-03-30"));
        assert_eq!(predicted_day(at, -3, Tz::Europe__Helsinki).unwrap(), d("2026-03-27"));
        assert_eq!(predicted_day(at, 2, Tz::America__New_York).unwrap(), d("2026-03-31"));
        let far = Timestamp::from_micros(i64::MAX);
        assert_eq!(predicted_day(far, 0, Tz::UTC), Err(OutOfRange { at: far }));
    }

    #[test]
    fn too_late_means_later_than_the_limit_not_at_it() {
        let due = t("2026-06-15T00:00:00Z");
        let day = Some(Duration::from_secs(86_400));
        assert!(!too_late(due, t("2026-06-16T00:00:00Z"), day));
        assert!(too_late(due, t("2026-06-16T00:00:00.000001Z"), day));
        assert!(!too_late(due, t("2036-06-16T00:00:00Z"), None));
        // Not yet due is not late.
        assert!(!too_late(due, t("2026-06-14T00:00:00Z"), Some(Duration::ZERO)));
    }

    #[test]
    fn missed_days_are_caught_up_once_and_at_most_a_month_of_them() {
        let days = |c: CatchUp| (c.days.iter().map(NaiveDate::to_string).collect::<Vec<_>>(), c.skipped);
        // Down for a day: yesterday and today.
        assert_eq!(
            days(catch_up_days(Some(d("2026-06-13")), d("2026-06-15"))),
            (vec!["2026-06-14".into(), "2026-06-15".into()], 0)
        );
        // The normal tick.
        assert_eq!(days(catch_up_days(Some(d("2026-06-14")), d("2026-06-15"))), (vec!["2026-06-15".into()], 0));
        // Already evaluated, or the clock went back.
        assert_eq!(days(catch_up_days(Some(d("2026-06-15")), d("2026-06-15"))), (vec![], 0));
        assert_eq!(days(catch_up_days(Some(d("2026-06-20")), d("2026-06-15"))), (vec![], 0));
        // First evaluation: today only.
        assert_eq!(days(catch_up_days(None, d("2026-06-15"))), (vec!["2026-06-15".into()], 0));
        // 40 missed days: the latest 31, the oldest 9 counted as skipped.
        let long = catch_up_days(Some(d("2026-05-06")), d("2026-06-15"));
        assert_eq!(long.days.len(), 31);
        assert_eq!((long.days[0], long.days[30], long.skipped), (d("2026-05-16"), d("2026-06-15"), 9));
    }
}
