//! DNS authority: answers the configured zones, steered names from the
//! steering snapshot (`steer::select`) and POP availability (`pops`).
//!
//! Layout:
//! - `zone`: compiles the config's zones into lookup tables of hickory-proto
//!   `Record`s and, for the UDP fast path, their precomputed wire form.
//! - `answer`: the pure resolver, `(query, querier, snapshot, pop state) ->
//!   Resolution`.
//! - `packet`: request parsing (header, question, OPT/ECS) and the decisions
//!   (drop, FORMERR/NOTIMP, BADVERS, the querier, ECS echo, UDP size limits).
//! - `response`: the reply writer (answers spliced from precomputed bytes).
//! - `fast`: `fast::respond`, the one query-to-reply function (`packet`,
//!   `answer`, `response`), and our UDP loop (one thread per SO_REUSEPORT
//!   socket), which passes each reply through `rrl` (response rate limiting,
//!   `dns.rrl`) before sending.
//! - `stats`: per-worker counters of requests and answers (read by
//!   `crate::metrics`); `querylog`: the sampled query log.
//! - `tcp`: our TCP server (length-framed, pipelined queries answered in
//!   order through `fast::respond`; connection caps, idle timeout, eviction
//!   of the longest idle, accept back-off). UDP and TCP replies are the same
//!   bytes except where UDP truncates.
//!
//! Owns the DNS sockets (made by `crate::net`) and threads. Reads `steer::Handle` with one `load()`
//! per query (never held across an `.await`).

pub mod answer;
#[cfg(test)]
mod avail_tests;
pub mod fast;
pub mod iana;
mod packet;
pub mod querylog;
mod response;
pub mod rrl;
pub mod stats;
pub mod tcp;
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
    /// Owner name, absolute, e.g. `www.example.net.` (the query name when
    /// explaining one name).
    pub name: String,
    /// The wildcard that answers for `name` (`*.cdn.example.net.`), if any.
    pub wildcard: Option<String>,
    /// `A` or `AAAA`.
    pub rtype: String,
    /// The POP answered with (`None`: no POP has records of this type).
    pub pop: Option<String>,
    /// The addresses the answer carries (the POP's targets that are up).
    pub addresses: Vec<IpAddr>,
    /// The TTL used (`ttl`, or `ttl_failover` when not the first-ranked POP).
    pub ttl: u32,
    /// Why this POP answers (`None`: no POP has records of this type).
    pub reason: Option<crate::pops::Reason>,
    /// POPs ranked before `pop` and why they were passed over (`no records`,
    /// `down`, `unhealthy (http 503 x3)`, `forced`, `drained`,
    /// `drained (load 1.00)`, `shed (load 0.87, f=0.35)`,
    /// `above low watermark (load 0.85)`).
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
            zones: Zones::compile_with_targets(
                cfg,
                &(0..pops.len())
                    .map(|p| pops.targets(p).to_vec())
                    .collect::<Vec<_>>(),
            )?,
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
/// `dns.udp_workers` SO_REUSEPORT sockets (one `dns-udp-N` thread each), TCP
/// through one `tcp::serve` task per address, all under one set of TCP
/// limits (`tcp::Conns`). Binding errors are returned (the daemon does not
/// start half-listening). Every request is counted in `stats` (one block per
/// UDP thread, one for TCP).
pub async fn start(
    auth: Shared,
    cfg: &Config,
    stats: &stats::DnsStats,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), DnsError> {
    if cfg.dns.listen.is_empty() {
        return Ok(());
    }
    let d = &cfg.dns;
    let limits = tcp::Limits::new(d);
    let conns = Arc::new(tcp::Conns::new(limits));
    let mut threads = Vec::new();
    for &addr in &d.listen {
        let bind_err = |source| DnsError::Bind { addr, source };
        threads.extend(fast::bind(addr, d.udp_workers).map_err(bind_err)?);
        let listener = crate::net::tcp_listener(addr).map_err(bind_err)?;
        tasks.spawn(tcp::serve(
            listener,
            auth.clone(),
            conns.clone(),
            stats.tcp(),
        ));
        tracing::info!(%addr, udp_sockets = d.udp_workers, tcp_max_connections = limits.max_connections,
            tcp_max_per_client = limits.max_per_client, "DNS listening (UDP, TCP)");
    }
    for (i, sock) in threads.into_iter().enumerate() {
        let auth = auth.clone();
        let cells = stats.udp_worker();
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || fast::serve(auth, sock, &cells))
            .map_err(DnsError::Thread)?;
    }
    Ok(())
}
