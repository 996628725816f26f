//! The RIB proper: per-family tables, the attribute interner, per-peer state,
//! import policy, best-path bookkeeping and the export queue to POP peers.
//!
//! Synchronous: [`Rib::handle`] applies one [`RibMsg`]; `run` (in `mod.rs`)
//! feeds it from the channel and calls [`Rib::flush`] after each burst.

use std::net::IpAddr;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::bestpath::{pre_med, select_best, PathKey};
use super::intern::Interner;
use super::table::{AttrId, Entry, PathRef, PrefixKey, Table, V4Key, V6Key, ANNOUNCED, STALE};
use super::{RibMsg, RibStats, SessionCmd, SessionInfo};
use crate::config::{Config, MaxPrefixAction, Role};
use crate::types::{Afi, PathAttrs, PeerId, Prefix, RouteChange};

/// Most routes in one `SessionCmd::Export` (full dumps and large flushes).
pub const EXPORT_BATCH: usize = 4096;

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
    /// A max-prefix teardown was requested: ignore UPDATEs until PeerDown.
    pub torn_down: bool,
    /// Bumped on every PeerUp/PeerDown/EoR sweep: older stale timers are void.
    pub epoch: u64,
}

impl PeerState {
    pub fn received(&self, fam: usize) -> u64 {
        self.accepted[fam] + self.rejected[fam].len() as u64
    }
}

/// Entry state captured before a change, to tell what changed.
#[derive(Clone, Copy)]
struct Before {
    flags: u8,
    best: Option<PathRef>,
}

