//! The snapshot's longest-prefix match: a copy-on-write multibit trie whose
//! leaves hold the answer and its exact ECS scope.
//!
//! Shape (one per family):
//! - The root: 2^16 slots, one per /16, in 256 pages of 256 slots; each page
//!   is an `Arc`, so an update copies only the pages it touches.
//! - Below a slot, [`Node`]s of 256 positions (8 bits each: /24, /32 for
//!   IPv4; /24 ... /128 for IPv6). A node is stored run-compressed, poptrie
//!   style: a bitmap of the positions that hold a child node, a bitmap of the
//!   positions that start a new leaf, per-64-bit-word counts before each word,
//!   and the children and leaves as dense arrays; a position's index is a
//!   popcount. A lookup is one root slot plus one node per 8 bits past /16.
//! - A leaf is a [`Val`] (ranking id, matched length) with the ECS scope in
//!   its top 8 bits, so a lookup never searches a range.
//!
//! Canonical form: a block whose addresses all get the same value is a leaf,
//! never a node (a node is never uniform). Hence the scope is exact and local:
//! the largest aligned block around an address with one value lies inside the
//! address's own node (a block containing the whole node is not uniform), so
//! a node leaf's scope is `position length - k` where `2^k` is the largest
//! aligned group of positions around it that are leaves of equal value (k <=
//! 7), and a root leaf's is `16 - k` over groups of slots (k <= 16). Nodes
//! compute their scopes when they are built ([`Node::compress`]); the root's
//! are recomputed around changed slots ([`Trie::rescope`]).
//!
//! Built from ranges block by block (a full build: [`Trie::push_slots`] for
//! each block's root slots, then [`Trie::from_slots`]) or changed in place
//! by `update`, which swaps in rebuilt items ([`Trie::set_slot`] and node
//! rebuilds via [`Node::expand`] / [`Node::compress`]). Both give the same
//! trie for the same prefixes: the tests compare them shape and all.

use std::marker::PhantomData;
use std::sync::Arc;

use super::lpm::{Addr, Val, VAL_MASK};

/// Root slots: one per /16.
const ROOT_BITS: u8 = 16;
const SLOTS: usize = 1 << ROOT_BITS;
const PAGE: usize = 256;

/// One position of a node or root slot: a leaf (value, with its scope once
/// placed) or a child node.
#[derive(Clone, Debug)]
pub enum Item {
    Leaf(u32),
    Node(Arc<Node>),
}

impl Item {
    /// The value of a leaf, without its scope.
    fn leaf_val(&self) -> Option<Val> {
        match self {
            Item::Leaf(v) => Some(v & VAL_MASK),
            Item::Node(_) => None,
        }
    }
}

/// A leaf word: value and scope.
#[inline]
fn leaf(v: Val, scope: u8) -> u32 {
    (v & VAL_MASK) | (u32::from(scope) << 24)
}

/// 256 positions, run-compressed (see the module docs).
#[derive(Debug)]
pub struct Node {
    child_bm: [u64; 4],
    leaf_bm: [u64; 4],
    /// Children / leaf starts in the words before each word.
    child_pre: [u16; 4],
    leaf_pre: [u16; 4],
    children: Box<[Arc<Node>]>,
    leaves: Box<[u32]>,
}

impl Node {
    /// Position `j`: its child, or its leaf word.
    #[inline]
    fn get(&self, j: usize) -> Result<&Arc<Node>, u32> {
        let (w, bit) = (j >> 6, 1u64 << (j & 63));
        if self.child_bm[w] & bit != 0 {
            let i =
                self.child_pre[w] as usize + (self.child_bm[w] & (bit - 1)).count_ones() as usize;
            Ok(&self.children[i])
        } else {
            let below = self.leaf_bm[w] & (bit | (bit - 1));
            let i = self.leaf_pre[w] as usize + below.count_ones() as usize - 1;
            Err(self.leaves[i])
        }
    }

    /// The 256 positions as items (leaves keep their scope bits).
    pub fn expand(&self) -> Vec<Item> {
        (0..PAGE)
            .map(|j| match self.get(j) {
                Ok(n) => Item::Node(n.clone()),
                Err(v) => Item::Leaf(v),
            })
            .collect()
    }

