//! Maximum likelihood: a BFGS optimiser on log-parameters, the observed information, and the
//! report every model's `fit` returns.
//!
//! All model parameters are positive, so the optimiser works on θ = ln(parameter): the search is
//! unconstrained, steps are relative, and a parameter can never cross zero. The objective is the
//! mean log-likelihood per customer so that tolerances do not depend on the size of the data.

use crate::data::Histories;
use serde::Serialize;
use thiserror::Error;

use crate::data::DataError;

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FitError {
    /// The input data are invalid.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The data cannot identify the model (e.g. nobody made a repeat purchase).
    #[error("the data cannot identify the {model} model: {reason}")]
    Degenerate {
        /// Model name.
        model: &'static str,
        /// What is missing.
        reason: String,
    },
    /// The optimiser stopped without meeting the convergence tolerance.
    #[error(
        "{model} fit did not converge after {iterations} iterations (gradient norm {gradient_norm:.3e}); last parameters: {}",
        format_params(params)
    )]
    NotConverged {
        /// Model name.
        model: &'static str,
        /// Iterations done.
        iterations: usize,
        /// Max-norm of the gradient of the mean log-likelihood with respect to the log-parameters.
        gradient_norm: f64,
        /// The parameters where it stopped.
        params: Vec<(&'static str, f64)>,
    },
    /// The likelihood has no proper maximum inside the parameter space: the optimiser stopped
    /// on a ridge or plateau that runs off to a boundary (a parameter towards 0 or infinity),
    /// where the data cannot tell the parameters apart. See [`diagnose`] for the tests.
    #[error("the data cannot identify the {} model: {reason}", crate::title(model))]
    Boundary {
        /// Model name.
        model: &'static str,
        /// The parameters where the optimiser stopped.
        params: Vec<(&'static str, f64)>,
        /// Which parameters run off and why the fit is not trusted, in words.
        reason: String,
    },
}

impl FitError {
    /// Appends `note` (e.g. how many customers made a repeat purchase) to a
    /// [`FitError::Boundary`] reason; other errors are returned unchanged.
    pub(crate) fn with_note(self, note: &str) -> FitError {
        match self {
            FitError::Boundary { model, params, reason } => {
                FitError::Boundary { model, params, reason: format!("{reason}; {note}") }
            }
            other => other,
        }
    }
}

/// A number for a message: fixed-point in the usual range, scientific outside it.
pub(crate) fn format_number(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) { format!("{v:.2e}") } else { format!("{v:.4}") }
}

fn format_params(params: &[(&'static str, f64)]) -> String {
    params.iter().map(|(n, v)| format!("{n} = {v:.6}")).collect::<Vec<_>>().join(", ")
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Maximum BFGS iterations.
    pub max_iterations: usize,
    /// Convergence when every component of the gradient of the mean log-likelihood with respect
    /// to the log-parameters is below this.
    pub gradient_tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { max_iterations: 500, gradient_tolerance: 1e-9 }
    }
}

/// One fitted parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    /// The paper's name (`r`, `alpha`, `a`, `b`, `s`, `beta`, `p`, `q`, `gamma`, `delta`).
    pub name: &'static str,
    /// Maximum-likelihood estimate.
    pub value: f64,
    /// Standard error from the observed information (delta method from the log scale); `None`
    /// when the information matrix is not positive definite at the optimum.
    pub std_error: Option<f64>,
    /// Lower end of the 95 % interval exp(ln θ̂ − 1.96 · se(ln θ̂)), which stays positive.
    pub lower: Option<f64>,
    /// Upper end of the 95 % interval exp(ln θ̂ + 1.96 · se(ln θ̂)).
    pub upper: Option<f64>,
}

/// The outcome of a maximum-likelihood fit, shared by all models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// Model name (`bgnbd`, `mbgnbd`, `paretonbd`, `gammagamma`, `bgbb`, `sbg`).
    pub model: &'static str,
    /// Estimates in the paper's order.
    pub params: Vec<Param>,
    /// Maximised log-likelihood (sum over customers, with the data's weights).
    pub log_likelihood: f64,
    /// BFGS iterations.
    pub iterations: usize,
    /// Likelihood evaluations (each with its gradient).
    pub evaluations: usize,
    /// Max-norm of the final gradient of the mean log-likelihood (log-parameters).
    pub gradient_norm: f64,
    /// Number of customers (sum of weights).
    pub customers: f64,
    /// Number of distinct tuples the likelihood was evaluated on.
    pub distinct: usize,
    /// Akaike information criterion −2 LL + 2k.
    pub aic: f64,
    /// Bayesian information criterion −2 LL + k ln n.
    pub bic: f64,
}

