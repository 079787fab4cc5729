//! Scoring a simulated shop recovers the simulator's parameters, and the per-customer rules
//! (risk bands, slipping) hold for every customer.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use kanta_core::aggregate::{Aggregator, OrderLine};
use kanta_core::analysis::{Analysis, AnalysisOptions, analyze};
use kanta_core::lifecycle::Stage;
use kanta_core::rfm::Segment;
use kanta_gen::{Config, simulate};
use kanta_score::{Candidate, ModelChoice, RiskBand, ScoreError, ScoreOptions, score};

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
    let scores = score(&analysis, &ScoreOptions { model: ModelChoice::BgNbd, ..ScoreOptions::default() }).unwrap();
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
    let failed = Candidate { model: "paretonbd", fit: Err("did not converge".into()) };
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        serde_json::json!({"model": "paretonbd", "fit": {"error": "did not converge"}})
    );
    let analysis = shop(2_000);
    let scores = score(&analysis, &ScoreOptions { model: ModelChoice::BgNbd, ..ScoreOptions::default() }).unwrap();
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
        let bgnbd =
            score(&analysis, &ScoreOptions { model: ModelChoice::BgNbd, ..ScoreOptions::default() }).map(|_| ());
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
    }
}
