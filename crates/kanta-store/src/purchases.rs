//! What the scoring job reads from a store: the purchases, a chunk of order ids at a time, and
//! the categories of their lines (see [`crate::OrderStore::purchases`]).
//!
//! A chunk's lines are joined to its orders here, in memory, rather than by the database: both
//! are read by order id range, so a chunk's lines belong to the chunk's orders, and a dense
//! slot per order id of the range finds each line's order without a join in SQL (which cost
//! SQLite 1.2 µs a line, more than reading the line itself).

use kanta_domain::purchase::Kind;

/// Completed and refunded orders reduced to what scoring needs, column by column (a chunk of
/// the store's orders; see [`crate::OrderStore::purchases`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purchases {
    /// Internal customer id of each order.
    pub customer: Vec<i64>,
    /// Order time, whole seconds since the epoch (rounded down).
    pub time: Vec<i64>,
    /// Amount in 1/10,000 units; refunded orders negative, as returns are in an order log.
    pub amount: Vec<i64>,
    /// The categories of the lines of this chunk's purchases, when they were asked for.
    pub lines: PurchaseLines,
}

/// The categories of purchase lines (lines of completed orders with a positive amount that
/// have a category), each with the index of its order in the chunk's columns. Kept as one
/// string with end offsets: a chunk of 65,536 orders makes three allocations, not one a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseLines(Tagged<u32>);

impl PurchaseLines {
    /// Add a line of the order at index `order` of the chunk.
    pub fn push(&mut self, order: usize, category: &str) {
        self.0.push(u32::try_from(order).unwrap_or(u32::MAX), category);
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.0.tags.len()
    }

    /// No lines.
    pub fn is_empty(&self) -> bool {
        self.0.tags.is_empty()
    }

    /// (index of the order in the chunk, category) of each line, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.0.iter().map(|(o, c)| (o as usize, c))
    }
}

/// Texts, each with a tag, in one string with end offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tagged<T> {
    tags: Vec<T>,
    end: Vec<usize>,
    text: String,
}

// Not derived: a derive would ask `T: Default`.
impl<T> Default for Tagged<T> {
    fn default() -> Self {
        Tagged { tags: Vec::new(), end: Vec::new(), text: String::new() }
    }
}

impl<T: Copy> Tagged<T> {
    pub(crate) fn push(&mut self, tag: T, text: &str) {
        self.tags.push(tag);
        self.text.push_str(text);
        self.end.push(self.text.len());
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (T, &str)> + '_ {
        let starts = std::iter::once(0).chain(self.end.iter().copied());
        self.tags.iter().zip(starts.zip(&self.end)).map(|(&t, (s, &e))| (t, &self.text[s..e]))
    }
}

/// Order ids per chunk of [`crate::OrderStore::purchases`], on both backends (ids are dense, so
/// about as many orders).
pub(crate) const CHUNK: i64 = 65_536;

/// Joins the lines read for the order ids `lo < id ≤ lo + span` to the purchases read for the
/// same range. Reused from chunk to chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkJoin {
    /// The range's `lo`.
    lo: i64,
    /// Index of the purchase in the chunk for each order id of the range (`id - lo - 1`), or
    /// `u32::MAX` for orders that are not purchases with a positive amount.
    slot: Vec<u32>,
}

impl ChunkJoin {
    /// Start a chunk: `ids[i]` is the order id of the chunk's i-th purchase.
    pub(crate) fn start(&mut self, lo: i64, span: usize, ids: &[i64], purchases: &Purchases) {
        self.lo = lo;
        self.slot.clear();
        self.slot.resize(span, u32::MAX);
        for (i, (&id, &amount)) in ids.iter().zip(&purchases.amount).enumerate() {
            // Only purchases have purchase lines; the amounts here are signed, so a refund's is
            // not positive.
            if Kind::of(amount) != Kind::Purchase {
                continue;
            }
            if let Some(slot) = self.offset(id).and_then(|o| self.slot.get_mut(o)) {
                *slot = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
    }

    /// Add a line of order `id` to `purchases` when that order is one of its purchases.
    pub(crate) fn line(&self, id: i64, category: &str, purchases: &mut Purchases) {
        if let Some(&i) = self.offset(id).and_then(|o| self.slot.get(o))
            && i != u32::MAX
        {
            purchases.lines.push(i as usize, category);
        }
    }

    fn offset(&self, id: i64) -> Option<usize> {
        usize::try_from(id.checked_sub(self.lo)?.checked_sub(1)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_order_index_and_text() {
        let mut lines = PurchaseLines::default();
        lines.push(2, "coffee, dark");
        lines.push(0, "");
        lines.push(2, "ü\t'");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines.iter().collect::<Vec<_>>(), [(2, "coffee, dark"), (0, ""), (2, "ü\t'")]);
        assert!(PurchaseLines::default().is_empty());
    }

    #[test]
    fn lines_reach_purchases_with_a_positive_amount_in_the_range_only() {
        // Orders 101, 103 (refunded: negative), 104 (zero) and 107 of the range 100 < id ≤ 108.
        let mut p = Purchases {
            customer: vec![7, 8, 9, 7],
            time: vec![1, 2, 3, 4],
            amount: vec![5, -5, 0, 6],
            ..Purchases::default()
        };
        let ids = [107, 103, 104, 101];
        let mut join = ChunkJoin::default();
        join.start(100, 8, &ids, &p);
        for (id, category) in [
            (101, "tea"),
            (103, "refunded"),
            (104, "zero"),
            (105, "cancelled"),
            (107, "mugs"),
            (109, "next chunk"),
            (100, "previous"),
            (101, "cups"),
        ] {
            join.line(id, category, &mut p);
        }
        assert_eq!(p.lines.iter().collect::<Vec<_>>(), [(3, "tea"), (0, "mugs"), (3, "cups")]);
        // The next chunk starts clean.
        let mut q = Purchases { customer: vec![1], time: vec![1], amount: vec![1], ..Purchases::default() };
        join.start(108, 8, &[109], &q);
        join.line(101, "old", &mut q);
        join.line(109, "new", &mut q);
        assert_eq!(q.lines.iter().collect::<Vec<_>>(), [(0, "new")]);
    }
}
