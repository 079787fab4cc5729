//! Feedback (`/feedback`): NPS and CSAT over the last twelve months, by lifecycle stage and
//! value tier, the topics raised before customers lapse, and the valuable detractors to call
//! (linked to their pages) — `kanta_core::feedback`'s insights, as `GET /v1/insights/feedback`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use kanta_core::feedback::{Group, Options, Score, insights};
use kanta_report::format::NumberFormat;
use serde::Serialize;

use crate::background::Cached;
use crate::session::current;
use crate::{WebError, WebState};

/// Months in the series.
const MONTHS: u32 = 12;
/// Longest call list.
const CALLS: usize = 50;

#[derive(Serialize)]
struct ScoreRow {
    name: String,
    responses: String,
    nps: String,
    promoters: String,
    detractors: String,
    csat: String,
}

fn score_row(name: &str, s: &Score, f: &NumberFormat) -> ScoreRow {
    ScoreRow {
        name: name.to_owned(),
        responses: f.integer(s.responses),
        nps: s.nps.map_or_else(|| "–".into(), |n| f.decimal(n, 0)),
        promoters: f.integer(s.promoters),
        detractors: f.integer(s.detractors),
        csat: s.csat_satisfied.map_or_else(|| "–".into(), |c| f.percent(c)),
    }
}

fn rows(groups: &[Group], f: &NumberFormat) -> Vec<ScoreRow> {
    groups.iter().map(|g| score_row(&g.name, &g.score, f)).collect()
}

#[derive(Serialize)]
struct Call {
    customer: String,
    href: String,
    name: String,
    responded: String,
    score: String,
    text: String,
    topics: String,
    stage: String,
    clv: String,
}

/// `GET /feedback`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/feedback").await?;
    // Every response is read: computed in the background, served with its age.
    let store = state.store.clone();
    let now = state.now();
    let cached = state.feedback.get("all", now, move || async move {
        let (responses, customers) = store.feedback_facts().await.map_err(|e| e.to_string())?;
        let options =
            Options { now: now.div_euclid(1_000_000), months: MONTHS, call_limit: CALLS, ..Options::default() };
        tokio::task::spawn_blocking(move || insights(&responses, &customers, &options))
            .await
            .map_err(|e| format!("the insights could not be computed: {e}"))
    });
    let (computed, computed_at, refreshing) = match cached {
        Cached::Ready { value, computed_at, refreshing } => (value, computed_at, refreshing),
        Cached::Pending => {
            let page = minijinja::context! { ready => false, pending => true };
            return state.templates.page("feedback.html", "feedback", Some(&session), page);
        }
        Cached::Failed(problem) => {
            let page = minijinja::context! { ready => false, problem => problem };
            return state.templates.page("feedback.html", "feedback", Some(&session), page);
        }
    };
    let f = &state.config.format;
    let labels: Vec<String> = computed.by_month.iter().map(|g| g.name.clone()).collect();
    let nps: Vec<f64> = computed.by_month.iter().map(|g| g.score.nps.unwrap_or(f64::NAN)).collect();
    let csat: Vec<f64> =
        computed.by_month.iter().map(|g| g.score.csat_satisfied.map_or(f64::NAN, |c| 100.0 * c)).collect();
    let topics: Vec<_> = computed
        .before_lapse
        .topics
        .iter()
        .map(|t| {
            minijinja::context! {
                topic => t.topic.clone(),
                lapsed => format!("{} ({})", f.percent(t.lapsed_share), f.integer(t.lapsed)),
                active => format!("{} ({})", f.percent(t.active_share), f.integer(t.active)),
                lift => t.lift.map_or_else(|| "–".into(), |l| format!("{}×", f.decimal(l, 1))),
            }
        })
        .collect();
    let calls: Vec<Call> = computed
        .call_list
        .iter()
        .map(|c| Call {
            href: super::customer_path(&c.customer),
            name: c.name.clone().unwrap_or_default(),
            responded: c.responded.get(..10).unwrap_or(&c.responded).to_owned(),
            score: match (c.nps, c.csat) {
                (Some(n), _) => format!("NPS {n}"),
                (None, Some(s)) => format!("CSAT {s}"),
                (None, None) => "–".into(),
            },
            text: c.text.clone().unwrap_or_default(),
            topics: c.topics.join(", "),
            stage: c.stage.clone().unwrap_or_else(|| "–".into()),
            clv: c.clv_12m.map_or_else(|| f.money_f64(c.revenue), |v| f.money_f64(v)),
            customer: c.customer.clone(),
        })
        .collect();
    let page = minijinja::context! {
        ready => true,
        computed => crate::pages::overview::readable_time(&kanta_store::rfc3339(computed_at)),
        refreshing => refreshing,
        ttl_minutes => crate::FEEDBACK_TTL.as_secs() / 60,
        as_of => computed.as_of.clone(),
        responses => f.integer(computed.responses),
        customers => f.integer(computed.customers),
        overall => score_row("all", &computed.overall, f),
        nps_chart => kanta_report::charts::line("NPS by month", "NPS", &labels, &nps, (-100.0, 100.0)),
        csat_chart => kanta_report::charts::line("Satisfied (CSAT 4–5) by month", "% satisfied", &labels, &csat, (0.0, 100.0)),
        by_month => rows(&computed.by_month, f),
        by_stage => rows(&computed.by_stage, f),
        by_tier => rows(&computed.by_value_tier, f),
        topics => topics,
        window => computed.before_lapse.window_days,
        lapsed => f.integer(computed.before_lapse.lapsed_customers),
        active => f.integer(computed.before_lapse.active_customers),
        calls => calls,
    };
    state.templates.page("feedback.html", "feedback", Some(&session), page)
}
