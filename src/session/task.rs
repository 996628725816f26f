//! The peer task: one per configured peer, for the daemon's lifetime.
//!
//! A peer has one RFC 4271 FSM instance (a [`Machine`]) per TCP connection
//! while a connection collision is being resolved (§6.8), and one otherwise;
//! `machines[0]` is the session the admin socket shows (the one furthest
//! along). [`Peer::fsm_event`] is the only place a machine's state changes: it
//! calls [`fsm::step`] and carries out the returned actions in order (connect,
//! connect-retry timer with backoff, OPEN, KEEPALIVE, NOTIFICATION, hold and
//! keepalive timers, close, session up/down, process UPDATE or ROUTE-REFRESH).
//! Everything else here turns inputs into FSM events:
//!
//! ```text
//!  listener ──PeerCtl::Incoming──┐      admin ──PeerCtl::Reset/Shutdown──┐
//!                                ▼                                      ▼
//!  reader tasks ──ConnEvent──▶ Peer::run ──▶ fsm_event ──▶ fsm::step ──▶ actions
//!  connect task ──ConnEvent──▶    ▲  │                                   │
//!  timers (retry/hold/keepalive) ─┘  └── RIB: SessionCmd in, RibMsg out ◀┘
//!                                        writer tasks ◀── Link::send ◀───┘
//! ```
//!
//! Accepted connections and the peer's OPEN (collision detection, and a
//! graceful-restart peer that reconnects while its old session is still
//! Established) are in `accept`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{debug, info, warn};

use super::established::{self, Up};
use super::graceful;
use super::handshake::{self, Negotiated};
use super::originate::Originated;
use super::socket::{self, ConnEvent, Link};
use super::{Direction, MessageCounts, PeerCtl, PeerStatus, Peers, SessionError};
use crate::announce::Adverts;
use crate::config::{Config, PeerConfig};
use crate::fsm::{self, Action, Event, FsmConfig, State};
use crate::rib::{RibMsg, SessionCmd};
use crate::types::PeerId;
use crate::wire::{self, cease, code, Notification, Open};

mod accept;

/// Longest connect-retry interval after repeated failures.
const MAX_CONNECT_RETRY: Duration = Duration::from_secs(120);
/// Batches of messages in flight from a connection's reader to the peer task.
const EVENT_QUEUE: usize = 16;
/// How long a closing session's last NOTIFICATION may take to flush at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the peer task's helpers need: the peer, the config, the RIB, the table.
pub(super) struct PeerCtx {
    pub id: PeerId,
    pub cfg: Arc<Config>,
    pub rib: mpsc::Sender<RibMsg>,
    pub peers: Arc<Peers>,
}

impl PeerCtx {
    pub fn pc(&self) -> &PeerConfig {
        &self.cfg.peers[self.id as usize]
    }

    pub fn with_status(&self, f: impl FnOnce(&mut PeerStatus)) {
        f(&mut self.peers.status[self.id as usize].lock().expect("status"));
    }

    fn record_error(&self, e: &SessionError) {
        let now = super::unix_now();
        self.with_status(|s| {
            s.last_error = Some(e.to_string());
            s.last_error_at = Some(now);
        });
    }

    fn ebgp(&self) -> bool {
        self.pc().is_ebgp(self.cfg.local_asn)
    }
}

/// One FSM instance: a state, the connection it runs on, and its timers.
struct Machine {
    id: u64,
    state: State,
    fsm_cfg: FsmConfig,
    link: Option<Link>,
    /// The outgoing connection attempt (state Connect).
    connecting: Option<JoinHandle<()>>,
    retry_at: Option<TokioInstant>,
    hold_at: Option<TokioInstant>,
    keepalive_at: Option<TokioInstant>,
    keepalive_every: u16,
    /// The peer's OPEN and what it negotiated (OpenConfirm on).
    open: Option<(Open, Negotiated)>,
    /// Established: told the RIB, and what decoding and exporting need.
    up: Option<Up>,
    /// Reached Established (for the log line when it ends).
    was_up: bool,
    /// Why this connection is ending, for `last_error` and the logs.
    err: Option<SessionError>,
    /// What the next NOTIFICATION we send is about, if it is ours to explain.
    why: Option<String>,
}

