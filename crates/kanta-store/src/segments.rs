//! Segments: previews of expressions, saved segments with their members as of the last
//! refresh, and the log of who entered and left.

use crate::customers::{PROFILE_COLUMNS, profile_page};
use crate::dialect::{Budget, Dialect};
use crate::sql::{Query, Row, Tx, query};
use crate::store::{Store, keyset_page};
use crate::{Profile, RefreshCounts, SegmentInfo, StoreError, Transition, rfc3339};

/// Segments: expressions run against the customers, saved segments and their transitions.
#[async_trait::async_trait]
pub trait SegmentStore: Send + Sync {
    /// How many customers (not erased) a segment expression selects at time `now`.
    async fn segment_count(&self, expr: &kanta_segment::Expr, now: i64) -> Result<i64, StoreError>;

    /// The customers a segment expression selects, in a stable order, after position `after`.
    async fn segment_members(
        &self,
        expr: &kanta_segment::Expr,
        now: i64,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Profile>, Option<i64>), StoreError>;

    /// Save a segment and compute its first membership (a baseline: no transitions are
    /// recorded for it). [`StoreError::Conflict`] if the name is taken.
    async fn create_segment(
        &self,
        name: &str,
        text: &str,
        expr: &kanta_segment::Expr,
        now: i64,
    ) -> Result<SegmentInfo, StoreError>;

    /// Every saved segment, by id.
    async fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError>;

    /// One saved segment.
    async fn segment(&self, id: i64) -> Result<Option<SegmentInfo>, StoreError>;

    /// Delete a segment with its members and transitions; returns whether it existed.
    async fn delete_segment(&self, id: i64) -> Result<bool, StoreError>;

    /// Recompute a segment's members at `now` and record who entered and who left, in one
    /// transaction. Erased customers leave every segment.
    async fn refresh_segment(&self, id: i64, expr: &kanta_segment::Expr, now: i64)
    -> Result<RefreshCounts, StoreError>;

    /// A segment's members as of its last refresh, in a stable order, after position `after`.
    async fn segment_customers(
        &self,
        id: i64,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Profile>, Option<i64>), StoreError>;

    /// Transitions after position `after`, oldest first, of one segment or of all.
    async fn transitions(
        &self,
        segment: Option<i64>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Transition>, Option<i64>), StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> SegmentStore for Store<DB> {
    async fn segment_count(&self, expr: &kanta_segment::Expr, now: i64) -> Result<i64, StoreError> {
        let compiled = kanta_segment::compile(expr, DB::SEGMENTS, now, 1);
        let sql = format!("SELECT COUNT(*) FROM customers c WHERE c.erased_at IS NULL AND {}", compiled.sql);
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut conn = DB::Budgeted::acquire(&self.reader, self.limits.preview).await?;
        let row = bind_segment(query(&sql), &compiled.params).fetch_one(conn.conn()).await;
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
        let compiled = kanta_segment::compile(expr, DB::SEGMENTS, now, 3);
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM customers c \
             WHERE c.id > $1 AND c.erased_at IS NULL AND {} ORDER BY c.id LIMIT $2",
            compiled.sql
        );
        let query = query(&sql).bind(after.unwrap_or(0)).bind(i64::from(limit) + 1);
        let _slot = crate::segment_slot(&self.slots, &self.limits).await?;
        let mut conn = DB::Budgeted::acquire(&self.reader, self.limits.preview).await?;
        let rows = bind_segment(query, &compiled.params).fetch_all(conn.conn()).await;
        let rows = conn.finish(rows).await?;
        profile_page(&rows, limit)
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
        let id: Option<i64> = query(
            "INSERT INTO segments (name, expression, created_at, refreshed_at, members) VALUES ($1, $2, $3, $3, 0) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(text)
        .bind(now)
        .fetch_optional(&mut tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        let Some(id) = id else { return Err(StoreError::Conflict(format!("a segment named `{name}` exists"))) };
        fill_segment(&mut tx, id, expr, now, true, &self.limits).await?;
        let row =
            query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1")).bind(id).fetch_one(&mut tx).await?;
        let info = segment_info(&row)?;
        tx.commit().await?;
        Ok(info)
    }

    async fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY id"))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(segment_info)
            .collect()
    }

    async fn segment(&self, id: i64) -> Result<Option<SegmentInfo>, StoreError> {
        query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| segment_info(&r))
            .transpose()
    }

