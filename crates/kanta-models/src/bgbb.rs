//! BG/BB (Fader, Hardie & Shang 2010, "Customer-base analysis in a discrete-time
//! noncontractual setting", Marketing Science 29(6)).
//!
//! In each of n transaction opportunities an alive customer buys with probability
//! p ~ Beta(α, β) and, at the start of each later opportunity, drops out with probability
//! θ ~ Beta(γ, δ). The likelihood of x transactions, the last in period t_x, is (eq. 5)
//!
//! L = B(α+x, β+n−x)/B(α, β) · B(γ, δ+n)/B(γ, δ)
//!   + Σᵢ₌₀^(n−t_x−1) B(α+x, β+t_x−x+i)/B(α, β) · B(γ+1, δ+t_x+i)/B(γ, δ).

use crate::data::{DataError, check};
use crate::fit::{FitError, FitOptions, FitReport, maximize};
use crate::special::{digamma, ln_beta};
use crate::{ParamError, positive};

/// One customer's discrete history: `x` transactions in `n` opportunities, the last in period
/// `t_x` (0 when x = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiscreteHistory {
    /// Transactions (periods with a purchase).
    pub x: u32,
    /// Period of the last transaction.
    pub t_x: u32,
    /// Transaction opportunities.
    pub n: u32,
}

impl DiscreteHistory {
    /// A validated history: x ≤ t_x ≤ n, and t_x = 0 exactly when x = 0.
    pub fn parse(index: usize, x: u32, t_x: u32, n: u32) -> Result<Self, DataError> {
        let bad = |field, value: u32| Err(DataError::Invalid { index, field, value: f64::from(value) });
        if t_x > n {
            return Err(DataError::RecencyAfterT { index, t_x: f64::from(t_x), t: f64::from(n) });
        }
        if x == 0 && t_x != 0 {
            return Err(DataError::RecencyWithoutRepeat { index, t_x: f64::from(t_x) });
        }
        if x > t_x {
            return bad("frequency", x);
        }
        Ok(DiscreteHistory { x, t_x, n })
    }
}

/// Distinct discrete histories with weights.
#[derive(Debug, Clone)]
pub struct DiscreteHistories {
    items: Vec<(DiscreteHistory, f64)>,
    total: f64,
}

impl DiscreteHistories {
    /// Merges identical histories; weights must be finite and ≥ 0.
    pub fn new(items: impl IntoIterator<Item = (DiscreteHistory, f64)>) -> Result<Self, DataError> {
        let mut all = Vec::new();
        for (index, (h, w)) in items.into_iter().enumerate() {
            check(index, "weight", w)?;
            if w > 0.0 {
                all.push((h, w));
            }
        }
        all.sort_unstable_by_key(|(h, _)| *h);
        let mut merged: Vec<(DiscreteHistory, f64)> = Vec::new();
        for (h, w) in all {
            match merged.last_mut() {
                Some((last, sum)) if *last == h => *sum += w,
                _ => merged.push((h, w)),
            }
        }
        if merged.is_empty() {
            return Err(DataError::Empty);
        }
        let total = merged.iter().map(|(_, w)| w).sum();
        Ok(DiscreteHistories { items: merged, total })
    }

    /// Number of customers.
    pub fn customers(&self) -> f64 {
        self.total
    }
}

/// A BG/BB model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgBb {
    /// Beta shape α of the purchase probability.
    pub alpha: f64,
    /// Beta shape β of the purchase probability.
    pub beta: f64,
    /// Beta shape γ of the drop-out probability.
    pub gamma: f64,
    /// Beta shape δ of the drop-out probability.
    pub delta: f64,
}

const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// ln B(a+u, b+v) − ln B(a, b) and its derivatives in a and b.
fn beta_ratio(a: f64, b: f64, u: f64, v: f64) -> (f64, f64, f64) {
    let d_ab = digamma(a + b);
    let d_all = digamma(a + b + u + v);
    (
        ln_beta(a + u, b + v) - ln_beta(a, b),
        digamma(a + u) - d_all - digamma(a) + d_ab,
        digamma(b + v) - d_all - digamma(b) + d_ab,
    )
}

