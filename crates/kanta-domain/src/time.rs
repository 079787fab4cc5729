//! Instants and the range of times a stored fact may carry.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// An instant: microseconds since 1970-01-01T00:00:00Z.
///
/// Both stores keep times in this unit (`BIGINT`/`INTEGER` microseconds, UTC), so a
/// `Timestamp` crosses from the API to SQL without conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 time with a zone (`2024-03-01T12:00:00Z`, `…+02:00`).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.timestamp_micros()))
    }

    /// `self + by`, saturating at the ends of the representable range.
    pub fn saturating_add(self, by: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(by.as_micros()).unwrap_or(i64::MAX)))
    }

    /// RFC 3339 in UTC, with as many fractional digits as needed (none for whole seconds).
    /// Instants beyond chrono's range (±262,143 years) print as their microseconds.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => format!("{} µs since 1970", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The configured bounds on the times of stored facts (orders, events, feedback, consent),
/// independent of the clock. [`TimeBounds::at`] turns them into a [`TimeRange`] for one request.
///
/// Why bound them at all: a time is a fact a client asserts, and the analysis sizes structures by
/// the span of the data. One order dated in year 1 beside this year's made a scoring run ask for
/// tens of gigabytes (issue 16); an order a year in the future is a client's clock or format bug
/// that would silently make every other customer look lapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// No earlier time is accepted.
    pub earliest: Timestamp,
    /// How far ahead of the clock a time may be (clocks of senders drift); `None`: no limit.
    pub max_ahead: Option<Duration>,
}

impl Default for TimeBounds {
    /// From 1970-01-01 to one day ahead of the clock.
    fn default() -> TimeBounds {
        TimeBounds { earliest: Timestamp::EPOCH, max_ahead: Some(Duration::from_secs(86_400)) }
    }
}

impl TimeBounds {
    /// The accepted range when the clock reads `now`.
    pub fn at(&self, now: Timestamp) -> TimeRange {
        TimeRange {
            earliest: self.earliest,
            latest: self.max_ahead.map_or(Timestamp(i64::MAX), |ahead| now.saturating_add(ahead)),
        }
    }
}

/// The times accepted for one request: `earliest ..= latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// The first accepted instant.
    pub earliest: Timestamp,
    /// The last accepted instant.
    pub latest: Timestamp,
}

impl TimeRange {
    /// Every representable instant (for tests and callers that check nothing).
    pub const ALL: TimeRange = TimeRange { earliest: Timestamp(i64::MIN), latest: Timestamp(i64::MAX) };

    /// `Ok` when `t` lies in the range.
    pub fn check(&self, t: Timestamp) -> Result<Timestamp, TimeRangeError> {
        if t < self.earliest {
            Err(TimeRangeError::TooEarly { earliest: self.earliest })
        } else if t > self.latest {
            Err(TimeRangeError::TooLate { latest: self.latest })
        } else {
            Ok(t)
        }
    }
}

/// Why a time is outside its [`TimeRange`]; the messages complete a sentence whose subject is
/// the offending value (``"`0001-01-01T00:00:00Z` is before …"``).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeRangeError {
    /// Before the earliest accepted time.
    #[error("is before {earliest}, the earliest accepted time")]
    TooEarly {
        /// The bound.
        earliest: Timestamp,
    },
    /// Further ahead of the server's clock than allowed.
    #[error("is in the future: after {latest}, the latest accepted time (the server's clock plus the allowed lead)")]
    TooLate {
        /// The bound.
        latest: Timestamp,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn timestamps_round_trip_rfc3339_in_utc() {
        assert_eq!(t("2024-03-01T12:00:00+02:00").micros(), 1_709_287_200_000_000);
        assert_eq!(t("2024-03-01T12:00:00+02:00").to_rfc3339(), "2024-03-01T10:00:00Z");
        assert_eq!(t("1969-12-31T23:59:59.5Z").micros(), -500_000);
        assert_eq!(Timestamp::from_micros(1_500).to_rfc3339(), "1970-01-01T00:00:00.001500Z");
        assert_eq!(Timestamp::from_micros(i64::MIN).to_rfc3339(), "-9223372036854775808 µs since 1970");
        assert!(Timestamp::parse_rfc3339("2024-03-01 10:00").is_err());
    }

    #[test]
    fn the_default_range_runs_from_1970_to_a_day_ahead_of_the_clock() {
        let range = TimeBounds::default().at(t("2026-12-04T07:00:00Z"));
        assert_eq!(range.check(t("1970-01-01T00:00:00Z")), Ok(t("1970-01-01T00:00:00Z")));
        assert_eq!(range.check(t("2026-12-05T07:00:00Z")), Ok(t("2026-12-05T07:00:00Z")));
        let early = range.check(t("0001-01-01T00:00:00Z")).unwrap_err();
        assert_eq!(early, TimeRangeError::TooEarly { earliest: Timestamp::EPOCH });
        assert_eq!(early.to_string(), "is before 1970-01-01T00:00:00Z, the earliest accepted time");
        let late = range.check(t("2026-12-05T07:00:00.000001Z")).unwrap_err();
        assert_eq!(
            late.to_string(),
            "is in the future: after 2026-12-05T07:00:00Z, the latest accepted time (the server's clock plus the allowed lead)"
        );
        assert_eq!(range.check(t("1969-12-31T23:59:59.999999Z")), Err(early));
    }

    #[test]
    fn bounds_without_a_lead_accept_any_future_time_and_saturate() {
        let bounds = TimeBounds { earliest: t("2000-01-01T00:00:00Z"), max_ahead: None };
        let range = bounds.at(t("2026-01-01T00:00:00Z"));
        assert_eq!(range.latest, Timestamp::from_micros(i64::MAX));
        assert!(range.check(t("9999-12-31T23:59:59Z")).is_ok());
        assert!(range.check(t("1999-12-31T23:59:59Z")).is_err());
        let near_end = TimeBounds::default().at(Timestamp::from_micros(i64::MAX - 5));
        assert_eq!(near_end.latest.micros(), i64::MAX);
        assert!(TimeRange::ALL.check(Timestamp::from_micros(i64::MIN)).is_ok());
    }
}
