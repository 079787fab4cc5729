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

use std::fs::File;
use std::io::Read;

use crate::columns::normalize;
use crate::error::{Location, ReadError, RowError};

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

/// A summary file: its header, raw records (to echo in predictions) and parsed rows.
#[derive(Debug, Clone)]
pub struct SummaryTable {
    /// Column names as in the file.
    pub headers: Vec<String>,
    /// The raw fields of every row.
    pub records: Vec<Vec<String>>,
    /// The parsed rows, in file order.
    pub rows: Vec<SummaryRow>,
    /// Whether the file has a monetary column.
    pub has_monetary: bool,
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

fn open_text(path: &str) -> Result<String, ReadError> {
    let mut file = File::open(path).map_err(|source| ReadError::Open { path: path.to_owned(), source })?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|source| ReadError::Io { path: path.to_owned(), line: None, source })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text))
}

/// The delimiter of a header line: the most frequent of `,`, `;` and tab.
fn sniff(header: &str) -> u8 {
    [b',', b';', b'\t'].into_iter().max_by_key(|d| header.bytes().filter(|b| b == d).count()).unwrap_or(b',')
}

/// A delimited file with a header, read row by row into one reused record.
struct Table {
    path: String,
    headers: Vec<String>,
    reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
    rows: u64,
}

impl Table {
    fn open(path: &str) -> Result<Table, ReadError> {
        let text = open_text(path)?;
        let first = text.lines().next().unwrap_or("");
        if first.trim().is_empty() {
            return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
        }
        let delimiter = sniff(first);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(std::io::Cursor::new(text.into_bytes()));
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| {
                ReadError::Row(RowError {
                    path: path.to_owned(),
                    location: Location::Line(1),
                    column: None,
                    reason: e.to_string(),
                })
            })?
            .iter()
            .map(str::to_owned)
            .collect();
        Ok(Table { path: path.to_owned(), headers, reader, rows: 0 })
    }

    /// The next non-blank row into `record`; its line number, or `None` at the end.
    fn next(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>, ReadError> {
        loop {
            let more = self.reader.read_record(record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                ReadError::Row(RowError {
                    path: self.path.clone(),
                    location: Location::Line(line),
                    column: None,
                    reason: e.to_string(),
                })
            })?;
            if !more {
                if self.rows == 0 {
                    return Err(ReadError::Empty { path: self.path.clone(), header_only: true });
                }
                return Ok(None);
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() != self.headers.len() {
                return Err(ReadError::Row(RowError {
                    path: self.path.clone(),
                    location: Location::Line(line),
                    column: None,
                    reason: format!("{} fields, but the header has {}", record.len(), self.headers.len()),
                }));
            }
            self.rows += 1;
            return Ok(Some(line));
        }
    }
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

/// A cell parsed as a finite number ≥ 0.
fn number(path: &str, line: u64, column: &str, value: &str) -> Result<f64, ReadError> {
    let bad = |reason: String| {
        ReadError::Row(RowError {
            path: path.to_owned(),
            location: Location::Line(line),
            column: Some(column.to_owned()),
            reason,
        })
    };
    let v: f64 = value.parse().map_err(|_| bad(format!("cannot parse `{value}` as a number")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad(format!("`{value}` must be a finite number ≥ 0")));
    }
    Ok(v)
}

/// Reads a per-customer summary file; `keep_records` keeps the raw fields (to echo them in
/// predictions), which costs memory and time on large files.
pub fn read_summary(path: &str, kind: SummaryKind, keep_records: bool) -> Result<SummaryTable, ReadError> {
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
    let weight = find(&headers, WEIGHT);
    let mut rows = Vec::new();
    let mut records = Vec::new();
    let mut fields = csv::StringRecord::new();
    while let Some(line) = table.next(&mut fields)? {
        let get = |i: usize| number(path, line, &headers[i], &fields[i]);
        let bad = |i: usize, reason: String| {
            ReadError::Row(RowError {
                path: path.to_owned(),
                location: Location::Line(line),
                column: Some(headers[i].clone()),
                reason,
            })
        };
        let f = get(frequency)?;
        if f.fract() != 0.0 || f > f64::from(u32::MAX) {
            return Err(bad(frequency, format!("`{}` is not a whole number of purchases", &fields[frequency])));
        }
        let recency_value = recency.map(get).transpose()?.unwrap_or(0.0);
        let t_value = t.map(get).transpose()?.unwrap_or(recency_value);
        if let (Some(r), Some(t_col)) = (recency, t) {
            if recency_value > t_value {
                return Err(bad(r, format!("recency `{}` is after {} `{t_value}`", &fields[r], headers[t_col])));
            }
            if f == 0.0 && recency_value != 0.0 {
                return Err(bad(r, format!("recency `{}` must be 0 when frequency is 0", &fields[r])));
            }
        }
        let w = weight.map(get).transpose()?.unwrap_or(1.0);
        rows.push(SummaryRow {
            line,
            frequency: f as u32,
            recency: recency_value,
            t: t_value,
            monetary: if parse_monetary { monetary.map(get).transpose()? } else { None },
            weight: w,
        });
        if keep_records {
            records.push(fields.iter().map(str::to_owned).collect());
        }
    }
    Ok(SummaryTable { headers, records, rows, has_monetary: monetary.is_some() })
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
    let mut fields = csv::StringRecord::new();
    while let Some(line) = table.next(&mut fields)? {
        let p = number(path, line, &headers[period], &fields[period])?;
        if p != out.len() as f64 {
            return Err(ReadError::Row(RowError {
                path: path.to_owned(),
                location: Location::Line(line),
                column: Some(headers[period].clone()),
                reason: format!(
                    "expected period {} (periods count 0, 1, 2, … from the start of the cohort), found `{}`",
                    out.len(),
                    &fields[period]
                ),
            }));
        }
        out.push(number(path, line, &headers[count], &fields[count])?);
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
    fn survivors_must_count_periods_from_zero() {
        let f = file("period,customers\n0,1000\n1,869\n2,743\n");
        assert_eq!(read_survivors(f.path().to_str().unwrap()).unwrap(), vec![1000.0, 869.0, 743.0]);
        let f = file("year,active\n0,1000\n2,869\n");
        let err = read_survivors(f.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains(":3: column `year`: expected period 1"), "{err}");
    }
}
