//! Admin queries: answers the RIB task builds from its tables, as the typed
//! replies of `reply` (sent as JSON by `crate::admin`).

use std::fmt::Write as _;

use super::reply::{
    BestFrom, DumpPage, DumpPath, Memory, PathInfo, PeerCounts, PeerCountsReply, PerFamily,
    QueryReply, RibSummary, RouteCounts, RouteReply, Segment,
};
use super::state::Rib;
use super::table::{Entry, PathRef, PrefixKey, Table};
use super::Query;
use crate::config::Role;
use crate::types::{
    Afi, Origin, PathAttrs, PeerId, Prefix, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET,
};

/// (VmRSS, VmHWM) in bytes from /proc/self/status (0 when unavailable).
pub fn proc_memory() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time of the calling thread, from /proc/thread-self/schedstat (zero
/// when unavailable). For benchmarks on a shared machine, where wall time
/// would count other processes' turns.
pub fn thread_cpu_time() -> std::time::Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    std::time::Duration::from_nanos(
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Upstream => "upstream",
        Role::Pop => "pop",
    }
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

fn segment_kind(k: u8) -> &'static str {
    match k {
        AS_SET => "set",
        AS_SEQUENCE => "sequence",
        AS_CONFED_SEQUENCE => "confed_sequence",
        AS_CONFED_SET => "confed_set",
        _ => "unknown",
    }
}

fn find<'a, K: PrefixKey>(t: &'a Table<K>, p: &Prefix) -> Option<&'a Entry<K>> {
    t.find(K::from_prefix(p)?).map(|i| t.entry(i))
}

impl Rib {
    pub(crate) fn query(&self, q: &Query) -> QueryReply {
        match q {
            Query::Summary => QueryReply::Summary(self.summary()),
            Query::Route { prefix, exact } => QueryReply::Route(self.route(prefix, *exact)),
            Query::PeerCounts => QueryReply::PeerCounts(self.peer_counts()),
            Query::Dump => QueryReply::Dump(self.dump_all()),
            Query::DumpPage {
                afi,
                start,
                max_bytes,
            } => QueryReply::DumpPage(match afi {
                Afi::Ipv4 => self.dump_page(&self.v4, *start, *max_bytes),
                Afi::Ipv6 => self.dump_page(&self.v6, *start, *max_bytes),
            }),
        }
    }

    fn summary(&self) -> RibSummary {
        let mut best_up = 0u64;
        let mut best_pop = 0u64;
        let mut count = |p: &PathRef| match self.core.peers[p.peer as usize].role {
            Role::Upstream => best_up += 1,
            Role::Pop => best_pop += 1,
        };
        self.v4.iter().for_each(|e| count(&e.paths[0]));
        self.v6.iter().for_each(|e| count(&e.paths[0]));
        let rejected: usize = self
            .core
            .peers
            .iter()
            .flat_map(|p| p.rejected.iter())
            .map(|s| s.capacity() * 40)
            .sum();
        let (rss, hwm) = proc_memory();
        RibSummary {
            prefixes: PerFamily::of([self.v4.len(), self.v6.len()]),
            paths: PerFamily::of([self.v4.paths(), self.v6.paths()]),
            best_from: BestFrom {
                upstream: best_up,
                pop: best_pop,
            },
            attr_sets: self.core.attrs.len(),
            memory: Memory {
                rss_bytes: rss,
                hwm_bytes: hwm,
                table_bytes_estimate: self.v4.bytes_estimate()
                    + self.v6.bytes_estimate()
                    + rejected,
                attr_bytes_estimate: self.core.attrs.bytes_estimate(),
            },
        }
    }

    fn route(&self, prefix: &Prefix, exact: bool) -> RouteReply {
        let lookup = |p: &Prefix| -> Option<(Prefix, Vec<PathRef>)> {
            match p.afi() {
                Afi::Ipv4 => find(&self.v4, p).map(|e| (e.prefix(), e.paths.to_vec())),
                Afi::Ipv6 => find(&self.v6, p).map(|e| (e.prefix(), e.paths.to_vec())),
            }
        };
        let found = if exact {
            lookup(prefix)
        } else {
            (0..=prefix.len())
                .rev()
                .find_map(|l| prefix.truncate(l).and_then(|p| lookup(&p)))
        };
        let Some((matched, paths)) = found else {
            return RouteReply {
                query: prefix.to_string(),
                prefix: None,
                paths: Vec::new(),
            };
        };
        RouteReply {
            query: prefix.to_string(),
            prefix: Some(matched.to_string()),
            paths: paths
                .iter()
                .enumerate()
                .map(|(i, p)| self.path_info(p, i == 0))
                .collect(),
        }
    }

