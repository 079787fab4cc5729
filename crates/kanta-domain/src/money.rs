//! Exact money amounts.
//!
//! Amounts are kept as integers in units of 1/10,000 of the currency unit. Revenue is a sum of
//! millions of order lines, and summing `f64` gives results that depend on the order of the
//! lines and drift in the last cent; an integer sum is exact, so kanta's per-customer table is
//! byte-identical to what a SQL engine computes with `DECIMAL(18,4)`. Four decimals cover every
//! ISO 4217 currency (at most three minor-unit digits) and the sub-cent unit prices of
//! per-kilogram or per-unit pricing.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of money units in one currency unit (four decimal places).
pub const SCALE: i64 = 10_000;

/// An exact amount of money in 1/10,000 currency units; negative for returns and refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a text could not be read as an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The text is not a decimal number (after removing currency symbols and spaces).
    #[error("cannot parse `{0}` as a number")]
    NotANumber(String),
    /// The number does not fit the range of ±922 trillion.
    #[error("`{0}` is too large for an amount of money")]
    OutOfRange(String),
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// An amount from its raw count of 1/10,000 units.
    pub const fn from_raw(raw: i64) -> Money {
        Money(raw)
    }

    /// The raw count of 1/10,000 units.
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// An amount from a whole number of currency units, if it is in range.
    pub fn from_units(units: i64) -> Option<Money> {
        units.checked_mul(SCALE).map(Money)
    }

    /// An amount from a floating-point value, rounded half away from zero to 1/10,000.
    /// Returns `None` for NaN, infinities and values out of range.
    pub fn from_f64(value: f64) -> Option<Money> {
        let scaled = (value * SCALE as f64).round();
        // 9.2e18 is the i64 limit; stay well inside it so the cast is exact and never saturates.
        if scaled.is_finite() && scaled.abs() < 9.0e18 { Some(Money(scaled as i64)) } else { None }
    }

    /// The amount as a floating-point number of currency units.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// `self × quantity`, where the quantity is itself a fixed-point number with four decimals
    /// (so `2.5 kg × 3.20/kg = 8.00`). Rounded half away from zero; `None` on overflow.
    pub fn times_quantity(self, quantity: Money) -> Option<Money> {
        let product = i128::from(self.0) * i128::from(quantity.0);
        let half = i128::from(SCALE) / 2;
        let rounded =
            if product >= 0 { (product + half) / i128::from(SCALE) } else { (product - half) / i128::from(SCALE) };
        i64::try_from(rounded).ok().map(Money)
    }

    /// Parses a decimal amount such as `12.50`, `-3`, `1,234.56`, `$ 9.99`, `1e3` or, with
    /// `decimal_comma`, `12,50` and `1.234,56`.
    ///
    /// Currency symbols, letters (ISO codes such as `EUR`) and spaces around the number are
    /// ignored; thousands separators are accepted only in the positions they belong. More than
    /// four decimals are rounded half away from zero.
    pub fn parse(text: &str, decimal_comma: bool) -> Result<Money, MoneyError> {
        match Money::parse_plain(text.as_bytes(), decimal_comma) {
            Some(plain) => Ok(plain),
            None => parse_fixed(text, decimal_comma).map(Money),
        }
    }

    /// The common case of [`Money::parse`] without its general machinery: a plain decimal of
    /// ASCII bytes, `-?[0-9]{1,14}` optionally followed by the decimal separator and one to four
    /// digits (`19.65`, `-4.5`, `120`). Returns `None` for anything else; where it returns a
    /// value, the general parser returns the same (checked by a property test). `Money::parse`
    /// tries it first (on ten million lines the general parser's trimming of symbols and spaces
    /// cost a fifth of a second); text readers call it on the raw bytes, before the UTF-8 check
    /// that `parse` needs.
    #[inline]
    pub fn parse_plain(bytes: &[u8], decimal_comma: bool) -> Option<Money> {
        let (negative, digits) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, bytes),
        };
        let separator = if decimal_comma { b',' } else { b'.' };
        let (int, frac) = match digits.iter().position(|&b| b == separator) {
            Some(at) => (&digits[..at], &digits[at + 1..]),
            None => (digits, &[][..]),
        };
        let has_separator = int.len() < digits.len();
        if !(1..=14).contains(&int.len()) || frac.len() > 4 || (has_separator && frac.is_empty()) {
            return None;
        }
        let mut value: i64 = 0;
        for &b in int.iter().chain(frac) {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        value *= [10_000, 1_000, 100, 10, 1][frac.len()];
        Some(Money(if negative { -value } else { value }))
    }

    /// Parses the same syntax as [`Money::parse`] but for quantities, which are also kept
    /// with four decimals.
    pub fn parse_quantity(text: &str, decimal_comma: bool) -> Result<Money, MoneyError> {
        Money::parse(text, decimal_comma)
    }
}

