//! The customer store: what kanta keeps about customers, behind one [`Storage`] trait with an
//! embedded SQLite backend (the default; no server to run) and a PostgreSQL backend (production).
//!
//! - [`record`] (pure): the JSON records the API and importers accept, and their validation.
//! - [`token`]: API tokens (generated and hashed purely), stored as SHA-256 hashes.
//! - [`purchases`] (pure): the chunks of purchases and line categories the scoring job reads.
//! - [`Storage`]: the umbrella over one trait per aggregate — [`CustomerStore`] (batch writes that
//!   are atomic and idempotent by natural id, the customer 360 read, cursor listing, erasure),
//!   [`OrderStore`], [`ScoreStore`], [`SegmentStore`], [`WebhookStore`], [`TokenStore`],
//!   [`AuditStore`] (the audit log, idempotency keys), [`JourneyStore`] (journey versions, runs,
//!   the message outbox with leases and in-doubt recovery, suppressions), [`TriggerStore`] (the
//!   calendar triggers' scans and cursors), [`GoalStore`] (goal conversions and the uplift
//!   report's rows) — each in its own
//!   module, written once, generic over the backend.
//! - `sqlite` and `postgres`: the backends. Each implements `dialect::Dialect` for its sqlx
//!   driver: everything that differs between the two (JSON merge and binding, locks, statement
//!   budgets, what follows an erasure, connection setup and migrations). The queries themselves
//!   are shared (`sql` is sqlx's query API over both drivers), so a behaviour tested on one is
//!   the behaviour of the other. The one exception is the scoring job's read of every purchase:
//!   on SQLite it steps through the file with rusqlite on two threads (`sqlite_scan`), as the
//!   driver's per-row cost would dominate it.
//!
//! Invariants: times are microseconds since the epoch (UTC); money is `kanta_core::Money`'s
//! 1/10,000 units; every query binds its values (no value is ever formatted into SQL); a write
//! call is one transaction, committed durably before it returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kanta_domain::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

pub mod journey;
pub mod purchases;
/// The records the store writes are the domain's; re-exported so `kanta_store::record` paths stay.
pub use kanta_domain::record;
pub mod token;
pub mod webhook;

mod audit;
mod customers;
mod dashboard;
mod dialect;
mod orders;
mod postgres;
mod pushed;
mod scores;
mod segments;
mod sql;
mod sqlite;
mod sqlite_scan;
mod store;

pub use audit::AuditStore;
pub use customers::CustomerStore;
pub use dashboard::{
    ChurnRisk, CustomerCursor, CustomerFilter, CustomerListRow, CustomerSegments, CustomerSort, DashboardStore,
    SegmentDay, SegmentMoment, SessionRow, StageMovement,
};
pub use journey::{GoalStore, HistoryStore, JourneyStore, TriggerStore};
pub use orders::OrderStore;
pub use purchases::{PurchaseLines, Purchases};
pub use pushed::{PUSHED_SCORES, PushdownConnection};
pub use record::{Customer, Event, Feedback, Order};
pub use scores::ScoreStore;
pub use segments::SegmentStore;
pub use token::{Scope, Secret, TokenHash, TokenStore};
pub use webhook::{Attempt, CustomerContext, Delivery, EndpointState, NewDelivery, WebhookStore};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not `sqlite://…` or `postgres://…`.
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://USER@HOST/DB")]
    Url(String),
    /// Connecting, migrating or querying failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading a SQLite file directly (the scoring job's scan) failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A thread reading the database stopped before it finished.
    #[error("reading the database stopped: {0}")]
    Worker(String),
    /// A stored value could not be read back (a corrupt or foreign database).
    #[error("unexpected stored value: {0}")]
    Corrupt(String),
    /// The customer id is already taken (erasure renames ids).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database server did not answer (down, wrong host or port, a firewall); worth
    /// retrying, unlike a refused login.
    #[error("cannot reach the database at {target}: {reason}")]
    Unreachable {
        /// `host:port` (never the password).
        target: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The batch would take customers' orders past [`MAX_CUSTOMER_TOTAL`]; nothing was written.
    #[error(
        "the orders of {} would total more than 100,000,000,000,000 in absolute value, beyond what kanta sums exactly; nothing was written",
        quote_list(.0)
    )]
    TotalTooLarge(Vec<String>),
    /// A segment query ran past its budget and was interrupted.
    #[error("the segment query ran longer than its budget of {} ms and was stopped; narrow the expression", .0.as_millis())]
    TooCostly(Duration),
    /// Every segment query slot stayed taken for [`SegmentLimits::wait`].
    #[error("the server is busy with other segment queries; try again shortly")]
    Busy,
}

