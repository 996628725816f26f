//! Per-peer event counters of the session engine, as the admin `peers` reply
//! carries them (part of [`super::PeerStatus`]) and a metrics collector reads
//! them: BGP messages by type and direction ([`MessageCounts`]),
//! NOTIFICATIONs by code, subcode and direction ([`NotificationCount`], at
//! most [`NOTIFICATION_KINDS`] kinds per peer), and the RFC 7606 actions
//! taken on the peer's UPDATEs ([`Rfc7606Counts`]).
//!
//! Counters only grow, for the life of the process (across sessions). The
//! peer task counts what it reads per batch of messages (one status lock per
//! batch, as for routes), and what it sends where it sends it.

use serde::{Deserialize, Serialize};

use crate::wire::msg;

/// BGP messages of one direction, by type (RFC 4271 §4.1, RFC 2918).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageCounts {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCounts {
    /// Count `n` messages of type `ty` (a type the framing rejects is not counted).
    pub fn add(&mut self, ty: u8, n: u64) {
        let c = match ty {
            msg::OPEN => &mut self.open,
            msg::UPDATE => &mut self.update,
            msg::NOTIFICATION => &mut self.notification,
            msg::KEEPALIVE => &mut self.keepalive,
            msg::ROUTE_REFRESH => &mut self.route_refresh,
            _ => return,
        };
        *c += n;
    }

    /// Add every count of `other`.
    pub fn merge(&mut self, other: &MessageCounts) {
        self.open += other.open;
        self.update += other.update;
        self.notification += other.notification;
        self.keepalive += other.keepalive;
        self.route_refresh += other.route_refresh;
    }

    pub fn is_zero(&self) -> bool {
        *self == MessageCounts::default()
    }
}

/// Which way a message went.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Received,
    Sent,
}

impl Direction {
    /// `received` or `sent` (as serialized; a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Received => "received",
            Direction::Sent => "sent",
        }
    }
}

/// NOTIFICATIONs of one (direction, code, subcode) (names:
/// `wire::notification_name`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationCount {
    pub direction: Direction,
    pub code: u8,
    pub subcode: u8,
    pub count: u64,
}

/// Most (direction, code, subcode) kinds a peer's `notifications` lists;
/// NOTIFICATIONs of further kinds are counted in `notifications_unlisted`.
/// (Each NOTIFICATION ends a session, so a peer rarely shows more than a few.)
pub const NOTIFICATION_KINDS: usize = 32;

/// Count one NOTIFICATION in `list` (kept sorted by direction, code,
/// subcode), or in `unlisted` when `list` holds [`NOTIFICATION_KINDS`]
/// other kinds.
pub(super) fn count_notification(
    list: &mut Vec<NotificationCount>,
    unlisted: &mut u64,
    direction: Direction,
    code: u8,
    subcode: u8,
) {
    let key = |n: &NotificationCount| (n.direction, n.code, n.subcode);
    match list.binary_search_by_key(&(direction, code, subcode), key) {
        Ok(i) => list[i].count += 1,
        Err(_) if list.len() >= NOTIFICATION_KINDS => *unlisted += 1,
        Err(i) => list.insert(
            i,
            NotificationCount {
                direction,
                code,
                subcode,
                count: 1,
            },
        ),
    }
}

/// RFC 7606 actions taken on a peer's UPDATEs (the resets, "session reset",
/// are the UPDATE Message Error NOTIFICATIONs sent, in `notifications`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rfc7606Counts {
    /// UPDATEs treated as withdraw (RFC 7606 §2).
    pub treat_as_withdraw: u64,
    /// Path attributes discarded (RFC 7606 §2), over all UPDATEs.
    pub attribute_discard: u64,
}

impl Rfc7606Counts {
    pub fn merge(&mut self, other: &Rfc7606Counts) {
        self.treat_as_withdraw += other.treat_as_withdraw;
        self.attribute_discard += other.attribute_discard;
    }

    pub fn is_zero(&self) -> bool {
        *self == Rfc7606Counts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{cease, code};

    #[test]
    fn messages_by_type() {
        let mut m = MessageCounts::default();
        m.add(msg::UPDATE, 3);
        m.add(msg::KEEPALIVE, 1);
        m.add(msg::ROUTE_REFRESH, 1);
        let mut total = MessageCounts::default();
        total.merge(&m);
        total.merge(&m);
        assert_eq!((total.update, total.keepalive, total.open), (6, 2, 0));
        assert_eq!(total.route_refresh, 2);
    }

    #[test]
    fn notifications_sorted_and_bounded() {
        let (mut list, mut unlisted) = (Vec::new(), 0);
        let mut count = |d, c, s| count_notification(&mut list, &mut unlisted, d, c, s);
        count(Direction::Sent, code::CEASE, cease::ADMIN_RESET);
        count(Direction::Received, code::CEASE, cease::ADMIN_SHUTDOWN);
        count(Direction::Received, code::CEASE, cease::ADMIN_SHUTDOWN);
        count(Direction::Received, code::HOLD_TIMER, 0);
        let got: Vec<_> = list
            .iter()
            .map(|n| (n.direction, n.code, n.subcode, n.count))
            .collect();
        assert_eq!(
            got,
            [
                (Direction::Received, code::HOLD_TIMER, 0, 1),
                (Direction::Received, code::CEASE, cease::ADMIN_SHUTDOWN, 2),
                (Direction::Sent, code::CEASE, cease::ADMIN_RESET, 1),
            ]
        );
        for s in 0..=u8::MAX {
            count_notification(&mut list, &mut unlisted, Direction::Sent, code::OPEN, s);
        }
        assert_eq!(list.len(), NOTIFICATION_KINDS);
        assert_eq!(unlisted, 256 - (NOTIFICATION_KINDS as u64 - 3));
    }
}
