//! From order lines to orders grouped by customer.
//!
//! Readers push one [`OrderLine`] at a time. Lines that share an order id are summed into one
//! order (an order may span many lines: products, shipping, a discount line); without an order
//! id every line is an order of its own. [`Aggregator::finish`] then groups the orders by
//! customer in time order, in linear time (a counting sort over customer indices), ready for
//! [`crate::analysis`].
//!
//! **Invariant:** a line that [`Aggregator::push`] rejects leaves the aggregator unchanged, so
//! a reader can skip a bad row (`--max-errors`) without losing anything already accepted.

use crate::intern::{Interner, hash};
use crate::money::Money;
use crate::time::Timestamp;

/// One row of an order log, as a reader hands it over.
#[derive(Debug, Clone, Copy)]
pub struct OrderLine<'a> {
    /// The customer's id, exactly as written (never empty).
    pub customer: &'a [u8],
    /// The order id, when the input has one.
    pub order: Option<&'a [u8]>,
    /// When the order was placed.
    pub time: Timestamp,
    /// The line amount; negative for returns and refunds.
    pub amount: Money,
}

/// The interner hashes of a line's ids, computed ahead of time (on a reader thread) so the
/// aggregating thread only probes its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineHashes {
    /// `intern::hash(customer)`.
    pub customer: u64,
    /// `intern::hash(order)`, when there is an order id.
    pub order: Option<u64>,
}

impl LineHashes {
    /// The hashes of `line`'s ids.
    pub fn of(line: &OrderLine<'_>) -> LineHashes {
        LineHashes { customer: hash(line.customer), order: line.order.map(hash) }
    }
}

/// One order: the sum of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// The earliest time among the order's lines.
    pub time: Timestamp,
    /// The sum of the order's line amounts; an order whose sum is negative is a return.
    pub amount: Money,
}

/// A line that contradicts lines accepted before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The same order id appears with two different customers.
    #[error("order `{order}` belongs to customer `{first}` but this line names customer `{second}`")]
    OrderCustomerMismatch {
        /// The order id.
        order: String,
        /// The customer of the order's first line.
        first: String,
        /// The customer named by the rejected line.
        second: String,
    },
    /// The customer id is empty.
    #[error("the customer id is empty")]
    EmptyCustomer,
    /// More than 4 billion distinct customers or orders.
    #[error("more than 4,294,967,295 distinct customers or orders")]
    TooMany,
}

/// `OrderAcc::id` of an order whose lines had no order id.
const NO_ID: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct OrderAcc {
    customer: u32,
    /// Index in `order_ids`, or [`NO_ID`]. Fits the padding after `customer`: no extra memory.
    id: u32,
    time: Timestamp,
    amount: Money,
}

/// Accumulates order lines; see the module docs.
#[derive(Debug, Default)]
pub struct Aggregator {
    customers: Interner,
    order_ids: Interner,
    orders: Vec<OrderAcc>,
    lines: u64,
    /// The previous line's customer and order, so runs of lines of one order (the usual
    /// layout of an export) skip both hash lookups.
    last_customer: Option<(Vec<u8>, u32)>,
    last_order: Option<(Vec<u8>, u32)>,
    /// The order that the last successful push added to.
    last_pushed: Option<u32>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// Number of lines accepted so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Number of distinct orders so far.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Number of distinct customers so far.
    pub fn customers(&self) -> usize {
        self.customers.len()
    }

    fn customer_index(&mut self, customer: &[u8], h: u64) -> Result<u32, AggregateError> {
        if let Some((bytes, index)) = &self.last_customer
            && bytes.as_slice() == customer
        {
            return Ok(*index);
        }
        if self.customers.len() >= u32::MAX as usize {
            return Err(AggregateError::TooMany);
        }
        let (index, _) = self.customers.intern_hashed(customer, h);
        let slot = self.last_customer.get_or_insert_with(|| (Vec::new(), index));
        slot.0.clear();
        slot.0.extend_from_slice(customer);
        slot.1 = index;
        Ok(index)
    }

