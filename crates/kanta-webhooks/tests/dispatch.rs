//! The dispatcher against real HTTP receivers on loopback ports, on both backends: signed
//! bodies in order, subscriptions, backoff and retries, giving up, pausing and resuming,
//! redirects refused, and a hanging endpoint that blocks neither scoring nor other endpoints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kanta_store::Storage;
use kanta_store::record::{Order, OrderStatus};
use kanta_store::testing::TestDb;
use kanta_webhooks::{Dispatcher, Endpoint, EventType, Policy, SigningSecret, Subscription, sign};
use serde_json::Value;

kanta_store::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] |db| db;
    stage_changes_and_segment_entries_arrive_signed_in_order_as_subscribed,
    failures_back_off_give_up_and_pause_until_resumed,
    redirects_are_not_followed_and_unreachable_endpoints_are_failures,
    names_that_resolve_to_private_addresses_are_refused_without_connecting,
    a_hanging_endpoint_blocks_neither_scoring_nor_other_endpoints,
);

const SECRET: &str = "whsec_0123456789abcdef";
const DAY: i64 = 86_400_000_000;
/// 2024-03-01T00:00:00Z.
const MARCH: i64 = 1_709_251_200_000_000;

/// What a receiver does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer(u16),
    RedirectTo(u16),
    Hang,
}

