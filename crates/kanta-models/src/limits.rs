//! The nested limits of BG/NBD, MBG/NBD and Pareto/NBD: the models a fit tends to when it runs to
//! a parameter boundary because one of its mixing distributions collapses.
//!
//! * [`Nbd`] (no drop-out): the drop-out probability p ~ Beta(a, b) of BG/NBD tends to 0
//!   (a → 0, or b → ∞, so that E[p] = a/(a+b) → 0); likewise MBG/NBD, and Pareto/NBD's drop-out
//!   rate μ ~ Gamma(s, β) (s/β → 0). Every customer stays alive and buys at a Gamma(r, α) rate:
//!   the Gamma-Poisson (negative binomial) model of Ehrenberg (1959).
//! * [`Poisson`] (no drop-out, no heterogeneity): in addition r, α → ∞ with r/α = λ fixed, so
//!   the Gamma(r, α) collapses to the point mass at λ.
//!
//! The other limits (a, b → ∞ with a/(a+b) fixed: one drop-out probability p for everyone;
//! r, α → ∞ with drop-out present: BG/Poisson) are not implemented: a boundary fit that points
//! at them gets no fallback (see [`fit_limit`]).
//!
//! [`fit_limit`] turns a [`FitError::Boundary`] of a full model into a fit of the limit it
//! points at, when it points at one of these.

use crate::data::{Histories, History};
use crate::fit::{FitError, FitOptions, FitReport, format_number, maximize_staged};
use crate::par::sum_chunks;
use crate::special::{digamma, ln_gamma};
use crate::{BgNbd, ParamError, ParetoNbd, TransactionModel, Variant, positive};

/// NBD: BG/NBD without drop-out. Purchase rate λ ~ Gamma(r, α), every customer alive forever.
///
/// # Formula
///
/// The limit a → 0 (b fixed) of BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
/// easy way", Marketing Science 24(2)), with k = x drop-out opportunities:
///
/// ```text
/// eq. 6:  L = Γ(r+x) αʳ / Γ(r) · [ B(a, b+k)/B(a, b) · (α+T)^−(r+x)
///                                  + 1{k>0} · B(a+1, b+k−1)/B(a, b) · (α+t_x)^−(r+x) ]
///         B(a, b+k)/B(a, b) = Γ(a+b) Γ(b+k) / (Γ(b) Γ(a+b+k)) → 1,
///         B(a+1, b+k−1)/B(a, b) = a/(b+k−1) · B(a, b+k)/B(a, b) → 0, so
///     L(r, α | x, t_x, T) = Γ(r+x)/Γ(r) · αʳ / (α+T)^(r+x)            (t_x drops out)
/// eq. 13: P(alive) = 1 / (1 + 1{k>0} · a/(b+k−1) · ((α+T)/(α+t_x))^(r+x)) → 1
/// eq. 10: E[Y(t) | x, t_x, T] = P(alive) · (a+b+k−1)/(a−1)
///                               · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+k; a+b+k−1; t/(α+T+t))]
///         at a = 0: (b+k−1)/(−1) · [1 − (1−z)^(r+x) ₂F₁(r+x, b+k; b+k−1; z)], z = t/(α+T+t);
///         with ₂F₁(n, c+1; c; z) = (1−z)^−(n+1) (1 − z + n z/c) (Euler's transformation of a
///         terminating series), this is (r+x)/(α+T) · t:
///     E[Y(t) | x, T] = (r+x) t / (α+T),   E[X(t)] = r t / α
///     P(X(t) = k) = Γ(r+k)/(Γ(r) k!) · (α/(α+t))ʳ (t/(α+t))ᵏ           (eq. 8 at a → 0)
///     P(a purchase in (T, T+t] | x, T) = 1 − ((α+T)/(α+T+t))^(r+x)
/// ```
///
/// The same limit of MBG/NBD (k = x + 1) and of Pareto/NBD as s → 0 or β → ∞ (Fader & Hardie
/// 2005 note, eq. 19–22: (β/(β+τ))ˢ → 1 and the s ∫ term → 0) gives the same likelihood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Rate of the purchase-rate distribution (in the unit of T).
    pub alpha: f64,
}

const NBD_NAMES: [&str; 2] = ["r", "alpha"];

impl Nbd {
    /// A model with checked parameters (both finite and > 0).
    pub fn new(r: f64, alpha: f64) -> Result<Self, ParamError> {
        Ok(Nbd { r: positive("r", r)?, alpha: positive("alpha", alpha)? })
    }

