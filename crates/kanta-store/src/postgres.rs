//! The PostgreSQL backend, for production: `postgres://USER:PASSWORD@HOST:PORT/DB`.
//!
//! The schema matches SQLite's column for column (JSON as JSONB); commits use the server's
//! default `synchronous_commit = on`, so an acknowledged write is durable.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::query_builder::Separated;
use sqlx::{Pool, Postgres};

type Db = Postgres;

const BACKEND: crate::Backend = crate::Backend::Postgres;
const DIALECT: kanta_segment::Dialect = kanta_segment::Dialect::Postgres;

/// RFC 7396 merge patch (`kanta_merge_patch`, defined by the first migration).
const MERGE_ATTRIBUTES: &str = "kanta_merge_patch(customers.attributes, excluded.attributes)";

fn push_json<'a, T: serde::Serialize + 'a + Send>(
    b: &mut Separated<'_, 'a, Db, &'static str>,
    value: Option<sqlx::types::Json<T>>,
) {
    b.push_bind(value);
}

/// `strpos(haystack, needle) > 0`: whether a text contains another (bound, not a pattern).
const CONTAINS: &str = "strpos";

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
];

/// The PostgreSQL store.
#[derive(Clone)]
pub(crate) struct PgStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
    /// Budgets of segment queries.
    limits: crate::SegmentLimits,
    /// [`crate::SegmentLimits::slots`], shared by every clone of the store.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

type Store = PgStore;

// `Debug` output ends up in logs: show the backend only, never connection details.
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connect to `url` and migrate.
    pub(crate) async fn open(url: &str, limits: crate::SegmentLimits) -> Result<PgStore, crate::StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        // One direct attempt first: the pool would retry silently until its acquire timeout
        // (30 s) and then say only "pool timed out". A server that is down should be named at
        // once, with its host and port, so the caller can say so and decide to retry.
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let unreachable = |reason: String| crate::StoreError::Unreachable { target: target.clone(), reason };
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
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.slots.max(1)));
        Ok(PgStore { writer: pool.clone(), reader: pool, limits, slots })
    }

    /// After an erasure has committed: nothing to do here. The old row versions stay in the
    /// table files as dead tuples until (auto)vacuum reclaims their space, and in the server's
    /// WAL and backups for as long as those are kept; that is the server's retention, which
    /// the README asks operators to bound.
    async fn after_erasure(&self) -> Result<(), crate::StoreError> {
        Ok(())
    }

    /// [`crate::Storage::purchases`]: PostgreSQL prints each chunk into strings.
    async fn read_purchases(
        &self,
        lines: bool,
        sink: &mut (dyn FnMut(crate::Purchases) + Send),
    ) -> Result<(), crate::StoreError> {
        self.aggregated_purchases(lines, sink).await
    }
}

/// A read transaction with `statement_timeout` set for it alone (`set_config(…, true)` is
/// `SET LOCAL`: it ends with the transaction, also when a dropped request rolls it back, so a
/// pooled connection never keeps it). A statement still running when its caller goes away runs
/// on until the timeout; PostgreSQL is not told sooner.
struct Budgeted {
    tx: sqlx::Transaction<'static, Db>,
    budget: Duration,
}

impl Budgeted {
    async fn acquire(pool: &Pool<Db>, budget: Duration) -> Result<Budgeted, crate::StoreError> {
        let mut tx = pool.begin().await?;
        set_timeout(&mut tx, budget).await?;
        Ok(Budgeted { tx, budget })
    }

    fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    async fn finish<T>(self, result: Result<T, sqlx::Error>) -> Result<T, crate::StoreError> {
        // Read only: nothing to commit.
        self.tx.rollback().await?;
        result.map_err(|e| over_budget(e, self.budget))
    }
}

async fn set_timeout(tx: &mut Tx, budget: Duration) -> Result<(), crate::StoreError> {
    // 0 would mean no limit: the shortest budget is a millisecond.
    let ms = budget.as_millis().clamp(1, i32::MAX as u128).to_string();
    sqlx::query("SELECT set_config('statement_timeout', $1, true)").bind(ms).execute(&mut **tx).await?;
    Ok(())
}

/// A cancelled statement (`query_canceled`, 57014) as [`crate::StoreError::TooCostly`].
fn over_budget(e: sqlx::Error, budget: Duration) -> crate::StoreError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("57014") => crate::StoreError::TooCostly(budget),
        _ => e.into(),
    }
}

/// Arms the budget on a write transaction (see the SQLite backend's `arm_tx`); here the limit
/// is the transaction's own `statement_timeout`, which ends with it.
async fn arm_tx(tx: &mut Tx, budget: Duration) -> Result<TxBudget, crate::StoreError> {
    set_timeout(tx, budget).await?;
    Ok(TxBudget { budget })
}

/// See [`arm_tx`].
struct TxBudget {
    budget: Duration,
}

async fn disarm_tx(tx: &mut Tx, _budget: TxBudget) -> Result<(), crate::StoreError> {
    sqlx::query("SELECT set_config('statement_timeout', '0', true)").execute(&mut **tx).await?;
    Ok(())
}

/// `column = ANY($n)` with the ids as one array parameter: one plan for any number of ids,
/// where an `IN` list of a thousand parameters is planned anew each time.
fn push_id_filter(q: &mut QueryBuilder<'_, Db>, column: &str, ids: &[i64]) {
    q.push(column).push(" = ANY(").push_bind(ids.to_vec()).push(")");
}

include!("common.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_the_password() {
        let options = PgConnectOptions::from_str("postgres://kanta:hunter2@localhost:1/kanta").expect("a URL");
        let pool = PgPoolOptions::new().connect_lazy_with(options);
        let limits = crate::SegmentLimits::default();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let store = PgStore { writer: pool.clone(), reader: pool, limits, slots };
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
