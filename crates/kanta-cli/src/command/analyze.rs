//! `kanta analyze`: read an order log, analyse it, write the customer table and the reports.

use crate::timings::Timings;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use kanta_core::aggregate::Aggregator;
use kanta_core::analysis::{AnalysisOptions, analyze_customers};
use kanta_core::time::{Day, TimeFormat};
use kanta_io::columns::ColumnSpec;
use kanta_io::read::{Format, input_len};
use kanta_io::write::{CustomerTable, ModelRow, ModelRows, PeriodUnit, write_customers_csv, write_customers_parquet};
use kanta_io::{Delimiter, Input, LineSink, ReadOptions, read_orders, read_orders_with_lines};
use kanta_models::FitOptions;
use kanta_report::format::thousands;
use kanta_report::{InputInfo, PushdownInfo, PushdownStep, Report, render_html, render_text};
use kanta_score::{CustomerScore, HoldoutReport, ModelKind, ScoreOptions, evaluate_holdout, score_customers};

use crate::UsageError;
use crate::cli::{AnalyzeArgs, Period, ReaderArgs};
use crate::progress::{ReadProgress, spinner};

/// The files an analysis wrote.
pub struct Outputs {
    pub report_html: PathBuf,
}

pub fn read_options(args: &ReaderArgs) -> Result<ReadOptions, UsageError> {
    let delimiter = match &args.delimiter {
        Some(d) => Some(Delimiter::parse(d).ok_or_else(|| {
            UsageError(format!("--delimiter `{d}` must be one ASCII character, `tab` or `whitespace`"))
        })?),
        None => None,
    };
    Ok(ReadOptions {
        delimiter,
        column_names: args.columns.clone(),
        columns: ColumnSpec {
            customer: args.customer_col.clone(),
            order: args.order_col.clone(),
            time: args.time_col.clone(),
            amount: args.amount_col.clone(),
            quantity: args.quantity_col.clone(),
            unit_price: args.price_col.clone(),
            product: None,
            category: None,
        },
        time_format: args.time_format.clone().map_or(TimeFormat::Auto, TimeFormat::Custom),
        decimal_comma: args.decimal_comma,
        max_errors: args.max_errors,
    })
}

fn format_name(format: Format, gzip: bool) -> String {
    let base = match format {
        Format::Delimited(b'\t') => "tsv".to_owned(),
        Format::Delimited(d) => format!("csv ({})", char::from(d)),
        Format::Whitespace => "whitespace-separated".to_owned(),
        Format::Parquet => "parquet".to_owned(),
    };
    if gzip { format!("{base} + gzip") } else { base }
}

/// Reads an order log into an aggregator with a progress bar (hidden when `quiet` or piped),
/// listing skipped rows and, if `show_columns`, the columns used (`analyze`, `import orders`).
/// `on_line`, when given, receives each accepted line's product with its order's index.
pub fn read_order_log(
    input: &Input,
    options: &ReadOptions,
    quiet: bool,
    show_columns: bool,
    on_line: Option<&mut LineSink<'_>>,
) -> Result<(Aggregator, kanta_io::read::ReadSummary), kanta_io::ReadError> {
    let progress = ReadProgress::new(input_len(input), quiet);
    let mut aggregator = Aggregator::new();
    let read = match on_line {
        Some(f) => read_orders_with_lines(input, options, &mut aggregator, &progress, f),
        None => read_orders(input, options, &mut aggregator, &progress),
    };
    progress.finish();
    let read = read?;
    for skipped in &read.skipped {
        eprintln!("skipped: {skipped}");
    }
    if show_columns {
        eprintln!("columns: {}", read.columns);
    }
    Ok((aggregator, read))
}

