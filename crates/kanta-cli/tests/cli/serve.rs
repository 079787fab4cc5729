//! `kanta serve` and `kanta token` as processes: the token on the last line, and the crash test —
//! the server is killed with SIGKILL at random moments while clients ingest, restarted, and
//! every acknowledged batch must be present exactly once and no batch half-written, on both
//! backends.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::support::{kanta, kanta_in, write};

/// Orders per batch in the crash test.
const BATCH: usize = 40;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `kanta serve` on a free port and waits for its "listening on" line.
    fn start(db: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kanta serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the listening line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, base }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown handler runs, nothing is flushed by the server.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(db: &str, scope: &str) -> String {
    let run = kanta(&["token", "create", "--scope", scope, "--db", db, "--name", "test"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let last = run.stdout.lines().last().expect("a line").to_string();
    assert!(last.starts_with("kanta_") && last.len() == 70, "{last:?}");
    assert!(run.stderr.contains("shown once"), "{}", run.stderr);
    last
}

fn batch_body(batch: u64) -> String {
    let orders: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            serde_json::json!({
                "id": format!("b{batch}-{i}"), "customer_id": format!("c{}", (batch * 7 + i as u64) % 97),
                "time": "2024-05-01T12:00:00Z", "amount": "10.00", "currency": "EUR",
                "lines": [{"product": "p", "quantity": 1, "price": "10.00"}]
            })
        })
        .collect();
    serde_json::Value::Array(orders).to_string()
}

/// Posts new batches until the server stops answering; returns the batches acknowledged (2xx).
async fn ingest_until_down(base: String, token: String, first: u64, stride: u64) -> Vec<u64> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let mut acknowledged = Vec::new();
    let mut batch = first;
    loop {
        let sent = client.post(format!("{base}/v1/orders")).bearer_auth(&token).body(batch_body(batch)).send().await;
        match sent {
            Ok(r) if r.status().is_success() => {
                // The response must arrive whole for the batch to count as acknowledged.
                if r.bytes().await.is_ok() {
                    acknowledged.push(batch);
                }
            }
            Ok(r) => panic!("batch {batch}: unexpected status {}", r.status()),
            Err(_) => return acknowledged,
        }
        batch += stride;
    }
}

fn crash_test(db: &str) {
    let token = token(db, "ingest");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // A seed from the clock: each run kills at different moments; printed to reproduce.
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    eprintln!("crash test seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let clients = 3u64;
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut round_start = 0u64;
    for _round in 0..4 {
        let server = Server::start(db);
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (base, token) = (server.base.clone(), token.clone());
                runtime.spawn(ingest_until_down(base, token, round_start + c, clients))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + next() % 400));
        server.kill();
        for task in tasks {
            acknowledged.extend(runtime.block_on(task).expect("client task"));
        }
        round_start += 1_000_000;
    }
    assert!(acknowledged.len() >= 4, "too few batches acknowledged to test anything: {}", acknowledged.len());

    // Restart once more (recovery must work), then read the store directly.
    let server = Server::start(db);
    let store = runtime.block_on(kanta_store::open(db)).expect("open store");
    let facts = runtime.block_on(store.order_facts()).expect("orders");
    drop(server);
    let mut per_batch: BTreeMap<u64, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for f in &facts {
        assert!(ids.insert(f.order.clone()), "order {} stored twice", f.order);
        let batch: u64 = f.order[1..f.order.find('-').expect("a dash")].parse().expect("a batch number");
        *per_batch.entry(batch).or_default() += 1;
    }
    for (batch, n) in &per_batch {
        assert_eq!(*n, BATCH, "batch {batch} is half-written: {n} of {BATCH} orders");
    }
    for batch in &acknowledged {
        assert!(per_batch.contains_key(batch), "acknowledged batch {batch} is missing after kill -9");
    }
    eprintln!(
        "{} batches acknowledged, {} stored (a batch may commit just before its response is lost)",
        acknowledged.len(),
        per_batch.len()
    );
}

