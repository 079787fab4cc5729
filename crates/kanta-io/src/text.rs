//! The text reader: delimited text (any one-byte delimiter, quoted fields, via the `csv` crate)
//! and whitespace-separated text (the CDNOW files), UTF-8 with or without a BOM, plain or gzip
//! (decoded before it gets here).
//!
//! Rows are parsed on the pipeline's parsing thread; plain amounts and ISO times are parsed
//! from the bytes, anything else by the general parsers, which agree wherever the fast paths
//! answer.

use std::io::{self, BufRead};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kanta_core::aggregate::OrderLine;
use kanta_core::money::Money;
use kanta_core::time::TimeFormat;

use crate::columns::{AmountSource, Columns, LineColumns};
use crate::error::{Location, ReadError};
use crate::lines::{self, DetailCells, LineDetail};
use crate::pipeline::{self, RowSink, Target};
use crate::rows::{Delimiter, FieldProblem, Format, Progress, ReadOptions, ReadSummary, RowParser};

/// Whether the first bytes of a file are not text: a NUL byte (no text encoding kanta reads has
/// one; UTF-16 does, and is refused here too), or bytes that are not UTF-8 with more than one in
/// twenty a control character. A Latin-1 export (invalid UTF-8, few control characters) still
/// passes, so its rows get their own precise errors.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    let head = &head[..head.len().min(8_192)];
    if head.contains(&0) {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        // Valid up to a character cut off by the end of the sample.
        Err(e) if e.error_len().is_none() => false,
        Err(_) => {
            let control = head.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')).count();
            control * 20 > head.len()
        }
    }
}

/// Guesses the delimiter from the first line: the most frequent of `,` `;` tab `|` outside
/// quotes, else whitespace when the line has blanks between fields, else `,`.
fn sniff_delimiter(first_line: &[u8]) -> Delimiter {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in first_line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = candidates.iter().position(|&c| c == b) {
            counts[i] += 1;
        }
    }
    let (best, &n) = counts.iter().enumerate().max_by_key(|&(i, n)| (n, std::cmp::Reverse(i))).unwrap_or((0, &0));
    if n > 0 {
        return Delimiter::Byte(candidates[best]);
    }
    let trimmed = first_line.trim_ascii();
    if trimmed.iter().any(|b| *b == b' ' || *b == b'\t') { Delimiter::Whitespace } else { Delimiter::Byte(b',') }
}

#[allow(clippy::too_many_arguments)] // private; the arguments are the reader's state
pub(crate) fn read_text<R: BufRead + Send>(
    mut reader: R,
    gzip: bool,
    path: &str,
    options: &ReadOptions,
    target: Target<'_>,
    progress: &dyn Progress,
    count: &Arc<AtomicU64>,
) -> Result<ReadSummary, ReadError> {
    let io_err = |line, source| ReadError::Io { path: path.to_owned(), line, source };
    // Skip a UTF-8 byte-order mark.
    let head = reader.fill_buf().map_err(|e| io_err(None, e))?;
    if head.is_empty() {
        return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
    }
    if looks_binary(head) {
        return Err(ReadError::NotText { path: path.to_owned() });
    }
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    let delimiter = match options.delimiter {
        Some(d) => d,
        None => {
            let head = reader.fill_buf().map_err(|e| io_err(None, e))?;
            let end = memchr::memchr(b'\n', head).unwrap_or(head.len());
            sniff_delimiter(&head[..end])
        }
    };
    let bytes_read = || count.load(Ordering::Relaxed);
    let report = |rows| progress.update(bytes_read(), rows);
    let mut rows = RowParser::new(path, options, target.lines.is_some());
    let (format, columns) = match delimiter {
        Delimiter::Byte(d) => {
            let mut csv = csv::ReaderBuilder::new()
                .delimiter(d)
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(1 << 16)
                .from_reader(reader);
            let mut record = csv::ByteRecord::new();
            let csv_err = move |e: csv::Error, line: u64| match e.into_kind() {
                csv::ErrorKind::Io(source) => ReadError::Io { path: path.to_owned(), line: Some(line), source },
                other => ReadError::Io {
                    path: path.to_owned(),
                    line: Some(line),
                    source: io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
                },
            };
            let mut line = 0;
            let columns = match &options.column_names {
                Some(names) => rows.resolve(names.clone())?,
                None => {
                    if !csv.read_byte_record(&mut record).map_err(|e| csv_err(e, 1))? {
                        return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
                    }
                    line = record.position().map_or(1, |p| p.line());
                    let names = header_names(path, record.iter())?;
                    rows.resolve(names)?
                }
            };
            let cols = &columns;
            pipeline::run(
                move |sink| {
                    while csv.read_byte_record(&mut record).map_err(|e| csv_err(e, line + 1))? {
                        line = record.position().map_or(line + 1, |p| p.line());
                        let parsed = parse_row(sink, cols, &|i| record.get(i), record.len(), options);
                        if !sink.row(Location::Line(line), parsed) {
                            break;
                        }
                    }
                    Ok(())
                },
                &report,
                cols,
                &mut rows,
                target,
            )?;
            (Format::Delimited(d), columns)
        }
        Delimiter::Whitespace => {
            let mut buf = Vec::with_capacity(256);
            let mut spans: Vec<(usize, usize)> = Vec::with_capacity(16);
            let mut line = 0u64;
            let columns = match &options.column_names {
                Some(names) => rows.resolve(names.clone())?,
                None => loop {
                    buf.clear();
                    if reader.read_until(b'\n', &mut buf).map_err(|e| io_err(Some(line + 1), e))? == 0 {
                        return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
                    }
                    line += 1;
                    split_whitespace(&buf, &mut spans);
                    if !spans.is_empty() {
                        let names = header_names(path, spans.iter().map(|&(s, e)| &buf[s..e]))?;
                        break rows.resolve(names)?;
                    }
                },
            };
            let cols = &columns;
            pipeline::run(
                move |sink| {
                    loop {
                        buf.clear();
                        let n = reader.read_until(b'\n', &mut buf).map_err(|e| io_err(Some(line + 1), e))?;
                        if n == 0 {
                            break;
                        }
                        line += 1;
                        split_whitespace(&buf, &mut spans);
                        if spans.is_empty() {
                            continue;
                        }
                        let field = |i: usize| spans.get(i).map(|&(s, e)| &buf[s..e]);
                        let parsed = parse_row(sink, cols, &field, spans.len(), options);
                        if !sink.row(Location::Line(line), parsed) {
                            break;
                        }
                    }
                    Ok(())
                },
                &report,
                cols,
                &mut rows,
                target,
            )?;
            (Format::Whitespace, columns)
        }
    };
    if rows.rows == 0 {
        return Err(ReadError::Empty { path: path.to_owned(), header_only: options.column_names.is_none() });
    }
    progress.update(bytes_read(), rows.rows);
    Ok(rows.finish(format, gzip, columns, bytes_read()))
}