/// The largest sum of a customer's order amounts (in absolute value) the store accepts:
/// 100,000,000,000,000 (10¹⁸ of `Money`'s 1/10,000 units). Every sum over a customer's orders
/// (revenue in the 360 view and in segments, the analysis) stays far inside `i64`, where two
/// orders at the largest single amount used to overflow SQLite's `SUM` (issue 16).
pub const MAX_CUSTOMER_TOTAL: kanta_core::money::Money = kanta_core::money::Money::from_raw(1_000_000_000_000_000_000);

fn quote_list(ids: &[String]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(|id| format!("customer `{id}`")).collect();
    let more = if ids.len() > 5 { format!(" and {} more", ids.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Limits on the queries of segment expressions (previews, member pages, counts, refreshes).
///
/// An expression is a correlated subquery per customer and condition; the language's own budget
/// (`kanta_segment::MAX_TERMS`, `MAX_CALLS`) bounds its size, these bound its running time and
/// how many run at once, so that customer reads, ingestion and webhook delivery always keep a
/// connection (SQLite's read pool has four; issue 16 saw six previews starve it). A statement
/// past its budget is interrupted (SQLite's progress handler; PostgreSQL's
/// `statement_timeout`), and on SQLite also when the caller stops waiting (an HTTP client that
/// went away drops the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Budget of one preview, count or member page.
    pub preview: Duration,
    /// Budget of one refresh (saving a segment computes its members too).
    pub refresh: Duration,
    /// Segment queries running at once, across previews and refreshes.
    pub slots: usize,
    /// How long a segment query waits for a slot before [`StoreError::Busy`].
    pub wait: Duration,
}

impl Default for SegmentLimits {
    /// 10 s per preview, 2 min per refresh, two at a time, 5 s wait.
    fn default() -> SegmentLimits {
        SegmentLimits {
            preview: Duration::from_secs(10),
            refresh: Duration::from_secs(120),
            slots: 2,
            wait: Duration::from_secs(5),
        }
    }
}

/// One slot of [`SegmentLimits::slots`], or [`StoreError::Busy`] after [`SegmentLimits::wait`].
async fn segment_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    limits: &SegmentLimits,
) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
    match tokio::time::timeout(limits.wait, slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(StoreError::Busy),
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct WriteCounts {
    /// Records that were new.
    pub created: u64,
    /// Records that existed and changed.
    pub updated: u64,
    /// Records that existed unchanged (a re-post).
    pub unchanged: u64,
    /// Customers created because a record named an unknown customer id.
    pub customers_created: u64,
}

/// A customer's profile as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Profile {
    /// External id.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Language tag.
    pub locale: Option<String>,
    /// Date of birth.
    pub birthday: Option<String>,
    /// Attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    /// First seen, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
    /// When the personal data was erased, RFC 3339.
    pub erased_at: Option<String>,
}

/// One consent change.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConsentEntry {
    /// `email` or `sms`.
    pub channel: String,
    /// `granted` or `revoked`.
    pub status: String,
    /// Where it came from.
    pub source: Option<String>,
    /// When, RFC 3339.
    pub time: String,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderView {
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
    pub lines: Vec<LineView>,
}

/// A stored order line.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LineView {
    /// Product.
    pub product: String,
    /// Category.
    pub category: Option<String>,
    /// Quantity.
    pub quantity: f64,
    /// Unit price.
    pub price: f64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventView {
    /// External (or derived) id.
    pub id: String,
    /// Name.
    pub name: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Properties.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
}

/// Stored feedback.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FeedbackView {
    /// External id.
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// 0–10.
    pub nps: Option<i64>,
    /// 1–5.
    pub csat: Option<i64>,
    /// Free text.
    pub text: Option<String>,
    /// Topics.
    pub topics: Vec<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Related order.
    pub order_id: Option<String>,
}

