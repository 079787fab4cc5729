//! The `kanta` binary: a thin shim over [`kanta_cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    kanta_cli::run(std::env::args_os())
}
