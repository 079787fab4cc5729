//! The guardrails checked when a message is about to go: consent for the channel, the
//! suppression list, the global frequency cap and quiet hours, combined by [`decide`].
//!
//! From issue 17: "Consent for the channel (opt-in: only customers with granted email consent,
//! the default; or opt-out: all but revoked); the suppression list; a global frequency cap (at
//! most N marketing messages per customer per rolling window, across all journeys: the message
//! is skipped, recorded as capped, and the customer moves on); quiet hours in the customer's time
//! zone (the message waits for the next allowed time; it is not dropped); steps marked
//! transactional bypass caps and quiet hours but never suppression".
//!
//! The settings spell them `consent = "opt-in"`, `quiet_hours = "21:00-08:00"` (or `"off"`),
//! `frequency_cap = "3/7d"` (or `"off"`); each has a `parse` here whose error names the value and
//! the form expected.

use std::fmt;
use std::time::Duration;

use chrono::{Days, NaiveTime};
use chrono_tz::Tz;
use kanta_domain::time::Timestamp;

use crate::duration::{parse_duration, saturating_sub};
use crate::zone::{self, OutOfRange};

/// A guardrail setting that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} `{value}`: {problem}; expected {expected}")]
pub struct SettingError {
    /// The setting's name (`quiet_hours`, `frequency_cap`, `consent`).
    pub setting: &'static str,
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// The accepted forms.
    pub expected: &'static str,
}

/// Quiet hours: a daily window of local time in which marketing messages wait.
///
/// The window is half-open, `[start, end)` on the wall clock: with `21:00-08:00`, 20:59:59.999999
/// is allowed, 21:00:00 is quiet, 07:59:59.999999 is quiet and 08:00:00 is allowed. A window
/// whose end is before its start crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietHours {
    /// No quiet hours.
    Off,
    /// Quiet from `start` (inclusive) to `end` (exclusive), local time; `start != end`.
    Window {
        /// The first quiet time of day.
        start: NaiveTime,
        /// The first allowed time of day after the window.
        end: NaiveTime,
    },
}

const QUIET_FORM: &str = "`HH:MM-HH:MM` in 24-hour local time such as `21:00-08:00`, or `off`";

impl QuietHours {
    /// Parses `off` or `HH:MM-HH:MM` (two-digit hours 00–23 and minutes). Equal start and end
    /// are refused: they could mean "never" or "all day", and "all day" would hold every
    /// marketing message forever.
    pub fn parse(text: &str) -> Result<QuietHours, SettingError> {
        let error = |problem: &str| SettingError {
            setting: "quiet_hours",
            value: text.to_owned(),
            problem: problem.to_owned(),
            expected: QUIET_FORM,
        };
        if text == "off" {
            return Ok(QuietHours::Off);
        }
        let (start, end) = text.split_once('-').ok_or_else(|| error("there is no `-` between start and end"))?;
        let start = parse_hh_mm(start).ok_or_else(|| error(&format!("`{start}` is not a time HH:MM")))?;
        let end = parse_hh_mm(end).ok_or_else(|| error(&format!("`{end}` is not a time HH:MM")))?;
        if start == end {
            return Err(error("start and end are equal, so the window would be empty or the whole day"));
        }
        Ok(QuietHours::Window { start, end })
    }

    /// Whether a local time of day is inside the window.
    pub fn is_quiet(self, local: NaiveTime) -> bool {
        match self {
            QuietHours::Off => false,
            QuietHours::Window { start, end } if start < end => start <= local && local < end,
            QuietHours::Window { start, end } => local >= start || local < end,
        }
    }