    /// The canonical item for a block whose 256 positions (each of prefix
    /// length `pos_len`) are `items`: one leaf if they are all leaves of one
    /// value, else a node, with every leaf's scope computed.
    pub fn compress(items: &[Item], pos_len: u8) -> Item {
        debug_assert_eq!(items.len(), PAGE);
        let vals: Vec<Option<Val>> = items.iter().map(Item::leaf_val).collect();
        if let Some(v) = vals[0] {
            if vals.iter().all(|&x| x == Some(v)) {
                return Item::Leaf(v);
            }
        }
        let ks = group_exponents(&vals, 7);
        let mut n = Node {
            child_bm: [0; 4],
            leaf_bm: [0; 4],
            child_pre: [0; 4],
            leaf_pre: [0; 4],
            children: Box::new([]),
            leaves: Box::new([]),
        };
        let mut children = Vec::new();
        let mut leaves: Vec<u32> = Vec::new();
        let mut last: Option<u32> = None;
        for (j, it) in items.iter().enumerate() {
            let (w, bit) = (j >> 6, 1u64 << (j & 63));
            if j & 63 == 0 {
                n.child_pre[w] = children.len() as u16;
                n.leaf_pre[w] = leaves.len() as u16;
            }
            match it {
                Item::Node(c) => {
                    n.child_bm[w] |= bit;
                    children.push(c.clone());
                }
                Item::Leaf(v) => {
                    let l = leaf(*v, pos_len - ks[j]);
                    if last != Some(l) {
                        n.leaf_bm[w] |= bit;
                        leaves.push(l);
                        last = Some(l);
                    }
                }
            }
        }
        n.children = children.into_boxed_slice();
        n.leaves = leaves.into_boxed_slice();
        Item::Node(Arc::new(n))
    }

    /// Nodes and leaf words under (and in) this node.
    fn count(&self, nodes: &mut usize, leaves: &mut usize) {
        *nodes += 1;
        *leaves += self.leaves.len();
        for c in self.children.iter() {
            c.count(nodes, leaves);
        }
    }
}

/// For each position, the exponent `k` of the largest aligned group of
/// `2^k` positions around it (k <= `max_k`) whose items are all leaves of one
/// value (0 for a child).
fn group_exponents(vals: &[Option<Val>], max_k: u8) -> Vec<u8> {
    let mut ks = vec![0u8; vals.len()];
    let mut level: Vec<Option<Val>> = vals.to_vec();
    for k in 1..=max_k {
        if level.len() < 2 {
            break;
        }
        let next: Vec<Option<Val>> = level
            .chunks(2)
            .map(|c| match (c[0], c[1]) {
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            })
            .collect();
        let size = 1usize << k;
        for (g, v) in next.iter().enumerate() {
            if v.is_some() {
                ks[g * size..(g + 1) * size].fill(k);
            }
        }
        level = next;
    }
    ks
}

/// One family's trie. Cloning is cheap (page pointers); the clone shares
/// everything until changed.
#[derive(Clone, Debug)]
pub struct Trie<A> {
    pages: Box<[Arc<[Item]>]>,
    _addr: PhantomData<A>,
}

impl<A: Addr> Trie<A> {
    /// The shift of the byte that indexes a node of prefix length `len`.
    #[inline]
    fn shift(len: u8) -> u32 {
        A::WIDTH - u32::from(len) - 8
    }

    /// The leaf word for `addr`: value in the low 24 bits, ECS scope above.
    #[inline]
    pub fn lookup(&self, addr: A) -> u32 {
        let s = addr.top(u32::from(ROOT_BITS));
        let mut node = match &self.pages[s / PAGE][s % PAGE] {
            Item::Leaf(v) => return *v,
            Item::Node(n) => n,
        };
        let mut shift = A::WIDTH - u32::from(ROOT_BITS) - 8;
        loop {
            match node.get(addr.byte_at(shift)) {
                Ok(n) => {
                    node = n;
                    shift -= 8;
                }
                Err(v) => return v,
            }
        }
    }

    /// A build from one range list: `ranges` covers the whole space
    /// (`ranges[0].0 == 0`, starts ascending, adjacent values differ), as
    /// from `lpm::sweep` (the reference `update::full` is tested against).
    #[cfg(test)]
    pub fn from_ranges(ranges: &[(A, Val)]) -> Trie<A> {
        assert!(ranges.first().is_some_and(|r| r.0 == A::zero()));
        let mut slots: Vec<Item> = Vec::with_capacity(SLOTS);
        Self::push_slots(ranges, 0, SLOTS, &mut slots);
        Self::from_slots(slots)
    }

    /// Append the items of root slots `first .. first + n` to `slots`, from
    /// `ranges` (which cover them; leaf scopes left for [`Trie::from_slots`]).
    pub fn push_slots(ranges: &[(A, Val)], first: usize, n: usize, slots: &mut Vec<Item>) {
        let mut i = 0;
        for s in first..first + n {
            let (item, next) = block_from_ranges(ranges, i, Self::slot_base(s), ROOT_BITS);
            slots.push(item);
            i = next;
        }
    }

    /// The trie of all root slots' items, in order (root leaf scopes computed here).
    pub fn from_slots(mut slots: Vec<Item>) -> Trie<A> {
        assert_eq!(slots.len(), SLOTS);
        let vals: Vec<Option<Val>> = slots.iter().map(Item::leaf_val).collect();
        let ks = group_exponents(&vals, ROOT_BITS);
        for (s, it) in slots.iter_mut().enumerate() {
            if let Item::Leaf(v) = it {
                *v = leaf(*v, ROOT_BITS - ks[s]);
            }
        }
        let pages = slots
            .chunks(PAGE)
            .map(|c| Arc::<[Item]>::from(c.to_vec()))
            .collect();
        Trie {
            pages,
            _addr: PhantomData,
        }
    }

    /// Root slot `s`.
    pub fn slot(&self, s: usize) -> &Item {
        &self.pages[s / PAGE][s % PAGE]
    }

