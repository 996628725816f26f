//! Micro benchmark (ignored by default):
//! `cargo test --release --lib rib::bench -- --ignored --nocapture`
//!
//! 4 upstream peers each announce the same 1.0M IPv4 /24s + 250k IPv6 /48s
//! (5M paths), 4 prefixes per UPDATE with a distinct attribute set per UPDATE
//! per peer (1.25M attribute sets: pessimistic, real tables share more).

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::testutil::{mix, TestConfig};
use crate::types::{AsPath, PathAttrs, RouteChange};

const V4: u32 = 1_000_000;
const V6: u32 = 250_000;
const PER_UPDATE: u32 = 4;
const PEERS: u16 = 4;

fn v4_prefix(i: u32) -> Prefix {
    // Distinct /24s spread over the space (odd multiplier: a bijection mod 2^24).
    Prefix::v4(i.wrapping_mul(0x9E37_79B1) << 8, 24).unwrap()
}

fn v6_prefix(i: u32) -> Prefix {
    // Distinct /48s under 2000::/3.
    let n = i.wrapping_mul(0x9E37_79B1) as u64;
    let hi = 0x2000_0000_0000_0000u64 | (n << 16);
    Prefix::v6((hi as u128) << 64, 48).unwrap()
}

fn attrs_for(peer: u16, group: u32, v6: bool) -> Arc<PathAttrs> {
    let r = mix(group as u64 * 7 + 3);
    let plen = 1 + (r % 6) as usize;
    let mut path = vec![65001 + peer as u32];
    path.extend((0..plen).map(|k| 1000 + ((r >> (k * 8)) & 0x7fff) as u32));
    let communities = (0..(r >> 50) % 4)
        .map(|k| (65000 << 16) | ((r >> (k * 4)) & 0xfff) as u32)
        .collect();
    let next_hop = if v6 {
        format!("2001:db8::{}", peer + 1).parse().unwrap()
    } else {
        format!("10.0.0.{}", peer + 1).parse().unwrap()
    };
    Arc::new(PathAttrs {
        as_path: AsPath::sequence(&path),
        next_hop: Some(next_hop),
        med: (r & 3 == 0).then_some((r >> 20) as u32 & 0xff),
        communities,
        ..Default::default()
    })
}

/// One peer's UPDATEs, generated lazily (so the input does not inflate RSS).
fn updates(peer: u16) -> impl Iterator<Item = RibMsg> {
    [(V4, false), (V6, true)]
        .into_iter()
        .flat_map(move |(total, v6)| {
            (0..total.div_ceil(PER_UPDATE)).map(move |g| {
                let i = g * PER_UPDATE;
                let n = PER_UPDATE.min(total - i);
                let announced = (i..i + n)
                    .map(|k| if v6 { v6_prefix(k) } else { v4_prefix(k) })
                    .collect::<Vec<_>>();
                let group = g + if v6 { V4 } else { 0 };
                RibMsg::Update {
                    peer,
                    afi: announced[0].afi(),
                    change: RouteChange {
                        withdrawn: vec![],
                        announced,
                        attrs: Some(attrs_for(peer, group, v6)),
                    },
                }
            })
        })
}

#[test]
#[ignore]
fn bench_insert_5m_paths() {
    let peers: Vec<String> = (0..PEERS)
        .map(|p| {
            format!(
                "{{name: up{p}, address: 10.0.0.{}, remote_asn: {}, role: upstream}}",
                p + 1,
                65001 + p as u32
            )
        })
        .collect();
    let cfg = Arc::new(TestConfig::embedded_default().peers(&peers).build());
    let stats = Arc::new(RibStats::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (rss0, _) = proc_memory();
    let mut rib = Rib::new(cfg.clone(), stats.clone(), None);
    let mut ctls = Vec::new();
    for p in 0..PEERS {
        let (ctl, rx) = tokio::sync::mpsc::unbounded_channel();
        ctls.push(rx);
        rib.handle(RibMsg::PeerUp {
            peer: p,
            info: SessionInfo {
                remote_as: 65001 + p as u32,
                router_id: std::net::Ipv4Addr::new(1, 1, 1, p as u8 + 1),
                remote_addr: cfg.peers[p as usize].address,
                local_addr: "10.0.0.254".parse().unwrap(),
                afis: [true, true],
                gr_preserved: [true, true],
            },
            ctl,
        });
    }
    let mut total = std::time::Duration::ZERO;
    for p in 0..PEERS {
        // Generate in chunks and time only the RIB's work.
        let mut gen = updates(p);
        let mut dt = std::time::Duration::ZERO;
        loop {
            let chunk: Vec<RibMsg> = gen.by_ref().take(4096).collect();
            if chunk.is_empty() {
                break;
            }
            let t = Instant::now();
            for m in chunk {
                rib.handle(m);
            }
            rib.flush();
            dt += t.elapsed();
        }
        total += dt;
        let (rss, _) = proc_memory();
        println!(
            "peer {p}: {:.3} s, paths {}, attr sets {}, RSS +{} MB",
            dt.as_secs_f64(),
            stats.paths.load(std::sync::atomic::Ordering::Relaxed),
            stats.attr_sets.load(std::sync::atomic::Ordering::Relaxed),
            (rss - rss0) >> 20
        );
    }
    let paths = stats.paths.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(paths, (PEERS as u64) * (V4 + V6) as u64);
    let (rss, hwm) = proc_memory();
    let s = serde_json::to_value(rib.query(&Query::Summary)).unwrap();
    let table = s["memory"]["table_bytes_estimate"].as_u64().unwrap();
    let attrs = s["memory"]["attr_bytes_estimate"].as_u64().unwrap();
    println!(
        "total insert {:.3} s for {paths} paths ({:.0} ns/path)",
        total.as_secs_f64(),
        total.as_nanos() as f64 / paths as f64
    );
    println!(
        "prefixes v4 {} v6 {}, attr sets {}",
        s["prefixes"]["ipv4"], s["prefixes"]["ipv6"], s["attr_sets"]
    );
    println!(
        "RSS delta {} MB ({:.1} B/path), HWM {} MB; table estimate {} MB ({:.1} B/path), attrs estimate {} MB ({:.1} B/path)",
        (rss - rss0) >> 20,
        (rss - rss0) as f64 / paths as f64,
        hwm >> 20,
        table >> 20,
        table as f64 / paths as f64,
        attrs >> 20,
        attrs as f64 / paths as f64,
    );
    let t = Instant::now();
    rib.handle(RibMsg::PeerDown {
        peer: 0,
        keep_stale: None,
    });
    println!(
        "peer down (1.25M paths removed, best recomputed): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let n = rib.best_routes(Afi::Ipv4).count() + rib.best_routes(Afi::Ipv6).count();
    println!(
        "Loc-RIB iteration ({n} prefixes): {:.3} s",
        t.elapsed().as_secs_f64()
    );
}
