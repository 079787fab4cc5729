//! The terminal summary: plain aligned tables, no colour codes, so it reads the same in a
//! terminal, a log file and a snapshot test.

use std::fmt::Write as _;

use kanta_core::analysis::GroupRow;

use crate::Report;
use crate::format::{money, money_f64, percent, thousands};

/// Column alignment.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

fn table(out: &mut String, headers: &[&str], align: &[Align], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                text.push_str("  ");
            }
            match align[i] {
                Align::Left => {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
                Align::Right => {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                }
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(out, &widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(out, row);
    }
}

/// Renders the summary as text for a terminal.
pub fn render_text(report: &Report<'_>) -> String {
    use Align::{Left, Right};
    let s = report.summary;
    let cur = report.input.currency.as_deref();
    let mut out = String::new();
    let _ = writeln!(out, "kanta retention summary — as of {}", s.as_of);
    let _ =
        write!(out, "  input: {} ({}, {} rows", report.input.file, report.input.format, thousands(report.input.rows));
    if report.input.rows_skipped > 0 {
        let _ = write!(out, ", {} skipped", thousands(report.input.rows_skipped));
    }
    out.push_str(")\n");
    let _ = writeln!(out, "  columns: {}", report.input.columns);
    if let Some(p) = &report.pushdown {
        let _ = writeln!(
            out,
            "  push-down: {} rows aggregated in the engine into {} orders of {} customers; pulled {} distinct histories and {} spend keys ({} bytes); {} statements; engine {:.2} s, kanta {:.2} s; scores in {}",
            thousands(p.rows_aggregated),
            thousands(p.orders),
            thousands(p.customers),
            thousands(p.distinct_histories),
            thousands(p.spend_keys),
            thousands(p.bytes_received),
            p.statements,
            p.engine_seconds,
            p.kanta_seconds,
            p.score_table
        );
    }
    out.push('\n');

    let kpis = vec![
        vec!["Customers".into(), thousands(s.customers)],
        vec!["Orders".into(), thousands(s.orders)],
        vec!["Revenue".into(), money(s.revenue, cur)],
        vec!["One-time buyers".into(), percent(s.one_time_share)],
        vec!["Average order value".into(), money_f64(s.average_order_value, cur)],
        vec![
            "Returns".into(),
            format!(
                "{}, {} ({} of revenue)",
                count(s.returns.orders, "order"),
                money(s.returns.amount, cur),
                percent(s.returns.share_of_revenue)
            ),
        ],
    ];
    table(&mut out, &["Overview", ""], &[Left, Right], &kpis);

    out.push_str("\nRepeat-purchase ladder (of customers with k orders, the share who made another)\n");
    let ladder: Vec<Vec<String>> = s
        .repeat_ladder
        .iter()
        .map(|l| {
            vec![
                format!("{} → {}", l.purchases, l.purchases + 1),
                thousands(l.customers),
                thousands(l.made_next),
                percent(l.share),
            ]
        })
        .collect();
    table(&mut out, &["orders", "customers", "made next", "share"], &[Left, Right, Right, Right], &ladder);

    let c = &s.concentration;
    out.push_str("\nRevenue concentration\n");
    table(
        &mut out,
        &["top 1%", "top 10%", "top 20%", "Gini", "AOV top 10% / rest"],
        &[Right, Right, Right, Right, Right],
        &[vec![
            percent(c.top_1pct_share),
            percent(c.top_10pct_share),
            percent(c.top_20pct_share),
            format!("{:.3}", c.gini),
            format!("{:.2}×", c.top_10pct_aov_ratio),
        ]],
    );

    let t = &s.time_between_purchases;
    let median = |m: Option<f64>| m.map_or("–".to_owned(), |d| format!("{d:.0} days"));
    let _ = writeln!(
        out,
        "\nTime between purchases: median {} from 1st to 2nd purchase ({} came back), {} between any two",
        median(t.median_days_first_to_second),
        count(t.customers_with_second, "customer"),
        median(t.median_days_between_purchases)
    );

    let r = &s.revenue_at_risk;
    let _ = writeln!(
        out,
        "\nRevenue at risk (lapse threshold {} days): lapsing customers ({}) spent {} in the last 12 months; lost customers ({}) spent {}",
        s.lapse_days,
        thousands(r.lapsing_customers),
        money(r.lapsing_revenue_12m, cur),
        thousands(r.lost_customers),
        money(r.lost_revenue_12m, cur),
    );
    let what_if: Vec<Vec<String>> =
        r.what_if.iter().map(|w| vec![percent(w.kept_share), thousands(w.customers), money(w.revenue, cur)]).collect();
    table(&mut out, &["kept", "customers", "revenue kept (12 months)"], &[Right, Right, Right], &what_if);

    out.push_str("\nLifecycle stages\n");
    group_table(&mut out, "stage", &s.stages, cur);
    out.push_str("\nRFM segments\n");
    let segments: Vec<GroupRow> = s.segments.iter().filter(|g| g.customers > 0).cloned().collect();
    group_table(&mut out, "segment", &segments, cur);
    if let Some(m) = report.models {
        models_table(&mut out, m, cur);
        if let Some(h) = report.holdout {
            holdout_table(&mut out, h);
        }
    } else if let Some(why) = &report.models_skipped {
        let _ = writeln!(out, "\nCustomer models: {why}");
    }
    out
}

fn holdout_table(out: &mut String, h: &kanta_score::HoldoutReport) {
    use Align::{Left, Right};
    let _ = writeln!(
        out,
        "\nHoldout validation: calibrated to {}, predicted {} days to {} for {} customers ({} actual purchases)",
        h.calibration_end,
        h.holdout_days,
        h.holdout_end,
        thousands(h.customers),
        thousands(h.actual_total as u64)
    );
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.4}"));
    let rows: Vec<Vec<String>> = h
        .models
        .iter()
        .map(|m| {
            let name = format!("{}{}", kanta_models::title(m.model), if m.model == h.best { " ✓" } else { "" });
            match &m.fit {
                Ok(_) => vec![
                    name,
                    num(m.mae),
                    num(m.rmse),
                    num(m.bias),
                    m.predicted_total.map_or("–".into(), |v| thousands(v.round() as u64)),
                ],
                Err(e) => vec![name, e.clone(), String::new(), String::new(), String::new()],
            }
        })
        .collect();
    table(out, &["model", "MAE", "RMSE", "bias", "predicted"], &[Left, Right, Right, Right, Right], &rows);
}

