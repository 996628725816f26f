//! Session engine: one task per configured peer owns its TCP connections and
//! timers, drives the pure `fsm`, validates and decodes every message with
//! `wire`, and hands route changes to the RIB task over a bounded channel.
//!
//! Also owns the BGP listener, which hands accepted connections to the peer
//! task of the source address (connection collisions are resolved there,
//! RFC 4271 §6.8), and the shared per-peer status read by the admin socket.
//! Talks to: `rib` (RibMsg out, SessionCmd in), `admin` (PeerStatus, PeerCtl).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant as TokioInstant};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::{Config, PeerConfig};
use crate::fsm::{self, Action, Event, FsmConfig, State};
use crate::pops::SessionFlags;
use crate::rib::{RibMsg, SessionCmd, SessionInfo};
use crate::sockopt;
use crate::types::{Afi, PathAttrs, PeerId, Prefix};
use crate::wire::{
    self, cease, code, Capabilities, EncodeCtx, GracefulRestartCap, Notification, Open, UpdateCtx,
    WireError,
};

/// Longest connect-retry interval after repeated failures.
const MAX_CONNECT_RETRY: Duration = Duration::from_secs(120);

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
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    pub state: State,
    #[serde(skip)]
    pub since: Instant,
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
    pub established_count: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub notifications_sent: u64,
    pub notifications_received: u64,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: State::Idle,
            since: Instant::now(),
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
            established_count: 0,
            updates_received: 0,
            updates_sent: 0,
            notifications_sent: 0,
            notifications_received: 0,
        }
    }
}

/// Commands to a peer task from the listener and the admin socket.
#[derive(Debug)]
pub enum PeerCtl {
    /// An accepted connection from this peer's address.
    Incoming(TcpStream),
    /// Admin reset: Cease/Administrative Reset, then reconnect.
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
}

impl Peers {
    pub fn snapshot(&self, id: usize) -> PeerStatus {
        self.status[id].lock().expect("status lock").clone()
    }
}

/// Everything a peer task needs.
struct PeerCtx {
    id: PeerId,
    cfg: Arc<Config>,
    rib: mpsc::Sender<RibMsg>,
    peers: Arc<Peers>,
}

impl PeerCtx {
    fn pc(&self) -> &PeerConfig {
        &self.cfg.peers[self.id as usize]
    }
    fn set_state(&self, state: State) {
        let mut s = self.peers.status[self.id as usize].lock().expect("status");
        if s.state != state {
            s.state = state;
            s.since = Instant::now();
            self.peers
                .established
                .set(self.id as usize, state == State::Established);
        }
    }
    fn with_status(&self, f: impl FnOnce(&mut PeerStatus)) {
        f(&mut self.peers.status[self.id as usize].lock().expect("status"));
    }
    fn record_error(&self, e: &SessionError) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.with_status(|s| {
            s.last_error = Some(e.to_string());
            s.last_error_at = Some(now);
            match e {
                SessionError::Sent { .. } | SessionError::CollisionLost => {
                    s.notifications_sent += 1
                }
                SessionError::Received(_) => s.notifications_received += 1,
                _ => {}
            }
        });
    }
    fn fsm_cfg(&self) -> FsmConfig {
        FsmConfig {
            passive: self.pc().passive,
            hold_time: self.pc().hold_time,
        }
    }
    fn our_open(&self) -> Open {
        let pc = self.pc();
        let asn = self.cfg.local_asn;
        Open {
            asn,
            my_as: if asn > 65535 {
                wire::AS_TRANS as u16
            } else {
                asn as u16
            },
            hold_time: pc.hold_time,
            router_id: self.cfg.router_id,
            caps: Capabilities {
                multiprotocol: pc.families.clone(),
                as4: Some(asn),
                route_refresh: true,
                extended_message: true,
                graceful_restart: pc.graceful_restart.then(|| GracefulRestartCap {
                    restart_time: pc.restart_time,
                    restarting: false,
                    afis: Vec::new(),
                }),
                other: Vec::new(),
            },
        }
    }
}

/// Start the listener and one task per peer. Returns the shared peer table.
pub async fn start(
    cfg: Arc<Config>,
    rib: mpsc::Sender<RibMsg>,
    tasks: &mut JoinSet<()>,
) -> io::Result<Arc<Peers>> {
    let n = cfg.peers.len();
    let mut ctl_tx = Vec::with_capacity(n);
    let mut ctl_rx = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        ctl_tx.push(tx);
        ctl_rx.push(rx);
    }
    let peers = Arc::new(Peers {
        status: (0..n).map(|_| Mutex::new(PeerStatus::default())).collect(),
        ctl: ctl_tx,
        established: Arc::new(SessionFlags::new(n)),
    });
    if cfg.listen.enabled {
        for addr in &cfg.listen.addresses {
            let listener = bind_listener(&cfg, SocketAddr::new(*addr, cfg.listen.port))?;
            info!(address = %addr, port = cfg.listen.port, "BGP listener");
            tasks.spawn(listen_task(listener, cfg.clone(), peers.clone()));
        }
    }
    for (i, rx) in ctl_rx.into_iter().enumerate() {
        let ctx = PeerCtx {
            id: i as PeerId,
            cfg: cfg.clone(),
            rib: rib.clone(),
            peers: peers.clone(),
        };
        let span = info_span!("peer", name = %cfg.peers[i].name, addr = %cfg.peers[i].address);
        tasks.spawn(peer_task(ctx, rx).instrument(span));
    }
    Ok(peers)
}

