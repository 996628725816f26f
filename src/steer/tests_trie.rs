//! Trie tests: the full build against the sorted-range reference (value and
//! exact ECS scope for sampled addresses) and against one sweep over the
//! whole map (shape and all), incremental updates against a
//! fresh full build after random announce / withdraw / re-rank sequences
//! (shape and all), and copy-on-write (the previous trie never changes).

use proptest::prelude::*;

use super::lpm::{self, safe_scope, Addr, Lpm};
use super::trie::Trie;
use super::update::{self, Params, RankedMap};
use crate::testutil::mix;

const P: Params = Params {
    default_rank: 7,
    compress: true,
};

/// A prefix from `r`: IPv4 mostly inside 10.0.0.0/12 (so blocks share slots
/// and nodes at every depth), lengths 0..=32 weighted to /16../32.
fn v4_prefix(r: u64) -> (u32, u8) {
    let len = match r % 20 {
        0 => (r >> 8) as u8 % 17,
        1..=4 => 17 + (r >> 8) as u8 % 7,
        5..=14 => 24,
        _ => 25 + (r >> 8) as u8 % 8,
    };
    let a = if (r >> 20) % 8 == 0 {
        (r >> 24) as u32
    } else {
        0x0a00_0000 | ((r >> 24) as u32 & 0x000f_ffff)
    };
    (a & u32::mask(len), len)
}

/// IPv6 inside 2001:db8::/32 mostly, lengths up to 128.
fn v6_prefix(r: u64) -> (u128, u8) {
    let len = match r % 10 {
        0 => (r >> 8) as u8 % 33,
        1..=3 => 32 + (r >> 8) as u8 % 17,
        4..=7 => 48,
        _ => 49 + (r >> 8) as u8 % 80,
    };
    let low = u128::from(mix(r)) << 64 | u128::from(mix(r ^ 1));
    let a = if (r >> 20) % 8 == 0 {
        low
    } else {
        (0x2001_0db8u128 << 96) | (low >> 40)
    };
    (a & u128::mask(len), len)
}

/// A sampled address near prefix `(a, l)`: its first, last or a middle one.
fn near<A: Addr>(a: A, l: u8, r: u64, from_u64: impl Fn(u64) -> A) -> A {
    match r % 4 {
        0 => a,
        1 => a.block_end(l),
        2 => a.block_end(l).checked_inc().unwrap_or(a),
        _ => a.or(from_u64(mix(r)).and(A::mask(l).not())),
    }
}

/// Every probe: the trie's leaf equals the reference's value, with the
/// reference range's safe scope.
fn check_against_reference<A: Addr>(map: &RankedMap<A>, trie: &Trie<A>, probes: &[A]) {
    let reference = Lpm::build(map.iter(), P.default_rank, P.compress);
    for &a in probes {
        let h = reference.lookup(a);
        let leaf = trie.lookup(a);
        assert_eq!(leaf & lpm::VAL_MASK, h.val, "value of {a:?}");
        assert_eq!(
            (leaf >> 24) as u8,
            safe_scope(a, h.start, h.end),
            "scope of {a:?} in {:?}..={:?}",
            h.start,
            h.end
        );
    }
}

fn map_of<A: Addr>(n: usize, seed: u64, gen: impl Fn(u64) -> (A, u8)) -> RankedMap<A> {
    let mut m = RankedMap::new();
    for i in 0..n as u64 {
        let r = mix(seed ^ (i << 1));
        let (a, l) = gen(r);
        m.set(a, l, Some((r >> 50) as u16 % 5));
    }
    m
}

fn probes<A: Addr>(
    map: &RankedMap<A>,
    seed: u64,
    n: usize,
    from_u64: impl Fn(u64) -> A + Copy,
) -> Vec<A> {
    let keys: Vec<(A, u8)> = map.iter().map(|(a, l, _)| (a, l)).collect();
    (0..n as u64)
        .map(|i| {
            let r = mix(seed ^ i);
            if keys.is_empty() || r % 5 == 0 {
                from_u64(mix(r))
            } else {
                let (a, l) = keys[(r >> 8) as usize % keys.len()];
                near(a, l, r >> 16, from_u64)
            }
        })
        .collect()
}

fn v4_of(x: u64) -> u32 {
    x as u32
}

fn v6_of(x: u64) -> u128 {
    u128::from(x) << 64 | u128::from(mix(x))
}

#[test]
fn full_build_matches_the_reference() {
    for seed in 0..4u64 {
        let m = map_of(3000, seed, v4_prefix);
        let t = update::full(&m, P);
        check_against_reference(&m, &t, &probes(&m, seed, 4000, v4_of));
        let m = map_of(2000, seed, v6_prefix);
        let t = update::full(&m, P);
        check_against_reference(&m, &t, &probes(&m, seed, 4000, v6_of));
    }
    // Empty: one value everywhere, scope 0.
    let m = RankedMap::<u32>::new();
    let t = update::full(&m, P);
    assert_eq!(t.lookup(12345), lpm::no_route(7));
}

