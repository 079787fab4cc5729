//! Journeys through the API: applying a journey document (the JSON form of the YAML files),
//! listing and inspecting journeys, pausing and resuming them, their runs; and bounces and
//! complaints, which put addresses on the suppression list.
//!
//! A document carries the templates its steps name (`templates: { NAME: { html, text } }`, and
//! `layout`), as `kanta journeys apply` embeds them from the files: the server has no templates
//! folder, and each version keeps its own text, so a run in progress renders what it started
//! with. A `template: NAME` that is not embedded is a problem of the document (422), and every
//! embedded source is checked by the mailer's template language (`kanta_mail::check`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kanta_store::Scope;
use kanta_store::journey::{Bounce, JourneyReport, JourneySummary, RunId, RunView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::customers::{decode_cursor, encode_cursor};
use crate::error::JourneyProblem;
use crate::{ApiError, AppState, auth};

/// Every journey in the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct JourneyList {
    /// By name.
    pub journeys: Vec<JourneySummary>,
}

/// What applying a document did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedJourney {
    /// The journey's name (from the document).
    pub name: String,
    /// Its current version after the call.
    pub version: i64,
    /// Whether this call created that version (false: the document was unchanged).
    pub created: bool,
    /// The document's digest (SHA-256 of its canonical JSON).
    pub digest: String,
}

/// One applied version of a journey, with its document.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDocument {
    /// The journey's name.
    pub name: String,
    /// 1, 2, …
    pub version: i64,
    /// The document's digest (SHA-256 of its canonical JSON).
    pub digest: String,
    /// When it was applied, RFC 3339.
    pub created_at: String,
    /// The document as applied: the canonical JSON, with the templates it carries.
    pub document: JourneyDocument,
}

/// A journey document as JSON: the keys of the YAML files (see `journeys/README.md`), and the
/// templates the version carries. This schema names the top-level keys; the server checks the
/// whole document and reports every problem with its JSON pointer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JourneyDocument {
    /// A slug: `a`–`z`, `0`–`9`, `-`, `_`.
    pub name: String,
    /// What the journey is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Exactly one kind: `{ "event": NAME }`, `{ "enters_segment": NAME }`, `{ "date": … }`, ….
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    /// `{ "reentry": "once" | "always" | { "after": "90d" }, "max_concurrent_journeys": N }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub entry: Option<serde_json::Value>,
    /// Events and transitions that end a run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub exit_when: Option<serde_json::Value>,
    /// IANA zone for customers without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Record, send nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// After downtime, skip what is later than this (`2d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_if_late_by: Option<String>,
    /// The share of eligible customers held out as a randomised control group (`"10%"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<String>,
    /// What the journey is for: `{ "event": NAME }` or `{ "enters_segment": NAME }`, with
    /// `"within": "30d"` and `"exit": true` to end a treated run when it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub goal: Option<serde_json::Value>,
    /// The steps (each a mapping with one kind key, or `"exit"`).
    #[schema(value_type = Vec<Object>)]
    pub steps: serde_json::Value,
    /// The templates the steps name (`template: NAME`) and the files they include, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<std::collections::BTreeMap<String, TemplateSource>>,
    /// The layout that wraps every message (`layout.html`, `layout.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<TemplateSource>,
}

/// An embedded template's sources (minijinja; see `journeys/README.md`): at least one part.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateSource {
    /// `NAME.html`: the HTML part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// `NAME.txt`: the text part; without it the text is derived from the HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One page of a journey's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Oldest first.
    pub runs: Vec<RunView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of a journey's runs.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A report of a mail server or provider about an address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BounceInput {
    /// The address that bounced or complained.
    pub address: String,
    /// `hard` (no such mailbox), `soft` (mailbox full) or `complaint` (marked as spam).
    pub kind: BounceKind,
    /// Who reported it (a provider's name), for the operator.
    pub source: Option<String>,
    /// The server's words. Accepted so that a provider's report fits, but not kept: the store's
    /// suppression list records the kind, and these words often quote the address.
    #[expect(dead_code, reason = "accepted and deliberately not stored (see the doc comment)")]
    pub reason: Option<String>,
}

/// The kind of a bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// A permanent failure: suppressed at once.
    Hard,
    /// A temporary failure: suppressed after the configured number of them.
    Soft,
    /// A spam complaint: suppressed at once.
    Complaint,
}

