//! The query API the aggregate modules are written against: sqlx's own shapes (`query(…)
//! .bind(…).fetch_all(…)`, `QueryBuilder`, `row.try_get(…)`), over any database that implements
//! [`Driver`] — SQLite and PostgreSQL.
//!
//! Why not sqlx's generic API directly: code generic over `DB: sqlx::Database` has to prove, in
//! every generic function and impl, that each Rust type it binds or reads encodes for `DB`
//! (`i64: Encode<'q, DB> + Type<DB>`, …) and that `&mut DB::Connection` is an executor. Rust does
//! not carry such bounds from a trait's where-clause to the trait's users (rust-lang/rust#20671),
//! so each of the store's generic functions would repeat a dozen lines of them. Here they are
//! stated once, against the two concrete drivers: [`Value`] means "binds on SQLite and on
//! PostgreSQL", [`Column`] "reads from both", and [`Driver`]'s methods, written out per driver,
//! are the only calls into sqlx's generic query code. The wrappers are thin: the same sqlx calls
//! run, with no boxing or conversion of values or rows.

use std::fmt::Display;

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{ColumnIndex, Database, Decode, Encode, Pool, Postgres, Sqlite, Transaction, Type};

/// A write transaction on `DB`.
pub(crate) type Tx<DB> = Transaction<'static, DB>;

/// sqlx's query with its SQL borrowed for `'q` and its arguments for `'a`.
type RawQuery<'q, 'a, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'a>>;

/// A Rust value that binds as a parameter on both databases.
pub(crate) trait Value<'q>:
    'q + Send + Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres>
{
}

impl<'q, T> Value<'q> for T where
    T: 'q + Send + Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres>
{
}

/// A Rust value that reads from a column on both databases.
pub(crate) trait Column<'r>: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres> {}

impl<'r, T> Column<'r> for T where T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres> {}

/// A column position (`usize`) or name (`&str`), on both databases.
pub(crate) trait Index: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

impl<I> Index for I where I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

/// A result row: `row.try_get::<T, _>(index)`, as with `sqlx::Row`.
pub(crate) trait Row {
    /// The value of a column.
    fn try_get<'r, T: Column<'r>, I: Index>(&'r self, index: I) -> Result<T, sqlx::Error>;
}

impl Row for SqliteRow {
    fn try_get<'r, T: Column<'r>, I: Index>(&'r self, index: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

impl Row for PgRow {
    fn try_get<'r, T: Column<'r>, I: Index>(&'r self, index: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

/// Where a statement runs: a pool, or one connection (of a transaction, or taken from a pool).
pub(crate) enum On<'c, DB: Database> {
    /// Any connection of the pool.
    Pool(&'c Pool<DB>),
    /// This connection.
    Conn(&'c mut DB::Connection),
}

/// What a statement can run on: `&pool`, `&mut tx`, `&mut pooled_connection`.
pub(crate) trait Exec<'c, DB: Database> {
    /// The place to run on.
    fn on(self) -> On<'c, DB>;
}

impl<'c, DB: Database> Exec<'c, DB> for &'c Pool<DB> {
    fn on(self) -> On<'c, DB> {
        On::Pool(self)
    }
}

impl<'c, 't, DB: Database> Exec<'c, DB> for &'c mut Transaction<'t, DB> {
    fn on(self) -> On<'c, DB> {
        On::Conn(&mut **self)
    }
}

impl<'c, DB: Database> Exec<'c, DB> for &'c mut PoolConnection<DB> {
    fn on(self) -> On<'c, DB> {
        On::Conn(&mut **self)
    }
}

impl<'c, DB: Database> Exec<'c, DB> for On<'c, DB> {
    fn on(self) -> On<'c, DB> {
        self
    }
}

/// The calls into sqlx's generic query code, written out for each driver (see the module
/// comment for why). Every method is one sqlx call.
pub(crate) trait Driver: Database<Row: Row> {
    /// `query.bind(value)`.
    fn bind<'q, T: Value<'q>>(query: RawQuery<'q, 'q, Self>, value: T) -> RawQuery<'q, 'q, Self>;