fn split_whitespace(line: &[u8], spans: &mut Vec<(usize, usize)>) {
    spans.clear();
    let mut i = 0;
    let n = line.len();
    while i < n {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < n && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > start {
            spans.push((start, i));
        }
    }
}

fn header_names<'a>(path: &str, fields: impl Iterator<Item = &'a [u8]>) -> Result<Vec<String>, ReadError> {
    let names: Vec<String> = fields.map(|f| String::from_utf8_lossy(f).trim().to_owned()).collect();
    // A header whose fields parse as a date and a number is most likely the first data row.
    let has_date = names.iter().any(|n| n.len() >= 8 && TimeFormat::Auto.parse(n).is_ok());
    let has_number = names.iter().filter(|n| Money::parse(n, false).is_ok()).count() >= 2;
    if has_date && has_number {
        let mut line = names.join(" ");
        if line.len() > 80 {
            let cut = (0..=80).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            line.truncate(cut);
            line.push('…');
        }
        return Err(ReadError::HeaderLooksLikeData { path: path.to_owned(), line });
    }
    Ok(names)
}

fn text(bytes: &[u8], column: usize) -> Result<&str, FieldProblem> {
    std::str::from_utf8(bytes).map_err(|_| FieldProblem {
        column: Some(column),
        reason: format!("`{}` is not valid UTF-8", String::from_utf8_lossy(bytes)),
    })
}

#[inline]
fn parse_line<'r>(
    columns: &Columns,
    field: &impl Fn(usize) -> Option<&'r [u8]>,
    width: usize,
    options: &ReadOptions,
) -> Result<OrderLine<'r>, FieldProblem> {
    let get = |i: usize| field(i).ok_or_else(|| missing_field(i, width));
    let customer = get(columns.customer)?.trim_ascii();
    if customer.is_empty() {
        return Err(FieldProblem { column: Some(columns.customer), reason: "the customer id is empty".to_owned() });
    }
    text(customer, columns.customer)?;
    let order = match columns.order {
        Some(o) => {
            let id = get(o)?.trim_ascii();
            if id.is_empty() {
                return Err(FieldProblem { column: Some(o), reason: "the order id is empty".to_owned() });
            }
            text(id, o)?;
            Some(id)
        }
        None => None,
    };
    let time_bytes = get(columns.time)?;
    let time = match options.time_format.parse_iso_bytes(time_bytes) {
        Some(time) => time,
        None => options
            .time_format
            .parse(text(time_bytes, columns.time)?)
            .map_err(|e| FieldProblem { column: Some(columns.time), reason: e.to_string() })?,
    };
    let money = |i: usize| number(field, width, i, options);
    let amount = match columns.amount {
        AmountSource::Column(a) => money(a)?,
        AmountSource::Product { quantity, unit_price } => {
            let q = money(quantity)?;
            let p = money(unit_price)?;
            p.times_quantity(q).ok_or_else(|| FieldProblem {
                column: Some(quantity),
                reason: format!("quantity × unit price is out of range ({} × {})", q.to_f64(), p.to_f64()),
            })?
        }
    };
    Ok(OrderLine { customer, order, time, amount })
}

