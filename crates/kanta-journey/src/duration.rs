//! Written durations (`90d`, `7d`, `36h`), as settings and journeys spell them, and the
//! saturating arithmetic of instants with them.

use std::time::Duration;

use kanta_domain::time::Timestamp;

/// Why a duration did not parse; the message names the value and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a duration: {problem}; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`"
)]
pub struct DurationError {
    /// The text as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Parses `<whole number><unit>`, the unit one of `s`, `m` (minutes), `h`, `d` (24 hours) and
/// `w` (7 days): `90d`, `36h`, `2w`, `0s`.
///
/// A day is 86,400 seconds, not a calendar day: a frequency-cap window or a re-entry delay is
/// an amount of elapsed time, the same in every zone and across DST. Waits that mean "the same
/// local time N days later" are calendar arithmetic and belong to the caller.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = |problem| DurationError { value: text.to_owned(), problem };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(error("it does not start with a number"));
    }
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(error("the unit is missing")),
        _ => return Err(error("the unit is not one of `s`, `m`, `h`, `d`, `w`")),
    };
    let too_long = "it is longer than 100,000 years";
    let count: u64 = number.parse().map_err(|_| error(too_long))?;
    match count.checked_mul(seconds_per_unit) {
        // Longer than any calendar date can be apart; refusing keeps instant arithmetic exact.
        Some(seconds) if seconds <= MAX_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(error(too_long)),
    }
}

/// 100,000 years of 365.25 days.
const MAX_SECONDS: u64 = 100_000 * 31_557_600;

/// A duration in whole microseconds as `i64`, saturating (durations of more than 292,000 years
/// become `i64::MAX`).
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `at − by`, saturating at the start of the representable range.
pub fn saturating_sub(at: Timestamp, by: Duration) -> Timestamp {
    Timestamp::from_micros(at.micros().saturating_sub(micros(by)))
}

/// The time from `earlier` to `later`; zero when `later` is not after `earlier`.
pub fn elapsed(earlier: Timestamp, later: Timestamp) -> Duration {
    // i64 difference may overflow (from i64::MIN to i64::MAX); i128 cannot.
    let diff = i128::from(later.micros()) - i128::from(earlier.micros());
    u64::try_from(diff).map_or(Duration::ZERO, Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_duration("36h").unwrap(), Duration::from_secs(36 * 3_600));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations_name_the_value_and_the_form() {
        let err = parse_duration("7 days").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`7 days` is not a duration: the unit is not one of `s`, `m`, `h`, `d`, `w`; expected a whole number and a unit (`s`, `m`, `h`, `d`, `w`) such as `90d` or `36h`"
        );
        assert_eq!(parse_duration("7").unwrap_err().problem, "the unit is missing");
        assert_eq!(parse_duration("d").unwrap_err().problem, "it does not start with a number");
        assert_eq!(parse_duration("-1d").unwrap_err().problem, "it does not start with a number");
        assert_eq!(parse_duration("1.5d").unwrap_err().problem, "the unit is not one of `s`, `m`, `h`, `d`, `w`");
        assert_eq!(parse_duration("99999999999999999999d").unwrap_err().problem, "it is longer than 100,000 years");
        assert_eq!(parse_duration("5300000w").unwrap_err().problem, "it is longer than 100,000 years");
    }

    #[test]
    fn instant_arithmetic_saturates_instead_of_overflowing() {
        let t = Timestamp::from_micros(1_000);
        assert_eq!(saturating_sub(t, Duration::from_micros(1_500)), Timestamp::from_micros(-500));
        assert_eq!(saturating_sub(Timestamp::from_micros(i64::MIN + 1), Duration::from_secs(1)).micros(), i64::MIN);
        assert_eq!(elapsed(Timestamp::from_micros(10), Timestamp::from_micros(25)), Duration::from_micros(15));
        assert_eq!(elapsed(Timestamp::from_micros(25), Timestamp::from_micros(10)), Duration::ZERO);
        let whole = elapsed(Timestamp::from_micros(i64::MIN), Timestamp::from_micros(i64::MAX));
        assert_eq!(whole.as_micros(), u128::from(u64::MAX));
    }
}
