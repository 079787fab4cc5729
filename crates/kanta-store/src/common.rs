// The query code both backends share. `sqlite.rs` and `postgres.rs` each `include!` this file
// after defining, for their driver:
//   type Db                      — the sqlx database (Sqlite, Postgres)
//   struct Store { writer, reader } — pools (SQLite: one writer connection, several readers)
//   fn push_json(..)             — how a JSON value is bound into a VALUES row
//   const MERGE_ATTRIBUTES       — RFC 7396 merge of `excluded.attributes` into the stored ones
// Both SQL dialects accept everything below (ON CONFLICT … DO UPDATE … WHERE, RETURNING,
// IS DISTINCT FROM, CAST(… AS BIGINT)); QueryBuilder writes each driver's placeholders. Writing
// the queries once is what makes "the same storage test suite passes on both" mean something.

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use crate::purchases::ChunkJoin;
use crate::record::{Customer, Event, Feedback, Order, OrderStatus};
use crate::{
    Attempt, CustomerContext, Delivery, EndpointState, NewDelivery, AuditEntry, ConsentEntry, ModelScores, RefreshCounts, SegmentInfo, StageEvent, Transition, NewScoreRun, Purchases, ScoreRow, ScoreRunInfo, ScoreView, StageChange, Counts, CustomerRecord, EventView, FeedbackView, LineView, OrderFact, OrderView, Profile,
    Scope, StoreError, StoredResponse, TokenHash, TokenInfo, TokenRow, WriteCounts, rfc3339,
};

/// Rows per INSERT statement: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters
/// for the widest table, and large enough that statement overhead is small.
const CHUNK: usize = 500;

type Tx = sqlx::Transaction<'static, Db>;

/// The last record for each id: a batch that names an id twice means its last version, and
/// PostgreSQL refuses an upsert that touches one row twice.
fn last_per_id<T>(batch: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        last.insert(id(r), i);
    }
    batch.iter().enumerate().filter(|(i, r)| last.get(id(r)) == Some(i)).map(|(_, r)| r).collect()
}

/// Make sure every customer id exists (creating bare customers for new ids) and return the
/// internal ids, with the number created.
async fn ensure_customers(tx: &mut Tx, ids: &[&str], now: i64) -> Result<(HashMap<String, i64>, u64), StoreError> {
    let mut unique: Vec<&str> = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut map = HashMap::with_capacity(unique.len());
    let mut created = 0u64;
    for chunk in unique.chunks(CHUNK) {
        let mut q: QueryBuilder<Db> = QueryBuilder::new("INSERT INTO customers (external_id, created_at, updated_at) ");
        q.push_values(chunk, |mut b, id| {
            b.push_bind(*id).push_bind(now).push_bind(now);
        });
        q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id");
        created += q.build().fetch_all(&mut **tx).await?.len() as u64;

        let mut q: QueryBuilder<Db> = QueryBuilder::new("SELECT id, external_id FROM customers WHERE external_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut **tx).await? {
            map.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
        }
    }
    Ok((map, created))
}

fn customer_id(map: &HashMap<String, i64>, id: &str) -> Result<i64, StoreError> {
    map.get(id).copied().ok_or_else(|| StoreError::Corrupt(format!("customer `{id}` vanished inside a transaction")))
}

/// Refuses the transaction when any of `customers` (internal ids) now has orders summing past
/// [`crate::MAX_CUSTOMER_TOTAL`] in absolute value. Summed as floating point, which cannot
/// overflow, and compared with a bound far from `i64::MAX`, so rounding cannot matter.
async fn check_customer_totals(
    tx: &mut Tx,
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
        let mut q: QueryBuilder<Db> = QueryBuilder::new("SELECT o.customer_id FROM orders o WHERE ");
        push_id_filter(&mut q, "o.customer_id", chunk);
        q.push(" GROUP BY o.customer_id HAVING SUM(ABS(CAST(o.amount AS DOUBLE PRECISION))) > ");
        q.push_bind(limit);
        over.extend(q.build_query_scalar::<i64>().fetch_all(&mut **tx).await?);
    }
    if over.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<String> =
        names.iter().filter(|(_, id)| over.contains(id)).map(|(name, _)| name.clone()).collect();
    ids.sort();
    Err(StoreError::TotalTooLarge(ids))
}

/// Counts from `RETURNING version` rows: version 1 was an insert, more was an update.
fn count_versions(rows: &[<Db as sqlx::Database>::Row], counts: &mut WriteCounts) -> Result<(), StoreError> {
    for row in rows {
        if row.try_get::<i64, _>("version")? == 1 {
            counts.created += 1;
        } else {
            counts.updated += 1;
        }
    }
    Ok(())
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

fn money(raw: i64) -> f64 {
    kanta_core::money::Money::from_raw(raw).to_f64()
}

/// Orders per [`Storage::purchases`] chunk (by order id), the same as the SQLite file scan's.
const PURCHASE_CHUNK: i64 = crate::purchases::CHUNK;

/// One chunk of purchases as four comma-separated columns (customer, time, amount, order id).
/// Fetching millions of rows one by one through the driver costs about 1.2 µs a row (a row
/// object, a value copy and a channel message each); letting the database print a chunk into
/// strings costs about 0.6 µs a row, and two chunks are read at once on two connections. (The
/// SQLite backend reads a file more directly still: see `sqlite_scan`.) The aggregates of one
/// query see the rows in the same order, so the i-th numbers of the lists belong to one order.
/// Times are floored to whole seconds (integer division truncates toward zero).
const PURCHASE_CHUNK_SQL: &str = "SELECT \
     string_agg(CAST(customer_id AS TEXT), ','), \
     string_agg(CAST(CASE WHEN time >= 0 THEN time / 1000000 ELSE (time - 999999) / 1000000 END AS TEXT), ','), \
     string_agg(CAST(CASE WHEN status = 'refunded' THEN -ABS(amount) ELSE amount END AS TEXT), ','), \
     string_agg(CAST(id AS TEXT), ',') \
     FROM orders WHERE id > $1 AND id <= $2 AND status <> 'cancelled'";

/// [`PURCHASE_CHUNK_SQL`] and, in two more columns, the categorised lines of the same range of
/// order ids: order ids and categories, joined to their orders in memory ([`ChunkJoin`]; a join
/// in SQL cost more than reading the lines). One query, so one connection a chunk. Categories
/// are joined with the unit separator (U+001F, bound as `$3`), which stored text never holds:
/// every text field is checked for control characters before it is written.
const PURCHASE_LINES_CHUNK_SQL: &str = "SELECT o.c, o.t, o.a, o.i, l.i, l.k FROM (SELECT \
     string_agg(CAST(customer_id AS TEXT), ',') AS c, \
     string_agg(CAST(CASE WHEN time >= 0 THEN time / 1000000 ELSE (time - 999999) / 1000000 END AS TEXT), ',') AS t, \
     string_agg(CAST(CASE WHEN status = 'refunded' THEN -ABS(amount) ELSE amount END AS TEXT), ',') AS a, \
     string_agg(CAST(id AS TEXT), ',') AS i \
     FROM orders WHERE id > $1 AND id <= $2 AND status <> 'cancelled') o, (SELECT \
     string_agg(CAST(order_id AS TEXT), ',') AS i, string_agg(category, $3) AS k \
     FROM order_lines WHERE order_id > $1 AND order_id <= $2 AND category IS NOT NULL) l";

/// The separator of [`PURCHASE_LINES_CHUNK_SQL`]'s categories.
const UNIT_SEPARATOR: &str = "\u{1f}";

/// The one row of `sql` for each range of [`PURCHASE_CHUNK`] order ids up to `max` (`$1 < id ≤
/// $2`, and `$3 = extra` when given), in order, two queries in flight on two connections.
fn id_chunks<'a>(
    reader: &'a Pool<Db>,
    max: Option<i64>,
    sql: &'static str,
    extra: Option<&'static str>,
) -> impl futures_util::Stream<Item = Result<<Db as sqlx::Database>::Row, sqlx::Error>> + 'a {
    use futures_util::StreamExt;
    // No orders (`max` is NULL): no chunks.
    let chunks = max.map_or(0, |max| max / PURCHASE_CHUNK + 1);
    futures_util::stream::iter(0..chunks)
        .map(move |k| async move {
            let query = sqlx::query(sql).bind(k * PURCHASE_CHUNK).bind((k + 1) * PURCHASE_CHUNK);
            match extra {
                Some(value) => query.bind(value).fetch_one(reader).await,
                None => query.fetch_one(reader).await,
            }
        })
        .buffered(2)
}

