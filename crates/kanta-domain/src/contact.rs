//! Who a customer is and how to reach them: ids, email addresses, phone numbers, time zones and
//! language tags as checked newtypes.
//!
//! Each type has one `parse` constructor that holds the rule, and the rule's refusal says what
//! is wrong with the value in words a client can act on (the record checks put the field name in
//! front). Values are kept exactly as written: an id `00042` stays `00042`, a phone number keeps
//! its spaces; normalising them would make two systems disagree about who is who.

use std::fmt;

use serde::Serialize;

/// Longest id (customer, order, event, feedback) in characters.
pub const MAX_ID: usize = 256;

/// Why a value is not of its type: the reason, without the field's name
/// (`` `x@y` is not an email address ``, `must not be empty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// `value` in backticks, cut to 60 characters with `…`, for quoting in a reason.
pub fn quoted(value: &str) -> String {
    let short: String = value.chars().take(60).collect();
    if short.len() < value.len() { format!("`{short}…`") } else { format!("`{short}`") }
}

/// The rule for free text (names, product names, topics, ids): not blank, at most `max`
/// characters, no control character except newline and tab.
pub fn check_text(value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid("must not be empty".into()));
    }
    if value.chars().count() > max {
        return Err(Invalid(format!("is longer than {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid(format!("contains a control character: {}", quoted(value))));
    }
    Ok(())
}

/// The rule for an opaque id (of a customer, an order, an event, a feedback answer): free text
/// of at most [`MAX_ID`] characters with no control character at all (not even a tab).
pub fn check_id(value: &str) -> Result<(), Invalid> {
    if value.chars().any(char::is_control) {
        return Err(Invalid(format!("contains a control character: {}", quoted(value))));
    }
    check_text(value, MAX_ID)
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value if it follows the type's rule; kept exactly as written.
            pub fn parse(value: impl Into<String>) -> Result<$name, Invalid> {
                let value = value.into();
                let check: fn(&str) -> Result<(), Invalid> = $check;
                check(&value).map(|()| $name(value))
            }

            /// The value as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as written, owned.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// A customer's id in the company's own systems: opaque, compared byte for byte, as
    /// `kanta analyze` reads it from a file.
    CustomerId,
    check_id
);

text_newtype!(
    /// An email address, checked minimally and on purpose permissively: one `@`, a non-empty
    /// local part, a domain with an inner dot, no spaces, at most 254 bytes (RFC 5321's path
    /// limit). Whether it reaches anyone is the mail server's business.
    Email,
    |value| {
        let ok = value.len() <= 254
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
            && match value.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if ok { Ok(()) } else { Err(Invalid(format!("{} is not an email address", quoted(value)))) }
    }
);

text_newtype!(
    /// A phone number: an optional `+`, then 6–15 digits (E.164 allows at most 15), with
    /// spaces, dashes, dots and parentheses allowed as separators.
    Phone,
    |value| {
        let body = value.strip_prefix('+').unwrap_or(value);
        let digits = body.chars().filter(char::is_ascii_digit).count();
        let ok = body.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c)) && (6..=15).contains(&digits);
        if ok { Ok(()) } else { Err(Invalid(format!("{} is not a phone number (+, then 6–15 digits)", quoted(value)))) }
    }
);

text_newtype!(
    /// An IANA time zone name such as `Europe/Helsinki` or `UTC`. Only the shape is checked
    /// here (the zone database is not part of the domain); journeys that send at a local hour
    /// resolve it and fall back to the workspace's zone when it is unknown.
    TimeZoneName,
    |value| {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
            && value.starts_with(|c: char| c.is_ascii_uppercase());
        if ok {
            Ok(())
        } else {
            Err(Invalid(format!("{} is not a time zone name such as `Europe/Helsinki`", quoted(value))))
        }
    }
);

