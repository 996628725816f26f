//! The builder's ranked Loc-RIB of one family: prefix -> ranking id
//! ([`RankedMap`]), sorted by (address, length).
//!
//! A `BTreeMap<(A, u8), u16>` costs ~20 bytes per IPv4 entry and ~55 per
//! IPv6 entry (16-byte aligned keys, nodes part full). Here the bulk of the
//! map is one sorted flat vector of packed entries ([`Pack`]: 8 bytes for
//! IPv4, address << 24 | length << 16 | id; 20 for IPv6, the address as four
//! 32-bit words then length << 16 | id), and recent changes sit in a small
//! `BTreeMap` delta (`Some(id)`: set, `None`: removed from the flat part).
//! Lookups check the delta, then binary-search the flat part; iteration
//! merges the two. When the delta holds more than 1/8 of the flat part's
//! entries (and at least [`MIN_DELTA`]), it is merged into a new flat vector
//! (linear; amortized over the changes that filled it).
//!
//! Also counts how many prefixes have each length, so `lpm::context` looks
//! up only lengths that are present.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::iter::Peekable;
use std::ops::Bound;

use super::lpm::Addr;

/// Packing of (address, length, ranking id) into one sortable flat entry
/// whose order is that of (address, length).
pub trait Pack: Sized + Copy + Ord {
    type Packed: Copy + Ord + Debug + Send + Sync;
    fn pack(self, len: u8, id: u16) -> Self::Packed;
    fn unpack(p: Self::Packed) -> (Self, u8, u16);
}

impl Pack for u32 {
    type Packed = u64;
    #[inline]
    fn pack(self, len: u8, id: u16) -> u64 {
        (self as u64) << 24 | (len as u64) << 16 | id as u64
    }
    #[inline]
    fn unpack(p: u64) -> (u32, u8, u16) {
        ((p >> 24) as u32, (p >> 16) as u8, p as u16)
    }
}

/// An IPv6 entry: 20 bytes, 4-byte aligned; derives the order of (address, length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Packed6 {
    /// The address, most significant word first.
    addr: [u32; 4],
    /// `len << 16 | id`.
    tail: u32,
}

impl Pack for u128 {
    type Packed = Packed6;
    #[inline]
    fn pack(self, len: u8, id: u16) -> Packed6 {
        Packed6 {
            addr: [
                (self >> 96) as u32,
                (self >> 64) as u32,
                (self >> 32) as u32,
                self as u32,
            ],
            tail: (len as u32) << 16 | id as u32,
        }
    }
    #[inline]
    fn unpack(p: Packed6) -> (u128, u8, u16) {
        let a = p.addr.iter().fold(0u128, |acc, &w| acc << 32 | w as u128);
        (a, (p.tail >> 16) as u8, p.tail as u16)
    }
}

/// The delta is merged once it holds more than this many entries and 1/8 of
/// the flat part.
pub const MIN_DELTA: usize = 64;

/// Prefix -> ranking id: see the module docs.
#[derive(Clone, Debug)]
pub struct RankedMap<A: Addr> {
    base: Vec<A::Packed>,
    delta: BTreeMap<(A, u8), Option<u16>>,
    len: usize,
    lengths: BTreeMap<u8, usize>,
    /// Prefixes per ranking id.
    by_id: Vec<u64>,
}

impl<A: Addr> Default for RankedMap<A> {
    fn default() -> Self {
        RankedMap {
            base: Vec::new(),
            delta: BTreeMap::new(),
            len: 0,
            lengths: BTreeMap::new(),
            by_id: Vec::new(),
        }
    }
}

impl<A: Addr> RankedMap<A> {
    pub fn new() -> RankedMap<A> {
        RankedMap::default()
    }

    /// The id in the flat part.
    fn base_get(&self, addr: A, len: u8) -> Option<u16> {
        let k = addr.pack(len, 0);
        let i = self.base.partition_point(|&p| p < k);
        let (a, l, id) = A::unpack(*self.base.get(i)?);
        (a == addr && l == len).then_some(id)
    }

    /// The ranking id of `addr / len`.
    pub fn get(&self, addr: A, len: u8) -> Option<u16> {
        match self.delta.get(&(addr, len)) {
            Some(&v) => v,
            None => self.base_get(addr, len),
        }
    }

