//! The log subscriber for the library crates' `tracing` events (the server's start-up lines,
//! scheduler runs, webhook deliveries, store errors), on standard error.
//!
//! `text` prints each event's message as it is, one line, with no timestamp or level: these are
//! the lines `kanta serve` has always printed and that scripts read. `json` prints one object per
//! line with `timestamp`, `level`, `target` and `message` (and any other fields of the event),
//! for log collectors. `RUST_LOG` filters both (default `info`).

use std::fmt;

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    // Plain comments, not doc comments: clap would list documented values in a long help of
    // their own in every command's `-h` (the flag is global).
    // The message alone, one per line.
    Text,
    // One JSON object per line.
    Json,
}

/// Installs the subscriber for the rest of the process (a second call changes nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into()).from_env_lossy();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Err only when a subscriber is already installed; the first one stays.
    let _ = match format {
        LogFormat::Text => builder.event_format(Plain).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
}

/// The `text` format: the event's fields as the default field formatter writes them — the
/// message first, then ` key=value` for any others (the kanta crates' events have none, so
/// their lines are exactly their messages).
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
