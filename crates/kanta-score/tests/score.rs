//! Scoring a simulated shop recovers the simulator's parameters, and the per-customer rules
//! (risk bands, slipping) hold for every customer.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{Analysis, AnalysisOptions, analyze};
use kanta_core::lifecycle::Stage;
use kanta_core::rfm::Segment;
use kanta_gen::{Config, simulate};
use kanta_score::{Candidate, ModelKind, RiskBand, ScoreError, ScoreOptions, score};

fn shop(customers: u64) -> Analysis {
    let config = Config { customers, seed: 5, ..Config::default() };
    let mut agg = Aggregator::new();
    for order in simulate(&config).unwrap() {
        let customer = format!("C{:07}", order.customer);
        let number = order.number.to_string();
        agg.push(OrderLine {
            customer: customer.as_bytes(),
            order: Some(number.as_bytes()),
            time: order.time,
            amount: order.value,
        })
        .unwrap();
    }
    analyze(&agg.finish(), &AnalysisOptions::default()).unwrap()
}

#[test]
fn the_simulators_bgnbd_and_spend_parameters_are_recovered() {
    let analysis = shop(20_000);
    let truth = Config::default();
    let scores = score(&analysis, &ScoreOptions { model: ModelKind::BgNbd, ..ScoreOptions::default() }).unwrap();
    let fit = scores.summary.candidates[0].fit.as_ref().unwrap();
    for (name, value) in [("r", truth.r), ("alpha", truth.alpha), ("a", truth.a), ("b", truth.b)] {
        let p = fit.params.iter().find(|p| p.name == name).unwrap();
        // Purchases on the same day merge into one period, so the fit sees slightly fewer
        // transactions than were simulated: allow 3 standard errors plus 5 %.
        let tolerance = 3.0 * p.std_error.unwrap() + 0.05 * value;
        assert!((p.value - value).abs() < tolerance, "{name}: fitted {} vs simulated {value}", p.value);
    }
    let spend = scores.summary.spend.as_ref().unwrap();
    let q = spend.param("q").unwrap();
    assert!((q - truth.spend_q).abs() < 0.25 * truth.spend_q, "q = {q}");
    assert_eq!(scores.customers.len(), analysis.customers.len());
}

#[test]
fn auto_picks_the_lowest_bic_and_rules_hold_per_customer() {
    let analysis = shop(5_000);
    let scores = score(&analysis, &ScoreOptions::default()).unwrap();
    let fits: Vec<_> = scores.summary.candidates.iter().filter_map(|c| c.fit.as_ref().ok()).collect();
    assert_eq!(fits.len(), 3, "{:?}", scores.summary.candidates);
    let best = fits.iter().min_by(|a, b| a.bic.total_cmp(&b.bic)).unwrap();
    assert_eq!(scores.summary.chosen, best.model);
    assert_eq!(scores.summary.selected_by, "bic");
    let mut clvs: Vec<f64> = scores.customers.iter().filter_map(|s| s.clv_12m).collect();
    clvs.sort_by(f64::total_cmp);
    let top_20 = clvs[clvs.len() * 4 / 5];
    let mut bands = [0u64; 4];
    let mut slipping = 0;
    for (c, s) in analysis.customers.iter().zip(&scores.customers) {
        assert!((0.0..=1.0).contains(&s.p_alive) && (0.0..=1.0).contains(&s.p_purchase_30d));
        assert!(
            s.expected_purchases[0] <= s.expected_purchases[1] && s.expected_purchases[1] <= s.expected_purchases[2]
        );
        assert_eq!(s.risk, RiskBand::of(s.p_alive));
        bands[s.risk as usize] += 1;
        if s.slipping {
            assert!(s.p_alive < 0.5);
            assert!(matches!(c.stage, Stage::New | Stage::Repeat | Stage::Loyal));
            let valuable =
                matches!(c.segment, Segment::Champions | Segment::Loyal) || s.clv_12m.is_some_and(|v| v >= top_20);
            assert!(valuable, "{c:?} {s:?}");
            slipping += 1;
        }
    }
    assert_eq!(bands, scores.summary.risk_bands);
    assert_eq!(slipping, scores.summary.slipping_customers);
    assert!(slipping > 0, "the simulated shop has slipping customers");
    let total: f64 = scores.customers.iter().map(|s| s.expected_purchases[2]).sum();
    assert!((total - scores.summary.expected_purchases[2]).abs() < 1e-6 * total);
}

