//! `GET /v1/insights/feedback`: NPS and CSAT over time, by stage, value tier and topic, the
//! topics raised before customers lapse, and the valuable detractors to call
//! (`kanta_core::feedback` computes them; see its docs for the definitions).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use kanta_core::feedback::{FeedbackInsights, Options, insights};
use kanta_store::Scope;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{ApiError, AppState, auth};

/// Query of the feedback insights.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedbackParams {
    /// Months in the time series, ending with the current one (1–120, default 12).
    #[param(minimum = 1, maximum = 120)]
    pub months: Option<u32>,
    /// Longest call list (0–1000, default 50).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Feedback insights over every response in the store, as of now (UTC), with each customer's
/// stage and value tier from the latest scoring run.
#[utoipa::path(get, path = "/v1/insights/feedback", tag = "insights", security(("bearer" = [])),
    params(FeedbackParams),
    responses((status = 200, description = "`{as_of, responses, customers, overall, by_month, by_stage, by_value_tier, \
        by_topic, before_lapse, call_list}`; scores are `{responses, nps_responses, promoters, passives, detractors, nps, \
        csat_responses, csat, csat_satisfied}`", body = Object),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<FeedbackInsights>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let params: FeedbackParams = crate::query_params(query.as_deref())?;
    let months = params.months.unwrap_or(12);
    if !(1..=120).contains(&months) {
        return Err(ApiError::BadRequest(format!("months must be 1–120, not {months}")));
    }
    let limit = params.limit.unwrap_or(50);
    if limit > 1000 {
        return Err(ApiError::BadRequest(format!("limit must be 0–1000, not {limit}")));
    }
    let (responses, customers) = state.store.feedback_facts().await?;
    let options = Options {
        now: state.now_micros().div_euclid(1_000_000),
        months,
        call_limit: limit as usize,
        ..Options::default()
    };
    let computed = tokio::task::spawn_blocking(move || insights(&responses, &customers, &options))
        .await
        .map_err(|e| ApiError::Store(kanta_store::StoreError::Corrupt(format!("insights task: {e}"))))?;
    Ok(Json(computed))
}
