//! The README's CLI reference is the real `--help` output (rust-analyzer-style tidy check).
//!
//! Each block after a `<!-- kanta help: ARGS -->` marker must equal `kanta ARGS`'s output.
//! Run with `UPDATE_README=1` to rewrite the blocks after changing the CLI.

use std::path::Path;

use crate::support::kanta;

#[test]
fn readme_cli_reference_matches_the_help_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = readme.as_str();
    let mut blocks = 0;
    while let Some(at) = rest.find("<!-- kanta help: ") {
        let (before, marker) = rest.split_at(at);
        out.push_str(before);
        let end_marker = marker.find(" -->").unwrap();
        let args: Vec<&str> = marker["<!-- kanta help: ".len()..end_marker].split_whitespace().collect();
        let open = marker.find("```text\n").unwrap() + "```text\n".len();
        let close = open + marker[open..].find("```").unwrap();
        let run = kanta(&args);
        assert_eq!(run.code, 0, "kanta {args:?}: {}", run.stderr);
        let current = &marker[open..close];
        if current != run.stdout {
            assert!(
                std::env::var_os("UPDATE_README").is_some(),
                "README.md's block for `kanta {}` is stale; run `UPDATE_README=1 cargo test -p kanta-cli readme`",
                args.join(" ")
            );
        }
        out.push_str(&marker[..open]);
        out.push_str(&run.stdout);
        rest = &marker[close..];
        blocks += 1;
    }
    out.push_str(rest);
    assert_eq!(
        blocks, 9,
        "expected help blocks for kanta, analyze, generate, demo, fit, predict, retention, serve, token create"
    );
    if out != readme {
        std::fs::write(&path, out).unwrap();
    }
}