/// One received request.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on a loopback port.
#[derive(Clone)]
struct Receiver {
    url: String,
    port: u16,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("address").port();
        let receiver = Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/kanta"),
            port,
            mode: Arc::new(Mutex::new(mode)),
            got: Arc::default(),
        };
        let r = receiver.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let r = r.clone();
            async move {
                r.got.lock().expect("lock").push(Received { headers, body });
                let mode = *r.mode.lock().expect("lock");
                match mode {
                    Mode::Answer(code) => StatusCode::from_u16(code).expect("a status").into_response(),
                    Mode::RedirectTo(port) => Response::builder()
                        .status(StatusCode::TEMPORARY_REDIRECT)
                        .header("location", format!("http://127.0.0.1:{port}/elsewhere"))
                        .body(axum::body::Body::empty())
                        .expect("a response"),
                    Mode::Hang => {
                        std::future::pending::<()>().await;
                        StatusCode::OK.into_response()
                    }
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn endpoint(name: &str, url: &str, subscription: Subscription, policy: Policy) -> Endpoint {
    let secret = SigningSecret::parse(SECRET).expect("a secret");
    Endpoint::new(name, url, secret, subscription, policy).expect("a valid endpoint")
}

/// Fast retries for tests: 50 ms doubling to 200 ms.
fn quick() -> Policy {
    Policy {
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        poll: Duration::from_millis(20),
        ..Policy::default()
    }
}

fn order(id: &str, customer: &str, time: i64, amount: i64) -> Order {
    Order {
        id: id.into(),
        customer_id: kanta_domain::CustomerId::parse(customer).expect("an id"),
        time: kanta_domain::Timestamp::from_micros(time),
        amount: kanta_core::money::Money::from_raw(amount * 10_000),
        currency: kanta_domain::Currency::parse("EUR").expect("a currency"),
        status: OrderStatus::Completed,
        lines: Vec::new(),
    }
}

/// Four customers scored on 2024-03-01 (first stages: no events), and a saved segment.
async fn shop(store: &dyn Storage) -> i64 {
    let orders = [
        order("a1", "ann", MARCH - 300 * DAY, 120),
        order("a2", "ann", MARCH - 100 * DAY, 80),
        order("a3", "ann", MARCH - 10 * DAY, 60),
        order("b1", "bob", MARCH - 20 * DAY, 40),
        order("c1", "cy", MARCH - 5 * DAY, 15),
        order("d1", "dee", MARCH - 200 * DAY, 300),
    ];
    store.write_orders(&orders, kanta_domain::Timestamp::from_micros(MARCH)).await.expect("orders");
    let job = kanta_jobs::ScoreJob::default();
    kanta_jobs::score_store(store, &job, MARCH).await.expect("first scoring");
    let expr = kanta_segment::parse("orders >= 2").expect("an expression");
    store.create_segment("repeaters", "orders >= 2", &expr, MARCH).await.expect("a segment").id
}

/// New events: bob and cy buy again (they enter `repeaters`), and a year later every stage
/// has moved.
async fn events(store: &dyn Storage) {
    let more = [order("b2", "bob", MARCH + DAY, 25), order("c2", "cy", MARCH + 2 * DAY, 35)];
    store.write_orders(&more, kanta_domain::Timestamp::from_micros(MARCH + 2 * DAY)).await.expect("orders");
    let job = kanta_jobs::ScoreJob::default();
    kanta_jobs::schedule::cycle(store, &job, MARCH + 400 * DAY).await.score.expect("scoring");
}

fn verified(r: &Received) -> Value {
    let header = r.headers.get(sign::HEADER).and_then(|h| h.to_str().ok()).expect("a signature header");
    let now = kanta_store::now_micros() / 1_000_000;
    sign::verify(SECRET.as_bytes(), header, &r.body, now, 300).expect("a valid signature");
    assert_eq!(r.headers["content-type"], "application/json");
    let body = r.json();
    assert_eq!(r.headers["kanta-event-id"], body["id"].as_str().expect("an id"));
    assert_eq!(r.headers["kanta-event-type"], body["type"].as_str().expect("a type"));
    body
}

async fn stage_changes_and_segment_entries_arrive_signed_in_order_as_subscribed(db: TestDb) {
    let store = db.store.as_ref();
    let segment = shop(store).await;
    let all = Receiver::start(Mode::Answer(200)).await;
    let narrow = Receiver::start(Mode::Answer(204)).await;
    let dispatcher = Dispatcher::new(db.store.clone()).expect("a dispatcher");
    let everything = endpoint("everything", &all.url, Subscription::default(), quick());
    let entries = Subscription {
        events: vec![EventType::SegmentEntered, EventType::StageChanged],
        segments: Some(vec!["repeaters".into()]),
        stages: Some(vec!["lost".into()]),
    };
    let crm = endpoint("crm", &narrow.url, entries, quick());
    // Registered now: history (the first stages, the baseline) is not sent.
    for e in [&everything, &crm] {
        assert_eq!(dispatcher.tick(e).await.expect("a tick"), kanta_webhooks::Tick::default());
    }
    events(store).await;

    let tick = dispatcher.tick(&everything).await.expect("a tick");
    let bodies: Vec<Value> = all.received().iter().map(verified).collect();
    let summary: Vec<(String, String, String)> = bodies
        .iter()
        .map(|b| {
            let d = &b["data"];
            let what = d["to"].as_str().or(d["segment"].as_str()).unwrap_or_default();
            (
                b["type"].as_str().unwrap_or_default().into(),
                d["customer"].as_str().unwrap_or_default().into(),
                what.into(),
            )
        })
        .collect();
    let stage_changes = summary.iter().filter(|s| s.0 == "customer.stage_changed").count();
    assert_eq!(stage_changes, 4, "every customer's stage moved in a year: {summary:?}");
    let entered: Vec<&str> = summary.iter().filter(|s| s.0 == "segment.entered").map(|s| s.1.as_str()).collect();
    assert_eq!(entered, ["bob", "cy"], "{summary:?}");
    assert_eq!((tick.queued, tick.delivered, tick.failed), (6, 6, None));
    let ids: Vec<&str> = bodies.iter().filter_map(|b| b["id"].as_str()).collect();
    assert!(
        ids[..4].iter().all(|i| i.starts_with("stage_change:"))
            && ids[4..].iter().all(|i| i.starts_with("segment_transition:")),
        "{ids:?}"
    );
    let first = &bodies[4];
    assert_eq!(first["data"]["segment_id"], segment);
    // Every body carries the customer's latest scores; a stage change's `to` is its stage.
    assert!(bodies.iter().all(|b| b["data"]["scores"]["value_tier"].is_string() && b["data"]["profile"].is_object()));
    assert!(bodies[..4].iter().all(|b| b["data"]["scores"]["stage"] == b["data"]["to"]), "{bodies:?}");
    assert_eq!(first["created_at"], kanta_store::rfc3339(MARCH + 400 * DAY));

    // The narrow endpoint gets the entries and the stage changes into `lost` only.
    dispatcher.tick(&crm).await.expect("a tick");
    let got: Vec<Value> = narrow.received().iter().map(verified).collect();
    assert!(got.iter().all(|b| b["type"] == "segment.entered" || b["data"]["to"] == "lost"), "{got:?}");
    let lost = bodies.iter().filter(|b| b["data"]["to"] == "lost").count();
    assert_eq!(got.len(), 2 + lost);

    // Nothing new: nothing sent again; the log holds each delivery once.
    assert_eq!(dispatcher.tick(&everything).await.expect("a tick").delivered, 0);
    assert_eq!(all.received().len(), 6);
    let (log, _) = store.deliveries(Some("everything"), None, 100).await.expect("the log");
    assert!(log.iter().all(|d| d.state == "delivered" && d.attempts == 1 && d.last_status == Some(200)), "{log:?}");
    assert_eq!(
        log.iter().map(|d| d.payload.as_bytes()).collect::<Vec<_>>(),
        all.received().iter().map(|r| &r.body[..]).collect::<Vec<_>>()
    );
}

async fn failures_back_off_give_up_and_pause_until_resumed(db: TestDb) {
    let store = db.store.as_ref();
    shop(store).await;
    let receiver = Receiver::start(Mode::Answer(503)).await;
    // The backoffs are decided by the dispatcher's clock: moved by hand, to the microsecond,
    // instead of slept through.
    let clock =
        std::sync::Arc::new(kanta_domain::ManualClock::new(kanta_domain::Clock::now(&kanta_domain::SystemClock)));
    let dispatcher = Dispatcher::new(db.store.clone()).expect("a dispatcher").with_clock(clock.clone());
    let policy = Policy {
        max_attempts: 2,
        pause_after: 3,
        backoff: Duration::from_secs(30),
        backoff_max: Duration::from_secs(120),
        ..quick()
    };
    let flaky = endpoint("flaky", &receiver.url, Subscription::default(), policy);
    dispatcher.tick(&flaky).await.expect("registers");
    events(store).await;

    // First failure: one request, then the endpoint backs off for 30 s.
    let tick = dispatcher.tick(&flaky).await.expect("a tick");
    assert_eq!((tick.queued, tick.delivered), (6, 0));
    let (failed_id, why) = tick.failed.expect("a failure");
    assert_eq!(why, "HTTP 503 Service Unavailable");
    assert_eq!(dispatcher.tick(&flaky).await.expect("a tick").failed, None, "backing off: no attempt");
    assert_eq!(receiver.received().len(), 1);
    let state = &store.webhook_endpoints().await.expect("endpoints")[0];
    assert_eq!((state.failures, state.pending), (1, 6));
    assert!(state.retry_at.is_some());
    clock.advance(Duration::from_micros(29_999_999));
    assert_eq!(dispatcher.tick(&flaky).await.expect("a tick").failed, None, "a microsecond early");
    assert_eq!(receiver.received().len(), 1);

    // Second failure of the same delivery: given up (max_attempts 2); the next one is tried
    // after a longer wait (60 s), and a third failure in a row pauses the endpoint.
    clock.advance(Duration::from_micros(1));
    let tick = dispatcher.tick(&flaky).await.expect("a tick");
    assert_eq!((tick.failed.map(|f| f.0), tick.given_up), (Some(failed_id), 1));
    clock.advance(Duration::from_secs(59));
    assert_eq!(dispatcher.tick(&flaky).await.expect("a tick").failed, None, "60 s backoff after two failures");
    clock.advance(Duration::from_secs(1));
    let tick = dispatcher.tick(&flaky).await.expect("a tick");
    assert!(
        tick.paused.as_deref().is_some_and(|p| p.starts_with("3 failed attempts in a row; the last: HTTP 503")),
        "{tick:?}"
    );
    assert_eq!(receiver.received().len(), 3);

    // Paused: events still queue, nothing is sent, even long after the longest backoff.
    receiver.set(Mode::Answer(200));
    clock.advance(Duration::from_secs(24 * 3600));
    let tick = dispatcher.tick(&flaky).await.expect("a tick");
    assert_eq!((tick.delivered, tick.paused.is_some()), (0, true));
    assert_eq!(receiver.received().len(), 3);
    let state = &store.webhook_endpoints().await.expect("endpoints")[0];
    assert_eq!((state.pending, state.failed, state.failures), (5, 1, 3));

    // Resumed with the failed delivery queued again: everything arrives, in order.
    assert!(store.resume_webhook("flaky", true).await.expect("resume"));
    let tick = dispatcher.tick(&flaky).await.expect("a tick");
    assert_eq!((tick.delivered, tick.failed), (6, None));
    let (log, _) = store.deliveries(Some("flaky"), None, 100).await.expect("the log");
    assert!(log.iter().all(|d| d.state == "delivered"), "{log:?}");
    let attempts: Vec<i64> = log.iter().map(|d| d.attempts).collect();
    assert_eq!(
        attempts,
        [1, 2, 1, 1, 1, 1],
        "the retried delivery restarted its count; the paused one had one failure"
    );
    let sent: Vec<String> =
        receiver.received()[3..].iter().map(|r| r.json()["id"].as_str().unwrap_or_default().to_string()).collect();
    let logged: Vec<&str> = log.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(sent, logged, "delivered in queue order");
}

async fn redirects_are_not_followed_and_unreachable_endpoints_are_failures(db: TestDb) {
    let store = db.store.as_ref();
    shop(store).await;
    let elsewhere = Receiver::start(Mode::Answer(200)).await;
    let redirecting = Receiver::start(Mode::RedirectTo(elsewhere.port)).await;
    let dispatcher = Dispatcher::new(db.store.clone()).expect("a dispatcher");
    let moved = endpoint("moved", &redirecting.url, Subscription::default(), quick());
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("address").port()
    };
    // With credentials in the URL: neither the store nor the failure reason may show them.
    let url = format!("http://kanta:pw-hunter2@127.0.0.1:{closed}/x?api_key=k-123&region=eu");
    let gone = endpoint("gone", &url, Subscription::default(), quick());
    for e in [&moved, &gone] {
        dispatcher.tick(e).await.expect("registers");
    }
    events(store).await;

    let tick = dispatcher.tick(&moved).await.expect("a tick");
    assert_eq!(tick.failed.map(|f| f.1), Some("HTTP 307 Temporary Redirect (redirects are not followed)".to_string()));
    assert_eq!(redirecting.received().len(), 1);
    assert_eq!(elsewhere.received().len(), 0, "the unconfigured address got nothing");
    let tick = dispatcher.tick(&gone).await.expect("a tick");
    let why = tick.failed.expect("a failure").1;
    assert!(why.contains("onnect"), "{why}");
    assert!(!why.contains("hunter2") && !why.contains("k-123"), "{why}");
    let (log, _) = store.deliveries(Some("gone"), None, 1).await.expect("the log");
    assert_eq!((log[0].last_status, log[0].state.as_str()), (None, "pending"));
    let known = store.webhook_endpoints().await.expect("endpoints");
    let gone = known.iter().find(|e| e.name == "gone").expect("registered");
    assert_eq!(gone.url, format!("http://kanta:***@127.0.0.1:{closed}/x?api_key=***&region=eu"));
}

/// A stand-in resolver: `*.test` names answer from a table, without DNS.
struct Names(Vec<(&'static str, Vec<std::net::IpAddr>)>);

impl kanta_webhooks::destination::Lookup for Names {
    fn lookup(&self, host: String) -> kanta_webhooks::destination::LookupFuture {
        let found = self.0.iter().find(|(name, _)| *name == host).map(|(_, addrs)| addrs.clone());
        Box::pin(async move { found.ok_or_else(|| std::io::Error::other(format!("no such test name {host}"))) })
    }
}

async fn names_that_resolve_to_private_addresses_are_refused_without_connecting(db: TestDb) {
    let store = db.store.as_ref();
    shop(store).await;
    let receiver = Receiver::start(Mode::Answer(200)).await;
    let ip = |text: &str| text.parse::<std::net::IpAddr>().expect("an address");
    // Every refused answer here is one that would reach this machine anyway (0.0.0.0 is "this
    // host"), so even a broken guard would send nothing off it; the resolver's unit tests
    // refuse 169.254.169.254 and the private ranges without connecting at all.
    let names = Names(vec![("metadata.test", vec![ip("0.0.0.0")]), ("crm.test", vec![ip("0.0.0.0"), ip("127.0.0.1")])]);
    let dispatcher = Dispatcher::with_lookup(db.store.clone(), Arc::new(names)).expect("a dispatcher");
    let port = receiver.port;
    let metadata = endpoint("metadata", &format!("http://metadata.test:{port}/h"), Subscription::default(), quick());
    let crm = endpoint("crm", &format!("http://crm.test:{port}/h"), Subscription::default(), quick());
    // A literal private IP is refused when configured; one that got past (allowed, then not)
    // is refused again before sending.
    let allowed = Policy { allow_private: true, ..quick() };
    let mut literal = endpoint("literal", &format!("http://0.0.0.0:{port}/h"), Subscription::default(), allowed);
    literal.policy.allow_private = false;
    for e in [&metadata, &crm, &literal] {
        dispatcher.tick(e).await.expect("registers");
    }
    events(store).await;

    let tick = dispatcher.tick(&metadata).await.expect("a tick");
    let why = tick.failed.expect("a failure").1;
    assert!(
        why.contains(
            "refused to connect: `metadata.test` resolves only to addresses webhooks may not reach: \
             0.0.0.0 (unspecified (0.0.0.0/8)); set allow_private = true"
        ),
        "{why}"
    );
    let (log, _) = store.deliveries(Some("metadata"), None, 1).await.expect("the log");
    assert_eq!(
        (log[0].attempts, log[0].last_error.as_deref()),
        (1, Some(why.as_str())),
        "recorded as a failed attempt"
    );
    let tick = dispatcher.tick(&literal).await.expect("a tick");
    let why = tick.failed.expect("a failure").1;
    assert!(why.starts_with("refused to connect: 0.0.0.0 is unspecified"), "{why}");
    assert!(receiver.received().is_empty(), "nothing arrived");

    // A name with a refused and a loopback address: only the loopback one is used.
    let tick = dispatcher.tick(&crm).await.expect("a tick");
    assert_eq!((&tick.failed, tick.delivered > 0), (&None, true), "{tick:?}");
    assert_eq!(receiver.received().len() as u64, tick.delivered);
}

async fn a_hanging_endpoint_blocks_neither_scoring_nor_other_endpoints(db: TestDb) {
    let store = db.store.clone();
    shop(store.as_ref()).await;
    let hanging = Receiver::start(Mode::Hang).await;
    let healthy = Receiver::start(Mode::Answer(200)).await;
    let dispatcher = Dispatcher::new(store.clone()).expect("a dispatcher");
    let slow = Policy { timeout: Duration::from_secs(60), ..quick() };
    let endpoints = vec![
        endpoint("hanging", &hanging.url, Subscription::default(), slow),
        endpoint("healthy", &healthy.url, Subscription::default(), quick()),
    ];
    for e in &endpoints {
        dispatcher.tick(e).await.expect("registers");
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tasks = kanta_webhooks::dispatch::spawn(&dispatcher, endpoints, &stop, |_, _| {});
    events(store.as_ref()).await;

    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while hanging.received().is_empty() || healthy.received().len() < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the healthy endpoint got its 6 deliveries while the other hangs");
    // A request is in flight to the hanging endpoint; scoring and a segment refresh still run.
    let job = kanta_jobs::ScoreJob::default();
    let cycle = tokio::time::timeout(
        Duration::from_secs(20),
        kanta_jobs::schedule::cycle(store.as_ref(), &job, MARCH + 800 * 86_400_000_000),
    )
    .await
    .expect("scoring finishes while a webhook request hangs");
    cycle.score.expect("scoring");
    // That cycle, 400 days on, moves bob and cy once more (lapsing → lost): two more events,
    // which the healthy endpoint delivers while the first request still hangs. (The loops
    // run concurrently, so wait for them rather than read the counters at once.)
    let delivered = || async {
        let state = store.webhook_endpoints().await.expect("endpoints");
        state.iter().map(|e| (e.name.clone(), e.delivered)).collect::<Vec<_>>()
    };
    let settled = tokio::time::timeout(Duration::from_secs(20), async {
        while delivered().await.iter().find(|(n, _)| n == "healthy").map(|(_, d)| *d) != Some(8) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let state = delivered().await;
    assert!(settled.is_ok(), "the healthy endpoint delivered the new events too: {state:?}");
    assert_eq!(state, [("hanging".to_string(), 0), ("healthy".to_string(), 8)]);
    assert_eq!(hanging.received().len(), 1, "one request, still unanswered");
    assert_eq!(healthy.received().len(), 8);
    let moved: Vec<(String, String, String)> = healthy.received()[6..]
        .iter()
        .map(|r| {
            let d = &r.json()["data"];
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("customer"), s("from"), s("to"))
        })
        .collect();
    let moved: Vec<(&str, &str, &str)> = moved.iter().map(|(c, f, t)| (c.as_str(), f.as_str(), t.as_str())).collect();
    assert_eq!(moved, [("bob", "lapsing", "lost"), ("cy", "lapsing", "lost")]);
    stop_tx.send(true).expect("stop");
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(5), t).await.expect("the loops stop").expect("no panic");
    }
}
