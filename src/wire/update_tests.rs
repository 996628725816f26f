//! Tests for UPDATE decoding (RFC 4271/4760/6793/7606) and encoding.

use std::net::Ipv6Addr;
use std::sync::Arc;

use super::*;
use crate::types::{
    AsPath, AsSegment, Origin, PathAttrs, Prefix, RawAttr, AS_CONFED_SEQUENCE, AS_SEQUENCE, AS_SET,
};

// ---------- helpers ----------

fn ctx(as4: bool, ebgp: bool) -> UpdateCtx {
    UpdateCtx {
        as4,
        ebgp,
        peer_as: 65001,
        local_as: if ebgp { 65000 } else { 65001 },
        local_addr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
        afis: [true, true],
    }
}

fn ebgp4() -> UpdateCtx {
    ctx(true, true)
}

fn a(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, code];
    if flags & flag::EXTENDED_LENGTH != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    b
}

fn origin(o: u8) -> Vec<u8> {
    a(0x40, 1, &[o])
}

fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for x in asns {
        v.extend_from_slice(&x.to_be_bytes());
    }
    a(0x40, 2, &v)
}

fn as_path2(asns: &[u16]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for x in asns {
        v.extend_from_slice(&x.to_be_bytes());
    }
    a(0x40, 2, &v)
}

fn next_hop(o: [u8; 4]) -> Vec<u8> {
    a(0x40, 3, &o)
}

/// ORIGIN IGP, AS_PATH 65001 65002 (4-octet), NEXT_HOP 192.0.2.1.
fn base_attrs() -> Vec<u8> {
    [
        origin(0),
        as_path4(&[65001, 65002]),
        next_hop([192, 0, 2, 1]),
    ]
    .concat()
}

/// NLRI 10.0.0.0/8 and 198.51.100.0/24.
const NLRI: [u8; 6] = [8, 10, 24, 198, 51, 100];

fn p4(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn mp_reach_v6(nh: Ipv6Addr, ll: Option<Ipv6Addr>, nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 2, 1, if ll.is_some() { 32 } else { 16 }];
    v.extend_from_slice(&nh.octets());
    if let Some(ll) = ll {
        v.extend_from_slice(&ll.octets());
    }
    v.push(0);
    v.extend_from_slice(nlri);
    a(0x90, 14, &v)
}

fn nh6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}

/// 2001:db8:1::/48
const NLRI6: [u8; 7] = [48, 0x20, 0x01, 0x0d, 0xb8, 0, 1];

fn dec(b: &[u8], c: &UpdateCtx) -> DecodedUpdate {
    decode_update(b, c).unwrap()
}

fn err(b: &[u8], c: &UpdateCtx) -> (u8, u8) {
    let e = decode_update(b, c).unwrap_err();
    (e.code, e.subcode)
}

/// Assert treat-as-withdraw: v4 NLRI moved to withdrawn, nothing announced.
fn assert_withdrawn(d: &DecodedUpdate) {
    assert!(d.v4.announced.is_empty(), "{d:?}");
    assert!(d.v6.announced.is_empty(), "{d:?}");
    assert!(d.v4.attrs.is_none() && d.v6.attrs.is_none());
    assert_eq!(
        d.v4.withdrawn,
        vec![p4("10.0.0.0/8"), p4("198.51.100.0/24")]
    );
    assert!(
        d.warnings.iter().any(|w| w.contains("treat-as-withdraw")),
        "{:?}",
        d.warnings
    );
    assert!(d.treat_as_withdraw);
}

fn assert_ok_announce(d: &DecodedUpdate) -> Arc<PathAttrs> {
    assert_eq!(
        d.v4.announced,
        vec![p4("10.0.0.0/8"), p4("198.51.100.0/24")]
    );
    d.v4.attrs.clone().expect("attrs")
}

/// Split a stream of messages with check_header, returning the bodies of UPDATEs.
fn split(buf: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut b = buf;
    while !b.is_empty() {
        let (ty, len) = check_header(b, max).unwrap();
        assert_eq!(ty, msg::UPDATE);
        assert!(len <= max);
        out.push(&b[HEADER_LEN..len]);
        b = &b[len..];
    }
    out
}

fn full_attrs() -> PathAttrs {
    PathAttrs {
        origin: Origin::Egp,
        as_path: AsPath(vec![
            AsSegment {
                kind: AS_SEQUENCE,
                asns: vec![65001, 4_200_000_000, 3356],
            },
            AsSegment {
                kind: AS_SET,
                asns: vec![64512, 4_200_000_001],
            },
        ]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        next_hop_ll: None,
        med: Some(50),
        local_pref: None,
        atomic_aggregate: true,
        aggregator: Some((4_200_000_002, Ipv4Addr::new(192, 0, 2, 9))),
        communities: vec![0xfde9_0064, 0xffff_ff01],
        large_communities: vec![[4_200_000_000, 1, 2]],
        ext_communities: vec![0x0002_fde9_0000_0064],
        originator_id: None,
        cluster_list: vec![],
        other: vec![RawAttr {
            flags: 0xe0,
            code: 99,
            value: vec![1, 2, 3].into(),
        }],
    }
}

fn many_v4(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::v4(0x0a00_0000 | (i << 8), 24).unwrap())
        .collect()
}

fn many_v6(n: u128) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::v6((0x2001_0db8u128 << 96) | (i << 80), 48).unwrap())
        .collect()
}

/// v4 announced, v4 withdrawn, v6 announced, v6 withdrawn, every decoded UPDATE.
type Collected = (
    Vec<Prefix>,
    Vec<Prefix>,
    Vec<Prefix>,
    Vec<Prefix>,
    Vec<DecodedUpdate>,
);

fn collect(bufs: &[&[u8]], c: &UpdateCtx) -> Collected {
    let (mut a4, mut w4, mut a6, mut w6, mut all) = (vec![], vec![], vec![], vec![], vec![]);
    for b in bufs {
        let d = dec(b, c);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        a4.extend(d.v4.announced.iter().copied());
        w4.extend(d.v4.withdrawn.iter().copied());
        a6.extend(d.v6.announced.iter().copied());
        w6.extend(d.v6.withdrawn.iter().copied());
        all.push(d);
    }
    (a4, w4, a6, w6, all)
}

// ---------- hand-written vectors ----------

#[test]
fn hand_written_ipv4_update_2octet() {
    // A classic 2-octet UPDATE as an old speaker sends it:
    // withdrawn 192.0.2.0/24; ORIGIN IGP; AS_PATH SEQ(65001 3356); NEXT_HOP
    // 198.51.100.1; MED 0; COMMUNITIES 65001:100; NLRI 203.0.113.0/24.
    let b: Vec<u8> = vec![
        0x00, 0x04, 24, 192, 0, 2, // withdrawn
        0x00, 0x22, // total path attribute length 34
        0x40, 0x01, 0x01, 0x00, // ORIGIN
        0x40, 0x02, 0x06, 0x02, 0x02, 0xfd, 0xe9, 0x0d, 0x1c, // AS_PATH
        0x40, 0x03, 0x04, 198, 51, 100, 1, // NEXT_HOP
        0x80, 0x04, 0x04, 0, 0, 0, 0, // MED
        0xc0, 0x08, 0x04, 0xfd, 0xe9, 0x00, 0x64, // COMMUNITIES
        24, 203, 0, 113, // NLRI
    ];
    let d = dec(&b, &ctx(false, true));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.v4.withdrawn, vec![p4("192.0.2.0/24")]);
    assert_eq!(d.v4.announced, vec![p4("203.0.113.0/24")]);
    let at = d.v4.attrs.unwrap();
    assert_eq!(at.as_path, AsPath::sequence(&[65001, 3356]));
    assert_eq!(
        at.next_hop,
        Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
    );
    assert_eq!(at.med, Some(0));
    assert_eq!(at.communities, vec![0xfde9_0064]);
    assert_eq!(d.end_of_rib, None);
    assert!(d.v6 == RouteChange::default());
}

