//! The RFC 4271 §8 finite state machine as a pure function:
//! `step(state, &config, event) -> (state, actions)`.
//!
//! Owns nothing and does no I/O. It is the only place a session's state
//! changes: the session task (`session::task`) feeds it every event (timers,
//! TCP, messages, operator and RIB commands) and carries out the returned
//! actions in order, connect-retry included. Collision detection (§6.8) is
//! decided by [`collision_winner`] and delivered as `Event::CollisionLost`; a
//! graceful-restart peer's new connection ending its Established session
//! (RFC 4724 §4.2) arrives as `Event::PeerRestarted`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::wire::{cease, code, fsm_err, Notification, NO_SUBCODE};

/// Session states (RFC 4271 §8.2.2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Per-peer settings the FSM needs.
#[derive(Copy, Clone, Debug)]
pub struct FsmConfig {
    /// Only wait for the peer to connect (PassiveTcpEstablishment).
    pub passive: bool,
    /// Our configured hold time (0 = no keepalives, no hold timer).
    pub hold_time: u16,
}

/// The hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2: "large", 4 minutes).
pub const OPEN_HOLD_TIME: u16 = 240;

/// FSM inputs (a subset of RFC 4271 §8.1 events; the rest do not apply to us).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// ManualStart / AutomaticStart (with or without passive TCP by config).
    Start,
    /// ManualStop (daemon shutdown): Cease with this subcode; no restart.
    Stop {
        subcode: u8,
    },
    ConnectRetryTimerExpires,
    HoldTimerExpires,
    KeepaliveTimerExpires,
    /// TcpConnectionConfirmed / Tcp_CR_Acked.
    TcpConnected,
    TcpConnectionFails,
    /// BGPOpen: a valid OPEN with the peer's hold time.
    OpenReceived {
        peer_hold_time: u16,
    },
    /// BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr, or any error we detect: send it and close.
    Error(Notification),
    /// OpenCollisionDump: this connection lost collision detection.
    CollisionLost,
    /// RFC 4724 §4.2: the peer, with graceful restart negotiated on this
    /// Established session, opened a new connection and sent a valid OPEN on
    /// it: it restarted. Close this connection without a NOTIFICATION (the
    /// old peer process is gone) and end the session as a TCP failure does;
    /// no connect-retry: the new connection continues the session.
    PeerRestarted,
    NotificationReceived,
    KeepaliveReceived,
    UpdateReceived,
    RouteRefreshReceived,
    /// An OPEN or other message not valid in the current state.
    UnexpectedMessage,
    /// AutomaticStop (RFC 4271 Event 8): close with this NOTIFICATION and
    /// restart after the connect-retry time. Max-prefix teardown (from the RIB)
    /// and an operator's reset (Cease/Administrative Reset).
    Teardown(Notification),
}

/// FSM outputs, carried out in order by the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Initiate the outgoing TCP connection.
    Connect,
    StartConnectRetryTimer,
    StopConnectRetryTimer,
    SendOpen,
    SendKeepalive,
    SendNotification(Notification),
    CloseConnection,
    /// (Re)arm the hold timer with this many seconds (0 = disarm).
    ArmHoldTimer(u16),
    /// Restart the hold timer with the negotiated hold time (a message arrived).
    RestartHoldTimer,
    /// (Re)arm the keepalive timer with this many seconds (0 = disarm).
    ArmKeepaliveTimer(u16),
    /// The session became Established: tell the RIB.
    SessionUp,
    /// The session left Established (or failed before it): release routes.
    SessionDown,
    ProcessUpdate,
    ProcessRouteRefresh,
}

/// The negotiated hold time: the smaller of both (RFC 4271 §4.2), and the keepalive interval.
pub fn negotiate_hold(ours: u16, theirs: u16) -> (u16, u16) {
    let hold = ours.min(theirs);
    (hold, hold / 3)
}

fn notification(code: u8, subcode: u8) -> Notification {
    Notification {
        code,
        subcode,
        data: Vec::new(),
    }
}

