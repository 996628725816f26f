//! The range view of longest-prefix match, shared by the snapshot's trie
//! (`trie`) and its incremental updates (`update`): the packed value every
//! address gets ([`Val`]), the address trait ([`Addr`]), and the sweep that
//! turns sorted prefixes into disjoint address ranges.
//!
//! [`sweep`] runs over the prefixes of one aligned block in (address, length)
//! order with a stack of the open covering prefixes, starting from the value
//! the block inherits from the prefixes covering it ([`context`]).
//! Compression: a prefix whose ranking equals that of its (effective)
//! covering prefix is dropped, so its addresses report the covering prefix;
//! adjacent ranges with equal values are merged. Since the matched prefix is
//! recomputed as `address / length`, merging two ranges of the same
//! (ranking, length) is exact. A full build is one sweep over the whole
//! space; an update sweeps only the blocks a changed prefix covers, and
//! yields the same ranges there.
//!
//! [`safe_scope`] is the ECS scope of an address in a range. The sorted-range
//! table the daemon used before the trie ([`Lpm`], test-only) is kept as the
//! reference the trie is checked against.

use super::ranked::Pack;
use std::fmt::Debug;

/// Packed range value (24 bits): bits 0..16 ranking id, 16..24 matched
/// prefix length, [`NO_ROUTE_LEN`] there when no prefix matched (the default
/// ranking). The trie keeps the ECS scope in the top 8 bits of its leaves.
pub type Val = u32;

/// The length field of "no route".
const NO_ROUTE_LEN: u32 = 0xFF;

/// The bits of a [`Val`] (below a trie leaf's scope).
pub const VAL_MASK: u32 = 0x00FF_FFFF;

pub fn val(rank: u16, len: u8) -> Val {
    (u32::from(len) << 16) | u32::from(rank)
}

pub fn no_route(rank: u16) -> Val {
    (NO_ROUTE_LEN << 16) | u32::from(rank)
}

pub fn val_rank(v: Val) -> u16 {
    v as u16
}

/// The matched prefix length, `None` for "no route".
pub fn val_len(v: Val) -> Option<u8> {
    let l = (v >> 16) & 0xFF;
    (l != NO_ROUTE_LEN).then_some(l as u8)
}

/// Whether a prefix matched (a ranking from the RIB, not the default).
pub fn val_matched(v: Val) -> bool {
    val_len(v).is_some()
}

/// Unsigned address type: `u32` (IPv4) or `u128` (IPv6).
pub trait Addr: Copy + Ord + Eq + Default + Debug + Send + Sync + Pack + 'static {
    const WIDTH: u32;
    const MAX: Self;
    fn zero() -> Self {
        Self::default()
    }
    /// Top `len` bits set.
    fn mask(len: u8) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn not(self) -> Self;
    fn leading_zeros(self) -> u32;
    fn trailing_zeros(self) -> u32;
    fn checked_inc(self) -> Option<Self>;
    /// `self - 1`, wrapping.
    fn dec(self) -> Self;
    /// The top `bits` bits as an index.
    fn top(self, bits: u32) -> usize;
    /// The 8 bits at `shift` (`(self >> shift) & 0xFF`).
    fn byte_at(self, shift: u32) -> usize;
    /// `b << shift`.
    fn from_index(b: usize, shift: u32) -> Self;
    /// The last address of the block `self / len`.
    fn block_end(self, len: u8) -> Self {
        self.or(Self::mask(len).not())
    }
}

