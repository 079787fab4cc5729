//! The embedded SQLite backend: the default store, a single file created on first use.
//!
//! WAL journal with `synchronous = FULL`, so a write acknowledged to a client is on disk and
//! survives `kill -9` and power loss. SQLite allows one writer at a time; instead of letting
//! connections fight over the lock (`SQLITE_BUSY`), all writes go through one connection and
//! reads through a small pool, which WAL lets run beside the writer.
//!
//! Erasure has to reach the bytes of the file, not only its rows. Every connection runs with
//! `secure_delete = ON`, so deleted and overwritten content (cells, free space in pages, pages
//! put on the free list) is overwritten with zeros rather than left for a hex editor. The file
//! uses `auto_vacuum = INCREMENTAL`, and after an erasure commits, `incremental_vacuum` hands
//! the free pages back to the file system and `wal_checkpoint(TRUNCATE)` copies the new page
//! images into the file and empties the WAL, which still held the old ones (every earlier
//! version of a changed page lives in the WAL until a checkpoint resets it). A full `VACUUM`
//! after each erasure would rewrite the whole file (minutes, holding the writer, on a large
//! store) for nothing secure_delete has not already done; incremental vacuum touches only the
//! freed pages. `auto_vacuum` can only be switched on when the file has no tables or by a
//! `VACUUM`, so a file created before it is vacuumed once, when first opened.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Pool, Sqlite};

use crate::dialect::{Budget, Dialect};
use crate::sql::{On, QueryBuilder, Row, Separated, Tx, query};
use crate::store::Store;
use crate::{Purchases, SegmentLimits, StoreError};

/// The schema, oldest migration first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "scores", include_str!("../migrations/sqlite/0002_scores.sql")),
    (3, "segments", include_str!("../migrations/sqlite/0003_segments.sql")),
    (4, "webhooks", include_str!("../migrations/sqlite/0004_webhooks.sql")),
    (5, "value_tier", include_str!("../migrations/sqlite/0005_value_tier.sql")),
    (6, "product_groups", include_str!("../migrations/sqlite/0006_product_groups.sql")),
    (7, "idempotency_expiry", include_str!("../migrations/sqlite/0007_idempotency_expiry.sql")),
    (8, "run_status", include_str!("../migrations/sqlite/0008_run_status.sql")),
    (9, "inbound_seen", include_str!("../migrations/sqlite/0009_inbound_seen.sql")),
    (10, "journeys", include_str!("../migrations/sqlite/0010_journeys.sql")),
    (11, "journey_feed", include_str!("../migrations/sqlite/0011_journey_feed.sql")),
    (12, "journey_triggers", include_str!("../migrations/sqlite/0012_journey_triggers.sql")),
    (13, "journey_goals", include_str!("../migrations/sqlite/0013_journey_goals.sql")),
    (14, "dashboard", include_str!("../migrations/sqlite/0014_dashboard.sql")),
    (15, "dashboard_counts", include_str!("../migrations/sqlite/0015_dashboard_counts.sql")),
];

