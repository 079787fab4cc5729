//! The overview (`/`): how the customer base stands and moved this week, from the latest
//! completed scoring run (which stores the business summary beside the scores, so the page
//! reads one row instead of every order) and the stage changes of the last seven days.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use kanta_core::analysis::BusinessSummary;
use kanta_core::lifecycle::Stage;
use kanta_report::charts;
use kanta_report::format::NumberFormat;
use kanta_store::{ScoreRunInfo, StageMovement};
use serde::Serialize;

use crate::session::current;
use crate::{WebError, WebState};

const WEEK_MICROS: i64 = 7 * 24 * 3_600_000_000;

#[derive(Serialize)]
struct Kpi {
    label: &'static str,
    value: String,
    note: Option<String>,
}

#[derive(Serialize)]
struct StageRow {
    stage: &'static str,
    href: String,
    customers: String,
    share: String,
    revenue: String,
    entered: String,
    left: String,
}

#[derive(Serialize)]
struct Movement {
    from: String,
    to: String,
    customers: String,
}

#[derive(Serialize)]
struct Row {
    cells: Vec<String>,
}

#[derive(Serialize)]
struct HeatCell {
    text: String,
    level: usize,
}

#[derive(Serialize)]
struct CohortRow {
    month: String,
    size: String,
    cells: Vec<HeatCell>,
}

#[derive(Serialize)]
struct RunView {
    id: i64,
    finished: String,
    as_of: String,
    took: String,
    customers: String,
    orders: String,
    model: String,
    selected_by: String,
    holdout: Option<String>,
    candidates: Vec<Row>,
    /// Why a candidate could not be fitted, one sentence each.
    notes: Vec<String>,
    /// Why the run fitted no model, when it fitted none.
    skipped: Option<String>,
}

#[derive(Serialize)]
struct Overview {
    kpis: Vec<Kpi>,
    stages: Vec<StageRow>,
    stage_chart: String,
    movements: Vec<Movement>,
    at_risk: Vec<Row>,
    at_risk_text: String,
    ladder_chart: String,
    ladder: Vec<Row>,
    cohort_chart: String,
    cohort_header: Vec<String>,
    cohorts: Vec<CohortRow>,
    run: RunView,
}

/// `GET /`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Result<Html<String>, WebError> {
    let session = current(&state, &headers, "/").await?;
    let run = state.store.latest_completed_run().await?;
    let summary = run
        .as_ref()
        .and_then(|r| r.diagnostics.get("summary"))
        .and_then(|s| serde_json::from_value::<BusinessSummary>(s.clone()).ok());
    let (Some(run), Some(summary)) = (run, summary) else {
        return state.templates.page(
            "overview.html",
            "overview",
            Some(&session),
            minijinja::context! { empty => true },
        );
    };
    let movements = state.store.stage_movements(state.now().saturating_sub(WEEK_MICROS)).await?;
    let overview = build(&summary, &run, &movements, &state.config.format);
    state.templates.page("overview.html", "overview", Some(&session), overview)
}

