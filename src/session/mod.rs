//! Session engine: one task per configured peer owns its TCP connections and
//! timers, feeds every event to the pure RFC 4271 state machine
//! ([`crate::fsm::step`]) and carries out the actions it returns; UPDATEs are
//! validated and decoded with `wire` and handed to the RIB task over a bounded
//! channel.
//!
//! Layout:
//! - this file: the peers table shared with the admin socket and POP state
//!   ([`Peers`], [`PeerStatus`], [`PeerCtl`]), the session error type, and
//!   [`start`], which spawns the listeners and one task per peer;
//! - `task`: the peer task: its FSM instances (one per TCP connection while a
//!   collision is being resolved), timers, and the one place a session's state
//!   changes (`Peer::fsm_event`); `task::accept`: accepted connections and the
//!   peer's OPEN (collisions, and a graceful-restart peer reconnecting while
//!   its old session is still Established);
//! - `socket`: listener, outgoing connect, TTL/GTSM/TCP-MD5, and the reader and
//!   writer tasks of a connection;
//! - `handshake`: our OPEN, checking the peer's, negotiation, and collision
//!   detection (RFC 4271 §6.8);
//! - `graceful`: graceful restart decisions (RFC 4724, RFC 8538): our
//!   capability, keeping a peer's routes stale, Hard Reset, the restart marker;
//! - `established`: what an Established session does: tell the RIB it is up or
//!   down, hand it UPDATEs and ROUTE-REFRESHes, send its exports;
//! - `originate`: the anycast prefixes we originate (`crate::announce`'s
//!   adverts, read from a watch channel) sent on an Established session;
//! - `counters`: the per-peer counters of [`PeerStatus`] (messages by type
//!   and direction, NOTIFICATIONs by code and subcode, RFC 7606 actions).
//!
//! Where [`PeerStatus`] is counted: messages received, per batch read
//! (`task`, before the batch is processed), with the RFC 7606 actions
//! (`established::on_update`, published once per batch); messages sent
//! where they are queued on the link (`task`, `established`, `originate`,
//! `task::accept`); NOTIFICATIONs by code as they are sent or read; `flaps`
//! at `SessionDown`; `last_change_unix` where the shown state changes
//! (`Peer::tidy`); `eor_sent` when our End-of-RIB is queued.
//!
//! Talks to: `rib` (RibMsg out, SessionCmd in), `admin` (PeerStatus, PeerCtl),
//! `pops` (the per-peer Established flags), `announce` (the adverts).

mod counters;
mod established;
pub mod graceful;
mod handshake;
mod originate;
mod socket;
mod task;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{info, info_span, Instrument};

use crate::announce::Adverts;
use crate::config::Config;
use crate::fsm::State;
use crate::pops::SessionFlags;
use crate::rib::RibMsg;
use crate::sockopt;
use crate::types::{Afi, PeerId, PerFamily};
use crate::wire::{self, Notification, WireError};

pub use counters::{
    Direction, MessageCounts, NotificationCount, Rfc7606Counts, NOTIFICATION_KINDS,
};

/// Errors of the session layer (for logs and `last_error`).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection closed by peer")]
    Eof,
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error("sent NOTIFICATION {}: {msg}", wire::notification_name(*.code, *.subcode))]
    Sent {
        code: u8,
        subcode: u8,
        /// The NOTIFICATION's data field (e.g. the bad length for 1/2).
        data: Vec<u8>,
        msg: String,
    },
    #[error("received NOTIFICATION {}", wire::notification_name(.0.code, .0.subcode))]
    Received(Notification),
    #[error("socket option: {0}")]
    Sockopt(#[from] sockopt::SockoptError),
    #[error("connection collision: the other connection was kept")]
    CollisionLost,
    /// A graceful-restart peer opened a new connection while this session
    /// was Established (RFC 4724 §4.2): it restarted.
    #[error("the peer restarted: a new connection replaced this session")]
    PeerRestarted,
    #[error("stopped")]
    Stopped,
}