impl BgBb {
    /// A model with checked parameters (all finite and > 0).
    pub fn new(alpha: f64, beta: f64, gamma: f64, delta: f64) -> Result<Self, ParamError> {
        Ok(BgBb {
            alpha: positive("alpha", alpha)?,
            beta: positive("beta", beta)?,
            gamma: positive("gamma", gamma)?,
            delta: positive("delta", delta)?,
        })
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &DiscreteHistories, options: &FitOptions) -> Result<(BgBb, FitReport), FitError> {
        if data.items.iter().all(|(h, _)| h.x == 0) {
            return Err(FitError::Degenerate { model: "bgbb", reason: "no customer made a transaction".into() });
        }
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let (v, g) = log_likelihood(data, [theta[0], theta[1], theta[2], theta[3]]);
            grad.copy_from_slice(&g);
            v
        };
        let report = maximize("bgbb", &NAMES, &ll, &[], &[1.0, 1.0, 1.0, 1.0], data.total, data.items.len(), options)?;
        let p = |i: usize| report.params[i].value;
        Ok((BgBb { alpha: p(0), beta: p(1), gamma: p(2), delta: p(3) }, report))
    }

    /// Total log-likelihood.
    pub fn log_likelihood(&self, data: &DiscreteHistories) -> f64 {
        log_likelihood(data, [self.alpha.ln(), self.beta.ln(), self.gamma.ln(), self.delta.ln()]).0
    }

    /// ln L for one history.
    fn ln_l(&self, h: &DiscreteHistory) -> f64 {
        terms(self, h).into_iter().map(|(v, _)| v).fold(f64::NEG_INFINITY, log_add)
    }

    /// B(γ, δ+t)/B(γ, δ) for t = 1, 2, …: the probability of being alive in period t.
    fn alive_through(&self, t: u32) -> f64 {
        (ln_beta(self.gamma, self.delta + f64::from(t)) - ln_beta(self.gamma, self.delta)).exp()
    }

    /// E[X(n)] = α/(α+β) · Σₜ₌₁ⁿ B(γ, δ+t)/B(γ, δ): expected transactions of a new customer in
    /// n opportunities (the finite sum form of FHS 2010 eq. 8, valid also at γ = 1).
    pub fn expected_transactions(&self, n: u32) -> f64 {
        self.alpha / (self.alpha + self.beta) * (1..=n).map(|t| self.alive_through(t)).sum::<f64>()
    }

    /// P(alive in period n+1 | x, t_x, n) = B(α+x, β+n−x)/B(α, β) · B(γ, δ+n+1)/B(γ, δ) / L (eq. 11).
    pub fn p_alive(&self, h: &DiscreteHistory) -> f64 {
        let (x, n) = (f64::from(h.x), f64::from(h.n));
        let ln_num = ln_beta(self.alpha + x, self.beta + n - x) - ln_beta(self.alpha, self.beta)
            + ln_beta(self.gamma, self.delta + n + 1.0)
            - ln_beta(self.gamma, self.delta);
        (ln_num - self.ln_l(h)).exp().min(1.0)
    }

    /// E[X(n, n+n*) | x, t_x, n] = B(α+x+1, β+n−x)/B(α, β) · Σₜ₌ₙ₊₁ⁿ⁺ⁿ* B(γ, δ+t)/B(γ, δ) / L:
    /// expected transactions in the next n* opportunities (FHS 2010 eq. 13 as a finite sum).
    pub fn conditional_expected_transactions(&self, future: u32, h: &DiscreteHistory) -> f64 {
        let (x, n) = (f64::from(h.x), f64::from(h.n));
        let ln_p = ln_beta(self.alpha + x + 1.0, self.beta + n - x) - ln_beta(self.alpha, self.beta);
        let alive: f64 = (h.n + 1..=h.n + future).map(|t| self.alive_through(t)).sum();
        (ln_p - self.ln_l(h)).exp() * alive
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// The log-terms of the likelihood with their gradients in (α, β, γ, δ).
fn terms(m: &BgBb, h: &DiscreteHistory) -> Vec<(f64, [f64; 4])> {
    let (x, tx, n) = (f64::from(h.x), f64::from(h.t_x), f64::from(h.n));
    let mut out = Vec::with_capacity((h.n - h.t_x + 1) as usize);
    let (p, pa, pb) = beta_ratio(m.alpha, m.beta, x, n - x);
    let (d, dg, dd) = beta_ratio(m.gamma, m.delta, 0.0, n);
    out.push((p + d, [pa, pb, dg, dd]));
    for i in 0..(h.n - h.t_x) {
        let i = f64::from(i);
        let (p, pa, pb) = beta_ratio(m.alpha, m.beta, x, tx - x + i);
        let (d, dg, dd) = beta_ratio(m.gamma, m.delta, 1.0, tx + i);
        out.push((p + d, [pa, pb, dg, dd]));
    }
    out
}

/// Log-likelihood and gradient with respect to (ln α, ln β, ln γ, ln δ).
fn log_likelihood(data: &DiscreteHistories, theta: [f64; 4]) -> (f64, [f64; 4]) {
    let [alpha, beta, gamma, delta] = theta.map(f64::exp);
    let m = BgBb { alpha, beta, gamma, delta };
    let mut ll = 0.0;
    let mut grad = [0.0; 4];
    for (h, w) in &data.items {
        let ts = terms(&m, h);
        let total = ts.iter().map(|(v, _)| *v).fold(f64::NEG_INFINITY, log_add);
        ll += w * total;
        for (v, g) in &ts {
            let share = (v - total).exp();
            for k in 0..4 {
                grad[k] += w * share * g[k];
            }
        }
    }
    let params = [alpha, beta, gamma, delta];
    for k in 0..4 {
        grad[k] *= params[k];
    }
    (ll, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::assert_gradient;

    fn small() -> DiscreteHistories {
        let h = |x, tx, n| DiscreteHistory::parse(0, x, tx, n).unwrap();
        DiscreteHistories::new([
            (h(0, 0, 6), 30.0),
            (h(1, 1, 6), 10.0),
            (h(3, 5, 6), 5.0),
            (h(6, 6, 6), 4.0),
            (h(2, 4, 6), 7.0),
        ])
        .unwrap()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = small();
        for params in [[1.2, 0.75, 0.66, 2.78], [5.0, 0.3, 2.0, 0.4]] {
            let ll = |theta: &[f64], grad: &mut [f64]| {
                let (v, g) = log_likelihood(&data, [theta[0], theta[1], theta[2], theta[3]]);
                grad.copy_from_slice(&g);
                v
            };
            assert_gradient(&ll, &params.map(f64::ln), 1e-6);
        }
    }

    #[test]
    fn likelihoods_of_all_histories_sum_to_one() {
        // Over every possible (x, t_x) with n = 4, the probabilities of the histories sum to 1
        // once each (x, t_x) is weighted by the number of purchase patterns producing it:
        // C(t_x − 1, x − 1) for x ≥ 1.
        let m = BgBb::new(1.2035, 0.7497, 0.6567, 2.7834).unwrap();
        let n = 4u32;
        let choose = |a: u32, b: u32| -> f64 { (0..b).map(|i| f64::from(a - i) / f64::from(i + 1)).product() };
        let mut total = m.ln_l(&DiscreteHistory { x: 0, t_x: 0, n }).exp();
        for tx in 1..=n {
            for x in 1..=tx {
                total += choose(tx - 1, x - 1) * m.ln_l(&DiscreteHistory { x, t_x: tx, n }).exp();
            }
        }
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    #[test]
    fn predictions_are_consistent() {
        let m = BgBb::new(1.2035, 0.7497, 0.6567, 2.7834).unwrap();
        // E[X(n)] by the closed form of eq. 8 when γ ≠ 1.
        let n = 6.0;
        let (a, b, g, d) = (m.alpha, m.beta, m.gamma, m.delta);
        let closed = a / (a + b) * d / (g - 1.0)
            * (1.0
                - (crate::special::ln_gamma(g + d) - crate::special::ln_gamma(g + d + n)
                    + crate::special::ln_gamma(1.0 + d + n)
                    - crate::special::ln_gamma(1.0 + d))
                .exp());
        assert!((m.expected_transactions(6) - closed).abs() < 1e-12 * closed);
        // A new customer's conditional expectation is the unconditional one.
        let fresh = DiscreteHistory { x: 0, t_x: 0, n: 0 };
        assert!((m.conditional_expected_transactions(5, &fresh) - m.expected_transactions(5)).abs() < 1e-12);
        // P(alive) rises with recency for fixed x.
        let p: Vec<f64> = (2..=6).map(|tx| m.p_alive(&DiscreteHistory { x: 2, t_x: tx, n: 6 })).collect();
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        assert!(m.p_alive(&DiscreteHistory { x: 6, t_x: 6, n: 6 }) <= 1.0);
    }
}