#[test]
fn token_create_prints_the_token_alone_on_the_last_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let a = token(&db, "admin");
    let b = token(&db, "read");
    assert_ne!(a, b);
    let bad = kanta(&["token", "create", "--scope", "root", "--db", &db]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("root"), "{}", bad.stderr);

    let list = kanta(&["token", "list", "--db", &db]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(!list.stdout.contains(&a) && !list.stdout.contains(&b), "tokens are never shown again");
    let rows: Vec<Vec<&str>> = list.stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!((rows[0][0], rows[0][1], rows[0][3], rows[0][4]), ("1", "admin", "-", "test"));
    assert_eq!(rows[1][1], "read");
    let revoke = kanta(&["token", "revoke", "1", "--db", &db]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let again = kanta(&["token", "revoke", "1", "--db", &db]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("no active token with id 1"), "{}", again.stderr);
    let list = kanta(&["token", "list", "--db", &db]);
    assert_ne!(list.stdout.lines().nth(1).and_then(|l| l.split_whitespace().nth(3)), Some("-"));
}

#[test]
fn acknowledged_batches_survive_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    crash_test(&format!("sqlite://{}", dir.path().join("crash.db").display()));
}

#[test]
fn acknowledged_batches_survive_kill_9_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    let url = db.url.clone();
    crash_test(&url);
}

#[test]
fn settings_come_from_defaults_file_environment_and_flags_in_that_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let show = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["config", "show"];
        all.extend_from_slice(args);
        let run = kanta_in(dir.path(), &all, env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let defaults = show(&[], &[]);
    assert!(
        defaults.contains("url = \"sqlite://kanta.db\"") && defaults.contains("listen = \"127.0.0.1:8080\""),
        "{defaults}"
    );

    // ./kanta.toml is read when present; the password never shows.
    write(
        dir.path(),
        "kanta.toml",
        b"[database]\nurl = \"postgres://kanta:hunter2@db/kanta\"\n[server]\nlisten = \"127.0.0.1:9001\"\n",
    );
    let file = show(&[], &[]);
    assert!(file.contains("postgres://kanta:***@db/kanta") && !file.contains("hunter2"), "{file}");
    assert!(file.contains("127.0.0.1:9001") && file.contains("grace_seconds = 30"), "{file}");
    let env = show(&[], &[("KANTA_LISTEN", "127.0.0.1:9002"), ("KANTA_DATABASE_URL", "sqlite://env.db")]);
    assert!(env.contains("127.0.0.1:9002") && env.contains("sqlite://env.db"), "{env}");
    let flag = show(&["--listen", "127.0.0.1:9003", "--grace", "5"], &[("KANTA_LISTEN", "127.0.0.1:9002")]);
    assert!(flag.contains("127.0.0.1:9003") && flag.contains("grace_seconds = 5"), "{flag}");

    // The commented example is a valid settings file.
    let example = kanta_in(dir.path(), &["config", "default"], &[]).stdout;
    write(dir.path(), "example.toml", example.as_bytes());
    assert!(show(&["--config", "example.toml"], &[]).contains("sqlite://kanta.db"));

    write(dir.path(), "bad.toml", b"[server]\nlisen = \"x\"\n");
    let bad = kanta_in(dir.path(), &["config", "show", "--config", "bad.toml"], &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("bad.toml") && bad.stderr.contains("line 2") && bad.stderr.contains("lisen"),
        "{}",
        bad.stderr
    );
    let missing = kanta_in(dir.path(), &["serve", "--config", "nope.toml"], &[]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.toml"), "{}", missing.stderr);
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let token = token(&db, "ingest");
    let mut server = Server::start(&db);
    let address = server.base.trim_start_matches("http://").to_string();
    let body = batch_body(1);
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /v1/orders HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .expect("send the first half");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(200));
    // The request is in flight (headers read, body half sent) when SIGTERM arrives.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(tail.as_bytes()).expect("send the rest");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("the response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&format!("\"created\":{BATCH}")), "{response}");
    let status = server.child.wait().expect("the server exits");
    assert!(status.success(), "{status:?}");
    // No new connection is accepted after the shutdown.
    assert!(std::net::TcpStream::connect(&address).is_err());
}
