//! `kanta predict`: add model predictions to a per-customer summary file.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use kanta_io::summary::{SummaryKind, read_summary};
use kanta_models::{
    BgBb, BgNbd, ClvOptions, DiscreteHistory, GammaGamma, History, ParetoNbd, TransactionModel, Variant,
    predict_customers,
};
use serde_json::Value;

use crate::UsageError;
use crate::cli::PredictArgs;
use crate::timings::Timings;

/// A fitted model read back from `kanta fit --json`.
pub(crate) enum Fitted {
    Transaction(Box<dyn TransactionModel + Send + Sync>),
    /// Pareto/NBD also has a closed-form DERL.
    Pareto(ParetoNbd),
    Bgbb(BgBb),
    Spend(GammaGamma),
}

/// Reads a fit JSON file.
pub(crate) fn read_fit(path: &Path) -> anyhow::Result<Fitted> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| UsageError(format!("{name}: not valid JSON: {e}")))?;
    let model = json["model"].as_str().ok_or_else(|| UsageError(format!("{name}: no \"model\" field")))?;
    let p = |key: &str| -> anyhow::Result<f64> {
        json["params"][key]
            .as_f64()
            .ok_or_else(|| UsageError(format!("{name}: the {model} fit has no number \"params\".\"{key}\"")).into())
    };
    Ok(match model {
        "bgnbd" => Fitted::Transaction(Box::new(BgNbd::new(Variant::Bg, p("r")?, p("alpha")?, p("a")?, p("b")?)?)),
        "mbgnbd" => Fitted::Transaction(Box::new(BgNbd::new(Variant::Mbg, p("r")?, p("alpha")?, p("a")?, p("b")?)?)),
        "paretonbd" => Fitted::Pareto(ParetoNbd::new(p("r")?, p("alpha")?, p("s")?, p("beta")?)?),
        "gammagamma" => Fitted::Spend(GammaGamma::new(p("p")?, p("q")?, p("gamma")?)?),
        "bgbb" => Fitted::Bgbb(BgBb::new(p("alpha")?, p("beta")?, p("gamma")?, p("delta")?)?),
        other => {
            return Err(UsageError(format!(
                "{name}: unknown model `{other}` (expected bgnbd, mbgnbd, paretonbd, gammagamma or bgbb)"
            ))
            .into());
        }
    })
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let timings = Timings::from_env();
    let mut transaction: Option<Box<dyn TransactionModel + Send + Sync>> = None;
    let mut pareto = None;
    let mut bgbb = None;
    let mut spend = None;
    for path in &args.params {
        match read_fit(path)? {
            Fitted::Transaction(m) if transaction.is_none() && bgbb.is_none() => transaction = Some(m),
            Fitted::Pareto(m) if transaction.is_none() && bgbb.is_none() => {
                pareto = Some(m);
                transaction = Some(Box::new(m));
            }
            Fitted::Bgbb(m) if transaction.is_none() && bgbb.is_none() => bgbb = Some(m),
            Fitted::Spend(m) if spend.is_none() => spend = Some(m),
            _ => {
                return Err(UsageError(
                    "give one transaction model (bgnbd, mbgnbd, paretonbd or bgbb) and at most one gammagamma fit"
                        .into(),
                )
                .into());
            }
        }
    }
    if !(args.horizon.is_finite() && args.horizon >= 0.0) {
        return Err(UsageError(format!("--horizon {} must be a number ≥ 0", args.horizon)).into());
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut csv = csv::Writer::from_writer(&mut out);
    if let Some(model) = bgbb {
        let table = read_summary(&args.input, SummaryKind::Discrete, true)?;
        let future = args.horizon.round() as u32;
        csv.write_record(table.headers.iter().map(String::as_str).chain(["p_alive", "expected_transactions"]))?;
        for (index, row) in table.rows.iter().enumerate() {
            let h = DiscreteHistory::parse(0, row.frequency, row.recency as u32, row.t as u32)
                .with_context(|| format!("{}:{}", args.input, row.line))?;
            let extra =
                [model.p_alive(&h).to_string(), model.conditional_expected_transactions(future, &h).to_string()];
            csv.write_record(table.record(index).chain(extra.iter().map(String::as_bytes)))?;
        }
    } else if let Some(model) = transaction {
        let table = read_summary(&args.input, SummaryKind::Continuous, true)?;
        if spend.is_some() && !table.has_monetary {
            return Err(UsageError(format!(
                "{}: a Gamma-Gamma fit was given but the file has no monetary_value column",
                args.input
            ))
            .into());
        }
        let mut customers = Vec::with_capacity(table.rows.len());
        for (i, row) in table.rows.iter().enumerate() {
            let h = History::parse(i, row.frequency, row.recency, row.t)
                .with_context(|| format!("{}:{}", args.input, row.line))?;
            customers.push((h, row.monetary.unwrap_or(0.0)));
        }
        timings.mark("read");
        let clv =
            ClvOptions { periods: args.clv_periods, period_length: args.period_length, discount_rate: args.discount };
        let predictions = predict_customers(model.as_ref(), spend.as_ref(), &customers, args.horizon, &clv);
        timings.mark("predict");
        let mut columns = vec!["p_alive", "expected_purchases", "p_purchase", "next_purchase_in"];
        if spend.is_some() {
            columns.extend(["expected_spend", "clv"]);
        }
        // Pareto/NBD's closed-form DERL at the continuous rate equivalent to --discount per period.
        let delta = (1.0 + args.discount).ln() / args.period_length;
        if pareto.is_some() {
            columns.push("derl");
        }
        csv.write_record(table.headers.iter().map(String::as_str).chain(columns))?;
        let mut buf = String::new();
        for (index, (p, (h, _))) in predictions.iter().zip(&customers).enumerate() {
            for field in table.record(index) {
                csv.write_field(field)?;
            }
            let mut number = |v: Option<f64>| -> csv::Result<()> {
                buf.clear();
                if let Some(v) = v {
                    // Infallible: writing to a String.
                    let _ = write!(buf, "{v}");
                }
                csv.write_field(&buf)
            };
            for v in [p.p_alive, p.expected_purchases, p.p_purchase, p.next_purchase] {
                number(Some(v))?;
            }
            if spend.is_some() {
                number(p.expected_spend)?;
                number(p.clv)?;
            }
            if let Some(m) = &pareto {
                number(m.derl(delta, h))?;
            }
            csv.write_record(None::<&[u8]>)?;
        }
    } else {
        return Err(
            UsageError("a Gamma-Gamma fit alone cannot predict purchases; add a transaction model fit".into()).into()
        );
    }
    csv.flush()?;
    drop(csv);
    out.flush()?;
    timings.mark("write");
    Ok(())
}
