//! Per-family prefix table: Loc-RIB and every Adj-RIB-In at once.
//!
//! Layout (chosen for memory; see `bench` for figures):
//! - entries live in a chunked slab ([`Chunked`], 4096 entries per chunk, so
//!   growth never over-allocates by more than one chunk, unlike a doubling
//!   `Vec` or a hash table whose buckets carry the entries);
//! - a `hashbrown::HashTable<u32>` maps the FxHash of the compact prefix key to
//!   the slab index: 4 bytes + 1 control byte per bucket, so the power-of-two
//!   bucket count of the hash table costs little even at 50 % load;
//! - an entry is the key (8 bytes for IPv4: addr << 8 | len; 20 for IPv6) and a
//!   `SmallVec` of 8-byte [`PathRef`]s (peer, interned attribute id, flags) with
//!   room for 4 paths inline; the best path is always at index 0.
//!
//! An Adj-RIB-In is the set of paths carrying a peer's id. Per-entry flags that
//! are not per path (`ANNOUNCED`) live in the flags of `paths[0]`, so they cost
//! nothing; they are moved when another path becomes best.

use std::hash::{BuildHasher, Hash};
use std::ops::{Index, IndexMut};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use crate::types::{PeerId, Prefix};

/// Index of an interned attribute set.
pub type AttrId = u32;

/// Path flag: graceful-restart stale.
pub const STALE: u8 = 0x01;
/// Entry flag (kept on `paths[0]`): the prefix is currently exported to POP peers.
pub const ANNOUNCED: u8 = 0x80;
/// Flags that belong to the entry, not to the path that carries them.
pub const ENTRY_FLAGS: u8 = ANNOUNCED;

/// One path of one prefix: 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathRef {
    pub attr: AttrId,
    pub peer: PeerId,
    pub flags: u8,
}

impl PathRef {
    pub fn is_stale(&self) -> bool {
        self.flags & STALE != 0
    }
}

/// Paths held inline before spilling to the heap.
pub const INLINE_PATHS: usize = 4;
pub type Paths = SmallVec<[PathRef; INLINE_PATHS]>;

/// A compact, hashable prefix key for one family.
pub trait PrefixKey: Copy + Eq + Hash + Default + std::fmt::Debug {
    fn from_prefix(p: &Prefix) -> Option<Self>;
    fn prefix(self) -> Prefix;
    fn hash64(self) -> u64 {
        FxBuildHasher.hash_one(self)
    }
}

/// IPv4 key: address << 8 | length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V4Key(u64);

impl PrefixKey for V4Key {
    fn from_prefix(p: &Prefix) -> Option<Self> {
        match *p {
            Prefix::V4 { addr, len } => Some(V4Key(((addr as u64) << 8) | len as u64)),
            Prefix::V6 { .. } => None,
        }
    }
    fn prefix(self) -> Prefix {
        Prefix::V4 {
            addr: (self.0 >> 8) as u32,
            len: self.0 as u8,
        }
    }
}

/// IPv6 key: the address as four u32 (4-byte alignment keeps it at 20 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V6Key {
    addr: [u32; 4],
    len: u8,
}

impl PrefixKey for V6Key {
    fn from_prefix(p: &Prefix) -> Option<Self> {
        match *p {
            Prefix::V6 { addr, len } => Some(V6Key {
                addr: [
                    (addr >> 96) as u32,
                    (addr >> 64) as u32,
                    (addr >> 32) as u32,
                    addr as u32,
                ],
                len,
            }),
            Prefix::V4 { .. } => None,
        }
    }
    fn prefix(self) -> Prefix {
        let a = self.addr;
        Prefix::V6 {
            addr: ((a[0] as u128) << 96)
                | ((a[1] as u128) << 64)
                | ((a[2] as u128) << 32)
                | a[3] as u128,
            len: self.len,
        }
    }
}

