//! `GET /metrics` in the Prometheus text format: request and record counters, row counts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kanta_store::Scope;

use crate::error::ApiError;
use crate::{AppState, auth};

/// Counters since the server started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    records: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// Count a finished request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
    }

    /// Count records of `kind` with `outcome` (created, updated, unchanged, rejected).
    pub fn records(&self, kind: &'static str, outcome: &'static str, n: u64) {
        if let Ok(mut m) = self.records.lock() {
            *m.entry((kind, outcome)).or_default() += n;
        }
    }
}

/// The method's label in `kanta_http_requests_total`: the standard methods by name, anything
/// else `other`. A client may send any token as a method (`FOO /v1/orders`), and each distinct
/// label is a new series kept for the life of the process: unauthenticated requests must not be
/// able to grow it without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// `GET /metrics` (scope `read`).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let counts = state.store.counts().await?;
    let mut out = String::new();
    out.push_str("# HELP kanta_http_requests_total HTTP requests by method, route and status.\n");
    out.push_str("# TYPE kanta_http_requests_total counter\n");
    if let Ok(m) = state.metrics.requests.lock() {
        for ((method, route, status), n) in m.iter() {
            let _ = writeln!(
                out,
                "kanta_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP kanta_records_total Ingested records by kind and outcome.\n");
    out.push_str("# TYPE kanta_records_total counter\n");
    if let Ok(m) = state.metrics.records.lock() {
        for ((kind, outcome), n) in m.iter() {
            let _ = writeln!(out, "kanta_records_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    out.push_str("# HELP kanta_store_rows Rows in the store by table.\n");
    out.push_str("# TYPE kanta_store_rows gauge\n");
    for (table, n) in [
        ("customers", counts.customers),
        ("orders", counts.orders),
        ("events", counts.events),
        ("feedback", counts.feedback),
    ] {
        let _ = writeln!(out, "kanta_store_rows{{table=\"{table}\"}} {n}");
    }
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}
