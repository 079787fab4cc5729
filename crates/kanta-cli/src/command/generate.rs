//! `kanta generate`: write a synthetic shop.

use anyhow::Context;
use kanta_core::time::Day;
use kanta_gen::write::{OutputFormat, write_orders};
use kanta_gen::{Config, simulate};

use crate::UsageError;
use crate::cli::GenerateArgs;
use crate::progress::counter;

fn day(flag: &str, text: &str) -> Result<Day, UsageError> {
    Day::parse(text).ok_or_else(|| UsageError(format!("{flag} `{text}` is not a date (YYYY-MM-DD)")))
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let config = Config {
        customers: args.customers,
        rows: args.rows,
        seed: args.seed,
        start: day("--start", &args.start)?,
        end: day("--end", &args.end)?,
        ..Config::default()
    };
    let orders = match args.shape {
        Some(shape) => kanta_gen::degenerate::orders(shape, args.seed),
        None => simulate(&config)?,
    };
    let lines: u64 = orders.iter().map(|o| u64::from(o.lines)).sum();
    let bar = counter(Some(lines), "writing lines", args.quiet);
    let written = write_orders(&args.out, OutputFormat::from_path(&args.out), &orders, &|n| bar.set_position(n))
        .with_context(|| format!("cannot generate {}", args.out.display()))?;
    bar.finish_and_clear();
    if !args.quiet {
        eprintln!("wrote {} order lines ({} orders) to {}", written.lines, written.orders, args.out.display());
    }
    if let Some(path) = &args.feedback {
        let answers = kanta_gen::feedback::feedback(&orders, &config);
        kanta_gen::feedback::write_csv(path, &answers).with_context(|| format!("cannot write {}", path.display()))?;
        if !args.quiet {
            eprintln!("wrote {} survey answers to {}", answers.len(), path.display());
        }
    }
    Ok(())
}
