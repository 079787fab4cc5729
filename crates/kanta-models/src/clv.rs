//! Customer lifetime value and next-purchase timing on top of a transaction model.

use rayon::prelude::*;

use crate::data::History;
use crate::{GammaGamma, TransactionModel};

/// How CLV is discounted and over what horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvOptions {
    /// Number of periods summed (e.g. 12 months).
    pub periods: u32,
    /// Length of one period in the model's time unit (e.g. 30 for months when fitted in days,
    /// as `lifetimes` does).
    pub period_length: f64,
    /// Discount rate per period (e.g. 0.01 per month).
    pub discount_rate: f64,
}

impl Default for ClvOptions {
    /// Twelve 30-day months at 1 % per month: `lifetimes`' defaults for daily data.
    fn default() -> Self {
        ClvOptions { periods: 12, period_length: 30.0, discount_rate: 0.01 }
    }
}

/// Expected discounted value of a customer's purchases over the next `periods` periods
/// (`lifetimes`' `customer_lifetime_value`):
///
/// CLV = Σᵢ₌₁ᴺ spend · (E[Y(iL) | history] − E[Y((i−1)L) | history]) / (1 + d)ⁱ,
///
/// with L the period length, d the discount rate and `spend` the expected value per purchase
/// (e.g. [`crate::GammaGamma::conditional_expected_spend`]).
pub fn clv_discrete(model: &dyn TransactionModel, history: &History, spend: f64, options: &ClvOptions) -> f64 {
    let ts: Vec<f64> = (1..=options.periods).map(|i| f64::from(i) * options.period_length).collect();
    let mut expected = vec![0.0; ts.len()];
    model.conditional_expected_purchases_many(&ts, history, &mut expected);
    clv_from_expected(&expected, spend, options.discount_rate)
}

/// Σᵢ spend · (eᵢ − eᵢ₋₁) / (1 + d)ⁱ over the cumulative expected purchases e₁, e₂, … at the
/// ends of the CLV periods (e₀ = 0): [`clv_discrete`] for callers that already have them.
pub fn clv_from_expected(expected: &[f64], spend: f64, discount_rate: f64) -> f64 {
    let mut previous = 0.0;
    let mut clv = 0.0;
    let mut discount = 1.0;
    for &e in expected {
        discount /= 1.0 + discount_rate;
        clv += spend * (e - previous).max(0.0) * discount;
        previous = e;
    }
    clv
}

/// Predicted time from the end of observation to the next purchase: the median of the waiting
/// time given that the customer is alive and ignoring later drop-out.
///
/// Given alive, the purchase rate is Gamma(r+x, α+T) in BG/NBD, MBG/NBD and Pareto/NBD, so the
/// waiting time is Lomax: P(W > τ) = ((α+T)/(α+T+τ))^(r+x), with median (α+T)(2^(1/(r+x)) − 1).
/// Read it together with P(alive): it answers "if they come back, when?", the date a
/// "book your next visit" reminder keys on.
pub fn next_purchase_median(model: &dyn TransactionModel, history: &History) -> f64 {
    let (shape, rate) = model.purchase_rate_posterior(history);
    rate * (std::f64::consts::LN_2 / shape).exp_m1()
}

/// Everything kanta predicts for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerPrediction {
    /// P(alive) at the end of observation.
    pub p_alive: f64,
    /// Expected purchases in the horizon.
    pub expected_purchases: f64,
    /// P(at least one purchase in the horizon).
    pub p_purchase: f64,
    /// Median time to the next purchase if alive ([`next_purchase_median`]).
    pub next_purchase: f64,
    /// Expected value per future purchase (Gamma-Gamma), when a spend model is given.
    pub expected_spend: Option<f64>,
    /// Discounted CLV over the [`ClvOptions`] horizon, when a spend model is given.
    pub clv: Option<f64>,
}

/// Predictions for many customers, in parallel (each customer's numbers do not depend on the
/// others or on the thread count). `monetary` is the customer's mean repeat-purchase value.
pub fn predict_customers(
    model: &(dyn TransactionModel + Sync),
    spend: Option<&GammaGamma>,
    customers: &[(History, f64)],
    horizon: f64,
    clv: &ClvOptions,
) -> Vec<CustomerPrediction> {
    customers
        .par_iter()
        .with_min_len(1024)
        .map_init(
            || {
                // The horizon first, then the CLV period ends: one batched evaluation.
                let mut ts = vec![horizon];
                ts.extend((1..=clv.periods).map(|i| f64::from(i) * clv.period_length));
                let out = vec![0.0; ts.len()];
                (ts, out)
            },
            |(ts, out), (h, monetary)| {
                let expected_spend =
                    spend.and_then(|g| g.conditional_expected_spend(h.x, if h.x > 0 { *monetary } else { 0.0 }));
                let n = if expected_spend.is_some() { ts.len() } else { 1 };
                let mut p_purchase = [0.0];
                let p_alive = model.predict_many(h, &ts[..n], &mut out[..n], &[horizon], &mut p_purchase);
                let p_purchase = p_purchase[0];
                CustomerPrediction {
                    p_alive,
                    expected_purchases: out[0],
                    p_purchase,
                    next_purchase: next_purchase_median(model, h),
                    expected_spend,
                    clv: expected_spend.map(|s| clv_from_expected(&out[1..n], s, clv.discount_rate)),
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BgNbd, Variant};

    #[test]
    fn clv_is_the_discounted_sum_of_period_increments() {
        let m = BgNbd::new(Variant::Bg, 0.2426, 4.4136, 0.7929, 2.4259).unwrap();
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let options = ClvOptions { periods: 3, period_length: 4.345, discount_rate: 0.01 };
        let e = |t: f64| m.conditional_expected_purchases(t, &h);
        let want =
            20.0 * (e(4.345) / 1.01 + (e(8.69) - e(4.345)) / 1.01f64.powi(2) + (e(13.035) - e(8.69)) / 1.01f64.powi(3));
        assert!((clv_discrete(&m, &h, 20.0, &options) - want).abs() < 1e-12);
        // Undiscounted, the increments telescope to spend · E[Y(3L)].
        let flat = ClvOptions { discount_rate: 0.0, ..options };
        assert!((clv_discrete(&m, &h, 20.0, &flat) - 20.0 * e(13.035)).abs() < 1e-12);
    }

    #[test]
    fn median_waiting_time_halves_the_lomax_survival() {
        let m = BgNbd::new(Variant::Bg, 0.2426, 4.4136, 0.7929, 2.4259).unwrap();
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let tau = next_purchase_median(&m, &h);
        let survival = ((4.4136 + 38.86) / (4.4136 + 38.86 + tau)).powf(2.2426);
        assert!((survival - 0.5).abs() < 1e-12, "{tau}: {survival}");
    }
}