    /// `separated.push_bind(value)`.
    fn push_bind<'a, T: Value<'a>>(b: &mut sqlx::query_builder::Separated<'_, 'a, Self, &'static str>, value: T);

    /// `builder.push_bind(value)`.
    fn builder_bind<'a, T: Value<'a>>(b: &mut sqlx::QueryBuilder<'a, Self>, value: T);

    /// `query.execute(on)`: the number of rows affected.
    fn execute<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<u64, sqlx::Error>>;

    /// `query.fetch_all(on)`.
    fn fetch_all<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;

    /// `query.fetch_optional(on)`.
    fn fetch_optional<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;
}

impl Driver for Sqlite {
    fn bind<'q, T: Value<'q>>(query: RawQuery<'q, 'q, Self>, value: T) -> RawQuery<'q, 'q, Self> {
        query.bind(value)
    }

    fn push_bind<'a, T: Value<'a>>(b: &mut sqlx::query_builder::Separated<'_, 'a, Self, &'static str>, value: T) {
        b.push_bind(value);
    }

    fn builder_bind<'a, T: Value<'a>>(b: &mut sqlx::QueryBuilder<'a, Self>, value: T) {
        b.push_bind(value);
    }

    fn execute<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<u64, sqlx::Error>> {
        // SQLite's arguments borrow for `'a`; the statement runs within `'q`.
        let query: RawQuery<'q, 'q, Self> = query;
        Box::pin(async move {
            let done = match on {
                On::Pool(pool) => query.execute(pool).await?,
                On::Conn(conn) => query.execute(conn).await?,
            };
            Ok(done.rows_affected())
        })
    }

    fn fetch_all<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
        let query: RawQuery<'q, 'q, Self> = query;
        Box::pin(async move {
            match on {
                On::Pool(pool) => query.fetch_all(pool).await,
                On::Conn(conn) => query.fetch_all(conn).await,
            }
        })
    }

    fn fetch_optional<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>> {
        let query: RawQuery<'q, 'q, Self> = query;
        Box::pin(async move {
            match on {
                On::Pool(pool) => query.fetch_optional(pool).await,
                On::Conn(conn) => query.fetch_optional(conn).await,
            }
        })
    }
}

impl Driver for Postgres {
    fn bind<'q, T: Value<'q>>(query: RawQuery<'q, 'q, Self>, value: T) -> RawQuery<'q, 'q, Self> {
        query.bind(value)
    }

    fn push_bind<'a, T: Value<'a>>(b: &mut sqlx::query_builder::Separated<'_, 'a, Self, &'static str>, value: T) {
        b.push_bind(value);
    }

    fn builder_bind<'a, T: Value<'a>>(b: &mut sqlx::QueryBuilder<'a, Self>, value: T) {
        b.push_bind(value);
    }

    fn execute<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let done = match on {
                On::Pool(pool) => query.execute(pool).await?,
                On::Conn(conn) => query.execute(conn).await?,
            };
            Ok(done.rows_affected())
        })
    }

    fn fetch_all<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(async move {
            match on {
                On::Pool(pool) => query.fetch_all(pool).await,
                On::Conn(conn) => query.fetch_all(conn).await,
            }
        })
    }

    fn fetch_optional<'e, 'q: 'e, 'a: 'q, 'c: 'e>(
        query: RawQuery<'q, 'a, Self>,
        on: On<'c, Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>> {
        Box::pin(async move {
            match on {
                On::Pool(pool) => query.fetch_optional(pool).await,
                On::Conn(conn) => query.fetch_optional(conn).await,
            }
        })
    }
}

/// A statement with its parameters (`sqlx::query`).
pub(crate) struct Query<'q, 'a, DB: Database>(RawQuery<'q, 'a, DB>);

/// A statement; bind its parameters in order with [`Query::bind`].
pub(crate) fn query<DB: Database>(sql: &str) -> Query<'_, '_, DB> {
    Query(sqlx::query(sql))
}