macro_rules! impl_addr {
    ($t:ty) => {
        impl Addr for $t {
            const WIDTH: u32 = <$t>::BITS;
            const MAX: Self = <$t>::MAX;
            #[inline]
            fn mask(len: u8) -> Self {
                if len == 0 {
                    0
                } else {
                    <$t>::MAX << (Self::WIDTH - u32::from(len))
                }
            }
            #[inline]
            fn and(self, o: Self) -> Self {
                self & o
            }
            #[inline]
            fn or(self, o: Self) -> Self {
                self | o
            }
            #[inline]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            #[inline]
            fn not(self) -> Self {
                !self
            }
            #[inline]
            fn leading_zeros(self) -> u32 {
                <$t>::leading_zeros(self)
            }
            #[inline]
            fn trailing_zeros(self) -> u32 {
                <$t>::trailing_zeros(self)
            }
            #[inline]
            fn checked_inc(self) -> Option<Self> {
                self.checked_add(1)
            }
            #[inline]
            fn dec(self) -> Self {
                self.wrapping_sub(1)
            }
            #[inline]
            fn top(self, bits: u32) -> usize {
                (self >> (Self::WIDTH - bits)) as usize
            }
            #[inline]
            fn byte_at(self, shift: u32) -> usize {
                ((self >> shift) & 0xFF) as usize
            }
            #[inline]
            fn from_index(b: usize, shift: u32) -> Self {
                (b as $t) << shift
            }
        }
    };
}
impl_addr!(u32);
impl_addr!(u128);

/// Appends to `out` the ranges of the block `base ..= end`, as
/// `(first address, value)` with the first at `base`, from the prefixes
/// strictly inside the block (`(address with host bits clear, length, ranking
/// id)`, sorted by (address, length), unique). `ctx` is the value the block
/// inherits ([`context`]; `no_route(default)` for the whole space): addresses
/// no inner prefix covers get it, and with `compress` an inner prefix whose
/// ranking equals its effective covering prefix's is dropped.
pub fn sweep<A: Addr>(
    prefixes: impl IntoIterator<Item = (A, u8, u16)>,
    base: A,
    end: A,
    ctx: Val,
    compress: bool,
    out: &mut Vec<(A, Val)>,
) {
    let first = out.len();
    let mut e = Emitter { out, first };
    e.emit(base, ctx);
    // Open covering prefixes: (last address, value), innermost last.
    let mut stack: Vec<(A, Val)> = Vec::with_capacity(A::WIDTH as usize + 1);
    let top_val = |stack: &[(A, Val)]| stack.last().map_or(ctx, |t| t.1);
    let mut prev: Option<(A, u8)> = None;
    for (addr, len, rank) in prefixes {
        debug_assert!(len as u32 <= A::WIDTH && addr.and(A::mask(len)) == addr);
        debug_assert!(prev < Some((addr, len)), "sorted and unique");
        debug_assert!(base <= addr && addr <= end);
        prev = Some((addr, len));
        while let Some(&(last, _)) = stack.last() {
            if last >= addr {
                break;
            }
            stack.pop();
            e.emit(
                last.checked_inc().expect("inside the block"),
                top_val(&stack),
            );
        }
        let top = top_val(&stack);
        if compress && val_matched(top) && val_rank(top) == rank {
            continue;
        }
        let v = val(rank, len);
        e.emit(addr, v);
        stack.push((addr.block_end(len), v));
    }
    while let Some((last, _)) = stack.pop() {
        if last < end {
            e.emit(
                last.checked_inc().expect("below the block end"),
                top_val(&stack),
            );
        }
    }
}

struct Emitter<'a, A> {
    out: &'a mut Vec<(A, Val)>,
    /// Ranges before this one are another block's.
    first: usize,
}

impl<A: Addr> Emitter<'_, A> {
    /// From `start` on (until the next emit), addresses get `v`.
    fn emit(&mut self, start: A, v: Val) {
        if self.out.len() > self.first && self.out.last().map(|r| r.0) == Some(start) {
            // The previous range would be empty.
            self.out.pop();
        }
        if self.out.len() > self.first && self.out.last().map(|r| r.1) == Some(v) {
            return;
        }
        self.out.push((start, v));
    }
}

