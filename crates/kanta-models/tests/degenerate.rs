//! Degenerate customer bases (a new shop of one-time buyers, everyone on the same day, one
//! customer, huge T, x = 500) fit and predict in bounded time: a fit either returns identified
//! estimates (with standard errors) whose predictions are finite, or an error that says why.
//! Every test body runs on its own thread under a deadline, so a loop without a cap fails the
//! test instead of hanging it.

// Helpers outside `#[test]` functions unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Duration;

use kanta_models::{
    BgNbd, ClvOptions, FitError, FitOptions, Histories, History, ParetoNbd, TransactionModel, Variant, clv_discrete,
    next_purchase_median,
};
use proptest::prelude::*;

/// Runs `body` on a thread and returns its result, failing if it takes longer than `seconds`
/// (debug builds; the bodies take well under a tenth of that).
fn within<T: Send + 'static>(seconds: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(Duration::from_secs(seconds)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("not finished after {seconds} s: a loop without a cap?"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the body panicked (message above)"),
    }
}

/// The issue's shop: 76,400 customers who bought once and 500 who bought twice, all within one
/// year, in days (T uniform in 1..365, the repeat at t_x uniform in 1..T).
fn one_time_buyer_shop() -> Histories {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut histories = Vec::new();
    for _ in 0..76_400 {
        histories.push(History { x: 0, t_x: 0.0, t: (1.0 + 364.0 * next()).floor() });
    }
    for _ in 0..500 {
        let t = (2.0 + 363.0 * next()).floor();
        histories.push(History { x: 1, t_x: (1.0 + (t - 1.0) * next()).floor(), t });
    }
    Histories::from_histories(histories).unwrap()
}

#[test]
fn a_shop_of_one_time_buyers_is_refused_with_the_parameters_that_run_off() {
    let errors = within(120, || {
        let data = one_time_buyer_shop();
        [Variant::Bg, Variant::Mbg].map(|v| BgNbd::fit(v, &data, &FitOptions::default()).unwrap_err())
    });
    for (err, title) in errors.iter().zip(["BG/NBD", "MBG/NBD"]) {
        let FitError::Boundary { params, reason, .. } = err else { panic!("{err:?}") };
        let message = err.to_string();
        assert!(message.starts_with(&format!("the data cannot identify the {title} model: ")), "{message}");
        assert!(reason.contains("without bound") || reason.contains("towards 0"), "{reason}");
        assert!(reason.contains("only 500 of 76,900 customers (0.65 %) made a repeat purchase"), "{reason}");
        // The parameters named in the message are the ones where the optimiser stopped.
        let named: Vec<_> = params.iter().filter(|(n, _)| reason.contains(&format!("{n} = "))).collect();
        assert!(!named.is_empty(), "{reason}");
        assert!(params.iter().all(|(_, v)| v.is_finite() && *v > 0.0), "{params:?}");
        assert_eq!(params.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["r", "alpha", "a", "b"]);
    }
}

/// The boundary estimates of the issue (r ≈ 8.6·10⁶, α ≈ 1.7·10¹¹, a ≈ 148, b ≈ 0.02). The ₂F₁
/// series of the expected purchases waited for j > r before it could stop, hit its 10⁶-term
/// cap, and fell back to a 64-point quadrature of the same series: about 3 s per (x, T) pair in
/// a release build, hours for a shop, and the answer was 0. Now they take microseconds, and
/// since p ≈ 1 (everyone drops out after the next purchase) the expected purchases equal the
/// probability of a purchase.
#[test]
fn predictions_at_the_issues_boundary_estimates_finish_and_are_right() {
    within(30, || {
        let m = BgNbd::new(Variant::Bg, 8.6e6, 1.7e11, 148.0, 0.02).unwrap();
        let mut ts = vec![30.0, 90.0, 365.0];
        ts.extend((1..=12).map(|i| 30.0 * f64::from(i)));
        let mut expected = vec![0.0; ts.len()];
        let mut purchase = vec![0.0; ts.len()];
        for x in [0, 1] {
            for t in [1.0, 100.0, 364.0] {
                m.if_alive_many(x, t, &ts, &mut expected, &ts, &mut purchase);
                for ((e, p), horizon) in expected.iter().zip(&purchase).zip(&ts) {
                    assert!(*e > 0.0 && e.is_finite(), "x={x} T={t} t={horizon}: E = {e}");
                    // E[Y] = P(buy) · E[purchases | buy] and the latter is 1 + (1 − p)·… ≈ 1.
                    assert!((e / p - 1.0).abs() < 2e-3, "x={x} T={t} t={horizon}: E = {e}, P = {p}");
                    // Rate r/α per day: at most that many purchases in expectation.
                    assert!(*e <= 8.6e6 / 1.7e11 * horizon * (1.0 + 1e-9), "{e}");
                }
                let h = History { x, t_x: if x == 0 { 0.0 } else { t / 2.0 }, t };
                let alive = m.p_alive(&h);
                assert!((0.0..=1.0).contains(&alive));
                assert!(clv_discrete(&m, &h, 35.0, &ClvOptions::default()).is_finite());
                assert!(next_purchase_median(&m, &h).is_finite());
            }
        }
    });
}