/// What a recorded bounce did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BounceResult {
    /// The address, lowercased.
    pub address: String,
    /// Whether the address is suppressed now.
    pub suppressed: bool,
}

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// A reported address, trimmed and lower-cased, or why it is not one.
pub(crate) fn bounce_address(raw: &str) -> Result<String, String> {
    let address = raw.trim().to_lowercase();
    let well_formed = address.len() <= MAX_ADDRESS
        && address.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(address)
    } else {
        Err(format!("`{}` is not an email address", raw.chars().take(80).collect::<String>()))
    }
}

fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name).map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn summary(state: &AppState, name: &str) -> Result<JourneySummary, ApiError> {
    state
        .store
        .journeys()
        .await?
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no journey `{name}`")))
}

/// Which templates exist for a document posted here: only those it embeds (the server has no
/// folder), each source checked by the mailer's template language.
struct EmbeddedOnly;

impl kanta_journey::Templates for EmbeddedOnly {
    fn contains(&self, _name: &str) -> bool {
        false
    }

    fn check(&self, source: &str) -> Result<(), String> {
        kanta_mail::check(source).map_err(|problem| problem.to_string())
    }
}

/// Apply a journey document (JSON, the same document as the YAML files, with the templates its
/// steps name embedded): every problem is reported with its JSON pointer (422); a changed
/// document (its templates included) becomes a new version (201) that new runs start on, while
/// runs in progress finish on theirs, rendering their own version's templates; an unchanged one
/// keeps its version (200).
#[utoipa::path(post, path = "/v1/journeys", tag = "journeys", security(("bearer" = [])),
    request_body(content = JourneyDocument, description = "A journey document (see journeys/README.md)"),
    responses((status = 201, description = "A new version", body = AppliedJourney),
              (status = 200, description = "Unchanged", body = AppliedJourney),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
              (status = 422, description = "Every problem of the document", body = crate::error::ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let body = body?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let journey = kanta_journey::validate_json(&value, &EmbeddedOnly).map_err(|problems| {
        ApiError::InvalidJourney(
            problems.iter().map(|p| JourneyProblem { pointer: p.path.pointer(), message: p.message.clone() }).collect(),
        )
    })?;
    let digest = journey.digest();
    let applied = state.store.apply_journey(&journey.name, &journey.canonical_json(), &digest, state.now()).await?;
    let status = if applied.created { StatusCode::CREATED } else { StatusCode::OK };
    let body = AppliedJourney { name: journey.name, version: applied.version, created: applied.created, digest };
    Ok((status, Json(body)).into_response())
}

/// Every journey: its current version, whether it is paused, its active runs.
#[utoipa::path(get, path = "/v1/journeys", tag = "journeys", security(("bearer" = [])),
    responses((status = 200, body = JourneyList), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<JourneyList>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    Ok(Json(JourneyList { journeys: state.store.journeys().await? }))
}

/// One journey: its versions with their runs, and per version and step the active runs and the
/// messages by status.
#[utoipa::path(get, path = "/v1/journeys/{name}", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name")),
    responses((status = 200, body = JourneyReport), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JourneyReport>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let name = path_name(path)?;
    state.store.journey_report(&name).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("no journey `{name}`")))
}

