//! Progress on a terminal: a bar over the bytes read with rows per second; nothing when
//! standard error is not a terminal or `--quiet` is given.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar for reading an input of `len` bytes (a spinner when unknown).
pub struct ReadProgress {
    bar: ProgressBar,
}

impl ReadProgress {
    pub fn new(len: Option<u64>, quiet: bool) -> ReadProgress {
        let bar = match len {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::new_spinner(),
        };
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = match len {
            Some(_) => {
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})")
            }
            None => ProgressStyle::with_template("{spinner} {prefix} {bytes} {msg}"),
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix("reading");
        ReadProgress { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl kanta_io::Progress for ReadProgress {
    fn update(&self, bytes: u64, rows: u64) {
        self.bar.set_position(bytes);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{rows} rows, {:.0} rows/s", rows as f64 / secs));
    }

    fn rereading(&self) {
        // Say why the bar starts over rather than leaving it to look like a glitch.
        self.bar.reset();
        self.bar.set_message("");
        self.bar.set_prefix("reading again (an order id names two customers)");
    }
}

/// A counter bar for generating `total` items (a spinner when unknown).
pub fn counter(total: Option<u64>, what: &str, quiet: bool) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} ({{per_sec}}, {{eta}})"))
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A spinner for a phase of unknown length (analysing, writing); hidden like the bars.
pub fn spinner(message: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    bar.set_message(message.to_owned());
    bar
}