fn is_currency_symbol(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₹' | '₽' | '¤')
}

/// Removes an ISO 4217 code (three ASCII capitals) written before or after the number, as in
/// `EUR 12.50` or `12.50 EUR`. Other letters are left in place so `12.5x` is still an error.
fn strip_currency_code(text: &str) -> &str {
    let is_code = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase());
    if text.len() > 3 && text.is_char_boundary(3) && is_code(&text[..3]) {
        return &text[3..];
    }
    let cut = text.len().saturating_sub(3);
    if text.len() > 3 && text.is_char_boundary(cut) && is_code(&text[cut..]) {
        return &text[..cut];
    }
    text
}

fn parse_fixed(text: &str, decimal_comma: bool) -> Result<i64, MoneyError> {
    let not_a_number = || MoneyError::NotANumber(text.to_owned());
    let trimmed = strip_currency_code(text.trim_matches(|c: char| c.is_whitespace() || is_currency_symbol(c)));
    let trimmed = trimmed.trim_matches(|c: char| c.is_whitespace() || is_currency_symbol(c));
    // Accounting negatives: (12.50)
    let (trimmed, paren_negative) = match trimmed.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (inner.trim(), true),
        None => (trimmed, false),
    };
    let (decimal_sep, group_sep) = if decimal_comma { (b',', b'.') } else { (b'.', b',') };
    let bytes = trimmed.as_bytes();
    let mut i = 0;
    let mut negative = paren_negative;
    if let Some(&sign) = bytes.first()
        && (sign == b'-' || sign == b'+')
    {
        negative ^= sign == b'-';
        i = 1;
    }
    // A currency symbol may also follow the sign: -$12.50
    while i < bytes.len() && !bytes[i].is_ascii_digit() && bytes[i] != decimal_sep {
        let c = trimmed[i..].chars().next().ok_or_else(not_a_number)?;
        if c.is_whitespace() || is_currency_symbol(c) {
            i += c.len_utf8();
        } else {
            return Err(not_a_number());
        }
    }
    let mut int_part: i128 = 0;
    let mut frac: i128 = 0;
    let mut frac_digits = 0u32;
    let mut digits = 0usize;
    let mut group_len: Option<usize> = None; // digits since the last group separator
    let mut in_frac = false;
    let mut round_up = false;
    let mut exponent: i32 = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'0'..=b'9' => {
                digits += 1;
                let d = i128::from(b - b'0');
                if in_frac {
                    if frac_digits < 4 {
                        frac = frac * 10 + d;
                        frac_digits += 1;
                    } else if frac_digits == 4 {
                        round_up = d >= 5;
                        frac_digits += 1;
                    }
                } else {
                    int_part = int_part * 10 + d;
                    if int_part > i128::from(i64::MAX) {
                        return Err(MoneyError::OutOfRange(text.to_owned()));
                    }
                    if let Some(g) = group_len.as_mut() {
                        *g += 1;
                    }
                }
            }
            _ if b == group_sep && !in_frac => {
                // Thousands separator: must follow 1-3 leading digits or exactly 3 digits.
                let ok = match group_len {
                    None => (1..=3).contains(&digits),
                    Some(g) => g == 3,
                };
                if !ok || i + 1 >= bytes.len() {
                    return Err(not_a_number());
                }
                group_len = Some(0);
            }
            _ if b == decimal_sep && !in_frac => {
                if matches!(group_len, Some(g) if g != 3) {
                    return Err(not_a_number());
                }
                in_frac = true;
            }
            b'e' | b'E' if digits > 0 => {
                let exp_text = &trimmed[i + 1..];
                exponent = exp_text.parse::<i32>().map_err(|_| not_a_number())?;
                if !(-12..=12).contains(&exponent) {
                    return Err(MoneyError::OutOfRange(text.to_owned()));
                }
                break;
            }
            _ => return Err(not_a_number()),
        }
        i += 1;
    }
    if digits == 0 || matches!(group_len, Some(g) if g != 3 && !in_frac) {
        return Err(not_a_number());
    }
    while frac_digits < 4 {
        frac *= 10;
        frac_digits += 1;
    }
    let mut value = int_part * i128::from(SCALE) + frac + i128::from(round_up);
    if exponent > 0 {
        value = value
            .checked_mul(10i128.pow(exponent.unsigned_abs()))
            .ok_or_else(|| MoneyError::OutOfRange(text.to_owned()))?;
    } else if exponent < 0 {
        let div = 10i128.pow(exponent.unsigned_abs());
        value = (value + div / 2) / div;
    }
    if negative {
        value = -value;
    }
    i64::try_from(value).map_err(|_| MoneyError::OutOfRange(text.to_owned()))
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl fmt::Display for Money {
    /// Prints with two decimals (rounded half away from zero), the precision reports use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = if self.0 >= 0 { (self.0 + 50) / 100 } else { (self.0 - 50) / 100 };
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_f64())
    }
}

