//! Read errors: every message names the file, and for row problems the line (or Parquet row),
//! the column and the offending value.

use std::fmt;
use std::io;

/// A problem with one row. Displayed as `orders.csv:1043: column `amount`: cannot parse `12.5x` as a number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The input's name as the user gave it (`-` for standard input).
    pub path: String,
    /// The location in the file: a line number for text files, a row number for Parquet.
    pub location: Location,
    /// The column's name, when the problem is in one column.
    pub column: Option<String>,
    /// What is wrong, quoting the offending value.
    pub reason: String,
}

/// Where a row is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line number of a text file (the header is line 1).
    Line(u64),
    /// 1-based data row of a Parquet file.
    Row(u64),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::Line(line) => write!(f, "{}:{line}: ", self.path)?,
            Location::Row(row) => write!(f, "{}: row {row}: ", self.path)?,
        }
        if let Some(column) = &self.column {
            write!(f, "column `{column}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for RowError {}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// Reading failed part-way (a truncated gzip stream, a disk error).
    #[error("{path}: read error{}: {source}", near_line(.line))]
    Io {
        /// The path.
        path: String,
        /// The line reached, if known.
        line: Option<u64>,
        /// The underlying error.
        source: io::Error,
    },
    /// The bytes are neither text nor Parquet (an image, an archive, UTF-16, random data).
    #[error(
        "{path}: not a text or Parquet file (binary data in its first bytes); kanta reads delimited or whitespace-separated UTF-8 text, gzip of it, or Parquet"
    )]
    NotText {
        /// The path.
        path: String,
    },
    /// The file has no content (or only a header).
    #[error("{path}: {}", empty_message(.header_only))]
    Empty {
        /// The path.
        path: String,
        /// Whether a header line was present.
        header_only: bool,
    },
    /// A needed column could not be found.
    #[error(
        "{path}: no {role} column found (looked for {looked_for}); the columns are: {available}. Name it with {flag}"
    )]
    MissingColumn {
        /// The path.
        path: String,
        /// What the column is for ("customer id", "order date", "amount").
        role: &'static str,
        /// The names that were tried.
        looked_for: String,
        /// The columns the file has.
        available: String,
        /// The flag that names the column explicitly.
        flag: &'static str,
    },
    /// A column named by a flag does not exist.
    #[error("{path}: there is no column `{name}` (given with {flag}); the columns are: {available}")]
    UnknownColumn {
        /// The path.
        path: String,
        /// The name that was given.
        name: String,
        /// The flag it was given with.
        flag: &'static str,
        /// The columns the file has.
        available: String,
    },
    /// The first line looks like data, not a header.
    #[error(
        "{path}:1: the first line looks like data, not a header (`{line}`); name the columns with --columns NAME,NAME,…"
    )]
    HeaderLooksLikeData {
        /// The path.
        path: String,
        /// The first line, shortened.
        line: String,
    },
    /// A bad row, with no `--max-errors` budget left.
    #[error("{0}")]
    Row(RowError),
    /// More bad rows than `--max-errors` allows.
    #[error("{first}\n(more than --max-errors {max} bad rows; {count} found before stopping)")]
    TooManyErrors {
        /// The row that went over the budget.
        first: RowError,
        /// The budget.
        max: u64,
        /// Bad rows seen.
        count: u64,
    },
    /// A Parquet file could not be decoded.
    #[error("{path}: invalid Parquet file: {message}")]
    Parquet {
        /// The path.
        path: String,
        /// The decoder's message.
        message: String,
    },
    /// A Parquet column has a type kanta cannot use for its role.
    #[error("{path}: column `{column}` has Parquet/Arrow type {found}, but the {role} must be {expected}")]
    ParquetType {
        /// The path.
        path: String,
        /// The column.
        column: String,
        /// What the column is for.
        role: &'static str,
        /// The type found.
        found: String,
        /// The accepted types.
        expected: &'static str,
    },
    /// An output file could not be written.
    #[error("{path}: cannot write: {message}")]
    Write {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

fn near_line(line: &Option<u64>) -> String {
    line.map(|l| format!(" near line {l}")).unwrap_or_default()
}

fn empty_message(header_only: &bool) -> &'static str {
    if *header_only { "the file has a header line but no rows" } else { "the file is empty" }
}