/// Everything stored about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerRecord {
    /// Profile.
    pub profile: Profile,
    /// Current consent per channel (the latest change of each).
    pub consent: Vec<ConsentEntry>,
    /// Every consent change, oldest first.
    pub consent_history: Vec<ConsentEntry>,
    /// Orders, oldest first.
    pub orders: Vec<OrderView>,
    /// Events, newest first (limited to the requested number).
    pub events: Vec<EventView>,
    /// Feedback, newest first.
    pub feedback: Vec<FeedbackView>,
    /// Scores from the latest scoring run (none before the first run, or for a customer
    /// without purchases).
    pub scores: Option<ScoreView>,
    /// Lifecycle stage changes, newest first (at most 100).
    pub stage_history: Vec<StageChange>,
}

/// A customer's scores from the latest scoring run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoreView {
    /// The scoring run.
    pub run_id: i64,
    /// When the run finished, RFC 3339.
    pub scored_at: String,
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5.
    pub f: u8,
    /// Monetary score 1–5.
    pub m: u8,
    /// Named RFM segment.
    pub rfm_segment: String,
    /// Lifecycle stage (`new`, `repeat`, `loyal`, `slipping`, `lapsing`, `lost`).
    pub stage: String,
    /// Since when the customer has been in this stage (the run that first saw it), RFC 3339.
    pub stage_since: String,
    /// Value tier by net revenue: `top` (10 %), `high` (20 %), `mid` (30 %), `low` (40 %).
    pub value_tier: Option<String>,
    /// The product category in most of the customer's orders (from order lines).
    pub main_category: Option<String>,
    /// The cross-sell hint: the category customers who bought the same went on to buy next.
    pub next_category: Option<String>,
    /// The model scores; absent when the models could not be fitted.
    pub model: Option<ModelScores>,
}

/// What the fitted models say about one customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct ModelScores {
    /// Probability that the customer is still active.
    pub p_alive: f64,
    /// Expected purchases in the next 30 days.
    pub expected_30d: f64,
    /// Expected purchases in the next 90 days.
    pub expected_90d: f64,
    /// Expected purchases in the next 365 days.
    pub expected_365d: f64,
    /// Probability of at least one purchase in the next 30 days.
    pub p_purchase_30d: f64,
    /// Expected value of a future purchase (Gamma-Gamma), when the spend model was fitted.
    pub expected_spend: Option<f64>,
    /// Discounted 12-month CLV, when the spend model was fitted.
    pub clv_12m: Option<f64>,
    /// Predicted next purchase (the median time to it, if the customer is still active), shown
    /// as RFC 3339 `next_purchase`.
    #[schema(value_type = Option<String>)]
    #[serde(rename = "next_purchase", serialize_with = "serialize_timestamp")]
    pub next_purchase_at: Option<Timestamp>,
}

fn serialize_instant<S: serde::Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*micros))
}

fn serialize_time<S: serde::Serializer>(micros: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match micros {
        Some(m) => s.serialize_some(&rfc3339(*m)),
        None => s.serialize_none(),
    }
}

// Through `rfc3339`, not `Timestamp`'s own `Display`: the two differ for instants beyond chrono's
// range (a prediction saturated at `i64::MAX`), and the API has always printed those as digits.
fn serialize_timestamp<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    serialize_time(&t.map(Timestamp::micros), s)
}