    /// Maximum-likelihood fit. Identified when the repeat purchases are over-dispersed relative
    /// to a Poisson; otherwise r and α run off together ([`FitError::Boundary`]) towards the
    /// [`Poisson`] limit.
    pub fn fit(data: &Histories, options: &FitOptions) -> Result<(Nbd, FitReport), FitError> {
        if data.repeat_share() == 0.0 {
            return Err(FitError::Degenerate { model: "nbd", reason: "no customer made a repeat purchase".into() });
        }
        let (mean_x, mean_t) = data.means();
        let start = [1.0, (mean_t / (mean_x + 0.5)).max(1e-6)];
        let eval = |d: &Histories, theta: &[f64], grad: &mut [f64]| {
            let out = nbd_log_likelihood(d, [theta[0], theta[1]]);
            grad.copy_from_slice(&out[1..]);
            out[0]
        };
        let report = maximize_staged("nbd", &NBD_NAMES, data, &eval, &start, options)?;
        Ok((Nbd { r: report.params[0].value, alpha: report.params[1].value }, report))
    }

    /// Total log-likelihood of `data` under this model.
    pub fn log_likelihood(&self, data: &Histories) -> f64 {
        nbd_log_likelihood(data, [self.r.ln(), self.alpha.ln()])[0]
    }
}

/// NBD log-likelihood and its gradient with respect to (ln r, ln α):
/// ∂/∂r = ψ(r+x) − ψ(r) + ln α − ln(α+T), ∂/∂α = r/α − (r+x)/(α+T).
fn nbd_log_likelihood(data: &Histories, theta: [f64; 2]) -> [f64; 3] {
    let [r, alpha] = theta.map(f64::exp);
    let ln_alpha = alpha.ln();
    let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
    // Per distinct x: ln Γ(r+x) − ln Γ(r) + r ln α and ψ(r+x) − ψ(r) + ln α.
    let groups: Vec<(f64, f64)> = data
        .xs
        .iter()
        .map(|&x| {
            let n = r + f64::from(x);
            (ln_gamma(n) - lg_r + r * ln_alpha, digamma(n) - dg_r + ln_alpha)
        })
        .collect();
    let [ll, dr, dalpha] = sum_chunks(data.distinct(), |range| {
        let mut s = [0.0; 3];
        for i in range {
            let (c0, dr0) = groups[data.group[i] as usize];
            let w = data.weight[i];
            let n = r + f64::from(data.x[i]);
            let at = alpha + data.t[i];
            let ln_at = at.ln();
            s[0] += w * (c0 - n * ln_at);
            s[1] += w * (dr0 - ln_at);
            s[2] += w * (r / alpha - n / at);
        }
        s
    });
    [ll, r * dr, alpha * dalpha]
}

impl TransactionModel for Nbd {
    fn name(&self) -> &'static str {
        "nbd"
    }

    /// E[X(t)] = r t / α.
    fn expected_purchases(&self, t: f64) -> f64 {
        self.r * t / self.alpha
    }

    /// E[Y(t) | x, T] = (r+x) t / (α+T) (see the type's formula).
    fn conditional_expected_purchases(&self, t: f64, h: &History) -> f64 {
        (self.r + f64::from(h.x)) * t / (self.alpha + h.t)
    }

    fn if_alive_many(&self, x: u32, t: f64, ts: &[f64], expected: &mut [f64], within: &[f64], purchase: &mut [f64]) {
        let n = self.r + f64::from(x);
        let big_a = self.alpha + t;
        for (tk, e) in ts.iter().zip(expected.iter_mut()) {
            *e = n * tk / big_a;
        }
        for (w, p) in within.iter().zip(purchase.iter_mut()) {
            *p = -(-n * (w / big_a).ln_1p()).exp_m1();
        }
    }

    /// Nobody drops out: 1.
    fn p_alive(&self, _history: &History) -> f64 {
        1.0
    }

    /// The negative binomial Γ(r+k)/(Γ(r) k!) · (α/(α+t))ʳ (t/(α+t))ᵏ.
    fn probability_of_purchases(&self, t: f64, k: u32) -> f64 {
        let (r, alpha) = (self.r, self.alpha);
        let k = f64::from(k);
        let ln_q = if k > 0.0 { k * (t / (alpha + t)).ln() } else { 0.0 };
        (ln_gamma(r + k) - ln_gamma(r) - ln_gamma(k + 1.0) - r * (t / alpha).ln_1p() + ln_q).exp()
    }

    /// 1 − ((α+T)/(α+T+t))^(r+x).
    fn probability_of_purchase_within(&self, t: f64, h: &History) -> f64 {
        let n = self.r + f64::from(h.x);
        -(-n * (t / (self.alpha + h.t)).ln_1p()).exp_m1()
    }

    fn purchase_rate_posterior(&self, h: &History) -> (f64, f64) {
        (self.r + f64::from(h.x), self.alpha + h.t)
    }
    fn dropout_posterior(&self, _history: &History) -> crate::Dropout {
        crate::Dropout::Never
    }
}

