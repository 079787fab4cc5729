//! The nested limits NBD and Poisson: their fits recover simulated parameters, and a BG/NBD or
//! MBG/NBD fit that runs to the no-drop-out boundary falls back to them ([`fit_limit`]). (On
//! these bases Pareto/NBD fails otherwise: not converged, or drop-out rates without
//! heterogeneity, which is no boundary.)

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use kanta_models::{BgNbd, FitError, FitOptions, Histories, History, LimitModel, Nbd, Poisson, Variant, fit_limit};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma};
use rand_pcg::Pcg64Mcg;

/// Customers who never drop out, buying at Poisson rate λ (λ ~ Gamma(r, α) with `Some((r, α))`,
/// λ = `rate` for everyone with `None`) over T uniform in `years` · [0.5, 1] · 365 days:
/// x purchases after the first, the last at t_x.
fn no_dropout(heterogeneity: Option<(f64, f64)>, rate: f64, years: f64, customers: usize, seed: u64) -> Vec<History> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let gamma = heterogeneity.map(|(r, alpha)| Gamma::new(r, 1.0 / alpha).unwrap());
    let histories = (0..customers).map(|_| {
        let t_end = (rng.random_range(0.5..1.0) * years * 365.0f64).floor().max(1.0);
        let lam = gamma.as_ref().map_or(rate, |g| g.sample(&mut rng)).max(1e-12);
        let (mut x, mut t_x, mut now) = (0u32, 0.0, 0.0);
        loop {
            now += Exp::new(lam).unwrap().sample(&mut rng);
            if now > t_end {
                break;
            }
            x += 1;
            t_x = now;
        }
        History { x, t_x, t: t_end }
    });
    histories.collect()
}

fn compress(histories: &[History]) -> Histories {
    Histories::from_histories(histories.iter().copied()).unwrap()
}

#[test]
fn the_nbd_fit_recovers_simulated_r_and_alpha() {
    let data = compress(&no_dropout(Some((2.0, 40.0)), 0.0, 5.0, 20_000, 11));
    let (m, report) = Nbd::fit(&data, &FitOptions::default()).unwrap();
    for (name, truth) in [("r", 2.0f64), ("alpha", 40.0)] {
        let p = report.params.iter().find(|p| p.name == name).unwrap();
        let z = (p.value.ln() - truth.ln()) / (p.std_error.unwrap() / p.value);
        assert!(z.abs() < 3.29, "{name}: {} vs {truth} ({z:.2} standard errors)", p.value);
    }
    assert_eq!((report.model, report.params.len()), ("nbd", 2));
    assert!((report.bic - (-2.0 * report.log_likelihood + 2.0 * 20_000f64.ln())).abs() < 1e-6);
    assert!((m.log_likelihood(&data) - report.log_likelihood).abs() < 1e-6);
}

#[test]
fn the_poisson_estimate_is_repeat_purchases_over_time_observed() {
    let histories = no_dropout(None, 0.05, 2.0, 3_000, 12);
    let sum_x: f64 = histories.iter().map(|h| f64::from(h.x)).sum();
    let sum_t: f64 = histories.iter().map(|h| h.t).sum();
    let (m, report) = Poisson::fit(&compress(&histories), &FitOptions::default()).unwrap();
    let want = sum_x / sum_t;
    assert!((m.lambda / want - 1.0).abs() < 1e-9, "λ̂ = {} vs Σx/ΣT = {want}", m.lambda);
    // Observed information Σx/λ² at the optimum: se(λ̂) = λ̂/√Σx.
    let se = report.params[0].std_error.unwrap();
    assert!((se / (want / sum_x.sqrt()) - 1.0).abs() < 1e-3, "se {se}");
    assert!((0.05 - m.lambda).abs() < 3.29 * se, "λ̂ = {} vs 0.05", m.lambda);
}

/// The full fits on a base where nobody drops out, with the limit each falls back to.
fn full_fits(data: &Histories) -> Vec<(FitError, Option<LimitModel>, String)> {
    let options = FitOptions::default();
    let errors = vec![
        BgNbd::fit(Variant::Bg, data, &options).unwrap_err(),
        BgNbd::fit(Variant::Mbg, data, &options).unwrap_err(),
    ];
    errors
        .into_iter()
        .map(|e| {
            assert!(matches!(e, FitError::Boundary { .. }), "{e:?}");
            let fit = fit_limit(&e, data, &options).expect("a limit").unwrap();
            (e, Some(fit.model), fit.reason)
        })
        .collect()
}

#[test]
fn bgnbd_without_dropout_falls_back_to_the_nbd() {
    let data = compress(&no_dropout(Some((2.0, 40.0)), 0.0, 5.0, 5_000, 1));
    let (nbd, _) = Nbd::fit(&data, &FitOptions::default()).unwrap();
    for (error, model, reason) in full_fits(&data) {
        assert_eq!(model, Some(LimitModel::Nbd(nbd)), "{error}");
        assert!(reason.starts_with("nobody appears to drop out (the drop-out probability p ~ Beta(a, b)"), "{reason}");
    }
}

#[test]
fn bgnbd_without_dropout_or_heterogeneity_falls_back_to_the_poisson() {
    // One purchase in 20 days, and a slow shop (one in 200 days), where the NBD stops by its
    // flat likelihood at r ≈ 8·10³ rather than at the 10¹⁰ wall.
    for (rate, seed) in [(0.05, 2), (0.005, 3)] {
        let histories = no_dropout(None, rate, 5.0, 5_000, seed);
        let data = compress(&histories);
        let nbd = Nbd::fit(&data, &FitOptions::default()).unwrap_err();
        assert!(matches!(nbd, FitError::Boundary { .. }), "{nbd:?}");
        let lambda: f64 =
            histories.iter().map(|h| f64::from(h.x)).sum::<f64>() / histories.iter().map(|h| h.t).sum::<f64>();
        for (error, model, reason) in full_fits(&data) {
            let Some(LimitModel::Poisson(p)) = model else { panic!("{error}: {model:?}") };
            assert!((p.lambda / lambda - 1.0).abs() < 1e-9, "{} vs {lambda}", p.lambda);
            assert!(reason.starts_with("nobody appears to drop out"), "{reason}");
            assert!(reason.contains("; the purchase rates look the same for everyone"), "{reason}");
        }
    }
}