/// One customer's scores, as the scoring job writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// Internal customer id (as [`Purchases::customer`] gives it).
    pub customer: i64,
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5.
    pub f: u8,
    /// Monetary score 1–5.
    pub m: u8,
    /// Named RFM segment.
    pub rfm_segment: &'static str,
    /// Lifecycle stage.
    pub stage: &'static str,
    /// Value tier (`kanta_core::tier`).
    pub value_tier: &'static str,
    /// Category in most orders (`kanta_core::crosssell`).
    pub main_category: Option<String>,
    /// Cross-sell hint (`kanta_core::crosssell`).
    pub next_category: Option<String>,
    /// The model scores, when the models were fitted.
    pub model: Option<ModelScores>,
}

/// A scoring run to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScoreRun {
    /// When the run started (µs): the instant it scored, and the time of its stage changes.
    pub started_at: i64,
    /// When its computation finished (µs).
    pub finished_at: i64,
    /// The observation day, `YYYY-MM-DD`.
    pub as_of: String,
    /// Orders read.
    pub orders: u64,
    /// The chosen transaction model, if one was fitted.
    pub model: Option<String>,
    /// The fitted parameters and diagnostics (the models' summary, or why they were not fitted).
    pub diagnostics: Value,
}

/// A recorded scoring run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoreRunInfo {
    /// Id.
    pub id: i64,
    /// Started, RFC 3339.
    pub started_at: String,
    /// Finished, RFC 3339.
    pub finished_at: String,
    /// The observation day.
    pub as_of: String,
    /// Customers scored.
    pub customers: i64,
    /// Orders read.
    pub orders: i64,
    /// The chosen transaction model.
    pub model: Option<String>,
    /// Customers whose stage changed (on the first run: every customer).
    pub stage_changes: i64,
    /// `completed`, or `cancelled` for a run stopped before it wrote anything (shutdown or its
    /// time budget; `diagnostics` says which and in which phase): its scores were never
    /// written, the previous run's stay.
    pub status: String,
    /// Fitted parameters and diagnostics.
    #[schema(value_type = Object)]
    pub diagnostics: Value,
}

/// A change of a customer's lifecycle stage, found by a scoring run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StageChange {
    /// The run that found it.
    pub run_id: i64,
    /// When, RFC 3339.
    pub time: String,
    /// The stage before (none on the customer's first run).
    pub from: Option<String>,
    /// The new stage.
    pub to: String,
}

/// A saved segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SegmentInfo {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The expression, as written.
    pub expression: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// When the membership was last computed, RFC 3339.
    pub refreshed_at: String,
    /// Members at that time.
    pub members: i64,
}

/// A customer entering or leaving a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Transition {
    /// Position (the cursor of the next page; increasing).
    pub id: i64,
    /// The segment's id.
    pub segment_id: i64,
    /// The segment's name.
    pub segment: String,
    /// The customer's external id.
    pub customer: String,
    /// The customer's internal id.
    #[serde(skip)]
    pub customer_key: i64,
    /// `enter` or `exit`.
    pub kind: String,
    /// When the refresh saw it, RFC 3339.
    pub time: String,
}

/// What a segment refresh changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RefreshCounts {
    /// Customers who entered.
    pub entered: u64,
    /// Customers who left.
    pub exited: u64,
    /// Members now.
    pub members: i64,
}

/// A stage change with the customer, for the webhook dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageEvent {
    /// Position in the log of stage changes (increasing).
    pub id: i64,
    /// The customer's internal id.
    #[serde(skip)]
    pub customer_key: i64,
    /// The customer's external id.
    pub customer: String,
    /// The change.
    #[serde(flatten)]
    pub change: StageChange,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the log (the cursor for the next page).
    pub id: i64,
    /// When, RFC 3339.
    pub time: String,
    /// The token that made the call (none for the command line).
    pub token_id: Option<i64>,
    /// `export` or `erase`.
    pub action: String,
    /// The customer's id (for an erased customer, every entry shows the anonymous id).
    pub customer: Option<String>,
}

