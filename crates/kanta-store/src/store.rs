//! The store of one backend ([`Store<DB>`]) and what every aggregate module shares: batching,
//! the customer id lookup, keyset pages, and the umbrella [`Storage`] trait's own calls.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Pool;

use kanta_domain::{CustomerId, Timestamp};

use crate::dialect::Dialect;
use crate::sql::{QueryBuilder, Row, Tx, query};
use crate::{Counts, SegmentLimits, Storage, StoreError, WriteCounts};

/// Rows per INSERT statement: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters
/// for the widest table, and large enough that statement overhead is small.
pub(crate) const CHUNK: usize = 500;

/// The store on `DB` (`sqlx::Sqlite` or `sqlx::Postgres`); opened by the backend module.
pub(crate) struct Store<DB: Dialect> {
    /// Writes (SQLite: the one writer connection).
    pub(crate) writer: Pool<DB>,
    /// Reads (SQLite: a pool of read-only connections beside the writer; PostgreSQL: the
    /// same pool as `writer`).
    pub(crate) reader: Pool<DB>,
    /// The database file, for SQLite's direct read of every purchase (`None`: in memory, or
    /// a server).
    pub(crate) file: Option<std::path::PathBuf>,
    /// Budgets of segment queries.
    pub(crate) limits: SegmentLimits,
    /// [`SegmentLimits::slots`], shared by every clone of the store.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
}

impl<DB: Dialect> Clone for Store<DB> {
    fn clone(&self) -> Self {
        Store {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            file: self.file.clone(),
            limits: self.limits,
            slots: self.slots.clone(),
        }
    }
}

// `Debug` output ends up in logs: show the backend only, never connection details.
impl<DB: Dialect> std::fmt::Debug for Store<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &DB::KIND).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<DB: Dialect> Storage for Store<DB> {
    fn backend(&self) -> crate::Backend {
        DB::KIND
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let row = query::<DB>(
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
        query::<DB>("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}

/// The last record for each id: a batch that names an id twice means its last version, and
/// PostgreSQL refuses an upsert that touches one row twice.
pub(crate) fn last_per_id<T>(batch: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        last.insert(id(r), i);
    }
    batch.iter().enumerate().filter(|(i, r)| last.get(id(r)) == Some(i)).map(|(_, r)| r).collect()
}

/// Make sure every customer id exists (creating bare customers for new ids) and return the
/// internal ids, with the number created.
pub(crate) async fn ensure_customers<DB: Dialect>(
    tx: &mut Tx<DB>,
    ids: &[&CustomerId],
    now: Timestamp,
) -> Result<(HashMap<String, i64>, u64), StoreError> {
    let mut unique: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut map = HashMap::with_capacity(unique.len());
    let mut created = 0u64;
    for chunk in unique.chunks(CHUNK) {
        let mut q: QueryBuilder<DB> = QueryBuilder::new("INSERT INTO customers (external_id, created_at, updated_at) ");
        q.push_values(chunk, |mut b, id| {
            b.push_bind(*id).push_bind(now.micros()).push_bind(now.micros());
        });
        q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id");
        created += q.build().fetch_all(&mut *tx).await?.len() as u64;

        let mut q: QueryBuilder<DB> = QueryBuilder::new("SELECT id, external_id FROM customers WHERE external_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            map.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
        }
    }
    Ok((map, created))
}

/// The internal id of a customer [`ensure_customers`] returned.
pub(crate) fn customer_id(map: &HashMap<String, i64>, id: &CustomerId) -> Result<i64, StoreError> {
    map.get(id.as_str())
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("customer `{id}` vanished inside a transaction")))
}

/// Counts from `RETURNING version` rows: version 1 was an insert, more was an update.
pub(crate) fn count_versions<R: Row>(rows: &[R], counts: &mut WriteCounts) -> Result<(), StoreError> {
    for row in rows {
        if row.try_get::<i64, _>("version")? == 1 {
            counts.created += 1;
        } else {
            counts.updated += 1;
        }
    }
    Ok(())
}

/// A page from rows fetched with `LIMIT limit + 1` and keyed by their `id` column: the extra
/// row only says that there is a next page, whose cursor is the last shown row's id.
pub(crate) fn keyset_page<R: Row, T>(
    rows: &[R],
    limit: u32,
    item: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<(Vec<T>, Option<i64>), StoreError> {
    let shown = &rows[..rows.len().min(limit as usize)];
    let items = shown.iter().map(item).collect::<Result<Vec<T>, StoreError>>()?;
    let next = match shown.last() {
        Some(row) if rows.len() > shown.len() => Some(row.try_get::<i64, _>("id")?),
        _ => None,
    };
    Ok((items, next))
}

/// Stored money (1/10,000 units) as a number of currency units.
pub(crate) fn money(raw: i64) -> f64 {
    kanta_core::money::Money::from_raw(raw).to_f64()
}

/// Parse one comma-separated list of integers (a column printed by `string_agg`) into `out`.
pub(crate) fn parse_ints(text: Option<&str>, out: &mut Vec<i64>) -> Result<(), StoreError> {
    let Some(text) = text else { return Ok(()) };
    for part in text.split(',') {
        out.push(part.parse().map_err(|_| StoreError::Corrupt(format!("purchase value `{part}`")))?);
    }
    Ok(())
}
