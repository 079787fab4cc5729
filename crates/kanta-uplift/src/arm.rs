//! Holdout arms: which customers a journey leaves alone, decided once and for all by a hash.
//!
//! At the moment a customer becomes eligible, a stable hash of (customer, journey) puts them in
//! control or treatment. Because the arm is a function of the two names and the share only, a
//! customer stays in the same arm across journey versions and re-entries, on every machine and
//! every Rust version: the hash is SHA-256 (FIPS 180-4), never `std`'s `DefaultHasher`, whose
//! output is allowed to change between releases.
//!
//! ```text
//! digest = SHA-256(domain ‖ len(customer) ‖ customer ‖ len(journey) ‖ journey)   (lengths: u64 BE)
//! h      = first 8 bytes of digest as a big-endian u64, uniform on [0, 2⁶⁴)
//! u      = ⌊h · 10⁶ / 2⁶⁴⌋, uniform on {0, …, 999 999} (bias below 10⁻¹³)
//! arm    = Control if u < share in parts per million, else Treatment
//! ```
//!
//! The length prefixes make the encoding injective ("ab" + "c" and "a" + "bc" hash apart).
//! The global holdout hashes the customer alone under a different domain prefix, so whether a
//! customer is in the global holdout is independent of their arm in any journey.

use std::fmt;
use std::str::FromStr;

use kanta_domain::contact::CustomerId;
use kanta_domain::stable::stable_u64;
use serde::Serialize;

/// Domain separation of the per-journey arm; changing it reshuffles every running holdout.
const JOURNEY_DOMAIN: &str = "kanta/holdout/journey/v1";
/// Domain separation of the global holdout; different from [`JOURNEY_DOMAIN`] so the two draws
/// are independent.
const GLOBAL_DOMAIN: &str = "kanta/holdout/global/v1";

/// Parts per million: the resolution of a holdout share (four decimals of a percent).
const MILLION: u32 = 1_000_000;

/// The arm a customer is in for one journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Recorded as entered and followed for the goal, but sent no step.
    Control,
    /// Enters the journey and gets its steps.
    Treatment,
}

/// The share of eligible customers held out as control, such as `10%` (a journey's `holdout`)
/// or `5%` (the settings' `[guardrails] global_holdout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Holdout {
    /// The share in parts per million, 0 ..= 1 000 000.
    ppm: u32,
}

/// Why a holdout share was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldoutError {
    /// The text does not end in a percent sign.
    #[error("holdout `{0}` must be a percentage such as `10%`")]
    NotAPercentage(String),
    /// The number before the percent sign is not a plain decimal.
    #[error("holdout `{0}` is not a number followed by `%` (such as `10%` or `2.5%`)")]
    NotANumber(String),
    /// More than 100 %.
    #[error("holdout `{0}` is above 100%")]
    AboveHundred(String),
    /// More than four decimals: the share is kept in parts per million.
    #[error("holdout `{0}` has more than 4 decimals")]
    TooPrecise(String),
}

impl Holdout {
    /// No holdout: every customer is treated.
    pub const NONE: Holdout = Holdout { ppm: 0 };

