//! The self-contained HTML report: one file, inline CSS and SVG, no script and no external
//! asset, so it opens offline and can be mailed around.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::format::{money, money_f64, percent, thousands};
use crate::{Report, charts};

const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Serialize)]
struct Kpi {
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Cell {
    text: String,
    bg: String,
}

#[derive(Serialize)]
struct CohortRow {
    month: String,
    size: String,
    cells: Vec<Cell>,
}

/// Renders `report.html`.
pub fn render_html(report: &Report<'_>) -> Result<String, minijinja::Error> {
    let s = report.summary;
    let cur = report.input.currency.as_deref();
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    env.add_template("base.css", crate::BASE_CSS)?;
    let kpis = vec![
        Kpi { label: "Customers", value: thousands(s.customers) },
        Kpi { label: "Orders", value: thousands(s.orders) },
        Kpi { label: "Revenue", value: money(s.revenue, cur) },
        Kpi { label: "One-time buyers", value: percent(s.one_time_share) },
        Kpi { label: "Average order value", value: money_f64(s.average_order_value, cur) },
        Kpi { label: "Top 20 % share of revenue", value: percent(s.concentration.top_20pct_share) },
    ];
    let ladder: Vec<_> = s
        .repeat_ladder
        .iter()
        .map(|l| {
            context! {
                step => format!("{} → {}", l.purchases, l.purchases + 1),
                customers => thousands(l.customers),
                next => thousands(l.made_next),
                share => percent(l.share),
            }
        })
        .collect();
    let c = &s.concentration;
    let max_cohort_share = s.cohorts.retention.iter().flat_map(|r| r.iter().skip(1)).copied().fold(0.0, f64::max);
    let width = s.cohorts.months.len();
    let cohort_rows: Vec<CohortRow> = s
        .cohorts
        .months
        .iter()
        .zip(&s.cohorts.sizes)
        .zip(&s.cohorts.retention)
        .map(|((month, size), shares)| CohortRow {
            month: month.clone(),
            size: thousands(*size),
            cells: shares
                .iter()
                .enumerate()
                .map(|(k, &share)| {
                    let alpha =
                        if k == 0 || max_cohort_share <= 0.0 { 0.0 } else { (share / max_cohort_share).min(1.0) * 0.6 };
                    Cell { text: percent(share), bg: format!("rgba(37, 99, 235, {alpha:.2})") }
                })
                .collect(),
        })
        .collect();
    let t = &s.time_between_purchases;
    let days = |m: Option<f64>| m.map_or("–".to_owned(), |d| format!("{d:.0} days"));
    let r = &s.revenue_at_risk;
    let groups = |rows: &[kanta_core::analysis::GroupRow]| -> Vec<minijinja::Value> {
        rows.iter()
            .map(|g| {
                context! {
                    name => g.name, customers => thousands(g.customers), share => percent(g.share),
                    revenue => money(g.revenue, cur), revenue_share => percent(g.revenue_share),
                }
            })
            .collect()
    };
    let models = report.models.map(|m| models_context(m, cur));
    let holdout = report.holdout.map(holdout_context);
    let ctx = context! {
        models => models,
        holdout => holdout,
        models_skipped => report.models_skipped,
        version => report.kanta_version,
        input => &report.input,
        rows => thousands(report.input.rows),
        s => s,
        kpis => kpis,
        ladder => ladder,
        conc => context! {
            top1 => percent(c.top_1pct_share), top10 => percent(c.top_10pct_share), top20 => percent(c.top_20pct_share),
            gini => format!("{:.3}", c.gini), aov_ratio => format!("{:.2}×", c.top_10pct_aov_ratio),
            aov_top => money_f64(c.top_10pct_aov, cur), aov_rest => money_f64(c.rest_aov, cur),
        },
        cohort_header => (0..width).collect::<Vec<_>>(),
        cohort_rows => cohort_rows,
        gaps => context! {
            median12 => days(t.median_days_first_to_second), median_any => days(t.median_days_between_purchases),
            with_second => thousands(t.customers_with_second),
        },
        lost_days => 2 * s.lapse_days,
        risk => context! {
            lapsing => thousands(r.lapsing_customers), lapsing_revenue => money(r.lapsing_revenue_12m, cur),
            lost => thousands(r.lost_customers), lost_revenue => money(r.lost_revenue_12m, cur),
        },
        what_if => r.what_if.iter().map(|w| context! {
            kept => percent(w.kept_share), customers => thousands(w.customers), revenue => money(w.revenue, cur),
        }).collect::<Vec<_>>(),
        segments => groups(&s.segments),
        returns => format!(
            "{} orders, {} ({} of revenue), from {} customers ({} of them with no purchase in the data)",
            thousands(s.returns.orders), money(s.returns.amount, cur), percent(s.returns.share_of_revenue),
            thousands(s.returns.customers), thousands(s.returns.customers_without_purchases),
        ),
        charts => context! {
            ladder => charts::ladder(&s.repeat_ladder),
            lorenz => charts::lorenz(c),
            cohorts => charts::cohort_heatmap(&s.cohorts),
            gaps => charts::gaps(t),
            stages => charts::groups("Customers and revenue by lifecycle stage", &s.stages),
            segments => charts::groups("Customers and revenue by RFM segment", &s.segments),
        },
    };
    env.get_template("report.html")?.render(ctx)
}

fn holdout_context(h: &kanta_score::HoldoutReport) -> minijinja::Value {
    let num = |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    let rows: Vec<_> = h
        .models
        .iter()
        .map(|m| match &m.fit {
            Ok(_) => context! {
                model => kanta_models::title(m.model), best => m.model == h.best,
                mae => num(m.mae, 4), rmse => num(m.rmse, 4), bias => num(m.bias, 4), predicted => num(m.predicted_total, 0),
            },
            Err(e) => context! { model => kanta_models::title(m.model), error => e },
        })
        .collect();
    let t = &h.tracking;
    let actual: Vec<(f64, f64)> = t.weeks.iter().copied().zip(t.actual.iter().copied()).collect();
    let predicted: Vec<(f64, f64)> = t.weeks.iter().copied().zip(t.predicted.iter().copied()).collect();
    let cond_actual: Vec<(f64, f64)> = h.conditional.iter().enumerate().map(|(i, r)| (i as f64, r.actual)).collect();
    let cond_model: Vec<(f64, f64)> = h.conditional.iter().enumerate().map(|(i, r)| (i as f64, r.predicted)).collect();
    context! {
        calibration_end => h.calibration_end, holdout_end => h.holdout_end, days => h.holdout_days,
        customers => thousands(h.customers), actual_total => thousands(h.actual_total as u64),
        best => kanta_models::title(h.best), rows => rows,
        conditional => h.conditional.iter().map(|r| context! {
            frequency => r.frequency, customers => thousands(r.customers),
            actual => format!("{:.3}", r.actual), predicted => format!("{:.3}", r.predicted),
        }).collect::<Vec<_>>(),
        charts => context! {
            tracking => charts::actual_vs_model(
                "Tracking: cumulative repeat purchases, actual and model",
                ("week", "cumulative repeat purchases"), &actual, &predicted, Some(t.holdout_week), false,
            ),
            conditional => charts::actual_vs_model(
                "Conditional expectations: holdout purchases by calibration purchases",
                ("repeat purchases in calibration (7 = 7+)", "mean purchases in holdout"), &cond_actual, &cond_model, None, false,
            ),
        },
    }
}

/// Background of a heat-map cell at `share` of the maximum.
fn heat_colour(share: f64) -> String {
    format!("rgba(37, 99, 235, {:.2})", share.clamp(0.0, 1.0) * 0.6)
}

fn fit_rows(report: &kanta_models::FitReport) -> Vec<minijinja::Value> {
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.4}"));
    report
        .params
        .iter()
        .map(|p| {
            context! {
                name => p.name, value => format!("{:.4}", p.value), se => num(p.std_error),
                interval => match (p.lower, p.upper) {
                    (Some(lo), Some(hi)) => format!("{lo:.4} – {hi:.4}"),
                    _ => "–".to_owned(),
                },
            }
        })
        .collect()
}

