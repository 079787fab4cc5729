//! What only the whole application can do: orders ingested over HTTP are scored by the
//! scheduler it runs, the scores move a saved segment, and its webhook worker delivers the
//! transitions, signed, to a configured endpoint — as under `kanta serve`. The clock every part
//! reads is a `ManualClock`: moving it 400 days makes the next scheduled run see a lapsed
//! customer, without waiting for anything but the one-second schedule.

use std::time::Duration;

use kanta_domain::{Clock, Timestamp};
use kanta_server::testing::TestApp;
use kanta_store::testing::TestDb;
use serde_json::{Value, json};
use tokio::sync::mpsc;

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
    scheduled_scoring_moves_a_segment_and_the_webhook_worker_delivers_signed_events,
    stopping_ends_the_api_the_scheduler_and_the_webhook_workers,
);

const SECRET: &str = "whole-application-secret";
/// 2024-02-10T00:00:00Z, the day the API suite's scoring test scores the same orders.
const START: Timestamp = Timestamp::from_micros(1_707_523_200_000_000);
/// The longest any step may take: scheduled runs are a second apart, webhook polls too.
const PATIENCE: Duration = Duration::from_secs(30);

/// A webhook endpoint on a loopback port: every POST's `Kanta-Signature` header and body.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let signature = headers
                    .get(kanta_webhooks::sign::HEADER)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((signature, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// The application scoring every second and sending segment events to `url`, as a
/// settings file would say it.
async fn spawn(db: TestDb, url: &str) -> TestApp {
    let text = format!(
        "[scoring]\nevery = \"1s\"\n\n[[webhooks]]\nname = \"crm\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         events = [\"segment.entered\", \"segment.exited\"]\npoll = \"1s\"\n"
    );
    let written = kanta_server::settings::parse(&text).expect("valid settings");
    let mut settings = kanta_server::testing::settings();
    (settings.scoring.every, settings.webhooks) = (written.scoring.every, written.webhooks);
    TestApp::spawn_at(db, settings, START).await
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a response");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.expect("a JSON body")
}

/// The latest scoring run once it is a completed run as of `day` over `customers` customers.
async fn run_as_of(app: &TestApp, day: &str, customers: i64) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let runs = call(app, reqwest::Method::GET, "/v1/scores/runs?limit=1", &app.read, None).await;
        let run = &runs["runs"][0];
        if run["as_of"] == day && run["customers"] == customers && run["status"] == "completed" {
            return run.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no run as of {day} over {customers} customers: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next delivery to arrive.
async fn delivery(deliveries: &mut mpsc::UnboundedReceiver<(String, String)>) -> (String, Value) {
    let (signature, body) =
        tokio::time::timeout(PATIENCE, deliveries.recv()).await.expect("a delivery in time").expect("a delivery");
    let parsed = serde_json::from_str(&body).expect("a JSON body");
    // Signed with the configured secret at the application's clock, not the wall clock's.
    assert_eq!(signature, kanta_webhooks::sign::sign(SECRET.as_bytes(), seconds(&body_time(&parsed)), body.as_bytes()));
    (signature, parsed)
}

/// An event's `created_at`.
fn body_time(event: &Value) -> String {
    event["created_at"].as_str().expect("created_at").to_string()
}

fn seconds(rfc3339: &str) -> i64 {
    Timestamp::parse_rfc3339(rfc3339).expect("a time").micros().div_euclid(1_000_000)
}

async fn scheduled_scoring_moves_a_segment_and_the_webhook_worker_delivers_signed_events(db: TestDb) {
    let (url, mut deliveries) = receiver().await;
    let app = spawn(db, &url).await;
    let segment = json!({"name": "repeat-buyers", "expression": "stage = \"repeat\""});
    let created = call(&app, reqwest::Method::POST, "/v1/segments", &app.admin, Some(segment)).await;
    assert_eq!(created["members"], 0, "nobody is scored yet: {created}");
    let orders = json!([
        {"id": "o1", "customer_id": "00042", "time": "2024-01-05T10:00:00Z", "amount": "19.90", "currency": "EUR"},
        {"id": "o2", "customer_id": "00042", "time": "2024-02-05T10:00:00Z", "amount": 30, "currency": "EUR"},
        {"id": "o3", "customer_id": "c7", "time": "2024-02-06T10:00:00Z", "amount": 12.5, "currency": "EUR"}
    ]);
    let ingested = call(&app, reqwest::Method::POST, "/v1/orders", &app.ingest, Some(orders)).await;
    assert_eq!(ingested["created"], 3, "{ingested}");

    // The scheduler scores as of the application's clock, and the segment refresh that follows
    // lets 00042 (two orders, the last five days ago) in.
    let run = run_as_of(&app, "2024-02-10", 2).await;
    let view = call(&app, reqwest::Method::GET, "/v1/customers/00042", &app.read, None).await;
    assert_eq!((&view["scores"]["stage"], &view["scores"]["run_id"]), (&json!("repeat"), &run["id"]), "{view}");
    let (_, entered) = delivery(&mut deliveries).await;
    assert_eq!(entered["type"], "segment.entered", "{entered}");
    assert_eq!((&entered["data"]["customer"], &entered["data"]["segment"]), (&json!("00042"), &json!("repeat-buyers")));
    assert_eq!(seconds(&body_time(&entered)), START.micros() / 1_000_000, "stamped by the application's clock");

    // 400 days on, the next run finds 00042 lost: the segment lets them go and the worker says so.
    app.clock.advance(Duration::from_secs(400 * 86_400));
    let later = app.clock.now();
    run_as_of(&app, &kanta_store::rfc3339(later.micros())[..10], 2).await;
    let (_, exited) = delivery(&mut deliveries).await;
    assert_eq!(exited["type"], "segment.exited", "{exited}");
    assert_eq!(exited["data"]["customer"], "00042");
    assert_eq!(seconds(&body_time(&exited)), later.micros() / 1_000_000);
    // The attempts are recorded once the receiver has answered: both end delivered.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let log = call(&app, reqwest::Method::GET, "/v1/webhooks/deliveries?endpoint=crm", &app.admin, None).await;
        let states: Vec<&Value> =
            log["deliveries"].as_array().expect("deliveries").iter().map(|d| &d["state"]).collect();
        if states == [&json!("delivered"), &json!("delivered")] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await.expect("a clean stop");
}

async fn stopping_ends_the_api_the_scheduler_and_the_webhook_workers(db: TestDb) {
    let (url, _deliveries) = receiver().await;
    let app = spawn(db, &url).await;
    let base = app.base.clone();
    let store = app.store.clone();
    run_as_of(&app, "2024-02-10", 0).await;
    let started = std::time::Instant::now();
    app.stop().await.expect("a clean stop");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "the listener is closed");
    // No scheduled run after the stop: the count of runs stays put.
    let runs = store.score_runs(100).await.expect("runs").len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(store.score_runs(100).await.expect("runs").len(), runs, "the scheduler stopped");
}
