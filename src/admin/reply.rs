//! The admin socket's replies, as serde types: built by `crate::admin`, read
//! back by `sparrowctl` and rendered by `crate::render`. The RIB's own answers
//! (`crate::rib::reply`) and the session's [`PeerStatus`] (part of the `peers`
//! reply as it is) are re-exported here, so clients need one module.
//!
//! Their JSON is the socket's API (`sparrowctl --json`, the lab tests): field
//! names and nesting are that contract. Every struct deserializes with missing
//! fields defaulted, so a client can render a partial reply.

use serde::{Deserialize, Serialize};

use crate::dns::SteeredAnswer;
pub use crate::pops::Force;
pub use crate::rib::reply::{
    BestFrom, DumpPage, DumpPath, Memory, PathInfo, PeerCounts, PeerCountsReply, PerFamily,
    RibSummary, RouteCounts, RouteReply, Segment,
};
pub use crate::session::{Direction, MessageCounts, NotificationCount, PeerStatus, Rfc7606Counts};
use crate::steer::{SnapshotStats, Source};

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

/// One peer: config, the RIB's route counts and the session's status (its
/// FSM `state`, `last_error`, counters: [`PeerStatus`] as it serializes).
///
/// The per-peer figures of a metrics collector: `state`, `flaps`,
/// `last_change_unix`; `received`, `accepted`, `advertised` per family;
/// `messages_received` / `messages_sent` by type; `notifications` by
/// direction, code and subcode; `rfc7606`; `max_prefix_events`; `eor`
/// (received) and `eor_sent` per family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerReply {
    pub name: String,
    pub address: String,
    pub remote_asn: u32,
    /// `upstream` or `pop`.
    pub role: String,
    pub since_secs: u64,
    pub uptime_secs: Option<u64>,
    /// Prefixes advertised to the peer now, per family: the RIB's `exported`
    /// plus our `originated` (`announce`) prefixes on the session.
    pub advertised: PerFamily<u64>,
    #[serde(flatten)]
    pub routes: RouteCounts,
    #[serde(flatten)]
    pub session: PeerStatus,
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
    pub answers: Vec<SteeredAnswer>,
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

/// `pops`: every POP in config order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopsReply {
    pub pops: Vec<PopInfo>,
}

/// One POP's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The operator's forced state of the POP.
    pub forced: Force,
    /// Load figure in use (manual, else measured, else 0).
    pub load: f64,
    /// The operator's load (`sparrowctl load`), if set.
    pub manual_load: Option<f64>,
    /// Shedding watermarks.
    pub low: f64,
    pub high: f64,
    /// Addresses forced up or down: (address, state).
    pub forced_addresses: Vec<(String, Force)>,
}

/// `force`: the new and the previous forced state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForceReply {
    pub pop: String,
    /// The address forced (`None`: the POP).
    pub address: Option<String>,
    pub state: Force,
    pub was: Force,
    pub changed: bool,
    /// The POP after the change.
    pub up: bool,
    pub usable: bool,
    /// Written to `admin.state_file`.
    pub saved: bool,
    pub save_error: Option<String>,
}

/// `load`: the operator's figure, the one before, and the figure in use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadReply {
    pub pop: String,
    /// The operator's figure (`None`: auto, the measured one).
    pub manual: Option<f64>,
    pub was: Option<f64>,
    /// The figure in use now.
    pub load: f64,
    pub low: f64,
    pub high: f64,
    pub saved: bool,
    pub save_error: Option<String>,
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
    /// Written to `admin.state_file`.
    pub saved: bool,
    pub save_error: Option<String>,
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

/// `announcements`: every `announce` prefix, its state, why, time since its
/// last change, and the peers whose session has it (`crate::announce`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnnouncementsReply {
    pub announcements: Vec<crate::announce::AnnounceRow>,
}

/// `health`: every checked target with each check's state, and every POP's
/// load figures (`crate::health` fills the status; forced states and the
/// effective load come from `crate::pops`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthReply {
    pub targets: Vec<HealthTarget>,
    pub loads: Vec<HealthLoad>,
}

/// One target (a POP's answer address).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthTarget {
    pub pop: String,
    pub address: String,
    /// Up after forced states (what answers may carry).
    pub up: bool,
    /// The checks' verdict (the worst of them), before forced states.
    pub checks_up: bool,
    /// Why the checks hold it down, e.g. `http 503 x3` (empty when up).
    pub detail: String,
    /// The operator's forced state of this target.
    pub forced: crate::pops::Force,
    /// The operator's forced state of its POP.
    pub pop_forced: crate::pops::Force,
    /// Its POP is up (checks, forced state).
    pub pop_up: bool,
    pub checks: Vec<HealthCheck>,
}

/// One check on one target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok` or the failure (`http 503`, `tcp connect refused`, `timeout`, ...);
    /// absent before the first run.
    pub last: Option<String>,
    /// `up`, `down`, or absent before the first result.
    pub state: Option<String>,
    /// Consecutive results like the last one.
    pub consecutive: u32,
    pub since_change_secs: Option<f64>,
}

/// One POP's load figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthLoad {
    pub pop: String,
    /// The figure the pick uses: manual if set, else measured, else 0.
    pub load: f64,
    /// Set with `sparrowctl load`.
    pub manual: Option<f64>,
    /// `pops[].capacity.url`, or `file PATH`; absent without a source.
    pub source: Option<String>,
    /// The smoothed measured figure (absent: none yet, or stale).
    pub measured: Option<f64>,
    pub last_sample: Option<f64>,
    /// Seconds since the last good poll.
    pub age_secs: Option<f64>,
    /// The last poll's error.
    pub error: Option<String>,
    pub low: f64,
    pub high: f64,
}
