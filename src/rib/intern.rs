//! Attribute interning: identical `PathAttrs` (after import policy) are stored
//! once across prefixes and peers.
//!
//! A chunked slab of 32-byte slots (the [`arena::Handle`] of the attributes'
//! compact encoding (`codec`) in a byte arena (`arena`: 1 MiB pages, no heap
//! allocation per set), refcount and the fields best-path selection reads, so
//! selection never decodes) plus a `hashbrown::HashTable<u32>` of slot ids
//! keyed by the hash of the encoding (not stored: recomputed from the bytes
//! when the table grows or a set is removed; lookups compare bytes only for
//! ids whose 7-bit tag matches).
//! Freed slots go on a free list; a set is dropped (its arena block freed for
//! reuse by a set of the same size class) when its refcount reaches 0.
//! `Arc<PathAttrs>` is materialized on demand for export (cached until the
//! next [`Interner::clear_cache`], so one UPDATE's worth of prefixes share one
//! `Arc`) and queries.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::arena::{self, Arena};
use super::codec;
use super::table::{AttrId, Chunked};
use crate::types::PathAttrs;

/// The attribute fields best-path selection needs, copied out of the set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttrKey {
    pub local_pref: u32,
    pub path_len: u32,
    pub med: u32,
    /// `AsPath::first_as`, 0 when none (AS 0 is never valid in a path, RFC 7607).
    pub neighbor_as: u32,
    /// ORIGINATOR_ID as u32, 0 when absent.
    pub originator: u32,
    pub cluster_len: u16,
    pub origin: u8,
}

impl AttrKey {
    pub fn of(a: &PathAttrs, local_pref: Option<u32>) -> AttrKey {
        AttrKey {
            local_pref: local_pref.or(a.local_pref).unwrap_or(100),
            path_len: a.as_path.path_len(),
            med: a.med.unwrap_or(0),
            neighbor_as: a.as_path.first_as().unwrap_or(0),
            originator: a.originator_id.map_or(0, u32::from),
            cluster_len: a.cluster_list.len().min(u16::MAX as usize) as u16,
            origin: a.origin as u8,
        }
    }
}

/// 32 bytes; a free slot's `loc` is [`arena::NONE`].
#[derive(Debug)]
struct Slot {
    /// The encoding, in `Interner::arena`.
    loc: arena::Handle,
    refs: u32,
    key: AttrKey,
}