/// Parse one comma-separated list of integers into `out`.
fn parse_ints(text: Option<&str>, out: &mut Vec<i64>) -> Result<(), StoreError> {
    let Some(text) = text else { return Ok(()) };
    for part in text.split(',') {
        out.push(part.parse().map_err(|_| StoreError::Corrupt(format!("purchase value `{part}`")))?);
    }
    Ok(())
}

/// Score rows per INSERT: 19 values each, under both databases' parameter limits (SQLite
/// 32,766).
const SCORE_CHUNK: usize = 1_700;

/// The INSERT of one chunk of score rows with their `stage_since` values.
fn score_insert<'a>(chunk: &[&'a ScoreRow], since: &'a [i64], run_id: i64) -> QueryBuilder<'a, Db> {
    let mut q: QueryBuilder<Db> = QueryBuilder::new(
        "INSERT INTO scores (customer_id, run_id, r, f, m, rfm_segment, stage, stage_since, p_alive, \
         expected_30d, expected_90d, expected_365d, p_purchase_30d, expected_spend, clv_12m, \
         next_purchase_at, value_tier, main_category, next_category) ",
    );
    q.push_values(chunk.iter().zip(since), |mut b, (s, since)| {
        let m = s.model.as_ref();
        b.push_bind(s.customer)
            .push_bind(run_id)
            .push_bind(i64::from(s.r))
            .push_bind(i64::from(s.f))
            .push_bind(i64::from(s.m))
            .push_bind(s.rfm_segment)
            .push_bind(s.stage)
            .push_bind(*since)
            .push_bind(m.map(|m| m.p_alive))
            .push_bind(m.map(|m| m.expected_30d))
            .push_bind(m.map(|m| m.expected_90d))
            .push_bind(m.map(|m| m.expected_365d))
            .push_bind(m.map(|m| m.p_purchase_30d))
            .push_bind(m.and_then(|m| m.expected_spend))
            .push_bind(m.and_then(|m| m.clv_12m))
            .push_bind(m.and_then(|m| m.next_purchase_at))
            .push_bind(s.value_tier)
            .push_bind(s.main_category.as_deref())
            .push_bind(s.next_category.as_deref());
    });
    q
}

const SCORE_SELECT: &str = "SELECT s.run_id, r.finished_at, s.r, s.f, s.m, s.rfm_segment, s.stage, s.stage_since, \
     s.p_alive, s.expected_30d, s.expected_90d, s.expected_365d, s.p_purchase_30d, s.expected_spend, s.clv_12m, \
     s.next_purchase_at, s.value_tier, s.main_category, s.next_category FROM scores s JOIN score_runs r ON r.id = s.run_id";

fn score_view(r: &<Db as sqlx::Database>::Row) -> Result<ScoreView, StoreError> {
    let score = |name: &str| -> Result<u8, StoreError> {
        let v: i64 = r.try_get(name)?;
        u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("score {name} = {v}")))
    };
    let p_alive: Option<f64> = r.try_get("p_alive")?;
    let model = match p_alive {
        Some(p_alive) => Some(ModelScores {
            p_alive,
            expected_30d: r.try_get::<Option<f64>, _>("expected_30d")?.unwrap_or_default(),
            expected_90d: r.try_get::<Option<f64>, _>("expected_90d")?.unwrap_or_default(),
            expected_365d: r.try_get::<Option<f64>, _>("expected_365d")?.unwrap_or_default(),
            p_purchase_30d: r.try_get::<Option<f64>, _>("p_purchase_30d")?.unwrap_or_default(),
            expected_spend: r.try_get("expected_spend")?,
            clv_12m: r.try_get("clv_12m")?,
            next_purchase_at: r.try_get("next_purchase_at")?,
        }),
        None => None,
    };
    Ok(ScoreView {
        run_id: r.try_get("run_id")?,
        scored_at: rfc3339(r.try_get("finished_at")?),
        r: score("r")?,
        f: score("f")?,
        m: score("m")?,
        rfm_segment: r.try_get("rfm_segment")?,
        stage: r.try_get("stage")?,
        stage_since: rfc3339(r.try_get("stage_since")?),
        value_tier: r.try_get("value_tier")?,
        main_category: r.try_get("main_category")?,
        next_category: r.try_get("next_category")?,
        model,
    })
}

fn score_run_info(r: &<Db as sqlx::Database>::Row) -> Result<ScoreRunInfo, StoreError> {
    Ok(ScoreRunInfo {
        id: r.try_get("id")?,
        started_at: rfc3339(r.try_get("started_at")?),
        finished_at: rfc3339(r.try_get("finished_at")?),
        as_of: r.try_get("as_of")?,
        customers: r.try_get("customers")?,
        orders: r.try_get("orders")?,
        model: r.try_get("model")?,
        stage_changes: r.try_get("stage_changes")?,
        status: r.try_get("status")?,
        diagnostics: r.try_get::<Json<serde_json::Value>, _>("diagnostics")?.0,
    })
}

fn stage_change(r: &<Db as sqlx::Database>::Row) -> Result<StageChange, StoreError> {
    Ok(StageChange {
        run_id: r.try_get("run_id")?,
        time: rfc3339(r.try_get("time")?),
        from: r.try_get("from_stage")?,
        to: r.try_get("to_stage")?,
    })
}

