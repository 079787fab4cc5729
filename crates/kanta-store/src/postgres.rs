//! The PostgreSQL backend, for production: `postgres://USER:PASSWORD@HOST:PORT/DB`.
//!
//! The schema matches SQLite's column for column (JSON as JSONB); commits use the server's
//! default `synchronous_commit = on`, so an acknowledged write is durable.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Pool, Postgres};

use crate::dialect::{Budget, Dialect};
use crate::sql::{On, QueryBuilder, Separated, Tx, query};
use crate::store::Store;
use crate::{Purchases, SegmentLimits, StoreError};

/// The schema, oldest migration first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "scores", include_str!("../migrations/postgres/0002_scores.sql")),
    (3, "segments", include_str!("../migrations/postgres/0003_segments.sql")),
    (4, "webhooks", include_str!("../migrations/postgres/0004_webhooks.sql")),
    (5, "value_tier", include_str!("../migrations/postgres/0005_value_tier.sql")),
    (6, "product_groups", include_str!("../migrations/postgres/0006_product_groups.sql")),
    (7, "idempotency_expiry", include_str!("../migrations/postgres/0007_idempotency_expiry.sql")),
    (8, "run_status", include_str!("../migrations/postgres/0008_run_status.sql")),
    (9, "inbound_seen", include_str!("../migrations/postgres/0009_inbound_seen.sql")),
    (10, "journeys", include_str!("../migrations/postgres/0010_journeys.sql")),
    (11, "journey_feed", include_str!("../migrations/postgres/0011_journey_feed.sql")),
    (12, "journey_triggers", include_str!("../migrations/postgres/0012_journey_triggers.sql")),
    (13, "journey_goals", include_str!("../migrations/postgres/0013_journey_goals.sql")),
    (14, "dashboard", include_str!("../migrations/postgres/0014_dashboard.sql")),
    (15, "dashboard_counts", include_str!("../migrations/postgres/0015_dashboard_counts.sql")),
];

impl Store<Postgres> {
    /// Connect to `url` and migrate.
    pub(crate) async fn open_postgres(url: &str, limits: SegmentLimits) -> Result<Store<Postgres>, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        // One direct attempt first: the pool would retry silently until its acquire timeout
        // (30 s) and then say only "pool timed out". A server that is down should be named at
        // once, with its host and port, so the caller can say so and decide to retry.
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let unreachable = |reason: String| StoreError::Unreachable { target: target.clone(), reason };
        match tokio::time::timeout(
            Duration::from_secs(5),
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
            }
            Ok(Err(sqlx::Error::Io(e))) => return Err(unreachable(e.to_string())),
            Ok(Err(sqlx::Error::Tls(e))) => return Err(unreachable(format!("TLS: {e}"))),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(unreachable("no answer within 5 s".into())),
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        crate::migrator(MIGRATIONS).run(&pool).await?;
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.slots.max(1)));
        Ok(Store { writer: pool.clone(), reader: pool, file: None, limits, slots })
    }
}

impl Dialect for Postgres {
    const KIND: crate::Backend = crate::Backend::Postgres;
    const SEGMENTS: kanta_segment::Dialect = kanta_segment::Dialect::Postgres;
    /// RFC 7396 merge patch (`kanta_merge_patch`, defined by the first migration).
    const MERGE_ATTRIBUTES: &'static str = "kanta_merge_patch(customers.attributes, excluded.attributes)";
    const CONTAINS: &'static str = "strpos";
    /// Row locks do the work (`LOCK_ROW`).
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// Concurrent claimers (two `kanta serve` on one database) pass over each other's rows
    /// instead of waiting for them or taking them twice.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// `NO KEY`: the lock must not block inserts of rows that reference the locked one (an
    /// order's foreign key takes `KEY SHARE` on its customer).
    const LOCK_ROW: &'static str = " FOR NO KEY UPDATE";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";

    type Budgeted = Budgeted;
    type TxBudget = ();

    fn push_json<'a, T: serde::Serialize + Send + 'a>(b: &mut Separated<'_, 'a, Self>, value: Option<Json<T>>) {
        b.raw().push_bind(value);
    }

