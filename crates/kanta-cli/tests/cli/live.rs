//! The README's live flow, as processes, on both backends: a server with a webhook endpoint
//! configured, a shop ingested through the API (`kanta import orders --api`), a segment of
//! slipping high-value customers created over HTTP, scoring, and every customer who entered the
//! segment arriving, signed and verified, at `kanta webhooks listen`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::support::kanta_in;

const SECRET: &str = "live-demo-secret-0123456789";
const SEGMENT: &str = r#"stage = "slipping" and clv_12m > 50"#;

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `kanta ARGS` in `dir` and return it with the `http://…` address of the `listening on`
/// line it prints (on stdout or stderr) and channels of its stdout and stderr lines.
fn start(dir: &std::path::Path, args: &[&str]) -> (Process, String, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(args)
        .current_dir(dir)
        .env("KANTA_WEBHOOK_SECRET", SECRET)
        .env_remove("KANTA_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kanta");
    let (tx, lines) = mpsc::channel();
    let (err_tx, err_lines) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    for (stream, is_stdout) in [(Box::new(out) as Box<dyn Read + Send>, true), (Box::new(err), false)] {
        let tx = tx.clone();
        let err_tx = err_tx.clone();
        let addr_tx = addr_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                // Only the "listening on" line: `kanta serve` also prints its webhook endpoints'
                // addresses, in an order that the logging threads may change.
                if line.contains("listening on")
                    && let Some(addr) = line.split_whitespace().find(|w| w.starts_with("http://"))
                {
                    let _ = addr_tx.send(addr.trim_end_matches('/').to_string());
                }
                if is_stdout {
                    let _ = tx.send(line);
                } else {
                    eprintln!("[kanta] {line}");
                    let _ = err_tx.send(line);
                }
            }
        });
    }
    let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("the process prints its address");
    (Process(child), addr, lines, err_lines)
}

