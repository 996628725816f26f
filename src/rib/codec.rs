//! Compact, canonical byte encoding of `PathAttrs` for the interner.
//!
//! An `Arc<PathAttrs>` costs ~350 bytes on the heap for a typical path (a
//! 224-byte struct, its Arc header, and one allocation per non-empty vector);
//! the same attributes encoded here take ~30-60 bytes in one allocation. The
//! interner keeps only the bytes and materializes `Arc<PathAttrs>` for export
//! and queries. The encoding is deterministic and decodable, so equal bytes
//! <=> equal attributes: hashing and comparing bytes is interning.
//!
//! Layout: presence bits (u16 LE), origin, then the present fixed fields in
//! order, then the lists, each as a LEB128 count and items. Integers that are
//! usually small (ASNs, MED, LOCAL_PREF, lengths) are LEB128.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::{AsPath, AsSegment, Origin, PathAttrs, RawAttr};

const NH: u16 = 1 << 0;
const NH_V6: u16 = 1 << 1;
const NH_LL: u16 = 1 << 2;
const MED: u16 = 1 << 3;
const LOCAL_PREF: u16 = 1 << 4;
const ATOMIC: u16 = 1 << 5;
const AGGREGATOR: u16 = 1 << 6;
const ORIGINATOR: u16 = 1 << 7;
const AS_PATH: u16 = 1 << 8;
const COMMUNITIES: u16 = 1 << 9;
const LARGE: u16 = 1 << 10;
const EXT: u16 = 1 << 11;
const CLUSTER: u16 = 1 << 12;
const OTHER: u16 = 1 << 13;

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A list as its count and items; nothing when it is empty (its presence bit
/// is clear then, see [`Reader::list`]).
#[inline]
fn put_list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    if items.is_empty() {
        return;
    }
    put_var(out, items.len() as u64);
    for x in items {
        item(out, x);
    }
}

/// Encode `a` into `out` (cleared first), with LOCAL_PREF replaced by
/// `local_pref` (import policy applied without cloning the attributes).
pub fn encode(a: &PathAttrs, local_pref: Option<u32>, out: &mut Vec<u8>) {
    out.clear();
    let lp = local_pref.or(a.local_pref);
    let mut bits = 0u16;
    let mut set = |cond: bool, b: u16| {
        if cond {
            bits |= b
        }
    };
    set(a.next_hop.is_some(), NH);
    set(matches!(a.next_hop, Some(IpAddr::V6(_))), NH_V6);
    set(a.next_hop_ll.is_some(), NH_LL);
    set(a.med.is_some(), MED);
    set(lp.is_some(), LOCAL_PREF);
    set(a.atomic_aggregate, ATOMIC);
    set(a.aggregator.is_some(), AGGREGATOR);
    set(a.originator_id.is_some(), ORIGINATOR);
    set(!a.as_path.0.is_empty(), AS_PATH);
    set(!a.communities.is_empty(), COMMUNITIES);
    set(!a.large_communities.is_empty(), LARGE);
    set(!a.ext_communities.is_empty(), EXT);
    set(!a.cluster_list.is_empty(), CLUSTER);
    set(!a.other.is_empty(), OTHER);
    out.extend_from_slice(&bits.to_le_bytes());
    out.push(a.origin as u8);
    match a.next_hop {
        Some(IpAddr::V4(v)) => out.extend_from_slice(&v.octets()),
        Some(IpAddr::V6(v)) => out.extend_from_slice(&v.octets()),
        None => {}
    }
    if let Some(ll) = a.next_hop_ll {
        out.extend_from_slice(&ll.octets());
    }
    if let Some(m) = a.med {
        put_var(out, m.into());
    }
    if let Some(lp) = lp {
        put_var(out, lp.into());
    }
    if let Some((asn, addr)) = a.aggregator {
        put_var(out, asn.into());
        out.extend_from_slice(&addr.octets());
    }
    if let Some(o) = a.originator_id {
        out.extend_from_slice(&o.octets());
    }
    put_list(out, &a.as_path.0, |out, s| {
        out.push(s.kind);
        put_var(out, s.asns.len() as u64);
        for &asn in &s.asns {
            put_var(out, asn.into());
        }
    });
    put_list(out, &a.communities, |out, c| {
        out.extend_from_slice(&c.to_le_bytes())
    });
    put_list(out, &a.large_communities, |out, c| {
        for &x in c {
            put_var(out, x.into());
        }
    });
    put_list(out, &a.ext_communities, |out, c| {
        out.extend_from_slice(&c.to_le_bytes())
    });
    put_list(out, &a.cluster_list, |out, c| {
        out.extend_from_slice(&c.octets())
    });
    put_list(out, &a.other, |out, o| {
        out.push(o.flags);
        out.push(o.code);
        put_var(out, o.value.len() as u64);
        out.extend_from_slice(&o.value);
    });
}

