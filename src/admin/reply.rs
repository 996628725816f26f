//! The admin socket's replies, as serde types: built by `crate::admin`, read
//! back by `sparrowctl` and rendered by `crate::render`. The RIB's own answers
//! (`crate::rib::reply`) are re-exported here, so clients need one module.
//!
//! Their JSON is the socket's API (`sparrowctl --json`, the lab tests): field
//! names and nesting are that contract. Every struct deserializes with missing
//! fields defaulted, so a client can render a partial reply.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::dns::SteeredAnswer;
pub use crate::rib::reply::{
    BestFrom, DumpPage, DumpPath, Memory, PathInfo, PeerCounts, PeerCountsReply, PerFamily,
    RibSummary, RouteReply, Segment,
};
use crate::session::PeerStatus;
use crate::steer::{SnapshotStats, Source};

/// The name a value serializes to (a unit enum variant: `Established`, `ipv4`).
fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `summary`: the RIB's counts plus daemon, steering and session totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryReply {
    #[serde(flatten)]
    pub rib: RibSummary,
    pub uptime_secs: u64,
    pub local_asn: u32,
    pub router_id: String,
    pub pop: String,
    pub steering: SteeringSummary,
    pub peers: PeerTotals,
}

/// The published steering snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SteeringSummary {
    pub generation: u64,
    pub stats: SnapshotStats,
    pub source_v4: Source,
    pub source_v6: Source,
}

/// Sessions configured and Established.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerTotals {
    pub configured: usize,
    pub established: usize,
}

/// `peers`: one per configured peer, in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeersReply {
    pub peers: Vec<PeerReply>,
}

/// One peer: config, session state and the RIB's route counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerReply {
    pub name: String,
    pub address: String,
    pub remote_asn: u32,
    /// `upstream` or `pop`.
    pub role: String,
    /// FSM state name (`Idle` ... `Established`).
    pub state: String,
    pub since_secs: u64,
    pub uptime_secs: Option<u64>,
    pub received: PerFamily<u64>,
    pub accepted: PerFamily<u64>,
    pub eor: PerFamily<bool>,
    pub max_prefix_exceeded: PerFamily<bool>,
    #[serde(flatten)]
    pub session: SessionStatus,
}

/// What the session task reports for a peer (`session::PeerStatus`, without
/// its state and timestamps, which [`PeerReply`] carries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionStatus {
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
    pub remote_router_id: Option<Ipv4Addr>,
    pub local_address: Option<SocketAddr>,
    pub remote_address: Option<SocketAddr>,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    pub as4: bool,
    /// Negotiated families (`ipv4`, `ipv6`).
    pub families: Vec<String>,
    pub route_refresh: bool,
    pub extended_message: bool,
    pub graceful_restart: bool,
    pub established_count: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
}

impl SessionStatus {
    /// The session's state name, as [`PeerReply::state`] holds it.
    pub fn state_name(s: &PeerStatus) -> String {
        serde_name(&s.state)
    }
}

impl From<&PeerStatus> for SessionStatus {
    fn from(s: &PeerStatus) -> SessionStatus {
        SessionStatus {
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at,
            remote_router_id: s.remote_router_id,
            local_address: s.local_address,
            remote_address: s.remote_address,
            hold_time: s.hold_time,
            keepalive: s.keepalive,
            as4: s.as4,
            families: s.families.iter().map(serde_name).collect(),
            route_refresh: s.route_refresh,
            extended_message: s.extended_message,
            graceful_restart: s.graceful_restart,
            established_count: s.established_count,
            updates_received: s.updates_received,
            updates_sent: s.updates_sent,
            notifications_sent: s.notifications_sent,
            notifications_received: s.notifications_received,
        }
    }
}

/// `explain`: the steering decision for an address and the facts behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainReply {
    pub address: String,
    /// The snapshot's matched prefix (`None`: nothing covers the address).
    pub prefix: Option<String>,
    /// Safe ECS scope length.
    pub scope: u8,
    /// POP names, closest first.
    pub ranking: Vec<String>,
    pub generation: u64,
    pub source: Source,
    /// The RIB's longest match.
    pub rib_prefix: Option<String>,
    pub best_path: Option<BestPath>,
    /// The POP ASN the closest-POP rule found in the best path.
    pub pop_asn: Option<PopAsn>,
    /// The rule that decided, in words.
    pub rule: String,
    /// The ranking's POPs with their state (drains and downs decide who answers).
    pub ranking_state: Vec<PopRankState>,
    /// What each steered name answers.
    pub answers: Vec<ExplainAnswer>,
}

/// The RIB's best path, in brief.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BestPath {
    pub peer: String,
    pub as_path: String,
    pub next_hop: Option<String>,
    pub origin: String,
}

/// The POP ASN that decided: its POP and place in the path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopAsn {
    pub asn: u32,
    pub pop: String,
    /// 0-based, in path order.
    pub position: usize,
    /// ASNs in the path.
    pub path_length: usize,
}

/// One POP of a ranking and its state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopRankState {
    pub pop: Option<String>,
    pub local: bool,
    pub up: bool,
    pub drained: bool,
}

/// What one steered name answers (`dns::SteeredAnswer` on the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainAnswer {
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: String,
    pub pop: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    /// POPs passed over and why (`down`, `drained`, `no records`).
    pub skipped: Vec<(String, String)>,
}

impl From<&SteeredAnswer> for ExplainAnswer {
    fn from(a: &SteeredAnswer) -> ExplainAnswer {
        ExplainAnswer {
            name: a.name.clone(),
            rtype: a.rtype.into(),
            pop: a.pop.clone(),
            addresses: a.addresses.clone(),
            ttl: a.ttl,
            skipped: a
                .skipped
                .iter()
                .map(|(p, why)| (p.clone(), (*why).into()))
                .collect(),
        }
    }
}

/// `pops`: every POP in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopsReply {
    pub pops: Vec<PopInfo>,
}

/// One POP's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopInfo {
    pub name: String,
    pub asn: Option<u32>,
    pub local: bool,
    /// The local POP, or one of its `pop` sessions Established (or none configured).
    pub up: bool,
    /// Some session watches it.
    pub monitored: bool,
    pub drained: bool,
    /// Up and not drained: answers may use it.
    pub usable: bool,
}

/// `drain` / `undrain`: the new state and the one before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainReply {
    pub pop: String,
    pub was_drained: bool,
    pub drained: bool,
    pub changed: bool,
    /// Missing (an older reply): taken as up.
    #[serde(default = "up_by_default")]
    pub up: bool,
    pub usable: bool,
}

fn up_by_default() -> bool {
    true
}

/// `reset`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetReply {
    pub reset: String,
}
