//! Per-customer summary files — `lifetimes`' `summary_data_from_transaction_data` output,
//! kanta's own `customers.csv`, BG/BB pattern files — and cohort survivor tables.
//!
//! Columns are found by name (case and punctuation ignored):
//!
//! | role | names |
//! |---|---|
//! | frequency | `frequency`, `x`, `freq` |
//! | recency | `recency`, `t_x` |
//! | T | `T`, `age` |
//! | periods (BG/BB) | `periods`, `n`, `n_periods` |
//! | monetary | `monetary_value`, `monetary`, `zbar`, `mean_spend` |
//! | weight (optional) | `weights`, `weight`, `count`, `customers` |
//!
//! A summary is opened like an order log (`crate::read::open_input`: plain or gzip text) and read
//! on two threads (`crate::pipeline::two_threads`): the parsing thread splits the records
//! (`crate::delimited`) and copies their fields into batches, this thread parses the numbers (plain
//! decimals by hand, `crate::decimal`) and checks them in file order, so the first bad cell is
//! the one reported, with its file, line, column and value.

use crate::columns::normalize;
use crate::decimal;
use crate::delimited::{Fields, Table};
use crate::error::{Location, ReadError, RowError};
use crate::pipeline::{Batch, Sender, two_threads};

/// What the summary is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryKind {
    /// Continuous time: frequency, recency and T (monetary optional).
    Continuous,
    /// Continuous time with spend: frequency and monetary (recency and T optional).
    Spend,
    /// Discrete time (BG/BB): frequency, recency and periods.
    Discrete,
}

/// One row of a summary file.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// 1-based line number in the file.
    pub line: u64,
    /// Repeat purchases (an integer ≥ 0).
    pub frequency: u32,
    /// Time of the last repeat purchase (0 when there is none); a period number for BG/BB.
    pub recency: f64,
    /// Observation length `T`, or the number of periods for BG/BB.
    pub t: f64,
    /// Mean value of the repeat purchases, when the file has it.
    pub monetary: Option<f64>,
    /// How many customers share this row (1 without a weight column).
    pub weight: f64,
}

/// A summary file: its header, parsed rows and, when asked for, every row's fields (to echo in
/// predictions).
#[derive(Debug, Clone)]
pub struct SummaryTable {
    /// Column names as in the file.
    pub headers: Vec<String>,
    /// The parsed rows, in file order.
    pub rows: Vec<SummaryRow>,
    /// Whether the file has a monetary column.
    pub has_monetary: bool,
    /// The fields of every row (trimmed, unquoted), one after another, when kept.
    fields: Vec<u8>,
    /// Where each field ends in `fields`: `headers.len()` entries per row.
    ends: Vec<usize>,
}

impl SummaryTable {
    /// The fields of row `index` as in the file (trimmed and unquoted), when the read kept
    /// them (`keep_records`); empty otherwise.
    pub fn record(&self, index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let width = self.headers.len();
        let at = index * width;
        let ends = self.ends.get(at..at + width).unwrap_or_default();
        let mut start = at.checked_sub(1).and_then(|i| self.ends.get(i)).copied().unwrap_or(0);
        ends.iter().map(move |&end| {
            let field = self.fields.get(start..end).unwrap_or_default();
            start = end;
            field
        })
    }
}

const FREQUENCY: &[&str] = &["frequency", "x", "freq"];
const RECENCY: &[&str] = &["recency", "tx"];
const T: &[&str] = &["t", "age"];
const PERIODS: &[&str] = &["periods", "n", "nperiods"];
const MONETARY: &[&str] = &["monetaryvalue", "monetary", "zbar", "meanspend"];
const WEIGHT: &[&str] = &["weights", "weight", "count", "customers"];

fn find(headers: &[String], candidates: &[&str]) -> Option<usize> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize(h)).collect();
    candidates.iter().find_map(|c| normalized.iter().position(|n| n == c))
}

fn missing(path: &str, role: &'static str, candidates: &[&str], headers: &[String]) -> ReadError {
    ReadError::MissingColumn {
        path: path.to_owned(),
        role,
        looked_for: candidates.join(", "),
        available: headers.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
        flag: "a header with one of those names",
    }
}

/// A cell as text for a message.
fn shown(value: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value)
}

