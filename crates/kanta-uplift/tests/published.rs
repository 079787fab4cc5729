//! Every formula against values computed independently of this crate: the paper's own tables,
//! scipy and statsmodels (the exact calls are quoted beside each value), or by hand.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] fns unwrap too: a panic is a failed test.

use approx::assert_abs_diff_eq;
use approx::assert_relative_eq;
use kanta_uplift::cuped::{Cuped, Paired};
use kanta_uplift::curve::{FollowUp, cumulative_conversion};
use kanta_uplift::mean::{Summary, welch};
use kanta_uplift::power::{Rule, Verdict, mean_mde, rate_mde, verdict};
use kanta_uplift::proportion::{Proportion, difference};
use kanta_uplift::{Interval, Level, UpliftError};

fn rate(successes: u64, trials: u64) -> Proportion {
    Proportion::new(successes, trials).unwrap()
}

/// Newcombe (1998), Table II, method 10, all six worked examples, to the paper's four decimals,
/// and to 1e-12 against statsmodels 0.14:
/// `confint_proportions_2indep(a, n, b, m, method='newcomb', compare='diff')`.
/// (The first example's difference is 56/70 − 48/80 = 0.8 − 0.6 = 0.2000.)
#[test]
fn newcombe_intervals_match_the_paper_and_statsmodels() {
    let cases = [
        ((56, 70), (48, 80), 0.0524, 0.3339, 0.05243147240236498, 0.33387265403690614),
        ((9, 10), (3, 10), 0.1705, 0.8090, 0.1705227239345029, 0.809017973535488),
        ((6, 7), (2, 7), 0.0582, 0.8062, 0.05822792748231209, 0.8062496375242278),
        ((5, 56), (0, 29), -0.0381, 0.1926, -0.038137147903536936, 0.19256001385511165),
        ((0, 10), (0, 20), -0.1611, 0.2775, -0.1611251580528194, 0.27753279986288926),
        ((10, 10), (0, 20), 0.6791, 1.0000, 0.6790860371419145, 1.0),
    ];
    for ((a, n), (b, m), paper_lower, paper_upper, lower, upper) in cases {
        let result = difference(rate(a, n), rate(b, m), Level::NINETY_FIVE).unwrap();
        assert_abs_diff_eq!(result.difference, a as f64 / n as f64 - b as f64 / m as f64, epsilon = 1e-15);
        assert_abs_diff_eq!(result.newcombe.lower, paper_lower, epsilon = 5e-5);
        assert_abs_diff_eq!(result.newcombe.upper, paper_upper, epsilon = 5e-5);
        assert_abs_diff_eq!(result.newcombe.lower, lower, epsilon = 1e-12);
        assert_abs_diff_eq!(result.newcombe.upper, upper, epsilon = 1e-12);
    }
}

/// Wald (Newcombe's method 1) against statsmodels 0.14:
/// `confint_proportions_2indep(a, n, b, m, method='wald', compare='diff')`. At 0/10 − 0/20 it
/// collapses to the point 0, the failure Newcombe's method avoids.
#[test]
fn wald_intervals_match_statsmodels() {
    let cases = [
        ((56, 70), (48, 80), 0.057504899149037114, 0.342495100850963),
        ((9, 10), (3, 10), 0.26052427977714854, 0.9394757202228516),
        ((5, 56), (0, 29), 0.014600240442591991, 0.1639711881288366),
        ((0, 10), (0, 20), 0.0, 0.0),
    ];
    for ((a, n), (b, m), lower, upper) in cases {
        let result = difference(rate(a, n), rate(b, m), Level::NINETY_FIVE).unwrap();
        assert_abs_diff_eq!(result.wald.lower, lower, epsilon = 1e-12);
        assert_abs_diff_eq!(result.wald.upper, upper, epsilon = 1e-12);
    }
}

/// Wilson's interval for 81/263 (Newcombe 1998, method 3's example; statsmodels 0.14:
/// `proportion_confint(81, 263, method='wilson')`).
#[test]
fn wilson_interval_matches_statsmodels() {
    let interval = rate(81, 263).wilson(Level::NINETY_FIVE).unwrap();
    assert_abs_diff_eq!(interval.lower, 0.2552885198782742, epsilon = 1e-12);
    assert_abs_diff_eq!(interval.upper, 0.36620957698280004, epsilon = 1e-12);
}

#[test]
fn impossible_counts_and_empty_arms_are_errors_not_panics() {
    assert_eq!(Proportion::new(3, 2), Err(UpliftError::MoreSuccessesThanTrials { successes: 3, trials: 2 }));
    assert_eq!(difference(rate(0, 0), rate(1, 2), Level::NINETY_FIVE), Err(UpliftError::EmptyArm { arm: "treatment" }));
    assert_eq!(difference(rate(1, 2), rate(0, 0), Level::NINETY_FIVE), Err(UpliftError::EmptyArm { arm: "control" }));
    assert_eq!(Level::new(1.0), Err(UpliftError::Level(1.0)));
    assert!(Level::new(f64::NAN).is_err());
}