    /// Read the table memory that pushing a line with `hashes` will probe. Each probe of the
    /// two id tables is a cache miss; touching the tables for a line some lines ahead lets the
    /// processor wait for several misses at once instead of one after another. Changes nothing.
    #[inline]
    pub fn touch(&self, hashes: &LineHashes) {
        self.customers.touch(hashes.customer);
        if let Some(order) = hashes.order {
            self.order_ids.touch(order);
        }
    }

    /// Adds one line. On error nothing changes.
    pub fn push(&mut self, line: OrderLine<'_>) -> Result<(), AggregateError> {
        self.push_hashed(line, LineHashes::of(&line))
    }

    /// [`Aggregator::push`] with the ids' hashes computed by the caller.
    pub fn push_hashed(&mut self, line: OrderLine<'_>, hashes: LineHashes) -> Result<(), AggregateError> {
        if line.customer.is_empty() {
            return Err(AggregateError::EmptyCustomer);
        }
        let Some(order_id) = line.order else {
            if self.orders.len() >= u32::MAX as usize {
                return Err(AggregateError::TooMany);
            }
            let customer = self.customer_index(line.customer, hashes.customer)?;
            self.last_pushed = Some(self.orders.len() as u32);
            self.orders.push(OrderAcc { customer, id: NO_ID, time: line.time, amount: line.amount });
            self.lines += 1;
            return Ok(());
        };
        if let Some((bytes, index)) = &self.last_order
            && bytes.as_slice() == order_id
        {
            let index = *index;
            self.add_to_order(index, line)?;
            self.last_pushed = Some(index);
        } else {
            // Check every limit before interning, so a rejected line changes nothing.
            if self.orders.len() >= u32::MAX as usize || self.customers.len() >= u32::MAX as usize {
                return Err(AggregateError::TooMany);
            }
            let (index, new) = self.order_ids.intern_hashed(order_id, hashes.order.unwrap_or_else(|| hash(order_id)));
            if new {
                let customer = self.customer_index(line.customer, hashes.customer)?;
                self.orders.push(OrderAcc { customer, id: index, time: line.time, amount: line.amount });
            } else {
                self.add_to_order(index, line)?;
            }
            self.remember_order(order_id, index);
            self.last_pushed = Some(index);
        }
        self.lines += 1;
        Ok(())
    }

    /// Adds a line that belongs to the same order (same order id, same customer) as the line of
    /// the last successful push — the caller has compared the ids. This is the common case of an
    /// export (an order's lines are adjacent) and skips every lookup. Returns `false`, changing
    /// nothing, when no push has succeeded yet.
    pub fn push_same_order(&mut self, time: Timestamp, amount: Money) -> bool {
        let Some(index) = self.last_pushed else { return false };
        let acc = &mut self.orders[index as usize];
        acc.amount += amount;
        acc.time = acc.time.min(time);
        self.lines += 1;
        true
    }

    /// The order that the last successful push added to, as its position in
    /// [`Aggregator::for_each_order`]; `None` before the first. Importers that keep order lines
    /// use it to attach each line to its order.
    pub fn last_order(&self) -> Option<u32> {
        self.last_pushed
    }

    /// Adds a line to an existing order, after checking that it names the order's customer.
    fn add_to_order(&mut self, index: u32, line: OrderLine<'_>) -> Result<(), AggregateError> {
        let acc = &mut self.orders[index as usize];
        let customer = self.customers.get(acc.customer);
        if customer != line.customer {
            return Err(AggregateError::OrderCustomerMismatch {
                order: String::from_utf8_lossy(line.order.unwrap_or_default()).into_owned(),
                first: String::from_utf8_lossy(customer).into_owned(),
                second: String::from_utf8_lossy(line.customer).into_owned(),
            });
        }
        acc.amount += line.amount;
        acc.time = acc.time.min(line.time);
        Ok(())
    }

    fn remember_order(&mut self, order_id: &[u8], index: u32) {
        let slot = self.last_order.get_or_insert_with(|| (Vec::new(), index));
        if slot.0.as_slice() != order_id {
            slot.0.clear();
            slot.0.extend_from_slice(order_id);
        }
        slot.1 = index;
    }

