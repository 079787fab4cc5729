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
//!
//! The transport ([`two_threads`], [`Sender`]) carries any [`Batch`]; the summary reader uses it
//! too. The rest of this module is the order reader's batch and its aggregating consumer.
//!
//! When the caller keeps order lines ([`Target::lines`]), each row's product cells travel in a
//! side vector of the batch (so the analysis path's items stay small), and the aggregating
//! thread hands each accepted line's product to the caller with the index of its order.

use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use kanta_core::aggregate::{Aggregator, LineHashes, OrderLine};
use kanta_core::intern::{hash, same_id};
use kanta_core::money::Money;
use kanta_core::time::Timestamp;

use crate::columns::Columns;
use crate::error::{Location, ReadError};
use crate::lines::LineDetail;
use crate::rows::{FieldProblem, RowParser};

/// Receives the product of each accepted line with the index of its order (the position of
/// the order in [`Aggregator::for_each_order`]).
pub type LineSink<'a> = dyn FnMut(u32, LineDetail<'_>) + 'a;

/// Where parsed rows go: the aggregator, and the product of each line when the caller keeps
/// lines.
pub struct Target<'a> {
    /// Aggregates lines into orders and customers.
    pub aggregator: &'a mut Aggregator,
    /// Receives each accepted line's product, if the caller keeps lines.
    pub lines: Option<&'a mut LineSink<'a>>,
}

/// Rows per batch.
pub(crate) const BATCH_ROWS: usize = 8_192;
/// Batches in flight.
const IN_FLIGHT: usize = 4;

/// Rows parsed on one thread for another, sent in order and sent back emptied for reuse (so the
/// buffers are allocated once per batch in flight, not once per batch).
pub(crate) trait Batch: Default + Send {
    /// Rows in the batch.
    fn rows(&self) -> usize;
    /// Empties the batch, keeping its buffers.
    fn clear(&mut self);
}

/// The parsing thread's end of the channel: fills [`Sender::batch`] and sends it when full.
pub(crate) struct Sender<B> {
    tx: SyncSender<B>,
    recycled: Receiver<B>,
    /// The batch being filled.
    pub(crate) batch: B,
}

impl<B: Batch> Sender<B> {
    /// Sends the batch once it holds [`BATCH_ROWS`] rows. Returns `false` when the consuming
    /// thread has stopped.
    #[inline]
    pub(crate) fn send_if_full(&mut self) -> bool {
        if self.batch.rows() >= BATCH_ROWS { self.flush() } else { true }
    }

    /// Sends the batch if it has rows. Returns `false` when the consuming thread has stopped.
    pub(crate) fn flush(&mut self) -> bool {
        if self.batch.rows() == 0 {
            return true;
        }
        let next = self.recycled.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        self.tx.send(full).is_ok()
    }
}

/// Runs `produce` on a second thread and `consume` on this one, batch by batch in order.
///
/// When `consume` fails the channel is dropped, so the producer's next send fails and it stops;
/// the consumer's error comes first (it is earlier in the file than anything still in flight).
/// `produce` returns `Ok` when its input is exhausted or when a send returned `false`.
pub(crate) fn two_threads<B, P, C>(produce: P, mut consume: C) -> Result<(), ReadError>
where
    B: Batch,
    P: FnOnce(&mut Sender<B>) -> Result<(), ReadError> + Send,
    C: FnMut(&B) -> Result<(), ReadError>,
{
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<B>(IN_FLIGHT);
        let (recycle_tx, recycled) = channel::<B>();
        let producer = scope.spawn(move || {
            let mut sender = Sender { tx, recycled, batch: B::default() };
            let result = produce(&mut sender);
            sender.flush();
            result
        });
        let mut consumed: Result<(), ReadError> = Ok(());
        while let Ok(mut batch) = rx.recv() {
            consumed = consume(&batch);
            if consumed.is_err() {
                break;
            }
            batch.clear();
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
        // An error the consumer met comes first in file order.
        consumed.and(produced)
    })
}

/// How many items ahead the consumer touches the id tables ([`Aggregator::touch`]).
const TOUCH_AHEAD: usize = 16;

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

/// A line's product, as spans into the batch's bytes.
struct DetailSpans {
    product: (u32, u32),
    category: Option<(u32, u32)>,
    quantity: Money,
    unit_price: Money,
}

#[derive(Default)]
pub(crate) struct OrderBatch {
    bytes: Vec<u8>,
    items: Vec<Item>,
    /// One entry per item when lines are kept (`None` for a row without a product), else empty.
    details: Vec<Option<DetailSpans>>,
}

impl Batch for OrderBatch {
    fn rows(&self) -> usize {
        self.items.len()
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
        self.details.clear();
    }
}

impl OrderBatch {
    fn span(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(bytes);
        (start, bytes.len() as u32)
    }

    fn get(&self, (start, len): (u32, u32)) -> &[u8] {
        &self.bytes[start as usize..(start + len) as usize]
    }

    fn text(&self, span: (u32, u32)) -> &str {
        // The spans hold text that was checked as UTF-8 before it was copied in.
        std::str::from_utf8(self.get(span)).unwrap_or_default()
    }

