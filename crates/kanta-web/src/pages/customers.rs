//! The customer list (`/customers`: search, filters, cursor pages) and the customer page
//! (`/customers/{id}`: profile, consent, scores in words, timeline, GDPR export and erasure).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kanta_core::lifecycle::Stage;
use kanta_core::tier::Tier;
use kanta_report::format::NumberFormat;
use kanta_store::{ChurnRisk, CustomerCursor, CustomerFilter, CustomerRecord, CustomerSegments, CustomerSort};
use serde::{Deserialize, Serialize};

use super::{customer_path, encode_query};
use crate::pages::overview::readable_time;
use crate::session::{Button, Needs, current, read_form};
use crate::{WebError, WebState};

/// Customers per page of the list.
const PAGE: u32 = 50;
/// Events shown on a customer's page (the export has them all).
const PAGE_EVENTS: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    stage: Option<String>,
    tier: Option<String>,
    risk: Option<String>,
    segment: Option<String>,
    sort: Option<String>,
    after: Option<String>,
    /// Set by the redirect after an erasure, to say it was done.
    erased: Option<String>,
}

#[derive(Serialize)]
struct ListRow {
    id: String,
    href: String,
    email: String,
    name: String,
    stage: String,
    tier: String,
    p_alive: String,
    clv: String,
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(values: impl IntoIterator<Item = (String, String)>, current: Option<&str>) -> Vec<Choice> {
    values
        .into_iter()
        .map(|(value, label)| Choice { selected: current == Some(value.as_str()), value, label })
        .collect()
}

/// Empty values in a query are absent ones: a form submits every field.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /customers`.
pub async fn list(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let here = match &raw {
        Some(q) => format!("/customers?{q}"),
        None => "/customers".into(),
    };
    let session = current(&state, &headers, &here).await?;
    let query: ListQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| WebError::BadRequest(format!("the list's query: {e}")))?;
    let stage = given(&query.stage);
    if let Some(s) = stage.filter(|s| !Stage::ALL.iter().any(|st| st.name() == *s)) {
        return Err(WebError::BadRequest(format!("`{s}` is not a lifecycle stage")));
    }
    let tier = given(&query.tier);
    if let Some(t) = tier.filter(|t| !Tier::ALL.iter().any(|tier| tier.name() == *t)) {
        return Err(WebError::BadRequest(format!("`{t}` is not a value tier")));
    }
    let risk = given(&query.risk)
        .map(|r| ChurnRisk::parse(r).ok_or_else(|| WebError::BadRequest(format!("`{r}` is not a churn-risk band"))))
        .transpose()?;
    let segment = given(&query.segment)
        .map(|s| s.parse::<i64>().map_err(|_| WebError::BadRequest(format!("`{s}` is not a segment id"))))
        .transpose()?;
    let sort = given(&query.sort)
        .map(|s| {
            CustomerSort::parse(s).ok_or_else(|| WebError::BadRequest(format!("`{s}` is not an order of the list")))
        })
        .transpose()?
        .unwrap_or_default();
    let after = given(&query.after)
        .map(|a| CustomerCursor::parse(a).ok_or_else(|| WebError::BadRequest(format!("`{a}` is not a cursor"))))
        .transpose()?;
    let filter = CustomerFilter {
        search: given(&query.q).map(str::to_owned),
        stage: stage.map(str::to_owned),
        value_tier: tier.map(str::to_owned),
        risk,
        segment,
        sort,
    };
    let (rows, next) = state.store.find_customers(&filter, after, PAGE).await?;
    let f = &state.config.format;
    let rows: Vec<ListRow> = rows
        .into_iter()
        .map(|r| ListRow {
            href: customer_path(&r.id),
            email: r.email.unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            stage: r.stage.unwrap_or_else(|| "–".into()),
            tier: r.value_tier.unwrap_or_else(|| "–".into()),
            p_alive: r.p_alive.map_or_else(|| "–".into(), |p| f.percent(p)),
            clv: r.clv_12m.map_or_else(|| "–".into(), |c| f.money_f64(c)),
            id: r.id,
        })
        .collect();
    // The filters as a query, to carry into the next page's link.
    let kept: Vec<(&str, &str)> = [
        ("q", given(&query.q)),
        ("stage", stage),
        ("tier", tier),
        ("risk", given(&query.risk)),
        ("segment", given(&query.segment)),
        ("sort", (sort != CustomerSort::Arrival).then_some(sort.as_str())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let filters: String = kept.iter().map(|(k, v)| format!("{k}={}&", encode_query(v))).collect();
    let segments = state.store.segments().await?;
    let page = minijinja::context! {
        q => given(&query.q).unwrap_or_default(),
        erased => given(&query.erased),
        rows => rows,
        filtered => !kept.is_empty(),
        first => after.is_some().then(|| format!("/customers?{}", filters.trim_end_matches('&'))),
        next => next.map(|n| format!("/customers?{filters}after={}", encode_query(&n.encode()))),
        sorts => choices(
            [("arrival", "arrival (oldest first)"), ("value", "value (highest CLV first)"), ("risk", "churn risk (lowest P(alive) first)")]
                .map(|(v, l)| (v.to_owned(), l.to_owned())),
            Some(sort.as_str()),
        ),
        sorted_by_score => sort != CustomerSort::Arrival,
        stages => choices(Stage::ALL.iter().map(|s| (s.name().to_owned(), s.name().to_owned())), stage),
        tiers => choices(Tier::ALL.iter().map(|t| (t.name().to_owned(), t.name().to_owned())), tier),
        risks => choices(
            [("high", "high (P(alive) < 30 %)"), ("medium", "medium (30–70 %)"), ("low", "low (≥ 70 %)")]
                .map(|(v, l)| (v.to_owned(), l.to_owned())),
            given(&query.risk),
        ),
        segments => choices(segments.iter().map(|s| (s.id.to_string(), s.name.clone())), given(&query.segment)),
    };
    state.templates.page("customers.html", "customers", Some(&session), page)
}

#[derive(Serialize)]
struct Moment {
    time: String,
    sort: String,
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct Sentence {
    label: &'static str,
    text: String,
}

/// `GET /customers/{id}`.
pub async fn show(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, &customer_path(&id)).await?;
    let record = state
        .store
        .customer(&id, PAGE_EVENTS)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no customer `{id}`")))?;
    let journeys = state.store.customer_journeys(&id).await?;
    let segments = state.store.customer_segments(&id).await?;
    let f = &state.config.format;
    let journeys = serde_json::to_value(&journeys).unwrap_or_default();
    let timeline = timeline(&record, &segments, &journeys, f);
    let name = record.profile.name.clone().unwrap_or_else(|| format!("Customer {}", record.profile.id));
    let scores = scores_in_words(&record, &name, f);
    let consent: Vec<_> = record
        .consent
        .iter()
        .map(|c| {
            minijinja::context! {
                channel => c.channel.clone(), status => c.status.clone(),
                source => c.source.clone().unwrap_or_default(), time => readable_time(&c.time),
            }
        })
        .collect();
    let attributes = record
        .profile
        .attributes
        .as_ref()
        .and_then(|a| a.as_object())
        .map(|o| o.iter().map(|(k, v)| (k.clone(), plain(v))).collect::<Vec<_>>())
        .unwrap_or_default();
    let p = &record.profile;
    let page = minijinja::context! {
        id => p.id.clone(),
        path => customer_path(&p.id),
        name => name,
        email => p.email.clone(),
        phone => p.phone.clone(),
        timezone => p.timezone.clone(),
        locale => p.locale.clone(),
        birthday => p.birthday.clone(),
        since => readable_time(&p.created_at),
        attributes => attributes,
        consent => consent,
        scores => scores,
        member_of => segments.member_of,
        timeline => timeline,
        orders => record.orders.len(),
    };
    state.templates.page("customer.html", "customers", Some(&session), page)
}

/// A JSON value as plain text (strings without their quotes).
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The scores of the latest run, each as a sentence a person can act on.
fn scores_in_words(record: &CustomerRecord, name: &str, f: &NumberFormat) -> Vec<Sentence> {
    let Some(s) = &record.scores else { return Vec::new() };
    let mut out = vec![Sentence {
        label: "Lifecycle",
        text: format!(
            "{} since {}; RFM segment {} (R {}, F {}, M {}){}.",
            s.stage,
            readable_time(&s.stage_since).get(..10).unwrap_or_default(),
            s.rfm_segment,
            s.r,
            s.f,
            s.m,
            s.value_tier.as_ref().map(|t| format!(", value tier {t}")).unwrap_or_default()
        ),
    }];
    if let Some(m) = &s.model {
        out.push(Sentence {
            label: "Still active",
            text: format!("There is a {} chance that {name} is still an active customer.", f.percent(m.p_alive)),
        });
        out.push(Sentence {
            label: "Next 30 days",
            text: format!(
                "{} chance of at least one order; {} orders expected in 30 days, {} in 90 days and {} in a year.",
                f.percent(m.p_purchase_30d),
                f.decimal(m.expected_30d, 2),
                f.decimal(m.expected_90d, 2),
                f.decimal(m.expected_365d, 2)
            ),
        });
        if let Some(clv) = m.clv_12m {
            out.push(Sentence {
                label: "Value",
                text: format!(
                    "Predicted to spend {} in the next 12 months{}.",
                    f.money_f64(clv),
                    m.expected_spend.map(|e| format!(" ({} per order)", f.money_f64(e))).unwrap_or_default()
                ),
            });
        }
        if let Some(next) = m.next_purchase_at {
            out.push(Sentence {
                label: "Next order",
                text: format!("Expected around {}.", next.to_rfc3339().get(..10).unwrap_or_default()),
            });
        }
    }
    if s.model.is_none() {
        out.push(Sentence {
            label: "Predictions",
            text: "none from this run: the customer models were not fitted (the overview's scoring run says why)."
                .into(),
        });
    }
    if let Some(next) = &s.next_category {
        out.push(Sentence { label: "Cross-sell", text: format!("Customers like {name} next bought from {next}.") });
    }
    out.push(Sentence { label: "Scored", text: format!("by run {} at {}.", s.run_id, readable_time(&s.scored_at)) });
    out
}

/// Orders, events, feedback, stage changes, segment entries and exits, journey entries and
/// messages, newest first.
fn timeline(
    record: &CustomerRecord,
    segments: &CustomerSegments,
    journeys: &serde_json::Value,
    f: &NumberFormat,
) -> Vec<Moment> {
    let mut out = Vec::new();
    let mut push = |time: &str, kind: &'static str, text: String| {
        out.push(Moment { time: readable_time(time), sort: time.to_owned(), kind, text });
    };
    for o in &record.orders {
        let money = kanta_domain::Money::from_f64(o.amount).map(|m| f.money(m)).unwrap_or_default();
        let what = if o.amount < 0.0 { "Return" } else { "Order" };
        let lines = o.lines.len();
        let lines =
            if lines > 0 { format!(", {lines} line{}", if lines == 1 { "" } else { "s" }) } else { String::new() };
        push(&o.time, "order", format!("{what} {} of {money} {}{lines} ({})", o.id, o.currency, o.status));
    }
    for e in &record.events {
        push(&e.time, "event", format!("Event {}", e.name));
    }
    for fb in &record.feedback {
        let mut parts = Vec::new();
        if let Some(n) = fb.nps {
            parts.push(format!("NPS {n}"));
        }
        if let Some(c) = fb.csat {
            parts.push(format!("CSAT {c}"));
        }
        if let Some(t) = &fb.text {
            parts.push(format!("“{t}”"));
        }
        push(&fb.time, "feedback", format!("Feedback: {}", parts.join(", ")));
    }
    for c in &record.stage_history {
        let text = match &c.from {
            Some(from) => format!("Stage {from} → {}", c.to),
            None => format!("First scored: {}", c.to),
        };
        push(&c.time, "stage", text);
    }
    for m in &segments.history {
        let verb = if m.kind == "enter" { "Entered" } else { "Left" };
        push(&kanta_store::rfc3339(m.time), "segment", format!("{verb} segment {}", m.segment));
    }
    for run in journeys.as_array().into_iter().flatten() {
        let r = &run["run"];
        let journey = r["journey"].as_str().unwrap_or_default();
        let arm = r["arm"].as_str().unwrap_or_default();
        let held = if arm.contains("control") { " (held out: gets no step)" } else { "" };
        if let Some(at) = r["entered_at"].as_str() {
            push(at, "journey", format!("Entered journey {journey}{held}"));
        }
        if let (Some(at), Some(reason)) = (r["ended_at"].as_str(), r["exit_reason"].as_str()) {
            push(at, "journey", format!("Left journey {journey}: {reason}"));
        }
        for m in run["messages"].as_array().into_iter().flatten() {
            let at = m["sent_at"].as_str().or(m["created_at"].as_str()).unwrap_or_default();
            push(
                at,
                "message",
                format!(
                    "{} from {journey} / {}: {}",
                    m["channel"].as_str().unwrap_or("message"),
                    m["step"].as_str().unwrap_or_default(),
                    m["status"].as_str().unwrap_or_default()
                ),
            );
        }
    }
    // RFC 3339 in UTC with the same precision sorts as text; ties keep the order above.
    out.sort_by(|a, b| b.sort.cmp(&a.sort));
    out
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /customers/{id}/export`: everything stored about the customer, as a JSON download
/// (admin; recorded in the audit log like the API's export).
pub async fn export(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let (session, Button {}) = read_form(&state, &headers, &customer_path(&id), &body, Needs::Admin).await?;
    let record =
        state.store.customer(&id, u32::MAX).await?.ok_or_else(|| WebError::NotFound(format!("no customer `{id}`")))?;
    state.store.audit(Some(session.token_id), "export", Some(&id), state.now()).await?;
    let mut response = Json(record).into_response();
    let file: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"customer-{file}.json\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `POST /customers/{id}/erase`: erases the customer's personal data (admin; the form must
/// repeat the id, so a stray click erases nothing; recorded in the audit log).
pub async fn erase(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let (session, form): (_, ActionForm) =
        read_form(&state, &headers, &customer_path(&id), &body, Needs::Admin).await?;
    if form.confirm.trim() != id {
        return Err(WebError::BadRequest(format!(
            "to erase customer `{id}`, type their id into the confirmation field; nothing was erased"
        )));
    }
    if !state.store.erase_customer(&id, Some(session.token_id), state.now()).await? {
        return Err(WebError::NotFound(format!("no customer `{id}`")));
    }
    Ok(Redirect::to(&format!("/customers?erased={}", encode_query(&id))).into_response())
}