impl Store<Sqlite> {
    /// Open `sqlite://PATH` (created if missing) or `sqlite::memory:`, and migrate it.
    pub(crate) async fn open_sqlite(url: &str, limits: SegmentLimits) -> Result<Store<Sqlite>, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Deleted content is overwritten with zeros (erasure; see the module comment).
            .pragma("secure_delete", "ON");
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            // SQLite's default page cache is 2 MiB; a scoring run rewrites millions of score
            // rows in one transaction. Up to 128 MiB for the one writer, used only when needed.
            // Incremental auto-vacuum takes effect on a new file (set before its first table).
            .connect_with(options.clone().auto_vacuum(SqliteAutoVacuum::Incremental).pragma("cache_size", "-131072"))
            .await?;
        crate::migrator(MIGRATIONS).run(&writer).await?;
        if !memory {
            // A file created before incremental auto-vacuum (0 = none) is switched over by
            // rewriting it once; this also clears what earlier deletions left in free pages.
            let mode: i64 = query::<Sqlite>("PRAGMA auto_vacuum").fetch_one(&writer).await?.try_get(0)?;
            if mode != 2 {
                query::<Sqlite>("PRAGMA auto_vacuum = INCREMENTAL").execute(&writer).await?;
                query::<Sqlite>("VACUUM").execute(&writer).await?;
                query::<Sqlite>("PRAGMA wal_checkpoint(TRUNCATE)").execute(&writer).await?;
            }
        }
        // An in-memory database exists per connection, so it is read through the writer.
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new().max_connections(4).connect_with(options.clone().read_only(true)).await?
        };
        let file = (!memory).then(|| options.get_filename().to_path_buf());
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.slots.max(1)));
        Ok(Store { writer, reader, file, limits, slots })
    }
}

impl Dialect for Sqlite {
    const KIND: crate::Backend = crate::Backend::Sqlite;
    const SEGMENTS: kanta_segment::Dialect = kanta_segment::Dialect::Sqlite;
    /// RFC 7396 merge patch of the posted attributes into the stored ones.
    const MERGE_ATTRIBUTES: &'static str = "CASE WHEN excluded.attributes IS NULL THEN customers.attributes \
         ELSE json_patch(COALESCE(customers.attributes, '{}'), excluded.attributes) END";
    const CONTAINS: &'static str = "instr";
    /// Nothing: all writes go through the one writer connection, so a claim's
    /// `UPDATE … WHERE id IN (SELECT …)` runs alone.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const SKIP_LOCKED: &'static str = "";
    /// Nothing: the one writer serialises every write transaction already.
    const LOCK_ROW: &'static str = "";
    const BYTE_ORDER: &'static str = "";

    type Budgeted = Budgeted;
    type TxBudget = TxBudget;

    /// JSON goes in as text, normalised by `json()` so stored text compares equal to what
    /// `json_patch` produces.
    fn push_json<'a, T: serde::Serialize + Send + 'a>(b: &mut Separated<'_, 'a, Self>, value: Option<Json<T>>) {
        let b = b.raw();
        b.push("json(");
        b.push_bind_unseparated(value);
        b.push_unseparated(")");
    }

    /// `column IN (…)` with one bound value per id (SQLite has no array parameters; it looks
    /// each up in the column's index).
    fn push_id_filter(q: &mut QueryBuilder<'_, Self>, column: &str, ids: &[i64]) {
        q.push(column).push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
    }

    fn push_attribute_text(q: &mut QueryBuilder<'_, Self>, key: &str) {
        // A quoted path member, so a key with a dot is one key; journey documents allow only
        // slugs, whose characters need no escaping inside the quotes.
        q.push("json_extract(c.attributes, ").push_bind(format!("$.\"{key}\"")).push(")");
    }