    async fn delete_segment(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        query("DELETE FROM segment_transitions WHERE segment_id = $1").bind(id).execute(&mut tx).await?;
        query("DELETE FROM segment_members WHERE segment_id = $1").bind(id).execute(&mut tx).await?;
        let deleted = query("DELETE FROM segments WHERE id = $1").bind(id).execute(&mut tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn refresh_segment(
        &self,
        id: i64,
        expr: &kanta_segment::Expr,
        now: i64,
    ) -> Result<RefreshCounts, StoreError> {
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
        let rows =
            query(&sql).bind(id).bind(after.unwrap_or(0)).bind(i64::from(limit) + 1).fetch_all(&self.reader).await?;
        profile_page(&rows, limit)
    }

    async fn transitions(
        &self,
        segment: Option<i64>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Transition>, Option<i64>), StoreError> {
        let rows = query(
            "SELECT t.id, t.segment_id, s.name, c.external_id, t.customer_id, t.kind, t.time FROM segment_transitions t \
             JOIN segments s ON s.id = t.segment_id JOIN customers c ON c.id = t.customer_id \
             WHERE t.id > $1 AND ($2 IS NULL OR t.segment_id = $2) ORDER BY t.id LIMIT $3",
        )
        .bind(after.unwrap_or(0))
        .bind(segment)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        keyset_page(&rows, limit, transition)
    }
}

/// A transition row (`t.id, t.segment_id, s.name, c.external_id, t.customer_id, t.kind, t.time`).
pub(crate) fn transition<R: Row>(r: &R) -> Result<Transition, StoreError> {
    Ok(Transition {
        id: r.try_get("id")?,
        segment_id: r.try_get("segment_id")?,
        segment: r.try_get("name")?,
        customer: r.try_get("external_id")?,
        customer_key: r.try_get("customer_id")?,
        kind: r.try_get("kind")?,
        time: rfc3339(r.try_get("time")?),
    })
}

const SEGMENT_COLUMNS: &str = "id, name, expression, created_at, refreshed_at, members";

fn segment_info<R: Row>(r: &R) -> Result<SegmentInfo, StoreError> {
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
async fn fill_segment<DB: Dialect>(
    tx: &mut Tx<DB>,
    id: i64,
    expr: &kanta_segment::Expr,
    now: i64,
    baseline: bool,
    limits: &crate::SegmentLimits,
) -> Result<RefreshCounts, StoreError> {
    // Also serialises concurrent refreshes, which would otherwise diff against the same members.
    DB::serialize_log_writers(tx, "LOCK TABLE segment_transitions IN EXCLUSIVE MODE").await?;
    query("DROP TABLE IF EXISTS segment_now").execute(&mut *tx).await?;
    query("CREATE TEMPORARY TABLE segment_now (customer_id BIGINT PRIMARY KEY)").execute(&mut *tx).await?;
    let compiled = kanta_segment::compile(expr, DB::SEGMENTS, now, 1);
    let sql =
        format!("INSERT INTO segment_now SELECT c.id FROM customers c WHERE c.erased_at IS NULL AND {}", compiled.sql);
    // The expression's own query is the one whose cost the user controls: it runs under the
    // refresh budget; the rest is bounded by the members it found.
    let budget = DB::arm_tx(tx, limits.refresh).await?;
    let filled = bind_segment(query(&sql), &compiled.params).execute(&mut *tx).await;
    if let Err(e) = filled {
        return Err(DB::over_budget(e, limits.refresh));
    }
    DB::disarm_tx(tx, budget).await?;
    let mut counts = RefreshCounts::default();
    if !baseline {
        let before: i64 =
            query("SELECT COALESCE(MAX(id), 0) FROM segment_transitions").fetch_one(&mut *tx).await?.try_get(0)?;
        counts.entered = query(
            "INSERT INTO segment_transitions (segment_id, customer_id, kind, time) \
             SELECT $1, n.customer_id, 'enter', $2 FROM segment_now n WHERE NOT EXISTS \
             (SELECT 1 FROM segment_members m WHERE m.segment_id = $1 AND m.customer_id = n.customer_id) \
             ORDER BY n.customer_id",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        counts.exited = query(
            "INSERT INTO segment_transitions (segment_id, customer_id, kind, time) \
             SELECT $1, m.customer_id, 'exit', $2 FROM segment_members m WHERE m.segment_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM segment_now n WHERE n.customer_id = m.customer_id) ORDER BY m.customer_id",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if counts.entered + counts.exited > 0 {
            crate::journey::feed::segment_transitions(tx, id, before).await?;
        }
    }
    query(
        "DELETE FROM segment_members WHERE segment_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM segment_now n WHERE n.customer_id = segment_members.customer_id)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    query(
        "INSERT INTO segment_members (segment_id, customer_id, entered_at) \
         SELECT $1, n.customer_id, $2 FROM segment_now n WHERE NOT EXISTS \
         (SELECT 1 FROM segment_members m WHERE m.segment_id = $1 AND m.customer_id = n.customer_id)",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    counts.members = query("SELECT COUNT(*) FROM segment_now").fetch_one(&mut *tx).await?.try_get(0)?;
    query("UPDATE segments SET refreshed_at = $1, members = $2 WHERE id = $3")
        .bind(now)
        .bind(counts.members)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    query("DROP TABLE segment_now").execute(&mut *tx).await?;
    Ok(counts)
}

/// Whether customer `customer` (internal id, not erased) matches `expr` at `now`: one
/// `EXISTS` over the customer's row with the compiled condition, its parameters after the id.
pub(crate) async fn customer_matches<DB: Dialect>(
    store: &Store<DB>,
    customer: i64,
    expr: &kanta_segment::Expr,
    now: i64,
) -> Result<bool, StoreError> {
    let compiled = kanta_segment::compile(expr, DB::SEGMENTS, now, 2);
    let sql = format!("SELECT COUNT(*) FROM customers c WHERE c.id = $1 AND c.erased_at IS NULL AND {}", compiled.sql);
    let _slot = crate::segment_slot(&store.slots, &store.limits).await?;
    let mut conn = DB::Budgeted::acquire(&store.reader, store.limits.preview).await?;
    let row = bind_segment(query(&sql).bind(customer), &compiled.params).fetch_one(conn.conn()).await;
    let row = conn.finish(row).await?;
    let count: i64 = row.try_get(0)?;
    Ok(count > 0)
}

/// Binds a compiled segment's parameters, in order.
fn bind_segment<'q, DB: Dialect>(
    mut query: Query<'q, 'q, DB>,
    params: &'q [kanta_segment::Param],
) -> Query<'q, 'q, DB> {
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