/// Poisson: one purchase rate λ for everyone, nobody drops out.
///
/// # Formula
///
/// The limit of [`Nbd`] as r, α → ∞ with r/α = λ fixed (the Gamma(r, α) mixing distribution
/// has mean λ and variance λ/α → 0), i.e. BG/NBD (Fader, Hardie & Lee 2005) with a → 0 and
/// then r, α → ∞:
///
/// ```text
/// Γ(r+x)/Γ(r) = r^x (1 + O(1/r)),   αʳ/(α+T)^(r+x) = (1 + T/α)^−r (α+T)^−x → e^−λT α^−x
///     L(λ | x, t_x, T) = λˣ e^(−λT)                                   (t_x drops out)
///     ln L = Σ x ln λ − λ Σ T,   so   λ̂ = Σ x / Σ T,   se(ln λ̂) = 1/√(Σ x)
///     E[Y(t) | x, T] = lim (r+x) t/(α+T) = λ t,   E[X(t)] = λ t,   P(alive) = 1
///     P(X(t) = k) = e^(−λt) (λt)ᵏ / k!
///     P(a purchase in (T, T+t] | x, T) = lim 1 − ((α+T)/(α+T+t))^(r+x) = 1 − e^(−λt)
/// ```
///
/// (The likelihood of the counts over (0, T] omits the factors that do not depend on λ, as
/// BG/NBD's does.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poisson {
    /// Purchase rate per unit of T.
    pub lambda: f64,
}

/// Shape n of the Gamma(n, n/λ) that [`Poisson::purchase_rate_posterior`] returns for the point
/// mass at λ: its coefficient of variation 1/√n = 1.5·10⁻⁸ is below what any prediction shows,
/// and n/λ stays finite for every positive λ above 10⁻²⁹².
const POINT_MASS_SHAPE: f64 = 4_503_599_627_370_496.0; // 2⁵²

impl Poisson {
    /// A model with a checked rate (finite and > 0).
    pub fn new(lambda: f64) -> Result<Self, ParamError> {
        Ok(Poisson { lambda: positive("lambda", lambda)? })
    }

    /// Maximum-likelihood fit: λ̂ = Σ x / Σ T in closed form, run through the common optimiser
    /// from there so that the report carries the standard error from the observed information
    /// like every other model's.
    pub fn fit(data: &Histories, options: &FitOptions) -> Result<(Poisson, FitReport), FitError> {
        let (sum_x, sum_t) = poisson_sums(data);
        if sum_x == 0.0 {
            return Err(FitError::Degenerate { model: "poisson", reason: "no customer made a repeat purchase".into() });
        }
        if sum_t <= 0.0 {
            return Err(FitError::Degenerate {
                model: "poisson",
                reason: "every customer was observed for no time at all (T = 0)".into(),
            });
        }
        let eval = |d: &Histories, theta: &[f64], grad: &mut [f64]| {
            let (sx, st) = poisson_sums(d);
            let lambda = theta[0].exp();
            grad[0] = sx - lambda * st;
            sx * theta[0] - lambda * st
        };
        let report = maximize_staged("poisson", &["lambda"], data, &eval, &[sum_x / sum_t], options)?;
        Ok((Poisson { lambda: report.params[0].value }, report))
    }

    /// Total log-likelihood Σ x ln λ − λ Σ T of `data` under this model.
    pub fn log_likelihood(&self, data: &Histories) -> f64 {
        let (sum_x, sum_t) = poisson_sums(data);
        sum_x * self.lambda.ln() - self.lambda * sum_t
    }
}

/// (Σ w x, Σ w T).
fn poisson_sums(data: &Histories) -> (f64, f64) {
    let [sx, st] = sum_chunks(data.distinct(), |range| {
        let mut s = [0.0; 2];
        for i in range {
            s[0] += data.weight[i] * f64::from(data.x[i]);
            s[1] += data.weight[i] * data.t[i];
        }
        s
    });
    (sx, st)
}

