//! The README's CLI reference is the real `--help` output (rust-analyzer-style tidy check).
//!
//! Each block after a `<!-- kanta help: ARGS -->` marker must equal `kanta ARGS`'s output.
//! Run with `UPDATE_README=1` to rewrite the blocks after changing the CLI.

use std::path::Path;

use crate::support::kanta;

#[test]
fn readme_cli_reference_matches_the_help_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = readme.as_str();
    let mut blocks = 0;
    while let Some(at) = rest.find("<!-- kanta help: ") {
        let (before, marker) = rest.split_at(at);
        out.push_str(before);
        let end_marker = marker.find(" -->").unwrap();
        let args: Vec<&str> = marker["<!-- kanta help: ".len()..end_marker].split_whitespace().collect();
        let open = marker.find("```text\n").unwrap() + "```text\n".len();
        let close = open + marker[open..].find("```").unwrap();
        let run = kanta(&args);
        assert_eq!(run.code, 0, "kanta {args:?}: {}", run.stderr);
        let current = &marker[open..close];
        if current != run.stdout {
            assert!(
                std::env::var_os("UPDATE_README").is_some(),
                "README.md's block for `kanta {}` is stale; run `UPDATE_README=1 cargo test -p kanta-cli readme`",
                args.join(" ")
            );
        }
        out.push_str(&marker[..open]);
        out.push_str(&run.stdout);
        rest = &marker[close..];
        blocks += 1;
    }
    out.push_str(rest);
    assert_eq!(blocks, 7, "expected help blocks for kanta, analyze, generate, demo, fit, predict and retention");
    if out != readme {
        std::fs::write(&path, out).unwrap();
    }
}
