//! The RIB state and its decision step: the per-family tables, the attribute
//! interner, per-peer state, and `Core::settle`, which after any change of a
//! prefix's paths reselects the best path, queues the export change and records
//! the prefix as changed (OpenBGPD's rde_decide).
//!
//! Synchronous: [`Rib::handle`] dispatches one [`RibMsg`] to `import`,
//! `graceful` (peer up/down, stale routes), `export`, `outbox` (credits of
//! the paced table walks) or `query`; `run` (in
//! `mod.rs`) feeds it from the channel and calls [`Rib::flush`] after each burst.

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::net::IpAddr;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::warn;

use super::bestpath::{select_best, PathKey};
use super::intern::Interner;
use super::outbox::Outbox;
use super::table::{Entry, PathRef, PrefixKey, Table, V4Key, V6Key, ANNOUNCED};
use super::{RibMsg, RibStats, SessionCmd, SessionInfo};
use crate::config::{Config, Role};
use crate::types::{PathAttrs, PeerId, Prefix};

/// Per-peer state, kept for the life of the process (indexed by `PeerId`).
#[derive(Debug)]
pub(crate) struct PeerState {
    pub role: Role,
    /// From the last `SessionInfo`; kept after PeerDown (stale routes use them).
    pub ebgp: bool,
    pub router_id: u32,
    pub addr: IpAddr,
    pub info: Option<SessionInfo>,
    /// Set while the session is established.
    pub ctl: Option<mpsc::UnboundedSender<SessionCmd>>,
    /// Paths held in the table, per family (including stale ones).
    pub accepted: [u64; 2],
    /// Prefixes currently announced by the peer but rejected by import policy.
    pub rejected: [FxHashSet<Prefix>; 2],
    /// Stale paths held, per family.
    pub stale: [u64; 2],
    pub eor: [bool; 2],
    pub max_exceeded: [bool; 2],
    /// Times the max-prefix limit was exceeded, per family (`import`): once
    /// per session with `warn`, at each teardown with `teardown`.
    pub max_prefix_events: [u64; 2],
    /// A max-prefix teardown was requested: ignore UPDATEs until PeerDown.
    pub torn_down: bool,
    /// Bumped on every PeerUp/PeerDown/EoR sweep: older stale timers are void.
    pub epoch: u64,
    /// The paced export of whole tables to this (POP) peer (`outbox`).
    pub outbox: Outbox,
}

impl PeerState {
    pub fn received(&self, fam: usize) -> u64 {
        self.accepted[fam] + self.rejected[fam].len() as u64
    }
}

/// Entry state captured before a change, to tell what changed.
#[derive(Clone, Copy)]
pub(super) struct Before {
    flags: u8,
    pub(super) best: Option<PathRef>,
}

pub(super) fn before<K: PrefixKey>(e: &Entry<K>) -> Before {
    Before {
        flags: e.flags(),
        best: e.best().copied(),
    }
}

/// Everything except the two tables (so table code can borrow both).
pub(crate) struct Core {
    pub cfg: Arc<Config>,
    pub attrs: Interner,
    pub peers: Vec<PeerState>,
    /// Export changes not yet sent: prefix -> (new attrs (announce) or None
    /// (withdraw), the table slot of its entry, for the walks of `outbox`).
    pub(super) pending: FxHashMap<Prefix, (Option<Arc<PathAttrs>>, u32)>,
    /// Some peer's `outbox` has a table walk under way.
    pub(super) walking: bool,
    /// Some POP peer is up (else nothing is queued).
    pub(super) pops_up: bool,
    /// Entries flagged `ANNOUNCED` (exported to POP peers), per family.
    pub(super) announced: [u64; 2],
    /// Prefixes whose best path changed (when tracking is on), per family.
    pub(super) changed: Option<[FxHashSet<Prefix>; 2]>,
    /// With `changed`: record any change of a prefix's paths, not only of its
    /// best path (for a listener that ranks every path).
    pub(super) track_all: bool,
}