impl TransactionModel for Poisson {
    fn name(&self) -> &'static str {
        "poisson"
    }

    /// λ t.
    fn expected_purchases(&self, t: f64) -> f64 {
        self.lambda * t
    }

    /// λ t: the history tells nothing about a rate everyone shares.
    fn conditional_expected_purchases(&self, t: f64, _history: &History) -> f64 {
        self.lambda * t
    }

    fn if_alive_many(&self, _x: u32, _t: f64, ts: &[f64], expected: &mut [f64], within: &[f64], purchase: &mut [f64]) {
        for (tk, e) in ts.iter().zip(expected.iter_mut()) {
            *e = self.lambda * tk;
        }
        for (w, p) in within.iter().zip(purchase.iter_mut()) {
            *p = -(-self.lambda * w).exp_m1();
        }
    }

    /// Nobody drops out: 1.
    fn p_alive(&self, _history: &History) -> f64 {
        1.0
    }

    /// e^(−λt) (λt)ᵏ / k!.
    fn probability_of_purchases(&self, t: f64, k: u32) -> f64 {
        let mean = self.lambda * t;
        let k = f64::from(k);
        let ln_pow = if k > 0.0 { k * mean.ln() } else { 0.0 };
        (ln_pow - mean - ln_gamma(k + 1.0)).exp()
    }

    /// 1 − e^(−λt).
    fn probability_of_purchase_within(&self, t: f64, _history: &History) -> f64 {
        -(-self.lambda * t).exp_m1()
    }

    /// The rate is known: the point mass at λ, returned as Gamma(n, n/λ) with n = 2⁵² (mean λ,
    /// coefficient of variation 1.5·10⁻⁸), the form of the NBD's posterior Gamma(r+x, α+T) as
    /// r, α → ∞. [`crate::next_purchase_median`] then gives (n/λ)(2^(1/n) − 1) = ln 2/λ to
    /// double precision, the median of the exponential waiting time.
    fn purchase_rate_posterior(&self, _history: &History) -> (f64, f64) {
        (POINT_MASS_SHAPE, POINT_MASS_SHAPE / self.lambda)
    }
    fn dropout_posterior(&self, _history: &History) -> crate::Dropout {
        crate::Dropout::Never
    }
}

/// Which nested limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Nbd`]: no drop-out.
    Nbd,
    /// [`Poisson`]: no drop-out and one purchase rate for everyone.
    Poisson,
}

impl Limit {
    /// Model name as in [`FitReport::model`].
    pub fn name(self) -> &'static str {
        match self {
            Limit::Nbd => "nbd",
            Limit::Poisson => "poisson",
        }
    }
}

/// A fitted limit model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitModel {
    /// No drop-out.
    Nbd(Nbd),
    /// No drop-out, no heterogeneity.
    Poisson(Poisson),
}

/// The fit of the nested limit a boundary fit points at: see [`fit_limit`].
#[derive(Debug, Clone, PartialEq)]
pub struct LimitFit {
    /// The limit model.
    pub model: LimitModel,
    /// Its fit.
    pub report: FitReport,
    /// The full model whose boundary fit pointed here (`bgnbd`, `mbgnbd`, `paretonbd`).
    pub from: &'static str,
    /// Why, in words: "nobody appears to drop out (…)", with the estimates that say so.
    pub reason: String,
}

/// A drop-out process counts as vanished when a customer is expected to stay for more than
/// 1/`DROPOUT_NEGLIGIBLE` = 1,000 purchases: E[p] = a/(a+b) below 10⁻³ in BG/NBD and MBG/NBD,
/// E[μ]/E[λ] = (s/β)/(r/α) below 10⁻³ in Pareto/NBD (the expected purchases in an exponential
/// lifetime are λ/μ). The fits start at E[p] = 1/4, so this is a move by a factor 250.
pub const DROPOUT_NEGLIGIBLE: f64 = 1e-3;

/// An NBD fit that runs to a boundary with r above this points at the Poisson: the data cannot
/// tell its Gamma(r, α), with coefficient of variation 1/√r below 10 %, from one common rate
/// (r and α grow together; on a simulated homogeneous base the search stops where se(ln r)
/// passes 5, at r ≈ 8·10³ for a rate of one purchase in 200 days). The fit starts at r = 1.
pub const SHAPE_HOMOGENEOUS: f64 = 100.0;

/// Below this share of repeat buyers a boundary is blamed on too few repeat purchases (as the
/// error message says), not on a limit: a new shop of one-time buyers gets no fallback.
pub const REPEAT_FEW_FOR_LIMIT: f64 = 0.05;

