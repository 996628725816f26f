//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): our own small tokio server.
//! Each message is framed by a 2-byte length; every query is answered by
//! exactly the code UDP uses (`fast::respond`: `packet::parse`/`decide`,
//! `answer::resolve`, `response::write`) with the TCP size limit, so a TCP
//! reply is byte for byte the UDP one except where UDP truncates.
//!
//! Per connection one task reads a query, answers it and writes the reply
//! before it reads the next, so pipelined queries are answered in order. A
//! message that gets no answer (a response, or under 12 bytes) closes the
//! connection.
//!
//! Limits ([`Limits`], from `dns.tcp_*`), as Knot and BIND do:
//! - a connection waits at most `tcp_idle_timeout` for each whole query and
//!   for each reply to be taken, else it is closed (a slow sender or a
//!   client that does not read holds it no longer);
//! - at most `tcp_max_connections` connections at once (over every listener;
//!   also at most half the descriptor limit, RLIMIT_NOFILE, checked at
//!   start), and `tcp_max_per_client` from one client address: at either cap
//!   the longest-idle connection (of that client, for the per-client cap) is
//!   closed to admit the new one ([`Conns`]);
//! - an accept error (EMFILE/ENFILE: out of descriptors) closes the
//!   longest-idle connection and pauses accepting, 10 ms doubling to 1 s
//!   while the errors last, so the loop never spins.
//!
//! Talks to `fast` (answers), `crate::net` (the canonical client address) and
//! the `dns::Shared` authority (one `load()` per query, never held across an
//! `.await`). Its listeners come from `net::tcp_listener` (`dns::start`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::fast::respond;
use super::stats::{Cells, DropReason, Proto};
use crate::config::DnsConfig;

/// First pause after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts while errors last.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Least time between two warnings about failing accepts.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The TCP limits in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub idle_timeout: Duration,
}

impl Limits {
    /// `dns.tcp_*`, with `tcp_max_connections` lowered to half the soft
    /// RLIMIT_NOFILE (Knot's default for `tcp-max-clients`) when that is
    /// smaller, so descriptors remain for UDP, BGP and the admin socket.
    pub fn new(d: &DnsConfig) -> Limits {
        let mut max = d.tcp_max_connections;
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            let half = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1);
            if half < max {
                info!(
                    configured = max,
                    nofile = soft,
                    used = half,
                    "dns.tcp_max_connections lowered to half the descriptor limit"
                );
                max = half;
            }
        }
        Limits {
            max_connections: max,
            max_per_client: d.tcp_max_per_client,
            idle_timeout: Duration::from_secs(d.tcp_idle_timeout.into()),
        }
    }
}

