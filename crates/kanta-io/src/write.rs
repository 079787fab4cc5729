//! Writers for the per-customer table: `customers.csv` and `customers.parquet`.
//!
//! Both files have the columns of [`CUSTOMER_COLUMNS`] and then [`MODEL_COLUMNS`], in that
//! order. CSV numbers are written exactly: money with all its decimals (at least two), ratios in
//! the shortest form that reads back to the same `f64`.
//!
//! The model columns come in as plain values ([`ModelRow`], through [`ModelRows`]): the scores are
//! computed elsewhere (`kanta-score`), and this crate writes files without depending on the
//! models.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, Float64Builder, Int32Builder, StringBuilder, UInt8Builder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use kanta_core::aggregate::CustomerBase;
use kanta_core::analysis::CustomerSummary;
use kanta_core::money::Money;
use kanta_core::time::Day;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::ReadError;

/// The unit of `recency` and `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeriodUnit {
    /// Days (integers).
    #[default]
    Day,
    /// Weeks = days / 7, as in Fader, Hardie & Lee's CDNOW summaries.
    Week,
}

impl PeriodUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            PeriodUnit::Day => 1.0,
            PeriodUnit::Week => 7.0,
        }
    }

    /// `day` or `week`.
    pub fn name(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Week => "week",
        }
    }
}

/// The per-customer columns, in file order, with their meaning (the README documents them).
pub const CUSTOMER_COLUMNS: [(&str, &str); 20] = [
    ("customer_id", "the id exactly as in the input"),
    ("first_purchase", "date of the first purchase (YYYY-MM-DD)"),
    ("last_purchase", "date of the last purchase"),
    ("orders", "purchase orders (returns and, by default, zero-amount orders excluded)"),
    ("revenue", "sum of purchase order amounts"),
    ("frequency", "repeat purchase periods: days with a purchase − 1"),
    ("recency", "first to last purchase day, in --period units"),
    ("T", "first purchase day to --as-of, in --period units"),
    ("monetary", "mean value of the repeat purchase periods (0 when frequency = 0)"),
    ("returns", "return orders (orders whose lines sum to a negative amount)"),
    ("returned", "total amount returned"),
    ("revenue_12m", "purchase revenue in the 365 days up to --as-of"),
    ("days_since_last", "days from the last purchase day to --as-of"),
    ("average_order_value", "revenue / orders"),
    ("r_score", "recency quintile score 1–5"),
    ("f_score", "frequency (orders) quintile score 1–5"),
    ("m_score", "monetary (revenue) quintile score 1–5"),
    ("rfm", "the three scores as one code, e.g. 545"),
    ("segment", "named RFM segment"),
    ("stage", "lifecycle stage: new, repeat, loyal, lapsing, lost"),
];

/// The model columns that follow [`CUSTOMER_COLUMNS`] (empty, or null in Parquet, when the
/// models were not run or could not be fitted).
pub const MODEL_COLUMNS: [(&str, &str); 10] = [
    ("p_alive", "probability that the customer is still active at --as-of (the fitted BTYD model)"),
    ("expected_purchases_30d", "expected purchases in the 30 days after --as-of"),
    ("expected_purchases_90d", "expected purchases in the 90 days after --as-of"),
    ("expected_purchases_365d", "expected purchases in the 365 days after --as-of"),
    ("p_purchase_30d", "probability of at least one purchase in the 30 days after --as-of"),
    ("p_purchase_90d", "probability of at least one purchase in the 90 days after --as-of"),
    ("expected_spend", "expected value of a future purchase (Gamma-Gamma)"),
    ("clv_12m", "discounted expected revenue of the next 12 months (12 × 30 days at 1 % a month)"),
    ("next_purchase_date", "--as-of + the median days to the next purchase if the customer is alive"),
    ("churn_risk", "low (P(alive) ≥ 0.75), medium (≥ 0.5), high (≥ 0.25) or very_high"),
];

