//! Orders, events and feedback: their batch writes, and the reads the analysis needs (order
//! facts, every purchase in chunks, feedback facts).

use std::collections::HashMap;
use std::sync::LazyLock;

use kanta_domain::purchase::{IN_LOG_SQL, PURCHASE_SQL, SIGNED_AMOUNT_SQL};
use kanta_domain::{CustomerId, Timestamp};
use sqlx::Pool;
use sqlx::types::Json;

use crate::dialect::Dialect;
use crate::purchases::ChunkJoin;
use crate::record::{Event, Feedback, Order, OrderStatus};
use crate::sql::{QueryBuilder, Row, Tx, query};
use crate::store::{CHUNK, Store, count_versions, customer_id, ensure_customers, last_per_id, money, parse_ints};
use crate::{OrderFact, Purchases, StoreError, WriteCounts};

/// Orders, events and feedback, and what the analysis reads of them.
#[async_trait::async_trait]
pub trait OrderStore: Send + Sync {
    /// Create or replace orders by id, creating unknown customers.
    async fn write_orders(&self, batch: &[Order], now: Timestamp) -> Result<WriteCounts, StoreError>;

    /// Store events; an id seen before is left as it is (events are facts).
    async fn write_events(&self, batch: &[Event], now: Timestamp) -> Result<WriteCounts, StoreError>;

    /// Create or replace feedback by id.
    async fn write_feedback(&self, batch: &[Feedback], now: Timestamp) -> Result<WriteCounts, StoreError>;

    /// Every order, for the analysis.
    async fn order_facts(&self) -> Result<Vec<OrderFact>, StoreError>;

    /// The orders of one customer (by external id), oldest first: what the customer 360 view
    /// computes the customer's own summary from. Empty for an unknown customer.
    async fn customer_order_facts(&self, customer: &str) -> Result<Vec<OrderFact>, StoreError>;

    /// Every completed and refunded order, handed to `sink` in chunks (ranges of order ids,
    /// in ascending order; no order within a chunk is promised). With `lines`, each chunk also
    /// carries the categories of its purchases' lines ([`PurchaseLines`]: lines of completed
    /// orders with a positive amount that have a category; orders stored without lines have
    /// none). Chunks are read in separate short transactions (so a long read never holds the
    /// writer back); an order replaced meanwhile is still read exactly once, as its row keeps
    /// its place.
    async fn purchases(&self, lines: bool, sink: &mut (dyn FnMut(Purchases) + Send)) -> Result<(), StoreError>;

    /// Every feedback response of customers not erased, oldest first per customer, with the
    /// facts the feedback insights need about each customer who responded (latest scores, net
    /// revenue, last purchase).
    async fn feedback_facts(
        &self,
    ) -> Result<(Vec<kanta_core::feedback::Response>, Vec<kanta_core::feedback::CustomerFacts>), StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> OrderStore for Store<DB> {
    async fn write_orders(&self, batch: &[Order], now: Timestamp) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |o| o.id.as_str());
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&CustomerId> = records.iter().map(|o| &o.customer_id).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        let by_id: HashMap<&str, &Order> = records.iter().map(|o| (o.id.as_str(), *o)).collect();
        let mut returned = 0u64;
        let mut touched: Vec<i64> = Vec::with_capacity(records.len());
        for chunk in records.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for o in chunk {
                let cid = customer_id(&customers, &o.customer_id)?;
                touched.push(cid);
                rows.push((o, cid, lines_digest(o)));
            }
            let mut q: QueryBuilder<DB> = QueryBuilder::new(
                "INSERT INTO orders (external_id, customer_id, time, amount, currency, status, lines_digest) ",
            );
            q.push_values(&rows, |mut b, (o, cid, digest)| {
                b.push_bind(o.id.as_str())
                    .push_bind(*cid)
                    .push_bind(o.time.micros())
                    .push_bind(o.amount.raw())
                    .push_bind(o.currency.as_str())
                    .push_bind(o.status.as_str())
                    .push_bind(digest.as_str());
            });
            q.push(
                " ON CONFLICT (external_id) DO UPDATE SET \
                   customer_id = excluded.customer_id, time = excluded.time, amount = excluded.amount, \
                   currency = excluded.currency, status = excluded.status, lines_digest = excluded.lines_digest, \
                   version = orders.version + 1 \
                 WHERE orders.customer_id IS DISTINCT FROM excluded.customer_id \
                   OR orders.time IS DISTINCT FROM excluded.time \
                   OR orders.amount IS DISTINCT FROM excluded.amount \
                   OR orders.currency IS DISTINCT FROM excluded.currency \
                   OR orders.status IS DISTINCT FROM excluded.status \
                   OR orders.lines_digest IS DISTINCT FROM excluded.lines_digest \
                 RETURNING id, external_id, version",
            );
            let written = q.build().fetch_all(&mut tx).await?;
            returned += written.len() as u64;
            count_versions(&written, &mut counts)?;

