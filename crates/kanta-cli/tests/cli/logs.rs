//! The log lines of the library crates through the binary's subscriber: `--log-format json`
//! (or `KANTA_LOG_FORMAT=json`) makes them JSON objects, `RUST_LOG` filters them, and the text
//! format keeps them as they always were.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `kanta serve` on a fresh SQLite store with `args` and `env` until its first scoring run
/// is stored, then stops it with SIGTERM; its stdout and stderr.
fn serve_one_run(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0", "--score-every", "1h"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KANTA_LOG_FORMAT")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kanta serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut listening = String::new();
    stdout.read_line(&mut listening).expect("the listening line");
    // The first run starts with the server; wait until the store has it, so its log line is due.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store = runtime.block_on(kanta_store::open(&db)).expect("open store");
    let started = Instant::now();
    while runtime.block_on(store.score_runs(1)).expect("runs").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no scoring run after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("the server exits");
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    (listening + &rest, stderr)
}

/// The lines of that run, each up to what may vary (the run's duration).
const EXPECTED: [&str; 4] = [
    "kanta serve: scoring every 1h",
    "kanta serve: journeys every 1s",
    "kanta serve: scoring run 1: 0 customers, 0 orders, model none, 0 stage changes, ",
    "kanta serve: stopped",
];

fn assert_expected(lines: &[&str], all: &str) {
    assert_eq!(lines.len(), EXPECTED.len(), "{all}");
    for (line, expected) in lines.iter().zip(EXPECTED) {
        assert!(line.starts_with(expected) && line.len() < expected.len() + 10, "{line:?} is not {expected:?}…\n{all}");
    }
}

#[test]
fn text_logs_are_the_messages_alone() {
    let (stdout, stderr) = serve_one_run(&[], &[]);
    assert!(stdout.starts_with("kanta serve: listening on http://127.0.0.1:"), "{stdout}");
    assert_expected(&stderr.lines().collect::<Vec<_>>(), &stderr);
}

#[test]
fn json_logs_are_one_object_per_line_with_level_target_and_message() {
    for (args, env) in [(&["--log-format", "json"][..], &[][..]), (&[][..], &[("KANTA_LOG_FORMAT", "json")][..])] {
        let (stdout, stderr) = serve_one_run(args, env);
        // The address line is the command's output, not a log event: it stays as it is.
        assert!(stdout.starts_with("kanta serve: listening on http://127.0.0.1:"), "{stdout}");
        let events: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect();
        let messages: Vec<&str> = events.iter().map(|e| e["message"].as_str().expect("a message")).collect();
        assert_expected(&messages, &stderr);
        for event in &events {
            assert_eq!((&event["level"], &event["target"]), (&"INFO".into(), &"kanta_server::app".into()), "{event}");
            let time = event["timestamp"].as_str().expect("a timestamp");
            assert!(kanta_domain::Timestamp::parse_rfc3339(time).is_ok(), "{time}");
        }
    }
}

#[test]
fn rust_log_warn_silences_the_info_lines() {
    let (stdout, stderr) = serve_one_run(&[], &[("RUST_LOG", "warn")]);
    assert!(stdout.starts_with("kanta serve: listening on http://127.0.0.1:"), "{stdout}");
    assert_eq!(stderr, "", "only warnings and errors pass");
    // A filter by target: the server's lines only, at info.
    let (_, stderr) = serve_one_run(&["--log-format", "json"], &[("RUST_LOG", "warn,kanta_server=info")]);
    assert_eq!(stderr.lines().count(), EXPECTED.len(), "{stderr}");
}