/// The nested limit a [`FitError::Boundary`] of `bgnbd`, `mbgnbd`, `paretonbd` or `nbd` points
/// at, with the reason in words; `None` for any other error or boundary.
///
/// * BG/NBD, MBG/NBD: E[p] = a/(a+b) < [`DROPOUT_NEGLIGIBLE`] → [`Limit::Nbd`];
/// * Pareto/NBD: (s/β)/(r/α) < [`DROPOUT_NEGLIGIBLE`] → [`Limit::Nbd`];
/// * NBD: r > [`SHAPE_HOMOGENEOUS`] → [`Limit::Poisson`].
///
/// Where the full model's purchase rates are also homogeneous the NBD fit itself runs off
/// (r, α → ∞) and [`fit_limit`] goes on to the Poisson.
pub fn boundary_limit(error: &FitError) -> Option<(Limit, String)> {
    let FitError::Boundary { model, params, .. } = error else { return None };
    let p = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    match *model {
        "bgnbd" | "mbgnbd" => {
            let (a, b) = (p("a")?, p("b")?);
            let mean = a / (a + b);
            (mean < DROPOUT_NEGLIGIBLE).then(|| {
                (
                    Limit::Nbd,
                    format!(
                        "nobody appears to drop out (the drop-out probability p ~ Beta(a, b) tends to 0: a = {}, \
                         b = {}, E[p] = {})",
                        format_number(a),
                        format_number(b),
                        format_number(mean)
                    ),
                )
            })
        }
        "paretonbd" => {
            let (r, alpha, s, beta) = (p("r")?, p("alpha")?, p("s")?, p("beta")?);
            let ratio = (s / beta) / (r / alpha);
            (ratio < DROPOUT_NEGLIGIBLE).then(|| {
                (
                    Limit::Nbd,
                    format!(
                        "nobody appears to drop out (the drop-out rate μ ~ Gamma(s, β) tends to 0: s = {}, beta = {}, \
                         E[μ]/E[λ] = {})",
                        format_number(s),
                        format_number(beta),
                        format_number(ratio)
                    ),
                )
            })
        }
        "nbd" => {
            let (r, alpha) = (p("r")?, p("alpha")?);
            (r > SHAPE_HOMOGENEOUS).then(|| {
                (
                    Limit::Poisson,
                    format!(
                        "the purchase rates look the same for everyone (λ ~ Gamma(r, α) collapses to λ = r/α = {}: \
                         r = {}, alpha = {})",
                        format_number(r / alpha),
                        format_number(r),
                        format_number(alpha)
                    ),
                )
            })
        }
        _ => None,
    }
}

/// The full model's log-likelihood where its boundary fit stopped.
fn stopped_log_likelihood(error: &FitError, data: &Histories) -> Option<f64> {
    let FitError::Boundary { model, params, .. } = error else { return None };
    let v: Vec<f64> = params.iter().map(|(_, v)| *v).collect();
    let ll = match (*model, v.as_slice()) {
        ("bgnbd", [r, al, a, b]) => BgNbd::new(Variant::Bg, *r, *al, *a, *b).ok()?.log_likelihood(data),
        ("mbgnbd", [r, al, a, b]) => BgNbd::new(Variant::Mbg, *r, *al, *a, *b).ok()?.log_likelihood(data),
        ("paretonbd", [r, al, s, be]) => ParetoNbd::new(*r, *al, *s, *be).ok()?.log_likelihood(data),
        ("nbd", [r, al]) => Nbd::new(*r, *al).ok()?.log_likelihood(data),
        _ => return None,
    };
    ll.is_finite().then_some(ll)
}

/// χ²₂ at 0.95 (two parameters fewer than the full model): 2 (LL_full − LL_limit) above this
/// rejects the limit.
const CHI2_2_95: f64 = 5.991;