/// Runs the analysis; prints the summary (or JSON) unless quiet.
pub fn run(args: &AnalyzeArgs) -> anyhow::Result<Outputs> {
    let options = read_options(&args.read)?;
    let as_of = match &args.as_of {
        Some(text) => {
            Some(Day::parse(text).ok_or_else(|| UsageError(format!("--as-of `{text}` is not a date (YYYY-MM-DD)")))?)
        }
        None => None,
    };
    if let Some(url) = &args.engine.engine {
        return pushdown(args, url, options.columns, as_of);
    }
    let Some(input) = &args.input else {
        return Err(UsageError("give the order log to analyse, or --engine with --table or --query".into()).into());
    };
    let timings = Timings::from_env();
    let input = Input::parse(input);
    let (aggregator, read) = read_order_log(&input, &options, args.quiet, !args.quiet && !args.json, None)?;
    timings.mark("read");
    let busy =
        spinner(&format!("analysing {} customers", thousands(aggregator.customers() as u64)), args.quiet || args.json);
    let base = aggregator.finish();
    timings.mark("group by customer");
    let mut analysis = analyze_customers(
        &base,
        &AnalysisOptions {
            as_of,
            keep_zero: args.keep_zero,
            lapse_days: args.lapse_days,
            loyal_orders: args.loyal_orders,
        },
    )?;
    timings.mark("analyze customers");
    let choice = args.model.0;
    let holdout_from = match &args.holdout_from {
        Some(text) => Some(
            Day::parse(text)
                .ok_or_else(|| UsageError(format!("--holdout-from `{text}` is not a date (YYYY-MM-DD)")))?,
        ),
        None => None,
    };
    let mut holdout = None;
    let mut choice = choice;
    if let Some(from) = holdout_from {
        let Some(model) = choice else {
            return Err(
                UsageError("--holdout-from validates the models; it cannot be used with --model none".into()).into()
            );
        };
        busy.set_message("validating the customer models on the holdout period");
        let candidates = model.candidates();
        match evaluate_holdout(&base, from, analysis.as_of, args.keep_zero, candidates, &FitOptions::default()) {
            Ok(report) => {
                if model == ModelKind::Auto {
                    choice = Some(ModelKind::parse(report.best).unwrap_or(ModelKind::BgNbd));
                }
                holdout = Some(report);
            }
            Err(e) => {
                if !args.quiet {
                    eprintln!("warning: holdout validation: {e}");
                }
            }
        }
    }
    let (scores, models_skipped) = match choice {
        None => (None, Some("not fitted (--model none)".to_owned())),
        Some(model) => {
            busy.set_message("fitting customer models");
            match score_customers(&analysis.customers, &ScoreOptions { model, ..ScoreOptions::default() }) {
                Ok(mut scores) => {
                    if holdout.is_some() && args.model.0 == Some(ModelKind::Auto) {
                        scores.summary.selected_by = "holdout";
                    }
                    let slipping: Vec<bool> = scores.customers.iter().map(|c| c.slipping).collect();
                    analysis.mark_slipping(&slipping);
                    for t in &mut scores.summary.targets {
                        t.customer_id =
                            String::from_utf8_lossy(base.id(analysis.customers[t.index].customer)).into_owned();
                        t.stage = analysis.customers[t.index].stage.name();
                    }
                    (Some(scores), None)
                }
                Err(e) => {
                    if !args.quiet {
                        eprintln!("warning: {e}; the model columns are left empty");
                    }
                    (None, Some(e.to_string()))
                }
            }
        }
    };
    timings.mark("models");
    let customer_scores = scores.as_ref().map(|s| s.customers.as_slice());
    busy.set_message("writing customers.csv and customers.parquet");
    let unit = match args.period {
        Period::Day => PeriodUnit::Day,
        Period::Week => PeriodUnit::Week,
    };

    fs::create_dir_all(&args.out).with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    // The two customer tables and the business summary are independent and each takes half a
    // second or more on millions of customers: all three at once keep both cores busy (the
    // Parquet writer alone took the last third of a second).
    let models = customer_scores.map(Scores);
    let table = CustomerTable {
        base: &base,
        customers: &analysis.customers,
        as_of: analysis.as_of,
        unit,
        models: models.as_ref().map(|m| m as &dyn ModelRows),
    };
    let (csv, parquet, summary) = std::thread::scope(|scope| {
        let parquet = scope.spawn(|| write_customers_parquet(&args.out.join("customers.parquet"), &table));
        let summary = scope.spawn(|| analysis.summary());
        let csv = write_customers_csv(&args.out.join("customers.csv"), &table);
        (csv, parquet.join(), summary.join())
    });
    csv.context("cannot write customers.csv")?;
    match parquet {
        Ok(result) => result.context("cannot write customers.parquet")?,
        Err(_) => anyhow::bail!("the customers.parquet writer thread panicked"),
    }
    // A panic while summarising is a bug; it travels on as a panic.
    let analysis = analysis.with_summary(summary.unwrap_or_else(|payload| std::panic::resume_unwind(payload)));

    timings.mark("write customer tables and summary");
    let report = Report {
        kanta_version: env!("CARGO_PKG_VERSION"),
        input: InputInfo {
            file: input.display_name(),
            format: format_name(read.format, read.gzip),
            columns: read.columns.to_string(),
            rows: read.rows,
            rows_skipped: read.skipped.len() as u64,
            skipped: read.skipped.iter().take(100).map(ToString::to_string).collect(),
            period: unit.name().to_owned(),
            currency: args.currency.clone(),
        },
        summary: &analysis.summary,
        models: scores.as_ref().map(|s| &s.summary),
        models_skipped,
        holdout: holdout.as_ref(),
        pushdown: None,
    };
    if let Some(h) = &holdout {
        write_holdout_csv(&args.out.join("holdout.csv"), &base, h).context("cannot write holdout.csv")?;
    }
    let (json, report_html) = write_reports(&args.out, &report)?;
    timings.mark("write reports");
    busy.finish_and_clear();
    let wrote = format!("wrote {}/{{customers.csv, customers.parquet, summary.json, report.html}}", args.out.display());
    print_report(args, &report, &json, &wrote)?;
    Ok(Outputs { report_html })
}

