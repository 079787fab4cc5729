//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987, Management Science 33(1)), in the notation
//! of Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions".
//!
//! While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); the lifetime is exponential
//! with rate μ ~ Gamma(s, β). The likelihood (note, eq. 19–22) is
//!
//! L = Γ(r+x) αʳ βˢ / Γ(r) · [ (α+T)^−(r+x) (β+T)^−s + s ∫_{t_x}^{T} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ ],
//!
//! whose integral the note writes as (s/(r+s+x)) · A₀ with a difference of two Gauss
//! hypergeometric functions. That difference cancels catastrophically when t_x is close to T,
//! which is where `lifetimes` loses precision. Here the integral is expanded instead: with
//! m = r+s+x and, for α ≥ β, (β+τ) = (α+τ)(1 − (α−β)/(α+τ)),
//!
//! s ∫ = s Σⱼ (s+1)ⱼ/j! · (α−β)ʲ · [(α+t_x)^−(m+j) − (α+T)^−(m+j)] / (m+j)
//!     = (s/m) (α+t_x)^−m Σⱼ m/(m+j) · (s+1)ⱼ/j! · zʲ · Eⱼ,
//!
//! z = (α−β)/(α+t_x), q = (α+t_x)/(α+T), Eⱼ = 1 − q^(m+j). Every term is positive, and
//! Eⱼ = E₀ + qᵐ (1 − qʲ) with E₀ = −expm1(m ln q) and 1 − qʲ accumulated from 1 − q = (T−t_x)/(α+T),
//! so no step subtracts nearly equal numbers. For α < β the roles of (α, r+x) and (β, s+1) swap.
//!
//! The fit evaluates that series for every distinct history at every iteration; at 10⁵
//! histories it needs about a hundred terms each. Large groups of histories with the same x
//! share one [`ChebTable`] instead: the sum is also F(z) − qᵐ F(zq) with F a ₂F₁ of the group,
//! interpolated once per evaluation, which costs a few dozen multiply-adds per history. The
//! difference form is used only where it keeps at least 13 digits (1 − qᵐ ≥ 10⁻²); histories
//! bought from just before T keep the positive series.

use crate::data::{Histories, History};
use crate::fit::{FitError, FitOptions, FitReport, maximize_staged};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::par::sum_chunks;
use crate::special::{GaussLegendre, digamma, ln_gamma};
use crate::{ParamError, TransactionModel, positive};

/// A Pareto/NBD model: purchase rate Gamma(r, α), drop-out rate Gamma(s, β).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Rate of the purchase-rate distribution.
    pub alpha: f64,
    /// Shape of the drop-out-rate distribution.
    pub s: f64,
    /// Rate of the drop-out-rate distribution.
    pub beta: f64,
}

const NAMES: [&str; 4] = ["r", "alpha", "s", "beta"];

/// The series Σⱼ uⱼ of the module docs and its partial derivatives.
#[derive(Debug, Default, Clone, Copy)]
struct Series {
    /// Σ uⱼ.
    sum: f64,
    /// ∂/∂m.
    dm: f64,
    /// ∂/∂c (the Pochhammer parameter).
    dc: f64,
    /// ∂/∂base through z and q (D held fixed).
    dbase: f64,
    /// ∂/∂D.
    dd: f64,
    /// Whether the terms fell below the tolerance (else `sum` is a partial sum).
    converged: bool,
}

/// Σⱼ m/(m+j) (c)ⱼ/j! zʲ Eⱼ with z = d/(base+t_x) and its derivatives; see the module docs.
/// At most `max_terms` terms; [`Series::converged`] says whether that was enough.
#[allow(clippy::too_many_arguments)]
fn series(m: f64, c: f64, base: f64, d: f64, t_x: f64, t: f64, derivatives: bool, max_terms: u32) -> Series {
    let bx = base + t_x;
    let bt = base + t;
    let z = d / bx;
    let ln_q = bx.ln() - bt.ln();
    let one_minus_q = (t - t_x) / bt;
    let q = bx / bt;
    let e0 = -(m * ln_q).exp_m1();
    let qm = 1.0 - e0;
    let dlnq_dbase = 1.0 / bx - 1.0 / bt;
    let mut out = Series { sum: e0, ..Series::default() };
    if derivatives {
        // j = 0: u₀ = E₀; ∂E/∂m = −q^(m+j) ln q; ∂E/∂base = −q^(m+j) (m+j) ∂ln q/∂base.
        out.dm = -qm * ln_q;
        out.dbase = -qm * m * dlnq_dbase;
    }
    // coef = (c)ⱼ/j! z^(j−1) for j ≥ 1; qj = qʲ; one_minus_qj = 1 − qʲ; harmonic = Σᵢ<ⱼ 1/(c+i).
    let mut coef = c;
    let mut qj = q;
    let mut one_minus_qj = one_minus_q;
    let mut harmonic = 1.0 / c;
    let mut converged = false;
    for j in 1..max_terms {
        let jf = f64::from(j);
        let mj = m + jf;
        let e = e0 + qm * one_minus_qj;
        let base_term = m / mj * coef;
        let u = base_term * z * e;
        out.sum += u;
        if derivatives {
            let qmj = qm * qj; // q^(m+j)
            out.dm += u * (1.0 / m - 1.0 / mj) + base_term * z * (-qmj * ln_q);
            out.dc += u * harmonic;
            out.dbase += u * (-jf / bx) + base_term * z * (-qmj * mj * dlnq_dbase);
            out.dd += jf * base_term * e / bx;
        }
        // Next term's ratio is (m+j)/(m+j+1) · (c+j)/(j+1) · z ≤ max((c+j)/(j+1), 1) z.
        let ratio = (c + jf) / (jf + 1.0) * z;
        if jf > c && ratio < 1.0 && coef * z * (1.0 + jf) <= 1e-17 * out.sum * (1.0 - ratio) {
            converged = true;
            break;
        }
        coef *= (c + jf) / (jf + 1.0) * z;
        one_minus_qj += qj * one_minus_q;
        qj *= q;
        harmonic += 1.0 / (c + jf);
        if coef == 0.0 {
            converged = true;
            break;
        }
    }
    out.converged = converged;
    out
}

