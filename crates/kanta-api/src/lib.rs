//! kanta's HTTP API: ingestion, the customer 360 view, export and erasure, OpenAPI, metrics.
//!
//! One axum [`router`] over an [`AppState`] that holds the [`Storage`] trait object, so the
//! same handlers serve SQLite and PostgreSQL. Handlers are thin: parsing and validation live in
//! `kanta_store::record`, persistence in the store, the summary in `kanta_core`.
//!
//! Contract (README "HTTP API"): JSON under `/v1`; `Authorization: Bearer TOKEN` on every call
//! except `/healthz` and `/openapi.json`; batches of up to 10,000 records are atomic (422 lists
//! every bad record) unless `?partial=true`; writes are idempotent by natural id and by an
//! `Idempotency-Key` header; errors are `{"error": {"status", "code", "message", "records"?}}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kanta_domain::{Clock, SystemClock, TimeBounds, TimeRange};
use kanta_store::Storage;

mod auth;
mod customers;
pub mod error;
mod inbound;
mod ingest;
mod insights;
mod journeys;
mod metrics;
mod openapi;
mod scores;
mod segments;
pub mod summary;
mod unsubscribe;
mod webhooks;

pub use error::ApiError;
pub use inbound::{DEFAULT_TIMESTAMP_HEADER, InboundAuth, InboundHook, InboundKind, TOLERANCE_SECONDS};
pub use openapi::ApiDoc;
pub use segments::members_csv;

/// Largest request body: a full batch of 10,000 orders with several lines each fits well
/// inside; anything larger is refused with 413 before it is read into memory.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Soft bounces that suppress an address unless the settings say otherwise.
pub const DEFAULT_SOFT_BOUNCE_LIMIT: u32 = 3;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Request and record counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Configured inbound webhooks (`POST /v1/hooks/{name}`).
    pub inbound: Arc<Vec<InboundHook>>,
    /// The clock: the accepted time range of ingested facts and the 360 view's `as_of` are
    /// measured from it.
    pub clock: Arc<dyn Clock>,
    /// The configured bounds on ingested times (orders, events, feedback, consent).
    pub time_bounds: TimeBounds,
    /// How long a response to an `Idempotency-Key` is replayed; older ones are deleted.
    pub idempotency_ttl: Duration,
    /// Soft bounces of an address that put it on the suppression list (`POST /v1/bounces`).
    pub soft_bounce_limit: u32,
    /// Verifies the tokens of unsubscribe links (`/unsubscribe/{token}`); without it (no
    /// `[email]` secret configured) every link is refused as invalid.
    pub unsubscribe_key: Option<kanta_mail::UnsubscribeKey>,
    /// Wakes the journey engine running in the same process after new orders or events were
    /// written (they are in the store's journey feed; without it the engine sees them at its
    /// next tick).
    pub journey_nudge: Option<Arc<tokio::sync::Notify>>,
}

impl AppState {
    /// State over `store`.
    pub fn new(store: Arc<dyn Storage>) -> AppState {
        AppState {
            store,
            metrics: Arc::default(),
            inbound: Arc::default(),
            clock: Arc::new(SystemClock),
            time_bounds: TimeBounds::default(),
            idempotency_ttl: kanta_store::IDEMPOTENCY_TTL,
            soft_bounce_limit: DEFAULT_SOFT_BOUNCE_LIMIT,
            unsubscribe_key: None,
            journey_nudge: None,
        }
    }

    /// Nudging the journey engine after writes of new orders and events.
    pub fn with_journey_nudge(mut self, nudge: Arc<tokio::sync::Notify>) -> AppState {
        self.journey_nudge = Some(nudge);
        self
    }

    /// Suppressing an address after `limit` soft bounces (default [`DEFAULT_SOFT_BOUNCE_LIMIT`]).
    pub fn with_soft_bounce_limit(mut self, limit: u32) -> AppState {
        self.soft_bounce_limit = limit;
        self
    }

    /// Verifying unsubscribe links with `key`.
    pub fn with_unsubscribe_key(mut self, key: kanta_mail::UnsubscribeKey) -> AppState {
        self.unsubscribe_key = Some(key);
        self
    }

    /// Replaying responses to an `Idempotency-Key` for `ttl` (default
    /// [`kanta_store::IDEMPOTENCY_TTL`], a day).
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> AppState {
        self.idempotency_ttl = ttl;
        self
    }

    /// The current time by the state's clock, in microseconds since the epoch: the time every
    /// write, audit entry and expiry is stamped with, so that what is stored and what is
    /// compared against it (inbound replay windows, idempotency expiry) share one clock.
    pub(crate) fn now(&self) -> kanta_domain::Timestamp {
        self.clock.now()
    }

    /// [`AppState::now`] in microseconds, for the store calls that still take them.
    pub(crate) fn now_micros(&self) -> i64 {
        self.now().micros()
    }

    /// The current time (µs) and the time before which remembered responses have expired.
    pub(crate) fn idempotency_window(&self) -> (i64, i64) {
        let now = self.now_micros();
        let ttl = i64::try_from(self.idempotency_ttl.as_micros()).unwrap_or(i64::MAX);
        (now, now.saturating_sub(ttl))
    }