fn before<K: PrefixKey>(e: &Entry<K>) -> Before {
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
    /// Export changes not yet sent: prefix -> new attrs (announce) or None (withdraw).
    pending: FxHashMap<Prefix, Option<Arc<PathAttrs>>>,
    /// Some POP peer is up (else nothing is queued).
    pops_up: bool,
    /// Prefixes whose best path changed (when tracking is on), per family.
    changed: Option<[FxHashSet<Prefix>; 2]>,
    /// With `changed`: record any change of a prefix's paths, not only of its
    /// best path (steering ranks every path).
    track_all: bool,
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

    fn queue(&mut self, p: Prefix, attrs: Option<Arc<PathAttrs>>) {
        if self.pops_up {
            self.pending.insert(p, attrs);
        }
    }

    fn mark_changed(&mut self, p: Prefix) {
        if let Some(c) = self.changed.as_mut() {
            c[p.afi().index()].insert(p);
        }
    }

    /// After the paths of entry `idx` changed: reselect the best path (moved to
    /// index 0), restore the entry flags, queue the export change, and free the
    /// entry when it has no paths left.
    fn settle<K: PrefixKey>(&mut self, t: &mut Table<K>, idx: u32, b: Before) {
        let e = t.entry_mut(idx);
        let prefix = e.prefix();
        if e.paths.is_empty() {
            if b.flags & ANNOUNCED != 0 {
                self.queue(prefix, None);
            }
            if b.best.is_some() {
                self.mark_changed(prefix);
            }
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
                self.queue(prefix, Some(a));
            }
            flags |= ANNOUNCED;
        } else if flags & ANNOUNCED != 0 {
            self.queue(prefix, None);
            flags &= !ANNOUNCED;
        }
        e.set_flags(flags);
        if self.track_all || b.best.map(|o| (o.peer, o.attr)) != Some((nb.peer, nb.attr)) {
            self.mark_changed(prefix);
        }
    }

    /// Remove the path at `pos` of entry `idx`, with all bookkeeping.
    fn remove_path<K: PrefixKey>(&mut self, t: &mut Table<K>, idx: u32, pos: usize, fam: usize) {
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

    /// Max-prefix check before a peer's received count for `afi` grows by one.
    /// Returns true when the rest of the UPDATE must be dropped (teardown).
    fn limit_hit(&mut self, peer: PeerId, afi: Afi) -> bool {
        let fam = afi.index();
        let pc = &self.cfg.peers[peer as usize];
        let Some(lim) = pc.max_prefix.get(afi) else {
            return false;
        };
        let ps = &mut self.peers[peer as usize];
        if ps.received(fam) < u64::from(lim.limit) {
            return false;
        }
        match lim.action {
            MaxPrefixAction::Warn => {
                if !ps.max_exceeded[fam] {
                    ps.max_exceeded[fam] = true;
                    warn!(peer = %pc.name, %afi, limit = lim.limit, "max-prefix limit exceeded");
                }
                false
            }
            MaxPrefixAction::Teardown => {
                ps.max_exceeded[fam] = true;
                ps.torn_down = true;
                warn!(peer = %pc.name, %afi, limit = lim.limit, "max-prefix limit exceeded, tearing the session down");
                // RFC 4486 §4: AFI (2), SAFI (1), upper bound (4).
                let mut data = Vec::with_capacity(7);
                data.extend_from_slice(&afi.code().to_be_bytes());
                data.push(crate::wire::iana::safi::UNICAST);
                data.extend_from_slice(&lim.limit.to_be_bytes());
                if let Some(ctl) = &ps.ctl {
                    let _ = ctl.send(SessionCmd::Teardown {
                        subcode: crate::wire::cease::MAX_PREFIX,
                        data,
                        reason: format!("max-prefix limit {} for {afi} exceeded", lim.limit),
                    });
                }
                true
            }
        }
    }

    /// Accept `pfx` from `peer` with interned attributes `id`.
    /// Returns false when the rest of the UPDATE must be dropped.
    fn announce<K: PrefixKey>(
        &mut self,
        t: &mut Table<K>,
        peer: PeerId,
        pfx: Prefix,
        id: AttrId,
    ) -> bool {
        let Some(key) = K::from_prefix(&pfx) else {
            return true;
        };
        let afi = pfx.afi();
        let fam = afi.index();
        let found = t.find(key);
        let had = found.and_then(|i| t.entry(i).position(peer));
        if had.is_none() {
            let ps = &mut self.peers[peer as usize];
            let was_rejected = !ps.rejected[fam].is_empty() && ps.rejected[fam].remove(&pfx);
            if !was_rejected && self.limit_hit(peer, afi) {
                return false;
            }
        }
        let idx = found.unwrap_or_else(|| t.insert_new(key));
        let b = before(t.entry(idx));
        self.attrs.incref(id);
        let old = t.set_path(
            idx,
            PathRef {
                attr: id,
                peer,
                flags: 0,
            },
        );
        let ps = &mut self.peers[peer as usize];
        match old {
            Some(o) => {
                if o.is_stale() {
                    ps.stale[fam] -= 1;
                }
                self.attrs.decref(o.attr);
                if o.attr == id && !o.is_stale() {
                    return true; // duplicate announcement: nothing changed
                }
            }
            None => {
                ps.accepted[fam] += 1;
                // Fast path: a new path losing to the best before MED changes nothing.
                if let Some(best) = b.best {
                    let new = t.entry(idx).paths.last().copied().expect("just pushed");
                    if pre_med(&self.path_key(&new)) > pre_med(&self.path_key(&best)) {
                        if self.track_all {
                            self.mark_changed(pfx);
                        }
                        return true;
                    }
                }
            }
        }
        self.settle(t, idx, b);
        true
    }

    /// `pfx` from `peer` was rejected by import policy: it counts as received
    /// and implicitly withdraws the peer's previous path.
    fn reject<K: PrefixKey>(&mut self, t: &mut Table<K>, peer: PeerId, pfx: Prefix) -> bool {
        let Some(key) = K::from_prefix(&pfx) else {
            return true;
        };
        let afi = pfx.afi();
        let fam = afi.index();
        if let Some(idx) = t.find(key) {
            if let Some(pos) = t.entry(idx).position(peer) {
                self.remove_path(t, idx, pos, fam);
                self.peers[peer as usize].rejected[fam].insert(pfx);
                return true;
            }
        }
        if self.peers[peer as usize].rejected[fam].contains(&pfx) {
            return true;
        }
        if self.limit_hit(peer, afi) {
            return false;
        }
        self.peers[peer as usize].rejected[fam].insert(pfx);
        true
    }

    fn withdraw<K: PrefixKey>(&mut self, t: &mut Table<K>, peer: PeerId, pfx: Prefix) {
        let Some(key) = K::from_prefix(&pfx) else {
            return;
        };
        let fam = pfx.afi().index();
        if let Some(idx) = t.find(key) {
            if let Some(pos) = t.entry(idx).position(peer) {
                self.remove_path(t, idx, pos, fam);
                return;
            }
        }
        let ps = &mut self.peers[peer as usize];
        if !ps.rejected[fam].is_empty() {
            ps.rejected[fam].remove(&pfx);
        }
    }

    /// Remove `peer`'s paths from a table (only the stale ones with `only_stale`).
    fn sweep<K: PrefixKey>(
        &mut self,
        t: &mut Table<K>,
        peer: PeerId,
        fam: usize,
        only_stale: bool,
    ) {
        let ps = &self.peers[peer as usize];
        if ps.accepted[fam] == 0 || (only_stale && ps.stale[fam] == 0) {
            return;
        }
        for idx in 0..t.slot_count() {
            let e = t.entry(idx);
            if e.paths.is_empty() {
                continue;
            }
            if let Some(pos) = e.position(peer) {
                if !only_stale || e.paths[pos].is_stale() {
                    self.remove_path(t, idx, pos, fam);
                }
            }
        }
    }

    /// Mark all of `peer`'s paths in a table stale, reselecting where it was best.
    fn mark_stale<K: PrefixKey>(&mut self, t: &mut Table<K>, peer: PeerId, fam: usize) {
        if self.peers[peer as usize].accepted[fam] == 0 {
            return;
        }
        let mut n = 0;
        for idx in 0..t.slot_count() {
            let e = t.entry_mut(idx);
            let Some(pos) = e.position(peer) else {
                continue;
            };
            if e.paths[pos].is_stale() {
                continue;
            }
            let b = before(e);
            e.paths[pos].flags |= STALE;
            n += 1;
            if pos == 0 && e.paths.len() > 1 {
                self.settle(t, idx, b);
            } else if self.track_all {
                let p = e.prefix();
                self.mark_changed(p);
            }
        }
        self.peers[peer as usize].stale[fam] += n;
    }
}

