//! Export encoding: the attributes a POP peer gets for our best upstream
//! paths (our ASN prepended, next-hop self, no MED / LOCAL_PREF / RR
//! attributes) and the UPDATE bytes of one export batch, grouped by attribute
//! set. Called by the session task with the RIB's `SessionCmd::Export`, next to
//! the RIB's export decisions (`rib::state`), with the session's negotiated
//! encoding (`wire::EncodeCtx`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::types::{Afi, PathAttrs, Prefix, RawAttr};
use crate::wire::{self, flag, EncodeCtx};

/// The export attributes for a POP peer: our ASN prepended, next-hop self,
/// no MED / LOCAL_PREF / RR attributes, unknown transitive ones marked Partial.
pub fn export_attrs(a: &PathAttrs, local_as: u32, nh: IpAddr) -> PathAttrs {
    PathAttrs {
        origin: a.origin,
        as_path: a.as_path.prepend(local_as),
        next_hop: Some(nh),
        next_hop_ll: None,
        med: None,
        local_pref: None,
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a.aggregator,
        communities: a.communities.clone(),
        large_communities: a.large_communities.clone(),
        ext_communities: a.ext_communities.clone(),
        originator_id: None,
        cluster_list: Vec::new(),
        other: a
            .other
            .iter()
            .filter(|r| r.flags & flag::TRANSITIVE != 0)
            .map(|r| RawAttr {
                flags: r.flags | flag::PARTIAL,
                code: r.code,
                value: r.value.clone(),
            })
            .collect(),
    }
}

/// Next-hop-self addresses for each family from the session's local address.
pub fn self_next_hops(local: IpAddr, router_id: Ipv4Addr) -> (IpAddr, IpAddr) {
    match crate::net::canonical_ip(local) {
        IpAddr::V4(v4) => (IpAddr::V4(v4), IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(v6) => (IpAddr::V4(router_id), IpAddr::V6(v6)),
    }
}

/// Encode one export batch into UPDATE bytes.
pub fn encode_export(
    enc: &EncodeCtx,
    afis: [bool; 2],
    local_as: u32,
    nh: (IpAddr, IpAddr),
    announce: &[(Prefix, Arc<PathAttrs>)],
    withdraw: &[Prefix],
    out: &mut Vec<u8>,
) -> u64 {
    let before = out.len();
    for afi in Afi::ALL {
        if !afis[afi.index()] {
            continue;
        }
        let w: Vec<Prefix> = withdraw
            .iter()
            .copied()
            .filter(|p| p.afi() == afi)
            .collect();
        if !w.is_empty() {
            wire::encode_withdraw(enc, afi, &w, out);
        }
        // Group by attribute set (the RIB shares one Arc per interned set).
        let mut groups: HashMap<*const PathAttrs, (Arc<PathAttrs>, Vec<Prefix>)> = HashMap::new();
        let mut order = Vec::new();
        for (p, a) in announce.iter().filter(|(p, _)| p.afi() == afi) {
            let key = Arc::as_ptr(a);
            groups
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    (a.clone(), Vec::new())
                })
                .1
                .push(*p);
        }
        let hop = if afi == Afi::Ipv4 { nh.0 } else { nh.1 };
        for key in order {
            let (a, ps) = &groups[&key];
            let ea = export_attrs(a, local_as, hop);
            wire::encode_announce(enc, afi, ps, &ea, out);
        }
    }
    count_msgs(&out[before..])
}

/// Number of whole BGP messages in an encoded buffer (walks the length fields).
fn count_msgs(mut buf: &[u8]) -> u64 {
    let mut n = 0;
    while buf.len() >= wire::HEADER_LEN {
        let len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
        if len < wire::HEADER_LEN || len > buf.len() {
            break;
        }
        buf = &buf[len..];
        n += 1;
    }
    n
}
