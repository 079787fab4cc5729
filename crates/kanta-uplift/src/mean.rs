//! The difference in mean revenue per customer between two arms, with Welch's t interval.
//!
//! Source: B. L. Welch (1947), "The generalization of 'Student's' problem when several different
//! population variances are involved", *Biometrika* 34, 28–35; the degrees of freedom are
//! Satterthwaite's (1946, *Biometrics Bulletin* 2, 110–114). This is R's
//! `t.test(x, y, var.equal = FALSE)` and scipy's `ttest_ind(x, y, equal_var=False)`.
//! Revenue per customer is heavy-tailed; see [`crate::bootstrap`] for the interval that does not
//! lean on the t approximation.

use serde::Serialize;

use crate::{Interval, Level, UpliftError};

/// The count, mean and unbiased variance of one arm's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of customers.
    pub n: usize,
    /// Mean value per customer.
    pub mean: f64,
    /// Sample variance with denominator n − 1 (0 for a single customer).
    pub variance: f64,
}

impl Summary {
    /// Summarises `values` (two passes: the mean, then the sum of squared deviations, which
    /// loses no precision to cancellation the way Σx² − n·x̄² does). `arm` names the arm in errors.
    pub fn of(values: &[f64], arm: &'static str) -> Result<Summary, UpliftError> {
        if values.is_empty() {
            return Err(UpliftError::EmptyArm { arm });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(UpliftError::NotFinite { arm });
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let variance = if n > 1 { squares / (n - 1) as f64 } else { 0.0 };
        Ok(Summary { n, mean, variance })
    }

    /// The squared standard error of the mean, s²/n.
    pub fn variance_of_mean(&self) -> f64 {
        self.variance / self.n as f64
    }
}

/// A difference in means with Welch's interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanDifference {
    /// The first arm's mean (treatment in the report).
    pub mean_1: f64,
    /// The second arm's mean (control in the report).
    pub mean_2: f64,
    /// mean₁ − mean₂.
    pub difference: f64,
    /// √(s₁²/n₁ + s₂²/n₂).
    pub standard_error: f64,
    /// Welch–Satterthwaite degrees of freedom (n₁ + n₂ − 2 when both variances are 0).
    pub df: f64,
    /// difference ± t(1 − α/2; df) · standard_error.
    pub interval: Interval,
}

/// Welch's interval for `first − second` in mean value.
///
/// ```text
/// d  = x̄₁ − x̄₂,   v₁ = s₁²/n₁,   v₂ = s₂²/n₂,   se = √(v₁ + v₂)
/// df = (v₁ + v₂)² / (v₁²/(n₁ − 1) + v₂²/(n₂ − 1))          (Welch–Satterthwaite)
/// d ± t(1 − α/2; df) · se
/// ```
///
/// Each arm needs two customers (a variance needs them).
pub fn welch(first: &[f64], second: &[f64], level: Level) -> Result<MeanDifference, UpliftError> {
    welch_from_summaries(Summary::of(first, "treatment")?, Summary::of(second, "control")?, level)
}

/// [`welch`] from the arms' summaries, for callers that keep running sums.
pub fn welch_from_summaries(first: Summary, second: Summary, level: Level) -> Result<MeanDifference, UpliftError> {
    for (summary, arm) in [(first, "treatment"), (second, "control")] {
        if summary.n < 2 {
            return Err(UpliftError::TooFewCustomers { arm, n: summary.n });
        }
    }
    let (v1, v2) = (first.variance_of_mean(), second.variance_of_mean());
    let se2 = v1 + v2;
    let df = if se2 > 0.0 {
        se2 * se2 / (v1 * v1 / (first.n - 1) as f64 + v2 * v2 / (second.n - 1) as f64)
    } else {
        // Both arms constant: the interval is the point and df only needs to be finite.
        (first.n + second.n - 2) as f64
    };
    let standard_error = se2.sqrt();
    let difference = first.mean - second.mean;
    let half = if standard_error > 0.0 { level.t(df) * standard_error } else { 0.0 };
    Ok(MeanDifference {
        mean_1: first.mean,
        mean_2: second.mean,
        difference,
        standard_error,
        df,
        interval: Interval::around(difference, half),
    })
}
