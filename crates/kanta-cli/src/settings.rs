//! One typed settings tree for the store-backed commands (`serve`, `token`, `import`).
//!
//! Layers, later ones winning: built-in defaults, the TOML file (`--config FILE`, else
//! `KANTA_CONFIG`, else `./kanta.toml` when it exists), `KANTA_…` environment variables, and
//! command-line flags (clap reads the flag and its variable together, the flag winning).
//! The database URL may carry a password: it is a [`DatabaseUrl`], whose `Debug` and
//! `Display` hide it, so it cannot leak into logs by accident.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

[scoring]
# How often `kanta serve` rescores every customer (RFM, stage, models, CLV): a duration such as
# "30m", "6h" or "1d", or "off". The first run starts with the server.
# Environment: KANTA_SCORE_EVERY. Flag: --score-every.
every = "1h"
# The transaction model: auto (the lowest BIC of BG/NBD, MBG/NBD and Pareto/NBD), bgnbd,
# mbgnbd or paretonbd. Flag of `kanta score`: --model.
model = "auto"
# A valuable customer whose probability of being active falls below this is `slipping`.
slipping_below = 0.5
"#;

/// All settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The store.
    pub database: Database,
    /// `kanta serve`.
    pub server: Server,
    /// The scoring job.
    pub scoring: Scoring,
}

/// `[scoring]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scoring {
    /// Interval of the scheduled run in `kanta serve`.
    pub every: Every,
    /// Transaction model.
    pub model: ModelName,
    /// P(alive) threshold for `slipping`.
    pub slipping_below: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring { every: Every(Some(Duration::from_secs(3600))), model: ModelName::Auto, slipping_below: 0.5 }
    }
}

impl Scoring {
    /// The scoring job these settings describe.
    pub fn job(&self) -> kanta_jobs::ScoreJob {
        let mut job = kanta_jobs::ScoreJob::default();
        job.score.model = self.model.choice();
        job.score.slipping_below = self.slipping_below;
        job
    }
}

/// The transaction model, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// Fit BG/NBD, MBG/NBD and Pareto/NBD and keep the lowest BIC.
    Auto,
    /// BG/NBD.
    Bgnbd,
    /// MBG/NBD.
    Mbgnbd,
    /// Pareto/NBD.
    Paretonbd,
}

impl ModelName {
    /// The scoring crate's choice.
    pub fn choice(self) -> kanta_score::ModelChoice {
        match self {
            ModelName::Auto => kanta_score::ModelChoice::Auto,
            ModelName::Bgnbd => kanta_score::ModelChoice::BgNbd,
            ModelName::Mbgnbd => kanta_score::ModelChoice::MbgNbd,
            ModelName::Paretonbd => kanta_score::ModelChoice::ParetoNbd,
        }
    }
}

/// An interval such as `30m`, `6h`, `1d` or `90s`, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

impl Every {
    /// Parse `off` or a positive whole number followed by `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<Every, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(Every(None));
        }
        let unit = match text.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(format!("`{text}` is not an interval: write e.g. 30m, 6h, 1d or off")),
        };
        let digits = &text[..text.len() - 1];
        match digits.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Every(Some(Duration::from_secs(n.saturating_mul(unit))))),
            _ => Err(format!("`{text}` is not an interval: write a positive whole number and s, m, h or d (or off)")),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else { return f.write_str("off") };
        let s = d.as_secs();
        match s {
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Every {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Every, D::Error> {
        let text = String::deserialize(d)?;
        Every::parse(&text).map_err(serde::de::Error::custom)
    }
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
    fn intervals_parse_print_and_refuse_nonsense() {
        assert_eq!(Every::parse("30m"), Ok(Every(Some(Duration::from_secs(1800)))));
        assert_eq!(Every::parse("1d").map(|e| e.to_string()), Ok("1d".to_owned()));
        assert_eq!(Every::parse("90s").map(|e| e.to_string()), Ok("90s".to_owned()));
        assert_eq!(Every::parse("120m").map(|e| e.to_string()), Ok("2h".to_owned()));
        assert_eq!(Every::parse("off"), Ok(Every(None)));
        for bad in ["", "0h", "h", "1.5h", "-1h", "10", "1w"] {
            assert!(Every::parse(bad).is_err(), "{bad}");
        }
        let err = parse("[scoring]\nevery = \"soon\"\n").expect_err("bad interval");
        assert!(err.contains("line 2") && err.contains("soon"), "{err}");
        let s = parse("[scoring]\nevery = \"off\"\nmodel = \"paretonbd\"\n").expect("valid");
        assert_eq!((s.scoring.every, s.scoring.model), (Every(None), ModelName::Paretonbd));
    }

    #[test]
    fn passwords_never_show_in_debug_display_or_show() {
        let s = Settings {
            database: Database { url: DatabaseUrl::new("postgres://kanta:hunter2@db/kanta") },
            server: Server::default(),
            scoring: Scoring::default(),
        };
        for text in [format!("{s:?}"), format!("{}", s.database.url), show(&s)] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("postgres://kanta:***@db/kanta"), "{text}");
        }
        assert_eq!(s.database.url.expose(), "postgres://kanta:hunter2@db/kanta");
    }
}
