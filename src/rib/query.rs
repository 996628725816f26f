//! Admin queries: JSON answers rendered by `sparrowctl`.

use serde_json::{json, Value};

use super::state::Rib;
use super::table::{Entry, PathRef, PrefixKey, Table};
use super::Query;
use crate::config::Role;
use crate::types::{
    Afi, Origin, PathAttrs, Prefix, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET,
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
    pub(crate) fn query(&self, q: &Query) -> Value {
        match q {
            Query::Summary => self.summary(),
            Query::Route { prefix, exact } => self.route(prefix, *exact),
            Query::PeerCounts => self.peer_counts(),
            Query::Dump => self.dump_all(),
            Query::DumpPage { afi, start, limit } => match afi {
                Afi::Ipv4 => self.dump_page(&self.v4, *start, *limit),
                Afi::Ipv6 => self.dump_page(&self.v6, *start, *limit),
            },
        }
    }

    fn summary(&self) -> Value {
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
        json!({
            "prefixes": {"ipv4": self.v4.len(), "ipv6": self.v6.len()},
            "paths": {"ipv4": self.v4.paths(), "ipv6": self.v6.paths()},
            "best_from": {"upstream": best_up, "pop": best_pop},
            "attr_sets": self.core.attrs.len(),
            "memory": {
                "rss_bytes": rss,
                "hwm_bytes": hwm,
                "table_bytes_estimate": self.v4.bytes_estimate() + self.v6.bytes_estimate() + rejected,
                "attr_bytes_estimate": self.core.attrs.bytes_estimate(),
            },
        })
    }

    fn route(&self, prefix: &Prefix, exact: bool) -> Value {
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
            return json!({"query": prefix.to_string(), "prefix": null, "paths": []});
        };
        let paths: Vec<Value> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| self.path_json(p, i == 0))
            .collect();
        json!({"query": prefix.to_string(), "prefix": matched.to_string(), "paths": paths})
    }

    fn path_json(&self, p: &PathRef, best: bool) -> Value {
        let pc = &self.core.cfg.peers[p.peer as usize];
        let ps = &self.core.peers[p.peer as usize];
        let a: PathAttrs = self.core.attrs.decode(p.attr);
        let router_id = std::net::Ipv4Addr::from(ps.router_id);
        let asn = ps.info.as_ref().map_or(pc.remote_asn, |i| i.remote_as);
        json!({
            "peer": pc.name,
            "peer_address": ps.addr.to_string(),
            "peer_asn": asn,
            "role": role_name(pc.role),
            "best": best,
            "stale": p.is_stale(),
            "ebgp": ps.ebgp,
            "router_id": router_id.to_string(),
            "origin": origin_name(a.origin),
            "as_path": a.as_path.to_string(),
            "as_path_segments": a.as_path.0.iter().map(|s| json!({
                "kind": segment_kind(s.kind),
                "asns": s.asns,
            })).collect::<Vec<_>>(),
            "next_hop": a.next_hop.map(|n| n.to_string()),
            "next_hop_ll": a.next_hop_ll.map(|n| n.to_string()),
            "med": a.med,
            "local_pref": a.local_pref.unwrap_or(100),
            "communities": a.communities.iter().map(|c| format!("{}:{}", c >> 16, c & 0xffff)).collect::<Vec<_>>(),
            "large_communities": a.large_communities.iter().map(|c| format!("{}:{}:{}", c[0], c[1], c[2])).collect::<Vec<_>>(),
            "aggregator": a.aggregator.map(|(asn, addr)| format!("{asn} {addr}")),
            "atomic_aggregate": a.atomic_aggregate,
            "originator_id": a.originator_id.map(|o| o.to_string()),
            "cluster_list": a.cluster_list.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        })
    }

    /// Every path, one object per (prefix, peer), prefixes in order, best first.
    /// Memory-hungry (a JSON value per path): meant for tests and small tables.
    fn dump_all(&self) -> Value {
        fn collect<K: PrefixKey>(t: &Table<K>) -> Vec<(Prefix, &[PathRef])> {
            let mut v: Vec<_> = t.iter().map(|e| (e.prefix(), &e.paths[..])).collect();
            v.sort_unstable_by_key(|(p, _)| *p);
            v
        }
        let mut out = Vec::with_capacity(self.v4.paths() + self.v6.paths());
        for (prefix, paths) in collect(&self.v4).into_iter().chain(collect(&self.v6)) {
            for (i, p) in paths.iter().enumerate() {
                let mut v = self.path_json(p, i == 0);
                if let Value::Object(m) = &mut v {
                    m.insert("prefix".into(), Value::String(prefix.to_string()));
                }
                out.push(v);
            }
        }
        Value::Array(out)
    }

    fn dump_page<K: PrefixKey>(&self, t: &Table<K>, start: usize, limit: usize) -> Value {
        let mut out = Vec::new();
        let mut seen = 0;
        for e in t.iter().skip(start).take(limit) {
            seen += 1;
            let prefix = Value::String(e.prefix().to_string());
            for (i, p) in e.paths.iter().enumerate() {
                let mut v = self.path_json(p, i == 0);
                if let Value::Object(m) = &mut v {
                    m.insert("prefix".into(), prefix.clone());
                }
                out.push(v);
            }
        }
        let next = (seen == limit && start + limit < t.len()).then_some(start + limit);
        json!({"paths": out, "next": next})
    }

    fn peer_counts(&self) -> Value {
        let peers: Vec<Value> = self
            .core
            .cfg
            .peers
            .iter()
            .zip(&self.core.peers)
            .map(|(pc, ps)| {
                json!({
                    "peer": pc.name,
                    "received": {"ipv4": ps.received(0), "ipv6": ps.received(1)},
                    "accepted": {"ipv4": ps.accepted[0], "ipv6": ps.accepted[1]},
                    "eor": {"ipv4": ps.eor[0], "ipv6": ps.eor[1]},
                    "max_prefix_exceeded": {"ipv4": ps.max_exceeded[0], "ipv6": ps.max_exceeded[1]},
                })
            })
            .collect();
        json!({ "peers": peers })
    }
}
