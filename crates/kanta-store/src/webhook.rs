//! What the store keeps for outbound webhooks: per endpoint, how far it has read the two event
//! logs (stage changes, segment transitions) and its health; per event and endpoint, one
//! delivery — the exact body that is signed and sent, and the outcome of its latest attempt.
//! The dispatcher (`kanta-webhooks`) decides what to send and when; the store only records it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{serialize_instant, serialize_time};

/// A delivery's state.
pub mod state {
    /// Waiting to be sent (or re-sent).
    pub const PENDING: &str = "pending";
    /// The endpoint answered 2xx.
    pub const DELIVERED: &str = "delivered";
    /// Every attempt failed; given up.
    pub const FAILED: &str = "failed";
}

/// An endpoint as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndpointState {
    /// The configured name.
    pub name: String,
    /// The configured URL when last seen.
    pub url: String,
    /// Last stage change (id) turned into deliveries.
    pub stage_cursor: i64,
    /// Last segment transition (id) turned into deliveries.
    pub transition_cursor: i64,
    /// Consecutive failed attempts (0 after a success).
    pub failures: i64,
    /// No attempt before this time (backoff after a failure), RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_time")]
    pub retry_at: Option<i64>,
    /// When it was paused for failing too often, RFC 3339; deliveries queue up meanwhile.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_time")]
    pub paused_at: Option<i64>,
    /// Why it was paused.
    pub paused_reason: Option<String>,
    /// Deliveries waiting.
    pub pending: i64,
    /// Deliveries that arrived.
    pub delivered: i64,
    /// Deliveries given up on.
    pub failed: i64,
}

/// An event to deliver to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The customer the event is about (internal id), so erasing them redacts the body.
    pub customer: i64,
    /// The event's stable id (receivers deduplicate on it).
    pub event_id: String,
    /// `customer.stage_changed`, `segment.entered`, `segment.exited`.
    pub event_type: String,
    /// The JSON body, sent byte for byte on every attempt.
    pub payload: String,
}

/// A delivery and the outcome of its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Delivery {
    /// Position in the log (increasing).
    pub id: i64,
    /// The endpoint's name.
    pub endpoint: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Queued, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_instant")]
    pub created_at: i64,
    /// Latest attempt, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_time")]
    pub last_attempt_at: Option<i64>,
    /// HTTP status of the latest attempt, if the endpoint answered.
    pub last_status: Option<i64>,
    /// Why the latest attempt failed (status, timeout, connection error).
    pub last_error: Option<String>,
    /// When it arrived, RFC 3339.
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "serialize_time")]
    pub delivered_at: Option<i64>,
}

/// The outcome of one attempt, and what it does to the endpoint; recorded in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery: i64,
    /// When (µs).
    pub time: i64,
    /// The HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    /// Why it failed; `None` when delivered.
    pub error: Option<String>,
    /// Failed for the last time: the delivery becomes `failed`.
    pub give_up: bool,
    /// The endpoint's consecutive failures after this attempt.
    pub failures: i64,
    /// The endpoint's next allowed attempt.
    pub retry_at: Option<i64>,
    /// Pause the endpoint, with this reason.
    pub pause: Option<String>,
}

/// What a webhook body says about the customer besides their id: contact fields and the
/// latest scores, so a CRM can act without calling back.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CustomerContext {
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Lifecycle stage (latest scoring run).
    pub stage: Option<String>,
    /// Value tier.
    pub value_tier: Option<String>,
    /// 12-month CLV.
    pub clv_12m: Option<f64>,
    /// P(alive).
    pub p_alive: Option<f64>,
    /// Cross-sell hint.
    pub next_category: Option<String>,
}

/// The body a delivery of an erased customer is left with.
pub const ERASED_BODY: &str = r#"{"erased":true}"#;