/// Reads back what [`encode`] wrote. Input always comes from `encode`, so
/// running out of bytes is a bug; it panics rather than guessing.
struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let (h, t) = self.b.split_at(N);
        self.b = t;
        h.try_into().expect("split_at gave N bytes")
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn var(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.u8();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn var32(&mut self) -> u32 {
        self.var() as u32
    }
    fn count(&mut self) -> usize {
        self.var() as usize
    }
    /// A list [`put_list`] wrote when `present` (its presence bit), else empty.
    #[inline]
    fn list<T>(&mut self, present: bool, mut item: impl FnMut(&mut Self) -> T) -> Vec<T> {
        if !present {
            return Vec::new();
        }
        let n = self.count();
        (0..n).map(|_| item(self)).collect()
    }
}

/// Decode bytes produced by [`encode`].
pub fn decode(bytes: &[u8]) -> PathAttrs {
    let mut r = Reader { b: bytes };
    let bits = u16::from_le_bytes(r.bytes::<2>());
    let has = |b: u16| bits & b != 0;
    let origin = Origin::from_code(r.u8()).unwrap_or_default();
    let next_hop = if has(NH_V6) {
        Some(IpAddr::V6(Ipv6Addr::from(r.bytes::<16>())))
    } else if has(NH) {
        Some(IpAddr::V4(Ipv4Addr::from(r.bytes::<4>())))
    } else {
        None
    };
    let next_hop_ll = has(NH_LL).then(|| Ipv6Addr::from(r.bytes::<16>()));
    let med = has(MED).then(|| r.var32());
    let local_pref = has(LOCAL_PREF).then(|| r.var32());
    let aggregator = has(AGGREGATOR).then(|| {
        let asn = r.var32();
        (asn, Ipv4Addr::from(r.bytes::<4>()))
    });
    let originator_id = has(ORIGINATOR).then(|| Ipv4Addr::from(r.bytes::<4>()));
    let as_path = AsPath(r.list(has(AS_PATH), |r| {
        let kind = r.u8();
        let k = r.count();
        AsSegment {
            kind,
            asns: (0..k).map(|_| r.var32()).collect(),
        }
    }));
    // The lists in the order `encode` writes them (read into locals, so that
    // the struct literal's field order cannot change what is read).
    let communities = r.list(has(COMMUNITIES), |r| u32::from_le_bytes(r.bytes()));
    let large_communities = r.list(has(LARGE), |r| [r.var32(), r.var32(), r.var32()]);
    let ext_communities = r.list(has(EXT), |r| u64::from_le_bytes(r.bytes()));
    let cluster_list = r.list(has(CLUSTER), |r| Ipv4Addr::from(r.bytes::<4>()));
    let other = r.list(has(OTHER), |r| {
        let flags = r.u8();
        let code = r.u8();
        let len = r.count();
        let (v, rest) = r.b.split_at(len);
        r.b = rest;
        RawAttr {
            flags,
            code,
            value: v.into(),
        }
    });
    let a = PathAttrs {
        origin,
        as_path,
        next_hop,
        next_hop_ll,
        med,
        local_pref,
        atomic_aggregate: has(ATOMIC),
        aggregator,
        communities,
        large_communities,
        ext_communities,
        originator_id,
        cluster_list,
        other,
    };
    debug_assert!(r.b.is_empty(), "trailing bytes in encoded attributes");
    a
}