impl Machine {
    fn new(id: u64, fsm_cfg: FsmConfig) -> Machine {
        Machine {
            id,
            state: State::Idle,
            fsm_cfg,
            link: None,
            connecting: None,
            retry_at: None,
            hold_at: None,
            keepalive_at: None,
            keepalive_every: 0,
            open: None,
            up: None,
            was_up: false,
            err: None,
            why: None,
        }
    }

    /// Has a connection, or is making one.
    fn live(&self) -> bool {
        self.link.is_some() || self.connecting.is_some()
    }
}

/// How far along a state is, to pick the machine the admin socket shows.
fn progress(s: State) -> u8 {
    match s {
        State::Idle => 0,
        State::Active => 1,
        State::Connect => 2,
        State::OpenSent => 3,
        State::OpenConfirm => 4,
        State::Established => 5,
    }
}

/// What came with an event: the body of the message that caused it.
enum Input {
    None,
    Body(BytesMut),
}

/// One input of the peer task's loop.
enum Wake {
    Ctl(Option<PeerCtl>),
    Timer,
    Rib(u64, Option<SessionCmd>),
    Conn(ConnEvent),
    /// The anycast adverts changed.
    Adverts,
}

pub(super) struct Peer {
    ctx: Arc<PeerCtx>,
    machines: Vec<Machine>,
    next_id: u64,
    base_retry: Duration,
    retry: Duration,
    events_tx: mpsc::Sender<ConnEvent>,
    events_rx: mpsc::Receiver<ConnEvent>,
    /// The Established machine's command channel from the RIB.
    rib_ctl: Option<(u64, mpsc::UnboundedReceiver<SessionCmd>)>,
    /// Events waiting for `fsm_event`, in order.
    queue: VecDeque<(u64, Event, Input)>,
    /// Writers of closed connections, still flushing a NOTIFICATION.
    closing: Vec<JoinHandle<()>>,
    /// Changes of the UPDATEs read, not yet sent to the RIB.
    ingest: established::Ingest,
    /// The anycast adverts, and what the Established session has sent of them.
    adverts: watch::Receiver<Adverts>,
    originated: Originated,
    /// OPENs carry the Restart State bit (RFC 4724 §4.1) until the first
    /// session is Established (see `graceful`).
    restarting: bool,
    exit: bool,
}

impl Peer {
    pub fn new(id: PeerId, cfg: Arc<Config>, rib: mpsc::Sender<RibMsg>, peers: Arc<Peers>) -> Peer {
        let ctx = Arc::new(PeerCtx {
            id,
            cfg,
            rib,
            peers,
        });
        let base_retry = Duration::from_secs(ctx.pc().connect_retry.max(1) as u64);
        let fsm_cfg = FsmConfig {
            passive: ctx.pc().passive,
            hold_time: ctx.pc().hold_time,
        };
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let adverts = ctx.peers.adverts.clone();
        Peer {
            ctx,
            machines: vec![Machine::new(0, fsm_cfg)],
            next_id: 1,
            base_retry,
            retry: base_retry,
            events_tx,
            events_rx,
            rib_ctl: None,
            queue: VecDeque::new(),
            closing: Vec::new(),
            ingest: Default::default(),
            adverts,
            originated: Originated::default(),
            restarting: false,
            exit: false,
        }
    }

    pub fn set_restarting(&mut self, restarting: bool) {
        self.restarting = restarting;
    }