/// One order reduced to what the analysis needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// Customer external id.
    pub customer: String,
    /// Order external id.
    pub order: String,
    /// When.
    pub time: Timestamp,
    /// Amount in 1/10,000 units.
    pub amount: i64,
    /// Status.
    pub status: record::OrderStatus,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Row id (recorded in the audit log).
    pub id: i64,
    /// Stored hash.
    pub hash: TokenHash,
    /// Scope.
    pub scope: Scope,
}

/// A token as listed (no hash, no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Id, for `kanta token revoke`.
    pub id: i64,
    /// Scope.
    pub scope: Scope,
    /// Name given at creation.
    pub name: Option<String>,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Revoked, RFC 3339.
    pub revoked_at: Option<String>,
}

/// How long a response to a request with an `Idempotency-Key` is kept and replayed, unless
/// the server is told otherwise: a day, enough for any client's retries.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The first response to a request with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// SHA-256 of the request (method, path, body), to refuse a key reused for another request.
    pub request_hash: String,
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// A signed inbound request that was accepted: remembered until its timestamp leaves the
/// tolerance window, so the same signature cannot be accepted twice (a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSignature {
    /// The inbound hook's name.
    pub hook: String,
    /// Hex SHA-256 of the verified MAC (which covers the signed timestamp and the body), so the
    /// same request in another encoding or with extra signatures beside it is the same one.
    pub digest: String,
    /// When the request's timestamp leaves the window (µs); the row may be purged from then on.
    pub expires_at: i64,
}

/// Row counts, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Customers.
    pub customers: i64,
    /// Orders.
    pub orders: i64,
    /// Events.
    pub events: i64,
    /// Feedback.
    pub feedback: i64,
}