/// The largest drop-out shape s the fit explores. When the customers' drop-out rates look alike
/// (e.g. an observation end long after the last orders, so everyone appears gone at a similar
/// rate), the likelihood keeps rising as s and β grow together with s/β fixed: the maximum is
/// at infinity (Gamma(s, β) tends to a point mass) and each step costs more, as the series
/// needs more terms. Published fits have s of order 0.1–10.
const S_MAX: f64 = 50.0;

/// Evaluations outside the series' reach after which the fit gives up (a line search that
/// overshoots once or twice is normal; dozens mean the optimum lies beyond).
const MAX_OUTSIDE: usize = 25;

/// Terms the fit lets [`series`] take. Near z = 1 the series needs about ln(10⁻¹⁷)/ln z terms
/// (z = 0.999: 40,000), for every such history at every evaluation; a fit whose optimiser
/// wanders there (e.g. an observation end long after the last order, so every customer looks
/// gone) took minutes. Past this many terms the likelihood is NaN, which the optimiser treats
/// as outside the domain; if the maximum itself lies there, the fit fails with a message and
/// model selection keeps the other models.
const FIT_MAX_TERMS: u32 = 4_000;
/// Terms for a single prediction (once per customer, not per evaluation); a prediction uses the
/// partial sum if even these do not converge (parameters far outside any fit).
const PREDICT_MAX_TERMS: u32 = 100_000;

/// The x-dependent factors of the series terms, shared by every tuple with the same x:
/// aⱼ = m/(m+j) · (c)ⱼ/j!, 1/m − 1/(m+j) and Σᵢ<ⱼ 1/(c+i), for j up to where aⱼ z_maxʲ is
/// negligible for the group's largest z. Tables make the per-tuple loop free of divisions.
struct Table {
    a: Vec<f64>,
    dm: Vec<f64>,
    harmonic: Vec<f64>,
}

impl Table {
    fn new(m: f64, c: f64, z_max: f64) -> Table {
        let (mut a, mut dm, mut harmonic) = (vec![1.0], vec![0.0], vec![0.0]);
        let (mut coef, mut h, mut zj) = (1.0, 0.0, 1.0);
        // Capped: near z = 1 the per-tuple series (which needs no table) takes over.
        for j in 1..5_000u32 {
            let jf = f64::from(j);
            coef *= (c + jf - 1.0) / jf;
            h += 1.0 / (c + jf - 1.0);
            zj *= z_max;
            let aj = m / (m + jf) * coef;
            a.push(aj);
            dm.push(1.0 / m - 1.0 / (m + jf));
            harmonic.push(h);
            if jf > c / (1.0 - z_max).max(1e-300) && aj * zj * (1.0 + jf) < 1e-18 {
                break;
            }
        }
        Table { a, dm, harmonic }
    }
}

/// [`series`] with the x-dependent factors from a [`Table`]; `None` if the table is too short
/// for this tuple's accuracy (the caller then uses [`series`]).
///
/// This is the fit's inner loop (80 % of a Pareto/NBD fit), so the gradient terms are
/// regrouped to need six running sums instead of one accumulation per derivative term. With
/// tⱼ = aⱼ zʲ, uⱼ = tⱼ Eⱼ and the tail factor q^(m+j) of ∂Eⱼ:
///   ∂/∂m    = Σ uⱼ (1/m − 1/(m+j)) − ln q · Σ tⱼ q^(m+j)
///   ∂/∂c    = Σ uⱼ Hⱼ
///   ∂/∂base = −(1/(base+tₓ)) Σ j uⱼ − ∂ln q/∂base · (m Σ tⱼ q^(m+j) + Σ j tⱼ q^(m+j))
///   ∂/∂D    = (1/(base+tₓ)) Σ j aⱼ z^(j−1) Eⱼ = Σ j uⱼ / D   (D > 0; for D = 0 only j = 1 counts)
/// where the j = 0 term (E₀) is added at the start as in [`series`].
#[allow(clippy::too_many_arguments)]
fn series_table(table: &Table, m: f64, c: f64, base: f64, d: f64, t_x: f64, t: f64) -> Option<Series> {
    let bx = base + t_x;
    let bt = base + t;
    let inv_bx = 1.0 / bx;
    let z = d * inv_bx;
    let ln_q = bx.ln() - bt.ln();
    let one_minus_q = (t - t_x) / bt;
    let q = bx / bt;
    let e0 = -(m * ln_q).exp_m1();
    let qm = 1.0 - e0;
    let dlnq_dbase = inv_bx - 1.0 / bt;
    // Terms decrease from j ≥ c/(1 − z) on; stop when the current one is negligible.
    let j_min = c / (1.0 - z).max(1e-300);
    let (mut sum, mut s_udm, mut s_uh, mut s_ju, mut s_tq, mut s_jtq) = (e0, 0.0, 0.0, 0.0, 0.0, 0.0);
    // qj = qʲ; the q^m factor of q^(m+j) is applied to the two sums at the end.
    let (mut zj, mut qj, mut one_minus_qj, mut jf) = (1.0, q, one_minus_q, 0.0);
    let mut converged = false;
    for ((aj, dmj), hj) in table.a.iter().zip(&table.dm).zip(&table.harmonic).skip(1) {
        jf += 1.0;
        zj *= z;
        let tj = aj * zj;
        let u = tj * (e0 + qm * one_minus_qj);
        let tq = tj * qj;
        sum += u;
        s_udm += u * dmj;
        s_uh += u * hj;
        s_ju += jf * u;
        s_tq += tq;
        s_jtq += jf * tq;
        if (jf > j_min && u * (1.0 + jf) <= 1e-16 * sum) || tj == 0.0 {
            converged = true;
            break;
        }
        // 1 − q^(j+1) = (1 − qʲ) + qʲ (1 − q): accurate near q = 1.
        one_minus_qj += qj * one_minus_q;
        qj *= q;
    }
    if !converged {
        return None;
    }
    let (s_tq, s_jtq) = (qm * s_tq, qm * s_jtq);
    let qm_total = qm * ln_q; // the j = 0 term's tail factor, times ln q
    let dd = if d > 0.0 {
        s_ju / d
    } else {
        // z = 0: only the first term depends on D, through z¹ = D / (base + tₓ).
        table.a.get(1).map_or(0.0, |a1| a1 * (e0 + qm * one_minus_q) * inv_bx)
    };
    Some(Series {
        sum,
        dm: -qm_total + s_udm - ln_q * s_tq,
        dc: s_uh,
        dbase: -qm * m * dlnq_dbase - inv_bx * s_ju - dlnq_dbase * (m * s_tq + s_jtq),
        dd,
        converged: true,
    })
}