/// Close with a NOTIFICATION and go Idle, releasing everything.
fn fail(n: Notification) -> (State, Vec<Action>) {
    (
        State::Idle,
        vec![
            Action::SendNotification(n),
            Action::CloseConnection,
            Action::ArmHoldTimer(0),
            Action::ArmKeepaliveTimer(0),
            Action::SessionDown,
            Action::StartConnectRetryTimer,
        ],
    )
}

/// Close without a NOTIFICATION (TCP failed or the peer sent one) and go Idle.
fn drop_conn() -> (State, Vec<Action>) {
    (
        State::Idle,
        vec![
            Action::CloseConnection,
            Action::ArmHoldTimer(0),
            Action::ArmKeepaliveTimer(0),
            Action::SessionDown,
            Action::StartConnectRetryTimer,
        ],
    )
}

/// One FSM transition.
pub fn step(state: State, cfg: &FsmConfig, ev: &Event) -> (State, Vec<Action>) {
    use Action as A;
    use State as S;
    match (state, ev) {
        // Stop in any state: Cease, close, Idle.
        (S::Idle, Event::Stop { .. }) => (S::Idle, vec![A::StopConnectRetryTimer]),
        (S::Connect | S::Active, Event::Stop { .. }) => (
            S::Idle,
            vec![A::StopConnectRetryTimer, A::CloseConnection, A::SessionDown],
        ),
        (_, Event::Stop { subcode }) => {
            let (_, mut acts) = fail(notification(code::CEASE, *subcode));
            acts.retain(|a| *a != A::StartConnectRetryTimer);
            (S::Idle, acts)
        }

        // The connect-retry timer runs between attempts, not during one: a
        // connection attempt ends by itself (TcpConnected or TcpConnectionFails,
        // the session bounds it with a connect timeout), as BIRD's does.
        (S::Idle, Event::Start) => {
            if cfg.passive {
                (S::Active, vec![A::StartConnectRetryTimer])
            } else {
                (S::Connect, vec![A::Connect])
            }
        }
        // After a failure the retry timer restarts the session (automatic start with damping).
        (S::Idle, Event::ConnectRetryTimerExpires) => step(S::Idle, cfg, &Event::Start),
        (S::Idle, _) => (S::Idle, vec![]),

        (S::Connect | S::Active, Event::Start) => (state, vec![]),
        (S::Connect | S::Active, Event::ConnectRetryTimerExpires) => {
            if cfg.passive {
                (S::Active, vec![A::StartConnectRetryTimer])
            } else {
                (S::Connect, vec![A::CloseConnection, A::Connect])
            }
        }
        (S::Connect | S::Active, Event::TcpConnected) => (
            S::OpenSent,
            vec![
                A::StopConnectRetryTimer,
                A::SendOpen,
                A::ArmHoldTimer(OPEN_HOLD_TIME),
            ],
        ),
        (S::Connect, Event::TcpConnectionFails) => (
            S::Active,
            vec![A::CloseConnection, A::StartConnectRetryTimer],
        ),
        (S::Active, Event::TcpConnectionFails) => (
            S::Active,
            vec![A::CloseConnection, A::StartConnectRetryTimer],
        ),
        (S::Connect | S::Active, _) => drop_conn(),

        (S::OpenSent, Event::OpenReceived { peer_hold_time }) => {
            let (hold, keepalive) = negotiate_hold(cfg.hold_time, *peer_hold_time);
            (
                S::OpenConfirm,
                vec![
                    A::SendKeepalive,
                    A::ArmHoldTimer(hold),
                    A::ArmKeepaliveTimer(keepalive),
                ],
            )
        }
        (S::OpenSent, Event::TcpConnectionFails) => {
            // RFC 4271 §8.2.2: back to Active, keep listening.
            (
                S::Active,
                vec![
                    A::CloseConnection,
                    A::ArmHoldTimer(0),
                    A::StartConnectRetryTimer,
                ],
            )
        }
        (S::OpenSent | S::OpenConfirm | S::Established, Event::HoldTimerExpires) => {
            fail(notification(code::HOLD_TIMER, NO_SUBCODE))
        }
        (S::OpenSent | S::OpenConfirm | S::Established, Event::CollisionLost) => {
            fail(notification(code::CEASE, cease::COLLISION))
        }
        (S::OpenSent | S::OpenConfirm | S::Established, Event::Error(n) | Event::Teardown(n)) => {
            fail(n.clone())
        }
        (
            S::OpenSent | S::OpenConfirm | S::Established,
            Event::NotificationReceived | Event::TcpConnectionFails,
        ) => drop_conn(),
        (S::Established, Event::PeerRestarted) => (
            S::Idle,
            vec![
                A::CloseConnection,
                A::ArmHoldTimer(0),
                A::ArmKeepaliveTimer(0),
                A::SessionDown,
            ],
        ),
        (S::OpenConfirm | S::Established, Event::KeepaliveTimerExpires) => {
            (state, vec![A::SendKeepalive])
        }
        (S::OpenConfirm, Event::KeepaliveReceived) => {
            (S::Established, vec![A::RestartHoldTimer, A::SessionUp])
        }
        (S::Established, Event::KeepaliveReceived) => (S::Established, vec![A::RestartHoldTimer]),
        (S::Established, Event::UpdateReceived) => {
            (S::Established, vec![A::RestartHoldTimer, A::ProcessUpdate])
        }
        (S::Established, Event::RouteRefreshReceived) => (
            S::Established,
            vec![A::RestartHoldTimer, A::ProcessRouteRefresh],
        ),
        (S::OpenSent | S::OpenConfirm | S::Established, Event::Start) => (state, vec![]),
        (S::OpenSent | S::OpenConfirm | S::Established, Event::ConnectRetryTimerExpires) => {
            (state, vec![])
        }
        // Anything else (an OPEN in OpenConfirm/Established, an UPDATE before
        // Established, ...) is a Finite State Machine Error (RFC 6608 subcodes).
        (S::OpenSent, _) => fail(notification(code::FSM, fsm_err::IN_OPENSENT)),
        (S::OpenConfirm, _) => fail(notification(code::FSM, fsm_err::IN_OPENCONFIRM)),
        (S::Established, _) => fail(notification(code::FSM, fsm_err::IN_ESTABLISHED)),
    }
}

