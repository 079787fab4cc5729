//! Reading an order log: opens the input, tells the format from its first bytes (Parquet, gzip,
//! or text) and hands it to the Parquet reader or the text reader (`crate::text`).
//!
//! Nothing is loaded whole: text is read record by record and Parquet batch by batch (only the
//! needed columns are decoded), and each line goes straight into the [`Aggregator`]. The one
//! exception is Parquet on standard input, which must be buffered because the Parquet footer is
//! at the end of the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use kanta_core::aggregate::Aggregator;

use crate::error::ReadError;
use crate::pipeline::{LineSink, Target};
// The read's vocabulary lives in the readers' base module; it is named here too, where callers
// have always found it.
pub use crate::rows::{Delimiter, Format, Input, Progress, ReadOptions, ReadSummary};

/// Counts bytes as they are read, for progress.
pub(crate) struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Total size of the input, if known (for a progress bar).
pub fn input_len(input: &Input) -> Option<u64> {
    match input {
        Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        Input::Stdin => None,
    }
}

/// Reads an order log into `aggregator`.
///
/// A file read into an empty aggregator is read with deferred order ids
/// ([`Aggregator::deferred`]), and `aggregator` is left resolved; the result is the same as an
/// indexed read's ([`read_orders_with_lines`], standard input), which it falls back to.
pub fn read_orders(
    input: &Input,
    options: &ReadOptions,
    aggregator: &mut Aggregator,
    progress: &dyn Progress,
) -> Result<ReadSummary, ReadError> {
    // A file can be read twice, so it is read first with deferred order ids (no hash probe
    // per order; see `Aggregator::deferred`). Only if an order id turns out to come with two
    // customers is it read again, indexed, so that each such line is reported (or skipped
    // under `--max-errors`) exactly where it is, as on standard input.
    if matches!(input, Input::Path(_)) && aggregator.is_empty() {
        let mut deferred = Aggregator::deferred();
        let read = read(input, options, Target { aggregator: &mut deferred, lines: None }, progress);
        if deferred.resolve().is_ok() {
            *aggregator = deferred;
            return read;
        }
        progress.rereading();
    }
    read(input, options, Target { aggregator, lines: None }, progress)
}

/// [`read_orders`], also handing each accepted line's product to `on_line` with the index of
/// its order (its position in [`Aggregator::for_each_order`]), for importers that store order
/// lines. The product columns are detected or named in `options.columns`
/// ([`crate::columns::Columns::resolve_lines`]); a file without a product column reads as with
/// [`read_orders`] and `on_line` is never called (the summary's `columns.lines` is `None`).
pub fn read_orders_with_lines(
    input: &Input,
    options: &ReadOptions,
    aggregator: &mut Aggregator,
    progress: &dyn Progress,
    on_line: &mut LineSink<'_>,
) -> Result<ReadSummary, ReadError> {
    read(input, options, Target { aggregator, lines: Some(on_line) }, progress)
}

fn read(
    input: &Input,
    options: &ReadOptions,
    target: Target<'_>,
    progress: &dyn Progress,
) -> Result<ReadSummary, ReadError> {
    let path = input.display_name();
    let count = Arc::new(AtomicU64::new(0));
    match open_input(input, &path, &count)? {
        Opened::Parquet(ParquetSource::File(p)) => {
            crate::parquet::read_parquet_file(&p, &path, options, target, progress)
        }
        Opened::Parquet(ParquetSource::Bytes(bytes)) => {
            crate::parquet::read_parquet_bytes(bytes, &path, options, target, progress)
        }
        Opened::Gzip(reader) => crate::text::read_text(reader, true, &path, options, target, progress, &count),
        Opened::Text(reader) => crate::text::read_text(reader, false, &path, options, target, progress, &count),
    }
}

/// The input's bytes as read, counted for progress.
pub(crate) type Raw = BufReader<Counting<Box<dyn Read + Send>>>;

/// An opened input, its format told from its first bytes.
pub(crate) enum Opened {
    /// A Parquet file (the magic `PAR1`).
    Parquet(ParquetSource),
    /// gzip (the magic `1f 8b`), decoded (boxed: the decoder's state is large).
    Gzip(Box<BufReader<MultiGzDecoder<Raw>>>),
    /// Anything else is taken for text; the text reader refuses binary data.
    Text(Raw),
}

/// Where a Parquet input's bytes are.
pub(crate) enum ParquetSource {
    /// A file, read where its row groups are (the reader seeks to the footer first).
    File(PathBuf),
    /// Standard input, buffered whole: the footer is at the end.
    Bytes(bytes::Bytes),
}

/// Opens `input` (named `path` in messages) and tells its format; `count` counts the bytes read
/// from the file or standard input (compressed bytes for gzip; not Parquet's, whose readers
/// report their own progress). An empty input is [`ReadError::Empty`].
pub(crate) fn open_input(input: &Input, path: &str, count: &Arc<AtomicU64>) -> Result<Opened, ReadError> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Path(p) => Box::new(open(p, path)?),
        Input::Stdin => Box::new(io::stdin()),
    };
    let mut reader = BufReader::with_capacity(1 << 18, Counting { inner: raw, count: Arc::clone(count) });
    let io_err = |source| ReadError::Io { path: path.to_owned(), line: None, source };
    let head = reader.fill_buf().map_err(io_err)?;
    if head.is_empty() {
        return Err(ReadError::Empty { path: path.to_owned(), header_only: false });
    }
    if head.starts_with(b"PAR1") {
        return Ok(Opened::Parquet(match input {
            Input::Path(p) => ParquetSource::File(p.clone()),
            Input::Stdin => {
                let mut buf = Vec::new();
                reader.read_to_end(&mut buf).map_err(io_err)?;
                ParquetSource::Bytes(bytes::Bytes::from(buf))
            }
        }));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Opened::Gzip(Box::new(BufReader::with_capacity(1 << 18, MultiGzDecoder::new(reader)))));
    }
    Ok(Opened::Text(reader))
}

fn open(p: &Path, path: &str) -> Result<File, ReadError> {
    let file = File::open(p).map_err(|source| ReadError::Open { path: path.to_owned(), source })?;
    match file.metadata() {
        Ok(m) if m.is_dir() => Err(ReadError::Open {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
        }),
        _ => Ok(file),
    }
}
