//! The BGP client side of one replayed session: connect from the peer's
//! loopback source address, exchange OPENs (library encoder/decoder), send
//! the pre-encoded UPDATEs and End-of-RIB, then keep the session alive until
//! told to stop, the receiver ends it, or its hold timer expires. Talks TCP to
//! the receiver; reads [`crate::plan`] and [`crate::encode`]; reports through
//! [`crate::report`] and to [`crate::replay`] over channels.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde_json::json;
use sparrow::types::Afi;
use sparrow::wire::{self, Capabilities, Notification, Open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::encode::{encode_groups, Encoded};
use crate::plan::PeerPlan;
use crate::report::{emit, now_t};

/// Settings every session shares (from the command line).
pub struct Shared {
    /// The receiver.
    pub target: SocketAddr,
    /// Hold time offered in our OPENs.
    pub hold_time: u16,
    /// Offer the extended-message capability.
    pub extended_message: bool,
    /// How long to keep trying to establish.
    pub connect_timeout: Duration,
}

/// Why a session task ended.
#[derive(Debug)]
pub enum PeerError {
    Notification(Notification),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for PeerError {
    fn from(e: anyhow::Error) -> Self {
        PeerError::Other(e)
    }
}

impl From<std::io::Error> for PeerError {
    fn from(e: std::io::Error) -> Self {
        PeerError::Other(e.into())
    }
}

/// Read one BGP message: (type, body).
///
/// Deliberately more lenient than the library's [`wire::check_header`]: only
/// the marker and a length of at least a header are checked, so a message of a
/// type we do not know (or shorter than its type's minimum) is read and
/// ignored by [`read_loop`] instead of ending the session. The receiver's
/// validation is what is under test, not ours.
async fn read_msg<R: AsyncReadExt + Unpin>(rd: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut hdr = [0u8; wire::HEADER_LEN];
    rd.read_exact(&mut hdr).await?;
    if hdr[..16].iter().any(|&b| b != 0xff) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad BGP marker from the receiver",
        ));
    }
    let len = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
    if len < wire::HEADER_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad BGP message length {len} from the receiver"),
        ));
    }
    let mut body = vec![0u8; len - wire::HEADER_LEN];
    rd.read_exact(&mut body).await?;
    Ok((hdr[18], body))
}

