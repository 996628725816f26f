//! DNS authority: answers the configured zones, steered names from the
//! steering snapshot (`steer::select`) and POP availability (`pops`).
//!
//! Layout:
//! - `zone`: compiles the config's zones into lookup tables of hickory-proto
//!   `Record`s and, for the UDP fast path, their precomputed wire form.
//! - `answer`: the pure resolver, `(query, querier, snapshot, pop state) ->
//!   Resolution`, shared by both request paths.
//! - `packet`: request parsing (header, question, OPT/ECS) and the decisions
//!   both request paths share (drop, FORMERR/NOTIMP, BADVERS, the querier,
//!   ECS echo, UDP size limits).
//! - `response`: the fast path's reply writer (answers spliced from
//!   precomputed bytes).
//! - `fast`: our UDP loop (one thread per SO_REUSEPORT socket), calling
//!   `packet`, `answer` and `response`, then `rrl` (response rate limiting,
//!   `dns.rrl`) on each reply.
//! - `server`: a hickory-server `RequestHandler` over the same `packet`
//!   decisions and resolver, for TCP (and UDP with `dns.udp_engine: hickory`).
//!
//! Owns the DNS sockets (made by `crate::net`) and threads. Reads `steer::Handle` with one `load()`
//! per query (never held across an `.await`).

pub mod answer;
pub mod fast;
pub mod iana;
mod packet;
mod response;
pub mod rrl;
pub mod server;
pub mod zone;

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::pops::PopState;
use crate::steer;

pub use answer::{Querier, Resolution};
pub use zone::Zones;

/// Errors starting the DNS service.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("zones[{zone}]{key}: {msg}")]
    Zone {
        zone: usize,
        key: String,
        msg: String,
    },
    #[error("DNS listener {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("DNS thread: {0}")]
    Thread(std::io::Error),
}

/// The current authority, replaced whole on a config reload (`crate::reload`).
pub type Shared = Arc<arc_swap::ArcSwap<Authority>>;

/// Everything needed to answer: compiled zones, the steering handle, POP state.
pub struct Authority {
    pub zones: Zones,
    pub steering: steer::Handle,
    pub pops: Arc<PopState>,
    /// Largest UDP response with EDNS.
    pub max_udp_payload: u16,
    /// CH TXT sets for `id.server.` and `hostname.bind.`.
    pub ch_id: zone::RrSet,
    pub ch_hostname: zone::RrSet,
    /// Response rate limiting for the UDP fast path (`dns.rrl`; `None`: off).
    pub rrl: Option<rrl::Rrl>,
}

/// What one steered name answers for an address (`sparrowctl explain`; the
/// admin socket sends it as it is, in `admin::reply::ExplainReply`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SteeredAnswer {
    /// Owner name, absolute, e.g. `www.example.net.`.
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: String,
    /// The POP answered with (`None`: no POP has records of this type).
    pub pop: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    /// POPs ranked before `pop` and why they were passed over
    /// (`down`, `drained`, `no records`).
    pub skipped: Vec<(String, String)>,
}

impl Authority {
    /// Compile `cfg`'s zones.
    pub fn new(
        cfg: &Config,
        steering: steer::Handle,
        pops: Arc<PopState>,
    ) -> Result<Authority, DnsError> {
        let identity = cfg.dns.identity.clone().unwrap_or_else(|| cfg.pop.clone());
        Ok(Authority {
            zones: Zones::compile(cfg)?,
            steering,
            pops,
            ch_id: zone::chaos_txt("id.server.", &identity),
            ch_hostname: zone::chaos_txt("hostname.bind.", &identity),
            max_udp_payload: cfg.dns.max_udp_payload,
            rrl: cfg.dns.rrl.as_ref().map(rrl::Rrl::new),
        })
    }
}

/// Bind every `dns.listen` address (UDP and TCP) and start answering: UDP on
/// `dns.udp_workers` SO_REUSEPORT sockets (fast path threads, or hickory-server
/// tasks with `udp_engine: hickory`), TCP through hickory-server. Binding
/// errors are returned (the daemon does not start half-listening).
pub async fn start(
    auth: Shared,
    cfg: &Config,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), DnsError> {
    use crate::config::UdpEngine;
    if cfg.dns.listen.is_empty() {
        return Ok(());
    }
    let d = &cfg.dns;
    let mut server = hickory_server::Server::new(server::Handler {
        auth: auth.clone(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(d.max_in_flight)),
    });
    let mut threads = Vec::new();
    for &addr in &d.listen {
        let bind_err = |source| DnsError::Bind { addr, source };
        let udp = fast::bind(addr, d.udp_workers).map_err(bind_err)?;
        match d.udp_engine {
            UdpEngine::Fast => threads.extend(udp),
            UdpEngine::Hickory => {
                for s in udp {
                    s.set_nonblocking(true).map_err(bind_err)?;
                    server.register_socket(tokio::net::UdpSocket::from_std(s).map_err(bind_err)?);
                }
            }
        }
        let tcp = crate::net::tcp_listener(addr).map_err(bind_err)?;
        server.register_listener(
            tcp,
            std::time::Duration::from_secs(d.tcp_timeout.into()),
            64,
        );
        tracing::info!(%addr, udp_sockets = d.udp_workers, engine = ?d.udp_engine, "DNS listening (UDP, TCP)");
    }
    for (i, sock) in threads.into_iter().enumerate() {
        let auth = auth.clone();
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || fast::serve(auth, sock))
            .map_err(DnsError::Thread)?;
    }
    tasks.spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::error!(error = %e, "DNS server stopped");
        }
    });
    Ok(())
}
