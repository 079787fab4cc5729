//! `kanta fit`: fit a customer model to a per-customer summary file.

use std::path::Path;

use anyhow::Context;
use kanta_io::summary::{SummaryKind, read_summary, read_summary_each};
use kanta_models::{
    BgBb, BgNbd, DiscreteHistories, DiscreteHistory, FitOptions, FitReport, GammaGamma, Histories, HistoriesBuilder,
    History, ParetoNbd, Spend, Variant,
};
use serde_json::{Map, Value, json};

use crate::UsageError;
use crate::cli::{FitArgs, FitModel};
use crate::timings::Timings;

pub fn run(args: &FitArgs) -> anyhow::Result<()> {
    let options = FitOptions { max_iterations: args.max_iterations, ..FitOptions::default() };
    let timings = Timings::from_env();
    let (report, note) = fit_file(&args.input, args.model, &options, &timings)?;
    let json = fit_json(&report);
    if let Some(out) = &args.out {
        write_json(out, &json)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        out!("{}", fit_table(&report))?;
        if let Some(note) = note {
            outln!("{note}")?;
        }
    }
    Ok(())
}

pub(crate) fn write_json(out: &Path, json: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(json)? + "\n";
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))
}

/// Continuous-time histories with weights, read from the summary file at `path` row by row
/// into the model's compressed form.
fn read_histories(path: &str, timings: &Timings) -> anyhow::Result<Histories> {
    // Room for one history per 24 bytes of file (a summary line is longer than that), so the
    // tuples are never regrown and copied; pages past the last row are never touched.
    let estimate = std::fs::metadata(path).map_or(0, |m| m.len() / 24).min(1 << 28) as usize;
    let mut builder = HistoriesBuilder::with_capacity(estimate);
    // The reader's callback cannot fail; the first problem is kept and reported after it.
    let mut problem: Option<anyhow::Error> = None;
    let mut index = 0;
    read_summary_each(path, SummaryKind::Continuous, |row| {
        index += 1;
        if problem.is_some() {
            return;
        }
        let pushed = History::parse(index - 1, row.frequency, row.recency, row.t)
            .and_then(|h| builder.push(h, row.weight))
            .with_context(|| format!("{path}:{}", row.line));
        problem = pushed.err();
    })?;
    if let Some(problem) = problem {
        return Err(problem);
    }
    timings.mark("read");
    let data = builder.build()?;
    timings.mark("compress");
    Ok(data)
}

/// Fits `model` on the summary file at `path`; the note says what was left out.
pub(crate) fn fit_file(
    path: &str,
    model: FitModel,
    options: &FitOptions,
    timings: &Timings,
) -> anyhow::Result<(FitReport, Option<String>)> {
    Ok(match model {
        FitModel::Bgnbd | FitModel::Mbgnbd | FitModel::Paretonbd => {
            let data = read_histories(path, timings)?;
            let report = match model {
                FitModel::Bgnbd => BgNbd::fit(Variant::Bg, &data, options)?.1,
                FitModel::Mbgnbd => BgNbd::fit(Variant::Mbg, &data, options)?.1,
                _ => ParetoNbd::fit(&data, options)?.1,
            };
            timings.mark("fit");
            (report, None)
        }
        FitModel::Gammagamma => {
            let table = read_summary(path, SummaryKind::Spend, false)?;
            let mut spends = Vec::new();
            let mut skipped = 0.0;
            for (i, row) in table.rows.iter().enumerate() {
                match row.monetary {
                    Some(m) if row.frequency > 0 && m > 0.0 => {
                        spends.push((Spend::parse(i, row.frequency, m)?, row.weight))
                    }
                    _ => skipped += row.weight,
                }
            }
            if spends.is_empty() {
                return Err(UsageError(format!(
                    "{path}: no customer with frequency ≥ 1 and a positive monetary value; the spend model needs repeat customers"
                ))
                .into());
            }
            timings.mark("read");
            let report = GammaGamma::fit(&spends, options)?.1;
            timings.mark("fit");
            let note = (skipped > 0.0).then(|| {
                format!(
                    "({} customers without repeat purchases or spend were left out, as the model requires)",
                    kanta_report::format::thousands(skipped.round() as u64)
                )
            });
            (report, note)
        }
        FitModel::Bgbb => {
            let table = read_summary(path, SummaryKind::Discrete, false)?;
            let mut items = Vec::with_capacity(table.rows.len());
            for (i, row) in table.rows.iter().enumerate() {
                let whole = |v: f64, what: &str| -> anyhow::Result<u32> {
                    if v.fract() == 0.0 && v <= f64::from(u32::MAX) {
                        Ok(v as u32)
                    } else {
                        Err(UsageError(format!("{path}:{}: {what} `{v}` must be a whole number of periods", row.line))
                            .into())
                    }
                };
                let h =
                    DiscreteHistory::parse(i, row.frequency, whole(row.recency, "recency")?, whole(row.t, "periods")?)
                        .with_context(|| format!("{path}:{}", row.line))?;
                items.push((h, row.weight));
            }
            (BgBb::fit(&DiscreteHistories::new(items)?, options)?.1, None)
        }
    })
}

/// The fit as JSON: `{"model", "params": {name: value}, "std_errors", "intervals_95", …}`.
pub(crate) fn fit_json(report: &FitReport) -> Value {
    let mut params = Map::new();
    let mut errors = Map::new();
    let mut intervals = Map::new();
    for p in &report.params {
        params.insert(p.name.into(), json!(p.value));
        errors.insert(p.name.into(), json!(p.std_error));
        intervals.insert(p.name.into(), p.lower.zip(p.upper).map_or(Value::Null, |(lo, hi)| json!([lo, hi])));
    }
    json!({
        "model": report.model,
        "params": params,
        "std_errors": errors,
        "intervals_95": intervals,
        "log_likelihood": report.log_likelihood,
        "iterations": report.iterations,
        "evaluations": report.evaluations,
        "gradient_norm": report.gradient_norm,
        "customers": report.customers,
        "distinct": report.distinct,
        "aic": report.aic,
        "bic": report.bic,
        "kanta_version": env!("CARGO_PKG_VERSION"),
    })
}

/// A readable table of the estimates.
pub(crate) fn fit_table(report: &FitReport) -> String {
    let what = match report.model {
        "gammagamma" => "distinct spend summaries",
        "sbg" => "periods",
        _ => "distinct histories",
    };
    let mut out = format!(
        "{} fit on {} customers ({} {what})\n\n",
        kanta_models::title(report.model),
        kanta_report::format::thousands(report.customers.round() as u64),
        kanta_report::format::thousands(report.distinct as u64),
    );
    out += &format!("{:<10} {:>14} {:>12}   {}\n", "parameter", "estimate", "std. error", "95 % interval");
    let num = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.6}"));
    for p in &report.params {
        let interval = match (p.lower, p.upper) {
            (Some(lo), Some(hi)) => format!("[{lo:.6}, {hi:.6}]"),
            _ => "— (information matrix not positive definite)".to_owned(),
        };
        out += &format!("{:<10} {:>14.6} {:>12}   {interval}\n", p.name, p.value, num(p.std_error));
    }
    out += &format!(
        "\nlog-likelihood {:.4}   AIC {:.2}   BIC {:.2}\niterations {} ({} evaluations), final gradient norm {:.1e}\n",
        report.log_likelihood, report.aic, report.bic, report.iterations, report.evaluations, report.gradient_norm
    );
    out
}
