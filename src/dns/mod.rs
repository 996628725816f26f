//! DNS authority: answers the configured zones, steered names from the
//! steering snapshot (`steer::select`) and POP availability (`pops`).
//!
//! Layout:
//! - `zone`: compiles the config's zones into lookup tables of hickory-proto
//!   `Record`s and, for the UDP fast path, their precomputed wire form.
//! - `answer`: the pure resolver, `(query, querier, snapshot, pop state) ->
//!   Resolution`, shared by both request paths.
//! - `fast`: our UDP loop (one thread per SO_REUSEPORT socket): own parsing of
//!   header, question and OPT/ECS, answers spliced from precomputed bytes.
//! - `server`: a hickory-server `RequestHandler` over the same resolver, for
//!   TCP (and UDP with `dns.udp_engine: hickory`).
//!
//! Owns the DNS sockets and threads. Reads `steer::Handle` with one `load()`
//! per query (never held across an `.await`).

pub mod answer;
pub mod fast;
pub mod server;
pub mod zone;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

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

/// Everything needed to answer: compiled zones, the steering handle, POP state.
pub struct Authority {
    pub zones: Zones,
    pub steering: steer::Handle,
    pub pops: Arc<PopState>,
    /// CH TXT `id.server` / `hostname.bind` answer.
    pub identity: String,
    /// Largest UDP response with EDNS.
    pub max_udp_payload: u16,
}

/// What one steered name answers for an address (`sparrowctl explain`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SteeredAnswer {
    /// Owner name, absolute, e.g. `www.example.net.`.
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: &'static str,
    /// The POP answered with (`None`: no POP has records of this type).
    pub pop: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    /// POPs ranked before `pop` and why they were passed over
    /// (`down`, `drained`, `no records`).
    pub skipped: Vec<(String, &'static str)>,
}

impl Authority {
    /// Compile `cfg`'s zones.
    pub fn new(
        cfg: &Config,
        steering: steer::Handle,
        pops: Arc<PopState>,
    ) -> Result<Authority, DnsError> {
        Ok(Authority {
            zones: Zones::compile(cfg)?,
            steering,
            pops,
            identity: cfg.dns.identity.clone().unwrap_or_else(|| cfg.pop.clone()),
            max_udp_payload: cfg.dns.max_udp_payload,
        })
    }

    /// What every steered name answers for `addr`, A and AAAA.
    pub fn explain(&self, addr: IpAddr) -> Vec<SteeredAnswer> {
        let snap = self.steering.load();
        let d = steer::select(addr, &snap);
        self.zones.explain(&d, &self.pops)
    }
}

/// Bind the configured DNS listeners and start serving (stub).
pub async fn start(
    _auth: Arc<Authority>,
    _cfg: &Config,
    _tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), DnsError> {
    Ok(())
}