#[test]
fn risk_bands_have_the_documented_edges() {
    assert_eq!(RiskBand::of(0.75), RiskBand::Low);
    assert_eq!(RiskBand::of(0.7499), RiskBand::Medium);
    assert_eq!(RiskBand::of(0.5), RiskBand::Medium);
    assert_eq!(RiskBand::of(0.25), RiskBand::High);
    assert_eq!(RiskBand::of(0.2499), RiskBand::VeryHigh);
}

#[test]
fn tiny_bases_are_declined_with_the_reason() {
    let analysis = shop(20);
    let err = score(&analysis, &ScoreOptions::default()).unwrap_err();
    assert!(matches!(err, ScoreError::TooFew { .. }), "{err:?}");
    assert!(err.to_string().contains("they need at least 50"), "{err}");
}

#[test]
fn fits_serialise_as_the_report_or_an_error_object() {
    let failed = Candidate { model: "paretonbd", fit: Err("did not converge".into()), fallback: None };
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        serde_json::json!({"model": "paretonbd", "fit": {"error": "did not converge"}})
    );
    let analysis = shop(2_000);
    let scores = score(&analysis, &ScoreOptions { model: ModelKind::BgNbd, ..ScoreOptions::default() }).unwrap();
    let json = serde_json::to_value(&scores.summary).unwrap();
    assert_eq!(json["candidates"][0]["fit"]["params"][0]["name"], "r");
    assert_eq!(json["spend"]["model"], "gammagamma");
}

/// The issue's new shop: 76,400 customers who bought once and 500 who bought twice, within one
/// year. `kanta analyze` used to spin on it (BG/NBD's boundary estimates made each prediction
/// sum a 10⁶-term series 64 times); now every candidate is refused with the reason, quickly.
#[test]
fn a_shop_of_one_time_buyers_gets_no_model_and_the_reason_in_bounded_time() {
    use kanta_core::money::Money;
    use kanta_core::time::Timestamp;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state >> 11
        };
        let day = |d: u64| Timestamp(i64::try_from(d).unwrap() * 86_400 + 36_000);
        let mut agg = Aggregator::new();
        let amount = Money::from_units(25).unwrap();
        for c in 0..76_900u32 {
            let id = format!("C{c:06}");
            let first = next() % 365;
            agg.push(OrderLine { customer: id.as_bytes(), order: None, time: day(first), amount }).unwrap();
            if c >= 76_400 {
                let second = first + 1 + next() % (365 - first).max(1);
                agg.push(OrderLine { customer: id.as_bytes(), order: None, time: day(second.min(365)), amount })
                    .unwrap();
            }
        }
        // The last order of a one-year window: everyone's T ends on day 365.
        agg.push(OrderLine { customer: b"C076899", order: None, time: day(365), amount }).unwrap();
        let analysis = analyze(&agg.finish(), &AnalysisOptions::default()).unwrap();
        let auto = score(&analysis, &ScoreOptions::default()).map(|_| ());
        let bgnbd = score(&analysis, &ScoreOptions { model: ModelKind::BgNbd, ..ScoreOptions::default() }).map(|_| ());
        let _ = tx.send((auto, bgnbd));
    });
    let (auto, bgnbd) = rx.recv_timeout(std::time::Duration::from_secs(300)).expect("scoring did not finish");
    // Each candidate's reason, joined by "; " in the order BG/NBD, MBG/NBD, Pareto/NBD.
    for (result, models) in [(auto, &["BG/NBD", "MBG/NBD", "paretonbd"][..]), (bgnbd, &["BG/NBD"][..])] {
        let Err(ScoreError::NoModel(reason)) = result else { panic!("{result:?}") };
        for model in models {
            assert!(reason.contains(&format!("the data cannot identify the {model} model")), "{model}: {reason}");
        }
        assert!(reason.contains("only 500 of 76,900 customers (0.65 %) made a repeat purchase"), "{reason}");
        assert!(!reason.contains("did not converge after"), "{reason}");
        // Too few repeat buyers is no nested limit: no NBD or Poisson was tried in their place.
        assert!(!reason.contains("tried as the limit"), "{reason}");
    }
}