fn bind_listener(cfg: &Config, addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    let v6 = addr.is_ipv6();
    if v6 {
        // "::" serves IPv4 peers too, as v4-mapped addresses.
        sock.set_only_v6(!addr.ip().is_unspecified())?;
    }
    sock.set_nonblocking(true)?;
    // TCP-MD5 keys must be on the listening socket before the peer's SYN arrives.
    for p in &cfg.peers {
        if let Some(pw) = &p.password {
            if v6 || p.address.is_ipv4() {
                sockopt::set_md5sig(sock.as_fd(), v6, p.address, Some(pw.as_bytes()))
                    .map_err(io::Error::other)?;
            }
        }
    }
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    TcpListener::from_std(sock.into())
}

/// The address a peer is configured with, from what accept() returned.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

async fn listen_task(listener: TcpListener, cfg: Arc<Config>, peers: Arc<Peers>) {
    let by_addr: HashMap<IpAddr, usize> = cfg
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.address, i))
        .collect();
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let ip = canonical(remote.ip());
                match by_addr.get(&ip) {
                    Some(&i) => {
                        let _ = peers.ctl[i].send(PeerCtl::Incoming(stream));
                    }
                    None => {
                        info!(%remote, "rejecting connection from unconfigured address");
                        drop(stream);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Apply TTL / GTSM settings to a connected or accepted socket.
fn apply_ttl(pc: &PeerConfig, ebgp: bool, stream: &TcpStream) -> Result<(), SessionError> {
    let sock = socket2::SockRef::from(stream);
    let v6 = stream.local_addr()?.is_ipv6();
    let ttl = ttl_for(pc, ebgp);
    if v6 {
        sock.set_unicast_hops_v6(ttl)?;
    }
    // Dual-stack sockets carrying IPv4 use the IPv4 TTL.
    let _ = sock.set_ttl(ttl);
    if pc.gtsm {
        sockopt::set_min_ttl(stream.as_fd(), v6, pc.address, 255)?;
    }
    Ok(())
}

fn ttl_for(pc: &PeerConfig, ebgp: bool) -> u32 {
    if pc.gtsm {
        255
    } else if let Some(h) = pc.multihop {
        h as u32
    } else if ebgp {
        1
    } else {
        64
    }
}

async fn connect_out(ctx: &PeerCtx) -> Result<TcpStream, SessionError> {
    let pc = ctx.pc();
    let remote = SocketAddr::new(pc.address, pc.port);
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let v6 = remote.is_ipv6();
    let ebgp = pc.is_ebgp(ctx.cfg.local_asn);
    {
        let r = socket2::SockRef::from(&sock);
        let ttl = ttl_for(pc, ebgp);
        if v6 {
            r.set_unicast_hops_v6(ttl)?;
        } else {
            r.set_ttl(ttl)?;
        }
    }
    if let Some(pw) = &pc.password {
        sockopt::set_md5sig(sock.as_fd(), v6, pc.address, Some(pw.as_bytes()))?;
    }
    if pc.gtsm {
        sockopt::set_min_ttl(sock.as_fd(), v6, pc.address, 255)?;
    }
    if let Some(local) = pc.local_address {
        sock.bind(SocketAddr::new(local, 0))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(30), sock.connect(remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection between TCP up and Established.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    outgoing: bool,
}

impl Conn {
    fn new(stream: TcpStream, outgoing: bool) -> Conn {
        Conn {
            stream,
            buf: BytesMut::with_capacity(1 << 16),
            outgoing,
        }
    }
}

/// Read one whole message from `rd` into `buf`; returns (type, body).
async fn read_msg<R: AsyncReadExt + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<(u8, BytesMut), SessionError> {
    loop {
        if let Some(m) = take_msg(buf, max_len)? {
            return Ok(m);
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(SessionError::Eof);
        }
    }
}

/// Split one complete message off the front of `buf`, if there is one.
fn take_msg(buf: &mut BytesMut, max_len: usize) -> Result<Option<(u8, BytesMut)>, WireError> {
    if buf.len() < wire::HEADER_LEN {
        return Ok(None);
    }
    let (ty, len) = wire::check_header(&buf[..wire::HEADER_LEN], max_len)?;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut msg = buf.split_to(len);
    msg.advance(wire::HEADER_LEN);
    Ok(Some((ty, msg)))
}

/// What the OPEN exchange yields.
struct Opened {
    conn: Conn,
    open: Open,
}

/// Negotiated session parameters.
#[derive(Clone, Debug)]
struct Negotiated {
    hold: u16,
    keepalive: u16,
    as4: bool,
    afis: [bool; 2],
    extended: bool,
    graceful_restart: bool,
    route_refresh: bool,
}

fn negotiate(ctx: &PeerCtx, ours: &Open, theirs: &Open) -> Negotiated {
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
        graceful_restart: ctx.pc().graceful_restart && theirs.caps.graceful_restart.is_some(),
        route_refresh: theirs.caps.route_refresh,
    }
}

/// Check the peer's OPEN against the config (RFC 4271 §6.2).
fn check_open(ctx: &PeerCtx, open: &Open) -> Result<(), WireError> {
    let pc = ctx.pc();
    if open.asn != pc.remote_asn {
        return Err(WireError {
            code: code::OPEN,
            subcode: 2,
            data: open.my_as.to_be_bytes().to_vec(),
            msg: format!("peer AS {} but configured {}", open.asn, pc.remote_asn),
        });
    }
    if open.router_id == ctx.cfg.router_id && !pc.is_ebgp(ctx.cfg.local_asn) {
        return Err(WireError {
            code: code::OPEN,
            subcode: 3,
            data: Vec::new(),
            msg: format!("peer BGP identifier {} equals ours", open.router_id),
        });
    }
    Ok(())
}

async fn send_notification<W: AsyncWriteExt + Unpin>(w: &mut W, n: &Notification) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        w.write_all(&wire::encode_notification(n)),
    )
    .await;
}

/// Send `n` to the peer and return the session error that records it.
async fn notify(stream: &mut TcpStream, n: Notification, msg: impl Into<String>) -> SessionError {
    send_notification(stream, &n).await;
    SessionError::Sent {
        code: n.code,
        subcode: n.subcode,
        data: n.data,
        msg: msg.into(),
    }
}

/// Read the next message within `hold`. Hold-timer expiry and framing errors are
/// sent to the peer as NOTIFICATIONs and returned as the session error.
async fn read_or_notify(
    conn: &mut Conn,
    hold: Duration,
    max_len: usize,
    state: &str,
) -> Result<(u8, BytesMut), SessionError> {
    match tokio::time::timeout(hold, read_msg(&mut conn.stream, &mut conn.buf, max_len)).await {
        Err(_) => {
            let n = Notification {
                code: code::HOLD_TIMER,
                subcode: 0,
                data: Vec::new(),
            };
            Err(notify(
                &mut conn.stream,
                n,
                format!("hold timer expired in {state}"),
            )
            .await)
        }
        Ok(Err(SessionError::Sent {
            code,
            subcode,
            data,
            msg,
        })) => {
            let n = Notification {
                code,
                subcode,
                data,
            };
            Err(notify(&mut conn.stream, n, msg).await)
        }
        Ok(r) => r,
    }
}

/// OpenSent: send our OPEN and wait (hold time 240 s) for the peer's.
async fn open_exchange(ctx: Arc<PeerCtx>, mut conn: Conn) -> Result<Opened, SessionError> {
    let ours = ctx.our_open();
    let fcfg = ctx.fsm_cfg();
    let (state, _) = fsm::step(State::Active, &fcfg, &Event::TcpConnected);
    if let Ok(remote) = conn.stream.peer_addr() {
        debug!(%remote, outgoing = conn.outgoing, "TCP established, sending OPEN");
    }
    conn.stream.write_all(&wire::encode_open(&ours)).await?;
    let hold = Duration::from_secs(fsm::OPEN_HOLD_TIME as u64);
    let (ty, body) = read_or_notify(&mut conn, hold, wire::MAX_MSG_LEN, "OpenSent").await?;
    match ty {
        wire::MSG_OPEN => {
            match wire::decode_open(&body).and_then(|o| check_open(&ctx, &o).map(|_| o)) {
                Ok(open) => Ok(Opened { conn, open }),
                Err(e) => Err(notify(&mut conn.stream, e.notification(), e.msg).await),
            }
        }
        wire::MSG_NOTIFICATION => Err(SessionError::Received(wire::decode_notification(&body))),
        _ => {
            let (_, acts) = fsm::step(state, &fcfg, &Event::UnexpectedMessage);
            match acts.into_iter().find_map(|a| match a {
                Action::SendNotification(n) => Some(n),
                _ => None,
            }) {
                Some(n) => Err(notify(
                    &mut conn.stream,
                    n,
                    format!("message type {ty} in OpenSent"),
                )
                .await),
                None => Err(SessionError::Eof),
            }
        }
    }
}

/// OpenConfirm: send KEEPALIVE, wait for the peer's (negotiated hold time), or be
/// told to give way to a colliding connection.
async fn confirm(
    ctx: Arc<PeerCtx>,
    mut op: Opened,
    mut cancel: oneshot::Receiver<()>,
) -> Result<Opened, SessionError> {
    let ours = ctx.our_open();
    let neg = negotiate(&ctx, &ours, &op.open);
    op.conn.stream.write_all(&wire::encode_keepalive()).await?;
    let hold = Duration::from_secs(if neg.hold == 0 {
        fsm::OPEN_HOLD_TIME
    } else {
        neg.hold
    } as u64);
    let max = if neg.extended {
        wire::MAX_EXT_MSG_LEN
    } else {
        wire::MAX_MSG_LEN
    };
    let res = tokio::select! {
        r = read_or_notify(&mut op.conn, hold, max, "OpenConfirm") => r,
        _ = &mut cancel => {
            let n = Notification { code: code::CEASE, subcode: cease::COLLISION, data: Vec::new() };
            send_notification(&mut op.conn.stream, &n).await;
            return Err(SessionError::CollisionLost);
        }
    };
    match res? {
        (wire::MSG_KEEPALIVE, _) => Ok(op),
        (wire::MSG_NOTIFICATION, body) => {
            Err(SessionError::Received(wire::decode_notification(&body)))
        }
        (ty, _) => {
            // RFC 6608: FSM error, unexpected message in OpenConfirm.
            let n = Notification {
                code: code::FSM,
                subcode: 2,
                data: Vec::new(),
            };
            Err(notify(
                &mut op.conn.stream,
                n,
                format!("message type {ty} in OpenConfirm"),
            )
            .await)
        }
    }
}

enum HsResult {
    Opened(u64, Result<Opened, SessionError>),
    Confirmed(u64, Result<Opened, SessionError>),
    Connected(Result<TcpStream, SessionError>),
}

enum PhaseEnd {
    Established(Opened),
    Shutdown,
}

/// Idle/Connect/Active/OpenSent/OpenConfirm for one peer, with collision detection.
async fn establish(
    ctx: &Arc<PeerCtx>,
    ctl: &mut mpsc::UnboundedReceiver<PeerCtl>,
    retry: &mut Duration,
) -> PhaseEnd {
    let fcfg = ctx.fsm_cfg();
    let (mut state, _) = fsm::step(State::Idle, &fcfg, &Event::Start);
    ctx.set_state(state);
    let mut hs: JoinSet<HsResult> = JoinSet::new();
    let mut next_id = 0u64;
    // Connections that reached OpenConfirm: id -> (outgoing, remote id, cancel).
    let mut confirming: HashMap<u64, (bool, Ipv4Addr, oneshot::Sender<()>)> = HashMap::new();
    // Connections in OpenSent (our OPEN sent, theirs awaited): id -> outgoing.
    let mut opensent: HashMap<u64, bool> = HashMap::new();
    let mut connecting = false;
    let mut retry_at = TokioInstant::now();
    loop {
        if !fcfg.passive && !connecting && confirming.is_empty() && TokioInstant::now() >= retry_at
        {
            connecting = true;
            state = State::Connect;
            ctx.set_state(state);
            let c = ctx.clone();
            hs.spawn(async move { HsResult::Connected(connect_out(&c).await) });
            retry_at = TokioInstant::now() + *retry;
        }
        let wake = if fcfg.passive || connecting {
            TokioInstant::now() + Duration::from_secs(3600)
        } else {
            retry_at
        };
        tokio::select! {
            cmd = ctl.recv() => match cmd {
                None | Some(PeerCtl::Shutdown) => return PhaseEnd::Shutdown,
                Some(PeerCtl::Reset) => {}
                Some(PeerCtl::Incoming(stream)) => {
                    let ebgp = ctx.pc().is_ebgp(ctx.cfg.local_asn);
                    if let Err(e) = apply_ttl(ctx.pc(), ebgp, &stream) {
                        warn!(error = %e, "socket options on accepted connection");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    next_id += 1;
                    let id = next_id;
                    let c = ctx.clone();
                    state = State::OpenSent;
                    ctx.set_state(state);
                    opensent.insert(id, false);
                    hs.spawn(async move { HsResult::Opened(id, open_exchange(c, Conn::new(stream, false)).await) });
                }
            },
            _ = sleep_until(wake) => {}
            Some(res) = hs.join_next() => {
                let Ok(res) = res else { continue };
                match res {
                    HsResult::Connected(Ok(stream)) => {
                        connecting = false;
                        next_id += 1;
                        let id = next_id;
                        let c = ctx.clone();
                        state = State::OpenSent;
                        ctx.set_state(state);
                        opensent.insert(id, true);
                        hs.spawn(async move { HsResult::Opened(id, open_exchange(c, Conn::new(stream, true)).await) });
                    }
                    HsResult::Connected(Err(e)) => {
                        connecting = false;
                        debug!(error = %e, "connect failed");
                        ctx.record_error(&e);
                        *retry = (*retry * 2).min(MAX_CONNECT_RETRY);
                        state = State::Active;
                        ctx.set_state(state);
                    }
                    HsResult::Opened(id, Ok(op)) => {
                        opensent.remove(&id);
                        let remote_id = op.open.router_id;
                        let outgoing = op.conn.outgoing;
                        // §6.8: keep the connection initiated by the higher identifier
                        // (`keep_ours`: the one we initiated).
                        let keep_ours = fsm::collision_winner(ctx.cfg.router_id, remote_id);
                        // Against connections in OpenConfirm.
                        let mut lose_new = false;
                        let mut losers = Vec::new();
                        for (&oid, (o_out, _, _)) in confirming.iter() {
                            if *o_out == outgoing {
                                lose_new = true;
                            } else if keep_ours == outgoing {
                                losers.push(oid)
                            } else {
                                lose_new = true
                            }
                        }
                        // §6.8 also allows examining OpenSent connections once the peer's
                        // identifier is known, and this OPEN tells it: if the connection
                        // to keep is still in OpenSent, give way now rather than reach
                        // Established here while the peer keeps the other one.
                        if outgoing != keep_ours && opensent.values().any(|&o| o == keep_ours) {
                            lose_new = true;
                        }
                        for oid in losers {
                            if let Some((_, _, cancel)) = confirming.remove(&oid) {
                                let _ = cancel.send(());
                            }
                        }
                        if lose_new {
                            let mut conn = op.conn;
                            let n = Notification { code: code::CEASE, subcode: cease::COLLISION, data: Vec::new() };
                            send_notification(&mut conn.stream, &n).await;
                            info!(outgoing, "connection collision: closed this connection, keeping the other");
                            ctx.record_error(&SessionError::CollisionLost);
                            continue;
                        }
                        let (tx, rx) = oneshot::channel();
                        confirming.insert(id, (outgoing, remote_id, tx));
                        state = State::OpenConfirm;
                        ctx.set_state(state);
                        let c = ctx.clone();
                        hs.spawn(async move { HsResult::Confirmed(id, confirm(c, op, rx).await) });
                    }
                    HsResult::Opened(id, Err(e)) | HsResult::Confirmed(id, Err(e)) => {
                        confirming.remove(&id);
                        opensent.remove(&id);
                        if !matches!(e, SessionError::CollisionLost) {
                            info!(error = %e, "session setup failed");
                        }
                        ctx.record_error(&e);
                        if hs.is_empty() {
                            state = if fcfg.passive { State::Active } else { State::Idle };
                            ctx.set_state(state);
                        }
                        if !matches!(e, SessionError::CollisionLost) {
                            retry_at = retry_at.max(TokioInstant::now() + *retry);
                        }
                    }
                    HsResult::Confirmed(_, Ok(op)) => {
                        hs.abort_all();
                        return PhaseEnd::Established(op);
                    }
                }
            }
        }
    }
}

async fn peer_task(ctx: PeerCtx, mut ctl: mpsc::UnboundedReceiver<PeerCtl>) {
    let ctx = Arc::new(ctx);
    let base = Duration::from_secs(ctx.pc().connect_retry.max(1) as u64);
    let mut retry = base;
    loop {
        let op = match establish(&ctx, &mut ctl, &mut retry).await {
            PhaseEnd::Shutdown => {
                ctx.set_state(State::Idle);
                return;
            }
            PhaseEnd::Established(op) => op,
        };
        retry = base;
        let (end, err) = established(&ctx, op, &mut ctl).await;
        ctx.record_error(&err);
        info!(error = %err, "session down");
        match end {
            DownKind::Shutdown => {
                ctx.set_state(State::Idle);
                return;
            }
            DownKind::Reconnect => {
                ctx.set_state(State::Idle);
                // Idle hold before reconnecting, so a flapping peer is damped.
                tokio::select! {
                    _ = tokio::time::sleep(base) => {}
                    cmd = ctl.recv() => match cmd {
                        None | Some(PeerCtl::Shutdown) => return,
                        Some(PeerCtl::Reset) => {}
                        // Take a reconnecting peer right away: requeue it for establish().
                        Some(PeerCtl::Incoming(s)) => {
                            let _ = ctx.peers.ctl[ctx.id as usize].send(PeerCtl::Incoming(s));
                        }
                    }
                }
            }
        }
    }
}

enum DownKind {
    Reconnect,
    Shutdown,
}

/// The export attributes for a POP peer: our ASN prepended, next-hop self,
/// no MED / LOCAL_PREF / RR attributes, unknown transitive ones marked Partial.
fn export_attrs(a: &PathAttrs, local_as: u32, nh: IpAddr) -> PathAttrs {
    PathAttrs {
        origin: a.origin,
        as_path: a.as_path.prepend(local_as),
        next_hop: Some(nh),
        next_hop_ll: None,
        med: None,
        local_pref: None,
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a.aggregator,
        communities: a.communities.clone(),
        large_communities: a.large_communities.clone(),
        ext_communities: a.ext_communities.clone(),
        originator_id: None,
        cluster_list: Vec::new(),
        other: a
            .other
            .iter()
            .filter(|r| r.flags & 0x40 != 0)
            .map(|r| crate::types::RawAttr {
                flags: r.flags | 0x20,
                code: r.code,
                value: r.value.clone(),
            })
            .collect(),
    }
}

/// Next-hop-self addresses for each family from the session's local address.
fn self_next_hops(local: IpAddr, router_id: Ipv4Addr) -> (IpAddr, IpAddr) {
    match canonical(local) {
        IpAddr::V4(v4) => (IpAddr::V4(v4), IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(v6) => (IpAddr::V4(router_id), IpAddr::V6(v6)),
    }
}

/// Encode one export batch into UPDATE bytes.
fn encode_export(
    enc: &EncodeCtx,
    afis: [bool; 2],
    local_as: u32,
    nh: (IpAddr, IpAddr),
    announce: &[(Prefix, Arc<PathAttrs>)],
    withdraw: &[Prefix],
    out: &mut Vec<u8>,
) -> u64 {
    let before = out.len();
    for afi in Afi::ALL {
        if !afis[afi.index()] {
            continue;
        }
        let w: Vec<Prefix> = withdraw
            .iter()
            .copied()
            .filter(|p| p.afi() == afi)
            .collect();
        if !w.is_empty() {
            wire::encode_withdraw(enc, afi, &w, out);
        }
        // Group by attribute set (the RIB shares one Arc per interned set).
        let mut groups: HashMap<*const PathAttrs, (Arc<PathAttrs>, Vec<Prefix>)> = HashMap::new();
        let mut order = Vec::new();
        for (p, a) in announce.iter().filter(|(p, _)| p.afi() == afi) {
            let key = Arc::as_ptr(a);
            groups
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    (a.clone(), Vec::new())
                })
                .1
                .push(*p);
        }
        let hop = if afi == Afi::Ipv4 { nh.0 } else { nh.1 };
        for key in order {
            let (a, ps) = &groups[&key];
            let ea = export_attrs(a, local_as, hop);
            wire::encode_announce(enc, afi, ps, &ea, out);
        }
    }
    count_msgs(&out[before..])
}

/// Number of whole BGP messages in an encoded buffer (walks the length fields).
fn count_msgs(mut buf: &[u8]) -> u64 {
    let mut n = 0;
    while buf.len() >= wire::HEADER_LEN {
        let len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
        if len < wire::HEADER_LEN || len > buf.len() {
            break;
        }
        buf = &buf[len..];
        n += 1;
    }
    n
}

/// Established: read, decode and forward UPDATEs; keepalives; export; teardown.
async fn established(
    ctx: &Arc<PeerCtx>,
    op: Opened,
    ctl: &mut mpsc::UnboundedReceiver<PeerCtl>,
) -> (DownKind, SessionError) {
    let ours = ctx.our_open();
    let neg = negotiate(ctx, &ours, &op.open);
    let pc = ctx.pc();
    let ebgp = pc.is_ebgp(ctx.cfg.local_asn);
    let local = op.conn.stream.local_addr().ok();
    let remote = op.conn.stream.peer_addr().ok();
    let local_ip = local.map(|a| canonical(a.ip()));
    let fcfg = ctx.fsm_cfg();
    let mut state = State::Established;
    ctx.set_state(state);
    ctx.with_status(|s| {
        s.established_at = Some(Instant::now());
        s.established_count += 1;
        s.remote_router_id = Some(op.open.router_id);
        s.local_address = local;
        s.remote_address = remote;
        s.hold_time = Some(neg.hold);
        s.keepalive = Some(neg.keepalive);
        s.as4 = neg.as4;
        s.families = Afi::ALL
            .iter()
            .copied()
            .filter(|a| neg.afis[a.index()])
            .collect();
        s.route_refresh = neg.route_refresh;
        s.extended_message = neg.extended;
        s.graceful_restart = neg.graceful_restart;
    });
    info!(
        remote_id = %op.open.router_id,
        hold = neg.hold,
        as4 = neg.as4,
        "session established"
    );
    let max_len = if neg.extended {
        wire::MAX_EXT_MSG_LEN
    } else {
        wire::MAX_MSG_LEN
    };
    let uctx = UpdateCtx {
        as4: neg.as4,
        ebgp,
        peer_as: pc.remote_asn,
        local_as: ctx.cfg.local_asn,
        local_addr: local_ip,
        afis: neg.afis,
    };
    let enc = EncodeCtx {
        as4: neg.as4,
        max_len,
    };
    let nh = self_next_hops(
        local_ip.unwrap_or(IpAddr::V4(ctx.cfg.router_id)),
        ctx.cfg.router_id,
    );

    let Conn {
        stream, mut buf, ..
    } = op.conn;
    let (mut rd, wr) = stream.into_split();
    // Bytes that arrived with the peer's KEEPALIVE in OpenConfirm (often the first
    // UPDATEs) are already in `buf`: handle them before waiting on the socket.
    let mut leftover = !buf.is_empty();
    // Writer task: the session loop never blocks on a slow peer's TCP window.
    let (wtx, wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (werr_tx, mut werr_rx) = oneshot::channel::<io::Error>();
    let writer = tokio::spawn(writer_task(wr, wrx, werr_tx));

    let (rib_ctl_tx, mut rib_ctl) = mpsc::unbounded_channel();
    let info = SessionInfo {
        remote_as: op.open.asn,
        router_id: op.open.router_id,
        remote_addr: pc.address,
        local_addr: local_ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        afis: neg.afis,
        gr_preserved: {
            let mut f = [false; 2];
            if let Some(gr) = &op.open.caps.graceful_restart {
                for (afi, forwarding) in &gr.afis {
                    f[afi.index()] = *forwarding;
                }
            }
            f
        },
    };
    if ctx
        .rib
        .send(RibMsg::PeerUp {
            peer: ctx.id,
            info,
            ctl: rib_ctl_tx,
        })
        .await
        .is_err()
    {
        return (DownKind::Shutdown, SessionError::Stopped);
    }

    let hold = Duration::from_secs(neg.hold as u64);
    let ka = Duration::from_secs(neg.keepalive.max(1) as u64);
    let far = Duration::from_secs(86400 * 365);
    let mut hold_at = TokioInstant::now() + if neg.hold == 0 { far } else { hold };
    let mut ka_at = TokioInstant::now() + if neg.hold == 0 { far } else { ka };

    // Run FSM actions; returns Some(kind) when the session ends.
    let mut down_err: Option<SessionError> = None;
    let result: DownKind = 'outer: loop {
        let ev: Event = tokio::select! {
            biased;
            cmd = ctl.recv() => match cmd {
                None | Some(PeerCtl::Shutdown) => Event::Stop { subcode: cease::ADMIN_SHUTDOWN },
                Some(PeerCtl::Reset) => Event::Stop { subcode: cease::ADMIN_RESET },
                Some(PeerCtl::Incoming(mut s)) => {
                    // §6.8: a new connection while Established is closed.
                    let n = Notification { code: code::CEASE, subcode: cease::COLLISION, data: Vec::new() };
                    ctx.with_status(|st| st.notifications_sent += 1);
                    tokio::spawn(async move { send_notification(&mut s, &n).await; });
                    continue;
                }
            },
            e = &mut werr_rx => {
                down_err = Some(e.map(SessionError::Io).unwrap_or(SessionError::Eof));
                Event::TcpConnectionFails
            }
            _ = sleep_until(hold_at) => Event::HoldTimerExpires,
            _ = sleep_until(ka_at) => Event::KeepaliveTimerExpires,
            cmd = rib_ctl.recv() => match cmd {
                Some(SessionCmd::Export { announce, withdraw }) => {
                    let mut out = Vec::new();
                    let n = encode_export(&enc, neg.afis, ctx.cfg.local_asn, nh, &announce, &withdraw, &mut out);
                    if !out.is_empty() {
                        ctx.with_status(|s| s.updates_sent += n);
                        let _ = wtx.send(out);
                    }
                    continue;
                }
                Some(SessionCmd::EndOfRib(afi)) => {
                    if neg.afis[afi.index()] {
                        let _ = wtx.send(wire::encode_end_of_rib(afi));
                        ctx.with_status(|s| s.updates_sent += 1);
                    }
                    continue;
                }
                Some(SessionCmd::Teardown { subcode, data, reason }) => {
                    warn!(%reason, "teardown requested");
                    Event::Teardown(Notification { code: code::CEASE, subcode, data })
                }
                None => Event::Stop { subcode: cease::ADMIN_SHUTDOWN },
            },
            r = async {
                if std::mem::take(&mut leftover) { Ok(buf.len()) } else { rd.read_buf(&mut buf).await }
            } => match r {
                Ok(0) => { down_err = Some(SessionError::Eof); Event::TcpConnectionFails }
                Err(e) => { down_err = Some(SessionError::Io(e)); Event::TcpConnectionFails }
                Ok(_) => {
                    // Handle every complete message in the buffer.
                    let mut upd = 0u64;
                    let mut ev = None;
                    loop {
                        match take_msg(&mut buf, max_len) {
                            Ok(None) => break,
                            Err(e) => { ev = Some(Event::Error(e.notification())); down_err = Some(e.into()); break; }
                            Ok(Some((ty, body))) => {
                                if neg.hold != 0 { hold_at = TokioInstant::now() + hold; }
                                match ty {
                                    wire::MSG_UPDATE => {
                                        upd += 1;
                                        match wire::decode_update(&body, &uctx) {
                                            Err(e) => { ev = Some(Event::Error(e.notification())); down_err = Some(e.into()); break; }
                                            Ok(d) => {
                                                for w in &d.warnings { info!(warning = %w, "RFC 7606"); }
                                                for (afi, ch) in [(Afi::Ipv4, d.v4), (Afi::Ipv6, d.v6)] {
                                                    if (!ch.announced.is_empty() || !ch.withdrawn.is_empty())
                                                        && ctx.rib.send(RibMsg::Update { peer: ctx.id, afi, change: ch }).await.is_err()
                                                    {
                                                        break 'outer DownKind::Shutdown;
                                                    }
                                                }
                                                if let Some(afi) = d.end_of_rib {
                                                    let _ = ctx.rib.send(RibMsg::EndOfRib { peer: ctx.id, afi }).await;
                                                }
                                            }
                                        }
                                    }
                                    wire::MSG_KEEPALIVE => {}
                                    wire::MSG_NOTIFICATION => {
                                        let n = wire::decode_notification(&body);
                                        down_err = Some(SessionError::Received(n));
                                        ev = Some(Event::NotificationReceived);
                                        break;
                                    }
                                    wire::MSG_ROUTE_REFRESH => match wire::decode_route_refresh(&body) {
                                        Ok(Some(afi)) => { let _ = ctx.rib.send(RibMsg::RouteRefresh { peer: ctx.id, afi }).await; }
                                        Ok(None) => {}
                                        Err(e) => { ev = Some(Event::Error(e.notification())); down_err = Some(e.into()); break; }
                                    },
                                    _ => {
                                        // An OPEN while Established: FSM error (RFC 6608 subcode 3).
                                        ev = Some(Event::UnexpectedMessage);
                                        down_err = Some(SessionError::Sent { code: code::FSM, subcode: 3, data: Vec::new(), msg: format!("message type {ty} while Established") });
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    if upd > 0 { ctx.with_status(|s| s.updates_received += upd); }
                    match ev { Some(e) => e, None => continue }
                }
            },
        };
        let (next, actions) = fsm::step(state, &fcfg, &ev);
        state = next;
        let mut ended = false;
        for a in actions {
            match a {
                Action::SendKeepalive => {
                    let _ = wtx.send(wire::encode_keepalive());
                    ka_at = TokioInstant::now() + ka;
                }
                Action::RestartHoldTimer if neg.hold != 0 => {
                    hold_at = TokioInstant::now() + hold;
                }
                Action::SendNotification(n) => {
                    if down_err.is_none() {
                        down_err = Some(SessionError::Sent {
                            code: n.code,
                            subcode: n.subcode,
                            data: n.data.clone(),
                            msg: match &ev {
                                Event::HoldTimerExpires => "hold timer expired".into(),
                                Event::Stop { .. } => "administrative stop".into(),
                                Event::Teardown(_) => "teardown (max-prefix)".into(),
                                _ => "error".into(),
                            },
                        });
                    }
                    let _ = wtx.send(wire::encode_notification(&n));
                }
                Action::SessionDown | Action::CloseConnection => ended = true,
                _ => {}
            }
        }
        if ended {
            break if matches!(ev, Event::Stop { subcode } if subcode == cease::ADMIN_SHUTDOWN) {
                DownKind::Shutdown
            } else {
                DownKind::Reconnect
            };
        }
    };
    // Flush what is queued (the NOTIFICATION) and close.
    drop(wtx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    let err = down_err.unwrap_or(SessionError::Stopped);
    // Graceful restart (RFC 4724): keep routes only when the TCP session just died.
    let keep_stale =
        if neg.graceful_restart && matches!(err, SessionError::Eof | SessionError::Io(_)) {
            let theirs = op
                .open
                .caps
                .graceful_restart
                .as_ref()
                .map(|g| g.restart_time)
                .unwrap_or(0);
            Some(Duration::from_secs(theirs.min(pc.restart_time) as u64))
        } else {
            None
        };
    let _ = ctx
        .rib
        .send(RibMsg::PeerDown {
            peer: ctx.id,
            keep_stale,
        })
        .await;
    ctx.with_status(|s| s.established_at = None);
    (result, err)
}

async fn writer_task(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    err: oneshot::Sender<io::Error>,
) {
    while let Some(mut chunk) = rx.recv().await {
        // Coalesce what is already queued into one write.
        while let Ok(more) = rx.try_recv() {
            chunk.extend_from_slice(&more);
            if chunk.len() > 1 << 20 {
                break;
            }
        }
        if let Err(e) = wr.write_all(&chunk).await {
            let _ = err.send(e);
            return;
        }
    }
    let _ = wr.shutdown().await;
}
