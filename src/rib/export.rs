//! Export to POP peers: the queued best-path changes sent after each burst
//! ([`Rib::flush`]), in batches of [`EXPORT_BATCH`] with equal attribute sets
//! next to each other, and ROUTE-REFRESH (a new walk of `outbox`, which sends
//! whole tables paced; `flush` leaves to a walk the changes it has not
//! reached and then continues the walks). Nothing of a family goes out
//! before the family is released (`graceful`: upstream convergence or the
//! selection deferral).
//!
//! Sends `SessionCmd::Export` to the POP sessions; the sessions encode.
//! [`Rib::exported`] counts what a POP peer has been sent and not withdrawn
//! (the admin `peers` reply's `exported`).

use std::sync::Arc;

use tracing::debug;

use super::state::Rib;
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
            self.start_export(peer, afi, false);
        }
    }

    /// Prefixes of `afi` exported to `peer` and not withdrawn, once the
    /// queued changes are flushed (an admin query flushes first): every
    /// exported Loc-RIB entry (`Core::announced`) when the peer is a POP
    /// peer up with the family and the family is released, less what its
    /// first table walk has not reached yet; 0 otherwise (upstream peers
    /// get only our `announce` prefixes, which the session counts).
    pub(super) fn exported(&self, peer: PeerId, afi: Afi) -> u64 {
        let f = afi.index();
        let ps = &self.core.peers[peer as usize];
        let negotiated = ps.info.as_ref().is_some_and(|i| i.afis[f]);
        if ps.role != Role::Pop || ps.ctl.is_none() || !negotiated || !self.released[f] {
            return 0;
        }
        let unsent = match afi {
            Afi::Ipv4 => ps.outbox.unsent(afi, &self.v4),
            Afi::Ipv6 => ps.outbox.unsent(afi, &self.v6),
        };
        self.core.announced[f].saturating_sub(unsent)
    }

    /// Send queued export changes to every POP peer that is up, in batches,
    /// then continue the table walks (`outbox`) as far as their windows allow.
    pub fn flush(&mut self) {
        self.core.attrs.clear_cache();
        if !self.core.pending.is_empty() {
            self.flush_changes();
        }
        self.pump_all();
        self.core.attrs.clear_cache();
    }

    fn flush_changes(&mut self) {
        let pending = std::mem::take(&mut self.core.pending);
        let mut announce: [Vec<(Prefix, Arc<PathAttrs>, u32)>; 2] = Default::default();
        let mut withdraw: [Vec<(Prefix, u32)>; 2] = Default::default();
        for (p, (a, slot)) in pending {
            let f = p.afi().index();
            match a {
                Some(a) => announce[f].push((p, a, slot)),
                None => withdraw[f].push((p, slot)),
            }
        }
        // Same attributes next to each other so the session can pack UPDATEs.
        for a in announce.iter_mut() {
            a.sort_unstable_by_key(|(p, at, _)| (Arc::as_ptr(at) as usize, *p));
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
                // A table walk under way sends the entries it has not reached.
                let afi = Afi::ALL[f];
                let left = |slot: u32| !ps.outbox.covers(afi, slot);
                let w = withdraw[f]
                    .iter()
                    .filter(|(_, s)| left(*s))
                    .map(|(p, _)| *p);
                for chunk in batches(w) {
                    let _ = ctl.send(SessionCmd::Export {
                        announce: Vec::new(),
                        withdraw: chunk,
                        credit: None,
                    });
                }
                let a = announce[f]
                    .iter()
                    .filter(|(_, _, s)| left(*s))
                    .map(|(p, at, _)| (*p, at.clone()));
                for chunk in batches(a) {
                    let _ = ctl.send(SessionCmd::Export {
                        announce: chunk,
                        withdraw: Vec::new(),
                        credit: None,
                    });
                }
            }
        }
    }
}

/// `items` in vectors of at most [`EXPORT_BATCH`].
fn batches<T>(mut items: impl Iterator<Item = T>) -> impl Iterator<Item = Vec<T>> {
    std::iter::from_fn(move || {
        let v: Vec<T> = items.by_ref().take(EXPORT_BATCH).collect();
        (!v.is_empty()).then_some(v)
    })
}
