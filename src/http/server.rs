//! HTTP sockets and connections: binds listeners (`net::tcp_listener`), one
//! accept loop per address, and one task per connection that reads one
//! request head (bounded in size and time), answers through a [`Handler`],
//! writes the response and closes lingering. Two handlers use it: the
//! redirector (`http.listen`, `redirect::Ctx`, started by [`start`]) and
//! the operations endpoint (`metrics.listen`, `crate::metrics`).
//!
//! Owns the listening sockets and connection tasks; the redirector reads
//! `steer::Handle` and `PopState` through the shared `redirect::Ctx`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::client::trusted_prefixes;
use super::redirect::{header_safe, respond, Ctx};
use super::request::{head_end, parse_request, Request, RequestError};
use super::response::{http_date, Response, Status};
use super::stats::HttpStats;
use crate::config::Config;
use crate::pops::PopState;
use crate::steer;

/// Connections served at once over all listeners; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send the whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and header fields) accepted.
pub const MAX_HEAD: usize = 8192;
/// Time to write a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the response, unread input (a request body) is drained for at most
/// this long / this many bytes before closing, so the close does not turn
/// into a reset that could destroy the response in flight.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// What answers the requests of a listener.
pub trait Handler: Send + Sync + 'static {
    /// The response to `req` from `peer` (the TCP source).
    fn handle<'a>(
        &'a self,
        req: &'a Request<'a>,
        peer: IpAddr,
    ) -> impl std::future::Future<Output = Response> + Send + 'a;
    /// Told the status of every response sent (errors of the connection
    /// loop included), for counters.
    fn sent(&self, _status: Status) {}
}

impl Handler for Ctx {
    async fn handle<'a>(&'a self, req: &'a Request<'a>, peer: IpAddr) -> Response {
        respond(self, req, peer)
    }
    fn sent(&self, status: Status) {
        self.stats.response(status);
    }
}

/// Bind every address in `addrs` (all or none) and spawn one accept loop
/// per address into `tasks`, answering through `handler`; `what` names the
/// listener in the log.
pub fn serve_on<H: Handler>(
    addrs: &[std::net::SocketAddr],
    handler: Arc<H>,
    what: &'static str,
    tasks: &mut JoinSet<()>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let l = crate::net::tcp_listener(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        listeners.push((addr, l));
    }
    for (addr, l) in listeners {
        info!(%addr, "{what} listening");
        tasks.spawn(accept_loop(l, handler.clone(), limit.clone()));
    }
    Ok(())
}

/// Bind `cfg.http.listen` and spawn the redirector's listener tasks into
/// `tasks`; responses are counted in `stats`.
pub async fn start(
    cfg: Arc<Config>,
    steering: steer::Handle,
    pops: Arc<PopState>,
    stats: Arc<HttpStats>,
    tasks: &mut JoinSet<()>,
) -> std::io::Result<()> {
    if cfg.http.listen.is_empty() {
        return Ok(());
    }
    let urls = cfg
        .pops
        .iter()
        .map(|p| {
            p.url.clone().filter(|u| {
                let ok = header_safe(u);
                if !ok {
                    warn!(pop = %p.name, url = %u, "HTTP: url is not printable ASCII; not redirecting to this POP");
                }
                ok
            })
        })
        .collect();
    let ctx = Arc::new(Ctx {
        steering,
        pops,
        urls,
        names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
        proxies: trusted_prefixes(&cfg.http.trusted_proxies),
        all_down: cfg.health.all_down,
        stats,
    });
    info!(trusted_proxies = ctx.proxies.len(), "HTTP redirector");
    serve_on(&cfg.http.listen, ctx, "HTTP redirector", tasks)
}

/// Accept forever; connection tasks live in a set owned here, so aborting
/// this task ends them too.
async fn accept_loop<H: Handler>(listener: TcpListener, ctx: Arc<H>, limit: Arc<Semaphore>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let ctx = ctx.clone();
                        conns.spawn(async move {
                            if let Err(e) = serve(stream, peer.ip(), &*ctx).await {
                                debug!(%peer, error = %e, "HTTP connection");
                            }
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        debug!(%peer, "HTTP: connection limit reached; closing");
                        drop(stream);
                    }
                },
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "HTTP accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One connection: read one request head, answer, close.
async fn serve<H: Handler>(mut stream: TcpStream, peer: IpAddr, ctx: &H) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let resp = loop {
        if let Some(end) = head_end(&buf[..len]) {
            break match parse_request(&buf[..end]) {
                Ok(req) => {
                    let mut r = ctx.handle(&req, peer).await;
                    r.head_only |= req.method == "HEAD";
                    r
                }
                Err(e) => {
                    debug!(%peer, error = %e, "HTTP: bad request");
                    Response::error(e.status())
                }
            };
        }
        if len == MAX_HEAD {
            let e = if buf.contains(&b'\n') {
                RequestError::HeadTooLarge
            } else {
                RequestError::UriTooLong
            };
            debug!(%peer, error = %e, "HTTP: bad request");
            break Response::error(e.status());
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[len..])).await {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => len += n,
            Ok(Err(e)) => return Err(e),
            Err(_) if len == 0 => return Ok(()),
            Err(_) => break Response::error(Status::Timeout),
        }
    };
    ctx.sent(resp.status);
    let bytes = resp.to_bytes(&http_date(SystemTime::now()));
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    // Lingering close: end our side, then read what the client still sends
    // (bounded) so that closing does not reset the connection under the response.
    stream.shutdown().await?;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}