#[test]
fn hand_written_ipv6_update_with_link_local() {
    // ORIGIN INCOMPLETE; AS_PATH SEQ(4200000000) 4-octet; MP_REACH 2001:db8::1 +
    // fe80::1, NLRI 2001:db8:1::/48 and ::/0.
    let mut b: Vec<u8> = vec![0, 0, 0, 0];
    let attrs: Vec<u8> = [
        vec![0x40, 1, 1, 2],
        vec![0x40, 2, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00],
        vec![0x80, 14, 45, 0, 2, 1, 32],
        vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        vec![0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0],
    ]
    .concat();
    b[2..4].copy_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    let d = dec(&b, &ebgp4());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        d.v6.announced,
        vec!["2001:db8:1::/48".parse().unwrap(), "::/0".parse().unwrap()]
    );
    let at = d.v6.attrs.unwrap();
    assert_eq!(at.origin, Origin::Incomplete);
    assert_eq!(at.as_path, AsPath::sequence(&[4_200_000_000]));
    assert_eq!(at.next_hop, Some(IpAddr::V6(nh6())));
    assert_eq!(at.next_hop_ll, Some("fe80::1".parse().unwrap()));
    assert!(d.v4 == RouteChange::default());
}

#[test]
fn decode_all_optional_attributes_ibgp() {
    let attrs = [
        base_attrs(),
        a(0x80, 4, &[0, 0, 0, 7]),
        a(0x40, 5, &[0, 0, 0, 200]),
        a(0x40, 6, &[]),
        a(0xc0, 7, &[0, 0, 0xfd, 0xe9, 10, 0, 0, 1]),
        a(0xc0, 8, &[0, 1, 0, 2, 0, 3, 0, 4]),
        a(0x80, 9, &[10, 9, 9, 9]),
        a(0x80, 10, &[10, 1, 1, 1, 10, 2, 2, 2]),
        a(0xc0, 16, &[0, 2, 0xfd, 0xe9, 0, 0, 0, 0x64]),
        a(0xc0, 32, &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
        a(0xc0, 99, &[9]),
        a(0x80, 100, &[8]),
    ]
    .concat();
    let d = dec(&body(&[], &attrs, &NLRI), &ctx(true, false));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let at = assert_ok_announce(&d);
    assert_eq!(at.med, Some(7));
    assert_eq!(at.local_pref, Some(200));
    assert!(at.atomic_aggregate);
    assert_eq!(at.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(at.communities, vec![0x0001_0002, 0x0003_0004]);
    assert_eq!(at.originator_id, Some(Ipv4Addr::new(10, 9, 9, 9)));
    assert_eq!(
        at.cluster_list,
        vec![Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(10, 2, 2, 2)]
    );
    assert_eq!(at.ext_communities, vec![0x0002_fde9_0000_0064]);
    assert_eq!(at.large_communities, vec![[1, 2, 3]]);
    assert_eq!(at.other.len(), 2);
    assert_eq!(at.other[0].code, 99);
    assert_eq!(at.other[1].flags, 0x80);
}

#[test]
fn host_bits_are_cleared_and_default_route() {
    // 10.1.2.3/8 on the wire -> 10.0.0.0/8; /0 has no address bytes.
    let d = dec(&body(&[], &base_attrs(), &[8, 10, 0]), &ebgp4());
    assert_eq!(d.v4.announced, vec![p4("10.0.0.0/8"), p4("0.0.0.0/0")]);
    let d = dec(&body(&[], &base_attrs(), &[12, 10, 0xff]), &ebgp4());
    assert_eq!(d.v4.announced, vec![p4("10.240.0.0/12")]);
}

// ---------- framing: session reset ----------

#[test]
fn framing_errors_are_3_1() {
    let c = ebgp4();
    // Body shorter than 4.
    assert_eq!(err(&[0, 0, 0], &c), (3, 1));
    // Withdrawn length overruns.
    assert_eq!(err(&[0, 9, 24, 1, 2, 3, 0, 0], &c), (3, 1));
    // Total attribute length overruns.
    let mut b = body(&[], &base_attrs(), &[]);
    b[3] += 1;
    assert_eq!(err(&b, &c), (3, 1));
}

#[test]
fn attribute_overrunning_the_attribute_field_is_treat_as_withdraw() {
    // RFC 7606 §4: an attribute whose length runs past the Total Path Attribute
    // Length, or fewer octets left than an attribute header, is treat-as-withdraw;
    // the Total Path Attribute Length still locates the NLRI field.
    let c = ebgp4();
    let mut value_overrun = base_attrs();
    value_overrun.extend_from_slice(&[0xc0, 8, 8, 0, 0, 0, 1]);
    let mut short_header = base_attrs();
    short_header.extend_from_slice(&[0xc0, 8]);
    let mut short_ext_header = base_attrs();
    short_ext_header.extend_from_slice(&[0xd0, 8, 0]);
    for at in [value_overrun, short_header, short_ext_header] {
        let d = dec(&body(&[], &at, &NLRI), &c);
        assert!(d.v4.announced.is_empty(), "{d:?}");
        assert!(!d.v4.withdrawn.is_empty(), "{d:?}");
        assert!(d.warnings.iter().any(|w| w.contains("7606 §4")), "{d:?}");
    }
    // An MP_REACH parsed before the overrun is withdrawn too (§5.1: MP attributes first).
    let mut at = [
        mp_reach_v6(nh6(), None, &[32, 0x20, 0x01, 0x0d, 0xb8]),
        origin(0),
        as_path4(&[65001]),
    ]
    .concat();
    at.extend_from_slice(&[0xc0, 8, 8, 0, 0, 0, 1]);
    let d = dec(&body(&[], &at, &[]), &c);
    assert!(d.v6.announced.is_empty(), "{d:?}");
    assert_eq!(d.v6.withdrawn.len(), 1, "{d:?}");
}

#[test]
fn invalid_prefixes_are_3_10() {
    let c = ebgp4();
    // NLRI length 33.
    assert_eq!(
        err(&body(&[], &base_attrs(), &[33, 1, 2, 3, 4, 5]), &c),
        (3, 10)
    );
    // NLRI prefix overruns the message.
    assert_eq!(err(&body(&[], &base_attrs(), &[24, 10, 0]), &c), (3, 10));
    // Withdrawn prefix too long / overrun.
    assert_eq!(err(&body(&[40, 1, 2, 3, 4, 5], &[], &[]), &c), (3, 10));
    assert_eq!(err(&body(&[32, 1, 2], &[], &[]), &c), (3, 10));
    // IPv6 prefix length 129 inside MP_REACH, and overrun inside MP_UNREACH.
    let at = [
        origin(0),
        as_path4(&[65001]),
        mp_reach_v6(nh6(), None, &[129, 0x20, 1]),
    ]
    .concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 10));
    let at = a(0x80, 15, &[0, 2, 1, 64, 0x20, 1]);
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 10));
}

