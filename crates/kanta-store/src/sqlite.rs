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
    (7, "run_status", include_str!("../migrations/sqlite/0007_run_status.sql")),
];

/// The SQLite store.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
    /// The database file, for the scoring job's direct read (`None`: in memory).
    file: Option<std::path::PathBuf>,
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
            SqlitePoolOptions::new().max_connections(4).connect_with(options.clone().read_only(true)).await?
        };
        let file = (!memory).then(|| options.get_filename().to_path_buf());
        Ok(SqliteStore { writer, reader, file })
    }

    /// [`crate::Storage::purchases`]: a file is read directly, on two threads
    /// ([`crate::sqlite_scan`]); an in-memory database exists only inside the driver's
    /// connection, so it is read through it.
    async fn read_purchases(
        &self,
        lines: bool,
        sink: &mut (dyn FnMut(crate::Purchases) + Send),
    ) -> Result<(), crate::StoreError> {
        let Some(file) = self.file.clone() else {
            return self.aggregated_purchases(lines, sink).await;
        };
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM orders").fetch_one(&self.reader).await?;
        let Some(max) = max else { return Ok(()) };
        // Two chunks in the channel keep the reading threads ahead of the sink.
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let scan = tokio::task::spawn_blocking(move || crate::sqlite_scan::purchases(&file, max, lines, &tx));
        while let Some(chunk) = rx.recv().await {
            sink(chunk);
        }
        match scan.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(crate::StoreError::Worker(e.to_string())),
        }
    }
}

include!("common.rs");
