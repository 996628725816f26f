//! How the builder's ranked Loc-RIB of one family ([`RankedMap`], in
//! `ranked`) becomes a trie: a full build ([`full`]) and an incremental update
//! of the previous trie for a set of changed prefixes ([`apply`]).
//!
//! An update rebuilds only what a changed prefix `P` covers. It descends from
//! `P`'s root slot through the nodes holding `P` to the deepest one where `P`
//! covers whole positions, rebuilds those positions from the map (the value
//! the block inherits from its covering prefixes, `lpm::context`, then a
//! sweep of the prefixes inside it, `lpm::sweep`, then the canonical item,
//! `trie::block_from_ranges`), and rebuilds the nodes on the way back up
//! (copy-on-write: the previous trie, still in readers' hands, is not
//! touched). A position that is a leaf but must now hold `P` below it is
//! rebuilt whole. Root slots' scopes are then recomputed around the changed
//! slots. The result is the trie a full build would give (tested, shape and
//! all, in `tests_trie`).

use std::collections::{BTreeMap, BTreeSet};

use super::lpm::{self, Addr, Val};
pub use super::ranked::RankedMap;
use super::trie::{block_from_ranges, Item, Node, Trie};

/// How values are made: the default ranking and whether compression is on.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub default_rank: u16,
    pub compress: bool,
}

/// What the trie code reads from the map.
impl<A: Addr> RankedMap<A> {
    /// The value the block `base / len` inherits (see `lpm::context`).
    fn context(&self, base: A, len: u8, p: Params) -> Val {
        lpm::context(
            base,
            len,
            self.lengths(),
            |a, l| self.get(a, l),
            p.default_rank,
            p.compress,
        )
    }

    /// The prefixes strictly inside the block `base / len`, sorted.
    fn inside(&self, base: A, len: u8) -> impl Iterator<Item = (A, u8, u16)> + '_ {
        let end = base.block_end(len);
        let lo = (base, len.saturating_add(1));
        // Empty for a full-length block (`lo > hi`).
        self.range(lo, (end, A::WIDTH as u8))
    }

    /// The canonical item for the block `base / len` (scratch: `ranges`).
    fn block(&self, base: A, len: u8, p: Params, ranges: &mut Vec<(A, Val)>) -> Item {
        ranges.clear();
        let ctx = self.context(base, len, p);
        lpm::sweep(
            self.inside(base, len),
            base,
            base.block_end(len),
            ctx,
            p.compress,
            ranges,
        );
        block_from_ranges(ranges, 0, base, len).0
    }
}

/// The blocks a full build sweeps one at a time: IPv4 /8s (their contexts
/// look up the few lengths up to 8), IPv6 /16s (the root slots; shorter IPv6
/// prefixes are rare).
fn full_block_len<A: Addr>() -> u8 {
    if A::WIDTH <= 32 {
        8
    } else {
        Trie::<A>::ROOT_LEN
    }
}

/// A full build of the trie for `map`, one block ([`full_block_len`]) at a
/// time: the block's context, a sweep of the prefixes inside it, its root
/// slots. The same trie as one sweep over the whole map (values are per
/// address), but the scratch range list holds one block's ranges, not the
/// whole table's (up to two per prefix, 8 bytes each for IPv4, 32 for IPv6).
pub fn full<A: Addr>(map: &RankedMap<A>, p: Params) -> Trie<A> {
    let len = full_block_len::<A>();
    let root = Trie::<A>::ROOT_LEN;
    let per = 1usize << (root - len);
    let mut slots = Vec::with_capacity(per << len);
    let mut ranges = Vec::new();
    for b in 0..1usize << len {
        let base = A::from_index(b, A::WIDTH - u32::from(len));
        ranges.clear();
        let ctx = map.context(base, len, p);
        let end = base.block_end(len);
        lpm::sweep(
            map.inside(base, len),
            base,
            end,
            ctx,
            p.compress,
            &mut ranges,
        );
        Trie::push_slots(&ranges, b * per, per, &mut slots);
    }
    Trie::from_slots(slots)
}

/// Update `trie` (the trie of the map before the changes) for the prefixes
/// in `changed`, already applied to `map`.
pub fn apply<A: Addr>(trie: &mut Trie<A>, map: &RankedMap<A>, p: Params, changed: &[(A, u8)]) {
    let mut ranges = Vec::new();
    // Root slots changed, with their group exponent before any change.
    let mut old_k: BTreeMap<usize, u8> = BTreeMap::new();
    let changed: BTreeSet<(A, u8)> = changed.iter().copied().collect();
    let root = Trie::<A>::ROOT_LEN;
    for &(a, l) in &changed {
        let s0 = Trie::<A>::slot_of(a);
        if l <= root {
            let n = 1usize << (root - l);
            for s in s0..s0 + n {
                old_k.entry(s).or_insert_with(|| trie.slot_k(s));
                let item = map.block(Trie::<A>::slot_base(s), root, p, &mut ranges);
                trie.set_slot(s, item);
            }
        } else {
            old_k.entry(s0).or_insert_with(|| trie.slot_k(s0));
            let base = Trie::<A>::slot_base(s0);
            let item = update_item(trie.slot(s0), base, root, a, l, map, p, &mut ranges);
            trie.set_slot(s0, item);
        }
    }
    for (s, k) in old_k {
        trie.rescope(s, k);
    }
}

/// The item for the block `base / len` (currently `item`) after prefix
/// `a / l` (inside it, `l > len`) changed.
#[allow(clippy::too_many_arguments)]
fn update_item<A: Addr>(
    item: &Item,
    base: A,
    len: u8,
    a: A,
    l: u8,
    map: &RankedMap<A>,
    p: Params,
    ranges: &mut Vec<(A, Val)>,
) -> Item {
    let n = match item {
        // Uniform until now: rebuild the block.
        Item::Leaf(_) => return map.block(base, len, p, ranges),
        Item::Node(n) => n,
    };
    let mut items = n.expand();
    let cl = len + 8;
    let shift = A::WIDTH - u32::from(cl);
    let j = a.byte_at(shift);
    if l <= cl {
        for (jj, it) in items.iter_mut().enumerate().skip(j).take(1 << (cl - l)) {
            *it = map.block(base.or(A::from_index(jj, shift)), cl, p, ranges);
        }
    } else {
        let pb = base.or(A::from_index(j, shift));
        items[j] = update_item(&items[j], pb, cl, a, l, map, p, ranges);
    }
    Node::compress(&items, cl)
}
