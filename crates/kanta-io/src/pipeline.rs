//! Two-thread reading: one thread decodes and parses rows, the calling thread aggregates them.
//!
//! On ten million lines, parsing (CSV or Parquet decoding, times, amounts, UTF-8 checks and
//! hashing the ids) and aggregating (probing the order and customer tables) cost about the same,
//! so overlapping them on the machine's two cores nearly halves the read time. Parsed rows travel
//! in batches through a bounded channel (bounded, so memory stays flat when the aggregator is the
//! slower side), and emptied batches come back on a second channel to be reused.
//!
//! Errors keep file order: a row problem travels as an item in the stream, and only the
//! aggregating thread decides (with the `--max-errors` budget) whether it skips the row or ends
//! the read. When it ends the read it drops the receiver, which stops the parsing thread.

use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use kanta_core::aggregate::{Aggregator, LineHashes, OrderLine};
use kanta_core::intern::hash;
use kanta_core::money::Money;
use kanta_core::time::Timestamp;

use crate::columns::Columns;
use crate::error::{Location, ReadError};
use crate::read::{FieldProblem, RowParser};

/// Rows per batch.
const BATCH_ROWS: usize = 8_192;
/// Batches in flight.
const IN_FLIGHT: usize = 4;

enum Item {
    Line {
        location: Location,
        customer: (u32, u32),
        order: Option<(u32, u32)>,
        time: Timestamp,
        amount: Money,
        hashes: LineHashes,
    },
    Problem {
        location: Location,
        problem: FieldProblem,
    },
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    fn span(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(bytes);
        (start, bytes.len() as u32)
    }

    fn get(&self, (start, len): (u32, u32)) -> &[u8] {
        &self.bytes[start as usize..(start + len) as usize]
    }
}

/// The parsing thread's end: collects rows into batches and sends them.
pub(crate) struct RowSink {
    tx: SyncSender<Batch>,
    recycled: Receiver<Batch>,
    batch: Batch,
    /// Rows sent so far (for progress).
    pub(crate) rows: u64,
}

impl RowSink {
    /// Queues a parsed row (or its problem). Returns `false` when the aggregator has stopped.
    #[inline]
    pub(crate) fn row(&mut self, location: Location, parsed: Result<OrderLine<'_>, FieldProblem>) -> bool {
        self.rows += 1;
        let item = match parsed {
            Ok(line) => {
                let hashes = LineHashes { customer: hash(line.customer), order: line.order.map(hash) };
                let customer = self.batch.span(line.customer);
                let order = line.order.map(|o| self.batch.span(o));
                Item::Line { location, customer, order, time: line.time, amount: line.amount, hashes }
            }
            Err(problem) => Item::Problem { location, problem },
        };
        self.batch.items.push(item);
        if self.batch.items.len() >= BATCH_ROWS { self.flush() } else { true }
    }

    fn flush(&mut self) -> bool {
        if self.batch.items.is_empty() {
            return true;
        }
        let next = self.recycled.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        self.tx.send(full).is_ok()
    }
}

/// Runs `produce` on a second thread and aggregates what it sends on this one.
///
/// `produce` returns `Ok` when its input is exhausted or when [`RowSink::row`] returned `false`.
pub(crate) fn run<F>(
    produce: F,
    columns: &Columns,
    parser: &mut RowParser<'_>,
    aggregator: &mut Aggregator,
) -> Result<(), ReadError>
where
    F: FnOnce(&mut RowSink) -> Result<(), ReadError> + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
        let (recycle_tx, recycled) = channel::<Batch>();
        let producer = scope.spawn(move || {
            let mut sink = RowSink { tx, recycled, batch: Batch::default(), rows: 0 };
            let result = produce(&mut sink);
            sink.flush();
            result
        });
        let mut consumed: Result<(), ReadError> = Ok(());
        while let Ok(mut batch) = rx.recv() {
            for item in &batch.items {
                let outcome = match item {
                    Item::Line { location, customer, order, time, amount, hashes } => {
                        parser.rows += 1;
                        let line = OrderLine {
                            customer: batch.get(*customer),
                            order: order.map(|o| batch.get(o)),
                            time: *time,
                            amount: *amount,
                        };
                        match aggregator.push_hashed(line, *hashes) {
                            Ok(()) => Ok(()),
                            Err(e) => {
                                parser.problem(*location, columns, FieldProblem { column: None, reason: e.to_string() })
                            }
                        }
                    }
                    Item::Problem { location, problem } => {
                        parser.rows += 1;
                        parser.problem(*location, columns, problem.clone())
                    }
                };
                if let Err(e) = outcome {
                    consumed = Err(e);
                    break;
                }
            }
            if consumed.is_err() {
                break;
            }
            batch.items.clear();
            batch.bytes.clear();
            let _ = recycle_tx.send(batch);
        }
        // Dropping the receiver makes the producer's next send fail, so it stops.
        drop(rx);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(ReadError::Io {
                path: String::new(),
                line: None,
                source: std::io::Error::other("the reading thread panicked"),
            })
        });
        // An error the aggregator met comes first in file order.
        consumed.and(produced)
    })
}