            // Lines of updated orders are replaced; lines of new orders are inserted.
            let mut updated_ids = Vec::new();
            let mut created_ids = Vec::new();
            let mut lines = Vec::new();
            for row in &written {
                let id: i64 = row.try_get("id")?;
                let external: String = row.try_get("external_id")?;
                if row.try_get::<i64, _>("version")? > 1 {
                    updated_ids.push(id);
                } else {
                    created_ids.push(id);
                }
                let order = by_id
                    .get(external.as_str())
                    .ok_or_else(|| StoreError::Corrupt(format!("order `{external}` returned but not written")))?;
                lines.extend(order.lines.iter().enumerate().map(|(no, l)| (id, no as i64, l)));
            }
            if !updated_ids.is_empty() {
                let mut q: QueryBuilder<DB> = QueryBuilder::new("DELETE FROM order_lines WHERE order_id IN (");
                let mut list = q.separated(", ");
                for id in &updated_ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(&mut tx).await?;
            }
            for lines in lines.chunks(CHUNK) {
                let mut q: QueryBuilder<DB> = QueryBuilder::new(
                    "INSERT INTO order_lines (order_id, line_no, product, category, quantity, price) ",
                );
                q.push_values(lines, |mut b, (id, no, l)| {
                    b.push_bind(*id)
                        .push_bind(*no)
                        .push_bind(l.product.as_str())
                        .push_bind(l.category.as_deref())
                        .push_bind(l.quantity.raw())
                        .push_bind(l.price.raw());
                });
                q.build().execute(&mut tx).await?;
            }
            crate::journey::feed::orders_created(&mut tx, &created_ids).await?;
        }
        counts.unchanged = records.len() as u64 - returned;
        check_customer_totals(&mut tx, touched, &customers).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_events(&self, batch: &[Event], now: Timestamp) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |e| e.id.as_str());
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&CustomerId> = records.iter().map(|e| &e.customer_id).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        for chunk in records.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for e in chunk {
                rows.push((e, customer_id(&customers, &e.customer_id)?));
            }
            let mut q: QueryBuilder<DB> =
                QueryBuilder::new("INSERT INTO events (external_id, customer_id, name, time, properties) ");
            q.push_values(&rows, |mut b, (e, cid)| {
                b.push_bind(e.id.as_str()).push_bind(*cid).push_bind(e.name.as_str()).push_bind(e.time.micros());
                DB::push_json(&mut b, e.properties.as_ref().map(Json));
            });
            q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id");
            let created = q
                .build()
                .fetch_all(&mut tx)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>(0))
                .collect::<Result<Vec<_>, _>>()?;
            counts.created += created.len() as u64;
            crate::journey::feed::events_created(&mut tx, &created).await?;
        }
        counts.unchanged = records.len() as u64 - counts.created;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_feedback(&self, batch: &[Feedback], now: Timestamp) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |f| f.id.as_str());
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&CustomerId> = records.iter().map(|f| &f.customer_id).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        let mut returned = 0u64;
        for chunk in records.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for f in chunk {
                rows.push((f, customer_id(&customers, &f.customer_id)?));
            }
            let mut q: QueryBuilder<DB> = QueryBuilder::new(
                "INSERT INTO feedback (external_id, customer_id, time, nps, csat, text, topics, channel, order_id) ",
            );
            q.push_values(&rows, |mut b, (f, cid)| {
                b.push_bind(f.id.as_str())
                    .push_bind(*cid)
                    .push_bind(f.time.micros())
                    .push_bind(f.nps)
                    .push_bind(f.csat)
                    .push_bind(f.text.as_deref());
                DB::push_json(&mut b, Some(Json(&f.topics)));
                b.push_bind(f.channel.as_deref()).push_bind(f.order_id.as_deref());
            });
            q.push(
                " ON CONFLICT (external_id) DO UPDATE SET \
                   customer_id = excluded.customer_id, time = excluded.time, nps = excluded.nps, \
                   csat = excluded.csat, text = excluded.text, topics = excluded.topics, \
                   channel = excluded.channel, order_id = excluded.order_id, version = feedback.version + 1 \
                 WHERE feedback.customer_id IS DISTINCT FROM excluded.customer_id \
                   OR feedback.time IS DISTINCT FROM excluded.time \
                   OR feedback.nps IS DISTINCT FROM excluded.nps \
                   OR feedback.csat IS DISTINCT FROM excluded.csat \
                   OR feedback.text IS DISTINCT FROM excluded.text \
                   OR feedback.topics IS DISTINCT FROM excluded.topics \
                   OR feedback.channel IS DISTINCT FROM excluded.channel \
                   OR feedback.order_id IS DISTINCT FROM excluded.order_id \
                 RETURNING version",
            );
            let written = q.build().fetch_all(&mut tx).await?;
            returned += written.len() as u64;
            count_versions(&written, &mut counts)?;
        }
        counts.unchanged = records.len() as u64 - returned;
        tx.commit().await?;
        Ok(counts)
    }

    async fn order_facts(&self) -> Result<Vec<OrderFact>, StoreError> {
        let rows = query(
            "SELECT c.external_id AS customer, o.external_id AS order_id, o.time, o.amount, o.status \
             FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(order_fact).collect()
    }

    async fn customer_order_facts(&self, customer: &str) -> Result<Vec<OrderFact>, StoreError> {
        // `orders_customer` (customer_id, time) serves the order and the filter.
        let rows = query(
            "SELECT c.external_id AS customer, o.external_id AS order_id, o.time, o.amount, o.status \
             FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.external_id = $1 ORDER BY o.time, o.id",
        )
        .bind(customer)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(order_fact).collect()
    }

    async fn purchases(&self, lines: bool, sink: &mut (dyn FnMut(Purchases) + Send)) -> Result<(), StoreError> {
        DB::purchases(self, lines, sink).await
    }

    async fn feedback_facts(
        &self,
    ) -> Result<(Vec<kanta_core::feedback::Response>, Vec<kanta_core::feedback::CustomerFacts>), StoreError> {
        let mut conn = self.reader.acquire().await?;
        // Net revenue: the orders' signed amounts; the last purchase: the purchases' latest time.
        let sql = format!(
            "SELECT c.id, c.external_id, c.name, c.email, s.stage, s.value_tier, s.clv_12m, s.p_alive, \
             (SELECT CAST(COALESCE(SUM({SIGNED_AMOUNT_SQL}), 0) AS BIGINT) FROM orders o \
               WHERE o.customer_id = c.id AND {IN_LOG_SQL}) AS revenue, \
             (SELECT MAX(o.time) FROM orders o WHERE o.customer_id = c.id AND {PURCHASE_SQL}) AS last_purchase \
             FROM customers c LEFT JOIN scores s ON s.customer_id = c.id \
             WHERE c.erased_at IS NULL AND c.id IN (SELECT customer_id FROM feedback) ORDER BY c.id"
        );
        let rows = query(&sql).fetch_all(&mut conn).await?;
        let seconds = |micros: i64| micros.div_euclid(1_000_000);
        let mut index = HashMap::with_capacity(rows.len());
        let mut customers = Vec::with_capacity(rows.len());
        for r in &rows {
            index.insert(r.try_get::<i64, _>("id")?, customers.len());
            customers.push(kanta_core::feedback::CustomerFacts {
                id: r.try_get("external_id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                stage: r.try_get("stage")?,
                value_tier: r.try_get("value_tier")?,
                clv_12m: r.try_get("clv_12m")?,
                p_alive: r.try_get("p_alive")?,
                revenue: money(r.try_get("revenue")?),
                last_purchase: r.try_get::<Option<i64>, _>("last_purchase")?.map(seconds),
            });
        }
        let rows = query(
            "SELECT f.customer_id, f.time, f.nps, f.csat, f.topics, f.text FROM feedback f \
             JOIN customers c ON c.id = f.customer_id WHERE c.erased_at IS NULL ORDER BY f.customer_id, f.time, f.id",
        )
        .fetch_all(&mut conn)
        .await?;
        let small = |v: Option<i64>| v.and_then(|v| u8::try_from(v).ok());
        let mut responses = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(&customer) = index.get(&r.try_get::<i64, _>("customer_id")?) else { continue };
            responses.push(kanta_core::feedback::Response {
                customer,
                time: seconds(r.try_get("time")?),
                nps: small(r.try_get("nps")?),
                csat: small(r.try_get("csat")?),
                topics: r.try_get::<Option<Json<Vec<String>>>, _>("topics")?.map(|j| j.0).unwrap_or_default(),
                text: r.try_get("text")?,
            });
        }
        Ok((responses, customers))
    }
}

