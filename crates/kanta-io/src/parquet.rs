//! The Parquet reader: decodes only the needed columns, batch by batch.
//!
//! Accepted Arrow types per role:
//! - ids: strings (`Utf8`, `LargeUtf8`, `Utf8View`) or integers (written out in decimal);
//! - time: `Timestamp` (any unit; with a zone it is UTC, without one wall-clock), `Date32`,
//!   `Date64`, or strings parsed like text input;
//! - amounts, quantities, prices: floats, integers, `Decimal128`, or strings parsed like text.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};
use kanta_core::aggregate::OrderLine;
use kanta_core::money::{Money, SCALE};
use kanta_core::time::{SECONDS_PER_DAY, Timestamp};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderBuilder, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use crate::columns::{AmountSource, Columns, LineColumns};
use crate::error::{Location, ReadError};
use crate::lines::{self, DetailCells, LineDetail};
use crate::pipeline::{self, Target};
use crate::rows::{FieldProblem, Format, Progress, ReadOptions, ReadSummary, RowParser};

/// Rows per decoded batch.
const BATCH_ROWS: usize = 1 << 16;

pub(crate) fn read_parquet_file(
    p: &Path,
    path: &str,
    options: &ReadOptions,
    target: Target<'_>,
    progress: &dyn Progress,
) -> Result<ReadSummary, ReadError> {
    let file = File::open(p).map_err(|source| ReadError::Open { path: path.to_owned(), source })?;
    read_parquet(file, path, options, target, progress)
}

pub(crate) fn read_parquet_bytes(
    bytes: bytes::Bytes,
    path: &str,
    options: &ReadOptions,
    target: Target<'_>,
    progress: &dyn Progress,
) -> Result<ReadSummary, ReadError> {
    read_parquet(bytes, path, options, target, progress)
}

