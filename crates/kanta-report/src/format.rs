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
}