/// The RIB state. Owned by the RIB task; see the module docs of `rib`.
pub struct Rib {
    pub(crate) v4: Table<V4Key>,
    pub(crate) v6: Table<V6Key>,
    pub(crate) core: Core,
    stats: Arc<RibStats>,
    /// Where stale timers deliver `RibMsg::StaleTimeout` (None: no timers).
    timers: Option<mpsc::UnboundedSender<RibMsg>>,
}

/// Dispatch to the table of a family with the matching key type.
macro_rules! with_table {
    ($self:ident, $afi:expr, |$t:ident, $core:ident| $body:expr) => {
        match $afi {
            Afi::Ipv4 => {
                let $t = &mut $self.v4;
                let $core = &mut $self.core;
                $body
            }
            Afi::Ipv6 => {
                let $t = &mut $self.v6;
                let $core = &mut $self.core;
                $body
            }
        }
    };
}

impl Rib {
    /// A RIB for `cfg`. `timers` receives graceful-restart timeouts to feed back
    /// into [`Rib::handle`].
    pub fn new(
        cfg: Arc<Config>,
        stats: Arc<RibStats>,
        timers: Option<mpsc::UnboundedSender<RibMsg>>,
    ) -> Rib {
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
                torn_down: false,
                epoch: 0,
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
                pops_up: false,
                changed: None,
                track_all: false,
            },
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
            RibMsg::EndOfRib { peer, afi } => self.end_of_rib(peer, afi),
            RibMsg::RouteRefresh { peer, afi } => self.route_refresh(peer, afi),
            RibMsg::StaleTimeout { peer, epoch } => self.stale_timeout(peer, epoch),
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

