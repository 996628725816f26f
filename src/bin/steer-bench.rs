//! `steer-bench`: steering snapshot benchmark on real table content.
//!
//! Loads K text tables (`prefix|as path|next hop`, the anchors' `gen_tables.py`
//! output) into a `sparrow::rib::Rib` as the first K peers of a sparrowd config
//! (which must be `upstream` peers), then measures, on that RIB:
//! - `steer::build` (rank every prefix + build both LPMs, synchronous);
//! - the daemon's path: `steer::Publisher::attach` + the builder thread's
//!   first publication, then single-prefix changes (announce / withdraw of a
//!   more-specific, through `Rib::handle` + `Publisher::sync`) until the next
//!   generation is published;
//! - `steer::select` ns per lookup on the published snapshot, for random and
//!   for in-table addresses, IPv4 and IPv6 separately (thread CPU time and
//!   wall time), and checks that it agrees with the `build` snapshot.
//!
//! Prints one JSON object per measurement on stdout (human notes on stderr).
//! Usage: `steer-bench --config FILE --tables a.txt,b.txt,... [--lookups N]`

#![deny(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;
use sparrow::config;
use sparrow::rib::{proc_memory, thread_cpu_time as cpu, Rib, RibMsg, RibStats, SessionInfo};
use sparrow::steer::{self, Snapshot, Source};
use sparrow::types::{Afi, AsPath, PathAttrs, PeerId, Prefix, RouteChange};

#[derive(Parser, Debug)]
#[command(
    name = "steer-bench",
    about = "steering snapshot benchmark on real tables"
)]
struct Args {
    /// sparrowd config (pops, peers); table i feeds peers[i].
    #[arg(long)]
    config: PathBuf,
    /// Comma-separated text tables, one per upstream peer.
    #[arg(long, value_delimiter = ',')]
    tables: Vec<PathBuf>,
    /// Addresses per lookup set.
    #[arg(long, default_value_t = 10_000_000)]
    lookups: usize,
    /// Timed passes over each lookup set (best and median reported).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Single-prefix changes timed through the publisher, per family.
    #[arg(long, default_value_t = 20)]
    changes: usize,
}