/// One prefix with its paths, best first. A slab slot with no paths is free.
#[derive(Clone, Debug, Default)]
pub struct Entry<K> {
    pub key: K,
    pub paths: Paths,
}

impl<K: PrefixKey> Entry<K> {
    pub fn best(&self) -> Option<&PathRef> {
        self.paths.first()
    }
    pub fn flags(&self) -> u8 {
        self.paths.first().map_or(0, |p| p.flags & ENTRY_FLAGS)
    }
    pub fn announced(&self) -> bool {
        self.flags() & ANNOUNCED != 0
    }
    /// Put the entry flags on `paths[0]` (and nowhere else).
    pub fn set_flags(&mut self, flags: u8) {
        for p in self.paths.iter_mut() {
            p.flags &= !ENTRY_FLAGS;
        }
        if let Some(p) = self.paths.first_mut() {
            p.flags |= flags & ENTRY_FLAGS;
        }
    }
    pub fn position(&self, peer: PeerId) -> Option<usize> {
        self.paths.iter().position(|p| p.peer == peer)
    }
    pub fn prefix(&self) -> Prefix {
        self.key.prefix()
    }
}

/// Number of elements per chunk of a [`Chunked`] slab.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// An append-only vector stored in fixed-size chunks: at most one partly used
/// chunk of slack, and growing never copies (no 2x peak during reallocation).
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: u32,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> u32 {
        self.len
    }
    pub fn push(&mut self, v: T) -> u32 {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("just ensured").push(v);
        self.len += 1;
        self.len - 1
    }
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }
    /// Bytes allocated for the elements themselves.
    pub fn allocated_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<T>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }
}

impl<T> Index<u32> for Chunked<T> {
    type Output = T;
    fn index(&self, i: u32) -> &T {
        &self.chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)]
    }
}

impl<T> IndexMut<u32> for Chunked<T> {
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.chunks[(i >> CHUNK_BITS) as usize][(i as usize) & (CHUNK - 1)]
    }
}

/// All prefixes of one family.
#[derive(Debug, Default)]
pub struct Table<K> {
    index: HashTable<u32>,
    slots: Chunked<Entry<K>>,
    free: Vec<u32>,
    /// Paths held (all peers).
    paths: usize,
    /// Entries whose paths spilled to the heap (for the memory estimate).
    spilled: usize,
}

impl<K: PrefixKey> Table<K> {
    pub fn new() -> Self {
        Table {
            index: HashTable::new(),
            slots: Chunked::default(),
            free: Vec::new(),
            paths: 0,
            spilled: 0,
        }
    }

    /// Prefixes held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Paths held, all peers.
    pub fn paths(&self) -> usize {
        self.paths
    }

    pub fn find(&self, key: K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(key.hash64(), |&i| slots[i].key == key)
            .copied()
    }