/// A revenue sample, mostly zeros. scipy 1.17.1:
/// `r = scipy.stats.ttest_ind(t, c, equal_var=False); r.confidence_interval(0.95), r.df`
/// with t = [0,0,0,12.5,0,40,0,0,7.25,0,0,95], c = [0,0,18,0,0,0,0,22.5,0,0]
/// (R: `t.test(t, c)` gives the same Welch interval).
const TREATMENT: [f64; 12] = [0.0, 0.0, 0.0, 12.5, 0.0, 40.0, 0.0, 0.0, 7.25, 0.0, 0.0, 95.0];
const CONTROL: [f64; 10] = [0.0, 0.0, 18.0, 0.0, 0.0, 0.0, 0.0, 22.5, 0.0, 0.0];

#[test]
fn welch_interval_matches_scipy() {
    let result = welch(&TREATMENT, &CONTROL, Level::NINETY_FIVE).unwrap();
    assert_relative_eq!(result.difference, 8.845833333333335, max_relative = 1e-12);
    assert_relative_eq!(result.df, 13.367031425387438, max_relative = 1e-12);
    assert_relative_eq!(result.interval.lower, -9.731449321105888, max_relative = 1e-9);
    assert_relative_eq!(result.interval.upper, 27.423115987772558, max_relative = 1e-9);
}

#[test]
fn welch_refuses_arms_too_small_or_not_finite() {
    assert_eq!(
        welch(&[1.0], &CONTROL, Level::NINETY_FIVE),
        Err(UpliftError::TooFewCustomers { arm: "treatment", n: 1 })
    );
    assert_eq!(welch(&TREATMENT, &[], Level::NINETY_FIVE), Err(UpliftError::EmptyArm { arm: "control" }));
    assert_eq!(welch(&[1.0, f64::NAN], &CONTROL, Level::NINETY_FIVE), Err(UpliftError::NotFinite { arm: "treatment" }));
    // Two constant arms: the interval is the point, not NaN.
    let constant = welch(&[2.0, 2.0], &[1.0, 1.0, 1.0], Level::NINETY_FIVE).unwrap();
    assert_eq!(constant.interval, Interval { lower: 1.0, upper: 1.0 });
}

/// CUPED on a small paired sample, against numpy/scipy 1.17.1:
/// `x, y = concat(xt, xc), concat(yt, yc); th = np.cov(x, y)[0, 1] / np.var(x, ddof=1);
///  at = yt - th*(xt - x.mean()); ac = yc - th*(xc - x.mean());
///  1 - (at.var(ddof=1)/8 + ac.var(ddof=1)/7) / (yt.var(ddof=1)/8 + yc.var(ddof=1)/7);
///  scipy.stats.ttest_ind(at, ac, equal_var=False).confidence_interval(0.95)`.
#[test]
fn cuped_matches_numpy() {
    let (xt, yt) = ([10.0, 0.0, 0.0, 30.0, 5.0, 0.0, 80.0, 0.0], [12.0, 0.0, 3.0, 35.0, 0.0, 0.0, 90.0, 4.0]);
    let (xc, yc) = ([0.0, 20.0, 0.0, 60.0, 0.0, 15.0, 0.0], [0.0, 18.0, 0.0, 50.0, 2.0, 10.0, 0.0]);
    let cuped = Cuped::adjust(Paired { pre: &xt, post: &yt }, Paired { pre: &xc, post: &yc }).unwrap();
    assert_relative_eq!(cuped.theta, 1.0203403244954488, max_relative = 1e-12);
    assert_relative_eq!(cuped.pre_mean, 14.666666666666666, max_relative = 1e-12);
    assert_relative_eq!(cuped.variance_reduction, 0.971460304875278, max_relative = 1e-10);
    let result = cuped.welch(Level::NINETY_FIVE).unwrap();
    assert_relative_eq!(result.difference, 4.476086833625418, max_relative = 1e-10);
    assert_relative_eq!(result.interval.lower, -0.3362538663057766, max_relative = 1e-8);
    assert_relative_eq!(result.interval.upper, 9.288427533556613, max_relative = 1e-9);
    assert_eq!(
        Cuped::adjust(Paired { pre: &xt[..3], post: &yt }, Paired { pre: &xc, post: &yc }),
        Err(UpliftError::UnpairedCovariate { arm: "treatment", pre: 3, post: 8 })
    );
}

/// MDE at 80 % power against statsmodels 0.14's `NormalIndPower().solve_power(nobs1=n1,
/// alpha=0.05, power=0.8, ratio=n2/n1)`, a standardised effect, times the standard deviation:
/// √(p̄(1 − p̄)) for rates (50/1000 and 40/1200), and for means σ with σ²(1/n₁ + 1/n₂) =
/// s₁²/n₁ + s₂²/n₂ (the revenue sample above). statsmodels counts the far tail's rejections
/// too, a 10⁻⁶ relative difference.
#[test]
fn minimum_detectable_effects_match_statsmodels() {
    let mde = rate_mde(rate(50, 1000), rate(40, 1200), Level::NINETY_FIVE).unwrap();
    assert_relative_eq!(mde, 0.02376098754157424, max_relative = 1e-5);
    let (t, c) = (Summary::of(&TREATMENT, "treatment").unwrap(), Summary::of(&CONTROL, "control").unwrap());
    assert_relative_eq!(mean_mde(t, c, Level::NINETY_FIVE), 24.158413946139827, max_relative = 1e-5);
}