/// Refuses the transaction when any of `customers` (internal ids) now has orders summing past
/// [`crate::MAX_CUSTOMER_TOTAL`] in absolute value. Summed as floating point, which cannot
/// overflow, and compared with a bound far from `i64::MAX`, so rounding cannot matter.
async fn check_customer_totals<DB: Dialect>(
    tx: &mut Tx<DB>,
    mut customers: Vec<i64>,
    names: &HashMap<String, i64>,
) -> Result<(), StoreError> {
    customers.sort_unstable();
    customers.dedup();
    let limit = crate::MAX_CUSTOMER_TOTAL.raw() as f64;
    // Grouped by the internal id, without a join (this runs for every batch of orders; the
    // external ids are looked up only for the rare offenders).
    let mut over: Vec<i64> = Vec::new();
    for chunk in customers.chunks(CHUNK * 4) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new("SELECT o.customer_id FROM orders o WHERE ");
        DB::push_id_filter(&mut q, "o.customer_id", chunk);
        q.push(" GROUP BY o.customer_id HAVING SUM(ABS(CAST(o.amount AS DOUBLE PRECISION))) > ");
        q.push_bind(limit);
        for row in q.build().fetch_all(&mut *tx).await? {
            over.push(row.try_get(0)?);
        }
    }
    if over.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> = names.iter().filter(|(_, id)| over.contains(id)).map(|(name, _)| name.clone()).collect();
    ids.sort();
    Err(StoreError::TotalTooLarge(ids))
}

