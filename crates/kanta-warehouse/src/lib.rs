//! Push-down: `kanta analyze` and `kanta score` computed where the orders are, in PostgreSQL
//! (or Citus, or the store itself) or Spark, moving only sufficient statistics.
//!
//! The buy-till-you-die models need each customer's (x, t_x, T) and, for spend, (x, z̄), and
//! customers with the same ones are interchangeable. So the engine aggregates the order log
//! into the per-customer summary (the same definitions as a file read: purchase days, returns,
//! zero amounts, `--as-of`) and the report's small aggregates; kanta pulls the distinct
//! histories and spend keys with their counts ([`kanta_score::Sufficient`]), fits and predicts
//! on them locally ([`kanta_score::fit_and_predict`]), writes the predictions per history back
//! as one small table, and one statement joins it into a per-customer score table in the engine,
//! where each customer's expected spend comes from the spend model's three parameters. No
//! per-customer row crosses the network, except for `--download`.
//!
//! The modules: [`dialect`] (quoting, binding, the engines' functions), [`plan`] (every
//! statement, written once over a dialect), [`run`] (the steps and what moved), [`postgres`]
//! (the engine over one `sqlx` connection), [`spark`] (Spark Connect: gRPC over HTTP/2, Arrow
//! IPC).

pub mod dialect;
pub mod plan;
pub mod postgres;
pub mod run;
pub mod spark;

use async_trait::async_trait;

pub use dialect::{ColumnType, Dialect, Param, Sql, SqlType};
pub use run::{Options, Outcome, Source, Stats, WarehouseError, WrongType, analyze, download};

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
}

/// A column of values to load into the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// BIGINT (NULL for `None`).
    Int(Vec<Option<i64>>),
    /// DOUBLE (NULL for `None`).
    Float(Vec<Option<f64>>),
    /// TEXT.
    Text(Vec<String>),
}

impl Values {
    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SQL type of the column.
    pub fn ty(&self) -> SqlType {
        match self {
            Values::Int(_) => SqlType::BigInt,
            Values::Float(_) => SqlType::Double,
            Values::Text(_) => SqlType::Text,
        }
    }
}

/// Why an engine could not do what was asked; every message names the engine (its URL
/// without the password).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be reached or refused the session.
    #[error("cannot connect to {engine}: {message}")]
    Connect {
        /// The engine.
        engine: String,
        /// What the driver said.
        message: String,
    },
    /// The table or query the user named cannot be read.
    #[error("cannot read {source_name} on {engine}: {message}")]
    Source {
        /// The engine.
        engine: String,
        /// `table public.orders` or `the --query`.
        source_name: String,
        /// What the engine said.
        message: String,
    },
    /// A statement of the push-down failed.
    #[error("{engine} failed while {step}: {message}")]
    Statement {
        /// The engine.
        engine: String,
        /// What kanta was doing (`aggregating the orders`, …).
        step: String,
        /// What the engine said.
        message: String,
    },
}

/// An engine the push-down runs in. One session: what [`Dialect::keep`] makes lives as long
/// as the engine value.
#[async_trait]
pub trait Engine: Send {
    /// Its SQL.
    fn dialect(&self) -> Dialect;
    /// Its name in messages: the URL without the password.
    fn name(&self) -> &str;
    /// The columns of `SELECT * FROM source` with their types, without reading rows.
    async fn columns(&mut self, source: &str, source_name: &str) -> Result<Vec<(String, ColumnType)>, EngineError>;
    /// Runs a statement; `step` says what it is for, in messages.
    async fn execute(&mut self, sql: &Sql, step: &str) -> Result<(), EngineError>;
    /// Runs a query and hands each row to `row`, in order.
    async fn for_each(
        &mut self,
        sql: &Sql,
        step: &str,
        row: &mut (dyn FnMut(Vec<Cell>) -> Result<(), String> + Send),
    ) -> Result<(), EngineError>;
    /// Creates the session table `name` (see [`Dialect::keep`]; the name unquoted, the engine
    /// quotes it) with `columns` and their values.
    async fn load(&mut self, name: &str, columns: &[(&str, Values)], step: &str) -> Result<(), EngineError>;
    /// Bytes of result values received so far.
    fn bytes_received(&self) -> u64;
}

/// Runs a query and collects its rows (for the small results of the push-down).
pub async fn query(engine: &mut dyn Engine, sql: &Sql, step: &str) -> Result<Vec<Vec<Cell>>, EngineError> {
    let mut rows = Vec::new();
    engine
        .for_each(sql, step, &mut |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
    Ok(rows)
}

/// Opens the engine at `url`: `postgres://` / `postgresql://`, or `sc://host:port` (Spark
/// Connect).
pub async fn connect(url: &str) -> Result<Box<dyn Engine>, EngineError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::PostgresEngine::connect(url).await?))
    } else if url.starts_with("sc://") {
        Ok(Box::new(spark::SparkEngine::connect(url).await?))
    } else {
        Err(EngineError::Connect {
            engine: kanta_store::redact(url),
            message: "the engine URL must start with postgres://, postgresql:// or sc:// (Spark Connect)".into(),
        })
    }
}