    /// Every order so far, in first-seen order: customer id, order id (`None` when its line had
    /// none), earliest line time and summed amount. For importers, which store orders rather
    /// than analyse them.
    pub fn for_each_order(&self, mut f: impl FnMut(&[u8], Option<&[u8]>, Timestamp, Money)) {
        for o in &self.orders {
            let id = (o.id != NO_ID).then(|| self.order_ids.get(o.id));
            f(self.customers.get(o.customer), id, o.time, o.amount);
        }
    }

    /// Groups the orders by customer, each customer's orders sorted by time.
    pub fn finish(self) -> CustomerBase {
        let n = self.customers.len();
        // Counting sort by customer: offsets[c]..offsets[c + 1] are customer c's orders.
        let mut offsets = vec![0u32; n + 1];
        for o in &self.orders {
            offsets[o.customer as usize + 1] += 1;
        }
        for c in 0..n {
            offsets[c + 1] += offsets[c];
        }
        let mut cursor = offsets.clone();
        let mut grouped = vec![Order { time: Timestamp(0), amount: Money::ZERO }; self.orders.len()];
        let mut max_time: Option<Timestamp> = None;
        for o in &self.orders {
            let slot = &mut cursor[o.customer as usize];
            grouped[*slot as usize] = Order { time: o.time, amount: o.amount };
            *slot += 1;
            max_time = Some(max_time.map_or(o.time, |m| m.max(o.time)));
        }
        drop(self.orders);
        for c in 0..n {
            let slice = &mut grouped[offsets[c] as usize..offsets[c + 1] as usize];
            if slice.windows(2).any(|w| w[0].time > w[1].time) {
                slice.sort_by_key(|o| o.time);
            }
        }
        CustomerBase { ids: self.customers, offsets, orders: grouped, lines: self.lines, max_time }
    }
}

/// Every customer's orders in time order: the input of the analysis.
#[derive(Debug, Clone)]
pub struct CustomerBase {
    ids: Interner,
    offsets: Vec<u32>,
    orders: Vec<Order>,
    lines: u64,
    max_time: Option<Timestamp>,
}

impl CustomerBase {
    /// Number of customers (including those with only returns).
    pub fn customers(&self) -> usize {
        self.ids.len()
    }

    /// Number of orders (purchases and returns, before any cut-off).
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Number of order lines read.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The latest order time, the default observation end.
    pub fn max_time(&self) -> Option<Timestamp> {
        self.max_time
    }

    /// Customer `index`'s id bytes.
    pub fn id(&self, index: u32) -> &[u8] {
        self.ids.get(index)
    }

