//! What the journey engine has yet to see: new orders and events, stage changes and segment
//! transitions, copied into `journey_feed` by the transactions that write them (migration 0011).
//!
//! Why a table rather than a call from the API into the engine: an order accepted by the API
//! (or imported by `kanta import` while `kanta serve` runs) must start its journeys even if the
//! server dies right after answering, and stage changes and segment transitions are made by
//! the scheduler, not by a request. Why not a cursor over `orders.id`: PostgreSQL's sequences
//! hand out ids at insert and transactions commit in any order, so a reader that moved past id
//! 10 could miss id 9 committed a moment later. Feed rows are instead **claimed** (with a lease;
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two servers take disjoint rows) and **deleted**
//! once handled: whatever commits late is simply claimed later.
//!
//! **Invariant:** rows are written only while some journey is active (not paused), checked in
//! the writing transaction, so a store without journeys pays one `EXISTS` per write and keeps
//! no backlog; a journey applied later does not see what happened before it existed.

use std::collections::HashMap;
use std::time::Duration;

use kanta_domain::Timestamp;
use serde_json::{Value as Json, json};
use sqlx::types::Json as SqlJson;

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, Tx, query};
use crate::store::Store;
use crate::{StoreError, rfc3339};

use super::lease_end;

/// The condition every feed write carries (see the module's invariant).
const WHILE_ACTIVE: &str = "EXISTS (SELECT 1 FROM journey_heads WHERE NOT paused AND version > 0)";

/// What a feed row says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedKind {
    /// A new order (`order.created`), with whether it is the customer's first.
    Order {
        /// No earlier order of the customer is stored (by time, then id).
        first: bool,
    },
    /// An event posted to `/v1/events` or imported.
    Event,
    /// The customer's lifecycle stage became `name`.
    Stage,
    /// The customer entered segment `name`.
    SegmentEnter,
    /// The customer left segment `name`.
    SegmentExit,
}

/// One claimed feed row, with what the engine needs to act on it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// The row (to [`crate::JourneyStore::ack_feed`]).
    pub id: i64,
    /// The customer's external id; `None` when the customer was erased meanwhile.
    pub customer: Option<String>,
    /// The customer's internal id.
    pub customer_key: i64,
    /// The order's or event's row (`orders.id`, `events.id`); `None` for transitions.
    pub reference: Option<i64>,
    /// What happened.
    pub kind: FeedKind,
    /// `order.created`, the event's name, the new stage, or the segment's name.
    pub name: String,
    /// The event's properties; for an order `order_id`, `amount`, `currency`, `status`, `time`.
    pub properties: Json,
    /// When it happened (the order's or event's own time; the run's time for transitions).
    pub time: Timestamp,
}

/// Inside an order write: the orders with these ids are new.
pub(crate) async fn orders_created<DB: Dialect>(tx: &mut Tx<DB>, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<DB> = QueryBuilder::new(
        "INSERT INTO journey_feed (customer_id, kind, name, ref_id, time) \
         SELECT customer_id, 'order', 'order.created', id, time FROM orders WHERE ",
    );
    DB::push_id_filter(&mut q, "id", ids);
    q.push(" AND ").push(WHILE_ACTIVE).push(" ORDER BY id");
    q.build().execute(&mut *tx).await?;
    Ok(())
}

/// Inside an event write: the events with these ids are new.
pub(crate) async fn events_created<DB: Dialect>(tx: &mut Tx<DB>, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<DB> = QueryBuilder::new(
        "INSERT INTO journey_feed (customer_id, kind, name, ref_id, time) \
         SELECT customer_id, 'event', name, id, time FROM events WHERE ",
    );
    DB::push_id_filter(&mut q, "id", ids);
    q.push(" AND ").push(WHILE_ACTIVE).push(" ORDER BY id");
    q.build().execute(&mut *tx).await?;
    Ok(())
}