impl From<WireError> for SessionError {
    fn from(e: WireError) -> Self {
        SessionError::Sent {
            code: e.code,
            subcode: e.subcode,
            data: e.data,
            msg: e.msg,
        }
    }
}

/// What the admin socket shows for a peer (written by its task on events only).
/// The admin `peers` reply carries it as it is (flattened), so it also
/// deserializes, with missing fields defaulted, for `sparrowctl`. Counters
/// (`*_count`, `flaps`, `messages_*`, `updates_*`, `notifications*`,
/// `rfc7606`) only grow, across sessions, for the life of the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerStatus {
    pub state: State,
    #[serde(skip)]
    pub since: Instant,
    /// Unix time (seconds) `state` last changed (at start: when the peer
    /// task was made; 0: unknown).
    pub last_change_unix: u64,
    #[serde(skip)]
    pub established_at: Option<Instant>,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
    pub remote_router_id: Option<Ipv4Addr>,
    pub local_address: Option<SocketAddr>,
    pub remote_address: Option<SocketAddr>,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    pub as4: bool,
    pub families: Vec<Afi>,
    pub route_refresh: bool,
    pub extended_message: bool,
    pub graceful_restart: bool,
    /// Both sides set RFC 8538's N bit (graceful NOTIFICATION).
    pub graceful_notification: bool,
    /// Sessions that reached Established.
    pub established_count: u64,
    /// Established sessions that ended (transitions out of Established).
    pub flaps: u64,
    /// Messages read from the peer, by type (every state).
    pub messages_received: MessageCounts,
    /// Messages queued to the peer, by type.
    pub messages_sent: MessageCounts,
    /// `messages_received.update` (kept for older clients).
    pub updates_received: u64,
    /// `messages_sent.update` (kept for older clients).
    pub updates_sent: u64,
    /// `messages_sent.notification` (kept for older clients; both count the
    /// Cease sent on a connection refused while a session is Established).
    pub notifications_sent: u64,
    /// `messages_received.notification` (kept for older clients).
    pub notifications_received: u64,
    /// NOTIFICATIONs by direction, code and subcode, sorted; at most
    /// [`NOTIFICATION_KINDS`] entries.
    pub notifications: Vec<NotificationCount>,
    /// NOTIFICATIONs of kinds beyond the first [`NOTIFICATION_KINDS`].
    pub notifications_unlisted: u64,
    /// RFC 7606 actions on the peer's UPDATEs.
    pub rfc7606: Rfc7606Counts,
    /// Our End-of-RIB was queued for the family on the current session.
    pub eor_sent: PerFamily<bool>,
    /// Our anycast prefixes (`announce`) this session has announced.
    pub originated: Vec<crate::types::Prefix>,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: State::Idle,
            since: Instant::now(),
            last_change_unix: 0,
            established_at: None,
            last_error: None,
            last_error_at: None,
            remote_router_id: None,
            local_address: None,
            remote_address: None,
            hold_time: None,
            keepalive: None,
            as4: false,
            families: Vec::new(),
            route_refresh: false,
            extended_message: false,
            graceful_restart: false,
            graceful_notification: false,
            established_count: 0,
            flaps: 0,
            messages_received: MessageCounts::default(),
            messages_sent: MessageCounts::default(),
            updates_received: 0,
            updates_sent: 0,
            notifications_sent: 0,
            notifications_received: 0,
            notifications: Vec::new(),
            notifications_unlisted: 0,
            rfc7606: Rfc7606Counts::default(),
            eor_sent: PerFamily::default(),
            originated: Vec::new(),
        }
    }
}

impl PeerStatus {
    /// Count `n` messages of type `ty` queued to the peer.
    pub fn count_sent(&mut self, ty: u8, n: u64) {
        self.messages_sent.add(ty, n);
        match ty {
            wire::msg::UPDATE => self.updates_sent += n,
            wire::msg::NOTIFICATION => self.notifications_sent += n,
            _ => {}
        }
    }

