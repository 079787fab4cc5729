//! What the store keeps for outbound webhooks: per endpoint, how far it has read the two event
//! logs (stage changes, segment transitions) and its health; per event and endpoint, one
//! delivery — the exact body that is signed and sent, and the outcome of its latest attempt.
//! The dispatcher (`kanta-webhooks`) decides what to send and when; the store only records it
//! ([`WebhookStore`]).

use serde::Serialize;
use utoipa::ToSchema;

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, query};
use crate::store::{CHUNK, Store, keyset_page};
use crate::{StoreError, serialize_instant, serialize_time};

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

/// Webhooks: the endpoints' cursors and health, the outbox of deliveries, attempts.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// The endpoint called `name`, registered at `url` if it is new — reading the event logs
    /// from their current ends, so a new endpoint gets new events, not history. A changed URL is
    /// recorded.
    async fn webhook_endpoint(&self, name: &str, url: &str, now: i64) -> Result<EndpointState, StoreError>;

    /// Queue deliveries for an endpoint and move its cursors, in one transaction (an event
    /// already queued for it is skipped). Returns how many were queued.
    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        stage_cursor: i64,
        transition_cursor: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<u64, StoreError>;

    /// An endpoint's pending deliveries, oldest first.
    async fn pending_deliveries(&self, endpoint: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Record an attempt on a delivery and its endpoint.
    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError>;

    /// Contact fields and latest scores of these customers (internal ids), for webhook bodies;
    /// erased customers are left out.
    async fn customer_contexts(&self, customers: &[i64]) -> Result<Vec<(i64, CustomerContext)>, StoreError>;

    /// Every endpoint the dispatcher has seen, with delivery counts.
    async fn webhook_endpoints(&self) -> Result<Vec<EndpointState>, StoreError>;

    /// The delivery log after position `after`, oldest first, of one endpoint or of all.
    async fn deliveries(
        &self,
        endpoint: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Delivery>, Option<i64>), StoreError>;

    /// Unpause an endpoint and clear its backoff; with `retry_failed`, deliveries given up on
    /// are queued again. Returns whether the endpoint exists.
    async fn resume_webhook(&self, endpoint: &str, retry_failed: bool) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> WebhookStore for Store<DB> {
    async fn webhook_endpoint(&self, name: &str, url: &str, now: i64) -> Result<EndpointState, StoreError> {
        let mut tx = self.writer.begin().await?;
        query(
            "INSERT INTO webhook_endpoints (name, url, stage_cursor, transition_cursor, created_at) \
             VALUES ($1, $2, (SELECT COALESCE(MAX(id), 0) FROM stage_changes), \
             (SELECT COALESCE(MAX(id), 0) FROM segment_transitions), $3) \
             ON CONFLICT (name) DO UPDATE SET url = excluded.url WHERE webhook_endpoints.url <> excluded.url",
        )
        .bind(name)
        .bind(url)
        .bind(now)
        .execute(&mut tx)
        .await?;
        let row = query(&format!("{ENDPOINT_SELECT} WHERE e.name = $1")).bind(name).fetch_one(&mut tx).await?;
        let state = endpoint_state(&row)?;
        tx.commit().await?;
        Ok(state)
    }

    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        stage_cursor: i64,
        transition_cursor: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut queued = 0;
        for chunk in deliveries.chunks(CHUNK) {
            let mut b = QueryBuilder::new(
                "INSERT INTO webhook_deliveries (endpoint, customer_id, event_id, event_type, payload, state, created_at) ",
            );
            b.push_values(chunk, |mut row, d| {
                row.push_bind(endpoint)
                    .push_bind(d.customer)
                    .push_bind(&d.event_id)
                    .push_bind(&d.event_type)
                    .push_bind(&d.payload)
                    .push_bind(crate::webhook::state::PENDING)
                    .push_bind(now);
            });
            b.push(" ON CONFLICT (endpoint, event_id) DO NOTHING");
            queued += b.build().execute(&mut tx).await?.rows_affected();
        }
        query("UPDATE webhook_endpoints SET stage_cursor = $2, transition_cursor = $3 WHERE name = $1")
            .bind(endpoint)
            .bind(stage_cursor)
            .bind(transition_cursor)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn pending_deliveries(&self, endpoint: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint = $1 AND state = $2 ORDER BY id LIMIT $3"
        );
        let rows = query(&sql)
            .bind(endpoint)
            .bind(crate::webhook::state::PENDING)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(delivery).collect()
    }

    async fn record_attempt(&self, a: &Attempt) -> Result<(), StoreError> {
        use crate::webhook::state;
        let new_state = match (&a.error, a.give_up) {
            (None, _) => state::DELIVERED,
            (Some(_), true) => state::FAILED,
            (Some(_), false) => state::PENDING,
        };
        let mut tx = self.writer.begin().await?;
        let endpoint: Option<String> = query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, last_attempt_at = $3, \
             last_status = $4, last_error = $5, delivered_at = CASE WHEN $6 THEN $3 END WHERE id = $1 RETURNING endpoint",
        )
        .bind(a.delivery)
        .bind(new_state)
        .bind(a.time)
        .bind(a.status.map(i64::from))
        .bind(a.error.as_deref())
        .bind(a.error.is_none())
        .fetch_optional(&mut tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        let Some(endpoint) = endpoint else {
            return Err(StoreError::Corrupt(format!("no webhook delivery {}", a.delivery)));
        };
        query(
            "UPDATE webhook_endpoints SET failures = $2, retry_at = $3, \
             paused_at = CASE WHEN CAST($4 AS TEXT) IS NULL THEN paused_at ELSE $5 END, \
             paused_reason = COALESCE(CAST($4 AS TEXT), paused_reason) WHERE name = $1",
        )
        .bind(&endpoint)
        .bind(a.failures)
        .bind(a.retry_at)
        .bind(a.pause.as_deref())
        .bind(a.time)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn customer_contexts(&self, customers: &[i64]) -> Result<Vec<(i64, CustomerContext)>, StoreError> {
        let mut out = Vec::with_capacity(customers.len());
        for chunk in customers.chunks(CHUNK) {
            let mut q: QueryBuilder<DB> = QueryBuilder::new(
                "SELECT c.id, c.email, c.name, s.stage, s.value_tier, s.clv_12m, s.p_alive, s.next_category \
                 FROM customers c LEFT JOIN scores s ON s.customer_id = c.id WHERE c.erased_at IS NULL AND c.id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            for r in q.build().fetch_all(&self.reader).await? {
                out.push((
                    r.try_get("id")?,
                    CustomerContext {
                        email: r.try_get("email")?,
                        name: r.try_get("name")?,
                        stage: r.try_get("stage")?,
                        value_tier: r.try_get("value_tier")?,
                        clv_12m: r.try_get("clv_12m")?,
                        p_alive: r.try_get("p_alive")?,
                        next_category: r.try_get("next_category")?,
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn webhook_endpoints(&self) -> Result<Vec<EndpointState>, StoreError> {
        let rows = query(&format!("{ENDPOINT_SELECT} ORDER BY e.name")).fetch_all(&self.reader).await?;
        rows.iter().map(endpoint_state).collect()
    }

    async fn deliveries(
        &self,
        endpoint: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Delivery>, Option<i64>), StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR endpoint = $2) \
             ORDER BY id LIMIT $3"
        );
        let rows = query(&sql)
            .bind(after.unwrap_or(0))
            .bind(endpoint)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        keyset_page(&rows, limit, delivery)
    }

    async fn resume_webhook(&self, endpoint: &str, retry_failed: bool) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let found = query(
            "UPDATE webhook_endpoints SET failures = 0, retry_at = NULL, paused_at = NULL, paused_reason = NULL \
             WHERE name = $1",
        )
        .bind(endpoint)
        .execute(&mut tx)
        .await?
        .rows_affected();
        if found > 0 && retry_failed {
            query("UPDATE webhook_deliveries SET state = $2, attempts = 0 WHERE endpoint = $1 AND state = $3")
                .bind(endpoint)
                .bind(crate::webhook::state::PENDING)
                .bind(crate::webhook::state::FAILED)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found > 0)
    }
}

const DELIVERY_COLUMNS: &str = "id, endpoint, event_id, event_type, payload, state, attempts, created_at, \
     last_attempt_at, last_status, last_error, delivered_at";

fn delivery<R: Row>(r: &R) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get("id")?,
        endpoint: r.try_get("endpoint")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

const ENDPOINT_SELECT: &str = "SELECT e.name, e.url, e.stage_cursor, e.transition_cursor, e.failures, e.retry_at, \
     e.paused_at, e.paused_reason, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = e.name AND d.state = 'pending') AS pending, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = e.name AND d.state = 'delivered') AS delivered, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = e.name AND d.state = 'failed') AS failed \
     FROM webhook_endpoints e";

fn endpoint_state<R: Row>(r: &R) -> Result<EndpointState, StoreError> {
    Ok(EndpointState {
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        stage_cursor: r.try_get("stage_cursor")?,
        transition_cursor: r.try_get("transition_cursor")?,
        failures: r.try_get("failures")?,
        retry_at: r.try_get("retry_at")?,
        paused_at: r.try_get("paused_at")?,
        paused_reason: r.try_get("paused_reason")?,
        pending: r.try_get("pending")?,
        delivered: r.try_get("delivered")?,
        failed: r.try_get("failed")?,
    })
}
