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
    arena: Vec<u8>,
    /// `ends[i]` is the end offset of id `i` in `arena`; id `i` starts at `ends[i - 1]`.
    ends: Vec<usize>,
    table: HashTable<Slot>,
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
        self.ends.len()
    }

    /// Whether no id has been interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of id `index`.
    ///
    /// # Panics
    /// If `index` was not returned by this interner (a programming error, not a data error).
    pub fn get(&self, index: u32) -> &[u8] {
        slice(&self.arena, &self.ends, index)
    }

    /// The index of `bytes`, if it was interned.
    pub fn find(&self, bytes: &[u8]) -> Option<u32> {
        let (len, key) = key_of(bytes);
        let (arena, ends) = (&self.arena, &self.ends);
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
        let Interner { arena, ends, table } = self;
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
