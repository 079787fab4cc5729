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
mod metrics;
mod openapi;
mod scores;
mod segments;
pub mod snapshot;
mod webhooks;

pub use error::ApiError;
pub use inbound::{DEFAULT_TIMESTAMP_HEADER, InboundAuth, InboundHook, TOLERANCE_SECONDS};
pub use openapi::ApiDoc;

/// Largest request body: a full batch of 10,000 orders with several lines each fits well
/// inside; anything larger is refused with 413 before it is read into memory.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// The cached analysis behind the 360 view's summary.
    pub snapshots: Arc<snapshot::Snapshots>,
    /// Request and record counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Configured inbound webhooks (`POST /v1/hooks/{name}`).
    pub inbound: Arc<Vec<InboundHook>>,
    /// The clock that the accepted time range of ingested facts is measured from.
    pub clock: Arc<dyn Clock>,
    /// The configured bounds on ingested times (orders, events, feedback, consent).
    pub time_bounds: TimeBounds,
    /// How long a response to an `Idempotency-Key` is replayed; older ones are deleted.
    pub idempotency_ttl: Duration,
}

impl AppState {
    /// State over `store`.
    pub fn new(store: Arc<dyn Storage>) -> AppState {
        AppState {
            store,
            snapshots: Arc::default(),
            metrics: Arc::default(),
            inbound: Arc::default(),
            clock: Arc::new(SystemClock),
            time_bounds: TimeBounds::default(),
            idempotency_ttl: kanta_store::IDEMPOTENCY_TTL,
        }
    }

    /// Replaying responses to an `Idempotency-Key` for `ttl` (default
    /// [`kanta_store::IDEMPOTENCY_TTL`], a day).
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> AppState {
        self.idempotency_ttl = ttl;
        self
    }

    /// The current time (µs) and the time before which remembered responses have expired.
    pub(crate) fn idempotency_window(&self) -> (i64, i64) {
        let now = self.clock.now().micros();
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
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::spec))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` resolves, then finish the requests in flight
/// (up to `grace`) before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopped_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // Once shutdown starts, in-flight requests get `grace` to finish.
    let result = tokio::select! {
        r = server => r,
        () = async { let _ = stopped_rx.await; tokio::time::sleep(grace).await } => {
            eprintln!("kanta serve: requests still running after {grace:?}; stopping anyway");
            return Ok(());
        }
    };
    result.map_err(std::io::Error::other)?
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