/// Chebyshev nodes per interpolant in [`ChebTable`].
const CHEB_N: usize = 24;

/// x-groups with at least this many tuples get a [`ChebTable`]; smaller ones are cheaper summed
/// term by term.
const CHEB_MIN_GROUP: usize = 512;

/// cos(π k (i + ½) / N) for the Chebyshev transform, computed once.
fn cheb_cosines() -> &'static [[f64; CHEB_N]; CHEB_N] {
    static COS: std::sync::OnceLock<[[f64; CHEB_N]; CHEB_N]> = std::sync::OnceLock::new();
    COS.get_or_init(|| {
        let mut m = [[0.0; CHEB_N]; CHEB_N];
        for (k, row) in m.iter_mut().enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = (std::f64::consts::PI * k as f64 * (i as f64 + 0.5) / CHEB_N as f64).cos();
            }
        }
        m
    })
}

/// The series of one x-group as a function of its argument w, for every tuple of the group at
/// once. The tuple's sum is Σⱼ aⱼ zʲ (1 − q^(m+j)) = F(z) − qᵐ F(zq) with F(w) = Σⱼ aⱼ wʲ
/// (= ₂F₁(c, m; m+1; w)), and both z = D/(base+tₓ) and zq = D/(base+T) lie in the group's
/// [lo, hi]. F grows like (1 − w)^(1−c) towards w = 1 (Euler's transformation,
/// A&S 15.3.3), so the smooth G(w) = (1 − w)^(c−1) F(w) is interpolated instead, with its
/// m- and c-derivatives and its w-derivative, by Chebyshev polynomials of degree
/// [`CHEB_N`] − 1 on [lo, hi] (Trefethen, *Approximation Theory and Approximation Practice*,
/// ch. 3 and 8: the error falls like ρ^−N with ρ the Bernstein ellipse through w = 1). Each
/// table checks itself against the series between its nodes and is dropped (the group is then
/// summed term by term) unless F and its three derivatives agree to 10⁻¹² relative.
struct ChebTable {
    lo: f64,
    hi: f64,
    c: f64,
    /// Chebyshev coefficients of G, ∂G/∂m, ∂G/∂c, dG/dw.
    coef: [[f64; CHEB_N]; 4],
}

/// F, ∂F/∂m, ∂F/∂c and dF/dw at `w` by the series, from a group's [`Table`]; `None` when the
/// table is too short to reach 10⁻¹⁷ relative.
fn f_series(table: &Table, c: f64, w: f64) -> Option<[f64; 4]> {
    let j_min = c / (1.0 - w).max(1e-300);
    let (mut f, mut fm, mut fc, mut fw) = (1.0, 0.0, 0.0, 0.0);
    let mut wj_prev = 1.0;
    for (j, ((aj, dmj), hj)) in table.a.iter().zip(&table.dm).zip(&table.harmonic).enumerate().skip(1) {
        let jf = j as f64;
        let wj = wj_prev * w;
        let t = aj * wj;
        f += t;
        fm += t * dmj;
        fc += t * hj;
        fw += jf * aj * wj_prev;
        if (jf > j_min && t * (1.0 + jf) <= 1e-17 * f) || t == 0.0 {
            return Some([f, fm, fc, fw]);
        }
        wj_prev = wj;
    }
    None
}

impl ChebTable {
    fn new(table: &Table, c: f64, lo: f64, hi: f64) -> Option<ChebTable> {
        if !(0.0 <= lo && lo < hi && hi < 0.97) {
            return None;
        }
        let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
        let g_at = |w: f64| -> Option<[f64; 4]> {
            let [f, fm, fc, fw] = f_series(table, c, w)?;
            let ln1w = (-w).ln_1p();
            let p = ((c - 1.0) * ln1w).exp();
            Some([p * f, p * fm, p * (fc + ln1w * f), p * (fw - (c - 1.0) * f / (1.0 - w))])
        };
        let cos = cheb_cosines();
        let mut values = [[0.0; CHEB_N]; 4];
        for i in 0..CHEB_N {
            let w = mid + half * cos[1][i];
            let g = g_at(w)?;
            for k in 0..4 {
                values[k][i] = g[k];
            }
        }
        let mut coef = [[0.0; CHEB_N]; 4];
        for k in 0..4 {
            for (j, cj) in coef[k].iter_mut().enumerate() {
                let s: f64 = values[k].iter().zip(&cos[j]).map(|(v, c)| v * c).sum();
                *cj = if j == 0 { s / CHEB_N as f64 } else { 2.0 * s / CHEB_N as f64 };
            }
        }
        let cheb = ChebTable { lo, hi, c, coef };
        // Self-check between nodes, where interpolation errors are largest, of what the tuples
        // use: F and its derivatives (sums of positive terms, so relative errors are meaningful).
        for i in 0..8 {
            let w = lo + (hi - lo) * (f64::from(i) + 0.37) / 8.0;
            let want = f_series(table, c, w)?;
            let got = cheb.f(w, (-w).ln_1p());
            for k in 0..4 {
                let close = (got[k] - want[k]).abs() <= 1e-12 * want[k].abs().max(1e-300);
                if !close {
                    return None;
                }
            }
        }
        Some(cheb)
    }

    /// G, ∂G/∂m, ∂G/∂c, dG/dw at w by Clenshaw's recurrence, the four sums interleaved.
    fn g(&self, w: f64) -> [f64; 4] {
        let x = (2.0 * w - self.lo - self.hi) / (self.hi - self.lo);
        let x2 = 2.0 * x;
        let (mut b1, mut b2) = ([0.0; 4], [0.0; 4]);
        for j in (1..CHEB_N).rev() {
            for k in 0..4 {
                let b = x2 * b1[k] - b2[k] + self.coef[k][j];
                b2[k] = b1[k];
                b1[k] = b;
            }
        }
        let mut out = [0.0; 4];
        for k in 0..4 {
            out[k] = x * b1[k] - b2[k] + self.coef[k][0];
        }
        out
    }

