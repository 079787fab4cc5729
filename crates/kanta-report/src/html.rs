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
    let ctx = context! {
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