    /// Parses a share written as a percentage: `10%`, `2.5%`, `0%`, `100%`, spaces around the
    /// number allowed (`10 %`). Plain decimals only (no sign, no exponent), at most four decimals.
    pub fn parse(text: &str) -> Result<Holdout, HoldoutError> {
        let trimmed = text.trim();
        let Some(number) = trimmed.strip_suffix('%') else {
            return Err(HoldoutError::NotAPercentage(text.to_string()));
        };
        let number = number.trim_end();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (number.contains('.') && fraction.is_empty()) {
            return Err(HoldoutError::NotANumber(text.to_string()));
        }
        if fraction.len() > 4 {
            return Err(HoldoutError::TooPrecise(text.to_string()));
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 3 {
            return Err(HoldoutError::AboveHundred(text.to_string()));
        }
        // At most three digits of whole percent and four of fraction: no overflow below.
        let whole: u32 =
            if whole.is_empty() { 0 } else { whole.parse().map_err(|_| HoldoutError::NotANumber(text.to_string()))? };
        let mut fraction_ppm = 0;
        for (i, b) in fraction.bytes().enumerate() {
            fraction_ppm += u32::from(b - b'0') * 10u32.pow(3 - i as u32);
        }
        let ppm = whole * 10_000 + fraction_ppm;
        if ppm > MILLION {
            return Err(HoldoutError::AboveHundred(text.to_string()));
        }
        Ok(Holdout { ppm })
    }

    /// The share as a fraction (0.10 for `10%`).
    pub fn share(self) -> f64 {
        f64::from(self.ppm) / f64::from(MILLION)
    }

    /// The share in parts per million (100 000 for `10%`).
    pub fn parts_per_million(self) -> u32 {
        self.ppm
    }
}

impl FromStr for Holdout {
    type Err = HoldoutError;
    fn from_str(text: &str) -> Result<Holdout, HoldoutError> {
        Holdout::parse(text)
    }
}

impl fmt::Display for Holdout {
    /// Prints the shortest percentage that parses back to the same share (`10%`, `2.5%`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.ppm / 10_000;
        let fraction = self.ppm % 10_000;
        if fraction == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{fraction:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// The arm of `customer` in the journey named `journey`, with `holdout` of eligible customers
/// held out as control. The same three arguments always give the same arm (module docs).
pub fn assign(customer: &CustomerId, journey: &str, holdout: Holdout) -> Arm {
    arm_of(bucket(JOURNEY_DOMAIN, &[customer.as_str().as_bytes(), journey.as_bytes()]), holdout)
}

/// Whether `customer` is in the global holdout that keeps `holdout` of customers out of every
/// marketing journey: [`Arm::Control`] if held out. Keyed on the customer only, under its own
/// domain prefix, so it is independent of the customer's arm in any journey.
pub fn assign_global(customer: &CustomerId, holdout: Holdout) -> Arm {
    arm_of(bucket(GLOBAL_DOMAIN, &[customer.as_str().as_bytes()]), holdout)
}

fn arm_of(bucket: u32, holdout: Holdout) -> Arm {
    if bucket < holdout.ppm { Arm::Control } else { Arm::Treatment }
}

/// A uniform bucket in 0 .. 10⁶ from the length-prefixed SHA-256 of `parts` (module docs).
fn bucket(domain: &str, parts: &[&[u8]]) -> u32 {
    let h = stable_u64(domain, parts);
    // ⌊h · 10⁶ / 2⁶⁴⌋ < 10⁶, so the cast cannot truncate.
    ((u128::from(h) * u128::from(MILLION)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> CustomerId {
        CustomerId::parse(text).unwrap()
    }

    #[test]
    fn holdout_parses_percentages_and_prints_them_back() {
        for (text, ppm, printed) in [
            ("10%", 100_000, "10%"),
            ("2.5%", 25_000, "2.5%"),
            (" 5 % ", 50_000, "5%"),
            ("0%", 0, "0%"),
            ("100%", 1_000_000, "100%"),
            ("100.0000%", 1_000_000, "100%"),
            ("0.0001%", 1, "0.0001%"),
            ("007.50%", 75_000, "7.5%"),
        ] {
            let holdout = Holdout::parse(text).unwrap();
            assert_eq!(holdout.parts_per_million(), ppm, "{text}");
            assert_eq!(holdout.to_string(), printed, "{text}");
            assert_eq!(Holdout::parse(printed), Ok(holdout));
        }
        assert!((Holdout::parse("12.5%").unwrap().share() - 0.125).abs() < 1e-15);
    }

    #[test]
    fn holdout_refuses_what_is_not_a_share_with_a_reason() {
        let refused = |text: &str| Holdout::parse(text).unwrap_err();
        assert_eq!(refused("10"), HoldoutError::NotAPercentage("10".into()));
        assert_eq!(refused("0.1"), HoldoutError::NotAPercentage("0.1".into()));
        for text in ["%", "-5%", "+5%", "1e1%", "ten%", "5.%", ".5%", "5,5%", "1 0%"] {
            assert_eq!(refused(text), HoldoutError::NotANumber(text.into()), "{text}");
        }
        for text in ["100.0001%", "101%", "1000%", "99999999999999999999%"] {
            assert_eq!(refused(text), HoldoutError::AboveHundred(text.into()), "{text}");
        }
        assert_eq!(refused("1.23456%"), HoldoutError::TooPrecise("1.23456%".into()));
        assert_eq!(refused("10").to_string(), "holdout `10` must be a percentage such as `10%`");
    }

    #[test]
    fn arms_are_pinned_so_a_change_of_hash_breaks_this_test() {
        // Computed independently with Python's hashlib (every running holdout depends on these
        // staying put: a customer's arm must never change):
        //   h = hashlib.sha256(domain); for p in parts: h.update(struct.pack('>Q', len(p))); h.update(p)
        //   (int.from_bytes(h.digest()[:8], 'big') * 10**6) >> 64
        let ten = Holdout::parse("10%").unwrap();
        let half = Holdout::parse("50%").unwrap();
        let buckets: Vec<u32> = ["c-1", "c-2", "alice@example.com", "42"]
            .iter()
            .map(|c| bucket(JOURNEY_DOMAIN, &[c.as_bytes(), b"welcome".as_slice()]))
            .collect();
        assert_eq!(buckets, PINNED_BUCKETS);
        let global: Vec<u32> = ["c-1", "c-2"].iter().map(|c| bucket(GLOBAL_DOMAIN, &[c.as_bytes()])).collect();
        assert_eq!(global, PINNED_GLOBAL);
        for (customer, bucket) in ["c-1", "c-2", "alice@example.com", "42"].iter().zip(PINNED_BUCKETS) {
            let expected_ten = if bucket < 100_000 { Arm::Control } else { Arm::Treatment };
            let expected_half = if bucket < 500_000 { Arm::Control } else { Arm::Treatment };
            assert_eq!(assign(&id(customer), "welcome", ten), expected_ten);
            assert_eq!(assign(&id(customer), "welcome", half), expected_half);
        }
    }

    const PINNED_BUCKETS: [u32; 4] = [42_678, 873_579, 322_272, 705_023];
    const PINNED_GLOBAL: [u32; 2] = [615_908, 281_417];

    #[test]
    fn the_length_prefix_keeps_concatenations_apart() {
        let a = bucket(JOURNEY_DOMAIN, &[b"ab", b"c"]);
        let b = bucket(JOURNEY_DOMAIN, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn no_holdout_treats_everyone_and_a_full_holdout_treats_no_one() {
        for n in 0..1000 {
            let customer = id(&format!("c{n}"));
            assert_eq!(assign(&customer, "j", Holdout::NONE), Arm::Treatment);
            assert_eq!(assign(&customer, "j", Holdout::parse("100%").unwrap()), Arm::Control);
        }
    }
}
