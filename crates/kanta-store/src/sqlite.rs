//! The embedded SQLite backend: the default store, a single file created on first use.
//!
//! WAL journal with `synchronous = FULL`, so a write acknowledged to a client is on disk and
//! survives `kill -9` and power loss. SQLite allows one writer at a time; instead of letting
//! connections fight over the lock (`SQLITE_BUSY`), all writes go through one connection and
//! reads through a small pool, which WAL lets run beside the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

type Db = Sqlite;

const BACKEND: crate::Backend = crate::Backend::Sqlite;
const DIALECT: kanta_segment::Dialect = kanta_segment::Dialect::Sqlite;

/// RFC 7396 merge patch of the posted attributes into the stored ones.
const MERGE_ATTRIBUTES: &str = "CASE WHEN excluded.attributes IS NULL THEN customers.attributes \
     ELSE json_patch(COALESCE(customers.attributes, '{}'), excluded.attributes) END";

/// JSON goes in as text, normalised by `json()` so stored text compares equal to what
/// `json_patch` produces.
fn push_json<'a, T: serde::Serialize + 'a + Send>(
    b: &mut Separated<'_, 'a, Db, &'static str>,
    value: Option<sqlx::types::Json<T>>,
) {
    b.push("json(");
    b.push_bind_unseparated(value);
    b.push_unseparated(")");
}

/// The schema, oldest migration first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "scores", include_str!("../migrations/sqlite/0002_scores.sql")),
    (3, "segments", include_str!("../migrations/sqlite/0003_segments.sql")),
    (4, "webhooks", include_str!("../migrations/sqlite/0004_webhooks.sql")),
    (5, "value_tier", include_str!("../migrations/sqlite/0005_value_tier.sql")),
    (6, "product_groups", include_str!("../migrations/sqlite/0006_product_groups.sql")),
];

/// The SQLite store.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
}

type Store = SqliteStore;

// `Debug` output ends up in logs: show the backend only, never connection details.
impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open `sqlite://PATH` (created if missing) or `sqlite::memory:`, and migrate it.
    pub(crate) async fn open(url: &str) -> Result<SqliteStore, crate::StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            // SQLite's default page cache is 2 MiB; a scoring run rewrites millions of score
            // rows in one transaction. Up to 128 MiB for the one writer, used only when needed.
            .connect_with(options.clone().pragma("cache_size", "-131072"))
            .await?;
        crate::migrator(MIGRATIONS).run(&writer).await?;
        // An in-memory database exists per connection, so it is read through the writer.
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?
        };
        Ok(SqliteStore { writer, reader })
    }
}

include!("common.rs");
