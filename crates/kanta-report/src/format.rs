//! Number formatting shared by the terminal table and the HTML report.

use kanta_core::money::Money;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money with thousands separators and two decimals, with the currency code if one is set:
/// `EUR 1,234.50`.
pub fn money(m: Money, currency: Option<&str>) -> String {
    let text = m.to_string();
    let (sign, body) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
    let (int, frac) = body.split_once('.').unwrap_or((body, "00"));
    let int = thousands(int.parse().unwrap_or(0));
    match currency {
        Some(c) => format!("{c} {sign}{int}.{frac}"),
        None => format!("{sign}{int}.{frac}"),
    }
}

/// A float amount of money (averages), formatted like [`money`].
pub fn money_f64(v: f64, currency: Option<&str>) -> String {
    money(Money::from_f64(v).unwrap_or(Money::ZERO), currency)
}

/// `0.4567` → `45.7%`.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// How numbers and money are written for a locale: the digit grouping, the decimal mark, and
/// where the currency code goes. Covers the common European and English conventions (CLDR's
/// `#,##0.00` patterns): `en` 1,234.50 and EUR 1,234.50; `de`/`nl`/`es`/`it`/`pt`/`da`
/// 1.234,50 EUR; `fi`/`sv`/`fr`/`nb`/`pl`/`cs`/`et` 1 234,50 EUR with a no-break space;
/// `de-CH` 1’234.50 EUR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    locale: String,
    group: char,
    decimal: char,
    currency: Option<String>,
    currency_first: bool,
}

/// A locale [`NumberFormat`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "locale `{0}` is not one kanta formats numbers for (en, de, de-CH, nl, es, it, pt, da, fi, sv, nb, fr, pl, cs, et)"
)]
pub struct UnknownLocale(pub String);

impl NumberFormat {
    /// The format of `locale` (a BCP 47 tag such as `en`, `fi-FI`, `de-CH`), with `currency`
    /// (an ISO 4217 code) on money amounts.
    pub fn new(locale: &str, currency: Option<&str>) -> Result<NumberFormat, UnknownLocale> {
        let tag = locale.trim().replace('_', "-").to_ascii_lowercase();
        let language = tag.split('-').next().unwrap_or_default();
        const NBSP: char = '\u{a0}';
        let (group, decimal, currency_first) = match (language, tag.as_str()) {
            (_, "de-ch") => ('’', '.', false),
            ("en", _) => (',', '.', true),
            ("de" | "nl" | "es" | "it" | "pt" | "da", _) => ('.', ',', false),
            ("fi" | "sv" | "nb" | "no" | "fr" | "pl" | "cs" | "et", _) => (NBSP, ',', false),
            _ => return Err(UnknownLocale(locale.to_owned())),
        };
        Ok(NumberFormat {
            locale: locale.trim().to_owned(),
            group,
            decimal,
            currency: currency.map(str::trim).filter(|c| !c.is_empty()).map(str::to_ascii_uppercase),
            currency_first,
        })
    }

    /// The locale tag as given.
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// The currency code, if one is set.
    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }

    /// A count with grouped thousands: `1,234,567`, `1 234 567`.
    pub fn integer(&self, n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 2);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(self.group);
            }
            out.push(c);
        }
        out
    }

    /// `value` with `places` decimals, grouped: `-1,234.5`, `-1.234,5`.
    pub fn decimal(&self, value: f64, places: usize) -> String {
        if !value.is_finite() {
            return "–".into();
        }
        let text = format!("{:.*}", places, value.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        // Rounding may print -0.0 for a tiny negative: no sign on a zero.
        let sign = if value < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) { "-" } else { "" };
        let int = self.integer(int.parse().unwrap_or(0));
        if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}{}{frac}", self.decimal) }
    }

    /// An amount with two decimals and the currency code: `EUR 1,234.50`, `1.234,50 EUR`.
    pub fn money(&self, m: Money) -> String {
        let text = m.to_string();
        let (sign, body) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
        let (int, frac) = body.split_once('.').unwrap_or((body, "00"));
        let number = format!("{sign}{}{}{frac}", self.integer(int.parse().unwrap_or(0)), self.decimal);
        match (&self.currency, self.currency_first) {
            (Some(c), true) => format!("{c} {number}"),
            (Some(c), false) => format!("{number}\u{a0}{c}"),
            (None, _) => number,
        }
    }

    /// A float amount of money (averages, predictions), as [`NumberFormat::money`].
    pub fn money_f64(&self, v: f64) -> String {
        match Money::from_f64(v) {
            Some(m) => self.money(m),
            None => "–".into(),
        }
    }

    /// A share as a percentage with one decimal: `45.7%`, `45,7 %`.
    pub fn percent(&self, share: f64) -> String {
        let number = self.decimal(share * 100.0, 1);
        if self.currency_first { format!("{number}%") } else { format!("{number}\u{a0}%") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(money(Money::from_raw(12_345_678_900), Some("EUR")), "EUR 1,234,567.89");
        assert_eq!(money(Money::from_raw(-5_000), None), "-0.50");
        assert_eq!(percent(0.4567), "45.7%");
    }

    /// CLDR's patterns for these locales (unicode.org/cldr, `decimalFormats` and
    /// `currencyFormats`), with the code in place of the symbol.
    #[test]
    fn locales_group_and_mark_decimals_as_cldr_writes_them() {
        let m = Money::from_raw(12_345_678_900);
        for (locale, integer, money, percent, decimal) in [
            ("en", "1,234,567", "EUR 1,234,567.89", "45.7%", "-1,234.57"),
            ("en-GB", "1,234,567", "EUR 1,234,567.89", "45.7%", "-1,234.57"),
            ("de", "1.234.567", "1.234.567,89\u{a0}EUR", "45,7\u{a0}%", "-1.234,57"),
            ("fi-FI", "1\u{a0}234\u{a0}567", "1\u{a0}234\u{a0}567,89\u{a0}EUR", "45,7\u{a0}%", "-1\u{a0}234,57"),
            ("fr_FR", "1\u{a0}234\u{a0}567", "1\u{a0}234\u{a0}567,89\u{a0}EUR", "45,7\u{a0}%", "-1\u{a0}234,57"),
            ("de-CH", "1’234’567", "1’234’567.89\u{a0}EUR", "45.7\u{a0}%", "-1’234.57"),
        ] {
            let f = NumberFormat::new(locale, Some("eur")).expect("a known locale");
            assert_eq!(f.integer(1_234_567), integer, "{locale}");
            assert_eq!(f.money(m), money, "{locale}");
            assert_eq!(f.percent(0.4567), percent, "{locale}");
            assert_eq!(f.decimal(-1_234.567, 2), decimal, "{locale}");
        }
        let plain = NumberFormat::new("en", None).expect("en");
        assert_eq!((plain.money(Money::from_raw(-5_000)), plain.integer(0)), ("-0.50".to_string(), "0".to_string()));
        assert_eq!(
            (plain.decimal(-0.001, 2), plain.decimal(f64::NAN, 2), plain.money_f64(f64::INFINITY)),
            ("0.00".into(), "–".into(), "–".into())
        );
        assert_eq!(NumberFormat::new("xx", None), Err(UnknownLocale("xx".into())));
    }
}
