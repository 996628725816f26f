//! Steering tests: ranking, LPM, compression, fallback, a property test
//! against brute force over the Loc-RIB, and publishing through `rib::run_with`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tokio::sync::mpsc;

use super::lpm::{self, Addr, Lpm};
use super::*;
use crate::config::{self, Config};
use crate::rib::{
    self, select_best, thread_cpu_time as cpu, RibMsg, RibStats, SessionCmd, SessionInfo,
};
use crate::testutil::{ip, mix, peer_up, session_info, TestConfig};
use crate::types::{AsPath, Origin, PathAttrs, PeerId, RouteChange};

// POPs: x (local, 65001), y (65002), z (65003), w (65004).
const X: PopIdx = 0;
const Y: PopIdx = 1;
const Z: PopIdx = 2;
const W: PopIdx = 3;
// Peers.
const UP1: PeerId = 0; // upstream, eBGP 64510
const UP2: PeerId = 1; // upstream, eBGP 64511
const UP3: PeerId = 2; // upstream, iBGP
const PY: PeerId = 3; // pop y
const PZ: PeerId = 4; // pop z
const PY2: PeerId = 5; // a second session to pop y
const PW: PeerId = 6; // pop w

const POP_ASNS: [u32; 4] = [65001, 65002, 65003, 65004];

/// POPs x, y, z, w and the peers above.
fn test_config() -> Config {
    TestConfig::two_pops()
        .pop("z", 65003)
        .pop("w", 65004)
        .peers(&[
            "{name: up1, address: 10.0.0.1, remote_asn: 64510, role: upstream}",
            "{name: up2, address: 10.0.0.2, remote_asn: 64511, role: upstream}",
            "{name: up3, address: 10.0.0.3, remote_asn: 65001, role: upstream}",
            "{name: py, address: 10.0.1.2, remote_asn: 65002, role: pop}",
            "{name: pz, address: 10.0.1.3, remote_asn: 65003, role: pop}",
            "{name: py2, address: 10.0.1.4, remote_asn: 65002, role: pop}",
            "{name: pw, address: 10.0.1.5, remote_asn: 65004, role: pop}",
        ])
        .build()
}

/// [`session_info`] without forwarding state preserved.
fn info(cfg: &Config, peer: PeerId) -> SessionInfo {
    SessionInfo {
        gr_preserved: [false, false],
        ..session_info(cfg, peer)
    }
}

/// A RIB with every peer up (the session receivers are kept in the Vec).
fn rib_all_up(cfg: &Arc<Config>) -> (rib::Rib, Vec<mpsc::UnboundedReceiver<SessionCmd>>) {
    let mut rib = rib::Rib::new(cfg.clone(), Arc::new(RibStats::default()), None);
    let mut rxs = Vec::new();
    for p in 0..cfg.peers.len() as PeerId {
        rxs.push(peer_up(&mut rib, p, info(cfg, p)));
    }
    (rib, rxs)
}

/// The test config and a RIB with every peer up.
struct Fixture {
    cfg: Arc<Config>,
    rib: rib::Rib,
    _sessions: Vec<mpsc::UnboundedReceiver<SessionCmd>>,
}

impl Fixture {
    fn new() -> Fixture {
        let cfg = Arc::new(test_config());
        let (rib, _sessions) = rib_all_up(&cfg);
        Fixture {
            cfg,
            rib,
            _sessions,
        }
    }

    /// `peer` announces `p` with AS_PATH `path`.
    fn announce(&mut self, peer: PeerId, p: Prefix, path: &[u32]) {
        self.rib.handle(announce_msg(peer, p, attrs(path, None)));
    }

    fn build(&self, generation: u64) -> Snapshot {
        build(&self.rib, &self.cfg, generation)
    }

    /// The ranking for `addr` in a snapshot built now as `generation`.
    fn ranking(&self, generation: u64, addr: &str) -> Vec<PopIdx> {
        select(ip(addr), &self.build(generation)).ranking.to_vec()
    }
}

fn attrs(path: &[u32], med: Option<u32>) -> Arc<PathAttrs> {
    Arc::new(PathAttrs {
        as_path: AsPath::sequence(path),
        next_hop: Some("10.9.9.9".parse().unwrap()),
        med,
        ..Default::default()
    })
}

fn announce_msg(peer: PeerId, p: Prefix, a: Arc<PathAttrs>) -> RibMsg {
    RibMsg::Update {
        peer,
        afi: p.afi(),
        change: RouteChange {
            withdrawn: vec![],
            announced: vec![p],
            attrs: Some(a),
        },
    }
}

fn withdraw_msg(peer: PeerId, p: Prefix) -> RibMsg {
    RibMsg::Update {
        peer,
        afi: p.afi(),
        change: RouteChange {
            withdrawn: vec![p],
            announced: vec![],
            attrs: None,
        },
    }
}

fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn names(d: &Decision) -> Vec<String> {
    d.names().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------

#[test]
fn ranking_by_best_path_per_pop() {
    let mut f = Fixture::new();
    let p = pfx("192.0.2.0/24");
    // Local upstream: 3 ASNs; y: 2 (65002 + 1); z: 4; w: nothing.
    f.announce(UP1, p, &[64510, 3356, 13335]);
    f.announce(PY, p, &[65002, 13335]);
    f.announce(PZ, p, &[65003, 1, 2, 13335]);
    let s = f.build(1);
    let d = select(ip("192.0.2.77"), &s);
    assert_eq!(d.ranking, &[Y, X, Z, W]);
    assert_eq!(names(&d), ["y", "x", "z", "w"]);
    assert_eq!(d.prefix, Some(p));
    assert_eq!(d.source, Source::Rib);
    assert_eq!(d.generation, 1);
    // The rule on the Loc-RIB best path agrees.
    let (peer, a) = f.rib.best(&p).unwrap();
    assert_eq!(peer, PY);
    assert_eq!(
        Ranker::new(&f.cfg).rule_pop(a.as_path.iter_asns()),
        d.first()
    );

    // y withdraws: the local upstream path wins, then z, then y and w (no path) in config order.
    f.rib.handle(withdraw_msg(PY, p));
    assert_eq!(f.ranking(2, "192.0.2.1"), [X, Z, Y, W]);
}

#[test]
fn stale_paths_rank_as_if_fresh() {
    // y's sparrowd restarts: its routes stay, stale (graceful restart). The
    // RIB prefers the fresh upstream path, steering still ranks y first.
    let mut f = Fixture::new();
    let p = pfx("192.0.2.0/24");
    f.announce(UP1, p, &[64510, 3356, 13335]);
    f.announce(PY, p, &[65002, 13335]);
    assert_eq!(f.ranking(1, "192.0.2.1"), [Y, X, Z, W]);
    f.rib.handle(RibMsg::PeerDown {
        peer: PY,
        keep_stale: Some(std::time::Duration::from_secs(60)),
    });
    assert_eq!(f.rib.best(&p).unwrap().0, UP1);
    assert_eq!(f.ranking(2, "192.0.2.1"), [Y, X, Z, W]);
    // Removed (here: the session ends for good): the ranking moves on.
    f.rib.handle(RibMsg::PeerDown {
        peer: PY,
        keep_stale: None,
    });
    assert_eq!(f.ranking(3, "192.0.2.1"), [X, Y, Z, W]);
}

#[test]
fn ranking_uses_the_best_of_several_sessions_and_upstreams() {
    let mut f = Fixture::new();
    let p = pfx("198.51.100.0/24");
    // Two sessions to y: the better one (2 ASNs) ranks y; upstream best is 3 ASNs.
    f.announce(PY, p, &[65002, 7, 8, 9, 10]);
    f.announce(PY2, p, &[65002, 10]);
    f.announce(UP1, p, &[64510, 9, 10, 11]);
    f.announce(UP2, p, &[64511, 10, 11]);
    f.announce(PW, p, &[65004, 5, 6, 7, 10]);
    // y: 2 ASNs (via py2), local: 3 (up2), w: 5, z: none.
    assert_eq!(f.ranking(1, "198.51.100.1"), [Y, X, W, Z]);
}

#[test]
fn rule_promotes_the_last_pop_asn_to_first() {
    // A path from y that crossed z's ASN: the rule says z (last POP ASN wins);
    // the ranking keeps y (its session) right after.
    let mut f = Fixture::new();
    let p = pfx("203.0.113.0/24");
    f.announce(PY, p, &[65002, 65003, 13335]);
    f.announce(UP1, p, &[64510, 1, 2, 13335]);
    assert_eq!(f.ranking(1, "203.0.113.9"), [Z, Y, X, W]);
    // An upstream path crossing w's ASN: w first.
    let q = pfx("203.0.114.0/24");
    f.announce(UP1, q, &[64510, 65004, 13335]);
    assert_eq!(f.ranking(2, "203.0.114.9"), [W, X, Y, Z]);
}

#[test]
fn uncovered_address_gets_local_first() {
    let mut f = Fixture::new();
    f.announce(PZ, pfx("10.0.0.0/8"), &[65003, 1]);
    let s = f.build(1);
    let d = select(ip("11.0.0.1"), &s);
    assert_eq!(d.prefix, None);
    assert_eq!(d.ranking, &[X, Y, Z, W]);
    assert_eq!(d.source, Source::Rib);
    let d = select(ip("2001:db8::1"), &s);
    assert_eq!((d.prefix, d.scope, d.ranking), (None, 0, &[X, Y, Z, W][..]));
    assert_eq!(select(ip("10.1.2.3"), &s).ranking, &[Z, X, Y, W]);
}

#[test]
fn interner_reuses_ids() {
    let mut i = RankInterner::new(1, 3);
    // 0: local (1) first; then 0 first and 2 first (1 first is id 0).
    assert_eq!(i.len(), 3);
    let r: Ranking = [1, 0, 2].into_iter().collect();
    assert_eq!(i.intern(&r), DEFAULT_RANK);
    let r2: Ranking = [2, 1, 0].into_iter().collect();
    let id = i.intern(&r2);
    assert_eq!(id, 3);
    assert_eq!(i.intern(&r2), 3);
    let flat = i.take_new();
    assert_eq!(flat.len(), 4 * 3);
    assert_eq!(&flat[..3], &[1, 0, 2]);
    assert_eq!(&flat[9..12], &[2, 1, 0]);
    assert!(i.take_new().is_empty());
}

// ---------------------------------------------------------------------------
// LPM and compression
// ---------------------------------------------------------------------------

/// Brute-force reference: the longest prefix containing `a`.
fn brute_lpm<A: lpm::Addr>(items: &[(A, u8, u16)], a: A) -> Option<(u8, u16)> {
    items
        .iter()
        .filter(|(p, l, _)| a.and(A::mask(*l)) == *p)
        .max_by_key(|(_, l, _)| *l)
        .map(|&(_, l, r)| (l, r))
}

/// Checks every probe: same ranking as brute force, and a reported length that
/// is the true one or a covering one with the same ranking.
fn check_lpm<A: lpm::Addr>(items: &mut Vec<(A, u8, u16)>, probes: &[A], compress: bool) {
    items.sort_unstable();
    items.dedup_by_key(|e| (e.0, e.1));
    let t = Lpm::build(items.iter().copied(), 9, compress);
    for &a in probes {
        let h = t.lookup(a);
        assert!(h.start <= a && a <= h.end, "{a:?} not in {h:?}");
        let want = brute_lpm(items, a);
        match want {
            None => assert_eq!((lpm::val_len(h.val), lpm::val_rank(h.val)), (None, 9)),
            Some((l, r)) => {
                let got = lpm::val_len(h.val).expect("matched");
                assert_eq!(lpm::val_rank(h.val), r, "{a:?}");
                if !compress {
                    assert_eq!(got, l, "{a:?}");
                } else {
                    assert!(got <= l);
                    // Every prefix between the reported and the true one has the same ranking.
                    for &(p, pl, pr) in items.iter() {
                        if pl >= got && pl <= l && a.and(A::mask(pl)) == p {
                            assert_eq!(pr, r, "{a:?}: /{pl} between /{got} and /{l}");
                        }
                    }
                    assert!(items
                        .iter()
                        .any(|&(p, pl, _)| pl == got && a.and(A::mask(pl)) == p));
                }
            }
        }
        // Every address of the safe scope block gets the same value.
        let s = lpm::safe_scope(a, h.start, h.end);
        let lo = a.and(A::mask(s));
        let hi = a.or(A::mask(s).not());
        assert_eq!(t.lookup(lo).val, h.val);
        assert_eq!(t.lookup(hi).val, h.val);
    }
}

/// An address as the LPM's integer: `u32` for IPv4, `u128` for IPv6.
fn addr_bits<A: TryFrom<u128>>(a: IpAddr) -> A {
    let n = match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    A::try_from(n).ok().expect("an address of the LPM's family")
}

/// LPM items `(address, length, ranking id)` from prefix text.
fn lpm_items<A: TryFrom<u128>>(v: &[(&str, u16)]) -> Vec<(A, u8, u16)> {
    v.iter()
        .map(|&(s, r)| {
            let p = pfx(s);
            (addr_bits(p.addr()), p.len(), r)
        })
        .collect()
}

/// LPM probes from address text.
fn lpm_probes<A: TryFrom<u128>>(v: &[&str]) -> Vec<A> {
    v.iter().map(|s| addr_bits(ip(s))).collect()
}

#[test]
fn lpm_v4_edges() {
    let mk = lpm_items::<u32>;
    let probes: Vec<u32> = lpm_probes(&[
        "0.0.0.0",
        "0.0.0.1",
        "9.255.255.255",
        "10.0.0.0",
        "10.0.0.1",
        "10.0.255.255",
        "10.1.0.0",
        "10.1.2.3",
        "10.1.2.4",
        "10.1.3.0",
        "10.255.255.255",
        "11.0.0.0",
        "11.0.0.255",
        "11.0.1.0",
        "128.0.0.0",
        "255.255.255.254",
        "255.255.255.255",
    ]);
    let sets: Vec<Vec<(u32, u8, u16)>> = vec![
        mk(&[]),
        mk(&[("0.0.0.0/0", 1)]),
        mk(&[
            ("0.0.0.0/0", 1),
            ("255.255.255.255/32", 2),
            ("0.0.0.0/32", 3),
        ]),
        // Overlapping chain and adjacent siblings.
        mk(&[
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.3/32", 3),
            ("10.1.2.4/32", 3),
            ("10.1.2.0/24", 2),
            ("11.0.0.0/24", 4),
            ("11.0.1.0/24", 4),
            ("128.0.0.0/1", 5),
        ]),
        // Compressible: same ranking as the cover, at every depth.
        mk(&[
            ("0.0.0.0/0", 1),
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.0/24", 1),
            ("10.1.2.3/32", 2),
            ("255.255.255.255/32", 1),
        ]),
    ];
    for s in sets {
        for compress in [false, true] {
            check_lpm(&mut s.clone(), &probes, compress);
        }
    }
}

#[test]
fn lpm_v6_edges() {
    let items: Vec<(u128, u8, u16)> = lpm_items(&[
        ("::/0", 1),
        ("2001:db8::/32", 2),
        ("2001:db8::/48", 3),
        ("2001:db8:0:1::/64", 3),
        ("2001:db8::1/128", 4),
        ("2001:db9::/32", 2),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 5),
        ("::/128", 6),
    ]);
    let probes: Vec<u128> = lpm_probes(&[
        "::",
        "::1",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8::1",
        "2001:db8::2",
        "2001:db8:0:1::5",
        "2001:db8:1::",
        "2001:db9::",
        "2001:dba::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]);
    for compress in [false, true] {
        check_lpm(&mut items.clone(), &probes, compress);
        check_lpm(&mut items[1..].to_vec(), &probes, compress);
    }
}

#[test]
fn compression_reports_the_covering_prefix() {
    let mut f = Fixture::new();
    let z = attrs(&[65003, 1], None);
    f.rib.handle(announce_msg(PZ, pfx("10.0.0.0/8"), z.clone()));
    f.rib.handle(announce_msg(PZ, pfx("10.1.0.0/16"), z));
    f.announce(PY, pfx("10.1.2.0/24"), &[65002, 1]);
    let s = f.build(1);
    let d = select(ip("10.1.1.1"), &s);
    // 10.1.0.0/16 has the same ranking as 10/8: dropped.
    assert_eq!(d.prefix, Some(pfx("10.0.0.0/8")));
    assert_eq!(d.ranking, &[Z, X, Y, W]);
    // Safe scope: 10.1.0.0/23 is the largest block around it without 10.1.2/24.
    assert_eq!(d.scope, 23);
    let d = select(ip("10.1.2.200"), &s);
    assert_eq!((d.prefix, d.scope), (Some(pfx("10.1.2.0/24")), 24));
    assert_eq!(d.ranking, &[Y, X, Z, W]);
    assert_eq!(select(ip("10.200.0.1"), &s).scope, 9);
    // One node: the /16 slot 10.1/16 holds 10.1.2/24; every other slot is a leaf.
    assert_eq!(s.stats().nodes_v4, 1);
}

// ---------------------------------------------------------------------------
// Fallback and config
// ---------------------------------------------------------------------------

/// POPs x (local), y and z; a fallback map, `default_pop` y.
fn steer_cfg() -> TestConfig {
    TestConfig::two_pops().pop("z", 65003).with(
        "\
listen:
  enabled: false
steering:
  default_pop: y
  fallback:
    - prefix: 10.0.0.0/8
      pop: z
    - prefix: 10.1.0.0/16
      pop: x
    - prefix: 2001:db8::/32
      pop: x
",
    )
}

#[test]
fn fallback_snapshot() {
    let cfg = steer_cfg().build();
    let s = fallback(&cfg);
    assert_eq!(s.generation(), 0);
    assert_eq!(s.source(Afi::Ipv4), Source::Fallback);
    let d = select(ip("10.2.3.4"), &s);
    assert_eq!(
        (d.prefix, d.source),
        (Some(pfx("10.0.0.0/8")), Source::Fallback)
    );
    assert_eq!(names(&d), ["z", "x", "y"]);
    let d = select(ip("10.1.3.4"), &s);
    assert_eq!(d.prefix, Some(pfx("10.1.0.0/16")));
    assert_eq!(names(&d), ["x", "y", "z"]);
    // Not covered: default_pop first.
    let d = select(ip("192.0.2.1"), &s);
    assert_eq!(d.prefix, None);
    assert_eq!(names(&d), ["y", "x", "z"]);
    assert_eq!(names(&select(ip("2001:db8:1::1"), &s)), ["x", "y", "z"]);
    assert_eq!(names(&select(ip("2001:db9::1"), &s)), ["y", "x", "z"]);
    // Without a steering section: the local POP first everywhere.
    let plain = fallback(&test_config());
    let d = select(ip("10.2.3.4"), &plain);
    assert_eq!((d.prefix, d.first_name()), (None, "x"));
    assert_eq!(serde_json::to_value(d.source).unwrap(), "fallback");
}

#[test]
fn steering_config_errors() {
    let bad = |from: &str, to: &str, key: &str| {
        let es = steer_cfg().replace(from, to).errors();
        assert!(
            es.iter().any(|e| e.key == key && e.line > 0),
            "{key}: {}",
            config::format_errors(&es)
        );
    };
    bad("default_pop: y", "default_pop: q", "steering.default_pop");
    bad(
        "      pop: z",
        "      pop: nope",
        "steering.fallback[0].pop",
    );
    bad("10.0.0.0/8", "10.0.0.1/8", "steering.fallback[0].prefix");
    bad("10.0.0.0/8", "10.0.0.0/33", "steering.fallback[0].prefix");
    bad("10.1.0.0/16", "10.0.0.0/8", "steering.fallback[1].prefix");
    bad(
        "    - prefix: 10.0.0.0/8",
        "    - prefx: 10.0.0.0/8",
        "steering.fallback[0].prefx",
    );
}

// ---------------------------------------------------------------------------
// Property: snapshot == brute force over the Loc-RIB
// ---------------------------------------------------------------------------

/// Independent ranking: per-POP best path first, then order those bests by
/// repeated selection, POPs without a path in config order, rule POP in front.
fn brute_ranking(rib: &rib::Rib, cfg: &Config, p: &Prefix) -> Vec<PopIdx> {
    let mut paths = Vec::new();
    rib.path_keys(p, &mut paths);
    let pop_of_peer = |peer: PeerId| -> PopIdx {
        let pc = &cfg.peers[peer as usize];
        match pc.role {
            config::Role::Upstream => X,
            config::Role::Pop => {
                POP_ASNS.iter().position(|&a| a == pc.remote_asn).unwrap() as PopIdx
            }
        }
    };
    let mut per_pop: Vec<(PopIdx, rib::PathKey)> = Vec::new();
    for pop in 0..4 {
        let keys: Vec<rib::PathKey> = paths
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| pop_of_peer(k.peer) == pop)
            .collect();
        if !keys.is_empty() {
            per_pop.push((pop, keys[select_best(&keys)]));
        }
    }
    let mut order = Vec::new();
    while !per_pop.is_empty() {
        let keys: Vec<rib::PathKey> = per_pop.iter().map(|x| x.1).collect();
        order.push(per_pop.remove(select_best(&keys)).0);
    }
    // The rule, from the decoded Loc-RIB best path.
    let (_, best) = rib.best(p).unwrap();
    let rule = best
        .as_path
        .iter_asns()
        .filter_map(|a| POP_ASNS.iter().position(|&x| x == a))
        .last()
        .map_or(X, |i| i as PopIdx);
    let mut out = vec![rule];
    for pop in order.into_iter().chain(0..4) {
        if !out.contains(&pop) {
            out.push(pop);
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Op {
    Announce {
        peer: PeerId,
        prefix: Prefix,
        mid: Vec<u32>,
        med: Option<u32>,
        origin: u8,
    },
    Withdraw {
        peer: PeerId,
        prefix: Prefix,
    },
}

fn arb_prefix() -> impl Strategy<Value = Prefix> {
    // Few bases and all lengths, so prefixes nest and sit side by side.
    let v4 = (0..4u32, any::<u32>(), 0..=32u8).prop_map(|(b, r, l)| {
        let base = [0x0a00_0000u32, 0x0a01_0000, 0xc000_0200, 0xffff_ff00][b as usize];
        Prefix::v4(base ^ (r >> 8 >> (l / 4)), l).unwrap()
    });
    let v6 = (0..3u32, any::<u64>(), 0..=128u8).prop_map(|(b, r, l)| {
        let base = [0x2001_0db8u128 << 96, 0x2a00u128 << 112, u128::MAX - 0xff][b as usize];
        Prefix::v6(base ^ (u128::from(r >> (l / 4)) << 40), l).unwrap()
    });
    prop_oneof![3 => v4, 1 => v6]
}

fn arb_op() -> impl Strategy<Value = Op> {
    let mid = prop::collection::vec(
        prop_oneof![3 => 1000..1004u32, 1 => prop::sample::select(POP_ASNS.to_vec())],
        0..4,
    );
    prop_oneof![
        4 => (0..7 as PeerId, arb_prefix(), mid, prop::option::of(0..3u32), 0..3u8).prop_map(
            |(peer, prefix, mid, med, origin)| Op::Announce { peer, prefix, mid, med, origin }
        ),
        1 => (0..7 as PeerId, arb_prefix()).prop_map(|(peer, prefix)| Op::Withdraw { peer, prefix }),
    ]
}

fn op_msg(cfg: &Config, op: &Op) -> RibMsg {
    match op {
        Op::Announce {
            peer,
            prefix,
            mid,
            med,
            origin,
        } => {
            // eBGP paths start with the peer's ASN; iBGP (up3) paths with a
            // non-POP ASN or nothing. Neighbouring ASes are thus never shared
            // between POPs (see `rank`).
            let pc = &cfg.peers[*peer as usize];
            let mut path = Vec::new();
            if *peer == UP3 {
                if !mid.is_empty() {
                    path.push(1000);
                }
            } else {
                path.push(pc.remote_asn);
            }
            path.extend(mid.iter().copied());
            let mut a = (*attrs(&path, *med)).clone();
            a.origin = Origin::from_code(*origin).unwrap();
            announce_msg(*peer, *prefix, Arc::new(a))
        }
        Op::Withdraw { peer, prefix } => withdraw_msg(*peer, *prefix),
    }
}

fn probe_addrs(prefixes: &[Prefix], extra: &[u64]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (i, p) in prefixes.iter().enumerate() {
        let r = extra[i % extra.len()];
        match *p {
            Prefix::V4 { addr, len } => {
                let host = if len == 32 { 0 } else { (r as u32) >> len };
                out.push(IpAddr::V4((addr | host).into()));
                out.push(IpAddr::V4(addr.into()));
                let last = addr | u32::mask(len).not();
                out.push(IpAddr::V4(last.into()));
                out.push(IpAddr::V4(last.wrapping_add(1).into()));
            }
            Prefix::V6 { addr, len } => {
                let host = if len == 128 {
                    0
                } else {
                    (u128::from(r) << 64 | u128::from(r)) >> len
                };
                out.push(IpAddr::V6((addr | host).into()));
                let last = addr | u128::mask(len).not();
                out.push(IpAddr::V6(last.into()));
                out.push(IpAddr::V6(last.wrapping_add(1).into()));
            }
        }
    }
    for &r in extra {
        out.push(IpAddr::V4((r as u32).into()));
        out.push(IpAddr::V6((u128::from(r) << 64).into()));
    }
    out
}

fn check_against_brute_force(rib: &rib::Rib, cfg: &Config, s: &Snapshot, addrs: &[IpAddr]) {
    let locrib: Vec<Prefix> = Afi::ALL
        .iter()
        .flat_map(|&afi| rib.best_routes(afi).map(|(p, _, _)| p))
        .collect();
    for &a in addrs {
        let d = select(a, s);
        let host = Prefix::host(a);
        let mut chain: Vec<&Prefix> = locrib.iter().filter(|p| p.contains(&host)).collect();
        chain.sort_by_key(|p| p.len());
        let Some(&lpm) = chain.last() else {
            assert_eq!(d.prefix, None, "{a}");
            assert_eq!(d.ranking, &[X, Y, Z, W], "{a}");
            continue;
        };
        let want = brute_ranking(rib, cfg, lpm);
        assert_eq!(d.ranking, &want[..], "{a}: LPM {lpm}");
        // The rule: closest POP first.
        let (_, best) = rib.best(lpm).unwrap();
        assert_eq!(
            Ranker::new(cfg).rule_pop(best.as_path.iter_asns()),
            d.first(),
            "{a}"
        );
        // Reported prefix: the LPM, or a cover whose ranking equals all in between.
        let got = d.prefix.expect("matched");
        assert!(chain.contains(&&got), "{a}: {got} not in the Loc-RIB chain");
        for q in chain.iter().filter(|q| q.len() >= got.len()) {
            assert_eq!(
                brute_ranking(rib, cfg, q),
                want,
                "{a}: {q} between {got} and {lpm}"
            );
        }
        // Safe scope: both ends of the block answer the same.
        let blk = Prefix::new(a, d.scope).unwrap();
        let last = match blk {
            Prefix::V4 { addr, len } => IpAddr::V4((addr | u32::mask(len).not()).into()),
            Prefix::V6 { addr, len } => IpAddr::V6((addr | u128::mask(len).not()).into()),
        };
        for b in [blk.addr(), last] {
            assert_eq!(
                select(b, s).ranking,
                d.ranking,
                "{a}: scope /{} end {b}",
                d.scope
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn snapshot_matches_brute_force(
        ops in prop::collection::vec(arb_op(), 1..120),
        extra in prop::collection::vec(any::<u64>(), 1..16),
    ) {
        let cfg = Arc::new(test_config());
        let (mut rib, _rx) = rib_all_up(&cfg);
        // The incremental path too: a publisher attached from the start.
        let h = handle(&cfg);
        let mut publ = Publisher::new(&cfg, h.clone()).unwrap();
        publ.attach(&mut rib);
        rib.handle(RibMsg::EndOfRib { peer: UP1, afi: Afi::Ipv4 });
        rib.handle(RibMsg::EndOfRib { peer: UP2, afi: Afi::Ipv6 });
        let mut prefixes = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            rib.handle(op_msg(&cfg, op));
            if i % 7 == 0 {
                publ.sync(&mut rib);
            }
            if let Op::Announce { prefix, .. } = op {
                prefixes.push(*prefix);
            }
        }
        publ.sync(&mut rib);
        drop(publ); // the builder publishes its last batch and ends
        let addrs = probe_addrs(&prefixes, &extra);
        let full = build(&rib, &cfg, 1);
        check_against_brute_force(&rib, &cfg, &full, &addrs);
        let published = h.load_full();
        prop_assert_eq!(published.source(Afi::Ipv4), Source::Rib);
        prop_assert_eq!(published.source(Afi::Ipv6), Source::Rib);
        check_against_brute_force(&rib, &cfg, &published, &addrs);
    }
}

// ---------------------------------------------------------------------------
// Publishing through the RIB task
// ---------------------------------------------------------------------------

async fn wait_for(h: &Handle, limit: Duration, f: impl Fn(&Snapshot) -> bool) -> Duration {
    let t = Instant::now();
    loop {
        if f(&h.load()) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit * 10,
            "condition not met in {:?}",
            limit * 10
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_snapshot_follows_the_rib() {
    let cfg = Arc::new(
        steer_cfg()
            .peers(&[
                "{name: up1, address: 10.0.0.1, remote_asn: 64510, role: upstream}",
                "{name: py, address: 10.0.1.2, remote_asn: 65002, role: pop}",
            ])
            .build(),
    );
    let h = handle(&cfg);
    let publ = Publisher::new(&cfg, h.clone()).unwrap();
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(rib::run_with(
        cfg.clone(),
        rx,
        Arc::new(RibStats::default()),
        Some(Box::new(publ)),
    ));
    let mut ctls = Vec::new();
    for p in [0, 1] {
        let (ctl, crx) = mpsc::unbounded_channel();
        ctls.push(crx);
        tx.send(RibMsg::PeerUp {
            peer: p,
            info: info(&cfg, p),
            ctl,
        })
        .await
        .unwrap();
    }
    let p = pfx("10.1.2.0/24");
    tx.send(announce_msg(0, p, attrs(&[64510, 1, 2, 3], None)))
        .await
        .unwrap();
    tx.send(announce_msg(1, p, attrs(&[65002, 3], None)))
        .await
        .unwrap();
    // Before End-of-RIB: the fallback answers (10.1/16 -> x).
    tokio::time::sleep(Duration::from_millis(120)).await;
    let s = h.load();
    let d = select(ip("10.1.2.3"), &s);
    assert_eq!((d.source, d.first_name()), (Source::Fallback, "x"));
    drop(s);
    // py's End-of-RIB does not switch (it is not an upstream); up1's does.
    tx.send(RibMsg::EndOfRib {
        peer: 1,
        afi: Afi::Ipv4,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(h.load().source(Afi::Ipv4), Source::Fallback);
    tx.send(RibMsg::EndOfRib {
        peer: 0,
        afi: Afi::Ipv4,
    })
    .await
    .unwrap();
    let lim = Duration::from_millis(100);
    let t = wait_for(&h, lim, |s| s.source(Afi::Ipv4) == Source::Rib).await;
    assert!(t < lim, "switch to the RIB took {t:?}");
    let s = h.load_full();
    let d = select(ip("10.1.2.3"), &s);
    assert_eq!(
        (d.prefix, names(&d)),
        (Some(p), vec!["y".into(), "x".into(), "z".into()])
    );
    assert_eq!(
        s.source(Afi::Ipv6),
        Source::Fallback,
        "IPv6 waits for its own End-of-RIB"
    );
    let g = s.generation();
    drop(s);

    // Quiet, then one routing change: visible within 100 ms.
    tokio::time::sleep(Duration::from_millis(120)).await;
    tx.send(withdraw_msg(1, p)).await.unwrap();
    let t = wait_for(&h, lim, |s| select(ip("10.1.2.3"), s).first() == X).await;
    assert!(t < lim, "withdrawal visible after {t:?}");
    assert!(h.load().generation() > g);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let q = pfx("192.0.2.0/24");
    tx.send(announce_msg(1, q, attrs(&[65002, 3], None)))
        .await
        .unwrap();
    let t = wait_for(&h, lim, |s| select(ip("192.0.2.1"), s).prefix == Some(q)).await;
    assert!(t < lim, "announcement visible after {t:?}");

    // A burst of changes: every prefix of it is answered, updated in place.
    let g = h.load().generation();
    for i in 0..2000u32 {
        let r = Prefix::v4(0x2000_0000 | (i << 8), 24).unwrap();
        tx.send(announce_msg(1, r, attrs(&[65002, 3 + i % 5], None)))
            .await
            .unwrap();
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let last = Prefix::v4(0x2000_0000 | (1999 << 8), 24).unwrap();
    wait_for(&h, Duration::from_secs(1), |s| {
        select(last.addr(), s).prefix == Some(last)
    })
    .await;
    let s = h.load_full();
    for i in 0..2000u32 {
        let r = Prefix::v4(0x2000_0000 | (i << 8), 24).unwrap();
        let d = select(r.addr(), &s);
        assert_eq!((d.prefix, d.first()), (Some(r), Y), "{r}");
    }
    let builds = s.generation() - g;
    assert!(
        (1..=2000).contains(&builds),
        "{builds} snapshots for one burst"
    );
    drop(tx);
    task.await.unwrap();
}

// ---------------------------------------------------------------------------
// Benchmark (ignored): cargo test --release --lib steer::tests::bench -- --ignored --nocapture
// ---------------------------------------------------------------------------

/// 1M IPv4 prefixes (mostly /24, some /16../22 covers and /25../32
/// more-specifics) and 250k IPv6 (/32../48), rankings from 24 distinct ones,
/// a third of the more-specifics equal to their cover's.
fn synthetic() -> (RankedMap<u32>, RankedMap<u128>) {
    let mut v4 = RankedMap::new();
    let mut v6 = RankedMap::new();
    let mut i = 0u64;
    while v4.len() < 1_000_000 {
        i += 1;
        let r = mix(i);
        let len = match r % 100 {
            0..=69 => 24,
            70..=79 => 16 + (r >> 8) as u8 % 7,
            80..=94 => 20 + (r >> 8) as u8 % 4,
            _ => 25 + (r >> 8) as u8 % 8,
        };
        let addr = ((r >> 16) as u32 % 0xdf00_0000 + 0x0100_0000) & u32::mask(len);
        let rank = if r >> 60 < 5 {
            4
        } else {
            (r >> 40) as u16 % 24
        };
        v4.set(addr, len, Some(rank));
    }
    while v6.len() < 250_000 {
        i += 1;
        let r = mix(i);
        let len = [32u8, 36, 40, 44, 48, 48, 48, 48][(r % 8) as usize];
        let addr = ((0x2000u128 << 112) | (u128::from(r >> 3) << 64)) & u128::mask(len);
        v6.set(addr, len, Some((r >> 40) as u16 % 24));
    }
    (v4, v6)
}

/// Mean CPU time of `n` single-prefix incremental updates of `map`'s trie
/// (re-ranking existing prefixes, then announcing and withdrawing new /24 or
/// /48 ones), each applied to a clone of the previous trie as the builder does.
fn bench_updates<A: lpm::Addr>(
    map: &mut RankedMap<A>,
    fam: &Family<A>,
    n: usize,
    fresh: impl Fn(u64) -> (A, u8),
) -> Duration {
    let p = update::Params {
        default_rank: DEFAULT_RANK,
        compress: true,
    };
    let keys: Vec<(A, u8)> = map.iter().map(|(a, l, _)| (a, l)).collect();
    let mut trie = fam.trie.clone();
    let t = cpu();
    for i in 0..n as u64 {
        let r = mix(i ^ 0x5151);
        let (a, l, id) = match i % 3 {
            0 => {
                let (a, l) = keys[(r % keys.len() as u64) as usize];
                (a, l, Some((r >> 40) as u16 % 24))
            }
            1 => {
                let (a, l) = fresh(i / 3);
                (a, l, Some((r >> 40) as u16 % 24))
            }
            _ => {
                let (a, l) = fresh(i / 3);
                (a, l, None)
            }
        };
        map.set(a, l, id);
        let mut next = trie.clone();
        update::apply(&mut next, map, p, &[(a, l)]);
        trie = next;
    }
    (cpu() - t) / n as u32
}

#[test]
#[ignore]
fn bench() {
    let (mut m4, mut m6) = synthetic();
    let rankings: Vec<PopIdx> = (0..24)
        .flat_map(|i| first_then_config_order(i % 4, 4))
        .collect();
    let rankings = Arc::new(rankings);
    let mut best = Duration::MAX;
    let mut snap = None;
    for _ in 0..3 {
        let t = cpu();
        let v4 = Family::new(Source::Rib, &m4, DEFAULT_RANK, rankings.clone());
        let v6 = Family::new(Source::Rib, &m6, DEFAULT_RANK, rankings.clone());
        best = best.min(cpu() - t);
        snap = Some(Snapshot {
            generation: 1,
            pops: ["x", "y", "z", "w"].iter().map(|s| Box::from(*s)).collect(),
            v4: Arc::new(v4),
            v6: Arc::new(v6),
        });
    }
    let snap = snap.unwrap();
    let st = snap.stats();
    println!(
        "full build (map -> trie) 1M v4 + 250k v6: {:.1} ms; leaves v4 {} v6 {}, nodes v4 {} v6 {}; snapshot {:.1} MB",
        best.as_secs_f64() * 1e3,
        st.leaves_v4,
        st.leaves_v6,
        st.nodes_v4,
        st.nodes_v6,
        st.bytes as f64 / 1e6
    );
    let u4 = bench_updates(&mut m4, &snap.v4, 30_000, |i| {
        (0x6440_0000u32 | ((i as u32 % 16384) << 8), 24)
    });
    let u6 = bench_updates(&mut m6, &snap.v6, 30_000, |i| {
        (
            (0x2001_0db8_1000u128 << 80) | (u128::from(i % 65536) << 80),
            48,
        )
    });
    println!(
        "incremental update, one prefix: IPv4 {:.1} us, IPv6 {:.1} us",
        u4.as_secs_f64() * 1e6,
        u6.as_secs_f64() * 1e6
    );
    // Lookups: half inside table prefixes, half uniformly random.
    let keys4: Vec<u64> = m4
        .iter()
        .map(|(a, l, _)| (u64::from(a) << 8) | u64::from(l))
        .collect();
    let keys6: Vec<(u128, u8)> = m6.iter().map(|(a, l, _)| (a, l)).collect();
    let n = 2_000_000usize;
    let a4: Vec<IpAddr> = (0..n as u64)
        .map(|i| {
            let r = mix(i ^ 0xabcdef);
            let a = if i % 2 == 0 {
                let k = keys4[(r % keys4.len() as u64) as usize];
                ((k >> 8) as u32) | ((r >> 32) as u32 >> (k as u8).min(31))
            } else {
                r as u32
            };
            IpAddr::V4(a.into())
        })
        .collect();
    let a6: Vec<IpAddr> = (0..n as u64)
        .map(|i| {
            let r = mix(i ^ 0x123456);
            let (p, _) = keys6[(r % keys6.len() as u64) as usize];
            IpAddr::V6((p | u128::from(r >> 8)).into())
        })
        .collect();
    for _ in 0..2 {
        let mut sink = 0u64;
        let t = cpu();
        for &a in a4.iter() {
            if let IpAddr::V4(a) = a {
                sink = sink.wrapping_add(u64::from(snap.v4.trie.lookup(u32::from(a))));
            }
        }
        let ns = (cpu() - t).as_secs_f64() * 1e9 / a4.len() as f64;
        println!("raw trie lookup IPv4: {ns:.1} ns [{sink}]");
        let mut sink = 0u64;
        let t = cpu();
        for &a in a4.iter() {
            let d = select(a, &snap);
            sink = sink.wrapping_add(u64::from(d.ranking[0]));
        }
        let ns = (cpu() - t).as_secs_f64() * 1e9 / a4.len() as f64;
        println!("select (ranking only) IPv4: {ns:.1} ns [{sink}]");
    }
    for (name, addrs) in [("IPv4", &a4), ("IPv6", &a6)] {
        let mut best = f64::MAX;
        let mut sink = 0u64;
        for _ in 0..3 {
            let t = cpu();
            for &a in addrs.iter() {
                let d = select(a, &snap);
                sink = sink.wrapping_add(u64::from(d.ranking[0]) + u64::from(d.scope));
            }
            best = best.min((cpu() - t).as_secs_f64() * 1e9 / addrs.len() as f64);
        }
        println!("select {name}: {best:.1} ns/lookup (random addresses, {n}) [{sink}]");
    }
}

/// RIB-side cost: ranking every prefix (what `Publisher::attach` and a
/// full-table change do per prefix), via the synchronous `build`.
#[test]
#[ignore]
fn bench_rank_from_rib() {
    let cfg = Arc::new(test_config());
    let (mut rib, _rx) = rib_all_up(&cfg);
    let n = 250_000u32;
    for peer in [UP1, PY, PZ] {
        for g in 0..n / 4 {
            let asn = cfg.peers[peer as usize].remote_asn;
            let a = attrs(&[asn, 1000 + g % 7, 2000 + g], None);
            let announced = (0..4)
                .map(|k| Prefix::v4((g * 4 + k).wrapping_mul(0x9E37_79B1) << 8, 24).unwrap())
                .collect();
            rib.handle(RibMsg::Update {
                peer,
                afi: Afi::Ipv4,
                change: RouteChange {
                    withdrawn: vec![],
                    announced,
                    attrs: Some(a),
                },
            });
        }
    }
    let t = cpu();
    let s = build(&rib, &cfg, 1);
    let d = cpu() - t;
    println!(
        "rank + build from the RIB: {n} prefixes x 3 paths: {:.1} ms ({:.2} us/prefix), {} rankings",
        d.as_secs_f64() * 1e3,
        d.as_secs_f64() * 1e6 / f64::from(n),
        s.stats().rankings
    );
}

#[path = "scale_tests.rs"]
mod scale;
