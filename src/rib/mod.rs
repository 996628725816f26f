//! The RIB task: the one writer of every Adj-RIB-In, the Loc-RIB and the
//! export queues.
//!
//! Session tasks send [`RibMsg`]s over a bounded channel (OpenBGPD's
//! session.c -> rde.c split); the RIB applies import policy (local-pref, AS
//! loop, next-hop sanity, max-prefix), interns attribute sets, runs best-path
//! selection (`bestpath`) and sends [`SessionCmd::Export`] to POP sessions.
//! Admin queries arrive as [`RibMsg::Query`] and get a typed [`QueryReply`]
//! back (`reply`: the serde types of the admin socket's RIB answers).
//!
//! Layout:
//! - `table`: per-family prefix tables (a `hashbrown::HashTable<u32>` index
//!   with FxHash over a chunked slab of entries; each entry holds its paths as
//!   8-byte `{attr id, peer, flags}` refs in a `SmallVec`, best first). The
//!   Adj-RIB-In of a peer is the set of paths with its id.
//! - `intern`: attribute sets interned once across prefixes and peers, kept
//!   in a compact byte encoding (`codec`, ~40 bytes instead of ~350 for an
//!   `Arc<PathAttrs>`); `Arc`s are materialized for export and queries.
//! - `bestpath`: RFC 4271 §9.1.2.2 selection (order independent, deterministic).
//! - `state`: [`Rib`] and its decision step (best path, export queue, change
//!   marks); dispatches each message to:
//! - `import`: UPDATEs through import policy and max-prefix into the tables;
//! - `graceful`: peer up/down and graceful restart (stale paths, timers);
//! - `export`: the export of changes to POP sessions (flush) and ROUTE-REFRESH;
//! - `outbox`: the paced export of a whole table to a POP session (PeerUp,
//!   release, ROUTE-REFRESH): a walk over the table with at most
//!   [`outbox::WINDOW`] batches not yet written to the socket, continued as
//!   the session returns [`ExportCredit`]s, changes behind the walk sent as
//!   updates;
//! - `views`: read-only Loc-RIB views (changed prefixes, best routes, path keys);
//! - `query`: admin queries, answered with the types of `reply`.
//!
//! Policy choices worth knowing:
//! - max-prefix counts *received* prefixes (accepted + rejected by import
//!   policy), like BIRD's `receive limit`: a peer flooding looped routes still
//!   trips it.
//! - A POP peer is sent (announce) the attributes of the best path whenever it
//!   comes from an `upstream` peer; when the best becomes a POP-learned path or
//!   disappears, the prefix is withdrawn. Per-entry `ANNOUNCED` flag tracks it.
//! - Graceful restart: stale paths lose to any fresh path. After the peer
//!   re-establishes, its stale paths stay until replaced, its End-of-RIB for
//!   the family, or `restart_time` (from the config) more seconds; a family not
//!   negotiated by the new session is swept at once.
//! - Export deferral (RFC 4724 §4.1's selection deferral): a POP peer gets a
//!   family's table and our End-of-RIB (which makes it sweep the routes it
//!   kept stale from our previous run) only once our own upstream tables
//!   have converged for it: the first End-of-RIB from an `upstream` peer
//!   carrying the family (the event that moves steering off the fallback map),
//!   or `selection_deferral` seconds after start. A family no upstream carries
//!   exports at once. After that, exports go out as changes happen.
//!
//! Measured (`bench.rs`, release, 4 peers x (1M IPv4 + 250k IPv6) = 5M paths,
//! 1.24M distinct attribute sets): ~200 MB RSS for the RIB (~42 B/path: table
//! ~15.5, attributes ~26), ~3.3 s to insert everything on a loaded 2-core box.
//!
//! The task runs synchronous work per message; a full-table peer removal walks
//! the table (~0.3 s per 1.25M paths, best paths recomputed).
//!
//! Consumers of the Loc-RIB (the daemon's POP ranking) are a [`LocRibListener`]
//! called by the task after every burst: [`Rib::best_routes`] iterates the
//! Loc-RIB per family, [`Rib::set_track_changes`] / [`Rib::take_changed`]
//! report prefixes whose best path changed since the last call.

mod arena;
#[cfg(test)]
mod bench;
mod bestpath;
mod codec;
#[cfg(test)]
mod deferral_tests;
pub mod encode;
mod export;
mod graceful;
mod import;
mod intern;
pub mod outbox;
#[cfg(test)]
mod outbox_tests;
mod query;
pub mod reply;
mod state;
mod table;
#[cfg(test)]
mod tests;
mod views;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::types::{Afi, PathAttrs, PeerId, Prefix, RouteChange};

pub use bestpath::{compare as compare_paths, select_best, PathKey};
pub use export::EXPORT_BATCH;
pub use outbox::ExportCredit;
pub use query::{proc_memory, thread_cpu_time};
pub use reply::QueryReply;
pub use state::Rib;

/// What a session tells the RIB about an established session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    pub remote_addr: IpAddr,
    pub local_addr: IpAddr,
    /// Families negotiated, indexed by `Afi::index()`.
    pub afis: [bool; 2],
    /// Families whose forwarding state the peer says it preserved across a restart
    /// (its Graceful Restart capability lists them with the F bit, RFC 4724 §4.2):
    /// only these keep stale routes after the session comes back.
    pub gr_preserved: [bool; 2],
}