/// Inside a scoring write: the stage changes of score run `run`.
pub(crate) async fn stages_changed<DB: Dialect>(
    tx: &mut sqlx::Transaction<'_, DB>,
    run: i64,
) -> Result<(), StoreError> {
    query(&format!(
        "INSERT INTO journey_feed (customer_id, kind, name, time) \
         SELECT customer_id, 'stage', to_stage, time FROM stage_changes WHERE run_id = $1 AND {WHILE_ACTIVE} \
         ORDER BY id"
    ))
    .bind(run)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inside a segment refresh: the transitions of segment `segment` after log position `after`.
pub(crate) async fn segment_transitions<DB: Dialect>(
    tx: &mut Tx<DB>,
    segment: i64,
    after: i64,
) -> Result<(), StoreError> {
    query(&format!(
        "INSERT INTO journey_feed (customer_id, kind, name, time) \
         SELECT t.customer_id, CASE t.kind WHEN 'enter' THEN 'segment_enter' ELSE 'segment_exit' END, s.name, t.time \
         FROM segment_transitions t JOIN segments s ON s.id = t.segment_id \
         WHERE t.segment_id = $1 AND t.id > $2 AND {WHILE_ACTIVE} ORDER BY t.id"
    ))
    .bind(segment)
    .bind(after)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inside an erasure: nothing about the customer is left to act on.
pub(crate) async fn erase_customer<DB: Dialect>(tx: &mut Tx<DB>, customer: i64) -> Result<(), StoreError> {
    query("DELETE FROM journey_feed WHERE customer_id = $1").bind(customer).execute(&mut *tx).await?;
    Ok(())
}

/// Claim up to `limit` rows, oldest first, for `lease`; rows another worker holds are passed
/// over. See [`crate::JourneyStore::claim_feed`].
pub(super) async fn claim<DB: Dialect>(
    store: &Store<DB>,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> Result<Vec<FeedItem>, StoreError> {
    // As the run claim: one statement, and the outer condition repeats the inner one because
    // a row picked from an older snapshot may have been claimed meanwhile.
    let sql = format!(
        "UPDATE journey_feed SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT f.id FROM journey_feed f WHERE f.lease_until IS NULL OR f.lease_until <= $3 \
         ORDER BY f.id LIMIT $4{}) AND (lease_until IS NULL OR lease_until <= $3) \
         RETURNING id, customer_id, kind, name, ref_id, time",
        DB::SKIP_LOCKED
    );
    let rows = query(&sql)
        .bind(owner)
        .bind(lease_end(now, lease).micros())
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&store.writer)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        claimed.push(Claimed {
            id: r.try_get("id")?,
            customer: r.try_get("customer_id")?,
            kind: r.try_get("kind")?,
            name: r.try_get("name")?,
            reference: r.try_get("ref_id")?,
            time: r.try_get("time")?,
        });
    }
    claimed.sort_by_key(|c| c.id);
    let customers = external_ids(store, claimed.iter().map(|c| c.customer).collect()).await?;
    let orders = order_details(store, references(&claimed, "order")).await?;
    let events = event_properties(store, references(&claimed, "event")).await?;
    let mut items = Vec::with_capacity(claimed.len());
    for c in claimed {
        let mut properties = Json::Object(Default::default());
        let kind = match c.kind.as_str() {
            "order" => {
                let (details, first) = c
                    .reference
                    .and_then(|r| orders.get(&r).cloned())
                    .unwrap_or((Json::Object(Default::default()), false));
                properties = details;
                FeedKind::Order { first }
            }
            "event" => {
                if let Some(p) = c.reference.and_then(|r| events.get(&r)) {
                    properties = p.clone();
                }
                FeedKind::Event
            }
            "stage" => FeedKind::Stage,
            "segment_enter" => FeedKind::SegmentEnter,
            "segment_exit" => FeedKind::SegmentExit,
            other => return Err(StoreError::Corrupt(format!("journey feed row {} has kind `{other}`", c.id))),
        };
        items.push(FeedItem {
            id: c.id,
            customer: customers.get(&c.customer).cloned(),
            customer_key: c.customer,
            reference: c.reference,
            kind,
            name: c.name,
            properties,
            time: Timestamp::from_micros(c.time),
        });
    }
    Ok(items)
}

/// A claimed row as stored.
struct Claimed {
    id: i64,
    customer: i64,
    kind: String,
    name: String,
    reference: Option<i64>,
    time: i64,
}

/// The references of the claimed rows of `kind` (orders or events).
fn references(claimed: &[Claimed], kind: &str) -> Vec<i64> {
    claimed.iter().filter(|c| c.kind == kind).filter_map(|c| c.reference).collect()
}

/// External ids of customers not erased.
async fn external_ids<DB: Dialect>(store: &Store<DB>, mut ids: Vec<i64>) -> Result<HashMap<i64, String>, StoreError> {
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q: QueryBuilder<DB> =
        QueryBuilder::new("SELECT id, external_id FROM customers WHERE erased_at IS NULL AND ");
    DB::push_id_filter(&mut q, "id", &ids);
    for r in q.build().fetch_all(&store.reader).await? {
        out.insert(r.try_get("id")?, r.try_get("external_id")?);
    }
    Ok(out)
}

/// Orders as event properties, and whether each is its customer's first (no order earlier by
/// time, or at the same time with a lower id).
async fn order_details<DB: Dialect>(
    store: &Store<DB>,
    ids: Vec<i64>,
) -> Result<HashMap<i64, (Json, bool)>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q: QueryBuilder<DB> = QueryBuilder::new(
        "SELECT o.id, o.external_id, o.time, o.amount, o.currency, o.status, \
         NOT EXISTS (SELECT 1 FROM orders e WHERE e.customer_id = o.customer_id \
         AND (e.time < o.time OR (e.time = o.time AND e.id < o.id))) AS first \
         FROM orders o WHERE ",
    );
    DB::push_id_filter(&mut q, "o.id", &ids);
    for r in q.build().fetch_all(&store.reader).await? {
        let id: i64 = r.try_get("id")?;
        let external: String = r.try_get("external_id")?;
        let time: i64 = r.try_get("time")?;
        let amount: i64 = r.try_get("amount")?;
        let currency: String = r.try_get("currency")?;
        let status: String = r.try_get("status")?;
        let first: bool = r.try_get("first")?;
        let properties = json!({
            "order_id": external,
            "amount": crate::store::money(amount),
            "currency": currency,
            "status": status,
            "time": rfc3339(time),
        });
        out.insert(id, (properties, first));
    }
    Ok(out)
}

