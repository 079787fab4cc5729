//! What a message template sees: [`MessageContext`].
//!
//! The engine fills it from the store (the customer's profile, the latest scores, recent orders
//! with their lines) and the journey run; templates read it as `customer.name`,
//! `scores.stage`, `orders[0].lines`, `next_category`, `unsubscribe_url`. It is a boundary type
//! (it is serialised into the template engine and printed by `kanta journeys preview`), so it
//! derives `Serialize`; values are plain text and numbers, as a template prints them.
//!
//! An absent value (`None`) is left out of the serialised context rather than written as
//! `none`: minijinja prints `none` as "none" and its `default` filter replaces only undefined
//! values, so leaving it out is what makes `{{ customer.name | default('there') }}` work.

use serde::{Deserialize, Serialize};

/// Everything a message's templates can use. Absent values render empty, so
/// `{{ customer.name | default('there') }}` works for a customer without a name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageContext {
    /// The profile.
    pub customer: CustomerContext,
    /// The latest scores; absent before the first scoring run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<ScoresContext>,
    /// Recent orders, newest first, with their lines.
    pub orders: Vec<OrderContext>,
    /// The cross-sell hint: the category customers who bought the same went on to buy next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_category: Option<String>,
    /// The signed one-click unsubscribe link (marketing mail; absent for transactional mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

/// The names a template may use at the top level: [`MessageContext`]'s fields, and what the
/// layout also gets (`content`, `subject`). [`crate::render::check`] reports any other name.
pub const TOP_LEVEL_NAMES: &[&str] =
    &["customer", "scores", "orders", "next_category", "unsubscribe_url", "content", "subject"];

/// The customer's profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerContext {
    /// External id.
    pub id: String,
    /// Email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// IANA time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Language tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    /// Free-form attributes (`customer.attributes.plan`).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Scores from the latest scoring run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoresContext {
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5.
    pub f: u8,
    /// Monetary score 1–5.
    pub m: u8,
    /// Named RFM segment.
    pub rfm_segment: String,
    /// Lifecycle stage.
    pub stage: String,
    /// Value tier (`top`, `high`, `mid`, `low`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_tier: Option<String>,
    /// The category in most of the customer's orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_category: Option<String>,
    /// Probability that the customer is still active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_alive: Option<f64>,
    /// Expected purchases in the next 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_30d: Option<f64>,
    /// Discounted 12-month CLV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clv_12m: Option<f64>,
    /// Predicted next purchase, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_purchase: Option<String>,
}

/// One recent order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderContext {
    /// External id.
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Order total.
    pub amount: f64,
    /// Currency.
    pub currency: String,
    /// `completed`, `cancelled` or `refunded`.
    pub status: String,
    /// Lines.
    pub lines: Vec<LineContext>,
}

/// One order line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineContext {
    /// Product.
    pub product: String,
    /// Category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Quantity.
    pub quantity: f64,
    /// Unit price.
    pub price: f64,
}