    /// Add an (empty) entry for a key that is not present.
    pub fn insert_new(&mut self, key: K) -> u32 {
        debug_assert!(self.find(key).is_none());
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i].key = key;
                i
            }
            None => self.slots.push(Entry {
                key,
                paths: Paths::new(),
            }),
        };
        let slots = &self.slots;
        self.index
            .insert_unique(key.hash64(), idx, |&i| slots[i].key.hash64());
        idx
    }

    /// Remove an entry that has no paths left.
    pub fn remove(&mut self, idx: u32) {
        let e = &mut self.slots[idx];
        debug_assert!(e.paths.is_empty());
        if e.paths.spilled() {
            self.spilled -= 1;
        }
        e.paths = Paths::new();
        let hash = e.key.hash64();
        e.key = K::default();
        if let Ok(o) = self.index.find_entry(hash, |&i| i == idx) {
            o.remove();
        }
        self.free.push(idx);
    }

    pub fn entry(&self, idx: u32) -> &Entry<K> {
        &self.slots[idx]
    }

    pub fn entry_mut(&mut self, idx: u32) -> &mut Entry<K> {
        &mut self.slots[idx]
    }

    /// Add or replace `peer`'s path; returns the replaced path.
    pub fn set_path(&mut self, idx: u32, path: PathRef) -> Option<PathRef> {
        let e = &mut self.slots[idx];
        match e.position(path.peer) {
            Some(i) => {
                let old = e.paths[i];
                // Keep the entry flags where they are.
                e.paths[i] = PathRef {
                    flags: path.flags | (old.flags & ENTRY_FLAGS),
                    ..path
                };
                Some(old)
            }
            None => {
                let was_spilled = e.paths.spilled();
                e.paths.push(path);
                if !was_spilled && e.paths.spilled() {
                    self.spilled += 1;
                }
                self.paths += 1;
                None
            }
        }
    }

    /// Remove the path at position `pos` (the caller restores entry flags).
    pub fn remove_path_at(&mut self, idx: u32, pos: usize) -> PathRef {
        let e = &mut self.slots[idx];
        let old = e.paths.swap_remove(pos);
        if e.paths.spilled() && e.paths.len() <= INLINE_PATHS {
            e.paths.shrink_to_fit();
            if !e.paths.spilled() {
                self.spilled -= 1;
            }
        }
        self.paths -= 1;
        old
    }

    /// Number of slab slots (live or free): valid indexes are `0..slot_count()`.
    pub fn slot_count(&self) -> u32 {
        self.slots.len()
    }

    /// Live entries.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<K>> + '_ {
        self.slots.iter().filter(|e| !e.paths.is_empty())
    }

    /// Live entries with their slab index.
    pub fn iter_indexed(&self) -> impl Iterator<Item = (u32, &Entry<K>)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.paths.is_empty())
            .map(|(i, e)| (i as u32, e))
    }

    /// Estimated heap bytes of this table.
    pub fn bytes_estimate(&self) -> usize {
        let spilled_heap = self.spilled * (2 * INLINE_PATHS * std::mem::size_of::<PathRef>() + 16);
        self.index.allocation_size()
            + self.slots.allocated_bytes()
            + self.free.capacity() * 4
            + spilled_heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<PathRef>(), 8);
        assert_eq!(std::mem::size_of::<Entry<V4Key>>(), 48);
        assert!(std::mem::size_of::<Entry<V6Key>>() <= 64);
    }

    #[test]
    fn keys_round_trip() {
        for p in ["10.0.0.0/8", "0.0.0.0/0", "255.255.255.255/32"] {
            let p: Prefix = p.parse().unwrap();
            assert_eq!(V4Key::from_prefix(&p).unwrap().prefix(), p);
            assert!(V6Key::from_prefix(&p).is_none());
        }
        for p in ["2001:db8::/32", "::/0", "2001:db8:1:2:3:4:5:6/128"] {
            let p: Prefix = p.parse().unwrap();
            assert_eq!(V6Key::from_prefix(&p).unwrap().prefix(), p);
        }
    }

    #[test]
    fn insert_find_remove_reuse() {
        let mut t: Table<V4Key> = Table::new();
        let keys: Vec<V4Key> = (0..10_000u32)
            .map(|i| V4Key::from_prefix(&Prefix::v4(i << 8, 24).unwrap()).unwrap())
            .collect();
        for &k in &keys {
            let i = t.insert_new(k);
            t.set_path(
                i,
                PathRef {
                    attr: 1,
                    peer: 0,
                    flags: 0,
                },
            );
        }
        assert_eq!(t.len(), 10_000);
        assert_eq!(t.paths(), 10_000);
        let i = t.find(keys[77]).unwrap();
        t.remove_path_at(i, 0);
        t.remove(i);
        assert!(t.find(keys[77]).is_none());
        assert_eq!(t.len(), 9_999);
        let j = t.insert_new(keys[77]);
        assert_eq!(i, j, "free slot reused");
        assert_eq!(t.find(keys[78]).map(|i| t.entry(i).key), Some(keys[78]));
    }
}
