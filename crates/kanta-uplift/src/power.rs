//! How small an effect the current arm sizes can detect, and when the report may give a verdict.
//!
//! The minimum detectable effect (MDE) at power 1 − β and two-sided level α is the true
//! difference that an interval of the current width would exclude zero for with probability
//! 1 − β (the normal approximation; Chow, Shao & Wang 2008, *Sample Size Calculations in Clinical
//! Research*, §4.2, solved for the difference instead of n):
//!
//! ```text
//! MDE = (z(1 − α/2) + z(1 − β)) · SE,     z(0.975) + z(0.8) = 1.95996 + 0.84162 = 2.80158
//! proportions: SE = √(p̄(1 − p̄)(1/n₁ + 1/n₂)),  p̄ the pooled conversion rate (the null's SE)
//! means:       SE = √(s₁²/n₁ + s₂²/n₂)
//! ```

use serde::Serialize;

use crate::mean::Summary;
use crate::proportion::Proportion;
use crate::{Interval, Level, UpliftError};

/// The report's power: 80 %.
pub const POWER: f64 = 0.8;

/// The smallest difference in conversion rate the arms can detect at `level` and 80 % power.
pub fn rate_mde(first: Proportion, second: Proportion, level: Level) -> Result<f64, UpliftError> {
    for (p, arm) in [(first, "treatment"), (second, "control")] {
        if p.trials() == 0 {
            return Err(UpliftError::EmptyArm { arm });
        }
    }
    let (n1, n2) = (first.trials() as f64, second.trials() as f64);
    let pooled = (first.successes() + second.successes()) as f64 / (n1 + n2);
    Ok(multiplier(level) * (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt())
}

/// The smallest difference in mean value (revenue per customer) the arms can detect at `level`
/// and 80 % power.
pub fn mean_mde(first: Summary, second: Summary, level: Level) -> f64 {
    multiplier(level) * (first.variance_of_mean() + second.variance_of_mean()).sqrt()
}

fn multiplier(level: Level) -> f64 {
    level.z() + crate::quantile::normal(POWER)
}

/// When the report may state a verdict; the defaults are the report's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// Fewer conversions than this in either arm: too early, whatever the interval says (the
    /// normal approximations behind the intervals and the MDE need some events; 30 is the usual
    /// rule of thumb for them).
    pub min_conversions: u64,
    /// A null result counts only when the MDE is at most this fraction of the control's value
    /// (0.2: the data could have seen a 20 % relative uplift); otherwise it is too early to tell.
    pub max_relative_mde: f64,
}

impl Default for Rule {
    fn default() -> Rule {
        Rule { min_conversions: 30, max_relative_mde: 0.2 }
    }
}

/// What the report says about one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not enough data for any statement; the report shows the MDE instead.
    TooEarly,
    /// The interval lies above zero: the journey raises the outcome.
    Uplift,
    /// The interval lies below zero: the journey lowers the outcome.
    Harm,
    /// The interval contains zero although the arms could have detected an effect of
    /// `max_relative_mde` of the baseline: any effect is small.
    NoDetectableEffect,
}

/// The verdict on a difference (treatment − control) with its `interval`, the `mde` of the
/// current sizes, the control arm's `baseline` value (rate or revenue per customer) and the
/// `conversions` of (treatment, control).
///
/// ```text
/// min(conversions) < min_conversions          → TooEarly
/// interval above 0                             → Uplift
/// interval below 0                             → Harm
/// mde ≤ max_relative_mde · |baseline|          → NoDetectableEffect
/// otherwise                                    → TooEarly
/// ```
pub fn verdict(interval: Interval, mde: f64, baseline: f64, conversions: (u64, u64), rule: Rule) -> Verdict {
    // A NaN bound (an interval that could not be computed) is no ground for a verdict.
    let computed = interval.lower.is_finite() && interval.upper.is_finite() && interval.lower <= interval.upper;
    if conversions.0.min(conversions.1) < rule.min_conversions || !computed {
        Verdict::TooEarly
    } else if interval.lower > 0.0 {
        Verdict::Uplift
    } else if interval.upper < 0.0 {
        Verdict::Harm
    } else if mde <= rule.max_relative_mde * baseline.abs() {
        Verdict::NoDetectableEffect
    } else {
        Verdict::TooEarly
    }
}