/// The index's hash of an encoding: FxHash folded to 32 bits, then spread
/// over 64 (hashbrown uses the top 7 bits as tag).
fn hash(b: &[u8]) -> u64 {
    let h = FxBuildHasher.hash_one(b);
    let h = (h ^ (h >> 32)) as u32;
    (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ h as u64
}

#[derive(Debug, Default)]
pub struct Interner {
    slots: Chunked<Slot>,
    arena: Arena,
    free: Vec<u32>,
    index: HashTable<u32>,
    scratch: Vec<u8>,
    cache: FxHashMap<AttrId, Arc<PathAttrs>>,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live attribute sets.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The id of `attrs` with LOCAL_PREF set to `local_pref` (when given), adding
    /// it with refcount 0 when new (call [`Interner::release_if_unused`] if no
    /// reference ends up being taken).
    pub fn intern(&mut self, attrs: &PathAttrs, local_pref: Option<u32>) -> AttrId {
        codec::encode(attrs, local_pref, &mut self.scratch);
        let bytes = &self.scratch[..];
        let h = hash(bytes);
        let (slots, arena) = (&self.slots, &self.arena);
        let found = self.index.find(h, |&i| arena.get(slots[i].loc) == bytes);
        if let Some(&id) = found {
            return id;
        }
        let slot = Slot {
            loc: self.arena.alloc(bytes),
            refs: 0,
            key: AttrKey::of(attrs, local_pref),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = slot;
                id
            }
            None => self.slots.push(slot),
        };
        let (slots, arena) = (&self.slots, &self.arena);
        self.index
            .insert_unique(h, id, |&i| hash(arena.get(slots[i].loc)));
        id
    }

    pub fn incref(&mut self, id: AttrId) {
        self.slots[id].refs += 1;
    }

    /// Drop one reference; the set is freed when none remain.
    pub fn decref(&mut self, id: AttrId) {
        let s = &mut self.slots[id];
        debug_assert!(s.refs > 0);
        s.refs -= 1;
        if s.refs == 0 {
            self.free_slot(id);
        }
    }

    /// Free a set interned for an UPDATE none of whose prefixes took it.
    pub fn release_if_unused(&mut self, id: AttrId) {
        let s = &self.slots[id];
        if s.refs == 0 && s.loc != arena::NONE {
            self.free_slot(id);
        }
    }

    fn free_slot(&mut self, id: AttrId) {
        let loc = std::mem::replace(&mut self.slots[id].loc, arena::NONE);
        let h = hash(self.arena.get(loc));
        self.arena.free(loc);
        if let Ok(o) = self.index.find_entry(h, |&i| i == id) {
            o.remove();
        }
        if !self.cache.is_empty() {
            self.cache.remove(&id);
        }
        self.free.push(id);
    }

    /// The attributes as an `Arc`, shared with earlier calls since the last
    /// [`Interner::clear_cache`].
    pub fn get(&mut self, id: AttrId) -> Arc<PathAttrs> {
        let bytes = self.arena.get(self.slots[id].loc);
        self.cache
            .entry(id)
            .or_insert_with(|| Arc::new(codec::decode(bytes)))
            .clone()
    }

    /// Forget materialized `Arc`s (after they have been handed out).
    pub fn clear_cache(&mut self) {
        if self.cache.len() > 1024 {
            self.cache = FxHashMap::default();
        } else {
            self.cache.clear();
        }
    }

    /// The attributes, decoded (not cached).
    pub fn decode(&self, id: AttrId) -> PathAttrs {
        codec::decode(self.bytes(id))
    }

    /// The encoding of the live set `id`.
    fn bytes(&self, id: AttrId) -> &[u8] {
        let loc = self.slots[id].loc;
        debug_assert!(loc != arena::NONE, "attribute id refers to a live set");
        self.arena.get(loc)
    }

    /// Every ASN of the AS_PATH of `id`, in order (no decoding of the other
    /// attributes).
    pub fn asns(&self, id: AttrId) -> codec::Asns<'_> {
        codec::asns(self.bytes(id))
    }

    pub fn key(&self, id: AttrId) -> &AttrKey {
        &self.slots[id].key
    }

    #[cfg(test)]
    pub fn refs(&self, id: AttrId) -> u32 {
        self.slots[id].refs
    }

    /// Heap bytes: slab, index and the arena's pages (allocated, so
    /// including free blocks and the current page's unused end).
    pub fn bytes_estimate(&self) -> usize {
        self.slots.allocated_bytes()
            + self.index.allocation_size()
            + self.free.capacity() * 4
            + self.arena.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AsPath;

    fn attrs(asn: u32) -> PathAttrs {
        PathAttrs {
            as_path: AsPath::sequence(&[asn, 2, 3]),
            next_hop: Some("192.0.2.1".parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn dedup_refcount_free_reuse() {
        let mut i = Interner::new();
        let a = i.intern(&attrs(1), Some(100));
        let b = i.intern(&attrs(1), Some(100));
        assert_eq!(a, b);
        assert_eq!(i.len(), 1);
        i.incref(a);
        i.incref(a);
        let c = i.intern(&attrs(9), Some(100));
        assert_ne!(a, c);
        assert_eq!(i.key(c).neighbor_as, 9);
        assert_eq!(i.key(c).path_len, 3);
        i.release_if_unused(c);
        assert_eq!(i.len(), 1);
        i.decref(a);
        assert_eq!(i.refs(a), 1);
        i.decref(a);
        assert_eq!(i.len(), 0);
        let d = i.intern(&attrs(5), None);
        assert_eq!(d, a, "slot reused from the free list");
        assert_eq!(i.get(d).as_path.first_as(), Some(5));
        assert_eq!(i.decode(d).local_pref, None);
        assert_eq!(i.key(a).local_pref, 100);
        let x = i.get(d);
        assert!(Arc::ptr_eq(&x, &i.get(d)), "cached until clear_cache");
    }

    #[test]
    fn slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    #[test]
    fn many_sets_across_pages() {
        let mut i = Interner::new();
        let ids: Vec<AttrId> = (0..60_000)
            .map(|n| i.intern(&attrs(n + 10), None))
            .collect();
        ids.iter().for_each(|&id| i.incref(id));
        assert_eq!(i.len(), 60_000);
        for (n, &id) in ids.iter().enumerate() {
            assert_eq!(i.decode(id).as_path.first_as(), Some(n as u32 + 10));
            assert_eq!(i.asns(id).next(), Some(n as u32 + 10));
        }
        // Free half, intern new ones of one size: slots and blocks are reused.
        let (slots, pos) = (i.slots.len(), i.arena.bump_position());
        for &id in ids.iter().step_by(2) {
            i.decref(id);
        }
        // ~21,800 of the freed sets encode their first ASN in 3 bytes, like these.
        for n in 0..20_000 {
            let id = i.intern(&attrs(n + 1_000_000), None);
            i.incref(id);
        }
        assert_eq!(i.len(), 50_000);
        assert_eq!(i.slots.len(), slots, "slots reused");
        assert_eq!(i.arena.bump_position(), pos, "arena blocks reused");
        for (n, &id) in ids.iter().enumerate().skip(1).step_by(2) {
            assert_eq!(i.decode(id).as_path.first_as(), Some(n as u32 + 10));
        }
    }
}
