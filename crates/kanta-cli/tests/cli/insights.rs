//! `kanta insights feedback` on a generated shop with generated survey answers, whose answer is
//! known: the generator makes `delivery` the complaint before customers lapse.

use super::support::kanta;

#[test]
fn feedback_insights_find_the_generated_complaint_before_lapse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let empty = kanta(&["insights", "feedback", "--db", &db]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert!(
        empty.stdout.contains("0 responses from 0 customers") && empty.stdout.contains("no feedback yet"),
        "{}",
        empty.stdout
    );

    let (orders, answers) = (dir.path().join("orders.csv"), dir.path().join("feedback.csv"));
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let start = (chrono::Utc::now() - chrono::Duration::days(730)).format("%Y-%m-%d").to_string();
    let (orders, answers) = (orders.to_str().expect("utf-8"), answers.to_str().expect("utf-8"));
    let args = ["generate", "--customers", "3000", "--seed", "3", "--start", &start, "--end", &yesterday];
    let generated = kanta(&[&args[..], &["--out", orders, "--feedback", answers]].concat());
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    assert!(generated.stderr.contains(" survey answers to "), "{}", generated.stderr);
    for import in
        [["import", "orders", orders, "--currency", "EUR"].as_slice(), ["import", "feedback", answers].as_slice()]
    {
        let run = kanta(&[import, &["--db", &db, "-q"]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert_eq!(kanta(&["score", "--db", &db, "-q"]).code, 0);

    let json = kanta(&["insights", "feedback", "--db", &db, "--json", "--months", "6", "--limit", "5"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let i: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(i["by_month"].as_array().map(Vec::len), Some(6));
    assert_eq!(i["before_lapse"]["topics"][0]["topic"], "delivery", "{}", i["before_lapse"]);
    assert!(i["before_lapse"]["topics"][0]["lift"].as_f64().is_some_and(|l| l > 1.5), "{}", i["before_lapse"]);
    let calls = i["call_list"].as_array().expect("a call list");
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c["value_tier"] == "top" || c["value_tier"] == "high"), "{calls:?}");
    assert!(calls.iter().all(|c| c["stage"] != "lost"), "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0]["clv_12m"].as_f64() >= w[1]["clv_12m"].as_f64()), "most valuable first");

    let text = kanta(&["insights", "feedback", "--db", &db, "--limit", "3"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("feedback as of ") && lines[1].starts_with("NPS "), "{}", text.stdout);
    let lapse = lines.iter().position(|l| l.starts_with("topics in the last 90 active days")).expect("the lapse table");
    assert!(lines[lapse + 2].starts_with("delivery "), "{}", text.stdout);
    assert!(text.stdout.contains("who to call: valuable detractors not yet lost (3)"), "{}", text.stdout);
}