async fn connect_once(bind: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(SocketAddr::new(bind, 0))?;
    let s = sock.connect(target).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// An established session: the halves and what was negotiated.
struct Established {
    rd: tokio::io::BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    as4: bool,
    max_len: usize,
    afis: [bool; 2],
    hold: u16,
}

/// Connect, exchange OPENs and KEEPALIVEs. Connection failures before
/// Established are retried until `connect_timeout`; a NOTIFICATION is final.
async fn establish(shared: &Shared, peer: &PeerPlan) -> Result<Established, PeerError> {
    let deadline = Instant::now() + shared.connect_timeout;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(
            left.max(Duration::from_millis(1)),
            try_establish(shared, peer),
        )
        .await
        .unwrap_or_else(|_| Err(PeerError::Other(anyhow!("timed out establishing"))));
        match r {
            Ok(e) => return Ok(e),
            Err(PeerError::Notification(n)) => return Err(PeerError::Notification(n)),
            Err(PeerError::Other(e)) => {
                if Instant::now() + Duration::from_millis(250) >= deadline || attempt >= 10_000 {
                    return Err(PeerError::Other(e.context(format!(
                        "no session from {} to {} after {attempt} attempts",
                        peer.bind, shared.target
                    ))));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

async fn try_establish(shared: &Shared, peer: &PeerPlan) -> Result<Established, PeerError> {
    let stream = connect_once(peer.bind, shared.target)
        .await
        .with_context(|| format!("connecting {} -> {}", peer.bind, shared.target))?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(1 << 16, rd);
    let open = Open {
        asn: peer.asn,
        my_as: u16::try_from(peer.asn).unwrap_or(wire::AS_TRANS as u16),
        hold_time: shared.hold_time,
        router_id: peer.router_id,
        caps: Capabilities {
            multiprotocol: vec![Afi::Ipv4, Afi::Ipv6],
            as4: Some(peer.asn),
            route_refresh: true,
            extended_message: shared.extended_message,
            graceful_restart: None,
            other: Vec::new(),
        },
    };
    wr.write_all(&wire::encode_open(&open)).await?;
    let (ty, body) = read_msg(&mut rd).await?;
    let theirs = match ty {
        wire::msg::OPEN => {
            wire::decode_open(&body).map_err(|e| anyhow!("receiver's OPEN does not decode: {e}"))?
        }
        wire::msg::NOTIFICATION => {
            return Err(PeerError::Notification(wire::decode_notification(&body)))
        }
        t => return Err(anyhow!("expected OPEN, got message type {t}").into()),
    };
    wr.write_all(&wire::encode_keepalive()).await?;
    // OpenConfirm: the receiver's KEEPALIVE (an UPDATE also proves Established).
    let (ty, body) = read_msg(&mut rd).await?;
    match ty {
        wire::msg::KEEPALIVE | wire::msg::UPDATE => {}
        wire::msg::NOTIFICATION => {
            return Err(PeerError::Notification(wire::decode_notification(&body)))
        }
        t => return Err(anyhow!("expected KEEPALIVE, got message type {t}").into()),
    }
    let mp = &theirs.caps.multiprotocol;
    let afis = if mp.is_empty() {
        [true, false]
    } else {
        [mp.contains(&Afi::Ipv4), mp.contains(&Afi::Ipv6)]
    };
    Ok(Established {
        rd,
        wr,
        as4: theirs.caps.as4.is_some(),
        max_len: if shared.extended_message && theirs.caps.extended_message {
            wire::MAX_EXT_MSG_LEN
        } else {
            wire::MAX_MSG_LEN
        },
        afis,
        hold: shared.hold_time.min(theirs.hold_time),
    })
}

/// How the reading side of a session ended.
#[derive(Debug)]
enum ReadEnd {
    Notification(Notification),
    HoldExpired,
    Io(std::io::Error),
}

/// Read and discard everything the receiver sends, until it closes, sends a
/// NOTIFICATION, or stays silent past the hold time.
async fn read_loop(mut rd: tokio::io::BufReader<OwnedReadHalf>, hold: u16) -> ReadEnd {
    loop {
        let r = if hold == 0 {
            read_msg(&mut rd).await
        } else {
            match tokio::time::timeout(Duration::from_secs(hold.into()), read_msg(&mut rd)).await {
                Ok(r) => r,
                Err(_) => return ReadEnd::HoldExpired,
            }
        };
        match r {
            Ok((wire::msg::NOTIFICATION, body)) => {
                return ReadEnd::Notification(wire::decode_notification(&body))
            }
            Ok(_) => {}
            Err(e) => return ReadEnd::Io(e),
        }
    }
}

fn read_end_error(r: Result<ReadEnd, tokio::task::JoinError>) -> PeerError {
    match r {
        Ok(ReadEnd::Notification(n)) => PeerError::Notification(n),
        Ok(ReadEnd::HoldExpired) => PeerError::Other(anyhow!("hold timer expired")),
        Ok(ReadEnd::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            PeerError::Other(anyhow!("receiver closed the connection"))
        }
        Ok(ReadEnd::Io(e)) => PeerError::Other(anyhow!("reading from receiver: {e}")),
        Err(e) => PeerError::Other(anyhow!("reader task: {e}")),
    }
}

async fn send_cease(wr: &mut OwnedWriteHalf) {
    let n = Notification {
        code: wire::code::CEASE,
        subcode: wire::cease::ADMIN_SHUTDOWN,
        data: Vec::new(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = wr.write_all(&wire::encode_notification(&n)).await;
        let _ = wr.shutdown().await;
    })
    .await;
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&v| v).await;
}

/// One session: establish, send everything, End-of-RIB, keep alive until stopped.
pub async fn run_peer(
    shared: Arc<Shared>,
    peer: Arc<PeerPlan>,
    pre: Arc<Encoded>,
    sent_tx: mpsc::UnboundedSender<usize>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PeerError> {
    let est = tokio::select! {
        r = establish(&shared, &peer) => r?,
        _ = stopped(&mut stop) => return Ok(()),
    };
    let Established {
        rd,
        mut wr,
        as4,
        max_len,
        afis,
        hold,
    } = est;
    emit(json!({
        "event": "established",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "asn": peer.asn,
        "bind": peer.bind.to_string(),
        "as4": as4,
        "max_len": max_len,
        "ipv6": afis[1],
        "hold": hold,
        "t": now_t(),
    }));
    if !afis[1] && peer.has[1] {
        emit(json!({"event": "warning", "peer": peer.index,
            "msg": "receiver did not negotiate IPv6 unicast: IPv6 routes not sent"}));
    }
    let mut reader = tokio::spawn(read_loop(rd, hold));
    let enc = if pre.as4 == as4 && pre.max_len == max_len && pre.afis == afis {
        pre
    } else {
        let p = peer.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || encode_groups(&p.groups, as4, max_len, afis))
                .await
                .map_err(|e| anyhow!("encoder task: {e}"))??,
        )
    };
    // Families whose End-of-RIB we send: every negotiated one.
    let send = async {
        wr.write_all(&enc.buf).await?;
        for afi in Afi::ALL {
            if afis[afi.index()] {
                wr.write_all(&wire::encode_end_of_rib(afi)).await?;
            }
        }
        wr.flush().await
    };
    tokio::select! {
        r = send => r.context("sending UPDATEs")?,
        r = &mut reader => return Err(read_end_error(r)),
        _ = stopped(&mut stop) => {
            reader.abort();
            send_cease(&mut wr).await;
            return Ok(());
        }
    }
    emit(json!({
        "event": "sent",
        "peer": peer.index,
        "peer_ip": peer.ip.to_string(),
        "updates": enc.updates,
        "prefixes": enc.prefixes,
        "bytes": enc.buf.len(),
        "t": now_t(),
    }));
    let _ = sent_tx.send(peer.index);
    let keepalive = wire::encode_keepalive();
    let every = Duration::from_secs(u64::from((hold / 3).max(1)));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = ticker.tick(), if hold > 0 => {
                wr.write_all(&keepalive).await.context("sending KEEPALIVE")?;
            }
            r = &mut reader => return Err(read_end_error(r)),
            _ = stopped(&mut stop) => {
                reader.abort();
                send_cease(&mut wr).await;
                return Ok(());
            }
        }
    }
}
