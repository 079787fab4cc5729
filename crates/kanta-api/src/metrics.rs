//! `GET /metrics` in the Prometheus text format: request and record counters, row counts, and
//! the journeys' numbers.
//!
//! The journeys' numbers (messages by journey, step and status, the outbox, the messages in
//! doubt, active runs) are read from the store on each scrape
//! (`JourneyStore::journey_metrics`), not counted in the process: every server of a store
//! reports the same truth, whichever of them sent the messages.

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

/// `GET /metrics` (scope `read`): `kanta_http_requests_total`, `kanta_records_total`,
/// `kanta_store_rows`, and the journeys' `kanta_journey_messages{journey,step,status}`,
/// `kanta_journey_outbox_depth`, `kanta_journey_outbox_due`, `kanta_journey_oldest_due_seconds`,
/// `kanta_journey_messages_in_doubt`, `kanta_journey_feed_depth` and
/// `kanta_journey_active_runs{journey}`.
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
    journeys(&mut out, &state.store.journey_metrics(state.now()).await?);
    Ok(([("content-type", "text/plain; version=0.0.4")], out).into_response())
}

/// The journeys' gauges.
fn journeys(out: &mut String, m: &kanta_store::journey::JourneyMetrics) {
    out.push_str("# HELP kanta_journey_messages Journey messages by journey, step and status (all versions).\n");
    out.push_str("# TYPE kanta_journey_messages gauge\n");
    for c in &m.messages {
        let _ = writeln!(
            out,
            "kanta_journey_messages{{journey=\"{}\",step=\"{}\",status=\"{}\"}} {}",
            label(&c.journey),
            label(&c.step),
            c.status.as_str(),
            c.count
        );
    }
    let gauges = [
        (
            "kanta_journey_outbox_depth",
            "Journey messages waiting to be sent (pending or retry), due or not.",
            m.outbox_depth,
        ),
        ("kanta_journey_outbox_due", "Journey messages due now and not yet claimed (pending or retry).", m.outbox_due),
        (
            "kanta_journey_messages_in_doubt",
            "Journey messages in doubt: they may have gone; resent only by hand.",
            m.in_doubt,
        ),
        (
            "kanta_journey_feed_depth",
            "New orders, events and transitions the journey engine has yet to handle.",
            m.feed_depth,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    let age = m.oldest_due_age.map_or(0.0, |d| d.as_secs_f64());
    out.push_str("# HELP kanta_journey_oldest_due_seconds How long the oldest due journey message has waited (0: none is due).\n");
    out.push_str("# TYPE kanta_journey_oldest_due_seconds gauge\n");
    let _ = writeln!(out, "kanta_journey_oldest_due_seconds {age}");
    out.push_str("# HELP kanta_journey_active_runs Active runs by journey (all versions).\n");
    out.push_str("# TYPE kanta_journey_active_runs gauge\n");
    for (journey, n) in &m.active_runs {
        let _ = writeln!(out, "kanta_journey_active_runs{{journey=\"{}\"}} {n}", label(journey));
    }
}

/// A label value escaped as the text format requires (`\\`, `\"`, `\n`). Journey names and step
/// ids are slugs today; the escaping keeps the output valid should that rule ever loosen.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kanta_store::journey::{JourneyMetrics, MessageCount, MessageStatus};

    use super::*;

    #[test]
    fn journey_gauges_are_written_in_the_text_format_with_escaped_labels() {
        let metrics = JourneyMetrics {
            messages: vec![MessageCount {
                journey: "wel\"come".into(),
                step: "0".into(),
                status: MessageStatus::InDoubt,
                count: 2,
            }],
            outbox_depth: 3,
            outbox_due: 1,
            oldest_due_age: Some(Duration::from_millis(2_500)),
            in_doubt: 2,
            active_runs: vec![("a".into(), 0), ("b".into(), 4)],
            feed_depth: 5,
        };
        let mut out = String::new();
        journeys(&mut out, &metrics);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "kanta_journey_messages{journey=\"wel\\\"come\",step=\"0\",status=\"in_doubt\"} 2",
                "kanta_journey_outbox_depth 3",
                "kanta_journey_outbox_due 1",
                "kanta_journey_messages_in_doubt 2",
                "kanta_journey_feed_depth 5",
                "kanta_journey_oldest_due_seconds 2.5",
                "kanta_journey_active_runs{journey=\"a\"} 0",
                "kanta_journey_active_runs{journey=\"b\"} 4",
            ]
        );
        assert!(out.contains("# TYPE kanta_journey_outbox_due gauge\n"), "{out}");
    }
}