/// Reads what [`Serialize`] wrote (a number of currency units) back: exact for every amount
/// below 2⁵³ / 10⁴ units, where the f64 still holds each 1/10,000 step.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Money::from_f64(value).ok_or_else(|| serde::de::Error::custom(format!("{value} is not an amount of money")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_amounts_parse_like_the_general_parser() {
        for (text, comma, raw) in [
            ("19.65", false, 196_500),
            ("-4.5", false, -45_000),
            ("120", false, 1_200_000),
            ("0.0001", false, 1),
            ("-0", false, 0),
            ("12,50", true, 125_000),
            ("99999999999999.9999", false, 999_999_999_999_999_999),
        ] {
            assert_eq!(Money::parse_plain(text.as_bytes(), comma), Some(Money(raw)), "{text}");
            assert_eq!(parse_fixed(text, comma), Ok(raw), "{text}");
        }
        // Everything else is left to the general parser.
        for text in ["", "-", "5.", ".5", "+5", " 5", "5 ", "1,234.5", "1.23456", "1e3", "$5", "(5)", "--5", "5.-1"] {
            assert_eq!(Money::parse_plain(text.as_bytes(), false), None, "{text}");
        }
        assert_eq!(Money::parse_plain(b"123456789012345", false), None);
        assert_eq!(Money::parse_plain(b"12.50", true), None);
    }

    proptest::proptest! {
        #[test]
        fn the_plain_fast_path_never_disagrees_with_the_general_parser(
            text in "[-+]?[0-9]{0,16}([.,][0-9]{0,6})?[-.,0-9 e$]{0,2}",
            comma in proptest::bool::ANY,
        ) {
            if let Some(plain) = Money::parse_plain(text.as_bytes(), comma) {
                proptest::prop_assert_eq!(parse_fixed(&text, comma).map(Money), Ok(plain));
            }
        }
    }

    #[track_caller]
    fn check(text: &str, comma: bool, raw: i64) {
        assert_eq!(Money::parse(text, comma), Ok(Money(raw)), "{text}");
    }

    #[test]
    fn parses_plain_and_decorated_amounts() {
        check("12.50", false, 125_000);
        check("-3", false, -30_000);
        check("+0.0001", false, 1);
        check("1,234.56", false, 12_345_600);
        check("$ 9.99", false, 99_900);
        check("-$9.99", false, -99_900);
        check("9.99 EUR", false, 99_900);
        check("EUR 9.99", false, 99_900);
        check("€9,99", true, 99_900);
        check("(12.00)", false, -120_000);
        check("12,50", true, 125_000);
        check("1.234,5", true, 12_345_000);
        check("1e3", false, 10_000_000);
        check("2.5E-2", false, 250);
        check(".5", false, 5_000);
        check("0.00005", false, 1);
        check("0.00004", false, 0);
    }

    #[test]
    fn rejects_malformed_amounts() {
        for text in [
            "",
            "abc",
            "12.5x",
            "1,23.4",
            "12,50",
            "1..2",
            "--1",
            "1,",
            "e5",
            "12.5eur",
            "EUR",
            "€",
            "1e99",
            "99999999999999999999",
        ] {
            assert!(Money::parse(text, false).is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn displays_two_decimals_rounding_half_away_from_zero() {
        assert_eq!(Money(125_050).to_string(), "12.51");
        assert_eq!(Money(-125_050).to_string(), "-12.51");
        assert_eq!(Money(-49).to_string(), "0.00");
        assert_eq!(Money(7).to_string(), "0.00");
    }

    #[test]
    fn quantity_times_price_is_exact() {
        let price = Money::parse("3.20", false).unwrap();
        let qty = Money::parse_quantity("2.5", false).unwrap();
        assert_eq!(price.times_quantity(qty), Some(Money(80_000)));
        let third = Money::parse("0.3333", false).unwrap();
        assert_eq!(third.times_quantity(Money(30_000)), Some(Money(9_999)));
    }

    #[test]
    fn serialized_amounts_read_back_exactly() {
        for raw in [0, 1, -1, 196_500, -45_000, 123_456_789_012, 900_719_925_474_099] {
            let json = serde_json::to_string(&Money(raw)).expect("json");
            assert_eq!(serde_json::from_str::<Money>(&json).expect("money"), Money(raw), "{json}");
        }
        assert!(serde_json::from_str::<Money>("\"12\"").is_err());
        assert!(serde_json::from_str::<Money>("1e400").is_err());
    }

    #[test]
    fn from_f64_rounds_and_rejects_non_finite() {
        assert_eq!(Money::from_f64(12.345_67), Some(Money(123_457)));
        assert_eq!(Money::from_f64(f64::NAN), None);
        assert_eq!(Money::from_f64(1e300), None);
    }
}
