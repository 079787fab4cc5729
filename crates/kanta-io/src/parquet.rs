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
use arrow_array::{Array, ArrayRef, RecordBatch};
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
use crate::read::{FieldProblem, Format, Progress, ReadOptions, ReadSummary, RowParser};

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
                let col = |i: usize| column(&batch, cols.name(i));
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
    customer: &'a ArrayRef,
    order: Option<&'a ArrayRef>,
    time: &ArrayRef,
    amount: &Amount,
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
struct DetailArrays<'c> {
    columns: &'c LineColumns,
    product: ArrayRef,
    category: Option<ArrayRef>,
    quantity: Option<ArrayRef>,
    unit_price: Option<ArrayRef>,
}

impl DetailArrays<'_> {
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
        let number = |array: &Option<ArrayRef>, column: Option<usize>| match (array, column) {
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
fn cell_text<'a>(array: &'a ArrayRef, i: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    if array.is_null(i) {
        return b"";
    }
    if let Some(s) = string_at(array, i) {
        return s.as_bytes();
    }
    write_integer(array, i, buf);
    buf.as_slice()
}

/// Writes an integer cell in decimal into `buf` (cleared first; left empty for other types).
fn write_integer(array: &ArrayRef, i: usize, buf: &mut Vec<u8>) {
    buf.clear();
    let _ = match array.data_type() {
        DataType::Int16 => write!(buf, "{}", array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => write!(buf, "{}", array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => write!(buf, "{}", array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt32 => write!(buf, "{}", array.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => write!(buf, "{}", array.as_primitive::<UInt64Type>().value(i)),
        _ => Ok(()),
    };
}

enum Amount {
    Single(ArrayRef),
    Product(ArrayRef, ArrayRef),
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

fn string_at(array: &ArrayRef, i: usize) -> Option<&str> {
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(array.as_string_view().value(i)),
        _ => None,
    }
}

fn id_value<'a>(
    array: &'a ArrayRef,
    i: usize,
    column: usize,
    what: &str,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], FieldProblem> {
    if array.is_null(i) {
        return Err(null(column, what));
    }
    if let Some(s) = string_at(array, i) {
        let s = s.trim();
        if s.is_empty() {
            return Err(FieldProblem { column: Some(column), reason: format!("the {what} is empty") });
        }
        return Ok(s.as_bytes());
    }
    write_integer(array, i, buf);
    Ok(buf.as_slice())
}

fn time_value(array: &ArrayRef, i: usize, column: usize, options: &ReadOptions) -> Result<Timestamp, FieldProblem> {
    if array.is_null(i) {
        return Err(null(column, "order time"));
    }
    let seconds = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => array.as_primitive::<TimestampSecondType>().value(i),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().value(i).div_euclid(1_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().value(i).div_euclid(1_000_000)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1_000_000_000)
        }
        DataType::Date32 => i64::from(array.as_primitive::<Date32Type>().value(i)) * SECONDS_PER_DAY,
        DataType::Date64 => array.as_primitive::<Date64Type>().value(i).div_euclid(1_000),
        _ => {
            let text = string_at(array, i).unwrap_or_default();
            return options
                .time_format
                .parse(text)
                .map_err(|e| FieldProblem { column: Some(column), reason: e.to_string() });
        }
    };
    Ok(Timestamp(seconds))
}

fn number_value(array: &ArrayRef, i: usize, column: usize, options: &ReadOptions) -> Result<Money, FieldProblem> {
    if array.is_null(i) {
        return Err(null(column, "value"));
    }
    let out_of_range =
        |v: String| FieldProblem { column: Some(column), reason: format!("`{v}` is not a finite amount in range") };
    let from_f64 = |v: f64| Money::from_f64(v).ok_or_else(|| out_of_range(v.to_string()));
    let from_int = |v: i64| Money::from_units(v).ok_or_else(|| out_of_range(v.to_string()));
    match array.data_type() {
        DataType::Float64 => from_f64(array.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => from_f64(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Int16 => from_int(i64::from(array.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => from_int(i64::from(array.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => from_int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt32 => from_int(i64::from(array.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            i64::try_from(v).map_err(|_| out_of_range(v.to_string())).and_then(from_int)
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(i);
            decimal_to_money(v, *scale).ok_or_else(|| out_of_range(v.to_string()))
        }
        _ => {
            let text = string_at(array, i).unwrap_or_default();
            Money::parse(text, options.decimal_comma)
                .map_err(|e| FieldProblem { column: Some(column), reason: e.to_string() })
        }
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

    #[test]
    fn decimals_are_rescaled_exactly() {
        assert_eq!(decimal_to_money(1250, 2), Some(Money::from_raw(125_000)));
        assert_eq!(decimal_to_money(123_456, 5), Some(Money::from_raw(12_346)));
        assert_eq!(decimal_to_money(-123_455, 5), Some(Money::from_raw(-12_346)));
        assert_eq!(decimal_to_money(7, -2), Some(Money::from_raw(7_000_000)));
        assert_eq!(decimal_to_money(i128::MAX, 0), None);
    }
}