/// One version of a journey with its document as applied, the templates it carries included.
#[utoipa::path(get, path = "/v1/journeys/{name}/versions/{version}", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name"),
           ("version" = i64, Path, description = "The version: 1, 2, …")),
    responses((status = 200, body = VersionDocument), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Json<VersionDocument>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let Path((name, version)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let stored = state
        .store
        .journey_version(&name, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no version {version} of journey `{name}`")))?;
    let document = serde_json::from_str(&stored.definition).map_err(|e| {
        kanta_store::StoreError::Corrupt(format!("stored journey `{name}` version {version} is not a document: {e}"))
    })?;
    Ok(Json(VersionDocument {
        name: stored.name,
        version: stored.version,
        digest: stored.digest,
        created_at: stored.created_at.to_rfc3339(),
        document,
    }))
}

/// Pause a journey: its runs and messages wait until it is resumed.
#[utoipa::path(post, path = "/v1/journeys/{name}/pause", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name")),
    responses((status = 200, body = JourneySummary), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JourneySummary>, ApiError> {
    set_paused(state, headers, path, true).await
}

/// Resume a paused journey.
#[utoipa::path(post, path = "/v1/journeys/{name}/resume", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name")),
    responses((status = 200, body = JourneySummary), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JourneySummary>, ApiError> {
    set_paused(state, headers, path, false).await
}

async fn set_paused(
    state: AppState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    paused: bool,
) -> Result<Json<JourneySummary>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let name = path_name(path)?;
    if !state.store.set_journey_paused(&name, paused, state.now()).await? {
        return Err(ApiError::NotFound(format!("no journey `{name}`")));
    }
    summary(&state, &name).await.map(Json)
}

/// A journey's runs, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/journeys/{name}/runs", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name"), RunParams),
    responses((status = 200, body = RunPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RunPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let name = path_name(path)?;
    let params: RunParams = crate::query_params(raw.as_deref())?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1–1000, not {limit}")));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?.map(RunId);
    summary(&state, &name).await?;
    let (runs, next) = state.store.journey_runs(&name, after, limit).await?;
    Ok(Json(RunPage { runs, next_cursor: next.map(|id| encode_cursor(id.0)) }))
}

/// Query of a journey's uplift report.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The bootstrap's seed (default 1): the same seed gives the same interval.
    pub seed: Option<u64>,
    /// Bootstrap resamples, 100–100000 (default 2000).
    #[param(minimum = 100, maximum = 100000)]
    pub resamples: Option<u32>,
}

/// A journey's uplift: treatment against its holdout (control) on the goal and on revenue per
/// customer, from each customer's first entry once its goal window has passed, with 95 %
/// intervals (Wald and Newcombe; Welch and a seeded percentile bootstrap; CUPED on revenue in
/// the year before entry), the minimum detectable effect at 80 % power, a verdict or "too
/// early", and the cumulative conversion curves of both arms. The same numbers as `kanta
/// journeys report NAME --json`.
#[utoipa::path(get, path = "/v1/journeys/{name}/report", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The journey's name"), ReportParams),
    responses((status = 200, description = "`{journey, version, goal, holdout, window, computed_at, entries, settings, \
        treatment, control, conversion, revenue, cuped, orders, clv, curve_treatment, curve_control, notes, funnel, splits, \
        revenue_at_risk}`", body = Object),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<kanta_engine::uplift::JourneyUplift>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let name = path_name(path)?;
    let params: ReportParams = crate::query_params(raw.as_deref())?;
    let resamples = params.resamples.unwrap_or(kanta_uplift::bootstrap::DEFAULT_RESAMPLES);
    if !(100..=100_000).contains(&resamples) {
        return Err(ApiError::BadRequest(format!("resamples must be 100–100000, not {resamples}")));
    }
    let settings = kanta_uplift::report::Settings {
        bootstrap: kanta_uplift::bootstrap::Options { resamples, seed: params.seed.unwrap_or(1) },
        ..Default::default()
    };
    match kanta_engine::uplift::uplift_report(&*state.store, &name, state.now(), settings).await {
        Ok(Some(report)) => Ok(Json(report)),
        Ok(None) => Err(ApiError::NotFound(format!("no journey `{name}`"))),
        Err(kanta_engine::EngineError::Store(e)) => Err(ApiError::Store(e)),
        Err(e) => Err(ApiError::Store(kanta_store::StoreError::Corrupt(e.to_string()))),
    }
}

/// Record a bounce or complaint: a hard bounce or a complaint suppresses the address at once,
/// soft bounces once the configured number of them (`[guardrails] soft_bounce_limit`) arrived.
#[utoipa::path(post, path = "/v1/bounces", tag = "journeys", security(("bearer" = [])),
    request_body = BounceInput,
    responses((status = 200, body = BounceResult), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn bounce(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<BounceResult>, ApiError> {
    auth::authorize(&state, &headers, Scope::Ingest).await?;
    let body = body?;
    let input: BounceInput =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not a bounce: {e}")))?;
    let address = bounce_address(&input.address).map_err(|reason| {
        ApiError::InvalidRecords(vec![kanta_store::record::RecordError { index: 0, field: "address".into(), reason }])
    })?;
    let kind = match input.kind {
        BounceKind::Hard => Bounce::Hard,
        BounceKind::Soft => Bounce::Soft,
        BounceKind::Complaint => Bounce::Complaint,
    };
    // The address is personal data: the log names the kind and the reporter only.
    tracing::info!(
        "kanta serve: {:?} bounce reported{}",
        input.kind,
        input.source.as_deref().map(|s| format!(" by {}", s.chars().take(64).collect::<String>())).unwrap_or_default()
    );
    let suppressed = state.store.record_bounce(&address, kind, state.soft_bounce_limit, state.now()).await?;
    Ok(Json(BounceResult { address, suppressed }))
}
