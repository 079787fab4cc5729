//! Where SQLite and PostgreSQL differ, as one trait each backend module implements for its
//! sqlx driver type (`sqlite.rs` for `sqlx::Sqlite`, `postgres.rs` for `sqlx::Postgres`).
//!
//! Everything else — the SQL of every aggregate, its batching, its row mapping — is written once
//! in the aggregate modules, generic over `DB: Dialect`: both dialects accept `ON CONFLICT … DO
//! UPDATE … WHERE`, `RETURNING`, `IS DISTINCT FROM` and `CAST(… AS BIGINT)`, and the drivers
//! write their own placeholders. What cannot be shared is here, so a reader finds every
//! difference in one place and no aggregate module branches on the backend.

use std::future::Future;
use std::time::Duration;

use sqlx::Pool;
use sqlx::types::Json;

use crate::sql::{Driver, On, QueryBuilder, Separated, Tx};
use crate::store::Store;
use crate::{Purchases, StoreError};

/// A database kanta runs on: its driver ([`Driver`]) and its differences.
pub(crate) trait Dialect: Driver {
    /// Which backend this is.
    const KIND: crate::Backend;

    /// How segment expressions compile for it.
    const SEGMENTS: kanta_segment::Dialect;

    /// The RFC 7396 merge patch of `excluded.attributes` into `customers.attributes`.
    const MERGE_ATTRIBUTES: &'static str;

    /// The function `f(haystack, needle)` that is positive when a text contains another (bound,
    /// not a pattern): `instr`, `strpos`.
    const CONTAINS: &'static str;

    /// The statement that opens a journey write transaction. SQLite's plain `BEGIN` takes the
    /// write lock only at the first write, and a transaction that read first then fails at once
    /// (`SQLITE_BUSY`, no waiting) if another process wrote meanwhile — `kanta journeys` on the
    /// command line beside a running server; `BEGIN IMMEDIATE` takes the lock up front and waits
    /// for it like any other write.
    const BEGIN_WRITE: &'static str;

    /// What follows the row selection of a claim (`SELECT id … LIMIT n` inside `UPDATE … WHERE
    /// id IN (…)`), so that concurrent claimers never take the same row.
    const SKIP_LOCKED: &'static str;

    /// What follows a `SELECT` of one row to lock it until the transaction ends (a journey's
    /// head while a new version is written, a customer while a run is started), where
    /// concurrent writers would otherwise both pass a check before either inserts.
    const LOCK_ROW: &'static str;

    /// What follows a text expression to compare it in byte order (prefix searches as range
    /// scans): nothing in SQLite, whose default collation is byte order; `COLLATE "C"` in
    /// PostgreSQL, whose database collation may not be.
    const BYTE_ORDER: &'static str;

    /// A read connection whose statements stop at a time budget ([`Budget`]).
    type Budgeted: Budget<Self>;

    /// A time budget armed on a write transaction ([`Dialect::arm_tx`]).
    type TxBudget: Send;

    /// Bind a JSON value into a `VALUES` tuple, as the backend stores JSON.
    fn push_json<'a, T: serde::Serialize + Send + 'a>(b: &mut Separated<'_, 'a, Self>, value: Option<Json<T>>);

    /// `column` is one of `ids`, bound the way the backend plans best.
    fn push_id_filter(q: &mut QueryBuilder<'_, Self>, column: &str, ids: &[i64]);

    /// The text of the customer's attribute `key` (`c.attributes`, the row of `customers c`),
    /// with the key bound: NULL when absent; numbers come out as their text.
    fn push_attribute_text(q: &mut QueryBuilder<'_, Self>, key: &str);

    /// Make the ids of a log that webhooks follow by id commit in order: called by each writer
    /// of the log, inside its transaction, before it inserts; `lock` is the statement that
    /// takes the log's lock where one is needed (`LOCK TABLE … IN EXCLUSIVE MODE`).
    fn serialize_log_writers(
        tx: &mut Tx<Self>,
        lock: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Arm `budget` on a write transaction (a segment refresh holds the writer, so it must not
    /// run unbounded); [`Dialect::disarm_tx`] takes it off again.
    fn arm_tx(tx: &mut Tx<Self>, budget: Duration) -> impl Future<Output = Result<Self::TxBudget, StoreError>> + Send;

    /// Take an armed budget off the transaction.
    fn disarm_tx(tx: &mut Tx<Self>, budget: Self::TxBudget) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A statement stopped by its budget as [`StoreError::TooCostly`]; any other error as is.
    fn over_budget(e: sqlx::Error, budget: Duration) -> StoreError;

    /// After an erasure has committed: make the erased bytes unreadable where the backend can.
    fn after_erasure(writer: &Pool<Self>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`crate::ScoreStore::pushdown_connection`]: a connection of its own for a push-down
    /// scoring run, where the backend has one (PostgreSQL).
    fn pushdown_connection(
        store: &Store<Self>,
    ) -> impl Future<Output = Result<Option<crate::PushdownConnection>, StoreError>> + Send;

    /// [`crate::OrderStore::purchases`]: the backend's fastest way through every order.
    fn purchases(
        store: &Store<Self>,
        lines: bool,
        sink: &mut (dyn FnMut(Purchases) + Send),
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A read connection with a time budget for its statements (segment previews and counts).
pub(crate) trait Budget<DB: Dialect>: Send + Sized {
    /// Take a connection from `pool` and arm `budget` on it.
    fn acquire(pool: &Pool<DB>, budget: Duration) -> impl Future<Output = Result<Self, StoreError>> + Send;

    /// Where to run the statements.
    fn conn(&mut self) -> On<'_, DB>;

    /// Disarm the connection and name an interruption ([`StoreError::TooCostly`]).
    fn finish<T: Send>(self, result: Result<T, sqlx::Error>) -> impl Future<Output = Result<T, StoreError>> + Send;
}
