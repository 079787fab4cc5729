//! A compact string interner for customer and order ids.
//!
//! Ten million order lines carry a few million distinct order ids. A `HashMap<String, u32>`
//! spends a heap allocation and ~50 bytes per id; here every id lives once in one growing byte
//! arena and the hash table stores only a `u32` index, so the table costs ~5 bytes per id and
//! lookups compare bytes in place. Ids are opaque bytes: `00042` stays `00042`.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Maps distinct byte strings to dense indices `0..len()` and back.
///
/// Each table slot is 16 bytes: the id's index and, for ids of up to [`INLINE`] bytes (order
/// numbers, customer numbers), the id itself. A lookup of a short id then reads one slot and
/// never the arena, and growing the table rehashes from the slot alone. On ten million order
/// lines the table probes are the most expensive step of `kanta analyze` (each one a cache miss),
/// and inlining removed the two further misses (offset and bytes) of every hit. Longer ids
/// (emails) keep an 11-byte prefix in the slot and are compared in the arena.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: IdLog,
    table: HashTable<Slot>,
}

/// Byte strings appended one after another into one arena, numbered `0..len()`: the storage
/// of an [`Interner`] without its hash table. Appending never looks anything up, so the same
/// bytes may be stored twice (the aggregator's deferred order ids find repeats afterwards).
#[derive(Debug, Default, Clone)]
pub struct IdLog {
    arena: Vec<u8>,
    /// `ends[i]` is the end offset of id `i` in `arena`; id `i` starts at `ends[i - 1]`.
    ends: Vec<usize>,
}

impl IdLog {
    /// An empty log.
    pub fn new() -> IdLog {
        IdLog::default()
    }

    /// The number of ids appended.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing has been appended.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends `bytes`; returns its number, or `None` past `u32::MAX` ids.
    pub fn push(&mut self, bytes: &[u8]) -> Option<u32> {
        let index = u32::try_from(self.ends.len()).ok()?;
        self.arena.extend_from_slice(bytes);
        self.ends.push(self.arena.len());
        Some(index)
    }

    /// The bytes of id `index`.
    ///
    /// # Panics
    /// If `index` was not returned by this log (a programming error, not a data error).
    pub fn get(&self, index: u32) -> &[u8] {
        slice(&self.arena, &self.ends, index)
    }
}

/// Ids up to this many bytes live in the table slot itself.
pub const INLINE: usize = 11;
/// `Slot::len` of an id longer than [`INLINE`].
const LONG: u8 = u8::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    index: u32,
    /// The id's length, or [`LONG`].
    len: u8,
    /// The id zero-padded (short ids) or its first [`INLINE`] bytes (long ids).
    key: [u8; INLINE],
}

/// The interner hash; callers on another thread may compute it ahead of time and pass it to
/// [`Interner::intern_hashed`].
#[inline]
pub fn hash(bytes: &[u8]) -> u64 {
    FxBuildHasher.hash_one(bytes)
}

/// `a == b` for ids. Slice equality calls `memcmp`, a function call per comparison; an id of
/// 4 to 16 bytes is compared here with two overlapping word loads on each side instead. The
/// readers compare every line's ids with the previous line's (order lines come together), and
/// on ten million lines those calls cost a tenth of a second on each thread.
#[inline]
pub fn same_id(a: &[u8], b: &[u8]) -> bool {
    #[inline(always)]
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        s.get(at..at + N).and_then(|w| w.try_into().ok()).unwrap_or([0; N])
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

#[inline]
fn slice<'a>(arena: &'a [u8], ends: &[usize], index: u32) -> &'a [u8] {
    let i = index as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &arena[start..ends[i]]
}