text_newtype!(
    /// A BCP 47 language tag such as `fi`, `fi-FI` or `zh-Hant-TW` (shape only: a 2–3 letter
    /// language, then subtags of 1–8 letters or digits; `_` is accepted as a separator).
    Locale,
    |value| {
        let mut parts = value.split(['-', '_']);
        let lang_ok =
            parts.next().is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
        let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if lang_ok && rest_ok {
            Ok(())
        } else {
            Err(Invalid(format!("{} is not a language tag such as `fi-FI`", quoted(value))))
        }
    }
);

text_newtype!(
    /// An ISO 4217 currency code: three upper-case letters (`EUR`).
    Currency,
    |value| {
        if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(Invalid(format!("{} is not an ISO 4217 currency code such as `EUR`", quoted(value))))
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn reason<T>(result: Result<T, Invalid>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_else(|| "accepted".into())
    }

    #[test]
    fn ids_are_kept_exactly_and_refused_for_blanks_length_and_control_characters() {
        assert_eq!(CustomerId::parse("00042").map(CustomerId::into_inner), Ok("00042".to_string()));
        assert_eq!(CustomerId::parse(" a b ").map(|c| c.to_string()), Ok(" a b ".to_string()));
        assert_eq!(reason(CustomerId::parse("   ")), "must not be empty");
        assert_eq!(reason(CustomerId::parse("a\tb")), "contains a control character: `a\tb`");
        assert_eq!(CustomerId::parse("x".repeat(256)).map(|c| c.as_str().len()), Ok(256));
        assert_eq!(reason(CustomerId::parse("x".repeat(257))), "is longer than 256 characters");
        // Free text allows the tab an id refuses.
        assert_eq!(check_text("a\tb", 10), Ok(()));
    }

    #[test]
    fn emails_need_one_at_a_local_part_and_a_dotted_domain() {
        for ok in ["a@b.fi", "first.last+tag@mail.example.com", "ä@example.org"] {
            assert_eq!(Email::parse(ok).map(Email::into_inner), Ok(ok.to_string()), "{ok}");
        }
        for bad in ["a@b", "@b.fi", "a@@b.fi", "a@.b.fi", "a@b.fi.", "a b@c.fi", "plain"] {
            assert_eq!(reason(Email::parse(bad)), format!("`{bad}` is not an email address"), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert!(Email::parse(&long[1..]).is_ok() && Email::parse(long).is_err());
    }

    #[test]
    fn phones_count_six_to_fifteen_digits_between_separators() {
        for ok in ["+358 40 123 4567", "(040) 123-45.67", "123456", "+123456789012345"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["12345", "+1234567890123456", "040 CALL ME", "++358401234567"] {
            assert_eq!(reason(Phone::parse(bad)), format!("`{bad}` is not a phone number (+, then 6–15 digits)"));
        }
    }

    #[test]
    fn zones_locales_and_currencies_are_checked_by_shape() {
        assert!(TimeZoneName::parse("Europe/Helsinki").is_ok() && TimeZoneName::parse("UTC").is_ok());
        assert!(TimeZoneName::parse("Etc/GMT+2").is_ok());
        assert_eq!(
            reason(TimeZoneName::parse("europe/helsinki")),
            "`europe/helsinki` is not a time zone name such as `Europe/Helsinki`"
        );
        assert!(TimeZoneName::parse("Europe/Hel sinki").is_err() && TimeZoneName::parse("").is_err());
        for ok in ["fi", "fi-FI", "zh-Hant-TW", "en_GB", "gsw"] {
            assert!(Locale::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["f", "finn", "fi-", "fi-toolongsubtag", "1a"] {
            assert_eq!(reason(Locale::parse(bad)), format!("`{bad}` is not a language tag such as `fi-FI`"));
        }
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EURO", "E1R"] {
            assert_eq!(reason(Currency::parse(bad)), format!("`{bad}` is not an ISO 4217 currency code such as `EUR`"));
        }
    }

    #[test]
    fn long_values_are_quoted_cut_at_sixty_characters() {
        let long = "y".repeat(70);
        assert_eq!(quoted(&long), format!("`{}…`", "y".repeat(60)));
        assert_eq!(quoted("short"), "`short`");
    }
}
