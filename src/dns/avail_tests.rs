//! Tests of POP availability in DNS answers through `fast::respond` (UDP
//! and TCP alike): only the addresses that are up, `ttl_failover` for
//! answers not from the first-ranked POP, load shedding constant over the
//! ECS scope, and the all-down policies.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};

use super::fast::respond;
use super::Authority;
use crate::pops::{Force, PopState};
use crate::testutil::TestConfig;

/// x (local): 192.0.2.10; y: 198.51.100.10 and .11; ttl 20. 10.0.0.0/8 ranks
/// y first, 10.1.0.0/16 x. y's session is down: forced up where needed.
fn auth(extra: &str) -> Authority {
    authority(
        TestConfig::yaml(crate::dns::zone::tests::CFG)
            .with("steering:\n  fallback:\n    - {prefix: 10.0.0.0/8, pop: y}\n    - {prefix: 10.1.0.0/16, pop: x}\n")
            .with(extra),
    )
}

/// The authority of `t`, with its POPs' state (sessions down).
fn authority(t: TestConfig) -> Authority {
    let cfg = t.build();
    let pops = Arc::new(PopState::new(&cfg, None));
    Authority::new(&cfg, crate::steer::handle(&cfg), pops).unwrap()
}

fn ask(a: &Authority, ecs: &str, len: u8, udp: bool) -> (Message, Vec<u8>) {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("www.example.net.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        ecs.parse().unwrap(),
        len,
        0,
    )));
    m.set_edns(e);
    let mut out = Vec::new();
    assert!(respond(
        a,
        &m.to_vec().unwrap(),
        "192.0.2.200".parse().unwrap(),
        udp,
        &mut out
    )
    .is_some());
    (Message::from_vec(&out).unwrap(), out)
}

/// (addresses, TTLs, ECS scope) of the answer.
fn answer(a: &Authority, ecs: &str, len: u8) -> (Vec<IpAddr>, Vec<u32>, u8) {
    let (m, bytes) = ask(a, ecs, len, true);
    let (tcp, tcp_bytes) = ask(a, ecs, len, false);
    assert_eq!(bytes, tcp_bytes, "UDP and TCP answer alike");
    assert_eq!(m.answers.len(), tcp.answers.len());
    let addrs = m
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    let scope = match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(c)) => c.scope_prefix(),
        _ => 255,
    };
    (addrs, m.answers.iter().map(|r| r.ttl).collect(), scope)
}

