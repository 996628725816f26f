//! Peer sessions coming and going: PeerUp (initial export to a POP, paced
//! by `outbox`; our
//! End-of-RIB to an upstream), PeerDown, and graceful restart (RFC 4724):
//! stale marking, the restart timer, and sweeping stale paths on End-of-RIB
//! or timeout; and the export deferral: a POP peer gets a family's table and
//! our End-of-RIB only once that family is released (`Rib::released`: the
//! first End-of-RIB of an upstream peer carrying it, or the selection
//! deferral timer), so that after our own restart the other POPs keep our
//! stale routes until we know our routes again.
//!
//! Called by [`Rib::handle`]; timers feed `RibMsg::StaleTimeout` and
//! `RibMsg::DeferralTimeout` back into the RIB task's own channel.

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::state::{before, with_table, Core, Rib};
use super::table::{PrefixKey, Table, STALE};
use super::{RibMsg, SessionCmd, SessionInfo};
use crate::config::{Config, Role};
use crate::types::{Afi, PeerId};

/// Per family, whether exports to POP peers may go out from the start: when no
/// `upstream` peer carries the family (nothing to wait for: only upstream
/// routes are exported), or `selection_deferral` is 0.
pub(super) fn released_at_start(cfg: &Config) -> [bool; 2] {
    Afi::ALL.map(|afi| {
        cfg.selection_deferral == 0
            || !cfg
                .peers
                .iter()
                .any(|p| p.role == Role::Upstream && p.families.contains(&afi))
    })
}

impl Core {
    /// Remove `peer`'s paths from a table (only the stale ones with `only_stale`).
    pub(super) fn sweep<K: PrefixKey>(
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
    pub(super) fn mark_stale<K: PrefixKey>(&mut self, t: &mut Table<K>, peer: PeerId, fam: usize) {
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

impl Rib {
    pub(super) fn peer_up(
        &mut self,
        peer: PeerId,
        info: SessionInfo,
        ctl: mpsc::UnboundedSender<SessionCmd>,
    ) {
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
            // Pending changes go to the POPs already up; the new one gets the
            // table, paced (`outbox`), then End-of-RIB.
            self.flush();
            self.core.peers[peer as usize].outbox.reset();
            self.core.peers[peer as usize].ctl = Some(ctl);
            self.recount_pops();
            for afi in Afi::ALL {
                if !afis[afi.index()] {
                    continue;
                }
                if self.released[afi.index()] {
                    self.start_export(peer, afi, true);
                } else {
                    info!(peer = %self.name(peer), %afi, "RIB: export and End-of-RIB wait for the upstream End-of-RIB");
                }
            }
        } else {
            // Upstreams get no RIB routes from us (our `announce` prefixes go
            // out from the session itself as it comes up, before this), so our
            // initial update is complete now:
            // End-of-RIB per family (RFC 4724 §2), which a restarting router waits for.
            for afi in Afi::ALL {
                if afis[afi.index()] {
                    let _ = ctl.send(SessionCmd::EndOfRib(afi));
                }
            }
            self.core.peers[peer as usize].ctl = Some(ctl);
        }
    }

    pub(super) fn peer_down(&mut self, peer: PeerId, keep_stale: Option<Duration>) {
        if !self.known(peer) {
            return;
        }
        let ps = &mut self.core.peers[peer as usize];
        ps.ctl = None;
        ps.outbox.reset();
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

    pub(super) fn stale_timeout(&mut self, peer: PeerId, epoch: u64) {
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

    pub(super) fn end_of_rib(&mut self, peer: PeerId, afi: Afi) {
        if !self.known(peer) {
            return;
        }
        debug!(peer = %self.name(peer), %afi, "RIB: End-of-RIB");
        self.core.peers[peer as usize].eor[afi.index()] = true;
        self.sweep_stale(peer, afi);
        if self.core.peers[peer as usize].role == Role::Upstream && !self.released[afi.index()] {
            info!(peer = %self.name(peer), %afi, "RIB: upstream End-of-RIB, exporting to POP peers");
            self.release(afi);
        }
        let ps = &mut self.core.peers[peer as usize];
        if ps.stale.iter().all(|&n| n == 0) {
            ps.epoch += 1; // nothing left for a pending stale timer to do
        }
    }
}

impl Rib {
    /// Exports of `afi` to POP peers may go out: each POP peer up with the
    /// family gets the whole table, then End-of-RIB. Changes queued before
    /// are dropped (the table carries them).
    fn release(&mut self, afi: Afi) {
        if self.stopped {
            return;
        }
        let f = afi.index();
        self.core.pending.retain(|p, _| p.afi() != afi);
        self.released[f] = true;
        let pops: Vec<PeerId> = (0..self.core.peers.len() as PeerId)
            .filter(|&p| {
                let ps = &self.core.peers[p as usize];
                ps.role == Role::Pop
                    && ps.ctl.is_some()
                    && ps.info.as_ref().is_some_and(|i| i.afis[f])
            })
            .collect();
        for peer in pops {
            self.start_export(peer, afi, true);
        }
    }

    /// The selection deferral ran out: release every family still waiting.
    pub(super) fn deferral_timeout(&mut self) {
        for afi in Afi::ALL {
            if !self.released[afi.index()] {
                warn!(%afi, "RIB: no upstream End-of-RIB within selection_deferral; exporting to POP peers");
                self.release(afi);
            }
        }
    }

    /// Daemon shutdown: export nothing more (see `RibMsg::Shutdown`).
    pub(super) fn shutdown(&mut self) {
        info!("RIB: shutting down, exports stop");
        self.stopped = true;
        self.released = [false; 2];
        self.core.pending.clear();
        for ps in self.core.peers.iter_mut() {
            ps.outbox.reset();
        }
        self.core.walking = false;
    }

    /// Whether exports of `afi` to POP peers go out (see [`Rib::release`]).
    pub fn export_released(&self, afi: Afi) -> bool {
        self.released[afi.index()]
    }
}
