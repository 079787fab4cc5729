//! `POST /v1/customers|orders|events|feedback`: batches of records.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kanta_store::record::{
    Batch, BatchError, CustomerInput, EventInput, FeedbackInput, OrderInput, RecordError, parse_batch,
};
use kanta_store::{Customer, Event, Feedback, Order, Scope, StoredResponse, WriteBatch, WriteCounts};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::{AppState, auth, idempotency_key};

/// Query parameters of the ingestion calls.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Store the valid records and return the rejected ones, instead of rejecting the batch.
    pub partial: Option<bool>,
}

/// What an ingestion call did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Valid records in the batch.
    pub accepted: u64,
    /// New records.
    pub created: u64,
    /// Existing records that changed.
    pub updated: u64,
    /// Existing records posted again unchanged.
    pub unchanged: u64,
    /// Customers created because a record named an unknown customer id.
    pub customers_created: u64,
    /// With `?partial=true`: the invalid records, not stored.
    pub rejected: Vec<RecordError>,
}

/// Create or update customers.
#[utoipa::path(post, path = "/v1/customers", tag = "ingest", request_body = Vec<CustomerInput>,
    params(IngestParams, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key")),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(ingest::<Customer>(&state, &headers, query, body).await)
}

/// Create or replace orders; unknown customers are created.
#[utoipa::path(post, path = "/v1/orders", tag = "ingest", request_body = Vec<OrderInput>,
    params(IngestParams, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key")),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(ingest::<Order>(&state, &headers, query, body).await)
}

/// Store events; unknown customers are created.
#[utoipa::path(post, path = "/v1/events", tag = "ingest", request_body = Vec<EventInput>,
    params(IngestParams, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key")),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(ingest::<Event>(&state, &headers, query, body).await)
}

/// Create or replace feedback; unknown customers are created.
#[utoipa::path(post, path = "/v1/feedback", tag = "ingest", request_body = Vec<FeedbackInput>,
    params(IngestParams, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key")),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(ingest::<Feedback>(&state, &headers, query, body).await)
}

/// A finished response: status, JSON body, and whether it was replayed.
struct Outcome {
    status: StatusCode,
    body: String,
    replayed: bool,
}

fn respond(result: Result<Outcome, ApiError>) -> Response {
    match result {
        Ok(o) => {
            let mut response = (o.status, [("content-type", "application/json")], o.body).into_response();
            if o.replayed {
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The request's identity for an idempotency key: a key reused with another body is an error.
fn request_hash(kind: &str, query: Option<&str>, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(query.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(body);
    kanta_store::token::hex(&h.finalize())
}

async fn ingest<T: WriteBatch>(
    state: &AppState,
    headers: &HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Outcome, ApiError> {
    let token = auth::authorize(state, headers, Scope::Ingest).await?;
    let params: IngestParams = crate::query_params(query.as_deref())?;
    let body = body.map_err(ApiError::from)?;
    let key = idempotency_key(headers)?;
    let fingerprint = request_hash(T::KIND, query.as_deref(), &body);
    let (now, expired_before) = state.idempotency_window();
    if let Some(key) = &key
        && let Some(stored) = state.store.idempotent_response(token.id, key, expired_before).await?
    {
        if stored.request_hash != fingerprint {
            return Err(ApiError::KeyReused);
        }
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        return Ok(Outcome { status, body: stored.body, replayed: true });
    }

    let outcome = match process::<T>(state, &body, params.partial.unwrap_or(false)).await {
        Ok(response) => Outcome { status: StatusCode::OK, body: json(&response), replayed: false },
        // A rejected batch is an answer too: the same key must give it again.
        Err(e @ ApiError::InvalidRecords(_)) => {
            let (status, body) = e.body();
            Outcome { status, body: json(&body), replayed: false }
        }
        Err(e) => return Err(e),
    };
    if let Some(key) = &key {
        let stored =
            StoredResponse { request_hash: fingerprint, status: outcome.status.as_u16(), body: outcome.body.clone() };
        // Tied to the customers the request names: erasing one deletes the response, which may
        // quote their email or phone.
        let customers = kanta_store::record::customer_ids::<T>(&body);
        state.store.remember_response(token.id, key, &stored, &customers, now, expired_before).await?;
    }
    Ok(outcome)
}

fn json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail; an empty object would be a visible symptom.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

async fn process<T: WriteBatch>(state: &AppState, body: &[u8], partial: bool) -> Result<IngestResponse, ApiError> {
    let Batch { valid, rejected } = parse_batch::<T>(body, state.accepted_times()).map_err(|e| match e {
        BatchError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    })?;
    let records: Vec<T> = valid.into_iter().map(|(_, r)| r).collect();
    write_checked(state, records, rejected, partial).await
}

/// Write checked records and count them: the shared end of the batch endpoints and the
/// inbound hooks. With rejected records and not `partial`, nothing is written (422).
pub(crate) async fn write_checked<T: WriteBatch>(
    state: &AppState,
    records: Vec<T>,
    rejected: Vec<RecordError>,
    partial: bool,
) -> Result<IngestResponse, ApiError> {
    let rejected = refuse_rejected::<T>(state, rejected, partial)?;
    let counts = if records.is_empty() {
        WriteCounts::default()
    } else {
        T::write_batch(state.store.as_ref(), &records, state.now()).await?
    };
    if counts.created > 0
        && let Some(nudge) = &state.journey_nudge
    {
        // New orders and events are in the journey feed now (same transaction): the engine
        // looks at once instead of at its next tick.
        nudge.notify_one();
    }
    Ok(counted::<T>(state, records.len(), counts, rejected))
}

/// 422 with every rejected record, unless there are none or the batch is `partial` (then the
/// rejected records are handed back for the response).
pub(crate) fn refuse_rejected<T: WriteBatch>(
    state: &AppState,
    rejected: Vec<RecordError>,
    partial: bool,
) -> Result<Vec<RecordError>, ApiError> {
    if !rejected.is_empty() && !partial {
        state.metrics.records(T::KIND, "rejected", rejected.len() as u64);
        return Err(ApiError::InvalidRecords(rejected));
    }
    Ok(rejected)
}

/// The response to `accepted` records written with `counts`, counted in the metrics.
pub(crate) fn counted<T: WriteBatch>(
    state: &AppState,
    accepted: usize,
    counts: WriteCounts,
    rejected: Vec<RecordError>,
) -> IngestResponse {
    let m = &state.metrics;
    m.records(T::KIND, "created", counts.created);
    m.records(T::KIND, "updated", counts.updated);
    m.records(T::KIND, "unchanged", counts.unchanged);
    m.records(T::KIND, "rejected", rejected.len() as u64);
    IngestResponse {
        accepted: accepted as u64,
        created: counts.created,
        updated: counts.updated,
        unchanged: counts.unchanged,
        customers_created: counts.customers_created,
        rejected,
    }
}
