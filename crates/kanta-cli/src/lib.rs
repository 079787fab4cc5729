//! The `kanta` command line: argument parsing and the sub-commands.
//!
//! **Architecture Invariant:** only this crate knows about argv, the terminal, exit codes and
//! the output folder layout; the work itself happens in `kanta-io`, `kanta-core`, `kanta-gen`
//! and `kanta-report`.
//!
//! Exit codes: 0 on success, 2 for bad input or usage (a file that cannot be read, a bad
//! row, an impossible option), 1 for anything else (an output folder that cannot be written).
//! A closed standard output (`kanta … | head`) ends any command quietly with 0.

// `print!` panics on a closed pipe; commands print through `out!`/`outln!`, which return the error.
#![deny(clippy::print_stdout)]

/// `print!` that hands back the write's error instead of panicking: `kanta … | head` closes the
/// pipe early, and the command must then end quietly with code 0 ([`run`] treats a broken pipe
/// as success), not panic with a backtrace as `print!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `println!` that hands back the write's error; see `out!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod cli;
mod command;
mod logging;
mod progress;
mod timings;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// A problem with what the user asked for; exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<kanta_server::SettingsError> for UsageError {
    fn from(e: kanta_server::SettingsError) -> UsageError {
        UsageError(e.0)
    }
}

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
    logging::init(cli.log_format.unwrap_or(logging::LogFormat::Text));
    let result = match cli.command {
        Command::Analyze(args) => command::analyze::run(&args).map(|_| ()),
        Command::Generate(args) => command::generate::run(&args),
        Command::Demo(args) => command::demo::run(&args),
        Command::Fit(args) => command::fit::run(&args),
        Command::Predict(args) => command::predict::run(&args),
        Command::Retention(args) => command::retention::run(&args),
        Command::Serve(args) => command::serve::run(&args),
        Command::Score(args) => command::score::run(&args),
        Command::Token(cli::TokenCommand::Create(args)) => command::token::create(&args),
        Command::Token(cli::TokenCommand::List(args)) => command::token::list(&args),
        Command::Token(cli::TokenCommand::Revoke(args)) => command::token::revoke(&args),
        Command::Insights(cli::InsightsCommand::Feedback(args)) => command::insights::feedback(&args),
        Command::Webhooks(cli::WebhooksCommand::List(args)) => command::webhooks::list(&args),
        Command::Webhooks(cli::WebhooksCommand::Deliveries(args)) => command::webhooks::deliveries(&args),
        Command::Webhooks(cli::WebhooksCommand::Resume(args)) => command::webhooks::resume(&args),
        Command::Webhooks(cli::WebhooksCommand::Listen(args)) => command::webhooks::listen(&args),
        Command::Mail(cli::MailCommand::Listen(args)) => command::mail::listen(&args),
        Command::Journeys(cli::JourneysCommand::Validate(args)) => command::journeys::validate(&args),
        Command::Journeys(cli::JourneysCommand::Apply(args)) => command::journeys::apply(&args),
        Command::Journeys(cli::JourneysCommand::List(args)) => command::journeys::list(&args),
        Command::Journeys(cli::JourneysCommand::Show(args)) => command::journeys::show(&args),
        Command::Journeys(cli::JourneysCommand::Pause(args)) => command::journeys::set_paused(&args, true),
        Command::Journeys(cli::JourneysCommand::Resume(args)) => command::journeys::set_paused(&args, false),
        Command::Journeys(cli::JourneysCommand::Doubts(args)) => command::journeys::doubts(&args),
        Command::Journeys(cli::JourneysCommand::Resend(args)) => command::journeys::resend(&args),
        Command::Journeys(cli::JourneysCommand::Preview(args)) => command::journeys::preview(&args),
        Command::Journeys(cli::JourneysCommand::Triggers(args)) => command::journeys::triggers(&args),
        Command::Journeys(cli::JourneysCommand::Report(args)) => command::journeys::report::report(&args),
        Command::Journeys(cli::JourneysCommand::Run(args)) => command::journeys::run::run(&args),
        Command::Journeys(cli::JourneysCommand::Simulate(args)) => command::journeys::simulate::simulate(&args),
        Command::Import(cmd) => command::import::run(&cmd),
        Command::Config(cli::ConfigCommand::Default) => {
            out!("{}", kanta_server::settings::DEFAULT_TOML).map_err(anyhow::Error::from)
        }
        Command::Config(cli::ConfigCommand::Show(args)) => command::serve::show(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `kanta predict … | head`: the reader has all it wants; not an error.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes, `: `-separated, each said once: library errors that name their
/// cause in their own message (`cannot open: No such file …`) also return it as their
/// `source`, and `{:#}` would print it twice.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}

fn exit_code(e: &anyhow::Error) -> u8 {
    let bad_input = e.chain().any(|c| {
        c.is::<kanta_io::ReadError>()
            || c.is::<kanta_core::analysis::AnalysisError>()
            || c.is::<UsageError>()
            || c.is::<kanta_server::SettingsError>()
            || c.downcast_ref::<kanta_server::ServerError>().is_some_and(kanta_server::ServerError::is_usage)
            || c.is::<kanta_gen::ConfigError>()
            || c.is::<kanta_models::FitError>()
            || c.is::<kanta_models::DataError>()
            || c.is::<kanta_models::ParamError>()
    });
    if bad_input { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn an_error_message_names_each_cause_once() {
        let open = kanta_io::ReadError::Open {
            path: "orders.csv".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = anyhow::Error::new(open);
        assert_eq!(message(&e), "orders.csv: cannot open: entity not found");
        // A context that does not repeat its cause still gets it appended.
        let e = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            .context("writing report.html")
            .unwrap_err();
        assert_eq!(message(&e), "writing report.html: permission denied");
    }
}
