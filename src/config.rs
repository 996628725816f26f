//! Configuration: one YAML file, parsed with unknown keys rejected, then
//! validated; every error names file, line and key.
//!
//! Owns the `Config` value handed (as `Arc<Config>`) to every task at start.
//! Talks to nobody.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::types::Afi;

/// The embedded default config: no peers, admin socket under /tmp, works anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.yaml");

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
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
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {
    pub name: String,
    pub asn: u32,
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

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_socket")]
    pub socket: String,
    /// Octal file mode as a string, e.g. "0600".
    #[serde(default = "default_admin_mode")]
    pub mode: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: default_admin_socket(),
            mode: default_admin_mode(),
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
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: default_log_level(),
            format: LogFormat::Text,
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
    /// A router of this POP: full table in, nothing out.
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

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefix {
    #[serde(default)]
    pub ipv4: Option<MaxPrefixLimit>,
    #[serde(default)]
    pub ipv6: Option<MaxPrefixLimit>,
}

impl MaxPrefix {
    pub fn get(&self, afi: Afi) -> Option<&MaxPrefixLimit> {
        match afi {
            Afi::Ipv4 => self.ipv4.as_ref(),
            Afi::Ipv6 => self.ipv6.as_ref(),
        }
    }
}

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
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    /// eBGP multihop TTL (outgoing TTL; 1 = directly connected).
    #[serde(default)]
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
    #[serde(default)]
    pub password: Option<String>,
    /// LOCAL_PREF given to routes from this peer (eBGP: always; iBGP: replaces the received one).
    #[serde(default)]
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
fn default_admin_socket() -> String {
    "/tmp/sparrow.sock".to_string()
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
fn default_restart_time() -> u16 {
    120
}
fn default_families() -> Vec<Afi> {
    vec![Afi::Ipv4, Afi::Ipv6]
}

/// A config error: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {msg}")]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// Dotted key path, e.g. `peers[1].hold_time`.
    pub key: String,
    pub msg: String,
}

/// Parse and validate config text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    let cfg: Config = serde_yaml::from_str(text).map_err(|e| {
        vec![ConfigError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()).unwrap_or(0),
            key: String::new(),
            msg: e.to_string(),
        }]
    })?;
    Ok(cfg)
}

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: name.clone(),
            line: 0,
            key: String::new(),
            msg: e.to_string(),
        }]
    })?;
    parse(&text, &name)
}