#[test]
fn the_verdict_waits_for_conversions_and_for_power() {
    let rule = Rule::default();
    let above = Interval { lower: 0.01, upper: 0.03 };
    let below = Interval { lower: -0.03, upper: -0.01 };
    let around = Interval { lower: -0.004, upper: 0.006 };
    assert_eq!(verdict(above, 0.01, 0.05, (29, 100), rule), Verdict::TooEarly);
    assert_eq!(verdict(above, 0.01, 0.05, (30, 30), rule), Verdict::Uplift);
    assert_eq!(verdict(below, 0.01, 0.05, (30, 30), rule), Verdict::Harm);
    // MDE 0.01 ≤ 0.2 × 0.05: the arms would have seen a 20 % relative uplift.
    assert_eq!(verdict(around, 0.01, 0.05, (500, 400), rule), Verdict::NoDetectableEffect);
    // MDE 0.011 > 0.2 × 0.05: a null result says nothing yet.
    assert_eq!(verdict(around, 0.011, 0.05, (500, 400), rule), Verdict::TooEarly);
    let nan = Interval { lower: f64::NAN, upper: f64::NAN };
    assert_eq!(verdict(nan, 0.01, 0.05, (500, 400), rule), Verdict::TooEarly);
}

/// Kaplan–Meier by hand on six customers (days followed, day converted):
/// A (10, 2), B (10, 2), C (3, –), D (10, 5), E (4, 6: after follow-up, so censored on day 4),
/// F (10, –).
/// Day 2: n = 6, d = 2: S = 4/6, Greenwood Σ = 2/(6·4) = 1/12, Var = (4/6)²/12 = 1/27.
/// Day 3: n = 4 (C censored after it); day 4: n = 3 (E censored after it);
/// day 5: n = 2, d = 1: S = 4/6 · 1/2 = 1/3, Σ = 1/12 + 1/(2·1) = 7/12, Var = (1/9)(7/12) = 7/108.
/// Days 6–10: n = 1 (F), no conversions.
#[test]
fn kaplan_meier_matches_a_hand_computed_example() {
    let follow = |days_followed, converted_on| FollowUp { days_followed, converted_on };
    let customers = [
        follow(10, Some(2)),
        follow(10, Some(2)),
        follow(3, None),
        follow(10, Some(5)),
        follow(4, Some(6)),
        follow(10, None),
    ];
    let curve = cumulative_conversion(&customers, Level::NINETY_FIVE);
    assert_eq!(curve.len(), 11);
    let at_risk: Vec<u64> = curve.iter().map(|p| p.at_risk).collect();
    assert_eq!(at_risk, [6, 6, 6, 4, 3, 2, 1, 1, 1, 1, 1]);
    let z = 1.959963984540054;
    assert_eq!(curve[1].converted, 0.0);
    assert_eq!(curve[1].band, Interval { lower: 0.0, upper: 0.0 });
    assert_abs_diff_eq!(curve[2].converted, 1.0 / 3.0, epsilon = 1e-15);
    assert_abs_diff_eq!(curve[2].band.upper, 1.0 / 3.0 + z * (1.0f64 / 27.0).sqrt(), epsilon = 1e-12);
    assert_abs_diff_eq!(curve[2].band.lower, 0.0, epsilon = 1e-15); // 1/3 − 0.377 clipped at 0
    assert_abs_diff_eq!(curve[4].converted, 1.0 / 3.0, epsilon = 1e-15);
    for point in &curve[5..] {
        assert_abs_diff_eq!(point.converted, 2.0 / 3.0, epsilon = 1e-15);
        assert_abs_diff_eq!(point.band.lower, 2.0 / 3.0 - z * (7.0f64 / 108.0).sqrt(), epsilon = 1e-12);
        assert_abs_diff_eq!(point.band.upper, 1.0, epsilon = 1e-15); // 2/3 + 0.499 clipped at 1
    }
    assert!(cumulative_conversion(&[], Level::NINETY_FIVE).is_empty());
}

#[test]
fn a_curve_whose_every_customer_converts_reaches_one_with_no_band() {
    let customers =
        [FollowUp { days_followed: 3, converted_on: Some(1) }, FollowUp { days_followed: 0, converted_on: Some(0) }];
    let curve = cumulative_conversion(&customers, Level::NINETY_FIVE);
    assert_eq!(curve[0].converted, 0.5);
    assert_eq!(curve[1].converted, 1.0);
    assert_eq!(curve[3].band, Interval { lower: 1.0, upper: 1.0 });
}