    /// Customer `index`'s orders, oldest first.
    pub fn orders_of(&self, index: u32) -> &[Order] {
        let i = index as usize;
        &self.orders[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(customer: &'a str, order: Option<&'a str>, time: i64, cents: i64) -> OrderLine<'a> {
        OrderLine {
            customer: customer.as_bytes(),
            order: order.map(str::as_bytes),
            time: Timestamp(time),
            amount: Money::from_raw(cents * 100),
        }
    }

    #[test]
    fn for_each_order_gives_the_summed_orders_with_their_ids() {
        let mut agg = Aggregator::new();
        agg.push(line("a", Some("o1"), 100, 500)).unwrap();
        agg.push(line("b", Some("o2"), 50, 700)).unwrap();
        agg.push(line("a", Some("o1"), 90, -100)).unwrap();
        let mut seen = Vec::new();
        agg.for_each_order(|c, o, t, m| seen.push((c.to_vec(), o.map(<[u8]>::to_vec), t.0, m.raw())));
        assert_eq!(
            seen,
            [(b"a".to_vec(), Some(b"o1".to_vec()), 90, 40_000), (b"b".to_vec(), Some(b"o2".to_vec()), 50, 70_000)]
        );
        let mut plain = Aggregator::new();
        plain.push(line("a", None, 1, 1)).unwrap();
        plain.for_each_order(|_, o, _, _| assert!(o.is_none()));
    }

    #[test]
    fn lines_of_one_order_are_summed_even_when_not_adjacent() {
        let mut agg = Aggregator::new();
        agg.push(line("a", Some("o1"), 100, 500)).unwrap();
        agg.push(line("b", Some("o2"), 50, 700)).unwrap();
        agg.push(line("a", Some("o1"), 90, -100)).unwrap();
        agg.push(line("a", Some("o3"), 10, 200)).unwrap();
        let base = agg.finish();
        assert_eq!(base.customers(), 2);
        assert_eq!(base.orders(), 3);
        assert_eq!(base.lines(), 4);
        assert_eq!(
            base.orders_of(0),
            &[
                Order { time: Timestamp(10), amount: Money::from_raw(20_000) },
                Order { time: Timestamp(90), amount: Money::from_raw(40_000) },
            ]
        );
        assert_eq!(base.orders_of(1), &[Order { time: Timestamp(50), amount: Money::from_raw(70_000) }]);
        // The order's time is its earliest line, so the latest order time is 90.
        assert_eq!(base.max_time(), Some(Timestamp(90)));
    }

    #[test]
    fn an_order_with_two_customers_is_rejected_without_changing_anything() {
        let mut agg = Aggregator::new();
        agg.push(line("a", Some("o1"), 100, 500)).unwrap();
        let err = agg.push(line("b", Some("o1"), 100, 500)).unwrap_err();
        assert_eq!(
            err,
            AggregateError::OrderCustomerMismatch { order: "o1".into(), first: "a".into(), second: "b".into() }
        );
        assert_eq!(agg.push(line("", None, 1, 1)), Err(AggregateError::EmptyCustomer));
        assert_eq!((agg.lines(), agg.orders(), agg.customers()), (1, 1, 1));
        let base = agg.finish();
        assert_eq!(base.orders_of(0), &[Order { time: Timestamp(100), amount: Money::from_raw(50_000) }]);
    }

    #[test]
    fn a_line_of_the_same_order_is_added_without_lookups() {
        let mut agg = Aggregator::new();
        assert!(!agg.push_same_order(Timestamp(1), Money::from_raw(1)));
        agg.push(line("a", Some("o1"), 100, 500)).unwrap();
        assert!(agg.push_same_order(Timestamp(50), Money::from_raw(2_500)));
        assert_eq!(agg.lines(), 2);
        let base = agg.finish();
        assert_eq!(base.orders_of(0), &[Order { time: Timestamp(50), amount: Money::from_raw(52_500) }]);
    }

    #[test]
    fn touching_the_tables_ahead_changes_nothing() {
        let lines = [line("a", Some("o1"), 100, 500), line("b", Some("o2"), 90, 700), line("a", Some("o1"), 80, 100)];
        let (mut plain, mut touched) = (Aggregator::new(), Aggregator::new());
        for (i, l) in lines.iter().enumerate() {
            plain.push(*l).unwrap();
            // The next line's ids, and ids that never come.
            if let Some(next) = lines.get(i + 1) {
                touched.touch(&LineHashes::of(next));
            }
            touched.touch(&LineHashes::of(&line("zz", Some("never"), 0, 0)));
            touched.push(*l).unwrap();
        }
        let orders = |agg: &Aggregator| {
            let mut all = Vec::new();
            agg.for_each_order(|c, o, t, a| all.push((c.to_vec(), o.map(<[u8]>::to_vec), t, a)));
            all
        };
        assert_eq!(orders(&touched), orders(&plain));
        assert_eq!((touched.customers(), touched.orders(), touched.lines()), (2, 2, 3));
    }

    #[test]
    fn without_order_ids_every_line_is_an_order() {
        let mut agg = Aggregator::new();
        agg.push(line("a", None, 5, 100)).unwrap();
        agg.push(line("a", None, 5, 100)).unwrap();
        let base = agg.finish();
        assert_eq!(base.orders_of(0).len(), 2);
    }
}
