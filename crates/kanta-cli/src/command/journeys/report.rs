//! `kanta journeys report NAME [--json]`: a journey's uplift against its holdout
//! (`kanta_engine::uplift::uplift_report`), as tables or JSON.

use anyhow::Context;
use kanta_engine::uplift::{JourneyUplift, uplift_report};
use kanta_uplift::Interval;
use kanta_uplift::bootstrap::Options;
use kanta_uplift::power::Verdict;
use kanta_uplift::report::{ArmTotals, RevenueComparison, Settings};

use crate::UsageError;
use crate::cli::JourneysReportArgs;
use crate::command::with_store;

/// Prints the report.
pub fn report(args: &JourneysReportArgs) -> anyhow::Result<()> {
    let now = super::now_or(args.now.as_deref())?;
    let settings =
        Settings { bootstrap: Options { resamples: args.resamples, seed: args.seed }, ..Settings::default() };
    let name = &args.name;
    let uplift = with_store(&args.store, async |store| Ok(uplift_report(store, name, now, settings).await?))?
        .ok_or_else(|| UsageError(format!("no journey `{name}` in the store (see `kanta journeys list`)")))?;
    if let Some(file) = &args.html {
        let page = kanta_report::uplift::UpliftPage {
            journey: &uplift.journey,
            version: uplift.version,
            holdout: &uplift.holdout,
            goal: uplift.goal.as_deref().unwrap_or("none (revenue only)"),
            window: &uplift.window,
            computed_at: &uplift.computed_at,
            at_risk: Some(at_risk(&uplift.revenue_at_risk)),
        };
        let html = kanta_report::uplift::render_uplift_html(&page, &uplift.report)
            .map_err(|e| anyhow::anyhow!("rendering the uplift page: {e}"))?;
        std::fs::write(file, html).with_context(|| format!("writing {}", file.display()))?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&uplift)?)?;
    } else {
        for line in text(&uplift) {
            outln!("{line}")?;
        }
    }
    Ok(())
}