/// RFC 7606 §5.3 / RFC 4760 §7: malformed MP_REACH_NLRI resets the session (3/9).
#[test]
fn rfc7606_5_3_malformed_mp_reach_is_3_9() {
    let c = ebgp4();
    let pre = [origin(0), as_path4(&[65001])].concat();
    // Too short.
    let at = [pre.clone(), a(0x80, 14, &[0, 2, 1, 16])].concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 9));
    // Next hop overruns.
    let at = [pre.clone(), a(0x80, 14, &[0, 2, 1, 16, 0, 0, 0])].concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 9));
    // IPv6 next hop length 4.
    let at = [pre.clone(), a(0x80, 14, &[0, 2, 1, 4, 1, 2, 3, 4, 0])].concat();
    let e = decode_update(&body(&[], &at, &[]), &c).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
    assert_eq!(e.data, a(0x80, 14, &[0, 2, 1, 4, 1, 2, 3, 4, 0]));
    // IPv4 next hop length 16.
    let mut v = vec![0, 1, 1, 16];
    v.extend_from_slice(&[1; 16]);
    v.push(0);
    let at = [pre.clone(), a(0x80, 14, &v)].concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 9));
    // MP_UNREACH too short.
    assert_eq!(err(&body(&[], &a(0x80, 15, &[0, 2]), &[]), &c), (3, 9));
    // Wrong flags on MP_REACH: Attribute Flags Error.
    let mut m = mp_reach_v6(nh6(), None, &NLRI6);
    m[0] = 0xd0;
    let at = [pre, m].concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 4));
}

/// RFC 7606 §3 g: a repeated MP_REACH/MP_UNREACH is Malformed Attribute List.
#[test]
fn rfc7606_3g_duplicate_mp_attribute_is_3_1() {
    let c = ebgp4();
    let un = a(0x80, 15, &[0, 2, 1]);
    assert_eq!(err(&body(&[], &[un.clone(), un].concat(), &[]), &c), (3, 1));
    let r = mp_reach_v6(nh6(), None, &NLRI6);
    let at = [origin(0), as_path4(&[1]), r.clone(), r].concat();
    assert_eq!(err(&body(&[], &at, &[]), &c), (3, 1));
}

/// RFC 4271 §6.3: an unrecognised well-known attribute resets with 3/2.
#[test]
fn unrecognized_well_known_is_3_2() {
    let at = [base_attrs(), a(0x40, 99, &[1])].concat();
    let e = decode_update(&body(&[], &at, &NLRI), &ebgp4()).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 2));
    assert_eq!(e.data, a(0x40, 99, &[1]));
}

// ---------- RFC 7606 treat-as-withdraw / discard ----------