    /// The first instant at or after `at` outside the window, by the wall clock in `tz`: `at`
    /// itself when it is allowed, else the window's end on the local day it ends.
    ///
    /// An end that falls in a spring-forward gap is the gap's end; an end in a fall-back fold is
    /// its first occurrence not before `at` ([`zone::resolve_local_not_before`]).
    pub fn next_allowed(self, at: Timestamp, tz: Tz) -> Result<Timestamp, OutOfRange> {
        let QuietHours::Window { start, end } = self else {
            return Ok(at);
        };
        let local = zone::local_date_time(at, tz)?;
        if !self.is_quiet(local.time()) {
            return Ok(at);
        }
        // Quiet after `start` in a window that crosses midnight: it ends tomorrow.
        let days = u64::from(start > end && local.time() >= start);
        let end_day = local.date().checked_add_days(Days::new(days)).ok_or(OutOfRange { at })?;
        let until = zone::resolve_local_not_before(end_day.and_time(end), tz, at)?;
        Ok(until.max(at))
    }
}

impl fmt::Display for QuietHours {
    /// The settings' spelling; parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuietHours::Off => f.write_str("off"),
            QuietHours::Window { start, end } => write!(f, "{}-{}", start.format("%H:%M"), end.format("%H:%M")),
        }
    }
}

/// `HH:MM` with two digits each, 00:00–23:59.
fn parse_hh_mm(text: &str) -> Option<NaiveTime> {
    let bytes = text.as_bytes();
    let two = |i: usize| -> Option<u32> {
        let (a, b) = (*bytes.get(i)?, *bytes.get(i + 1)?);
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    NaiveTime::from_hms_opt(two(0)?, two(3)?, 0)
}

/// The global frequency cap: at most `max` marketing messages per customer in any rolling
/// `window`, across all journeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrequencyCap {
    /// No cap.
    Off,
    /// At most this many messages per window.
    Limit(Cap),
}

/// A frequency cap's numbers.
///
/// The window at `now` is the half-open interval `(now − window, now]`: a message sent
/// **exactly one window ago no longer counts**, one sent a microsecond later does. The store
/// counts the customer's sent marketing messages with `sent_at > window_start(now)`, so the rule
/// and the query share [`Cap::window_start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// Messages allowed per window; at least 1.
    pub max: u32,
    /// The rolling window's length; not zero.
    pub window: Duration,
}

const CAP_FORM: &str = "`N/DURATION` such as `3/7d` (N ≥ 1; units s, m, h, d, w), or `off`";

impl Cap {
    /// The exclusive start of the window at `now`: messages sent strictly after it count.
    /// Saturates at the start of the representable range.
    pub fn window_start(self, now: Timestamp) -> Timestamp {
        saturating_sub(now, self.window)
    }

    /// Whether a message sent at `sent_at` counts against the cap at `now`.
    pub fn counts(self, sent_at: Timestamp, now: Timestamp) -> bool {
        self.window_start(now) < sent_at && sent_at <= now
    }

    /// Whether a customer who has been sent `sent_in_window` counted messages may get no more.
    pub fn is_reached(self, sent_in_window: u32) -> bool {
        sent_in_window >= self.max
    }
}

impl FrequencyCap {
    /// Parses `off` or `N/DURATION` (`3/7d`: at most 3 per 7 days). A cap of 0 is refused (it
    /// would silently stop all marketing; turn journeys off instead), and so is an empty window.
    pub fn parse(text: &str) -> Result<FrequencyCap, SettingError> {
        let error = |problem: String| SettingError {
            setting: "frequency_cap",
            value: text.to_owned(),
            problem,
            expected: CAP_FORM,
        };
        if text == "off" {
            return Ok(FrequencyCap::Off);
        }
        let (max, window) =
            text.split_once('/').ok_or_else(|| error("there is no `/` between count and window".into()))?;
        let max: u32 = max.parse().map_err(|_| error(format!("`{max}` is not a whole number")))?;
        if max == 0 {
            return Err(error("a cap of 0 messages would send no marketing at all".into()));
        }
        let window =
            parse_duration(window).map_err(|e| error(format!("`{window}` is not a duration ({})", e.problem)))?;
        if window.is_zero() {
            return Err(error("the window is empty".into()));
        }
        Ok(FrequencyCap::Limit(Cap { max, window }))
    }