    /// `column = ANY($n)` with the ids as one array parameter: one plan for any number of ids,
    /// where an `IN` list of a thousand parameters is planned anew each time.
    fn push_id_filter(q: &mut QueryBuilder<'_, Self>, column: &str, ids: &[i64]) {
        q.push(column).push(" = ANY(");
        q.raw().push_bind(ids.to_vec());
        q.push(")");
    }

    fn push_attribute_text(q: &mut QueryBuilder<'_, Self>, key: &str) {
        q.push("(c.attributes ->> ").push_bind(key.to_owned()).push(")");
    }

    /// PostgreSQL hands out identity ids at insert, not at commit, so a reader following a log
    /// by id (the webhook dispatcher) could pass over the rows of a transaction that commits
    /// after a later one. Writers of those logs take the table's EXCLUSIVE lock (reads go on),
    /// so ids commit in order.
    async fn serialize_log_writers(tx: &mut Tx<Self>, lock: &'static str) -> Result<(), StoreError> {
        query::<Postgres>(lock).execute(&mut *tx).await?;
        Ok(())
    }

    /// The limit is the transaction's own `statement_timeout`, which ends with it.
    async fn arm_tx(tx: &mut Tx<Self>, budget: Duration) -> Result<(), StoreError> {
        set_timeout(tx, budget).await
    }

    async fn disarm_tx(tx: &mut Tx<Self>, _budget: ()) -> Result<(), StoreError> {
        query::<Postgres>("SELECT set_config('statement_timeout', '0', true)").execute(&mut *tx).await?;
        Ok(())
    }

    /// A cancelled statement (`query_canceled`, 57014) as [`StoreError::TooCostly`].
    fn over_budget(e: sqlx::Error, budget: Duration) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("57014") => StoreError::TooCostly(budget),
            _ => e.into(),
        }
    }

    /// Nothing to do here. The old row versions stay in the table files as dead tuples until
    /// (auto)vacuum reclaims their space, and in the server's WAL and backups for as long as
    /// those are kept; that is the server's retention, which the README asks operators to bound.
    async fn after_erasure(_writer: &Pool<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn pushdown_connection(store: &Store<Self>) -> Result<Option<crate::PushdownConnection>, StoreError> {
        crate::pushed::PushdownConnection::open(&store.writer.connect_options()).await.map(Some)
    }

    /// PostgreSQL prints each chunk into strings.
    async fn purchases(
        store: &Store<Self>,
        lines: bool,
        sink: &mut (dyn FnMut(Purchases) + Send),
    ) -> Result<(), StoreError> {
        crate::orders::aggregated_purchases(&store.reader, lines, sink).await
    }
}

/// A read transaction with `statement_timeout` set for it alone (`set_config(…, true)` is
/// `SET LOCAL`: it ends with the transaction, also when a dropped request rolls it back, so a
/// pooled connection never keeps it). A statement still running when its caller goes away runs
/// on until the timeout; PostgreSQL is not told sooner.
pub(crate) struct Budgeted {
    tx: Tx<Postgres>,
    budget: Duration,
}

impl Budget<Postgres> for Budgeted {
    async fn acquire(pool: &Pool<Postgres>, budget: Duration) -> Result<Budgeted, StoreError> {
        let mut tx = pool.begin().await?;
        set_timeout(&mut tx, budget).await?;
        Ok(Budgeted { tx, budget })
    }

    fn conn(&mut self) -> On<'_, Postgres> {
        On::Conn(&mut *self.tx)
    }

    async fn finish<T: Send>(self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        // Read only: nothing to commit.
        self.tx.rollback().await?;
        result.map_err(|e| Postgres::over_budget(e, self.budget))
    }
}

async fn set_timeout(tx: &mut Tx<Postgres>, budget: Duration) -> Result<(), StoreError> {
    // 0 would mean no limit: the shortest budget is a millisecond.
    let ms = budget.as_millis().clamp(1, i32::MAX as u128).to_string();
    query::<Postgres>("SELECT set_config('statement_timeout', $1, true)").bind(ms).execute(&mut *tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_the_password() {
        let options = PgConnectOptions::from_str("postgres://kanta:hunter2@localhost:1/kanta").expect("a URL");
        let pool = PgPoolOptions::new().connect_lazy_with(options);
        let limits = SegmentLimits::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let store = Store::<Postgres> { writer: pool.clone(), reader: pool, file: None, limits, slots };
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
