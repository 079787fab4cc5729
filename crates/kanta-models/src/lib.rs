//! Buy-till-you-die customer models: maximum-likelihood fits and per-customer predictions.
//!
//! | model | setting | type |
//! |---|---|---|
//! | BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007) | non-contractual, continuous time | [`BgNbd`] |
//! | Pareto/NBD (Schmittlein, Morrison & Colombo 1987) | non-contractual, continuous time | [`ParetoNbd`] |
//! | BG/BB (Fader, Hardie & Shang 2010) | non-contractual, discrete time | [`BgBb`] |
//! | Gamma-Gamma spend (Fader, Hardie & Lee 2005, note 025) | value per transaction | [`GammaGamma`] |
//! | shifted-Beta-Geometric (Fader & Hardie 2007) | contractual (subscriptions) | [`Sbg`] |
//! | NBD and Poisson: the nested limits of BG/NBD without drop-out (and without heterogeneity) | non-contractual, continuous time | [`Nbd`], [`Poisson`] |
//!
//! Every model is a plain value with a checked constructor; `fit` maximises the likelihood on
//! compressed data ([`Histories`]: identical histories merged with weights) with analytic
//! gradients and returns the model and a [`FitReport`] (estimates, standard errors, 95 %
//! intervals, log-likelihood, AIC/BIC). Time units are the caller's: the parameters α and β
//! carry the unit of `t_x` and `T`.
//!
//! **Architecture Invariant:** this crate is pure and synchronous: no IO, no clocks, no
//! global state except rayon's thread pool for large likelihood sums.

mod bgbb;
mod bgnbd;
mod clv;
mod data;
mod fit;
mod future;
mod gammagamma;
mod limits;
mod par;
mod pareto;
mod sbg;
pub mod special;

pub use bgbb::{BgBb, DiscreteHistories, DiscreteHistory};
pub use bgnbd::{BgNbd, Variant};
pub use clv::{
    ClvOptions, CustomerPrediction, clv_discrete, clv_from_expected, next_purchase_median, predict_customers,
};
pub use data::{DataError, Histories, HistoriesBuilder, History};
pub use fit::{FitError, FitOptions, FitReport, Param};
pub use future::{Dropout, draw_future};
pub use gammagamma::{GammaGamma, Spend};
pub use limits::{
    DROPOUT_NEGLIGIBLE, Limit, LimitFit, LimitModel, Nbd, Poisson, REPEAT_FEW_FOR_LIMIT, SHAPE_HOMOGENEOUS,
    boundary_limit, fit_limit,
};
pub use pareto::ParetoNbd;
pub use sbg::Sbg;

use thiserror::Error;

/// The papers' name of a model from its [`FitReport::model`] name: `bgnbd` → `BG/NBD`.
pub fn title(model: &str) -> &'static str {
    match model {
        "bgnbd" => "BG/NBD",
        "mbgnbd" => "MBG/NBD",
        "paretonbd" => "Pareto/NBD",
        "gammagamma" => "Gamma-Gamma",
        "bgbb" => "BG/BB",
        "sbg" => "sBG",
        "nbd" => "NBD",
        "poisson" => "Poisson",
        _ => "model",
    }
}

/// A model parameter outside its domain.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("parameter `{name}` must be a finite number > 0, got {value}")]
pub struct ParamError {
    /// The paper's parameter name.
    pub name: &'static str,
    /// The offending value.
    pub value: f64,
}

pub(crate) fn positive(name: &'static str, value: f64) -> Result<f64, ParamError> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(ParamError { name, value }) }
}

/// Predictions shared by the continuous-time transaction models (BG/NBD, MBG/NBD, Pareto/NBD and
/// the limits NBD and Poisson).
///
/// `t` is a length of time in the unit the model was fitted in; a [`History`] is one customer's
/// (x, t_x, T) at the end of observation.
pub trait TransactionModel {
    /// Model name as in [`FitReport::model`].
    fn name(&self) -> &'static str;
    /// E[X(t)]: expected purchases in (0, t] of a customer who just made a first purchase.
    fn expected_purchases(&self, t: f64) -> f64;
    /// E[Y(t) | x, t_x, T]: expected purchases in (T, T + t].
    fn conditional_expected_purchases(&self, t: f64, history: &History) -> f64;
    /// E[Y(t) | x, t_x, T] for several horizons at once (the CLV sum needs a dozen); models
    /// override it when the horizons can share work.
    fn conditional_expected_purchases_many(&self, ts: &[f64], history: &History, out: &mut [f64]) {
        for (t, o) in ts.iter().zip(out.iter_mut()) {
            *o = self.conditional_expected_purchases(*t, history);
        }
    }
    /// The predictions given that the customer is alive, which depend on the history only through
    /// `x` and `T` (in all these models): E[Y(tₖ) | alive] into `expected` and
    /// P(a purchase within wₖ | alive) into `purchase`. Multiply by P(alive) for the
    /// unconditional values; customers sharing (x, T) can share this work.
    fn if_alive_many(&self, x: u32, t: f64, ts: &[f64], expected: &mut [f64], within: &[f64], purchase: &mut [f64]);
    /// One customer's batch: E[Y(tₖ) | history] into `expected`, P(a purchase within wₖ |
    /// history) into `purchase`; returns P(alive), computed once.
    fn predict_many(
        &self,
        history: &History,
        ts: &[f64],
        expected: &mut [f64],
        within: &[f64],
        purchase: &mut [f64],
    ) -> f64 {
        let alive = self.p_alive(history);
        self.if_alive_many(history.x, history.t, ts, expected, within, purchase);
        for v in expected.iter_mut().chain(purchase.iter_mut()) {
            *v *= alive;
        }
        alive
    }
    /// P(alive | x, t_x, T) at the end of observation.
    fn p_alive(&self, history: &History) -> f64;
    /// P(X(t) = k) for a customer who just made a first purchase.
    fn probability_of_purchases(&self, t: f64, k: u32) -> f64;
    /// P(at least one purchase in (T, T + t] | x, t_x, T).
    fn probability_of_purchase_within(&self, t: f64, history: &History) -> f64;
    /// Shape and rate of the posterior of the purchase rate λ given the history and that the
    /// customer is alive: Gamma(r + x, α + T) in all these models (a point mass at λ, written as
    /// a Gamma of huge shape, in the Poisson).
    fn purchase_rate_posterior(&self, history: &History) -> (f64, f64);
    /// How a customer with this history who is alive at T drops out from then on, with the
    /// posterior of the drop-out parameter given the history and being alive
    /// ([`Dropout`]); with [`TransactionModel::purchase_rate_posterior`] it is what drawing
    /// the customer's future ([`draw_future`]) needs.
    fn dropout_posterior(&self, history: &History) -> Dropout;
}
