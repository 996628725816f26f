//! Attribute interning: identical `PathAttrs` (after import policy) are stored
//! once across prefixes and peers.
//!
//! A chunked slab of slots (the attributes in the compact encoding of
//! `codec`, refcount, 32-bit hash and the fields best-path selection reads, so
//! selection never decodes) plus a `hashbrown::HashTable<u32>` of slot ids
//! keyed by the hash of the encoding. Freed slots go on a free list; a set is
//! dropped when its refcount reaches 0. `Arc<PathAttrs>` is materialized on
//! demand for export (cached until the next [`Interner::clear_cache`], so one
//! UPDATE's worth of prefixes share one `Arc`) and queries.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

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

/// 48 bytes; a free slot has empty `bytes` (encodings are never empty).
#[derive(Debug)]
struct Slot {
    bytes: Box<[u8]>,
    refs: u32,
    hash: u32,
    key: AttrKey,
}

/// Spread a stored 32-bit hash over 64 bits (hashbrown uses the top 7 bits as tag).
fn spread(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ h as u64
}

fn hash32(b: &[u8]) -> u32 {
    let h = FxBuildHasher.hash_one(b);
    (h ^ (h >> 32)) as u32
}

#[derive(Debug, Default)]
pub struct Interner {
    slots: Chunked<Slot>,
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
        let h = hash32(bytes);
        let slots = &self.slots;
        let found = self.index.find(spread(h), |&i| {
            let s = &slots[i];
            s.hash == h && *s.bytes == *bytes
        });
        if let Some(&id) = found {
            return id;
        }
        let slot = Slot {
            bytes: bytes.into(),
            refs: 0,
            hash: h,
            key: AttrKey::of(attrs, local_pref),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = slot;
                id
            }
            None => self.slots.push(slot),
        };
        let slots = &self.slots;
        self.index
            .insert_unique(spread(h), id, |&i| spread(slots[i].hash));
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
        if s.refs == 0 && !s.bytes.is_empty() {
            self.free_slot(id);
        }
    }

    fn free_slot(&mut self, id: AttrId) {
        let s = &mut self.slots[id];
        s.bytes = Box::default();
        let h = spread(s.hash);
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
        let slots = &self.slots;
        self.cache
            .entry(id)
            .or_insert_with(|| Arc::new(codec::decode(&slots[id].bytes)))
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
        debug_assert!(
            !self.slots[id].bytes.is_empty(),
            "attribute id refers to a live set"
        );
        codec::decode(&self.slots[id].bytes)
    }

    /// Every ASN of the AS_PATH of `id`, in order (no decoding of the other
    /// attributes).
    pub fn asns(&self, id: AttrId) -> codec::Asns<'_> {
        codec::asns(&self.slots[id].bytes)
    }

    pub fn key(&self, id: AttrId) -> &AttrKey {
        &self.slots[id].key
    }

    #[cfg(test)]
    pub fn refs(&self, id: AttrId) -> u32 {
        self.slots[id].refs
    }

    /// Estimated heap bytes: slab, index and the encoded sets (with malloc overhead).
    pub fn bytes_estimate(&self) -> usize {
        let mut b =
            self.slots.allocated_bytes() + self.index.allocation_size() + self.free.capacity() * 4;
        for s in self.slots.iter() {
            if !s.bytes.is_empty() {
                b += (s.bytes.len() + 8).div_ceil(16) * 16;
            }
        }
        b
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
}