fn live_flow(db: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let r = kanta_in(path, args, env);
        assert_eq!(r.code, 0, "kanta {args:?}: {}", r.stderr);
        r
    };
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let start_day = (chrono::Utc::now() - chrono::Duration::days(730)).format("%Y-%m-%d").to_string();
    run(
        &[
            "generate",
            "--customers",
            "2000",
            "--seed",
            "7",
            "--start",
            &start_day,
            "--end",
            &yesterday,
            "--out",
            "shop.csv",
            "-q",
        ],
        &[],
    );

    let (_receiver, receiver_url, received, _) = start(path, &["webhooks", "listen", "--listen", "127.0.0.1:0"]);
    // Credentials in the endpoint's URL (sent, never shown).
    let hook_url =
        format!("{}/hooks?api_key=k-hunter2&region=eu", receiver_url.replace("http://", "http://kanta:pw-hunter2@"));
    let shown_url = format!("{}/hooks?api_key=***&region=eu", receiver_url.replace("http://", "http://kanta:***@"));
    let config = format!(
        "[database]\nurl = \"{db}\"\n[scoring]\nevery = \"off\"\n\n[[webhooks]]\nname = \"crm\"\nurl = \"{hook_url}\"\n\
         secret_env = \"KANTA_WEBHOOK_SECRET\"\nevents = [\"segment.entered\"]\nsegments = [\"slipping-high-value\"]\npoll = \"1s\"\n"
    );
    std::fs::write(path.join("kanta.toml"), config).expect("kanta.toml");
    let (_server, base, _, server_log) = start(path, &["serve", "--listen", "127.0.0.1:0"]);
    let token = run(&["token", "create", "--scope", "admin"], &[]).stdout.lines().last().expect("a token").to_string();

    // Ingest through the API, twice: the second time changes nothing.
    let env = [("KANTA_TOKEN", token.as_str())];
    let first = run(&["import", "orders", "shop.csv", "--currency", "EUR", "--api", &base], &env);
    assert!(
        first.stderr.contains(&format!("into {base}: "))
            && first.stderr.contains(" created, 0 updated, 0 unchanged; 2000 new customers"),
        "{}",
        first.stderr
    );
    let again = run(&["import", "orders", "shop.csv", "--currency", "EUR", "--api", &base], &env);
    assert!(again.stderr.contains(" 0 created, 0 updated, "), "{}", again.stderr);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = reqwest::Client::new();
    let call = |request: reqwest::RequestBuilder| -> Value {
        runtime.block_on(async {
            let response = request.bearer_auth(&token).send().await.expect("a response");
            assert!(response.status().is_success(), "{:?}", response.status());
            response.json().await.expect("JSON")
        })
    };
    let created = call(
        client.post(format!("{base}/v1/segments")).json(&json!({"name": "slipping-high-value", "expression": SEGMENT})),
    );
    assert_eq!(created["members"], 0, "nobody is scored yet: {created}");
    let id = created["id"].as_i64().expect("an id");

    let scored = run(&["score"], &[]);
    let line = scored.stdout.lines().find(|l| l.starts_with("segment `slipping-high-value`")).expect("a segment line");
    let entered: usize = line
        .split(", ")
        .find_map(|part| part.strip_suffix(" entered"))
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(entered >= 10, "{}", scored.stdout);

    // Every entry arrives at the receiver, verified, as one JSON line.
    let mut customers = BTreeSet::new();
    while customers.len() < entered {
        let line = received.recv_timeout(Duration::from_secs(30)).expect("a webhook within 30 s");
        let event: Value = serde_json::from_str(&line).expect("an event");
        assert_eq!(
            (&event["type"], &event["data"]["segment"]),
            (&json!("segment.entered"), &json!("slipping-high-value"))
        );
        assert_eq!(event["data"]["segment_id"], id);
        customers.insert(event["data"]["customer"].as_str().expect("a customer").to_string());
    }
    let transitions = call(client.get(format!("{base}/v1/segments/{id}/transitions?limit=10000")));
    let expected: BTreeSet<String> = transitions["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| t["customer"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(customers, expected);
    // The receiver has each event before the dispatcher records its answer: wait for the
    // record of the last one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let hooks = loop {
        let hooks = call(client.get(format!("{base}/v1/webhooks")));
        if hooks["endpoints"][0]["delivered"] == entered || std::time::Instant::now() > deadline {
            break hooks;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(hooks["endpoints"][0]["delivered"], entered, "{hooks}");
    assert_eq!(hooks["endpoints"][0]["pending"], 0, "{hooks}");

    // The same log from the command line.
    let list = run(&["webhooks", "list"], &[]);
    let row = list.stdout.lines().find(|l| l.starts_with("crm ")).unwrap_or_else(|| panic!("{}", list.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cells[1], cells[2], cells[3], cells[5]), ("0", entered.to_string().as_str(), "0", "ok"), "{row}");
    assert!(row.ends_with(&shown_url), "{row}");
    assert_eq!(hooks["endpoints"][0]["url"], shown_url.as_str(), "{hooks}");
    let shown = run(&["config", "show"], &[]).stdout;
    assert!(shown.contains(&format!("url = \"{shown_url}\"")) && !shown.contains("hunter2"), "{shown}");
    let log: Vec<String> = server_log.try_iter().collect();
    assert!(log.iter().any(|l| l == &format!("kanta serve: webhook `crm` → {shown_url}")), "{log:?}");
    assert!(log.iter().all(|l| !l.contains("hunter2")), "{log:?}");
    let log = run(&["webhooks", "deliveries", "--endpoint", "crm", "--limit", "2", "--json"], &[]);
    let lines: Vec<Value> = log.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines.iter().all(|d| d["state"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 204),
        "{lines:?}"
    );
    assert!(log.stderr.contains("more: --after "), "{}", log.stderr);
    let table = run(&["webhooks", "deliveries", "--limit", "1"], &[]);
    assert!(
        table.stdout.lines().nth(1).is_some_and(|l| l.contains("segment_transition:") && l.contains("HTTP 204")),
        "{}",
        table.stdout
    );
    assert!(run(&["webhooks", "resume", "crm", "--retry-failed"], &[]).stderr.contains("resumed webhook `crm`"));
    let unknown = kanta_in(path, &["webhooks", "resume", "nope"], &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("no webhook `nope`"), "{}", unknown.stderr);

    // The receiver refuses what is not signed with the secret.
    let forged = runtime.block_on(async {
        client
            .post(format!("{receiver_url}/hooks"))
            .header("kanta-signature", "t=1,v1=00")
            .body("{}")
            .send()
            .await
            .expect("a response")
            .status()
    });
    assert_eq!(forged, reqwest::StatusCode::UNAUTHORIZED);
}

#[test]
fn the_live_flow_delivers_signed_segment_entries_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    live_flow(&format!("sqlite://{}", dir.path().join("live.db").display()));
}

#[test]
fn the_live_flow_delivers_signed_segment_entries_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    live_flow(&db.url.clone());
}

/// `--count N` prints exactly N events even when more deliveries arrive at once: the ones past
/// the limit get a 503 (the sender keeps them queued) and print nothing. With deliveries in
/// flight when the N-th arrived, the receiver used to print N+1 lines.
#[test]
fn listen_count_prints_exactly_that_many_events_under_concurrent_deliveries() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_receiver, url, lines, _) =
        start(dir.path(), &["webhooks", "listen", "--listen", "127.0.0.1:0", "--count", "2"]);
    let addr = url.trim_start_matches("http://").to_string();
    let now = chrono::Utc::now().timestamp();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let senders: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let body = format!(r#"{{"id":"e{i}"}}"#);
                let signature = kanta_webhooks::sign::sign(SECRET.as_bytes(), now, body.as_bytes());
                let request = format!(
                    "POST /kanta HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
                     kanta-signature: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = std::net::TcpStream::connect(&addr).ok()?;
                barrier.wait();
                stream.write_all(request.as_bytes()).ok()?;
                let mut response = String::new();
                stream.read_to_string(&mut response).ok()?;
                response.split_whitespace().nth(1).map(str::to_string)
            })
        })
        .collect();
    let statuses: Vec<Option<String>> = senders.into_iter().map(|s| s.join().expect("sender")).collect();
    let printed: Vec<String> = lines.iter().collect(); // ends when the receiver exits
    assert_eq!(printed.len(), 2, "{printed:?} {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| s.as_deref() == Some("204")).count(), 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s.as_deref(), Some("204" | "503") | None)),
        "the others are refused or find the receiver gone: {statuses:?}"
    );
}
