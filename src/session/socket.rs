//! Sockets of the session engine: the BGP listener (bound by `net`, with
//! every peer's TCP-MD5 key), the outgoing connect, TTL / GTSM (RFC 5082) and TCP-MD5
//! (RFC 2385) options, and a connection's reader and writer tasks.
//!
//! A [`Link`] is one TCP connection of a peer: its reader task frames messages
//! (with `wire::check_header`) and sends them to the peer task in batches over
//! a bounded channel, so a slow RIB slows the socket down; its writer task
//! sends what the peer task queues, so the peer task never waits on a slow
//! peer's TCP window. Talks to: `task` (events), `sockopt`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{PeerCtl, Peers, SessionError};
use crate::config::{Config, PeerConfig};
use crate::net::{self, ListenerGtsm};
use crate::rib::ExportCredit;
use crate::sockopt;
use crate::wire::{self, WireError};

/// How long an outgoing connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Bind a BGP listener on `addr` with every peer's TCP-MD5 key on it. GTSM
/// before accept: IP_MINTTL on the listener when every peer uses GTSM, else
/// the socket filter for the GTSM peers; a kernel that refuses that filter
/// (EPERM without CAP_NET_ADMIN) is a warning and the listener has none.
pub(super) fn bind_listener(cfg: &Config, addr: SocketAddr) -> io::Result<TcpListener> {
    let keys: Vec<(IpAddr, &[u8])> = cfg
        .peers
        .iter()
        .filter_map(|p| p.password.as_ref().map(|pw| (p.address, pw.as_bytes())))
        .collect();
    let gtsm: Vec<IpAddr> = cfg
        .peers
        .iter()
        .filter(|p| p.gtsm)
        .map(|p| p.address)
        .collect();
    let mode = if gtsm.is_empty() {
        ListenerGtsm::Off
    } else if gtsm.len() == cfg.peers.len() {
        ListenerGtsm::Everyone
    } else {
        ListenerGtsm::Peers(&gtsm)
    };
    match net::bgp_listener(addr, &keys, mode) {
        // Only the socket filter fails with EPERM (a port below 1024 is EACCES).
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            warn!(%addr, error = %e, "GTSM: the kernel refuses the listener's socket filter to \
this user (it wants CAP_NET_ADMIN); connections accepted from GTSM peers get IP_MINTTL \
after accept, as BIRD's do");
            net::bgp_listener(addr, &keys, ListenerGtsm::Off)
        }
        r => r,
    }
}

/// Hand each accepted connection to the task of the peer with its address.
pub(super) async fn listen_task(listener: TcpListener, cfg: Arc<Config>, peers: Arc<Peers>) {
    let by_addr: HashMap<IpAddr, usize> = cfg
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.address, i))
        .collect();
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => match by_addr.get(&net::canonical_ip(remote.ip())) {
                Some(&i) => {
                    let _ = peers.ctl[i].send(PeerCtl::Incoming(stream));
                }
                None => {
                    info!(%remote, "rejecting connection from unconfigured address");
                    drop(stream);
                }
            },
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The TTL we send with: 255 with GTSM, else the multihop TTL, else 1 for eBGP.
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