/// A cell parsed as a finite number ≥ 0.
fn number(path: &str, line: u64, column: &str, value: &[u8]) -> Result<f64, ReadError> {
    // A plain decimal is finite and ≥ 0 by its syntax.
    if let Some(v) = decimal::parse_plain(value) {
        return Ok(v);
    }
    let bad = |reason: String| {
        ReadError::Row(RowError {
            path: path.to_owned(),
            location: Location::Line(line),
            column: Some(column.to_owned()),
            reason,
        })
    };
    let text = shown(value);
    let text = text.trim();
    let v: f64 = text.parse().map_err(|_| bad(format!("cannot parse `{text}` as a number")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad(format!("`{text}` must be a finite number ≥ 0")));
    }
    Ok(v)
}

/// Records on their way from the parsing thread: each row's line and its fields.
#[derive(Default)]
struct Records {
    lines: Vec<u64>,
    fields: Vec<u8>,
    /// Where each field ends in `fields`, a fixed number per row.
    ends: Vec<usize>,
}

impl Batch for Records {
    fn rows(&self) -> usize {
        self.lines.len()
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.fields.clear();
        self.ends.clear();
    }
}

impl Records {
    fn push(&mut self, line: u64, record: &Fields) {
        self.lines.push(line);
        let (bytes, ends) = record.parts();
        let base = self.fields.len();
        self.fields.extend_from_slice(bytes);
        self.ends.extend(ends.iter().map(|end| base + end));
    }
}

/// The columns a summary's rows are parsed from.
struct Roles {
    frequency: usize,
    recency: Option<usize>,
    t: Option<usize>,
    monetary: Option<usize>,
    weight: Option<usize>,
}

/// Parses and checks one row (`field(i)` is its field `i`).
fn parse_row<'f>(
    path: &str,
    headers: &[String],
    roles: &Roles,
    line: u64,
    field: impl Fn(usize) -> &'f [u8],
) -> Result<SummaryRow, ReadError> {
    let get = |i: usize| number(path, line, &headers[i], field(i));
    let bad = |i: usize, reason: String| {
        ReadError::Row(RowError {
            path: path.to_owned(),
            location: Location::Line(line),
            column: Some(headers[i].clone()),
            reason,
        })
    };
    let frequency = roles.frequency;
    let f = get(frequency)?;
    if f.fract() != 0.0 || f > f64::from(u32::MAX) {
        return Err(bad(frequency, format!("`{}` is not a whole number of purchases", shown(field(frequency)))));
    }
    let recency_value = roles.recency.map(get).transpose()?.unwrap_or(0.0);
    let t_value = roles.t.map(get).transpose()?.unwrap_or(recency_value);
    if let (Some(r), Some(t_col)) = (roles.recency, roles.t) {
        if recency_value > t_value {
            return Err(bad(r, format!("recency `{}` is after {} `{t_value}`", shown(field(r)), headers[t_col])));
        }
        if f == 0.0 && recency_value != 0.0 {
            return Err(bad(r, format!("recency `{}` must be 0 when frequency is 0", shown(field(r)))));
        }
    }
    let weight = roles.weight.map(get).transpose()?.unwrap_or(1.0);
    Ok(SummaryRow {
        line,
        frequency: f as u32,
        recency: recency_value,
        t: t_value,
        monetary: roles.monetary.map(get).transpose()?,
        weight,
    })
}

/// Reads a per-customer summary file (plain or gzip text); `keep_records` keeps every row's
/// fields (to echo them in predictions, [`SummaryTable::record`]).
pub fn read_summary(path: &str, kind: SummaryKind, keep_records: bool) -> Result<SummaryTable, ReadError> {
    let mut out = SummaryTable {
        headers: Vec::new(),
        rows: Vec::new(),
        has_monetary: false,
        fields: Vec::new(),
        ends: Vec::new(),
    };
    let (rows, fields, ends) = (&mut out.rows, &mut out.fields, &mut out.ends);
    let header = read(
        path,
        kind,
        keep_records,
        |row| rows.push(row),
        |batch: &Records| {
            let base = fields.len();
            fields.extend_from_slice(&batch.fields);
            ends.extend(batch.ends.iter().map(|end| base + end));
        },
    )?;
    out.headers = header.headers;
    out.has_monetary = header.has_monetary;
    Ok(out)
}

/// A summary file's header, as [`read_summary_each`] found it.
#[derive(Debug, Clone)]
pub struct SummaryHeader {
    /// Column names as in the file.
    pub headers: Vec<String>,
    /// Whether the file has a monetary column.
    pub has_monetary: bool,
}

/// Reads a per-customer summary file like [`read_summary`], handing each checked row to
/// `each` in file order instead of keeping a table: `kanta fit` pushes rows straight into the
/// model's compressed histories.
pub fn read_summary_each(
    path: &str,
    kind: SummaryKind,
    each: impl FnMut(SummaryRow),
) -> Result<SummaryHeader, ReadError> {
    read(path, kind, false, each, |_: &Records| {})
}

