//! Output: how replay-mode JSON event lines are written ([`emit`], with `t`
//! in seconds since start from [`now_t`]), the `loaded` and `notification`
//! events, the `--list-peers` array and the `--dump-text` route lines. Reads the loaded
//! [`crate::mrt::Table`] and the [`crate::plan::PeerPlan`]s; writes to stdout.

use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::json;
use sparrow::types::{Origin, PathAttrs, Prefix};
use sparrow::wire::{self, Notification};

use crate::args::Args;
use crate::mrt::Table;
use crate::plan::{bind_addr, router_id, PeerPlan};

/// When the tool started (the first call; `main` makes it early).
pub fn start_time() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Seconds since the tool started, millisecond resolution.
pub fn now_t() -> f64 {
    (start_time().elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Print one JSON event line on stdout (replay mode) and flush it.
pub fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "IGP",
        Origin::Egp => "EGP",
        Origin::Incomplete => "INCOMPLETE",
    }
}

fn communities_str(pa: &PathAttrs) -> String {
    let mut parts: Vec<String> = pa
        .communities
        .iter()
        .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
        .collect();
    parts.extend(
        pa.large_communities
            .iter()
            .map(|l| format!("{}:{}:{}", l[0], l[1], l[2])),
    );
    parts.join(" ")
}

/// One `--dump-text` line.
pub fn route_line(peer_ip: IpAddr, prefix: &Prefix, pa: &PathAttrs) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        peer_ip,
        prefix,
        pa.as_path,
        origin_str(pa.origin),
        pa.next_hop.map(|n| n.to_string()).unwrap_or_default(),
        pa.med.map(|m| m.to_string()).unwrap_or_default(),
        communities_str(pa),
    )
}

/// The `loaded` event: what was read and kept.
pub fn stats_json(table: &Table) -> serde_json::Value {
    let s = &table.stats;
    json!({
        "event": "loaded",
        "files": s.files,
        "records": s.records,
        "entries": s.entries,
        "peers": table.peers.len(),
        "routes": table.peers.iter().map(|p| p.total()).sum::<usize>(),
        "groups": table.peers.iter().map(|p| p.groups.len()).sum::<usize>(),
        "skipped": table.peers.iter().map(|p| p.skipped).sum::<usize>(),
        "duplicates": table.peers.iter().map(|p| p.duplicates).sum::<usize>(),
        "other_records": s.other_records,
        "parse_errors": s.parse_errors,
        "truncated": s.truncated,
        "t": now_t(),
    })
}

/// The `--list-peers` array: one object per session a replay would open.
pub fn list_peers_json(table: &Table, args: &Args) -> serde_json::Value {
    let peers: Vec<serde_json::Value> = table
        .peers
        .iter()
        .enumerate()
        .filter(|(i, p)| args.selected(*i) && p.total() > 0)
        .map(|(i, p)| {
            json!({
                "index": i,
                "peer_ip": p.ip.to_string(),
                "peer_asn": p.asn,
                "bind": bind_addr(args.bind_base, i).map(|a| a.to_string()),
                "router_id": router_id(i).to_string(),
                "v4": p.counts[0],
                "v6": p.counts[1],
                "skipped": p.skipped,
                "duplicates": p.duplicates,
            })
        })
        .collect();
    serde_json::Value::Array(peers)
}

/// Write the `--dump-text` lines of the selected peers to stdout.
pub fn dump_text(table: &Table, args: &Args) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for (i, p) in table.peers.iter().enumerate() {
        if !args.selected(i) {
            continue;
        }
        for g in &p.groups {
            for prefix in &g.prefixes {
                writeln!(out, "{}", route_line(p.ip, prefix, &g.attrs))?;
            }
        }
    }
    out.flush()
}

/// A `notification` event for a NOTIFICATION received (or sent) on `peer`'s session.
pub fn notification_json(peer: &PeerPlan, n: &Notification, received: bool) -> serde_json::Value {
    let data: String = n.data.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "event": "notification",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "direction": if received { "received" } else { "sent" },
        "code": n.code,
        "subcode": n.subcode,
        "name": wire::notification_name(n.code, n.subcode),
        "data": data,
        "t": now_t(),
    })
}
