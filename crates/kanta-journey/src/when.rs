//! `wait_until`: the next instant a customer's local clock shows a time of day, on an allowed
//! weekday.
//!
//! "A wait until 09:00 local fires once at 09:00 local across a DST change (in both
//! directions)" (issue 17). Fire instants follow [`crate::zone::resolve_local`]: a time skipped
//! by a spring-forward gap fires when the gap ends (02:30 → 03:00 local), a time repeated by a
//! fall-back fold fires at its earlier occurrence only. Each allowed local day has exactly one
//! fire instant, and [`next_local_time`] returns each one once to a caller that walks forward
//! from just after the previous fire.

use std::fmt;

use chrono::{Datelike, Days, NaiveTime, Weekday};
use chrono_tz::Tz;
use kanta_domain::time::Timestamp;

use crate::zone::{self, OutOfRange};

/// A non-empty set of weekdays (`mon`…`sun`) on which a `wait_until` may fire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

/// The names in Monday-first order, as parsed and printed.
const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a weekday list did not parse; the message names the value and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a list of weekdays: {problem}; expected names `mon` … `sun` separated by commas, or ranges such as `mon-fri`"
)]
pub struct WeekdaysError {
    /// The text as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Weekdays {
    /// Every day of the week (a `wait_until` without a weekday list).
    pub const ALL: Weekdays = Weekdays(0b111_1111);

    /// Monday to Friday.
    pub const WORKDAYS: Weekdays = Weekdays(0b001_1111);

    /// Parses a comma-separated list of day names and ranges: `mon,wed,fri`, `mon-fri`,
    /// `sat-sun`, `fri-mon` (a range runs forward through the week, so this one is Friday to
    /// Monday). Names are the first three letters of English day names, in any case; spaces
    /// around items are ignored; the empty set is refused (a wait that could never fire).
    pub fn parse(text: &str) -> Result<Weekdays, WeekdaysError> {
        let error = |problem: String| WeekdaysError { value: text.to_owned(), problem };
        let mut bits = 0u8;
        for item in text.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(error("an item is empty".into()));
            }
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (item, item),
            };
            let first = day_index(first).ok_or_else(|| error(format!("`{first}` is not a day name")))?;
            let last = day_index(last).ok_or_else(|| error(format!("`{last}` is not a day name")))?;
            let mut day = first;
            loop {
                bits |= 1 << day;
                if day == last {
                    break;
                }
                day = (day + 1) % 7;
            }
        }
        Ok(Weekdays(bits))
    }

    /// The set of the given days; `None` when empty.
    pub fn of(days: &[Weekday]) -> Option<Weekdays> {
        let bits = days.iter().fold(0u8, |bits, day| bits | 1 << day.num_days_from_monday());
        (bits != 0).then_some(Weekdays(bits))
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// The index (Monday = 0) of a three-letter day name, in any case.
fn day_index(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).and_then(|i| u32::try_from(i).ok())
}

