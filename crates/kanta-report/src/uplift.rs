//! The uplift report of one journey as a self-contained HTML page (inline CSS and SVG, no
//! script), like `report.html`: the arms, every comparison with its intervals and verdict, and
//! the cumulative conversion curves with their bands.

use kanta_uplift::Interval;
use kanta_uplift::power::Verdict;
use kanta_uplift::report::{ArmTotals, MeanComparison, RevenueComparison, UpliftReport};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::charts;
use crate::format::{percent, thousands};

const TEMPLATE: &str = include_str!("../templates/uplift.html");

/// What the page shows about the journey besides the statistics.
#[derive(Debug, Clone, Serialize)]
pub struct UpliftPage<'a> {
    /// The journey's name.
    pub journey: &'a str,
    /// Its current version.
    pub version: i64,
    /// The holdout (`10%`).
    pub holdout: &'a str,
    /// The goal in words, or `none (revenue only)`.
    pub goal: &'a str,
    /// The window after entry (`30d`).
    pub window: &'a str,
    /// When it was computed, RFC 3339.
    pub computed_at: &'a str,
    /// The store's revenue at risk, in words, to set the journey's numbers beside.
    pub at_risk: Option<String>,
}

/// One arm's totals, as text.
#[derive(Debug, Serialize)]
pub struct ArmRow {
    name: &'static str,
    customers: String,
    matured: String,
    conversions: String,
    rate: String,
    revenue: String,
    per_customer: String,
    messages: String,
}

/// One comparison (treatment − control), as text.
#[derive(Debug, Serialize)]
pub struct Row {
    figure: &'static str,
    difference: String,
    first: String,
    second: String,
    mde: String,
    incremental: String,
    verdict: &'static str,
    verdict_class: &'static str,
}

/// The verdict in words, and a CSS class for its colour.
pub fn verdict_words(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::TooEarly => ("too early to tell", "early"),
        Verdict::Uplift => ("uplift", "uplift"),
        Verdict::Harm => ("harm", "harm"),
        Verdict::NoDetectableEffect => ("no detectable effect", "none"),
    }
}

fn points(v: f64) -> String {
    format!("{:+.2} pp", 100.0 * v)
}

fn interval(i: Interval, unit: impl Fn(f64) -> String) -> String {
    format!("[{}, {}]", unit(i.lower), unit(i.upper))
}

fn amount(v: f64) -> String {
    format!("{v:+.2}")
}

fn revenue_row(figure: &'static str, r: &RevenueComparison) -> Row {
    let (verdict, verdict_class) = verdict_words(r.verdict);
    Row {
        figure,
        difference: amount(r.bootstrap.difference),
        first: format!("bootstrap {}", interval(r.bootstrap.interval, amount)),
        second: format!("Welch {}", interval(r.welch.interval, amount)),
        mde: format!("{:.2}", r.minimum_detectable_effect),
        incremental: format!("{} {}", amount(r.incremental), interval(r.incremental_interval, amount)),
        verdict,
        verdict_class,
    }
}

/// A per-customer mean compared by Welch's interval (no verdict): `value` formats the difference
/// and its interval, `total` the incremental figure and its interval, followed by `unit`.
fn mean_row(
    figure: &'static str,
    m: &MeanComparison,
    value: impl Fn(f64) -> String,
    total: impl Fn(f64) -> String,
    unit: &str,
) -> Row {
    Row {
        figure,
        difference: value(m.welch.difference),
        first: format!("Welch {}", interval(m.welch.interval, &value)),
        second: String::new(),
        mde: String::new(),
        incremental: format!("{}{unit} {}", total(m.incremental), interval(m.incremental_interval, &total)),
        verdict: "",
        verdict_class: "",
    }
}

/// What a page about the report shows, as text: the arms, every comparison with its intervals
/// and verdict, the CUPED adjustment, the notes and the conversion curves (this page and the
/// dashboard's journey page draw the same).
#[derive(Debug, Serialize)]
pub struct UpliftTables {
    /// Treatment, then control.
    pub arms: Vec<ArmRow>,
    /// The comparisons.
    pub rows: Vec<Row>,
    /// θ and the variance removed, when CUPED applied.
    pub cuped: Option<minijinja::Value>,
    /// The report's notes.
    pub notes: Vec<String>,
    /// Conversions each arm needs for a verdict.
    pub min_conversions: u64,
    /// The cumulative conversion chart (SVG).
    pub curve: String,
}

