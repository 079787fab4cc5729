//! The statistics of a report on 10⁶ entries, timed once by hand in release:
//! `cargo test --release -p kanta-uplift --test timing -- --ignored --nocapture`.
//! Not a test of speed (tests are never timed); it prints the time and checks the results.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] fns unwrap too: a panic is a failed test.

use std::time::Instant;

use kanta_uplift::Level;
use kanta_uplift::bootstrap::{Options, Sample, percentile};
use kanta_uplift::cuped::{Cuped, Paired};
use kanta_uplift::mean::welch;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

/// (pre-entry, post-entry) revenue: 30 % bought before entry, 5 % (6 % treated) after.
fn arm(n: usize, rate: f64, rng: &mut Pcg64Mcg) -> (Vec<f64>, Vec<f64>) {
    let spend = LogNormal::new(3.0, 1.0).unwrap();
    (0..n)
        .map(|_| {
            let pre = if rng.random_bool(0.3) { spend.sample(rng) } else { 0.0 };
            let post =
                if rng.random_bool(if pre > 0.0 { rate * 2.0 } else { rate * 0.57 }) { spend.sample(rng) } else { 0.0 };
            (pre, post)
        })
        .unzip()
}

#[test]
#[ignore = "a timing run on 10⁶ customers, for release builds by hand"]
fn statistics_of_a_million_entries() {
    let rng = &mut Pcg64Mcg::seed_from_u64(1);
    let (xt, yt) = arm(900_000, 0.06, rng);
    let (xc, yc) = arm(100_000, 0.05, rng);
    let start = Instant::now();
    let plain = welch(&yt, &yc, Level::NINETY_FIVE).unwrap();
    let boot = percentile(
        &Sample::revenue(&yt, "treatment").unwrap(),
        &Sample::revenue(&yc, "control").unwrap(),
        Level::NINETY_FIVE,
        Options::seeded(7),
    )
    .unwrap();
    let cuped = Cuped::adjust(Paired { pre: &xt, post: &yt }, Paired { pre: &xc, post: &yc }).unwrap();
    let adjusted = cuped.welch(Level::NINETY_FIVE).unwrap();
    let (t, c) = cuped.bootstrap_samples().unwrap();
    let adjusted_boot = percentile(&t, &c, Level::NINETY_FIVE, Options::seeded(7)).unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "Welch {:?}\nbootstrap {:?}\nCUPED θ {:.4}, reduction {:.3}, Welch {:?}\nCUPED bootstrap {:?}",
        plain.interval, boot.interval, cuped.theta, cuped.variance_reduction, adjusted.interval, adjusted_boot.interval
    );
    eprintln!("Welch + bootstrap + CUPED (Welch and bootstrap), 10⁶ customers, 2 000 resamples: {elapsed:?}");
    assert!(adjusted.interval.width() < plain.interval.width());
    assert!(plain.interval.contains(plain.difference) && boot.interval.contains(boot.difference));
}