/// A shop where nobody drops out: 2,000 customers whose first purchase falls in the first year
/// and who then buy at Poisson rate λ until the end of the third year. λ is 1/20 per day for
/// everyone (`shape` `None`), or Gamma(shape, 40) distributed (mean shape/40 per day).
fn loyal_shop(shape: Option<u32>, seed: u64) -> Analysis {
    use kanta_core::money::Money;
    use kanta_core::time::Timestamp;
    let mut state = seed;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let end = 3.0 * 365.0;
    let at = |d: f64| Timestamp((d * 86_400.0) as i64 + 1_700_000_000);
    let mut agg = Aggregator::new();
    let amount = Money::from_units(25).unwrap();
    for c in 0..2_000u32 {
        let id = format!("C{c:05}");
        let lambda = match shape {
            None => 0.05,
            Some(k) => (0..k).map(|_| -uniform().ln()).sum::<f64>() / 40.0,
        };
        let mut day = 365.0 * uniform();
        while day <= end {
            agg.push(OrderLine { customer: id.as_bytes(), order: None, time: at(day), amount }).unwrap();
            day += -uniform().ln() / lambda;
        }
    }
    // Everyone is observed to the end of the third year.
    agg.push(OrderLine { customer: b"C00000", order: None, time: at(end), amount }).unwrap();
    analyze(&agg.finish(), &AnalysisOptions::default()).unwrap()
}

#[test]
fn a_shop_where_nobody_drops_out_and_rates_are_equal_gets_the_poisson_limit() {
    let analysis = loyal_shop(None, 0x2545_f491_4f6c_dd1d);
    for (choice, tried) in [(ModelKind::Auto, 3), (ModelKind::BgNbd, 1)] {
        let scores = score(&analysis, &ScoreOptions { model: choice, ..ScoreOptions::default() }).unwrap();
        let m = &scores.summary;
        assert_eq!((m.chosen, m.selected_by), ("poisson", "fallback"), "{:?}", m.candidates);
        assert_eq!(m.candidates.len(), tried + 1);
        for c in &m.candidates[..tried] {
            let reason = c.fit.as_ref().unwrap_err();
            assert!(reason.starts_with("the data cannot identify the "), "{}: {reason}", c.model);
            assert!(c.fallback.is_none());
        }
        let row = m.candidates.last().unwrap();
        let fallback = m.fallback.as_ref().unwrap();
        assert_eq!(row.fallback.as_ref(), Some(fallback));
        assert_eq!((fallback.from, fallback.limit), ("bgnbd", "poisson"));
        assert!(
            fallback.note.starts_with("BG/NBD could not be identified: nobody appears to drop out (the drop-out"),
            "{}",
            fallback.note
        );
        assert!(fallback.note.contains("; the purchase rates look the same for everyone"), "{}", fallback.note);
        assert!(fallback.note.ends_with("; using the Poisson limit"), "{}", fallback.note);
        // λ̂ = Σx/ΣT, near the simulated 1/20 per day (same-day purchases merge: a little below).
        let fit = row.fit.as_ref().unwrap();
        let lambda = fit.param("lambda").unwrap();
        let sum_x: f64 = analysis.customers.iter().map(|c| f64::from(c.frequency)).sum();
        let sum_t: f64 = analysis.customers.iter().map(|c| f64::from(c.t_days)).sum();
        assert!((lambda / (sum_x / sum_t) - 1.0).abs() < 1e-9, "{lambda}");
        assert!((lambda - 0.05).abs() < 0.05 * 0.05 && fit.params[0].std_error.is_some(), "{lambda}");
        // Finite predictions: everyone alive, λ t purchases expected, P(buy in 30 days) = 1 − e^(−30λ).
        for s in &scores.customers {
            assert_eq!(s.p_alive, 1.0);
            assert!((s.expected_purchases[2] / (365.0 * lambda) - 1.0).abs() < 1e-12, "{s:?}");
            assert!((s.p_purchase_30d - -(-30.0 * lambda).exp_m1()).abs() < 1e-12, "{s:?}");
            assert!((s.next_purchase_days - std::f64::consts::LN_2 / lambda).abs() < 1e-6, "{s:?}");
            assert!(s.clv_12m.is_some_and(f64::is_finite), "{s:?}");
        }
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json["fallback"]["limit"], "poisson");
        assert_eq!(json["candidates"][tried]["fallback"]["from"], "bgnbd");
        assert!(json["candidates"][0].get("fallback").is_none(), "{}", json["candidates"][0]);
    }
}