/// RFC 4271 §6.8: which connection survives a collision. Returns `true` when the
/// connection initiated by the local system is kept: our BGP Identifier is higher.
pub fn collision_winner(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> bool {
    u32::from(local_id) > u32::from(remote_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: FsmConfig = FsmConfig {
        passive: false,
        hold_time: 90,
    };
    const PASSIVE: FsmConfig = FsmConfig {
        passive: true,
        hold_time: 90,
    };

    fn drive(cfg: &FsmConfig, events: &[Event]) -> (State, Vec<Vec<Action>>) {
        let mut s = State::Idle;
        let mut all = Vec::new();
        for e in events {
            let (n, a) = step(s, cfg, e);
            s = n;
            all.push(a);
        }
        (s, all)
    }

    /// [`drive`]: Start, TcpConnected, an OPEN with hold time `hold`, then `more`.
    fn open_then(cfg: &FsmConfig, hold: u16, more: &[Event]) -> (State, Vec<Vec<Action>>) {
        let mut events = vec![
            Event::Start,
            Event::TcpConnected,
            Event::OpenReceived {
                peer_hold_time: hold,
            },
        ];
        events.extend_from_slice(more);
        drive(cfg, &events)
    }

    #[test]
    fn active_open_reaches_established() {
        let (s, acts) = open_then(&ACTIVE, 30, &[Event::KeepaliveReceived]);
        assert_eq!(s, State::Established);
        assert!(acts[0].contains(&Action::Connect));
        assert!(acts[1].contains(&Action::SendOpen));
        // §4.2: the smaller hold time wins, keepalive a third of it.
        assert!(acts[2].contains(&Action::ArmHoldTimer(30)));
        assert!(acts[2].contains(&Action::ArmKeepaliveTimer(10)));
        assert!(acts[3].contains(&Action::SessionUp));
    }

    #[test]
    fn passive_open_never_connects() {
        let (s, acts) = drive(&PASSIVE, &[Event::Start, Event::ConnectRetryTimerExpires]);
        assert_eq!(s, State::Active);
        assert!(acts.iter().flatten().all(|a| *a != Action::Connect));
        let (s, _) = step(s, &PASSIVE, &Event::TcpConnected);
        assert_eq!(s, State::OpenSent);
    }

    #[test]
    fn connect_retry_reconnects() {
        let (s, acts) = drive(
            &ACTIVE,
            &[
                Event::Start,
                Event::TcpConnectionFails,
                Event::ConnectRetryTimerExpires,
            ],
        );
        assert_eq!(s, State::Connect);
        assert!(acts[2].contains(&Action::Connect));
    }

    #[test]
    fn hold_timer_expiry_sends_4_0() {
        let (s, acts) = open_then(
            &ACTIVE,
            3,
            &[Event::KeepaliveReceived, Event::HoldTimerExpires],
        );
        assert_eq!(s, State::Idle);
        assert!(acts[4].contains(&Action::SendNotification(notification(code::HOLD_TIMER, 0))));
        assert!(acts[4].contains(&Action::SessionDown));
    }

    #[test]
    fn hold_time_zero_disables_timers() {
        let cfg = FsmConfig {
            passive: false,
            hold_time: 0,
        };
        let (_, acts) = open_then(&cfg, 90, &[]);
        assert!(acts[2].contains(&Action::ArmHoldTimer(0)));
        assert!(acts[2].contains(&Action::ArmKeepaliveTimer(0)));
    }

    #[test]
    fn stop_sends_cease_with_subcode() {
        let (s, acts) = open_then(
            &ACTIVE,
            90,
            &[
                Event::KeepaliveReceived,
                Event::Stop {
                    subcode: crate::wire::cease::ADMIN_RESET,
                },
            ],
        );
        assert_eq!(s, State::Idle);
        assert!(acts[4].contains(&Action::SendNotification(notification(
            code::CEASE,
            crate::wire::cease::ADMIN_RESET
        ))));
        // A manual stop does not restart by itself.
        assert!(!acts[4].contains(&Action::StartConnectRetryTimer));
    }

    #[test]
    fn update_before_established_is_fsm_error() {
        // RFC 6608: FSM error subcode 1 in OpenSent, 2 in OpenConfirm.
        let (_, acts) = drive(
            &ACTIVE,
            &[Event::Start, Event::TcpConnected, Event::UpdateReceived],
        );
        assert!(acts[2].contains(&Action::SendNotification(notification(code::FSM, 1))));
        let (_, acts) = open_then(&ACTIVE, 90, &[Event::UpdateReceived]);
        assert!(acts[3].contains(&Action::SendNotification(notification(code::FSM, 2))));
    }

    #[test]
    fn notification_received_closes_without_sending() {
        let (s, acts) = open_then(
            &ACTIVE,
            90,
            &[Event::KeepaliveReceived, Event::NotificationReceived],
        );
        assert_eq!(s, State::Idle);
        assert!(!acts[4]
            .iter()
            .any(|a| matches!(a, Action::SendNotification(_))));
        assert!(acts[4].contains(&Action::SessionDown));
    }

    #[test]
    fn collision_keeps_higher_identifier_side() {
        // RFC 4271 §6.8: the connection initiated by the speaker with the higher BGP Identifier survives.
        assert!(collision_winner(
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap()
        ));
        assert!(!collision_winner(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap()
        ));
        // Compared as unsigned integers, not strings.
        assert!(collision_winner(
            "192.0.2.1".parse().unwrap(),
            "10.255.255.255".parse().unwrap()
        ));
        let (s, acts) = open_then(&ACTIVE, 90, &[Event::CollisionLost]);
        assert_eq!(s, State::Idle);
        assert!(acts[3].contains(&Action::SendNotification(notification(
            code::CEASE,
            crate::wire::cease::COLLISION
        ))));
    }

    #[test]
    fn peer_restarted_ends_established_without_notification() {
        // RFC 4724 §4.2: the old session ends as a TCP failure does; the new
        // connection continues the session, so no connect-retry.
        let (s, acts) = open_then(
            &ACTIVE,
            90,
            &[Event::KeepaliveReceived, Event::PeerRestarted],
        );
        assert_eq!(s, State::Idle);
        assert!(acts[4].contains(&Action::CloseConnection));
        assert!(acts[4].contains(&Action::SessionDown));
        assert!(!acts[4].iter().any(|a| matches!(
            a,
            Action::SendNotification(_) | Action::StartConnectRetryTimer
        )));
    }
}