    /// With this clock (tests move a [`kanta_domain::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.clock = clock;
        self
    }

    /// With these bounds on ingested times.
    pub fn with_time_bounds(mut self, bounds: TimeBounds) -> AppState {
        self.time_bounds = bounds;
        self
    }

    /// The times accepted now.
    pub(crate) fn accepted_times(&self) -> TimeRange {
        self.time_bounds.at(self.clock.now())
    }

    /// With these inbound hooks.
    pub fn with_inbound(mut self, hooks: Vec<InboundHook>) -> AppState {
        self.inbound = Arc::new(hooks);
        self
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/customers", post(ingest::customers).get(customers::list))
        .route("/v1/orders", post(ingest::orders))
        .route("/v1/events", post(ingest::events))
        .route("/v1/feedback", post(ingest::feedback))
        .route("/v1/hooks/{name}", post(inbound::receive))
        .route("/v1/customers/{id}", get(customers::view).delete(customers::erase))
        .route("/v1/customers/{id}/export", get(customers::export))
        .route("/v1/audit", get(customers::audit))
        .route("/v1/segments", post(segments::create).get(segments::list))
        .route("/v1/segments/preview", post(segments::preview))
        .route("/v1/segments/{id}", get(segments::show).delete(segments::delete))
        .route("/v1/segments/{id}/refresh", post(segments::refresh))
        .route("/v1/segments/{id}/customers", get(segments::customers))
        .route("/v1/segments/{id}/transitions", get(segments::transitions))
        .route("/v1/scores/runs", get(scores::runs))
        .route("/v1/insights/feedback", get(insights::feedback))
        .route("/v1/webhooks", get(webhooks::list))
        .route("/v1/webhooks/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{name}/resume", post(webhooks::resume))
        .route("/v1/journeys", post(journeys::apply).get(journeys::list))
        .route("/v1/journeys/{name}", get(journeys::show))
        .route("/v1/journeys/{name}/pause", post(journeys::pause))
        .route("/v1/journeys/{name}/resume", post(journeys::resume))
        .route("/v1/journeys/{name}/runs", get(journeys::runs))
        .route("/v1/journeys/{name}/report", get(journeys::report))
        .route("/v1/journeys/{name}/versions/{version}", get(journeys::version))
        .route("/v1/bounces", post(journeys::bounce))
        .route("/unsubscribe/{token}", get(unsubscribe::page).post(unsubscribe::confirm))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::spec))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Limits on connections, so that slow or idle clients cannot hold the server (issue 16: half-sent
/// headers, a stalled body, one header byte every 5 s and idle keep-alive connections all stayed
/// open past 150 s, and 20,000 of them exhausted the file descriptors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's headers must be complete within this time of the connection opening or of
    /// the previous response; the same timer closes an idle keep-alive connection (hyper starts
    /// it when the connection waits for a request's first byte). 408-free: the connection is
    /// simply closed.
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this time of its headers (408 otherwise).
    pub body_timeout: Duration,
    /// Connections open at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// 10 s for headers (and idle keep-alive), 30 s for a body, 512 connections.
    fn default() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then finish the requests in flight
/// (up to `grace`) before returning. [`HttpLimits::default`] applies.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, grace, HttpLimits::default()).await
}

/// [`serve`] with other [`HttpLimits`].
///
/// The accept loop is written here rather than taken from `axum::serve`, which does not expose
/// hyper's header timeout: each connection is served by hyper's HTTP/1 connection with a timer,
/// holds one permit of the connection cap while it lives, and is asked to finish gracefully
/// when shutdown starts.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: HttpLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let router = router.layer(axum::middleware::from_fn_with_state(limits.body_timeout, read_body_in_time));
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    // Dropped when shutdown starts: every connection task sees it and finishes gracefully.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the cap: closed at once, so the file descriptor is back immediately.
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stopping = stopping_rx.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(permit);
        });
        // Reap finished connections so the set does not grow with the server's lifetime.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    drop(stopping_tx);
    // Once shutdown starts, in-flight requests get `grace` to finish.
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("kanta serve: requests still running after {grace:?}; stopping anyway");
        connections.abort_all();
    }
    Ok(())
}

/// Reads the whole request body within `limit` of the headers, before any handler runs (every
/// handler wants the whole body anyway): a client that stalls or drips its body gets 408, a
/// body over [`BODY_LIMIT`] 413.
async fn read_body_in_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough to know it is too large; the extractors' own limit then
    // answers 413 with the usual message.
    match tokio::time::timeout(limit, axum::body::to_bytes(body, BODY_LIMIT + 1)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => {
            ApiError::TooLarge(format!("the body is larger than the limit of {BODY_LIMIT} bytes")).into_response()
        }
        Err(_) => ApiError::RequestTimeout(limit).into_response(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise. No token needed.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The server and its database are up", body = Object),
              (status = 503, description = "The database does not answer", body = error::ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok", "backend": state.store.backend()})).into_response(),
        Err(e) => {
            let (_, mut body) = ApiError::Store(e).body();
            body.error.status = 503;
            body.error.message = "the database does not answer".into();
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /openapi.json".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let response = next.run(request).await;
    state.metrics.request(metrics::method_label(&method), &route, response.status().as_u16());
    response
}

/// A handler's query parameters; a query it does not accept is a 400 naming the problem.
fn query_params<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| ApiError::BadRequest(format!("query string: {e}")))
}

/// The `Idempotency-Key` header, if any (1–255 visible ASCII characters).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::BadRequest("Idempotency-Key must be 1–255 visible ASCII characters".into()))?;
    Ok(Some(key.to_string()))
}
