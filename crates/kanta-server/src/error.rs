//! The server's errors: what the settings, opening the store, and starting or running the
//! application can fail with.

use kanta_store::StoreError;

/// A setting that cannot be used: a bad file, an unknown key, a webhook without a secret…
/// The message names the file or the section, the field and the value; the CLI exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// Opening the store the settings name failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database server did not answer within `[database] connect_timeout`.
    #[error("giving up on {url} after {attempts} attempts")]
    GaveUp {
        /// The URL, password hidden.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: StoreError,
    },
    /// The store answered with an error (a bad URL, a failed migration…).
    #[error("opening the store {url}")]
    Open {
        /// The URL, password hidden.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Building or running the [`crate::Application`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting cannot be used (checked before anything starts).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The listening address could not be bound.
    #[error("listening on {address}")]
    Bind {
        /// The configured address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dashboard could not be set up (its templates did not parse: a defect).
    #[error("setting up the dashboard")]
    Dashboard(#[source] kanta_web::WebError),
    /// The bound socket did not tell its address.
    #[error("reading the listening address")]
    Address(#[source] std::io::Error),
    /// The webhook HTTP client could not be built.
    #[error("starting the webhook client")]
    WebhookClient(#[source] kanta_webhooks::WebhookError),
    /// The journey engine could not be set up (templates, SMTP settings, leases).
    #[error("starting the journey engine")]
    Engine(#[source] kanta_engine::EngineError),
    /// The accept loop failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
}

impl ServerError {
    /// Whether the user's settings are at fault (the CLI's exit code 2), not the environment.
    pub fn is_usage(&self) -> bool {
        matches!(self, ServerError::Settings(_))
    }
}