/// A page from rows fetched with `LIMIT limit + 1` and keyed by their `id` column: the extra
/// row only says that there is a next page, whose cursor is the last shown row's id.
fn keyset_page<T>(
    rows: &[<Db as sqlx::Database>::Row],
    limit: u32,
    item: impl Fn(&<Db as sqlx::Database>::Row) -> Result<T, StoreError>,
) -> Result<(Vec<T>, Option<i64>), StoreError> {
    let shown = &rows[..rows.len().min(limit as usize)];
    let items = shown.iter().map(item).collect::<Result<Vec<T>, StoreError>>()?;
    let next = match shown.last() {
        Some(row) if rows.len() > shown.len() => Some(row.try_get::<i64, _>("id")?),
        _ => None,
    };
    Ok((items, next))
}

/// PostgreSQL hands out identity ids at insert, not at commit, so a reader following a log by
/// id (the webhook dispatcher) could pass over the rows of a transaction that commits after a
/// later one. Writers of those logs take the table's EXCLUSIVE lock (reads go on) so ids commit
/// in order. SQLite has a single writer already.
async fn serialize_log_writers(tx: &mut Tx, lock: &'static str) -> Result<(), StoreError> {
    if BACKEND == crate::Backend::Postgres {
        sqlx::query(lock).execute(&mut **tx).await?;
    }
    Ok(())
}

const DELIVERY_COLUMNS: &str = "id, endpoint, event_id, event_type, payload, state, attempts, created_at, \
     last_attempt_at, last_status, last_error, delivered_at";

