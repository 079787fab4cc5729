//! Fits on the papers' data sets reproduce the published estimates and predictions.
//!
//! Data: the repository's `data/` folder (CDNOW sample summaries and the donations data, from the
//! `lifetimes` 0.11.3 distribution; see `data/README.md`).

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kanta_models::{
    BgBb, BgNbd, DiscreteHistories, DiscreteHistory, FitOptions, FitReport, GammaGamma, Histories, History, ParetoNbd,
    Sbg, Spend, TransactionModel, Variant,
};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data").join(file)
}

/// Rows of a small CSV file as numbers, header skipped.
fn rows(file: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(data(file)).unwrap();
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect()
}

/// CDNOW sample calibration summary: (x, t_x, T) in weeks and z̄.
fn cdnow() -> Vec<(History, f64)> {
    rows("cdnow_customers_summary_with_transactions.csv")
        .iter()
        .enumerate()
        .map(|(i, r)| (History::parse(i, r[1] as u32, r[2], r[3]).unwrap(), r[4]))
        .collect()
}

fn cdnow_histories() -> Histories {
    Histories::from_histories(cdnow().into_iter().map(|(h, _)| h)).unwrap()
}

fn assert_rel(report: &FitReport, name: &str, want: f64, rel: f64) {
    let got = report.param(name).unwrap();
    assert!((got / want - 1.0).abs() <= rel, "{}: {name} = {got}, published {want}", report.model);
}

#[test]
fn bgnbd_on_cdnow_matches_fader_hardie_lee_2005_and_lifetimes() {
    let (model, report) = BgNbd::fit(Variant::Bg, &cdnow_histories(), &FitOptions::default()).unwrap();
    // lifetimes 0.11.3: r = 0.242593, α = 4.41353, a = 0.792886, b = 2.42575.
    assert_rel(&report, "r", 0.242593, 2e-5);
    assert_rel(&report, "alpha", 4.41353, 2e-5);
    assert_rel(&report, "a", 0.792886, 2e-5);
    assert_rel(&report, "b", 2.42575, 2e-5);
    // FHL 2005: log-likelihood −9582.43.
    assert!((report.log_likelihood + 9582.43).abs() < 0.005, "{}", report.log_likelihood);
    assert_eq!(report.customers, 2357.0);
    assert!(report.distinct < 2357, "identical histories are merged: {}", report.distinct);
    // lifetimes' summary table: standard errors 0.012557, 0.378221, 0.185719, 0.705345.
    for (name, se) in [("r", 0.012557), ("alpha", 0.378221), ("a", 0.185719), ("b", 0.705345)] {
        let p = report.params.iter().find(|p| p.name == name).unwrap();
        assert!((p.std_error.unwrap() / se - 1.0).abs() < 1e-4, "{p:?}");
        assert!(p.lower.unwrap() < p.value && p.value < p.upper.unwrap());
    }
    // lifetimes' predictions for (x, t_x, T) = (2, 30.43, 38.86): P(alive) = 0.72660914 and
    // E[purchases in the next 39 weeks] = 1.2259104, from its full-precision estimates.
    let h = History { x: 2, t_x: 30.43, t: 38.86 };
    assert!((model.p_alive(&h) - 0.72660914).abs() < 5e-8, "{}", model.p_alive(&h));
    let e = model.conditional_expected_purchases(39.0, &h);
    assert!((e - 1.2259104).abs() < 1e-7, "{e}");
    // At the 6-digit parameters lifetimes prints, the same to 6 digits.
    let lt = BgNbd::new(Variant::Bg, 0.242593, 4.41353, 0.792886, 2.42575).unwrap();
    assert!((lt.p_alive(&h) - 0.72660914).abs() < 1e-6);
    assert!((lt.conditional_expected_purchases(39.0, &h) - 1.2259104).abs() < 1e-6);
}

#[test]
fn mbgnbd_on_cdnow_fits_and_is_close_to_bgnbd() {
    let data = cdnow_histories();
    let (_, bg) = BgNbd::fit(Variant::Bg, &data, &FitOptions::default()).unwrap();
    let (model, mbg) = BgNbd::fit(Variant::Mbg, &data, &FitOptions::default()).unwrap();
    // lifetimes' ModifiedBetaGeoFitter documentation on this data: r = 0.525, α = 6.183,
    // a = 0.891, b = 1.614.
    assert_rel(&mbg, "r", 0.525, 1e-3);
    assert_rel(&mbg, "alpha", 6.183, 1e-3);
    assert_rel(&mbg, "a", 0.891, 1e-3);
    assert_rel(&mbg, "b", 1.614, 1e-3);
    // The models differ only in drop-out at time 0; MBG/NBD fits this data slightly better and
    // gives a one-time buyer P(alive) < 1, which BG/NBD cannot express.
    assert!(mbg.log_likelihood > bg.log_likelihood && mbg.log_likelihood - bg.log_likelihood < 1.0);
    let one_timer = History { x: 0, t_x: 0.0, t: 38.86 };
    let p = model.p_alive(&one_timer);
    assert!(p > 0.3 && p < 0.5, "{p}");
}