/// Every ASN of the AS_PATH in bytes produced by [`encode`], in path order
/// (all segment kinds), without decoding anything else (for Loc-RIB listeners).
pub fn asns(bytes: &[u8]) -> Asns<'_> {
    let mut r = Reader { b: bytes };
    let bits = u16::from_le_bytes(r.bytes::<2>());
    let has = |b: u16| bits & b != 0;
    if !has(AS_PATH) {
        return Asns {
            r: Reader { b: &[] },
            segments: 0,
            left: 0,
        };
    }
    r.u8(); // origin
    if has(NH_V6) {
        r.bytes::<16>();
    } else if has(NH) {
        r.bytes::<4>();
    }
    if has(NH_LL) {
        r.bytes::<16>();
    }
    if has(MED) {
        r.var();
    }
    if has(LOCAL_PREF) {
        r.var();
    }
    if has(AGGREGATOR) {
        r.var();
        r.bytes::<4>();
    }
    if has(ORIGINATOR) {
        r.bytes::<4>();
    }
    let segments = r.count();
    Asns {
        r,
        segments,
        left: 0,
    }
}

/// Iterator from [`asns`].
pub struct Asns<'a> {
    r: Reader<'a>,
    /// Segments not started yet.
    segments: usize,
    /// ASNs left in the current segment.
    left: usize,
}

impl Iterator for Asns<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        while self.left == 0 {
            if self.segments == 0 {
                return None;
            }
            self.segments -= 1;
            self.r.u8(); // segment kind
            self.left = self.r.count();
        }
        self.left -= 1;
        Some(self.r.var32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AS_CONFED_SEQUENCE, AS_SEQUENCE, AS_SET};

    fn round_trip(a: &PathAttrs) -> usize {
        let mut buf = Vec::new();
        encode(a, None, &mut buf);
        assert_eq!(&decode(&buf), a);
        buf.len()
    }

    #[test]
    fn round_trips() {
        round_trip(&PathAttrs::default());
        let typical = PathAttrs {
            as_path: AsPath::sequence(&[65001, 3356, 1299, 13335]),
            next_hop: Some("192.0.2.1".parse().unwrap()),
            local_pref: Some(100),
            communities: vec![(65000 << 16) | 1, (3356 << 16) | 2],
            ..Default::default()
        };
        assert!(round_trip(&typical) < 40);
        let full = PathAttrs {
            origin: Origin::Incomplete,
            as_path: AsPath(vec![
                AsSegment {
                    kind: AS_CONFED_SEQUENCE,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: AS_SEQUENCE,
                    asns: vec![1, 4_200_000_000],
                },
                AsSegment {
                    kind: AS_SET,
                    asns: vec![7, 8],
                },
            ]),
            next_hop: Some("2001:db8::1".parse().unwrap()),
            next_hop_ll: Some("fe80::1".parse().unwrap()),
            med: Some(u32::MAX),
            local_pref: Some(0),
            atomic_aggregate: true,
            aggregator: Some((4_200_000_001, "192.0.2.7".parse().unwrap())),
            communities: vec![u32::MAX, 0],
            large_communities: vec![[u32::MAX, 0, 5]],
            ext_communities: vec![u64::MAX, 1],
            originator_id: Some("10.1.1.1".parse().unwrap()),
            cluster_list: vec!["10.2.2.2".parse().unwrap(), "10.3.3.3".parse().unwrap()],
            other: vec![
                RawAttr {
                    flags: 0xc0,
                    code: 99,
                    value: vec![1, 2, 3].into(),
                },
                RawAttr {
                    flags: 0xe0,
                    code: 200,
                    value: vec![].into(),
                },
            ],
        };
        round_trip(&full);
    }

    #[test]
    fn local_pref_override_and_canonical() {
        let a = PathAttrs {
            as_path: AsPath::sequence(&[1]),
            ..Default::default()
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        encode(&a, Some(100), &mut x);
        let mut b = a.clone();
        b.local_pref = Some(100);
        encode(&b, None, &mut y);
        assert_eq!(x, y);
        assert_eq!(decode(&x), b);
    }
}