fn build(s: &BusinessSummary, run: &ScoreRunInfo, movements: &[StageMovement], f: &NumberFormat) -> Overview {
    let models = run.diagnostics.get("models").filter(|m| !m.is_null());
    let number = |key: &str| models.and_then(|m| m.get(key)).and_then(serde_json::Value::as_f64);
    let risk = &s.revenue_at_risk;
    let mut kpis = vec![
        Kpi { label: "Customers", value: f.integer(s.customers), note: None },
        Kpi { label: "Revenue", value: f.money(s.revenue), note: Some(format!("{} orders", f.integer(s.orders))) },
        Kpi {
            label: "Repeat rate",
            value: f.percent(1.0 - s.one_time_share),
            note: Some("customers with a second order".into()),
        },
        Kpi { label: "Average order value", value: f.money_f64(s.average_order_value), note: None },
        Kpi {
            label: "Revenue at risk",
            value: f.money(risk.lapsing_revenue_12m + risk.lost_revenue_12m),
            note: Some(format!(
                "last 12 months of {} lapsing and lost customers",
                f.integer(risk.lapsing_customers + risk.lost_customers)
            )),
        },
    ];
    if let Some(p) = number("mean_p_alive") {
        kpis.push(Kpi {
            label: "Mean P(alive)",
            value: f.percent(p),
            note: Some("chance a customer is still active".into()),
        });
    }
    if let Some(clv) = number("clv_12m_total") {
        kpis.push(Kpi {
            label: "12-month CLV",
            value: f.money_f64(clv),
            note: Some("predicted, all customers".into()),
        });
    }

    let moved = |stage: &str, into: bool| -> u64 {
        movements
            .iter()
            .filter(|m| if into { m.to == stage } else { m.from.as_deref() == Some(stage) })
            .map(|m| m.customers)
            .sum()
    };
    let stages = Stage::ALL
        .iter()
        .map(|stage| {
            let name = stage.name();
            let row = s.stages.iter().find(|r| r.name == name);
            StageRow {
                stage: name,
                href: format!("/customers?stage={name}"),
                customers: f.integer(row.map_or(0, |r| r.customers)),
                share: f.percent(row.map_or(0.0, |r| r.share)),
                revenue: row.map_or_else(String::new, |r| f.money(r.revenue)),
                entered: f.integer(moved(name, true)),
                left: f.integer(moved(name, false)),
            }
        })
        .collect();
    let movements = movements
        .iter()
        .map(|m| Movement {
            from: m.from.clone().unwrap_or_else(|| "first scored".into()),
            to: m.to.clone(),
            customers: f.integer(m.customers),
        })
        .collect();
    let at_risk = risk
        .what_if
        .iter()
        .map(|w| Row { cells: vec![f.percent(w.kept_share), f.integer(w.customers), f.money(w.revenue)] })
        .collect();
    let at_risk_text = format!(
        "{} lapsing customers spent {} in their last 12 months, and {} lost customers {}. {}",
        f.integer(risk.lapsing_customers),
        f.money(risk.lapsing_revenue_12m),
        f.integer(risk.lost_customers),
        f.money(risk.lost_revenue_12m),
        risk.assumptions
    );
    let ladder = s
        .repeat_ladder
        .iter()
        .map(|l| Row {
            cells: vec![
                format!("{} → {}", l.purchases, l.purchases + 1),
                f.integer(l.customers),
                f.integer(l.made_next),
                f.percent(l.share),
            ],
        })
        .collect();
    let c = &s.cohorts;
    let max_share = c.retention.iter().flat_map(|r| r.iter().skip(1)).copied().fold(0.0, f64::max);
    let width = c.months.len();
    let cohorts = c
        .months
        .iter()
        .zip(&c.sizes)
        .zip(&c.retention)
        .enumerate()
        .map(|(i, ((month, size), shares))| CohortRow {
            month: month.clone(),
            size: f.integer(*size),
            cells: (0..width - i)
                .map(|k| {
                    let share = shares.get(k).copied().unwrap_or(0.0);
                    // Ten shades of the accent, relative to the best later month; month 0 grey.
                    let level = if k == 0 || max_share <= 0.0 {
                        0
                    } else {
                        1 + ((share / max_share) * 8.999).floor().clamp(0.0, 8.0) as usize
                    };
                    HeatCell { text: f.percent(share), level }
                })
                .collect(),
        })
        .collect();
    Overview {
        kpis,
        stages,
        stage_chart: charts::groups("Customers by lifecycle stage", &s.stages),
        movements,
        at_risk,
        at_risk_text,
        ladder_chart: charts::ladder(&s.repeat_ladder),
        ladder,
        cohort_chart: charts::cohort_heatmap(c),
        cohort_header: (0..width).map(|k| format!("+{k}")).collect(),
        cohorts,
        run: run_view(run, models, f),
    }
}

fn run_view(run: &ScoreRunInfo, models: Option<&serde_json::Value>, f: &NumberFormat) -> RunView {
    let took = match (
        kanta_domain::Timestamp::parse_rfc3339(&run.started_at),
        kanta_domain::Timestamp::parse_rfc3339(&run.finished_at),
    ) {
        (Ok(a), Ok(b)) => format!("{} s", f.decimal((b.micros() - a.micros()) as f64 / 1e6, 1)),
        _ => "–".into(),
    };
    let text = |key: &str| models.and_then(|m| m.get(key)).and_then(|v| v.as_str()).unwrap_or("–").to_owned();
    let mut notes = Vec::new();
    let mut candidates = Vec::new();
    for c in models.and_then(|m| m.get("candidates")).and_then(|c| c.as_array()).into_iter().flatten() {
        let name = c.get("model").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
        let fit = c.get("fit");
        let bic = fit.and_then(|f| f.get("bic")).and_then(|v| v.as_f64());
        let ll = fit.and_then(|f| f.get("log_likelihood")).and_then(|v| v.as_f64());
        if let Some(error) = fit.and_then(|f| f.get("error")).and_then(|v| v.as_str()) {
            notes.push(format!("{name}: {error}"));
        }
        let cell = |v: Option<f64>| v.map_or_else(|| "not fitted".into(), |v| f.decimal(v, 1));
        candidates.push(Row { cells: vec![name, cell(bic), cell(ll)] });
    }
    let holdout = run
        .diagnostics
        .get("holdout")
        .and_then(|h| h.get("mae"))
        .and_then(|v| v.as_f64())
        .map(|mae| format!("mean absolute error {} purchases per customer", f.decimal(mae, 3)));
    RunView {
        id: run.id,
        finished: readable_time(&run.finished_at),
        as_of: run.as_of.clone(),
        took,
        customers: f.integer(u64::try_from(run.customers).unwrap_or(0)),
        orders: f.integer(u64::try_from(run.orders).unwrap_or(0)),
        model: run.model.clone().unwrap_or_else(|| "none".into()),
        selected_by: text("selected_by"),
        holdout,
        candidates,
        notes,
        skipped: run.diagnostics.get("models_skipped").and_then(|v| v.as_str()).map(str::to_owned),
    }
}

/// `2026-12-05T01:23:45.123Z` → `2026-12-05 01:23 UTC`.
pub fn readable_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}