impl FitReport {
    /// The estimate of a parameter by name.
    pub fn param(&self, name: &str) -> Option<f64> {
        self.params.iter().find(|p| p.name == name).map(|p| p.value)
    }
}

/// A log-likelihood with its gradient, both with respect to the log-parameters.
pub(crate) trait LogLikelihood {
    /// Returns the total log-likelihood at `theta` = ln(params) and writes its gradient.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64;
}

impl<F: Fn(&[f64], &mut [f64]) -> f64> LogLikelihood for F {
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self(theta, grad)
    }
}

/// |ln θ| beyond which the optimiser does not evaluate the likelihood (θ outside
/// [10⁻¹², 10¹²]): the objective is +∞ there, so a search that runs off towards a boundary stops
/// at this wall within a few line-search halvings instead of overflowing ln Γ and powers, and
/// [`diagnose`] names the parameters that ran off.
const LOG_WALL: f64 = 12.0 * std::f64::consts::LN_10;

/// |ln θ| beyond which an estimate counts as having run off to a boundary (θ outside
/// [10⁻¹⁰, 10¹⁰]). Published estimates of every model here lie within 10⁻³…10⁴ (the scale
/// parameters α, β, γ carry the caller's time or money unit, which moves them by a few powers
/// of ten at most); 10¹⁰ leaves room for any unit.
pub(crate) const LOG_BOUND: f64 = 10.0 * std::f64::consts::LN_10;

/// A parameter that moved by more than this (a factor 10³) on the log scale from its start is
/// named among those running off in a [`FitError::Boundary`].
const RAN_FAR: f64 = 3.0 * std::f64::consts::LN_10;

/// A search that fails to converge after moving some parameter by more than this (a factor
/// 10⁶) from its start is reported as [`FitError::Boundary`] rather than
/// [`FitError::NotConverged`]: it was walking off towards a boundary, not slowly converging.
const RAN_OFF: f64 = 6.0 * std::f64::consts::LN_10;

/// Largest standard error of ln θ that counts as identified. se(ln θ) = 5 makes the 95 %
/// interval exp(ln θ̂ ± 1.96 · 5) span a factor of 3·10⁸: the data do not pin θ down at all.
/// Estimates on real data have se(ln θ) well below 1 (CDNOW's BG/NBD: 0.05 to 0.29).
pub(crate) const SE_LOG_MAX: f64 = 5.0;

/// Above this many distinct tuples the observed information uses forward differences.
const CENTRAL_LIMIT: usize = 20_000;

/// Distinct tuples in the warm-start samples, smallest first; a sample of n is used when the
/// data has at least 3n distinct tuples. BFGS does most of its iterations far from the optimum,
/// where a small sample points the same way as the full data: the 2,500-tuple stage takes those
/// iterations at a hundredth of the cost, the 25,000-tuple stage refines, and the full data
/// needs only a few polishing steps.
pub(crate) const WARM_SAMPLES: [usize; 2] = [2_500, 25_000];

/// Where BFGS stopped.
struct Bfgs {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    /// Inverse-Hessian approximation (of the mean objective).
    h: Vec<Vec<f64>>,
    iterations: usize,
    evaluations: usize,
}