/// The README's `kanta serve` session, run as written in a fresh folder with `kanta` on the PATH.
#[test]
fn readme_serve_session_works_as_written() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let at = readme.find("<!-- readme session -->").expect("the session marker");
    let open = at + readme[at..].find("```sh\n").unwrap() + "```sh\n".len();
    let close = open + readme[open..].find("```").unwrap();
    let session = &readme[open..close];
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_kanta")).parent().unwrap();
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // The session listens on the default port 8080; say so plainly if something else has it.
    assert!(std::net::TcpListener::bind("127.0.0.1:8080").is_ok(), "port 8080 is in use; the README session needs it");
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", session])
        .current_dir(dir.path())
        .env("PATH", path_var)
        .env_remove("KANTA_DATABASE_URL")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "session failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#"{"accepted":2,"created":2,"updated":0,"unchanged":0,"customers_created":1,"rejected":[]}"#),
        "{stdout}"
    );
    let view_line = stdout.lines().find(|l| l.starts_with(r#"{"profile""#)).expect("the 360 view");
    let view: serde_json::Value = serde_json::from_str(view_line).unwrap();
    assert_eq!(view["profile"]["id"], "00042");
    assert_eq!(view["summary"]["orders"], 2);
    assert_eq!(view["summary"]["revenue"], 84.4);
    assert_eq!(view["summary"]["frequency"], 1);
    assert_eq!(view["summary"]["recency"], 41);
    assert_eq!(view["orders"][0]["lines"][0]["product"], "espresso-beans");
    assert!(dir.path().join("kanta.db").exists(), "the default store is ./kanta.db");
}

/// Runs the README block after `marker` as written, in a fresh folder (holding a copy of the
/// repository's `journeys/`), with `kanta` on the PATH, on the store `db` (`None`: the default
/// SQLite file), after checking that `ports` are free. Background jobs are killed however it
/// ends. Returns the block's stdout and the folder.
fn run_readme_block(marker: &str, db: Option<&str>, ports: &[u16]) -> (String, tempfile::TempDir) {
    run_readme_block_with(marker, db, ports, &[])
}

/// [`run_readme_block`] with more environment variables.
fn run_readme_block_with(
    marker: &str,
    db: Option<&str>,
    ports: &[u16],
    env: &[(&str, &str)],
) -> (String, tempfile::TempDir) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let at = readme.find(marker).expect("the block's marker");
    let open = at + readme[at..].find("```sh\n").expect("a sh block") + "```sh\n".len();
    let close = open + readme[open..].find("```\n").expect("the end of the block");
    let script = format!("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}", &readme[open..close]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let journeys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../journeys");
    let copied = std::process::Command::new("cp").arg("-r").arg(&journeys).arg(dir.path()).status().expect("cp");
    assert!(copied.success(), "copying journeys/");
    let bin = Path::new(env!("CARGO_BIN_EXE_kanta")).parent().expect("the binary folder");
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    for &port in ports {
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} is in use; the README needs it");
    }
    let mut command = std::process::Command::new("timeout");
    command
        .args(["120", "bash", "-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path_var)
        .env_remove("KANTA_DATABASE_URL")
        .env_remove("KANTA_CONFIG")
        .stdin(std::process::Stdio::null());
    if let Some(db) = db {
        command.env("KANTA_DATABASE_URL", db);
    }
    command.env_remove("KANTA_ENGINE");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the README block {marker} failed:\n{stdout}\n{stderr}");
    (stdout, dir)
}

/// Runs the README's live block (`<!-- readme live -->`) and checks what it printed and received.
fn readme_live_flow(db: Option<&str>) {
    let (stdout, dir) = run_readme_block("<!-- readme live -->", db, &[8080, 9000]);
    let segment: serde_json::Value = stdout
        .lines()
        .find(|l| l.starts_with(r#"{"id":1,"name""#))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no segment in {stdout}"));
    assert_eq!(
        (&segment["name"], &segment["members"]),
        (&serde_json::json!("slipping-high-value"), &serde_json::json!(0))
    );
    let received = std::fs::read_to_string(dir.path().join("received.jsonl")).expect("received.jsonl");
    assert_eq!(received.lines().count(), 3, "{received}");
    let head = stdout.lines().find(|l| l.starts_with(r#"{"id":"segment_transition:"#)).expect("the first event");
    assert_eq!(head, received.lines().next().unwrap_or_default(), "head prints the first received event");
    let event: serde_json::Value = serde_json::from_str(head).expect("JSON");
    assert_eq!(
        (&event["type"], &event["data"]["segment_id"]),
        (&serde_json::json!("segment.entered"), &serde_json::json!(1))
    );
    assert!(event["data"]["customer"].as_str().is_some_and(|c| c.starts_with("C00")), "{event}");
    // The feedback insights, from the feedback ingested through the API.
    let lines: Vec<&str> = stdout.lines().collect();
    let lapse = lines.iter().position(|l| l.starts_with("topics in the last 90 active days")).expect("insights");
    assert!(lines.get(lapse + 2).is_some_and(|l| l.starts_with("delivery ")), "{stdout}");
    assert!(stdout.contains("who to call: valuable detractors not yet lost (3)"), "{stdout}");
}

#[test]
fn readme_live_flow_works_as_written_on_sqlite() {
    readme_live_flow(None);
}

#[test]
fn readme_live_flow_works_as_written_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    readme_live_flow(Some(&db.url.clone()));
}

/// Runs the README's journeys walkthrough (`<!-- readme journeys -->`): `kanta serve`, the
/// contract's welcome journey applied from the CLI, a first order through the API, the email at
/// `kanta mail listen`, and its one-click unsubscribe link.
fn readme_journeys_flow(db: Option<&str>) {
    let (stdout, dir) = run_readme_block("<!-- readme journeys -->", db, &[8080, 2525]);
    assert!(stdout.contains("welcome: version 1 (new)"), "{stdout}");
    let eml = std::fs::read_to_string(dir.path().join("mail/0001.eml")).expect("the welcome email");
    for header in [
        "From: Shop <hello@shop.example>",
        "To: Ada <ada@example.com>",
        "Subject: Thanks for your first order, Ada",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ] {
        assert!(eml.lines().any(|l| l.trim_end() == header), "{header} in {eml}");
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("Message-ID: <welcome.1.") && l.ends_with("@shop.example>")),
        "{stdout}"
    );
    assert!(eml.contains("Hello Ada, thanks for shopping with us."), "{eml}");
    assert!(stdout.contains("<h1>You are unsubscribed</h1>"), "{stdout}");
    assert!(
        stdout.contains(r#""consent":[{"channel":"email","status":"revoked","source":"list_unsubscribe_one_click""#),
        "{stdout}"
    );
}

#[test]
fn readme_journeys_flow_works_as_written_on_sqlite() {
    readme_journeys_flow(None);
}

#[test]
fn readme_journeys_flow_works_as_written_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    readme_journeys_flow(Some(&db.url.clone()));
}

/// Runs the README's uplift walkthrough (`<!-- readme uplift -->`): a journey with a holdout and
/// a goal applied to a running server, 400 sign-ups through the API, 120 orders, and the report
/// as it will read when every window has passed. The arms are the hash's: the report must count
/// exactly the customers and conversions `kanta_uplift::arm::assign` puts in each.
fn readme_uplift_flow(db: Option<&str>) {
    let (stdout, dir) = run_readme_block("<!-- readme uplift -->", db, &[8080]);
    let holdout = kanta_uplift::arm::Holdout::parse("50%").expect("a share");
    let control = |i: u32| {
        let id = kanta_domain::contact::CustomerId::parse(format!("c{i:03}")).expect("an id");
        kanta_uplift::arm::assign(&id, "promo", holdout) == kanta_uplift::arm::Arm::Control
    };
    let held: u64 = (1..=400).filter(|&i| control(i)).count() as u64;
    let held_converted: u64 = (1..=120).filter(|&i| control(i)).count() as u64;
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("promo: version 1, holdout 50%")).expect("the report");
    let row = |i: usize| lines[at + i].split_whitespace().collect::<Vec<_>>();
    let (t, tc) = ((400 - held).to_string(), (120 - held_converted).to_string());
    assert_eq!(row(4)[..4], ["treatment", t.as_str(), t.as_str(), tc.as_str()], "{stdout}");
    let (c, cc) = (held.to_string(), held_converted.to_string());
    assert_eq!(row(5)[..4], ["control", c.as_str(), c.as_str(), cc.as_str()], "{stdout}");
    // The README shows the rows and the verdict as printed: the arms are the hash's.
    assert_eq!(lines[at + 4], "treatment         193       193          62    32.12%           8.03         0");
    assert_eq!(lines[at + 5], "control           207       207          58    28.02%           7.00         0");
    assert!(lines[at + 7].starts_with("conversion rate   +4.11 pp   95% Newcombe [-4.85, +13.02] pp"), "{stdout}");
    assert!(lines[at + 7].ends_with("detectable at 80% power: 12.85 pp   → too early to tell"), "{stdout}");
    assert!(
        lines.contains(
            &"orders/customer   +0.0411   95% Welch [-0.0494, +0.1315]; incremental orders +7.9 [-9.5, +25.4]"
        ),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("uplift.json")).expect("uplift.json"))
            .expect("JSON");
    let rate = |arm: &str| json[arm]["conversion_rate"].as_f64().expect("a rate");
    let expected = (120 - held_converted) as f64 / (400 - held) as f64 - held_converted as f64 / held as f64;
    assert!((rate("treatment") - rate("control") - expected).abs() < 1e-12, "{json}");
    assert!((json["conversion"]["difference"].as_f64().expect("a difference") - expected).abs() < 1e-12);
    // Everyone ordered 25 or nothing: revenue per customer is 25 × the conversion rate.
    assert!(
        (json["treatment"]["revenue_per_customer"].as_f64().expect("revenue") - 25.0 * rate("treatment")).abs() < 1e-9
    );
    let page = std::fs::read_to_string(dir.path().join("uplift.html")).expect("uplift.html");
    assert!(page.contains("aria-label=\"Cumulative conversion by day since entry\""));
}

#[test]
fn readme_uplift_flow_works_as_written_on_sqlite() {
    readme_uplift_flow(None);
}

#[test]
fn readme_uplift_flow_works_as_written_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    readme_uplift_flow(Some(&db.url.clone()));
}

/// The push-down example of "More than one machine", on a fresh PostgreSQL database.
#[test]
fn readme_store_pushdown_works_as_written_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    let (stdout, _dir) = run_readme_block_with("<!-- readme pushdown-score -->", Some(&db.url), &[], &[]);
    // The README's comment lines, "…" standing for what depends on today's date.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let block = &readme[readme.find("<!-- readme pushdown-score -->").unwrap()..];
    let expected: Vec<&str> =
        block.lines().skip(2).take_while(|l| *l != "```").filter_map(|l| l.strip_prefix("#   ")).collect();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, pattern) in lines.iter().zip(&expected) {
        let mut rest = *line;
        for (k, piece) in pattern.split('…').enumerate() {
            let at = if k == 0 { rest.starts_with(piece).then_some(0) } else { rest.find(piece) };
            let at = at.unwrap_or_else(|| panic!("`{line}` does not read `{pattern}` (at `{piece}`)"));
            rest = &rest[at + piece.len()..];
        }
        assert!(rest.is_empty() || pattern.ends_with('…'), "`{line}` goes on after `{pattern}`");
    }
}

#[test]
fn readme_pushdown_works_as_written_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    let (stdout, dir) = run_readme_block_with("<!-- readme pushdown -->", None, &[], &[("KANTA_ENGINE", &db.url)]);
    assert!(
        stdout.contains(
            "push-down: 102,686 rows aggregated in the engine into 43,405 orders of 20,000 customers; pulled 10,374 \
             distinct histories and 8,555 spend keys"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("lapsing|5674"), "{stdout}");
    assert!(dir.path().join("report/report.html").exists() && dir.path().join("report/summary.json").exists());
    assert!(!dir.path().join("report/customers.csv").exists(), "only with --download");
}