/// Commands from the RIB to one session task.
#[derive(Debug)]
pub enum SessionCmd {
    /// Routes to send (POP sessions only): the best upstream path's attributes as
    /// the RIB holds them; the session prepends our ASN and sets next-hop self.
    /// A batch of a table walk carries a `credit`, which the session drops
    /// once the batch's bytes are written to the socket (`outbox`).
    Export {
        announce: Vec<(Prefix, Arc<PathAttrs>)>,
        withdraw: Vec<Prefix>,
        credit: Option<ExportCredit>,
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
    /// Every path held, one [`reply::DumpPath`] per (prefix, peer): the same
    /// per-path fields as `Route` plus `prefix`.
    Dump,
    /// One page of a dump for the admin socket: the family's prefixes in table
    /// order from table slot `start`, as JSON lines of about `max_bytes` (the
    /// page ends after the entry that reaches it). Replies a
    /// [`reply::DumpPage`], whose `next` is the `start` of the following page.
    DumpPage {
        afi: Afi,
        start: u32,
        max_bytes: usize,
    },
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
    /// The changes of several UPDATEs of one peer, in order (what a session
    /// sends: one message per batch of UPDATEs read).
    Updates {
        peer: PeerId,
        changes: Vec<(Afi, RouteChange)>,
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
        reply: oneshot::Sender<QueryReply>,
    },
    /// Graceful-restart timer fired (sent by the RIB's own timers). Ignored
    /// unless `epoch` is the peer's current one (a later PeerUp/PeerDown voids it).
    StaleTimeout {
        peer: PeerId,
        epoch: u64,
    },
    /// The selection deferral (`selection_deferral`) ran out: export to POP
    /// peers even for families whose upstreams have not sent End-of-RIB.
    DeferralTimeout,
    /// A POP session wrote (or dropped) a paced export batch: its
    /// [`ExportCredit`] came back (on the RIB's own channel). Ignored unless
    /// `generation` is the peer's current one.
    ExportDrained {
        peer: PeerId,
        generation: u64,
    },
    /// The daemon is shutting down (sent before the sessions are told to
    /// close): nothing more is exported, so the upstream sessions closing
    /// first do not withdraw our routes from POP peers that keep them stale.
    Shutdown,
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

/// Messages handled before queued exports are flushed (and the task yields);
/// a `RibMsg::Updates` counts as the number of changes it carries.
const BURST: usize = 64;

/// How much of a burst a message uses.
fn weight(m: &RibMsg) -> usize {
    match m {
        RibMsg::Updates { changes, .. } => changes.len().max(1),
        _ => 1,
    }
}

/// Run the RIB task until every sender of `rx` is dropped.
pub async fn run(cfg: Arc<Config>, rx: mpsc::Receiver<RibMsg>, stats: Arc<RibStats>) {
    run_with(cfg, rx, stats, None).await
}

/// Told by the RIB task what changed in the Loc-RIB. The daemon wires its
/// POP ranking (the snapshot publisher) here; the RIB knows nothing about
/// its listeners.
///
/// Pull-based, so nothing is copied per prefix on the way: after each burst
/// the listener reads the changed prefixes ([`Rib::take_changed`]) and
/// whatever else it needs ([`Rib::path_keys`], [`Rib::asns`],
/// [`Rib::end_of_rib_seen`]) from the RIB it is handed, on the RIB's thread.
pub trait LocRibListener: Send {
    /// Once, before the first message: turn on the change tracking it needs
    /// ([`Rib::set_track_changes`] or [`Rib::set_track_all_path_changes`]) and
    /// read what the RIB already holds.
    fn attach(&mut self, rib: &mut Rib);
    /// After every burst of messages (their exports already flushed).
    fn changed(&mut self, rib: &mut Rib);
}

/// [`run`], telling `listener` about the Loc-RIB's changes after every burst.
pub async fn run_with(
    cfg: Arc<Config>,
    mut rx: mpsc::Receiver<RibMsg>,
    stats: Arc<RibStats>,
    mut listener: Option<Box<dyn LocRibListener>>,
) {
    let (timer_tx, mut timer_rx) = mpsc::unbounded_channel();
    let deferral = Duration::from_secs(cfg.selection_deferral.into());
    let mut rib = Rib::new(cfg, stats, Some(timer_tx.clone()));
    if !rib.released.iter().all(|&r| r) {
        tokio::spawn(async move {
            tokio::time::sleep(deferral).await;
            let _ = timer_tx.send(RibMsg::DeferralTimeout);
        });
    }
    rib.publish_stats();
    if let Some(l) = listener.as_mut() {
        l.attach(&mut rib);
    }
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            Some(m) = timer_rx.recv() => m,
        };
        let mut used = weight(&msg);
        rib.handle(msg);
        // Take what is already queued so exports go out in bigger batches.
        while used < BURST {
            match rx.try_recv() {
                Ok(m) => {
                    used += weight(&m);
                    rib.handle(m);
                }
                Err(_) => break,
            }
        }
        rib.flush();
        if let Some(l) = listener.as_mut() {
            l.changed(&mut rib);
        }
    }
    rib.flush();
}