fn ips(s: &[&str]) -> Vec<IpAddr> {
    s.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn only_up_addresses_and_failover_ttl() {
    let a = auth("");
    a.pops.force("y", None, Force::Up).unwrap();
    let y2 = ips(&["198.51.100.10", "198.51.100.11"]);
    assert_eq!(answer(&a, "10.2.3.0", 24), (y2, vec![20, 20], 15));
    // One of y's addresses down: the other only, still y's normal TTL.
    a.pops
        .force("y", Some("198.51.100.11".parse().unwrap()), Force::Down)
        .unwrap();
    assert_eq!(
        answer(&a, "10.2.3.0", 24),
        (ips(&["198.51.100.10"]), vec![20], 15)
    );
    // Both down: y's A records serve nobody, failover to x with ttl_failover.
    a.pops
        .force("y", Some("198.51.100.10".parse().unwrap()), Force::Down)
        .unwrap();
    assert_eq!(
        answer(&a, "10.2.3.0", 24),
        (ips(&["192.0.2.10"]), vec![10], 15)
    );
    // y drained instead: x, ttl_failover; x's own clients keep the normal TTL.
    a.pops
        .force("y", Some("198.51.100.10".parse().unwrap()), Force::Auto)
        .unwrap();
    a.pops.set_drained("y", true).unwrap();
    assert_eq!(answer(&a, "10.2.3.0", 24).1, vec![10]);
    assert_eq!(answer(&a, "10.1.0.0", 16).1, vec![20]);
    a.pops.set_drained("y", false).unwrap();
    assert_eq!(answer(&a, "10.2.3.0", 24).0, ips(&["198.51.100.10"]));
}

#[test]
fn shedding_by_scope_block_with_failover_ttl() {
    let a = auth("");
    a.pops.force("y", None, Force::Up).unwrap();
    // The blocks of 10.0.0.0/8 that rank y first, by their safe scope.
    let blocks = [
        ("10.0.0.0", 16),
        ("10.2.0.0", 15),
        ("10.4.0.0", 14),
        ("10.8.0.0", 13),
        ("10.16.0.0", 12),
        ("10.32.0.0", 11),
        ("10.64.0.0", 10),
        ("10.128.0.0", 9),
    ];
    let to_x = |a: &Authority| -> Vec<bool> {
        blocks
            .iter()
            .map(|&(b, l)| {
                let (addrs, ttls, scope) = answer(a, b, 24);
                assert_eq!(scope, l);
                // Every address of the block answers alike (sampled).
                let base = u32::from(b.parse::<std::net::Ipv4Addr>().unwrap());
                for k in 1..8u32 {
                    let inner = std::net::Ipv4Addr::from(base + k * ((1u32 << (32 - l)) / 8));
                    assert_eq!(
                        answer(a, &inner.to_string(), 24).0,
                        addrs,
                        "{b}/{l} vs {inner}"
                    );
                }
                let moved = addrs == ips(&["192.0.2.10"]);
                assert_eq!(ttls[0], if moved { 10 } else { 20 }, "{b}");
                moved
            })
            .collect()
    };
    a.pops.set_manual_load("y", Some(0.8)).unwrap();
    assert!(to_x(&a).iter().all(|m| !m));
    a.pops.set_manual_load("y", Some(0.9)).unwrap();
    let half = to_x(&a);
    a.pops.set_manual_load("y", Some(0.99)).unwrap();
    let most = to_x(&a);
    assert!(half.iter().zip(&most).all(|(h, m)| !h || *m), "monotone");
    a.pops.set_manual_load("y", Some(1.0)).unwrap();
    assert!(to_x(&a).iter().all(|m| *m));
    // x above its own low watermark: y keeps everything.
    a.pops.set_manual_load("y", Some(0.9)).unwrap();
    a.pops.set_manual_load("x", Some(0.85)).unwrap();
    assert!(to_x(&a).iter().all(|m| !m));
}

#[test]
fn all_down_policies() {
    // answer_all: every address of the first-ranked POP, ttl_failover.
    let a = auth("");
    a.pops.force("x", None, Force::Down).unwrap();
    a.pops.force("y", None, Force::Down).unwrap();
    let (addrs, ttls, _) = answer(&a, "10.2.3.0", 24);
    assert_eq!((addrs.len(), ttls), (2, vec![10, 10]));
    // empty: NODATA, the SOA's negative TTL capped at ttl_failover.
    let e = auth("health:\n  all_down: empty\n");
    e.pops.force("x", None, Force::Down).unwrap();
    e.pops.force("y", None, Force::Down).unwrap();
    let (m, _) = ask(&e, "10.2.3.0", 24, true);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].ttl, 10);
    // x forced up again: it answers, not the policy.
    e.pops.force("x", None, Force::Auto).unwrap();
    assert_eq!(answer(&e, "10.2.3.0", 24).0, ips(&["192.0.2.10"]));
}