    /// Set (`Some`) or remove (`None`) a prefix's ranking; whether it changed.
    pub fn set(&mut self, addr: A, len: u8, id: Option<u16>) -> bool {
        let old = self.get(addr, len);
        if old == id {
            return false;
        }
        if let Some(o) = old {
            self.by_id[o as usize] -= 1;
        }
        if let Some(n) = id {
            let n = n as usize;
            if self.by_id.len() <= n {
                self.by_id.resize(n + 1, 0);
            }
            self.by_id[n] += 1;
        }
        if self.base_get(addr, len) == id {
            self.delta.remove(&(addr, len));
        } else {
            self.delta.insert((addr, len), id);
        }
        match (old, id) {
            (None, Some(_)) => {
                self.len += 1;
                *self.lengths.entry(len).or_default() += 1;
            }
            (Some(_), None) => {
                self.len -= 1;
                if let Some(n) = self.lengths.get_mut(&len) {
                    *n -= 1;
                    if *n == 0 {
                        self.lengths.remove(&len);
                    }
                }
            }
            _ => {}
        }
        if self.delta.len() > MIN_DELTA.max(self.base.len() / 8) {
            self.merge();
        }
        true
    }

    /// Fold the delta into a new flat part.
    fn merge(&mut self) {
        let delta = std::mem::take(&mut self.delta);
        let mut base = Vec::with_capacity(self.len);
        base.extend(Merge::new(self.base.iter(), delta.iter()).map(|(a, l, id)| a.pack(l, id)));
        self.base = base;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// How many prefixes have each ranking id (index: the id).
    pub fn count_by_id(&self) -> &[u64] {
        &self.by_id
    }

    /// The lengths some prefix has, ascending.
    pub fn lengths(&self) -> impl Iterator<Item = u8> + '_ {
        self.lengths.keys().copied()
    }

    /// All prefixes, sorted.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (A, u8, u16)> + '_ {
        Merge::new(self.base.iter(), self.delta.iter())
    }

    /// The prefixes `(a, l)` with `lo <= (a, l) <= hi`, sorted (none if `lo > hi`).
    pub fn range(&self, lo: (A, u8), hi: (A, u8)) -> impl Iterator<Item = (A, u8, u16)> + '_ {
        let (klo, khi) = (lo.0.pack(lo.1, 0), hi.0.pack(hi.1, u16::MAX));
        let start = self.base.partition_point(|&p| p < klo);
        let end = self.base.partition_point(|&p| p <= khi);
        let base = &self.base[start..end.max(start)];
        let upper = if lo <= hi {
            Bound::Included(hi)
        } else {
            Bound::Excluded(lo)
        };
        Merge::new(base.iter(), self.delta.range((Bound::Included(lo), upper)))
    }

    /// Bytes held (flat part at capacity, delta estimated at ~3/2 of its keys and values).
    pub fn bytes(&self) -> usize {
        self.base.capacity() * std::mem::size_of::<A::Packed>()
            + self.delta.len() * std::mem::size_of::<((A, u8), Option<u16>)>() * 3 / 2
    }
}

/// The flat part's entries overridden by the delta's, in order.
struct Merge<'a, A: Addr, I: Iterator, J: Iterator> {
    base: Peekable<I>,
    delta: Peekable<J>,
    _a: std::marker::PhantomData<&'a A>,
}

impl<'a, A, I, J> Merge<'a, A, I, J>
where
    A: Addr,
    I: Iterator<Item = &'a A::Packed>,
    J: Iterator<Item = (&'a (A, u8), &'a Option<u16>)>,
{
    fn new(base: I, delta: J) -> Self {
        Merge {
            base: base.peekable(),
            delta: delta.peekable(),
            _a: std::marker::PhantomData,
        }
    }
}