    /// SQLite has a single writer already: ids commit in order.
    async fn serialize_log_writers(_tx: &mut Tx<Self>, _lock: &'static str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Dropping the returned guard before [`Dialect::disarm_tx`] (the transaction is then
    /// rolled back) lets the running statement finish rather than interrupting it: the writer
    /// connection is reused, and an armed handler left behind would interrupt the next writes.
    async fn arm_tx(tx: &mut Tx<Self>, budget: Duration) -> Result<TxBudget, StoreError> {
        let armed = Arc::new(AtomicBool::new(true));
        let live = armed.clone();
        let deadline = Instant::now() + budget;
        (**tx)
            .lock_handle()
            .await?
            .set_progress_handler(1_000, move || !live.load(Ordering::Relaxed) || Instant::now() < deadline);
        Ok(TxBudget { armed })
    }

    async fn disarm_tx(tx: &mut Tx<Self>, budget: TxBudget) -> Result<(), StoreError> {
        (**tx).lock_handle().await?.remove_progress_handler();
        drop(budget);
        Ok(())
    }

    /// An interrupted statement (`SQLITE_INTERRUPT`, 9) as [`StoreError::TooCostly`].
    fn over_budget(e: sqlx::Error, budget: Duration) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("9") => StoreError::TooCostly(budget),
            _ => e.into(),
        }
    }

    /// Return the free pages to the file system and move the new page images from the WAL into
    /// the file, emptying the WAL (which held the erased data in older page images). A
    /// checkpoint blocked by a long read is retried for a while; if it still cannot finish, the
    /// next one (SQLite checkpoints on its own) completes it.
    async fn after_erasure(writer: &Pool<Self>) -> Result<(), StoreError> {
        query::<Sqlite>("PRAGMA incremental_vacuum").execute(writer).await?;
        for _ in 0..50 {
            let busy: i64 = query::<Sqlite>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(writer).await?.try_get(0)?;
            if busy == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// SQLite scores in memory: its scan of the file outruns any SQL for this.
    async fn pushdown_connection(_store: &Store<Self>) -> Result<Option<crate::PushdownConnection>, StoreError> {
        Ok(None)
    }

    /// A file is read directly, on two threads ([`crate::sqlite_scan`]); an in-memory database
    /// exists only inside the driver's connection, so it is read through it.
    async fn purchases(
        store: &Store<Self>,
        lines: bool,
        sink: &mut (dyn FnMut(Purchases) + Send),
    ) -> Result<(), StoreError> {
        let Some(file) = store.file.clone() else {
            return crate::orders::aggregated_purchases(&store.reader, lines, sink).await;
        };
        let max: Option<i64> =
            query::<Sqlite>("SELECT MAX(id) FROM orders").fetch_one(&store.reader).await?.try_get(0)?;
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
            Err(e) => Err(StoreError::Worker(e.to_string())),
        }
    }
}

/// A read connection whose statements are interrupted past a deadline, and also when this value
/// is dropped before [`Budget::finish`] (the caller stopped waiting: an HTTP client went
/// away). SQLite has no statement timeout; its progress handler, called every thousand virtual
/// machine instructions, answers whether to go on.
pub(crate) struct Budgeted {
    conn: PoolConnection<Sqlite>,
    /// Set on drop: stop the statement that is running.
    abandoned: Arc<AtomicBool>,
    budget: Duration,
    finished: bool,
}

impl Budget<Sqlite> for Budgeted {
    async fn acquire(pool: &Pool<Sqlite>, budget: Duration) -> Result<Budgeted, StoreError> {
        let mut conn = pool.acquire().await?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = abandoned.clone();
        let deadline = Instant::now() + budget;
        conn.lock_handle()
            .await?
            .set_progress_handler(1_000, move || !stop.load(Ordering::Relaxed) && Instant::now() < deadline);
        Ok(Budgeted { conn, abandoned, budget, finished: false })
    }

    fn conn(&mut self) -> On<'_, Sqlite> {
        On::Conn(&mut *self.conn)
    }

    /// Disarms the connection (it goes back to the pool clean) and names an interruption.
    async fn finish<T: Send>(mut self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        self.conn.lock_handle().await?.remove_progress_handler();
        self.finished = true;
        result.map_err(|e| Sqlite::over_budget(e, self.budget))
    }
}

impl Drop for Budgeted {
    fn drop(&mut self) {
        if !self.finished {
            // Interrupt the statement, and never hand this connection (still armed) to anyone.
            self.abandoned.store(true, Ordering::Relaxed);
            self.conn.close_on_drop();
        }
    }
}

/// The budget armed on a write transaction ([`Dialect::arm_tx`]); dropping it lets the running
/// statement finish.
pub(crate) struct TxBudget {
    armed: Arc<AtomicBool>,
}

impl Drop for TxBudget {
    fn drop(&mut self) {
        self.armed.store(false, Ordering::Relaxed);
    }
}