/// The store: one trait per aggregate, and this umbrella over all of them, which callers hold
/// as `Arc<dyn Storage>` (the aggregates' methods are callable on it without importing their
/// traits). Writes take checked records ([`record`]); each call is one transaction.
#[async_trait::async_trait]
pub trait Storage:
    CustomerStore
    + OrderStore
    + ScoreStore
    + SegmentStore
    + WebhookStore
    + TokenStore
    + AuditStore
    + JourneyStore
    + TriggerStore
    + GoalStore
    + HistoryStore
    + DashboardStore
    + Send
    + Sync
    + fmt::Debug
{
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Row counts.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A record type with its store call, so the API and the importer write batches generically.
#[async_trait::async_trait]
pub trait WriteBatch: record::Record + Send + Sync {
    /// The record kind's plural name (`orders`), for messages and metrics.
    const KIND: &'static str;
    /// Write a batch (one transaction).
    async fn write_batch(store: &dyn Storage, batch: &[Self], now: Timestamp) -> Result<WriteCounts, StoreError>;
}

#[async_trait::async_trait]
impl WriteBatch for Customer {
    const KIND: &'static str = "customers";
    async fn write_batch(store: &dyn Storage, batch: &[Self], now: Timestamp) -> Result<WriteCounts, StoreError> {
        store.write_customers(batch, now).await
    }
}

#[async_trait::async_trait]
impl WriteBatch for Order {
    const KIND: &'static str = "orders";
    async fn write_batch(store: &dyn Storage, batch: &[Self], now: Timestamp) -> Result<WriteCounts, StoreError> {
        store.write_orders(batch, now).await
    }
}

#[async_trait::async_trait]
impl WriteBatch for Event {
    const KIND: &'static str = "events";
    async fn write_batch(store: &dyn Storage, batch: &[Self], now: Timestamp) -> Result<WriteCounts, StoreError> {
        store.write_events(batch, now).await
    }
}

#[async_trait::async_trait]
impl WriteBatch for Feedback {
    const KIND: &'static str = "feedback";
    async fn write_batch(store: &dyn Storage, batch: &[Self], now: Timestamp) -> Result<WriteCounts, StoreError> {
        store.write_feedback(batch, now).await
    }
}

/// The schema migrations of a backend, oldest first: `(version, name, sql)`. Applied
/// migrations are never edited; a change is a new migration.
pub(crate) fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    Migrator {
        migrations: Cow::Owned(
            migrations
                .iter()
                .map(|&(version, name, sql)| {
                    Migration::new(version, Cow::Borrowed(name), MigrationType::Simple, Cow::Borrowed(sql), false)
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

/// Open (creating and migrating as needed) the store at `url`:
/// `sqlite://PATH` (the file is created on first use), `sqlite::memory:`, or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>, StoreError> {
    open_with(url, SegmentLimits::default()).await
}

/// [`open`] with other limits on segment queries.
pub async fn open_with(url: &str, limits: SegmentLimits) -> Result<Arc<dyn Storage>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(store::Store::<sqlx::Sqlite>::open_sqlite(url, limits).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(store::Store::<sqlx::Postgres>::open_postgres(url, limits).await?))
    } else {
        Err(StoreError::Url(redact(url)))
    }
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Microseconds since the epoch as RFC 3339 UTC (`2024-03-01T10:00:00Z`, with fractional
/// seconds only when there are any).
pub fn rfc3339(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => micros.to_string(),
    }
}

/// The current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn segment_queries_wait_for_a_slot_then_answer_busy() {
        let limits = SegmentLimits { slots: 1, wait: Duration::from_millis(20), ..SegmentLimits::default() };
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.slots));
        let held = segment_slot(&slots, &limits).await.expect("the free slot");
        let busy = segment_slot(&slots, &limits).await.expect_err("taken");
        assert!(matches!(busy, StoreError::Busy));
        assert_eq!(busy.to_string(), "the server is busy with other segment queries; try again shortly");
        drop(held);
        assert!(segment_slot(&slots, &limits).await.is_ok(), "free again");
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgres://kanta:s3cret@db:5432/kanta"), "postgres://kanta:***@db:5432/kanta");
        assert_eq!(redact("postgres://kanta@db/kanta"), "postgres://kanta@db/kanta");
        assert_eq!(redact("sqlite://kanta.db"), "sqlite://kanta.db");
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(1_709_287_200_000_000), "2024-03-01T10:00:00Z");
        assert_eq!(rfc3339(1_709_287_200_500_000), "2024-03-01T10:00:00.500Z");
    }
}

/// One suite on both backends: `on_both_backends!(#[test attribute] |db| argument; names…)` writes
/// `sqlite::NAME` and `postgres::NAME` tests, each calling `super::NAME(argument)` with `db` a
/// fresh [`testing::TestDb`] (the PostgreSQL half is skipped without a server, unless
/// `KANTA_REQUIRE_POSTGRES=1`). Not part of the supported API.
#[doc(hidden)]
#[macro_export]
macro_rules! on_both_backends {
    (#[$test:meta] |$db:ident| $argument:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[$test]
                async fn $name() {
                    let $db = $crate::testing::sqlite().await.expect("a SQLite store");
                    super::$name($argument).await;
                }
            )*
        }
        mod postgres {
            $(
                #[$test]
                async fn $name() {
                    if let Some($db) = $crate::testing::postgres().await.expect("a PostgreSQL store") {
                        super::$name($argument).await;
                    }
                }
            )*
        }
    };
}

/// Fresh, isolated stores for tests (this crate's and the API's): a new SQLite file, or a new
/// database on the PostgreSQL server named by `KANTA_TEST_POSTGRES_URL` (which `scripts/test`
/// starts). Not part of the supported API.
#[doc(hidden)]
pub mod testing {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use sqlx::Connection;

