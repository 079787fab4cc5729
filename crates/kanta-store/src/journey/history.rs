//! What a journey simulation reads besides the scores ([`HistoryStore`]): every customer's key
//! and zone, the recent orders, events and segment transitions it replays as the next days'
//! triggers, the marketing messages already sent (the frequency cap's window starts before
//! now), and a journey's earlier runs (re-entry rules).
//!
//! Every read is a keyset page by row id, so a simulation over millions of customers streams
//! instead of holding a result set; nothing here writes.

use kanta_domain::Timestamp;
use kanta_domain::purchase::IN_LOG_SQL;
use sqlx::types::Json as SqlJson;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::opt_time;
use crate::sql::{Row, query};
use crate::store::{Store, keyset_page};

/// A customer as a projection names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerKey {
    /// Internal id (the page position).
    pub id: i64,
    /// External id (splits and arms hash it).
    pub external_id: String,
    /// The zone as stored.
    pub timezone: Option<String>,
}

/// Which past happenings to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening<'a> {
    /// Orders (not cancelled), as `order.created`.
    Orders,
    /// Events of this name.
    Event(&'a str),
    /// Entries into the saved segment of this name.
    SegmentEnter(&'a str),
    /// Exits from the saved segment of this name.
    SegmentExit(&'a str),
}

/// One past happening.
#[derive(Debug, Clone, PartialEq)]
pub struct Happened {
    /// Internal customer id.
    pub customer: i64,
    /// When.
    pub at: Timestamp,
    /// The customer's first order (orders only: no order earlier by time, or at the same time
    /// with a lower id).
    pub first_order: bool,
    /// The event's properties (orders: `order_id`; transitions: none).
    pub properties: Option<serde_json::Value>,
}

/// One earlier run of a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierRun {
    /// Internal customer id.
    pub customer: i64,
    /// The run's key (empty for a trigger without one).
    pub key: String,
    /// When it entered.
    pub entered_at: Timestamp,
    /// When it ended, if it did.
    pub ended_at: Option<Timestamp>,
}

/// The reads of a journey simulation.
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    /// Customers not erased, by internal id, after `after`, at most `limit`.
    async fn customer_keys(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<CustomerKey>, Option<i64>), StoreError>;

    /// `what` happened to customers not erased in `[from, until)`, by row id, after `after`.
    async fn happened(
        &self,
        what: Happening<'_>,
        from: Timestamp,
        until: Timestamp,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Happened>, Option<i64>), StoreError>;

    /// Marketing email messages sent (or in doubt) in `[from, until)`: (internal customer id,
    /// when), by message id, after `after`.
    async fn marketing_sent(
        &self,
        from: Timestamp,
        until: Timestamp,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<(i64, Timestamp)>, Option<i64>), StoreError>;

    /// The runs of `journey` (any version, any key), by run id, after `after`.
    async fn earlier_runs(
        &self,
        journey: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<EarlierRun>, Option<i64>), StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> HistoryStore for Store<DB> {
    async fn customer_keys(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<CustomerKey>, Option<i64>), StoreError> {
        let rows = query::<DB>(
            "SELECT id, external_id, timezone FROM customers WHERE erased_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| {
            Ok(CustomerKey {
                id: r.try_get("id")?,
                external_id: r.try_get("external_id")?,
                timezone: r.try_get("timezone")?,
            })
        })
    }

    async fn happened(
        &self,
        what: Happening<'_>,
        from: Timestamp,
        until: Timestamp,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Happened>, Option<i64>), StoreError> {
        let active = "EXISTS (SELECT 1 FROM customers c WHERE c.id = x.customer_id AND c.erased_at IS NULL)";
        let (sql, name) = match what {
            Happening::Orders => (
                format!(
                    "SELECT x.id, x.customer_id, x.time, x.external_id AS order_id, \
                     NOT EXISTS (SELECT 1 FROM orders e WHERE e.customer_id = x.customer_id \
                     AND (e.time < x.time OR (e.time = x.time AND e.id < x.id))) AS first, NULL AS properties \
                     FROM orders x WHERE {} AND x.time >= $1 AND x.time < $2 AND x.id > $3 AND {active} \
                     ORDER BY x.id LIMIT $4",
                    IN_LOG_SQL.replace("o.", "x.")
                ),
                None,
            ),
            Happening::Event(name) => (
                format!(
                    "SELECT x.id, x.customer_id, x.time, NULL AS order_id, FALSE AS first, x.properties \
                     FROM events x WHERE x.time >= $1 AND x.time < $2 AND x.id > $3 AND x.name = $5 AND {active} \
                     ORDER BY x.id LIMIT $4"
                ),
                Some(name),
            ),
            Happening::SegmentEnter(name) | Happening::SegmentExit(name) => (
                format!(
                    "SELECT x.id, x.customer_id, x.time, NULL AS order_id, FALSE AS first, NULL AS properties \
                     FROM segment_transitions x JOIN segments s ON s.id = x.segment_id \
                     WHERE x.time >= $1 AND x.time < $2 AND x.id > $3 AND s.name = $5 AND x.kind = '{}' AND {active} \
                     ORDER BY x.id LIMIT $4",
                    if matches!(what, Happening::SegmentEnter(_)) { "enter" } else { "exit" }
                ),
                Some(name),
            ),
        };
        let mut q = query::<DB>(&sql)
            .bind(from.micros())
            .bind(until.micros())
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit) + 1);
        if let Some(name) = name {
            q = q.bind(name);
        }
        let rows = q.fetch_all(&self.reader).await?;
        keyset_page(&rows, limit, |r| {
            let order: Option<String> = r.try_get("order_id")?;
            let properties: Option<SqlJson<serde_json::Value>> = r.try_get("properties")?;
            Ok(Happened {
                customer: r.try_get("customer_id")?,
                at: Timestamp::from_micros(r.try_get("time")?),
                first_order: r.try_get("first")?,
                properties: match order {
                    Some(id) => Some(serde_json::json!({ "order_id": id })),
                    None => properties.map(|p| p.0),
                },
            })
        })
    }

    async fn marketing_sent(
        &self,
        from: Timestamp,
        until: Timestamp,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<(i64, Timestamp)>, Option<i64>), StoreError> {
        // As the cap counts them at send time (`outbox::marketing_sent_since`): sent, or
        // claimed and in doubt.
        let rows = query::<DB>(
            "SELECT m.id, m.customer_id, CASE WHEN m.status = 'sent' THEN m.sent_at ELSE m.claimed_at END AS at \
             FROM journey_messages m WHERE NOT m.transactional AND m.channel = 'email' AND m.id > $3 AND ( \
             (m.status = 'sent' AND m.sent_at >= $1 AND m.sent_at < $2) \
             OR (m.status IN ('in_doubt', 'sending') AND m.claimed_at >= $1 AND m.claimed_at < $2)) \
             ORDER BY m.id LIMIT $4",
        )
        .bind(from.micros())
        .bind(until.micros())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| Ok((r.try_get("customer_id")?, Timestamp::from_micros(r.try_get("at")?))))
    }

    async fn earlier_runs(
        &self,
        journey: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<EarlierRun>, Option<i64>), StoreError> {
        let rows = query::<DB>(
            "SELECT id, customer_id, run_key, entered_at, ended_at FROM journey_runs WHERE journey = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(journey)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| {
            Ok(EarlierRun {
                customer: r.try_get("customer_id")?,
                key: r.try_get("run_key")?,
                entered_at: Timestamp::from_micros(r.try_get("entered_at")?),
                ended_at: opt_time(r.try_get("ended_at")?),
            })
        })
    }
}