/// Minimises f(θ) = −LL(θ)/customers by BFGS from `x` with inverse-Hessian guess `h` (identity
/// and Nocedal & Wright's first-step scaling when `None`), until the max-norm of the gradient is
/// below `tolerance`. Errors carry the last point, iterations and gradient norm.
fn bfgs(
    ll: &dyn LogLikelihood,
    customers: f64,
    x: Vec<f64>,
    h: Option<Vec<Vec<f64>>>,
    tolerance: f64,
    max_iterations: usize,
) -> Result<Bfgs, (Vec<f64>, usize, f64)> {
    let n = x.len();
    let scale = 1.0 / customers;
    let mut evaluations = 0usize;
    let mut objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        evaluations += 1;
        if theta.iter().any(|t| t.abs() > LOG_WALL) {
            return f64::INFINITY;
        }
        let v = ll.eval(theta, grad);
        for g in grad.iter_mut() {
            *g *= -scale;
        }
        if v.is_finite() && grad.iter().all(|g| g.is_finite()) { -v * scale } else { f64::INFINITY }
    };
    let mut x = x;
    let mut g = vec![0.0; n];
    let mut f = objective(&x, &mut g);
    if !f.is_finite() {
        return Err((x, 0, f64::NAN));
    }
    let mut first_update = h.is_none();
    let mut h = h.unwrap_or_else(|| identity(n));
    let mut iterations = 0;
    let mut stalled = 0;
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    loop {
        let gnorm = max_abs(&g);
        if gnorm <= tolerance || (stalled >= 3 && gnorm <= 1e3 * tolerance) {
            break;
        }
        if iterations >= max_iterations {
            return Err((x, iterations, gnorm));
        }
        iterations += 1;
        let mut d = mat_vec(&h, &g, -1.0);
        if dot(&d, &g) >= 0.0 {
            h = identity(n);
            first_update = true;
            d = g.iter().map(|v| -v).collect();
        }
        // A step changes no parameter by more than a factor e² at once.
        let mut step = (2.0 / max_abs(&d)).min(1.0);
        let slope = dot(&d, &g);
        let mut accepted = false;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            let f_new = objective(&x_new, &mut g_new);
            // Armijo; or, near the optimum where f changes only in its last bits, a step that
            // keeps f within rounding and shrinks the gradient.
            let within_rounding = f_new <= f + 8.0 * f64::EPSILON * f.abs() && max_abs(&g_new) < gnorm;
            if f_new <= f + 1e-4 * step * slope || within_rounding {
                stalled = if f - f_new <= 1e-15 * f.abs().max(1.0) { stalled + 1 } else { 0 };
                f = f_new;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // No decrease along a descent direction: we are at the optimum to machine precision,
            // or the problem is flat; accept only if the gradient is already small.
            if gnorm <= 1e3 * tolerance {
                break;
            }
            return Err((x, iterations, gnorm));
        }
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if first_update {
                // Nocedal & Wright (6.20): scale the initial inverse Hessian before the first update.
                let scale = sy / dot(&y, &y);
                h = identity(n).into_iter().map(|row| row.into_iter().map(|v| v * scale).collect()).collect();
                first_update = false;
            }
            bfgs_update(&mut h, &s, &y, sy);
        }
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
    }
    Ok(Bfgs { x, f, g, h, iterations, evaluations })
}

/// A cheaper stand-in for the likelihood, used to find a starting point: a systematic sample of
/// the data with weights scaled up, so its mean log-likelihood estimates the full one.
pub(crate) struct WarmStart<'a> {
    pub(crate) ll: &'a dyn LogLikelihood,
    pub(crate) customers: f64,
}

/// A log-likelihood with gradient evaluated on given data (the full data or a warm-up sample).
pub(crate) type DataLogLikelihood<'a> = dyn Fn(&Histories, &[f64], &mut [f64]) -> f64 + Sync + 'a;