fn delivery(r: &<Db as sqlx::Database>::Row) -> Result<Delivery, StoreError> {
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

fn endpoint_state(r: &<Db as sqlx::Database>::Row) -> Result<EndpointState, StoreError> {
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

const SEGMENT_COLUMNS: &str = "id, name, expression, created_at, refreshed_at, members";

fn segment_info(r: &<Db as sqlx::Database>::Row) -> Result<SegmentInfo, StoreError> {
    Ok(SegmentInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        expression: r.try_get("expression")?,
        created_at: rfc3339(r.try_get("created_at")?),
        refreshed_at: rfc3339(r.try_get("refreshed_at")?),
        members: r.try_get("members")?,
    })
}

/// Recompute segment `id`'s members inside `tx`: the current members go to a temporary table,
/// and the differences with the stored members are the transitions (unless `baseline`).
async fn fill_segment(
    tx: &mut Tx,
    id: i64,
    expr: &kanta_segment::Expr,
    now: i64,
    baseline: bool,
    limits: &crate::SegmentLimits,
) -> Result<RefreshCounts, StoreError> {
    // Also serialises concurrent refreshes, which would otherwise diff against the same members.
    serialize_log_writers(tx, "LOCK TABLE segment_transitions IN EXCLUSIVE MODE").await?;
    sqlx::query("DROP TABLE IF EXISTS segment_now").execute(&mut **tx).await?;
    sqlx::query("CREATE TEMPORARY TABLE segment_now (customer_id BIGINT PRIMARY KEY)").execute(&mut **tx).await?;
    let compiled = kanta_segment::compile(expr, DIALECT, now, 1);
    let sql = format!("INSERT INTO segment_now SELECT c.id FROM customers c WHERE c.erased_at IS NULL AND {}", compiled.sql);
    // The expression's own query is the one whose cost the user controls: it runs under the
    // refresh budget; the rest is bounded by the members it found.
    let budget = arm_tx(tx, limits.refresh).await?;
    let filled = bind_segment(sqlx::query(&sql), &compiled.params).execute(&mut **tx).await;
    if let Err(e) = filled {
        return Err(over_budget(e, budget.budget));
    }
    disarm_tx(tx, budget).await?;
    let mut counts = RefreshCounts::default();
    if !baseline {
        counts.entered = sqlx::query(
            "INSERT INTO segment_transitions (segment_id, customer_id, kind, time) \
             SELECT $1, n.customer_id, 'enter', $2 FROM segment_now n WHERE NOT EXISTS \
             (SELECT 1 FROM segment_members m WHERE m.segment_id = $1 AND m.customer_id = n.customer_id) \
             ORDER BY n.customer_id",
        )
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        counts.exited = sqlx::query(
            "INSERT INTO segment_transitions (segment_id, customer_id, kind, time) \
             SELECT $1, m.customer_id, 'exit', $2 FROM segment_members m WHERE m.segment_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM segment_now n WHERE n.customer_id = m.customer_id) ORDER BY m.customer_id",
        )
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    sqlx::query(
        "DELETE FROM segment_members WHERE segment_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM segment_now n WHERE n.customer_id = segment_members.customer_id)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO segment_members (segment_id, customer_id, entered_at) \
         SELECT $1, n.customer_id, $2 FROM segment_now n WHERE NOT EXISTS \
         (SELECT 1 FROM segment_members m WHERE m.segment_id = $1 AND m.customer_id = n.customer_id)",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    counts.members = sqlx::query_scalar("SELECT COUNT(*) FROM segment_now").fetch_one(&mut **tx).await?;
    sqlx::query("UPDATE segments SET refreshed_at = $1, members = $2 WHERE id = $3")
        .bind(now)
        .bind(counts.members)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DROP TABLE segment_now").execute(&mut **tx).await?;
    Ok(counts)
}

impl Store {
    /// [`Storage::purchases`] through the driver, each chunk's columns printed into strings by
    /// the database ([`PURCHASE_CHUNK_SQL`], [`PURCHASE_LINES_CHUNK_SQL`]).
    async fn aggregated_purchases(
        &self,
        lines: bool,
        sink: &mut (dyn FnMut(Purchases) + Send),
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM orders").fetch_one(&self.reader).await?;
        let mut chunks = match lines {
            true => id_chunks(&self.reader, max, PURCHASE_LINES_CHUNK_SQL, Some(UNIT_SEPARATOR)),
            false => id_chunks(&self.reader, max, PURCHASE_CHUNK_SQL, None),
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
}

/// Create or update customers inside `tx` (see [`crate::Storage::write_customers`]).
async fn write_customers_in(tx: &mut Tx, batch: &[Customer], now: i64) -> Result<WriteCounts, StoreError> {
    let records = last_per_id(batch, |c| &c.id);
    let mut counts = WriteCounts::default();
    let mut returned = 0u64;
    for chunk in records.chunks(CHUNK) {
        let mut q: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO customers (external_id, email, phone, name, timezone, locale, birthday, attributes, \
             created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, c| {
            b.push_bind(c.id.as_str())
                .push_bind(c.email.as_deref())
                .push_bind(c.phone.as_deref())
                .push_bind(c.name.as_deref())
                .push_bind(c.timezone.as_deref())
                .push_bind(c.locale.as_deref())
                .push_bind(c.birthday.as_deref());
            push_json(&mut b, c.attributes.as_ref().map(Json));
            b.push_bind(now).push_bind(now);
        });
        q.push(format!(
            " ON CONFLICT (external_id) DO UPDATE SET \
               email = COALESCE(excluded.email, customers.email), \
               phone = COALESCE(excluded.phone, customers.phone), \
               name = COALESCE(excluded.name, customers.name), \
               timezone = COALESCE(excluded.timezone, customers.timezone), \
               locale = COALESCE(excluded.locale, customers.locale), \
               birthday = COALESCE(excluded.birthday, customers.birthday), \
               attributes = {MERGE_ATTRIBUTES}, \
               updated_at = excluded.updated_at, \
               version = customers.version + 1 \
             WHERE customers.erased_at IS NULL AND ( \
               COALESCE(excluded.email, customers.email) IS DISTINCT FROM customers.email \
               OR COALESCE(excluded.phone, customers.phone) IS DISTINCT FROM customers.phone \
               OR COALESCE(excluded.name, customers.name) IS DISTINCT FROM customers.name \
               OR COALESCE(excluded.timezone, customers.timezone) IS DISTINCT FROM customers.timezone \
               OR COALESCE(excluded.locale, customers.locale) IS DISTINCT FROM customers.locale \
               OR COALESCE(excluded.birthday, customers.birthday) IS DISTINCT FROM customers.birthday \
               OR {MERGE_ATTRIBUTES} IS DISTINCT FROM customers.attributes) \
             RETURNING version"
        ));
        let rows = q.build().fetch_all(&mut **tx).await?;
        returned += rows.len() as u64;
        count_versions(&rows, &mut counts)?;
    }
    counts.unchanged = records.len() as u64 - returned;

    let with_consent: Vec<&&Customer> = records.iter().filter(|c| !c.consent.is_empty()).collect();
    if !with_consent.is_empty() {
        let ids: Vec<&str> = with_consent.iter().map(|c| c.id.as_str()).collect();
        let (map, _) = ensure_customers(tx, &ids, now).await?;
        let mut rows = Vec::new();
        for c in &with_consent {
            let cid = customer_id(&map, &c.id)?;
            for consent in &c.consent {
                rows.push((cid, consent));
            }
        }
        for chunk in rows.chunks(CHUNK) {
            let mut q: QueryBuilder<Db> =
                QueryBuilder::new("INSERT INTO consent (customer_id, channel, status, source, time) ");
            q.push_values(chunk, |mut b, (cid, c)| {
                b.push_bind(*cid)
                    .push_bind(c.channel.as_str())
                    .push_bind(c.status.as_str())
                    .push_bind(c.source.as_deref())
                    .push_bind(c.time.unwrap_or(now));
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(counts)
}

#[async_trait::async_trait]
impl crate::Storage for Store {
    fn backend(&self) -> crate::Backend {
        BACKEND
    }

    async fn write_customers(&self, batch: &[Customer], now: i64) -> Result<WriteCounts, StoreError> {
        let mut tx = self.writer.begin().await?;
        let counts = write_customers_in(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_customers_once(
        &self,
        seen: &crate::SeenSignature,
        batch: &[Customer],
        now: i64,
    ) -> Result<Option<WriteCounts>, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM inbound_seen WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        // The primary key decides: a concurrent transaction with the same signature waits for
        // this one and then inserts nothing.
        let inserted = sqlx::query(
            "INSERT INTO inbound_seen (hook, digest, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&seen.hook)
        .bind(&seen.digest)
        .bind(seen.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let counts = write_customers_in(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(Some(counts))
    }

    async fn write_orders(&self, batch: &[Order], now: i64) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |o| &o.id);
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&str> = records.iter().map(|o| o.customer_id.as_str()).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        let by_id: HashMap<&str, &Order> = records.iter().map(|o| (o.id.as_str(), *o)).collect();
        let mut returned = 0u64;
        let mut touched: Vec<i64> = Vec::with_capacity(records.len());
        for chunk in records.chunks(CHUNK) {
            let mut q: QueryBuilder<Db> = QueryBuilder::new(
                "INSERT INTO orders (external_id, customer_id, time, amount, currency, status, lines_digest) ",
            );
            let mut rows = Vec::with_capacity(chunk.len());
            for o in chunk {
                let cid = customer_id(&customers, &o.customer_id)?;
                touched.push(cid);
                rows.push((o, cid, lines_digest(o)));
            }
            q.push_values(&rows, |mut b, (o, cid, digest)| {
                b.push_bind(o.id.as_str())
                    .push_bind(*cid)
                    .push_bind(o.time)
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
            let written = q.build().fetch_all(&mut *tx).await?;
            returned += written.len() as u64;
            count_versions(&written, &mut counts)?;

            // Lines of updated orders are replaced; lines of new orders are inserted.
            let mut updated_ids = Vec::new();
            let mut lines = Vec::new();
            for row in &written {
                let id: i64 = row.try_get("id")?;
                let external: String = row.try_get("external_id")?;
                if row.try_get::<i64, _>("version")? > 1 {
                    updated_ids.push(id);
                }
                let order = by_id
                    .get(external.as_str())
                    .ok_or_else(|| StoreError::Corrupt(format!("order `{external}` returned but not written")))?;
                lines.extend(order.lines.iter().enumerate().map(|(no, l)| (id, no as i64, l)));
            }
            if !updated_ids.is_empty() {
                let mut q: QueryBuilder<Db> = QueryBuilder::new("DELETE FROM order_lines WHERE order_id IN (");
                let mut list = q.separated(", ");
                for id in &updated_ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            for lines in lines.chunks(CHUNK) {
                let mut q: QueryBuilder<Db> =
                    QueryBuilder::new("INSERT INTO order_lines (order_id, line_no, product, category, quantity, price) ");
                q.push_values(lines, |mut b, (id, no, l)| {
                    b.push_bind(*id)
                        .push_bind(*no)
                        .push_bind(l.product.as_str())
                        .push_bind(l.category.as_deref())
                        .push_bind(l.quantity.raw())
                        .push_bind(l.price.raw());
                });
                q.build().execute(&mut *tx).await?;
            }
        }
        counts.unchanged = records.len() as u64 - returned;
        check_customer_totals(&mut tx, touched, &customers).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_events(&self, batch: &[Event], now: i64) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |e| &e.id);
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&str> = records.iter().map(|e| e.customer_id.as_str()).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        for chunk in records.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for e in chunk {
                rows.push((e, customer_id(&customers, &e.customer_id)?));
            }
            let mut q: QueryBuilder<Db> =
                QueryBuilder::new("INSERT INTO events (external_id, customer_id, name, time, properties) ");
            q.push_values(&rows, |mut b, (e, cid)| {
                b.push_bind(e.id.as_str()).push_bind(*cid).push_bind(e.name.as_str()).push_bind(e.time);
                push_json(&mut b, e.properties.as_ref().map(Json));
            });
            q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id");
            counts.created += q.build().fetch_all(&mut *tx).await?.len() as u64;
        }
        counts.unchanged = records.len() as u64 - counts.created;
        tx.commit().await?;
        Ok(counts)
    }

    async fn write_feedback(&self, batch: &[Feedback], now: i64) -> Result<WriteCounts, StoreError> {
        let records = last_per_id(batch, |f| &f.id);
        let mut counts = WriteCounts::default();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<&str> = records.iter().map(|f| f.customer_id.as_str()).collect();
        let (customers, created) = ensure_customers(&mut tx, &ids, now).await?;
        counts.customers_created = created;
        let mut returned = 0u64;
        for chunk in records.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for f in chunk {
                rows.push((f, customer_id(&customers, &f.customer_id)?));
            }
            let mut q: QueryBuilder<Db> = QueryBuilder::new(
                "INSERT INTO feedback (external_id, customer_id, time, nps, csat, text, topics, channel, order_id) ",
            );
            q.push_values(&rows, |mut b, (f, cid)| {
                b.push_bind(f.id.as_str())
                    .push_bind(*cid)
                    .push_bind(f.time)
                    .push_bind(f.nps)
                    .push_bind(f.csat)
                    .push_bind(f.text.as_deref());
                push_json(&mut b, Some(Json(&f.topics)));
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
            let written = q.build().fetch_all(&mut *tx).await?;
            returned += written.len() as u64;
            count_versions(&written, &mut counts)?;
        }
        counts.unchanged = records.len() as u64 - returned;
        tx.commit().await?;
        Ok(counts)
    }

    async fn customer(&self, id: &str, events: u32) -> Result<Option<CustomerRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM customers c WHERE c.external_id = $1");
        let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let internal: i64 = row.try_get("id")?;
        let profile = profile(&row)?;

        let consent_history: Vec<ConsentEntry> =
            sqlx::query("SELECT channel, status, source, time FROM consent WHERE customer_id = $1 ORDER BY time, status")
                .bind(internal)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(ConsentEntry {
                        channel: r.try_get("channel")?,
                        status: r.try_get("status")?,
                        source: r.try_get("source")?,
                        time: rfc3339(r.try_get("time")?),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        let mut consent: Vec<ConsentEntry> = Vec::new();
        for entry in &consent_history {
            match consent.iter_mut().find(|c| c.channel == entry.channel) {
                Some(current) => *current = entry.clone(),
                None => consent.push(entry.clone()),
            }
        }

        let order_rows = sqlx::query(
            "SELECT id, external_id, time, amount, currency, status FROM orders WHERE customer_id = $1 \
             ORDER BY time, external_id",
        )
        .bind(internal)
        .fetch_all(&mut *conn)
        .await?;
        let line_rows = sqlx::query(
            "SELECT l.order_id, l.product, l.category, l.quantity, l.price FROM order_lines l \
             JOIN orders o ON o.id = l.order_id WHERE o.customer_id = $1 ORDER BY l.order_id, l.line_no",
        )
        .bind(internal)
        .fetch_all(&mut *conn)
        .await?;
        let mut lines: HashMap<i64, Vec<LineView>> = HashMap::new();
        for r in &line_rows {
            lines.entry(r.try_get("order_id")?).or_default().push(LineView {
                product: r.try_get("product")?,
                category: r.try_get("category")?,
                quantity: money(r.try_get("quantity")?),
                price: money(r.try_get("price")?),
            });
        }
        let mut orders = Vec::with_capacity(order_rows.len());
        for r in &order_rows {
            let oid: i64 = r.try_get("id")?;
            orders.push(OrderView {
                id: r.try_get("external_id")?,
                time: rfc3339(r.try_get("time")?),
                amount: money(r.try_get("amount")?),
                currency: r.try_get("currency")?,
                status: r.try_get("status")?,
                lines: lines.remove(&oid).unwrap_or_default(),
            });
        }

        let events = sqlx::query(
            "SELECT external_id, name, time, properties FROM events WHERE customer_id = $1 \
             ORDER BY time DESC, external_id LIMIT $2",
        )
        .bind(internal)
        .bind(i64::from(events))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(EventView {
                id: r.try_get("external_id")?,
                name: r.try_get("name")?,
                time: rfc3339(r.try_get("time")?),
                properties: r.try_get::<Option<Json<serde_json::Value>>, _>("properties")?.map(|j| j.0),
            })
        })
        .collect::<Result<_, StoreError>>()?;

        let feedback = sqlx::query(
            "SELECT external_id, time, nps, csat, text, topics, channel, order_id FROM feedback \
             WHERE customer_id = $1 ORDER BY time DESC, external_id",
        )
        .bind(internal)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(FeedbackView {
                id: r.try_get("external_id")?,
                time: rfc3339(r.try_get("time")?),
                nps: r.try_get("nps")?,
                csat: r.try_get("csat")?,
                text: r.try_get("text")?,
                topics: r.try_get::<Option<Json<Vec<String>>>, _>("topics")?.map(|j| j.0).unwrap_or_default(),
                channel: r.try_get("channel")?,
                order_id: r.try_get("order_id")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;

        let scores = sqlx::query(&format!("{SCORE_SELECT} WHERE s.customer_id = $1"))
            .bind(internal)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| score_view(&r))
            .transpose()?;
        let stage_history = sqlx::query(
            "SELECT run_id, time, from_stage, to_stage FROM stage_changes WHERE customer_id = $1 \
             ORDER BY id DESC LIMIT 100",
        )
        .bind(internal)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(stage_change)
        .collect::<Result<_, StoreError>>()?;

        Ok(Some(CustomerRecord { profile, consent, consent_history, orders, events, feedback, scores, stage_history }))
    }

    async fn list_customers(&self, after: Option<i64>, limit: u32) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM customers c WHERE c.id > $1 ORDER BY c.id LIMIT $2");
        let rows = sqlx::query(&sql).bind(after.unwrap_or(0)).bind(i64::from(limit) + 1).fetch_all(&self.reader).await?;
        profile_page(&rows, limit)
    }

    async fn segment_count(&self, expr: &kanta_segment::Expr, now: i64) -> Result<i64, StoreError> {
        let compiled = kanta_segment::compile(expr, DIALECT, now, 1);
        let sql = format!("SELECT COUNT(*) FROM customers c WHERE c.erased_at IS NULL AND {}", compiled.sql);
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut conn = Budgeted::acquire(&self.reader, self.limits.preview).await?;
        let row = bind_segment(sqlx::query(&sql), &compiled.params).fetch_one(conn.conn()).await;
        let row = conn.finish(row).await?;
        Ok(row.try_get(0)?)
    }

    async fn segment_members(
        &self,
        expr: &kanta_segment::Expr,
        now: i64,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
        let compiled = kanta_segment::compile(expr, DIALECT, now, 3);
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM customers c \
             WHERE c.id > $1 AND c.erased_at IS NULL AND {} ORDER BY c.id LIMIT $2",
            compiled.sql
        );
        let query = sqlx::query(&sql).bind(after.unwrap_or(0)).bind(i64::from(limit) + 1);
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut conn = Budgeted::acquire(&self.reader, self.limits.preview).await?;
        let rows = bind_segment(query, &compiled.params).fetch_all(conn.conn()).await;
        let rows = conn.finish(rows).await?;
        profile_page(&rows, limit)
    }

    async fn order_facts(&self) -> Result<Vec<OrderFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.external_id AS customer, o.external_id AS order_id, o.time, o.amount, o.status \
             FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(OrderFact {
                    customer: r.try_get("customer")?,
                    order: r.try_get("order_id")?,
                    time: r.try_get("time")?,
                    amount: r.try_get("amount")?,
                    status: OrderStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("order status `{status}`")))?,
                })
            })
            .collect()
    }

    async fn purchases(&self, lines: bool, sink: &mut (dyn FnMut(Purchases) + Send)) -> Result<(), StoreError> {
        self.read_purchases(lines, sink).await
    }

    async fn write_scores(&self, run: &NewScoreRun, rows: &[ScoreRow]) -> Result<ScoreRunInfo, StoreError> {
        let mut tx = self.writer.begin().await?;
        serialize_log_writers(&mut tx, "LOCK TABLE stage_changes IN EXCLUSIVE MODE").await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO score_runs (started_at, finished_at, as_of, customers, orders, model, stage_changes, \
             diagnostics) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id",
        )
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(&run.as_of)
        .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(run.orders).unwrap_or(i64::MAX))
        .bind(run.model.as_deref())
        .bind(Json(&run.diagnostics))
        .fetch_one(&mut *tx)
        .await?;
        // The previous stages, read as three strings (see PURCHASE_CHUNK_SQL for why), sorted
        // by customer id, so the new rows can be merged against them.
        let previous = sqlx::query(
            "SELECT string_agg(CAST(customer_id AS TEXT), ','), string_agg(stage, ','), \
             string_agg(CAST(stage_since AS TEXT), ',') FROM scores",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (mut old_ids, mut old_since) = (Vec::new(), Vec::new());
        parse_ints(previous.try_get(0)?, &mut old_ids)?;
        parse_ints(previous.try_get(2)?, &mut old_since)?;
        let stages_text: Option<String> = previous.try_get(1)?;
        let old_stages: Vec<&str> = stages_text.as_deref().map(|t| t.split(',').collect()).unwrap_or_default();
        if old_stages.len() != old_ids.len() || old_since.len() != old_ids.len() {
            return Err(StoreError::Corrupt("stored score columns of different lengths".into()));
        }
        let mut old: Vec<(i64, &str, i64)> =
            old_ids.iter().zip(&old_stages).zip(&old_since).map(|((&c, &st), &t)| (c, st, t)).collect();
        old.sort_unstable_by_key(|o| o.0);
        let mut order: Vec<&ScoreRow> = rows.iter().collect();
        order.sort_unstable_by_key(|r| r.customer);
        // Stage since, and the changes: a merge of two sorted lists.
        let now = run.started_at;
        let mut since = Vec::with_capacity(order.len());
        let mut changes: Vec<(i64, Option<&str>, &str)> = Vec::new();
        let mut j = 0;
        for r in &order {
            while j < old.len() && old[j].0 < r.customer {
                j += 1;
            }
            match old.get(j) {
                Some(&(c, stage, t)) if c == r.customer && stage == r.stage => since.push(t),
                Some(&(c, stage, _)) if c == r.customer => {
                    since.push(now);
                    changes.push((r.customer, Some(stage), r.stage));
                }
                _ => {
                    since.push(now);
                    changes.push((r.customer, None, r.stage));
                }
            }
        }
        // Replacing every row beats updating each in place: the delete empties the table at
        // once and the inserts, in key order, append.
        sqlx::query("DELETE FROM scores").execute(&mut *tx).await?;
        // The next statement's values are bound on this thread while the database executes the
        // current one on its own (both drivers run the statement elsewhere: SQLite on its worker
        // thread, PostgreSQL on the server), so building and inserting overlap.
        let mut chunks = order.chunks(SCORE_CHUNK).zip(since.chunks(SCORE_CHUNK));
        let mut pending = chunks.next().map(|(chunk, since)| score_insert(chunk, since, run_id));
        while let Some(mut q) = pending.take() {
            let next = chunks.next();
            let build_next = async { next.map(|(chunk, since)| score_insert(chunk, since, run_id)) };
            let (done, built) = futures_util::future::join(q.build().execute(&mut *tx), build_next).await;
            done?;
            pending = built;
        }
        if old.is_empty() && !changes.is_empty() {
            // The first run: every customer's first stage, which the new rows already hold —
            // copied inside the database instead of bound value by value (a third of the run's
            // write time on a large store).
            sqlx::query(
                "INSERT INTO stage_changes (customer_id, run_id, time, from_stage, to_stage) \
                 SELECT customer_id, run_id, stage_since, NULL, stage FROM scores ORDER BY customer_id",
            )
            .execute(&mut *tx)
            .await?;
        }
        let bound = if old.is_empty() { &changes[..0] } else { &changes[..] };
        for chunk in bound.chunks(CHUNK * 4) {
            let mut q: QueryBuilder<Db> =
                QueryBuilder::new("INSERT INTO stage_changes (customer_id, run_id, time, from_stage, to_stage) ");
            q.push_values(chunk, |mut b, &(customer, from, to)| {
                b.push_bind(customer).push_bind(run_id).push_bind(now).push_bind(from).push_bind(to);
            });
            q.build().execute(&mut *tx).await?;
        }
        let changes = changes.len() as u64;
        let row = sqlx::query("UPDATE score_runs SET stage_changes = $1 WHERE id = $2 RETURNING *")
            .bind(i64::try_from(changes).unwrap_or(i64::MAX))
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        let info = score_run_info(&row)?;
        tx.commit().await?;

        Ok(info)
    }

    async fn record_unfinished_run(&self, run: &NewScoreRun, status: &str) -> Result<ScoreRunInfo, StoreError> {
        let row = sqlx::query(
            "INSERT INTO score_runs (started_at, finished_at, as_of, customers, orders, model, stage_changes, \
             diagnostics, status) VALUES ($1, $2, $3, 0, $4, NULL, 0, $5, $6) RETURNING *",
        )
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(&run.as_of)
        .bind(i64::try_from(run.orders).unwrap_or(i64::MAX))
        .bind(Json(&run.diagnostics))
        .bind(status)
        .fetch_one(&self.writer)
        .await?;
        score_run_info(&row)
    }

    async fn score_runs(&self, limit: u32) -> Result<Vec<ScoreRunInfo>, StoreError> {
        sqlx::query("SELECT * FROM score_runs ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(score_run_info)
            .collect()
    }

    async fn create_segment(
        &self,
        name: &str,
        text: &str,
        expr: &kanta_segment::Expr,
        now: i64,
    ) -> Result<SegmentInfo, StoreError> {
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut tx = self.writer.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO segments (name, expression, created_at, refreshed_at, members) VALUES ($1, $2, $3, $3, 0) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(text)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { return Err(StoreError::Conflict(format!("a segment named `{name}` exists"))) };
        fill_segment(&mut tx, id, expr, now, true, &self.limits).await?;
        let row = sqlx::query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let info = segment_info(&row)?;
        tx.commit().await?;
        Ok(info)
    }

    async fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        sqlx::query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY id"))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(segment_info)
            .collect()
    }

    async fn segment(&self, id: i64) -> Result<Option<SegmentInfo>, StoreError> {
        sqlx::query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| segment_info(&r))
            .transpose()
    }

    async fn delete_segment(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM segment_transitions WHERE segment_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM segment_members WHERE segment_id = $1").bind(id).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM segments WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn refresh_segment(&self, id: i64, expr: &kanta_segment::Expr, now: i64) -> Result<RefreshCounts, StoreError> {
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut tx = self.writer.begin().await?;
        let counts = fill_segment(&mut tx, id, expr, now, false, &self.limits).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn segment_customers(
        &self,
        id: i64,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM segment_members m JOIN customers c ON c.id = m.customer_id \
             WHERE m.segment_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        profile_page(&rows, limit)
    }

    async fn transitions(
        &self,
        segment: Option<i64>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Transition>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.segment_id, s.name, c.external_id, t.customer_id, t.kind, t.time FROM segment_transitions t \
             JOIN segments s ON s.id = t.segment_id JOIN customers c ON c.id = t.customer_id \
             WHERE t.id > $1 AND ($2 IS NULL OR t.segment_id = $2) ORDER BY t.id LIMIT $3",
        )
        .bind(after.unwrap_or(0))
        .bind(segment)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| {
            Ok(Transition {
                id: r.try_get("id")?,
                segment_id: r.try_get("segment_id")?,
                segment: r.try_get("name")?,
                customer: r.try_get("external_id")?,
                customer_key: r.try_get("customer_id")?,
                kind: r.try_get("kind")?,
                time: rfc3339(r.try_get("time")?),
            })
        })
    }

    async fn stage_events(&self, after: Option<i64>, limit: u32) -> Result<(Vec<StageEvent>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT g.id, c.external_id, g.customer_id, g.run_id, g.time, g.from_stage, g.to_stage FROM stage_changes g \
             JOIN customers c ON c.id = g.customer_id WHERE g.id > $1 ORDER BY g.id LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, |r| {
            Ok(StageEvent {
                id: r.try_get("id")?,
                customer: r.try_get("external_id")?,
                customer_key: r.try_get("customer_id")?,
                change: stage_change(r)?,
            })
        })
    }

    async fn webhook_endpoint(&self, name: &str, url: &str, now: i64) -> Result<EndpointState, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (name, url, stage_cursor, transition_cursor, created_at) \
             VALUES ($1, $2, (SELECT COALESCE(MAX(id), 0) FROM stage_changes), \
             (SELECT COALESCE(MAX(id), 0) FROM segment_transitions), $3) \
             ON CONFLICT (name) DO UPDATE SET url = excluded.url WHERE webhook_endpoints.url <> excluded.url",
        )
        .bind(name)
        .bind(url)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("{ENDPOINT_SELECT} WHERE e.name = $1")).bind(name).fetch_one(&mut *tx).await?;
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
            queued += b.build().execute(&mut *tx).await?.rows_affected();
        }
        sqlx::query("UPDATE webhook_endpoints SET stage_cursor = $2, transition_cursor = $3 WHERE name = $1")
            .bind(endpoint)
            .bind(stage_cursor)
            .bind(transition_cursor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn pending_deliveries(&self, endpoint: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint = $1 AND state = $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
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
        let endpoint: Option<String> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, last_attempt_at = $3, \
             last_status = $4, last_error = $5, delivered_at = CASE WHEN $6 THEN $3 END WHERE id = $1 RETURNING endpoint",
        )
        .bind(a.delivery)
        .bind(new_state)
        .bind(a.time)
        .bind(a.status.map(i64::from))
        .bind(a.error.as_deref())
        .bind(a.error.is_none())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(endpoint) = endpoint else {
            return Err(StoreError::Corrupt(format!("no webhook delivery {}", a.delivery)));
        };
        sqlx::query(
            "UPDATE webhook_endpoints SET failures = $2, retry_at = $3, \
             paused_at = CASE WHEN CAST($4 AS TEXT) IS NULL THEN paused_at ELSE $5 END, \
             paused_reason = COALESCE(CAST($4 AS TEXT), paused_reason) WHERE name = $1",
        )
        .bind(&endpoint)
        .bind(a.failures)
        .bind(a.retry_at)
        .bind(a.pause.as_deref())
        .bind(a.time)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn customer_contexts(&self, customers: &[i64]) -> Result<Vec<(i64, CustomerContext)>, StoreError> {
        let mut out = Vec::with_capacity(customers.len());
        for chunk in customers.chunks(CHUNK) {
            let mut q: QueryBuilder<Db> = QueryBuilder::new(
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
        let rows = sqlx::query(&format!("{ENDPOINT_SELECT} ORDER BY e.name")).fetch_all(&self.reader).await?;
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
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(0))
            .bind(endpoint)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        keyset_page(&rows, limit, delivery)
    }

    async fn resume_webhook(&self, endpoint: &str, retry_failed: bool) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let found = sqlx::query(
            "UPDATE webhook_endpoints SET failures = 0, retry_at = NULL, paused_at = NULL, paused_reason = NULL \
             WHERE name = $1",
        )
        .bind(endpoint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if found > 0 && retry_failed {
            sqlx::query("UPDATE webhook_deliveries SET state = $2, attempts = 0 WHERE endpoint = $1 AND state = $3")
                .bind(endpoint)
                .bind(crate::webhook::state::PENDING)
                .bind(crate::webhook::state::FAILED)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found > 0)
    }

    async fn feedback_facts(
        &self,
    ) -> Result<(Vec<kanta_core::feedback::Response>, Vec<kanta_core::feedback::CustomerFacts>), StoreError> {
        let mut conn = self.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT c.id, c.external_id, c.name, c.email, s.stage, s.value_tier, s.clv_12m, s.p_alive, \
             (SELECT CAST(COALESCE(SUM(CASE WHEN o.status = 'refunded' THEN -ABS(o.amount) ELSE o.amount END), 0) \
               AS BIGINT) FROM orders o WHERE o.customer_id = c.id AND o.status <> 'cancelled') AS revenue, \
             (SELECT MAX(o.time) FROM orders o WHERE o.customer_id = c.id AND o.status = 'completed' \
               AND o.amount > 0) AS last_purchase \
             FROM customers c LEFT JOIN scores s ON s.customer_id = c.id \
             WHERE c.erased_at IS NULL AND c.id IN (SELECT customer_id FROM feedback) ORDER BY c.id",
        )
        .fetch_all(&mut *conn)
        .await?;
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
        let rows = sqlx::query(
            "SELECT f.customer_id, f.time, f.nps, f.csat, f.topics, f.text FROM feedback f \
             JOIN customers c ON c.id = f.customer_id WHERE c.erased_at IS NULL ORDER BY f.customer_id, f.time, f.id",
        )
        .fetch_all(&mut *conn)
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

    async fn erase_customer(&self, id: &str, token: Option<i64>, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let found: Option<(i64, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, email, phone FROM customers WHERE external_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((internal, email, phone)) = found else { return Ok(false) };
        // Stored idempotent responses may quote the customer (a rejected record's email or
        // phone). Those whose request named the customer's id are tied to it; a response from
        // before the ties existed, or whose record's id could not be read, is found by the
        // contact fields as they appear in its JSON body. Matching the body alone would miss
        // values that were quoted but never stored (rejected ones are not), and a short id
        // would match unrelated responses; a response deleted wrongly only loses its replay.
        let quoted = |value: &Option<String>| -> Option<String> {
            let json = serde_json::to_string(value.as_deref().filter(|v| !v.is_empty())?).ok()?;
            Some(json.get(1..json.len() - 1)?.to_string())
        };
        let sql = format!(
            "DELETE FROM idempotency WHERE (token_id, key) IN \
             (SELECT token_id, key FROM idempotency_customers WHERE customer = $1) \
             OR {CONTAINS}(body, $2) > 0 OR {CONTAINS}(body, $3) > 0"
        );
        sqlx::query(&sql).bind(id).bind(quoted(&email)).bind(quoted(&phone)).execute(&mut *tx).await?;
        // The anonymous id keeps the customer's orders together for the aggregates.
        let anonymous = format!("erased:{internal}");
        sqlx::query(
            "UPDATE customers SET external_id = $1, email = NULL, phone = NULL, name = NULL, timezone = NULL, \
             locale = NULL, birthday = NULL, attributes = NULL, erased_at = $2, updated_at = $2, \
             version = version + 1 WHERE id = $3",
        )
        .bind(&anonymous)
        .bind(now)
        .bind(internal)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM consent WHERE customer_id = $1").bind(internal).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM events WHERE customer_id = $1").bind(internal).execute(&mut *tx).await?;
        sqlx::query("UPDATE feedback SET text = NULL WHERE customer_id = $1")
            .bind(internal)
            .execute(&mut *tx)
            .await?;
        // Webhook bodies name the customer (and carry contact fields): redact them, and what
        // was not sent yet is never sent.
        sqlx::query(
            "UPDATE webhook_deliveries SET payload = $2, \
             last_error = CASE WHEN state = $3 THEN 'the customer was erased' ELSE last_error END, \
             state = CASE WHEN state = $3 THEN $4 ELSE state END WHERE customer_id = $1",
        )
        .bind(internal)
        .bind(crate::webhook::ERASED_BODY)
        .bind(crate::webhook::state::PENDING)
        .bind(crate::webhook::state::FAILED)
        .execute(&mut *tx)
        .await?;
        // Audit entries name the anonymous id from now on, earlier ones included: the log keeps
        // what was done, not who it was done to.
        sqlx::query("UPDATE audit_log SET detail = $1 WHERE customer_id = $2")
            .bind(&anonymous)
            .bind(internal)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO audit_log (time, token_id, action, customer_id, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now)
            .bind(token)
            .bind("erase")
            .bind(internal)
            .bind(&anonymous)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.after_erasure().await?;
        Ok(true)
    }

    async fn audit_entries(&self, after: Option<i64>, limit: u32) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT id, time, token_id, action, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        let more = rows.len() > limit as usize;
        let entries = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    time: rfc3339(r.try_get("time")?),
                    token_id: r.try_get("token_id")?,
                    action: r.try_get("action")?,
                    customer: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more { entries.last().map(|e| e.id) } else { None };
        Ok((entries, next))
    }

    async fn audit(&self, token: Option<i64>, action: &str, customer: Option<&str>, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (time, token_id, action, customer_id, detail) \
             VALUES ($1, $2, $3, (SELECT id FROM customers WHERE external_id = $4), $4)",
        )
        .bind(now)
        .bind(token)
        .bind(action)
        .bind(customer)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn insert_token(&self, hash: &TokenHash, scope: Scope, name: Option<&str>, now: i64) -> Result<i64, StoreError> {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO tokens (hash, scope, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(&hash.0)
                .bind(scope.as_str())
                .bind(name)
                .bind(now)
                .fetch_one(&self.writer)
                .await?;
        Ok(id)
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query("SELECT id, hash, scope FROM tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(&hash.0)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let scope: String = row.try_get("scope")?;
        Ok(Some(TokenRow {
            id: row.try_get("id")?,
            hash: TokenHash(row.try_get("hash")?),
            scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope `{scope}`")))?,
        }))
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query("SELECT id, scope, name, created_at, revoked_at FROM tokens ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope `{scope}`")))?,
                    name: r.try_get("name")?,
                    created_at: rfc3339(r.try_get("created_at")?),
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(rfc3339),
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn idempotent_response(&self, token: i64, key: &str, since: i64) -> Result<Option<StoredResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM idempotency WHERE token_id = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(token)
        .bind(key)
        .bind(since)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i64 = row.try_get("status")?;
        Ok(Some(StoredResponse {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
            body: row.try_get("body")?,
        }))
    }

    async fn remember_response(
        &self,
        token: i64,
        key: &str,
        response: &StoredResponse,
        customers: &[String],
        now: i64,
        expired_before: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        // Expired responses go first, so an expired one under this key gives way to this one.
        sqlx::query("DELETE FROM idempotency WHERE created_at < $1").bind(expired_before).execute(&mut *tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency (token_id, key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(token)
        .bind(key)
        .bind(&response.request_hash)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The first response wins, with the customers of its own request.
        if inserted == 1 {
            for chunk in customers.chunks(CHUNK) {
                let mut b = QueryBuilder::new("INSERT INTO idempotency_customers (token_id, key, customer) ");
                b.push_values(chunk, |mut row, customer| {
                    row.push_bind(token).push_bind(key).push_bind(customer);
                });
                b.push(" ON CONFLICT DO NOTHING");
                b.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_responses(&self, expired_before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(expired_before)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM orders) AS orders, \
             (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM feedback) AS feedback",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(Counts {
            customers: row.try_get("customers")?,
            orders: row.try_get("orders")?,
            events: row.try_get("events")?,
            feedback: row.try_get("feedback")?,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}

/// Binds a compiled segment's parameters, in order.
fn bind_segment<'q>(
    mut query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    params: &'q [kanta_segment::Param],
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    for p in params {
        query = match p {
            kanta_segment::Param::Text(s) => query.bind(s.as_str()),
            kanta_segment::Param::Number(n) => query.bind(*n),
            kanta_segment::Param::Int(i) => query.bind(*i),
            kanta_segment::Param::Bool(b) => query.bind(*b),
        };
    }
    query
}

/// The columns [`profile`] reads, from `customers c`.
const PROFILE_COLUMNS: &str = "c.id, c.external_id, c.email, c.phone, c.name, c.timezone, c.locale, c.birthday, \
     c.attributes, c.created_at, c.updated_at, c.erased_at";

/// A page of profiles (see [`keyset_page`]).
fn profile_page(rows: &[<Db as sqlx::Database>::Row], limit: u32) -> Result<(Vec<Profile>, Option<i64>), StoreError> {
    keyset_page(rows, limit, profile)
}

fn profile(row: &<Db as sqlx::Database>::Row) -> Result<Profile, StoreError> {
    Ok(Profile {
        id: row.try_get("external_id")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        name: row.try_get("name")?,
        timezone: row.try_get("timezone")?,
        locale: row.try_get("locale")?,
        birthday: row.try_get("birthday")?,
        attributes: row.try_get::<Option<Json<serde_json::Value>>, _>("attributes")?.map(|j| j.0),
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        erased_at: row.try_get::<Option<i64>, _>("erased_at")?.map(rfc3339),
    })
}