/// One customer's table: the base that holds the ids, every customer's summary in table order,
/// and the model values when the models ran.
#[derive(Clone, Copy)]
pub struct CustomerTable<'a> {
    /// The customer base the summaries' ids point into.
    pub base: &'a CustomerBase,
    /// One summary per row, in file order.
    pub customers: &'a [CustomerSummary],
    /// The day the analysis looks from (`--as-of`); dates in the model columns count from it.
    pub as_of: Day,
    /// The unit of `recency` and `T`.
    pub unit: PeriodUnit,
    /// The model columns of each row; `None` leaves them empty (null in Parquet).
    pub models: Option<&'a dyn ModelRows>,
}

/// The values of one row's [`MODEL_COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelRow {
    /// P(alive) at `as_of`.
    pub p_alive: f64,
    /// Expected purchases in the next 30, 90 and 365 days.
    pub expected_purchases: [f64; 3],
    /// P(at least one purchase in the next 30 days).
    pub p_purchase_30d: f64,
    /// P(at least one purchase in the next 90 days).
    pub p_purchase_90d: f64,
    /// Expected value of a future purchase, when the spend model was fitted.
    pub expected_spend: Option<f64>,
    /// Discounted revenue of the next 12 months, when the spend model was fitted.
    pub clv_12m: Option<f64>,
    /// Median days from `as_of` to the next purchase if the customer is alive (written as the
    /// date, rounded to a day).
    pub next_purchase_days: f64,
    /// The churn-risk band's name (`low`, `medium`, `high`, `very_high`).
    pub churn_risk: &'static str,
}

/// The model values of a table's rows, by row index. The writers ask for each row once, in
/// order, on their own threads.
pub trait ModelRows: Sync {
    /// Row `index`'s values; `None` leaves the row's model columns empty.
    fn model_row(&self, index: usize) -> Option<ModelRow>;
}