    use crate::{Storage, StoreError};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// A store, its URL, and the file to delete afterwards (SQLite).
    pub struct TestDb {
        /// The store.
        pub store: Arc<dyn Storage>,
        /// Its URL, for starting a server or a CLI command on the same database.
        pub url: String,
        file: Option<std::path::PathBuf>,
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            if let Some(file) = &self.file {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
        }
    }

    impl TestDb {
        /// SQLite: copy the WAL into the database file and empty it (as SQLite does from time to
        /// time), so what was written so far sits in the file itself. PostgreSQL: nothing.
        pub async fn checkpoint(&self) -> Result<(), StoreError> {
            if self.file.is_some() {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
                conn.close().await?;
            }
            Ok(())
        }

        /// Where any of `needles` is still stored, as `(needle, place)` pairs: on SQLite the raw
        /// bytes of the database file and its `-wal` and `-shm` files (free pages and old page
        /// images included); on PostgreSQL every row of every table, printed as text.
        pub async fn stored(&self, needles: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
            let mut found = Vec::new();
            if let Some(file) = &self.file {
                for suffix in ["", "-wal", "-shm"] {
                    let path = format!("{}{suffix}", file.display());
                    let Ok(bytes) = std::fs::read(&path) else { continue };
                    for needle in needles {
                        let n = needle.as_bytes();
                        let hits = bytes.windows(n.len()).filter(|w| *w == n).count();
                        if hits > 0 {
                            found.push((needle.to_string(), format!("{hits}× in the file {path}")));
                        }
                    }
                }
                return Ok(found);
            }
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")
                    .fetch_all(&mut conn)
                    .await?;
            for table in tables {
                // Table names come from the catalog, quoted as identifiers; the needles are bound.
                let ident = format!("\"{}\"", table.replace('"', "\"\""));
                for needle in needles {
                    let sql = format!("SELECT COUNT(*) FROM {ident} t WHERE strpos(t::text, $1) > 0");
                    let hits: i64 = sqlx::query_scalar(&sql).bind(*needle).fetch_one(&mut conn).await?;
                    if hits > 0 {
                        found.push((needle.to_string(), format!("{hits} row(s) of {table}")));
                    }
                }
            }
            conn.close().await?;
            Ok(found)
        }
    }

    fn unique() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// A new SQLite store in a temporary file.
    pub async fn sqlite() -> Result<TestDb, StoreError> {
        let file = std::env::temp_dir().join(format!("kanta_test_{}.db", unique()));
        let url = format!("sqlite://{}", file.display());
        let store = crate::open(&url).await?;
        Ok(TestDb { store, url, file: Some(file) })
    }

    /// A new database on the test PostgreSQL server, or `None` when there is none (the test is
    /// skipped with a note, unless `KANTA_REQUIRE_POSTGRES=1`, as in `scripts/test`, makes that
    /// a failure).
    pub async fn postgres() -> Result<Option<TestDb>, StoreError> {
        let Ok(admin) = std::env::var("KANTA_TEST_POSTGRES_URL") else {
            if std::env::var("KANTA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                return Err(StoreError::Url(
                    "KANTA_TEST_POSTGRES_URL is not set but KANTA_REQUIRE_POSTGRES=1 (run scripts/test)".into(),
                ));
            }
            tracing::warn!("skipped: no KANTA_TEST_POSTGRES_URL (scripts/test starts a PostgreSQL server)");
            return Ok(None);
        };
        // The name is generated here from digits and underscores; identifiers cannot be bound.
        let name = format!("kanta_test_{}", unique());
        let mut conn = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        conn.close().await?;
        let url = match admin.rfind('/') {
            Some(slash) if slash > admin.find("://").map_or(0, |s| s + 2) => format!("{}/{name}", &admin[..slash]),
            _ => format!("{admin}/{name}"),
        };
        let store = crate::open(&url).await?;
        Ok(Some(TestDb { store, url, file: None }))
    }
}
