//! `kanta fit`, `kanta predict` and `kanta retention` on the papers' data.

use crate::support::{kanta, repo_data, write};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn fit_json_reproduces_lifetimes_on_the_cdnow_summary() {
    let file = repo_data("cdnow_customers_summary.csv");
    let run = kanta(&["fit", path(&file), "--model", "bgnbd", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["model"], "bgnbd");
    for (name, want) in [("r", 0.242593), ("alpha", 4.41353), ("a", 0.792886), ("b", 2.42575)] {
        let got = json["params"][name].as_f64().unwrap();
        assert!((got / want - 1.0).abs() < 2e-5, "{name} = {got}");
    }
    assert!((json["log_likelihood"].as_f64().unwrap() + 9582.43).abs() < 0.005);
    assert_eq!(json["customers"], 2357.0);
    let keys: Vec<&str> = json["params"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["r", "alpha", "a", "b"], "the papers' order");
    let se = json["std_errors"]["r"].as_f64().unwrap();
    assert!((se - 0.012557).abs() < 1e-6, "{se}");
}

#[test]
fn fit_table_prints_estimates_with_intervals() {
    let run = kanta(&["fit", path(&repo_data("donations.csv")), "--model", "bgbb"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("BG/BB fit on 11,104 customers (22 distinct histories)"), "{}", run.stdout);
    assert!(run.stdout.contains("alpha            1.203522     0.069391   [1.074919, 1.347512]"), "{}", run.stdout);
    assert!(run.stdout.contains("log-likelihood -33225.58"), "{}", run.stdout);
    let run =
        kanta(&["fit", path(&repo_data("cdnow_customers_summary_with_transactions.csv")), "--model", "gammagamma"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("p                6.2488"), "{}", run.stdout);
    assert!(run.stdout.contains("(1,411 customers without repeat purchases or spend were left out"), "{}", run.stdout);
}

#[test]
fn predict_adds_lifetimes_predictions_and_clv() {
    let dir = tempfile::tempdir().unwrap();
    let summary = repo_data("cdnow_customers_summary_with_transactions.csv");
    let bg = dir.path().join("bg.json");
    let gg = dir.path().join("gg.json");
    assert_eq!(kanta(&["fit", path(&summary), "--model", "bgnbd", "-o", path(&bg)]).code, 0);
    assert_eq!(kanta(&["fit", path(&summary), "--model", "gammagamma", "-o", path(&gg)]).code, 0);
    let out = dir.path().join("pred.csv");
    let run = kanta(&[
        "predict",
        path(&summary),
        "--params",
        path(&bg),
        "--params",
        path(&gg),
        "--horizon",
        "39",
        "--period-length",
        "4.345",
        "-o",
        path(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        headers,
        [
            "ID",
            "x",
            "t_x",
            "T",
            "zbar",
            "p_alive",
            "expected_purchases",
            "p_purchase",
            "next_purchase_in",
            "expected_spend",
            "clv"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2357);
    let num = |row: usize, col: usize| rows[row][col].parse::<f64>().unwrap();
    // Customer 1, (2, 30.43, 38.86): lifetimes gives P(alive) 0.72660914, E[39 weeks] 1.2259104.
    assert!((num(0, 5) - 0.72660914).abs() < 5e-8);
    assert!((num(0, 6) - 1.2259104).abs() < 1e-7);
    // Gamma-Gamma: E[M | x = 2, z̄ = 22.35] = p(γ + x z̄)/(px + q − 1) at the fitted values ≈ 24.66.
    assert!((num(0, 9) - 24.6586).abs() < 1e-3, "{}", num(0, 9));
    // One-time buyers are alive for BG/NBD and get the population mean spend.
    assert_eq!(num(2, 5), 1.0);
    // CLV covers 12 × 4.345 = 52.14 weeks at 1 % a period: more than the value of the first
    // 39 weeks' purchases, less than that scaled to 52.14 weeks (purchases are concave in time).
    let (spend, e39) = (num(0, 9), num(0, 6));
    assert!(num(0, 10) > spend * e39 && num(0, 10) < spend * e39 * 52.14 / 39.0, "{}", num(0, 10));
}

#[test]
fn retention_projects_fader_hardie_2007_and_draws_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let survivors = write(
        dir.path(),
        "high-end.csv",
        b"period,customers\n0,1000\n1,869\n2,743\n3,653\n4,593\n5,551\n6,517\n7,491\n",
    );
    let out = dir.path().join("ret");
    let run = kanta(&["retention", path(&survivors), "-o", path(&out), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!((json["params"]["alpha"].as_f64().unwrap() - 0.668).abs() < 1e-3);
    assert!((json["params"]["beta"].as_f64().unwrap() - 3.806).abs() < 4e-3);
    let projection = json["projection"].as_array().unwrap();
    for (t, want) in (8..=12).zip([0.460, 0.436, 0.414, 0.395, 0.378]) {
        let got = projection[t]["survival"].as_f64().unwrap();
        assert!((got - want).abs() < 0.0015, "year {t}: {got}");
    }
    let svg = std::fs::read_to_string(out.join("retention.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("class=\"chart\""), "{svg:.200}");
    assert!(out.join("retention.json").exists());
}

#[test]
fn bad_model_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.csv", b"frequency,recency,T\n1,2,3\n2,abc,5\n");
    let run = kanta(&["fit", path(&bad), "--model", "bgnbd"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.csv:3: column `recency`: cannot parse `abc` as a number"), "{}", run.stderr);
    let nobody = write(dir.path(), "nobody.csv", b"frequency,recency,T\n0,0,3\n0,0,5\n");
    let run = kanta(&["fit", path(&nobody), "--model", "paretonbd"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot identify the paretonbd model: no customer made a repeat purchase"),
        "{}",
        run.stderr
    );
    let json =
        write(dir.path(), "fit.json", br#"{"model": "bgnbd", "params": {"r": 0.2, "alpha": -1, "a": 1, "b": 1}}"#);
    let run = kanta(&["predict", path(&nobody), "--params", path(&json), "--horizon", "10"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("parameter `alpha` must be a finite number > 0, got -1"), "{}", run.stderr);
    let rising = write(dir.path(), "rising.csv", b"period,customers\n0,100\n1,120\n");
    let run = kanta(&["retention", path(&rising), "-o", path(&dir.path().join("r"))]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("survivors rise from 100 to 120 in period 1"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn analyze_fits_bgnbd_on_the_cdnow_calibration_period_and_fills_the_model_columns() {
    let out = tempfile::tempdir().unwrap();
    crate::support::analyze_cdnow_sample(out.path(), &["--as-of", "1997-09-30", "--keep-zero", "--model", "bgnbd"]);
    let summary = crate::support::summary(out.path());
    let models = &summary["models"];
    assert_eq!(models["chosen"], "bgnbd");
    assert_eq!(models["selected_by"], "requested");
    // Fitted in days on exact day counts; the published weekly fit (FHL 2005) has the same shape
    // parameters and α = 4.4136 weeks ≈ 30.9 days. The day counts are exact where the weekly file
    // is rounded to 2 decimals, hence the looser tolerance.
    let params = &models["candidates"][0]["fit"]["params"];
    let value = |i: usize| params[i]["value"].as_f64().unwrap();
    assert!((value(0) / 0.2426 - 1.0).abs() < 5e-3, "r = {}", value(0));
    assert!((value(1) / (4.4136 * 7.0) - 1.0).abs() < 5e-3, "alpha = {}", value(1));
    assert!((value(2) / 0.7929 - 1.0).abs() < 5e-3, "a = {}", value(2));
    assert!((value(3) / 2.4259 - 1.0).abs() < 5e-3, "b = {}", value(3));
    let rows = crate::support::customers(out.path());
    // Customer 1, (x, t_x, T) = (2, 30.43, 38.86) weeks: P(alive) 0.7266 in the published fit.
    let first = &rows["0001"];
    let p: f64 = first["p_alive"].parse().unwrap();
    assert!((p - 0.7266).abs() < 2e-3, "{p}");
    let e365: f64 = first["expected_purchases_365d"].parse().unwrap();
    let e30: f64 = first["expected_purchases_30d"].parse().unwrap();
    assert!(e30 > 0.0 && e30 < e365, "{e30} {e365}");
    let p30: f64 = first["p_purchase_30d"].parse().unwrap();
    let p90: f64 = first["p_purchase_90d"].parse().unwrap();
    assert!(0.0 < p30 && p30 < p90 && p90 < p, "{p30} {p90}: buying needs being alive");
    assert!(["low", "medium", "high", "very_high"].contains(&first["churn_risk"].as_str()));
    assert!(first["next_purchase_date"].starts_with("199"), "{}", first["next_purchase_date"]);
    // Every customer has a value; one-time buyers are alive for BG/NBD by construction.
    assert!(rows.values().all(|r| !r["p_alive"].is_empty() && !r["clv_12m"].is_empty()));
    let one_timer = rows.values().find(|r| r["frequency"] == "0").unwrap();
    assert_eq!(one_timer["p_alive"], "1");
    // Stages now include slipping valuable customers.
    let slipping = rows.values().filter(|r| r["stage"] == "slipping").count();
    assert_eq!(summary["models"]["slipping_customers"].as_u64().unwrap() as usize, slipping);
}

#[test]
fn analyze_with_model_none_leaves_the_model_columns_empty() {
    let out = tempfile::tempdir().unwrap();
    crate::support::analyze_cdnow_sample(out.path(), &["--model", "none"]);
    let rows = crate::support::customers(out.path());
    assert!(rows.values().all(|r| r["p_alive"].is_empty() && r["churn_risk"].is_empty()));
    let summary = crate::support::summary(out.path());
    assert!(summary.get("models").is_none());
    assert_eq!(summary["models_skipped"], "not fitted (--model none)");
}

#[test]
fn holdout_validation_on_cdnow_reproduces_the_calibration_fit_and_counts_the_holdout() {
    let out = tempfile::tempdir().unwrap();
    let sample = repo_data("CDNOW_sample.txt");
    let run = crate::support::analyze_cdnow_sample(
        out.path(),
        &["--as-of", "1998-06-30", "--holdout-from", "1997-10-01", "--keep-zero"],
    );
    assert_eq!(run.code, 0);
    let summary = crate::support::summary(out.path());
    let h = &summary["holdout"];
    assert_eq!(h["calibration_end"], "1997-09-30");
    assert_eq!(h["holdout_days"], 273, "39 weeks, as in Fader, Hardie & Lee (2005)");
    assert_eq!(h["customers"], 2357);
    // Actual holdout purchases counted independently: distinct (customer, day) after 1997-09-30.
    let text = std::fs::read_to_string(&sample).unwrap();
    let mut days = std::collections::HashSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[2] > "19970930" {
            days.insert((f[1].to_owned(), f[2].to_owned()));
        }
    }
    assert_eq!(h["actual_total"].as_f64().unwrap(), days.len() as f64);
    // The calibration BG/NBD fit is the published one (in days: α = 4.4136 × 7).
    let bg = h["models"].as_array().unwrap().iter().find(|m| m["model"] == "bgnbd").unwrap();
    let params = &bg["fit"]["params"];
    assert!((params[0]["value"].as_f64().unwrap() / 0.2426 - 1.0).abs() < 5e-3);
    assert!((params[1]["value"].as_f64().unwrap() / (4.4136 * 7.0) - 1.0).abs() < 5e-3);
    assert_eq!(days.len(), 1882);
    // lifetimes 0.11.3 on the published weekly summary predicts Σ E[Y(39 weeks)] = 1653.42
    // (its BetaGeoFitter, conditional_expected_number_of_purchases_up_to_time); kanta works on
    // exact day counts instead of weeks rounded to 2 decimals, so agreement is to 0.1 %.
    let predicted = bg["predicted_total"].as_f64().unwrap();
    assert!((predicted / 1653.42 - 1.0).abs() < 1e-3, "{predicted}");
    // The model under-predicts this holdout by about 12 %: a bias of −0.1 purchases per customer.
    let bias = bg["bias"].as_f64().unwrap();
    assert!((bias - (predicted - 1882.0) / 2357.0).abs() < 1e-9, "{bias}");
    // Conditional expectations: customers with more calibration purchases buy more in the holdout,
    // and the model follows.
    let cond = h["conditional"].as_array().unwrap();
    assert_eq!(cond.len(), 8);
    assert!(cond[0]["actual"].as_f64().unwrap() < cond[7]["actual"].as_f64().unwrap());
    assert!(cond[0]["predicted"].as_f64().unwrap() < cond[7]["predicted"].as_f64().unwrap());
    let weeks = h["tracking"]["weeks"].as_array().unwrap().len();
    assert_eq!(weeks, 78, "Jan 1997 to June 1998");
    let holdout_csv = std::fs::read_to_string(out.path().join("holdout.csv")).unwrap();
    assert_eq!(holdout_csv.lines().count(), 2358);
    assert!(holdout_csv.starts_with("customer_id,frequency_cal,recency_cal,T_cal,holdout_actual,holdout_predicted\n"));
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"holdout\"") && html.matches("class=\"chart\"").count() == 10);
}
