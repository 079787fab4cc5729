//! Time zones: parsing IANA names, choosing the zone a customer's local times are read in, and
//! the two conversions every other rule is built on (an instant to its local day, a local wall
//! clock time to an instant).
//!
//! The one rule for wall clock times that do not map to exactly one instant, used by every
//! module of this crate: a local time is the **earliest instant whose local wall clock reads that
//! time or later** ([`resolve_local`](crate::zone::resolve_local)). So a time in a
//! spring-forward gap (02:30 in New York on 2026-03-08) is the instant the gap ends (03:00
//! local), and a time in a fall-back fold (01:30 in New York on 2026-11-01) is its earlier
//! occurrence. Callers that need an instant not before some bound use
//! [`resolve_local_not_before`](crate::zone::resolve_local_not_before), which takes the later
//! occurrence of a fold when the earlier one has passed.

use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use kanta_domain::contact::TimeZoneName;
use kanta_domain::time::Timestamp;

/// An instant outside chrono's calendar (about ±262,000 years), or a local time whose instant
/// is outside `Timestamp`'s range. No clock reads one; the rules return this instead of
/// panicking or inventing a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{at} is outside the range of calendar dates (about ±262,000 years)")]
pub struct OutOfRange {
    /// The instant that could not be placed in the calendar (for a local time: the nearest
    /// representable instant, as microseconds).
    pub at: Timestamp,
}

/// A time zone name the IANA database (as compiled into `chrono-tz`) does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not an IANA time zone name such as `Europe/Helsinki` or `UTC` (names are case-sensitive)")]
pub struct UnknownZone {
    /// The name as given.
    pub name: String,
}

/// Parses an IANA time zone name (`Europe/Helsinki`, `America/New_York`, `UTC`); names are
/// case-sensitive, as in the database.
pub fn parse_zone(name: &str) -> Result<Tz, UnknownZone> {
    Tz::from_str(name).map_err(|_| UnknownZone { name: name.to_owned() })
}

/// Where the zone of a customer's local times came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// The customer's own `time_zone` attribute.
    Customer,
    /// The journey document's default zone.
    Journey,
    /// The server settings' default zone.
    Settings,
    /// None of the above was set (or known): UTC.
    Utc,
}

/// The zone a customer's local times are read in, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveZone {
    /// The zone to use.
    pub tz: Tz,
    /// Which link of the chain supplied it.
    pub source: ZoneSource,
    /// The customer's zone when it was set but is unknown to the database: passed over, not
    /// fatal (the API checks only its shape), and returned so the engine can log it once.
    pub unknown_customer_zone: Option<UnknownZone>,
}

/// Chooses the zone of a customer's local times: the customer's → the journey's default → the
/// settings' default → UTC (the chain).
///
/// The journey's and the settings' defaults are parsed with [`parse_zone`] when the journey is
/// validated and the settings are loaded, so an unknown name there is refused early; a
/// customer's zone comes from ingested data and is only shape-checked there, so an unknown one
/// falls through to the next link instead of stopping the journey for that customer.
pub fn effective_zone(customer: Option<&TimeZoneName>, journey: Option<Tz>, settings: Option<Tz>) -> EffectiveZone {
    let mut unknown_customer_zone = None;
    if let Some(name) = customer {
        match parse_zone(name.as_str()) {
            Ok(tz) => return EffectiveZone { tz, source: ZoneSource::Customer, unknown_customer_zone: None },
            Err(unknown) => unknown_customer_zone = Some(unknown),
        }
    }
    let (tz, source) = match (journey, settings) {
        (Some(tz), _) => (tz, ZoneSource::Journey),
        (None, Some(tz)) => (tz, ZoneSource::Settings),
        (None, None) => (Tz::UTC, ZoneSource::Utc),
    };
    EffectiveZone { tz, source, unknown_customer_zone }
}

/// `at` as a chrono UTC time.
fn to_utc(at: Timestamp) -> Result<DateTime<Utc>, OutOfRange> {
    DateTime::<Utc>::from_timestamp_micros(at.micros()).ok_or(OutOfRange { at })
}

/// `at` in `tz`.
pub(crate) fn local_zoned(at: Timestamp, tz: Tz) -> Result<DateTime<Tz>, OutOfRange> {
    Ok(to_utc(at)?.with_timezone(&tz))
}

/// The wall clock reading of `at` in `tz`.
pub fn local_date_time(at: Timestamp, tz: Tz) -> Result<NaiveDateTime, OutOfRange> {
    Ok(local_zoned(at, tz)?.naive_local())
}