fn read_parquet<R: ChunkReader + Send + 'static>(
    source: R,
    path: &str,
    options: &ReadOptions,
    target: Target<'_>,
    progress: &dyn Progress,
) -> Result<ReadSummary, ReadError> {
    let bad = |e: parquet::errors::ParquetError| ReadError::Parquet { path: path.to_owned(), message: e.to_string() };
    let builder: ArrowReaderBuilder<_> = ParquetRecordBatchReaderBuilder::try_new(source).map_err(bad)?;
    let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let total_bytes: u64 = builder.metadata().row_groups().iter().map(|g| g.compressed_size().max(0) as u64).sum();
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = RowParser::new(path, options, target.lines.is_some());
    let columns = rows.resolve(names)?;
    let mut wanted: Vec<usize> = vec![columns.customer, columns.time];
    wanted.extend(columns.order);
    match columns.amount {
        AmountSource::Column(a) => wanted.push(a),
        AmountSource::Product { quantity, unit_price } => wanted.extend([quantity, unit_price]),
    }
    if let Some(l) = &columns.lines {
        wanted.push(l.product);
        wanted.extend(l.category.iter().chain(&l.quantity).chain(&l.unit_price));
    }
    wanted.sort_unstable();
    wanted.dedup();
    // Batch columns are looked up by file position; positions not read stay null arrays.
    let width = wanted.last().map_or(0, |last| last + 1);
    let type_of = |i: usize| schema.field(i).data_type().clone();
    check_type(path, &columns, columns.customer, &type_of(columns.customer), Role::Id("customer id"))?;
    if let Some(o) = columns.order {
        check_type(path, &columns, o, &type_of(o), Role::Id("order id"))?;
    }
    check_type(path, &columns, columns.time, &type_of(columns.time), Role::Time)?;
    match columns.amount {
        AmountSource::Column(a) => check_type(path, &columns, a, &type_of(a), Role::Number("amount"))?,
        AmountSource::Product { quantity, unit_price } => {
            check_type(path, &columns, quantity, &type_of(quantity), Role::Number("quantity"))?;
            check_type(path, &columns, unit_price, &type_of(unit_price), Role::Number("unit price"))?;
        }
    }
    if let Some(l) = &columns.lines {
        check_type(path, &columns, l.product, &type_of(l.product), Role::Id("product"))?;
        if let Some(c) = l.category {
            check_type(path, &columns, c, &type_of(c), Role::Id("category"))?;
        }
        for (i, role) in [(l.quantity, "quantity"), (l.unit_price, "unit price")] {
            if let Some(i) = i {
                check_type(path, &columns, i, &type_of(i), Role::Number(role))?;
            }
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(bad)?;
    if total_rows == 0 {
        return Err(ReadError::Empty { path: path.to_owned(), header_only: true });
    }
    let cols = &columns;
    pipeline::run(
        move |sink| {
            let mut row = 0u64;
            let mut id_buf = Vec::new();
            let mut order_buf = Vec::new();
            let mut product_buf = Vec::new();
            let mut category_buf = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| ReadError::Parquet { path: path.to_owned(), message: e.to_string() })?;
                let arrays: Vec<ArrayRef> = (0..width).map(|i| column(&batch, cols.name(i))).collect();
                let col = |i: usize| Cells::of(&arrays[i]);
                let customer = col(cols.customer);
                let order = cols.order.map(col);
                let time = col(cols.time);
                let amount = match cols.amount {
                    AmountSource::Column(a) => Amount::Single(col(a)),
                    AmountSource::Product { quantity, unit_price } => Amount::Product(col(quantity), col(unit_price)),
                };
                let details = match &cols.lines {
                    Some(l) if sink.keeps_details() => Some(DetailArrays {
                        columns: l,
                        product: col(l.product),
                        category: l.category.map(col),
                        quantity: l.quantity.map(col),
                        unit_price: l.unit_price.map(col),
                    }),
                    _ => None,
                };
                for i in 0..batch.num_rows() {
                    row += 1;
                    let parsed = parse_row(
                        cols,
                        &customer,
                        order.as_ref(),
                        &time,
                        &amount,
                        i,
                        options,
                        &mut id_buf,
                        &mut order_buf,
                    );
                    // The product, when lines are kept, is handed to the sink before the row.
                    let parsed = parsed.and_then(|line| {
                        if let Some(d) = &details
                            && let Some(detail) =
                                d.parse(i, line.amount, options, &mut product_buf, &mut category_buf)?
                        {
                            sink.detail(detail);
                        }
                        Ok(line)
                    });
                    if !sink.row(Location::Row(row), parsed) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        },
        &|rows| progress.update(total_bytes * rows / total_rows.max(1), rows),
        cols,
        &mut rows,
        target,
    )?;
    progress.update(total_bytes, rows.rows);
    Ok(rows.finish(Format::Parquet, false, columns, total_bytes))
}

#[allow(clippy::too_many_arguments)] // private; one call site in the batch loop
fn parse_row<'a>(
    columns: &Columns,
    customer: &Cells<'a>,
    order: Option<&Cells<'a>>,
    time: &Cells<'_>,
    amount: &Amount<'_>,
    i: usize,
    options: &ReadOptions,
    id_buf: &'a mut Vec<u8>,
    order_buf: &'a mut Vec<u8>,
) -> Result<OrderLine<'a>, FieldProblem> {
    let customer_id = id_value(customer, i, columns.customer, "customer id", id_buf)?;
    let order_id = match (order, columns.order) {
        (Some(a), Some(o)) => Some(id_value(a, i, o, "order id", order_buf)?),
        _ => None,
    };
    let time = time_value(time, i, columns.time, options)?;
    let amount = match amount {
        Amount::Single(a) => number_value(a, i, amount_index(&columns.amount, 0), options)?,
        Amount::Product(q, p) => {
            let qv = number_value(q, i, amount_index(&columns.amount, 0), options)?;
            let pv = number_value(p, i, amount_index(&columns.amount, 1), options)?;
            pv.times_quantity(qv).ok_or_else(|| FieldProblem {
                column: Some(amount_index(&columns.amount, 0)),
                reason: "quantity × unit price is out of range".to_owned(),
            })?
        }
    };
    Ok(OrderLine { customer: customer_id, order: order_id, time, amount })
}