    /// F, ∂F/∂m, ∂F/∂c, dF/dw at w, given ln(1 − w).
    fn f(&self, w: f64, ln1w: f64) -> [f64; 4] {
        let [g, gm, gc, gw] = self.g(w);
        let p1 = ((1.0 - self.c) * ln1w).exp();
        let f = p1 * g;
        [f, p1 * gm, p1 * (gc - ln1w * g), p1 * gw + (self.c - 1.0) * f / (1.0 - w)]
    }

    /// The tuple's series and derivatives as F(z) − qᵐ F(zq); `None` when that difference
    /// would lose more than three digits (E₀ = 1 − qᵐ < 10⁻², t_x close to T), where the
    /// positive series is used instead. `ln1z` = ln(1 − z), `ln1w` = ln(1 − zq), and `ln_bx`,
    /// `ln_bt` the logarithms of base + tₓ and base + T, which the caller has at hand.
    #[allow(clippy::too_many_arguments)]
    fn series(&self, m: f64, base: f64, d: f64, t_x: f64, t: f64, logs: [f64; 4]) -> Option<Series> {
        let [ln1z, ln1w, ln_bx, ln_bt] = logs;
        let bx = base + t_x;
        let bt = base + t;
        let ln_q = ln_bx - ln_bt;
        let e0 = -(m * ln_q).exp_m1();
        let keeps_digits = e0 >= 1e-2; // false for NaN too
        if !keeps_digits || d <= 0.0 {
            return None;
        }
        let (z, w) = (d / bx, d / bt);
        if !(self.lo <= w && z <= self.hi) {
            return None;
        }
        let p = 1.0 - e0;
        let [fz, fmz, fcz, fwz] = self.f(z, ln1z);
        let [fw, fmw, fcw, fww] = self.f(w, ln1w);
        let dlnq_dbase = 1.0 / bx - 1.0 / bt;
        Some(Series {
            sum: fz - p * fw,
            dm: fmz - p * (ln_q * fw + fmw),
            dc: fcz - p * fcw,
            dbase: -fwz * z / bx - p * (m * dlnq_dbase * fw - fww * w / bt),
            dd: fwz / bx - p * fww / bt,
            converged: true,
        })
    }
}

impl ParetoNbd {
    /// A model with checked parameters (all finite and > 0).
    pub fn new(r: f64, alpha: f64, s: f64, beta: f64) -> Result<Self, ParamError> {
        Ok(ParetoNbd {
            r: positive("r", r)?,
            alpha: positive("alpha", alpha)?,
            s: positive("s", s)?,
            beta: positive("beta", beta)?,
        })
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &Histories, options: &FitOptions) -> Result<(ParetoNbd, FitReport), FitError> {
        if data.repeat_share() == 0.0 {
            return Err(FitError::Degenerate {
                model: "paretonbd",
                reason: "no customer made a repeat purchase".into(),
            });
        }
        let (mean_x, mean_t) = data.means();
        // Start: unit shapes, mean purchase rate (x̄ + 1/2)/T̄, mean lifetime 2 T̄.
        let start = [1.0, (mean_t / (mean_x + 0.5)).max(1e-6), 1.0, (2.0 * mean_t).max(1e-6)];
        // Once the optimiser has walked past S_MAX, or keeps hitting the region where the series
        // does not converge, every later evaluation is refused at once, so the fit stops within
        // a few cheap steps instead of walking the ridge to infinity.
        let ridge = AtomicBool::new(false);
        let outside = AtomicUsize::new(0);
        let eval = |d: &Histories, theta: &[f64], grad: &mut [f64]| {
            if theta[2] > S_MAX.ln() || ridge.load(Ordering::Relaxed) {
                ridge.store(true, Ordering::Relaxed);
                return f64::NAN;
            }
            let out = log_likelihood(d, [theta[0], theta[1], theta[2], theta[3]]);
            if !out[0].is_finite() && outside.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_OUTSIDE {
                ridge.store(true, Ordering::Relaxed);
            }
            grad.copy_from_slice(&out[1..]);
            out[0]
        };
        let report = maximize_staged("paretonbd", &NAMES, data, &eval, &start, options);
        if ridge.load(Ordering::Relaxed) {
            return Err(FitError::Degenerate {
                model: "paretonbd",
                reason: format!(
                    "the drop-out shape s grows without bound (past {S_MAX}, or into the region where the \
                     likelihood's series needs more than {FIT_MAX_TERMS} terms) with s/β about fixed: the \
                     data show no heterogeneity in drop-out rates, a limit where Pareto/NBD is not \
                     identified; use BG/NBD"
                ),
            });
        }
        let report = report?;
        let p = |i: usize| report.params[i].value;
        Ok((ParetoNbd { r: p(0), alpha: p(1), s: p(2), beta: p(3) }, report))
    }

    /// Total log-likelihood of `data` under this model.
    pub fn log_likelihood(&self, data: &Histories) -> f64 {
        log_likelihood(data, [self.r.ln(), self.alpha.ln(), self.s.ln(), self.beta.ln()])[0]
    }

    /// ln of the two bracketed terms of the likelihood (without the common factor).
    fn log_terms(&self, h: &History) -> (f64, f64) {
        let (r, alpha, s, beta) = (self.r, self.alpha, self.s, self.beta);
        let n = r + f64::from(h.x);
        let m = n + s;
        let first = -n * (alpha + h.t).ln() - s * (beta + h.t).ln();
        if h.t_x >= h.t {
            return (first, f64::NEG_INFINITY);
        }
        let (c, base, d) = if alpha >= beta { (s + 1.0, alpha, alpha - beta) } else { (n, beta, beta - alpha) };
        let sr = series(m, c, base, d, h.t_x, h.t, false, PREDICT_MAX_TERMS);
        (first, s.ln() - m.ln() - m * (base + h.t_x).ln() + sr.sum.ln())
    }
}

