//! Writing a generated shop as CSV or Parquet.
//!
//! Columns: `order_id, customer_id, order_date, product_id, category, quantity, unit_price,
//! amount`. CSV times are RFC 3339 in UTC (`2024-03-05T14:03:00Z`); Parquet uses
//! `Timestamp(Millisecond, "UTC")` (Parquet has no seconds unit) and `Decimal128(12, 2)` money, as a warehouse export would.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Decimal128Builder, Int32Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use kanta_core::money::Money;
use kanta_core::time::SECONDS_PER_DAY;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{GenLine, GenOrder, lines_of};

/// Why the file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {message}")]
pub struct WriteError {
    /// The output path.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Comma-separated text.
    Csv,
    /// Parquet (zstd).
    Parquet,
}

impl OutputFormat {
    /// Parquet for `.parquet`/`.pq` paths, else CSV.
    pub fn from_path(path: &Path) -> OutputFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet" | "pq") => OutputFormat::Parquet,
            _ => OutputFormat::Csv,
        }
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Order lines.
    pub lines: u64,
    /// Orders (including returns).
    pub orders: u64,
}

fn err(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError { path: path.display().to_string(), message: e.to_string() }
}

pub(crate) fn rfc3339(secs: i64, out: &mut String) {
    use std::fmt::Write as _;
    let day = kanta_core::time::Day(secs.div_euclid(SECONDS_PER_DAY) as i32);
    let s = secs.rem_euclid(SECONDS_PER_DAY);
    let _ = write!(out, "{day}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60);
}

/// Writes the orders' lines to `path`; `progress` is called with the lines written so far.
pub fn write_orders(
    path: &Path,
    format: OutputFormat,
    orders: &[GenOrder],
    progress: &dyn Fn(u64),
) -> Result<Written, WriteError> {
    match format {
        OutputFormat::Csv => write_csv(path, orders, progress),
        OutputFormat::Parquet => write_parquet(path, orders, progress),
    }
}

fn write_csv(path: &Path, orders: &[GenOrder], progress: &dyn Fn(u64)) -> Result<Written, WriteError> {
    let file = File::create(path).map_err(|e| err(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "order_id,customer_id,order_date,product_id,category,quantity,unit_price,amount")
        .map_err(|e| err(path, e))?;
    let mut lines = Vec::new();
    let mut written = Written::default();
    let mut time = String::new();
    for order in orders {
        lines_of(order, &mut lines);
        time.clear();
        rfc3339(order.time.0, &mut time);
        for l in &lines {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                l.order_id, l.customer_id, time, l.product_id, l.category, l.quantity, l.unit_price, l.amount
            )
            .map_err(|e| err(path, e))?;
        }
        written.lines += lines.len() as u64;
        written.orders += 1;
        if written.orders % 65_536 == 0 {
            progress(written.lines);
        }
    }
    out.flush().map_err(|e| err(path, e))?;
    progress(written.lines);
    Ok(written)
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("order_date", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("product_id", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Decimal128(12, 2), false),
        Field::new("amount", DataType::Decimal128(12, 2), false),
    ]))
}

struct Batch {
    order_id: StringBuilder,
    customer_id: StringBuilder,
    time: TimestampMillisecondBuilder,
    product_id: StringBuilder,
    category: StringBuilder,
    quantity: Int32Builder,
    unit_price: Decimal128Builder,
    amount: Decimal128Builder,
    len: usize,
}

impl Batch {
    fn new() -> Batch {
        let decimal = || Decimal128Builder::new().with_precision_and_scale(12, 2);
        Batch {
            order_id: StringBuilder::new(),
            customer_id: StringBuilder::new(),
            time: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            product_id: StringBuilder::new(),
            category: StringBuilder::new(),
            quantity: Int32Builder::new(),
            unit_price: decimal().unwrap_or_else(|_| Decimal128Builder::new()),
            amount: decimal().unwrap_or_else(|_| Decimal128Builder::new()),
            len: 0,
        }
    }

    fn push(&mut self, l: &GenLine) {
        let cents = |m: Money| i128::from(m.raw() / 100);
        self.order_id.append_value(&l.order_id);
        self.customer_id.append_value(&l.customer_id);
        self.time.append_value(l.time.0 * 1_000);
        self.product_id.append_value(&l.product_id);
        self.category.append_value(l.category);
        self.quantity.append_value(l.quantity);
        self.unit_price.append_value(cents(l.unit_price));
        self.amount.append_value(cents(l.amount));
        self.len += 1;
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch, arrow_schema::ArrowError> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.order_id.finish()),
            Arc::new(self.customer_id.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.product_id.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.unit_price.finish()),
            Arc::new(self.amount.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns)
    }
}

fn write_parquet(path: &Path, orders: &[GenOrder], progress: &dyn Fn(u64)) -> Result<Written, WriteError> {
    let schema = schema();
    let file = File::create(path).map_err(|e| err(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(|e| err(path, e))?;
    let mut batch = Batch::new();
    let mut lines = Vec::new();
    let mut written = Written::default();
    for order in orders {
        lines_of(order, &mut lines);
        for l in &lines {
            batch.push(l);
        }
        written.lines += lines.len() as u64;
        written.orders += 1;
        if batch.len >= 1 << 16 {
            let b = batch.finish(&schema).map_err(|e| err(path, e))?;
            writer.write(&b).map_err(|e| err(path, e))?;
            progress(written.lines);
        }
    }
    if batch.len > 0 {
        let b = batch.finish(&schema).map_err(|e| err(path, e))?;
        writer.write(&b).map_err(|e| err(path, e))?;
    }
    writer.close().map_err(|e| err(path, e))?;
    progress(written.lines);
    Ok(written)
}
