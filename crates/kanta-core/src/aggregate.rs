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
//!
//! Finding a line's order by its id costs a probe of a hash table of every order id, a cache
//! miss per order on a large file. Exports list an order's lines together, so a reader that can
//! read its input again uses [`Aggregator::deferred`]: a line continues the order of the line
//! before it or starts a new one, without a lookup, and [`Aggregator::resolve`] finds the ids
//! that came back later in one cache-friendly pass at the end (see there).

use crate::intern::{IdLog, Interner, hash, same_id};
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

/// Where the order ids live, and how a line finds its order.
#[derive(Debug)]
enum OrderIds {
    /// In a hash table: a line finds its order wherever the order's earlier lines were.
    Indexed {
        ids: Interner,
        /// The order of each interned id (orders without an id make the two numberings differ).
        orders: Vec<u32>,
    },
    /// Appended without lookups; [`Aggregator::resolve`] finds the repeats.
    Deferred {
        log: IdLog,
        /// `hashes[i]` is `hash(log.get(i))`, which the reader computed anyway.
        hashes: Vec<u64>,
        /// Whether orders were added since the last [`Aggregator::resolve`].
        unresolved: bool,
    },
}

impl Default for OrderIds {
    fn default() -> OrderIds {
        OrderIds::Indexed { ids: Interner::new(), orders: Vec::new() }
    }
}

/// Accumulates order lines; see the module docs.
#[derive(Debug, Default)]
pub struct Aggregator {
    customers: Interner,
    order_ids: OrderIds,
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

    /// An empty aggregator that looks a line's order id up only in the line before it.
    ///
    /// A line whose order id is the previous line's joins that order; any other line starts a
    /// new order, even when its id came earlier in the input. Call [`Aggregator::resolve`] when
    /// the input is read: it merges the orders whose id repeats an earlier order's, or reports
    /// that an id came with two customers. That conflict is what [`Aggregator::new`] rejects
    /// line by line, where it occurs, so a reader that meets it reads its input again with an
    /// indexed aggregator to report each such line as it would have.
    pub fn deferred() -> Aggregator {
        Aggregator {
            order_ids: OrderIds::Deferred { log: IdLog::new(), hashes: Vec::new(), unresolved: false },
            ..Aggregator::default()
        }
    }