/// Events' properties (an empty object for an event without).
async fn event_properties<DB: Dialect>(store: &Store<DB>, ids: Vec<i64>) -> Result<HashMap<i64, Json>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q: QueryBuilder<DB> = QueryBuilder::new("SELECT id, properties FROM events WHERE ");
    DB::push_id_filter(&mut q, "id", &ids);
    for r in q.build().fetch_all(&store.reader).await? {
        let properties: Option<SqlJson<Json>> = r.try_get("properties")?;
        out.insert(r.try_get("id")?, properties.map_or_else(|| Json::Object(Default::default()), |j| j.0));
    }
    Ok(out)
}

/// Delete handled rows that `owner` still holds (a row whose lease ran out and was claimed by
/// another worker is that worker's to delete).
pub(super) async fn ack<DB: Dialect>(store: &Store<DB>, owner: &str, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut q: QueryBuilder<DB> = QueryBuilder::new("DELETE FROM journey_feed WHERE lease_owner = ");
    q.push_bind(owner).push(" AND ");
    DB::push_id_filter(&mut q, "id", ids);
    Ok(q.build().execute(&store.writer).await?.rows_affected())
}

/// Rows waiting (claimed or not), for `/metrics`.
pub(super) async fn depth<DB: Dialect>(store: &Store<DB>) -> Result<i64, StoreError> {
    Ok(query("SELECT COUNT(*) FROM journey_feed").fetch_one(&store.reader).await?.try_get(0)?)
}
