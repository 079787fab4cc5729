//! Journeys survive `kill -9`: 10,000 customers enter a journey with two email steps while
//! `kanta serve` is killed with SIGKILL at random moments and restarted (on SQLite; and with two
//! servers on one PostgreSQL database), then the SMTP server's mailbox is checked against the
//! store: no Message-ID arrived twice, no customer got a step twice, every message recorded as
//! sent arrived, nothing is left undone, and the messages in doubt are at most kills × the send
//! concurrency.
//!
//! The kills land wherever they land: in the feed, mid-advance, between a send's start and its
//! outcome. The random moments come from a seed printed at the start, so a failure can be
//! replayed with `KANTA_CRASH_SEED`.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kanta_mail::testing::Smtpd;
use kanta_store::journey::MessageStatus;

const CUSTOMERS: usize = 10_000;
const KILLS: usize = 20;
const CONCURRENCY: usize = 8;

/// A small deterministic generator (xorshift) for the kill moments.
struct Dice(u64);

impl Dice {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

fn kanta(dir: &Path, db: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kanta"));
    command
        .current_dir(dir)
        .env("KANTA_DATABASE_URL", db)
        .env("KANTA_CONFIG", dir.join("kanta.toml"))
        .env_remove("KANTA_LISTEN");
    command
}

fn run(dir: &Path, db: &str, args: &[&str]) {
    let output = kanta(dir, db).args(args).output().expect("kanta");
    assert!(output.status.success(), "kanta {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// `kanta serve`, its output appended to `serve-N.log` in `dir` (kept for a failure's reader).
fn serve(dir: &Path, db: &str, n: usize) -> Child {
    let log = File::options().create(true).append(true).open(dir.join(format!("serve-{n}.log"))).expect("log");
    kanta(dir, db)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("kanta serve")
}

fn sigkill(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
    child.kill().expect("kill");
    child.wait().expect("wait");
}

/// The journey's message counts by status, and whether any run is still active.
fn progress(runtime: &tokio::runtime::Runtime, db: &str) -> (Vec<(MessageStatus, i64)>, i64) {
    runtime.block_on(async {
        let store = kanta_store::open(db).await.expect("the store");
        let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
        let metrics = store.journey_metrics(now).await.expect("metrics");
        let mut by_status: Vec<(MessageStatus, i64)> = Vec::new();
        for m in metrics.messages.iter().filter(|m| m.journey == "crash") {
            match by_status.iter_mut().find(|(s, _)| *s == m.status) {
                Some((_, n)) => *n += m.count,
                None => by_status.push((m.status, m.count)),
            }
        }
        let active = metrics.active_runs.iter().filter(|(j, _)| j == "crash").map(|(_, n)| n).sum();
        (by_status, active)
    })
}

fn count(by_status: &[(MessageStatus, i64)], status: MessageStatus) -> i64 {
    by_status.iter().filter(|(s, _)| *s == status).map(|(_, n)| n).sum()
}

fn crash_test(db: &str, servers: usize) {
    let seed = std::env::var("KANTA_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("crash test: KANTA_CRASH_SEED={seed}");
    let mut dice = Dice(seed);
    let smtpd = Smtpd::cli(&[]);
    let dir = tempfile::tempdir().expect("a folder");
    let dir = dir.path();
    std::fs::write(
        dir.join("kanta.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ngrace_seconds = 1\n[scoring]\nevery = \"off\"\n\
             [email]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"Shop <hello@shop.example>\"\n\
             public_url = \"http://127.0.0.1:8080\"\nunsubscribe_secret = \"crash-test-secret-0123456789\"\n\
             rate_per_second = 100000\nconcurrency = {CONCURRENCY}\ntimeout_seconds = 2\n\
             [guardrails]\nconsent = \"opt-out\"\nquiet_hours = \"off\"\nfrequency_cap = \"off\"\n\
             [journeys]\nlease = \"3s\"\n",
            port = smtpd.port
        ),
    )
    .expect("settings");
    std::fs::write(
        dir.join("crash.yaml"),
        "name: crash\ntrigger:\n  event: crash.test\nsteps:\n  - send_email: { subject: First, html: \"<p>one</p>\" }\n  \
         - send_email: { subject: Second, html: \"<p>two</p>\" }\n",
    )
    .expect("journey");
    let mut customers = String::from("id,email\n");
    let (mut early, mut late) =
        (String::from("id,customer_id,name,time\n"), String::from("id,customer_id,name,time\n"));
    let now = kanta_domain::Clock::now(&kanta_domain::SystemClock);
    let time = kanta_domain::Timestamp::from_micros(now.micros() - 60_000_000).to_string();
    for i in 0..CUSTOMERS {
        customers.push_str(&format!("c{i:05},c{i:05}@example.org\n"));
        let events = if i % 2 == 0 { &mut early } else { &mut late };
        events.push_str(&format!("e{i},c{i:05},crash.test,{time}\n"));
    }
    std::fs::write(dir.join("customers.csv"), customers).expect("customers");
    std::fs::write(dir.join("early.csv"), early).expect("events");
    std::fs::write(dir.join("late.csv"), late).expect("events");
    run(dir, db, &["journeys", "apply", "crash.yaml"]);
    run(dir, db, &["import", "customers", "customers.csv", "-q"]);
    // Half the customers enter before the first start, half while the servers are being killed.
    run(dir, db, &["import", "events", "early.csv", "-q"]);

    let mut running: Vec<Child> = (0..servers).map(|n| serve(dir, db, n)).collect();
    // The kills start once mail flows, so that they also land mid-send.
    let flowing = Instant::now();
    while smtpd.messages().len() < 50 && flowing.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for kill in 0..KILLS {
        std::thread::sleep(Duration::from_millis(dice.between(300, 2_500)));
        let n = dice.between(0, servers as u64) as usize;
        sigkill(&mut running[n]);
        if kill == KILLS / 2 {
            run(dir, db, &["import", "events", "late.csv", "-q"]);
        }
        running[n] = serve(dir, db, n);
    }

    // Let them finish: every message sent or in doubt, every run done.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let started = Instant::now();
    let expected = 2 * CUSTOMERS as i64;
    let (by_status, active) = loop {
        let (by_status, active) = progress(&runtime, db);
        let settled = count(&by_status, MessageStatus::Sent) + count(&by_status, MessageStatus::InDoubt);
        if (active == 0 && settled == expected) || started.elapsed() > Duration::from_secs(900) {
            break (by_status, active);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    for mut child in running {
        sigkill(&mut child);
    }
    let logs: String = (0..servers)
        .map(|n| std::fs::read_to_string(dir.join(format!("serve-{n}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .join("\n");
    let (sent, in_doubt) = (count(&by_status, MessageStatus::Sent), count(&by_status, MessageStatus::InDoubt));
    assert_eq!((active, sent + in_doubt), (0, expected), "not settled: {by_status:?}; the logs end with\n{logs}");
    assert!(
        in_doubt <= (KILLS * CONCURRENCY) as i64,
        "{in_doubt} in doubt after {KILLS} kills at concurrency {CONCURRENCY}"
    );

    // The mailbox.
    let arrived: Vec<String> = smtpd
        .messages()
        .iter()
        .map(|m| {
            let id = kanta_mail::headers::headers(m)
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("Message-ID"))
                .map(|(_, v)| v.trim().trim_matches(['<', '>']).to_owned());
            id.expect("every message has a Message-ID")
        })
        .collect();
    let unique: HashSet<&str> = arrived.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), arrived.len(), "a Message-ID arrived twice");
    // crash.VERSION.CUSTOMER.RUN.STEP.OCCURRENCE@domain: one message per customer and step.
    let steps: HashSet<(String, String)> = arrived
        .iter()
        .map(|id| {
            let parts: Vec<&str> = id.split(['.', '@']).collect();
            (parts[2].to_owned(), parts[4].to_owned())
        })
        .collect();
    assert_eq!(steps.len(), arrived.len(), "a customer got a step twice");
    let doubts: HashSet<String> = runtime.block_on(async {
        let store = kanta_store::open(db).await.expect("the store");
        let doubts = store.in_doubt_messages().await.expect("doubts");
        doubts.into_iter().map(|m| m.message_id.trim_matches(['<', '>']).to_owned()).collect()
    });
    assert_eq!(doubts.len() as i64, in_doubt);
    let arrived_in_doubt = arrived.iter().filter(|id| doubts.contains(id.as_str())).count() as i64;
    assert_eq!(arrived.len() as i64 - arrived_in_doubt, sent, "every message recorded as sent arrived, and only those");
    eprintln!(
        "crash test: {KILLS} kills, {sent} sent, {in_doubt} in doubt ({arrived_in_doubt} of them arrived), \
         settled {:.0} s after the last kill",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn journeys_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().expect("a folder");
    let db = format!("sqlite://{}", dir.path().join("kanta.db").display());
    crash_test(&db, 1);
}

#[test]
fn journeys_survive_sigkill_with_two_servers_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let Some(db) = runtime.block_on(kanta_store::testing::postgres()).expect("a PostgreSQL database") else { return };
    crash_test(&db.url.clone(), 2);
}