impl Core {
    pub(crate) fn path_key(&self, p: &PathRef) -> PathKey {
        let a = self.attrs.key(p.attr);
        let peer = &self.peers[p.peer as usize];
        PathKey {
            stale: p.is_stale(),
            local_pref: a.local_pref,
            as_path_len: a.path_len,
            origin: a.origin,
            neighbor_as: (a.neighbor_as != 0).then_some(a.neighbor_as),
            med: a.med,
            ebgp: peer.ebgp,
            bgp_id: if a.originator != 0 {
                a.originator
            } else {
                peer.router_id
            },
            cluster_len: a.cluster_len as u32,
            peer_addr: peer.addr,
            peer: p.peer,
        }
    }

    fn queue(&mut self, p: Prefix, attrs: Option<Arc<PathAttrs>>, slot: u32) {
        if self.pops_up {
            self.pending.insert(p, (attrs, slot));
        }
    }

    pub(super) fn mark_changed(&mut self, p: Prefix) {
        if let Some(c) = self.changed.as_mut() {
            c[p.afi().index()].insert(p);
        }
    }

    /// After the paths of entry `idx` changed: reselect the best path (moved to
    /// index 0), restore the entry flags, queue the export change, and free the
    /// entry when it has no paths left.
    pub(super) fn settle<K: PrefixKey>(&mut self, t: &mut Table<K>, idx: u32, b: Before) {
        let e = t.entry_mut(idx);
        let prefix = e.prefix();
        let fam = prefix.afi().index();
        if e.paths.is_empty() {
            if b.flags & ANNOUNCED != 0 {
                self.queue(prefix, None, idx);
                self.announced[fam] -= 1;
            }
            if b.best.is_some() {
                self.mark_changed(prefix);
            }
            self.uncover(prefix.afi(), idx);
            t.remove(idx);
            return;
        }
        if e.paths.len() > 1 {
            let keys: SmallVec<[PathKey; 8]> = e.paths.iter().map(|p| self.path_key(p)).collect();
            let best = select_best(&keys);
            e.paths.swap(0, best);
        }
        let nb = e.paths[0];
        let mut flags = b.flags;
        if self.peers[nb.peer as usize].role == Role::Upstream {
            if self.pops_up && (flags & ANNOUNCED == 0 || b.best.map(|o| o.attr) != Some(nb.attr)) {
                let a = self.attrs.get(nb.attr);
                self.queue(prefix, Some(a), idx);
            }
            if flags & ANNOUNCED == 0 {
                self.announced[fam] += 1;
            }
            flags |= ANNOUNCED;
        } else if flags & ANNOUNCED != 0 {
            self.queue(prefix, None, idx);
            self.announced[fam] -= 1;
            // A walk must not skip it unannounced: the withdraw goes out now.
            self.uncover(prefix.afi(), idx);
            flags &= !ANNOUNCED;
        }
        e.set_flags(flags);
        if self.track_all || b.best.map(|o| (o.peer, o.attr)) != Some((nb.peer, nb.attr)) {
            self.mark_changed(prefix);
        }
    }

    /// Remove the path at `pos` of entry `idx`, with all bookkeeping.
    pub(super) fn remove_path<K: PrefixKey>(
        &mut self,
        t: &mut Table<K>,
        idx: u32,
        pos: usize,
        fam: usize,
    ) {
        let b = before(t.entry(idx));
        let old = t.remove_path_at(idx, pos);
        let ps = &mut self.peers[old.peer as usize];
        ps.accepted[fam] -= 1;
        if old.is_stale() {
            ps.stale[fam] -= 1;
        }
        self.attrs.decref(old.attr);
        self.settle(t, idx, b);
    }
}

/// The RIB state. Owned by the RIB task; see the module docs of `rib`.
pub struct Rib {
    pub(crate) v4: Table<V4Key>,
    pub(crate) v6: Table<V6Key>,
    pub(crate) core: Core,
    pub(super) stats: Arc<RibStats>,
    /// Where stale timers deliver `RibMsg::StaleTimeout` (None: no timers).
    pub(super) timers: Option<mpsc::UnboundedSender<RibMsg>>,
    /// Per family: our upstream tables converged (or the selection deferral
    /// ran out), so POP peers get our export and End-of-RIB (see `graceful`).
    pub(super) released: [bool; 2],
    /// `RibMsg::Shutdown` came: nothing is released (exported) any more.
    pub(super) stopped: bool,
    /// Most routes in one paced export batch (`outbox`; tests make it small).
    pub(super) export_batch: usize,
}

