//! Writers for the per-customer table: `customers.csv` and `customers.parquet`.
//!
//! Both files have the columns of [`CUSTOMER_COLUMNS`], in that order. CSV numbers are written
//! exactly: money with all its decimals (at least two), ratios in the shortest form that reads
//! back to the same `f64`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, Float64Builder, Int32Builder, StringBuilder, UInt8Builder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use kanta_core::aggregate::CustomerBase;
use kanta_core::analysis::{Analysis, CustomerSummary};
use kanta_core::money::Money;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
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

/// Money with all its decimals, at least two: `12.50`, `0.3333`, `-4.00`.
pub fn money_exact(m: Money) -> String {
    let mut out = String::new();
    push_money_exact(&mut out, m);
    out
}

/// Appends [`money_exact`]'s text to `out` without allocating.
fn push_money_exact(out: &mut String, m: Money) {
    use std::fmt::Write as _;
    let raw = m.raw();
    if raw < 0 {
        out.push('-');
    }
    let abs = raw.unsigned_abs();
    let frac = abs % 10_000;
    let _ = match (frac % 100 == 0, frac % 10 == 0) {
        (true, _) => write!(out, "{}.{:02}", abs / 10_000, frac / 100),
        (false, true) => write!(out, "{}.{:03}", abs / 10_000, frac / 10),
        (false, false) => write!(out, "{}.{:04}", abs / 10_000, frac),
    };
}

fn in_unit(days: i32, unit: PeriodUnit) -> f64 {
    f64::from(days) / unit.days()
}

/// Appends days in `unit`: whole days as integers, weeks as the shortest exact `f64`.
fn push_days(out: &mut String, days: i32, unit: PeriodUnit) {
    use std::fmt::Write as _;
    let _ = match unit {
        PeriodUnit::Day => write!(out, "{days}"),
        PeriodUnit::Week => write!(out, "{}", in_unit(days, unit)),
    };
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> ReadError {
    ReadError::Write { path: path.display().to_string(), message: e.to_string() }
}

/// Writes `customers.csv`.
pub fn write_customers_csv(path: &Path, base: &CustomerBase, analysis: &Analysis, unit: PeriodUnit) -> Result<(), ReadError> {
    use std::fmt::Write as _;
    let file = File::create(path).map_err(|e| write_err(path, e))?;
    let mut out = csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 20, file));
    out.write_record(CUSTOMER_COLUMNS.iter().map(|(name, _)| *name)).map_err(|e| write_err(path, e))?;
    // One reusable buffer per column: no allocation per row.
    let mut f: [String; CUSTOMER_COLUMNS.len()] = std::array::from_fn(|_| String::with_capacity(24));
    for c in &analysis.customers {
        f.iter_mut().for_each(String::clear);
        f[0].push_str(&String::from_utf8_lossy(base.id(c.customer)));
        let _ = write!(f[1], "{}", c.first_purchase.day());
        let _ = write!(f[2], "{}", c.last_purchase.day());
        let _ = write!(f[3], "{}", c.orders);
        push_money_exact(&mut f[4], c.revenue);
        let _ = write!(f[5], "{}", c.frequency);
        push_days(&mut f[6], c.recency_days, unit);
        push_days(&mut f[7], c.t_days, unit);
        let _ = write!(f[8], "{}", c.monetary);
        let _ = write!(f[9], "{}", c.returns);
        push_money_exact(&mut f[10], c.returned);
        push_money_exact(&mut f[11], c.revenue_12m);
        let _ = write!(f[12], "{}", c.days_since_last);
        let _ = write!(f[13], "{}", c.average_order_value());
        let _ = write!(f[14], "{}", c.r);
        let _ = write!(f[15], "{}", c.f);
        let _ = write!(f[16], "{}", c.m);
        let _ = write!(f[17], "{}{}{}", c.r, c.f, c.m);
        f[18].push_str(c.segment.name());
        f[19].push_str(c.stage.name());
        out.write_record(&f).map_err(|e| write_err(path, e))?;
    }
    let mut inner = out.into_inner().map_err(|e| write_err(path, e.error()))?;
    inner.flush().map_err(|e| write_err(path, e))
}

/// Writes `customers.parquet` (zstd-compressed; money as `Float64`, dates as `Date32`).
pub fn write_customers_parquet(
    path: &Path,
    base: &CustomerBase,
    analysis: &Analysis,
    unit: PeriodUnit,
) -> Result<(), ReadError> {
    use DataType::*;
    let types = [
        Utf8, Date32, Date32, UInt32, Float64, UInt32, Float64, Float64, Float64, UInt32, Float64, Float64, Int32,
        Float64, UInt8, UInt8, UInt8, Utf8, Utf8, Utf8,
    ];
    let schema = Arc::new(Schema::new(
        CUSTOMER_COLUMNS.iter().zip(types).map(|((name, _), t)| Field::new(*name, t, false)).collect::<Vec<_>>(),
    ));
    let file = File::create(path).map_err(|e| write_err(path, e))?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(|e| write_err(path, e))?;
    for chunk in analysis.customers.chunks(1 << 16) {
        let batch = customer_batch(&schema, base, chunk, unit).map_err(|e| write_err(path, e))?;
        writer.write(&batch).map_err(|e| write_err(path, e))?;
    }
    writer.close().map_err(|e| write_err(path, e))?;
    Ok(())
}

fn customer_batch(
    schema: &Arc<Schema>,
    base: &CustomerBase,
    chunk: &[CustomerSummary],
    unit: PeriodUnit,
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
        strings[0].append_value(format!("{}{}{}", c.r, c.f, c.m));
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
    RecordBatch::try_new(Arc::clone(schema), columns)
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