/// [`maximize`] for a model whose likelihood is evaluated on [`Histories`]: builds the
/// [`WARM_SAMPLES`] stages the data is large enough for, then fits.
pub(crate) fn maximize_staged(
    model: &'static str,
    names: &[&'static str],
    data: &Histories,
    eval: &DataLogLikelihood<'_>,
    start: &[f64],
    options: &FitOptions,
) -> Result<FitReport, FitError> {
    maximize_staged_with(model, names, data, eval, start, options, None)
}

/// [`maximize_staged`] with the model's closed-form Hessian for the observed information
/// (otherwise it differences the gradient).
pub(crate) fn maximize_staged_with(
    model: &'static str,
    names: &[&'static str],
    data: &Histories,
    eval: &DataLogLikelihood<'_>,
    start: &[f64],
    options: &FitOptions,
    hessian: Option<&DataHessian<'_>>,
) -> Result<FitReport, FitError> {
    let samples: Vec<Histories> = WARM_SAMPLES.iter().filter_map(|&n| data.sample(n)).collect();
    let lls: Vec<_> = samples.iter().map(|s| move |theta: &[f64], grad: &mut [f64]| eval(s, theta, grad)).collect();
    let warm: Vec<WarmStart<'_>> = samples
        .iter()
        .zip(&lls)
        .map(|(s, ll)| WarmStart { ll: ll as &dyn LogLikelihood, customers: s.customers() })
        .collect();
    let full = |theta: &[f64], grad: &mut [f64]| eval(data, theta, grad);
    let hessian = hessian.map(|h| move |theta: &[f64]| h(data, theta));
    let hessian = hessian.as_ref().map(|h| h as &Hessian<'_>);
    maximize_with(model, names, &full, &warm, start, data.customers(), data.distinct(), options, hessian)
        .map_err(|e| e.with_note(&repeat_note(data, names.len())))
}

/// The Hessian of the total log-likelihood at `theta` = ln(params), from a model that has it
/// in closed form (rows of the same length as `theta`).
pub(crate) type Hessian<'a> = dyn Fn(&[f64]) -> Vec<Vec<f64>> + 'a;

/// [`Hessian`] on given data.
pub(crate) type DataHessian<'a> = dyn Fn(&Histories, &[f64]) -> Vec<Vec<f64>> + Sync + 'a;

/// How many customers made a repeat purchase, for a [`FitError::Boundary`] of a transaction
/// model: too few of them is the usual cause (a new shop of one-time buyers).
fn repeat_note(data: &Histories, parameters: usize) -> String {
    let total = data.customers();
    let repeat = data.repeat_share() * total;
    let share = repeat / total;
    if share < REPEAT_FEW {
        format!(
            "only {} of {} customers ({:.2} %) made a repeat purchase: too few repeat purchases to estimate the \
             model's {parameters} parameters",
            format_count(repeat),
            format_count(total),
            100.0 * share
        )
    } else {
        format!("{} of {} customers made a repeat purchase", format_count(repeat), format_count(total))
    }
}

/// Below this share of repeat buyers a boundary fit is blamed on too few repeat purchases.
const REPEAT_FEW: f64 = 0.05;

/// A customer count with thousands separators: 76900 → "76,900".
fn format_count(v: f64) -> String {
    let digits = format!("{:.0}", v.round());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Maximises `ll` from `start` (natural parameters) and builds the report; the observed
/// information differences the gradient ([`maximize_with`] takes a closed-form Hessian).
///
/// With `warm` starts, BFGS first converges (loosely) on each sample in turn, then continues on
/// the full data from the last sample's optimum and inverse Hessian: on large data that takes a
/// handful of full evaluations instead of dozens.
#[allow(clippy::too_many_arguments)]
pub(crate) fn maximize(
    model: &'static str,
    names: &[&'static str],
    ll: &dyn LogLikelihood,
    warm: &[WarmStart<'_>],
    start: &[f64],
    customers: f64,
    distinct: usize,
    options: &FitOptions,
) -> Result<FitReport, FitError> {
    maximize_with(model, names, ll, warm, start, customers, distinct, options, None)
}

/// [`maximize`], with the observed information from `hessian` when the model has one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn maximize_with(
    model: &'static str,
    names: &[&'static str],
    ll: &dyn LogLikelihood,
    warm: &[WarmStart<'_>],
    start: &[f64],
    customers: f64,
    distinct: usize,
    options: &FitOptions,
    hessian: Option<&Hessian<'_>>,
) -> Result<FitReport, FitError> {
    let not_converged = |x: &[f64], iterations, gradient_norm| FitError::NotConverged {
        model,
        iterations,
        gradient_norm,
        params: names.iter().zip(x).map(|(name, t)| (*name, t.exp())).collect(),
    };
    let mut x: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut h = None;
    let mut iterations = 0;
    let mut evaluations = 0;
    for stage in warm {
        // A failed warm start is not an error: the next stage starts from where the last good
        // one ended (or from `start`).
        if let Ok(run) = bfgs(stage.ll, stage.customers, x.clone(), h.clone(), 1e-6, options.max_iterations) {
            x = run.x;
            h = Some(run.h);
            iterations += run.iterations;
            evaluations += run.evaluations;
        }
    }
    let start_log: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let run = match bfgs(
        ll,
        customers,
        x,
        h,
        options.gradient_tolerance,
        options.max_iterations.saturating_sub(iterations),
    ) {
        Ok(run) => run,
        // Stopped far out: not a slow convergence but a search running off to a boundary.
        Err((x, i, _)) if x.iter().zip(&start_log).any(|(t, s)| t.abs() > LOG_BOUND || (t - s).abs() > RAN_OFF) => {
            let why =
                format!("the optimiser was still moving that way when it stopped after {} iterations", iterations + i);
            return Err(diagnose(model, names, &start_log, &x, None, None, Some(why))
                .unwrap_or_else(|| not_converged(&x, iterations + i, f64::NAN)));
        }
        Err((x, i, g)) => return Err(not_converged(&x, iterations + i, g)),
    };
    let iterations = iterations + run.iterations;
    let evaluations = evaluations + run.evaluations;
    let x = run.x;
    let gradient_norm = max_abs(&run.g);
    let log_likelihood = -run.f * customers;
    // Gradient of the total log-likelihood at the optimum (the run's g is of the mean objective).
    let g_total: Vec<f64> = run.g.iter().map(|g| -g * customers).collect();
    let info = match hessian {
        Some(hessian) => {
            let info: Vec<Vec<f64>> =
                hessian(&x).into_iter().map(|row| row.into_iter().map(|v| -v).collect()).collect();
            info.iter().flatten().all(|v| v.is_finite()).then_some(info)
        }
        None => observed_information(ll, &x, &g_total, distinct),
    };
    let cov = info.as_deref().and_then(inverse_spd);
    if let Some(err) = diagnose(model, names, &start_log, &x, info.as_deref(), cov.as_deref(), None) {
        return Err(err);
    }
    let params = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let value = x[i].exp();
            let se_log = cov.as_ref().map(|c| c[i][i].sqrt()).filter(|v| v.is_finite());
            Param {
                name,
                value,
                std_error: se_log.map(|s| s * value),
                lower: se_log.map(|s| (x[i] - 1.96 * s).exp()),
                upper: se_log.map(|s| (x[i] + 1.96 * s).exp()),
            }
        })
        .collect();
    let k = names.len() as f64;
    Ok(FitReport {
        model,
        params,
        log_likelihood,
        iterations,
        evaluations,
        gradient_norm,
        customers,
        distinct,
        aic: -2.0 * log_likelihood + 2.0 * k,
        bic: -2.0 * log_likelihood + k * customers.ln(),
    })
}

/// Whether a converged fit is a proper, identified maximum; if not, the
/// [`FitError::Boundary`] that says which parameters run off and why the fit is refused.
///
/// Three tests, on the log scale θ = ln(parameter) the optimiser works on (a search that did
/// not converge is diagnosed by its caller, with `stopped` saying so, when some parameter
/// moved by more than [`RAN_OFF`] or beyond [`LOG_BOUND`]):
/// 1. an estimate beyond [`LOG_BOUND`] (θ outside [10⁻¹⁰, 10¹⁰]): the search ran off;
/// 2. the observed information is not positive definite (or not finite): the log-likelihood
///    is flat or rising along some direction, so the point is no maximum and there are no
///    standard errors;
/// 3. some se(ln θ) above [`SE_LOG_MAX`]: the maximum is so flat that the data leave the
///    parameter free over many orders of magnitude.
///
/// The parameters named are those with a large component (|vᵢ| ≥ 0.3) in the flattest
/// direction v of the information (the eigenvector of its smallest eigenvalue, by Jacobi
/// rotations; without a finite information, the way the search travelled from `start`), plus
/// any beyond [`LOG_BOUND`] or more than a factor 10³ from `start`; each is said to grow or shrink as seen from `start`. E.g. BG/NBD on one-time buyers: r and α grow together with r/α
/// (the mean purchase rate) fixed, the Gamma tending to a point mass the data cannot reject.
fn diagnose(
    model: &'static str,
    names: &[&'static str],
    start: &[f64],
    x: &[f64],
    info: Option<&[Vec<f64>]>,
    cov: Option<&[Vec<f64>]>,
    stopped: Option<String>,
) -> Option<FitError> {
    let n = x.len();
    let beyond = |i: usize| x[i].abs() > LOG_BOUND;
    let curvature = match (info, cov) {
        _ if stopped.is_some() => stopped,
        (None, _) => {
            Some("the log-likelihood's curvature there is not finite, so there are no standard errors".to_owned())
        }
        (Some(_), None) => Some(
            "the log-likelihood is not curved downwards in every direction there (the observed information is \
             not positive definite), so this is no maximum and there are no standard errors"
                .to_owned(),
        ),
        (Some(_), Some(c)) => (0..n).find(|&i| c[i][i].sqrt().is_nan() || c[i][i].sqrt() > SE_LOG_MAX).map(|i| {
            format!(
                "the standard error of ln {} is {} (above {SE_LOG_MAX}): the likelihood is nearly flat there",
                names[i],
                format_number(c[i][i].sqrt())
            )
        }),
    };
    if curvature.is_none() && !(0..n).any(beyond) {
        return None;
    }
    let travelled: Vec<f64> = x.iter().zip(start).map(|(a, b)| a - b).collect();
    let direction = info.and_then(flattest_direction).unwrap_or_else(|| {
        let norm = dot(&travelled, &travelled).sqrt();
        travelled.iter().map(|t| if norm > 0.0 { t / norm } else { 0.0 }).collect()
    });
    let (mut grow, mut shrink, mut flat) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        if beyond(i) || direction[i].abs() >= 0.3 || travelled[i].abs() > RAN_FAR {
            // Up or down as seen from the start; the direction's sign is only defined jointly.
            if travelled[i].abs() < 1e-2 {
                flat.push(i)
            } else if x[i] > start[i] {
                grow.push(i)
            } else {
                shrink.push(i)
            }
        }
    }
    let list = |idx: &[usize], verb_one: &str, verb_many: &str| -> Option<String> {
        if idx.is_empty() {
            return None;
        }
        let who: Vec<&str> = idx.iter().map(|&i| names[i]).collect();
        let who = match who.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => who.join(""),
        };
        let values: Vec<String> =
            idx.iter().map(|&i| format!("{} = {}", names[i], format_number(x[i].exp()))).collect();
        let verb = if idx.len() == 1 { verb_one } else { verb_many };
        Some(format!("{who} {verb} ({})", values.join(", ")))
    };
    let moves: Vec<String> = [
        list(&grow, "grows without bound", "grow without bound"),
        list(&shrink, "shrinks towards 0", "shrink towards 0"),
        list(&flat, "is not identified", "are not identified"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let moves = if moves.is_empty() { "the estimates sit on a flat ridge".to_owned() } else { moves.join(" and ") };
    let why = curvature.unwrap_or_else(|| "beyond 1e10 or 1e-10 the estimates mean nothing".to_owned());
    Some(FitError::Boundary {
        model,
        params: names.iter().zip(x).map(|(name, t)| (*name, t.exp())).collect(),
        reason: format!("{moves}: {why}"),
    })
}

/// Unit eigenvector of the smallest eigenvalue of a symmetric matrix, by cyclic Jacobi
/// rotations (Golub & Van Loan, *Matrix Computations*, 4th ed., §8.5; the rotation as in
/// Numerical Recipes §11.1: θ = (a_qq − a_pp)/(2a_pq), t = sgn θ/(|θ| + √(θ²+1))). At most 50
/// sweeps (a 4×4 matrix needs about 5); `None` if the matrix is not finite.
#[allow(clippy::needless_range_loop)]
fn flattest_direction(m: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = m.len();
    if n == 0 || m.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let mut a = m.to_vec();
    let mut v = identity(n);
    let scale: f64 = m.iter().flatten().map(|x| x * x).sum();
    for _ in 0..50 {
        let off: f64 = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (kp, kq) = (a[k][p], a[k][q]);
                    a[k][p] = c * kp - s * kq;
                    a[k][q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (a[p][k], a[q][k]);
                    a[p][k] = c * pk - s * qk;
                    a[q][k] = s * pk + c * qk;
                }
                for k in 0..n {
                    let (kp, kq) = (v[k][p], v[k][q]);
                    v[k][p] = c * kp - s * kq;
                    v[k][q] = s * kp + c * kq;
                }
            }
        }
    }
    let i = (0..n).min_by(|&i, &j| a[i][i].total_cmp(&a[j][j]))?;
    let out: Vec<f64> = (0..n).map(|k| v[k][i]).collect();
    out.iter().all(|x| x.is_finite()).then_some(out)
}

// Small dense matrices: index loops mirror the textbook formulas.
#[allow(clippy::needless_range_loop)]
/// Observed information −∇² LL on the log scale, by finite differences of the analytic
/// gradient: central (step 10⁻⁴, error O(h²)) on up to [`CENTRAL_LIMIT`] distinct tuples,
/// forward from the optimum's gradient `g0` (step 10⁻⁵, relative error about 10⁻⁵) above it,
/// where each gradient costs more than the accuracy is worth for a standard error.
fn observed_information(ll: &dyn LogLikelihood, theta: &[f64], g0: &[f64], distinct: usize) -> Option<Vec<Vec<f64>>> {
    let n = theta.len();
    let central = distinct <= CENTRAL_LIMIT;
    let h = if central { 1e-4 } else { 1e-5 };
    let mut m = vec![vec![0.0; n]; n];
    let mut gp = vec![0.0; n];
    let mut gm = g0.to_vec();
    let mut t = theta.to_vec();
    for j in 0..n {
        t[j] = theta[j] + h;
        ll.eval(&t, &mut gp);
        if central {
            t[j] = theta[j] - h;
            ll.eval(&t, &mut gm);
        }
        t[j] = theta[j];
        let width = if central { 2.0 * h } else { h };
        for i in 0..n {
            m[i][j] = -(gp[i] - gm[i]) / width;
        }
    }
    for i in 0..n {
        for j in 0..i {
            let avg = 0.5 * (m[i][j] + m[j][i]);
            m[i][j] = avg;
            m[j][i] = avg;
        }
    }
    m.iter().flatten().all(|v| v.is_finite()).then_some(m)
}

#[allow(clippy::needless_range_loop)]
/// Inverse of a symmetric positive-definite matrix by Cholesky; `None` if not positive definite.
pub(crate) fn inverse_spd(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = m[i][j];
            for k in 0..j {
                sum -= l[i][k] * l[j][k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i][i] = sum.sqrt();
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    // Solve L Lᵀ X = I column by column.
    let mut inv = vec![vec![0.0; n]; n];
    for col in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let mut sum = if i == col { 1.0 } else { 0.0 };
            for k in 0..i {
                sum -= l[i][k] * y[k];
            }
            y[i] = sum / l[i][i];
        }
        for i in (0..n).rev() {
            let mut sum = y[i];
            for k in i + 1..n {
                sum -= l[k][i] * inv[k][col];
            }
            inv[i][col] = sum / l[i][i];
        }
    }
    Some(inv)
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn mat_vec(m: &[Vec<f64>], v: &[f64], factor: f64) -> Vec<f64> {
    m.iter().map(|row| factor * dot(row, v)).collect()
}

/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ with ρ = 1 / (yᵀ s) (Nocedal & Wright 6.17).
fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy = mat_vec(h, y, 1.0);
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

/// Central finite-difference gradient of `ll` on the log scale, for tests of analytic gradients.
#[cfg(test)]
pub(crate) fn numeric_gradient(ll: &dyn LogLikelihood, theta: &[f64]) -> Vec<f64> {
    let mut scratch = vec![0.0; theta.len()];
    let mut t = theta.to_vec();
    (0..theta.len())
        .map(|j| {
            let h = 1e-6;
            t[j] = theta[j] + h;
            let up = ll.eval(&t, &mut scratch);
            t[j] = theta[j] - h;
            let down = ll.eval(&t, &mut scratch);
            t[j] = theta[j];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Six CDNOW-like histories (weeks) for the models' likelihood and gradient tests: one-time
/// buyers, a light and a heavy repeater, and a recent first purchase.
#[cfg(test)]
pub(crate) fn sample_history_list() -> Vec<crate::History> {
    let h = |x, tx, t| crate::History::parse(0, x, tx, t).expect("a valid history");
    vec![h(0, 0.0, 38.86), h(2, 30.43, 38.86), h(1, 1.71, 38.86), h(7, 29.43, 35.0), h(0, 0.0, 27.0), h(12, 31.0, 31.5)]
}

/// [`sample_history_list`] as the models take it.
#[cfg(test)]
pub(crate) fn sample_histories() -> crate::Histories {
    crate::Histories::from_histories(sample_history_list()).expect("valid histories")
}

/// Asserts that the analytic gradient matches central differences at `theta`.
#[cfg(test)]
pub(crate) fn assert_gradient(ll: &dyn LogLikelihood, theta: &[f64], rel: f64) {
    let mut analytic = vec![0.0; theta.len()];
    let value = ll.eval(theta, &mut analytic);
    let numeric = numeric_gradient(ll, theta);
    for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        let tol = rel * (a.abs().max(n.abs()) + 1e-6 * value.abs().max(1.0));
        assert!((a - n).abs() <= tol, "component {i}: analytic {a} vs numeric {n} at {theta:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_finds_the_maximum_of_a_log_scale_quadratic() {
        // LL(θ) = −Σ cᵢ (θᵢ − ln tᵢ)² with a coupling term; maximum at params = t.
        let target: [f64; 3] = [0.5, 4.0, 20.0];
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let d: Vec<f64> = theta.iter().zip(target).map(|(t, v)| t - v.ln()).collect();
            grad[0] = -2.0 * d[0] - d[1];
            grad[1] = -8.0 * d[1] - d[0];
            grad[2] = -0.2 * d[2];
            -(d[0] * d[0] + 4.0 * d[1] * d[1] + 0.1 * d[2] * d[2] + d[0] * d[1])
        };
        let fit =
            maximize("test", &["a", "b", "c"], &ll, &[], &[1.0, 1.0, 1.0], 1.0, 1, &FitOptions::default()).unwrap();
        for (p, t) in fit.params.iter().zip(target) {
            assert!((p.value / t - 1.0).abs() < 1e-8, "{} = {} want {t}", p.name, p.value);
        }
        // Information of the quadratic is [[2, 1, 0], [1, 8, 0], [0, 0, 0.2]]; var(θ₃) = 5.
        let se_log_c = fit.params[2].std_error.unwrap() / 20.0;
        assert!((se_log_c - 5f64.sqrt()).abs() < 1e-6, "{se_log_c}");
        assert!(fit.params[2].lower.unwrap() < 20.0 && fit.params[2].upper.unwrap() > 20.0);
        assert!(fit.log_likelihood.abs() < 1e-12);
    }

    #[test]
    fn a_search_that_runs_off_is_a_boundary_and_a_short_one_not_converged() {
        // LL grows without bound as θ → ∞: no maximum.
        let ll = |theta: &[f64], grad: &mut [f64]| {
            grad[0] = 1.0;
            theta[0]
        };
        // Steps change a parameter by at most e² each: 20 iterations carry it past 10⁶.
        let options = FitOptions { max_iterations: 20, ..FitOptions::default() };
        let err = maximize("bgnbd", &["a"], &ll, &[], &[1.0], 1.0, 1, &options).unwrap_err();
        let FitError::Boundary { params, reason, .. } = &err else { panic!("{err:?}") };
        assert_eq!(params[0].0, "a");
        assert!(params[0].1 > 1e6, "{params:?}");
        assert!(reason.starts_with("a grows without bound (a = "), "{reason}");
        assert!(reason.contains("still moving that way when it stopped after 20 iterations"), "{reason}");
        assert!(err.to_string().starts_with("the data cannot identify the BG/NBD model: a grows"), "{err}");
        // Two iterations move it by at most e⁴: too little to tell, so "did not converge".
        let options = FitOptions { max_iterations: 2, ..FitOptions::default() };
        let err = maximize("test", &["a"], &ll, &[], &[1.0], 1.0, 1, &options).unwrap_err();
        let FitError::NotConverged { iterations, gradient_norm, params, .. } = &err else { panic!("{err:?}") };
        assert_eq!((*iterations, *gradient_norm, params[0].0), (2, 1.0, "a"));
        assert!(err.to_string().contains("did not converge after 2 iterations"), "{err}");
    }

    #[test]
    fn a_ridge_is_a_boundary_that_names_the_parameters_along_it() {
        // LL = −(θ₁ − θ₂)² − (θ₃ − 1)²: flat along θ₁ = θ₂ (only the ratio of the first two
        // parameters is identified, like r/α for one-time buyers); BFGS stops at once on the
        // ridge, where the information [[2, −2, 0], [−2, 2, 0], [0, 0, 2]] is singular.
        let ll = |theta: &[f64], grad: &mut [f64]| {
            let d = theta[0] - theta[1];
            grad[0] = -2.0 * d;
            grad[1] = 2.0 * d;
            grad[2] = -2.0 * (theta[2] - 1.0);
            -d * d - (theta[2] - 1.0).powi(2)
        };
        let start = [5.0, 5.0, 1.0];
        let err = maximize("test", &["r", "alpha", "a"], &ll, &[], &start, 1.0, 1, &FitOptions::default()).unwrap_err();
        let FitError::Boundary { reason, .. } = &err else { panic!("{err:?}") };
        assert!(reason.starts_with("r and alpha are not identified (r = 5.0000, alpha = 5.0000): "), "{reason}");
        assert!(!reason.contains(", a = "), "{reason}");
        assert!(reason.contains("not positive definite"), "{reason}");
    }

    #[test]
    fn the_flattest_direction_is_the_smallest_eigenvector() {
        let v = flattest_direction(&[vec![2.0, 1.0], vec![1.0, 2.0]]).unwrap();
        // Eigenvalues 1 and 3; the eigenvector of 1 is (1, −1)/√2 (up to sign).
        assert!((v[0].abs() - 0.5f64.sqrt()).abs() < 1e-12 && (v[0] + v[1]).abs() < 1e-12, "{v:?}");
        assert_eq!(flattest_direction(&[vec![f64::NAN]]), None);
    }

    #[test]
    fn counts_and_numbers_read_well_in_messages() {
        assert_eq!(format_count(76_900.0), "76,900");
        assert_eq!(format_count(500.0), "500");
        assert_eq!(format_count(1_234_567.0), "1,234,567");
        assert_eq!(format_number(8.6e6), "8.60e6");
        assert_eq!(format_number(148.0), "148.0000");
    }

    #[test]
    fn cholesky_inverse_is_exact_and_rejects_indefinite_matrices() {
        let m = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let inv = inverse_spd(&m).unwrap();
        // inverse = 1/8 [[3, −2], [−2, 4]]
        assert!(
            (inv[0][0] - 0.375).abs() < 1e-15 && (inv[0][1] + 0.25).abs() < 1e-15 && (inv[1][1] - 0.5).abs() < 1e-15
        );
        assert!(inverse_spd(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    }
}
