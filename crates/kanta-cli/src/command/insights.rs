//! `kanta insights feedback`: the feedback insights as terminal tables or JSON.

use std::fmt::Write as _;

use kanta_core::feedback::{FeedbackInsights, Group, Options, Score, insights};

use super::with_store;
use crate::cli::InsightsFeedbackArgs;

pub fn feedback(args: &InsightsFeedbackArgs) -> anyhow::Result<()> {
    let (responses, customers) = with_store(&args.store, async |store| Ok(store.feedback_facts().await?))?;
    let options = Options {
        now: kanta_store::now_micros().div_euclid(1_000_000),
        months: args.months,
        call_limit: args.limit,
        ..Options::default()
    };
    let computed = insights(&responses, &customers, &options);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&computed)?)?;
    } else {
        out!("{}", render(&computed))?;
    }
    Ok(())
}

fn nps(s: &Score) -> String {
    s.nps.map_or_else(|| "-".into(), |n| format!("{n:+.0}"))
}

fn csat(s: &Score) -> String {
    s.csat.map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// A bar for an NPS from −100 to 100: left of the axis for negative, right for positive.
fn nps_bar(s: &Score) -> String {
    let Some(n) = s.nps else { return String::new() };
    let half = 10usize;
    let len = ((n.abs() / 100.0) * half as f64).round() as usize;
    if n < 0.0 {
        format!("{}{}|", " ".repeat(half - len), "█".repeat(len))
    } else {
        format!("{}|{}", " ".repeat(half), "█".repeat(len))
    }
}

fn table(out: &mut String, title: &str, groups: &[Group], bars: bool) {
    let _ = writeln!(out, "\n{title:<14} {:>9} {:>6} {:>6} {:>8}", "responses", "NPS", "CSAT", "CSAT 4-5");
    for g in groups {
        let s = &g.score;
        let satisfied = s.csat_satisfied.map_or_else(|| "-".into(), percent);
        let bar = if bars { nps_bar(s) } else { String::new() };
        let _ = writeln!(out, "{:<14} {:>9} {:>6} {:>6} {:>8}  {bar}", g.name, s.responses, nps(s), csat(s), satisfied);
    }
}

/// The terminal report.
pub fn render(i: &FeedbackInsights) -> String {
    let mut out = String::new();
    let o = &i.overall;
    let _ = writeln!(out, "feedback as of {}: {} responses from {} customers", i.as_of, i.responses, i.customers);
    if i.responses == 0 {
        let _ = writeln!(out, "no feedback yet: POST /v1/feedback or `kanta import feedback FILE`");
        return out;
    }
    let _ = writeln!(
        out,
        "NPS {} ({} promoters, {} passives, {} detractors of {} answers) · CSAT {} ({} satisfied of {} answers)",
        nps(o),
        o.promoters,
        o.passives,
        o.detractors,
        o.nps_responses,
        csat(o),
        o.csat_satisfied.map_or_else(|| "-".into(), percent),
        o.csat_responses
    );
    table(&mut out, "month", &i.by_month, true);
    table(&mut out, "stage now", &i.by_stage, false);
    table(&mut out, "value tier", &i.by_value_tier, false);
    let topics: Vec<Group> = i.by_topic.iter().take(15).cloned().collect();
    table(&mut out, "topic", &topics, false);

    let lapse = &i.before_lapse;
    let _ = writeln!(
        out,
        "\ntopics in the last {} active days: {} lapsed customers against {} active ones",
        lapse.window_days, lapse.lapsed_customers, lapse.active_customers
    );
    if lapse.lapsed_customers > 0 {
        let _ = writeln!(out, "{:<20} {:>8} {:>8} {:>6}", "topic", "lapsed", "active", "lift");
        for t in lapse.topics.iter().take(10) {
            let lift = t.lift.map_or_else(|| "new".into(), |l| format!("{l:.1}×"));
            let _ = writeln!(
                out,
                "{:<20} {:>8} {:>8} {:>6}",
                t.topic,
                percent(t.lapsed_share),
                percent(t.active_share),
                lift
            );
        }
    }

    let _ = writeln!(out, "\nwho to call: valuable detractors not yet lost ({})", i.call_list.len());
    for c in &i.call_list {
        let score = match (c.nps, c.csat) {
            (Some(n), Some(s)) => format!("NPS {n}, CSAT {s}"),
            (Some(n), None) => format!("NPS {n}"),
            (None, Some(s)) => format!("CSAT {s}"),
            (None, None) => String::new(),
        };
        let value = c.clv_12m.map_or_else(|| format!("revenue {:.2}", c.revenue), |v| format!("CLV 12m {v:.2}"));
        let mut who = c.customer.clone();
        if let Some(name) = &c.name {
            who.push_str(&format!(" {name}"));
        }
        if let Some(email) = &c.email {
            who.push_str(&format!(" <{email}>"));
        }
        let mut line = format!(
            "  {who}: {score} on {} · {}, {}, {value}",
            c.responded,
            c.value_tier.as_deref().unwrap_or("-"),
            c.stage.as_deref().unwrap_or("-")
        );
        if !c.topics.is_empty() {
            line.push_str(&format!(" · {}", c.topics.join(", ")));
        }
        if let Some(text) = &c.text {
            line.push_str(&format!(" · “{text}”"));
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_bars_grow_away_from_the_axis() {
        let s = |n: f64| Score { nps: Some(n), ..Score::default() };
        assert_eq!(nps_bar(&s(-50.0)), "     █████|");
        assert_eq!(nps_bar(&s(100.0)), "          |██████████");
        assert_eq!(nps_bar(&s(0.0)), "          |");
        assert_eq!(nps_bar(&Score::default()), "");
    }
}
