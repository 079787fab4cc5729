//! The difference between two conversion rates, p₁ − p₂, with two 95 % intervals.
//!
//! The Wald interval is the textbook one and fine for large samples with rates away from 0 and
//! 1; Newcombe's hybrid score interval stays honest for small or extreme counts (a journey's
//! first days, a goal almost nobody reaches), where Wald collapses to a point or overshoots.
//!
//! Source: R. G. Newcombe (1998), "Interval estimation for the difference between independent
//! proportions: comparison of eleven methods", *Statistics in Medicine* 17, 873–890; Wald is
//! method 1, the hybrid score interval method 10 (built from Wilson's 1927 score intervals for
//! each proportion, the paper's method 3 for a single proportion).

use serde::Serialize;

use crate::{Interval, Level, UpliftError};

/// A count of conversions out of a count of customers, checked: successes ≤ trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Proportion {
    successes: u64,
    trials: u64,
}

impl Proportion {
    /// `successes` out of `trials`; refused when there are more successes than trials.
    /// Zero trials are allowed here (an arm may be empty); the estimators refuse them.
    pub fn new(successes: u64, trials: u64) -> Result<Proportion, UpliftError> {
        if successes > trials {
            return Err(UpliftError::MoreSuccessesThanTrials { successes, trials });
        }
        Ok(Proportion { successes, trials })
    }

    /// The conversions counted.
    pub fn successes(self) -> u64 {
        self.successes
    }

    /// The customers counted.
    pub fn trials(self) -> u64 {
        self.trials
    }

    /// successes / trials (NaN for zero trials).
    pub fn rate(self) -> f64 {
        self.successes as f64 / self.trials as f64
    }

    /// Wilson's score interval for the proportion (Newcombe 1998, method 3):
    ///
    /// ```text
    /// (2np̂ + z² ± z·√(z² + 4np̂(1 − p̂))) / (2(n + z²))
    /// ```
    ///
    /// Unlike p̂ ± z√(p̂(1 − p̂)/n) it never leaves [0, 1] and is not degenerate at 0 or n
    /// successes. Returns `None` for zero trials.
    pub fn wilson(self, level: Level) -> Option<Interval> {
        if self.trials == 0 {
            return None;
        }
        let n = self.trials as f64;
        let p = self.rate();
        let z = level.z();
        let z2 = z * z;
        let centre = 2.0 * n * p + z2;
        let spread = z * (z2 + 4.0 * n * p * (1.0 - p)).sqrt();
        let denominator = 2.0 * (n + z2);
        // The closed form can land a hair outside [0, 1] by rounding at 0 or n successes.
        Some(Interval {
            lower: ((centre - spread) / denominator).max(0.0),
            upper: ((centre + spread) / denominator).min(1.0),
        })
    }
}

/// The difference in conversion rate between two arms, with both intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateDifference {
    /// The first arm's rate p₁ (treatment in the report).
    pub rate_1: f64,
    /// The second arm's rate p₂ (control in the report).
    pub rate_2: f64,
    /// p₁ − p₂.
    pub difference: f64,
    /// Wald's interval (Newcombe 1998, method 1):
    /// `p₁ − p₂ ± z·√(p₁(1 − p₁)/n₁ + p₂(1 − p₂)/n₂)`.
    pub wald: Interval,
    /// Newcombe's hybrid score interval (Newcombe 1998, method 10), from the Wilson intervals
    /// [l₁, u₁] and [l₂, u₂] of each rate:
    ///
    /// ```text
    /// lower = p₁ − p₂ − √((p₁ − l₁)² + (u₂ − p₂)²)
    /// upper = p₁ − p₂ + √((u₁ − p₁)² + (p₂ − l₂)²)
    /// ```
    pub newcombe: Interval,
}

/// The difference `first − second` in conversion rate with its Wald and Newcombe intervals at
/// `level`. Both arms need at least one customer.
pub fn difference(first: Proportion, second: Proportion, level: Level) -> Result<RateDifference, UpliftError> {
    let (Some(w1), Some(w2)) = (first.wilson(level), second.wilson(level)) else {
        let arm = if first.trials == 0 { "treatment" } else { "control" };
        return Err(UpliftError::EmptyArm { arm });
    };
    let (p1, p2) = (first.rate(), second.rate());
    let (n1, n2) = (first.trials as f64, second.trials as f64);
    let d = p1 - p2;
    let wald = Interval::around(d, level.z() * (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt());
    let newcombe = Interval {
        lower: d - ((p1 - w1.lower).powi(2) + (w2.upper - p2).powi(2)).sqrt(),
        upper: d + ((w1.upper - p1).powi(2) + (p2 - w2.lower).powi(2)).sqrt(),
    };
    Ok(RateDifference { rate_1: p1, rate_2: p2, difference: d, wald, newcombe })
}