#[test]
fn pareto_nbd_on_cdnow_matches_fader_hardie() {
    let (_, report) = ParetoNbd::fit(&cdnow_histories(), &FitOptions::default()).unwrap();
    // Fader & Hardie (2005 note; Excel): r = 0.5533, α = 10.578, s = 0.6062, β = 11.667, LL = −9594.97.
    assert_rel(&report, "r", 0.5533, 2e-4);
    assert_rel(&report, "alpha", 10.578, 2e-4);
    assert_rel(&report, "s", 0.6062, 2e-4);
    assert_rel(&report, "beta", 11.667, 2e-4);
    assert!((report.log_likelihood + 9594.97).abs() < 0.01, "{}", report.log_likelihood);
}

#[test]
fn gamma_gamma_on_cdnow_repeat_buyers_matches_note_025() {
    let spends: Vec<(Spend, f64)> = cdnow()
        .iter()
        .enumerate()
        .filter(|(_, (h, _))| h.x > 0)
        .map(|(i, (h, z))| (Spend::parse(i, h.x, *z).unwrap(), 1.0))
        .collect();
    assert_eq!(spends.len(), 946);
    let (model, report) = GammaGamma::fit(&spends, &FitOptions::default()).unwrap();
    // Note 025: p = 6.25, q = 3.74, γ = 15.44; lifetimes: 6.2488, 3.7446, 15.4477.
    assert_rel(&report, "p", 6.2488, 2e-4);
    assert_rel(&report, "q", 3.7446, 2e-4);
    assert_rel(&report, "gamma", 15.4477, 2e-4);
    // Note 025: the population mean spend is $35.00… (pγ/(q−1)).
    let mean = model.population_mean().unwrap();
    assert!((mean - 6.2488 * 15.4477 / 2.7446).abs() < 0.02, "{mean}");
}

#[test]
fn bgbb_on_donations_matches_fader_hardie_shang_2010() {
    let items: Vec<(DiscreteHistory, f64)> = rows("donations.csv")
        .iter()
        .enumerate()
        .map(|(i, r)| (DiscreteHistory::parse(i, r[0] as u32, r[1] as u32, r[2] as u32).unwrap(), r[3]))
        .collect();
    let data = DiscreteHistories::new(items).unwrap();
    assert_eq!(data.customers(), 11_104.0);
    let (model, report) = BgBb::fit(&data, &FitOptions::default()).unwrap();
    assert_rel(&report, "alpha", 1.2035, 2e-4);
    assert_rel(&report, "beta", 0.7497, 2e-4);
    assert_rel(&report, "gamma", 0.6567, 2e-4);
    assert_rel(&report, "delta", 2.7834, 2e-4);
    assert!((report.log_likelihood + 33225.58).abs() < 0.01, "{}", report.log_likelihood);
    // FHS 2010 Figure 4: the model tracks annual repeat transactions; the cohort's expected
    // transactions over the 6 calibration years is n · E[X(6)] and matches the data's total.
    let observed: f64 = rows("donations.csv").iter().map(|r| r[0] * r[3]).sum();
    let expected = 11_104.0 * model.expected_transactions(6);
    assert!((expected / observed - 1.0).abs() < 0.01, "{expected} vs {observed}");
}

#[test]
fn sbg_matches_fader_hardie_2007() {
    let high = [1000.0, 869.0, 743.0, 653.0, 593.0, 551.0, 517.0, 491.0];
    let regular = [1000.0, 631.0, 468.0, 382.0, 326.0, 289.0, 262.0, 241.0];
    let (model, report) = Sbg::fit(&high, &FitOptions::default()).unwrap();
    assert_rel(&report, "alpha", 0.668, 1e-3);
    assert_rel(&report, "beta", 3.806, 1e-3);
    let projected: Vec<f64> = (8..=12).map(|t| model.survival(t)).collect();
    for (got, want) in projected.iter().zip([0.460, 0.436, 0.414, 0.395, 0.378]) {
        assert!((got - want).abs() < 0.0015, "{projected:?}");
    }
    let (_, report) = Sbg::fit(&regular, &FitOptions::default()).unwrap();
    assert_rel(&report, "alpha", 0.704, 1e-3);
    assert_rel(&report, "beta", 1.182, 1e-3);
}