/// Fits the nested limit that the boundary fit `error` of a full model points at
/// ([`boundary_limit`]): `None` when it points at none of them, or when fewer than
/// [`REPEAT_FEW_FOR_LIMIT`] of the customers made a repeat purchase (the boundary is then
/// blamed on the missing repeat purchases, not on a limit).
///
/// The NBD limit is fitted first; if that runs off to r, α → ∞ too, the Poisson. The limit is
/// accepted only if it explains the data as well as the full model did where it stopped: a
/// likelihood-ratio statistic 2 (LL_stop − LL_limit) above χ²₂(0.95) = 5.99 means the boundary
/// is something else, and the result is a [`FitError::Degenerate`] of the limit saying so.
pub fn fit_limit(error: &FitError, data: &Histories, options: &FitOptions) -> Option<Result<LimitFit, FitError>> {
    let FitError::Boundary { model: from, .. } = error else { return None };
    if *from == "nbd" {
        return None;
    }
    let (_, reason) = boundary_limit(error)?;
    if data.repeat_share() < REPEAT_FEW_FOR_LIMIT {
        return None;
    }
    let (model, report, reason) = match Nbd::fit(data, options) {
        Ok((m, report)) => (LimitModel::Nbd(m), report, reason),
        Err(nbd_error) => match boundary_limit(&nbd_error) {
            Some((Limit::Poisson, homogeneous)) => match Poisson::fit(data, options) {
                Ok((m, report)) => (LimitModel::Poisson(m), report, format!("{reason}; {homogeneous}")),
                Err(e) => return Some(Err(e)),
            },
            _ => return Some(Err(nbd_error)),
        },
    };
    if let Some(stop) = stopped_log_likelihood(error, data) {
        let statistic = 2.0 * (stop - report.log_likelihood);
        if statistic > CHI2_2_95 {
            return Some(Err(FitError::Degenerate {
                model: report.model,
                reason: format!(
                    "{} stopped at a log-likelihood {} above the limit's maximum (likelihood ratio {} > \
                     {CHI2_2_95}): its boundary is not this limit",
                    crate::title(from),
                    format_number(stop - report.log_likelihood),
                    format_number(statistic)
                ),
            }));
        }
    }
    Some(Ok(LimitFit { model, report, from, reason }))
}

impl TransactionModel for LimitModel {
    fn name(&self) -> &'static str {
        self.inner().name()
    }
    fn expected_purchases(&self, t: f64) -> f64 {
        self.inner().expected_purchases(t)
    }
    fn conditional_expected_purchases(&self, t: f64, history: &History) -> f64 {
        self.inner().conditional_expected_purchases(t, history)
    }
    fn if_alive_many(&self, x: u32, t: f64, ts: &[f64], expected: &mut [f64], within: &[f64], purchase: &mut [f64]) {
        self.inner().if_alive_many(x, t, ts, expected, within, purchase)
    }
    fn p_alive(&self, history: &History) -> f64 {
        self.inner().p_alive(history)
    }
    fn probability_of_purchases(&self, t: f64, k: u32) -> f64 {
        self.inner().probability_of_purchases(t, k)
    }
    fn probability_of_purchase_within(&self, t: f64, history: &History) -> f64 {
        self.inner().probability_of_purchase_within(t, history)
    }
    fn purchase_rate_posterior(&self, history: &History) -> (f64, f64) {
        self.inner().purchase_rate_posterior(history)
    }
    fn dropout_posterior(&self, history: &History) -> crate::Dropout {
        self.inner().dropout_posterior(history)
    }
}

