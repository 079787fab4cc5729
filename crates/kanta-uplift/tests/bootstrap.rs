//! The fast bootstrap (binomial count of non-zero customers) resamples the same distribution
//! as the naive one, and is reproducible from its seed.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] fns unwrap too: a panic is a failed test.

use kanta_uplift::Level;
use kanta_uplift::bootstrap::{Options, Sample, percentile};

/// 40 customers, 7 with revenue: the shape of revenue per customer.
fn revenue() -> Vec<f64> {
    let mut values = vec![0.0; 40];
    for (i, v) in [(3, 12.0), (7, 55.5), (11, 8.25), (19, 140.0), (23, 30.0), (31, 9.99), (37, 72.0)] {
        values[i] = v;
    }
    values
}

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    (mean, variance.sqrt())
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn the_fast_bootstrap_resamples_the_same_distribution_as_the_naive_one() {
    let values = revenue();
    let n = values.len() as f64;
    // Exact moments of a resample's mean: E = x̄, Var = σ̂²/n with σ̂² the plug-in (÷n) variance.
    let (mean, sd) = mean_and_sd(&values);
    let exact_sd = (sd * sd * (n - 1.0) / n / n).sqrt();
    let resamples = 40_000;
    let mut fast = Sample::revenue(&values, "treatment").unwrap().fast_resample_means(resamples, 1);
    let mut naive = Sample::naive_resample_means(&values, resamples, 2);
    for draws in [&fast, &naive] {
        let (m, s) = mean_and_sd(draws);
        // Standard error of the mean of 40 000 draws: exact_sd/200; 4 of them.
        assert!((m - mean).abs() < 4.0 * exact_sd / 200.0, "mean {m} vs {mean}");
        assert!((s / exact_sd - 1.0).abs() < 0.02, "sd {s} vs {exact_sd}");
    }
    for q in [0.025, 0.25, 0.5, 0.75, 0.975] {
        let (a, b) = (quantile(&mut fast, q), quantile(&mut naive, q));
        assert!((a - b).abs() < 0.1 * exact_sd, "quantile {q}: fast {a}, naive {b}");
    }
}

#[test]
fn the_same_seed_gives_the_same_interval_and_another_seed_another() {
    let treatment = Sample::revenue(&revenue(), "treatment").unwrap();
    let control = Sample::revenue(&revenue()[..30], "control").unwrap();
    let run = |seed| percentile(&treatment, &control, Level::NINETY_FIVE, Options::seeded(seed)).unwrap();
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).interval, run(8).interval);
    let result = run(7);
    assert_eq!(result.options.resamples, 2_000);
    assert!((result.difference - (327.74 / 40.0 - 245.75 / 30.0)).abs() < 1e-12);
    assert!(result.interval.lower < result.difference && result.difference < result.interval.upper);
}

#[test]
fn any_bulk_value_gives_the_same_distribution() {
    // Splitting off 0 (7 others) or 12.0 (39 others): the mean of the resampled means and their
    // spread agree; only the number of draws differs.
    let values = revenue();
    let by_zero = Sample::new(&values, 0.0, "treatment").unwrap().fast_resample_means(40_000, 3);
    let by_twelve = Sample::new(&values, 12.0, "treatment").unwrap().fast_resample_means(40_000, 4);
    let ((m0, s0), (m1, s1)) = (mean_and_sd(&by_zero), mean_and_sd(&by_twelve));
    assert!((m0 - m1).abs() < 0.06 * s0, "{m0} vs {m1}");
    assert!((s0 / s1 - 1.0).abs() < 0.03, "{s0} vs {s1}");
}

#[test]
fn a_bootstrap_without_resamples_or_customers_is_an_error() {
    let sample = Sample::revenue(&[1.0, 0.0], "treatment").unwrap();
    let none = Options { resamples: 0, seed: 1 };
    assert!(percentile(&sample, &sample, Level::NINETY_FIVE, none).is_err());
    assert!(Sample::revenue(&[], "control").is_err());
    assert!(Sample::revenue(&[f64::INFINITY], "control").is_err());
}