/// Money with all its decimals, at least two: `12.50`, `0.3333`, `-4.00`.
pub fn money_exact(m: Money) -> String {
    let mut out = Vec::with_capacity(24);
    push_money_exact(&mut out, m);
    // Only ASCII digits, `-` and `.` were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`money_exact`]'s text to `out` without allocating or going through `fmt` (it runs
/// three times per row of `customers.csv`).
fn push_money_exact(out: &mut Vec<u8>, m: Money) {
    let raw = m.raw();
    if raw < 0 {
        out.push(b'-');
    }
    let abs = raw.unsigned_abs();
    push_uint(out, abs / 10_000);
    let frac = abs % 10_000;
    let digits = [
        b'0' + (frac / 1000) as u8,
        b'0' + (frac / 100 % 10) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    // At least two decimals; the third and fourth only when they are not trailing zeros.
    let keep = if frac.is_multiple_of(100) {
        2
    } else if frac.is_multiple_of(10) {
        3
    } else {
        4
    };
    out.push(b'.');
    out.extend_from_slice(&digits[..keep]);
}

fn in_unit(days: i32, unit: PeriodUnit) -> f64 {
    f64::from(days) / unit.days()
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> ReadError {
    ReadError::Write { path: path.display().to_string(), message: e.to_string() }
}

/// Appends `id` as a CSV field, quoted (RFC 4180) only when it contains `,`, `"`, CR or LF.
fn push_csv_field(out: &mut Vec<u8>, id: &[u8]) {
    if id.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n')) || id.first().is_some_and(u8::is_ascii_whitespace) {
        out.push(b'"');
        for &b in id {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(id);
    }
}

/// Appends the decimal digits of `n`.
fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_uint(out, n.unsigned_abs());
}

/// Appends the decimal digits of `v`.
fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `YYYY-MM-DD`.
fn push_date(out: &mut Vec<u8>, day: kanta_core::time::Day) {
    let (y, m, d) = day.ymd();
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(day.to_string().as_bytes());
    }
}

/// Appends an `f64` in its shortest exact form, as Rust's `Display` writes it (no exponent;
/// `3` rather than `3.0`).
///
/// `ryu` finds the shortest round-trip digits several times faster than `Display`; its text is
/// used for 1e-5 ≤ |v| < 1e9 (money ratios: monetary value, average order value) and `Display`
/// writes the rest. Above that, a value can lie exactly halfway between two shortest forms
/// (`662936471232937.25` has ulp 1/8), and the two round such ties differently.
fn push_f64(out: &mut Vec<u8>, v: f64, buffer: &mut ryu::Buffer) {
    if (1e-5..1e9).contains(&v.abs()) {
        let text = buffer.format_finite(v);
        out.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes `customers.csv`.
///
/// Rows are formatted by hand into one byte buffer: on two million customers the `csv` crate's
/// per-field quoting checks and `fmt` calls took longer than reading the order log did.
pub fn write_customers_csv(path: &Path, table: &CustomerTable<'_>) -> Result<(), ReadError> {
    let CustomerTable { base, customers, as_of, unit, models } = *table;
    let mut csv = CustomerCsv::create(path, as_of, unit)?;
    for (i, c) in customers.iter().enumerate() {
        csv.push(base.id(c.customer), c, models.and_then(|m| m.model_row(i)).as_ref())?;
    }
    csv.finish()
}

/// `customers.csv` written a row at a time, from anywhere the rows come from (the analysis in
/// memory, or a score table downloaded from a database), in one format.
pub struct CustomerCsv {
    path: std::path::PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
    buffer: ryu::Buffer,
    as_of: Day,
    unit: PeriodUnit,
}

impl CustomerCsv {
    /// Creates the file and writes the header.
    pub fn create(path: &Path, as_of: Day, unit: PeriodUnit) -> Result<CustomerCsv, ReadError> {
        let file = File::create(path).map_err(|e| write_err(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let header: Vec<&str> = CUSTOMER_COLUMNS.iter().chain(&MODEL_COLUMNS).map(|(name, _)| *name).collect();
        writeln!(out, "{}", header.join(",")).map_err(|e| write_err(path, e))?;
        Ok(CustomerCsv {
            path: path.to_path_buf(),
            out,
            line: Vec::with_capacity(256),
            buffer: ryu::Buffer::new(),
            as_of,
            unit,
        })
    }

    /// Writes one customer's row; `model` `None` leaves the model columns empty.
    pub fn push(&mut self, id: &[u8], c: &CustomerSummary, model: Option<&ModelRow>) -> Result<(), ReadError> {
        let CustomerCsv { line, buffer, unit, as_of, .. } = self;
        let unit = *unit;
        line.clear();
        push_csv_field(line, id);
        line.push(b',');
        push_date(line, c.first_purchase.day());
        line.push(b',');
        push_date(line, c.last_purchase.day());
        line.push(b',');
        push_int(line, i64::from(c.orders));
        line.push(b',');
        push_money_exact(line, c.revenue);
        line.push(b',');
        push_int(line, i64::from(c.frequency));
        for days in [c.recency_days, c.t_days] {
            line.push(b',');
            match unit {
                PeriodUnit::Day => push_int(line, i64::from(days)),
                PeriodUnit::Week => push_f64(line, in_unit(days, unit), buffer),
            }
        }
        line.push(b',');
        push_f64(line, c.monetary, buffer);
        line.push(b',');
        push_int(line, i64::from(c.returns));
        for m in [c.returned, c.revenue_12m] {
            line.push(b',');
            push_money_exact(line, m);
        }
        line.push(b',');
        push_int(line, i64::from(c.days_since_last));
        line.push(b',');
        push_f64(line, c.average_order_value(), buffer);
        for score in [c.r, c.f, c.m] {
            line.push(b',');
            line.push(b'0' + score);
        }
        line.extend_from_slice(&[b',', b'0' + c.r, b'0' + c.f, b'0' + c.m, b',']);
        line.extend_from_slice(c.segment.name().as_bytes());
        line.push(b',');
        line.extend_from_slice(c.stage.name().as_bytes());
        match model {
            Some(s) => push_score(line, s, *as_of),
            None => line.extend_from_slice(&[b','; MODEL_COLUMNS.len()]),
        }
        line.push(b'\n');
        let path = &self.path;
        self.out.write_all(&self.line).map_err(|e| write_err(path, e))
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(), ReadError> {
        self.out.flush().map_err(|e| write_err(&self.path, e))
    }
}

/// The day `days` after `as_of` (rounded), saturating far in the future.
fn day_after(as_of: Day, days: f64) -> Day {
    Day(as_of.0.saturating_add(days.round().clamp(0.0, 1e6) as i32))
}

/// Appends a model output in a shortest round-trip form (`ryu`: ~10× faster than `Display`, which
/// matters for ten columns × millions of rows), without a trailing `.0` on whole numbers. Unlike
/// [`push_f64`] it may use an exponent (`1.5e-7`), which every CSV reader parses.
fn push_model_f64(out: &mut Vec<u8>, v: f64, buffer: &mut ryu::Buffer) {
    let text = buffer.format(v);
    out.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
}

fn push_score(line: &mut Vec<u8>, s: &ModelRow, as_of: Day) {
    let mut buffer = ryu::Buffer::new();
    for v in [
        s.p_alive,
        s.expected_purchases[0],
        s.expected_purchases[1],
        s.expected_purchases[2],
        s.p_purchase_30d,
        s.p_purchase_90d,
    ] {
        line.push(b',');
        push_model_f64(line, v, &mut buffer);
    }
    for v in [s.expected_spend, s.clv_12m] {
        line.push(b',');
        if let Some(v) = v {
            push_model_f64(line, v, &mut buffer);
        }
    }
    line.push(b',');
    push_date(line, day_after(as_of, s.next_purchase_days));
    line.push(b',');
    line.extend_from_slice(s.churn_risk.as_bytes());
}

/// Writes `customers.parquet` (Snappy-compressed; money as `Float64`, dates as `Date32`).
pub fn write_customers_parquet(path: &Path, table: &CustomerTable<'_>) -> Result<(), ReadError> {
    let CustomerTable { base, customers, as_of, unit, models } = *table;
    use DataType::*;
    let types = [
        Utf8, Date32, Date32, UInt32, Float64, UInt32, Float64, Float64, Float64, UInt32, Float64, Float64, Int32,
        Float64, UInt8, UInt8, UInt8, Utf8, Utf8, Utf8,
    ];
    let model_types = [Float64, Float64, Float64, Float64, Float64, Float64, Float64, Float64, Date32, Utf8];
    let schema = Arc::new(Schema::new(
        CUSTOMER_COLUMNS
            .iter()
            .zip(types)
            .map(|((name, _), t)| Field::new(*name, t, false))
            .chain(MODEL_COLUMNS.iter().zip(model_types).map(|((name, _), t)| Field::new(*name, t, true)))
            .collect::<Vec<_>>(),
    ));
    let file = File::create(path).map_err(|e| write_err(path, e))?;
    // Dictionaries pay only for the few low-cardinality text columns; on ids and numbers they
    // cost time and fall back anyway. Snappy is several times faster than zstd for a file that
    // analysts reread rather than archive; it costs a fifth of the writer's time on two million
    // customers and makes the file 2.75× smaller than no compression (75 MB instead of 207 MB).
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled("rfm".into(), true)
        .set_column_dictionary_enabled("segment".into(), true)
        .set_column_dictionary_enabled("stage".into(), true)
        .set_column_dictionary_enabled("churn_risk".into(), true)
        .build();
    let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(|e| write_err(path, e))?;
    let mut groups = customers.chunks(ROW_GROUP_ROWS).enumerate().map(|(g, group)| {
        group
            .chunks(BATCH_ROWS)
            .enumerate()
            .map(|(k, chunk)| {
                let start = g * ROW_GROUP_ROWS + k * BATCH_ROWS;
                customer_batch(&schema, base, chunk, unit, models.map(|m| (m, start)), as_of)
            })
            .collect::<Result<Vec<_>, _>>()
    });
    write_row_groups(writer, &schema, &mut groups).map_err(|e| write_err(path, e))?;
    Ok(())
}

/// Rows per row group of `customers.parquet`: `ArrowWriter`'s default.
const ROW_GROUP_ROWS: usize = parquet::file::properties::DEFAULT_MAX_ROW_GROUP_ROW_COUNT;
/// Rows per record batch, a sixteenth of a row group.
const BATCH_ROWS: usize = 1 << 16;

/// Write each row group's batches (in order) through `writer`'s file, encoding the group's
/// columns in parallel on rayon's threads. `ArrowWriter::write` encodes and compresses one
/// column after another on the calling thread: on two million customers that single thread
/// was the last to finish, alone, while the other writers were done. The file is the one
/// `ArrowWriter` writes, byte for byte (same properties, pages, row groups and embedded Arrow
/// schema; checked on 2M customers and in the tests).
fn write_row_groups<W: std::io::Write + Send>(
    writer: ArrowWriter<W>,
    schema: &Schema,
    groups: &mut dyn Iterator<Item = Result<Vec<RecordBatch>, arrow_schema::ArrowError>>,
) -> Result<W, parquet::errors::ParquetError> {
    use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
    use rayon::prelude::*;
    let (mut file, factory) = writer.into_serialized_writer()?;
    for (g, batches) in groups.enumerate() {
        let batches = batches?;
        let encoded: Vec<ArrowColumnChunk> = factory
            .create_column_writers(g)?
            .into_par_iter()
            .enumerate()
            .map(|(i, mut column)| {
                for batch in &batches {
                    for leaf in compute_leaves(schema.field(i), batch.column(i))? {
                        column.write(&leaf)?;
                    }
                }
                column.close()
            })
            .collect::<Result<_, _>>()?;
        let mut group = file.next_row_group()?;
        for chunk in encoded {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
    }
    file.into_inner()
}

fn customer_batch(
    schema: &Arc<Schema>,
    base: &CustomerBase,
    chunk: &[CustomerSummary],
    unit: PeriodUnit,
    models: Option<(&dyn ModelRows, usize)>,
    as_of: Day,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = chunk.len();
    let mut id = StringBuilder::with_capacity(n, n * 12);
    let mut dates = [Date32Builder::with_capacity(n), Date32Builder::with_capacity(n)];
    let mut u32s: [UInt32Builder; 3] = std::array::from_fn(|_| UInt32Builder::with_capacity(n));
    let mut f64s: [Float64Builder; 7] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    let mut days_since = Int32Builder::with_capacity(n);
    let mut scores: [UInt8Builder; 3] = std::array::from_fn(|_| UInt8Builder::with_capacity(n));
    let mut strings: [StringBuilder; 3] = std::array::from_fn(|_| StringBuilder::with_capacity(n, n * 8));
    for c in chunk {
        id.append_value(String::from_utf8_lossy(base.id(c.customer)));
        dates[0].append_value(c.first_purchase.day().0);
        dates[1].append_value(c.last_purchase.day().0);
        u32s[0].append_value(c.orders);
        u32s[1].append_value(c.frequency);
        u32s[2].append_value(c.returns);
        f64s[0].append_value(c.revenue.to_f64());
        f64s[1].append_value(in_unit(c.recency_days, unit));
        f64s[2].append_value(in_unit(c.t_days, unit));
        f64s[3].append_value(c.monetary);
        f64s[4].append_value(c.returned.to_f64());
        f64s[5].append_value(c.revenue_12m.to_f64());
        f64s[6].append_value(c.average_order_value());
        days_since.append_value(c.days_since_last);
        scores[0].append_value(c.r);
        scores[1].append_value(c.f);
        scores[2].append_value(c.m);
        let rfm = [b'0' + c.r, b'0' + c.f, b'0' + c.m];
        strings[0].append_value(std::str::from_utf8(&rfm).unwrap_or("111"));
        strings[1].append_value(c.segment.name());
        strings[2].append_value(c.stage.name());
    }
    let [first, last] = dates;
    let [orders, frequency, returns] = u32s;
    let [revenue, recency, t, monetary, returned, revenue_12m, aov] = f64s;
    let [r, f, m] = scores;
    let [rfm, segment, stage] = strings;
    let b = |x: &mut dyn arrow_array::builder::ArrayBuilder| -> ArrayRef { x.finish() };
    let columns: Vec<ArrayRef> = vec![
        b(&mut id),
        b(&mut { first }),
        b(&mut { last }),
        b(&mut { orders }),
        b(&mut { revenue }),
        b(&mut { frequency }),
        b(&mut { recency }),
        b(&mut { t }),
        b(&mut { monetary }),
        b(&mut { returns }),
        b(&mut { returned }),
        b(&mut { revenue_12m }),
        b(&mut days_since),
        b(&mut { aov }),
        b(&mut { r }),
        b(&mut { f }),
        b(&mut { m }),
        b(&mut { rfm }),
        b(&mut { segment }),
        b(&mut { stage }),
    ];
    let mut columns = columns;
    columns.extend(model_arrays(chunk.len(), models, as_of));
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The [`MODEL_COLUMNS`] of the `n` rows of one batch from row `start` of `models`, or all null.
fn model_arrays(n: usize, models: Option<(&dyn ModelRows, usize)>, as_of: Day) -> Vec<ArrayRef> {
    let mut f64s: [Float64Builder; 8] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    let mut next = Date32Builder::with_capacity(n);
    let mut risk = StringBuilder::with_capacity(n, n * 6);
    for i in 0..n {
        match models.and_then(|(m, start)| m.model_row(start + i)) {
            Some(s) => {
                let values = [
                    Some(s.p_alive),
                    Some(s.expected_purchases[0]),
                    Some(s.expected_purchases[1]),
                    Some(s.expected_purchases[2]),
                    Some(s.p_purchase_30d),
                    Some(s.p_purchase_90d),
                    s.expected_spend,
                    s.clv_12m,
                ];
                for (b, v) in f64s.iter_mut().zip(values) {
                    b.append_option(v);
                }
                next.append_value(day_after(as_of, s.next_purchase_days).0);
                risk.append_value(s.churn_risk);
            }
            None => {
                for b in &mut f64s {
                    b.append_null();
                }
                next.append_null();
                risk.append_null();
            }
        }
    }
    let mut out: Vec<ArrayRef> = f64s.iter_mut().map(|b| -> ArrayRef { Arc::new(b.finish()) }).collect();
    out.push(Arc::new(next.finish()));
    out.push(Arc::new(risk.finish()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_with_all_decimals() {
        assert_eq!(money_exact(Money::from_raw(125_000)), "12.50");
        assert_eq!(money_exact(Money::from_raw(3_333)), "0.3333");
        assert_eq!(money_exact(Money::from_raw(-40_000)), "-4.00");
        assert_eq!(money_exact(Money::from_raw(10)), "0.001");
        assert_eq!(money_exact(Money::from_raw(12_340)), "1.234");
        assert_eq!(money_exact(Money::from_raw(-1)), "-0.0001");
        assert_eq!(money_exact(Money::from_raw(0)), "0.00");
    }
}

#[cfg(test)]
mod parquet_tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray, UInt32Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Three row groups of batches of 7 rows with nulls, dictionary and plain columns.
    fn groups(schema: &Arc<Schema>) -> Vec<Vec<RecordBatch>> {
        (0..3)
            .map(|g| {
                (0..4)
                    .map(|b| {
                        let rows = 0..7u32;
                        let at = |i: u32| g * 100 + b * 10 + i;
                        let ids = StringArray::from_iter_values(rows.clone().map(|i| format!("c{:05}", at(i))));
                        let n = UInt32Array::from_iter_values(rows.clone().map(at));
                        let x =
                            Float64Array::from_iter(rows.clone().map(|i| (i % 3 != 0).then(|| f64::from(at(i)) / 7.0)));
                        let stage = StringArray::from_iter_values(rows.map(|i| ["new", "lost"][(i % 2) as usize]));
                        let columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(n), Arc::new(x), Arc::new(stage)];
                        RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    fn read(bytes: Vec<u8>) -> (Vec<RecordBatch>, usize, Option<String>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let groups = builder.metadata().num_row_groups();
        let arrow_schema = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == "ARROW:schema").and_then(|k| k.value.clone()));
        (builder.build().unwrap().map(Result::unwrap).collect(), groups, arrow_schema)
    }

    #[test]
    fn columns_encoded_in_parallel_make_the_file_arrow_writer_makes() {
        use DataType::*;
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", Utf8, false),
            Field::new("orders", UInt32, false),
            Field::new("p_alive", Float64, true),
            Field::new("stage", Utf8, false),
        ]));
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .set_column_dictionary_enabled("stage".into(), true)
                .set_max_row_group_row_count(Some(28))
                .build()
        };
        // The reference: ArrowWriter with the same properties, 28 rows (4 batches) a group.
        let mut reference = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props())).unwrap();
        for batch in groups(&schema).iter().flatten() {
            reference.write(batch).unwrap();
        }
        let reference = reference.into_inner().unwrap();
        let writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props())).unwrap();
        let parallel = write_row_groups(writer, &schema, &mut groups(&schema).into_iter().map(Ok)).unwrap();
        assert!(parallel == reference, "the same bytes");
        let (want, want_groups, want_schema) = read(reference);
        let (got, got_groups, got_schema) = read(parallel);
        assert_eq!((got_groups, want_groups), (3, 3));
        assert!(got_schema.is_some() && got_schema == want_schema, "the Arrow schema is embedded");
        assert_eq!(got.iter().map(RecordBatch::num_rows).sum::<usize>(), 84);
        assert_eq!(columns_as_text(&got), columns_as_text(&want));
        assert_eq!(got[0].schema().field(1).data_type(), &UInt32, "unsigned columns read back unsigned");
    }

    /// All rows of `batches` as text, column by column.
    fn columns_as_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
        (0..batches[0].num_columns())
            .map(|c| {
                batches
                    .iter()
                    .flat_map(|b| {
                        let column = b.column(c);
                        (0..column.len())
                            .map(|i| {
                                arrow_array::cast::AsArray::as_string_opt::<i32>(column.as_ref())
                                    .map(|s| s.value(i).to_string())
                                    .unwrap_or_else(|| format!("{:?}", column.slice(i, 1)))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        push_csv_field(&mut out, b"00042");
        out.push(b'|');
        push_csv_field(&mut out, b"a,\"b\"");
        out.push(b'|');
        push_int(&mut out, -120);
        out.push(b'|');
        push_int(&mut out, 0);
        out.push(b'|');
        push_date(&mut out, kanta_core::time::Day::from_ymd(1997, 9, 30).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), "00042|\"a,\"\"b\"\"\"|-120|0|1997-09-30");
    }

    fn display_of(v: f64) -> String {
        let mut out = Vec::new();
        push_f64(&mut out, v, &mut ryu::Buffer::new());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_exactly_as_display_writes_them() {
        for v in [
            0.0,
            -0.0,
            3.0,
            2.5,
            1.0 / 3.0,
            0.1 + 0.2,
            12.345,
            123_456_789.125,
            999_999_999.5,
            1e-5,
            9.99e-6,
            1e15,
            1e16,
            1.5e300,
            -7.25,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(display_of(v), format!("{v}"), "{v:e}");
        }
        assert_eq!(display_of(f64::NAN), "NaN");
        assert_eq!(display_of(f64::INFINITY), "inf");
        // A deterministic walk over random doubles (mostly huge or tiny: `Display`), random
        // values in the range `ryu` serves, and ratios of money amounts like the monetary and
        // average-order-value columns.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = f64::from_bits(state);
            assert_eq!(display_of(v), format!("{v}"), "{:#x}", state);
            let in_range = 1e-5 + (state >> 11) as f64 / (1u64 << 53) as f64 * 1e9;
            assert_eq!(display_of(in_range), format!("{in_range}"), "{in_range:e}");
            let ratio = (state % 100_000_000_000) as f64 / 10_000.0 / ((state >> 40) % 97 + 1) as f64;
            assert_eq!(display_of(ratio), format!("{ratio}"));
        }
    }

    #[test]
    fn money_is_formatted_by_hand_like_the_decimal_it_is() {
        for raw in [0, 1, -1, 10, 99, 100, 1_000, 9_999, 10_000, -10_001, 123_456_789, i64::MAX, i64::MIN + 1] {
            let m = Money::from_raw(raw);
            let abs = raw.unsigned_abs();
            let frac = format!("{:04}", abs % 10_000);
            let trimmed = frac.trim_end_matches('0');
            let decimals = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
            let sign = if raw < 0 { "-" } else { "" };
            assert_eq!(money_exact(m), format!("{sign}{}.{decimals}", abs / 10_000), "{raw}");
        }
    }
}
