//! Drawing one customer's future purchases from a fitted model: the Monte Carlo step of a
//! journey simulation (`kanta journeys simulate` projects who will lapse, slip or be due for a
//! purchase by drawing each customer's next days).
//!
//! Given the history (x, t_x, T), the models say (Fader, Hardie & Lee 2005 §4 for BG/NBD;
//! Batislam et al. 2007 for MBG/NBD; Schmittlein, Morrison & Colombo 1987 and Fader, Hardie &
//! Lee's note "Deriving an expression for P(X(t) = x) under the Pareto/NBD model" 2006 for
//! Pareto/NBD):
//!
//! 1. the customer is alive at T with probability P(alive | x, t_x, T);
//! 2. if alive, the purchase rate has the posterior λ ~ Gamma(r + x, α + T)
//!    ([`TransactionModel::purchase_rate_posterior`]) and purchases come as a Poisson process
//!    of rate λ;
//! 3. drop-out ([`TransactionModel::dropout_posterior`]): BG/NBD and MBG/NBD drop out after
//!    each purchase with probability p ~ Beta(a, b + k) (k drop-out chances survived so far);
//!    Pareto/NBD after an exponential lifetime of rate μ ~ Gamma(s, β + T); the NBD and Poisson
//!    limits never.
//!
//! λ and the drop-out parameter are independent a posteriori given alive, because the alive
//! likelihood factorises: λˣ e^(−λT) · (1 − p)ᵏ (or e^(−μT)). A draw is therefore exact for the
//! model, and its mean count over (T, T + t] is E[Y(t) | x, t_x, T] — the tests check that
//! against the closed forms.

use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use crate::{History, TransactionModel};

/// How an alive customer drops out, with the posterior of the drop-out parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dropout {
    /// After each purchase, with probability p ~ Beta(a, b) (BG/NBD, MBG/NBD).
    AfterPurchase {
        /// First Beta shape.
        a: f64,
        /// Second Beta shape.
        b: f64,
    },
    /// After an exponential lifetime of rate μ ~ Gamma(shape, rate) (Pareto/NBD).
    Lifetime {
        /// Gamma shape of μ.
        shape: f64,
        /// Gamma rate of μ.
        rate: f64,
    },
    /// Never (the NBD and Poisson limits).
    Never,
}

/// Draws the purchases of the customer with `history` in (T, T + `horizon`] under `model`,
/// into `out` as times after T (ascending, in the model's unit): empty for a customer drawn
/// dead at T. Parameters outside a distribution's domain (which a fitted model never has)
/// draw no purchases.
pub fn draw_future<R: Rng + ?Sized>(
    model: &dyn TransactionModel,
    history: &History,
    horizon: f64,
    rng: &mut R,
    out: &mut Vec<f64>,
) {
    out.clear();
    // A horizon that is not a positive number (NaN included) has no purchases.
    if horizon.is_nan() || horizon <= 0.0 || rng.random::<f64>() >= model.p_alive(history) {
        return;
    }
    let (shape, rate) = model.purchase_rate_posterior(history);
    let Some(lambda) = gamma(shape, rate, rng) else { return };
    let Ok(gap) = Exp::new(lambda) else { return };
    // When the customer drops out at the latest (a lifetime), and the chance after a purchase.
    let (end, p) = match model.dropout_posterior(history) {
        Dropout::Never => (horizon, 0.0),
        Dropout::Lifetime { shape, rate } => {
            let Some(mu) = gamma(shape, rate, rng) else { return };
            let Ok(life) = Exp::new(mu) else { return };
            (life.sample(rng).min(horizon), 0.0)
        }
        Dropout::AfterPurchase { a, b } => {
            let Ok(beta) = Beta::new(a, b) else { return };
            (horizon, beta.sample(rng))
        }
    };
    let mut t = 0.0;
    loop {
        t += gap.sample(rng);
        if t > end {
            return;
        }
        out.push(t);
        if p > 0.0 && rng.random::<f64>() < p {
            return;
        }
    }
}

