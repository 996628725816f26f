//! The peer task's accepted connections and the peer's OPEN: connection
//! collisions (RFC 4271 §6.8) and a graceful-restart peer that comes back
//! before we noticed it went (RFC 4724 §4.2).
//!
//! Part of [`Peer`] (its `on_incoming` and `on_open`); state changes still go
//! through `Peer::fsm_event` only. Talks to `handshake` (checks, collision
//! detection, negotiation) and `socket` (refusing, TTL, starting a link).
//!
//! An accepted connection while a session is Established:
//! - graceful restart was not negotiated on that session: refused at once with
//!   Cease/Connection Collision Resolution (§6.8: the Established one is kept);
//! - it was: the connection gets a machine of its own and the Established
//!   session goes on. When the peer's OPEN arrives on it and passes the
//!   checks, the peer has restarted (a crash, `kill -9`, faster than our hold
//!   timer noticed): the Established session gets `Event::PeerRestarted`, which
//!   closes its connection without a NOTIFICATION and tells the RIB to keep
//!   the peer's routes stale (as after a TCP failure: swept at the new
//!   session's End-of-RIB or when the restart time runs out), and the new
//!   connection continues the session.

use tracing::{info, warn};

use super::{cease_with, Input, Machine, Peer};
use crate::fsm::{Event, FsmConfig, State};
use crate::session::handshake::{self, Rival};
use crate::session::socket::{self, Link};
use crate::session::SessionError;
use crate::wire::{self, cease};

impl Peer {
    /// An accepted connection from the peer's address.
    pub(super) async fn on_incoming(&mut self, stream: tokio::net::TcpStream) {
        let established = self.machines.iter().find(|m| m.state == State::Established);
        if established.is_some_and(|m| !graceful(m)) {
            // §6.8: a connection collision with an Established session closes the new one.
            let n = cease_with(cease::COLLISION, Vec::new());
            self.ctx.with_status(|s| s.count_notification_sent(&n));
            socket::refuse(stream, n);
            return;
        }
        if let Err(e) = socket::apply_ttl(self.ctx.pc(), self.ctx.ebgp(), &stream) {
            warn!(error = %e, "socket options on accepted connection");
            return;
        }
        let _ = stream.set_nodelay(true);
        // A peer reconnecting while we wait to retry: start now (automatic start).
        if self.machines[0].state == State::Idle {
            self.fsm_event(self.machines[0].id, Event::Start, Input::None)
                .await;
        }
        // The session takes it if it is only waiting; otherwise a machine of its own.
        let link = |id| Link::start(id, stream, false, self.events_tx.clone());
        if self.machines[0].live() {
            let id = self.next_id;
            self.next_id += 1;
            let passive = FsmConfig {
                passive: true,
                ..self.machines[0].fsm_cfg
            };
            let mut m = Machine::new(id, passive);
            m.link = Some(link(id));
            self.machines.push(m);
            self.fsm_event(id, Event::Start, Input::None).await;
            self.fsm_event(id, Event::TcpConnected, Input::None).await;
        } else {
            let id = self.machines[0].id;
            self.machines[0].link = Some(link(id));
            self.fsm_event(id, Event::TcpConnected, Input::None).await;
        }
    }

    /// The peer's OPEN in OpenSent: check it, end an Established graceful
    /// restart session it replaces, resolve collisions, negotiate.
    pub(super) async fn on_open(&mut self, i: usize, body: &[u8]) {
        let ctx = self.ctx.clone();
        let id = self.machines[i].id;
        let open = match wire::decode_open(body)
            .and_then(|o| handshake::check_open(&ctx.cfg, ctx.pc(), &o).map(|_| o))
        {
            Ok(open) => open,
            Err(e) => {
                let n = e.notification();
                self.machines[i].err = Some(e.into());
                return self.fsm_event(id, Event::Error(n), Input::None).await;
            }
        };
        self.end_restarted(id).await;
        let Some(i) = self.index(id) else { return };
        let outgoing = self.machines[i].link.as_ref().is_some_and(|l| l.outgoing);
        let rivals: Vec<Rival> = self
            .machines
            .iter()
            .filter(|m| m.id != id)
            .filter_map(|m| {
                m.link.as_ref().map(|l| Rival {
                    id: m.id,
                    outgoing: l.outgoing,
                    state: m.state,
                })
            })
            .collect();
        let c = handshake::collision(ctx.cfg.router_id, open.router_id, outgoing, &rivals);
        for loser in c.losers {
            if let Some(k) = self.index(loser) {
                self.machines[k].err = Some(SessionError::CollisionLost);
            }
            self.fsm_event(loser, Event::CollisionLost, Input::None)
                .await;
        }
        let Some(i) = self.index(id) else { return };
        if c.lose_self {
            info!(
                outgoing,
                "connection collision: closed this connection, keeping the other"
            );
            self.machines[i].err = Some(SessionError::CollisionLost);
            return self.fsm_event(id, Event::CollisionLost, Input::None).await;
        }
        let neg = handshake::negotiate(
            ctx.pc(),
            &handshake::our_open(&ctx.cfg, ctx.pc(), self.restarting),
            &open,
        );
        let m = &mut self.machines[i];
        if let Some(link) = &m.link {
            link.set_max_len(neg.max_len());
        }
        let peer_hold_time = open.hold_time;
        m.open = Some((open, neg));
        self.fsm_event(id, Event::OpenReceived { peer_hold_time }, Input::None)
            .await;
    }

    /// A valid OPEN on connection `id` while another machine is Established
    /// with graceful restart: the peer restarted (RFC 4724 §4.2). End that
    /// session as if its TCP connection had failed (routes kept stale).
    async fn end_restarted(&mut self, id: u64) {
        let old = self
            .machines
            .iter()
            .find(|m| m.id != id && m.state == State::Established && graceful(m))
            .map(|m| m.id);
        let Some(old) = old else { return };
        info!("graceful restart: the peer opened a new connection; ending the old session, its routes kept stale");
        if let Some(k) = self.index(old) {
            self.machines[k].err = Some(SessionError::PeerRestarted);
        }
        self.fsm_event(old, Event::PeerRestarted, Input::None).await;
    }
}

/// The machine's session negotiated graceful restart (both sides sent the capability).
fn graceful(m: &Machine) -> bool {
    m.open.as_ref().is_some_and(|(_, neg)| neg.graceful_restart)
}
