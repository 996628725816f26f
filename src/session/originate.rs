//! The prefixes we originate (anycast, `crate::announce`) on one Established
//! session: what this session has sent, and [`Originated::sync`], which
//! sends the difference to the adverts published now — withdrawals, then
//! announcements whose attributes changed — for the families the session
//! negotiated and the peers the advert is for (`upstream`, `pop`). Called by
//! the peer task when the session comes up, when the adverts change, and
//! before a shutdown Cease (so the withdrawals go out first). On an iBGP
//! session the AS_PATH is empty (prepends do not apply) and LOCAL_PREF 100
//! is sent.
//!
//! Talks to `announce` (the adverts), `wire` (encoding).

use std::collections::HashMap;
use std::sync::Arc;

use super::established::Up;
use super::socket::Link;
use super::task::PeerCtx;
use crate::announce::Advert;
use crate::config::Role;
use crate::types::{Afi, PathAttrs, Prefix};
use crate::wire;

/// LOCAL_PREF of our prefixes on iBGP sessions (the usual default).
const IBGP_LOCAL_PREF: u32 = 100;

/// What this session has announced of ours, with the attributes sent.
#[derive(Default)]
pub(super) struct Originated {
    sent: HashMap<Prefix, Arc<PathAttrs>>,
}

impl Originated {
    /// Send what differs between `adverts` and what was sent; returns the
    /// number of UPDATEs written.
    pub(super) fn sync(&mut self, ctx: &PeerCtx, up: &Up, link: &Link, adverts: &[Advert]) -> u64 {
        let pop = ctx.pc().role == Role::Pop;
        let wanted: HashMap<Prefix, &Advert> = adverts
            .iter()
            .filter(|a| if pop { a.to_pops } else { a.to_upstream })
            .filter(|a| up.afis[a.prefix.afi().index()])
            .map(|a| (a.prefix, a))
            .collect();
        let mut out = Vec::new();
        let mut msgs = 0;
        let gone: Vec<Prefix> = self
            .sent
            .keys()
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        for afi in Afi::ALL {
            let w: Vec<Prefix> = gone.iter().copied().filter(|p| p.afi() == afi).collect();
            if !w.is_empty() {
                wire::encode_withdraw(&up.enc, afi, &w, &mut out);
                msgs += 1;
            }
        }
        for p in gone {
            self.sent.remove(&p);
        }
        let mut changed: Vec<&&Advert> = wanted
            .values()
            .filter(|a| {
                !self
                    .sent
                    .get(&a.prefix)
                    .is_some_and(|s| Arc::ptr_eq(s, &a.attrs))
            })
            .collect();
        changed.sort_by_key(|a| a.prefix);
        for a in changed {
            let afi = a.prefix.afi();
            let mut attrs = (*a.attrs).clone();
            if !up.uctx.ebgp {
                // iBGP (RFC 4271 §5.1.2, §5.1.5): an empty AS_PATH, and LOCAL_PREF.
                attrs.as_path = Default::default();
                attrs.local_pref = Some(IBGP_LOCAL_PREF);
            }
            if attrs.next_hop.is_none() {
                attrs.next_hop = Some(if afi == Afi::Ipv4 { up.nh.0 } else { up.nh.1 });
            }
            wire::encode_announce(&up.enc, afi, &[a.prefix], &attrs, &mut out);
            msgs += 1;
            self.sent.insert(a.prefix, a.attrs.clone());
        }
        if !out.is_empty() {
            link.send(out);
            let mut have: Vec<Prefix> = self.sent.keys().copied().collect();
            have.sort();
            ctx.with_status(|s| {
                s.count_sent(wire::msg::UPDATE, msgs);
                s.originated = have;
            });
        }
        msgs
    }

    /// The session ended: nothing is announced on it any more.
    pub(super) fn clear(&mut self, ctx: &PeerCtx) {
        if !self.sent.is_empty() {
            self.sent.clear();
            ctx.with_status(|s| s.originated.clear());
        }
    }
}
