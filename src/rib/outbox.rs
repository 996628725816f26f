//! Paced export of a whole table to a POP peer (on PeerUp, at the release
//! of a family, on ROUTE-REFRESH): a walk over the table instead of one big
//! dump, so the RIB never holds more than a small window of encoded batches
//! for a session.
//!
//! A walk takes a snapshot of the *order* only: the table slots of the
//! exported entries at its start, sorted by attribute set (so batches group
//! equal attributes, and the session packs them into few UPDATEs), and a
//! bitmap of the slots not walked yet. [`Rib::pump`] reads the entries at the
//! next slots as they are *now* and sends them as one
//! `SessionCmd::Export` of up to `export_batch` routes, each with an
//! [`ExportCredit`]; at most [`WINDOW`] batches are out at once. The session
//! drops the credit when the batch's bytes are written to the socket (or the
//! session is gone), which feeds `RibMsg::ExportDrained` back into the RIB's
//! own channel; [`Rib::flush`] then continues the walk. When a walk ends, the
//! POP gets End-of-RIB for the family (initial exports; not ROUTE-REFRESH).
//!
//! Changes during a walk (`flush`, per POP peer): a change whose slot is
//! still unwalked is left to the walk (which will send the entry's state at
//! that time); every other change goes out as an update, after the batches
//! already sent. A slot stays unwalked only while the same entry sits in it
//! continuously and stays exported: removing an entry, or its leaving the
//! export (a POP-learned path becomes best), clears its bit
//! ([`Core::uncover`]), so a prefix that moves (withdrawn, then announced
//! again in another slot) is never hidden behind the walk, and a ROUTE-REFRESH
//! walk never skips the withdraw of a route the peer has. The walk sends only current state and the
//! updates only what has changed since, so nothing is lost or reordered; a
//! prefix removed before the walk reached it costs one withdraw of a route
//! the peer never had (harmless).
//!
//! Without a feedback channel (`Rib::new` with no `timers`: tests and tools
//! driving the RIB by hand) the window is unbounded: a walk goes out at once.

use std::collections::VecDeque;

use tokio::sync::mpsc;
use tracing::info;

use super::state::{Core, Rib};
use super::table::{AttrId, PrefixKey, Table};
use super::{RibMsg, SessionCmd};
use crate::types::{Afi, PeerId, Prefix};

/// Paced export batches a POP session may hold not yet written to its socket.
pub const WINDOW: usize = 4;

/// Returned to the RIB when dropped: the session wrote (or discarded) one
/// paced export batch. Sends `RibMsg::ExportDrained` on the RIB's own channel.
#[derive(Debug)]
pub struct ExportCredit {
    tx: mpsc::UnboundedSender<RibMsg>,
    peer: PeerId,
    generation: u64,
}

impl Drop for ExportCredit {
    fn drop(&mut self) {
        let _ = self.tx.send(RibMsg::ExportDrained {
            peer: self.peer,
            generation: self.generation,
        });
    }
}

/// One family's table walk for one POP peer.
#[derive(Debug)]
struct Walk {
    afi: Afi,
    /// Slots of the entries exported at the start, sorted by attribute set.
    order: Vec<u32>,
    /// Next index into `order`.
    pos: usize,
    /// Bit per slot: in `order`, not walked yet, and the same entry since the start.
    unwalked: Vec<u64>,
    /// Send End-of-RIB when the walk ends.
    eor: bool,
    /// Routes sent so far (for the log).
    sent: usize,
}

impl Walk {
    fn covers(&self, slot: u32) -> bool {
        let (w, b) = (slot as usize / 64, slot % 64);
        self.unwalked.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn clear(&mut self, slot: u32) {
        let (w, b) = (slot as usize / 64, slot % 64);
        if let Some(x) = self.unwalked.get_mut(w) {
            *x &= !(1 << b);
        }
    }
}

/// The paced export state of one peer (kept for the life of the process, so
/// credits of an earlier session are told apart by `generation`).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    generation: u64,
    /// Paced batches sent and not yet drained.
    in_flight: usize,
    /// Walks in order (one per family at most); the first is the active one.
    walks: VecDeque<Walk>,
}

impl Outbox {
    /// A new session (or none): walks and outstanding credits are void.
    pub fn reset(&mut self) {
        self.generation += 1;
        self.in_flight = 0;
        self.walks.clear();
    }

    /// Paced batches sent and not yet drained.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn walking(&self) -> bool {
        !self.walks.is_empty()
    }

    /// The change of the entry in `slot` of `afi`'s table is left to a walk.
    pub fn covers(&self, afi: Afi, slot: u32) -> bool {
        self.walks.iter().any(|w| w.afi == afi && w.covers(slot))
    }

    /// Exported entries of `t` (the table of `afi`) that a first export of
    /// the family (a walk ending in End-of-RIB) has not sent yet: the peer
    /// does not have them. (A ROUTE-REFRESH walk resends what the peer has.)
    /// Walks the rest of the walk's order: only while one is under way.
    pub fn unsent<K: PrefixKey>(&self, afi: Afi, t: &Table<K>) -> u64 {
        self.walks
            .iter()
            .filter(|w| w.afi == afi && w.eor)
            .map(|w| {
                w.order[w.pos..]
                    .iter()
                    .filter(|&&slot| w.covers(slot) && t.entry(slot).announced())
                    .count() as u64
            })
            .sum()
    }
}