/// Apply TTL / GTSM settings to an accepted socket.
pub(super) fn apply_ttl(
    pc: &PeerConfig,
    ebgp: bool,
    stream: &TcpStream,
) -> Result<(), SessionError> {
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

/// Open the outgoing connection to a peer (TTL, TCP-MD5, GTSM, local address).
pub(super) async fn connect_out(pc: &PeerConfig, ebgp: bool) -> Result<TcpStream, SessionError> {
    let remote = SocketAddr::new(pc.address, pc.port);
    let sock = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let v6 = remote.is_ipv6();
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
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What a connection's reader and writer tasks tell the peer task.
pub(super) enum ConnEvent {
    /// The outgoing connection attempt of machine `id` ended.
    Connected {
        id: u64,
        result: Result<TcpStream, SessionError>,
    },
    /// Whole messages (type, body) read in order, or why reading stopped: a
    /// framing error to send as a NOTIFICATION, or EOF / an I/O error.
    Messages {
        id: u64,
        result: Result<Vec<(u8, BytesMut)>, SessionError>,
    },
    /// Writing failed: the connection is gone.
    WriteFailed { id: u64, error: io::Error },
}

/// One TCP connection of a peer, from TCP up to its close.
pub(super) struct Link {
    /// We initiated it (RFC 4271 §6.8 keeps the one initiated by the higher identifier).
    pub outgoing: bool,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// Largest message the reader accepts (raised when extended messages are negotiated).
    max_len: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<Chunk>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Link {
    /// Start the reader and writer tasks of `stream`, reporting to `events` as machine `id`.
    pub fn start(
        id: u64,
        stream: TcpStream,
        outgoing: bool,
        events: mpsc::Sender<ConnEvent>,
    ) -> Link {
        let local = stream.local_addr().ok();
        let remote = stream.peer_addr().ok();
        let (rd, wr) = stream.into_split();
        let max_len = Arc::new(AtomicUsize::new(wire::MAX_MSG_LEN));
        let (out, out_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(reader_task(id, rd, max_len.clone(), events.clone()));
        let writer = tokio::spawn(writer_task(id, wr, out_rx, events));
        Link {
            outgoing,
            local,
            remote,
            max_len,
            out,
            reader,
            writer,
        }
    }

    /// Queue bytes for the peer (never waits).
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.out.send((bytes, None));
    }

    /// Queue bytes for the peer; `credit` is dropped (returned to the RIB)
    /// once they are written to the socket, or when the connection is gone.
    pub fn send_paced(&self, bytes: Vec<u8>, credit: Option<ExportCredit>) {
        let _ = self.out.send((bytes, credit));
    }

    pub fn set_max_len(&self, max_len: usize) {
        self.max_len.store(max_len, Ordering::SeqCst);
    }

    /// Stop reading and let the writer flush what is queued (a NOTIFICATION)
    /// and close. Returns the writer, for a caller that must wait for the flush.
    pub fn close(self) -> JoinHandle<()> {
        self.reader.abort();
        self.writer
    }
}

/// Read, frame and forward whole messages until EOF, an error, or abort.
async fn reader_task(
    id: u64,
    mut rd: OwnedReadHalf,
    max_len: Arc<AtomicUsize>,
    events: mpsc::Sender<ConnEvent>,
) {
    let mut buf = BytesMut::with_capacity(1 << 16);
    loop {
        let (msgs, error) = match rd.read_buf(&mut buf).await {
            Ok(0) => (Vec::new(), Some(SessionError::Eof)),
            Err(e) => (Vec::new(), Some(SessionError::Io(e))),
            Ok(_) => take_msgs(&mut buf, &max_len),
        };
        if !msgs.is_empty() {
            let ev = ConnEvent::Messages {
                id,
                result: Ok(msgs),
            };
            if events.send(ev).await.is_err() {
                return;
            }
        }
        if let Some(e) = error {
            let _ = events
                .send(ConnEvent::Messages { id, result: Err(e) })
                .await;
            return;
        }
    }
}

/// Split every complete message off the front of `buf`; a framing error ends
/// the batch (the messages before it are still delivered first).
fn take_msgs(
    buf: &mut BytesMut,
    max_len: &AtomicUsize,
) -> (Vec<(u8, BytesMut)>, Option<SessionError>) {
    let mut msgs = Vec::new();
    loop {
        match take_msg(buf, max_len.load(Ordering::SeqCst)) {
            Ok(Some(m)) => msgs.push(m),
            Ok(None) => return (msgs, None),
            Err(e) => return (msgs, Some(e.into())),
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

/// Bytes for the writer task, with the credit of a paced export batch.
type Chunk = (Vec<u8>, Option<ExportCredit>);

/// Write what the peer task queues, coalescing queued chunks into one write;
/// the credits of the chunks are dropped (returned) once written. Shut the
/// socket down when the queue closes.
async fn writer_task(
    id: u64,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Chunk>,
    events: mpsc::Sender<ConnEvent>,
) {
    while let Some((mut chunk, credit)) = rx.recv().await {
        let mut credits = vec![credit];
        while let Ok((more, credit)) = rx.try_recv() {
            chunk.extend_from_slice(&more);
            credits.push(credit);
            if chunk.len() > 1 << 20 {
                break;
            }
        }
        if let Err(error) = wr.write_all(&chunk).await {
            let _ = events.send(ConnEvent::WriteFailed { id, error }).await;
            return;
        }
        drop(credits);
    }
    let _ = wr.shutdown().await;
}

/// Send one NOTIFICATION on a connection no session owns (a late duplicate), then close it.
pub(super) fn refuse(mut stream: TcpStream, n: wire::Notification) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            stream.write_all(&wire::encode_notification(&n)),
        )
        .await;
    });
}
