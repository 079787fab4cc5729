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
];

/// The PostgreSQL store.
#[derive(Clone)]
pub(crate) struct PgStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
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
    pub(crate) async fn open(url: &str) -> Result<PgStore, crate::StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        crate::migrator(MIGRATIONS).run(&pool).await?;
        Ok(PgStore { writer: pool.clone(), reader: pool })
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

include!("common.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_output_never_shows_the_password() {
        let options = PgConnectOptions::from_str("postgres://kanta:hunter2@localhost:1/kanta").expect("a URL");
        let pool = PgPoolOptions::new().connect_lazy_with(options);
        let store = PgStore { writer: pool.clone(), reader: pool };
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
