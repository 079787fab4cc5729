//! `kanta fit`, `kanta predict` and `kanta retention` on the papers' data.

use crate::support::{kanta, shared_data, write};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn fit_json_reproduces_lifetimes_on_the_cdnow_summary() {
    let file = shared_data("cdnow_customers_summary.csv");
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
    let run = kanta(&["fit", path(&shared_data("donations.csv")), "--model", "bgbb"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("BG/BB fit on 11,104 customers (22 distinct histories)"), "{}", run.stdout);
    assert!(run.stdout.contains("alpha            1.203522     0.069391   [1.074919, 1.347512]"), "{}", run.stdout);
    assert!(run.stdout.contains("log-likelihood -33225.58"), "{}", run.stdout);
    let run =
        kanta(&["fit", path(&shared_data("cdnow_customers_summary_with_transactions.csv")), "--model", "gammagamma"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("p                6.2488"), "{}", run.stdout);
    assert!(run.stdout.contains("(1,411 customers without repeat purchases or spend were left out"), "{}", run.stdout);
}

#[test]
fn predict_adds_lifetimes_predictions_and_clv() {
    let dir = tempfile::tempdir().unwrap();
    let summary = shared_data("cdnow_customers_summary_with_transactions.csv");
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