#[test]
fn a_shop_where_nobody_drops_out_gets_the_nbd_limit_with_heterogeneous_rates() {
    // λ ~ Gamma(2, 40): r = 2, α = 40 per day.
    let analysis = loyal_shop(Some(2), 0x9e37_79b9_7f4a_7c15);
    let scores = score(&analysis, &ScoreOptions::default()).unwrap();
    let m = &scores.summary;
    assert_eq!((m.chosen, m.selected_by), ("nbd", "fallback"), "{:?}", m.candidates);
    let fallback = m.fallback.as_ref().unwrap();
    assert!(
        fallback.note.ends_with("; using the NBD limit") && !fallback.note.contains("look the same"),
        "{fallback:?}"
    );
    let fit = m.candidates.last().unwrap().fit.as_ref().unwrap();
    for (name, truth) in [("r", 2.0), ("alpha", 40.0)] {
        let p = fit.params.iter().find(|p| p.name == name).unwrap();
        assert!((p.value - truth).abs() < 3.0 * p.std_error.unwrap() + 0.05 * truth, "{name} = {}", p.value);
    }
    let (r, alpha) = (fit.param("r").unwrap(), fit.param("alpha").unwrap());
    for (c, s) in analysis.customers.iter().zip(&scores.customers) {
        let want = (r + f64::from(c.frequency)) * 365.0 / (alpha + f64::from(c.t_days));
        assert!((s.expected_purchases[2] / want - 1.0).abs() < 1e-9 && s.p_alive == 1.0, "{s:?}");
    }
}

#[test]
fn the_simulated_shop_with_dropout_gets_no_fallback() {
    let scores = score(&shop(5_000), &ScoreOptions::default()).unwrap();
    assert!(scores.summary.fallback.is_none());
    assert!(scores.summary.candidates.iter().all(|c| c.fallback.is_none() && c.model != "nbd"));
}

/// CLV is heavy-tailed: 19,000 customers between 1 and 50 and 1,000 up to 5,000 put 95 % in the
/// first of ten equal-width bins; logarithmic bins spread them (issue 19: "today the CLV
/// histogram in report.html is one bar holding 19,000 of 20,000 customers").
#[test]
fn the_clv_histogram_has_logarithmic_bins_that_spread_a_heavy_tail() {
    let mut values: Vec<f64> = (0..19_000).map(|i| 1.0 + 49.0 * f64::from(i) / 19_000.0).collect();
    values.extend((0..1_000).map(|i| 50.0 + 4_950.0 * f64::from(i) / 999.0));
    values.extend([0.0; 10]);
    let bins = kanta_score::log_histogram(&values, 10);
    assert_eq!(bins.len(), 11);
    assert_eq!(bins.iter().map(|b| b.customers).sum::<u64>(), 20_010);
    // The first bin is [0, the 5th percentile of the positive values): the zeros and 5 %.
    let p5 = 1.0 + 49.0 * 1_000.0 / 19_000.0;
    assert!((bins[0].to - p5).abs() < 1e-9, "{}", bins[0].to);
    assert_eq!(bins[0].customers, 10 + 1_000);
    // Edges are geometric from p5 to the maximum, which falls in the last bin.
    let ratio = (5_000.0 / p5).powf(0.1);
    for (i, b) in bins[1..].iter().enumerate() {
        assert!((b.from - p5 * ratio.powi(i as i32)).abs() < 1e-6 * b.from, "bin {i}: {b:?}");
        assert!((b.to / b.from - ratio).abs() < 1e-9);
    }
    assert!(bins[10].customers >= 1 && (bins[10].to - 5_000.0).abs() < 1e-6);
    // The largest bin, [31.4, 64.7), holds 36 % (equal-width bins put 95 % in the first).
    let largest = bins.iter().map(|b| b.customers).max().unwrap();
    assert!(largest < 20_010 * 2 / 5, "no bin holds most customers: {bins:?}");
    // Degenerate inputs.
    assert!(kanta_score::log_histogram(&[], 10).is_empty());
    let zeros = kanta_score::log_histogram(&[0.0, 0.0], 10);
    assert_eq!((zeros.len(), zeros[0].customers), (1, 2));
    let same = kanta_score::log_histogram(&[7.0; 4], 10);
    assert_eq!(same.iter().map(|b| b.customers).sum::<u64>(), 4);
    assert_eq!(same.last().unwrap().customers, 4);
}