/// The one summary read: each row to `each`; with `keep_records`, each batch's fields to `keep`.
fn read(
    path: &str,
    kind: SummaryKind,
    keep_records: bool,
    mut each: impl FnMut(SummaryRow),
    mut keep: impl FnMut(&Records),
) -> Result<SummaryHeader, ReadError> {
    let mut table = Table::open(path)?;
    let headers = table.headers.clone();
    let col =
        |role, candidates: &[&str]| find(&headers, candidates).ok_or_else(|| missing(path, role, candidates, &headers));
    let frequency = col("frequency", FREQUENCY)?;
    let (recency, t) = match kind {
        SummaryKind::Continuous => (Some(col("recency", RECENCY)?), Some(col("T", T)?)),
        SummaryKind::Discrete => (Some(col("recency", RECENCY)?), Some(col("periods", PERIODS)?)),
        SummaryKind::Spend => (find(&headers, RECENCY), find(&headers, T)),
    };
    let monetary = match kind {
        SummaryKind::Spend => Some(col("monetary", MONETARY)?),
        _ => find(&headers, MONETARY),
    };
    // Fitting a transaction model needs no spend: skip parsing it unless the rows are kept.
    let parse_monetary = kind == SummaryKind::Spend || keep_records;
    let roles =
        Roles { frequency, recency, t, monetary: monetary.filter(|_| parse_monetary), weight: find(&headers, WEIGHT) };
    let width = headers.len();
    two_threads(
        move |sender: &mut Sender<Records>| {
            let mut record = Fields::default();
            while let Some(line) = table.next(&mut record)? {
                sender.batch.push(line, &record);
                if !sender.send_if_full() {
                    break;
                }
            }
            Ok(())
        },
        |batch: &Records| {
            for (row, &line) in batch.lines.iter().enumerate() {
                // Every row has `width` fields (`Table::next` checks it); field k of the batch
                // starts where field k − 1 ends.
                let field = |i: usize| {
                    let k = row * width + i;
                    let start = k.checked_sub(1).map_or(0, |previous| batch.ends[previous]);
                    &batch.fields[start..batch.ends[k]]
                };
                each(parse_row(path, &headers, &roles, line, field)?);
            }
            if keep_records {
                keep(batch);
            }
            Ok(())
        },
    )?;
    Ok(SummaryHeader { headers, has_monetary: monetary.is_some() })
}

