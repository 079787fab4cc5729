//! `kanta mail listen`: a local SMTP receiver for trying journeys out.

use std::io::Write;

use anyhow::Context;
use kanta_mail::listen::{Options, Received, serve};

use crate::UsageError;
use crate::cli::MailListenArgs;

/// Serves SMTP until `--count` messages or Ctrl-C; prints each message's key headers on
/// standard output as it is taken.
pub fn listen(args: &MailListenArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener.local_addr().context("reading the listening address")?;
        eprintln!("kanta mail listen: listening on smtp://{address}");
        let options =
            Options { count: args.count, dir: args.dir.clone(), max_size: args.max_size, ..Options::default() };
        let taken = serve(listener, options, Box::new(print), kanta_api::shutdown_signal())
            .await
            .map_err(|e| UsageError(e.to_string()))?;
        eprintln!("kanta mail listen: {taken} message{} received", if taken == 1 { "" } else { "s" });
        Ok(())
    })
}

/// One block per message: a line with its number, file, size and envelope, its key headers,
/// and an empty line. Called under the receiver's lock, so blocks never interleave.
fn print(message: &Received) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let file = message.file.as_ref().map(|f| format!(" {}", f.display())).unwrap_or_default();
    writeln!(
        out,
        "message {}{file} ({} bytes) from <{}> to {}",
        message.number,
        message.size,
        message.mail_from,
        message.rcpt_to.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(", ")
    )?;
    for (name, value) in message.headers.present() {
        writeln!(out, "{name}: {value}")?;
    }
    writeln!(out)?;
    out.flush()
}