#[test]
fn explain_gives_the_reasons_the_addresses_and_the_ttl() {
    use crate::pops::{Reason, TargetHealth};
    let a = auth("");
    let explain = |addr: &str| {
        let snap = a.steering.load();
        let ip: IpAddr = addr.parse().unwrap();
        let d = crate::steer::select(ip, &snap);
        let all = a.zones.explain(&d, ip, &a.pops, Some("www.example.net."));
        all.into_iter().find(|s| s.rtype == "A").unwrap()
    };
    let skipped = |s: &crate::dns::SteeredAnswer| s.skipped.clone();
    let pair = |p: &str, w: &str| vec![(p.to_string(), w.to_string())];
    // y: session down (no checks): "down".
    let s = explain("10.2.3.4");
    assert_eq!(
        (s.pop.as_deref(), s.reason, s.ttl),
        (Some("x"), Some(Reason::Failover), 10)
    );
    assert_eq!(skipped(&s), pair("y", "down"));
    a.pops.force("y", None, Force::Down).unwrap();
    assert_eq!(skipped(&explain("10.2.3.4")), pair("y", "forced"));
    a.pops.force("y", None, Force::Up).unwrap();
    let s = explain("10.2.3.4");
    assert_eq!(
        (s.pop.as_deref(), s.reason, s.ttl),
        (Some("y"), Some(Reason::Closest), 20)
    );
    assert_eq!(s.addresses, ips(&["198.51.100.10", "198.51.100.11"]));
    // One address down by its checks: the answer shows the other only.
    let down = TargetHealth {
        up: false,
        detail: "http 503 x3".into(),
    };
    a.pops.set_target_health(1, 1, down.clone());
    assert_eq!(explain("10.2.3.4").addresses, ips(&["198.51.100.10"]));
    // Both: y's A records serve nobody.
    a.pops.set_target_health(1, 0, down);
    let s = explain("10.2.3.4");
    assert_eq!(s.pop.as_deref(), Some("x"));
    assert_eq!(
        skipped(&s),
        pair(
            "y",
            "unhealthy (198.51.100.10 http 503 x3; 198.51.100.11 http 503 x3)"
        )
    );
    a.pops.set_target_health(
        1,
        0,
        TargetHealth {
            up: true,
            detail: String::new(),
        },
    );
    a.pops
        .force("y", Some("198.51.100.10".parse().unwrap()), Force::Down)
        .unwrap();
    assert_eq!(
        skipped(&explain("10.2.3.4")),
        pair(
            "y",
            "unhealthy (198.51.100.10 forced down; 198.51.100.11 http 503 x3)"
        )
    );
    a.pops
        .force("y", Some("198.51.100.10".parse().unwrap()), Force::Auto)
        .unwrap();
    a.pops.set_target_health(
        1,
        1,
        TargetHealth {
            up: true,
            detail: String::new(),
        },
    );
    // Load: drained at high, shed between the watermarks.
    a.pops.set_manual_load("y", Some(1.0)).unwrap();
    assert_eq!(
        skipped(&explain("10.2.3.4")),
        pair("y", "drained (load 1.00)")
    );
    a.pops.set_drained("y", true).unwrap();
    assert_eq!(skipped(&explain("10.2.3.4")), pair("y", "drained"));
    a.pops.set_drained("y", false).unwrap();
    a.pops.set_manual_load("y", Some(0.9)).unwrap();
    let shed: Vec<_> = [
        "10.0.0.1",
        "10.2.0.1",
        "10.4.0.1",
        "10.8.0.1",
        "10.16.0.1",
        "10.32.0.1",
        "10.64.0.1",
        "10.128.0.1",
    ]
    .iter()
    .map(|q| explain(q))
    .filter(|s| s.reason == Some(Reason::Shed))
    .collect();
    assert!(!shed.is_empty());
    for s in shed {
        assert_eq!((s.pop.as_deref(), s.ttl), (Some("x"), 10));
        assert_eq!(skipped(&s), pair("y", "shed (load 0.90, f=0.50)"));
    }
}

/// POPs past one byte's indices answer: 10.0.0.0/8 ranks p300 (one byte 44)
/// first, then config order; p256 (one byte 0, the local POP x) is the
/// failover once p300, x and y are down.
#[test]
fn pops_past_one_byte_answer_and_fail_over() {
    let a = authority(
        TestConfig::yaml(crate::dns::zone::tests::CFG)
            .numbered_pops(301)
            .replace(
                "          y: {a: [198.51.100.10, 198.51.100.11]}\n",
                "          y: {a: [198.51.100.10, 198.51.100.11]}\n          \
                 p256: {a: [203.0.113.56]}\n          p300: {a: [203.0.113.30]}\n",
            )
            .with("steering:\n  fallback:\n    - {prefix: 10.0.0.0/8, pop: p300}\n"),
    );
    assert_eq!(
        answer(&a, "10.2.3.0", 24),
        (ips(&["203.0.113.30"]), vec![20], 8)
    );
    for pop in ["p300", "x", "y"] {
        a.pops.force(pop, None, Force::Down).unwrap();
    }
    assert_eq!(
        answer(&a, "10.2.3.0", 24),
        (ips(&["203.0.113.56"]), vec![10], 8)
    );
}