    fn path_info(&self, p: &PathRef, best: bool) -> PathInfo {
        let pc = &self.core.cfg.peers[p.peer as usize];
        let ps = &self.core.peers[p.peer as usize];
        let a: PathAttrs = self.core.attrs.decode(p.attr);
        let router_id = std::net::Ipv4Addr::from(ps.router_id);
        let asn = ps.info.as_ref().map_or(pc.remote_asn, |i| i.remote_as);
        PathInfo {
            peer: pc.name.clone(),
            peer_address: ps.addr.to_string(),
            peer_asn: asn,
            role: role_name(pc.role).into(),
            best,
            stale: p.is_stale(),
            ebgp: ps.ebgp,
            router_id: router_id.to_string(),
            origin: origin_name(a.origin).into(),
            as_path: a.as_path.to_string(),
            as_path_segments: a
                .as_path
                .0
                .iter()
                .map(|s| Segment {
                    kind: segment_kind(s.kind).into(),
                    asns: s.asns.clone(),
                })
                .collect(),
            next_hop: a.next_hop.map(|n| n.to_string()),
            next_hop_ll: a.next_hop_ll.map(|n| n.to_string()),
            med: a.med,
            local_pref: a.local_pref.unwrap_or(100),
            communities: a
                .communities
                .iter()
                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                .collect(),
            large_communities: a
                .large_communities
                .iter()
                .map(|c| format!("{}:{}:{}", c[0], c[1], c[2]))
                .collect(),
            aggregator: a.aggregator.map(|(asn, addr)| format!("{asn} {addr}")),
            atomic_aggregate: a.atomic_aggregate,
            originator_id: a.originator_id.map(|o| o.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Every path, one object per (prefix, peer), prefixes in order, best first.
    /// Memory-hungry (a struct per path): meant for tests and small tables.
    fn dump_all(&self) -> Vec<DumpPath> {
        fn collect<K: PrefixKey>(t: &Table<K>) -> Vec<(Prefix, &[PathRef])> {
            let mut v: Vec<_> = t.iter().map(|e| (e.prefix(), &e.paths[..])).collect();
            v.sort_unstable_by_key(|(p, _)| *p);
            v
        }
        let mut out = Vec::with_capacity(self.v4.paths() + self.v6.paths());
        for (prefix, paths) in collect(&self.v4).into_iter().chain(collect(&self.v6)) {
            for (i, p) in paths.iter().enumerate() {
                out.push(DumpPath {
                    prefix: prefix.to_string(),
                    path: self.path_info(p, i == 0),
                });
            }
        }
        out
    }

    /// One page of a dump: the JSON lines of the live entries from slab slot
    /// `start` on, stopping after the entry that brings the page to
    /// `max_bytes` (an entry's paths stay together). The cursor is a slot
    /// index, so each page costs only its own entries, and nothing but the
    /// page's text is built: the RIB thread is held for one bounded page.
    fn dump_page<K: PrefixKey>(&self, t: &Table<K>, start: u32, max_bytes: usize) -> DumpPage {
        let mut lines = String::new();
        let mut paths = 0;
        let end = t.slot_count();
        let mut idx = start;
        while idx < end && lines.len() < max_bytes {
            let e = t.entry(idx);
            idx += 1;
            if e.paths.is_empty() {
                continue;
            }
            let prefix = e.prefix().to_string();
            for (i, p) in e.paths.iter().enumerate() {
                let d = DumpPath {
                    prefix: prefix.clone(),
                    path: self.path_info(p, i == 0),
                };
                // Through a `Value`: its keys in name order, as every reply.
                let v = serde_json::to_value(&d).unwrap_or_default();
                let _ = writeln!(lines, "{v}");
                paths += 1;
            }
        }
        DumpPage {
            lines,
            paths,
            next: (idx < end).then_some(idx),
        }
    }

    fn peer_counts(&self) -> PeerCountsReply {
        let peers = self
            .core
            .cfg
            .peers
            .iter()
            .zip(&self.core.peers)
            .enumerate()
            .map(|(i, (pc, ps))| PeerCounts {
                peer: pc.name.clone(),
                routes: RouteCounts {
                    received: PerFamily::of([ps.received(0), ps.received(1)]),
                    accepted: PerFamily::of(ps.accepted),
                    exported: PerFamily::of(Afi::ALL.map(|a| self.exported(i as PeerId, a))),
                    eor: PerFamily::of(ps.eor),
                    max_prefix_exceeded: PerFamily::of(ps.max_exceeded),
                    max_prefix_events: PerFamily::of(ps.max_prefix_events),
                },
            })
            .collect();
        PeerCountsReply { peers }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use super::super::{Query, QueryReply, Rib, RibMsg, RibStats, SessionInfo};
    use crate::testutil::TestConfig;
    use crate::types::{Afi, AsPath, PathAttrs, Prefix, RouteChange};

    const PEERS: u16 = 3;

    /// Three upstreams with overlapping IPv4 and IPv6 tables, some prefixes
    /// withdrawn again so the table has free slots between live entries.
    fn rib() -> Rib {
        let peers: Vec<String> = (0..PEERS)
            .map(|p| {
                format!(
                    "{{name: up{p}, address: 10.0.0.{}, remote_asn: {}, role: upstream}}",
                    p + 1,
                    65001 + u32::from(p)
                )
            })
            .collect();
        let cfg = Arc::new(TestConfig::embedded_default().peers(&peers).build());
        let mut rib = Rib::new(cfg.clone(), Arc::new(RibStats::default()), None);
        for p in 0..PEERS {
            let (ctl, _rx) = tokio::sync::mpsc::unbounded_channel();
            rib.handle(RibMsg::PeerUp {
                peer: p,
                info: SessionInfo {
                    remote_as: 65001 + u32::from(p),
                    router_id: Ipv4Addr::new(1, 1, 1, p as u8 + 1),
                    remote_addr: cfg.peers[p as usize].address,
                    local_addr: "10.0.0.254".parse().unwrap(),
                    afis: [true, true],
                    gr_preserved: [true, true],
                },
                ctl,
            });
            let v4: Vec<Prefix> = (0..1500u32 + 500 * u32::from(p))
                .map(|i| Prefix::v4(0x0a00_0000 | (i << 8), 24).unwrap())
                .collect();
            let v6: Vec<Prefix> = (0..300u128)
                .map(|i| Prefix::v6((0x2001_0db8u128 << 96) | (i << 80), 48).unwrap())
                .collect();
            for (afi, announced) in [(Afi::Ipv4, v4), (Afi::Ipv6, v6)] {
                let attrs = PathAttrs {
                    as_path: AsPath::sequence(&[65001 + u32::from(p), 64500, 64501]),
                    next_hop: Some(if afi == Afi::Ipv4 {
                        format!("10.0.0.{}", p + 1).parse().unwrap()
                    } else {
                        "2001:db8::9".parse().unwrap()
                    }),
                    communities: vec![(64500 << 16) | u32::from(p)],
                    ..Default::default()
                };
                rib.handle(RibMsg::Update {
                    peer: p,
                    afi,
                    change: RouteChange {
                        withdrawn: vec![],
                        announced,
                        attrs: Some(Arc::new(attrs)),
                    },
                });
            }
        }
        // The last peer's extra prefixes go again: free slots inside the table.
        let gone: Vec<Prefix> = (2500..3000u32)
            .step_by(3)
            .map(|i| Prefix::v4(0x0a00_0000 | (i << 8), 24).unwrap())
            .collect();
        rib.handle(RibMsg::Update {
            peer: PEERS - 1,
            afi: Afi::Ipv4,
            change: RouteChange {
                withdrawn: gone,
                announced: vec![],
                attrs: None,
            },
        });
        rib.flush();
        rib
    }

    /// Pages bounded in bytes, a slot cursor: every path exactly once, as
    /// many lines as the RIB holds paths, the same objects as the one-shot dump.
    #[test]
    fn dump_pages_return_every_path_once() {
        let rib = rib();
        let held = rib.v4.paths() + rib.v6.paths();
        const MAX: usize = 8 * 1024;
        let mut lines = Vec::new();
        let mut pages = 0;
        for afi in Afi::ALL {
            let mut start = Some(0);
            while let Some(s) = start {
                let q = Query::DumpPage {
                    afi,
                    start: s,
                    max_bytes: MAX,
                };
                let QueryReply::DumpPage(p) = rib.query(&q) else {
                    panic!("not a dump page");
                };
                pages += 1;
                // One entry (3 paths of well under 1 KiB) may cross the bound.
                assert!(p.lines.len() < MAX + 3 * 1024, "{}", p.lines.len());
                assert_eq!(p.lines.lines().count(), p.paths);
                lines.extend(p.lines.lines().map(String::from));
                assert!(p.next.is_none_or(|n| n > s), "cursor moves on");
                start = p.next;
            }
        }
        assert!(pages > 20, "{pages} pages");
        assert_eq!(lines.len(), held);
        let objs: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let keys: HashSet<(String, String)> = objs
            .iter()
            .map(|o| (o["prefix"].to_string(), o["peer"].to_string()))
            .collect();
        assert_eq!(keys.len(), held, "no (prefix, peer) twice");
        let QueryReply::Dump(all) = rib.query(&Query::Dump) else {
            panic!("not a dump");
        };
        let mut want: Vec<String> = all
            .iter()
            .map(|d| serde_json::to_value(d).unwrap().to_string())
            .collect();
        let mut got: Vec<String> = objs.iter().map(|o| o.to_string()).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }
}
