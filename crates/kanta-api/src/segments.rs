//! Segments: `POST /v1/segments/preview` (count and sample for an expression).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use kanta_store::{Profile, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::{AppState, auth};

/// Customers shown with a preview.
const SAMPLE: u32 = 20;

/// A segment expression (see the README's segment language).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// E.g. `orders >= 2 and days_since_last_order > 60 and consent.email`.
    pub expression: String,
}

/// How many customers an expression selects now, and the first few.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    /// Customers selected (erased ones excluded).
    pub count: i64,
    /// Up to 20 of them, in a stable order.
    pub sample: Vec<Profile>,
}

/// Count and sample the customers an expression selects, without saving it.
#[utoipa::path(post, path = "/v1/segments/preview", tag = "segments", request_body = PreviewRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PreviewResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PreviewResponse>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let body = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let request: PreviewRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body must be {{\"expression\": \"…\"}}: {e}")))?;
    let expr = kanta_segment::parse(&request.expression).map_err(ApiError::InvalidExpression)?;
    let now = kanta_store::now_micros();
    let count = state.store.segment_count(&expr, now).await?;
    let (sample, _) = state.store.segment_members(&expr, now, None, SAMPLE).await?;
    Ok(Json(PreviewResponse { count, sample }))
}