impl<'a, A, I, J> Iterator for Merge<'a, A, I, J>
where
    A: Addr,
    I: Iterator<Item = &'a A::Packed>,
    J: Iterator<Item = (&'a (A, u8), &'a Option<u16>)>,
{
    type Item = (A, u8, u16);

    fn next(&mut self) -> Option<(A, u8, u16)> {
        loop {
            let b = self.base.peek().map(|&&p| A::unpack(p));
            let ord = match (b, self.delta.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((a, l, _)), Some((&k, _))) => (a, l).cmp(&k),
            };
            if ord != Ordering::Greater {
                self.base.next();
                if ord == Ordering::Less {
                    return b;
                }
            }
            let (&(a, l), &v) = self.delta.next().expect("peeked");
            if let Some(id) = v {
                return Some((a, l, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entry_sizes() {
        assert_eq!(std::mem::size_of::<<u32 as Pack>::Packed>(), 8);
        assert_eq!(std::mem::size_of::<<u128 as Pack>::Packed>(), 20);
    }

    #[test]
    fn pack_order_is_address_then_length() {
        let a: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
        for (x, y) in [
            ((a, 48, 9), (a, 64, 1)),
            ((a, 128, 1), (a + 1, 0, 0)),
            ((1 << 96, 0, 7), (1 << 97, 0, 0)),
            ((u128::MAX - 1, 128, 0xffff), (u128::MAX, 0, 0)),
        ] {
            assert!(x.0.pack(x.1, x.2) < y.0.pack(y.1, y.2), "{x:?} < {y:?}");
            assert_eq!(u128::unpack(x.0.pack(x.1, x.2)), x);
        }
        assert!(0xffff_ff00u32.pack(24, 3) < 0xffff_ff00u32.pack(32, 0));
        assert_eq!(
            u32::unpack(u32::MAX.pack(32, 0xffff)),
            (u32::MAX, 32, 0xffff)
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u8, Option<u16>),
        Range(u8, u8, u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), 0u8..4, prop::option::weighted(0.7, 0u16..5))
                .prop_map(|(a, l, id)| Op::Set(a, l, id)),
            1 => (any::<u8>(), 0u8..4, any::<u8>(), 0u8..4)
                .prop_map(|(a, l, b, m)| Op::Range(a, l, b, m)),
        ]
    }

    /// Addresses spread over the top byte (and the bottom, for v6 word order).
    fn check<A: Addr>(ops: &[Op], addr: impl Fn(u8) -> A, width: u8) {
        let mut m = RankedMap::<A>::new();
        let mut r: BTreeMap<(A, u8), u16> = BTreeMap::new();
        let len = |l: u8| [0, 8, width - 1, width][l as usize];
        for op in ops {
            match *op {
                Op::Set(a, l, id) => {
                    let k = (addr(a), len(l));
                    let old = match id {
                        Some(id) => r.insert(k, id),
                        None => r.remove(&k),
                    };
                    assert_eq!(m.set(k.0, k.1, id), old != id, "{op:?}");
                }
                Op::Range(a, l, b, n) => {
                    let (lo, hi) = ((addr(a), len(l)), (addr(b), len(n)));
                    if lo <= hi {
                        let want: Vec<_> =
                            r.range(lo..=hi).map(|(&(a, l), &i)| (a, l, i)).collect();
                        assert_eq!(m.range(lo, hi).collect::<Vec<_>>(), want);
                    }
                }
            }
            assert_eq!(m.len(), r.len());
        }
        let want: Vec<_> = r.iter().map(|(&(a, l), &i)| (a, l, i)).collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), want);
        for a in 0..=255u8 {
            for l in 0..4 {
                let k = (addr(a), len(l));
                assert_eq!(m.get(k.0, k.1), r.get(&k).copied());
            }
        }
        let lengths: std::collections::BTreeSet<u8> = r.keys().map(|k| k.1).collect();
        assert_eq!(m.lengths().collect::<Vec<_>>(), Vec::from_iter(lengths));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn same_as_btreemap_v4(ops in prop::collection::vec(op(), 0..1500)) {
            check::<u32>(&ops, |a| (a as u32) << 24 | a as u32, 32);
        }

        #[test]
        fn same_as_btreemap_v6(ops in prop::collection::vec(op(), 0..1500)) {
            check::<u128>(&ops, |a| (a as u128) << 120 | (a as u128) << 40 | a as u128, 128);
        }
    }

    #[test]
    fn bulk_load_then_churn() {
        let mut m = RankedMap::<u32>::new();
        let mut r = BTreeMap::new();
        let key = |i: u32| (i.wrapping_mul(0x9E37_79B1) & 0xffff_ff00, 24u8);
        for i in 0..100_000u32 {
            let k = key(i);
            m.set(k.0, k.1, Some((i % 7) as u16));
            r.insert(k, (i % 7) as u16);
        }
        assert!(m.delta.len() <= m.base.len() / 8 + 1);
        for i in (0..100_000u32).step_by(3) {
            let k = key(i);
            m.set(k.0, k.1, None);
            r.remove(&k);
        }
        let want: Vec<_> = r.iter().map(|(&(a, l), &i)| (a, l, i)).collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), want);
        assert_eq!(m.len(), r.len());
        assert!(m.bytes() < 12 * 100_000, "{} bytes", m.bytes());
    }
}