/// The open connections of every DNS TCP listener, with their client and
/// last activity: admission under the caps, eviction of the longest idle.
pub struct Conns {
    limits: Limits,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

struct Entry {
    client: IpAddr,
    /// Accepted, or last query read or reply written.
    last: Instant,
    /// Told when the connection is evicted.
    close: Arc<Notify>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.open.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&e.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&e.client);
            }
        }
        Some(e)
    }

    /// Close the longest-idle connection of those `which` accepts; `false`
    /// if there is none.
    fn evict(&mut self, which: impl Fn(&Entry) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, e)| which(e))
            .min_by_key(|(_, e)| e.last)
            .map(|(&id, _)| id);
        match victim.and_then(|id| self.remove(id)) {
            Some(e) => {
                e.close.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Conns {
    pub fn new(limits: Limits) -> Conns {
        Conns {
            limits,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit a connection from `client`, closing the longest-idle one of
    /// that client at the per-client cap, and the longest-idle one overall
    /// at the global cap. Its id and the notice it gets when evicted.
    fn admit(&self, client: IpAddr) -> (u64, Arc<Notify>) {
        let mut t = self.table();
        if t.per_client.get(&client).copied().unwrap_or(0) >= self.limits.max_per_client {
            t.evict(|e| e.client == client);
        }
        if t.open.len() >= self.limits.max_connections {
            t.evict(|_| true);
        }
        let id = t.next_id;
        t.next_id += 1;
        let close = Arc::new(Notify::new());
        t.open.insert(
            id,
            Entry {
                client,
                last: Instant::now(),
                close: close.clone(),
            },
        );
        *t.per_client.entry(client).or_insert(0) += 1;
        (id, close)
    }

    /// Mark connection `id` active now.
    fn touch(&self, id: u64) {
        if let Some(e) = self.table().open.get_mut(&id) {
            e.last = Instant::now();
        }
    }

    /// Close the longest-idle connection (to free a descriptor).
    fn evict_one(&self) -> bool {
        self.table().evict(|_| true)
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.table().open.len()
    }

    /// No connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes a connection from [`Conns`] when its task ends (however it ends).
struct Registered<'a> {
    conns: &'a Conns,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.conns.table().remove(self.id);
    }
}

/// Accept on `listener` until the task is aborted (its connections end with
/// it), answering with `auth` under `conns`' limits, counting in `cells`
/// (the TCP block of `stats::DnsStats`).
pub async fn serve(
    listener: TcpListener,
    auth: super::Shared,
    conns: Arc<Conns>,
    cells: Arc<Cells>,
) {
    let mut tasks = JoinSet::new();
    let mut backoff = BACKOFF_MIN;
    let mut warned: Option<Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                let client = crate::net::canonical_ip(peer.ip());
                let (id, close) = conns.admit(client);
                let _ = stream.set_nodelay(true);
                tasks.spawn(connection(
                    stream,
                    client,
                    auth.clone(),
                    conns.clone(),
                    id,
                    close,
                    cells.clone(),
                ));
            }
            Err(e) => {
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                // At most one warning per LOG_EVERY (errors may alternate with accepts).
                if warned.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    warned = Some(Instant::now());
                    warn!(error = %e, open = conns.len(), "DNS TCP accept failed; pausing accepts");
                } else {
                    debug!(error = %e, pause = ?backoff, "DNS TCP accept failed again");
                }
                if out_of_fds {
                    conns.evict_one();
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Read one length-framed message into `buf`; `false` at a clean end of
/// stream before it, or on a zero length.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let n = u16::from_be_bytes(len) as usize;
    if n == 0 {
        return Ok(false);
    }
    buf.resize(n, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

/// Serve one connection: query, reply, next query, until the client closes,
/// a limit closes it, or it is evicted.
async fn connection(
    stream: TcpStream,
    client: IpAddr,
    auth: super::Shared,
    conns: Arc<Conns>,
    id: u64,
    close: Arc<Notify>,
    cells: Arc<Cells>,
) {
    let _registered = Registered { conns: &conns, id };
    let idle = conns.limits.idle_timeout;
    let mut s = BufReader::new(stream);
    let (mut query, mut reply, mut frame) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let read = tokio::select! {
            _ = close.notified() => return,
            r = tokio::time::timeout(idle, read_message(&mut s, &mut query)) => r,
        };
        if !matches!(read, Ok(Ok(true))) {
            return;
        }
        conns.touch(id);
        let t = std::time::Instant::now();
        let a = auth.load();
        let Some(o) = respond(&a, &query, client, false, &mut reply) else {
            cells.dropped(DropReason::Invalid);
            return;
        };
        let ns = t.elapsed().as_nanos() as u64;
        cells.record(client.is_ipv6(), &o, ns);
        if cells.sampled() {
            super::querylog::write(&query, client, Proto::Tcp, &o, ns, a.zones.pop_names());
        }
        drop(a);
        frame.clear();
        frame.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        frame.extend_from_slice(&reply);
        let wrote = tokio::select! {
            _ = close.notified() => return,
            w = tokio::time::timeout(idle, s.write_all(&frame)) => w,
        };
        if !matches!(wrote, Ok(Ok(()))) {
            return;
        }
        conns.touch(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Authority;
    use crate::pops::PopState;
    use crate::testutil::TestConfig;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::net::SocketAddr;
    use tokio::net::TcpSocket;

    fn shared() -> super::super::Shared {
        let cfg = TestConfig::yaml(crate::dns::zone::tests::CFG).build();
        let pops = Arc::new(PopState::new(&cfg, None));
        let a = Authority::new(&cfg, crate::steer::handle(&cfg), pops).unwrap();
        Arc::new(arc_swap::ArcSwap::from_pointee(a))
    }

    fn query(id: u16, name: &str) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.set_edns(Edns::new());
        m.to_vec().unwrap()
    }

    fn framed(q: &[u8]) -> Vec<u8> {
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(q);
        f
    }

    /// A server on 127.0.0.1 with these limits; its address and connections.
    async fn server(limits: Limits) -> (SocketAddr, Arc<Conns>, super::super::Shared) {
        let l = crate::net::tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let at = l.local_addr().unwrap();
        let conns = Arc::new(Conns::new(limits));
        let auth = shared();
        let cells = super::super::stats::DnsStats::new(0, 0).tcp();
        tokio::spawn(serve(l, auth.clone(), conns.clone(), cells));
        (at, conns, auth)
    }

    fn limits(max_connections: usize, max_per_client: usize, idle_ms: u64) -> Limits {
        Limits {
            max_connections,
            max_per_client,
            idle_timeout: Duration::from_millis(idle_ms),
        }
    }

    /// A client connected from `from` (a loopback address).
    async fn connect(at: SocketAddr, from: &str) -> TcpStream {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
        s.connect(at).await.unwrap()
    }

    async fn read_reply(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), read_message(s, &mut buf)).await;
        matches!(r, Ok(Ok(true))).then_some(buf)
    }

    /// One query and its reply's ID (`None`: the connection was closed).
    async fn ask(s: &mut TcpStream, id: u16) -> Option<u16> {
        s.write_all(&framed(&query(id, "www.example.net.")))
            .await
            .ok()?;
        read_reply(s)
            .await
            .map(|r| u16::from_be_bytes([r[0], r[1]]))
    }

    /// The connection is closed by the server (EOF or reset) within 5 s.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn pipelined_queries_answered_in_order_and_as_udp_would() {
        let (at, _, auth) = server(limits(10, 10, 5000)).await;
        let mut s = connect(at, "127.0.0.1").await;
        let names = ["www.example.net.", "nope.example.net.", "mail.example.net."];
        let qs: Vec<Vec<u8>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| query(100 + i as u16, n))
            .collect();
        // All three in one write, the last split over two segments.
        let mut all: Vec<u8> = qs.iter().flat_map(|q| framed(q)).collect();
        let tail = all.split_off(all.len() - 5);
        s.write_all(&all).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(&tail).await.unwrap();
        for q in &qs {
            let got = read_reply(&mut s).await.expect("a reply");
            let mut want = Vec::new();
            assert!(respond(
                &auth.load(),
                q,
                "127.0.0.1".parse().unwrap(),
                false,
                &mut want
            )
            .is_some());
            assert_eq!(
                got, want,
                "the same bytes as the shared responder, in order"
            );
        }
        // A response (QR set) gets no answer: the connection is closed.
        let mut r = query(7, "www.example.net.");
        r[2] |= 0x80;
        s.write_all(&framed(&r)).await.unwrap();
        assert!(closed(&mut s).await);
    }

    #[tokio::test]
    async fn idle_connection_is_closed() {
        let (at, conns, _) = server(limits(10, 10, 200)).await;
        let mut s = connect(at, "127.0.0.1").await;
        assert_eq!(ask(&mut s, 1).await, Some(1));
        let t = Instant::now();
        assert!(closed(&mut s).await);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        // A half-sent query does not keep it open either.
        let mut s = connect(at, "127.0.0.1").await;
        s.write_all(&[0, 40, 1, 2]).await.unwrap();
        assert!(closed(&mut s).await);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !conns.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(conns.is_empty());
    }

    #[tokio::test]
    async fn per_client_cap_evicts_that_clients_longest_idle() {
        let (at, _, _) = server(limits(10, 2, 5000)).await;
        let mut a = connect(at, "127.0.0.1").await;
        assert_eq!(ask(&mut a, 1).await, Some(1));
        let mut b = connect(at, "127.0.0.1").await;
        assert_eq!(ask(&mut b, 2).await, Some(2));
        let mut other = connect(at, "127.0.0.2").await;
        assert_eq!(ask(&mut other, 3).await, Some(3));
        // a is now the more recent of 127.0.0.1's two.
        assert_eq!(ask(&mut a, 4).await, Some(4));
        let mut c = connect(at, "127.0.0.1").await;
        assert_eq!(ask(&mut c, 5).await, Some(5));
        assert!(closed(&mut b).await, "b was 127.0.0.1's longest idle");
        assert_eq!(ask(&mut a, 6).await, Some(6));
        assert_eq!(
            ask(&mut other, 7).await,
            Some(7),
            "another client is not touched"
        );
    }

    #[tokio::test]
    async fn global_cap_evicts_the_longest_idle() {
        let (at, conns, _) = server(limits(3, 10, 5000)).await;
        let mut s: Vec<TcpStream> = Vec::new();
        for (i, from) in ["127.0.0.1", "127.0.0.2", "127.0.0.3"].iter().enumerate() {
            let mut c = connect(at, from).await;
            assert_eq!(ask(&mut c, i as u16).await, Some(i as u16));
            s.push(c);
        }
        // Touch the first: the second (127.0.0.2) is now the longest idle.
        assert_eq!(ask(&mut s[0], 10).await, Some(10));
        let mut new = connect(at, "127.0.0.4").await;
        assert_eq!(ask(&mut new, 11).await, Some(11));
        assert!(closed(&mut s[1]).await);
        assert_eq!(ask(&mut s[0], 12).await, Some(12));
        assert_eq!(ask(&mut s[2], 13).await, Some(13));
        assert_eq!(conns.len(), 3);
    }

    #[test]
    fn max_connections_follows_the_descriptor_limit() {
        let mut d = DnsConfig {
            tcp_max_connections: usize::MAX,
            ..DnsConfig::default()
        };
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let l = Limits::new(&d);
        assert_eq!(
            l.max_connections,
            usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1)
        );
        d.tcp_max_connections = 1;
        assert_eq!(Limits::new(&d).max_connections, 1);
        assert_eq!(Limits::new(&d).idle_timeout, Duration::from_secs(10));
    }
}
