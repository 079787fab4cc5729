//! Running the binary and reading its outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A file of the repository's `data/` folder (public data sets; see `data/README.md`).
pub fn repo_data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data").join(file)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `kanta ARGS`.
pub fn kanta(args: &[&str]) -> Run {
    finish(Command::new(env!("CARGO_BIN_EXE_kanta")).args(args).stdin(Stdio::null()).output().expect("run kanta"))
}

/// Runs `kanta ARGS` in `dir` with extra environment variables.
pub fn kanta_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kanta"));
    command.args(args).current_dir(dir).stdin(Stdio::null()).env_remove("KANTA_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    finish(command.output().expect("run kanta"))
}

/// Runs `kanta ARGS` with `stdin` piped in.
pub fn kanta_stdin(args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kanta"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kanta");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    finish(child.wait_with_output().expect("wait"))
}

/// Runs `kanta analyze FILE --out DIR ARGS…` and expects success.
pub fn analyze_ok(file: &Path, out: &Path, args: &[&str]) -> Run {
    let mut all = vec!["analyze", file.to_str().expect("utf-8 path"), "--out", out.to_str().expect("utf-8 path"), "-q"];
    all.extend_from_slice(args);
    let run = kanta(&all);
    assert_eq!(run.code, 0, "kanta {all:?} failed:\n{}", run.stderr);
    run
}

/// Runs `kanta analyze` on the headerless CDNOW sample with its column names and `sample_id` as
/// the customer, plus `args`, and expects success.
pub fn analyze_cdnow_sample(out: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--columns", "master_id,sample_id,date,cds,dollar_value", "--customer-col", "sample_id"];
    all.extend_from_slice(args);
    analyze_ok(&repo_data("CDNOW_sample.txt"), out, &all)
}

/// customers.csv as rows keyed by customer_id.
pub fn customers(out: &Path) -> HashMap<String, HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("customers.csv")).expect("customers.csv");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            let row: HashMap<String, String> =
                headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect();
            (row["customer_id"].clone(), row)
        })
        .collect()
}

/// summary.json.
pub fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary.json")).expect("json")
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path
}