    /// Whether nothing has been pushed.
    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.orders.is_empty() && self.customers.is_empty()
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
            && same_id(bytes, customer)
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
        if let (Some(order), OrderIds::Indexed { ids, .. }) = (hashes.order, &self.order_ids) {
            ids.touch(order);
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
            && same_id(bytes, order_id)
        {
            let index = *index;
            self.add_to_order(index, line)?;
            self.last_pushed = Some(index);
        } else {
            // Check every limit before interning, so a rejected line changes nothing.
            if self.orders.len() >= u32::MAX as usize || self.customers.len() >= u32::MAX as usize {
                return Err(AggregateError::TooMany);
            }
            // `Ok(order)` for an order seen before, `Err(id)` for a new order's id.
            let existing = match &mut self.order_ids {
                OrderIds::Indexed { ids, orders } => {
                    let (id, new) = ids.intern_hashed(order_id, hashes.order.unwrap_or_else(|| hash(order_id)));
                    if new {
                        orders.push(self.orders.len() as u32);
                        Err(id)
                    } else {
                        Ok(orders[id as usize])
                    }
                }
                OrderIds::Deferred { log, hashes: logged, unresolved } => {
                    let id = log.push(order_id).ok_or(AggregateError::TooMany)?;
                    logged.push(hashes.order.unwrap_or_else(|| hash(order_id)));
                    *unresolved = true;
                    Err(id)
                }
            };
            let index = match existing {
                Ok(index) => {
                    self.add_to_order(index, line)?;
                    index
                }
                Err(id) => {
                    let customer = self.customer_index(line.customer, hashes.customer)?;
                    self.orders.push(OrderAcc { customer, id, time: line.time, amount: line.amount });
                    (self.orders.len() - 1) as u32
                }
            };
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
    /// use it to attach each line to its order (with an indexed aggregator: a deferred one's
    /// positions move when [`Aggregator::resolve`] merges orders).
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
        if !same_id(&slot.0, order_id) {
            slot.0.clear();
            slot.0.extend_from_slice(order_id);
        }
        slot.1 = index;
    }

    /// Finishes what [`Aggregator::deferred`] left open: merges every order whose id repeats
    /// an earlier order's into that order, as if the lines had been pushed to an indexed
    /// aggregator. If an id came with two customers, returns the first such conflict (the
    /// earliest repeat in input order) and changes nothing. Does nothing for an indexed
    /// aggregator, or when nothing was pushed since the last call.
    ///
    /// The ids' hashes are scattered into 256 partitions by their top byte, and each partition
    /// (a few thousand entries on millions of orders) gets its own small hash table that stays
    /// in cache: a sequential pass over the orders instead of a cache-missing probe per order.
    pub fn resolve(&mut self) -> Result<(), AggregateError> {
        let OrderIds::Deferred { log, hashes, unresolved } = &mut self.order_ids else { return Ok(()) };
        if !*unresolved {
            return Ok(());
        }
        let repeats = repeats(&self.orders, log, hashes);
        if let Some(&(later, first)) =
            repeats.iter().find(|&&(l, f)| self.orders[l].customer != self.orders[f].customer)
        {
            let (later, first) = (self.orders[later], self.orders[first]);
            return Err(AggregateError::OrderCustomerMismatch {
                order: String::from_utf8_lossy(log.get(later.id)).into_owned(),
                first: String::from_utf8_lossy(self.customers.get(first.customer)).into_owned(),
                second: String::from_utf8_lossy(self.customers.get(later.customer)).into_owned(),
            });
        }
        *unresolved = false;
        if repeats.is_empty() {
            return Ok(());
        }
        let mut gone = vec![false; self.orders.len()];
        for &(later, first) in &repeats {
            let later_order = self.orders[later];
            let acc = &mut self.orders[first];
            acc.amount += later_order.amount;
            acc.time = acc.time.min(later_order.time);
            gone[later] = true;
        }
        // Close the gaps, keeping first-seen order, and note where each order went.
        let mut moved = vec![0u32; self.orders.len()];
        let mut kept = 0;
        for i in 0..self.orders.len() {
            if !gone[i] {
                self.orders[kept] = self.orders[i];
                moved[i] = kept as u32;
                kept += 1;
            }
        }
        for &(later, first) in &repeats {
            moved[later] = moved[first];
        }
        self.orders.truncate(kept);
        self.last_pushed = self.last_pushed.map(|i| moved[i as usize]);
        if let Some((_, index)) = &mut self.last_order {
            *index = moved[*index as usize];
        }
        Ok(())
    }

    fn order_id(&self, id: u32) -> &[u8] {
        match &self.order_ids {
            OrderIds::Indexed { ids, .. } => ids.get(id),
            OrderIds::Deferred { log, .. } => log.get(id),
        }
    }

    /// Every order so far, in first-seen order: customer id, order id (`None` when its line had
    /// none), earliest line time and summed amount. For importers, which store orders rather
    /// than analyse them. A deferred aggregator must be [resolved](Aggregator::resolve) first.
    pub fn for_each_order(&self, mut f: impl FnMut(&[u8], Option<&[u8]>, Timestamp, Money)) {
        debug_assert!(!matches!(self.order_ids, OrderIds::Deferred { unresolved: true, .. }));
        for o in &self.orders {
            let id = (o.id != NO_ID).then(|| self.order_id(o.id));
            f(self.customers.get(o.customer), id, o.time, o.amount);
        }
    }

    /// Groups the orders by customer, each customer's orders sorted by time.
    ///
    /// A deferred aggregator is [resolved](Aggregator::resolve) first; call that yourself to
    /// learn of an order id with two customers, whose orders otherwise stay apart.
    pub fn finish(mut self) -> CustomerBase {
        let _ = self.resolve();
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

/// The orders whose id repeats an earlier order's id, as `(later, first)` order positions in
/// ascending order, where `first` is the earliest order with that id; see
/// [`Aggregator::resolve`]. `hashes` holds the hash of every id in `log`.
fn repeats(orders: &[OrderAcc], log: &IdLog, hashes: &[u64]) -> Vec<(usize, usize)> {
    const PARTITIONS: usize = 256;
    let part = |h: u64| (h >> 56) as usize;
    let keyed = || orders.iter().enumerate().filter(|(_, o)| o.id != NO_ID).map(|(i, o)| (hashes[o.id as usize], i));
    // Counting scatter by the hash's top byte; each partition keeps input order.
    let mut starts = vec![0usize; PARTITIONS + 1];
    for (h, _) in keyed() {
        starts[part(h) + 1] += 1;
    }
    for p in 0..PARTITIONS {
        starts[p + 1] += starts[p];
    }
    let mut cursor = starts.clone();
    let mut scattered = vec![(0u64, 0u32); starts[PARTITIONS]];
    for (h, i) in keyed() {
        let slot = &mut cursor[part(h)];
        scattered[*slot] = (h, i as u32);
        *slot += 1;
    }
    let id = |i: u32| log.get(orders[i as usize].id);
    let find = |partitions: std::ops::Range<usize>| {
        let mut repeats = Vec::new();
        let mut table: Vec<u32> = Vec::new();
        for p in partitions {
            let partition = &scattered[starts[p]..starts[p + 1]];
            // Open addressing on the hash's low bits, at most half full; a slot holds the
            // position in `partition` of the first order with an id, so a later equal id
            // finds the earliest. Ids whose hashes collide are told apart by their bytes.
            let mask = (partition.len() * 2).next_power_of_two().max(16) - 1;
            table.clear();
            table.resize(mask + 1, u32::MAX);
            for (k, &(h, i)) in partition.iter().enumerate() {
                let mut slot = h as usize & mask;
                loop {
                    let t = table[slot];
                    if t == u32::MAX {
                        table[slot] = k as u32;
                        break;
                    }
                    let (th, first) = partition[t as usize];
                    if th == h && id(first) == id(i) {
                        repeats.push((i as usize, first as usize));
                        break;
                    }
                    slot = (slot + 1) & mask;
                }
            }
        }
        repeats
    };
    // The partitions are independent: half of them on a second thread when there are many.
    let mut repeats = if scattered.len() < 1 << 16 {
        find(0..PARTITIONS)
    } else {
        std::thread::scope(|scope| {
            let upper = scope.spawn(|| find(PARTITIONS / 2..PARTITIONS));
            let mut repeats = find(0..PARTITIONS / 2);
            // The closure cannot panic on these inputs; if it did, resolve on this thread.
            repeats.extend(upper.join().unwrap_or_else(|_| find(PARTITIONS / 2..PARTITIONS)));
            repeats
        })
    };
    repeats.sort_unstable();
    repeats
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
        assert_eq!(all_orders(&touched), all_orders(&plain));
        assert_eq!((touched.customers(), touched.orders(), touched.lines()), (2, 2, 3));
    }

    /// An order as owned values: customer id, order id, time, amount.
    type Owned = (Vec<u8>, Option<Vec<u8>>, Timestamp, Money);

    /// Every order of `agg` as owned values, in first-seen order.
    fn all_orders(agg: &Aggregator) -> Vec<Owned> {
        let mut all = Vec::new();
        agg.for_each_order(|c, o, t, a| all.push((c.to_vec(), o.map(<[u8]>::to_vec), t, a)));
        all
    }

    #[test]
    fn a_deferred_aggregator_merges_an_order_whose_lines_come_back_later() {
        let lines = [
            line("a", Some("o1"), 100, 500),
            line("a", Some("o1"), 120, 100),
            line("b", Some("o2"), 50, 700),
            line("a", Some("o1"), 90, -100),
            line("c", None, 10, 1),
            line("b", Some("o2"), 40, 1),
            line("a", Some("o3"), 10, 200),
        ];
        let (mut indexed, mut deferred) = (Aggregator::new(), Aggregator::deferred());
        for l in lines {
            indexed.push(l).unwrap();
            deferred.push(l).unwrap();
        }
        // Before resolving, the lines that came back are orders of their own.
        assert_eq!(deferred.orders(), 6);
        assert_eq!(deferred.resolve(), Ok(()));
        assert_eq!(deferred.orders(), 4);
        assert_eq!(all_orders(&deferred), all_orders(&indexed));
        assert_eq!(
            all_orders(&deferred)[..2],
            [
                (b"a".to_vec(), Some(b"o1".to_vec()), Timestamp(90), Money::from_raw(50_000)),
                (b"b".to_vec(), Some(b"o2".to_vec()), Timestamp(40), Money::from_raw(70_100)),
            ]
        );
        // The last order moved from position 5 to 3; a line continuing it lands there.
        assert_eq!(deferred.last_order(), Some(3));
        assert!(deferred.push_same_order(Timestamp(5), Money::from_raw(100)));
        deferred.push(line("a", Some("o3"), 6, 1)).unwrap();
        // Resolving again (nothing new to merge) changes nothing; finishing agrees with indexed.
        assert_eq!(deferred.resolve(), Ok(()));
        assert!(indexed.push_same_order(Timestamp(5), Money::from_raw(100)));
        indexed.push(line("a", Some("o3"), 6, 1)).unwrap();
        assert_eq!(all_orders(&deferred), all_orders(&indexed));
        let (d, i) = (deferred.finish(), indexed.finish());
        for c in 0..3 {
            assert_eq!(d.orders_of(c), i.orders_of(c));
        }
        assert_eq!((d.lines(), d.orders(), d.customers()), (9, 4, 3));
    }

    #[test]
    fn a_deferred_aggregator_reports_an_order_id_with_two_customers_and_changes_nothing() {
        let mut agg = Aggregator::deferred();
        agg.push(line("a", Some("o1"), 100, 500)).unwrap();
        agg.push(line("b", Some("o2"), 100, 500)).unwrap();
        // Next to its order, the wrong customer is rejected at once, as by an indexed aggregator.
        assert_eq!(
            agg.push(line("c", Some("o2"), 100, 500)),
            Err(AggregateError::OrderCustomerMismatch { order: "o2".into(), first: "b".into(), second: "c".into() })
        );
        // Away from it, it is taken for a new order until resolved.
        agg.push(line("a", Some("o3"), 100, 500)).unwrap();
        agg.push(line("a", Some("o2"), 100, 500)).unwrap();
        agg.push(line("b", Some("o1"), 100, 500)).unwrap();
        agg.push(line("b", Some("o2"), 100, 500)).unwrap();
        assert_eq!(agg.orders(), 6);
        // The earliest conflict in input order: `o2` (first `b`) named with `a` on line 5.
        let conflict =
            AggregateError::OrderCustomerMismatch { order: "o2".into(), first: "b".into(), second: "a".into() };
        assert_eq!(agg.resolve(), Err(conflict.clone()));
        assert_eq!((agg.orders(), agg.lines()), (6, 6));
        assert_eq!(agg.resolve(), Err(conflict));
    }

    #[test]
    fn repeats_tell_colliding_hashes_apart_by_their_bytes() {
        // Every id gets the same hash, so all land in one partition and one probe chain.
        let mut log = IdLog::new();
        let ids = ["x", "y", "x", "z", "y", "x"];
        let orders: Vec<OrderAcc> = ids
            .iter()
            .map(|id| OrderAcc {
                customer: 0,
                id: log.push(id.as_bytes()).unwrap(),
                time: Timestamp(0),
                amount: Money::ZERO,
            })
            .collect();
        let hashes = vec![42u64 << 56; ids.len()];
        assert_eq!(repeats(&orders, &log, &hashes), [(2, 0), (4, 1), (5, 0)]);
        // With real hashes, and on two threads when there are many orders.
        let mut log = IdLog::new();
        let n = 100_000u32;
        let orders: Vec<OrderAcc> = (0..n)
            .map(|i| OrderAcc {
                customer: i % 7,
                id: if i % 10 == 3 { NO_ID } else { log.push(format!("o{}", i % 60_000).as_bytes()).unwrap() },
                time: Timestamp(0),
                amount: Money::ZERO,
            })
            .collect();
        let hashes: Vec<u64> = (0..log.len() as u32).map(|i| hash(log.get(i))).collect();
        let expected: Vec<(usize, usize)> =
            (60_000..n as usize).filter(|i| i % 10 != 3 && (i - 60_000) % 10 != 3).map(|i| (i, i - 60_000)).collect();
        assert_eq!(repeats(&orders, &log, &hashes), expected);
    }

    #[test]
    fn without_order_ids_every_line_is_an_order() {
        let mut agg = Aggregator::new();
        agg.push(line("a", None, 5, 100)).unwrap();
        agg.push(line("a", None, 5, 100)).unwrap();
        let base = agg.finish();
        assert_eq!(base.orders_of(0).len(), 2);
    }

    #[test]
    fn lines_without_an_order_id_do_not_shift_the_orders_found_by_id() {
        // The order without an id is order 0 but has no interned id, so `o1` (id 0) is order 1.
        for mut agg in [Aggregator::new(), Aggregator::deferred()] {
            agg.push(line("a", None, 5, 100)).unwrap();
            agg.push(line("b", Some("o1"), 6, 200)).unwrap();
            agg.push(line("b", Some("o2"), 7, 300)).unwrap();
            agg.push(line("b", Some("o1"), 4, 400)).unwrap();
            agg.resolve().unwrap();
            assert_eq!(agg.last_order(), Some(1));
            let orders: Vec<_> = all_orders(&agg).into_iter().map(|(_, o, t, a)| (o, t.0, a.raw() / 100)).collect();
            assert_eq!(orders, [(None, 5, 100), (Some(b"o1".to_vec()), 4, 600), (Some(b"o2".to_vec()), 7, 300)]);
        }
    }

    proptest::proptest! {
        /// Whatever the lines, a deferred aggregator either resolves to exactly what an indexed
        /// one holds, line for line, or reports a conflict that the indexed one rejected.
        #[test]
        fn deferred_and_indexed_aggregators_agree(
            lines in proptest::collection::vec((0u8..4, proptest::option::weighted(0.9, 0u8..6), 0i64..50, -5i64..20), 0..60),
            resolve_midway in 0usize..60,
        ) {
            let (mut indexed, mut deferred) = (Aggregator::new(), Aggregator::deferred());
            let (mut indexed_results, mut deferred_results) = (Vec::new(), Vec::new());
            let mut resolved = Ok(());
            for (k, (c, o, t, cents)) in lines.iter().enumerate() {
                if k == resolve_midway {
                    resolved = resolved.and(deferred.resolve());
                }
                let (customer, order) = (format!("c{c}"), o.map(|o| format!("o{o}")));
                let l = line(&customer, order.as_deref(), *t, *cents);
                indexed_results.push(indexed.push(l));
                deferred_results.push(deferred.push(l));
            }
            let resolved = resolved.and(deferred.resolve());
            // A conflict is reported exactly when the deferred aggregator took a line that the
            // indexed one rejected for naming another customer than its order's.
            let taken = indexed_results.iter().zip(&deferred_results).any(|(i, d)| {
                matches!((i, d), (Err(AggregateError::OrderCustomerMismatch { .. }), Ok(())))
            });
            proptest::prop_assert_eq!(resolved.is_err(), taken);
            if resolved.is_ok() {
                proptest::prop_assert_eq!(&deferred_results, &indexed_results);
                proptest::prop_assert_eq!(all_orders(&deferred), all_orders(&indexed));
                proptest::prop_assert_eq!(deferred.last_order(), indexed.last_order());
                proptest::prop_assert_eq!(
                    (deferred.lines(), deferred.customers()),
                    (indexed.lines(), indexed.customers())
                );
            }
        }
    }
}
