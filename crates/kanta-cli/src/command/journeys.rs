//! `kanta journeys validate FILE…`: checks journey documents and the templates beside them.
//!
//! Each file is checked with `kanta_journey::validate_yaml`; its `template: NAME`s are looked up
//! as `templates/NAME.html` in the file's folder, and subjects and inline parts are checked by
//! the mailer's template language (`kanta_mail::check`). Every file of each `templates/` folder
//! is checked too, once. Valid files are listed on standard output (`FILE: ok (N steps)`),
//! every problem goes to standard error as `FILE:LINE:COLUMN: message`, and the command fails
//! (exit code 1) when there is any.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kanta_journey::Templates;

use crate::cli::JourneysValidateArgs;

/// The templates of one folder, as the validator asks about them.
struct Folder {
    /// The names `NAME` of the folder's `NAME.html` files.
    names: BTreeSet<String>,
}

impl Templates for Folder {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn names(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }

    fn check(&self, source: &str) -> Result<(), String> {
        kanta_mail::check(source).map_err(|problem| problem.to_string())
    }
}

/// Checks every file; fails when any file or template has a problem.
pub fn validate(args: &JourneysValidateArgs) -> anyhow::Result<()> {
    let mut checked_folders = BTreeSet::new();
    let mut failed = 0usize;
    for file in &args.files {
        let shown = file.display().to_string();
        let folder = file.parent().unwrap_or(Path::new("")).join("templates");
        let names = match template_files(&folder) {
            Ok(files) => {
                // Each folder's files are checked once, however many journeys share it.
                if checked_folders.insert(folder.clone()) {
                    failed += check_templates(&files);
                }
                files.iter().filter_map(|f| html_name(f)).collect()
            }
            Err(e) => {
                eprintln!("{}: cannot read: {e}", folder.display());
                failed += 1;
                BTreeSet::new()
            }
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{shown}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        match kanta_journey::validate_yaml(&text, &Folder { names }) {
            Ok(journey) => {
                let steps = journey.compile().len();
                outln!("{shown}: ok ({steps} step{})", if steps == 1 { "" } else { "s" })?;
            }
            Err(problems) => {
                eprintln!("{}", problems.in_file(shown));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} file{} with problems", if failed == 1 { "" } else { "s" });
    }
    Ok(())
}

/// The `.html` and `.txt` files of a `templates/` folder, sorted; none when there is no folder.
fn template_files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() && matches!(path.extension().and_then(|e| e.to_str()), Some("html" | "txt")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `NAME` of a `NAME.html` file.
fn html_name(path: &Path) -> Option<String> {
    if path.extension().and_then(|e| e.to_str()) != Some("html") {
        return None;
    }
    path.file_stem().and_then(|s| s.to_str()).map(str::to_owned)
}

/// Checks each template file, printing `FILE:LINE: message` for each problem; how many files
/// have one.
fn check_templates(files: &[PathBuf]) -> usize {
    let mut failed = 0;
    for file in files {
        let problem = match std::fs::read_to_string(file) {
            Ok(source) => kanta_mail::check(&source).err().map(|p| format!(":{}: {}", p.line, p.message)),
            Err(e) => Some(format!(": cannot read: {e}")),
        };
        if let Some(problem) = problem {
            eprintln!("{}{problem}", file.display());
            failed += 1;
        }
    }
    failed
}
