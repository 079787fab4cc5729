//! A delimited text file with a header line, read record by record: the base of the summary
//! and survivor readers.
//!
//! Summary files are numbers between delimiters, almost never quoted, so records are split by
//! hand: a line is found with `memchr` and, when it holds no quote, cut at the delimiter.
//! A line with a quote — and the lines after it while its quotes are unbalanced, since a quoted
//! field may hold a line break — goes to the `csv` crate, which unquotes it exactly as it reads
//! any CSV. On a 10⁶-line summary the hand split costs about a third of the `csv` crate's
//! state machine, which was the largest part of `kanta fit`'s read.
//!
//! Lines end at `\n`, with a `\r` before it dropped; a file whose first buffer holds a bare `\r`
//! (classic Mac line ends) is read by the `csv` crate throughout, which accepts those (its
//! records are numbered in order there, blank lines not counted).
//! Line numbers count every line of the file, blank ones and the header included.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::error::{Location, ReadError, RowError};
use crate::read::{Opened, open_input};
use crate::rows::Input;

/// One record's fields, trimmed of ASCII blanks and unquoted, one after another.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`.
    ends: Vec<usize>,
}

impl Fields {
    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i` (empty past the end).
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).and_then(|p| self.ends.get(p)).copied().unwrap_or(0);
        self.ends.get(i).and_then(|&end| self.bytes.get(start..end)).unwrap_or_default()
    }

    /// The fields' bytes and where each ends, for copying a record into a batch.
    pub(crate) fn parts(&self) -> (&[u8], &[usize]) {
        (&self.bytes, &self.ends)
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push(&mut self, field: &[u8]) {
        self.bytes.extend_from_slice(field.trim_ascii());
        self.ends.push(self.bytes.len());
    }

    fn is_blank(&self) -> bool {
        self.bytes.is_empty()
    }
}

type Text = Box<dyn BufRead + Send>;

/// Where records come from.
enum Source {
    /// Lines split by hand, quoted ones through `csv`.
    Lines(Text),
    /// The `csv` crate throughout (bare `\r` line ends).
    Csv(Box<csv::Reader<Text>>),
}

/// A delimited file with a header, read record by record.
pub(crate) struct Table {
    path: String,
    /// Column names as in the file (trimmed).
    pub(crate) headers: Vec<String>,
    source: Source,
    delimiter: u8,
    /// Lines consumed so far.
    lines: u64,
    /// Records returned so far.
    rows: u64,
    /// The current line (or lines, for a quoted record).
    buf: Vec<u8>,
    csv_record: csv::ByteRecord,
}

/// The delimiter of a header line: the most frequent of `,`, `;` and tab.
fn sniff(header: &[u8]) -> u8 {
    [b',', b';', b'\t'].into_iter().max_by_key(|d| header.iter().filter(|b| *b == d).count()).unwrap_or(b',')
}

/// Whether `bytes` has a `\r` that does not start a `\r\n` (the buffer's last byte is given
/// the benefit of the doubt).
fn bare_cr(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', bytes).any(|i| bytes.get(i + 1).is_some_and(|&b| b != b'\n'))
}

impl Table {
    /// Opens a delimited file (plain or gzip text) and reads its header.
    pub(crate) fn open(path: &str) -> Result<Table, ReadError> {
        let count = Arc::new(AtomicU64::new(0));
        let mut reader: Text = match open_input(&Input::Path(path.into()), path, &count)? {
            Opened::Text(reader) => Box::new(reader),
            Opened::Gzip(reader) => Box::new(reader),
            Opened::Parquet(_) => {
                return Err(ReadError::Parquet {
                    path: path.to_owned(),
                    message: "summary files are read as delimited text (plain or gzip), not Parquet".to_owned(),
                });
            }
        };
        let io_err = |source| ReadError::Io { path: path.to_owned(), line: None, source };
        let head = reader.fill_buf().map_err(io_err)?;
        if crate::text::looks_binary(head) {
            return Err(ReadError::NotText { path: path.to_owned() });
        }
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
        }
        let head = reader.fill_buf().map_err(io_err)?;
        let first = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
        if first.trim_ascii().is_empty() {
            return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
        }
        let delimiter = sniff(first);
        let source = if bare_cr(head) {
            let csv = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .flexible(true)
                .has_headers(false)
                .buffer_capacity(1 << 16)
                .from_reader(reader);
            Source::Csv(Box::new(csv))
        } else {
            Source::Lines(reader)
        };
        let mut table = Table {
            path: path.to_owned(),
            headers: Vec::new(),
            source,
            delimiter,
            lines: 0,
            rows: 0,
            buf: Vec::with_capacity(256),
            csv_record: csv::ByteRecord::new(),
        };
        let mut header = Fields::default();
        if table.record(&mut header)?.is_none() {
            return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
        }
        table.headers = (0..header.len()).map(|i| String::from_utf8_lossy(header.get(i)).into_owned()).collect();
        Ok(table)
    }

    /// The next non-blank row into `fields`, checked to have as many fields as the header; its
    /// 1-based line number, or `None` at the end.
    pub(crate) fn next(&mut self, fields: &mut Fields) -> Result<Option<u64>, ReadError> {
        loop {
            let Some(line) = self.record(fields)? else {
                if self.rows == 0 {
                    return Err(ReadError::Empty { path: self.path.clone(), header_only: true });
                }
                return Ok(None);
            };
            if fields.is_blank() {
                continue;
            }
            if fields.len() != self.headers.len() {
                return Err(
                    self.row_error(line, format!("{} fields, but the header has {}", fields.len(), self.headers.len()))
                );
            }
            self.rows += 1;
            return Ok(Some(line));
        }
    }

    fn row_error(&self, line: u64, reason: String) -> ReadError {
        row_error(&self.path, line, reason)
    }

    /// The next record, blank or not, into `fields`; the line it starts on.
    fn record(&mut self, fields: &mut Fields) -> Result<Option<u64>, ReadError> {
        fields.clear();
        let start = self.lines + 1;
        let reader = match &mut self.source {
            Source::Csv(csv) => {
                // The `csv` crate counts only `\n` in its positions, so here a record is
                // numbered by its place in the file (blank lines, which it skips, uncounted).
                let more = csv
                    .read_byte_record(&mut self.csv_record)
                    .map_err(|e| row_error(&self.path, start, e.to_string()))?;
                if !more {
                    return Ok(None);
                }
                self.lines = start;
                for field in &self.csv_record {
                    fields.push(field);
                }
                return Ok(Some(start));
            }
            Source::Lines(reader) => reader,
        };
        self.buf.clear();
        let io_err = |source| ReadError::Io { path: self.path.clone(), line: Some(start), source };
        if reader.read_until(b'\n', &mut self.buf).map_err(io_err)? == 0 {
            return Ok(None);
        }
        self.lines += 1;
        if memchr::memchr(b'"', &self.buf).is_none() {
            let mut line = self.buf.as_slice();
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            for field in line.split(|&b| b == self.delimiter) {
                fields.push(field);
            }
            return Ok(Some(start));
        }
        // A quoted field may run over line breaks: read on while the quotes are unbalanced
        // (`""` inside a quoted field counts twice, so it never unbalances them).
        while bytecount(&self.buf, b'"') % 2 == 1 {
            if reader.read_until(b'\n', &mut self.buf).map_err(io_err)? == 0 {
                break;
            }
            self.lines += 1;
        }
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(self.buf.as_slice());
        match csv.read_byte_record(&mut self.csv_record) {
            Ok(_) => {
                for field in &self.csv_record {
                    fields.push(field);
                }
                Ok(Some(start))
            }
            Err(e) => Err(row_error(&self.path, start, e.to_string())),
        }
    }
}

/// A record that cannot be read, at its line.
fn row_error(path: &str, line: u64, reason: String) -> ReadError {
    ReadError::Row(RowError { path: path.to_owned(), location: Location::Line(line), column: None, reason })
}

/// How many times `byte` occurs in `bytes`.
fn bytecount(bytes: &[u8], byte: u8) -> usize {
    memchr::memchr_iter(byte, bytes).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn table(bytes: &[u8]) -> (tempfile::NamedTempFile, Table) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let t = Table::open(f.path().to_str().unwrap()).unwrap();
        (f, t)
    }

    fn rows(t: &mut Table) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        let mut fields = Fields::default();
        while let Some(line) = t.next(&mut fields).unwrap() {
            out.push((line, (0..fields.len()).map(|i| String::from_utf8_lossy(fields.get(i)).into_owned()).collect()));
        }
        out
    }

    fn row(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn lines_are_numbered_as_in_the_file_across_blank_lines_and_crlf() {
        let (_f, mut t) = table(b"a ,b\r\n1, 2\r\n\r\n  \n3;x,4\n");
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(rows(&mut t), [row(2, &["1", "2"]), row(5, &["3;x", "4"])]);
    }

    #[test]
    fn quoted_fields_are_unquoted_even_across_line_breaks() {
        let (_f, mut t) = table(b"id;n\n\"a;b\";1\n\"line\nbreak \"\"q\"\"\";2\nlast;3");
        assert_eq!(t.headers, ["id", "n"]);
        assert_eq!(rows(&mut t), [row(2, &["a;b", "1"]), row(3, &["line\nbreak \"q\"", "2"]), row(5, &["last", "3"])]);
    }

    #[test]
    fn bare_carriage_returns_are_line_ends_too() {
        let (_f, mut t) = table(b"a,b\r1,2\r3,4\r");
        assert_eq!(rows(&mut t), [row(2, &["1", "2"]), row(3, &["3", "4"])]);
    }

    #[test]
    fn a_row_of_the_wrong_width_is_named_by_its_line() {
        let (f, mut t) = table(b"a,b\n\n1,2,3\n");
        let err = t.next(&mut Fields::default()).unwrap_err().to_string();
        assert_eq!(err, format!("{}:3: 3 fields, but the header has 2", f.path().display()));
    }
}