/// Writes `summary.json` and `report.html` into `out`; returns the JSON and the report's path.
fn write_reports(out: &std::path::Path, report: &Report<'_>) -> anyhow::Result<(String, PathBuf)> {
    let json = report.to_json();
    fs::write(out.join("summary.json"), &json).context("cannot write summary.json")?;
    let html = render_html(report).context("cannot render report.html")?;
    let report_html = out.join("report.html");
    fs::write(&report_html, html).context("cannot write report.html")?;
    Ok((json, report_html))
}

/// Prints `summary.json` (`--json`), or the summary table and `wrote` (unless `--quiet`).
fn print_report(args: &AnalyzeArgs, report: &Report<'_>, json: &str, wrote: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{json}").context("cannot write to standard output")?;
    } else if !args.quiet {
        write!(stdout, "{}", render_text(report)).context("cannot write to standard output")?;
        writeln!(stdout, "\n{wrote}").context("cannot write to standard output")?;
    }
    Ok(())
}

/// `kanta analyze --engine`: the analysis pushed down to a database (`kanta_warehouse`); the
/// reports are written here as for a file, the score table stays in the engine.
fn pushdown(args: &AnalyzeArgs, url: &str, columns: ColumnSpec, as_of: Option<Day>) -> anyhow::Result<Outputs> {
    if args.holdout_from.is_some() {
        return Err(UsageError(
            "--holdout-from is not available with --engine yet; analyse an export of the orders to validate the models"
                .into(),
        )
        .into());
    }
    if args.read.delimiter.is_some()
        || args.read.columns.is_some()
        || args.read.time_format.is_some()
        || args.read.decimal_comma
    {
        return Err(UsageError("--delimiter, --columns, --time-format and --decimal-comma read files; with --engine the engine's types are used (cast in --query)".into()).into());
    }
    let source = match (&args.engine.table, &args.engine.query) {
        (Some(table), None) => kanta_warehouse::Source::Table(table.clone()),
        (None, Some(query)) => kanta_warehouse::Source::Query(query.clone()),
        _ => return Err(UsageError("--engine needs --table NAME or --query SQL".into()).into()),
    };
    let week = matches!(args.period, Period::Week);
    let run_options = kanta_warehouse::Options {
        source,
        columns,
        max_errors: args.read.max_errors,
        analysis: AnalysisOptions {
            as_of,
            keep_zero: args.keep_zero,
            lapse_days: args.lapse_days,
            loyal_orders: args.loyal_orders,
        },
        score: args.model.0.map(|model| ScoreOptions { model, ..ScoreOptions::default() }),
        week,
        into: args.engine.into.clone(),
        store: false,
    };
    let busy = spinner("connecting to the engine", args.quiet || args.json);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let (outcome, downloaded, engine_name, engine_kind) = runtime.block_on(async {
        let mut engine = kanta_warehouse::connect(url).await?;
        let progress = |step: &str| busy.set_message(step.to_owned());
        let outcome = kanta_warehouse::analyze(engine.as_mut(), &run_options, &progress).await?;
        let downloaded = if args.engine.download {
            fs::create_dir_all(&args.out)
                .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
            busy.set_message("downloading the score table into customers.csv");
            let unit = if week { PeriodUnit::Week } else { PeriodUnit::Day };
            let path = args.out.join("customers.csv");
            Some(kanta_warehouse::download(engine.as_mut(), &outcome.into, outcome.as_of, unit, &path).await?)
        } else {
            None
        };
        anyhow::Ok((outcome, downloaded, engine.name().to_owned(), engine.dialect().engine()))
    })?;
    busy.finish_and_clear();
    for skipped in &outcome.skipped {
        if !args.quiet {
            eprintln!("skipped: {skipped}");
        }
    }
    let stats = &outcome.stats;
    let report = Report {
        kanta_version: env!("CARGO_PKG_VERSION"),
        input: InputInfo {
            file: format!("{engine_name} {}", outcome.source_name),
            format: format!("{engine_kind} (push-down)"),
            columns: outcome.columns.clone(),
            rows: stats.source_rows,
            rows_skipped: outcome.rows_skipped,
            skipped: outcome.skipped.clone(),
            period: if week { "week" } else { "day" }.to_owned(),
            currency: args.currency.clone(),
        },
        summary: &outcome.summary,
        models: outcome.models.as_ref(),
        models_skipped: outcome.models_skipped.clone(),
        holdout: None,
        pushdown: Some(PushdownInfo {
            engine: engine_name,
            score_table: outcome.into.clone(),
            rows_aggregated: stats.source_rows,
            orders: stats.orders,
            customers: stats.customers,
            distinct_histories: stats.histories as u64,
            spend_keys: stats.spend_keys as u64,
            bytes_received: stats.bytes_received,
            statements: stats.statements,
            engine_seconds: stats.engine_time.as_secs_f64(),
            kanta_seconds: stats.kanta_time.as_secs_f64(),
            steps: stats
                .steps
                .iter()
                .map(|(step, took)| PushdownStep { step: step.clone(), seconds: took.as_secs_f64() })
                .collect(),
        }),
    };
    if let Some(reason) = &outcome.models_skipped
        && !args.quiet
        && args.model.0.is_some()
    {
        eprintln!("warning: {reason}; the model columns are left empty");
    }
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    let (json, report_html) = write_reports(&args.out, &report)?;
    let files =
        if downloaded.is_some() { "{customers.csv, summary.json, report.html}" } else { "{summary.json, report.html}" };
    let wrote = format!("wrote {}/{files}; the scores are in {} in the engine", args.out.display(), outcome.into);
    print_report(args, &report, &json, &wrote)?;
    Ok(Outputs { report_html })
}