/// Dispatch to the table of a family with the matching key type.
macro_rules! with_table {
    ($self:ident, $afi:expr, |$t:ident, $core:ident| $body:expr) => {
        match $afi {
            $crate::types::Afi::Ipv4 => {
                let $t = &mut $self.v4;
                let $core = &mut $self.core;
                $body
            }
            $crate::types::Afi::Ipv6 => {
                let $t = &mut $self.v6;
                let $core = &mut $self.core;
                $body
            }
        }
    };
}
pub(super) use with_table;

impl Rib {
    /// A RIB for `cfg`. `timers` receives graceful-restart timeouts to feed back
    /// into [`Rib::handle`].
    pub fn new(
        cfg: Arc<Config>,
        stats: Arc<RibStats>,
        timers: Option<mpsc::UnboundedSender<RibMsg>>,
    ) -> Rib {
        let released = super::graceful::released_at_start(&cfg);
        let peers = cfg
            .peers
            .iter()
            .map(|p| PeerState {
                role: p.role,
                ebgp: p.is_ebgp(cfg.local_asn),
                router_id: 0,
                addr: p.address,
                info: None,
                ctl: None,
                accepted: [0; 2],
                rejected: Default::default(),
                stale: [0; 2],
                eor: [false; 2],
                max_exceeded: [false; 2],
                max_prefix_events: [0; 2],
                torn_down: false,
                epoch: 0,
                outbox: Outbox::default(),
            })
            .collect();
        Rib {
            v4: Table::new(),
            v6: Table::new(),
            core: Core {
                cfg,
                attrs: Interner::new(),
                peers,
                pending: FxHashMap::default(),
                walking: false,
                pops_up: false,
                announced: [0; 2],
                changed: None,
                track_all: false,
            },
            released,
            stopped: false,
            export_batch: super::EXPORT_BATCH,
            stats,
            timers,
        }
    }

    /// Apply one message (exports are queued; call [`Rib::flush`] to send them).
    pub fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::PeerUp { peer, info, ctl } => self.peer_up(peer, info, ctl),
            RibMsg::PeerDown { peer, keep_stale } => self.peer_down(peer, keep_stale),
            RibMsg::Update { peer, afi, change } => self.update(peer, afi, change),
            RibMsg::Updates { peer, changes } => {
                for (afi, change) in changes {
                    self.update(peer, afi, change);
                }
            }
            RibMsg::EndOfRib { peer, afi } => self.end_of_rib(peer, afi),
            RibMsg::RouteRefresh { peer, afi } => self.route_refresh(peer, afi),
            RibMsg::StaleTimeout { peer, epoch } => self.stale_timeout(peer, epoch),
            RibMsg::DeferralTimeout => self.deferral_timeout(),
            RibMsg::Shutdown => self.shutdown(),
            RibMsg::ExportDrained { peer, generation } => self.export_drained(peer, generation),
            RibMsg::Query { query, reply } => {
                // Exports queued so far go out first: an answer never runs ahead.
                self.flush();
                let _ = reply.send(self.query(&query));
            }
        }
        self.publish_stats();
    }

    /// Publish the lock-free counters.
    pub fn publish_stats(&self) {
        let s = &self.stats;
        s.paths.store(
            (self.v4.paths() + self.v6.paths()) as u64,
            AtomicOrdering::Relaxed,
        );
        s.prefixes_v4
            .store(self.v4.len() as u64, AtomicOrdering::Relaxed);
        s.prefixes_v6
            .store(self.v6.len() as u64, AtomicOrdering::Relaxed);
        s.attr_sets
            .store(self.core.attrs.len() as u64, AtomicOrdering::Relaxed);
    }

    pub(super) fn known(&self, peer: PeerId) -> bool {
        if (peer as usize) < self.core.peers.len() {
            true
        } else {
            warn!(peer, "RIB message for an unknown peer id");
            false
        }
    }

    pub(super) fn name(&self, peer: PeerId) -> &str {
        &self.core.cfg.peers[peer as usize].name
    }

    pub(super) fn recount_pops(&mut self) {
        self.core.pops_up = self
            .core
            .peers
            .iter()
            .any(|p| p.role == Role::Pop && p.ctl.is_some());
    }
}