/// The local calendar day of `at` in `tz`: the day a customer in that zone would say it is.
pub fn local_day(at: Timestamp, tz: Tz) -> Result<NaiveDate, OutOfRange> {
    Ok(local_date_time(at, tz)?.date())
}

/// The instant of a chrono time.
fn timestamp<Z: TimeZone>(t: &DateTime<Z>) -> Timestamp {
    Timestamp::from_micros(t.timestamp_micros())
}

/// More than any zone's offset from UTC has ever been (today −12:00 to +14:00; the local mean
/// times of the 19th century reach ±15:57).
const OFFSET_BOUND_MICROS: i64 = 24 * 3_600 * 1_000_000;

/// The earliest instant whose wall clock in `tz` reads `local` or later.
///
/// That is `local`'s instant when it exists once; its **earlier** occurrence in a fall-back
/// fold; and, in a spring-forward gap, the instant the gap ends (02:30 in New York on
/// 2026-03-08 → 03:00 EDT, 07:00 UTC), so a wait for a skipped time fires once, as soon as the
/// clock has passed it.
pub fn resolve_local(local: NaiveDateTime, tz: Tz) -> Result<Timestamp, OutOfRange> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(timestamp(&t)),
        LocalResult::Ambiguous(earlier, _) => Ok(timestamp(&earlier)),
        LocalResult::None => gap_end(local, tz),
    }
}

/// The earliest instant not before `not_before` whose wall clock reads `local` or later.
///
/// Differs from [`resolve_local`] only in a fold whose earlier occurrence is before
/// `not_before` (and the later one is not): then the later occurrence. Quiet hours ending at
/// 01:30 on New York's fall-back night use it: at 01:15 EST, after the clock went back, the
/// window ends at 01:30 EST, not at 01:30 EDT an hour ago.
pub fn resolve_local_not_before(local: NaiveDateTime, tz: Tz, not_before: Timestamp) -> Result<Timestamp, OutOfRange> {
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(earlier, later) => {
            let earlier = timestamp(&earlier);
            Ok(if earlier >= not_before { earlier } else { timestamp(&later) })
        }
        _ => resolve_local(local, tz),
    }
}

/// The instant a spring-forward gap containing `local` ends: the earliest instant whose local
/// time is at least `local`.
///
/// chrono-tz does not expose its transitions, so this bisects on instants within a day either
/// side of `local` read as UTC. The wall clock reads before `local` at the lower end and after
/// it at the upper end (offsets are under a day), so the bisection ends where the clock's
/// reading passes `local`; since `local` is never shown, that is a jump over it: the end of the
/// gap. (Two gaps over the same wall time within two days, with a fold between them, exist in
/// no zone; the answer would still be the end of one of them.)
fn gap_end(local: NaiveDateTime, tz: Tz) -> Result<Timestamp, OutOfRange> {
    // `local` read as if the offset were zero: its real neighbourhood is within a day of it.
    let naive_micros = local.and_utc().timestamp_micros();
    let out = OutOfRange { at: Timestamp::from_micros(naive_micros) };
    // Invariant: the wall clock at `lo` reads before `local`, at `hi` at or after it.
    let mut lo = naive_micros.checked_sub(OFFSET_BOUND_MICROS).ok_or(out)?;
    let mut hi = naive_micros.checked_add(OFFSET_BOUND_MICROS).ok_or(out)?;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_date_time(Timestamp::from_micros(mid), tz)? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Timestamp::from_micros(hi))
}

