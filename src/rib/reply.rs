//! The RIB's replies to admin queries, as serde types: built by `query`,
//! extended and sent on the admin socket by `crate::admin`, read back by
//! `sparrowctl` and rendered by `crate::render`. Their JSON is the admin
//! socket's API; field names and nesting are that contract.
//!
//! Every struct deserializes with missing fields defaulted, so a client can
//! render a partial reply.

use serde::{Deserialize, Serialize};

pub use crate::types::PerFamily;

/// [`Query::Summary`](super::Query::Summary).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RibSummary {
    pub prefixes: PerFamily<usize>,
    pub paths: PerFamily<usize>,
    /// Loc-RIB best paths by the role of the peer they came from.
    pub best_from: BestFrom,
    pub attr_sets: usize,
    pub memory: Memory,
}

/// Best paths by peer role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BestFrom {
    pub upstream: u64,
    pub pop: u64,
}

/// Memory figures in bytes (the process's, and the RIB's estimates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    pub table_bytes_estimate: usize,
    pub attr_bytes_estimate: usize,
}

impl Memory {
    /// `(name, bytes)` in name order (as the JSON object lists them).
    pub fn entries(&self) -> [(&'static str, u64); 4] {
        [
            ("attr_bytes_estimate", self.attr_bytes_estimate as u64),
            ("hwm_bytes", self.hwm_bytes),
            ("rss_bytes", self.rss_bytes),
            ("table_bytes_estimate", self.table_bytes_estimate as u64),
        ]
    }
}

/// [`Query::Route`](super::Query::Route): the matched prefix and its paths, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteReply {
    /// The query as given (an address or prefix).
    pub query: String,
    /// The matched prefix; `None`: not in the table.
    pub prefix: Option<String>,
    pub paths: Vec<PathInfo>,
}

/// One path of a prefix, from one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathInfo {
    pub peer: String,
    pub peer_address: String,
    pub peer_asn: u32,
    /// `upstream` or `pop`.
    pub role: String,
    pub best: bool,
    pub stale: bool,
    pub ebgp: bool,
    pub router_id: String,
    /// `igp`, `egp` or `incomplete`.
    pub origin: String,
    /// Text, e.g. `1 2 {3,4}`.
    pub as_path: String,
    pub as_path_segments: Vec<Segment>,
    pub next_hop: Option<String>,
    pub next_hop_ll: Option<String>,
    pub med: Option<u32>,
    pub local_pref: u32,
    /// `asn:value`.
    pub communities: Vec<String>,
    /// `global:local1:local2`.
    pub large_communities: Vec<String>,
    /// `asn address`.
    pub aggregator: Option<String>,
    pub atomic_aggregate: bool,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
}

impl PathInfo {
    /// Every ASN of the AS_PATH, in path order (all segment kinds).
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_path_segments
            .iter()
            .flat_map(|s| s.asns.iter().copied())
    }
}

/// One AS_PATH segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Segment {
    /// `sequence`, `set`, `confed_sequence` or `confed_set`.
    pub kind: String,
    pub asns: Vec<u32>,
}

/// A path with its prefix ([`Query::Dump`](super::Query::Dump), dump pages).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DumpPath {
    pub prefix: String,
    #[serde(flatten)]
    pub path: PathInfo,
}

/// [`Query::DumpPage`](super::Query::DumpPage): one page of `sparrowctl
/// dump`, already as the JSON lines the admin socket sends (one
/// [`DumpPath`] a line), so a page never exists twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DumpPage {
    /// The page's paths, one JSON object per line, each line ending in `\n`.
    pub lines: String,
    /// Paths (lines) in `lines`.
    pub paths: usize,
    /// `start` (slab slot) of the following page; `None`: this was the last.
    pub next: Option<u32>,
}

/// [`Query::PeerCounts`](super::Query::PeerCounts): one per configured peer, in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerCountsReply {
    pub peers: Vec<PeerCounts>,
}

/// Route counts of one peer, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerCounts {
    pub peer: String,
    #[serde(flatten)]
    pub routes: RouteCounts,
}

/// A peer's routes per family: received, accepted, exported, End-of-RIB
/// seen, over its max-prefix limit (also part of the admin `peers` reply).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteCounts {
    /// Prefixes the peer announces now (accepted + rejected by import policy).
    pub received: PerFamily<u64>,
    /// Paths of the peer in the table (stale ones included).
    pub accepted: PerFamily<u64>,
    /// Loc-RIB routes sent to this (POP) peer and not withdrawn (0 for
    /// upstream peers; our `announce` prefixes are not counted here: the
    /// admin `peers` reply's `advertised` adds them).
    pub exported: PerFamily<u64>,
    /// End-of-RIB received on the current session.
    pub eor: PerFamily<bool>,
    /// Over the max-prefix limit on the current session.
    pub max_prefix_exceeded: PerFamily<bool>,
    /// Times the max-prefix limit was exceeded, since the daemon started
    /// (once per session with `warn`; each teardown with `teardown`).
    pub max_prefix_events: PerFamily<u64>,
}

/// The reply to a [`Query`](super::Query): the variant of its kind. Serializes
/// as the inner reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum QueryReply {
    Summary(RibSummary),
    Route(RouteReply),
    PeerCounts(PeerCountsReply),
    Dump(Vec<DumpPath>),
    DumpPage(DumpPage),
}