/// RFC 7606 §3 g: duplicates of other attributes: all but the first discarded.
#[test]
fn rfc7606_3g_duplicate_attribute_discarded() {
    let at = [
        base_attrs(),
        origin(2),
        a(0x80, 4, &[0, 0, 0, 1]),
        a(0x80, 4, &[0, 0, 0, 2]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    let at = assert_ok_announce(&d);
    assert_eq!(at.origin, Origin::Igp);
    assert_eq!(at.med, Some(1));
    assert_eq!(d.warnings.len(), 2);
    assert_eq!((d.attributes_discarded, d.treat_as_withdraw), (2, false));
}

/// RFC 7606 §7.1: ORIGIN with bad length, bad flags or undefined value.
#[test]
fn rfc7606_7_1_malformed_origin_treat_as_withdraw() {
    for o in [a(0x40, 1, &[0, 0]), a(0xc0, 1, &[0]), origin(3)] {
        let at = [o, as_path4(&[65001]), next_hop([192, 0, 2, 1])].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
}

/// RFC 7606 §7.2: AS_PATH segment overrun, zero-length segment, unknown type, bad flags.
#[test]
fn rfc7606_7_2_malformed_as_path_treat_as_withdraw() {
    for v in [
        vec![2, 2, 0, 0, 0xfd, 0xe9], // overruns
        vec![2, 0],                   // zero-length
        vec![5, 1, 0, 0, 0, 1],       // unknown type
        vec![2, 1, 0, 0, 0, 1, 2],    // trailing byte
    ] {
        let at = [origin(0), a(0x40, 2, &v), next_hop([192, 0, 2, 1])].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
    let at = [
        origin(0),
        a(0xc0, 2, &[2, 1, 0, 0, 0, 1]),
        next_hop([192, 0, 2, 1]),
    ]
    .concat();
    assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
}

/// RFC 7606 §7.2 / RFC 5065: AS_CONFED segments from an eBGP peer; fine on iBGP.
#[test]
fn rfc7606_7_2_confed_segment_from_ebgp_treat_as_withdraw() {
    let at = [
        origin(0),
        a(0x40, 2, &[3, 1, 0, 0, 0xfd, 0xe9, 2, 1, 0, 0, 0, 1]),
        next_hop([192, 0, 2, 1]),
    ]
    .concat();
    assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    let at = [at, a(0x40, 5, &[0, 0, 0, 100])].concat();
    let d = dec(&body(&[], &at, &NLRI), &ctx(true, false));
    let p = &assert_ok_announce(&d).as_path;
    assert_eq!(p.0[0].kind, AS_CONFED_SEQUENCE);
}

/// RFC 7606 §7.3 and RFC 4271 §6.3: NEXT_HOP bad length / flags.
#[test]
fn rfc7606_7_3_malformed_next_hop_treat_as_withdraw() {
    for nh in [a(0x40, 3, &[1, 2, 3]), a(0x80, 3, &[192, 0, 2, 1])] {
        let at = [origin(0), as_path4(&[65001]), nh].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
}

/// RFC 4271 §6.3 (via RFC 7606 §7.3): semantically invalid IPv4 next hops.
#[test]
fn rfc7606_7_3_invalid_next_hop_address_treat_as_withdraw() {
    for nh in [
        [0, 0, 0, 0],
        [127, 0, 0, 1],
        [224, 0, 0, 5],
        [239, 1, 1, 1],
        [240, 0, 0, 1],
        [255, 255, 255, 255],
        [192, 0, 2, 254], // our own address
    ] {
        let at = [origin(0), as_path4(&[65001]), next_hop(nh)].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
}

/// RFC 7606 §7.11: semantically invalid IPv6 next hops in MP_REACH.
#[test]
fn rfc7606_7_11_invalid_ipv6_next_hop_treat_as_withdraw() {
    let mut c = ebgp4();
    c.local_addr = Some(IpAddr::V6("2001:db8::fe".parse().unwrap()));
    for nh in ["::", "::1", "ff02::1", "2001:db8::fe"] {
        let at = [
            origin(0),
            as_path4(&[65001]),
            mp_reach_v6(nh.parse().unwrap(), None, &NLRI6),
        ]
        .concat();
        let d = dec(&body(&[], &at, &[]), &c);
        assert!(d.v6.announced.is_empty() && d.v6.attrs.is_none(), "{nh}");
        assert_eq!(d.v6.withdrawn, vec!["2001:db8:1::/48".parse().unwrap()]);
        assert!(d.warnings[0].contains("treat-as-withdraw"));
    }
}

/// RFC 4760 §3: a NEXT_HOP in an UPDATE without IPv4 NLRI is ignored, even malformed.
#[test]
fn rfc4760_next_hop_ignored_without_nlri() {
    let at = [
        origin(0),
        as_path4(&[65001]),
        a(0x40, 3, &[1]),
        mp_reach_v6(nh6(), None, &NLRI6),
    ]
    .concat();
    let d = dec(&body(&[], &at, &[]), &ebgp4());
    assert!(d.warnings.is_empty());
    assert_eq!(d.v6.announced.len(), 1);
}

/// RFC 7606 §7.4: MED of the wrong length.
#[test]
fn rfc7606_7_4_malformed_med_treat_as_withdraw() {
    let at = [base_attrs(), a(0x80, 4, &[0, 0, 1])].concat();
    assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
}

/// RFC 7606 §7.5: LOCAL_PREF malformed on iBGP; discarded from eBGP.
#[test]
fn rfc7606_7_5_local_pref() {
    let at = [base_attrs(), a(0x40, 5, &[0, 0, 1])].concat();
    assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ctx(true, false)));
    // From eBGP: discarded, even when malformed.
    for lp in [a(0x40, 5, &[0, 0, 0, 1]), a(0x40, 5, &[0, 0, 1])] {
        let at = [base_attrs(), lp].concat();
        let d = dec(&body(&[], &at, &NLRI), &ebgp4());
        assert_eq!(assert_ok_announce(&d).local_pref, None);
        assert_eq!(d.warnings.len(), 1);
    }
}

/// RFC 7606 §3 d: missing LOCAL_PREF on iBGP (well-known there) -> treat-as-withdraw.
#[test]
fn rfc7606_3d_missing_local_pref_ibgp_treat_as_withdraw() {
    assert_withdrawn(&dec(&body(&[], &base_attrs(), &NLRI), &ctx(true, false)));
}

/// RFC 7606 §7.6: ATOMIC_AGGREGATE with a non-zero length is discarded.
#[test]
fn rfc7606_7_6_atomic_aggregate_discarded() {
    let at = [base_attrs(), a(0x40, 6, &[1])].concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    assert!(!assert_ok_announce(&d).atomic_aggregate);
    assert!(d.warnings[0].contains("discarded"));
}

/// RFC 7606 §7.7: AGGREGATOR of the wrong length is discarded (6 on 2-octet sessions).
#[test]
fn rfc7606_7_7_aggregator_discarded() {
    let at = [base_attrs(), a(0xc0, 7, &[0, 1, 10, 0, 0, 1])].concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    assert_eq!(assert_ok_announce(&d).aggregator, None);
    assert_eq!(d.warnings.len(), 1);
    // 6 bytes is right on a 2-octet session.
    let at = [
        origin(0),
        as_path2(&[65001]),
        next_hop([192, 0, 2, 1]),
        a(0xc0, 7, &[0, 1, 10, 0, 0, 1]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &NLRI), &ctx(false, true));
    assert_eq!(
        assert_ok_announce(&d).aggregator,
        Some((1, Ipv4Addr::new(10, 0, 0, 1)))
    );
}

/// RFC 7606 §7.8: COMMUNITIES not a non-zero multiple of 4.
#[test]
fn rfc7606_7_8_malformed_communities_treat_as_withdraw() {
    for v in [&[0u8, 1, 0][..], &[]] {
        let at = [base_attrs(), a(0xc0, 8, v)].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
}

/// RFC 7606 §7.9/§7.10: ORIGINATOR_ID/CLUSTER_LIST malformed on iBGP; discarded from eBGP.
#[test]
fn rfc7606_7_9_7_10_originator_cluster_list() {
    let lp = a(0x40, 5, &[0, 0, 0, 100]);
    for bad in [a(0x80, 9, &[1, 2, 3]), a(0x80, 10, &[1, 2, 3, 4, 5])] {
        let at = [base_attrs(), lp.clone(), bad.clone()].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ctx(true, false)));
        let at = [base_attrs(), bad].concat();
        let d = dec(&body(&[], &at, &NLRI), &ebgp4());
        assert_ok_announce(&d);
        assert!(d.warnings[0].contains("eBGP"));
    }
    // Well-formed ones from eBGP are discarded too.
    let at = [base_attrs(), a(0x80, 9, &[1, 2, 3, 4])].concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    assert_eq!(assert_ok_announce(&d).originator_id, None);
}

/// RFC 7606 §7.14 / RFC 8092 §5: extended and large communities lengths.
#[test]
fn rfc7606_7_14_ext_and_large_communities_treat_as_withdraw() {
    for bad in [
        a(0xc0, 16, &[0; 7]),
        a(0xc0, 16, &[]),
        a(0xc0, 32, &[0; 13]),
        a(0xc0, 32, &[]),
        a(0x80, 32, &[0; 12]), // wrong flags (RFC 7606 §3 c)
    ] {
        let at = [base_attrs(), bad].concat();
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
}

/// RFC 7606 §3 d: missing well-known mandatory attributes when NLRI is present.
#[test]
fn rfc7606_3d_missing_mandatory_treat_as_withdraw() {
    let (o, p, n) = (origin(0), as_path4(&[65001]), next_hop([192, 0, 2, 1]));
    for at in [
        [p.clone(), n.clone()].concat(),
        [o.clone(), n.clone()].concat(),
        [o.clone(), p.clone()].concat(),
        vec![],
    ] {
        assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
    }
    // No NLRI at all: nothing is mandatory.
    let d = dec(&body(&[24, 10, 0, 0], &o, &[]), &ebgp4());
    assert!(d.warnings.is_empty());
    assert_eq!(d.v4.withdrawn, vec![p4("10.0.0.0/24")]);
    // IPv6 only (MP_REACH): NEXT_HOP is not required, ORIGIN is.
    let at = [p, mp_reach_v6(nh6(), None, &NLRI6)].concat();
    let d = dec(&body(&[], &at, &[]), &ebgp4());
    assert_eq!(d.v6.withdrawn.len(), 1);
    assert!(d.v6.announced.is_empty());
}

/// RFC 7606 §2: treat-as-withdraw covers both the NLRI field and MP_REACH, and keeps withdrawals.
#[test]
fn rfc7606_2_treat_as_withdraw_covers_mp_reach() {
    let at = [
        origin(9),
        as_path4(&[65001]),
        next_hop([192, 0, 2, 1]),
        mp_reach_v6(nh6(), None, &NLRI6),
    ]
    .concat();
    let d = dec(&body(&[16, 172, 16], &at, &NLRI), &ebgp4());
    assert_eq!(
        d.v4.withdrawn,
        vec![p4("172.16.0.0/16"), p4("10.0.0.0/8"), p4("198.51.100.0/24")]
    );
    assert_eq!(d.v6.withdrawn, vec!["2001:db8:1::/48".parse().unwrap()]);
    assert!(d.v4.announced.is_empty() && d.v6.announced.is_empty());
}

/// RFC 7606 §3 c: a known optional attribute with the wrong flags is malformed.
#[test]
fn rfc7606_3c_wrong_flags_communities_treat_as_withdraw() {
    let at = [base_attrs(), a(0x80, 8, &[0, 0, 0, 1])].concat();
    assert_withdrawn(&dec(&body(&[], &at, &NLRI), &ebgp4()));
}

#[test]
fn extended_length_flag_accepted_on_any_attribute() {
    let at = [
        a(0x50, 1, &[0]),
        a(0x50, 2, &[2, 1, 0, 0, 0, 1]),
        a(0x50, 3, &[192, 0, 2, 1]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    assert!(d.warnings.is_empty());
    assert_ok_announce(&d);
}

// ---------- MP families ----------

/// RFC 4760 §7: MP for a family not negotiated / unknown is ignored (documented choice).
#[test]
fn mp_not_negotiated_or_unknown_family_ignored() {
    let mut c = ebgp4();
    c.afis = [true, false];
    let at = [origin(0), as_path4(&[1]), mp_reach_v6(nh6(), None, &NLRI6)].concat();
    let d = dec(&body(&[], &at, &[]), &c);
    assert!(d.v6.announced.is_empty() && d.v6.withdrawn.is_empty());
    assert_eq!(d.warnings.len(), 1);
    // AFI 1 SAFI 128 (VPN): unknown, ignored without parsing.
    let at = [
        origin(0),
        as_path4(&[1]),
        a(0x80, 14, &[0, 1, 128, 3, 1, 2, 3, 0, 99]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &[]), &ebgp4());
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(
        d,
        DecodedUpdate {
            warnings: d.warnings.clone(),
            ..Default::default()
        }
    );
}

#[test]
fn mp_reach_ipv4_unicast() {
    let mut v = vec![0, 1, 1, 4, 192, 0, 2, 7, 0];
    v.extend_from_slice(&NLRI);
    let at = [origin(0), as_path4(&[65001]), a(0x80, 14, &v)].concat();
    let d = dec(&body(&[], &at, &[]), &ebgp4());
    let at = assert_ok_announce(&d);
    assert_eq!(at.next_hop, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
}

#[test]
fn both_families_in_one_update_get_separate_attrs() {
    let at = [base_attrs(), mp_reach_v6(nh6(), None, &NLRI6)].concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    let a4 = assert_ok_announce(&d);
    let a6 = d.v6.attrs.clone().unwrap();
    assert_eq!(a4.next_hop, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    assert_eq!(a6.next_hop, Some(IpAddr::V6(nh6())));
    assert_eq!(a4.as_path, a6.as_path);
}

// ---------- End-of-RIB ----------

#[test]
fn end_of_rib_detection() {
    let d = dec(&[0, 0, 0, 0], &ebgp4());
    assert_eq!(d.end_of_rib, Some(Afi::Ipv4));
    for afi in Afi::ALL {
        let m = encode_end_of_rib(afi);
        let (ty, len) = check_header(&m, MAX_MSG_LEN).unwrap();
        assert_eq!((ty, len), (msg::UPDATE, m.len()));
        let d = dec(&m[HEADER_LEN..], &ebgp4());
        assert_eq!(d.end_of_rib, Some(afi));
        assert!(d.warnings.is_empty());
    }
    // MP_UNREACH with prefixes: not EoR; MP_UNREACH plus another attribute: not EoR.
    let d = dec(&body(&[], &a(0x80, 15, &[0, 2, 1, 0]), &[]), &ebgp4());
    assert_eq!(d.end_of_rib, None);
    assert_eq!(d.v6.withdrawn, vec!["::/0".parse().unwrap()]);
    let at = [origin(0), a(0x80, 15, &[0, 2, 1])].concat();
    assert_eq!(dec(&body(&[], &at, &[]), &ebgp4()).end_of_rib, None);
    // A withdraw-only UPDATE is not EoR.
    assert_eq!(dec(&body(&[8, 10], &[], &[]), &ebgp4()).end_of_rib, None);
}

// ---------- AS4 (RFC 6793) ----------

fn seq(asns: &[u32]) -> AsSegment {
    AsSegment {
        kind: AS_SEQUENCE,
        asns: asns.to_vec(),
    }
}

fn set(asns: &[u32]) -> AsSegment {
    AsSegment {
        kind: AS_SET,
        asns: asns.to_vec(),
    }
}

/// AS_PATH segments as on the wire, with 4-octet ASNs or (`as4` false) 2-octet.
fn segments(segs: &[AsSegment], as4: bool) -> Vec<u8> {
    let mut v = vec![];
    for s in segs {
        v.push(s.kind);
        v.push(s.asns.len() as u8);
        for &x in &s.asns {
            if as4 {
                v.extend_from_slice(&x.to_be_bytes());
            } else {
                v.extend_from_slice(&(x as u16).to_be_bytes());
            }
        }
    }
    v
}

fn as4_path_attr(segs: &[AsSegment]) -> Vec<u8> {
    a(0xc0, 17, &segments(segs, true))
}

fn as2_path_attr(segs: &[AsSegment]) -> Vec<u8> {
    a(0x40, 2, &segments(segs, false))
}

fn decode_2octet(as_path: &[AsSegment], extra: &[u8]) -> DecodedUpdate {
    let at = [
        origin(0),
        as2_path_attr(as_path),
        next_hop([192, 0, 2, 1]),
        extra.to_vec(),
    ]
    .concat();
    dec(&body(&[], &at, &NLRI), &ctx(false, true))
}

const T: u32 = AS_TRANS;

/// [`decode_2octet`], asserting that the UPDATE is an announcement with
/// AS_PATH `want` (after the RFC 6793 merge).
fn decode_2octet_path(as_path: &[AsSegment], extra: &[u8], want: AsPath) -> DecodedUpdate {
    let d = decode_2octet(as_path, extra);
    assert_eq!(assert_ok_announce(&d).as_path, want);
    d
}

/// RFC 6793 §4.2.3: AS_PATH and AS4_PATH of equal length: AS4_PATH is the path.
#[test]
fn rfc6793_4_2_3_merge_equal_length() {
    decode_2octet_path(
        &[seq(&[65001, T, T])],
        &as4_path_attr(&[seq(&[65001, 4_200_000_000, 131072])]),
        AsPath::sequence(&[65001, 4_200_000_000, 131072]),
    );
}

/// RFC 6793 §4.2.3: an OLD speaker prepended ASNs: leading AS_PATH entries are kept.
#[test]
fn rfc6793_4_2_3_merge_old_speaker_prepended() {
    decode_2octet_path(
        &[seq(&[65010, 65011, 65001, T])],
        &as4_path_attr(&[seq(&[65001, 4_200_000_000])]),
        AsPath::sequence(&[65010, 65011, 65001, 4_200_000_000]),
    );
}

/// RFC 6793 §4.2.3: AS4_PATH longer than AS_PATH is ignored.
#[test]
fn rfc6793_4_2_3_as4_path_longer_ignored() {
    let d = decode_2octet_path(
        &[seq(&[65001, T])],
        &as4_path_attr(&[seq(&[1, 2, 3])]),
        AsPath::sequence(&[65001, T]),
    );
    assert_eq!(d.warnings.len(), 1);
}

/// RFC 6793 §4.2.3: an AS_SET counts as one ASN.
#[test]
fn rfc6793_4_2_3_as_set_counts_one() {
    // AS_PATH: SEQ(65010 T) SET(T 65020) = 3; AS4_PATH: SEQ(4200000000) SET(4200000001 65020) = 2.
    decode_2octet_path(
        &[seq(&[65010, T]), set(&[T, 65020])],
        &as4_path_attr(&[seq(&[4_200_000_000]), set(&[4_200_000_001, 65020])]),
        AsPath(vec![
            seq(&[65010, 4_200_000_000]),
            set(&[4_200_000_001, 65020]),
        ]),
    );
    // merge_as4_path directly: an AS_SET prepended whole.
    let m = merge_as4_path(
        &AsPath(vec![set(&[1, 2]), seq(&[T])]),
        &AsPath(vec![seq(&[4_200_000_000])]),
    );
    assert_eq!(m, AsPath(vec![set(&[1, 2]), seq(&[4_200_000_000])]));
}

/// RFC 6793 §4.2.3: leading confederation segments are kept; confed segments in
/// AS4_PATH are dropped (§6).
#[test]
fn rfc6793_confed_segments() {
    let confed = AsSegment {
        kind: AS_CONFED_SEQUENCE,
        asns: vec![64512],
    };
    let m = merge_as4_path(
        &AsPath(vec![confed.clone(), seq(&[65001, T])]),
        &AsPath(vec![seq(&[65001, 4_200_000_000])]),
    );
    assert_eq!(
        m,
        AsPath(vec![confed.clone(), seq(&[65001, 4_200_000_000])])
    );
    // iBGP 2-octet session, AS4_PATH carrying a confed segment.
    let at = [
        origin(0),
        as2_path_attr(&[seq(&[65001, T])]),
        next_hop([192, 0, 2, 1]),
        a(0x40, 5, &[0, 0, 0, 100]),
        as4_path_attr(&[confed, seq(&[65001, 4_200_000_000])]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &NLRI), &ctx(false, false));
    assert_eq!(
        assert_ok_announce(&d).as_path,
        AsPath::sequence(&[65001, 4_200_000_000])
    );
}

/// RFC 6793 §4.2.3: AS4_AGGREGATOR used only when AGGREGATOR is AS_TRANS;
/// otherwise AS4_PATH and AS4_AGGREGATOR are both ignored.
#[test]
fn rfc6793_4_2_3_aggregator_rules() {
    let agg_trans = a(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]);
    let as4_agg = a(0xc0, 18, &[0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 2]);
    let as4p = as4_path_attr(&[seq(&[65001, 4_200_000_000])]);
    let d = decode_2octet(
        &[seq(&[65001, T])],
        &[agg_trans, as4_agg.clone(), as4p.clone()].concat(),
    );
    let at = assert_ok_announce(&d);
    assert_eq!(
        at.aggregator,
        Some((4_200_000_000, Ipv4Addr::new(10, 0, 0, 2)))
    );
    assert_eq!(at.as_path, AsPath::sequence(&[65001, 4_200_000_000]));

    let agg_small = a(0xc0, 7, &[0xfd, 0xe9, 10, 0, 0, 1]);
    let d = decode_2octet(&[seq(&[65001, T])], &[agg_small, as4_agg, as4p].concat());
    let at = assert_ok_announce(&d);
    assert_eq!(at.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(at.as_path, AsPath::sequence(&[65001, T]));
}

/// RFC 6793 §4.2.3: AGGREGATOR and AS4_AGGREGATOR both received, AGGREGATOR
/// AS_TRANS: AS4_AGGREGATOR is the aggregator and AS4_PATH is merged even when
/// AS4_PATH is shorter (an OLD speaker prepended).
#[test]
fn rfc6793_4_2_3_aggregator_as_trans_with_as4_aggregator_merges() {
    let agg_trans = a(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]);
    let as4_agg = a(0xc0, 18, &[0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 2]);
    let d = decode_2octet_path(
        &[seq(&[65010, 65001, T])],
        &[
            agg_trans,
            as4_agg,
            as4_path_attr(&[seq(&[65001, 4_200_000_000])]),
        ]
        .concat(),
        AsPath::sequence(&[65010, 65001, 4_200_000_000]),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

/// RFC 6793 §4.2.3: an AGGREGATOR that is not AS_TRANS without AS4_AGGREGATOR
/// does not stop the AS4_PATH merge (only "both received" does); the
/// AGGREGATOR is kept.
#[test]
fn rfc6793_4_2_3_aggregator_without_as4_aggregator_merges() {
    let agg_small = a(0xc0, 7, &[0xfd, 0xe9, 10, 0, 0, 1]);
    let d = decode_2octet_path(
        &[seq(&[65001, T])],
        &[agg_small, as4_path_attr(&[seq(&[65001, 4_200_000_000])])].concat(),
        AsPath::sequence(&[65001, 4_200_000_000]),
    );
    let at = assert_ok_announce(&d);
    assert_eq!(at.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    // AGGREGATOR AS_TRANS without AS4_AGGREGATOR: kept as is, path merged.
    let agg_trans = a(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]);
    let d = decode_2octet_path(
        &[seq(&[65001, T])],
        &[agg_trans, as4_path_attr(&[seq(&[65001, 4_200_000_000])])].concat(),
        AsPath::sequence(&[65001, 4_200_000_000]),
    );
    let at = assert_ok_announce(&d);
    assert_eq!(at.aggregator, Some((T, Ipv4Addr::new(10, 0, 0, 1))));
}

/// Issue 8 defect 8: a real 2010 RIS UPDATE from a 2-octet peer with an
/// AGGREGATOR for AS 1234 (no AS4_AGGREGATOR). BIRD holds
/// `5385 3356 2914 4230 262685`: AS4_PATH must be merged.
#[test]
fn rfc6793_4_2_3_ris_update_with_aggregator_merges_as4_path() {
    const MSG: &str = "ffffffffffffffffffffffffffffffff005302000000384001010040020c\
        020515090d1c0b6210865ba0400304c1cb0058c0070604d2c0000201e01112020400000d1c\
        00000b62000010860004021d14bb7820";
    let msg: Vec<u8> = (0..MSG.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&MSG[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(msg.len(), 0x53);
    let d = dec(&msg[19..], &ctx(false, true));
    assert_eq!(d.v4.announced, vec![p4("187.120.32.0/20")]);
    let at = d.v4.attrs.clone().expect("attrs");
    assert_eq!(
        at.as_path,
        AsPath::sequence(&[5385, 3356, 2914, 4230, 262_685])
    );
    assert_eq!(at.aggregator, Some((1234, Ipv4Addr::new(192, 0, 2, 1))));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

/// RFC 6793 §4.1: AS4_PATH/AS4_AGGREGATOR from a 4-octet session are discarded.
#[test]
fn rfc6793_4_1_as4_attrs_discarded_on_as4_session() {
    let at = [
        base_attrs(),
        as4_path_attr(&[seq(&[1, 2, 3])]),
        a(0xc0, 18, &[0, 0, 0, 1, 10, 0, 0, 1]),
    ]
    .concat();
    let d = dec(&body(&[], &at, &NLRI), &ebgp4());
    let at = assert_ok_announce(&d);
    assert_eq!(at.as_path, AsPath::sequence(&[65001, 65002]));
    assert!(at.other.is_empty());
    assert_eq!(d.warnings.len(), 2);
}

/// RFC 6793 §6 / RFC 7606 §7.x: malformed AS4_PATH / AS4_AGGREGATOR are discarded.
#[test]
fn rfc6793_6_malformed_as4_attrs_discarded() {
    let d = decode_2octet_path(
        &[seq(&[65001, T])],
        &[a(0xc0, 17, &[2, 2, 0, 0, 0, 1]), a(0xc0, 18, &[0, 0, 1])].concat(),
        AsPath::sequence(&[65001, T]),
    );
    assert_eq!(d.warnings.len(), 2);
}

// ---------- encoding ----------

fn encode_ctx(as4: bool, max_len: usize) -> EncodeCtx {
    EncodeCtx { as4, max_len }
}

/// [`encode_announce`] into a fresh buffer.
fn announce(ectx: &EncodeCtx, afi: Afi, prefixes: &[Prefix], attrs: &PathAttrs) -> Vec<u8> {
    let mut out = vec![];
    encode_announce(ectx, afi, prefixes, attrs, &mut out);
    out
}

#[test]
fn announce_v4_round_trip_many_messages() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let prefixes = many_v4(3000);
    let attrs = full_attrs();
    let out = announce(&ectx, Afi::Ipv4, &prefixes, &attrs);
    let bodies = split(&out, MAX_MSG_LEN);
    assert!(bodies.len() >= 3, "{}", bodies.len());
    let (a4, ..) = collect(&bodies, &ebgp4());
    assert_eq!(a4, prefixes);
    let d = dec(bodies[0], &ebgp4());
    let mut want = attrs.clone();
    want.other[0].flags = 0xe0; // Partial set on the way out
    assert_eq!(*d.v4.attrs.unwrap(), want);
}

#[test]
fn announce_v6_round_trip_many_messages_with_link_local() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let prefixes = many_v6(2000);
    let mut attrs = full_attrs();
    attrs.next_hop = Some(IpAddr::V6(nh6()));
    attrs.next_hop_ll = Some("fe80::1".parse().unwrap());
    attrs.local_pref = Some(100);
    let mut out = vec![];
    let n = try_encode_announce(&ectx, Afi::Ipv6, &prefixes, &attrs, &mut out).unwrap();
    let bodies = split(&out, MAX_MSG_LEN);
    assert_eq!(n, bodies.len());
    assert!(n >= 3);
    let (_, _, a6, ..) = collect(&bodies, &ctx(true, false));
    assert_eq!(a6, prefixes);
    let d = dec(bodies[1], &ctx(true, false));
    assert_eq!(*d.v6.attrs.unwrap(), attrs);
}

#[test]
fn announce_extended_message_fits_in_one() {
    let ectx = encode_ctx(true, MAX_EXT_MSG_LEN);
    let prefixes = many_v4(10_000);
    let out = announce(&ectx, Afi::Ipv4, &prefixes, &full_attrs());
    let bodies = split(&out, MAX_EXT_MSG_LEN);
    assert_eq!(bodies.len(), 1);
    // And with 65535 MP_REACH gets the Extended Length flag.
    let mut attrs = full_attrs();
    attrs.next_hop = Some(IpAddr::V6(nh6()));
    let out = announce(&ectx, Afi::Ipv6, &many_v6(5000), &attrs);
    let bodies = split(&out, MAX_EXT_MSG_LEN);
    let (_, _, a6, ..) = collect(&bodies, &ebgp4());
    assert_eq!(a6.len(), 5000);
}

#[test]
fn announce_2octet_as_trans_and_as4_path_round_trip() {
    let ectx = encode_ctx(false, MAX_MSG_LEN);
    let attrs = full_attrs();
    let out = announce(&ectx, Afi::Ipv4, &many_v4(10), &attrs);
    let bodies = split(&out, MAX_MSG_LEN);
    assert_eq!(bodies.len(), 1);
    // On the wire: AS_PATH has AS_TRANS, AS4_PATH and AS4_AGGREGATOR present.
    let d = dec(bodies[0], &ctx(false, true));
    let got = d.v4.attrs.unwrap();
    assert_eq!(got.as_path, attrs.as_path);
    assert_eq!(got.aggregator, attrs.aggregator);
    // Raw check: find AS_PATH bytes in the message.
    let b = bodies[0];
    let as_path_2 = [
        0x40, 2, 14, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x0d, 0x1c, 1, 2, 0xfc, 0x00, 0x5b, 0xa0,
    ];
    assert!(b.windows(as_path_2.len()).any(|w| w == as_path_2));
    assert!(b.windows(2).any(|w| w == [0xc0, 17]));
    assert!(b.windows(2).any(|w| w == [0xc0, 18]));
}

#[test]
fn announce_2octet_small_asns_has_no_as4_path() {
    let ectx = encode_ctx(false, MAX_MSG_LEN);
    let attrs = PathAttrs {
        as_path: AsPath::sequence(&[65001, 3356]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    let out = announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs);
    let b = &out[HEADER_LEN..];
    // ORIGIN, AS_PATH (2-octet, SEQUENCE = type 2), NEXT_HOP, NLRI — byte for byte.
    let want = [
        0, 0, 0, 20, 0x40, 1, 1, 0, 0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x0d, 0x1c, 0x40, 3, 4, 192, 0,
        2, 1, 8, 10,
    ];
    assert_eq!(b, want);
    let d = dec(b, &ctx(false, true));
    assert_eq!(*d.v4.attrs.unwrap(), attrs);
}

#[test]
fn as_sequence_type_2_as_set_type_1_and_long_segments_split() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let long: Vec<u32> = (1..=600).collect();
    let attrs = PathAttrs {
        as_path: AsPath(vec![seq(&long), set(&[7, 8])]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    let out = announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs);
    let b = &out[HEADER_LEN..];
    // AS_PATH: Extended Length, 3 SEQUENCE segments (255+255+90) then a SET.
    assert_eq!(&b[8..10], &[0x50, 2]);
    let len = u16::from_be_bytes([b[10], b[11]]) as usize;
    assert_eq!(len, 3 * 2 + 600 * 4 + 2 + 8);
    assert_eq!(&b[12..14], &[2, 255]);
    assert_eq!(b[12 + 2 + 255 * 4], 2);
    assert_eq!(&b[12 + 2 * (2 + 255 * 4)..][..2], &[2, 90]);
    assert_eq!(&b[12 + len - 10..][..2], &[1, 2]);
    let d = dec(b, &ebgp4());
    let p = &d.v4.attrs.unwrap().as_path;
    assert_eq!(p.iter_asns().count(), 602);
    assert_eq!(p.path_len(), 601);
}

#[test]
fn other_attributes_on_export() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let mut attrs = PathAttrs {
        as_path: AsPath::sequence(&[1]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    attrs.other = vec![
        RawAttr {
            flags: 0xc0,
            code: 40,
            value: vec![1; 300].into(),
        },
        RawAttr {
            flags: 0x80,
            code: 26,
            value: vec![1; 11].into(),
        },
        RawAttr {
            flags: 0xc0,
            code: 8,
            value: vec![1; 4].into(),
        },
        RawAttr {
            flags: 0xc0,
            code: 12,
            value: vec![5].into(),
        },
    ];
    let out = announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs);
    let d = dec(&out[HEADER_LEN..], &ebgp4());
    let got = d.v4.attrs.unwrap();
    assert_eq!(
        got.other,
        vec![
            RawAttr {
                flags: 0xe0,
                code: 12,
                value: vec![5].into()
            },
            RawAttr {
                flags: 0xe0,
                code: 40,
                value: vec![1; 300].into()
            },
        ]
    );
    assert!(got.communities.is_empty());
}

#[test]
fn announce_errors_append_nothing() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let mut out = vec![];
    let attrs = PathAttrs::default();
    assert_eq!(
        try_encode_announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs, &mut out),
        Err(EncodeError::NextHop(Afi::Ipv4))
    );
    let attrs = PathAttrs {
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        communities: vec![1; 1100],
        ..Default::default()
    };
    assert!(matches!(
        try_encode_announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs, &mut out),
        Err(EncodeError::TooLarge(..))
    ));
    encode_announce(&ectx, Afi::Ipv4, &[p4("10.0.0.0/8")], &attrs, &mut out);
    assert!(out.is_empty());
    // IPv4 next hop for IPv6 NLRI: IPv4-mapped.
    encode_announce(&ectx, Afi::Ipv6, &many_v6(1), &attrs_v4nh(), &mut out);
    let d = dec(&out[HEADER_LEN..], &ebgp4());
    assert_eq!(
        d.v6.attrs.unwrap().next_hop,
        Some(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()))
    );
}

fn attrs_v4nh() -> PathAttrs {
    PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::sequence(&[1]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    }
}

#[test]
fn withdraw_round_trip_v4_v6_many_messages() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let v4 = many_v4(5000);
    let v6 = many_v6(3000);
    let mut out = vec![];
    encode_withdraw(&ectx, Afi::Ipv4, &v4, &mut out);
    encode_withdraw(&ectx, Afi::Ipv6, &v6, &mut out);
    encode_withdraw(&ectx, Afi::Ipv6, &[], &mut out);
    let bodies = split(&out, MAX_MSG_LEN);
    assert!(bodies.len() >= 10);
    let (a4, w4, a6, w6, all) = collect(&bodies, &ebgp4());
    assert!(a4.is_empty() && a6.is_empty());
    assert_eq!(w4, v4);
    assert_eq!(w6, v6);
    assert!(all.iter().all(|d| d.end_of_rib.is_none()));
    // Small max_len still makes progress.
    let mut out = vec![];
    let ectx = encode_ctx(true, 0);
    encode_withdraw(&ectx, Afi::Ipv6, &many_v6(3), &mut out);
    // Room for one /128 per message: two /48s fit.
    assert_eq!(split(&out, MAX_MSG_LEN).len(), 2);
}

// ---------- robustness ----------

fn valid_messages() -> Vec<Vec<u8>> {
    let mut msgs = vec![];
    for as4 in [true, false] {
        let ectx = EncodeCtx { as4, max_len: 600 };
        let mut out = announce(&ectx, Afi::Ipv4, &many_v4(40), &full_attrs());
        let mut a6 = full_attrs();
        a6.next_hop = Some(IpAddr::V6(nh6()));
        a6.next_hop_ll = Some("fe80::2".parse().unwrap());
        encode_announce(&ectx, Afi::Ipv6, &many_v6(20), &a6, &mut out);
        encode_withdraw(&ectx, Afi::Ipv6, &many_v6(20), &mut out);
        encode_withdraw(&ectx, Afi::Ipv4, &many_v4(20), &mut out);
        for b in split(&out, 600) {
            msgs.push(b.to_vec());
        }
    }
    msgs
}

fn all_ctxs() -> Vec<UpdateCtx> {
    let mut v = vec![];
    for as4 in [true, false] {
        for ebgp in [true, false] {
            v.push(ctx(as4, ebgp));
        }
    }
    v
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn decode_update_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            for c in all_ctxs() {
                let _ = decode_update(&b, &c);
            }
        }

        #[test]
        fn decode_update_mutated_valid_never_panics(
            idx in 0usize..64,
            muts in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
            cut in any::<u16>(),
        ) {
            let msgs = valid_messages();
            let mut m = msgs[idx % msgs.len()].clone();
            for (pos, val) in muts {
                let i = pos as usize % m.len();
                m[i] = val;
            }
            if cut % 4 == 0 {
                m.truncate(cut as usize % (m.len() + 1));
            }
            for c in all_ctxs() {
                if let Ok(d) = decode_update(&m, &c) {
                    // Output is bounded by the input.
                    let n = d.v4.announced.len() + d.v4.withdrawn.len()
                        + d.v6.announced.len() + d.v6.withdrawn.len();
                    prop_assert!(n <= m.len());
                }
            }
        }

        #[test]
        fn other_decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_open(&b);
            let _ = decode_notification(&b);
            let _ = decode_route_refresh(&b);
            let _ = check_header(&b, MAX_EXT_MSG_LEN);
        }

        #[test]
        fn announce_round_trip_arbitrary_prefixes(
            v4 in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..300),
            v6 in proptest::collection::vec((any::<u128>(), 0u8..=128), 0..300),
            as4 in any::<bool>(),
            path in proptest::collection::vec(any::<u32>(), 1..20),
        ) {
            let ectx = EncodeCtx { as4, max_len: MAX_MSG_LEN };
            let p4: Vec<Prefix> = v4.iter().map(|&(a, l)| Prefix::v4(a, l).unwrap()).collect();
            let p6: Vec<Prefix> = v6.iter().map(|&(a, l)| Prefix::v6(a, l).unwrap()).collect();
            let mut attrs = attrs_v4nh();
            attrs.as_path = AsPath::sequence(&path);
            let mut out = announce(&ectx, Afi::Ipv4, &p4, &attrs);
            attrs.next_hop = Some(IpAddr::V6(nh6()));
            encode_announce(&ectx, Afi::Ipv6, &p6, &attrs, &mut out);
            let c = ctx(as4, true);
            let (a4, _, a6, _, all) = collect(&split(&out, MAX_MSG_LEN), &c);
            prop_assert_eq!(a4, p4);
            prop_assert_eq!(a6, p6);
            for d in all {
                let at = d.v4.attrs.or(d.v6.attrs).unwrap();
                prop_assert_eq!(&at.as_path, &attrs.as_path);
            }
        }
    }
}

/// Decode cost sanity check (run with `--ignored --nocapture` in release).
#[test]
#[ignore]
fn decode_speed() {
    let ectx = encode_ctx(true, MAX_MSG_LEN);
    let out = announce(&ectx, Afi::Ipv4, &many_v4(200_000), &full_attrs());
    let bodies = split(&out, MAX_MSG_LEN);
    let c = ebgp4();
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..10 {
        for b in &bodies {
            n += decode_update(b, &c).unwrap().v4.announced.len();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{ns:.1} ns/prefix (bulk)");
    // One prefix per UPDATE, the worst case for per-message overhead.
    let one_per_update = |attrs: &PathAttrs, what: &str| {
        let mut small = vec![];
        for p in many_v4(100_000) {
            encode_announce(&ectx, Afi::Ipv4, &[p], attrs, &mut small);
        }
        let bodies = split(&small, MAX_MSG_LEN);
        let t = std::time::Instant::now();
        for b in &bodies {
            std::hint::black_box(decode_update(b, &c).unwrap());
        }
        let ns = t.elapsed().as_nanos() as f64 / bodies.len() as f64;
        println!("{ns:.1} ns/UPDATE with one prefix, {what}");
    };
    one_per_update(&full_attrs(), "every attribute kind");
    let typical = PathAttrs {
        as_path: AsPath::sequence(&[65001, 3356, 1299, 13335]),
        med: Some(10),
        communities: vec![0xfde9_0001, 0xfde9_0002],
        ..attrs_v4nh()
    };
    one_per_update(&typical, "typical attributes");
}

/// Write seed inputs for the `decode` fuzz target (a selector byte, then a
/// stream of complete messages) to `$SPARROW_FUZZ_SEEDS`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("SPARROW_FUZZ_SEEDS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let mut seeds: Vec<Vec<u8>> = vec![];
    for m in valid_messages() {
        let mut s = vec![0u8];
        let st = start_msg(&mut s, msg::UPDATE);
        s.extend_from_slice(&m);
        finish_msg(&mut s, st);
        seeds.push(s);
    }
    let mut s = vec![1u8];
    s.extend_from_slice(&encode_open(&super::tests::full_open()));
    s.extend_from_slice(&encode_keepalive());
    s.extend_from_slice(&encode_route_refresh(Afi::Ipv6));
    s.extend_from_slice(&encode_end_of_rib(Afi::Ipv6));
    s.extend_from_slice(&encode_notification(&Notification {
        code: 6,
        subcode: 2,
        data: b"\x03bye".to_vec(),
    }));
    seeds.push(s);
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(format!("{dir}/seed-{i:03}"), s).unwrap();
    }
}