impl LimitModel {
    fn inner(&self) -> &(dyn TransactionModel + Sync) {
        match self {
            LimitModel::Nbd(m) => m,
            LimitModel::Poisson(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::assert_gradient;

    fn sample() -> Histories {
        crate::fit::sample_histories()
    }

    fn histories() -> Vec<History> {
        vec![
            History { x: 0, t_x: 0.0, t: 38.86 },
            History { x: 2, t_x: 30.43, t: 38.86 },
            History { x: 7, t_x: 29.43, t: 35.0 },
            History { x: 12, t_x: 31.0, t: 31.5 },
            History { x: 40, t_x: 300.0, t: 365.0 },
        ]
    }

    /// |got − want| ≤ rel·|want| + 10⁻¹²: relative, but with an absolute floor far below anything
    /// a prediction reports (P(X(1) = 10) ≈ 10⁻¹⁶ differs by its own O(1/r) or O(a) terms).
    fn close(what: &str, got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs() + 1e-12, "{what}: {got} vs {want} (rel {rel})");
    }

    /// Every prediction of `limit` equals that of `full` to `rel`.
    fn assert_same_predictions(limit: &dyn TransactionModel, full: &dyn TransactionModel, rel: f64) {
        let ts = [1.0, 30.0, 90.0, 365.0];
        for t in ts {
            close("E[X(t)]", limit.expected_purchases(t), full.expected_purchases(t), rel);
            for k in [0, 1, 3, 10] {
                close("P(X(t) = k)", limit.probability_of_purchases(t, k), full.probability_of_purchases(t, k), rel);
            }
        }
        for h in histories() {
            close("P(alive)", limit.p_alive(&h), full.p_alive(&h), rel);
            let (mut e1, mut e2, mut p1, mut p2) = ([0.0; 4], [0.0; 4], [0.0; 4], [0.0; 4]);
            limit.if_alive_many(h.x, h.t, &ts, &mut e1, &ts, &mut p1);
            full.if_alive_many(h.x, h.t, &ts, &mut e2, &ts, &mut p2);
            let (mut c1, mut c2) = ([0.0; 4], [0.0; 4]);
            limit.conditional_expected_purchases_many(&ts, &h, &mut c1);
            full.conditional_expected_purchases_many(&ts, &h, &mut c2);
            for i in 0..ts.len() {
                let t = ts[i];
                close("E[Y | alive]", e1[i], e2[i], rel);
                close("P(purchase | alive)", p1[i], p2[i], rel);
                close("E[Y] many", c1[i], c2[i], rel);
                close(
                    "E[Y]",
                    limit.conditional_expected_purchases(t, &h),
                    full.conditional_expected_purchases(t, &h),
                    rel,
                );
                close(
                    "P(purchase)",
                    limit.probability_of_purchase_within(t, &h),
                    full.probability_of_purchase_within(t, &h),
                    rel,
                );
            }
            close("next purchase", crate::next_purchase_median(limit, &h), crate::next_purchase_median(full, &h), rel);
        }
    }

    #[test]
    fn nbd_is_bgnbd_mbgnbd_and_paretonbd_without_dropout() {
        let data = sample();
        let nbd = Nbd::new(0.24, 4.4).unwrap();
        // BG/NBD and MBG/NBD at a = 10⁻⁹ (E[p] = 4·10⁻¹⁰): the differences are O(a).
        for variant in [Variant::Bg, Variant::Mbg] {
            let full = BgNbd::new(variant, 0.24, 4.4, 1e-9, 2.4).unwrap();
            close("LL", nbd.log_likelihood(&data), full.log_likelihood(&data), 1e-8);
            assert_same_predictions(&nbd, &full, 1e-6);
        }
        // Pareto/NBD at s = 10⁻⁹ (E[μ] = 10⁻¹¹ per unit of time).
        let pareto = ParetoNbd::new(0.24, 4.4, 1e-9, 100.0).unwrap();
        close("LL", nbd.log_likelihood(&data), pareto.log_likelihood(&data), 1e-8);
        assert_same_predictions(&nbd, &pareto, 1e-6);
    }

    #[test]
    fn poisson_is_nbd_and_bgnbd_with_one_rate_and_no_dropout() {
        let data = sample();
        let (r0, alpha0) = (0.5, 4.0);
        let poisson = Poisson::new(r0 / alpha0).unwrap();
        // r, α = 10⁸ (r0, α0): the Gamma's coefficient of variation is 1/√r = 1.4·10⁻⁴ and the
        // differences are O((k − λt)²/r): up to 2·10⁻⁵ for P(X(365) = 10), where λt = 46; a
        // larger r trades them for rounding in ln Γ(r+k) − ln Γ(r) (ln Γ(r) ≈ 10⁹ here).
        let nbd = Nbd::new(1e8 * r0, 1e8 * alpha0).unwrap();
        close("LL", poisson.log_likelihood(&data), nbd.log_likelihood(&data), 1e-6);
        assert_same_predictions(&poisson, &nbd, 1e-4);
        // BG/NBD also at a = 10⁻¹³: P(X(t) = k) has an absolute O(a) term a/(b+k−1) · P(≥ k).
        let full = BgNbd::new(Variant::Bg, 1e8 * r0, 1e8 * alpha0, 1e-13, 2.4).unwrap();
        close("LL", poisson.log_likelihood(&data), full.log_likelihood(&data), 1e-6);
        assert_same_predictions(&poisson, &full, 1e-4);
        // The point-mass posterior gives the exponential's median ln 2 / λ.
        let h = History { x: 3, t_x: 10.0, t: 20.0 };
        close("median", crate::next_purchase_median(&poisson, &h), std::f64::consts::LN_2 * alpha0 / r0, 1e-12);
    }

    #[test]
    fn nbd_likelihood_is_the_gamma_poisson_term_by_term() {
        let m = Nbd::new(0.7, 3.0).unwrap();
        let (x, t) = (4.0f64, 20.0f64);
        let want = (ln_gamma(0.7 + x) - ln_gamma(0.7)).exp() * 3f64.powf(0.7) / (3.0 + t).powf(0.7 + x);
        let data = Histories::from_histories([History { x: 4, t_x: 12.0, t }]).unwrap();
        close("LL", m.log_likelihood(&data), want.ln(), 1e-13);
        // Σₖ P(X(t) = k) = 1 and Σₖ k P = E[X(t)], for both limits.
        for model in [&m as &dyn TransactionModel, &Poisson::new(0.3).unwrap()] {
            let probs: Vec<f64> = (0..3000).map(|k| model.probability_of_purchases(39.0, k)).collect();
            let mean: f64 = probs.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
            close("Σ P", probs.iter().sum(), 1.0, 1e-10);
            close("Σ k P", mean, model.expected_purchases(39.0), 1e-9);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let data = sample();
        for params in [[0.24f64, 4.4], [2.0, 0.5], [300.0, 40.0]] {
            let ll = |theta: &[f64], grad: &mut [f64]| {
                let out = nbd_log_likelihood(&data, [theta[0], theta[1]]);
                grad.copy_from_slice(&out[1..]);
                out[0]
            };
            assert_gradient(&ll, &params.map(f64::ln), 1e-6);
        }
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let (sx, st) = poisson_sums(&data);
            grad[0] = sx - theta[0].exp() * st;
            Poisson::new(theta[0].exp()).unwrap().log_likelihood(&data)
        };
        for lambda in [0.01f64, 0.5, 3.0] {
            assert_gradient(&ll, &[lambda.ln()], 1e-6);
        }
    }

    fn boundary(model: &'static str, params: &[(&'static str, f64)]) -> FitError {
        FitError::Boundary { model, params: params.to_vec(), reason: String::new() }
    }