    /// Run the peer until the daemon shuts down (or the control channel closes).
    pub async fn run(mut self, mut ctl: mpsc::UnboundedReceiver<PeerCtl>) {
        self.fsm_event(0, Event::Start, Input::None).await;
        while !self.exit {
            let wake = self.next_deadline();
            let input = tokio::select! {
                biased;
                cmd = ctl.recv() => Wake::Ctl(cmd),
                _ = sleep_until(wake) => Wake::Timer,
                (id, cmd) = recv_rib(&mut self.rib_ctl) => Wake::Rib(id, cmd),
                Some(ev) = self.events_rx.recv() => Wake::Conn(ev),
                Ok(()) = self.adverts.changed(), if self.rib_ctl.is_some() => Wake::Adverts,
            };
            match input {
                Wake::Ctl(cmd) => self.on_ctl(cmd).await,
                Wake::Timer => self.on_timers().await,
                Wake::Rib(id, cmd) => self.on_rib_cmd(id, cmd).await,
                Wake::Conn(ev) => self.on_conn_event(ev).await,
                Wake::Adverts => self.sync_adverts(),
            }
        }
        for w in self.closing.drain(..) {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, w).await;
        }
    }

    /// Feed one event to machine `id`, then every event that carrying out its
    /// actions raises, in order. The only place a machine's state changes.
    async fn fsm_event(&mut self, id: u64, ev: Event, input: Input) {
        self.queue.push_back((id, ev, input));
        while let Some((id, ev, input)) = self.queue.pop_front() {
            let Some(i) = self.index(id) else { continue };
            let m = &mut self.machines[i];
            let (next, actions) = fsm::step(m.state, &m.fsm_cfg, &ev);
            debug!(from = ?m.state, to = ?next, event = ?ev, "FSM");
            m.state = next;
            let mut input = input;
            for action in actions {
                if !self.act(i, &ev, action, &mut input).await {
                    self.exit = true;
                    return;
                }
            }
            self.finish(i);
        }
        self.tidy();
    }

    /// Carry out one action of machine `i`. `false`: the RIB is gone, stop the task.
    async fn act(&mut self, i: usize, ev: &Event, action: Action, input: &mut Input) -> bool {
        let now = TokioInstant::now();
        let ctx = self.ctx.clone();
        let (retry, restarting) = (self.retry, self.restarting);
        let m = &mut self.machines[i];
        match action {
            Action::Connect => {
                let (id, events, ctx) = (m.id, self.events_tx.clone(), ctx.clone());
                m.connecting = Some(tokio::spawn(async move {
                    let result = socket::connect_out(ctx.pc(), ctx.ebgp()).await;
                    let _ = events.send(ConnEvent::Connected { id, result }).await;
                }));
            }
            Action::StartConnectRetryTimer => m.retry_at = Some(now + retry),
            Action::StopConnectRetryTimer => m.retry_at = None,
            Action::SendOpen => {
                if let Some(link) = &m.link {
                    let open = handshake::our_open(&ctx.cfg, ctx.pc(), restarting);
                    link.send(wire::encode_open(&open));
                    ctx.with_status(|s| s.count_sent(wire::msg::OPEN, 1));
                }
            }
            Action::SendKeepalive => {
                if let Some(link) = &m.link {
                    link.send(wire::encode_keepalive());
                    ctx.with_status(|s| s.count_sent(wire::msg::KEEPALIVE, 1));
                }
                if m.keepalive_every > 0 {
                    m.keepalive_at = Some(now + secs(m.keepalive_every));
                }
            }
            Action::SendNotification(n) => {
                if m.err.is_none() {
                    let msg = m.why.take().unwrap_or_else(|| describe(ev, m.state));
                    m.err = Some(SessionError::Sent {
                        code: n.code,
                        subcode: n.subcode,
                        data: n.data.clone(),
                        msg,
                    });
                }
                if let Some(link) = &m.link {
                    link.send(wire::encode_notification(&n));
                    ctx.with_status(|s| s.count_notification_sent(&n));
                }
            }
            Action::CloseConnection => {
                if let Some(c) = m.connecting.take() {
                    c.abort();
                }
                if let Some(link) = m.link.take() {
                    // Keep only writers still flushing: a flapping peer must not grow this.
                    self.closing.retain(|w| !w.is_finished());
                    self.closing.push(link.close());
                }
                m.hold_at = None;
                m.keepalive_at = None;
                m.open = None;
            }
            Action::ArmHoldTimer(s) => m.hold_at = (s > 0).then(|| now + secs(s)),
            Action::RestartHoldTimer => {
                if let Some((_, neg)) = &m.open {
                    m.hold_at = (neg.hold > 0).then(|| now + secs(neg.hold));
                }
            }
            Action::ArmKeepaliveTimer(s) => {
                m.keepalive_every = s;
                m.keepalive_at = (s > 0).then(|| now + secs(s.max(1)));
            }
            Action::SessionUp => return self.session_up(i).await,
            Action::SessionDown => {
                if let Some(up) = m.up.take() {
                    // The UPDATEs read before the session went down come first.
                    if established::flush_ingest(&ctx, &mut self.ingest)
                        .await
                        .is_err()
                    {
                        return false;
                    }
                    established::session_down(&ctx, &up, m.err.as_ref()).await;
                    self.rib_ctl = None;
                    self.originated.clear(&ctx);
                }
            }
            Action::ProcessUpdate => {
                let Input::Body(body) = std::mem::replace(input, Input::None) else {
                    return true;
                };
                let Some(up) = &m.up else { return true };
                match established::on_update(&ctx, up, &body, &mut self.ingest).await {
                    Err(established::RibGone) => return false,
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        let n = e.notification();
                        m.err = Some(e.into());
                        self.queue.push_front((m.id, Event::Error(n), Input::None));
                    }
                }
            }
            Action::ProcessRouteRefresh => {
                let Input::Body(body) = std::mem::replace(input, Input::None) else {
                    return true;
                };
                if established::flush_ingest(&ctx, &mut self.ingest)
                    .await
                    .is_err()
                {
                    return false;
                }
                if let Err(e) = established::on_route_refresh(&ctx, &body).await {
                    let n = e.notification();
                    m.err = Some(e.into());
                    self.queue.push_front((m.id, Event::Error(n), Input::None));
                }
            }
        }
        true
    }

    /// `SessionUp` on machine `i`: tell the RIB, reset the backoff, and close
    /// every other connection of the peer (§6.8: the Established one is kept).
    async fn session_up(&mut self, i: usize) -> bool {
        let m = &mut self.machines[i];
        let (Some(link), Some((open, neg))) = (&m.link, &m.open) else {
            return true;
        };
        match established::session_up(&self.ctx, link, open, neg).await {
            Err(established::RibGone) => return false,
            Ok((up, rib_ctl)) => {
                m.up = Some(up);
                m.was_up = true;
                self.rib_ctl = Some((m.id, rib_ctl));
            }
        }
        self.sync_adverts();
        self.retry = self.base_retry;
        self.restarting = false;
        let me = self.machines[i].id;
        for other in self.machines.iter_mut().filter(|o| o.id != me) {
            if other.link.is_some() {
                other.err = Some(SessionError::CollisionLost);
            }
            self.queue
                .push_back((other.id, Event::CollisionLost, Input::None));
        }
        true
    }

    /// After an event's actions: a machine left without a connection records
    /// and logs why it ended.
    fn finish(&mut self, i: usize) {
        let m = &mut self.machines[i];
        if m.link.is_some() {
            return;
        }
        m.why = None;
        let was_up = std::mem::take(&mut m.was_up);
        let Some(err) = m.err.take() else { return };
        if was_up {
            info!(error = %err, "session down");
        } else if !matches!(err, SessionError::CollisionLost) {
            info!(error = %err, "session setup failed");
        }
        self.ctx.record_error(&err);
    }

    /// Drop machines that have nothing left to do (but the first), show the
    /// one furthest along, and publish its state.
    fn tidy(&mut self) {
        let mut k = 1;
        while k < self.machines.len() {
            if self.machines[k].live() {
                k += 1;
            } else {
                self.machines.remove(k);
            }
        }
        if let Some(best) = (1..self.machines.len())
            .max_by_key(|&k| progress(self.machines[k].state))
            .filter(|&k| progress(self.machines[k].state) > progress(self.machines[0].state))
        {
            self.machines.swap(0, best);
            if !self.machines[best].live() {
                self.machines.remove(best);
            }
        }
        // A machine made for an accepted connection is passive; once it is the
        // session's only one and idle, it follows the peer's config again.
        if !self.machines[0].live() {
            self.machines[0].fsm_cfg.passive = self.ctx.pc().passive;
        }
        let state = self.machines[0].state;
        let id = self.ctx.id as usize;
        self.ctx.with_status(|s| {
            if s.state != state {
                s.state = state;
                s.since = Instant::now();
                s.last_change_unix = super::unix_now();
            }
        });
        self.ctx
            .peers
            .established
            .set(id, state == State::Established);
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.machines.iter().position(|m| m.id == id)
    }

    fn next_deadline(&self) -> TokioInstant {
        self.machines
            .iter()
            .flat_map(|m| [m.retry_at, m.hold_at, m.keepalive_at])
            .flatten()
            .min()
            .unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600))
    }

    /// Timers that are due, as FSM events.
    async fn on_timers(&mut self) {
        let now = TokioInstant::now();
        let mut due = Vec::new();
        for m in &mut self.machines {
            if m.retry_at.is_some_and(|t| t <= now) {
                m.retry_at = None;
                due.push((m.id, Event::ConnectRetryTimerExpires));
            }
            if m.hold_at.is_some_and(|t| t <= now) {
                m.hold_at = None;
                m.why = Some(format!("hold timer expired in {:?}", m.state));
                due.push((m.id, Event::HoldTimerExpires));
            }
            if m.keepalive_at.is_some_and(|t| t <= now) {
                m.keepalive_at = None;
                due.push((m.id, Event::KeepaliveTimerExpires));
            }
        }
        for (id, ev) in due {
            self.fsm_event(id, ev, Input::None).await;
        }
    }

    /// Operator and listener commands.
    async fn on_ctl(&mut self, cmd: Option<PeerCtl>) {
        match cmd {
            None | Some(PeerCtl::Shutdown) => {
                // The daemon's shutdown sequence has withdrawn what we
                // originate: that goes out before the Cease.
                self.sync_adverts();
                for id in self.ids() {
                    self.set_why(id, "administrative shutdown");
                    let ev = Event::Stop {
                        subcode: cease::ADMIN_SHUTDOWN,
                    };
                    self.fsm_event(id, ev, Input::None).await;
                }
                self.exit = true;
            }
            Some(PeerCtl::Reset) => {
                for id in self.ids() {
                    self.set_why(id, "administrative reset");
                    let neg = self.index(id).and_then(|i| self.machines[i].open.as_ref());
                    let n = graceful::teardown(neg.map(|o| &o.1), cease::ADMIN_RESET, Vec::new());
                    let ev = Event::Teardown(n);
                    self.fsm_event(id, ev, Input::None).await;
                }
            }
            Some(PeerCtl::Incoming(stream)) => self.on_incoming(stream).await,
        }
    }

    /// Connection events: connect results, messages, write failures.
    async fn on_conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected { id, result } => {
                let Some(i) = self.index(id) else { return };
                self.machines[i].connecting = None;
                match result {
                    Ok(stream) => {
                        let link = Link::start(id, stream, true, self.events_tx.clone());
                        self.machines[i].link = Some(link);
                        self.fsm_event(id, Event::TcpConnected, Input::None).await;
                    }
                    Err(e) => {
                        debug!(error = %e, "connect failed");
                        self.ctx.record_error(&e);
                        self.fsm_event(id, Event::TcpConnectionFails, Input::None)
                            .await;
                        self.retry = (self.retry * 2).min(MAX_CONNECT_RETRY);
                    }
                }
            }
            ConnEvent::Messages {
                id,
                result: Ok(msgs),
            } => {
                // One status update per batch, not one lock per UPDATE: the
                // batch's messages by type now, its RFC 7606 actions after it.
                let mut read = MessageCounts::default();
                for (ty, _) in &msgs {
                    read.add(*ty, 1);
                }
                self.ctx.with_status(|s| s.count_received(&read));
                for (ty, body) in msgs {
                    // A message for a connection already closed is dropped.
                    match self.index(id) {
                        Some(i) if self.machines[i].link.is_some() => {}
                        _ => break,
                    }
                    self.on_message(id, ty, body).await;
                }
                // The batch's UPDATEs go to the RIB now (not when the next batch comes).
                if established::flush_ingest(&self.ctx, &mut self.ingest)
                    .await
                    .is_err()
                {
                    self.exit = true;
                }
                let acted = self.ingest.take_rfc7606();
                if !acted.is_zero() {
                    self.ctx.with_status(|s| s.rfc7606.merge(&acted));
                }
            }
            ConnEvent::Messages { id, result: Err(e) } => {
                let Some(i) = self.index(id) else { return };
                if self.machines[i].link.is_none() {
                    return;
                }
                let ev = match &e {
                    SessionError::Sent {
                        code,
                        subcode,
                        data,
                        ..
                    } => Event::Error(Notification {
                        code: *code,
                        subcode: *subcode,
                        data: data.clone(),
                    }),
                    _ => Event::TcpConnectionFails,
                };
                self.machines[i].err = Some(e);
                self.fsm_event(id, ev, Input::None).await;
            }
            ConnEvent::WriteFailed { id, error } => {
                let Some(i) = self.index(id) else { return };
                if self.machines[i].link.is_none() {
                    return;
                }
                self.machines[i].err = Some(SessionError::Io(error));
                self.fsm_event(id, Event::TcpConnectionFails, Input::None)
                    .await;
            }
        }
    }

    /// One whole message from the peer, as an FSM event.
    async fn on_message(&mut self, id: u64, ty: u8, body: BytesMut) {
        let Some(i) = self.index(id) else { return };
        let state = self.machines[i].state;
        let ev = match ty {
            wire::msg::OPEN if state == State::OpenSent => return self.on_open(i, &body).await,
            wire::msg::UPDATE => Event::UpdateReceived,
            wire::msg::KEEPALIVE => Event::KeepaliveReceived,
            wire::msg::ROUTE_REFRESH => Event::RouteRefreshReceived,
            wire::msg::NOTIFICATION => {
                let n = wire::decode_notification(&body);
                self.ctx
                    .with_status(|s| s.count_notification(Direction::Received, &n));
                self.machines[i].err = Some(SessionError::Received(n));
                Event::NotificationReceived
            }
            _ => Event::UnexpectedMessage,
        };
        let expected = matches!(
            (ty, state),
            (wire::msg::NOTIFICATION, _)
                | (
                    wire::msg::KEEPALIVE,
                    State::OpenConfirm | State::Established
                )
                | (
                    wire::msg::UPDATE | wire::msg::ROUTE_REFRESH,
                    State::Established
                )
        );
        if !expected {
            self.machines[i].why = Some(format!("message type {ty} in {state:?}"));
        }
        self.fsm_event(id, ev, Input::Body(body)).await;
    }

    /// Commands from the RIB to the Established session.
    async fn on_rib_cmd(&mut self, id: u64, cmd: Option<SessionCmd>) {
        let Some(i) = self.index(id) else {
            self.rib_ctl = None;
            return;
        };
        match cmd {
            None => {
                // The RIB is gone: the daemon is stopping.
                self.rib_ctl = None;
                self.on_ctl(None).await;
            }
            Some(SessionCmd::Teardown {
                subcode,
                data,
                reason,
            }) => {
                warn!(%reason, "teardown requested");
                self.machines[i].why = Some("teardown (max-prefix)".into());
                let neg = self.machines[i].open.as_ref().map(|o| &o.1);
                let ev = Event::Teardown(graceful::teardown(neg, subcode, data));
                self.fsm_event(id, ev, Input::None).await;
            }
            Some(cmd) => {
                let m = &self.machines[i];
                if let (Some(up), Some(link)) = (&m.up, &m.link) {
                    established::on_rib_cmd(&self.ctx, up, link, cmd);
                }
            }
        }
    }

    /// Send the Established session what changed in the anycast adverts.
    fn sync_adverts(&mut self) {
        let Some(i) = self.rib_ctl.as_ref().and_then(|(id, _)| self.index(*id)) else {
            return;
        };
        let m = &self.machines[i];
        if let (Some(up), Some(link)) = (&m.up, &m.link) {
            let adverts = self.adverts.borrow_and_update().clone();
            self.originated.sync(&self.ctx, up, link, &adverts);
        }
    }

    fn ids(&self) -> Vec<u64> {
        self.machines.iter().map(|m| m.id).collect()
    }

    fn set_why(&mut self, id: u64, why: &str) {
        if let Some(i) = self.index(id) {
            self.machines[i].why = Some(why.to_string());
        }
    }
}

/// The RIB's next command for the Established machine (never, without one).
async fn recv_rib(
    rib_ctl: &mut Option<(u64, mpsc::UnboundedReceiver<SessionCmd>)>,
) -> (u64, Option<SessionCmd>) {
    match rib_ctl {
        Some((id, rx)) => (*id, rx.recv().await),
        None => std::future::pending().await,
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(s as u64)
}

fn cease_with(subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code: code::CEASE,
        subcode,
        data,
    }
}

/// A NOTIFICATION's reason for the log, when nothing more specific is known.
fn describe(ev: &Event, state: State) -> String {
    match ev {
        Event::HoldTimerExpires => format!("hold timer expired in {state:?}"),
        Event::Stop { .. } => "administrative stop".into(),
        Event::Teardown(_) => "teardown".into(),
        Event::CollisionLost => "connection collision".into(),
        _ => "error".into(),
    }
}
