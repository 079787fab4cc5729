//! Checks of the repository itself rather than of the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (two levels above this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files of the repository: `git ls-files` in a checkout (tracked ones and new ones not yet
/// added, so the check sees a change before it is committed), otherwise every file under the
/// root except `target/` and `.git/` (a source tarball has no git metadata, and the check must
/// still look at something).
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output();
    if let Ok(out) = listed
        && out.status.success()
    {
        return out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing the repository") {
            let path = entry.expect("listing the repository").path();
            let name = path.file_name().unwrap_or_default();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    dirs.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The folders whose mention makes a file depend on something outside the repository: the
/// `shared` folder that sits beside the project's root on the developers' machines (and in CI)
/// but not in a user's clone. Spelled in pieces so that this file does not match itself.
fn outside_folders() -> Vec<String> {
    vec![["..", "shared"].join("/"), ["..", "..", "shared"].join("/"), ["..", "..", "..", "shared"].join("/")]
}

#[test]
fn no_file_of_the_repository_reads_the_folder_beside_it() {
    let root = root();
    let files = repository_files(&root);
    // A listing that found nothing would make the check pass vacuously.
    assert!(files.iter().any(|f| f.ends_with("crates/kanta-cli/tests/cli/tidy.rs")), "{} files listed", files.len());
    let needles = outside_folders();
    let mut offenders = Vec::new();
    for file in &files {
        // A file deleted in the work tree but still tracked has nothing to read.
        let Ok(bytes) = std::fs::read(file) else { continue };
        for needle in &needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                offenders.push(format!("{} mentions {needle}", file.strip_prefix(&root).unwrap_or(file).display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the repository must pass its tests on its own (copy data into data/ instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_data_the_tests_read_is_in_the_repository() {
    // Each file the suites read, with its exact size: a truncated copy would change published values.
    for (file, bytes) in [
        ("CDNOW_master.txt", 1_950_500),
        ("CDNOW_sample.txt", 228_327),
        ("cdnow_customers_summary.csv", 40_079),
        ("cdnow_customers_summary_with_transactions.csv", 57_085),
        ("donations.csv", 256),
    ] {
        let path = root().join("data").join(file);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(len, bytes, "{file}");
    }
    let readme = std::fs::read_to_string(root().join("data/README.md")).unwrap();
    assert!(
        readme.contains("MIT licence") && readme.contains("Fader, Hardie"),
        "data/README.md names source and licence"
    );
}

/// The layers of ARCHITECTURE.md's crate map, lowest first. A crate may depend only on crates
/// of its own layer or a lower one; the pure layer also on no crate that does IO or runs async.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "pure",
        &[
            "kanta-domain",
            "kanta-models",
            "kanta-core",
            "kanta-segment",
            "kanta-score",
            "kanta-journey",
            "kanta-uplift",
        ],
    ),
    ("files", &["kanta-io", "kanta-gen", "kanta-report"]),
    (
        "live edges",
        &[
            "kanta-store",
            "kanta-webhooks",
            "kanta-mail",
            "kanta-jobs",
            "kanta-api",
            "kanta-engine",
            "kanta-web",
            "kanta-warehouse",
        ],
    ),
    ("application", &["kanta-server"]),
    ("binary", &["kanta-cli"]),
];

/// Crates that do IO or run async, which the pure layer must not name.
const IO_CRATES: &[&str] =
    &["tokio", "sqlx", "rusqlite", "axum", "hyper", "hyper-util", "reqwest", "lettre", "csv", "parquet"];

/// The names in a manifest's `[dependencies]` table (not the dev or build ones).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn crates_depend_only_on_their_own_or_lower_layers() {
    let layer_of = |name: &str| LAYERS.iter().position(|(_, crates)| crates.contains(&name));
    let mut listed: Vec<&str> = LAYERS.iter().flat_map(|(_, crates)| crates.iter().copied()).collect();
    listed.sort_unstable();
    let mut found: Vec<String> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    found.sort_unstable();
    assert_eq!(found, listed, "every crate has a layer (and ARCHITECTURE.md's map says which)");
    let mut problems = Vec::new();
    for name in &found {
        let manifest = std::fs::read_to_string(root().join("crates").join(name).join("Cargo.toml")).expect("manifest");
        let own = layer_of(name).unwrap_or(usize::MAX);
        for dep in dependencies(&manifest) {
            match layer_of(&dep) {
                Some(layer) if layer > own => {
                    problems.push(format!("{name} ({}) depends on {dep} ({})", LAYERS[own].0, LAYERS[layer].0));
                }
                None if own == 0 && IO_CRATES.contains(&dep.as_str()) => {
                    problems.push(format!("{name} is pure but depends on {dep}"));
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The parser reads what it should: kanta-store's own dependencies, not its dev ones.
    let store = std::fs::read_to_string(root().join("crates/kanta-store/Cargo.toml")).expect("manifest");
    let deps = dependencies(&store);
    assert!(deps.iter().any(|d| d == "kanta-segment") && deps.iter().any(|d| d == "sqlx"), "{deps:?}");
    assert!(!deps.iter().any(|d| d == "tempfile"), "a dev-dependency: {deps:?}");
}