impl ParetoNbd {
    /// Discounted expected residual transactions (Fader, Hardie & Lee 2005, "RFM and CLV",
    /// JMR 42(4), eq. 2) with continuous discount rate δ per time unit:
    ///
    /// DERL = ∫₀^∞ e^(−δt) E[transactions at T+t | history] dt
    ///      = P(alive) · (r+x)/(α+T) · ∫₀^∞ e^(−δt) ((β+T)/(β+T+t))ˢ dt,
    ///
    /// because given alive λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T) independently. The paper
    /// writes the integral with Tricomi's Ψ(s, s; δ(β+T)); here it is (β+T) ∫₀^∞ e^(−zy)(1+y)^−s dy
    /// with z = δ(β+T), integrated by Gauss–Legendre on w = ln(1+y) over 16 panels up to where
    /// e^(−zy) < e^(−40). Multiply by the expected value per transaction for the customer's
    /// residual value. `None` if δ ≤ 0.
    pub fn derl(&self, discount_rate: f64, h: &History) -> Option<f64> {
        if discount_rate.is_nan() || discount_rate <= 0.0 {
            return None;
        }
        let n = self.r + f64::from(h.x);
        let u = self.beta + h.t;
        Some(self.p_alive(h) * n / (self.alpha + h.t) * u * discounted_survival(discount_rate * u, self.s))
    }
}

/// ∫₀^∞ e^(−zy) (1+y)^−s dy for z > 0, s > 0 (= U(1, 2−s, z), DLMF 13.4.4).
fn discounted_survival(z: f64, s: f64) -> f64 {
    // y = e^w − 1: the integrand e^(−z(e^w − 1)) e^((1−s)w) is smooth; beyond
    // y_max = 40/z the factor e^(−zy) is below e^(−40).
    let w_max = (40.0 / z).ln_1p();
    let panels = 16;
    let width = w_max / f64::from(panels);
    let rule = GaussLegendre::rule64();
    (0..panels)
        .map(|k| {
            let lo = width * f64::from(k);
            rule.integrate(lo, lo + width, |w| (-z * w.exp_m1() + (1.0 - s) * w).exp())
        })
        .sum()
}

impl TransactionModel for ParetoNbd {
    fn name(&self) -> &'static str {
        "paretonbd"
    }

    /// E[X(t)] = rβ/(α(s−1)) · [1 − (β/(β+t))^(s−1)], and (rβ/α) ln(1 + t/β) for s = 1
    /// (Fader & Hardie 2005 note, eq. 17).
    fn expected_purchases(&self, t: f64) -> f64 {
        let (r, alpha, s, beta) = (self.r, self.alpha, self.s, self.beta);
        let l = (t / beta).ln_1p();
        r * beta / alpha * ln_growth(s - 1.0, l)
    }

    /// E[Y(t) | x, t_x, T] = (r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)] · P(alive)
    /// (note, eq. 41), with the s = 1 limit as above.
    fn conditional_expected_purchases(&self, t: f64, h: &History) -> f64 {
        self.p_alive(h) * self.expected_if_alive(t, h)
    }

    // P(alive) needs the likelihood's series: compute it once for all horizons.
    fn conditional_expected_purchases_many(&self, ts: &[f64], h: &History, out: &mut [f64]) {
        let alive = self.p_alive(h);
        for (t, o) in ts.iter().zip(out.iter_mut()) {
            *o = alive * self.expected_if_alive(*t, h);
        }
    }

    fn if_alive_many(&self, x: u32, t: f64, ts: &[f64], expected: &mut [f64], within: &[f64], purchase: &mut [f64]) {
        let h = History { x, t_x: 0.0, t };
        for (horizon, o) in ts.iter().zip(expected.iter_mut()) {
            *o = self.expected_if_alive(*horizon, &h);
        }
        for (w, p) in within.iter().zip(purchase.iter_mut()) {
            *p = self.purchase_within_if_alive(*w, &h);
        }
    }

    /// P(alive | x, t_x, T) = first term / (first term + (s/m) A₀) (note, eq. 24).
    fn p_alive(&self, h: &History) -> f64 {
        let (first, second) = self.log_terms(h);
        1.0 / (1.0 + (second - first).exp())
    }

    /// P(X(t) = x) = NB(x; t) (β/(β+t))ˢ + ∫₀ᵗ NB(x; τ) · s βˢ (β+τ)^−(s+1) dτ, where
    /// NB(x; τ) = Γ(r+x)/(Γ(r) x!) (α/(α+τ))ʳ (τ/(α+τ))ˣ: alive at t with x purchases, or dead at τ
    /// with x purchases before (Fader, Hardie & Lee 2006 note, eq. 2); the integral by 64-point
    /// Gauss–Legendre on ln(β+τ).
    fn probability_of_purchases(&self, t: f64, x: u32) -> f64 {
        let (r, alpha, s, beta) = (self.r, self.alpha, self.s, self.beta);
        let xf = f64::from(x);
        let ln_c = ln_gamma(r + xf) - ln_gamma(r) - ln_gamma(xf + 1.0);
        let ln_nb = |tau: f64| {
            let ln_pow = if x == 0 { 0.0 } else { xf * (tau / (alpha + tau)).ln() };
            ln_c + r * (alpha / (alpha + tau)).ln() + ln_pow
        };
        let alive = (ln_nb(t) + s * (beta / (beta + t)).ln()).exp();
        // τ = e^u − β with u from ln β to ln(β+t): dτ = (β+τ) du, integrand s βˢ (β+τ)^−s NB.
        let dead = GaussLegendre::rule64().integrate(beta.ln(), (beta + t).ln(), |u| {
            let tau = (u.exp() - beta).max(0.0);
            if x > 0 && tau == 0.0 {
                return 0.0;
            }
            (ln_nb(tau) + s.ln() + s * (beta.ln() - u)).exp()
        });
        alive + dead
    }

    /// P(at least one purchase in (T, T+t] | history) = P(alive) · ∫₀ᵗ E[λ e^−λτ] E[e^−μτ] dτ with
    /// λ ~ Gamma(r+x, α+T), μ ~ Gamma(s, β+T): the first purchase comes at τ before drop-out.
    fn probability_of_purchase_within(&self, t: f64, h: &History) -> f64 {
        let n = self.r + f64::from(h.x);
        let at = self.alpha + h.t;
        let bt = self.beta + h.t;
        let s = self.s;
        let integral = GaussLegendre::rule64()
            .integrate(0.0, t, |tau| n / at * (-(n + 1.0) * (tau / at).ln_1p() - s * (tau / bt).ln_1p()).exp());
        self.p_alive(h) * integral.min(1.0)
    }

    fn purchase_rate_posterior(&self, h: &History) -> (f64, f64) {
        (self.r + f64::from(h.x), self.alpha + h.t)
    }
    /// Alive at T means the exponential lifetime exceeded T: with the prior μ ~ Gamma(s, β) the
    /// posterior is Gamma(s, β + T), and the remaining lifetime is again exponential.
    fn dropout_posterior(&self, h: &History) -> crate::Dropout {
        crate::Dropout::Lifetime { shape: self.s, rate: self.beta + h.t }
    }
}

