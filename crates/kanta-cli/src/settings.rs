//! One typed settings tree for the store-backed commands (`serve`, `token`, `import`).
//!
//! Layers, later ones winning: built-in defaults, the TOML file (`--config FILE`, else
//! `KANTA_CONFIG`, else `./kanta.toml` when it exists), `KANTA_…` environment variables, and
//! command-line flags (clap reads the flag and its variable together, the flag winning).
//! The database URL may carry a password: it is a [`DatabaseUrl`], whose `Debug` and
//! `Display` hide it, so it cannot leak into logs by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::UsageError;

/// The commented example printed by `kanta config default`; a test checks it parses to the
/// defaults.
pub const DEFAULT_TOML: &str = r#"# kanta settings. Every value here is the built-in default; delete what you do not change.
# Precedence: command-line flags > KANTA_* environment variables > this file > defaults.
# kanta reads --config FILE, else $KANTA_CONFIG, else ./kanta.toml if it exists.

[database]
# sqlite://FILE (embedded; the file is created on first use) or
# postgres://USER:PASSWORD@HOST:PORT/DB. Environment: KANTA_DATABASE_URL. Flag: --db.
url = "sqlite://kanta.db"

[server]
# Address for `kanta serve`; port 0 picks a free one. Environment: KANTA_LISTEN. Flag: --listen.
listen = "127.0.0.1:8080"
# Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
# Environment: KANTA_GRACE_SECONDS. Flag: --grace.
grace_seconds = 30
"#;

/// All settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The store.
    pub database: Database,
    /// `kanta serve`.
    pub server: Server,
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// The store's URL.
    pub url: DatabaseUrl,
}

impl Default for Database {
    fn default() -> Self {
        Database { url: DatabaseUrl("sqlite://kanta.db".into()) }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Listening address.
    pub listen: String,
    /// Grace period for in-flight requests at shutdown.
    pub grace_seconds: u64,
}

impl Default for Server {
    fn default() -> Self {
        Server { listen: "127.0.0.1:8080".into(), grace_seconds: 30 }
    }
}

/// A database URL; shown with its password replaced by `***`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A URL from text.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", kanta_store::redact(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kanta_store::redact(&self.0))
    }
}

/// The settings file to read: `--config`/`KANTA_CONFIG` (which must exist), else
/// `./kanta.toml` if present.
fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("kanta.toml")).filter(|p| p.is_file()),
    }
}

/// Defaults overlaid with the settings file.
pub fn load(explicit: Option<&Path>) -> Result<Settings, UsageError> {
    let Some(path) = config_path(explicit) else { return Ok(Settings::default()) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("cannot read the settings file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))
}

/// Settings from TOML text (absent keys keep their defaults; unknown keys are errors).
pub fn parse(text: &str) -> Result<Settings, String> {
    // toml's message names the line and column and quotes the offending text.
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// The settings as TOML with the database password hidden (`kanta config show`).
pub fn show(settings: &Settings) -> String {
    let mut shown = settings.clone();
    shown.database.url = DatabaseUrl(kanta_store::redact(settings.database.url.expose()));
    toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render the settings: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_example_is_the_defaults() {
        assert_eq!(parse(DEFAULT_TOML), Ok(Settings::default()));
    }

    #[test]
    fn a_file_overrides_only_what_it_names_and_rejects_unknown_keys() {
        let s = parse("[server]\nlisten = \"0.0.0.0:9000\"\n").expect("valid");
        assert_eq!(s.server.listen, "0.0.0.0:9000");
        assert_eq!(s.server.grace_seconds, 30);
        assert_eq!(s.database, Database::default());
        let err = parse("[server]\nlisen = \"x\"\n").expect_err("unknown key");
        assert!(err.contains("line 2") && err.contains("lisen"), "{err}");
        let err = parse("[server]\ngrace_seconds = \"soon\"\n").expect_err("wrong type");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn passwords_never_show_in_debug_display_or_show() {
        let s = Settings {
            database: Database { url: DatabaseUrl::new("postgres://kanta:hunter2@db/kanta") },
            server: Server::default(),
        };
        for text in [format!("{s:?}"), format!("{}", s.database.url), show(&s)] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("postgres://kanta:***@db/kanta"), "{text}");
        }
        assert_eq!(s.database.url.expose(), "postgres://kanta:hunter2@db/kanta");
    }
}