/// The slot key and length tag for `bytes`.
#[inline]
fn key_of(bytes: &[u8]) -> (u8, [u8; INLINE]) {
    let mut key = [0u8; INLINE];
    let n = bytes.len().min(INLINE);
    key[..n].copy_from_slice(&bytes[..n]);
    (if bytes.len() <= INLINE { bytes.len() as u8 } else { LONG }, key)
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The number of distinct ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id has been interned.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The bytes of id `index`.
    ///
    /// # Panics
    /// If `index` was not returned by this interner (a programming error, not a data error).
    pub fn get(&self, index: u32) -> &[u8] {
        self.ids.get(index)
    }

    /// The index of `bytes`, if it was interned.
    pub fn find(&self, bytes: &[u8]) -> Option<u32> {
        let (len, key) = key_of(bytes);
        let IdLog { arena, ends } = &self.ids;
        self.table
            .find(hash(bytes), |slot| {
                slot.len == len && slot.key == key && (len != LONG || slice(arena, ends, slot.index) == bytes)
            })
            .map(|slot| slot.index)
    }

    /// Read the table where `h`'s probe starts, so that a probe for it a few lines later finds
    /// that memory in cache (see [`crate::aggregate::Aggregator::touch`]).
    #[inline]
    pub fn touch(&self, h: u64) {
        std::hint::black_box(self.table.find(h, |_| false).is_some());
    }

    /// The index of `bytes`, interning it if new; the flag says whether it was new.
    pub fn intern(&mut self, bytes: &[u8]) -> (u32, bool) {
        self.intern_hashed(bytes, hash(bytes))
    }

    /// [`Interner::intern`] with `h = hash(bytes)` computed by the caller.
    pub fn intern_hashed(&mut self, bytes: &[u8], h: u64) -> (u32, bool) {
        debug_assert_eq!(h, hash(bytes));
        let (len, key) = key_of(bytes);
        let Interner { ids: IdLog { arena, ends }, table } = self;
        let entry = table.entry(
            h,
            |slot| slot.len == len && slot.key == key && (len != LONG || slice(arena, ends, slot.index) == bytes),
            |slot| {
                if slot.len == LONG {
                    hash(slice(arena, ends, slot.index))
                } else {
                    hash(&slot.key[..usize::from(slot.len)])
                }
            },
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(entry) => (entry.get().index, false),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let index = u32::try_from(ends.len()).unwrap_or(u32::MAX);
                arena.extend_from_slice(bytes);
                ends.push(arena.len());
                entry.insert(Slot { index, len, key });
                (index, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_each_distinct_id_once_and_keeps_bytes_exact() {
        let mut interner = Interner::new();
        assert_eq!(interner.intern(b"00042"), (0, true));
        assert_eq!(interner.intern(b"42"), (1, true));
        assert_eq!(interner.intern(b""), (2, true));
        assert_eq!(interner.intern(b"00042"), (0, false));
        assert_eq!(interner.get(0), b"00042");
        assert_eq!(interner.get(2), b"");
        assert_eq!(interner.find(b"42"), Some(1));
        assert_eq!(interner.find(b"042"), None);
        assert_eq!(interner.len(), 3);
    }

    #[test]
    fn long_ids_and_ids_sharing_a_prefix_stay_distinct() {
        let mut interner = Interner::new();
        let long_a = b"customer.one@example.com";
        let long_b = b"customer.one@example.org";
        assert_eq!(interner.intern(long_a), (0, true));
        assert_eq!(interner.intern(long_b), (1, true));
        assert_eq!(interner.intern(b"customer.on"), (2, true)); // exactly INLINE bytes, a prefix of both
        assert_eq!(interner.intern(b"customer.one"), (3, true)); // INLINE + 1 bytes
        assert_eq!(interner.intern(b"a\0"), (4, true)); // a zero byte is not padding
        assert_eq!(interner.intern(b"a"), (5, true));
        for (i, id) in [&long_a[..], long_b, b"customer.on", b"customer.one", b"a\0", b"a"].iter().enumerate() {
            assert_eq!(interner.find(id), Some(i as u32));
            assert_eq!(interner.intern(id), (i as u32, false));
            assert_eq!(interner.get(i as u32), *id);
        }
    }

    #[test]
    fn same_id_is_slice_equality_at_every_length() {
        // Every length from 0 to 40 (word loads for 4..=16), a difference at each position,
        // and equal-length ids that differ only at the start, middle or end.
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_id(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_id(&a, &b), "{n} {at}");
            }
            let longer = [a.as_slice(), b"x"].concat();
            assert!(!same_id(&a, &longer) && !same_id(&longer, &a), "{n}");
        }
        assert!(same_id(b"C0270047", b"C0270047"));
        assert!(!same_id(b"O000585512", b"O000585513"));
    }

    #[test]
    fn survives_table_growth() {
        let mut interner = Interner::new();
        // Short ids live in the slot, long ones in the arena; both must survive rehashing.
        let id =
            |i: u32| if i.is_multiple_of(2) { format!("id-{i}") } else { format!("a-much-longer-id-{i}@example.com") };
        for i in 0..50_000u32 {
            assert_eq!(interner.intern(id(i).as_bytes()), (i, true));
        }
        for i in (0..50_000u32).rev() {
            assert_eq!(interner.find(id(i).as_bytes()), Some(i));
        }
    }
}
