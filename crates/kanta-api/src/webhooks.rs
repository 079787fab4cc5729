//! Outbound webhooks as the store records them: endpoint health and the delivery log, and
//! resuming a paused endpoint. Endpoints themselves are configured in `kanta.toml`, never
//! through the API, so no API call can make kanta send data to a new address.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use kanta_store::{Delivery, EndpointState, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::customers::{decode_cursor, encode_cursor};
use crate::{ApiError, AppState, auth};

/// Every endpoint the dispatcher has seen (URLs with credentials masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    /// By name.
    pub endpoints: Vec<EndpointState>,
}

/// One page of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Oldest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of the delivery log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this endpoint's deliveries.
    pub endpoint: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Query of a resume.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResumeParams {
    /// Also queue the deliveries that were given up on again.
    pub retry_failed: Option<bool>,
}

/// Webhook endpoints with their delivery counts, failures in a row, backoff and pause.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = EndpointList), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<EndpointList>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    Ok(Json(EndpointList { endpoints: masked(state.store.webhook_endpoints().await?) }))
}

/// Endpoints with credentials in their URLs masked (the dispatcher stores them masked; rows
/// from before it did may not be).
fn masked(mut endpoints: Vec<EndpointState>) -> Vec<EndpointState> {
    for e in &mut endpoints {
        e.url = kanta_webhooks::mask_url(&e.url);
    }
    endpoints
}

/// The delivery log: every event queued for an endpoint, its body, state and latest attempt.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<DeliveryPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let params: DeliveryParams = crate::query_params(raw.as_deref())?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1–1000, not {limit}")));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let (deliveries, next) = state.store.deliveries(params.endpoint.as_deref(), after, limit).await?;
    Ok(Json(DeliveryPage { deliveries, next_cursor: next.map(encode_cursor) }))
}

/// Unpause an endpoint and clear its backoff (`?retry_failed=true` also queues its failed
/// deliveries again). Returns the endpoint's state.
#[utoipa::path(post, path = "/v1/webhooks/{name}/resume", tag = "webhooks", security(("bearer" = [])),
    params(("name" = String, Path, description = "The endpoint's configured name"), ResumeParams),
    responses((status = 200, body = EndpointState), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EndpointState>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let Path(name) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let params: ResumeParams = crate::query_params(raw.as_deref())?;
    let missing = || ApiError::NotFound(format!("no webhook endpoint `{name}`"));
    if !state.store.resume_webhook(&name, params.retry_failed.unwrap_or(false)).await? {
        return Err(missing());
    }
    let endpoints = masked(state.store.webhook_endpoints().await?);
    endpoints.into_iter().find(|e| e.name == name).map(Json).ok_or_else(missing)
}
