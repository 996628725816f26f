//! Which sessions a replay opens: one [`PeerPlan`] per selected collector
//! peer with routes, with its loopback source address and BGP identifier.
//! Reads the loaded [`crate::mrt::Table`] and [`crate::args::Args`];
//! [`crate::encode`], [`crate::client`] and [`crate::report`] use the plans.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::args::Args;
use crate::mrt::{Group, PeerRoutes};

/// One session to open: the collector peer it speaks for and what it sends.
pub struct PeerPlan {
    /// Index of the collector peer (as in `--list-peers` and `--peers`).
    pub index: usize,
    pub ip: IpAddr,
    pub asn: u32,
    /// Local source address of the session.
    pub bind: IpAddr,
    pub router_id: Ipv4Addr,
    pub groups: Vec<Group>,
    /// Whether the peer has routes of each family (by `Afi::index()`).
    pub has: [bool; 2],
}

/// Source address of peer `index`: `base + index` (carrying into higher octets).
pub fn bind_addr(base: IpAddr, index: usize) -> Option<IpAddr> {
    match base {
        IpAddr::V4(b) => u32::from(b)
            .checked_add(u32::try_from(index).ok()?)
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        IpAddr::V6(b) => u128::from(b)
            .checked_add(index as u128)
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    }
}

/// BGP identifier of peer `index`: 10.0.0.0 + index + 1.
pub fn router_id(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0000u32.wrapping_add((index as u32 & 0x00ff_ffff) + 1))
}

/// Plans for the peers selected by `--peers` that have routes, in table order.
/// Errors when a source address would leave loopback, or nothing is left to replay.
pub fn plan_peers(peers: Vec<PeerRoutes>, args: &Args) -> Result<Vec<Arc<PeerPlan>>> {
    let mut plans = Vec::new();
    for (i, p) in peers.into_iter().enumerate() {
        if !args.selected(i) || p.total() == 0 {
            continue;
        }
        let bind = bind_addr(args.bind_base, i)
            .filter(|a| a.is_loopback())
            .ok_or_else(|| {
                anyhow!(
                    "peer {i}: source address {} + {i} is not a loopback address",
                    args.bind_base
                )
            })?;
        plans.push(Arc::new(PeerPlan {
            index: i,
            ip: p.ip,
            asn: p.asn,
            bind,
            router_id: router_id(i),
            has: [p.counts[0] > 0, p.counts[1] > 0],
            groups: p.groups,
        }));
    }
    if plans.is_empty() {
        anyhow::bail!("no routes to replay");
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn bind_and_router_id() {
        let base = IpAddr::from_str("127.0.1.1").unwrap();
        assert_eq!(bind_addr(base, 0).unwrap().to_string(), "127.0.1.1");
        assert_eq!(bind_addr(base, 35).unwrap().to_string(), "127.0.1.36");
        assert_eq!(bind_addr(base, 300).unwrap().to_string(), "127.0.2.45");
        assert_eq!(router_id(0).to_string(), "10.0.0.1");
        assert_ne!(router_id(1), router_id(2));
    }
}
