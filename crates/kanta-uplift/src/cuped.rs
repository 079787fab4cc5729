//! CUPED: less noise in the revenue comparison from each customer's revenue before entry.
//!
//! Source: A. Deng, Y. Xu, R. Kohavi & T. Walker (2013), "Improving the sensitivity of online
//! controlled experiments by utilizing pre-experiment data", *WSDM '13*, 123–132, §3.2.
//!
//! ```text
//! θ  = cov(X, Y) / var(X)                  on both arms pooled (X: revenue in the 365 days
//!                                          before entry, Y: revenue after entry)
//! Ŷᵢ = Yᵢ − θ·(Xᵢ − X̄)                     X̄ the pooled mean of X
//! ```
//!
//! The difference of the arms' means of Ŷ estimates the same effect as that of Y: X is measured
//! before assignment, so E[X̄_arm − X̄] = 0 under randomisation and the adjustment adds no bias
//! (θ is estimated on the pooled sample, as the paper does, which shifts the estimate only by
//! terms of order 1/n). Its variance is smaller by the factor 1 − ρ², ρ the correlation of X and Y.
//! The intervals are then Welch's and the bootstrap's on Ŷ, with θ held fixed (its own sampling
//! noise is of order 1/n and ignored, as in the paper).

use serde::Serialize;

use crate::mean::{self, MeanDifference, Summary};
use crate::{Level, UpliftError};

/// One arm's paired values: revenue before entry (the covariate) and after (the outcome).
#[derive(Debug, Clone, Copy)]
pub struct Paired<'a> {
    /// Revenue in the 365 days before entry, one per customer.
    pub pre: &'a [f64],
    /// Revenue after entry, in the same order.
    pub post: &'a [f64],
}

impl Paired<'_> {
    fn check(&self, arm: &'static str) -> Result<(), UpliftError> {
        if self.pre.len() != self.post.len() {
            return Err(UpliftError::UnpairedCovariate { arm, pre: self.pre.len(), post: self.post.len() });
        }
        if self.pre.len() < 2 {
            return Err(UpliftError::TooFewCustomers { arm, n: self.pre.len() });
        }
        if self.pre.iter().chain(self.post).any(|v| !v.is_finite()) {
            return Err(UpliftError::NotFinite { arm });
        }
        Ok(())
    }
}

/// The CUPED-adjusted outcomes of both arms, with the adjustment that produced them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cuped {
    /// θ = cov(X, Y)/var(X) on the pooled sample (0 when X does not vary).
    pub theta: f64,
    /// X̄, the pooled mean of the covariate.
    pub pre_mean: f64,
    /// The share of the variance of the difference in means that the adjustment removed:
    /// 1 − (var(Ŷ₁)/n₁ + var(Ŷ₂)/n₂) / (var(Y₁)/n₁ + var(Y₂)/n₂). The report shows it; it is
    /// close to ρ² and can be slightly negative when X predicts nothing.
    pub variance_reduction: f64,
    /// Ŷ of the first arm (treatment), in input order.
    pub adjusted_1: Vec<f64>,
    /// Ŷ of the second arm (control), in input order.
    pub adjusted_2: Vec<f64>,
}

impl Cuped {
    /// Adjusts both arms (module docs for the formula).
    pub fn adjust(first: Paired<'_>, second: Paired<'_>) -> Result<Cuped, UpliftError> {
        first.check("treatment")?;
        second.check("control")?;
        let n = (first.pre.len() + second.pre.len()) as f64;
        let pairs = || first.pre.iter().zip(first.post).chain(second.pre.iter().zip(second.post));
        let (sum_x, sum_y) = pairs().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
        let (mean_x, mean_y) = (sum_x / n, sum_y / n);
        let (sxx, sxy) = pairs().fold((0.0, 0.0), |(sxx, sxy), (x, y)| {
            let dx = x - mean_x;
            (sxx + dx * dx, sxy + dx * (y - mean_y))
        });
        let theta = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let adjust = |arm: Paired<'_>| -> Vec<f64> {
            arm.pre.iter().zip(arm.post).map(|(x, y)| y - theta * (x - mean_x)).collect()
        };
        let (adjusted_1, adjusted_2) = (adjust(first), adjust(second));
        let variance_of_difference = |a: &[f64], b: &[f64]| -> Result<f64, UpliftError> {
            Ok(Summary::of(a, "treatment")?.variance_of_mean() + Summary::of(b, "control")?.variance_of_mean())
        };
        let before = variance_of_difference(first.post, second.post)?;
        let after = variance_of_difference(&adjusted_1, &adjusted_2)?;
        let variance_reduction = if before > 0.0 { 1.0 - after / before } else { 0.0 };
        Ok(Cuped { theta, pre_mean: mean_x, variance_reduction, adjusted_1, adjusted_2 })
    }

    /// Welch's interval on the adjusted outcomes.
    pub fn welch(&self, level: Level) -> Result<MeanDifference, UpliftError> {
        mean::welch(&self.adjusted_1, &self.adjusted_2, level)
    }

    /// The value Ŷ of a customer with no revenue before entry and none after: θ·X̄. Most
    /// customers have it, so it is the bulk value of [`crate::bootstrap::Sample::new`].
    pub fn bulk_value(&self) -> f64 {
        0.0 - self.theta * (0.0 - self.pre_mean)
    }

    /// The bootstrap samples of the adjusted outcomes (first arm, second arm).
    pub fn bootstrap_samples(&self) -> Result<(crate::bootstrap::Sample, crate::bootstrap::Sample), UpliftError> {
        let bulk = self.bulk_value();
        Ok((
            crate::bootstrap::Sample::new(&self.adjusted_1, bulk, "treatment")?,
            crate::bootstrap::Sample::new(&self.adjusted_2, bulk, "control")?,
        ))
    }
}
