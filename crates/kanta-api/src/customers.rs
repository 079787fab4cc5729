//! Reading customers: the 360 view, the list, export, and erasure.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use kanta_store::{AuditEntry, CustomerRecord, Profile, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::summary::Summary;
use crate::{AppState, auth};

/// Recent events shown in the 360 view (the export has them all).
const VIEW_EVENTS: u32 = 50;
/// Default and largest page size of the customer list.
const PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// The customer 360 view: the customer's own facts live, the whole base's view of them from
/// the latest scoring run.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Profile, consent, orders, recent events, feedback, the scores of the latest scoring run
    /// (`scores`, null before the customer's first scoring) and the stage history.
    #[serde(flatten)]
    pub record: CustomerRecord,
    /// The customer's own summary, from their orders as of `as_of`, computed by `kanta
    /// analyze`'s code on every read (null without a purchase).
    pub summary: Option<Summary>,
    /// The day the summary's `T`, `days_since_last` and `revenue_12m` count to: today (UTC).
    pub as_of: String,
    /// When the latest completed scoring run finished, RFC 3339: what `scores` reflects (null
    /// before the first run).
    pub scored_at: Option<String>,
    /// The customer's journey runs, oldest first, each with the steps it passed and its messages
    /// (with their Message-ID and status).
    pub journeys: Vec<kanta_store::journey::CustomerRun>,
}

/// One page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    /// Customers, in a stable order.
    pub customers: Vec<Profile>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of the customer list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// A cursor is the position of the last customer seen, opaque to clients.
pub(crate) fn encode_cursor(position: i64) -> String {
    format!("c{position:x}")
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .strip_prefix('c')
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("`{cursor}` is not a cursor from this API")))
}

/// The customer 360 view: profile, consent, orders, recent events, feedback and summary.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The customer's id")),
    responses((status = 200, body = CustomerView), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<CustomerView>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let id = path_id(path)?;
    let record = state
        .store
        .customer(&id, VIEW_EVENTS)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer `{id}`")))?;
    let orders = state.store.customer_order_facts(&id).await?;
    let today = kanta_core::time::Timestamp::from(state.now()).day();
    let summary = crate::summary::summary(&orders, today);
    let scored_at = state.store.scored_at().await?;
    let journeys = state.store.customer_journeys(&id).await?;
    Ok(Json(CustomerView { record, summary, as_of: today.to_string(), scored_at, journeys }))
}

/// List customers with cursor pagination (stable under concurrent inserts).
#[utoipa::path(get, path = "/v1/customers", tag = "customers", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = CustomerPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<CustomerPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let (after, limit) = list_params(query.as_deref())?;
    let (customers, next) = state.store.list_customers(after, limit).await?;
    Ok(Json(CustomerPage { customers, next_cursor: next.map(encode_cursor) }))
}

fn list_params(query: Option<&str>) -> Result<(Option<i64>, u32), ApiError> {
    let params: ListParams = crate::query_params(query)?;
    let limit = params.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1–{MAX_PAGE}, not {limit}")));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok((after, limit))
}

/// The audit log of exports and erasures, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "customers", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let (after, limit) = list_params(query.as_deref())?;
    let (entries, next) = state.store.audit_entries(after, limit).await?;
    Ok(Json(AuditPage { entries, next_cursor: next.map(encode_cursor) }))
}

/// Everything stored about a customer (all events), for a data-subject access request.
/// Recorded in the audit log.
#[utoipa::path(get, path = "/v1/customers/{id}/export", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The customer's id")),
    responses((status = 200, body = CustomerRecord), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<CustomerRecord>, ApiError> {
    let token = auth::authorize(&state, &headers, Scope::Admin).await?;
    let id = path_id(path)?;
    let record =
        state.store.customer(&id, u32::MAX).await?.ok_or_else(|| ApiError::NotFound(format!("no customer `{id}`")))?;
    state.store.audit(Some(token.id), "export", Some(&id), state.now_micros()).await?;
    Ok(Json(record))
}

/// Erase a customer's personal data; orders stay, anonymised, for the aggregates. Recorded
/// in the audit log.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The customer's id")),
    responses((status = 204, description = "Erased"), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let token = auth::authorize(&state, &headers, Scope::Admin).await?;
    let id = path_id(path)?;
    // Expired idempotent responses are deleted at each idempotent write; an erasure deletes
    // them too, so that a quiet server does not keep them past their time.
    state.store.expire_responses(state.idempotency_window().1).await?;
    if state.store.erase_customer(&id, Some(token.id), state.now_micros()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no customer `{id}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        for p in [0, 1, 255, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(p)).ok(), Some(p));
        }
        for bad in ["", "c", "x10", "c-1", "czz", "1; DROP TABLE customers"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