/// Makes the i-th address of a lookup set from a random number.
type AddrGen<'a> = Box<dyn Fn(u64) -> IpAddr + 'a>;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn rss_mib() -> f64 {
    proc_memory().0 as f64 / (1024.0 * 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

/// Feed one table as `peer`'s Adj-RIB-In, runs of equal attributes per UPDATE.
/// Returns the v4 and v6 prefixes read.
fn load_table(
    rib: &mut Rib,
    peer: PeerId,
    path: &PathBuf,
    pfx4: &mut Vec<(u32, u8)>,
    pfx6: &mut Vec<(u128, u8)>,
) -> anyhow::Result<usize> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut n = 0usize;
    let mut run: Vec<Prefix> = Vec::new();
    let mut run_key = String::new();
    let mut run_attrs: Option<Arc<PathAttrs>> = None;
    let flush = |rib: &mut Rib, run: &mut Vec<Prefix>, attrs: &Option<Arc<PathAttrs>>| {
        if let (Some(first), Some(a)) = (run.first(), attrs) {
            rib.handle(RibMsg::Update {
                peer,
                afi: first.afi(),
                change: RouteChange {
                    withdrawn: vec![],
                    announced: std::mem::take(run),
                    attrs: Some(a.clone()),
                },
            });
        }
        run.clear();
    };
    for line in BufReader::with_capacity(1 << 20, f).lines() {
        let line = line?;
        let mut it = line.split('|');
        let (Some(p), Some(path_s), Some(nh)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(p) = p.parse::<Prefix>() else {
            continue;
        };
        match p {
            Prefix::V4 { addr, len } => pfx4.push((addr, len)),
            Prefix::V6 { addr, len } => pfx6.push((addr, len)),
        }
        n += 1;
        let key_same = run_key.len() == path_s.len() + nh.len() + 1
            && run_key.starts_with(path_s)
            && run_key.ends_with(nh)
            && run.first().map(|f| f.afi()) == Some(p.afi());
        if !key_same || run.len() >= 512 {
            flush(rib, &mut run, &run_attrs);
            if !key_same {
                let asns: Vec<u32> = path_s
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect();
                run_attrs = Some(Arc::new(PathAttrs {
                    as_path: AsPath::sequence(&asns),
                    next_hop: nh.parse().ok(),
                    ..Default::default()
                }));
                run_key = format!("{path_s}|{nh}");
            }
        }
        run.push(p);
    }
    flush(rib, &mut run, &run_attrs);
    Ok(n)
}

/// Wait (bounded) until the handle publishes a generation above `g`.
fn wait_generation(h: &steer::Handle, g: u64, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if h.load().generation() > g {
            return Some(t.elapsed());
        }
        std::thread::yield_now();
    }
    None
}

fn lookup_pass(addrs: &[IpAddr], snap: &Snapshot) -> (f64, f64, u64) {
    let mut sink = 0u64;
    let (c, w) = (cpu(), Instant::now());
    for &a in addrs {
        let d = steer::select(a, snap);
        sink = sink.wrapping_add(u64::from(d.ranking[0]) + u64::from(d.scope));
    }
    let n = addrs.len() as f64;
    (
        (cpu() - c).as_secs_f64() * 1e9 / n,
        w.elapsed().as_secs_f64() * 1e9 / n,
        sink,
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = match config::load(&args.config) {
        Ok(c) => Arc::new(c),
        Err(errs) => bail!("{}", config::format_errors(&errs)),
    };
    if args.tables.len() > cfg.peers.len() {
        bail!("more tables than peers in the config");
    }
    let rss0 = rss_mib();
    let mut rib = Rib::new(cfg.clone(), Arc::new(RibStats::default()), None);
    let mut ctl_rx = Vec::new();
    for (i, _) in args.tables.iter().enumerate() {
        let pc = &cfg.peers[i];
        if pc.role != config::Role::Upstream {
            bail!("peers[{i}] must be an upstream peer to take table {i}");
        }
        let (ctl, rx) = tokio::sync::mpsc::unbounded_channel();
        ctl_rx.push(rx);
        rib.handle(RibMsg::PeerUp {
            peer: i as PeerId,
            info: SessionInfo {
                remote_as: pc.remote_asn,
                router_id: Ipv4Addr::new(10, 255, 0, i as u8 + 1),
                remote_addr: pc.address,
                local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                afis: [true, true],
                gr_preserved: [false, false],
            },
            ctl,
        });
    }
    let mut pfx4 = Vec::new();
    let mut pfx6 = Vec::new();
    let t = Instant::now();
    let mut paths = 0;
    for (i, path) in args.tables.iter().enumerate() {
        paths += load_table(&mut rib, i as PeerId, path, &mut pfx4, &mut pfx6)?;
        for afi in Afi::ALL {
            rib.handle(RibMsg::EndOfRib {
                peer: i as PeerId,
                afi,
            });
        }
    }
    pfx4.sort_unstable();
    pfx4.dedup();
    pfx6.sort_unstable();
    pfx6.dedup();
    let rss_rib = rss_mib();
    emit(
        json!({"what": "rib_load", "tables": args.tables.len(), "paths": paths,
        "prefixes_v4": pfx4.len(), "prefixes_v6": pfx6.len(),
        "s": t.elapsed().as_secs_f64(), "rss_mib_before": rss0, "rss_mib_after": rss_rib}),
    );

    // Reference: synchronous rank + build of everything.
    let mut cpu_ms = Vec::new();
    let mut wall_ms = Vec::new();
    let mut reference = None;
    for _ in 0..3 {
        let (c, w) = (cpu(), Instant::now());
        let s = steer::build(&rib, &cfg, 1);
        cpu_ms.push((cpu() - c).as_secs_f64() * 1e3);
        wall_ms.push(w.elapsed().as_secs_f64() * 1e3);
        reference = Some(s);
    }
    let reference = reference.expect("three builds");
    let st = reference.stats();
    let (cmin, cmax) = (
        cpu_ms.iter().copied().fold(f64::MAX, f64::min),
        cpu_ms.iter().copied().fold(0.0, f64::max),
    );
    emit(
        json!({"what": "steer_build", "note": "steer::build: rank every prefix + both LPMs, one thread",
        "cpu_ms_median": median(&mut cpu_ms), "cpu_ms_min": cmin, "cpu_ms_max": cmax,
        "wall_ms_median": median(&mut wall_ms), "stats": st,
        "rss_mib_after": rss_mib()}),
    );

    // The daemon's path: Publisher + builder thread.
    let rss_before_pub = rss_mib();
    let handle = steer::handle(&cfg);
    let mut publisher = steer::Publisher::new(&cfg, handle.clone())?;
    let w = Instant::now();
    let c = cpu();
    publisher.attach(&mut rib);
    let attach_ms = w.elapsed().as_secs_f64() * 1e3;
    let attach_cpu_ms = (cpu() - c).as_secs_f64() * 1e3;
    let first = wait_generation(&handle, 0, Duration::from_secs(60))
        .context("no first publication within 60 s")?;
    let snap = handle.load_full();
    if snap.source(Afi::Ipv4) != Source::Rib || snap.source(Afi::Ipv6) != Source::Rib {
        bail!("first publication is not from the RIB for both families");
    }
    emit(
        json!({"what": "publisher_first", "note": "Publisher::attach (ranks on the calling thread) then builder thread's first publication",
        "attach_ms": attach_ms, "attach_cpu_ms": attach_cpu_ms,
        "attach_to_published_ms": attach_ms + first.as_secs_f64() * 1e3,
        "stats": snap.stats(), "rss_mib_growth": rss_mib() - rss_before_pub}),
    );
    drop(snap);

    // Single changes: a /24 (v4) or /48 (v6) more-specific of a shorter table
    // prefix, from peer 0, announced then withdrawn.
    let lens4: Vec<(u32, u8)> = pfx4
        .iter()
        .copied()
        .filter(|&(_, l)| (16..=22).contains(&l))
        .collect();
    let lens6: Vec<(u128, u8)> = pfx6
        .iter()
        .copied()
        .filter(|&(_, l)| (29..=40).contains(&l))
        .collect();
    let set4: std::collections::HashSet<(u32, u8)> = pfx4.iter().copied().collect();
    let set6: std::collections::HashSet<(u128, u8)> = pfx6.iter().copied().collect();
    let pc0 = &cfg.peers[0];
    let first_as = pc0.remote_asn;
    for (fam, n) in [("v4", lens4.len()), ("v6", lens6.len())] {
        if n == 0 {
            continue;
        }
        let mut lat = Vec::new();
        let mut k = 0u64;
        while lat.len() < 2 * args.changes && k < 10_000 {
            k += 1;
            let r = mix(k ^ 0x5eed);
            let q = if fam == "v4" {
                let (a, _) = lens4[(r % n as u64) as usize];
                if set4.contains(&(a, 24)) {
                    continue;
                }
                Prefix::v4(a, 24)
            } else {
                let (a, _) = lens6[(r % n as u64) as usize];
                if set6.contains(&(a, 48)) {
                    continue;
                }
                Prefix::v6(a, 48)
            };
            let Some(q) = q else { continue };
            let attrs = Arc::new(PathAttrs {
                as_path: AsPath::sequence(&[first_as, 64512 + (k % 1000) as u32]),
                next_hop: Some(match q.afi() {
                    Afi::Ipv4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    Afi::Ipv6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                }),
                ..Default::default()
            });
            for announce in [true, false] {
                // Quiet period so the builder builds at once (as after any quiet time).
                std::thread::sleep(Duration::from_millis(150));
                let g = handle.load().generation();
                let t = Instant::now();
                let change = if announce {
                    RouteChange {
                        withdrawn: vec![],
                        announced: vec![q],
                        attrs: Some(attrs.clone()),
                    }
                } else {
                    RouteChange {
                        withdrawn: vec![q],
                        announced: vec![],
                        attrs: None,
                    }
                };
                rib.handle(RibMsg::Update {
                    peer: 0,
                    afi: q.afi(),
                    change,
                });
                publisher.sync(&mut rib);
                let Some(_) = wait_generation(&handle, g, Duration::from_secs(5)) else {
                    bail!("change of {q} not published within 5 s");
                };
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                let snap = handle.load();
                let d = steer::select(q.addr(), &snap);
                if announce && d.prefix != Some(q) {
                    // Compressed away: same ranking as its cover. Still a rebuild.
                    eprintln!("note: {q} has its cover's ranking (compressed)");
                }
            }
        }
        let (mn, mx) = (
            lat.iter().copied().fold(f64::MAX, f64::min),
            lat.iter().copied().fold(0.0, f64::max),
        );
        let cnt = lat.len();
        let mut s = lat.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        let p99 = s[((cnt as f64 * 0.99).ceil() as usize)
            .saturating_sub(1)
            .min(cnt - 1)];
        emit(
            json!({"what": "publisher_change", "family": fam, "changes": cnt,
            "note": "Rib::handle + Publisher::sync of one more-specific until the next generation is published",
            "ms_median": median(&mut lat), "ms_min": mn, "ms_p99": p99, "ms_max": mx}),
        );
    }

    // Lookups on the published snapshot.
    let snap = handle.load_full();
    let n = args.lookups;
    let sets: [(&str, AddrGen); 4] = [
        (
            "v4 uniform random",
            Box::new(|r: u64| IpAddr::V4(Ipv4Addr::from(r as u32))),
        ),
        (
            "v4 inside announced prefixes",
            Box::new(|r: u64| {
                let (a, l) = pfx4[(r % pfx4.len() as u64) as usize];
                let host = if l >= 32 { 0 } else { (r >> 32) as u32 >> l };
                IpAddr::V4(Ipv4Addr::from(a | host))
            }),
        ),
        (
            "v6 uniform random in 2000::/3",
            Box::new(|r: u64| {
                let rnd = (u128::from(mix(r)) << 64) | u128::from(r);
                IpAddr::V6(Ipv6Addr::from((rnd >> 3) | (1u128 << 125)))
            }),
        ),
        (
            "v6 inside announced prefixes",
            Box::new(|r: u64| {
                let (a, l) = pfx6[(r % pfx6.len() as u64) as usize];
                let rnd = (u128::from(mix(r)) << 64) | u128::from(r);
                let host = if l >= 128 { 0 } else { rnd >> l };
                IpAddr::V6(Ipv6Addr::from(a | host))
            }),
        ),
    ];
    for (si, (name, gen)) in sets.iter().enumerate() {
        let addrs: Vec<IpAddr> = (0..n as u64)
            .map(|i| gen(mix(i ^ ((si as u64 + 1) << 40))))
            .collect();
        // Agreement with the synchronous reference (first POP and prefix).
        let mut diff = 0usize;
        for &a in addrs.iter().take(200_000) {
            let (x, y) = (steer::select(a, &snap), steer::select(a, &reference));
            if x.ranking != y.ranking || x.prefix != y.prefix || x.scope != y.scope {
                diff += 1;
            }
        }
        let mut cpu_ns = Vec::new();
        let mut wall_ns = Vec::new();
        let mut hits = 0u64;
        let mut sink = 0;
        for _ in 0..args.passes.max(1) {
            let (c, w, s) = lookup_pass(&addrs, &snap);
            cpu_ns.push(c);
            wall_ns.push(w);
            sink = s;
        }
        for &a in addrs.iter().take(1_000_000) {
            if steer::select(a, &snap).prefix.is_some() {
                hits += 1;
            }
        }
        let best = cpu_ns.iter().copied().fold(f64::MAX, f64::min);
        let worst = cpu_ns.iter().copied().fold(0.0, f64::max);
        emit(
            json!({"what": "select", "set": name, "addresses": n, "passes": cpu_ns.len(),
            "cpu_ns_median": median(&mut cpu_ns), "cpu_ns_min": best, "cpu_ns_max": worst,
            "wall_ns_median": median(&mut wall_ns),
            "matched_fraction": hits as f64 / n.min(1_000_000) as f64,
            "disagree_with_build_of_200k": diff, "sink": sink}),
        );
    }
    drop(snap);
    drop(publisher);
    drop(ctl_rx);
    Ok(())
}
