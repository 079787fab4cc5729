//! `kanta retention`: fit the sBG model to a subscription cohort and project its survival.

use anyhow::Context;
use kanta_io::summary::read_survivors;
use kanta_models::{FitOptions, Sbg};
use serde_json::json;

use crate::cli::RetentionArgs;
use crate::command::fit::{fit_json, fit_table, write_json};

pub fn run(args: &RetentionArgs) -> anyhow::Result<()> {
    let survivors = read_survivors(&args.input)?;
    let (model, report) = Sbg::fit(&survivors, &FitOptions::default())?;
    let n0 = survivors[0];
    let last = survivors.len() as u32 - 1;
    let horizon = args.project.max(last);
    let rows: Vec<_> = (0..=horizon)
        .map(|t| {
            let observed = survivors.get(t as usize).map(|n| n / n0);
            (t, observed, model.survival(t), (t > 0).then(|| model.retention_rate(t)))
        })
        .collect();
    let lifetime = model.expected_lifetime();
    let derl = model.derl(args.discount, 0);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let chart = kanta_report::charts::actual_vs_model(
        "sBG retention: share of the cohort still active",
        ("period", "share still active"),
        &rows.iter().filter_map(|(t, o, _, _)| o.map(|o| (f64::from(*t), o))).collect::<Vec<_>>(),
        &rows.iter().map(|(t, _, s, _)| (f64::from(*t), *s)).collect::<Vec<_>>(),
        Some(f64::from(last)),
        true,
    );
    let svg = args.out.join("retention.svg");
    std::fs::write(&svg, chart).with_context(|| format!("cannot write {}", svg.display()))?;
    let mut json = fit_json(&report);
    json["projection"] = json!(
        rows.iter()
            .map(|(t, o, s, r)| json!({"period": t, "observed": o, "survival": s, "retention_rate": r}))
            .collect::<Vec<_>>()
    );
    json["expected_lifetime"] = json!(lifetime);
    json["derl"] = json!({"discount_rate": args.discount, "value": derl});
    write_json(&args.out.join("retention.json"), &json)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    out!("{}", fit_table(&report))?;
    outln!("\n{:>6} {:>10} {:>10} {:>10}", "period", "observed", "model", "retention")?;
    for (t, o, s, r) in &rows {
        let o = o.map_or(String::new(), |o| format!("{:.1}%", o * 100.0));
        let r = r.map_or(String::new(), |r| format!("{:.1}%", r * 100.0));
        outln!("{t:>6} {o:>10} {:>10} {r:>10}", format!("{:.1}%", s * 100.0))?;
    }
    match lifetime {
        Some(l) => outln!("\nexpected lifetime of a new customer: {l:.2} periods")?,
        None => {
            outln!("\nexpected lifetime of a new customer: unbounded (α ≤ 1: some customers practically never leave)")?
        }
    }
    if let Some(d) = derl {
        outln!(
            "discounted expected residual lifetime at {:.0}% per period: {d:.2} payments (multiply by the value per period)",
            args.discount * 100.0
        )?;
    }
    outln!("wrote {} and {}", svg.display(), args.out.join("retention.json").display())?;
    Ok(())
}