    fn known(&self, peer: PeerId) -> bool {
        if (peer as usize) < self.core.peers.len() {
            true
        } else {
            warn!(peer, "RIB message for an unknown peer id");
            false
        }
    }

    fn name(&self, peer: PeerId) -> &str {
        &self.core.cfg.peers[peer as usize].name
    }

    fn recount_pops(&mut self) {
        self.core.pops_up = self
            .core
            .peers
            .iter()
            .any(|p| p.role == Role::Pop && p.ctl.is_some());
    }

    fn peer_up(&mut self, peer: PeerId, info: SessionInfo, ctl: mpsc::UnboundedSender<SessionCmd>) {
        if !self.known(peer) {
            return;
        }
        let local_asn = self.core.cfg.local_asn;
        let restart = Duration::from_secs(self.core.cfg.peers[peer as usize].restart_time.into());
        let ps = &mut self.core.peers[peer as usize];
        ps.ebgp = info.remote_as != local_asn;
        ps.router_id = info.router_id.into();
        ps.addr = info.remote_addr;
        ps.torn_down = false;
        ps.max_exceeded = [false; 2];
        ps.eor = [false; 2];
        let afis = info.afis;
        ps.info = Some(info);
        info!(peer = %self.name(peer), "RIB: peer up");
        if self.core.peers[peer as usize].stale.iter().any(|&n| n > 0) {
            // Graceful restart: the restart timer is void; stale routes of a
            // family the new session did not negotiate go now (RFC 4724 §4.2),
            // the others stay until replaced, End-of-RIB, or (our bound on the
            // wait) restart_time from now.
            self.core.peers[peer as usize].epoch += 1;
            let preserved = self.core.peers[peer as usize]
                .info
                .as_ref()
                .map_or([false; 2], |i| i.gr_preserved);
            for afi in Afi::ALL {
                if !afis[afi.index()] || !preserved[afi.index()] {
                    self.sweep_stale(peer, afi);
                }
            }
            if self.core.peers[peer as usize].stale.iter().any(|&n| n > 0) {
                let epoch = self.core.peers[peer as usize].epoch;
                self.spawn_stale_timer(peer, epoch, restart);
            }
        }
        if self.core.peers[peer as usize].role == Role::Pop {
            // Pending changes go to the POPs already up; the new one gets a dump.
            self.flush();
            self.core.peers[peer as usize].ctl = Some(ctl.clone());
            self.recount_pops();
            for afi in Afi::ALL {
                if afis[afi.index()] {
                    self.dump(peer, afi);
                    let _ = ctl.send(SessionCmd::EndOfRib(afi));
                }
            }
        } else {
            // Upstreams get nothing from us, so our initial update is complete now:
            // End-of-RIB per family (RFC 4724 §2), which a restarting router waits for.
            for afi in Afi::ALL {
                if afis[afi.index()] {
                    let _ = ctl.send(SessionCmd::EndOfRib(afi));
                }
            }
            self.core.peers[peer as usize].ctl = Some(ctl);
        }
    }

    fn peer_down(&mut self, peer: PeerId, keep_stale: Option<Duration>) {
        if !self.known(peer) {
            return;
        }
        let ps = &mut self.core.peers[peer as usize];
        ps.ctl = None;
        ps.torn_down = false;
        ps.eor = [false; 2];
        ps.epoch += 1;
        ps.rejected = Default::default();
        let held = ps.accepted;
        self.recount_pops();
        match keep_stale {
            Some(d) if held.iter().any(|&n| n > 0) => {
                info!(peer = %self.name(peer), paths = held[0] + held[1], keep = ?d, "RIB: peer down, keeping routes as stale");
                self.core.mark_stale(&mut self.v4, peer, 0);
                self.core.mark_stale(&mut self.v6, peer, 1);
                let epoch = self.core.peers[peer as usize].epoch;
                self.spawn_stale_timer(peer, epoch, d);
            }
            _ => {
                info!(peer = %self.name(peer), paths = held[0] + held[1], "RIB: peer down, removing its routes");
                self.core.sweep(&mut self.v4, peer, 0, false);
                self.core.sweep(&mut self.v6, peer, 1, false);
                self.core.peers[peer as usize].info = None;
            }
        }
    }

