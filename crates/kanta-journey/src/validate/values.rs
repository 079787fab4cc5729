//! The rules of a document's values: durations, day offsets, local times, weekdays, stages and
//! the shapes of names. Each returns the value or reports a problem naming what was written and
//! what was expected.

use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use kanta_core::lifecycle::Stage;

use crate::duration::parse_duration;
use crate::problem::Path;
use crate::tree::{Node, Value};
use crate::validate::Checker;
use crate::validate::fields::{closest, list, text};
use crate::when::Weekdays;

/// A duration (`30m`, `12h`, `3d`, `2w`).
pub(crate) fn duration(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Duration> {
    let written = text(ck, node, path, "a duration such as `3d`, `12h` or `30m`")?;
    match parse_duration(written) {
        Ok(d) => Some(d),
        Err(e) => {
            ck.report(node, path, e.to_string());
            None
        }
    }
}

/// A signed whole number of days or weeks (`-14d`, `3d`, `-2w`), as days.
pub(crate) fn day_offset(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<i32> {
    const EXPECTED: &str = "expected a whole number of days or weeks, negative for before, such as `-3d` or `2w`";
    // A bare 0 is "the day itself" and needs no unit.
    if node.value == Value::Int(0) {
        return Some(0);
    }
    let written = text(ck, node, path, "a day offset such as `-3d` or `2w`")?;
    let (sign, magnitude) = match written.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, written.strip_prefix('+').unwrap_or(written)),
    };
    let bad = |why: &str| format!("`{written}` is not a day offset: {why}; {EXPECTED}");
    if !(magnitude.ends_with('d') || magnitude.ends_with('w')) {
        ck.report(node, path, bad("the unit is not `d` or `w`"));
        return None;
    }
    let days = parse_duration(magnitude).ok().map(|d| d.as_secs() / 86_400).and_then(|d| i32::try_from(d).ok());
    match days {
        // Within ±100 years: an offset is meant in days or weeks, and the calendar arithmetic
        // on it must not leave chrono's range.
        Some(days) if days <= 36_600 => Some(sign * days),
        Some(_) => {
            ck.report(node, path, bad("it is more than 100 years"));
            None
        }
        None => {
            ck.report(node, path, bad("it is not a whole number and a unit"));
            None
        }
    }
}

/// A local time of day, `HH:MM` (24-hour clock).
pub(crate) fn local_time(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<NaiveTime> {
    const EXPECTED: &str = "expected `HH:MM` on the 24-hour clock, such as `10:00` or `18:30`";
    let written = text(ck, node, path, "a local time such as `\"10:00\"`")?;
    let problem = match written.split_once(':') {
        Some((h, m))
            if (1..=2).contains(&h.len())
                && m.len() == 2
                && h.bytes().all(|b| b.is_ascii_digit())
                && m.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let (hour, minute): (u32, u32) = (h.parse().unwrap_or(99), m.parse().unwrap_or(99));
            match NaiveTime::from_hms_opt(hour, minute, 0) {
                Some(t) => return Some(t),
                None if hour > 23 => "the hour is not 00 to 23",
                None => "the minute is not 00 to 59",
            }
        }
        _ => "it is not hours and minutes",
    };
    ck.report(node, path, format!("`{written}` is not a local time: {problem}; {EXPECTED}"));
    None
}

