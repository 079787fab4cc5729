//! The push-down's engine over one PostgreSQL connection (temporary tables live in it).

use async_trait::async_trait;
use futures_util::TryStreamExt;
use std::str::FromStr;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::{Column, ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};

use crate::dialect::{ColumnType, Dialect, Param, Sql};
use crate::{Cell, Engine, EngineError, Values};

/// A PostgreSQL session.
pub struct PostgresEngine {
    conn: Conn,
    name: String,
    bytes: u64,
}

/// The engine's connection: its own, or a store's for a push-down scoring run.
enum Conn {
    Own(PgConnection),
    Store(kanta_store::PushdownConnection),
}

impl Conn {
    fn get(&mut self) -> &mut PgConnection {
        match self {
            Conn::Own(conn) => conn,
            Conn::Store(conn) => conn.connection(),
        }
    }
}

impl PostgresEngine {
    /// Connects to `url`. The push-down's statements are long by design: sqlx's "slow
    /// statement" warnings go to the debug level (`RUST_LOG=sqlx=debug` shows them), and the
    /// session's notices (`DROP TABLE IF EXISTS` of a table that is not there) are not sent.
    pub async fn connect(url: &str) -> Result<PostgresEngine, EngineError> {
        let name = kanta_store::redact(url);
        let connect_error = |e: sqlx::Error| EngineError::Connect { engine: name.clone(), message: e.to_string() };
        let options = PgConnectOptions::from_str(url)
            .map_err(connect_error)?
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(10))
            .options([("client_min_messages", "warning")]);
        let conn = PgConnection::connect_with(&options).await.map_err(connect_error)?;
        Ok(PostgresEngine { conn: Conn::Own(conn), name, bytes: 0 })
    }

    /// The engine over a store's connection (`kanta score` on a PostgreSQL store), named
    /// `name` in messages; [`PostgresEngine::into_store`] gives the connection back, with the
    /// session tables the run left in it.
    pub fn on_store(conn: kanta_store::PushdownConnection, name: String) -> PostgresEngine {
        PostgresEngine { conn: Conn::Store(conn), name, bytes: 0 }
    }

    /// The store's connection this engine ran on, if it ran on one.
    pub fn into_store(self) -> Option<kanta_store::PushdownConnection> {
        match self.conn {
            Conn::Store(conn) => Some(conn),
            Conn::Own(_) => None,
        }
    }

    fn statement_error(&self, step: &str, e: sqlx::Error) -> EngineError {
        EngineError::Statement { engine: self.name.clone(), step: step.to_owned(), message: database_message(&e) }
    }
}

/// The database's own message (with its detail) rather than sqlx's wrapper text.
fn database_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

fn bind<'q>(sql: &'q Sql) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    let mut query = sqlx::query(&sql.text);
    for p in &sql.params {
        query = match *p {
            Param::Int(v) => query.bind(v),
            Param::Float(v) => query.bind(v),
        };
    }
    query
}

fn cells(row: &PgRow, bytes: &mut u64) -> Result<Vec<Cell>, String> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        if raw.is_null() {
            out.push(Cell::Null);
            continue;
        }
        *bytes += raw.as_bytes().map_or(0, |b| b.len() as u64);
        let cell = match column.type_info().name() {
            "INT8" => Cell::Int(row.try_get::<i64, _>(i).map_err(|e| e.to_string())?),
            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(|e| e.to_string())?)),
            "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(|e| e.to_string())?)),
            "FLOAT8" => Cell::Float(row.try_get::<f64, _>(i).map_err(|e| e.to_string())?),
            "TEXT" | "VARCHAR" => Cell::Text(row.try_get::<String, _>(i).map_err(|e| e.to_string())?),
            other => return Err(format!("column {} came back as {other}; the push-down casts every result", i + 1)),
        };
        out.push(cell);
    }
    Ok(out)
}

#[async_trait]
impl Engine for PostgresEngine {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn columns(&mut self, source: &str, source_name: &str) -> Result<Vec<(String, ColumnType)>, EngineError> {
        let text = format!("SELECT * FROM {source} LIMIT 0");
        let described = self.conn.get().describe(&text).await.map_err(|e| EngineError::Source {
            engine: self.name.clone(),
            source_name: source_name.to_owned(),
            message: database_message(&e),
        })?;
        Ok(described
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), ColumnType::postgres(c.type_info().name())))
            .collect())
    }

    async fn execute(&mut self, sql: &Sql, step: &str) -> Result<(), EngineError> {
        tracing::debug!(target: "kanta::warehouse", step, sql = %sql.text, "execute");
        match bind(sql).execute(self.conn.get()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.statement_error(step, e)),
        }
    }

    async fn for_each(
        &mut self,
        sql: &Sql,
        step: &str,
        row: &mut (dyn FnMut(Vec<Cell>) -> Result<(), String> + Send),
    ) -> Result<(), EngineError> {
        tracing::debug!(target: "kanta::warehouse", step, sql = %sql.text, "query");
        let mut bytes = 0;
        let result = async {
            let mut rows = bind(sql).fetch(self.conn.get());
            while let Some(r) = rows.try_next().await.map_err(|e| database_message(&e))? {
                row(cells(&r, &mut bytes)?)?;
            }
            Ok::<(), String>(())
        }
        .await;
        self.bytes += bytes;
        result.map_err(|message| EngineError::Statement { engine: self.name.clone(), step: step.to_owned(), message })
    }

    async fn load(&mut self, name: &str, columns: &[(&str, Values)], step: &str) -> Result<(), EngineError> {
        let d = Dialect::Postgres;
        let name = &d.ident(name);
        let definition: Vec<String> =
            columns.iter().map(|(column, values)| format!("{} {}", d.ident(column), d.ty(values.ty()))).collect();
        for text in [d.drop_kept(name), format!("CREATE TEMPORARY TABLE {name} ({})", definition.join(", "))] {
            self.execute(&Sql { text, params: vec![] }, step).await?;
        }
        // Arrays bound whole and unnested: one statement per chunk, no text to parse.
        let n = columns.first().map_or(0, |(_, v)| v.len());
        const CHUNK: usize = 100_000;
        let unnest: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, v))| {
                let array = match v {
                    Values::Int(_) => "BIGINT[]",
                    Values::Float(_) => "DOUBLE PRECISION[]",
                    Values::Text(_) => "TEXT[]",
                };
                format!("CAST(${} AS {array})", i + 1)
            })
            .collect();
        let text = format!("INSERT INTO {name} SELECT * FROM UNNEST({})", unnest.join(", "));
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            let mut query = sqlx::query(&text);
            for (_, v) in columns {
                query = match v {
                    Values::Int(v) => query.bind(v[start..end].to_vec()),
                    Values::Float(v) => query.bind(v[start..end].to_vec()),
                    Values::Text(v) => query.bind(v[start..end].to_vec()),
                };
            }
            if let Err(e) = query.execute(self.conn.get()).await {
                return Err(self.statement_error(step, e));
            }
        }
        Ok(())
    }

    fn bytes_received(&self) -> u64 {
        self.bytes
    }
}