/// The model columns of the customer tables, from the scores (one per customer, in table order).
struct Scores<'a>(&'a [CustomerScore]);

impl ModelRows for Scores<'_> {
    fn model_row(&self, index: usize) -> Option<ModelRow> {
        let s = self.0.get(index)?;
        Some(ModelRow {
            p_alive: s.p_alive,
            expected_purchases: s.expected_purchases,
            p_purchase_30d: s.p_purchase_30d,
            p_purchase_90d: s.p_purchase_90d,
            expected_spend: s.expected_spend,
            clv_12m: s.clv_12m,
            next_purchase_days: s.next_purchase_days,
            churn_risk: s.risk.name(),
        })
    }
}

/// `holdout.csv`: each calibration customer's history, actual and predicted holdout purchases.
fn write_holdout_csv(
    path: &std::path::Path,
    base: &kanta_core::aggregate::CustomerBase,
    h: &HoldoutReport,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["customer_id", "frequency_cal", "recency_cal", "T_cal", "holdout_actual", "holdout_predicted"])?;
    for c in &h.per_customer {
        w.write_record([
            String::from_utf8_lossy(base.id(c.customer)).into_owned(),
            c.history.x.to_string(),
            c.history.t_x.to_string(),
            c.history.t.to_string(),
            c.actual.to_string(),
            c.predicted.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
