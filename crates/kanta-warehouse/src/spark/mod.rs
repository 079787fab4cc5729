//! The push-down's engine over Spark Connect (`sc://host:port`): SQL relations executed in one
//! server session, results read as Arrow IPC batches, kanta's small tables sent as local
//! relations.

mod grpc;
pub mod proto;

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use async_trait::async_trait;

use crate::dialect::{ColumnType, Dialect, Sql};
use crate::{Cell, Engine, EngineError, Values};
use grpc::{Channel, GrpcError};
use proto::{
    Command, CreateDataFrameViewCommand, ExecutePlanRequest, ExecutePlanResponse, LocalRelation, Plan, Relation,
    UserContext, command::CommandType, plan::OpType, relation::RelType,
};

const EXECUTE_PLAN: &str = "/spark.connect.SparkConnectService/ExecutePlan";

/// Rows per local relation sent: the server takes messages up to 128 MiB by default
/// (`spark.connect.grpc.maxInboundMessageSize`); a row of kanta's tables is ~100 bytes.
const ROWS_PER_MESSAGE: usize = 400_000;

/// A Spark Connect session.
pub struct SparkEngine {
    channel: Channel,
    session_id: String,
    name: String,
    bytes: u64,
}

/// `sc://host:port/;param=value` → (host, port); the port defaults to 15002.
fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("sc://").ok_or("a Spark Connect URL starts with sc://")?;
    let authority = rest.split(['/', ';']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| format!("`{port}` is not a port"))?),
        None => (authority, 15002),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    Ok((host.to_owned(), port))
}

/// A random UUID (version 4), as Spark Connect's session ids are.
fn uuid() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

impl SparkEngine {
    /// Connects to `url` and sets the session's time zone to UTC (the day of a timestamp is
    /// its UTC day, as for files).
    pub async fn connect(url: &str) -> Result<SparkEngine, EngineError> {
        let name = url.split(';').next().unwrap_or(url).to_owned();
        let connect_error = |message: String| EngineError::Connect { engine: name.clone(), message };
        let (host, port) = parse_url(url).map_err(connect_error)?;
        let channel = Channel::connect(&host, port).await.map_err(|e| connect_error(e.to_string()))?;
        let session_id = uuid().map_err(connect_error)?;
        let mut engine = SparkEngine { channel, session_id, name: name.clone(), bytes: 0 };
        let utc = Sql { text: "SET TIME ZONE 'UTC'".into(), params: vec![] };
        engine.execute(&utc, "opening the session").await.map_err(|e| match e {
            EngineError::Statement { message, .. } => connect_error(message),
            other => other,
        })?;
        Ok(engine)
    }