/// The report as lines of text.
pub fn text(u: &JourneyUplift) -> Vec<String> {
    let r = &u.report;
    let mut out = vec![
        format!(
            "{}: version {}, holdout {}, goal {}",
            u.journey,
            u.version,
            u.holdout,
            u.goal.as_deref().unwrap_or("none (revenue only)")
        ),
        format!(
            "computed at {}; customers from their first entry, compared once their {} window has passed",
            u.computed_at, u.window
        ),
        String::new(),
        format!(
            "{:<10} {:>10} {:>9} {:>11} {:>9} {:>14} {:>9}",
            "arm", "customers", "matured", "conversions", "rate", "revenue/cust.", "messages"
        ),
    ];
    let arm = |name: &str, a: &ArmTotals| {
        format!(
            "{name:<10} {:>10} {:>9} {:>11} {:>8.2}% {:>14.2} {:>9}",
            a.customers,
            a.matured,
            a.conversions,
            100.0 * a.conversion_rate,
            a.revenue_per_customer,
            a.messages
        )
    };
    out.push(arm("treatment", &r.treatment));
    out.push(arm("control", &r.control));
    out.push(String::new());
    match &r.conversion {
        Some(c) => {
            let pp = |i: Interval| format!("[{:+.2}, {:+.2}] pp", 100.0 * i.lower, 100.0 * i.upper);
            out.push(format!(
                "conversion rate   {:+.2} pp   95% Newcombe {}, Wald {}; detectable at 80% power: {:.2} pp   → {}",
                100.0 * c.difference.difference,
                pp(c.difference.newcombe),
                pp(c.difference.wald),
                100.0 * c.minimum_detectable_effect,
                verdict(c.verdict)
            ));
            out.push(format!(
                "  incremental conversions {:+.1} [{:+.1}, {:+.1}]",
                c.incremental, c.incremental_interval.lower, c.incremental_interval.upper
            ));
        }
        None => out.push("conversion rate   too early to tell".to_owned()),
    }
    if let Some(revenue) = &r.revenue {
        out.extend(revenue_lines("revenue/customer", revenue));
    }
    if let Some(cuped) = &r.cuped {
        out.extend(revenue_lines("  with CUPED", &cuped.revenue));
        out.push(format!(
            "  CUPED on revenue in the year before entry: θ = {:.4}, variance of the difference {:.1}% lower",
            cuped.theta,
            100.0 * cuped.variance_reduction
        ));
    }
    if let Some(orders) = &r.orders {
        out.push(format!(
            "orders/customer   {:+.4}   95% Welch [{:+.4}, {:+.4}]; incremental orders {:+.1} [{:+.1}, {:+.1}]",
            orders.welch.difference,
            orders.welch.interval.lower,
            orders.welch.interval.upper,
            orders.incremental,
            orders.incremental_interval.lower,
            orders.incremental_interval.upper
        ));
    }
    if let Some(clv) = &r.clv {
        out.push(format!(
            "predicted 12-month CLV {:+.2} per customer, 95% Welch [{:+.2}, {:+.2}]; kept among the treated {:+.2} [{:+.2}, {:+.2}]",
            clv.welch.difference,
            clv.welch.interval.lower,
            clv.welch.interval.upper,
            clv.incremental,
            clv.incremental_interval.lower,
            clv.incremental_interval.upper
        ));
    }
    out.push(at_risk(&u.revenue_at_risk));
    for note in &r.notes {
        out.push(format!("note: {note}"));
    }
    for split in &u.splits {
        let line = match &split.report.conversion {
            Some(c) => format!(
                "{:+.2} pp, 95% Newcombe [{:+.2}, {:+.2}] pp → {}",
                100.0 * c.difference.difference,
                100.0 * c.difference.newcombe.lower,
                100.0 * c.difference.newcombe.upper,
                verdict(c.verdict)
            ),
            None => "too early to tell".to_owned(),
        };
        out.push(format!(
            "split {}: arm {} ({} customers) against arm {} ({}): conversion {line}",
            split.step, split.arm, split.report.treatment.customers, split.baseline, split.report.control.customers
        ));
    }
    if !u.funnel.is_empty() {
        out.push(String::new());
        out.push(format!("{:<24} {:<16} {:>9}", "step", "outcome", "runs"));
        for row in &u.funnel {
            out.push(format!("{:<24} {:<16} {:>9}", row.step, row.outcome, row.runs));
        }
    }
    out
}

/// The store's revenue at risk, in words.
pub fn at_risk(a: &kanta_store::journey::RevenueAtRisk) -> String {
    let money = |raw: i64| kanta_domain::money::Money::from_raw(raw).to_f64();
    format!(
        "revenue at risk in the store now: {} lapsing customers ({:.2} in their last 12 months), {} lost ({:.2})",
        a.lapsing_customers,
        money(a.lapsing_revenue_12m),
        a.lost_customers,
        money(a.lost_revenue_12m)
    )
}

fn revenue_lines(label: &str, r: &RevenueComparison) -> Vec<String> {
    let i = |i: Interval| format!("[{:+.2}, {:+.2}]", i.lower, i.upper);
    vec![
        format!(
            "{label:<17} {:+.2}   95% bootstrap {} ({} resamples, seed {}), Welch {}; detectable: {:.2}   → {}",
            r.bootstrap.difference,
            i(r.bootstrap.interval),
            r.bootstrap.options.resamples,
            r.bootstrap.options.seed,
            i(r.welch.interval),
            r.minimum_detectable_effect,
            verdict(r.verdict)
        ),
        format!("  incremental revenue {:+.2} {}", r.incremental, i(r.incremental_interval)),
    ]
}

fn verdict(v: Verdict) -> &'static str {
    kanta_report::uplift::verdict_words(v).0
}