/// What an `execute` did.
pub(crate) struct Done(u64);

impl Done {
    /// Rows inserted, updated or deleted.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl<'q, DB: Driver> Query<'q, 'q, DB> {
    /// Bind the next parameter.
    pub(crate) fn bind<T: Value<'q>>(self, value: T) -> Self {
        Query(DB::bind(self.0, value))
    }
}

impl<'q, 'a: 'q, DB: Driver> Query<'q, 'a, DB> {
    /// Run the statement.
    pub(crate) async fn execute<'c>(self, on: impl Exec<'c, DB>) -> Result<Done, sqlx::Error> {
        DB::execute(self.0, on.on()).await.map(Done)
    }

    /// Every row.
    pub(crate) async fn fetch_all<'c>(self, on: impl Exec<'c, DB>) -> Result<Vec<DB::Row>, sqlx::Error> {
        DB::fetch_all(self.0, on.on()).await
    }

    /// The first row, if there is one.
    pub(crate) async fn fetch_optional<'c>(self, on: impl Exec<'c, DB>) -> Result<Option<DB::Row>, sqlx::Error> {
        DB::fetch_optional(self.0, on.on()).await
    }

    /// The first row; [`sqlx::Error::RowNotFound`] without one.
    pub(crate) async fn fetch_one<'c>(self, on: impl Exec<'c, DB>) -> Result<DB::Row, sqlx::Error> {
        self.fetch_optional(on).await?.ok_or(sqlx::Error::RowNotFound)
    }
}

/// A statement assembled piece by piece (`sqlx::QueryBuilder`), each driver writing its own
/// placeholders.
pub(crate) struct QueryBuilder<'a, DB: Database>(sqlx::QueryBuilder<'a, DB>);

impl<'a, DB: Driver> QueryBuilder<'a, DB> {
    /// Start with `init`.
    pub(crate) fn new(init: impl Into<String>) -> Self {
        QueryBuilder(sqlx::QueryBuilder::new(init))
    }

    /// Append SQL text (never a value: values are bound).
    pub(crate) fn push(&mut self, sql: impl Display) -> &mut Self {
        self.0.push(sql);
        self
    }

    /// Append a placeholder bound to `value`.
    pub(crate) fn push_bind<T: Value<'a>>(&mut self, value: T) -> &mut Self {
        DB::builder_bind(&mut self.0, value);
        self
    }

    /// A list separated by `separator`.
    pub(crate) fn separated(&mut self, separator: &'static str) -> Separated<'_, 'a, DB> {
        Separated(self.0.separated(separator))
    }

    /// A `VALUES` clause, one tuple per item.
    pub(crate) fn push_values<I, F>(&mut self, tuples: I, mut push_tuple: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Separated<'_, 'a, DB>, I::Item),
    {
        self.0.push_values(tuples, |b, item| push_tuple(Separated(b), item));
        self
    }

    /// The driver's builder, for a backend's own additions.
    pub(crate) fn raw(&mut self) -> &mut sqlx::QueryBuilder<'a, DB> {
        &mut self.0
    }

    /// The statement.
    pub(crate) fn build(&mut self) -> Query<'_, 'a, DB> {
        Query(self.0.build())
    }
}

/// A comma-separated list or tuple of a [`QueryBuilder`].
pub(crate) struct Separated<'b, 'a, DB: Database>(sqlx::query_builder::Separated<'b, 'a, DB, &'static str>);

impl<'b, 'a, DB: Driver> Separated<'b, 'a, DB> {
    /// Append a placeholder bound to `value`, after a separator.
    pub(crate) fn push_bind<T: Value<'a>>(&mut self, value: T) -> &mut Self {
        DB::push_bind(&mut self.0, value);
        self
    }

    /// The driver's list, for a backend's own additions.
    pub(crate) fn raw(&mut self) -> &mut sqlx::query_builder::Separated<'b, 'a, DB, &'static str> {
        &mut self.0
    }
}