/// Reads a cohort's survivors: columns `period` (0, 1, 2, … in order) and `customers` (also
/// `active`, `survivors`, `count`), the number still active at the start of each period.
pub fn read_survivors(path: &str) -> Result<Vec<f64>, ReadError> {
    let mut table = Table::open(path)?;
    let headers = table.headers.clone();
    let period_candidates: &[&str] = &["period", "year", "month", "t"];
    let count_candidates: &[&str] = &["customers", "active", "survivors", "count", "alive"];
    let period =
        find(&headers, period_candidates).ok_or_else(|| missing(path, "period", period_candidates, &headers))?;
    let count =
        find(&headers, count_candidates).ok_or_else(|| missing(path, "customers", count_candidates, &headers))?;
    let mut out = Vec::new();
    let mut fields = Fields::default();
    while let Some(line) = table.next(&mut fields)? {
        let cell = |i: usize| fields.get(i);
        let p = number(path, line, &headers[period], cell(period))?;
        if p != out.len() as f64 {
            return Err(ReadError::Row(RowError {
                path: path.to_owned(),
                location: Location::Line(line),
                column: Some(headers[period].clone()),
                reason: format!(
                    "expected period {} (periods count 0, 1, 2, … from the start of the cohort), found `{}`",
                    out.len(),
                    shown(cell(period))
                ),
            }));
        }
        out.push(number(path, line, &headers[count], cell(count))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn lifetimes_and_cdnow_names_are_recognised() {
        let f = file("customer_id,frequency,recency,T,monetary_value\n7,2.0,30.43,38.86,22.35\n8,0,0,38.86,0\n");
        let t = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(
            t.rows[0],
            SummaryRow { line: 2, frequency: 2, recency: 30.43, t: 38.86, monetary: Some(22.35), weight: 1.0 }
        );
        assert!(t.has_monetary);
        let f = file("ID;x;t_x;T;zbar\n1;2;30.43;38.86;22.35\n");
        let t = read_summary(f.path().to_str().unwrap(), SummaryKind::Spend, true).unwrap();
        assert_eq!(t.rows[0].monetary, Some(22.35));
        let f = file("frequency,recency,periods,weights\n0,0,6,3464\n1,1,6,1091\n");
        let t = read_summary(f.path().to_str().unwrap(), SummaryKind::Discrete, true).unwrap();
        assert_eq!((t.rows[1].frequency, t.rows[1].recency, t.rows[1].t, t.rows[1].weight), (1, 1.0, 6.0, 1091.0));
    }

    #[test]
    fn bad_cells_name_file_line_column_and_value() {
        let f = file("frequency,recency,T\n1,2,3\n1,abc,3\n");
        let path = f.path().to_str().unwrap().to_owned();
        let err = read_summary(&path, SummaryKind::Continuous, true).unwrap_err().to_string();
        assert_eq!(err, format!("{path}:3: column `recency`: cannot parse `abc` as a number"));
        let f = file("frequency,recency,T\n1.5,2,3\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.ends_with(":2: column `frequency`: `1.5` is not a whole number of purchases"), "{err}");
        let f = file("frequency,recency,T\n1,5,3\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.ends_with(":2: column `recency`: recency `5` is after T `3`"), "{err}");
        let f = file("frequency,recency,T\n0,1,3\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.contains("must be 0 when frequency is 0"), "{err}");
        let f = file("frequency,recency,T\n1,-2,3\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.contains("`-2` must be a finite number ≥ 0"), "{err}");
        let f = file("frequency,T\n1,3\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.contains("no recency column found"), "{err}");
        let f = file("frequency,recency,T\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap_err().to_string();
        assert!(err.contains("header line but no rows"), "{err}");
    }

    #[test]
    fn gzip_reads_like_plain_text_and_records_keep_the_trimmed_fields() {
        let text = "id, frequency ,recency,T,monetary_value\n c1 ,2, 30.43,38.86,\"22.35\"\n\"c,2\",0,0,38.86,0\n";
        let plain = file(text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let mut zipped = tempfile::NamedTempFile::new().unwrap();
        zipped.write_all(&gz.finish().unwrap()).unwrap();
        let read = |f: &tempfile::NamedTempFile| {
            read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, true).unwrap()
        };
        let (a, b) = (read(&plain), read(&zipped));
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.headers, ["id", "frequency", "recency", "T", "monetary_value"]);
        assert_eq!(
            a.rows,
            [
                SummaryRow { line: 2, frequency: 2, recency: 30.43, t: 38.86, monetary: Some(22.35), weight: 1.0 },
                SummaryRow { line: 3, frequency: 0, recency: 0.0, t: 38.86, monetary: Some(0.0), weight: 1.0 },
            ]
        );
        let record =
            |t: &SummaryTable, i| t.record(i).map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>();
        assert_eq!(record(&b, 0), ["c1", "2", "30.43", "38.86", "22.35"]);
        assert_eq!(record(&b, 1), ["c,2", "0", "0", "38.86", "0"]);
        // Without `keep_records` nothing is kept.
        let bare = read_summary(plain.path().to_str().unwrap(), SummaryKind::Continuous, false).unwrap();
        assert_eq!(bare.record(0).count(), 0);
    }

    #[test]
    fn numbers_beyond_the_plain_syntax_are_parsed_and_checked_like_before() {
        let f = file("frequency,recency,T\n1,2.5e1,3E1\n2, +4 ,1e400\n");
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, false).unwrap_err().to_string();
        assert!(err.ends_with(":3: column `T`: `1e400` must be a finite number ≥ 0"), "{err}");
        let f = file("frequency,recency,T\n1,2.5e1,3E1\n2,+4,5\n");
        let t = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, false).unwrap();
        assert_eq!((t.rows[0].recency, t.rows[0].t, t.rows[1].recency), (25.0, 30.0, 4.0));
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"frequency,recency,T\n1,2,caf\xe9\n").unwrap();
        let err = read_summary(f.path().to_str().unwrap(), SummaryKind::Continuous, false).unwrap_err().to_string();
        assert!(err.ends_with(":2: column `T`: cannot parse `caf\u{fffd}` as a number"), "{err}");
    }

    #[test]
    fn survivors_must_count_periods_from_zero() {
        let f = file("period,customers\n0,1000\n1,869\n2,743\n");
        assert_eq!(read_survivors(f.path().to_str().unwrap()).unwrap(), vec![1000.0, 869.0, 743.0]);
        let f = file("year,active\n0,1000\n2,869\n");
        let err = read_survivors(f.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains(":3: column `year`: expected period 1"), "{err}");
    }
}