    fn detail(&self, index: usize) -> Option<LineDetail<'_>> {
        let d = self.details.get(index)?.as_ref()?;
        Some(LineDetail {
            product: self.text(d.product),
            category: d.category.map(|c| self.text(c)),
            quantity: d.quantity,
            unit_price: d.unit_price,
        })
    }
}

/// How often (in rows) progress is reported.
const PROGRESS_EVERY: u64 = 1 << 16;

/// The parsing thread's end: collects rows into batches and sends them.
pub(crate) struct RowSink<'r, 's> {
    out: &'s mut Sender<OrderBatch>,
    /// The ids of the previous line sent, to flag lines of the same order (the reader thread
    /// compares a few bytes it has in cache; the aggregator then skips every lookup).
    previous: Option<(Vec<u8>, Vec<u8>)>,
    /// Rows sent so far.
    rows: u64,
    /// Called with the rows sent so far, every [`PROGRESS_EVERY`] rows.
    report: &'r (dyn Fn(u64) + Sync),
    /// Whether rows carry their product ([`RowSink::detail`]).
    with_details: bool,
    /// The product of the row about to be sent.
    pending: Option<DetailSpans>,
}

impl RowSink<'_, '_> {
    /// Whether rows carry their product: the caller keeps lines and the file has a product
    /// column.
    #[inline]
    pub(crate) fn keeps_details(&self) -> bool {
        self.with_details
    }

    /// Gives the product of the row that the next [`RowSink::row`] call sends.
    pub(crate) fn detail(&mut self, detail: LineDetail<'_>) {
        let product = self.out.batch.span(detail.product.as_bytes());
        let category = detail.category.map(|c| self.out.batch.span(c.as_bytes()));
        self.pending =
            Some(DetailSpans { product, category, quantity: detail.quantity, unit_price: detail.unit_price });
    }

    /// Queues a parsed row (or its problem). Returns `false` when the aggregator has stopped.
    #[inline]
    pub(crate) fn row(&mut self, location: Location, parsed: Result<OrderLine<'_>, FieldProblem>) -> bool {
        self.rows += 1;
        let item = match parsed {
            Ok(line) => {
                let same = match (&self.previous, line.order) {
                    (Some((customer, order)), Some(o)) => same_id(order, o) && same_id(customer, line.customer),
                    _ => false,
                };
                let customer = self.out.batch.span(line.customer);
                if same {
                    let order = self.out.batch.span(line.order.unwrap_or_default());
                    Item::SameOrder { location, customer, order, time: line.time, amount: line.amount }
                } else {
                    let hashes = LineHashes { customer: hash(line.customer), order: line.order.map(hash) };
                    let order = line.order.map(|o| self.out.batch.span(o));
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
        self.out.batch.items.push(item);
        if self.with_details {
            let detail = self.pending.take();
            self.out.batch.details.push(detail);
        }
        if self.rows.is_multiple_of(PROGRESS_EVERY) {
            (self.report)(self.rows);
        }
        self.out.send_if_full()
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
    target: Target<'_>,
) -> Result<(), ReadError>
where
    F: FnOnce(&mut RowSink<'_, '_>) -> Result<(), ReadError> + Send,
{
    let Target { aggregator, mut lines } = target;
    let with_details = lines.is_some() && columns.lines.is_some();
    let mut previous_accepted = false;
    two_threads(
        move |out: &mut Sender<OrderBatch>| {
            let mut sink = RowSink { out, previous: None, rows: 0, report, with_details, pending: None };
            produce(&mut sink)
        },
        |batch: &OrderBatch| {
            for (index, item) in batch.items.iter().enumerate() {
                parser.rows += 1;
                if let Some(Item::Line { hashes, .. }) = batch.items.get(index + TOUCH_AHEAD) {
                    aggregator.touch(hashes);
                }
                match item {
                    // The fast path is safe only right after the line it continues was accepted.
                    Item::SameOrder { time, amount, .. } if previous_accepted => {
                        aggregator.push_same_order(*time, *amount);
                    }
                    Item::SameOrder { location, customer, order, time, amount } => {
                        let line = OrderLine {
                            customer: batch.get(*customer),
                            order: Some(batch.get(*order)),
                            time: *time,
                            amount: *amount,
                        };
                        let hashes = LineHashes::of(&line);
                        push(aggregator, parser, columns, *location, line, hashes, &mut previous_accepted)?;
                    }
                    Item::Line { location, customer, order, time, amount, hashes } => {
                        let line = OrderLine {
                            customer: batch.get(*customer),
                            order: order.map(|o| batch.get(o)),
                            time: *time,
                            amount: *amount,
                        };
                        push(aggregator, parser, columns, *location, line, *hashes, &mut previous_accepted)?;
                    }
                    Item::Problem { location, problem } => {
                        previous_accepted = false;
                        parser.problem(*location, columns, problem.clone())?;
                    }
                }
                if with_details
                    && previous_accepted
                    && let Some(sink) = lines.as_mut()
                    && let Some(detail) = batch.detail(index)
                    && let Some(order) = aggregator.last_order()
                {
                    sink(order, detail);
                }
            }
            Ok(())
        },
    )
}