    fn spawn_stale_timer(&self, peer: PeerId, epoch: u64, d: Duration) {
        let Some(tx) = self.timers.clone() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = tx.send(RibMsg::StaleTimeout { peer, epoch });
                });
            }
            Err(_) => debug!(peer, "no tokio runtime: stale timer not started"),
        }
    }

    fn sweep_stale(&mut self, peer: PeerId, afi: Afi) {
        let fam = afi.index();
        let n = self.core.peers[peer as usize].stale[fam];
        if n == 0 {
            return;
        }
        info!(peer = %self.name(peer), %afi, stale = n, "RIB: removing stale routes");
        with_table!(self, afi, |t, core| core.sweep(t, peer, fam, true));
    }

    fn stale_timeout(&mut self, peer: PeerId, epoch: u64) {
        if !self.known(peer) || self.core.peers[peer as usize].epoch != epoch {
            return;
        }
        for afi in Afi::ALL {
            self.sweep_stale(peer, afi);
        }
        let ps = &mut self.core.peers[peer as usize];
        if ps.ctl.is_none() && ps.accepted.iter().all(|&n| n == 0) {
            ps.info = None;
        }
    }

    fn end_of_rib(&mut self, peer: PeerId, afi: Afi) {
        if !self.known(peer) {
            return;
        }
        debug!(peer = %self.name(peer), %afi, "RIB: End-of-RIB");
        self.core.peers[peer as usize].eor[afi.index()] = true;
        self.sweep_stale(peer, afi);
        let ps = &mut self.core.peers[peer as usize];
        if ps.stale.iter().all(|&n| n == 0) {
            ps.epoch += 1; // nothing left for a pending stale timer to do
        }
    }

    fn route_refresh(&mut self, peer: PeerId, afi: Afi) {
        if !self.known(peer) {
            return;
        }
        let ps = &self.core.peers[peer as usize];
        let negotiated = ps.info.as_ref().is_some_and(|i| i.afis[afi.index()]);
        if ps.role == Role::Pop && ps.ctl.is_some() && negotiated {
            debug!(peer = %self.name(peer), %afi, "RIB: route refresh");
            self.flush();
            self.dump(peer, afi);
        }
    }

    /// Send `peer` every exported route of `afi`, grouped by attribute set.
    fn dump(&mut self, peer: PeerId, afi: Afi) {
        let Some(ctl) = self.core.peers[peer as usize].ctl.clone() else {
            return;
        };
        fn collect<K: PrefixKey>(t: &Table<K>) -> Vec<(AttrId, u32)> {
            t.iter_indexed()
                .filter(|(_, e)| e.announced())
                .map(|(i, e)| (e.paths[0].attr, i))
                .collect()
        }
        let mut items = match afi {
            Afi::Ipv4 => collect(&self.v4),
            Afi::Ipv6 => collect(&self.v6),
        };
        // Same attributes next to each other so the session can pack UPDATEs.
        items.sort_unstable();
        let n = items.len();
        for chunk in items.chunks(EXPORT_BATCH) {
            // One Arc per attribute set per batch; nothing kept across batches.
            self.core.attrs.clear_cache();
            let announce = chunk
                .iter()
                .map(|&(a, i)| {
                    let p = match afi {
                        Afi::Ipv4 => self.v4.entry(i).prefix(),
                        Afi::Ipv6 => self.v6.entry(i).prefix(),
                    };
                    (p, self.core.attrs.get(a))
                })
                .collect();
            let _ = ctl.send(SessionCmd::Export {
                announce,
                withdraw: Vec::new(),
            });
        }
        self.core.attrs.clear_cache();
        info!(peer = %self.name(peer), %afi, routes = n, "RIB: full export sent");
    }

    /// Import policy for one UPDATE's attributes: loop, first AS, next hop.
    /// `Ok` carries the LOCAL_PREF to store; `Err` the reason for rejecting
    /// every prefix of the UPDATE.
    fn import(&self, peer: PeerId, attrs: &PathAttrs) -> Result<u32, &'static str> {
        let cfg = &self.core.cfg;
        let pc = &cfg.peers[peer as usize];
        let ps = &self.core.peers[peer as usize];
        if attrs.as_path.contains(cfg.local_asn) {
            return Err("AS_PATH contains our ASN");
        }
        if let Some(info) = &ps.info {
            if ps.ebgp && pc.enforce_first_as && attrs.as_path.first_as() != Some(info.remote_as) {
                return Err("first AS is not the peer's ASN");
            }
            if attrs.next_hop == Some(info.local_addr) {
                return Err("NEXT_HOP is our own address");
            }
        }
        Ok(match pc.local_pref {
            Some(lp) => lp,
            None if ps.ebgp => 100,
            None => attrs.local_pref.unwrap_or(100),
        })
    }

    fn update(&mut self, peer: PeerId, afi: Afi, change: RouteChange) {
        if !self.known(peer) {
            return;
        }
        let ps = &self.core.peers[peer as usize];
        if ps.ctl.is_none() || ps.info.is_none() {
            debug!(peer, "RIB: UPDATE from a peer that is not up, ignored");
            return;
        }
        if ps.torn_down {
            return;
        }
        let _ = afi; // each prefix carries its family
        for w in &change.withdrawn {
            with_table!(self, w.afi(), |t, core| core.withdraw(t, peer, *w));
        }
        if change.announced.is_empty() {
            return;
        }
        let Some(attrs) = change.attrs else {
            warn!(peer = %self.name(peer), "RIB: announcement without attributes ignored");
            return;
        };
        match self.import(peer, &attrs) {
            Ok(lp) => {
                // Once per UPDATE; the session's Arc is dropped at the end.
                let id = self.core.attrs.intern(&attrs, Some(lp));
                for p in &change.announced {
                    let go = with_table!(self, p.afi(), |t, core| core.announce(t, peer, *p, id));
                    if !go {
                        break;
                    }
                }
                self.core.attrs.release_if_unused(id);
            }
            Err(why) => {
                debug!(peer = %self.name(peer), reason = why, prefixes = change.announced.len(), "RIB: UPDATE rejected by import policy");
                for p in &change.announced {
                    let go = with_table!(self, p.afi(), |t, core| core.reject(t, peer, *p));
                    if !go {
                        break;
                    }
                }
            }
        }
    }

    /// Send queued export changes to every POP peer that is up, in batches.
    pub fn flush(&mut self) {
        self.core.attrs.clear_cache();
        if self.core.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.core.pending);
        let mut announce: [Vec<(Prefix, Arc<PathAttrs>)>; 2] = Default::default();
        let mut withdraw: [Vec<Prefix>; 2] = Default::default();
        for (p, a) in pending {
            let f = p.afi().index();
            match a {
                Some(a) => announce[f].push((p, a)),
                None => withdraw[f].push(p),
            }
        }
        // Same attributes next to each other so the session can pack UPDATEs.
        for a in announce.iter_mut() {
            a.sort_unstable_by_key(|(p, at)| (Arc::as_ptr(at) as usize, *p));
        }
        for ps in &self.core.peers {
            let (Some(ctl), Some(info)) = (&ps.ctl, &ps.info) else {
                continue;
            };
            if ps.role != Role::Pop {
                continue;
            }
            for f in 0..2 {
                if !info.afis[f] {
                    continue;
                }
                for chunk in withdraw[f].chunks(EXPORT_BATCH) {
                    let _ = ctl.send(SessionCmd::Export {
                        announce: Vec::new(),
                        withdraw: chunk.to_vec(),
                    });
                }
                for chunk in announce[f].chunks(EXPORT_BATCH) {
                    let _ = ctl.send(SessionCmd::Export {
                        announce: chunk.to_vec(),
                        withdraw: Vec::new(),
                    });
                }
            }
        }
    }

    /// Record prefixes whose best path changes, for [`Rib::take_changed`] (off by default).
    pub fn set_track_changes(&mut self, on: bool) {
        self.core.changed = on.then(Default::default);
    }

    /// Like [`Rib::set_track_changes`], but [`Rib::take_changed`] then reports
    /// every prefix whose paths changed in any way (a path added, replaced,
    /// removed or marked stale), best or not: what steering needs, as it ranks
    /// every POP's path.
    pub fn set_track_all_path_changes(&mut self, on: bool) {
        self.set_track_changes(on);
        self.core.track_all = on;
    }

    /// Prefixes of `afi` whose best path changed (added, removed, or another
    /// path/attribute set) since the last call. Empty unless tracking is on.
    pub fn take_changed(&mut self, afi: Afi) -> Vec<Prefix> {
        match self.core.changed.as_mut() {
            Some(c) => std::mem::take(&mut c[afi.index()]).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The Loc-RIB of a family: every prefix with its best path's peer and
    /// attribute id (see [`Rib::attrs`]).
    pub fn best_routes(&self, afi: Afi) -> Box<dyn Iterator<Item = (Prefix, PeerId, u32)> + '_> {
        match afi {
            Afi::Ipv4 => Box::new(
                self.v4
                    .iter()
                    .map(|e| (e.prefix(), e.paths[0].peer, e.paths[0].attr)),
            ),
            Afi::Ipv6 => Box::new(
                self.v6
                    .iter()
                    .map(|e| (e.prefix(), e.paths[0].peer, e.paths[0].attr)),
            ),
        }
    }

    /// The attributes of an attribute id from [`Rib::best_routes`] (decoded).
    pub fn attrs(&self, id: u32) -> PathAttrs {
        self.core.attrs.decode(id)
    }

    /// For steering (`crate::steer`): the paths of exactly `prefix` as
    /// best-path keys, best (the Loc-RIB path) first, each with its attribute
    /// id. `out` is cleared first; left empty when the prefix is not held.
    pub fn path_keys(&self, prefix: &Prefix, out: &mut Vec<(PathKey, u32)>) {
        fn get<'a, K: PrefixKey>(t: &'a Table<K>, p: &Prefix) -> Option<&'a Entry<K>> {
            t.find(K::from_prefix(p)?).map(|i| t.entry(i))
        }
        out.clear();
        let paths = match prefix.afi() {
            Afi::Ipv4 => get(&self.v4, prefix).map(|e| &e.paths[..]),
            Afi::Ipv6 => get(&self.v6, prefix).map(|e| &e.paths[..]),
        };
        for p in paths.unwrap_or_default() {
            out.push((self.core.path_key(p), p.attr));
        }
    }

    /// Calls `f` with every ASN of the AS_PATH of attribute id `id` (from
    /// [`Rib::best_routes`] or [`Rib::path_keys`]), in order; decodes nothing else.
    pub fn for_each_asn(&self, id: u32, f: impl FnMut(u32)) {
        self.core.attrs.for_each_asn(id, f)
    }

    /// Whether `peer` has sent End-of-RIB for `afi` in its current session.
    pub fn end_of_rib_seen(&self, peer: PeerId, afi: Afi) -> bool {
        self.core
            .peers
            .get(peer as usize)
            .is_some_and(|p| p.eor[afi.index()])
    }

    /// The best path's peer and attributes for exactly `prefix`.
    pub fn best(&self, prefix: &Prefix) -> Option<(PeerId, PathAttrs)> {
        fn get<'a, K: PrefixKey>(t: &'a Table<K>, p: &Prefix) -> Option<&'a Entry<K>> {
            t.find(K::from_prefix(p)?).map(|i| t.entry(i))
        }
        let e = match prefix.afi() {
            Afi::Ipv4 => get(&self.v4, prefix).map(|e| e.paths[0]),
            Afi::Ipv6 => get(&self.v6, prefix).map(|e| e.paths[0]),
        }?;
        Some((e.peer, self.core.attrs.decode(e.attr)))
    }
}
