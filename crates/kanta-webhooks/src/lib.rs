//! Outbound webhooks: stage changes and segment transitions, delivered to configured
//! endpoints as signed JSON, with retries, exponential backoff, a delivery log and pausing.
//!
//! - [`sign`] (pure): the `Kanta-Signature` header — HMAC-SHA256 over `timestamp.body` — and
//!   its verification, for receivers (and kanta's own inbound endpoint).
//! - [`endpoint`] (pure): a configured endpoint, its subscription and retry policy.
//! - [`destination`]: which addresses an endpoint may reach, and the client's resolver that
//!   enforces it.
//! - [`event`] (pure): the events and their JSON bodies.
//! - [`dispatch`]: the per-endpoint loops over the store's outbox (`kanta_store::Storage`'s
//!   webhook calls).

pub mod destination;
pub mod dispatch;
pub mod endpoint;
pub mod event;
pub mod sign;

pub use dispatch::{Dispatcher, Tick};
pub use endpoint::{Endpoint, EndpointError, EventType, Policy, SigningSecret, Subscription, mask_url};

/// Why dispatching failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The store failed (retried at the next poll).
    #[error("store: {0}")]
    Store(#[from] kanta_store::StoreError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}