/// Weekdays: a list of names and ranges (`[mon, wed, fri]`, `[mon-fri]`) or one such string.
pub(crate) fn weekdays(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Weekdays> {
    const EXPECTED: &str = "a list of weekdays such as `[mon, wed, fri]` or `[mon-fri]`";
    let items: Vec<(&Node, Path)> = match &node.value {
        Value::Seq(items) if items.is_empty() => {
            ck.report(node, path, format!("the list of weekdays is empty; expected {EXPECTED}"));
            return None;
        }
        Value::Seq(items) => items.iter().enumerate().map(|(i, item)| (item, path.index(i))).collect(),
        Value::Str(_) => vec![(node, path.clone())],
        _ => {
            ck.report(node, path, format!("expected {EXPECTED}, found {}", node.describe()));
            return None;
        }
    };
    let mut names = Vec::new();
    for (item, path) in items {
        let Some(name) = text(ck, item, &path, "a weekday such as `mon`") else { continue };
        if Weekdays::parse(name).is_ok() {
            names.push(name);
            continue;
        }
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let hint = closest(name, &days).map(|d| format!("; did you mean `{d}`?")).unwrap_or_default();
        ck.report(
            item,
            &path,
            format!("`{name}` is not a weekday: expected one of {} or a range such as `mon-fri`{hint}", list(&days)),
        );
    }
    Weekdays::parse(&names.join(",")).ok()
}

/// A lifecycle stage name (`new`, `repeat`, `loyal`, `slipping`, `lapsing`, `lost`).
pub(crate) fn stage(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Stage> {
    let written = text(ck, node, path, "a lifecycle stage such as `slipping`")?;
    if let Some(stage) = Stage::ALL.into_iter().find(|s| s.name() == written) {
        return Some(stage);
    }
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    let hint = closest(written, &names).map(|d| format!("; did you mean `{d}`?")).unwrap_or_default();
    ck.report(node, path, format!("`{written}` is not a lifecycle stage: expected one of {}{hint}", list(&names)));
    None
}

/// An IANA time zone name.
pub(crate) fn zone(ck: &mut Checker<'_>, node: &Node, path: &Path) -> Option<Tz> {
    let written = text(ck, node, path, "an IANA time zone name such as `Europe/Helsinki`")?;
    match crate::zone::parse_zone(written) {
        Ok(tz) => Some(tz),
        Err(e) => {
            ck.report(node, path, e.to_string());
            None
        }
    }
}

/// The kinds of names a document holds, each with its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    /// A journey's name: a lowercase slug.
    Journey,
    /// An event name (`order.created`): up to 128 characters, no spaces.
    Event,
    /// A saved segment's name: 1–100 characters without control characters (the API's rule).
    Segment,
    /// An event property or customer attribute name (`cart_id`, `renewal_date`).
    Property,
    /// A template or webhook endpoint name: a file-name-safe slug.
    File,
    /// A tag: up to 64 characters, no control characters.
    Tag,
}

impl Name {
    /// What the name is, for messages.
    fn what(self) -> &'static str {
        match self {
            Name::Journey => "a journey name",
            Name::Event => "an event name",
            Name::Segment => "a segment name",
            Name::Property => "a property name",
            Name::File => "a name",
            Name::Tag => "a tag",
        }
    }

    /// Why `text` breaks the rule, if it does.
    pub(crate) fn problem(self, text: &str) -> Option<String> {
        let len = text.chars().count();
        let max = match self {
            Name::Journey | Name::Property | Name::File | Name::Tag => 64,
            Name::Event => 128,
            Name::Segment => 100,
        };
        if text.is_empty() {
            return Some("it is empty".into());
        }
        if len > max {
            return Some(format!("it is longer than {max} characters"));
        }
        if text.chars().any(char::is_control) {
            return Some("it contains a control character".into());
        }
        let slug = |c: char, upper: bool| {
            c.is_ascii_lowercase() || (upper && c.is_ascii_uppercase()) || c.is_ascii_digit() || c == '-' || c == '_'
        };
        match self {
            Name::Journey if !text.chars().all(|c| slug(c, false)) => {
                Some("only `a`–`z`, `0`–`9`, `-` and `_` may be used".into())
            }
            Name::File if !text.chars().all(|c| slug(c, true)) => {
                Some("only letters, digits, `-` and `_` may be used".into())
            }
            Name::Property if !text.chars().all(|c| slug(c, true) || c == '.') => {
                Some("only letters, digits, `.`, `-` and `_` may be used".into())
            }
            Name::Event if text.chars().any(char::is_whitespace) => Some("it contains a space".into()),
            Name::Journey | Name::File if text.starts_with(['-', '_']) => Some("it starts with `-` or `_`".into()),
            _ => None,
        }
    }
}

/// A name of the given kind.
pub(crate) fn name<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path, kind: Name) -> Option<&'n str> {
    let written = text(ck, node, path, kind.what())?;
    match kind.problem(written) {
        None => Some(written),
        Some(problem) => {
            ck.report(node, path, format!("`{}` is not {}: {problem}", crate::tree::shorten(written), kind.what()));
            None
        }
    }
}

/// A webhook URL: `http://` or `https://` and a host, no spaces.
pub(crate) fn url<'n>(ck: &mut Checker<'_>, node: &'n Node, path: &Path) -> Option<&'n str> {
    let written = text(ck, node, path, "a URL such as `https://example.com/hook`")?;
    let rest = written.strip_prefix("https://").or_else(|| written.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !written.chars().any(char::is_whitespace) => {
            Some(written)
        }
        _ => {
            ck.report(
                node,
                path,
                format!(
                    "`{}` is not a webhook URL: expected `https://` or `http://`, a host and a path, without spaces",
                    crate::tree::shorten(written)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_rules() {
        assert_eq!(Name::Journey.problem("win-back_2"), None);
        assert_eq!(
            Name::Journey.problem("Win-back").as_deref(),
            Some("only `a`–`z`, `0`–`9`, `-` and `_` may be used")
        );
        assert_eq!(Name::Journey.problem("-x").as_deref(), Some("it starts with `-` or `_`"));
        assert_eq!(Name::Event.problem("order.created"), None);
        assert_eq!(Name::Event.problem("order created").as_deref(), Some("it contains a space"));
        assert_eq!(Name::Segment.problem("VIP customers (EU)"), None);
        assert_eq!(
            Name::File.problem("../etc/passwd").as_deref(),
            Some("only letters, digits, `-` and `_` may be used")
        );
        assert_eq!(Name::Property.problem("").as_deref(), Some("it is empty"));
        assert_eq!(Name::Tag.problem(&"x".repeat(65)).as_deref(), Some("it is longer than 64 characters"));
    }
}
