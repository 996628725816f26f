//! The config file's schema: the serde structs exactly as parsed
//! (`deny_unknown_fields`, defaults for omitted keys), before any semantic
//! check. [`RawConfig`] is the whole file; `validate` turns it into the
//! checked [`super::Config`]. The zone sections live in `zones`.
//!
//! Talks to nobody (uses `crate::types::Afi`).

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

pub use super::announce_schema::*;
pub use super::health_schema::*;
use super::zones::ZoneConfig;
use crate::types::{Afi, PerFamily};

/// The whole file as deserialized; checked by `validate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// This POP's name (must be one of `pops`).
    pub pop: String,
    #[serde(default)]
    pub pops: Vec<PopConfig>,
    #[serde(default)]
    pub listen: ListenConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Answers before the RIB is ready (see `crate::steer`).
    #[serde(default)]
    pub steering: SteeringConfig,
    /// DNS listeners (see `crate::dns`).
    #[serde(default)]
    pub dns: DnsConfig,
    /// Authoritative zones: static records and steered names.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    /// Optional HTTP redirect listener (see `crate::http`).
    #[serde(default)]
    pub http: HttpConfig,
    /// Seconds the initial export to a POP peer (and its End-of-RIB) waits for
    /// our own upstream tables to converge (RFC 4724's selection deferral).
    #[serde(default = "default_selection_deferral")]
    pub selection_deferral: u16,
    /// Service health checks and the all-down policy (see `crate::pops`).
    #[serde(default)]
    pub health: HealthConfig,
    /// Anycast prefixes originated while healthy (see `crate::announce`).
    #[serde(default)]
    pub announce: Vec<AnnounceConfig>,
    /// The operations endpoint: Prometheus metrics and health (see
    /// `crate::metrics`).
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `metrics`: the HTTP endpoint serving `/metrics`, `/healthz`, `/readyz`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `ADDRESS:PORT` (one, or a list); empty: off.
    #[serde(default, deserialize_with = "one_or_many")]
    pub listen: Vec<std::net::SocketAddr>,
}

/// A value or a list of values.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// `dns`: where and how the authority listens.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `ADDRESS:PORT` (IPv6 as `[ADDRESS]:PORT`), UDP and TCP on each; empty: DNS off.
    #[serde(default)]
    pub listen: Vec<std::net::SocketAddr>,
    /// SO_REUSEPORT UDP sockets per address, one receive thread each.
    #[serde(default = "default_udp_workers")]
    pub udp_workers: usize,
    /// Only `fast` (our UDP loop, the only engine) is accepted; kept so that
    /// configs naming it still load. `hickory` was removed (validation says so).
    pub udp_engine: Option<String>,
    /// Removed with hickory-server (validation says so); TCP is capped by
    /// `tcp_max_connections` and `tcp_max_per_client`.
    pub max_in_flight: Option<u64>,
    /// Seconds a DNS TCP connection may wait for its next whole query (and
    /// for a reply to be taken) before it is closed (`tcp_timeout` before).
    #[serde(default = "default_tcp_idle_timeout", alias = "tcp_timeout")]
    pub tcp_idle_timeout: u16,
    /// Most DNS TCP connections open at once (also at most half the
    /// process's descriptor limit, checked at start). At the cap, the
    /// longest-idle connection is closed to admit a new one.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: usize,
    /// Most DNS TCP connections from one client address; at the cap, that
    /// client's longest-idle connection is closed to admit a new one.
    #[serde(default = "default_tcp_max_per_client")]
    pub tcp_max_per_client: usize,
    /// Largest UDP response with EDNS (our side of RFC 6891 §6.2.5).
    #[serde(default = "default_max_udp_payload")]
    pub max_udp_payload: u16,
    /// `id.server` / `hostname.bind` CH TXT answer (default: the POP name).
    pub identity: Option<String>,
    /// Response rate limiting on the UDP fast path (`dns::rrl`); absent: off.
    #[serde(default)]
    pub rrl: Option<RrlConfig>,
}

/// `dns.rrl`: per-client-prefix response rate limiting (see `crate::dns::rrl`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Responses per second per client prefix (also the burst).
    pub rate: u32,
    /// Every `slip`-th limited response is sent as TC=1; 0: drop them all.
    #[serde(default = "default_rrl_slip")]
    pub slip: u8,
    /// IPv4 clients are grouped by this prefix length.
    #[serde(default = "default_rrl_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    #[serde(default = "default_rrl_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Buckets in the table (fixed; prefixes hashing onto a taken one evict it).
    #[serde(default = "default_rrl_table_size")]
    pub table_size: usize,
    /// Client prefixes never limited (`ADDRESS/LENGTH`).
    #[serde(default)]
    pub exempt: Vec<String>,
}

