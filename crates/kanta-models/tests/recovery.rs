//! Simulate customers from each model with known parameters and check that the fit recovers them.
//!
//! Two checks, because a single 95 % interval misses the truth one time in twenty by design:
//! - at 10⁵ customers every true value lies within 3.29 standard errors (a 99.9 % interval, on
//!   the log scale like the reported ones) and the reported 95 % interval is narrow;
//! - over 40 replications of 4,000 customers, the reported 95 % intervals cover the truth at
//!   least 34 times per parameter (a correct interval does so with probability 0.98), which
//!   tests the standard errors themselves.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use kanta_models::{
    BgBb, BgNbd, DiscreteHistories, DiscreteHistory, FitOptions, FitReport, GammaGamma, Histories, History, ParetoNbd,
    Sbg, Spend, Variant,
};
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma, Poisson};
use rand_pcg::Pcg64Mcg;

const CUSTOMERS: usize = 100_000;

fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

/// Gamma with shape k and *rate* θ (the papers' parameterisation).
fn gamma(shape: f64, rate: f64) -> Gamma<f64> {
    Gamma::new(shape, 1.0 / rate).unwrap()
}

/// Every true value within 3.29 standard errors (log scale), each 95 % interval narrower than
/// a factor 1.6 from end to end.
fn assert_recovered(report: &FitReport, truth: &[(&str, f64)]) {
    for (name, value) in truth {
        let p = report.params.iter().find(|p| p.name == *name).unwrap();
        let se_log = p.std_error.unwrap() / p.value;
        let z = (value.ln() - p.value.ln()) / se_log;
        assert!(
            z.abs() < 3.29,
            "{}: {name} = {value}, estimate {} is {z:.2} standard errors away",
            report.model,
            p.value
        );
        let (lo, hi) = (p.lower.unwrap(), p.upper.unwrap());
        assert!(hi / lo < 1.6, "{}: {name} interval [{lo}, {hi}] is too wide", report.model);
    }
}

/// Does the reported 95 % interval of each parameter contain the truth?
fn covers(report: &FitReport, truth: &[(&str, f64)]) -> Vec<bool> {
    truth
        .iter()
        .map(|(name, value)| {
            let p = report.params.iter().find(|p| p.name == *name).unwrap();
            p.lower.unwrap() <= *value && *value <= p.upper.unwrap()
        })
        .collect()
}

fn assert_coverage(model: &str, hits: &[usize], truth: &[(&str, f64)]) {
    for (h, (name, _)) in hits.iter().zip(truth) {
        assert!(*h >= 34, "{model}: the 95 % interval of {name} covered the truth in only {h} of 40 replications");
    }
}

/// Continuous-time histories: purchases at Poisson rate λ ~ Gamma(r, α) until drop-out; `death`
/// decides drop-out after each purchase (BG/MBG) or returns a lifetime (Pareto).
fn simulate_bg(variant: Variant, r: f64, alpha: f64, a: f64, b: f64, customers: usize, seed: u64) -> Histories {
    let mut rng = rng(seed);
    let lambda = gamma(r, alpha);
    let p_dist = Beta::new(a, b).unwrap();
    let histories = (0..customers).map(|_| {
        let t_end = rng.random_range(20.0..60.0);
        let lam = lambda.sample(&mut rng);
        let p = p_dist.sample(&mut rng);
        let (mut x, mut t_x, mut now) = (0u32, 0.0, 0.0);
        let mut alive = !(variant == Variant::Mbg && rng.random::<f64>() < p);
        while alive {
            now += Exp::new(lam).unwrap().sample(&mut rng);
            if now > t_end {
                break;
            }
            x += 1;
            t_x = now;
            alive = rng.random::<f64>() >= p;
        }
        History { x, t_x, t: t_end }
    });
    Histories::from_histories(histories).unwrap()
}

#[test]
fn bgnbd_recovers_simulated_parameters() {
    let (r, alpha, a, b) = (0.5, 6.0, 0.8, 2.5);
    let data = simulate_bg(Variant::Bg, r, alpha, a, b, CUSTOMERS, 1);
    let (_, report) = BgNbd::fit(Variant::Bg, &data, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("r", r), ("alpha", alpha), ("a", a), ("b", b)]);
}

#[test]
fn mbgnbd_recovers_simulated_parameters() {
    let (r, alpha, a, b) = (0.5, 6.0, 0.8, 2.5);
    let data = simulate_bg(Variant::Mbg, r, alpha, a, b, CUSTOMERS, 2);
    let (_, report) = BgNbd::fit(Variant::Mbg, &data, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("r", r), ("alpha", alpha), ("a", a), ("b", b)]);
}