    /// Replace root slot `s` (copying its page if shared). A leaf's scope is
    /// left for [`Trie::rescope`].
    pub fn set_slot(&mut self, s: usize, item: Item) {
        Arc::make_mut(&mut self.pages[s / PAGE])[s % PAGE] = item;
    }

    /// Recompute the scopes of the root leaves whose scope can have changed
    /// after slot `s` changed, given `old_k`, the group exponent slot `s` had
    /// before (see the module docs).
    pub fn rescope(&mut self, s: usize, old_k: u8) {
        let val = |t: &Trie<A>, i: usize| t.slot(i).leaf_val();
        // The largest uniform group around `s` now.
        let mut new_k = 0u8;
        if let Some(v) = val(self, s) {
            while new_k < ROOT_BITS {
                let size = 1usize << (new_k + 1);
                let g0 = s & !(size - 1);
                if (g0..g0 + size).all(|i| val(self, i) == Some(v)) {
                    new_k += 1;
                } else {
                    break;
                }
            }
        }
        let k = old_k.max(new_k);
        let size = 1usize << k;
        let g0 = s & !(size - 1);
        let vals: Vec<Option<Val>> = (g0..g0 + size).map(|i| val(self, i)).collect();
        let ks = group_exponents(&vals, k);
        for (i, kk) in ks.into_iter().enumerate() {
            let t = g0 + i;
            if let Item::Leaf(v) = *self.slot(t) {
                let want = leaf(v, ROOT_BITS - kk);
                if want != v {
                    self.set_slot(t, Item::Leaf(want));
                }
            }
        }
    }

    /// The group exponent of root slot `s` now (from its stored scope).
    pub fn slot_k(&self, s: usize) -> u8 {
        match self.slot(s) {
            Item::Leaf(v) => ROOT_BITS - (v >> 24) as u8,
            Item::Node(_) => 0,
        }
    }

    /// (nodes, leaf words), root slots counted as leaves when they are.
    pub fn counts(&self) -> (usize, usize) {
        let (mut nodes, mut leaves) = (0, 0);
        for p in self.pages.iter() {
            for it in p.iter() {
                match it {
                    Item::Leaf(_) => leaves += 1,
                    Item::Node(n) => n.count(&mut nodes, &mut leaves),
                }
            }
        }
        (nodes, leaves)
    }

    /// Approximate heap bytes.
    pub fn bytes(&self) -> usize {
        let (nodes, leaves) = self.counts();
        SLOTS * std::mem::size_of::<Item>()
            + nodes * (std::mem::size_of::<Node>() + 16 + std::mem::size_of::<Arc<Node>>())
            + leaves * 4
    }

    /// The root slot of `addr`, its first address, and the slot length.
    pub fn slot_of(addr: A) -> usize {
        addr.top(u32::from(ROOT_BITS))
    }

    pub fn slot_base(s: usize) -> A {
        A::from_index(s, A::WIDTH - u32::from(ROOT_BITS))
    }

    pub const ROOT_LEN: u8 = ROOT_BITS;

    /// Structural equality (values, scopes and shape), for tests.
    #[cfg(test)]
    pub fn same_as(&self, o: &Trie<A>) -> bool {
        (0..SLOTS).all(|s| same_item(self.slot(s), o.slot(s)))
    }
}

#[cfg(test)]
fn same_item(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Leaf(x), Item::Leaf(y)) => x == y,
        (Item::Node(x), Item::Node(y)) => {
            x.child_bm == y.child_bm
                && x.leaf_bm == y.leaf_bm
                && x.leaves == y.leaves
                && x.children.len() == y.children.len()
                && x.children
                    .iter()
                    .zip(y.children.iter())
                    .all(|(p, q)| same_item(&Item::Node(p.clone()), &Item::Node(q.clone())))
        }
        _ => false,
    }
}

/// The canonical item for the block `base / len` from `ranges`, where
/// `ranges[i]` is the range holding `base`. Returns it and the index of the
/// range holding the address after the block (or the last range).
pub fn block_from_ranges<A: Addr>(
    ranges: &[(A, Val)],
    mut i: usize,
    base: A,
    len: u8,
) -> (Item, usize) {
    while i + 1 < ranges.len() && ranges[i + 1].0 <= base {
        i += 1;
    }
    let end = base.block_end(len);
    let mut k = i + 1;
    while k < ranges.len() && ranges[k].0 <= end {
        k += 1;
    }
    // Ranges i .. k meet the block; the last of them continues past it.
    let next = k - 1;
    if k == i + 1 {
        return (Item::Leaf(ranges[i].1), next);
    }
    let cl = len + 8;
    let shift = Trie::<A>::shift(len);
    let mut items = Vec::with_capacity(PAGE);
    let mut j_range = i;
    for j in 0..PAGE {
        let pb = base.or(A::from_index(j, shift));
        let (it, n) = block_from_ranges(&ranges[..k], j_range, pb, cl);
        items.push(it);
        j_range = n;
    }
    (Node::compress(&items, cl), next)
}
