//! `GET /v1/scores/runs`: the latest scoring runs with their fitted models. Each customer's
//! current scores and stage history are in the 360 view (`GET /v1/customers/{id}`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use kanta_store::{Scope, ScoreRunInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, auth};

/// Query of the runs list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsParams {
    /// How many runs, newest first (1–100, default 10).
    limit: Option<u32>,
}

/// The latest scoring runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunsPage {
    /// Newest first.
    pub runs: Vec<ScoreRunInfo>,
}

/// The latest scoring runs (`kanta score`, or the server's schedule), newest first: when, how
/// many customers and orders, the chosen model, its parameters and diagnostics, stage changes.
#[utoipa::path(get, path = "/v1/scores/runs", tag = "scores", security(("bearer" = [])), params(RunsParams),
    responses((status = 200, body = RunsPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<RunsPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let params: RunsParams = crate::query_params(query.as_deref())?;
    let limit = params.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1–100, not {limit}")));
    }
    Ok(Json(RunsPage { runs: state.store.score_runs(limit).await? }))
}