/// A batch's product columns, when lines are kept.
struct DetailArrays<'c, 'a> {
    columns: &'c LineColumns,
    product: Cells<'a>,
    category: Option<Cells<'a>>,
    quantity: Option<Cells<'a>>,
    unit_price: Option<Cells<'a>>,
}

impl DetailArrays<'_, '_> {
    /// Row `i`'s product ([`lines::check`] has the rules; a null product or category is an
    /// empty cell).
    fn parse<'b>(
        &'b self,
        i: usize,
        amount: Money,
        options: &ReadOptions,
        product_buf: &'b mut Vec<u8>,
        category_buf: &'b mut Vec<u8>,
    ) -> Result<Option<LineDetail<'b>>, FieldProblem> {
        let number = |array: &Option<Cells<'_>>, column: Option<usize>| match (array, column) {
            (Some(a), Some(c)) => number_value(a, i, c, options).map(Some),
            _ => Ok(None),
        };
        let cells = DetailCells {
            product: cell_text(&self.product, i, product_buf),
            category: self.category.as_ref().map(|a| cell_text(a, i, category_buf)),
            quantity: number(&self.quantity, self.columns.quantity)?,
            unit_price: number(&self.unit_price, self.columns.unit_price)?,
        };
        lines::check(self.columns, cells, amount)
    }
}

/// A string or integer cell as text; a null is empty.
fn cell_text<'a>(cells: &Cells<'a>, i: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    if cells.is_null(i) {
        return b"";
    }
    if let Some(s) = cells.text(i) {
        return s.as_bytes();
    }
    write_integer(cells, i, buf);
    buf.as_slice()
}

/// Writes an integer cell in decimal into `buf` (cleared first; left empty for other types).
fn write_integer(cells: &Cells<'_>, i: usize, buf: &mut Vec<u8>) {
    buf.clear();
    if let Some(v) = cells.integer(i) {
        let _ = write!(buf, "{v}");
    }
}

/// A batch column downcast once. Asking the `ArrayRef` for each value (`is_null`, then
/// `as_primitive` or `as_string`) is a virtual call and a dynamic type check per cell; on ten
/// million rows of four columns that was a tenth of the decoding thread's time.
struct Cells<'a> {
    nulls: Option<&'a NullBuffer>,
    values: Values<'a>,
}