fn models_table(out: &mut String, m: &kanta_score::ModelSummary, cur: Option<&str>) {
    use Align::{Left, Right};
    let chosen = m.candidates.iter().find(|c| c.model == m.chosen).and_then(|c| c.fit.as_ref().ok());
    let params = chosen.map_or(String::new(), |f| {
        f.params.iter().map(|p| format!("{} = {:.4}", p.name, p.value)).collect::<Vec<_>>().join(", ")
    });
    let _ =
        writeln!(out, "\nCustomer model: {} ({}; chosen by {})", kanta_models::title(m.chosen), params, m.selected_by);
    if let Some(fallback) = &m.fallback {
        let _ = writeln!(out, "{}", fallback.note);
    }
    let round = |v: f64| thousands(v.round().max(0.0) as u64);
    let rows = vec![
        vec![
            "Expected purchases, next 30 / 90 / 365 days".into(),
            format!(
                "{} / {} / {}",
                round(m.expected_purchases[0]),
                round(m.expected_purchases[1]),
                round(m.expected_purchases[2])
            ),
        ],
        vec![
            "Predicted revenue, next 12 months (CLV)".into(),
            m.clv_12m_total.map_or("–".to_owned(), |v| money_f64(v, cur)),
        ],
        vec!["Mean P(alive)".into(), percent(m.mean_p_alive)],
        vec![
            "Churn risk low / medium / high / very high".into(),
            m.risk_bands.iter().map(|n| thousands(*n)).collect::<Vec<_>>().join(" / "),
        ],
        vec!["Slipping valuable customers".into(), thousands(m.slipping_customers)],
    ];
    table(out, &["forecast", ""], &[Left, Right], &rows);
}

/// `1 order`, `2 orders`, `1,234 orders`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{} {noun}s", thousands(n)) }
}

/// Customers and revenue per segment or stage.
fn group_table(out: &mut String, key: &str, groups: &[GroupRow], cur: Option<&str>) {
    use Align::{Left, Right};
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                thousands(g.customers),
                percent(g.share),
                money(g.revenue, cur),
                percent(g.revenue_share),
            ]
        })
        .collect();
    table(out, &[key, "customers", "share", "revenue", "of revenue"], &[Left, Right, Right, Right, Right], &rows);
}