impl ParetoNbd {
    /// E[Y(t) | alive, history]: the factor of P(alive) in the conditional expectation.
    fn expected_if_alive(&self, t: f64, h: &History) -> f64 {
        let n = self.r + f64::from(h.x);
        let bt = self.beta + h.t;
        n * bt / (self.alpha + h.t) * ln_growth(self.s - 1.0, (t / bt).ln_1p())
    }

    /// P(a purchase within t | alive, history) = ∫₀ᵗ E[λ e^−λτ] E[e^−μτ] dτ by Gauss–Legendre:
    /// the integrand's poles are at τ = −(α+T) and −(β+T), so 16 points suffice while t is no
    /// longer than the nearer one is far; 64 otherwise.
    fn purchase_within_if_alive(&self, t: f64, h: &History) -> f64 {
        let n = self.r + f64::from(h.x);
        let at = self.alpha + h.t;
        let bt = self.beta + h.t;
        let s = self.s;
        let rule = if t <= at.min(bt) { GaussLegendre::rule16() } else { GaussLegendre::rule64() };
        let integral =
            rule.integrate(0.0, t, |tau| n / at * (-(n + 1.0) * (tau / at).ln_1p() - s * (tau / bt).ln_1p()).exp());
        integral.min(1.0)
    }
}

/// (1 − e^(−k l)) / k, the k → 0 limit l: the growth factor of E[X(t)] with k = s − 1,
/// l = ln(1 + t/β).
fn ln_growth(k: f64, l: f64) -> f64 {
    if k.abs() < 1e-12 { l } else { -(-k * l).exp_m1() / k }
}

/// Log-likelihood and its gradient with respect to (ln r, ln α, ln s, ln β).
fn log_likelihood(data: &Histories, theta: [f64; 4]) -> [f64; 5] {
    log_likelihood_with(data, theta, CHEB_MIN_GROUP)
}

