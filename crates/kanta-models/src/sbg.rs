//! Shifted-beta-geometric model of contractual retention (Fader & Hardie 2007, "How to project
//! customer retention", Journal of Interactive Marketing 21(1)).
//!
//! Each customer renews at the end of every period with probability 1 − θ, θ ~ Beta(α, β)
//! across customers. With T the period in which a customer leaves (eq. 3–5):
//!
//! P(T = t) = B(α+1, β+t−1)/B(α, β),   S(t) = P(T > t) = B(α, β+t)/B(α, β),
//! retention rate r(t) = S(t)/S(t−1) = (β+t−1)/(α+β+t−1),
//!
//! fitted on a cohort's survivor counts n₀ ≥ n₁ ≥ … ≥ n_k by maximising (eq. 7)
//! LL = Σₜ₌₁ᵏ (nₜ₋₁ − nₜ) ln P(T = t) + n_k ln S(k).

use crate::data::DataError;
use crate::fit::{FitError, FitOptions, FitReport, maximize};
use crate::special::{digamma, hyp2f1, ln_beta};
use crate::{ParamError, positive};

/// An sBG model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sbg {
    /// Beta shape α of the churn probability.
    pub alpha: f64,
    /// Beta shape β of the churn probability.
    pub beta: f64,
}

const NAMES: [&str; 2] = ["alpha", "beta"];

impl Sbg {
    /// A model with checked parameters (all finite and > 0).
    pub fn new(alpha: f64, beta: f64) -> Result<Self, ParamError> {
        Ok(Sbg { alpha: positive("alpha", alpha)?, beta: positive("beta", beta)? })
    }