/// Parses a text row, and its product when lines are kept (handed to the sink before the row).
#[inline]
fn parse_row<'r>(
    sink: &mut RowSink<'_, '_>,
    columns: &Columns,
    field: &impl Fn(usize) -> Option<&'r [u8]>,
    width: usize,
    options: &ReadOptions,
) -> Result<OrderLine<'r>, FieldProblem> {
    let line = parse_line(columns, field, width, options)?;
    if let Some(lines) = &columns.lines
        && sink.keeps_details()
        && let Some(detail) = parse_detail(lines, field, width, line.amount, options)?
    {
        sink.detail(detail);
    }
    Ok(line)
}

fn missing_field(i: usize, width: usize) -> FieldProblem {
    FieldProblem { column: Some(i), reason: format!("the row has {width} fields, so it has no field {}", i + 1) }
}

/// Field `i` of a text row as a decimal number (an amount, quantity or price).
fn number<'r>(
    field: &impl Fn(usize) -> Option<&'r [u8]>,
    width: usize,
    i: usize,
    options: &ReadOptions,
) -> Result<Money, FieldProblem> {
    let bytes = field(i).ok_or_else(|| missing_field(i, width))?;
    // A plain amount is all ASCII: no UTF-8 check needed.
    if let Some(plain) = Money::parse_plain(bytes, options.decimal_comma) {
        return Ok(plain);
    }
    Money::parse(text(bytes, i)?, options.decimal_comma)
        .map_err(|e| FieldProblem { column: Some(i), reason: e.to_string() })
}

/// The product cells of a text row ([`lines::check`] has the rules).
fn parse_detail<'r>(
    columns: &LineColumns,
    field: &impl Fn(usize) -> Option<&'r [u8]>,
    width: usize,
    amount: Money,
    options: &ReadOptions,
) -> Result<Option<LineDetail<'r>>, FieldProblem> {
    let get = |i: usize| field(i).ok_or_else(|| missing_field(i, width));
    let number = |i: usize| number(field, width, i, options);
    let cells = DetailCells {
        product: get(columns.product)?,
        category: columns.category.map(get).transpose()?,
        quantity: columns.quantity.map(number).transpose()?,
        unit_price: columns.unit_price.map(number).transpose()?,
    };
    lines::check(columns, cells, amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_heads_are_told_from_text() {
        // Regression (issue 16): random bytes were read as a header and printed back.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..3_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(looks_binary(&random));
        assert!(looks_binary(b"c\0u\0s\0t\0o\0m\0e\0r\0"), "UTF-16");
        assert!(looks_binary(&[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13]));
        assert!(!looks_binary(b"customer_id,amount\nc1,12.50\n"));
        assert!(!looks_binary("asiakas;summa\nmatti;12,50 \u{20ac}\n".as_bytes()));
        assert!(!looks_binary(b"customer,amount\ncaf\xe9,12.50\n"), "Latin-1 is text with bad rows");
        let cut = "id\n\u{20ac}".as_bytes();
        assert!(!looks_binary(&cut[..cut.len() - 1]), "a character cut by the sample's end");
    }

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c"), Delimiter::Byte(b','));
        assert_eq!(sniff_delimiter(b"a;b;\"c,d\""), Delimiter::Byte(b';'));
        assert_eq!(sniff_delimiter(b"a\tb\tc"), Delimiter::Byte(b'\t'));
        assert_eq!(sniff_delimiter(b"a|b"), Delimiter::Byte(b'|'));
        assert_eq!(sniff_delimiter(b" customer_id  date number_of_cds  dollar_value"), Delimiter::Whitespace);
        assert_eq!(sniff_delimiter(b"single"), Delimiter::Byte(b','));
    }

    #[test]
    fn splits_on_runs_of_blanks() {
        let mut spans = Vec::new();
        split_whitespace(b" 00001 19970101  1   11.77\r\n", &mut spans);
        assert_eq!(spans, vec![(1, 6), (7, 15), (17, 18), (21, 26)]);
    }
}