/// [`log_likelihood`], with Chebyshev tables for x-groups of at least `cheb_min_group` tuples
/// (`usize::MAX`: none, every tuple by its series), so tests can compare the two.
fn log_likelihood_with(data: &Histories, theta: [f64; 4], cheb_min_group: usize) -> [f64; 5] {
    let [r, alpha, s, beta] = theta.map(f64::exp);
    let (ln_alpha, ln_beta) = (alpha.ln(), beta.ln());
    let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
    // Per distinct x: ln Γ(r+x) − ln Γ(r) and its r-derivative.
    let groups: Vec<(f64, f64)> =
        data.xs.iter().map(|&x| (ln_gamma(r + f64::from(x)) - lg_r, digamma(r + f64::from(x)) - dg_r)).collect();
    let alpha_base = alpha >= beta;
    let (base, d) = if alpha_base { (alpha, alpha - beta) } else { (beta, beta - alpha) };
    let tables: Vec<Table> = data
        .xs
        .iter()
        .zip(&data.starts)
        .map(|(&x, &start)| {
            let n = r + f64::from(x);
            let c = if alpha_base { s + 1.0 } else { n };
            // The group is sorted by t_x, so its first tuple has the largest z.
            Table::new(n + s, c, d / (base + data.t_x[start]))
        })
        .collect();
    let chebs: Vec<Option<ChebTable>> = (0..data.xs.len())
        .map(|g| {
            let start = data.starts[g];
            let end = data.starts.get(g + 1).copied().unwrap_or(data.distinct());
            if end - start < cheb_min_group {
                return None;
            }
            let c = if alpha_base { s + 1.0 } else { r + f64::from(data.xs[g]) };
            let t_max = data.t[start..end].iter().fold(0.0f64, |a, &b| a.max(b));
            ChebTable::new(&tables[g], c, d / (base + t_max), d / (base + data.t_x[start]))
        })
        .collect();
    let other = base - d; // min(α, β): 1 − D/(base+u) = (other+u)/(base+u)
    let [ll, dr, dalpha, ds, dbeta] = sum_chunks(data.distinct(), |range| {
        let mut acc = [0.0; 5];
        for i in range {
            let (lg, dg) = groups[data.group[i] as usize];
            let w = data.weight[i];
            let (t, t_x) = (data.t[i], data.t_x[i]);
            let n = r + f64::from(data.x[i]);
            let m = n + s;
            let (ln_at, ln_bt) = ((alpha + t).ln(), (beta + t).ln());
            let first = -n * ln_at - s * ln_bt;
            // ∂first / ∂(r, α, s, β)
            let g1 = [-ln_at, -n / (alpha + t), -ln_bt, -s / (beta + t)];
            let (value, w2, g2) = if t_x < t {
                let c = if alpha_base { s + 1.0 } else { n };
                let table = &tables[data.group[i] as usize];
                let ln_bx = (base + t_x).ln();
                let cheb = chebs[data.group[i] as usize].as_ref().and_then(|cheb| {
                    // ln(1 − z) and ln(1 − zq) from the logarithms at hand (one more for tₓ).
                    let ln1z = (other + t_x).ln() - ln_bx;
                    let (ln_base_t, ln_other_t) = if alpha_base { (ln_at, ln_bt) } else { (ln_bt, ln_at) };
                    cheb.series(m, base, d, t_x, t, [ln1z, ln_other_t - ln_base_t, ln_bx, ln_base_t])
                });
                let sr = cheb.or_else(|| series_table(table, m, c, base, d, t_x, t)).unwrap_or_else(|| {
                    let mut sr = series(m, c, base, d, t_x, t, true, FIT_MAX_TERMS);
                    // Outside the series' reach: NaN, which the fit treats as off the domain.
                    if !sr.converged {
                        sr.sum = f64::NAN;
                    }
                    sr
                });
                let second = s.ln() - m.ln() - m * ln_bx + sr.sum.ln();
                let dm = -1.0 / m - ln_bx + sr.dm / sr.sum;
                let dc = sr.dc / sr.sum;
                let dbase = -m / (base + t_x) + sr.dbase / sr.sum;
                let dd = sr.dd / sr.sum;
                // m = r+s+x; for α ≥ β: c = s+1, base = α, D = α−β; otherwise c = r+x, base = β, D = β−α.
                let g2 = if alpha_base {
                    [dm, dbase + dd, dm + dc + 1.0 / s, -dd]
                } else {
                    [dm + dc, -dd, dm + 1.0 / s, dbase + dd]
                };
                let diff = second - first;
                let e = (-diff.abs()).exp();
                let w2 = if diff > 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                (first.max(second) + (1.0 + e).ln(), w2, g2)
            } else {
                (first, 0.0, [0.0; 4])
            };
            let w1 = 1.0 - w2;
            acc[0] += w * (lg + r * ln_alpha + s * ln_beta + value);
            acc[1] += w * (dg + ln_alpha + w1 * g1[0] + w2 * g2[0]);
            acc[2] += w * (r / alpha + w1 * g1[1] + w2 * g2[1]);
            acc[3] += w * (ln_beta + w1 * g1[2] + w2 * g2[2]);
            acc[4] += w * (s / beta + w1 * g1[3] + w2 * g2[3]);
        }
        acc
    });
    [ll, r * dr, alpha * dalpha, s * ds, beta * dbeta]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::assert_gradient;

    /// A deterministic spread of histories: x in 0..6, t_x uniform in (0, T), T in (20, 700).
    fn spread(n: usize) -> Histories {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        Histories::from_histories((0..n).map(|_| {
            let t = 20.0 + 680.0 * next();
            let x = (next() * 6.0) as u32;
            let t_x = if x == 0 { 0.0 } else { t * next() };
            History::parse(0, x, t_x, t).unwrap()
        }))
        .unwrap()
    }

    /// Everyone bought within the first 60 days of a 700-day window, then nobody: drop-out
    /// rates look alike, and the likelihood keeps rising as s and β grow together. The fit
    /// used to walk that ridge for minutes; it must stop and say why.
    #[test]
    fn a_fit_whose_maximum_is_at_infinite_s_stops_with_the_reason() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let data = Histories::from_histories((0..4_000).map(|_| {
            let first = 60.0 * next();
            let t = 700.0 - first;
            let x = (next() * 4.0) as u32;
            let t_x = if x == 0 { 0.0 } else { (60.0 - first) * next() };
            History::parse(0, x, t_x, t).unwrap()
        }))
        .unwrap();
        let err = ParetoNbd::fit(&data, &FitOptions::default()).expect_err("no finite maximum");
        let FitError::Degenerate { model, reason } = &err else { panic!("{err:?}") };
        assert_eq!(*model, "paretonbd");
        assert!(reason.contains("grows without bound"), "{reason}");
        // BG/NBD's drop-out heterogeneity vanishes on the same data: a and b run off together
        // (a/(a+b) stays near ½), the likelihood changes by 10⁻⁴ when they double, so the
        // fit is refused for its flatness (se(ln a) ≈ 214; with the gradient differenced, its
        // rounding error once passed for curvature and the fit was accepted).
        let bg = crate::BgNbd::fit(crate::Variant::Bg, &data, &FitOptions::default()).expect_err("flat");
        let FitError::Boundary { reason, .. } = &bg else { panic!("{bg:?}") };
        assert!(reason.contains("a and b grow without bound") && reason.contains("nearly flat"), "{reason}");
    }

    #[test]
    fn chebyshev_tables_give_the_series_values_and_gradient() {
        let data = spread(6_000);
        // α < β (the bench data's case) and α > β, each with a small and a large D.
        for params in
            [[1.1, 229.0, 2.1, 910.0], [0.6, 80.0, 0.8, 300.0], [1.5, 900.0, 1.3, 200.0], [0.9, 300.0, 3.0, 250.0]]
        {
            let theta = params.map(f64::ln);
            let exact = log_likelihood_with(&data, theta, usize::MAX);
            let tabled = log_likelihood_with(&data, theta, 0);
            for k in 0..5 {
                let scale = exact[k].abs().max(1.0);
                assert!(
                    (exact[k] - tabled[k]).abs() <= 1e-11 * scale,
                    "{params:?} component {k}: {} vs {}",
                    exact[k],
                    tabled[k]
                );
            }
        }
    }

    #[test]
    fn chebyshev_tables_are_built_for_ordinary_groups() {
        // x = 0 group of the bench data's fit: c = r, m = r + s, z up to (β−α)/β.
        let (r, alpha, s, beta) = (1.1, 229.0, 2.1, 910.0);
        let (d, base) = (beta - alpha, beta);
        for x in [0u32, 3, 10] {
            let c = r + f64::from(x);
            let table = Table::new(r + s + f64::from(x), c, d / base);
            let cheb = ChebTable::new(&table, c, d / (base + 700.0), d / base);
            assert!(cheb.is_some(), "x = {x}");
        }
    }

    /// The models' shared sample plus two buyers whose last purchase is at, or a moment before,
    /// the end of their observation (t_x = T and t_x ≈ T).
    fn sample() -> Histories {
        let h = |x, tx, t| History::parse(0, x, tx, t).unwrap();
        let mut list = crate::fit::sample_history_list();
        list.extend([h(3, 20.0, 20.0), h(4, 38.85, 38.86)]);
        Histories::from_histories(list).unwrap()
    }

    /// The likelihood's integral by brute-force quadrature (many Gauss–Legendre panels).
    fn brute_force_ll(m: &ParetoNbd, h: &History) -> f64 {
        let (r, alpha, s, beta) = (m.r, m.alpha, m.s, m.beta);
        let n = r + f64::from(h.x);
        let panels = 200;
        let width = (h.t - h.t_x) / f64::from(panels);
        let integral: f64 = (0..panels)
            .map(|p| {
                let lo = h.t_x + width * f64::from(p);
                GaussLegendre::rule64()
                    .integrate(lo, lo + width, |tau| s * (alpha + tau).powf(-n) * (beta + tau).powf(-(s + 1.0)))
            })
            .sum();
        let first = (alpha + h.t).powf(-n) * (beta + h.t).powf(-s);
        ln_gamma(n) - ln_gamma(r) + r * alpha.ln() + s * beta.ln() + (first + integral).ln()
    }

    #[test]
    fn likelihood_equals_the_integral_definition_on_both_branches() {
        let data = sample();
        for params in [[0.5533, 10.578, 0.6062, 11.667], [0.5533, 11.667, 0.6062, 10.578], [2.0, 3.0, 0.5, 30.0]] {
            let m = ParetoNbd::new(params[0], params[1], params[2], params[3]).unwrap();
            for i in 0..data.distinct() {
                let h = History { x: data.x[i], t_x: data.t_x[i], t: data.t[i] };
                let one = Histories::from_histories([h]).unwrap();
                let got = m.log_likelihood(&one);
                let want = brute_force_ll(&m, &h);
                assert!((got - want).abs() < 1e-10 * want.abs(), "{params:?} {h:?}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = sample();
        for params in
            [[0.5533, 10.578, 0.6062, 11.667], [0.55, 11.667, 0.6, 10.578], [2.0, 3.0, 0.5, 30.0], [0.3, 5.0, 2.0, 5.0]]
        {
            let ll = |theta: &[f64], grad: &mut [f64]| {
                let out = log_likelihood(&data, [theta[0], theta[1], theta[2], theta[3]]);
                grad.copy_from_slice(&out[1..]);
                out[0]
            };
            assert_gradient(&ll, &params.map(f64::ln), 1e-6);
        }
    }

    #[test]
    fn the_short_rule_for_the_purchase_probability_agrees_with_the_long_one() {
        let m = ParetoNbd::new(0.5533, 10.578, 0.6062, 11.667).unwrap();
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let n = m.r + 2.0;
        let (at, bt, s) = (m.alpha + h.t, m.beta + h.t, m.s);
        for t in [1.0, 10.0, 30.0, at.min(bt)] {
            let long = GaussLegendre::rule64()
                .integrate(0.0, t, |tau| n / at * (-(n + 1.0) * (tau / at).ln_1p() - s * (tau / bt).ln_1p()).exp());
            let short = m.purchase_within_if_alive(t, &h);
            assert!((short - long).abs() < 1e-14, "t={t}: {short} vs {long}");
        }
    }

    #[test]
    fn derl_is_the_limit_of_the_discounted_period_sum() {
        // Σ ΔE[Y(tᵢ)] e^(−δ tᵢ) over small periods converges to DERL.
        let m = ParetoNbd::new(0.5533, 10.578, 0.6062, 11.667).unwrap();
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let delta = 0.15 / 52.0; // 15 % a year in weeks
        let step = 0.05;
        let (mut sum, mut previous) = (0.0, 0.0);
        for i in 1..=400_000 {
            let t = f64::from(i) * step;
            let e = m.conditional_expected_purchases(t, &h);
            sum += (e - previous) * (-delta * (t - step / 2.0)).exp();
            previous = e;
        }
        // The tail beyond 20,000 weeks is negligible at this discount rate.
        let derl = m.derl(delta, &h).unwrap();
        assert!((sum - derl).abs() < 1e-4 * derl, "{sum} vs {derl}");
        assert_eq!(m.derl(0.0, &h), None);
    }

    #[test]
    fn discounted_survival_matches_closed_forms() {
        // s → 0: ∫ e^(−zy) dy = 1/z; s = 1 is e^z E₁(z); E₁(1) = 0.219383934395520 (A&S 5.1).
        assert!((discounted_survival(0.3, 1e-12) - 1.0 / 0.3).abs() < 1e-9);
        let e1 = 0.219_383_934_395_520_3;
        assert!((discounted_survival(1.0, 1.0) - std::f64::consts::E * e1).abs() < 1e-12);
        // s = 2: 1 − z e^z E₁(z).
        assert!((discounted_survival(1.0, 2.0) - (1.0 - std::f64::consts::E * e1)).abs() < 1e-12);
    }

    #[test]
    fn table_driven_series_equals_the_direct_series() {
        for (m, c, base, d, t_x, t) in
            [(3.2, 1.6, 11.7, 1.1, 0.0, 38.9), (12.5, 9.5, 910.0, 681.0, 35.0, 700.0), (2.1, 1.5, 5.0, 4.9, 0.1, 0.2)]
        {
            let table = Table::new(m, c, d / (base + t_x));
            let a = series_table(&table, m, c, base, d, t_x, t).unwrap();
            let b = series(m, c, base, d, t_x, t, true, PREDICT_MAX_TERMS);
            for (x, y) in [(a.sum, b.sum), (a.dm, b.dm), (a.dc, b.dc), (a.dbase, b.dbase), (a.dd, b.dd)] {
                assert!((x - y).abs() <= 1e-13 * y.abs().max(1e-300), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_match_the_mean() {
        let m = ParetoNbd::new(0.5533, 10.578, 0.6062, 11.667).unwrap();
        let t = 39.0;
        let probs: Vec<f64> = (0..3000).map(|k| m.probability_of_purchases(t, k)).collect();
        let total: f64 = probs.iter().sum();
        let mean: f64 = probs.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        assert!((total - 1.0).abs() < 1e-8, "Σ P = {total}");
        let e = m.expected_purchases(t);
        assert!((mean - e).abs() < 1e-6 * e, "Σ k P = {mean}, E[X(t)] = {e}");
    }
}
