//! Immutable longest-prefix match over one address family, as a sorted array
//! of disjoint address ranges covering the whole space.
//!
//! Every range carries one packed value ([`Val`]: ranking id, matched prefix
//! length, "a route matched" flag); the range of an address is the last one
//! starting at or below it. A direct index on the top `bits` bits of the
//! address narrows the binary search to the ranges starting in that bucket
//! (a handful for real tables), so a lookup is two or three cache misses.
//!
//! Built in one sweep over the prefixes in (address, length) order with a
//! stack of the open covering prefixes. Compression: a prefix whose ranking
//! equals that of its (effective) covering prefix is dropped, so its addresses
//! report the covering prefix; adjacent ranges with equal values are merged.
//! Since the matched prefix is recomputed as `address / length`, merging two
//! ranges of the same (ranking, length) is exact.

use std::fmt::Debug;

/// Packed range value: bits 0..16 ranking id, 16..24 matched prefix length,
/// bit 24 set when a prefix matched (clear: no route, default ranking).
pub type Val = u32;

const MATCHED: u32 = 1 << 24;

pub fn val(rank: u16, len: u8) -> Val {
    MATCHED | (u32::from(len) << 16) | u32::from(rank)
}

pub fn no_route(rank: u16) -> Val {
    u32::from(rank)
}

pub fn val_rank(v: Val) -> u16 {
    v as u16
}

/// The matched prefix length, `None` for "no route".
pub fn val_len(v: Val) -> Option<u8> {
    (v & MATCHED != 0).then_some((v >> 16) as u8)
}

/// Unsigned address type: `u32` (IPv4) or `u128` (IPv6).
pub trait Addr: Copy + Ord + Eq + Default + Debug + Send + Sync + 'static {
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
    /// The first address of bucket `b` of `bits`-bit buckets.
    fn bucket_start(b: usize, bits: u32) -> Self;
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
            fn bucket_start(b: usize, bits: u32) -> Self {
                (b as $t) << (Self::WIDTH - bits)
            }
        }
    };
}
impl_addr!(u32);
impl_addr!(u128);

/// One family's ranges. `starts[0] == 0`; range `i` is
/// `starts[i] ..= starts[i + 1] - 1` (the last one ends at `A::MAX`).
#[derive(Debug)]
pub struct Lpm<A> {
    bits: u32,
    /// `index[b]`: number of ranges starting before bucket `b` (len `2^bits + 1`).
    index: Box<[u32]>,
    /// (range start, value), interleaved so the last probe brings the value.
    ranges: Box<[(A, Val)]>,
}

/// The range an address fell in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<A> {
    pub val: Val,
    pub start: A,
    pub end: A,
}

impl<A: Addr> Lpm<A> {
    /// Build from prefixes `(address with host bits clear, length, ranking id)`
    /// sorted by (address, length), without duplicates. Addresses no prefix
    /// covers get `no_route(default_rank)`.
    pub fn build(
        prefixes: impl IntoIterator<Item = (A, u8, u16)>,
        default_rank: u16,
        compress: bool,
        bits: u32,
    ) -> Lpm<A> {
        assert!((1..=24).contains(&bits) && bits <= A::WIDTH);
        let mut e = Emitter {
            starts: Vec::new(),
            vals: Vec::new(),
        };
        let default = no_route(default_rank);
        e.emit(A::zero(), default);
        // Open covering prefixes: (last address, value), innermost last.
        let mut stack: Vec<(A, Val)> = Vec::with_capacity(A::WIDTH as usize + 1);
        let top_val = |stack: &[(A, Val)]| stack.last().map_or(default, |t| t.1);
        let mut prev: Option<(A, u8)> = None;
        for (addr, len, rank) in prefixes {
            debug_assert!(len as u32 <= A::WIDTH && addr.and(A::mask(len)) == addr);
            debug_assert!(prev < Some((addr, len)), "sorted and unique");
            prev = Some((addr, len));
            while let Some(&(end, _)) = stack.last() {
                if end >= addr {
                    break;
                }
                stack.pop();
                if let Some(next) = end.checked_inc() {
                    e.emit(next, top_val(&stack));
                }
            }
            if compress {
                if let Some(&(_, v)) = stack.last() {
                    if val_rank(v) == rank {
                        continue;
                    }
                }
            }
            let v = val(rank, len);
            e.emit(addr, v);
            stack.push((addr.or(A::mask(len).not()), v));
        }
        while let Some((end, _)) = stack.pop() {
            if let Some(next) = end.checked_inc() {
                e.emit(next, top_val(&stack));
            }
        }
        let Emitter { starts, vals } = e;
        let nb = 1usize << bits;
        let mut index = Vec::with_capacity(nb + 1);
        let mut j = 0usize;
        for b in 0..nb {
            let bs = A::bucket_start(b, bits);
            while j < starts.len() && starts[j] < bs {
                j += 1;
            }
            index.push(j as u32);
        }
        index.push(starts.len() as u32);
        let ranges: Vec<(A, Val)> = starts.into_iter().zip(vals).collect();
        Lpm {
            bits,
            index: index.into_boxed_slice(),
            ranges: ranges.into_boxed_slice(),
        }
    }

    /// The range holding `addr`.
    #[inline]
    pub fn lookup(&self, addr: A) -> Hit<A> {
        let b = addr.top(self.bits);
        let lo = self.index[b] as usize;
        let hi = self.index[b + 1] as usize;
        // Ranges starting in this bucket: the last one at or below `addr`, or
        // (none) the one that started before the bucket. starts[0] == 0, so a
        // bucket holding address 0 always has lo == 0 and a start <= addr.
        let i = lo + self.ranges[lo..hi].partition_point(|r| r.0 <= addr) - 1;
        let end = match self.ranges.get(i + 1) {
            Some(n) => n.0.dec(),
            None => A::MAX,
        };
        let (start, val) = self.ranges[i];
        Hit { val, start, end }
    }

    /// Number of ranges.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.index.len() * 4 + self.ranges.len() * std::mem::size_of::<(A, Val)>()
    }
}

struct Emitter<A> {
    starts: Vec<A>,
    vals: Vec<Val>,
}

impl<A: Addr> Emitter<A> {
    /// From `start` on (until the next emit), addresses get `v`.
    fn emit(&mut self, start: A, v: Val) {
        if self.starts.last() == Some(&start) {
            // The previous range would be empty.
            self.starts.pop();
            self.vals.pop();
        }
        if self.vals.last() == Some(&v) {
            return;
        }
        self.starts.push(start);
        self.vals.push(v);
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