/// A digest of an order's lines, so re-posting an identical order is recognised as unchanged.
fn lines_digest(order: &Order) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for l in &order.lines {
        h.update(l.product.as_bytes());
        h.update([0]);
        h.update(l.category.as_deref().unwrap_or("\u{1}").as_bytes());
        h.update([0]);
        h.update(l.quantity.raw().to_le_bytes());
        h.update(l.price.raw().to_le_bytes());
    }
    crate::token::hex(&h.finalize()[..16])
}

/// Orders per [`OrderStore::purchases`] chunk (by order id), the same as the SQLite file scan's.
const PURCHASE_CHUNK: i64 = crate::purchases::CHUNK;

/// One chunk of purchases as four comma-separated columns (customer, time, amount, order id).
/// Fetching millions of rows one by one through the driver costs about 1.2 µs a row (a row
/// object, a value copy and a channel message each); letting the database print a chunk into
/// strings costs about 0.6 µs a row, and two chunks are read at once on two connections. (The
/// SQLite backend reads a file more directly still: see `sqlite_scan`.) The aggregates of one
/// query see the rows in the same order, so the i-th numbers of the lists belong to one order.
/// Times are floored to whole seconds (integer division truncates toward zero).
/// The amounts are the orders' signed amounts, and cancelled orders are left out
/// (`kanta_domain::purchase`).
static PURCHASE_CHUNK_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT \
         string_agg(CAST(o.customer_id AS TEXT), ','), \
         string_agg(CAST(CASE WHEN o.time >= 0 THEN o.time / 1000000 ELSE (o.time - 999999) / 1000000 END AS TEXT), ','), \
         string_agg(CAST({SIGNED_AMOUNT_SQL} AS TEXT), ','), \
         string_agg(CAST(o.id AS TEXT), ',') \
         FROM orders o WHERE o.id > $1 AND o.id <= $2 AND {IN_LOG_SQL}"
    )
});

/// [`PURCHASE_CHUNK_SQL`] and, in two more columns, the categorised lines of the same range of
/// order ids: order ids and categories, joined to their orders in memory ([`ChunkJoin`]; a join
/// in SQL cost more than reading the lines). One query, so one connection a chunk. Categories
/// are joined with the unit separator (U+001F, bound as `$3`), which stored text never holds:
/// every text field is checked for control characters before it is written.
static PURCHASE_LINES_CHUNK_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT p.c, p.t, p.a, p.i, l.i, l.k FROM (SELECT \
         string_agg(CAST(o.customer_id AS TEXT), ',') AS c, \
         string_agg(CAST(CASE WHEN o.time >= 0 THEN o.time / 1000000 ELSE (o.time - 999999) / 1000000 END AS TEXT), ',') AS t, \
         string_agg(CAST({SIGNED_AMOUNT_SQL} AS TEXT), ',') AS a, \
         string_agg(CAST(o.id AS TEXT), ',') AS i \
         FROM orders o WHERE o.id > $1 AND o.id <= $2 AND {IN_LOG_SQL}) p, (SELECT \
         string_agg(CAST(order_id AS TEXT), ',') AS i, string_agg(category, $3) AS k \
         FROM order_lines WHERE order_id > $1 AND order_id <= $2 AND category IS NOT NULL) l"
    )
});