impl Core {
    /// The entry in `slot` of `afi`'s table is being removed, or leaves the
    /// export: no walk sends whatever takes the slot next as if it had been
    /// there at the start, nor skips the entry's withdraw.
    pub(super) fn uncover(&mut self, afi: Afi, slot: u32) {
        if !self.walking {
            return;
        }
        for ps in self.peers.iter_mut() {
            for w in ps.outbox.walks.iter_mut().filter(|w| w.afi == afi) {
                w.clear(slot);
            }
        }
    }

    pub(super) fn recount_walks(&mut self) {
        self.walking = self.peers.iter().any(|p| p.outbox.walking());
    }
}

/// Slots of `t`'s exported entries, sorted by attribute set, and their bitmap.
fn snapshot<K: PrefixKey>(t: &Table<K>) -> (Vec<u32>, Vec<u64>) {
    let mut items: Vec<u64> = t
        .iter_indexed()
        .filter(|(_, e)| e.announced())
        .map(|(i, e)| (u64::from(e.paths[0].attr) << 32) | u64::from(i))
        .collect();
    items.sort_unstable();
    let mut bits = vec![0u64; (t.slot_count() as usize).div_ceil(64)];
    let order = items
        .into_iter()
        .map(|x| {
            let s = x as u32;
            bits[s as usize / 64] |= 1 << (s % 64);
            s
        })
        .collect();
    (order, bits)
}

impl Rib {
    /// Start sending `peer` its whole export of `afi` (End-of-RIB after it with
    /// `eor`). A walk of the family already under way starts over (keeping
    /// its End-of-RIB).
    pub(super) fn start_export(&mut self, peer: PeerId, afi: Afi, eor: bool) {
        let (order, unwalked) = match afi {
            Afi::Ipv4 => snapshot(&self.v4),
            Afi::Ipv6 => snapshot(&self.v6),
        };
        let ob = &mut self.core.peers[peer as usize].outbox;
        let mut walk = Walk {
            afi,
            order,
            pos: 0,
            unwalked,
            eor,
            sent: 0,
        };
        match ob.walks.iter_mut().find(|w| w.afi == afi) {
            Some(w) => {
                walk.eor |= w.eor;
                *w = walk;
            }
            None => ob.walks.push_back(walk),
        }
        self.core.walking = true;
        self.pump(peer);
    }

    /// The session of `peer` wrote a paced batch (`RibMsg::ExportDrained`).
    /// The walk continues at the next [`Rib::flush`].
    pub(super) fn export_drained(&mut self, peer: PeerId, generation: u64) {
        if let Some(ps) = self.core.peers.get_mut(peer as usize) {
            let ob = &mut ps.outbox;
            if ob.generation == generation {
                ob.in_flight = ob.in_flight.saturating_sub(1);
            }
        }
    }

    /// Continue every walk as far as its window allows.
    pub(super) fn pump_all(&mut self) {
        if !self.core.walking {
            return;
        }
        for peer in 0..self.core.peers.len() {
            if self.core.peers[peer].outbox.walking() {
                self.pump(peer as PeerId);
            }
        }
        self.core.recount_walks();
    }

    /// Send `peer` the next batches of its walks while its window has room.
    fn pump(&mut self, peer: PeerId) {
        let window = if self.timers.is_some() {
            WINDOW
        } else {
            usize::MAX
        };
        let Some(ctl) = self.core.peers[peer as usize].ctl.clone() else {
            self.core.peers[peer as usize].outbox.reset();
            return;
        };
        loop {
            let ps = &mut self.core.peers[peer as usize];
            let ob = &mut ps.outbox;
            if ob.in_flight >= window {
                return;
            }
            let Some(w) = ob.walks.front_mut() else {
                return;
            };
            // One Arc per attribute set per batch; nothing kept across batches.
            self.core.attrs.clear_cache();
            let mut announce = Vec::new();
            while w.pos < w.order.len() && announce.len() < self.export_batch {
                let slot = w.order[w.pos];
                w.pos += 1;
                if !w.covers(slot) {
                    continue; // removed since the start (its bit was cleared)
                }
                w.clear(slot);
                let route = match w.afi {
                    Afi::Ipv4 => entry_route(&self.v4, slot),
                    Afi::Ipv6 => entry_route(&self.v6, slot),
                };
                if let Some((p, a)) = route {
                    announce.push((p, self.core.attrs.get(a)));
                }
            }
            w.sent += announce.len();
            let (afi, done, eor, sent) = (w.afi, w.pos == w.order.len(), w.eor, w.sent);
            let mut ok = true;
            if !announce.is_empty() {
                let credit = self.timers.clone().map(|tx| ExportCredit {
                    tx,
                    peer,
                    generation: ob.generation,
                });
                ob.in_flight += usize::from(credit.is_some());
                ok = ctl
                    .send(SessionCmd::Export {
                        announce,
                        withdraw: Vec::new(),
                        credit,
                    })
                    .is_ok();
            }
            if done {
                ob.walks.pop_front();
                if eor {
                    ok &= ctl.send(SessionCmd::EndOfRib(afi)).is_ok();
                }
                info!(peer = %self.name(peer), %afi, routes = sent, "RIB: full export sent");
            }
            if !ok {
                // The session is gone; its PeerDown follows.
                self.core.peers[peer as usize].outbox.reset();
                return;
            }
        }
    }
}

/// The prefix and best attribute set of the entry in `slot`, if exported.
fn entry_route<K: PrefixKey>(t: &Table<K>, slot: u32) -> Option<(Prefix, AttrId)> {
    let e = t.entry(slot);
    e.announced().then(|| (e.prefix(), e.paths[0].attr))
}
