//! Every degenerate base of `kanta generate --shape` through the commands that model it: each
//! finishes with finite numbers or a stated reason (issue 16, where a shop of one-time buyers
//! spun `kanta analyze` forever and an order in year 1 took `kanta serve` down).

use crate::support::{kanta_in, summary};

#[test]
fn every_degenerate_base_is_analysed_imported_and_scored_with_numbers_or_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Every shape the generator has, so a new one is covered without touching this test.
    for shape in kanta_gen::degenerate::Shape::ALL.map(|s| s.name()) {
        let file = format!("{shape}.csv");
        let run = kanta_in(d, &["generate", "--shape", shape, "--seed", "5", "-o", &file, "-q"], &[]);
        assert_eq!(run.code, 0, "{shape}: {}", run.stderr);

        let out = format!("report-{shape}");
        let run = kanta_in(d, &["analyze", &file, "-o", &out, "--quiet"], &[]);
        if shape == "returns-only" {
            assert_eq!(run.code, 2, "{shape}: {}", run.stderr);
            assert!(run.stderr.contains("no purchase on or before"), "{shape}: {}", run.stderr);
            continue;
        }
        assert_eq!(run.code, 0, "{shape}: {}", run.stderr);
        let json = summary(&d.join(&out));
        let models = &json["models"];
        let skipped = json["models_skipped"].as_str().unwrap_or_default();
        if models.is_object() {
            let p_alive = models["mean_p_alive"].as_f64().expect("mean P(alive)");
            assert!((0.0..=1.0).contains(&p_alive), "{shape}: {p_alive}");
            // CLV needs the spend model, which may itself be unidentified (then null, with its reason).
            let clv = &models["clv_12m_total"];
            assert!(
                clv.as_f64().is_some_and(f64::is_finite) || (clv.is_null() && models["spend"]["error"].is_string()),
                "{shape}: {models}"
            );
        } else {
            assert!(!skipped.is_empty(), "{shape}: neither models nor a reason");
        }
        match shape {
            // The shop: too few repeat buyers, said with the count.
            "new-shop" => assert!(skipped.contains("of 76,900 customers"), "{shape}: {skipped}"),
            "one-time" | "same-day" | "one-customer" | "one-repeat" => {
                assert!(skipped.starts_with("too few customers for the customer models"), "{shape}: {skipped}")
            }
            _ => {}
        }
        let cohorts = json["summary"]["cohorts"]["months"].as_array().map_or(0, Vec::len);
        assert!((1..=240).contains(&cohorts), "{shape}: {cohorts} cohort months");

        // The same orders through the store and its scoring job.
        let db = format!("sqlite://{}", d.join(format!("{shape}.db")).display());
        let run = kanta_in(d, &["import", "orders", &file, "--currency", "EUR", "--db", &db, "--quiet"], &[]);
        if shape == "ancient-order" {
            assert_eq!(run.code, 2, "{shape}: {}", run.stderr);
            assert!(run.stderr.contains("is before 1970-01-01T00:00:00Z"), "{shape}: {}", run.stderr);
            continue;
        }
        assert_eq!(run.code, 0, "{shape}: {}", run.stderr);
        let run = kanta_in(d, &["score", "--db", &db, "--json", "--quiet"], &[]);
        assert_eq!(run.code, 0, "{shape}: {}", run.stderr);
        let scored: serde_json::Value = serde_json::from_str(&run.stdout).expect("the run as JSON");
        assert_eq!(scored["status"], "completed", "{shape}: {scored}");
        assert!(scored["customers"].as_i64().is_some_and(|n| n > 0), "{shape}: {scored}");
        assert!(
            scored["model"].is_string() || scored["diagnostics"]["models_skipped"].is_string(),
            "{shape}: no model and no reason: {scored}"
        );
    }
}
