//! `kanta … | head`: a reader that closes the pipe early must end every command quietly.

use std::path::Path;
use std::process::{Command, Stdio};

use super::support::{kanta, repo_data, write};

/// Runs `kanta ARGS` with standard output a pipe whose reading end is already closed, so the
/// first write fails with `EPIPE` (deterministically: nothing can read before it is closed).
/// Returns the exit code and standard error.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(args)
        .current_dir(dir)
        .env_remove("KANTA_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run kanta");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Regression (issue 16): `kanta retention … --json | head -5` panicked with "failed printing
/// to stdout: Broken pipe" and a backtrace.
#[test]
fn every_command_that_prints_ends_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let setup = |args: &[&str]| {
        let run = super::support::kanta_in(d, args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    };
    setup(&["generate", "--customers", "300", "--seed", "3", "--out", "shop.csv"]);
    setup(&["import", "orders", "shop.csv", "--currency", "EUR", "--db", "sqlite://k.db", "--quiet"]);
    let summary = repo_data("cdnow_customers_summary_with_transactions.csv");
    let summary = summary.to_str().expect("utf-8");
    setup(&["fit", summary, "--model", "bgnbd", "-o", "bg.json"]);
    write(d, "survivors.csv", b"period,customers\n0,1000\n1,869\n2,743\n3,653\n4,593\n");
    let commands: &[&[&str]] = &[
        &["analyze", "shop.csv", "--out", "r1"],
        &["analyze", "shop.csv", "--out", "r2", "--json"],
        &["fit", summary, "--model", "bgnbd"],
        &["fit", summary, "--model", "bgnbd", "--json"],
        &["predict", summary, "--params", "bg.json", "--horizon", "10"],
        &["retention", "survivors.csv", "-o", "ret"],
        &["retention", "survivors.csv", "-o", "ret", "--json"],
        &["config", "default"],
        &["config", "show", "--db", "sqlite://k.db"],
        &["token", "create", "--scope", "read", "--db", "sqlite://k.db"],
        &["token", "list", "--db", "sqlite://k.db"],
        &["score", "--db", "sqlite://k.db"],
        &["score", "--db", "sqlite://k.db", "--json"],
        &["insights", "feedback", "--db", "sqlite://k.db"],
        &["insights", "feedback", "--db", "sqlite://k.db", "--json"],
        &["webhooks", "list", "--db", "sqlite://k.db"],
        &["webhooks", "deliveries", "--db", "sqlite://k.db"],
        &["demo", "--out", "demo", "--customers", "300"],
        &["--help"],
    ];
    for args in commands {
        let (code, stderr) = with_closed_stdout(d, args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
    // The same commands still print when someone reads.
    let listed = super::support::kanta_in(d, &["token", "list", "--db", "sqlite://k.db"], &[]);
    assert!(listed.stdout.contains("read"), "{}", listed.stdout);
    assert_eq!(kanta(&["config", "default"]).stdout, kanta(&["config", "default"]).stdout);
}
