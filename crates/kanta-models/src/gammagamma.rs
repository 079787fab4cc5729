//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for
//! customer base analysis", JMR 42(4); Fader & Hardie note 025, "The Gamma-Gamma model of
//! monetary value"; after Colombo & Jiang 1999).
//!
//! Transaction values of a customer are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers. The
//! mean z̄ of x transactions is Gamma(px, νx), so (note 025, eq. 3)
//!
//! f(z̄ | p, q, γ; x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q x^(px) z̄^(px−1) / (γ + x z̄)^(px+q).
//!
//! It is fitted on customers with x ≥ 1 repeat transactions and assumes spend is independent of
//! the transaction process.

use crate::data::{DataError, check};
use crate::fit::{FitError, FitOptions, FitReport, maximize};
use crate::par::sum_chunks;
use crate::special::{digamma, ln_gamma};
use crate::{ParamError, positive};

/// One customer's spend summary: `x` ≥ 1 transactions with mean value `mean` > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    /// Number of (repeat) transactions averaged.
    pub x: u32,
    /// Their mean value.
    pub mean: f64,
}

impl Spend {
    /// A validated spend summary; `index` names it in errors.
    pub fn parse(index: usize, x: u32, mean: f64) -> Result<Self, DataError> {
        check(index, "monetary_value", mean)?;
        if x == 0 || mean == 0.0 {
            // The model is defined for customers with spend; callers filter the others out.
            return Err(DataError::NoSpend { index, x, mean });
        }
        Ok(Spend { x, mean })
    }
}

/// A Gamma-Gamma spend model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Shape of the per-transaction value distribution.
    pub p: f64,
    /// Shape of the across-customer distribution of ν.
    pub q: f64,
    /// Rate of the across-customer distribution of ν.
    pub gamma: f64,
}

const NAMES: [&str; 3] = ["p", "q", "gamma"];

/// Spends sorted by x with weights; x-only terms are computed once per distinct x.
struct Spends {
    x: Vec<u32>,
    mean: Vec<f64>,
    weight: Vec<f64>,
    group: Vec<u32>,
    xs: Vec<u32>,
    total: f64,
}

impl Spends {
    fn new(items: &[(Spend, f64)]) -> Result<Self, DataError> {
        let mut all: Vec<(u32, f64, f64)> = Vec::with_capacity(items.len());
        for (index, (s, w)) in items.iter().enumerate() {
            check(index, "weight", *w)?;
            if *w > 0.0 {
                all.push((s.x, s.mean, *w));
            }
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut out = Spends { x: vec![], mean: vec![], weight: vec![], group: vec![], xs: vec![], total: 0.0 };
        for (x, mean, w) in all {
            out.total += w;
            if out.x.last() == Some(&x) && out.mean.last() == Some(&mean) {
                if let Some(sum) = out.weight.last_mut() {
                    *sum += w;
                }
                continue;
            }
            if out.xs.last() != Some(&x) {
                out.xs.push(x);
            }
            out.x.push(x);
            out.mean.push(mean);
            out.weight.push(w);
            out.group.push((out.xs.len() - 1) as u32);
        }
        if out.x.is_empty() {
            return Err(DataError::Empty);
        }
        Ok(out)
    }
}

impl GammaGamma {
    /// A model with checked parameters (all finite and > 0).
    pub fn new(p: f64, q: f64, gamma: f64) -> Result<Self, ParamError> {
        Ok(GammaGamma { p: positive("p", p)?, q: positive("q", q)?, gamma: positive("gamma", gamma)? })
    }

    /// Maximum-likelihood fit on weighted spend summaries.
    pub fn fit(spends: &[(Spend, f64)], options: &FitOptions) -> Result<(GammaGamma, FitReport), FitError> {
        let data = Spends::new(spends)?;
        let distinct_means = data.mean.windows(2).any(|w| w[0] != w[1]);
        if !distinct_means {
            return Err(FitError::Degenerate {
                model: "gammagamma",
                reason: "all customers have the same mean spend, so its spread cannot be estimated".into(),
            });
        }
        let mean: f64 = data.mean.iter().zip(&data.weight).map(|(m, w)| m * w).sum::<f64>() / data.total;
        // Start at p = 2, q = 3 and the γ that makes the population mean pγ/(q−1) equal the data's.
        let start = [2.0, 3.0, mean];
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let out = log_likelihood(&data, [theta[0], theta[1], theta[2]]);
            grad.copy_from_slice(&out[1..]);
            out[0]
        };
        let report = maximize("gammagamma", &NAMES, &ll, &[], &start, data.total, data.x.len(), options)?;
        let v = |i: usize| report.params[i].value;
        Ok((GammaGamma { p: v(0), q: v(1), gamma: v(2) }, report))
    }

    /// Total log-likelihood of weighted spends.
    pub fn log_likelihood(&self, spends: &[(Spend, f64)]) -> Result<f64, DataError> {
        let data = Spends::new(spends)?;
        Ok(log_likelihood(&data, [self.p.ln(), self.q.ln(), self.gamma.ln()])[0])
    }