/// A draw from Gamma(shape, rate); `None` outside the domain.
fn gamma<R: Rng + ?Sized>(shape: f64, rate: f64, rng: &mut R) -> Option<f64> {
    let g = Gamma::new(shape, 1.0 / rate).ok()?;
    let v = g.sample(rng);
    (v.is_finite() && v > 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BgNbd, Nbd, ParetoNbd, Poisson, Variant};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    /// The mean count and the share with at least one purchase over `n` draws.
    fn moments(model: &dyn TransactionModel, h: &History, t: f64, n: usize) -> (f64, f64, f64) {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut out = Vec::new();
        let (mut sum, mut sum2, mut any) = (0.0, 0.0, 0usize);
        for _ in 0..n {
            draw_future(model, h, t, &mut rng, &mut out);
            let k = out.len() as f64;
            sum += k;
            sum2 += k * k;
            any += usize::from(!out.is_empty());
            assert!(out.windows(2).all(|w| w[0] <= w[1]) && out.iter().all(|&s| s > 0.0 && s <= t));
        }
        let mean = sum / n as f64;
        let se = ((sum2 / n as f64 - mean * mean) / n as f64).sqrt();
        (mean, se, any as f64 / n as f64)
    }

    /// Draws agree with the models' closed forms: E[Y(t) | x, t_x, T] (FHL 2005 eq. 10 for
    /// BG/NBD; Batislam et al. 2007 for MBG/NBD; SMC 1987 for Pareto/NBD) within 4 standard
    /// errors of the Monte Carlo mean, and P(Y(t) > 0 | history) within 4 binomial errors.
    #[test]
    fn the_mean_of_the_draws_is_the_conditional_expectation() {
        // FHL 2005's CDNOW estimates (weeks), and the Pareto/NBD estimates of the same data
        // (Fader & Hardie's note 009 / lifetimes' fit).
        let bg = BgNbd::new(Variant::Bg, 0.2426, 4.4136, 0.7929, 2.4259).unwrap();
        let mbg = BgNbd::new(Variant::Mbg, 0.2426, 4.4136, 0.7929, 2.4259).unwrap();
        let pareto = ParetoNbd::new(0.5533, 10.5776, 0.6061, 11.6562).unwrap();
        let nbd = Nbd::new(0.3, 6.0).unwrap();
        let poisson = Poisson::new(0.08).unwrap();
        let models: [&dyn TransactionModel; 5] = [&bg, &mbg, &pareto, &nbd, &poisson];
        let histories = [
            History { x: 2, t_x: 30.43, t: 38.86 },
            History { x: 0, t_x: 0.0, t: 38.86 },
            History { x: 7, t_x: 35.0, t: 39.0 },
            History { x: 4, t_x: 10.0, t: 38.0 },
        ];
        let n = 100_000;
        for model in models {
            for h in &histories {
                for t in [4.0, 39.0] {
                    let expected = model.conditional_expected_purchases(t, h);
                    let (mean, se, any) = moments(model, h, t, n);
                    assert!(
                        (mean - expected).abs() <= 4.0 * se.max(1e-3),
                        "{} {h:?} t={t}: draws {mean} ± {se}, closed form {expected}",
                        model.name()
                    );
                    let p = model.probability_of_purchase_within(t, h);
                    let binomial = (p * (1.0 - p) / n as f64).sqrt();
                    assert!(
                        (any - p).abs() <= 4.0 * binomial.max(1e-3),
                        "{} {h:?} t={t}: P(any) drawn {any}, closed form {p}",
                        model.name()
                    );
                }
            }
        }
    }

    #[test]
    fn a_customer_drawn_dead_or_a_zero_horizon_buys_nothing() {
        let bg = BgNbd::new(Variant::Bg, 0.2426, 4.4136, 0.7929, 2.4259).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut out = vec![1.0];
        draw_future(&bg, &History { x: 3, t_x: 1.0, t: 30.0 }, 0.0, &mut rng, &mut out);
        assert!(out.is_empty());
        // P(alive) of x = 10 with the last purchase at 1 and T = 500 weeks is ~0: no draw buys.
        let h = History { x: 10, t_x: 1.0, t: 500.0 };
        assert!(bg.p_alive(&h) < 1e-12);
        for _ in 0..1000 {
            draw_future(&bg, &h, 50.0, &mut rng, &mut out);
            assert!(out.is_empty());
        }
    }
}
