//! `kanta demo`: generate a demo shop and analyse it.

use anyhow::Context;

use crate::cli::{
    AnalyzeArgs, AnalyzeModel, ApiArgs, DemoArgs, EngineArgs, GenerateArgs, ImportCommand, ImportOrdersArgs,
    ImportRecordsArgs, JourneysApplyArgs, Period, ReaderArgs, ScoreArgs, ServeArgs, ServerArgs, StoreArgs,
};

/// The demo's journey: a win-back offer with a holdout, so its uplift report fills as it runs.
const WIN_BACK: &str = r#"name: win-back
description: When a customer is judged lost, an offer; two weeks later a better one, unless they ordered.
trigger: { stage_becomes: lost }
holdout: 10%
goal: { event: order.created, within: 30d, exit: true }
steps:
  - id: first-offer
    send_email: { subject: "We saved you 10% on your next order", html: "<p>Come back for 10% off.</p>" }
  - wait: 14d
  - branch:
      if: "orders >= 2 and days_since_last_order < 14"
      then: exit
  - id: second-offer
    send_email: { subject: "Last chance: 20% off, this week only", html: "<p>20% off until Sunday.</p>" }
"#;

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
        input: Some(orders.display().to_string()),
        engine: EngineArgs::default(),
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
    if args.serve {
        serve(args)?;
    }
    Ok(())
}

/// `--serve`: the same shop, live up to today, in a store of its own, and the dashboard on it.
fn serve(args: &DemoArgs) -> anyhow::Result<()> {
    let today = chrono::Utc::now().date_naive();
    let start = today.checked_sub_months(chrono::Months::new(24)).unwrap_or(today);
    let orders = args.out.join("live-orders.csv");
    let feedback = args.out.join("live-feedback.csv");
    crate::command::generate::run(&GenerateArgs {
        customers: args.customers,
        rows: None,
        seed: args.seed,
        out: orders.clone(),
        start: start.to_string(),
        end: today.to_string(),
        shape: None,
        feedback: Some(feedback.clone()),
        quiet: true,
    })?;
    // A fresh store each time: the demo's history ends today.
    let db = args.out.join("kanta.db");
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
    }
    let store = StoreArgs { db: Some(format!("sqlite://{}", db.display())), config: None };
    let no_api = ApiArgs { api: None, token: None };
    crate::command::import::run(&ImportCommand::Orders(Box::new(ImportOrdersArgs {
        input: orders.display().to_string(),
        read: ReaderArgs::default(),
        product_col: None,
        category_col: None,
        currency: "EUR".into(),
        api: no_api.clone(),
        store: store.clone(),
        quiet: true,
    })))?;
    crate::command::import::run(&ImportCommand::Feedback(ImportRecordsArgs {
        input: feedback.display().to_string(),
        delimiter: ",".into(),
        api: no_api,
        store: store.clone(),
        quiet: true,
    }))?;
    crate::command::score::run(&ScoreArgs {
        store: store.clone(),
        model: None,
        in_memory: false,
        json: false,
        quiet: true,
    })?;
    let journey = args.out.join("win-back.yaml");
    std::fs::write(&journey, WIN_BACK).with_context(|| format!("cannot write {}", journey.display()))?;
    crate::command::journeys::apply(&JourneysApplyArgs { files: vec![journey], store: store.clone() })?;
    let token = crate::command::token::make(&store, kanta_store::Scope::Admin, Some("demo"))?;
    outln!("\nthe dashboard: http://{}/login", args.listen)?;
    outln!("log in with this admin token (it is shown once): {}", token)?;
    outln!("Ctrl-C stops the server; the store stays in {}", db.display())?;
    crate::command::serve::run(&ServeArgs {
        store,
        server: ServerArgs { listen: Some(args.listen.clone()), grace: None, score_every: None },
    })
}
