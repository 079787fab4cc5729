//! `kanta demo`: generate a demo shop and analyse it.

use anyhow::Context;

use crate::cli::{AnalyzeArgs, AnalyzeModel, DemoArgs, GenerateArgs, Period, ReaderArgs};

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let orders = args.out.join("orders.csv");
    crate::command::generate::run(&GenerateArgs {
        customers: args.customers,
        rows: None,
        seed: args.seed,
        out: orders.clone(),
        start: "2023-01-01".into(),
        end: "2024-12-31".into(),
        shape: None,
        feedback: None,
        quiet: false,
    })?;
    let outputs = crate::command::analyze::run(&AnalyzeArgs {
        input: orders.display().to_string(),
        out: args.out.join("report"),
        read: ReaderArgs::default(),
        currency: Some("EUR".into()),
        as_of: None,
        period: Period::Day,
        keep_zero: false,
        lapse_days: None,
        loyal_orders: 4,
        model: AnalyzeModel(Some(kanta_domain::ModelKind::Auto)),
        holdout_from: None,
        quiet: false,
        json: false,
    })?;
    let path = std::fs::canonicalize(&outputs.report_html).unwrap_or(outputs.report_html);
    outln!("\nopen the report: file://{}", path.display())?;
    Ok(())
}