    #[test]
    fn boundaries_point_at_the_limit_their_estimates_tend_to() {
        let limit = |e: &FitError| boundary_limit(e).map(|(l, _)| l);
        // a → 0: no drop-out.
        let e = boundary("bgnbd", &[("r", 2.0), ("alpha", 40.0), ("a", 1.8e-10), ("b", 5.7e4)]);
        assert_eq!(limit(&e), Some(Limit::Nbd));
        let (_, why) = boundary_limit(&e).unwrap();
        assert!(
            why.starts_with("nobody appears to drop out (the drop-out probability p ~ Beta(a, b) tends to 0"),
            "{why}"
        );
        assert_eq!(
            limit(&boundary("mbgnbd", &[("r", 2.0), ("alpha", 40.0), ("a", 1e-4), ("b", 0.2)])),
            Some(Limit::Nbd)
        );
        // The issue's new shop: p → 1 (a ≈ 148, b ≈ 0.02) is no nested limit here.
        assert_eq!(limit(&boundary("bgnbd", &[("r", 8.6e6), ("alpha", 1.7e11), ("a", 148.0), ("b", 0.02)])), None);
        // a, b → ∞ with a/(a+b) = 0.2: one drop-out probability for everyone, not implemented.
        assert_eq!(limit(&boundary("bgnbd", &[("r", 2.0), ("alpha", 40.0), ("a", 2e9), ("b", 8e9)])), None);
        // Pareto/NBD: E[μ]/E[λ] = (10⁻⁶/1)/(2/40) = 2·10⁻⁵.
        let pareto = boundary("paretonbd", &[("r", 2.0), ("alpha", 40.0), ("s", 1e-6), ("beta", 1.0)]);
        assert_eq!(limit(&pareto), Some(Limit::Nbd));
        assert_eq!(limit(&boundary("paretonbd", &[("r", 2.0), ("alpha", 40.0), ("s", 0.5), ("beta", 10.0)])), None);
        // NBD with r, α → ∞: one rate.
        let nbd = boundary("nbd", &[("r", 8.4e3), ("alpha", 1.7e6)]);
        assert_eq!(limit(&nbd), Some(Limit::Poisson));
        assert!(boundary_limit(&nbd).unwrap().1.contains("λ = r/α = 0.0049"), "{:?}", boundary_limit(&nbd));
        assert_eq!(limit(&boundary("nbd", &[("r", 1e-3), ("alpha", 1e-2)])), None);
        assert_eq!(limit(&FitError::Degenerate { model: "bgnbd", reason: String::new() }), None);
    }

    #[test]
    fn few_repeat_buyers_get_no_limit() {
        // 1 of 40 customers (2.5 %) bought again: the boundary is blamed on that.
        let mut items = vec![(History { x: 0, t_x: 0.0, t: 100.0 }, 39.0)];
        items.push((History { x: 1, t_x: 50.0, t: 100.0 }, 1.0));
        let data = Histories::new(items).unwrap();
        let e = boundary("bgnbd", &[("r", 2.0), ("alpha", 40.0), ("a", 1e-10), ("b", 1.0)]);
        assert!(fit_limit(&e, &data, &FitOptions::default()).is_none());
        // A model's own NBD boundary is not a fallback source (the chain starts at a full model).
        assert!(
            fit_limit(&boundary("nbd", &[("r", 1e4), ("alpha", 1e5)]), &sample(), &FitOptions::default()).is_none()
        );
    }
}