    /// Count a batch of messages read from the peer.
    pub fn count_received(&mut self, m: &MessageCounts) {
        self.messages_received.merge(m);
        self.updates_received += m.update;
        self.notifications_received += m.notification;
    }

    /// Count a NOTIFICATION sent: as a message and by its code and subcode.
    pub fn count_notification_sent(&mut self, n: &Notification) {
        self.count_sent(wire::msg::NOTIFICATION, 1);
        self.count_notification(Direction::Sent, n);
    }

    /// Count a NOTIFICATION by direction, code and subcode (a received one is
    /// counted as a message with its batch, [`PeerStatus::count_received`]).
    pub fn count_notification(&mut self, direction: Direction, n: &Notification) {
        counters::count_notification(
            &mut self.notifications,
            &mut self.notifications_unlisted,
            direction,
            n.code,
            n.subcode,
        );
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Commands to a peer task from the listener and the admin socket.
#[derive(Debug)]
pub enum PeerCtl {
    /// An accepted connection from this peer's address.
    Incoming(TcpStream),
    /// Admin reset: Cease/Administrative Reset (as a Hard Reset when RFC
    /// 8538 was negotiated, so the peer flushes our routes), then reconnect.
    Reset,
    /// Daemon shutdown: Cease/Administrative Shutdown, then end the task.
    Shutdown,
}

/// Status and control handles of every peer, shared with the admin socket.
pub struct Peers {
    pub status: Vec<Mutex<PeerStatus>>,
    pub ctl: Vec<mpsc::UnboundedSender<PeerCtl>>,
    /// Per peer: session Established, readable without the status lock (the
    /// DNS answer path asks it per query through `crate::pops::PopState`).
    pub established: Arc<SessionFlags>,
    /// The anycast adverts (`crate::announce`), which every session sends.
    pub adverts: watch::Receiver<Adverts>,
}

impl Peers {
    /// A table for `n` peers, with the receiving ends of their control channels.
    fn new(
        n: usize,
        adverts: watch::Receiver<Adverts>,
    ) -> (Peers, Vec<mpsc::UnboundedReceiver<PeerCtl>>) {
        let (ctl, rx) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        let peers = Peers {
            status: (0..n)
                .map(|_| {
                    Mutex::new(PeerStatus {
                        last_change_unix: unix_now(),
                        ..PeerStatus::default()
                    })
                })
                .collect(),
            ctl,
            established: Arc::new(SessionFlags::new(n)),
            adverts,
        };
        (peers, rx)
    }

    pub fn snapshot(&self, id: usize) -> PeerStatus {
        self.status[id].lock().expect("status lock").clone()
    }
}

/// Start the listeners and one task per peer. Returns the shared peer table.
/// `restarting`: this process follows a planned shutdown (the restart marker,
/// see `graceful`): OPENs carry the Restart State bit until each peer's first
/// session is Established. `adverts`: what we originate (`crate::announce`).
pub async fn start(
    cfg: Arc<Config>,
    rib: mpsc::Sender<RibMsg>,
    tasks: &mut JoinSet<()>,
    restarting: bool,
    adverts: watch::Receiver<Adverts>,
) -> io::Result<Arc<Peers>> {
    let (peers, ctl_rx) = Peers::new(cfg.peers.len(), adverts);
    let peers = Arc::new(peers);
    if cfg.listen.enabled {
        for addr in &cfg.listen.addresses {
            let listener = socket::bind_listener(&cfg, SocketAddr::new(*addr, cfg.listen.port))?;
            info!(address = %addr, port = cfg.listen.port, "BGP listener");
            tasks.spawn(socket::listen_task(listener, cfg.clone(), peers.clone()));
        }
    }
    for (i, rx) in ctl_rx.into_iter().enumerate() {
        let span = info_span!("peer", name = %cfg.peers[i].name, addr = %cfg.peers[i].address);
        let mut peer = task::Peer::new(i as PeerId, cfg.clone(), rib.clone(), peers.clone());
        peer.set_restarting(restarting);
        tasks.spawn(peer.run(rx).instrument(span));
    }
    Ok(peers)
}
