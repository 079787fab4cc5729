//! `kanta score` and the server's scoring schedule.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::kanta;

/// A generated shop whose history ends yesterday, imported into a fresh SQLite store.
fn scored_shop(dir: &std::path::Path) -> String {
    let db = format!("sqlite://{}", dir.join("k.db").display());
    let file = dir.join("orders.csv");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let start = (chrono::Utc::now() - chrono::Duration::days(730)).format("%Y-%m-%d").to_string();
    let path = file.to_str().expect("utf-8");
    let generated = kanta(&[
        "generate",
        "--customers",
        "3000",
        "--seed",
        "5",
        "--start",
        &start,
        "--end",
        &yesterday,
        "--out",
        path,
        "-q",
    ]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let imported = kanta(&["import", "orders", path, "--currency", "EUR", "--db", &db, "-q"]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    db
}

#[test]
fn score_prints_the_run_and_a_second_run_changes_no_stage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = scored_shop(dir.path());
    let first = kanta(&["score", "--db", &db]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert!(lines[0].starts_with("scored 3,000 customers from ") && lines[0].ends_with("(run 1)"), "{}", first.stdout);
    assert!(lines[1].starts_with("model: ") && lines[1].contains("P(alive)"), "{}", first.stdout);
    assert!(lines[2].starts_with("stages: new "), "{}", first.stdout);
    assert_eq!(lines[3], "stage changes: 3,000");

    let second = kanta(&["score", "--db", &db, "--json", "--model", "bgnbd"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let run: serde_json::Value = serde_json::from_str(&second.stdout).expect("JSON");
    assert_eq!(
        (run["id"].as_i64(), run["customers"].as_i64(), run["stage_changes"].as_i64()),
        (Some(2), Some(3000), Some(0))
    );
    assert_eq!(run["model"], "bgnbd");
    let params = &run["diagnostics"]["models"]["candidates"][0]["fit"]["params"];
    assert_eq!(params.as_array().map(Vec::len), Some(4), "{run}");

    let bad = kanta(&["score", "--db", &db, "--model", "weibull"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("weibull"), "{}", bad.stderr);
}

#[test]
fn serve_scores_on_its_schedule_and_refuses_a_bad_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = scored_shop(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0", "--score-every", "2s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kanta serve");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let mut runs = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("a line");
        if line.contains("scoring run") {
            runs.push(line);
        }
        if runs.len() == 2 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[0].contains("scoring run 1: 3000 customers") && runs[0].contains("3000 stage changes"), "{}", runs[0]);
    assert!(runs[1].contains("scoring run 2: 3000 customers") && runs[1].contains(" 0 stage changes"), "{}", runs[1]);

    let bad = kanta(&["serve", "--db", &db, "--score-every", "soon"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("`soon` is not an interval"), "{}", bad.stderr);
}