/// The one-sweep trie of `map` (what `update::full` did before it went block by block).
fn one_sweep<A: Addr>(map: &RankedMap<A>) -> Trie<A> {
    let mut ranges = Vec::new();
    let ctx = lpm::no_route(P.default_rank);
    lpm::sweep(map.iter(), A::zero(), A::MAX, ctx, P.compress, &mut ranges);
    Trie::from_ranges(&ranges)
}

#[test]
fn block_by_block_full_build_equals_one_sweep() {
    for seed in 0..6u64 {
        let m = map_of(3000, seed, v4_prefix);
        assert!(
            update::full(&m, P).same_as(&one_sweep(&m)),
            "v4 seed {seed}"
        );
        let m = map_of(2000, seed, v6_prefix);
        assert!(
            update::full(&m, P).same_as(&one_sweep(&m)),
            "v6 seed {seed}"
        );
    }
    let mut m = RankedMap::<u32>::new();
    m.set(0, 0, Some(1));
    m.set(0x0a00_0000, 8, Some(2));
    m.set(0x0a80_0000, 9, Some(1));
    assert!(update::full(&m, P).same_as(&one_sweep(&m)));
}

/// One step of a random sequence: announce (or re-rank), or withdraw an
/// existing prefix.
#[derive(Clone, Debug)]
enum Op {
    Set(u64, u16),
    Withdraw(u64),
}

fn ops() -> impl Strategy<Value = Vec<Vec<Op>>> {
    let op = prop_oneof![
        3 => (any::<u64>(), 0u16..5).prop_map(|(r, id)| Op::Set(r, id)),
        2 => any::<u64>().prop_map(Op::Withdraw),
    ];
    // Batches of changes, each applied as one update.
    prop::collection::vec(prop::collection::vec(op, 1..6), 1..12)
}

/// Applies `batches` to `map` (from a loaded start), updating a trie
/// incrementally, and checks it against a full build after every batch;
/// checks that each previous trie is unchanged (copy-on-write).
fn run_sequence<A: Addr>(
    mut map: RankedMap<A>,
    batches: &[Vec<Op>],
    gen: impl Fn(u64) -> (A, u8),
    from_u64: impl Fn(u64) -> A + Copy,
) {
    let mut trie = update::full(&map, P);
    for (bi, batch) in batches.iter().enumerate() {
        let mut changed = Vec::new();
        for op in batch {
            match *op {
                Op::Set(r, id) => {
                    let (a, l) = gen(r);
                    map.set(a, l, Some(id));
                    changed.push((a, l));
                }
                Op::Withdraw(r) => {
                    let keys: Vec<(A, u8)> = map.iter().map(|(a, l, _)| (a, l)).collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let (a, l) = keys[(r % keys.len() as u64) as usize];
                    map.set(a, l, None);
                    changed.push((a, l));
                }
            }
        }
        let sample = probes(&map, bi as u64, 300, from_u64);
        let before: Vec<u32> = sample.iter().map(|&a| trie.lookup(a)).collect();
        let old = trie.clone();
        update::apply(&mut trie, &map, P, &changed);
        let after: Vec<u32> = sample.iter().map(|&a| old.lookup(a)).collect();
        assert_eq!(before, after, "the previous trie changed");
        let fresh = update::full(&map, P);
        assert!(
            trie.same_as(&fresh),
            "batch {bi}: incremental != full build"
        );
        check_against_reference(&map, &trie, &sample);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full_build_v4(seed in any::<u64>(), batches in ops()) {
        run_sequence(map_of(800, seed, v4_prefix), &batches, v4_prefix, v4_of);
    }

    #[test]
    fn incremental_equals_full_build_v6(seed in any::<u64>(), batches in ops()) {
        run_sequence(map_of(600, seed, v6_prefix), &batches, v6_prefix, v6_of);
    }
}

#[test]
fn short_prefix_and_collapse() {
    // A /8 with a /24 of another ranking inside; withdrawing the /24 must
    // collapse the node back into a leaf, and a /4 change rebuilds 4096 slots.
    let mut m = RankedMap::<u32>::new();
    m.set(0x0a00_0000, 8, Some(1));
    m.set(0x0a01_0200, 24, Some(2));
    let mut t = update::full(&m, P);
    assert_eq!(t.lookup(0x0a01_0203) >> 24, 24);
    assert_eq!(t.lookup(0x0a01_0101) >> 24, 23);
    m.set(0x0a01_0200, 24, None);
    update::apply(&mut t, &m, P, &[(0x0a01_0200, 24)]);
    assert!(t.same_as(&update::full(&m, P)));
    assert_eq!(t.lookup(0x0a01_0203) >> 24, 8);
    m.set(0x0000_0000, 4, Some(3));
    update::apply(&mut t, &m, P, &[(0, 4)]);
    assert!(t.same_as(&update::full(&m, P)));
    assert_eq!(t.lookup(0x0100_0000) >> 24, 5);
    assert_eq!(t.counts().0, 0);
}
