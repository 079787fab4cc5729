//! What every reader shares: the options a read takes, the summary it returns, and the
//! problems of single rows with the `--max-errors` budget they are charged to.
//!
//! This is the base of the readers: `text`, `parquet`, `pipeline` and `lines` depend
//! on it, and it depends on none of them, so the readers import one another in no circle.

use std::path::PathBuf;

use kanta_core::time::TimeFormat;

use crate::columns::{ColumnSpec, Columns};
use crate::error::{Location, ReadError, RowError};

/// Where the input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file (`.gz` and Parquet are recognised by their first bytes).
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Input {
    /// `-` is standard input; anything else a path.
    pub fn parse(arg: &str) -> Input {
        if arg == "-" { Input::Stdin } else { Input::Path(PathBuf::from(arg)) }
    }

    /// The name used in messages.
    pub fn display_name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "-".to_owned(),
        }
    }
}

/// How fields are separated in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// One byte such as `,`, `;`, `\t` or `|`; fields may be quoted.
    Byte(u8),
    /// Runs of spaces and tabs, with leading and trailing blanks ignored; no quoting.
    Whitespace,
}

impl Delimiter {
    /// Parses a `--delimiter` value: one character, `tab`, `\t` or `whitespace`/`space`.
    pub fn parse(text: &str) -> Option<Delimiter> {
        match text {
            "tab" | "\\t" | "\t" => Some(Delimiter::Byte(b'\t')),
            "whitespace" | "space" | "ws" => Some(Delimiter::Whitespace),
            _ if text.len() == 1 && text.is_ascii() => Some(Delimiter::Byte(text.as_bytes()[0])),
            _ => None,
        }
    }
}

/// Options for reading an order log.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `None` detects the delimiter from the first line.
    pub delimiter: Option<Delimiter>,
    /// Column names for a file without a header line (`--columns`).
    pub column_names: Option<Vec<String>>,
    /// Columns named explicitly.
    pub columns: ColumnSpec,
    /// How times are written.
    pub time_format: TimeFormat,
    /// Amounts use a decimal comma (`12,50`).
    pub decimal_comma: bool,
    /// Bad rows that may be skipped before the read fails.
    pub max_errors: u64,
}

/// The file format that was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Delimited text.
    Delimited(u8),
    /// Whitespace-separated text.
    Whitespace,
    /// Parquet.
    Parquet,
}

/// What a read did.
#[derive(Debug, Clone)]
pub struct ReadSummary {
    /// The format found.
    pub format: Format,
    /// Whether the input was gzip-compressed.
    pub gzip: bool,
    /// The columns used.
    pub columns: Columns,
    /// Data rows read (accepted + skipped).
    pub rows: u64,
    /// Bad rows skipped under `--max-errors`, each with its message.
    pub skipped: Vec<RowError>,
    /// Bytes read from the input (compressed size for gzip).
    pub bytes: u64,
}

/// Receives progress while reading: bytes read from the input and rows so far. It is called
/// from the parsing thread.
pub trait Progress: Sync {
    /// Called every few thousand rows.
    fn update(&self, bytes: u64, rows: u64);

    /// Called when [`crate::read_orders`] starts reading the file again from its start (an order id
    /// came with two customers), before the first `update` of that read: bytes and rows
    /// count from zero again.
    fn rereading(&self) {}
}

impl Progress for () {
    fn update(&self, _bytes: u64, _rows: u64) {}
}

/// The bookkeeping of an order read: resolves the columns, counts rows, and keeps the bad rows
/// skipped within the `--max-errors` budget.
pub(crate) struct RowParser<'o> {
    path: String,
    options: &'o ReadOptions,
    /// Whether the caller keeps order lines, so the product columns are resolved too.
    lines: bool,
    pub(crate) rows: u64,
    skipped: Vec<RowError>,
}

/// One field-level problem, before the location is attached.
#[derive(Debug, Clone)]
pub(crate) struct FieldProblem {
    pub(crate) column: Option<usize>,
    pub(crate) reason: String,
}

impl<'o> RowParser<'o> {
    pub(crate) fn new(path: &str, options: &'o ReadOptions, lines: bool) -> RowParser<'o> {
        RowParser { path: path.to_owned(), options, lines, rows: 0, skipped: Vec::new() }
    }

    pub(crate) fn resolve(&self, names: Vec<String>) -> Result<Columns, ReadError> {
        let mut columns = Columns::resolve(&self.path, names, &self.options.columns)?;
        if self.lines {
            columns.resolve_lines(&self.path, &self.options.columns)?;
        }
        Ok(columns)
    }

    /// Records a bad row: skipped while the budget lasts, else the error that ends the read.
    pub(crate) fn problem(
        &mut self,
        location: Location,
        columns: &Columns,
        problem: FieldProblem,
    ) -> Result<(), ReadError> {
        let error = RowError {
            path: self.path.clone(),
            location,
            column: problem.column.map(|c| columns.name(c).to_owned()),
            reason: problem.reason,
        };
        if (self.skipped.len() as u64) < self.options.max_errors {
            self.skipped.push(error);
            Ok(())
        } else if self.options.max_errors == 0 {
            Err(ReadError::Row(error))
        } else {
            Err(ReadError::TooManyErrors {
                first: error,
                max: self.options.max_errors,
                count: self.skipped.len() as u64 + 1,
            })
        }
    }

    pub(crate) fn finish(self, format: Format, gzip: bool, columns: Columns, bytes: u64) -> ReadSummary {
        ReadSummary { format, gzip, columns, rows: self.rows, skipped: self.skipped, bytes }
    }
}