/// Largest `dns.rrl.rate` (the bucket packs its tokens in 26 bits, see `dns::rrl`).
pub const RRL_MAX_RATE: u32 = 1_000_000;
/// Largest `dns.rrl.slip` (BIND's range too).
pub const RRL_MAX_SLIP: u8 = 10;
/// Largest `dns.rrl.table_size` (512 MiB of 8-byte buckets).
pub const RRL_MAX_TABLE_SIZE: usize = 1 << 26;

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            rate: 20,
            slip: default_rrl_slip(),
            ipv4_prefix: default_rrl_ipv4_prefix(),
            ipv6_prefix: default_rrl_ipv6_prefix(),
            table_size: default_rrl_table_size(),
            exempt: Vec::new(),
        }
    }
}

fn default_rrl_slip() -> u8 {
    1
}
fn default_rrl_ipv4_prefix() -> u8 {
    24
}
fn default_rrl_ipv6_prefix() -> u8 {
    56
}
fn default_rrl_table_size() -> usize {
    393_241
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: Vec::new(),
            udp_workers: default_udp_workers(),
            udp_engine: None,
            max_in_flight: None,
            tcp_idle_timeout: default_tcp_idle_timeout(),
            tcp_max_connections: default_tcp_max_connections(),
            tcp_max_per_client: default_tcp_max_per_client(),
            max_udp_payload: default_max_udp_payload(),
            identity: None,
            rrl: None,
        }
    }
}

fn default_udp_workers() -> usize {
    2
}
/// Knot DNS's `tcp-idle-timeout` default.
fn default_tcp_idle_timeout() -> u16 {
    10
}
fn default_tcp_max_connections() -> usize {
    1000
}
fn default_tcp_max_per_client() -> usize {
    64
}
fn default_max_udp_payload() -> u16 {
    1232
}

/// `http`: the optional redirect listener.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `ADDRESS:PORT` to listen on; empty: off.
    #[serde(default)]
    pub listen: Vec<std::net::SocketAddr>,
    /// Proxies whose X-Forwarded-For is believed (`ADDRESS/LENGTH`).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `steering`: the static map answers come from until the first upstream
/// End-of-RIB of a family.
#[derive(Clone, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SteeringConfig {
    /// POP ranked first for an address no fallback prefix covers (default: `pop`).
    pub default_pop: Option<String>,
    #[serde(default)]
    pub fallback: Vec<FallbackEntry>,
}

/// One `steering.fallback` entry: addresses in `prefix` go to `pop` first.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FallbackEntry {
    /// `ADDRESS/LENGTH`, host bits clear.
    pub prefix: String,
    pub pop: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {
    pub name: String,
    pub asn: u32,
    /// Base URL the HTTP redirector sends clients of this POP to
    /// (`https://x.example.net`; path and query are appended).
    pub url: Option<String>,
    /// With health checks on this POP: the fraction of its targets (answer
    /// addresses) that must be up for the POP to be usable (gdnsd's
    /// `up_thresh`).
    #[serde(default = "default_min_up_fraction")]
    pub min_up_fraction: f64,
    /// Load figure source and shedding watermarks.
    #[serde(default)]
    pub capacity: CapacityConfig,
}

fn default_min_up_fraction() -> f64 {
    0.5
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Accept incoming BGP connections at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_listen_addrs")]
    pub addresses: Vec<IpAddr>,
    #[serde(default = "default_bgp_port")]
    pub port: u16,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            enabled: true,
            addresses: default_listen_addrs(),
            port: 179,
        }
    }
}

/// `admin.socket` when omitted (also `sparrowctl --socket`'s default): in
/// systemd's `RuntimeDirectory=sparrow`.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/sparrow/sparrow.sock";
/// `admin.state_file` when omitted: in systemd's `StateDirectory=sparrow`
/// (the restart marker, `state.restart`, goes beside it).
pub const DEFAULT_STATE_FILE: &str = "/var/lib/sparrow/state.json";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Unix socket for `sparrowctl`; its directory is created when missing.
    #[serde(default = "default_admin_socket")]
    pub socket: String,
    /// Octal file mode as a string, e.g. "0600".
    #[serde(default = "default_admin_mode")]
    pub mode: String,
    /// Operator state (drains, forced states, manual loads), written
    /// atomically on every change and read at start.
    #[serde(default = "default_state_file")]
    pub state_file: String,
}