/// The separator of [`PURCHASE_LINES_CHUNK_SQL`]'s categories.
const UNIT_SEPARATOR: &str = "\u{1f}";

/// The one row of `sql` for each range of [`PURCHASE_CHUNK`] order ids up to `max` (`$1 < id ≤
/// $2`, and `$3 = extra` when given), in order, two queries in flight on two connections.
fn id_chunks<'a, DB: Dialect>(
    reader: &'a Pool<DB>,
    max: Option<i64>,
    sql: &'static str,
    extra: Option<&'static str>,
) -> impl futures_util::Stream<Item = Result<DB::Row, sqlx::Error>> + 'a {
    use futures_util::StreamExt;
    // No orders (`max` is NULL): no chunks.
    let chunks = max.map_or(0, |max| max / PURCHASE_CHUNK + 1);
    futures_util::stream::iter(0..chunks)
        .map(move |k| async move {
            let query = query(sql).bind(k * PURCHASE_CHUNK).bind((k + 1) * PURCHASE_CHUNK);
            match extra {
                Some(value) => query.bind(value).fetch_one(reader).await,
                None => query.fetch_one(reader).await,
            }
        })
        .buffered(2)
}

/// [`OrderStore::purchases`] through the driver, each chunk's columns printed into strings by
/// the database ([`PURCHASE_CHUNK_SQL`], [`PURCHASE_LINES_CHUNK_SQL`]).
pub(crate) async fn aggregated_purchases<DB: Dialect>(
    reader: &Pool<DB>,
    lines: bool,
    sink: &mut (dyn FnMut(Purchases) + Send),
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let max: Option<i64> = query::<DB>("SELECT MAX(id) FROM orders").fetch_one(reader).await?.try_get(0)?;
    let mut chunks = match lines {
        true => id_chunks(reader, max, PURCHASE_LINES_CHUNK_SQL.as_str(), Some(UNIT_SEPARATOR)),
        false => id_chunks(reader, max, PURCHASE_CHUNK_SQL.as_str(), None),
    };
    let (mut ids, mut line_ids) = (Vec::new(), Vec::new());
    let mut join = ChunkJoin::default();
    let mut lo = 0;
    while let Some(row) = chunks.try_next().await? {
        let mut chunk = Purchases::default();
        ids.clear();
        parse_ints(row.try_get(0)?, &mut chunk.customer)?;
        parse_ints(row.try_get(1)?, &mut chunk.time)?;
        parse_ints(row.try_get(2)?, &mut chunk.amount)?;
        parse_ints(row.try_get(3)?, &mut ids)?;
        let n = chunk.customer.len();
        if chunk.time.len() != n || chunk.amount.len() != n || ids.len() != n {
            return Err(StoreError::Corrupt("purchase columns of different lengths".into()));
        }
        if lines {
            line_ids.clear();
            parse_ints(row.try_get(4)?, &mut line_ids)?;
            let text: Option<&str> = row.try_get(5)?;
            let mut categories = text.into_iter().flat_map(|t| t.split(UNIT_SEPARATOR));
            join.start(lo, PURCHASE_CHUNK as usize, &ids, &chunk);
            for &id in &line_ids {
                let category =
                    categories.next().ok_or_else(|| StoreError::Corrupt("fewer categories than lines".into()))?;
                join.line(id, category, &mut chunk);
            }
            if categories.next().is_some() {
                return Err(StoreError::Corrupt("more categories than lines".into()));
            }
        }
        lo += PURCHASE_CHUNK;
        if !chunk.customer.is_empty() {
            sink(chunk);
        }
    }
    Ok(())
}

/// An [`OrderFact`] from a row of `customer`, `order_id`, `time`, `amount` and `status`.
fn order_fact<R: Row>(r: &R) -> Result<OrderFact, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(OrderFact {
        customer: r.try_get("customer")?,
        order: r.try_get("order_id")?,
        time: kanta_domain::Timestamp::from_micros(r.try_get("time")?),
        amount: r.try_get("amount")?,
        status: OrderStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("order status `{status}`")))?,
    })
}
