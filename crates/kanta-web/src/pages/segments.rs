//! Segments: the saved ones with their size over time and who entered and left (`/segments`,
//! `/segments/{id}`), the expression editor with the live member count (`/segments/new`), and
//! the members as a CSV download.
//!
//! The editor works without script: "Count" posts the form and the page comes back with the
//! count or the problem at its column. `assets/kanta.js` posts the same form as the user types
//! and asks for JSON instead, so the count follows the expression.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kanta_store::{SegmentInfo, StoreError};
use serde::{Deserialize, Serialize};

use crate::pages::overview::readable_time;
use crate::session::{Button, Needs, Session, current, read_form};
use crate::{WebError, WebState};

/// Longest segment name (as the API).
const MAX_NAME: usize = 100;
/// Days of history on a segment's page.
const HISTORY_DAYS: i64 = 90;
/// Transitions listed on a segment's page.
const RECENT: u32 = 50;
/// Members per page of the CSV download.
const CSV_PAGE: u32 = 5_000;
const DAY_MICROS: i64 = 86_400_000_000;

#[derive(Serialize)]
struct Listed {
    id: i64,
    name: String,
    expression: String,
    members: String,
    refreshed: String,
}

/// `GET /segments`.
pub async fn list(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/segments").await?;
    let f = &state.config.format;
    let segments: Vec<Listed> = state
        .store
        .segments()
        .await?
        .into_iter()
        .map(|s| Listed {
            id: s.id,
            members: f.integer(u64::try_from(s.members).unwrap_or(0)),
            refreshed: readable_time(&s.refreshed_at),
            name: s.name,
            expression: s.expression,
        })
        .collect();
    state.templates.page("segments.html", "segments", Some(&session), minijinja::context! { segments })
}

/// What the editor shows: the form as typed, and the count or the problem.
#[derive(Debug, Default, Serialize)]
struct Editor {
    name: String,
    expression: String,
    count: Option<String>,
    problem: Option<Problem>,
}

/// A problem with the expression, placed where it is.
#[derive(Debug, Serialize)]
struct Problem {
    message: String,
    /// 1-based line and column (characters), when the problem has a place.
    line: Option<usize>,
    column: Option<usize>,
    /// The problem's line of the expression, and a caret under the column.
    excerpt: Option<String>,
    pointer: Option<String>,
}

impl Problem {
    fn plain(message: impl Into<String>) -> Problem {
        Problem { message: message.into(), line: None, column: None, excerpt: None, pointer: None }
    }

    /// A parse error at `column` (1-based characters over the whole text) of `text`.
    fn at(text: &str, column: usize, message: String) -> Problem {
        let before: String = text.chars().take(column.saturating_sub(1)).collect();
        let line = before.matches('\n').count() + 1;
        let in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let excerpt = text.lines().nth(line - 1).unwrap_or_default().to_owned();
        let pointer = format!("{}^", " ".repeat(in_line - 1));
        Problem { message, line: Some(line), column: Some(in_line), excerpt: Some(excerpt), pointer: Some(pointer) }
    }
}

/// `GET /segments/new`.
pub async fn editor(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/segments/new").await?;
    render_editor(&state, &session, &Editor::default())
}

fn render_editor(state: &WebState, session: &Session, editor: &Editor) -> Result<Html<String>, WebError> {
    state.templates.page("segment_new.html", "segments", Some(session), editor)
}

#[derive(Debug, Deserialize)]
struct EditorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expression: String,
}