/// The value the block `base / len` inherits from the prefixes covering it
/// (lengths `0 ..= len`, looked up with `get`): the effective innermost one
/// after compression, or `no_route(default_rank)`. `lengths` lists the prefix
/// lengths present, ascending (others are not looked up).
pub fn context<A: Addr>(
    base: A,
    len: u8,
    lengths: impl IntoIterator<Item = u8>,
    get: impl Fn(A, u8) -> Option<u16>,
    default_rank: u16,
    compress: bool,
) -> Val {
    let mut top = no_route(default_rank);
    for l in lengths {
        if l > len {
            break;
        }
        if let Some(rank) = get(base.and(A::mask(l)), l) {
            if compress && val_matched(top) && val_rank(top) == rank {
                continue;
            }
            top = val(rank, l);
        }
    }
    top
}

/// One family's ranges (test-only reference for the trie): `ranges[0]`
/// starts at 0; range `i` is `ranges[i].0 ..= ranges[i + 1].0 - 1` (the last
/// one ends at `A::MAX`).
#[cfg(test)]
#[derive(Debug)]
pub struct Lpm<A> {
    ranges: Vec<(A, Val)>,
}

/// The range an address fell in.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<A> {
    pub val: Val,
    pub start: A,
    pub end: A,
}

#[cfg(test)]
impl<A: Addr> Lpm<A> {
    /// Build from prefixes `(address with host bits clear, length, ranking id)`
    /// sorted by (address, length), without duplicates. Addresses no prefix
    /// covers get `no_route(default_rank)`.
    pub fn build(
        prefixes: impl IntoIterator<Item = (A, u8, u16)>,
        default_rank: u16,
        compress: bool,
    ) -> Lpm<A> {
        let mut ranges = Vec::new();
        sweep(
            prefixes,
            A::zero(),
            A::MAX,
            no_route(default_rank),
            compress,
            &mut ranges,
        );
        Lpm { ranges }
    }

    /// The range holding `addr` (binary search).
    pub fn lookup(&self, addr: A) -> Hit<A> {
        let i = self.ranges.partition_point(|r| r.0 <= addr) - 1;
        let end = match self.ranges.get(i + 1) {
            Some(n) => n.0.dec(),
            None => A::MAX,
        };
        let (start, val) = self.ranges[i];
        Hit { val, start, end }
    }
}

/// The shortest length `l` such that `addr / l` lies within `start ..= end`
/// (which holds `addr`): the ECS scope over which the answer cannot change.
pub fn safe_scope<A: Addr>(addr: A, start: A, end: A) -> u8 {
    fn lower<A: Addr>(addr: A, start: A) -> u32 {
        if start == A::zero() {
            return 0;
        }
        // Lengths >= WIDTH - tz(start) keep start's bits; past the first bit
        // where addr (1) and start (0) differ, the block start exceeds start.
        let aligned = A::WIDTH - start.trailing_zeros();
        if addr == start {
            aligned
        } else {
            aligned.min(addr.xor(start).leading_zeros() + 1)
        }
    }
    // The upper bound is the lower bound of the complements.
    lower(addr, start).max(lower(addr.not(), end.not())) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_scope(addr: u32, start: u32, end: u32) -> u8 {
        (0..=32u8)
            .find(|&l| {
                let m = u32::mask(l);
                addr & m >= start && (addr | !m) <= end
            })
            .unwrap()
    }

    #[test]
    fn scope_matches_brute_force() {
        let mut x = 0x1234_5678u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        for _ in 0..20_000 {
            let (a, b, c) = (next() >> (next() % 32), next(), next());
            let mut v = [a, b, c];
            v.sort_unstable();
            let [start, addr, end] = v;
            assert_eq!(
                safe_scope(addr, start, end),
                brute_scope(addr, start, end),
                "{addr:#x} in {start:#x}..={end:#x}"
            );
        }
        assert_eq!(safe_scope(5u32, 0, u32::MAX), 0);
        assert_eq!(safe_scope(5u32, 5, 5), 32);
        assert_eq!(safe_scope(0x0a00_0001u32, 0x0a00_0000, 0x0aff_ffff), 8);
        assert_eq!(safe_scope(7u128, 0, u128::MAX), 0);
        assert_eq!(safe_scope(7u128, 7, 7), 128);
    }
}
