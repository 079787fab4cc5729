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
    /// A line with the same order id and customer as the previous `Line` or `SameOrder` item.
    SameOrder {
        location: Location,
        customer: (u32, u32),
        order: (u32, u32),
        time: Timestamp,
        amount: Money,
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

/// How often (in rows) progress is reported.
const PROGRESS_EVERY: u64 = 1 << 16;

/// The parsing thread's end: collects rows into batches and sends them.
pub(crate) struct RowSink<'r> {
    tx: SyncSender<Batch>,
    recycled: Receiver<Batch>,
    batch: Batch,
    /// The ids of the previous line sent, to flag lines of the same order (the reader thread
    /// compares a few bytes it has in cache; the aggregator then skips every lookup).
    previous: Option<(Vec<u8>, Vec<u8>)>,
    /// Rows sent so far.
    rows: u64,
    /// Called with the rows sent so far, every [`PROGRESS_EVERY`] rows.
    report: &'r (dyn Fn(u64) + Sync),
}

impl RowSink<'_> {
    /// Queues a parsed row (or its problem). Returns `false` when the aggregator has stopped.
    #[inline]
    pub(crate) fn row(&mut self, location: Location, parsed: Result<OrderLine<'_>, FieldProblem>) -> bool {
        self.rows += 1;
        let item = match parsed {
            Ok(line) => {
                let same = match (&self.previous, line.order) {
                    (Some((customer, order)), Some(o)) => order.as_slice() == o && customer.as_slice() == line.customer,
                    _ => false,
                };
                let customer = self.batch.span(line.customer);
                if same {
                    let order = self.batch.span(line.order.unwrap_or_default());
                    Item::SameOrder { location, customer, order, time: line.time, amount: line.amount }
                } else {
                    let hashes = LineHashes { customer: hash(line.customer), order: line.order.map(hash) };
                    let order = line.order.map(|o| self.batch.span(o));
                    if let Some(o) = line.order {
                        let previous = self.previous.get_or_insert_with(Default::default);
                        previous.0.clear();
                        previous.0.extend_from_slice(line.customer);
                        previous.1.clear();
                        previous.1.extend_from_slice(o);
                    }
                    Item::Line { location, customer, order, time: line.time, amount: line.amount, hashes }
                }
            }
            Err(problem) => Item::Problem { location, problem },
        };
        self.batch.items.push(item);
        if self.rows.is_multiple_of(PROGRESS_EVERY) {
            (self.report)(self.rows);
        }
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

/// Pushes one line; a rejected line goes to the `--max-errors` budget.
fn push(
    aggregator: &mut Aggregator,
    parser: &mut RowParser<'_>,
    columns: &Columns,
    location: Location,
    line: OrderLine<'_>,
    hashes: LineHashes,
    previous_accepted: &mut bool,
) -> Result<(), ReadError> {
    match aggregator.push_hashed(line, hashes) {
        Ok(()) => {
            *previous_accepted = true;
            Ok(())
        }
        Err(e) => {
            *previous_accepted = false;
            parser.problem(location, columns, FieldProblem { column: None, reason: e.to_string() })
        }
    }
}

/// Runs `produce` on a second thread and aggregates what it sends on this one.
///
/// `produce` returns `Ok` when its input is exhausted or when [`RowSink::row`] returned `false`.
/// `report` receives the number of rows parsed so far, for progress.
pub(crate) fn run<F>(
    produce: F,
    report: &(dyn Fn(u64) + Sync),
    columns: &Columns,
    parser: &mut RowParser<'_>,
    aggregator: &mut Aggregator,
) -> Result<(), ReadError>
where
    F: FnOnce(&mut RowSink<'_>) -> Result<(), ReadError> + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
        let (recycle_tx, recycled) = channel::<Batch>();
        let producer = scope.spawn(move || {
            let mut sink = RowSink { tx, recycled, batch: Batch::default(), previous: None, rows: 0, report };
            let result = produce(&mut sink);
            sink.flush();
            result
        });
        let mut consumed: Result<(), ReadError> = Ok(());
        let mut previous_accepted = false;
        while let Ok(mut batch) = rx.recv() {
            for item in &batch.items {
                parser.rows += 1;
                let outcome = match item {
                    // The fast path is safe only right after the line it continues was accepted.
                    Item::SameOrder { time, amount, .. } if previous_accepted => {
                        aggregator.push_same_order(*time, *amount);
                        Ok(())
                    }
                    Item::SameOrder { location, customer, order, time, amount } => {
                        let line = OrderLine {
                            customer: batch.get(*customer),
                            order: Some(batch.get(*order)),
                            time: *time,
                            amount: *amount,
                        };
                        push(
                            aggregator,
                            parser,
                            columns,
                            *location,
                            line,
                            LineHashes::of(&line),
                            &mut previous_accepted,
                        )
                    }
                    Item::Line { location, customer, order, time, amount, hashes } => {
                        let line = OrderLine {
                            customer: batch.get(*customer),
                            order: order.map(|o| batch.get(o)),
                            time: *time,
                            amount: *amount,
                        };
                        push(aggregator, parser, columns, *location, line, *hashes, &mut previous_accepted)
                    }
                    Item::Problem { location, problem } => {
                        previous_accepted = false;
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