enum Values<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Int16(&'a [i16]),
    Int32(&'a [i32]),
    Int64(&'a [i64]),
    UInt32(&'a [u32]),
    UInt64(&'a [u64]),
    Float32(&'a [f32]),
    Float64(&'a [f64]),
    Decimal128(&'a [i128], i8),
    /// Timestamps and `Date64`: seconds are `value.div_euclid(per_second)`.
    Instant(&'a [i64], i64),
    /// Days since 1970-01-01.
    Date32(&'a [i32]),
    /// A type no role accepts (the schema check rejected it) or a column not read.
    Other,
}

impl<'a> Cells<'a> {
    fn of(array: &'a ArrayRef) -> Cells<'a> {
        use DataType::*;
        let values = match array.data_type() {
            Utf8 => Values::Utf8(array.as_string::<i32>()),
            LargeUtf8 => Values::LargeUtf8(array.as_string::<i64>()),
            Utf8View => Values::Utf8View(array.as_string_view()),
            Int16 => Values::Int16(array.as_primitive::<Int16Type>().values()),
            Int32 => Values::Int32(array.as_primitive::<Int32Type>().values()),
            Int64 => Values::Int64(array.as_primitive::<Int64Type>().values()),
            UInt32 => Values::UInt32(array.as_primitive::<UInt32Type>().values()),
            UInt64 => Values::UInt64(array.as_primitive::<UInt64Type>().values()),
            Float32 => Values::Float32(array.as_primitive::<Float32Type>().values()),
            Float64 => Values::Float64(array.as_primitive::<Float64Type>().values()),
            Decimal128(_, scale) => Values::Decimal128(array.as_primitive::<Decimal128Type>().values(), *scale),
            Timestamp(TimeUnit::Second, _) => Values::Instant(array.as_primitive::<TimestampSecondType>().values(), 1),
            Timestamp(TimeUnit::Millisecond, _) => {
                Values::Instant(array.as_primitive::<TimestampMillisecondType>().values(), 1_000)
            }
            Timestamp(TimeUnit::Microsecond, _) => {
                Values::Instant(array.as_primitive::<TimestampMicrosecondType>().values(), 1_000_000)
            }
            Timestamp(TimeUnit::Nanosecond, _) => {
                Values::Instant(array.as_primitive::<TimestampNanosecondType>().values(), 1_000_000_000)
            }
            Date32 => Values::Date32(array.as_primitive::<Date32Type>().values()),
            Date64 => Values::Instant(array.as_primitive::<Date64Type>().values(), 1_000),
            _ => Values::Other,
        };
        Cells { nulls: array.nulls(), values }
    }

    #[inline]
    fn is_null(&self, i: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(i))
    }

    /// The text of a string cell.
    #[inline]
    fn text(&self, i: usize) -> Option<&'a str> {
        match &self.values {
            Values::Utf8(a) => Some(a.value(i)),
            Values::LargeUtf8(a) => Some(a.value(i)),
            Values::Utf8View(a) => Some(a.value(i)),
            _ => None,
        }
    }

    /// The value of an integer cell.
    #[inline]
    fn integer(&self, i: usize) -> Option<i128> {
        match self.values {
            Values::Int16(v) => Some(i128::from(v[i])),
            Values::Int32(v) => Some(i128::from(v[i])),
            Values::Int64(v) => Some(i128::from(v[i])),
            Values::UInt32(v) => Some(i128::from(v[i])),
            Values::UInt64(v) => Some(i128::from(v[i])),
            _ => None,
        }
    }
}

enum Amount<'a> {
    Single(Cells<'a>),
    Product(Cells<'a>, Cells<'a>),
}

fn amount_index(source: &AmountSource, which: usize) -> usize {
    match (source, which) {
        (AmountSource::Column(a), _) => *a,
        (AmountSource::Product { quantity, .. }, 0) => *quantity,
        (AmountSource::Product { unit_price, .. }, _) => *unit_price,
    }
}

fn column(batch: &RecordBatch, name: &str) -> ArrayRef {
    // The projection keeps exactly the resolved columns, so the name is present.
    batch
        .column_by_name(name)
        .cloned()
        .unwrap_or_else(|| arrow_array::new_null_array(&DataType::Null, batch.num_rows()))
}

enum Role {
    Id(&'static str),
    Time,
    Number(&'static str),
}

fn check_type(path: &str, columns: &Columns, index: usize, data_type: &DataType, role: Role) -> Result<(), ReadError> {
    use DataType::*;
    let (ok, role_name, expected) = match role {
        Role::Id(name) => (
            matches!(data_type, Utf8 | LargeUtf8 | Utf8View | Int16 | Int32 | Int64 | UInt32 | UInt64),
            name,
            "a string or an integer",
        ),
        Role::Time => (
            matches!(data_type, Timestamp(_, _) | Date32 | Date64 | Utf8 | LargeUtf8 | Utf8View),
            "order time",
            "a timestamp, a date or a string",
        ),
        Role::Number(name) => (
            matches!(
                data_type,
                Float32
                    | Float64
                    | Int16
                    | Int32
                    | Int64
                    | UInt32
                    | UInt64
                    | Decimal128(_, _)
                    | Utf8
                    | LargeUtf8
                    | Utf8View
            ),
            name,
            "a number (float, integer or decimal) or a string",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(ReadError::ParquetType {
            path: path.to_owned(),
            column: columns.name(index).to_owned(),
            role: role_name,
            found: data_type.to_string(),
            expected,
        })
    }
}

fn null(column: usize, what: &str) -> FieldProblem {
    FieldProblem { column: Some(column), reason: format!("the {what} is missing (null)") }
}

/// `s` without surrounding whitespace; most ids have none, and `str::trim` walks chars.
#[inline]
fn trim_id(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

fn id_value<'a>(
    cells: &Cells<'a>,
    i: usize,
    column: usize,
    what: &str,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], FieldProblem> {
    if cells.is_null(i) {
        return Err(null(column, what));
    }
    if let Some(s) = cells.text(i) {
        let s = trim_id(s);
        if s.is_empty() {
            return Err(FieldProblem { column: Some(column), reason: format!("the {what} is empty") });
        }
        return Ok(s.as_bytes());
    }
    write_integer(cells, i, buf);
    Ok(buf.as_slice())
}

fn time_value(cells: &Cells<'_>, i: usize, column: usize, options: &ReadOptions) -> Result<Timestamp, FieldProblem> {
    if cells.is_null(i) {
        return Err(null(column, "order time"));
    }
    let seconds = match cells.values {
        Values::Instant(v, per_second) => v[i].div_euclid(per_second),
        Values::Date32(v) => i64::from(v[i]) * SECONDS_PER_DAY,
        _ => {
            let text = cells.text(i).unwrap_or_default();
            return options
                .time_format
                .parse(text)
                .map_err(|e| FieldProblem { column: Some(column), reason: e.to_string() });
        }
    };
    Ok(Timestamp(seconds))
}

fn number_value(cells: &Cells<'_>, i: usize, column: usize, options: &ReadOptions) -> Result<Money, FieldProblem> {
    if cells.is_null(i) {
        return Err(null(column, "value"));
    }
    let out_of_range =
        |v: String| FieldProblem { column: Some(column), reason: format!("`{v}` is not a finite amount in range") };
    let from_f64 = |v: f64| Money::from_f64(v).ok_or_else(|| out_of_range(v.to_string()));
    match cells.values {
        Values::Float64(v) => from_f64(v[i]),
        Values::Float32(v) => from_f64(f64::from(v[i])),
        Values::Decimal128(v, scale) => decimal_to_money(v[i], scale).ok_or_else(|| out_of_range(v[i].to_string())),
        _ => match cells.integer(i) {
            Some(v) => i64::try_from(v).ok().and_then(Money::from_units).ok_or_else(|| out_of_range(v.to_string())),
            None => {
                let text = cells.text(i).unwrap_or_default();
                Money::parse(text, options.decimal_comma)
                    .map_err(|e| FieldProblem { column: Some(column), reason: e.to_string() })
            }
        },
    }
}

/// Rescales a Decimal128 with `scale` decimals to 4 decimals, rounding half away from zero.
fn decimal_to_money(value: i128, scale: i8) -> Option<Money> {
    let target = 4i32;
    let shift = target - i32::from(scale);
    let scaled = if shift >= 0 {
        value.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let div = 10i128.checked_pow((-shift) as u32)?;
        let half = div / 2;
        if value >= 0 { (value + half) / div } else { (value - half) / div }
    };
    debug_assert_eq!(SCALE, 10_000);
    i64::try_from(scaled).ok().map(Money::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use arrow_array::{
        Date32Array, Date64Array, Decimal128Array, Float32Array, Int16Array, Int64Array, NullArray,
        TimestampMillisecondArray, TimestampNanosecondArray, UInt64Array,
    };

    fn options() -> ReadOptions {
        ReadOptions::default()
    }

    #[test]
    fn every_accepted_arrow_type_reads_through_the_downcast_columns() {
        let mut buf = Vec::new();
        // Ids: strings of all three layouts (trimmed; ASCII fast path and Unicode spaces), integers.
        let ids: [ArrayRef; 5] = [
            Arc::new(StringArray::from(vec![Some(" c1 "), None, Some("c\u{a0}2\u{a0}"), Some("  ")])),
            Arc::new(LargeStringArray::from(vec!["00042", "x", "y", "z"])),
            Arc::new(StringViewArray::from(vec!["a long id beyond twelve bytes", "s", "t", "u"])),
            Arc::new(Int64Array::from(vec![-7, 1, 2, 3])),
            Arc::new(UInt64Array::from(vec![u64::MAX, 1, 2, 3])),
        ];
        let cells: Vec<Cells<'_>> = ids.iter().map(Cells::of).collect();
        assert_eq!(id_value(&cells[0], 0, 0, "customer id", &mut buf).unwrap(), b"c1");
        assert_eq!(
            id_value(&cells[0], 1, 0, "customer id", &mut buf).unwrap_err().reason,
            "the customer id is missing (null)"
        );
        assert_eq!(id_value(&cells[0], 2, 0, "customer id", &mut buf).unwrap(), "c\u{a0}2".as_bytes());
        assert_eq!(id_value(&cells[0], 3, 0, "customer id", &mut buf).unwrap_err().reason, "the customer id is empty");
        assert_eq!(id_value(&cells[1], 0, 0, "order id", &mut buf).unwrap(), b"00042");
        assert_eq!(id_value(&cells[2], 0, 0, "order id", &mut buf).unwrap(), b"a long id beyond twelve bytes");
        assert_eq!(id_value(&cells[3], 0, 0, "order id", &mut buf).unwrap(), b"-7");
        assert_eq!(id_value(&cells[4], 0, 0, "order id", &mut buf).unwrap(), b"18446744073709551615");

        // Times: every unit, dates, and strings parsed like text.
        let day = 19_782i64; // 2024-02-29
        let times: [ArrayRef; 6] = [
            Arc::new(TimestampMillisecondArray::from(vec![day * 86_400_000 + 1_999, -1])),
            Arc::new(TimestampNanosecondArray::from(vec![day * 86_400_000_000_000 + 5, -1])),
            Arc::new(Date32Array::from(vec![day as i32, -1])),
            Arc::new(Date64Array::from(vec![day * 86_400_000, -1])),
            Arc::new(StringArray::from(vec!["2024-02-29T00:00:01Z", " 1709164801 "])),
            Arc::new(NullArray::new(2)),
        ];
        let seconds: Vec<(i64, i64)> = times
            .iter()
            .take(5)
            .map(|a| {
                let c = Cells::of(a);
                (time_value(&c, 0, 0, &options()).unwrap().0, time_value(&c, 1, 0, &options()).unwrap().0)
            })
            .collect();
        let t = day * 86_400;
        assert_eq!(seconds, [(t + 1, -1), (t, -1), (t, -86_400), (t, -1), (t + 1, t + 1)]);
        // A column the schema check would refuse reads as an unparseable empty text.
        assert!(time_value(&Cells::of(&times[5]), 0, 0, &options()).is_err());

        // Amounts: floats, integers, decimals, strings (plain and general), nulls, overflow.
        let amounts: [ArrayRef; 5] = [
            Arc::new(Float32Array::from(vec![Some(2.5), None])),
            Arc::new(Int16Array::from(vec![-3, 0])),
            Arc::new(Decimal128Array::from(vec![123_456, 0]).with_precision_and_scale(10, 5).unwrap()),
            Arc::new(StringArray::from(vec!["19.65", "$ 1,234.50"])),
            Arc::new(UInt64Array::from(vec![u64::MAX, 1])),
        ];
        let c: Vec<Cells<'_>> = amounts.iter().map(Cells::of).collect();
        let raw = |cells: &Cells<'_>, i| number_value(cells, i, 0, &options()).map(Money::raw).map_err(|e| e.reason);
        assert_eq!(raw(&c[0], 0), Ok(25_000));
        assert_eq!(raw(&c[0], 1).unwrap_err(), "the value is missing (null)");
        assert_eq!(raw(&c[1], 0), Ok(-30_000));
        assert_eq!(raw(&c[2], 0), Ok(12_346));
        assert_eq!((raw(&c[3], 0), raw(&c[3], 1)), (Ok(196_500), Ok(12_345_000)));
        assert_eq!(raw(&c[4], 0).unwrap_err(), "`18446744073709551615` is not a finite amount in range");
        assert_eq!(raw(&c[4], 1), Ok(10_000));
    }

    #[test]
    fn decimals_are_rescaled_exactly() {
        assert_eq!(decimal_to_money(1250, 2), Some(Money::from_raw(125_000)));
        assert_eq!(decimal_to_money(123_456, 5), Some(Money::from_raw(12_346)));
        assert_eq!(decimal_to_money(-123_455, 5), Some(Money::from_raw(-12_346)));
        assert_eq!(decimal_to_money(7, -2), Some(Money::from_raw(7_000_000)));
        assert_eq!(decimal_to_money(i128::MAX, 0), None);
    }
}
