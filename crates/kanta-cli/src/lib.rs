//! The `kanta` command line: argument parsing and the sub-commands.
//!
//! **Architecture Invariant:** only this crate knows about argv, the terminal, exit codes and
//! the output folder layout; the work itself happens in `kanta-io`, `kanta-core`, `kanta-gen`
//! and `kanta-report`.
//!
//! Exit codes: 0 on success, 2 for bad input or usage (a file that cannot be read, a bad
//! row, an impossible option), 1 for anything else (an output folder that cannot be written).

mod cli;
mod command;
mod progress;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// A problem with what the user asked for; exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses `args` and runs the command; returns the process exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Analyze(args) => command::analyze::run(&args).map(|_| ()),
        Command::Generate(args) => command::generate::run(&args),
        Command::Demo(args) => command::demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    let bad_input = e.chain().any(|c| {
        c.is::<kanta_io::ReadError>()
            || c.is::<kanta_core::analysis::AnalysisError>()
            || c.is::<UsageError>()
            || c.is::<kanta_gen::ConfigError>()
    });
    if bad_input { 2 } else { 1 }
}
