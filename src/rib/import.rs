//! Import: UPDATEs from a peer through import policy (AS loop, first AS,
//! next hop, LOCAL_PREF; per prefix, our own `announce` prefixes) into the tables, and the max-prefix limit
//! (OpenBGPD's rde_filter / rde_update side).
//!
//! Called by [`Rib::handle`] for `RibMsg::Update`; writes the tables through
//! `Core` (best path kept by `Core::settle`).

use tracing::{debug, warn};

use super::bestpath::pre_med;
use super::state::{before, with_table, Core, Rib};
use super::table::{AttrId, PathRef, PrefixKey, Table};
use super::SessionCmd;
use crate::config::MaxPrefixAction;
use crate::types::{Afi, PathAttrs, PeerId, Prefix, RouteChange};

impl Core {
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
                    ps.max_prefix_events[fam] += 1;
                    warn!(peer = %pc.name, %afi, limit = lim.limit, "max-prefix limit exceeded");
                }
                false
            }
            MaxPrefixAction::Teardown => {
                ps.max_exceeded[fam] = true;
                ps.max_prefix_events[fam] += 1;
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
}

impl Rib {
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

    pub(super) fn update(&mut self, peer: PeerId, afi: Afi, change: RouteChange) {
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
                    let go = if self.core.cfg.originates(p) {
                        debug!(peer = %self.name(peer), prefix = %p, "RIB: our own announce prefix, rejected");
                        with_table!(self, p.afi(), |t, core| core.reject(t, peer, *p))
                    } else {
                        with_table!(self, p.afi(), |t, core| core.announce(t, peer, *p, id))
                    };
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
}