    /// Population mean spend per transaction E[Z] = pγ/(q−1); `None` when q ≤ 1 (infinite mean).
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }

    /// E[Z | x, z̄] = p(γ + x z̄)/(px + q − 1) (note 025, eq. 5): a weighted average of the
    /// population mean and the customer's own mean. For x = 0 it is the population mean.
    /// `None` when px + q ≤ 1 (the posterior mean is infinite).
    pub fn conditional_expected_spend(&self, x: u32, mean: f64) -> Option<f64> {
        let xf = f64::from(x);
        let denominator = self.p * xf + self.q - 1.0;
        (denominator > 0.0).then(|| self.p * (self.gamma + xf * mean) / denominator)
    }
}

/// Log-likelihood and its gradient with respect to (ln p, ln q, ln γ).
fn log_likelihood(data: &Spends, theta: [f64; 3]) -> [f64; 4] {
    let [p, q, gamma] = theta.map(f64::exp);
    let ln_gamma_rate = gamma.ln();
    let (lg_q, dg_q) = (ln_gamma(q), digamma(q));
    // Per distinct x: ln Γ(px+q) − ln Γ(px) and the digammas.
    let groups: Vec<(f64, f64, f64)> = data
        .xs
        .iter()
        .map(|&x| {
            let px = p * f64::from(x);
            (ln_gamma(px + q) - ln_gamma(px), digamma(px + q), digamma(px))
        })
        .collect();
    let [ll, dp, dq, dgamma] = sum_chunks(data.x.len(), |range| {
        let mut acc = [0.0; 4];
        for i in range {
            let (lg, dg_pxq, dg_px) = groups[data.group[i] as usize];
            let w = data.weight[i];
            let x = f64::from(data.x[i]);
            let px = p * x;
            let ln_m = data.mean[i].ln();
            let g = gamma + x * data.mean[i];
            let ln_g = g.ln();
            acc[0] += w * (lg - lg_q + q * ln_gamma_rate + px * x.ln() + (px - 1.0) * ln_m - (px + q) * ln_g);
            acc[1] += w * x * (dg_pxq - dg_px + x.ln() + ln_m - ln_g);
            acc[2] += w * (dg_pxq - dg_q + ln_gamma_rate - ln_g);
            acc[3] += w * (q / gamma - (px + q) / g);
        }
        acc
    });
    [ll, p * dp, q * dq, gamma * dgamma]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::assert_gradient;

    #[test]
    fn gradient_matches_finite_differences() {
        let spends: Vec<(Spend, f64)> = [(1, 10.0), (2, 35.5), (5, 12.25), (1, 80.0), (12, 21.0)]
            .iter()
            .enumerate()
            .map(|(i, &(x, m))| (Spend::parse(i, x, m).unwrap(), 1.0 + i as f64))
            .collect();
        let data = Spends::new(&spends).unwrap();
        for params in [[6.25f64, 3.74, 15.4], [0.5, 1.2, 200.0], [30.0, 10.0, 1.0]] {
            let ll = |theta: &[f64], grad: &mut [f64]| {
                let out = log_likelihood(&data, [theta[0], theta[1], theta[2]]);
                grad.copy_from_slice(&out[1..]);
                out[0]
            };
            assert_gradient(&ll, &params.map(f64::ln), 1e-6);
        }
    }

    #[test]
    fn density_matches_the_note_and_integrates_to_one() {
        // f(z̄) for x = 3 at (p, q, γ) = (6.25, 3.74, 15.44), integrated over z̄ numerically.
        let m = GammaGamma::new(6.25, 3.74, 15.44).unwrap();
        let f = |z: f64| {
            let s = Spend { x: 3, mean: z };
            m.log_likelihood(&[(s, 1.0)]).unwrap().exp()
        };
        let (mut total, mut mean) = (0.0, 0.0);
        let h = 0.01;
        for i in 1..200_000 {
            let z = i as f64 * h;
            total += f(z) * h;
            mean += z * f(z) * h;
        }
        assert!((total - 1.0).abs() < 1e-6, "∫ f = {total}");
        // E[z̄] = E[Z] = pγ/(q−1)
        let want = m.population_mean().unwrap();
        assert!((mean - want).abs() < 1e-4 * want, "{mean} vs {want}");
    }

    #[test]
    fn conditional_spend_is_a_weighted_average() {
        let m = GammaGamma::new(6.25, 3.74, 15.44).unwrap();
        let pop = m.population_mean().unwrap();
        assert!((m.conditional_expected_spend(0, 99.0).unwrap() - pop).abs() < 1e-12);
        let (x, zbar) = (4, 50.0);
        let weight = (m.q - 1.0) / (m.p * 4.0 + m.q - 1.0);
        let want = weight * pop + (1.0 - weight) * zbar;
        assert!((m.conditional_expected_spend(x, zbar).unwrap() - want).abs() < 1e-12);
        assert_eq!(GammaGamma::new(1.0, 0.5, 1.0).unwrap().population_mean(), None);
    }
}