    fn request(&self, op: OpType) -> ExecutePlanRequest {
        ExecutePlanRequest {
            session_id: self.session_id.clone(),
            user_context: Some(UserContext { user_id: "kanta".into(), user_name: "kanta".into() }),
            plan: Some(Plan { op_type: Some(op) }),
            client_type: Some(format!("kanta/{}", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Runs `op`, handing each result batch to `batch`.
    async fn run(
        &mut self,
        op: OpType,
        step: &str,
        batch: &mut (dyn FnMut(RecordBatch) -> Result<(), String> + Send),
    ) -> Result<(), EngineError> {
        let request = self.request(op);
        let mut bytes = 0u64;
        let result = self
            .channel
            .server_streaming::<_, ExecutePlanResponse>(EXECUTE_PLAN, &request, &mut |response| {
                let Some(arrow) = response.arrow_batch else { return Ok(()) };
                bytes += arrow.data.len() as u64;
                let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.data), None)
                    .map_err(|e| e.to_string())?;
                for b in reader {
                    batch(b.map_err(|e| e.to_string())?)?;
                }
                Ok(())
            })
            .await;
        self.bytes += bytes;
        result.map_err(|e| EngineError::Statement {
            engine: self.name.clone(),
            step: step.to_owned(),
            message: match e {
                GrpcError::Status { message, .. } => message,
                other => other.to_string(),
            },
        })
    }

    fn sql(text: &str) -> OpType {
        OpType::Root(Relation { rel_type: Some(RelType::Sql(proto::Sql { query: text.to_owned() })) })
    }
}

/// Spark gets no bound values: the dialect writes them into the text.
fn text_of(sql: &Sql) -> Result<&str, String> {
    if sql.params.is_empty() {
        Ok(&sql.text)
    } else {
        Err("a statement for Spark came with bound values (a bug in the plan)".into())
    }
}

/// The cells of row `row` of `batch`.
fn row_cells(batch: &RecordBatch, row: usize) -> Result<Vec<Cell>, String> {
    batch
        .columns()
        .iter()
        .map(|column| {
            if column.is_null(row) {
                return Ok(Cell::Null);
            }
            let any = column.as_any();
            if let Some(a) = any.downcast_ref::<Int64Array>() {
                Ok(Cell::Int(a.value(row)))
            } else if let Some(a) = any.downcast_ref::<Int32Array>() {
                Ok(Cell::Int(i64::from(a.value(row))))
            } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                Ok(Cell::Float(a.value(row)))
            } else if let Some(a) = any.downcast_ref::<StringArray>() {
                Ok(Cell::Text(a.value(row).to_owned()))
            } else {
                Err(format!("a result column came back as {}; the push-down casts every result", column.data_type()))
            }
        })
        .collect()
}

/// An Arrow IPC stream of `columns`' rows `range`.
fn ipc(columns: &[(&str, Values)], range: std::ops::Range<usize>) -> Result<Vec<u8>, String> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, v)| {
            let ty = match v {
                Values::Int(_) => DataType::Int64,
                Values::Float(_) => DataType::Float64,
                Values::Text(_) => DataType::Utf8,
            };
            Field::new(*name, ty, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, v)| -> ArrayRef {
            match v {
                Values::Int(v) => Arc::new(Int64Array::from(v[range.clone()].to_vec())),
                Values::Float(v) => Arc::new(Float64Array::from(v[range.clone()].to_vec())),
                Values::Text(v) => Arc::new(StringArray::from(v[range.clone()].to_vec())),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|e| e.to_string())?;
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[async_trait]
impl Engine for SparkEngine {
    fn dialect(&self) -> Dialect {
        Dialect::Spark
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn columns(&mut self, source: &str, source_name: &str) -> Result<Vec<(String, ColumnType)>, EngineError> {
        let mut out = Vec::new();
        let op = Self::sql(&format!("DESCRIBE QUERY SELECT * FROM {source}"));
        let result = self
            .run(op, "reading the columns", &mut |batch| {
                for row in 0..batch.num_rows() {
                    let cells = row_cells(&batch, row)?;
                    if let (Some(Cell::Text(name)), Some(Cell::Text(ty))) = (cells.first(), cells.get(1)) {
                        out.push((name.clone(), ColumnType::spark(ty)));
                    }
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(out),
            Err(EngineError::Statement { engine, message, .. }) => {
                Err(EngineError::Source { engine, source_name: source_name.to_owned(), message })
            }
            Err(other) => Err(other),
        }
    }

    async fn execute(&mut self, sql: &Sql, step: &str) -> Result<(), EngineError> {
        tracing::debug!(target: "kanta::warehouse", step, sql = %sql.text, "execute");
        let text = text_of(sql).map_err(|message| EngineError::Statement {
            engine: self.name.clone(),
            step: step.to_owned(),
            message,
        })?;
        self.run(Self::sql(text), step, &mut |_| Ok(())).await
    }

    async fn for_each(
        &mut self,
        sql: &Sql,
        step: &str,
        row: &mut (dyn FnMut(Vec<Cell>) -> Result<(), String> + Send),
    ) -> Result<(), EngineError> {
        tracing::debug!(target: "kanta::warehouse", step, sql = %sql.text, "query");
        let text = text_of(sql).map_err(|message| EngineError::Statement {
            engine: self.name.clone(),
            step: step.to_owned(),
            message,
        })?;
        self.run(Self::sql(text), step, &mut |batch| {
            for r in 0..batch.num_rows() {
                row(row_cells(&batch, r)?)?;
            }
            Ok(())
        })
        .await
    }

    async fn load(&mut self, name: &str, columns: &[(&str, Values)], step: &str) -> Result<(), EngineError> {
        let n = columns.first().map_or(0, |(_, v)| v.len());
        let d = Dialect::Spark;
        let mut parts = Vec::new();
        // At least one part, so an empty table still has its columns.
        let chunks: Vec<std::ops::Range<usize>> =
            (0..n.max(1)).step_by(ROWS_PER_MESSAGE).map(|s| s..(s + ROWS_PER_MESSAGE).min(n)).collect();
        for (i, range) in chunks.into_iter().enumerate() {
            let data = ipc(columns, range).map_err(|message| EngineError::Statement {
                engine: self.name.clone(),
                step: step.to_owned(),
                message,
            })?;
            let part = format!("{name}_part{i}");
            let command = Command {
                command_type: Some(CommandType::CreateDataframeView(CreateDataFrameViewCommand {
                    input: Some(Relation {
                        rel_type: Some(RelType::LocalRelation(LocalRelation { data: Some(data), schema: None })),
                    }),
                    name: part.clone(),
                    is_global: false,
                    replace: true,
                })),
            };
            self.run(OpType::Command(command), step, &mut |_| Ok(())).await?;
            parts.push(format!("SELECT * FROM {}", d.ident(&part)));
        }
        let select = parts.join(" UNION ALL ");
        let name = &d.ident(name);
        for text in [d.drop_kept(name), d.keep(name, &select)] {
            self.execute(&Sql { text, params: vec![] }, step).await?;
        }
        Ok(())
    }

    fn bytes_received(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_connect_urls_name_a_host_and_port() {
        assert_eq!(parse_url("sc://127.0.0.1:15003").unwrap(), ("127.0.0.1".into(), 15003));
        assert_eq!(parse_url("sc://spark.internal").unwrap(), ("spark.internal".into(), 15002));
        assert_eq!(parse_url("sc://h:1/;user_id=x").unwrap(), ("h".into(), 1));
        assert_eq!(parse_url("sc://[::1]:7").unwrap(), ("::1".into(), 7));
        assert!(parse_url("sc://:7").is_err());
        assert!(parse_url("sc://h:port").is_err());
    }

    #[test]
    fn session_ids_are_version_4_uuids() {
        let id = uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid().unwrap());
    }

    #[test]
    fn loaded_columns_travel_as_an_arrow_stream_that_reads_back() {
        let columns = [
            ("x", Values::Int(vec![Some(1), None, Some(3)])),
            ("p", Values::Float(vec![Some(0.5), None, Some(2.0f64.sqrt())])),
            ("risk", Values::Text(vec!["low".into(), "high".into(), "Can't".into()])),
        ];
        let bytes = ipc(&columns, 1..3).unwrap();
        let batches: Vec<RecordBatch> = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        let rows: Vec<Vec<Cell>> = (0..batches[0].num_rows()).map(|r| row_cells(&batches[0], r).unwrap()).collect();
        assert_eq!(
            rows,
            vec![
                vec![Cell::Null, Cell::Null, Cell::Text("high".into())],
                vec![Cell::Int(3), Cell::Float(2.0f64.sqrt()), Cell::Text("Can't".into())],
            ]
        );
    }
}
