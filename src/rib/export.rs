//! Export to POP peers: the queued best-path changes sent after each burst
//! ([`Rib::flush`]), the full table on PeerUp or ROUTE-REFRESH, in batches of
//! [`EXPORT_BATCH`] with equal attribute sets next to each other. Nothing of
//! a family goes out before the family is released (`graceful`: upstream
//! convergence or the selection deferral).
//!
//! Sends `SessionCmd::Export` to the POP sessions; the sessions encode.

use std::sync::Arc;

use tracing::{debug, info};

use super::state::Rib;
use super::table::{AttrId, PrefixKey, Table};
use super::SessionCmd;
use crate::config::Role;
use crate::types::{Afi, PathAttrs, PeerId, Prefix};

/// Most routes in one `SessionCmd::Export` (full dumps and large flushes).
pub const EXPORT_BATCH: usize = 4096;

impl Rib {
    pub(super) fn route_refresh(&mut self, peer: PeerId, afi: Afi) {
        if !self.known(peer) {
            return;
        }
        let ps = &self.core.peers[peer as usize];
        let negotiated = ps.info.as_ref().is_some_and(|i| i.afis[afi.index()]);
        // Before release the family's table has not been sent; it will be.
        if ps.role == Role::Pop && ps.ctl.is_some() && negotiated && self.released[afi.index()] {
            debug!(peer = %self.name(peer), %afi, "RIB: route refresh");
            self.flush();
            self.dump(peer, afi);
        }
    }

    /// Send `peer` every exported route of `afi`, grouped by attribute set.
    pub(super) fn dump(&mut self, peer: PeerId, afi: Afi) {
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
                // Unreleased: the whole table goes out at release instead.
                if !info.afis[f] || !self.released[f] {
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
}