/// The report as [`UpliftTables`].
pub fn tables(report: &UpliftReport) -> UpliftTables {
    let arm = |name: &'static str, a: &ArmTotals| ArmRow {
        name,
        customers: thousands(a.customers),
        matured: thousands(a.matured),
        conversions: thousands(a.conversions),
        rate: percent(a.conversion_rate),
        revenue: format!("{:.2}", a.revenue),
        per_customer: format!("{:.2}", a.revenue_per_customer),
        messages: thousands(a.messages),
    };
    let mut rows = Vec::new();
    if let Some(c) = &report.conversion {
        let (verdict, verdict_class) = verdict_words(c.verdict);
        rows.push(Row {
            figure: "conversion rate",
            difference: points(c.difference.difference),
            first: format!("Newcombe {}", interval(c.difference.newcombe, points)),
            second: format!("Wald {}", interval(c.difference.wald, points)),
            mde: points(c.minimum_detectable_effect),
            incremental: format!(
                "{:+.1} conversions [{:+.1}, {:+.1}]",
                c.incremental, c.incremental_interval.lower, c.incremental_interval.upper
            ),
            verdict,
            verdict_class,
        });
    }
    if let Some(r) = &report.revenue {
        rows.push(revenue_row("revenue per customer", r));
    }
    if let Some(orders) = &report.orders {
        rows.push(mean_row("orders per customer", orders, |v| format!("{v:+.4}"), |v| format!("{v:+.1}"), " orders"));
    }
    if let Some(clv) = &report.clv {
        rows.push(mean_row("predicted 12-month CLV", clv, amount, amount, ""));
    }
    let cuped = report.cuped.as_ref().map(|c| {
        rows.push(revenue_row("revenue per customer, CUPED", &c.revenue));
        context! { theta => format!("{:.4}", c.theta), reduction => percent(c.variance_reduction) }
    });
    UpliftTables {
        arms: vec![arm("treatment", &report.treatment), arm("control", &report.control)],
        rows,
        cuped,
        notes: report.notes.clone(),
        min_conversions: report.settings.rule.min_conversions,
        curve: charts::conversion_curves(&report.curve_treatment, &report.curve_control),
    }
}

/// Renders the page.
pub fn render_uplift_html(page: &UpliftPage<'_>, report: &UpliftReport) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("uplift.html", TEMPLATE)?;
    env.add_template("base.css", crate::BASE_CSS)?;
    let t = tables(report);
    env.get_template("uplift.html")?.render(context! {
        version => env!("CARGO_PKG_VERSION"),
        p => page,
        arms => t.arms,
        rows => t.rows,
        cuped => t.cuped,
        notes => t.notes,
        min_conversions => t.min_conversions,
        curve => t.curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kanta_uplift::curve::FollowUp;
    use kanta_uplift::report::{Settings, Unit, report};

    #[test]
    fn the_page_shows_the_arms_the_comparisons_and_the_curve() {
        let mut units = Vec::new();
        for i in 0..200u32 {
            for control in [false, true] {
                let converted = i < if control { 40 } else { 60 };
                units.push(Unit {
                    control,
                    matured: true,
                    converted,
                    revenue_after: if converted { 30.0 } else { 0.0 },
                    orders_after: if converted { 1.0 } else { 0.0 },
                    revenue_before: f64::from(i % 7),
                    messages: u64::from(!control),
                    predicted_clv: if converted { 80.0 } else { 10.0 },
                    follow_up: FollowUp { days_followed: 30, converted_on: converted.then_some(i % 30) },
                });
            }
        }
        let r = report(&units, Settings::default()).unwrap();
        let page = UpliftPage {
            journey: "win-back",
            version: 2,
            holdout: "50%",
            goal: "event order.created within 30d",
            window: "30d",
            computed_at: "2026-12-04T00:00:00Z",
            at_risk: Some("revenue at risk in the store now: 3 lapsing customers".into()),
        };
        let html = render_uplift_html(&page, &r).unwrap();
        assert!(html.contains("<h1>Uplift of journey “win-back”</h1>"), "{html}");
        // 60/200 − 40/200 = +10 pp; 30·(60 − 40)/200 = 3 per customer.
        assert!(html.contains("<td>conversion rate</td><td>+10.00 pp</td>"), "{html}");
        assert!(html.contains("<td>revenue per customer</td><td>+3.00</td>"), "{html}");
        // One order per converter: (60 − 40)/200 more orders per customer, 20 among the treated.
        assert!(html.contains("<td>orders per customer</td><td>+0.1000</td>"), "{html}");
        assert!(html.contains("+20.0 orders"), "{html}");
        assert!(html.contains("<td>treatment</td><td>200</td><td>200</td><td>60</td><td>30.0%</td>"), "{html}");
        // (60·80 + 140·10)/200 − (40·80 + 160·10)/200 = 31 − 24.
        assert!(html.contains("<td>predicted 12-month CLV</td><td>+7.00</td>"), "{html}");
        assert!(html.contains("revenue at risk in the store now: 3 lapsing customers"), "{html}");
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("aria-label=\"Cumulative conversion by day since entry\""));
        assert!(!html.contains("chart-error"));
    }
}