    /// The exclusive start of the counting window at `now` ([`Cap::window_start`]); `None`
    /// without a cap (nothing to count).
    pub fn window_start(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            FrequencyCap::Off => None,
            FrequencyCap::Limit(cap) => Some(cap.window_start(now)),
        }
    }

    /// Whether `sent_in_window` counted messages leave no room for another.
    pub fn is_reached(self, sent_in_window: u32) -> bool {
        match self {
            FrequencyCap::Off => false,
            FrequencyCap::Limit(cap) => cap.is_reached(sent_in_window),
        }
    }
}

/// Which customers a channel's marketing may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsentMode {
    /// Only customers whose consent is granted (the default).
    #[default]
    OptIn,
    /// Everyone except customers who revoked consent.
    OptOut,
}

impl ConsentMode {
    /// Parses `opt-in` or `opt-out`.
    pub fn parse(text: &str) -> Result<ConsentMode, SettingError> {
        match text {
            "opt-in" => Ok(ConsentMode::OptIn),
            "opt-out" => Ok(ConsentMode::OptOut),
            _ => Err(SettingError {
                setting: "consent",
                value: text.to_owned(),
                problem: "unknown mode".into(),
                expected: "`opt-in` (only customers who granted consent) or `opt-out` (all but those who revoked it)",
            }),
        }
    }

    /// Whether a customer in `state` may receive marketing: opt-in needs `Granted`, opt-out
    /// only refuses `Revoked`.
    pub fn permits(self, state: ConsentState) -> bool {
        match self {
            ConsentMode::OptIn => state == ConsentState::Granted,
            ConsentMode::OptOut => state != ConsentState::Revoked,
        }
    }
}

/// A customer's consent for one channel, as of the send (the latest consent record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// The latest record grants consent.
    Granted,
    /// The latest record revokes it.
    Revoked,
    /// There is no record for the channel.
    NeverGiven,
}

/// Whether a message is marketing or transactional (a step's `transactional: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Subject to every guardrail.
    Marketing,
    /// Bypasses marketing consent, the cap and quiet hours; never suppression.
    Transactional,
}

/// The guardrail settings (server-wide; a journey may not loosen them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guardrails {
    /// The channel's consent mode.
    pub consent: ConsentMode,
    /// The global frequency cap.
    pub cap: FrequencyCap,
    /// Quiet hours in each customer's zone.
    pub quiet: QuietHours,
}

/// What is known about the recipient at send time. Read when the message is about to go, not
/// when it was scheduled: a consent revoked in between is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// Consent for the message's channel.
    pub consent: ConsentState,
    /// Whether the address is on the suppression list (bounces, complaints, manual).
    pub suppressed: bool,
    /// Marketing messages sent to the customer after the cap's `window_start(now)`, across all
    /// journeys (0 when the cap is off).
    pub sent_in_window: u32,
    /// The customer's effective zone ([`zone::effective_zone`]).
    pub tz: Tz,
}

/// The outcome for one message at send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it now.
    Send,
    /// Quiet hours: keep it and decide again at this instant (it is not dropped; consent and
    /// the cap are judged again then, when the message would actually go).
    Defer(Timestamp),
    /// Do not send it; record why and move the customer on.
    Skip(SkipReason),
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The consent mode does not permit the customer's consent state.
    NoConsent,
    /// The address is on the suppression list.
    Suppressed,
    /// The frequency cap is reached.
    Capped,
}

impl SkipReason {
    /// The name the store and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoConsent => "no_consent",
            SkipReason::Suppressed => "suppressed",
            SkipReason::Capped => "capped",
        }
    }
}