fn simulate_pareto(r: f64, alpha: f64, s: f64, beta: f64, customers: usize, seed: u64) -> Histories {
    let mut rng = rng(seed);
    let (lambda, mu) = (gamma(r, alpha), gamma(s, beta));
    let histories = (0..customers).map(|_| {
        let t_end = rng.random_range(20.0..60.0);
        let lam = lambda.sample(&mut rng);
        let death = Exp::new(mu.sample(&mut rng)).unwrap().sample(&mut rng);
        let end = death.min(t_end);
        let (mut x, mut t_x, mut now) = (0u32, 0.0, 0.0);
        loop {
            now += Exp::new(lam).unwrap().sample(&mut rng);
            if now > end {
                break;
            }
            x += 1;
            t_x = now;
        }
        History { x, t_x, t: t_end }
    });
    Histories::from_histories(histories).unwrap()
}

#[test]
fn pareto_nbd_recovers_simulated_parameters() {
    let (r, alpha, s, beta) = (0.55, 10.0, 0.6, 12.0);
    let data = simulate_pareto(r, alpha, s, beta, CUSTOMERS, 3);
    let (_, report) = ParetoNbd::fit(&data, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("r", r), ("alpha", alpha), ("s", s), ("beta", beta)]);
}

#[test]
fn gamma_gamma_recovers_simulated_parameters() {
    let (p, q, g) = (6.0, 4.0, 15.0);
    let mut rng = rng(4);
    let nu_dist = gamma(q, g);
    let counts = Poisson::new(2.0).unwrap();
    let spends: Vec<(Spend, f64)> = (0..CUSTOMERS)
        .map(|i| {
            let nu = nu_dist.sample(&mut rng);
            let x = 1 + counts.sample(&mut rng) as u32;
            let z = gamma(p, nu);
            let mean = (0..x).map(|_| z.sample(&mut rng)).sum::<f64>() / f64::from(x);
            (Spend::parse(i, x, mean).unwrap(), 1.0)
        })
        .collect();
    let (_, report) = GammaGamma::fit(&spends, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("p", p), ("q", q), ("gamma", g)]);
}

#[test]
fn bgbb_recovers_simulated_parameters() {
    let (alpha, beta, g, d) = (1.2, 0.75, 0.66, 2.8);
    let n = 6;
    let mut rng = rng(5);
    let (p_dist, theta_dist) = (Beta::new(alpha, beta).unwrap(), Beta::new(g, d).unwrap());
    let items = (0..CUSTOMERS).map(|_| {
        let (p, theta) = (p_dist.sample(&mut rng), theta_dist.sample(&mut rng));
        let (mut x, mut t_x) = (0, 0);
        for t in 1..=n {
            if rng.random::<f64>() < theta {
                break;
            }
            if rng.random::<f64>() < p {
                x += 1;
                t_x = t;
            }
        }
        (DiscreteHistory::parse(0, x, t_x, n).unwrap(), 1.0)
    });
    let data = DiscreteHistories::new(items).unwrap();
    let (_, report) = BgBb::fit(&data, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("alpha", alpha), ("beta", beta), ("gamma", g), ("delta", d)]);
}

#[test]
fn sbg_recovers_simulated_parameters() {
    let (alpha, beta) = (0.7, 3.0);
    let mut rng = rng(6);
    let theta_dist = Beta::new(alpha, beta).unwrap();
    let mut survivors = [0.0f64; 9];
    for _ in 0..CUSTOMERS {
        let theta = theta_dist.sample(&mut rng);
        survivors[0] += 1.0;
        for s in survivors.iter_mut().skip(1) {
            if rng.random::<f64>() < theta {
                break;
            }
            *s += 1.0;
        }
    }
    let (_, report) = Sbg::fit(&survivors, &FitOptions::default()).unwrap();
    assert_recovered(&report, &[("alpha", alpha), ("beta", beta)]);
}

#[test]
fn bgnbd_and_pareto_nbd_intervals_have_their_nominal_coverage() {
    let bg = [("r", 0.5), ("alpha", 6.0), ("a", 0.8), ("b", 2.5)];
    let pareto = [("r", 0.55), ("alpha", 10.0), ("s", 0.6), ("beta", 12.0)];
    let (mut bg_hits, mut pareto_hits) = (vec![0; 4], vec![0; 4]);
    for seed in 0..40 {
        let data = simulate_bg(Variant::Bg, 0.5, 6.0, 0.8, 2.5, 4_000, 1000 + seed);
        let (_, report) = BgNbd::fit(Variant::Bg, &data, &FitOptions::default()).unwrap();
        for (h, c) in bg_hits.iter_mut().zip(covers(&report, &bg)) {
            *h += usize::from(c);
        }
        let data = simulate_pareto(0.55, 10.0, 0.6, 12.0, 4_000, 2000 + seed);
        let (_, report) = ParetoNbd::fit(&data, &FitOptions::default()).unwrap();
        for (h, c) in pareto_hits.iter_mut().zip(covers(&report, &pareto)) {
            *h += usize::from(c);
        }
    }
    assert_coverage("bgnbd", &bg_hits, &bg);
    assert_coverage("paretonbd", &pareto_hits, &pareto);
}