fn default_state_file() -> String {
    DEFAULT_STATE_FILE.to_string()
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: default_admin_socket(),
            mode: default_admin_mode(),
            state_file: default_state_file(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// tracing filter, e.g. "info" or "sparrow=debug".
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
    /// The sampled query log: one JSON line (`sparrow::querylog`) per this
    /// many DNS queries per UDP worker and for TCP; 0: off.
    #[serde(default)]
    pub query_sample: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: default_log_level(),
            format: LogFormat::Text,
            query_sample: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A router of this POP: full table in; out, only our `announce` prefixes.
    Upstream,
    /// The sparrowd of another POP: its upstream best routes in, ours out.
    Pop,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaxPrefixAction {
    Warn,
    Teardown,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefixLimit {
    pub limit: u32,
    #[serde(default = "default_max_prefix_action")]
    pub action: MaxPrefixAction,
}

/// A peer's max-prefix limits, per family (`get(afi)`).
pub type MaxPrefix = PerFamily<Option<MaxPrefixLimit>>;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: u32,
    pub role: Role,
    /// Only accept connections, never connect.
    #[serde(default)]
    pub passive: bool,
    #[serde(default = "default_bgp_port")]
    pub port: u16,
    pub local_address: Option<IpAddr>,
    /// eBGP multihop TTL (outgoing TTL; 1 = directly connected).
    pub multihop: Option<u8>,
    /// GTSM (RFC 5082) for directly connected peers: send TTL 255, require 255.
    #[serde(default)]
    pub gtsm: bool,
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Initial connect-retry interval in seconds (doubles up to 120 s on failure).
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u16,
    /// TCP-MD5 (RFC 2385) password.
    pub password: Option<String>,
    /// LOCAL_PREF given to routes from this peer (eBGP: always; iBGP: replaces the received one).
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub max_prefix: MaxPrefix,
    /// Graceful restart helper (RFC 4724).
    #[serde(default)]
    pub graceful_restart: bool,
    /// Restart time we announce, and the longest we keep a restarting peer's routes.
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
    #[serde(default = "default_families")]
    pub families: Vec<Afi>,
    /// eBGP: treat-as-withdraw routes whose AS_PATH does not start with the peer's ASN
    /// (RFC 4271 §6.3). Off for route servers.
    #[serde(default = "yes")]
    pub enforce_first_as: bool,
}

impl PeerConfig {
    pub fn is_ebgp(&self, local_asn: u32) -> bool {
        self.remote_asn != local_asn
    }
}

impl<'de> Deserialize<'de> for Afi {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "ipv4" => Ok(Afi::Ipv4),
            "ipv6" => Ok(Afi::Ipv6),
            _ => Err(serde::de::Error::unknown_variant(&s, &["ipv4", "ipv6"])),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_listen_addrs() -> Vec<IpAddr> {
    vec![IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)]
}
fn default_bgp_port() -> u16 {
    179
}
/// Under systemd, `RuntimeDirectory=sparrow` creates `/run/sparrow` for the
/// `sparrow` user; outside it, root or an `admin.socket` the user can create.
fn default_admin_socket() -> String {
    DEFAULT_ADMIN_SOCKET.to_string()
}
fn default_admin_mode() -> String {
    "0600".to_string()
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_max_prefix_action() -> MaxPrefixAction {
    MaxPrefixAction::Warn
}
fn default_hold_time() -> u16 {
    90
}
fn default_connect_retry() -> u16 {
    5
}
fn default_selection_deferral() -> u16 {
    90
}
fn default_restart_time() -> u16 {
    120
}
fn default_families() -> Vec<Afi> {
    vec![Afi::Ipv4, Afi::Ipv6]
}

/// Index in `pops` of the POP named `name`.
pub fn pop_index(pops: &[PopConfig], name: &str) -> Option<usize> {
    pops.iter().position(|p| p.name == name)
}

/// Index in `pops` of the POP whose sparrowd uses `asn`.
pub fn pop_index_by_asn(pops: &[PopConfig], asn: u32) -> Option<usize> {
    pops.iter().position(|p| p.asn == asn)
}
