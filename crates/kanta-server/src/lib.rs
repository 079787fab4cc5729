//! The application `kanta serve` runs, as a library: the typed [`Settings`] tree and the
//! [`Application`] built from it — the store, the listener, the HTTP API (`kanta-api`), the
//! scoring scheduler (`kanta-jobs`) and the webhook workers (`kanta-webhooks`), under one
//! shutdown.
//!
//! **Architecture Invariant:** the CLI has no wiring of its own: `kanta serve` parses its flags,
//! applies them onto [`Settings`] and runs an [`Application`]; the test suites (through
//! `testing`, behind the feature of that name) spawn the same `Application`, so they exercise
//! exactly what users run.

pub mod settings;

mod app;
mod error;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{Application, worker_name};
pub use error::{OpenError, ServerError, SettingsError};
pub use settings::Settings;
