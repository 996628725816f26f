//! The OPEN exchange: the OPEN we send, the checks on the peer's (RFC 4271
//! §6.2), what the two OPENs negotiate, and connection collision detection
//! (RFC 4271 §6.8). Pure functions; `task` calls them and feeds the outcome to
//! the FSM (`OpenReceived`, `Error`, `CollisionLost`).

use std::net::Ipv4Addr;

use crate::config::{Config, PeerConfig};
use crate::fsm::{self, State};
use crate::types::Afi;
use crate::wire::{self, code, open_err, Capabilities, Open, WireError};

/// The OPEN we send to a peer (`restarting`: set the Restart State bit, see
/// `graceful`).
pub(super) fn our_open(cfg: &Config, pc: &PeerConfig, restarting: bool) -> Open {
    let asn = cfg.local_asn;
    Open {
        asn,
        my_as: if asn > 65535 {
            wire::AS_TRANS as u16
        } else {
            asn as u16
        },
        hold_time: pc.hold_time,
        router_id: cfg.router_id,
        caps: Capabilities {
            multiprotocol: pc.families.clone(),
            as4: Some(asn),
            route_refresh: true,
            extended_message: true,
            graceful_restart: super::graceful::our_cap(pc, restarting),
            other: Vec::new(),
        },
    }
}

/// Check the peer's OPEN against the config: its ASN (Bad Peer AS, 2/2) and,
/// on iBGP, an identifier different from ours (Bad BGP Identifier, 2/3).
pub(super) fn check_open(cfg: &Config, pc: &PeerConfig, open: &Open) -> Result<(), WireError> {
    wire::check_peer_as(open, pc.remote_asn)?;
    if open.router_id == cfg.router_id && !pc.is_ebgp(cfg.local_asn) {
        return Err(WireError::new(
            code::OPEN,
            open_err::BAD_BGP_ID,
            Vec::new(),
            format!("peer BGP identifier {} equals ours", open.router_id),
        ));
    }
    Ok(())
}

/// Session parameters both OPENs agree on.
#[derive(Clone, Debug)]
pub(super) struct Negotiated {
    pub hold: u16,
    pub keepalive: u16,
    pub as4: bool,
    /// Families both sides announced, indexed by `Afi::index()`.
    pub afis: [bool; 2],
    pub extended: bool,
    pub graceful_restart: bool,
    /// Both sides set the N bit (RFC 8538): NOTIFICATIONs other than Hard
    /// Reset keep routes as stale too.
    pub gr_notification: bool,
    pub route_refresh: bool,
}

impl Negotiated {
    /// Largest message either side may send.
    pub fn max_len(&self) -> usize {
        if self.extended {
            wire::MAX_EXT_MSG_LEN
        } else {
            wire::MAX_MSG_LEN
        }
    }
}

/// What our OPEN and the peer's negotiate.
pub(super) fn negotiate(pc: &PeerConfig, ours: &Open, theirs: &Open) -> Negotiated {
    let (hold, keepalive) = fsm::negotiate_hold(ours.hold_time, theirs.hold_time);
    let mut afis = [false; 2];
    // RFC 4760 §8: a peer that sends no Multiprotocol capability does IPv4 unicast only.
    let theirs_mp: Vec<Afi> = if theirs.caps.multiprotocol.is_empty() {
        vec![Afi::Ipv4]
    } else {
        theirs.caps.multiprotocol.clone()
    };
    for a in &ours.caps.multiprotocol {
        if theirs_mp.contains(a) {
            afis[a.index()] = true;
        }
    }
    Negotiated {
        hold,
        keepalive,
        as4: theirs.caps.as4.is_some(),
        afis,
        extended: theirs.caps.extended_message,
        graceful_restart: pc.graceful_restart && theirs.caps.graceful_restart.is_some(),
        gr_notification: [&ours.caps, &theirs.caps]
            .iter()
            .all(|c| c.graceful_restart.as_ref().is_some_and(|g| g.notification)),
        route_refresh: theirs.caps.route_refresh,
    }
}

/// Another connection of the same peer, as collision detection sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rival {
    pub id: u64,
    pub outgoing: bool,
    pub state: State,
}

/// The outcome of collision detection for a connection that just got the
/// peer's OPEN: whether it gives way itself, and which rivals give way to it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Collision {
    pub lose_self: bool,
    pub losers: Vec<u64>,
}

/// RFC 4271 §6.8 for a connection (`outgoing`: we initiated it) whose OPEN
/// carries `remote_id`: the connection initiated by the higher BGP Identifier
/// survives. Compared against rivals in OpenConfirm; and, since the OPEN tells
/// the peer's identifier, also against rivals in OpenSent (§6.8 allows it): if
/// the connection to keep is still in OpenSent, this one gives way now rather
/// than reach Established while the peer keeps the other.
pub(super) fn collision(
    local_id: Ipv4Addr,
    remote_id: Ipv4Addr,
    outgoing: bool,
    rivals: &[Rival],
) -> Collision {
    let keep_ours = fsm::collision_winner(local_id, remote_id);
    let mut c = Collision::default();
    for r in rivals.iter().filter(|r| r.state == State::OpenConfirm) {
        if r.outgoing == outgoing || keep_ours != outgoing {
            c.lose_self = true;
        } else {
            c.losers.push(r.id);
        }
    }
    if outgoing != keep_ours
        && rivals
            .iter()
            .any(|r| r.state == State::OpenSent && r.outgoing == keep_ours)
    {
        c.lose_self = true;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn rival(id: u64, outgoing: bool, state: State) -> Rival {
        Rival {
            id,
            outgoing,
            state,
        }
    }

    #[test]
    fn higher_identifier_keeps_its_own_connection() {
        // We are higher: our outgoing connection wins over their one in OpenConfirm.
        let c = collision(HIGH, LOW, true, &[rival(7, false, State::OpenConfirm)]);
        assert_eq!(
            c,
            Collision {
                lose_self: false,
                losers: vec![7]
            }
        );
        // We are lower: the incoming connection (theirs) is kept, ours gives way.
        let c = collision(LOW, HIGH, true, &[rival(7, false, State::OpenConfirm)]);
        assert_eq!(
            c,
            Collision {
                lose_self: true,
                losers: vec![]
            }
        );
    }

    #[test]
    fn give_way_to_the_keeper_still_in_opensent() {
        // We are higher, so our outgoing one is kept; it is still in OpenSent
        // when their incoming one gets an OPEN: the incoming one gives way.
        let c = collision(HIGH, LOW, false, &[rival(3, true, State::OpenSent)]);
        assert!(c.lose_self);
        // The keeper itself does not give way to a loser in OpenSent.
        let c = collision(HIGH, LOW, true, &[rival(4, false, State::OpenSent)]);
        assert_eq!(c, Collision::default());
    }

    #[test]
    fn same_direction_duplicate_gives_way() {
        let c = collision(HIGH, LOW, false, &[rival(1, false, State::OpenConfirm)]);
        assert!(c.lose_self);
    }
}