/// Decides what happens to a message about to be sent at `now`. The checks, in order, the
/// first that applies deciding:
///
/// 1. **Suppression**: a suppressed address is skipped (`Suppressed`), whatever the kind: the
///    list exists because mail to that address bounces or is unwanted.
/// 2. **Transactional** messages are sent. They are not marketing, so they need no marketing
///    consent, are not capped and do not wait for quiet hours (a receipt or password mail
///    answers something the customer just did).
/// 3. **Consent**: marketing to a customer the mode does not permit is skipped (`NoConsent`).
/// 4. **Quiet hours**: marketing inside the window is deferred to the window's end in the
///    customer's zone (`Defer`). Before the cap, because the engine decides again at that
///    instant: the cap is judged on the window that ends when the message really goes.
/// 5. **Frequency cap**: when it is reached, the message is skipped (`Capped`).
/// 6. Otherwise `Send`.
pub fn decide(
    kind: MessageKind,
    guardrails: &Guardrails,
    recipient: &Recipient,
    now: Timestamp,
) -> Result<Decision, OutOfRange> {
    if recipient.suppressed {
        return Ok(Decision::Skip(SkipReason::Suppressed));
    }
    if kind == MessageKind::Transactional {
        return Ok(Decision::Send);
    }
    if !guardrails.consent.permits(recipient.consent) {
        return Ok(Decision::Skip(SkipReason::NoConsent));
    }
    let allowed = guardrails.quiet.next_allowed(now, recipient.tz)?;
    if allowed > now {
        return Ok(Decision::Defer(allowed));
    }
    if guardrails.cap.is_reached(recipient.sent_in_window) {
        return Ok(Decision::Skip(SkipReason::Capped));
    }
    Ok(Decision::Send)
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    const HELSINKI: Tz = Tz::Europe__Helsinki;
    const NEW_YORK: Tz = Tz::America__New_York;

    /// The time of day of `at` in `tz`, as `HH:MM`.
    fn local_hh_mm(at: Timestamp, tz: Tz) -> String {
        let time = zone::local_date_time(at, tz).unwrap().time();
        format!("{:02}:{:02}", time.hour(), time.minute())
    }

    fn night() -> QuietHours {
        QuietHours::parse("21:00-08:00").unwrap()
    }

    #[test]
    fn quiet_hours_parse_and_print_back() {
        assert_eq!(QuietHours::parse("off").unwrap(), QuietHours::Off);
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(night(), QuietHours::Window { start: hm(21, 0), end: hm(8, 0) });
        assert_eq!(
            QuietHours::parse("12:30-13:45").unwrap(),
            QuietHours::Window { start: hm(12, 30), end: hm(13, 45) }
        );
        assert_eq!(night().to_string(), "21:00-08:00");
        assert_eq!(QuietHours::Off.to_string(), "off");
    }

    #[test]
    fn bad_quiet_hours_name_the_value_and_the_form() {
        let err = QuietHours::parse("21:00-21:00").unwrap_err();
        assert_eq!(
            err.to_string(),
            "quiet_hours `21:00-21:00`: start and end are equal, so the window would be empty or the whole day; expected `HH:MM-HH:MM` in 24-hour local time such as `21:00-08:00`, or `off`"
        );
        assert_eq!(QuietHours::parse("21:00").unwrap_err().problem, "there is no `-` between start and end");
        assert_eq!(QuietHours::parse("9:00-08:00").unwrap_err().problem, "`9:00` is not a time HH:MM");
        assert_eq!(QuietHours::parse("21:00-24:00").unwrap_err().problem, "`24:00` is not a time HH:MM");
        assert_eq!(QuietHours::parse("21:00-08:60").unwrap_err().problem, "`08:60` is not a time HH:MM");
        assert_eq!(QuietHours::parse("21.00-08.00").unwrap_err().problem, "`21.00` is not a time HH:MM");
        assert_eq!(QuietHours::parse("Off").unwrap_err().problem, "there is no `-` between start and end");
        assert_eq!(QuietHours::parse(" 21:00-08:00").unwrap_err().problem, "` 21:00` is not a time HH:MM");
    }

    #[test]
    fn the_last_allowed_microsecond_is_allowed_and_the_window_start_waits_for_the_morning() {
        // Winter in Helsinki is UTC+2: 21:00 EET = 19:00Z.
        let last = t("2026-01-14T18:59:59.999999Z");
        assert_eq!(night().next_allowed(last, HELSINKI).unwrap(), last);
        assert_eq!(night().next_allowed(t("2026-01-14T19:00:00Z"), HELSINKI).unwrap(), t("2026-01-15T06:00:00Z"));
        // After midnight, the same morning.
        assert_eq!(night().next_allowed(t("2026-01-14T23:30:00Z"), HELSINKI).unwrap(), t("2026-01-15T06:00:00Z"));
        assert_eq!(
            night().next_allowed(t("2026-01-15T05:59:59.999999Z"), HELSINKI).unwrap(),
            t("2026-01-15T06:00:00Z")
        );
        // 08:00 itself is allowed.
        assert_eq!(night().next_allowed(t("2026-01-15T06:00:00Z"), HELSINKI).unwrap(), t("2026-01-15T06:00:00Z"));
        assert_eq!(local_hh_mm(t("2026-01-15T06:00:00Z"), HELSINKI), "08:00");
    }

    #[test]
    fn a_deferred_message_waits_until_08_local_across_dst_nights() {
        // Helsinki springs forward in the night of 2026-03-28/29: 21:00 EET → 08:00 EEST.
        assert_eq!(night().next_allowed(t("2026-03-28T19:00:00Z"), HELSINKI).unwrap(), t("2026-03-29T05:00:00Z"));
        // …and falls back in the night of 2026-10-24/25: 21:00 EEST → 08:00 EET.
        assert_eq!(night().next_allowed(t("2026-10-24T18:00:00Z"), HELSINKI).unwrap(), t("2026-10-25T06:00:00Z"));
        // New York, 2026-03-07 21:00 EST → 2026-03-08 08:00 EDT; 2026-10-31 21:00 EDT → 08:00 EST.
        assert_eq!(night().next_allowed(t("2026-03-08T02:00:00Z"), NEW_YORK).unwrap(), t("2026-03-08T12:00:00Z"));
        assert_eq!(night().next_allowed(t("2026-11-01T01:00:00Z"), NEW_YORK).unwrap(), t("2026-11-01T13:00:00Z"));
        // The last allowed microsecond before a DST night.
        let last = t("2026-03-28T18:59:59.999999Z");
        assert_eq!(night().next_allowed(last, HELSINKI).unwrap(), last);
    }

    #[test]
    fn a_window_that_ends_in_a_gap_or_a_fold_ends_once() {
        // Ends at 02:30, which New York skips on 2026-03-08: allowed from 03:00 EDT.
        let to_0230 = QuietHours::parse("22:00-02:30").unwrap();
        assert_eq!(to_0230.next_allowed(t("2026-03-08T04:00:00Z"), NEW_YORK).unwrap(), t("2026-03-08T07:00:00Z"));
        // Ends at 01:30, which New York repeats on 2026-11-01: at 01:10 EDT it ends at 01:30 EDT;
        // at 01:10 EST (the second pass) at 01:30 EST.
        let to_0130 = QuietHours::parse("00:00-01:30").unwrap();
        assert_eq!(to_0130.next_allowed(t("2026-11-01T05:10:00Z"), NEW_YORK).unwrap(), t("2026-11-01T05:30:00Z"));
        assert_eq!(to_0130.next_allowed(t("2026-11-01T06:10:00Z"), NEW_YORK).unwrap(), t("2026-11-01T06:30:00Z"));
    }

    #[test]
    fn a_window_within_one_day_ends_the_same_day() {
        let lunch = QuietHours::parse("12:00-13:00").unwrap();
        assert_eq!(lunch.next_allowed(t("2026-01-14T09:59:59Z"), HELSINKI).unwrap(), t("2026-01-14T09:59:59Z"));
        assert_eq!(lunch.next_allowed(t("2026-01-14T10:00:00Z"), HELSINKI).unwrap(), t("2026-01-14T11:00:00Z"));
        assert_eq!(lunch.next_allowed(t("2026-01-14T11:00:00Z"), HELSINKI).unwrap(), t("2026-01-14T11:00:00Z"));
        assert_eq!(lunch.next_allowed(t("2026-01-14T22:30:00Z"), HELSINKI).unwrap(), t("2026-01-14T22:30:00Z"));
        assert_eq!(
            QuietHours::Off.next_allowed(t("2026-01-14T10:30:00Z"), HELSINKI).unwrap(),
            t("2026-01-14T10:30:00Z")
        );
    }

    #[test]
    fn frequency_caps_parse_with_messages_naming_the_value() {
        assert_eq!(FrequencyCap::parse("off").unwrap(), FrequencyCap::Off);
        let cap = FrequencyCap::parse("3/7d").unwrap();
        assert_eq!(cap, FrequencyCap::Limit(Cap { max: 3, window: Duration::from_secs(7 * 86_400) }));
        let err = FrequencyCap::parse("0/7d").unwrap_err();
        assert_eq!(
            err.to_string(),
            "frequency_cap `0/7d`: a cap of 0 messages would send no marketing at all; expected `N/DURATION` such as `3/7d` (N ≥ 1; units s, m, h, d, w), or `off`"
        );
        assert_eq!(FrequencyCap::parse("3/0d").unwrap_err().problem, "the window is empty");
        assert_eq!(FrequencyCap::parse("3/7").unwrap_err().problem, "`7` is not a duration (the unit is missing)");
        assert_eq!(FrequencyCap::parse("three/7d").unwrap_err().problem, "`three` is not a whole number");
        assert_eq!(FrequencyCap::parse("3 per 7d").unwrap_err().problem, "there is no `/` between count and window");
    }

    #[test]
    fn a_message_sent_exactly_one_window_ago_no_longer_counts() {
        let FrequencyCap::Limit(cap) = FrequencyCap::parse("3/7d").unwrap() else { panic!("a limit") };
        let now = t("2026-01-15T12:00:00Z");
        assert_eq!(cap.window_start(now), t("2026-01-08T12:00:00Z"));
        assert_eq!(FrequencyCap::Limit(cap).window_start(now), Some(t("2026-01-08T12:00:00Z")));
        assert_eq!(FrequencyCap::Off.window_start(now), None);
        assert!(!cap.counts(t("2026-01-08T12:00:00Z"), now));
        assert!(cap.counts(t("2026-01-08T12:00:00.000001Z"), now));
        assert!(cap.counts(now, now));
        assert!(!cap.counts(t("2026-01-15T12:00:00.000001Z"), now));
        // The count reaches the cap at 3, not before.
        assert!(!cap.is_reached(2) && cap.is_reached(3) && cap.is_reached(4));
        assert!(!FrequencyCap::Off.is_reached(u32::MAX));
        assert_eq!(cap.window_start(Timestamp::from_micros(i64::MIN + 5)).micros(), i64::MIN);
    }

    #[test]
    fn consent_modes_parse_and_permit_by_state() {
        assert_eq!(ConsentMode::default(), ConsentMode::OptIn);
        assert_eq!(ConsentMode::parse("opt-in").unwrap(), ConsentMode::OptIn);
        assert_eq!(ConsentMode::parse("opt-out").unwrap(), ConsentMode::OptOut);
        assert_eq!(
            ConsentMode::parse("optin").unwrap_err().to_string(),
            "consent `optin`: unknown mode; expected `opt-in` (only customers who granted consent) or `opt-out` (all but those who revoked it)"
        );
        use ConsentState::*;
        let table: Vec<_> = [Granted, Revoked, NeverGiven]
            .into_iter()
            .map(|s| (ConsentMode::OptIn.permits(s), ConsentMode::OptOut.permits(s)))
            .collect();
        assert_eq!(table, [(true, true), (false, false), (false, true)]);
    }

    fn rails() -> Guardrails {
        Guardrails { consent: ConsentMode::OptIn, cap: FrequencyCap::parse("3/7d").unwrap(), quiet: night() }
    }

    fn fine() -> Recipient {
        Recipient { consent: ConsentState::Granted, suppressed: false, sent_in_window: 0, tz: HELSINKI }
    }

    const DAY: &str = "2026-01-14T10:00:00Z"; // 12:00 EET
    const LATE: &str = "2026-01-14T19:30:00Z"; // 21:30 EET

    #[track_caller]
    fn check(kind: MessageKind, rails: Guardrails, who: Recipient, now: &str, expected: Decision) {
        assert_eq!(decide(kind, &rails, &who, t(now)).unwrap(), expected);
    }

    use Decision::*;
    use MessageKind::*;

    #[test]
    fn a_permitted_uncapped_daytime_marketing_message_is_sent() {
        check(Marketing, rails(), fine(), DAY, Send);
        check(Marketing, rails(), Recipient { sent_in_window: 2, ..fine() }, DAY, Send);
    }

    #[test]
    fn suppression_wins_over_everything_even_for_transactional_mail() {
        let suppressed = Recipient { suppressed: true, ..fine() };
        check(Marketing, rails(), suppressed, DAY, Skip(SkipReason::Suppressed));
        check(Transactional, rails(), suppressed, LATE, Skip(SkipReason::Suppressed));
        let everything = Recipient { suppressed: true, consent: ConsentState::Revoked, sent_in_window: 9, ..fine() };
        check(Marketing, rails(), everything, LATE, Skip(SkipReason::Suppressed));
    }

    #[test]
    fn transactional_mail_bypasses_consent_the_cap_and_quiet_hours() {
        let unwilling = Recipient { consent: ConsentState::Revoked, sent_in_window: 9, ..fine() };
        check(Transactional, rails(), unwilling, LATE, Send);
    }

    #[test]
    fn consent_revoked_between_scheduling_and_sending_skips() {
        // Scheduled while granted (a send at that moment would go) …
        check(Marketing, rails(), fine(), DAY, Send);
        // … revoked before the send: the state read at send time decides.
        check(
            Marketing,
            rails(),
            Recipient { consent: ConsentState::Revoked, ..fine() },
            DAY,
            Skip(SkipReason::NoConsent),
        );
    }

    #[test]
    fn opt_in_needs_a_grant_and_opt_out_needs_only_no_revocation() {
        let never = Recipient { consent: ConsentState::NeverGiven, ..fine() };
        check(Marketing, rails(), never, DAY, Skip(SkipReason::NoConsent));
        let opt_out = Guardrails { consent: ConsentMode::OptOut, ..rails() };
        check(Marketing, opt_out, never, DAY, Send);
        check(
            Marketing,
            opt_out,
            Recipient { consent: ConsentState::Revoked, ..fine() },
            DAY,
            Skip(SkipReason::NoConsent),
        );
    }

    #[test]
    fn quiet_hours_defer_marketing_to_the_local_morning() {
        check(Marketing, rails(), fine(), "2026-01-14T18:59:59.999999Z", Send);
        check(Marketing, rails(), fine(), "2026-01-14T19:00:00Z", Defer(t("2026-01-15T06:00:00Z")));
        check(Marketing, rails(), fine(), LATE, Defer(t("2026-01-15T06:00:00Z")));
        // The same instant is daytime for a New York customer (14:30 EST).
        check(Marketing, rails(), Recipient { tz: NEW_YORK, ..fine() }, LATE, Send);
        let no_quiet = Guardrails { quiet: QuietHours::Off, ..rails() };
        check(Marketing, no_quiet, fine(), LATE, Send);
    }

    #[test]
    fn the_cap_skips_at_its_limit_and_is_judged_after_quiet_hours() {
        let full = Recipient { sent_in_window: 3, ..fine() };
        check(Marketing, rails(), full, DAY, Skip(SkipReason::Capped));
        // In quiet hours the message waits; the cap is judged when it would go.
        check(Marketing, rails(), full, LATE, Defer(t("2026-01-15T06:00:00Z")));
        let uncapped = Guardrails { cap: FrequencyCap::Off, ..rails() };
        check(Marketing, uncapped, Recipient { sent_in_window: 1_000, ..fine() }, DAY, Send);
        // Consent is judged before the cap.
        let both = Recipient { consent: ConsentState::Revoked, sent_in_window: 3, ..fine() };
        check(Marketing, rails(), both, DAY, Skip(SkipReason::NoConsent));
    }

    #[test]
    fn skip_reasons_have_stable_names() {
        let names: Vec<_> = [SkipReason::NoConsent, SkipReason::Suppressed, SkipReason::Capped]
            .into_iter()
            .map(SkipReason::as_str)
            .collect();
        assert_eq!(names, ["no_consent", "suppressed", "capped"]);
    }
}