/// The start of local day `day` in `tz`: its 00:00 by the rule of [`resolve_local`] (a zone
/// that springs forward at midnight starts that day at 01:00).
pub fn start_of_day(day: NaiveDate, tz: Tz) -> Result<Timestamp, OutOfRange> {
    resolve_local(day.and_time(NaiveTime::MIN), tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn zone(name: &str) -> Tz {
        parse_zone(name).unwrap()
    }

    #[test]
    fn zone_names_parse_case_sensitively_with_a_message_naming_the_value() {
        assert_eq!(zone("Europe/Helsinki"), Tz::Europe__Helsinki);
        assert_eq!(zone("UTC"), Tz::UTC);
        let err = parse_zone("europe/helsinki").unwrap_err();
        assert_eq!(err, UnknownZone { name: "europe/helsinki".into() });
        assert_eq!(
            err.to_string(),
            "`europe/helsinki` is not an IANA time zone name such as `Europe/Helsinki` or `UTC` (names are case-sensitive)"
        );
        assert!(parse_zone("Mars/Olympus_Mons").is_err());
        assert!(parse_zone("").is_err());
    }

    #[test]
    fn the_effective_zone_is_the_customers_then_the_journeys_then_the_settings_then_utc() {
        let helsinki = TimeZoneName::parse("Europe/Helsinki").unwrap();
        let ny = Some(Tz::America__New_York);
        let tokyo = Some(Tz::Asia__Tokyo);
        let got = effective_zone(Some(&helsinki), ny, tokyo);
        assert_eq!((got.tz, got.source), (Tz::Europe__Helsinki, ZoneSource::Customer));
        let got = effective_zone(None, ny, tokyo);
        assert_eq!((got.tz, got.source), (Tz::America__New_York, ZoneSource::Journey));
        let got = effective_zone(None, None, tokyo);
        assert_eq!((got.tz, got.source), (Tz::Asia__Tokyo, ZoneSource::Settings));
        let got = effective_zone(None, None, None);
        assert_eq!((got.tz, got.source, got.unknown_customer_zone), (Tz::UTC, ZoneSource::Utc, None));
    }

    #[test]
    fn an_unknown_customer_zone_falls_through_and_is_reported() {
        // Shape-valid (the API accepts it) but not in the database.
        let atlantis = TimeZoneName::parse("Atlantis/Central").unwrap();
        let got = effective_zone(Some(&atlantis), None, Some(Tz::Europe__Helsinki));
        assert_eq!(got.tz, Tz::Europe__Helsinki);
        assert_eq!(got.source, ZoneSource::Settings);
        assert_eq!(got.unknown_customer_zone, Some(UnknownZone { name: "Atlantis/Central".into() }));
    }

    #[test]
    fn the_local_day_changes_at_local_midnight() {
        let helsinki = zone("Europe/Helsinki");
        // 21:59:59.999999 UTC is 23:59:59.999999 EET; one microsecond later it is the next day.
        assert_eq!(local_day(t("2026-01-14T21:59:59.999999Z"), helsinki).unwrap().to_string(), "2026-01-14");
        assert_eq!(local_day(t("2026-01-14T22:00:00Z"), helsinki).unwrap().to_string(), "2026-01-15");
        assert_eq!(local_day(t("2026-01-15T04:59:59Z"), zone("America/New_York")).unwrap().to_string(), "2026-01-14");
        let far = Timestamp::from_micros(i64::MAX);
        assert_eq!(local_day(far, helsinki), Err(OutOfRange { at: far }));
    }

    #[test]
    fn local_times_resolve_to_one_instant_across_gaps_and_folds() {
        let ny = zone("America/New_York");
        let helsinki = zone("Europe/Helsinki");
        // Ordinary times.
        assert_eq!(resolve_local(local("2026-03-07 09:00"), ny).unwrap(), t("2026-03-07T14:00:00Z"));
        assert_eq!(resolve_local(local("2026-03-08 09:00"), ny).unwrap(), t("2026-03-08T13:00:00Z"));
        // Gaps: the instant the gap ends.
        assert_eq!(resolve_local(local("2026-03-08 02:30"), ny).unwrap(), t("2026-03-08T07:00:00Z"));
        assert_eq!(resolve_local(local("2026-03-08 02:00"), ny).unwrap(), t("2026-03-08T07:00:00Z"));
        assert_eq!(resolve_local(local("2026-03-29 03:30"), helsinki).unwrap(), t("2026-03-29T01:00:00Z"));
        // Folds: the earlier occurrence.
        assert_eq!(resolve_local(local("2026-11-01 01:30"), ny).unwrap(), t("2026-11-01T05:30:00Z"));
        assert_eq!(resolve_local(local("2026-10-25 03:30"), helsinki).unwrap(), t("2026-10-25T00:30:00Z"));
        // …unless it has passed.
        let after_first = t("2026-11-01T05:30:00.000001Z");
        assert_eq!(
            resolve_local_not_before(local("2026-11-01 01:30"), ny, after_first).unwrap(),
            t("2026-11-01T06:30:00Z")
        );
        let at_first = t("2026-11-01T05:30:00Z");
        assert_eq!(resolve_local_not_before(local("2026-11-01 01:30"), ny, at_first).unwrap(), at_first);
    }

    #[test]
    fn a_day_that_springs_forward_at_midnight_starts_at_one() {
        // Santiago, Chile moved its clocks from 00:00 to 01:00 on 2026-09-06 (the first Sunday
        // of September).
        let santiago = zone("America/Santiago");
        assert_eq!(
            start_of_day(NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(), santiago).unwrap(),
            t("2026-09-06T04:00:00Z")
        );
        assert_eq!(
            start_of_day(NaiveDate::from_ymd_opt(2026, 9, 5).unwrap(), santiago).unwrap(),
            t("2026-09-05T04:00:00Z")
        );
    }
}