    /// Maximum-likelihood fit on survivor counts: `survivors[t]` customers still active at the
    /// start of period t, `survivors[0]` the cohort size.
    pub fn fit(survivors: &[f64], options: &FitOptions) -> Result<(Sbg, FitReport), FitError> {
        for (index, &n) in survivors.iter().enumerate() {
            crate::data::check(index, "survivors", n)?;
            if index > 0 && n > survivors[index - 1] {
                return Err(FitError::Degenerate {
                    model: "sbg",
                    reason: format!("survivors rise from {} to {n} in period {index}", survivors[index - 1]),
                });
            }
        }
        if survivors.len() < 2 {
            return Err(FitError::Degenerate { model: "sbg", reason: "at least two periods are needed".into() });
        }
        let n0 = survivors[0];
        if n0 <= 0.0 {
            return Err(FitError::Data(DataError::Empty));
        }
        let last = survivors[survivors.len() - 1];
        if last == n0 {
            return Err(FitError::Degenerate { model: "sbg", reason: "nobody churned".into() });
        }
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let (v, g) = log_likelihood(survivors, theta[0], theta[1]);
            grad.copy_from_slice(&g);
            v
        };
        let report = maximize("sbg", &NAMES, &ll, &[], &[1.0, 1.0], n0, survivors.len() - 1, options)?;
        Ok((Sbg { alpha: report.params[0].value, beta: report.params[1].value }, report))
    }

    /// S(t) = B(α, β+t)/B(α, β): share of the cohort still active at the start of period t.
    pub fn survival(&self, t: u32) -> f64 {
        (ln_beta(self.alpha, self.beta + f64::from(t)) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// r(t) = (β+t−1)/(α+β+t−1), the share of period-(t−1) survivors who renew into period t (t ≥ 1).
    pub fn retention_rate(&self, t: u32) -> f64 {
        let t = f64::from(t.max(1));
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }

    /// Expected number of periods a new customer stays, E[T] = E[1/θ] = (α+β−1)/(α−1); `None`
    /// when α ≤ 1, where the expectation is infinite.
    pub fn expected_lifetime(&self) -> Option<f64> {
        (self.alpha > 1.0).then(|| (self.alpha + self.beta - 1.0) / (self.alpha - 1.0))
    }

    /// Discounted expected residual lifetime of a customer who has made `renewals` renewals
    /// (is in period `renewals`), counted in payments of 1 per future period, first one
    /// undiscounted (Fader & Hardie 2010, "Customer-base valuation in a contractual setting",
    /// Marketing Science 29(1), eq. 6):
    ///
    /// DERL(d | n−1 renewals) = B(α, β+n)/B(α, β+n−1) · ₂F₁(1, β+n; α+β+n; 1/(1+d)).
    ///
    /// `None` when d ≤ 0 (the sum diverges).
    pub fn derl(&self, discount: f64, renewals: u32) -> Option<f64> {
        if discount.is_nan() || discount <= 0.0 {
            return None;
        }
        let n = f64::from(renewals) + 1.0;
        let ratio = (ln_beta(self.alpha, self.beta + n) - ln_beta(self.alpha, self.beta + n - 1.0)).exp();
        hyp2f1(1.0, self.beta + n, self.alpha + self.beta + n, 1.0 / (1.0 + discount)).map(|h| ratio * h)
    }
}

/// Log-likelihood and its gradient with respect to (ln α, ln β).
fn log_likelihood(survivors: &[f64], theta_a: f64, theta_b: f64) -> (f64, [f64; 2]) {
    let (a, b) = (theta_a.exp(), theta_b.exp());
    let lb = ln_beta(a, b);
    let (dg_a, dg_b, dg_ab) = (digamma(a), digamma(b), digamma(a + b));
    let mut ll = 0.0;
    let (mut da, mut db) = (0.0, 0.0);
    for t in 1..survivors.len() {
        let lost = survivors[t - 1] - survivors[t];
        if lost > 0.0 {
            let tf = t as f64;
            ll += lost * (ln_beta(a + 1.0, b + tf - 1.0) - lb);
            let d_all = digamma(a + b + tf);
            da += lost * (digamma(a + 1.0) - d_all - dg_a + dg_ab);
            db += lost * (digamma(b + tf - 1.0) - d_all - dg_b + dg_ab);
        }
    }
    let k = survivors.len() - 1;
    let last = survivors[k];
    if last > 0.0 {
        let kf = k as f64;
        ll += last * (ln_beta(a, b + kf) - lb);
        let d_all = digamma(a + b + kf);
        da += last * (dg_ab - d_all);
        db += last * (digamma(b + kf) - d_all - dg_b + dg_ab);
    }
    (ll, [a * da, b * db])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::assert_gradient;

    const HIGH_END: [f64; 8] = [1000.0, 869.0, 743.0, 653.0, 593.0, 551.0, 517.0, 491.0];

    #[test]
    fn gradient_matches_finite_differences() {
        for params in [[0.3f64, 8.0], [2.0, 0.5]] {
            let ll = |theta: &[f64], grad: &mut [f64]| {
                let (v, g) = log_likelihood(&HIGH_END, theta[0], theta[1]);
                grad.copy_from_slice(&g);
                v
            };
            assert_gradient(&ll, &params.map(f64::ln), 1e-6);
        }
    }

    #[test]
    fn survival_and_retention_agree() {
        let m = Sbg::new(0.668, 3.806).unwrap();
        for t in 1..20 {
            let r = m.survival(t) / m.survival(t - 1);
            assert!((r - m.retention_rate(t)).abs() < 1e-13);
        }
        assert_eq!(m.survival(0), 1.0);
    }

    #[test]
    fn derl_closed_form_equals_the_discounted_sum() {
        let m = Sbg::new(0.704, 1.182).unwrap();
        for renewals in [0u32, 1, 4] {
            let d: f64 = 0.1;
            let n = renewals + 1;
            let s_prev = m.survival(n - 1);
            let direct: f64 = (n..n + 5000).map(|t| m.survival(t) / s_prev / (1.0 + d).powi((t - n) as i32)).sum();
            let closed = m.derl(d, renewals).unwrap();
            assert!((closed - direct).abs() < 1e-10 * direct, "{renewals}: {closed} vs {direct}");
        }
        assert_eq!(m.derl(0.0, 0), None);
        // E[T] by summing S(t) for α > 1.
        let m = Sbg::new(2.5, 3.0).unwrap();
        let sum: f64 = (0..200_000).map(|t| m.survival(t)).sum();
        assert!((sum - m.expected_lifetime().unwrap()).abs() < 1e-4, "{sum}");
    }
}