fn models_context(m: &kanta_score::ModelSummary, cur: Option<&str>) -> minijinja::Value {
    let chosen = m.candidates.iter().find(|c| c.model == m.chosen).and_then(|c| c.fit.as_ref().ok());
    let comparison: Vec<_> = m
        .candidates
        .iter()
        .map(|c| match &c.fit {
            Ok(f) => context! {
                model => kanta_models::title(c.model), chosen => c.model == m.chosen,
                ll => format!("{:.2}", f.log_likelihood), aic => format!("{:.2}", f.aic), bic => format!("{:.2}", f.bic),
                iterations => f.iterations,
            },
            Err(e) => context! { model => kanta_models::title(c.model), error => e },
        })
        .collect();
    let max_heat = m.expected_heatmap.iter().flatten().flatten().copied().fold(0.0, f64::max);
    let heat: Vec<_> = m
        .expected_heatmap
        .iter()
        .enumerate()
        .map(|(row, cells)| {
            context! {
                label => if row == 10 { "10+".to_owned() } else { row.to_string() },
                cells => cells.iter().map(|c| match c {
                    Some(v) => context! { text => format!("{v:.2}"), bg => heat_colour(*v / max_heat.max(1e-12)) },
                    None => context! { text => "", bg => "transparent" },
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let p_labels: Vec<String> = m.p_alive_histogram.iter().map(|b| format!("{:.1}", b.from)).collect();
    let p_counts: Vec<u64> = m.p_alive_histogram.iter().map(|b| b.customers).collect();
    // Logarithmic bins: the lower edges span decades, so the labels keep two significant digits.
    let compact = |v: f64| match v {
        v if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        v if v >= 1_000.0 => format!("{:.1}k", v / 1000.0),
        v if v >= 10.0 => format!("{v:.0}"),
        v if v >= 1.0 => format!("{v:.1}"),
        0.0 => "0".to_owned(),
        v => format!("{v:.2}"),
    };
    let clv_labels: Vec<String> = m.clv_histogram.iter().map(|b| compact(b.from)).collect();
    let clv_counts: Vec<u64> = m.clv_histogram.iter().map(|b| b.customers).collect();
    let round = |v: f64| thousands(v.round().max(0.0) as u64);
    context! {
        title => kanta_models::title(m.chosen),
        selected_by => m.selected_by,
        fallback_note => m.fallback.as_ref().map(|f| f.note.clone()),
        params => chosen.map(fit_rows),
        customers => chosen.map(|f| thousands(f.customers.round() as u64)),
        comparison => comparison,
        spend => m.spend.as_ref().ok().map(fit_rows),
        spend_error => m.spend.as_ref().err(),
        kpis => vec![
            Kpi { label: "Expected purchases, next 30 days", value: round(m.expected_purchases[0]) },
            Kpi { label: "… next 90 days", value: round(m.expected_purchases[1]) },
            Kpi { label: "… next 365 days", value: round(m.expected_purchases[2]) },
            Kpi { label: "Predicted revenue, next 12 months (CLV)", value: m.clv_12m_total.map_or("–".to_owned(), |v| money_f64(v, cur)) },
            Kpi { label: "Mean P(alive)", value: percent(m.mean_p_alive) },
            Kpi { label: "Slipping valuable customers", value: thousands(m.slipping_customers) },
        ],
        bands => m.risk_bands.iter().zip(["low", "medium", "high", "very high"]).map(|(n, name)| context! { name => name, customers => thousands(*n) }).collect::<Vec<_>>(),
        heat => heat,
        targets => m.targets.iter().map(|t| context! {
            id => t.customer_id, clv => money_f64(t.clv_12m, cur), p_alive => percent(t.p_alive),
            revenue => money_f64(t.revenue, cur), stage => t.stage,
        }).collect::<Vec<_>>(),
        clv_definition => m.clv_definition,
        charts => context! {
            p_alive => charts::bars("Customers by probability of being active", "P(alive)", &p_labels, &p_counts),
            clv => (!clv_counts.is_empty()).then(|| charts::bars(
                "Customers by predicted 12-month CLV",
                "CLV, 12 months (lower edge of logarithmic bins)",
                &clv_labels,
                &clv_counts,
            )),
        },
    }
}