/// The count an expression selects now, or what is wrong with it; store errors that are the
/// expression's (too costly) or the moment's (busy) are problems to show, not failures.
async fn count(state: &WebState, text: &str) -> Result<Result<(kanta_segment::Expr, i64), Problem>, WebError> {
    if text.trim().is_empty() {
        return Ok(Err(Problem::plain("Type an expression, for example: stage = \"slipping\" and clv_12m > 100")));
    }
    let expr = match kanta_segment::parse(text) {
        Ok(expr) => expr,
        Err(e) => return Ok(Err(Problem::at(text, e.column, e.message))),
    };
    match state.store.segment_count(&expr, state.now()).await {
        Ok(n) => Ok(Ok((expr, n))),
        Err(e @ (StoreError::TooCostly(_) | StoreError::Busy | StoreError::TotalTooLarge(_))) => {
            Ok(Err(Problem::plain(format!("The count could not be made: {e}"))))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct PreviewJson {
    count: Option<i64>,
    /// The count as the page writes numbers.
    text: String,
    problem: Option<Problem>,
}

/// `POST /segments/preview`: the live count. JSON for the page's script (`Accept:
/// application/json`), the editor page otherwise.
pub async fn preview(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let (session, form): (_, EditorForm) = read_form(&state, &headers, "/segments/new", &body, Needs::Read).await?;
    let counted = count(&state, &form.expression).await?;
    let wants_json =
        headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let f = &state.config.format;
    if wants_json {
        let body = match counted {
            Ok((_, n)) => PreviewJson {
                count: Some(n),
                text: format!("{} customers", f.integer(u64::try_from(n).unwrap_or(0))),
                problem: None,
            },
            Err(problem) => PreviewJson { count: None, text: String::new(), problem: Some(problem) },
        };
        return Ok(Json(body).into_response());
    }
    let mut editor = Editor { name: form.name, expression: form.expression, ..Editor::default() };
    match counted {
        Ok((_, n)) => editor.count = Some(format!("{} customers", f.integer(u64::try_from(n).unwrap_or(0)))),
        Err(problem) => editor.problem = Some(problem),
    }
    Ok(render_editor(&state, &session, &editor)?.into_response())
}

/// `POST /segments`: save the segment (admin), then its page.
pub async fn create(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let (session, form): (_, EditorForm) = read_form(&state, &headers, "/segments/new", &body, Needs::Admin).await?;
    let name = form.name.trim().to_owned();
    let mut editor = Editor { name: form.name.clone(), expression: form.expression.clone(), ..Editor::default() };
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        editor.problem =
            Some(Problem::plain(format!("The name must be 1–{MAX_NAME} characters without control characters.")));
        return Ok((StatusCode::BAD_REQUEST, render_editor(&state, &session, &editor)?).into_response());
    }
    let expr = match count(&state, &form.expression).await? {
        Ok((expr, _)) => expr,
        Err(problem) => {
            editor.problem = Some(problem);
            return Ok((StatusCode::BAD_REQUEST, render_editor(&state, &session, &editor)?).into_response());
        }
    };
    match state.store.create_segment(&name, form.expression.trim(), &expr, state.now()).await {
        Ok(created) => Ok(Redirect::to(&format!("/segments/{}", created.id)).into_response()),
        Err(StoreError::Conflict(_)) => {
            editor.problem = Some(Problem::plain(format!("A segment named “{name}” exists: choose another name.")));
            Ok((StatusCode::CONFLICT, render_editor(&state, &session, &editor)?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn saved(state: &WebState, id: &str) -> Result<SegmentInfo, WebError> {
    let missing = || WebError::NotFound(format!("no segment `{id}`"));
    let id = id.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(missing)?;
    state.store.segment(id).await?.ok_or_else(missing)
}

#[derive(Serialize)]
struct DayRow {
    day: String,
    entered: String,
    exited: String,
    size: String,
}

#[derive(Serialize)]
struct TransitionRow {
    time: String,
    customer: String,
    href: String,
    kind: &'static str,
}

/// `GET /segments/{id}`.
pub async fn show(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, &format!("/segments/{}", super::encode_query(&id))).await?;
    let segment = saved(&state, &id).await?;
    let f = &state.config.format;
    let today = state.now().div_euclid(DAY_MICROS);
    let first = today - HISTORY_DAYS + 1;
    let days = state.store.segment_days(segment.id, first * DAY_MICROS).await?;
    // The size at the end of each day, walked back from the members now: a day's entries were
    // not there before it, its exits were.
    let n = usize::try_from(HISTORY_DAYS).unwrap_or(90);
    let (mut entered, mut exited) = (vec![0u64; n], vec![0u64; n]);
    for d in &days {
        if let Ok(i) = usize::try_from(d.day - first)
            && i < n
        {
            entered[i] = d.entered;
            exited[i] = d.exited;
        }
    }
    let mut size = vec![0i64; n];
    let mut running = segment.members;
    for i in (0..n).rev() {
        size[i] = running;
        running = running - i64::try_from(entered[i]).unwrap_or(0) + i64::try_from(exited[i]).unwrap_or(0);
    }
    let labels: Vec<String> = (0..n).map(|i| day_label(first + i as i64)).collect();
    let sizes: Vec<f64> = size.iter().map(|s| *s as f64).collect();
    let size_chart = kanta_report::charts::line_days("Members at the end of each day", "members", &labels, &sizes);
    let flow_chart = kanta_report::charts::stacked_days(
        "Entries and exits per day",
        "customers",
        &labels,
        &[("entered", &entered), ("left", &exited)],
    );
    let table: Vec<DayRow> = (0..n)
        .rev()
        .filter(|&i| entered[i] > 0 || exited[i] > 0)
        .map(|i| DayRow {
            day: labels[i].clone(),
            entered: f.integer(entered[i]),
            exited: f.integer(exited[i]),
            size: f.integer(u64::try_from(size[i]).unwrap_or(0)),
        })
        .collect();
    let recent: Vec<TransitionRow> = state
        .store
        .recent_transitions(segment.id, RECENT)
        .await?
        .into_iter()
        .map(|t| TransitionRow {
            time: readable_time(&t.time),
            href: super::customer_path(&t.customer),
            customer: t.customer,
            kind: if t.kind == "enter" { "entered" } else { "left" },
        })
        .collect();
    let page = minijinja::context! {
        id => segment.id,
        name => segment.name,
        expression => segment.expression,
        members => f.integer(u64::try_from(segment.members).unwrap_or(0)),
        refreshed => readable_time(&segment.refreshed_at),
        created => readable_time(&segment.created_at),
        size_chart => size_chart,
        flow_chart => flow_chart,
        days => table,
        recent => recent,
        first_day => labels.first().cloned().unwrap_or_default(),
    };
    state.templates.page("segment.html", "segments", Some(&session), page)
}

/// `YYYY-MM-DD` of a day number.
fn day_label(day: i64) -> String {
    kanta_store::rfc3339(day * DAY_MICROS).get(..10).unwrap_or_default().to_owned()
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /segments/{id}/refresh` (admin): recompute the members now.
pub async fn refresh(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    read_form::<Button>(&state, &headers, "/segments", &body, Needs::Admin).await?;
    let segment = saved(&state, &id).await?;
    let expr = kanta_segment::parse(&segment.expression)
        .map_err(|e| WebError::BadRequest(format!("the saved expression no longer parses: {}", e.message)))?;
    state.store.refresh_segment(segment.id, &expr, state.now()).await?;
    Ok(Redirect::to(&format!("/segments/{}", segment.id)).into_response())
}

/// `POST /segments/{id}/delete` (admin; the form repeats the name).
pub async fn delete(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let (_, form): (_, ActionForm) = read_form(&state, &headers, "/segments", &body, Needs::Admin).await?;
    let segment = saved(&state, &id).await?;
    if form.confirm.trim() != segment.name {
        return Err(WebError::BadRequest(format!(
            "to delete the segment, type its name “{}” into the confirmation field; nothing was deleted",
            segment.name
        )));
    }
    state.store.delete_segment(segment.id).await?;
    Ok(Redirect::to("/segments").into_response())
}

/// `GET /segments/{id}/members.csv`: every member as of the last refresh, streamed a page at a
/// time (the columns of the API's CSV pages).
pub async fn members_csv(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    current(&state, &headers, &format!("/segments/{}", super::encode_query(&id))).await?;
    let segment = saved(&state, &id).await?;
    let store = state.store.clone();
    let segment_id = segment.id;
    // (cursor, first page, finished)
    let pages = futures_util::stream::unfold((None, true, false), move |(after, first, done)| {
        let store = store.clone();
        async move {
            if done {
                return None;
            }
            let page = store.segment_customers(segment_id, after, CSV_PAGE).await;
            let chunk = page.map_err(std::io::Error::other).and_then(|(profiles, next)| {
                kanta_api::members_csv(&profiles, first).map(|csv| (csv, next)).map_err(std::io::Error::other)
            });
            Some(match chunk {
                Ok((csv, next)) => (Ok::<_, std::io::Error>(Bytes::from(csv)), (next, false, next.is_none())),
                // The status is sent: an error cuts the download short, which the client sees.
                Err(e) => (Err(e), (None, false, true)),
            })
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let file: String =
        segment.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"segment-{file}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_point_at_their_line_and_column() {
        let p = Problem::at("stage = \"lost\"\nand clv_12m >", 29, "expected a value".into());
        assert_eq!((p.line, p.column), (Some(2), Some(14)));
        assert_eq!(p.excerpt.as_deref(), Some("and clv_12m >"));
        assert_eq!(p.pointer.as_deref(), Some("             ^"));
        let p = Problem::at("clv_12m >> 3", 10, "unexpected `>`".into());
        assert_eq!((p.line, p.column, p.pointer.as_deref()), (Some(1), Some(10), Some("         ^")));
        assert_eq!(day_label(20_000), "2024-10-04");
    }
}