impl fmt::Display for Weekdays {
    /// The days in Monday-first order, comma-separated (`mon,wed,fri`); parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> =
            NAMES.iter().enumerate().filter(|(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Weekdays({self})")
    }
}

/// The first instant at or after `after` at which the local clock in `tz` shows `time_of_day`
/// on a day in `weekdays`.
///
/// "At or after": `after` itself counts when it is a fire instant, so a step scheduled for
/// exactly 09:00:00 is due at 09:00:00; a caller that has just fired at `t` asks again from
/// `t + 1 µs`. The weekday is that of the local calendar day the time belongs to.
///
/// DST: a `time_of_day` in a spring-forward gap fires at the gap's end (02:30 on New York's
/// 2026-03-08 fires at 03:00 EDT); one in a fall-back fold fires at its earlier occurrence only
/// (01:30 on 2026-11-01 fires at 01:30 EDT, and a call between the two occurrences moves on to
/// the next allowed day).
pub fn next_local_time(
    after: Timestamp,
    tz: Tz,
    time_of_day: NaiveTime,
    weekdays: Weekdays,
) -> Result<Timestamp, OutOfRange> {
    let out = OutOfRange { at: after };
    let today = zone::local_day(after, tz)?;
    // The day before today is looked at too: in a zone that springs forward across midnight a
    // time of yesterday can resolve to an instant of today. Every weekday occurs within the
    // following 8 days, so the loop always returns from its body.
    let mut day = today.checked_sub_days(Days::new(1)).ok_or(out)?;
    for _ in 0..9 {
        if weekdays.contains(day.weekday()) {
            let fire = zone::resolve_local(day.and_time(time_of_day), tz)?;
            if fire >= after {
                return Ok(fire);
            }
        }
        day = day.checked_add_days(Days::new(1)).ok_or(out)?;
    }
    Err(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::parse_zone;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    /// Walks `expected.len()` fires from `start`, each call from 1 µs after the previous fire,
    /// and compares them with the expected UTC instants.
    #[track_caller]
    fn check_walk(zone: &str, time: &str, start: &str, expected: &[&str]) {
        let tz = parse_zone(zone).unwrap();
        let mut from = t(start);
        let mut fires = Vec::new();
        for _ in expected {
            let fire = next_local_time(from, tz, hm(time), Weekdays::ALL).unwrap();
            fires.push(fire.to_rfc3339());
            from = Timestamp::from_micros(fire.micros() + 1);
        }
        assert_eq!(fires, expected);
    }

    #[test]
    fn nine_local_fires_once_a_day_across_helsinkis_spring_forward() {
        // 2026-03-29 04:00 EEST follows 02:59:59 EET: 09:00 moves from 07:00Z to 06:00Z.
        check_walk(
            "Europe/Helsinki",
            "09:00",
            "2026-03-23T22:00:00Z", // 2026-03-24 00:00 EET
            &[
                "2026-03-24T07:00:00Z",
                "2026-03-25T07:00:00Z",
                "2026-03-26T07:00:00Z",
                "2026-03-27T07:00:00Z",
                "2026-03-28T07:00:00Z",
                "2026-03-29T06:00:00Z",
                "2026-03-30T06:00:00Z",
                "2026-03-31T06:00:00Z",
                "2026-04-01T06:00:00Z",
                "2026-04-02T06:00:00Z",
            ],
        );
    }

    #[test]
    fn a_time_in_helsinkis_spring_gap_fires_once_when_the_gap_ends() {
        // 03:30 does not exist on 2026-03-29 (03:00 → 04:00): it fires at 04:00 EEST = 01:00Z.
        check_walk(
            "Europe/Helsinki",
            "03:30",
            "2026-03-23T22:00:00Z",
            &[
                "2026-03-24T01:30:00Z",
                "2026-03-25T01:30:00Z",
                "2026-03-26T01:30:00Z",
                "2026-03-27T01:30:00Z",
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z",
                "2026-03-31T00:30:00Z",
                "2026-04-01T00:30:00Z",
                "2026-04-02T00:30:00Z",
            ],
        );
    }

    #[test]
    fn nine_local_fires_once_a_day_across_helsinkis_fall_back() {
        // 2026-10-25 04:00 EEST becomes 03:00 EET: 09:00 moves from 06:00Z to 07:00Z.
        check_walk(
            "Europe/Helsinki",
            "09:00",
            "2026-10-19T21:00:00Z", // 2026-10-20 00:00 EEST
            &[
                "2026-10-20T06:00:00Z",
                "2026-10-21T06:00:00Z",
                "2026-10-22T06:00:00Z",
                "2026-10-23T06:00:00Z",
                "2026-10-24T06:00:00Z",
                "2026-10-25T07:00:00Z",
                "2026-10-26T07:00:00Z",
                "2026-10-27T07:00:00Z",
                "2026-10-28T07:00:00Z",
                "2026-10-29T07:00:00Z",
            ],
        );
    }

    #[test]
    fn a_time_in_helsinkis_fall_fold_fires_once_at_its_earlier_occurrence() {
        // 03:30 happens twice on 2026-10-25 (00:30Z in EEST, 01:30Z in EET): it fires at 00:30Z.
        check_walk(
            "Europe/Helsinki",
            "03:30",
            "2026-10-19T21:00:00Z",
            &[
                "2026-10-20T00:30:00Z",
                "2026-10-21T00:30:00Z",
                "2026-10-22T00:30:00Z",
                "2026-10-23T00:30:00Z",
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z",
                "2026-10-27T01:30:00Z",
                "2026-10-28T01:30:00Z",
                "2026-10-29T01:30:00Z",
            ],
        );
    }

    #[test]
    fn nine_local_fires_once_a_day_across_new_yorks_spring_forward() {
        // 2026-03-08 02:00 EST becomes 03:00 EDT: 09:00 moves from 14:00Z to 13:00Z.
        check_walk(
            "America/New_York",
            "09:00",
            "2026-03-03T05:00:00Z", // 2026-03-03 00:00 EST
            &[
                "2026-03-03T14:00:00Z",
                "2026-03-04T14:00:00Z",
                "2026-03-05T14:00:00Z",
                "2026-03-06T14:00:00Z",
                "2026-03-07T14:00:00Z",
                "2026-03-08T13:00:00Z",
                "2026-03-09T13:00:00Z",
                "2026-03-10T13:00:00Z",
                "2026-03-11T13:00:00Z",
                "2026-03-12T13:00:00Z",
            ],
        );
    }

    #[test]
    fn a_time_in_new_yorks_spring_gap_fires_once_when_the_gap_ends() {
        // 02:30 does not exist on 2026-03-08: it fires at 03:00 EDT = 07:00Z.
        check_walk(
            "America/New_York",
            "02:30",
            "2026-03-03T05:00:00Z",
            &[
                "2026-03-03T07:30:00Z",
                "2026-03-04T07:30:00Z",
                "2026-03-05T07:30:00Z",
                "2026-03-06T07:30:00Z",
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z",
                "2026-03-11T06:30:00Z",
                "2026-03-12T06:30:00Z",
            ],
        );
    }

    #[test]
    fn nine_local_fires_once_a_day_across_new_yorks_fall_back() {
        // 2026-11-01 02:00 EDT becomes 01:00 EST: 09:00 moves from 13:00Z to 14:00Z.
        check_walk(
            "America/New_York",
            "09:00",
            "2026-10-27T04:00:00Z", // 2026-10-27 00:00 EDT
            &[
                "2026-10-27T13:00:00Z",
                "2026-10-28T13:00:00Z",
                "2026-10-29T13:00:00Z",
                "2026-10-30T13:00:00Z",
                "2026-10-31T13:00:00Z",
                "2026-11-01T14:00:00Z",
                "2026-11-02T14:00:00Z",
                "2026-11-03T14:00:00Z",
                "2026-11-04T14:00:00Z",
                "2026-11-05T14:00:00Z",
            ],
        );
    }

    #[test]
    fn a_time_in_new_yorks_fall_fold_fires_once_at_its_earlier_occurrence() {
        // 01:30 happens twice on 2026-11-01 (05:30Z in EDT, 06:30Z in EST): it fires at 05:30Z.
        check_walk(
            "America/New_York",
            "01:30",
            "2026-10-27T04:00:00Z",
            &[
                "2026-10-27T05:30:00Z",
                "2026-10-28T05:30:00Z",
                "2026-10-29T05:30:00Z",
                "2026-10-30T05:30:00Z",
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z",
                "2026-11-03T06:30:00Z",
                "2026-11-04T06:30:00Z",
                "2026-11-05T06:30:00Z",
            ],
        );
    }

    #[test]
    fn asking_between_the_two_occurrences_of_a_folded_time_moves_to_the_next_day() {
        let ny = parse_zone("America/New_York").unwrap();
        // 06:00Z on 2026-11-01 is 01:00 EST, the second pass through 01:00–02:00: 01:30 is ahead
        // on the wall clock, but it already fired at 05:30Z.
        let next = next_local_time(t("2026-11-01T06:00:00Z"), ny, hm("01:30"), Weekdays::ALL).unwrap();
        assert_eq!(next, t("2026-11-02T06:30:00Z"));
    }

    #[test]
    fn exactly_at_the_time_counts_and_one_microsecond_later_does_not() {
        let helsinki = parse_zone("Europe/Helsinki").unwrap();
        let at = t("2026-01-14T08:00:00Z"); // 10:00 EET
        assert_eq!(next_local_time(at, helsinki, hm("10:00"), Weekdays::ALL).unwrap(), at);
        let just_after = Timestamp::from_micros(at.micros() + 1);
        assert_eq!(
            next_local_time(just_after, helsinki, hm("10:00"), Weekdays::ALL).unwrap(),
            t("2026-01-15T08:00:00Z")
        );
        let just_before = Timestamp::from_micros(at.micros() - 1);
        assert_eq!(next_local_time(just_before, helsinki, hm("10:00"), Weekdays::ALL).unwrap(), at);
    }

    #[test]
    fn only_allowed_weekdays_fire_by_the_local_calendar() {
        let ny = parse_zone("America/New_York").unwrap();
        // Friday 2026-01-16 at 10:00 EST is past 09:00: the next workday 09:00 is Monday.
        let fire = next_local_time(t("2026-01-16T15:00:00Z"), ny, hm("09:00"), Weekdays::WORKDAYS).unwrap();
        assert_eq!(fire, t("2026-01-19T14:00:00Z"));
        // Saturday 2026-01-17 at 23:30 EST is already Sunday in UTC; the local day decides.
        let sundays = Weekdays::parse("sun").unwrap();
        let fire = next_local_time(t("2026-01-18T04:30:00Z"), ny, hm("23:45"), sundays).unwrap();
        assert_eq!(fire, t("2026-01-19T04:45:00Z")); // Sunday 23:45 EST
        // A single weekday a week away, asked just after this week's fire.
        let mondays = Weekdays::parse("mon").unwrap();
        let fire = next_local_time(t("2026-01-19T14:00:00.000001Z"), ny, hm("09:00"), mondays).unwrap();
        assert_eq!(fire, t("2026-01-26T14:00:00Z"));
    }

    #[test]
    fn weekday_lists_parse_names_and_forward_ranges_and_print_back() {
        assert_eq!(Weekdays::parse("mon-fri").unwrap(), Weekdays::WORKDAYS);
        assert_eq!(Weekdays::parse("Mon, WED ,fri").unwrap().to_string(), "mon,wed,fri");
        assert_eq!(Weekdays::parse("fri-mon").unwrap().to_string(), "mon,fri,sat,sun");
        assert_eq!(Weekdays::parse("sun-sat").unwrap(), Weekdays::ALL);
        assert_eq!(
            Weekdays::parse("mon,wed,fri").unwrap(),
            Weekdays::of(&[Weekday::Fri, Weekday::Wed, Weekday::Mon]).unwrap()
        );
        assert_eq!(Weekdays::of(&[]), None);
        assert!(Weekdays::parse("sat-sun").unwrap().contains(Weekday::Sun));
        assert!(!Weekdays::parse("sat-sun").unwrap().contains(Weekday::Mon));
        assert_eq!(format!("{:?}", Weekdays::WORKDAYS), "Weekdays(mon,tue,wed,thu,fri)");
    }

    #[test]
    fn bad_weekday_lists_name_the_value_and_the_form() {
        let err = Weekdays::parse("mon,funday").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`mon,funday` is not a list of weekdays: `funday` is not a day name; expected names `mon` … `sun` separated by commas, or ranges such as `mon-fri`"
        );
        assert_eq!(Weekdays::parse("").unwrap_err().problem, "an item is empty");
        assert_eq!(Weekdays::parse("mon,,tue").unwrap_err().problem, "an item is empty");
        assert_eq!(Weekdays::parse("monday").unwrap_err().problem, "`monday` is not a day name");
    }

    mod walk {
        //! Walks of many fires from random instants, most near a DST change, in zones with
        //! one-hour, half-hour and midnight transitions; each fire is checked against the wall
        //! clock directly, not against `resolve_local`.

        use chrono::{Datelike, NaiveDate, TimeDelta};
        use proptest::prelude::*;

        use super::*;
        use crate::zone::local_date_time;

        /// Transitions of 2026 (the first instant on the new offset) and their zones, with a
        /// plain day in UTC.
        const NEAR: [(&str, Tz); 9] = [
            ("2026-03-08T07:00:00Z", Tz::America__New_York),    // forward an hour
            ("2026-11-01T06:00:00Z", Tz::America__New_York),    // back an hour
            ("2026-03-29T01:00:00Z", Tz::Europe__Helsinki),     // forward an hour at 03:00
            ("2026-10-25T01:00:00Z", Tz::Europe__Helsinki),     // back an hour at 04:00
            ("2026-04-04T15:00:00Z", Tz::Australia__Lord_Howe), // back half an hour
            ("2026-10-03T15:30:00Z", Tz::Australia__Lord_Howe), // forward half an hour
            ("2026-09-06T04:00:00Z", Tz::America__Santiago),    // forward at midnight
            ("2026-04-05T03:00:00Z", Tz::America__Santiago),    // back at midnight
            ("2026-06-15T12:00:00Z", Tz::UTC),
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn every_allowed_local_day_fires_exactly_once_at_its_time_or_the_end_of_its_gap(
                near in 0..NEAR.len(),
                shift_minutes in -10 * 1_440i64..2 * 1_440,
                // Three cases in four take a time within two hours of the transition's wall
                // clock time (in its gap or fold when there is one), the rest any minute.
                around_transition in 0u8..4,
                quarter_hours in -8i64..=8,
                minute_of_day in 0u32..1_440,
                days in 1u8..128,
            ) {
                let (transition, tz) = (t(NEAR[near].0), NEAR[near].1);
                let weekdays = Weekdays(days);
                let tod = if around_transition > 0 {
                    // The wall clock just before the transition, rounded up to the minute.
                    let edge = local_date_time(Timestamp::from_micros(transition.micros() - 1), tz).unwrap();
                    (edge + TimeDelta::microseconds(1) + TimeDelta::minutes(15 * quarter_hours)).time()
                } else {
                    NaiveTime::from_hms_opt(minute_of_day / 60, minute_of_day % 60, 0).unwrap()
                };
                let start = Timestamp::from_micros(transition.micros() + shift_minutes * 60_000_000);
                let mut from = start;
                let mut fire_days: Vec<NaiveDate> = Vec::new();
                for _ in 0..12 {
                    let fire = next_local_time(from, tz, tod, weekdays).unwrap();
                    prop_assert!(fire >= from);
                    // Asking at the fire returns the fire.
                    prop_assert_eq!(next_local_time(fire, tz, tod, weekdays).unwrap(), fire);
                    let reads = local_date_time(fire, tz).unwrap();
                    let target = reads.date().and_time(tod);
                    let before = local_date_time(Timestamp::from_micros(fire.micros() - 1), tz).unwrap();
                    // The clock shows the time, or jumps over it, at the fire.
                    prop_assert!(reads == target || (before < target && target < reads), "{} reads {}", fire, reads);
                    // And showed it at no earlier instant of the last two hours (earlier of a fold).
                    for back in [TimeDelta::minutes(30), TimeDelta::hours(1), TimeDelta::hours(2)] {
                        let earlier = local_date_time(Timestamp::from_micros(fire.micros() - back.num_microseconds().unwrap()), tz).unwrap();
                        prop_assert!(earlier < target, "{} also read {} at {:?} before", fire, earlier, back);
                    }
                    prop_assert!(weekdays.contains(reads.date().weekday()));
                    fire_days.push(reads.date());
                    from = Timestamp::from_micros(fire.micros() + 1);
                }
                // One fire per allowed day, no allowed day skipped.
                let first = zone::local_day(start, tz).unwrap();
                let mut expected = Vec::new();
                let mut day = first;
                while expected.len() < fire_days.len() {
                    if weekdays.contains(day.weekday()) && (day > first || fire_days[0] == first) {
                        expected.push(day);
                    }
                    day = day.succ_opt().unwrap();
                }
                prop_assert_eq!(fire_days, expected);
            }
        }
    }
}