/// A fitted model with its standard errors, or why not.
type Fitted = Result<(Box<dyn TransactionModel + Send>, Vec<Option<f64>>), FitError>;

/// Fits the three transaction models on `data` and checks the contract: an error with a
/// reason, or finite identified estimates (every standard error present) whose predictions for
/// every history are finite and in range.
fn fit_and_predict(data: &[History]) -> Result<(), TestCaseError> {
    let histories = Histories::from_histories(data.iter().copied()).unwrap();
    let options = FitOptions { max_iterations: 200, ..FitOptions::default() };
    let fits: Vec<Fitted> = vec![
        BgNbd::fit(Variant::Bg, &histories, &options).map(|(m, r)| (Box::new(m) as _, ses(&r))),
        BgNbd::fit(Variant::Mbg, &histories, &options).map(|(m, r)| (Box::new(m) as _, ses(&r))),
        ParetoNbd::fit(&histories, &options).map(|(m, r)| (Box::new(m) as _, ses(&r))),
    ];
    for fit in fits {
        let (model, ses) = match fit {
            Err(e) => {
                prop_assert!(
                    matches!(
                        e,
                        FitError::Degenerate { .. } | FitError::NotConverged { .. } | FitError::Boundary { .. }
                    ),
                    "{e:?}"
                );
                prop_assert!(e.to_string().len() > 40, "{e}");
                continue;
            }
            Ok(fit) => fit,
        };
        prop_assert!(ses.iter().all(|s| s.is_some_and(|s| s.is_finite() && s > 0.0)), "{} {ses:?}", model.name());
        let ts = [30.0, 90.0, 365.0];
        let mut expected = [0.0; 3];
        for h in data {
            let alive = model.p_alive(h);
            prop_assert!((0.0..=1.0).contains(&alive), "{} {h:?}: P(alive) = {alive}", model.name());
            model.conditional_expected_purchases_many(&ts, h, &mut expected);
            prop_assert!(expected.iter().all(|e| e.is_finite() && *e >= 0.0), "{} {h:?}: {expected:?}", model.name());
            let next = next_purchase_median(model.as_ref(), h);
            prop_assert!(next.is_finite() && next >= 0.0, "{} {h:?}: next = {next}", model.name());
        }
    }
    Ok(())
}

fn ses(report: &kanta_models::FitReport) -> Vec<Option<f64>> {
    report.params.iter().map(|p| p.std_error).collect()
}

/// Runs [`fit_and_predict`] under a deadline.
fn check(data: Vec<History>) -> Result<(), TestCaseError> {
    within(120, move || fit_and_predict(&data))
}

#[test]
fn named_degenerate_bases_fit_and_predict_in_bounded_time() {
    let one_time = |n: u32| (0..n).map(|i| History { x: 0, t_x: 0.0, t: f64::from(i % 365) }).collect::<Vec<_>>();
    let with = |mut v: Vec<History>, extra: &[History]| {
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(&str, Vec<History>)> = vec![
        ("all one-time buyers", one_time(200)),
        ("all on the same day", vec![History { x: 0, t_x: 0.0, t: 0.0 }; 50]),
        ("one customer", vec![History { x: 2, t_x: 10.0, t: 30.0 }]),
        ("one repeat buyer", with(one_time(100), &[History { x: 1, t_x: 5.0, t: 200.0 }])),
        ("huge T", with(one_time(50), &[History { x: 3, t_x: 1e6, t: 1e7 }, History { x: 1, t_x: 2.0, t: 1e7 }])),
        (
            // Found by the proptest below in CI: the fit is identified, but E[Y(365)] of a new
            // customer was NaN (both ₂F₁ series failed with α tiny next to the horizon).
            "x = 500 in 8 days beside a new customer",
            vec![
                History { x: 1, t_x: 3.0, t: 105.0 },
                History { x: 500, t_x: 8.0, t: 141.0 },
                History { x: 0, t_x: 0.0, t: 0.0 },
            ],
        ),
        (
            "x = 500",
            with(one_time(50), &[History { x: 500, t_x: 364.0, t: 365.0 }, History { x: 1, t_x: 9.0, t: 99.0 }]),
        ),
    ];
    for (name, data) in cases {
        if let Err(e) = check(data) {
            panic!("{name}: {e}");
        }
    }
}

/// One random history: mostly one-time buyers, a few repeaters with small x, now and then x = 500;
/// T from 0 to 10⁵ days, t_x a fraction of T.
fn history() -> impl Strategy<Value = History> {
    let x = prop_oneof![6 => Just(0u32), 3 => 1u32..4, 1 => Just(500u32)];
    let t = prop_oneof![Just(0.0f64), 0.0f64..400.0, 1.0f64..1e5];
    (x, t, 0.0f64..=1.0).prop_map(|(x, t, share)| {
        let t = t.floor();
        History { x, t_x: if x == 0 { 0.0 } else { (t * share).floor() }, t }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random small bases, often degenerate, fit and predict in bounded time with finite values
    /// or a stated reason.
    #[test]
    fn random_small_bases_fit_and_predict_or_say_why(data in proptest::collection::vec(history(), 1..80)) {
        check(data)?;
    }
}
