//! Configuration: one YAML file, parsed with unknown keys rejected, then
//! validated; every error names file, line and key.
//!
//! Owns the `Config` value handed (as `Arc<Config>`) to every task at start.
//! Talks to nobody.
//!
//! [`parse`] runs in two phases:
//! 1. schema (serde, `deny_unknown_fields`): unknown keys, wrong types, missing
//!    keys. serde stops at the first error, so after one we drop the offending
//!    node from a YAML `Value` and deserialize again, collecting every error;
//! 2. semantics (`validate`): one `check_*` function per section, each error
//!    located in the text by the [`Locator`] from its key path.
//!
//! Adding a section (e.g. DNS zones): a field with `#[serde(default)]` on
//! [`Config`], a `check_*` function called from `validate`, and a row in the
//! README's configuration reference.

use std::fmt;
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
    /// `fast` (our UDP loop on precomputed answers) or `hickory` (hickory-server's).
    #[serde(default)]
    pub udp_engine: UdpEngine,
    /// Cap on requests being answered by hickory-server at once (TCP, and UDP
    /// with `udp_engine: hickory`); more are dropped.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Idle seconds before a DNS TCP connection is closed.
    #[serde(default = "default_tcp_timeout")]
    pub tcp_timeout: u16,
    /// Largest UDP response with EDNS (our side of RFC 6891 §6.2.5).
    #[serde(default = "default_max_udp_payload")]
    pub max_udp_payload: u16,
    /// `id.server` / `hostname.bind` CH TXT answer (default: the POP name).
    #[serde(default)]
    pub identity: Option<String>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: Vec::new(),
            udp_workers: default_udp_workers(),
            udp_engine: UdpEngine::Fast,
            max_in_flight: default_max_in_flight(),
            tcp_timeout: default_tcp_timeout(),
            max_udp_payload: default_max_udp_payload(),
            identity: None,
        }
    }
}

fn default_udp_workers() -> usize {
    2
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_tcp_timeout() -> u16 {
    10
}
fn default_max_udp_payload() -> u16 {
    1232
}

/// Which code answers UDP queries.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UdpEngine {
    #[default]
    Fast,
    Hickory,
}

/// One authoritative zone.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The apex, e.g. `example.net` (a trailing dot is optional).
    pub origin: String,
    /// TTL of records that give none, and of the apex NS set.
    #[serde(default = "default_zone_ttl")]
    pub ttl: u32,
    pub soa: SoaConfig,
    /// Apex NS names (absolute, or relative to the origin).
    pub ns: Vec<String>,
    #[serde(default)]
    pub records: Vec<RecordConfig>,
    #[serde(default)]
    pub steered: Vec<SteeredConfig>,
}

fn default_zone_ttl() -> u32 {
    3600
}

/// The zone's SOA; `minimum` is also the negative-caching TTL (RFC 2308).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SoaConfig {
    pub mname: String,
    /// Mailbox as a name (`hostmaster.example.net`) or address (`hostmaster@example.net`).
    pub rname: String,
    #[serde(default = "one")]
    pub serial: u32,
    #[serde(default = "default_refresh")]
    pub refresh: i32,
    #[serde(default = "default_retry")]
    pub retry: i32,
    #[serde(default = "default_expire")]
    pub expire: i32,
    #[serde(default = "default_minimum")]
    pub minimum: u32,
}

fn one() -> u32 {
    1
}
fn default_refresh() -> i32 {
    3600
}
fn default_retry() -> i32 {
    600
}
fn default_expire() -> i32 {
    1_209_600
}
fn default_minimum() -> u32 {
    60
}

/// One static record, with its data in zone-file syntax.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Owner: `@` for the apex, a relative name, or an absolute one in the zone.
    pub name: String,
    /// A, AAAA, CNAME, TXT, MX, SRV, CAA or NS.
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: Option<u32>,
    /// RDATA as in a zone file (`10 mail.example.net.`); names in it are
    /// absolute or relative to the origin.
    pub data: String,
}

/// A name answered per client from the steering decision.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SteeredConfig {
    pub name: String,
    #[serde(default = "default_steered_ttl")]
    pub ttl: u32,
    /// Per POP name: its addresses.
    pub pops: std::collections::BTreeMap<String, PopAnswers>,
}

fn default_steered_ttl() -> u32 {
    30
}

/// Addresses a steered name answers with when this POP is chosen.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct PopAnswers {
    #[serde(default)]
    pub a: Vec<std::net::Ipv4Addr>,
    #[serde(default)]
    pub aaaa: Vec<std::net::Ipv6Addr>,
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
    #[serde(default)]
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

impl SteeringConfig {
    /// The fallback entries as (prefix, POP index in `pops`); entries that do
    /// not validate are skipped (a validated config has none).
    pub fn fallback_entries(&self, cfg: &Config) -> Vec<(crate::types::Prefix, usize)> {
        self.fallback
            .iter()
            .filter_map(|e| {
                let p = e.prefix.parse().ok()?;
                let i = cfg.pops.iter().position(|x| x.name == e.pop)?;
                Some((p, i))
            })
            .collect()
    }

    /// Index in `pops` of the default POP (`default_pop`, else `pop`, else 0).
    pub fn default_pop_index(&self, cfg: &Config) -> usize {
        let name = self.default_pop.as_deref().unwrap_or(&cfg.pop);
        cfg.pops.iter().position(|p| p.name == name).unwrap_or(0)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {
    pub name: String,
    pub asn: u32,
    /// Base URL the HTTP redirector sends clients of this POP to
    /// (`https://x.example.net`; path and query are appended).
    #[serde(default)]
    pub url: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// Dotted key path, e.g. `peers[1].hold_time`.
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    /// `file:line: key: message`; the line and key are left out when unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// Format errors one per line, as `sparrowd --check-config` prints them.
pub fn format_errors(errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

impl Config {
    /// The embedded default config (no peers), parsed and validated.
    pub fn embedded_default() -> Config {
        parse(DEFAULT_CONFIG, "<default-config>").expect("embedded default config is valid")
    }

    /// This POP's entry in `pops`. A validated config always has one.
    pub fn local_pop(&self) -> &PopConfig {
        self.pops
            .iter()
            .find(|p| p.name == self.pop)
            .expect("validated config: `pop` names an entry of `pops`")
    }

    /// The POP whose sparrowd uses `asn`.
    pub fn pop_by_asn(&self, asn: u32) -> Option<&PopConfig> {
        self.pops.iter().find(|p| p.asn == asn)
    }

    /// The admin socket's file mode (`admin.mode` parsed as octal; 0o600 if invalid,
    /// which a validated config never is).
    pub fn admin_mode(&self) -> u32 {
        parse_mode(&self.admin.mode).unwrap_or(0o600)
    }

    /// The peer named `name`.
    pub fn peer_by_name(&self, name: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.name == name)
    }
}

/// Parse an octal file mode: "0600", "600" or "0o600".
fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|&m| m <= 0o777)
}

/// Parse and validate config text; `file` names it in errors. Returns every error
/// found: all schema (type / unknown key / missing key) errors if there are any,
/// else all semantic errors.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    match serde_yaml::from_str::<Config>(text) {
        Ok(cfg) => {
            let errors = validate(&cfg, text, file);
            if errors.is_empty() {
                Ok(cfg)
            } else {
                Err(errors)
            }
        }
        Err(first) => Err(schema_errors(text, file, first)),
    }
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

/// Same as [`load`]; what `sparrowd --check-config FILE` runs.
pub fn check(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load(path)
}

// ---------------------------------------------------------------------------
// Schema errors (serde)
// ---------------------------------------------------------------------------

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    if path == "." || path.is_empty() {
        return out;
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

fn join_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push_str(&format!("[{i}]"));
            }
        }
    }
    s
}

/// A serde_norway error split into its parts.
struct SerdeMsg {
    /// Path serde was at (the parent map for unknown and missing fields).
    path: Vec<Seg>,
    msg: String,
    kind: SerdeKind,
}

enum SerdeKind {
    Unknown(String),
    Missing(String),
    Duplicate(String),
    Other,
}

/// serde_norway renders errors as `path: message at line L column C` (the path is
/// left out at the root). Take it apart.
fn split_serde_error(e: &serde_yaml::Error) -> SerdeMsg {
    let mut s = e.to_string();
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail
            .split(" column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            s.truncate(i);
        }
    }
    let mut path = Vec::new();
    if let Some(i) = s.find(": ") {
        let head = &s[..i];
        if !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.[]?".contains(c))
        {
            path = split_path(head);
            s = s[i + 2..].to_string();
        }
    }
    let kind = if let Some(f) = backticked_after(&s, "unknown field `") {
        if let Some(best) = suggest(&f, &s) {
            s = format!("unknown key `{f}`; did you mean `{best}`?");
        }
        SerdeKind::Unknown(f)
    } else if let Some(f) = backticked_after(&s, "missing field `") {
        SerdeKind::Missing(f)
    } else if let Some(f) = backticked_after(&s, "duplicate field `") {
        SerdeKind::Duplicate(f)
    } else {
        SerdeKind::Other
    };
    SerdeMsg { path, msg: s, kind }
}

/// The expected name (from serde's "expected one of `a`, `b`" list) closest to
/// `got`, if it is close enough to be a typo.
fn suggest(got: &str, msg: &str) -> Option<String> {
    let list = &msg[msg.find("expected ")?..];
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (edit_distance(got, cand), cand))
        .filter(|&(d, cand)| d <= 2.max(cand.len() / 4) && d < cand.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, cand)| cand.to_string())
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn backticked_after(s: &str, prefix: &str) -> Option<String> {
    let rest = s.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Collect schema errors. serde stops at the first one; to find the rest we parse
/// the text into a YAML `Value`, drop what was wrong, and deserialize again (at most
/// a few dozen times). Lines after the first error come from the [`Locator`].
fn schema_errors(text: &str, file: &str, first: serde_yaml::Error) -> Vec<ConfigError> {
    let loc = Locator::new(text);
    let mut errors = Vec::new();
    let mk = |line: usize, key: String, msg: String| ConfigError {
        file: file.to_string(),
        line,
        key,
        msg,
    };
    let Ok(mut value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        // Not even YAML (or a duplicate key): report the first error alone.
        let mut line = first.location().map(|l| l.line()).unwrap_or(0);
        let m = split_serde_error(&first);
        let mut key = m.path;
        if let SerdeKind::Duplicate(f) = m.kind {
            key.push(Seg::Key(f));
            line = match loc.nth_line_of(&key, 1) {
                0 => line,
                l => l,
            };
        }
        errors.push(mk(line, join_path(&key), m.msg));
        return errors;
    };
    // Removed sequence elements, by the sequence's original path, so that later
    // paths (in the edited value) can be mapped back to the original text.
    let mut removed_idx: Vec<(Vec<Seg>, usize)> = Vec::new();
    let mut removed_keys: Vec<Vec<Seg>> = Vec::new();
    let mut err = first;
    for round in 0..64 {
        let m = split_serde_error(&err);
        let path = to_original(&m.path, &removed_idx);
        let serde_line = if round == 0 {
            err.location().map(|l| l.line())
        } else {
            None
        };
        // What to drop before trying again, in edited-value coordinates.
        let remove: Vec<Seg> = match &m.kind {
            SerdeKind::Unknown(f) => {
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                let line = serde_line.unwrap_or_else(|| loc.line_of(&key));
                errors.push(mk(line, join_path(&key), m.msg.clone()));
                [m.path.clone(), vec![Seg::Key(f.clone())]].concat()
            }
            SerdeKind::Missing(f) => {
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                if removed_keys.contains(&key) {
                    // We removed it (it was wrong, and reported). A required
                    // top-level key gets a placeholder so the rest can be checked.
                    if let (true, Some(v), serde_yaml::Value::Mapping(root)) =
                        (path.is_empty(), root_placeholder(f), &mut value)
                    {
                        root.insert(f.as_str().into(), v);
                        match reparse(&value) {
                            Some(e) => {
                                err = e;
                                continue;
                            }
                            None => break,
                        }
                    }
                } else {
                    // Point at the map that lacks the key.
                    let line = match loc.line_of(&path) {
                        0 => serde_line.unwrap_or(0),
                        l => l,
                    };
                    errors.push(mk(line, join_path(&key), m.msg.clone()));
                }
                m.path.clone()
            }
            SerdeKind::Duplicate(f) => {
                // Point at the second occurrence; keep the first when retrying.
                let mut key = path.clone();
                key.push(Seg::Key(f.clone()));
                let line = match loc.nth_line_of(&key, 1) {
                    0 => serde_line.unwrap_or(0),
                    l => l,
                };
                errors.push(mk(line, join_path(&key), m.msg.clone()));
                Vec::new()
            }
            SerdeKind::Other => {
                let line = serde_line.unwrap_or_else(|| loc.line_of(&path));
                errors.push(mk(line, join_path(&path), m.msg.clone()));
                m.path.clone()
            }
        };
        if remove.is_empty() || !remove_at(&mut value, &remove, &mut removed_idx, &mut removed_keys)
        {
            break;
        }
        match reparse(&value) {
            Some(e) => err = e,
            None => break,
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// Deserialize an edited value again (through text, so errors carry paths);
/// the next error, if any.
fn reparse(value: &serde_yaml::Value) -> Option<serde_yaml::Error> {
    let text = serde_yaml::to_string(value).ok()?;
    serde_yaml::from_str::<Config>(&text).err()
}

/// A stand-in for a required top-level key whose value was wrong.
fn root_placeholder(key: &str) -> Option<serde_yaml::Value> {
    use serde_yaml::Value;
    match key {
        "local_asn" => Some(Value::from(1u32)),
        "router_id" => Some(Value::from("0.0.0.1")),
        "pop" => Some(Value::from("")),
        _ => None,
    }
}

/// Map a path in the edited value back to the original text, given the sequence
/// elements removed so far.
fn to_original(path: &[Seg], removed_idx: &[(Vec<Seg>, usize)]) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(path.len());
    for seg in path {
        match seg {
            Seg::Index(j) => {
                let mut gone: Vec<usize> = removed_idx
                    .iter()
                    .filter(|(p, _)| *p == out)
                    .map(|(_, i)| *i)
                    .collect();
                gone.sort_unstable();
                // The j-th original index that was not removed.
                let mut i = *j;
                for g in gone {
                    if g <= i {
                        i += 1;
                    }
                }
                out.push(Seg::Index(i));
            }
            k => out.push(k.clone()),
        }
    }
    out
}

/// Remove the node at `path` (edited-value coordinates) from `value`.
fn remove_at(
    value: &mut serde_yaml::Value,
    path: &[Seg],
    removed_idx: &mut Vec<(Vec<Seg>, usize)>,
    removed_keys: &mut Vec<Vec<Seg>>,
) -> bool {
    use serde_yaml::Value;
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let orig = to_original(path, removed_idx);
    let mut node = &mut *value;
    for seg in parent {
        node = match (seg, node) {
            (Seg::Key(k), Value::Mapping(m)) => match m.get_mut(k.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Sequence(s)) => match s.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    let done = match (last, node) {
        (Seg::Key(k), Value::Mapping(m)) => m.shift_remove(k.as_str()).is_some(),
        (Seg::Index(i), Value::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            true
        }
        _ => false,
    };
    if done {
        if let (Some(Seg::Index(i)), Some((_, seq))) = (orig.last(), orig.split_last()) {
            removed_idx.push((seq.to_vec(), *i));
        }
        removed_keys.push(orig);
    }
    done
}

// ---------------------------------------------------------------------------
// Locator: key path -> line
// ---------------------------------------------------------------------------

/// Finds the line of a key path such as `peers[1].hold_time` in block-style YAML
/// by walking indentation and `- ` list items. Flow collections, multi-line
/// scalars, anchors and the like are not understood: a path that cannot be
/// followed to its end yields the line of the deepest key found on the way.
pub struct Locator {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// 1-based line.
    line: usize,
    /// Column where the entry starts.
    indent: usize,
    kind: EntryKind,
}

#[derive(Debug, PartialEq, Eq)]
enum EntryKind {
    /// `- ` introducing a list item.
    Dash,
    /// `key:` of a mapping.
    Key(String),
    /// Anything else (scalar list item, continuation line).
    Other,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim_end();
            let trimmed = line.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed == "---" || trimmed == "..." {
                continue;
            }
            let mut indent = line.len() - trimmed.len();
            let mut rest = trimmed;
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    entries.push(Entry {
                        line: n + 1,
                        indent,
                        kind: EntryKind::Dash,
                    });
                    let after = &rest[1..];
                    let content = after.trim_start_matches(' ');
                    indent += 1 + after.len() - content.len();
                    rest = content;
                    if rest.is_empty() {
                        break;
                    }
                    continue;
                }
                let kind = match mapping_key(rest) {
                    Some(k) => EntryKind::Key(k),
                    None => EntryKind::Other,
                };
                entries.push(Entry {
                    line: n + 1,
                    indent,
                    kind,
                });
                break;
            }
        }
        Locator { entries }
    }

    /// 1-based line of `path` (dotted, with `[i]` indexes), or of its deepest
    /// ancestor found; 0 if not even the first key is found.
    pub fn line(&self, path: &str) -> usize {
        self.line_of(&split_path(path))
    }

    fn line_of(&self, path: &[Seg]) -> usize {
        self.nth_line_of(path, 0)
    }

    /// Like `line_of`, but take the `nth` (0-based) match of the last key (for
    /// duplicate keys); 0 if there is no such match.
    fn nth_line_of(&self, path: &[Seg], nth: usize) -> usize {
        let e = &self.entries;
        let (mut lo, mut hi) = (0, e.len());
        let mut line = 0;
        for (n, seg) in path.iter().enumerate() {
            if lo >= hi {
                break;
            }
            let ind = e[lo].indent;
            let mut at = (lo..hi).filter(|&j| e[j].indent == ind);
            let found = match seg {
                Seg::Key(k) if n + 1 == path.len() && nth > 0 => at
                    .filter(|&j| e[j].kind == EntryKind::Key(k.clone()))
                    .nth(nth),
                Seg::Key(k) => at.find(|&j| e[j].kind == EntryKind::Key(k.clone())),
                Seg::Index(i) => at.filter(|&j| e[j].kind == EntryKind::Dash).nth(*i),
            };
            let Some(j) = found else { break };
            line = e[j].line;
            // Children: deeper entries, or for `key:` a list written at the same
            // indentation as the key ("compact" sequences).
            let mut end = j + 1;
            let compact = matches!(e[j].kind, EntryKind::Key(_))
                && end < hi
                && e[end].indent == ind
                && e[end].kind == EntryKind::Dash;
            while end < hi
                && (e[end].indent > ind
                    || (compact && e[end].indent == ind && e[end].kind == EntryKind::Dash))
            {
                end += 1;
            }
            lo = j + 1;
            hi = end;
        }
        line
    }
}

/// Cut a trailing `# comment` (not inside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// The key of a `key: value` or `key:` line.
fn mapping_key(s: &str) -> Option<String> {
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = s[1..].find(q)? + 1;
        let after = &s[end + 1..];
        return (after == ":" || after.starts_with(": ")).then(|| s[1..end].to_string());
    }
    if s.starts_with(['[', '{', '|', '>', '&', '*', '!']) {
        return None;
    }
    let i = s
        .find(": ")
        .or_else(|| s.strip_suffix(':').map(|t| t.len()))?;
    Some(s[..i].trim_end().to_string())
}

// ---------------------------------------------------------------------------
// Semantic validation
// ---------------------------------------------------------------------------

/// AS_TRANS (RFC 6793): never a real ASN.
const AS_TRANS: u32 = 23456;
/// TCP-MD5 (RFC 2385) keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN).
const MAX_PASSWORD_LEN: usize = 80;
/// The graceful-restart capability carries Restart Time in 12 bits.
const MAX_RESTART_TIME: u16 = 4095;

/// Collects semantic errors, locating each key in the text.
struct Checker<'a> {
    file: &'a str,
    loc: Locator,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        let key = key.into();
        let line = self.loc.line(&key);
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            key,
            msg: msg.into(),
        });
    }

    /// Parse `text` as `ADDRESS/LENGTH` with host bits clear; errors go to `key`.
    fn prefix(&mut self, key: String, text: &str) -> Option<crate::types::Prefix> {
        let given = text.split_once('/').map_or(text, |(a, _)| a);
        match text.parse::<crate::types::Prefix>() {
            Err(_) => {
                self.err(key, format!("`{text}` is not a prefix (ADDRESS/LENGTH)"));
                None
            }
            Ok(p) if given.trim().parse::<IpAddr>().ok() != Some(p.addr()) => {
                self.err(
                    key,
                    format!("`{text}` has host bits set (did you mean {p}?)"),
                );
                None
            }
            Ok(p) => Some(p),
        }
    }

    fn asn(&mut self, key: String, asn: u32) {
        if asn == 0 {
            self.err(key, "ASN 0 is reserved (RFC 7607)");
        } else if asn == AS_TRANS {
            self.err(key, "ASN 23456 is AS_TRANS (RFC 6793), not a real ASN");
        }
    }
}

/// Check a deserialized config; returns every error found (empty when valid).
fn validate(cfg: &Config, text: &str, file: &str) -> Vec<ConfigError> {
    let mut c = Checker {
        file,
        loc: Locator::new(text),
        errors: Vec::new(),
    };
    check_top(&mut c, cfg);
    check_listen_admin_logging(&mut c, cfg);
    for (i, peer) in cfg.peers.iter().enumerate() {
        check_peer(&mut c, cfg, i, peer);
    }
    check_steering(&mut c, cfg);
    check_dns(&mut c, cfg);
    check_http(&mut c, cfg);
    c.errors.sort_by_key(|e| e.line);
    c.errors
}

fn check_top(c: &mut Checker, cfg: &Config) {
    c.asn("local_asn".into(), cfg.local_asn);
    if cfg.router_id.is_unspecified() {
        c.err("router_id", "must not be 0.0.0.0 (RFC 6286)");
    }
    if cfg.pops.is_empty() {
        c.err("pops", "must list at least this POP");
    }
    for (i, pop) in cfg.pops.iter().enumerate() {
        if pop.name.trim().is_empty() {
            c.err(format!("pops[{i}].name"), "must not be empty");
        }
        if let Some(j) = cfg.pops[..i].iter().position(|p| p.name == pop.name) {
            c.err(
                format!("pops[{i}].name"),
                format!("duplicate POP name `{}` (also pops[{j}])", pop.name),
            );
        }
        c.asn(format!("pops[{i}].asn"), pop.asn);
        if let Some(j) = cfg.pops[..i].iter().position(|p| p.asn == pop.asn) {
            c.err(
                format!("pops[{i}].asn"),
                format!("duplicate POP ASN {} (also pops[{j}])", pop.asn),
            );
        }
    }
    match cfg.pops.iter().position(|p| p.name == cfg.pop) {
        None if !cfg.pops.is_empty() => {
            let names: Vec<&str> = cfg.pops.iter().map(|p| p.name.as_str()).collect();
            c.err(
                "pop",
                format!(
                    "`{}` is not one of the POPs in `pops` ({})",
                    cfg.pop,
                    names.join(", ")
                ),
            );
        }
        None => c.err("pop", format!("`{}` is not listed in `pops`", cfg.pop)),
        // (A reserved local_asn is reported above; do not report it twice.)
        Some(i)
            if cfg.pops[i].asn != cfg.local_asn
                && cfg.local_asn != 0
                && cfg.local_asn != AS_TRANS =>
        {
            c.err(
                format!("pops[{i}].asn"),
                format!(
                    "this POP (`{}`) has ASN {} but local_asn is {}",
                    cfg.pop, cfg.pops[i].asn, cfg.local_asn
                ),
            )
        }
        Some(_) => {}
    }
}

fn check_listen_admin_logging(c: &mut Checker, cfg: &Config) {
    let l = &cfg.listen;
    if l.enabled && l.addresses.is_empty() {
        c.err(
            "listen.addresses",
            "listen is enabled but no address is given",
        );
    }
    for (i, a) in l.addresses.iter().enumerate() {
        if l.addresses[..i].contains(a) {
            c.err(
                format!("listen.addresses[{i}]"),
                format!("duplicate address {a}"),
            );
        }
        if a.is_multicast() {
            c.err(
                format!("listen.addresses[{i}]"),
                "must not be a multicast address",
            );
        }
    }
    if l.port == 0 {
        c.err("listen.port", "must be 1..=65535");
    }
    if cfg.admin.socket.trim().is_empty() {
        c.err("admin.socket", "must not be empty");
    }
    if parse_mode(&cfg.admin.mode).is_none() {
        c.err(
            "admin.mode",
            format!(
                "`{}` is not an octal file mode <= 0777 (e.g. \"0600\")",
                cfg.admin.mode
            ),
        );
    }
    let level = &cfg.logging.level;
    if level.trim().is_empty() {
        c.err("logging.level", "must not be empty (e.g. \"info\")");
    } else if level.chars().any(char::is_whitespace) {
        c.err(
            "logging.level",
            format!("`{level}` contains whitespace; use comma-separated directives like \"info,sparrow=debug\""),
        );
    } else if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        c.err(
            "logging.level",
            format!("`{level}` is not a valid filter: {e}"),
        );
    }
}

fn check_peer(c: &mut Checker, cfg: &Config, i: usize, p: &PeerConfig) {
    let k = |field: &str| format!("peers[{i}].{field}");
    let ebgp = p.is_ebgp(cfg.local_asn);

    if p.name.trim().is_empty() {
        c.err(k("name"), "must not be empty");
    }
    if let Some(j) = cfg.peers[..i].iter().position(|q| q.name == p.name) {
        c.err(
            k("name"),
            format!("duplicate peer name `{}` (also peers[{j}])", p.name),
        );
    }
    if let Some(j) = cfg.peers[..i].iter().position(|q| q.address == p.address) {
        c.err(
            k("address"),
            format!("duplicate peer address {} (also peers[{j}])", p.address),
        );
    }
    if p.address.is_unspecified() || p.address.is_multicast() {
        c.err(
            k("address"),
            format!("{} is not a unicast address", p.address),
        );
    }
    c.asn(k("remote_asn"), p.remote_asn);
    if p.role == Role::Pop {
        if p.remote_asn == cfg.local_asn {
            c.err(
                k("remote_asn"),
                "a `pop` peer is another POP's sparrowd: its ASN must differ from local_asn",
            );
        } else if cfg.pop_by_asn(p.remote_asn).is_none() {
            c.err(
                k("remote_asn"),
                format!(
                    "a `pop` peer's ASN must be one of the `pops` ASNs; {} is not",
                    p.remote_asn
                ),
            );
        }
    }
    if p.port == 0 {
        c.err(k("port"), "must be 1..=65535");
    }
    if p.passive && !cfg.listen.enabled {
        c.err(
            k("passive"),
            "a passive peer never connects, but listen.enabled is false",
        );
    }
    if let Some(la) = p.local_address {
        if la.is_ipv4() != p.address.is_ipv4() {
            c.err(
                k("local_address"),
                format!(
                    "{la} is not the same address family as address {}",
                    p.address
                ),
            );
        } else if la.is_multicast() {
            c.err(k("local_address"), format!("{la} is not a unicast address"));
        }
    }
    if p.multihop == Some(0) {
        c.err(k("multihop"), "must be 1..=255");
    }
    if p.gtsm {
        if !ebgp {
            c.err(
                k("gtsm"),
                "GTSM is only for eBGP peers (remote_asn != local_asn)",
            );
        }
        if let Some(m) = p.multihop.filter(|&m| m > 1) {
            c.err(
                k("gtsm"),
                format!(
                    "gtsm and multihop {m} are mutually exclusive (GTSM means directly connected)"
                ),
            );
        }
    }
    if p.hold_time != 0 && p.hold_time < 3 {
        c.err(
            k("hold_time"),
            "must be 0 (no keepalives) or at least 3 seconds (RFC 4271)",
        );
    }
    if p.connect_retry == 0 {
        c.err(k("connect_retry"), "must be at least 1 second");
    }
    if let Some(pw) = &p.password {
        if pw.is_empty() || pw.len() > MAX_PASSWORD_LEN {
            c.err(
                k("password"),
                format!(
                    "TCP-MD5 key must be 1..={MAX_PASSWORD_LEN} bytes, this one is {}",
                    pw.len()
                ),
            );
        }
    }
    for (afi, lim) in [("ipv4", &p.max_prefix.ipv4), ("ipv6", &p.max_prefix.ipv6)] {
        if let Some(lim) = lim {
            if lim.limit == 0 {
                c.err(
                    k(&format!("max_prefix.{afi}.limit")),
                    "must be > 0 (leave max_prefix.{afi} out for no limit)".replace("{afi}", afi),
                );
            }
        }
    }
    if p.restart_time > MAX_RESTART_TIME {
        c.err(
            k("restart_time"),
            format!("must be <= {MAX_RESTART_TIME} (12-bit field, RFC 4724)"),
        );
    }
    if p.families.is_empty() {
        c.err(k("families"), "must list at least one of ipv4, ipv6");
    }
    for (j, f) in p.families.iter().enumerate() {
        if p.families[..j].contains(f) {
            c.err(
                k(&format!("families[{j}]")),
                format!("duplicate family {f}"),
            );
        }
    }
}

/// Most POPs steering can rank (POP indices are one byte).
pub const MAX_POPS: usize = 255;

fn check_steering(c: &mut Checker, cfg: &Config) {
    let st = &cfg.steering;
    let names = || {
        cfg.pops
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if cfg.pops.len() > MAX_POPS {
        c.err("pops", format!("at most {MAX_POPS} POPs are supported"));
    }
    if let Some(d) = &st.default_pop {
        if !cfg.pops.iter().any(|p| &p.name == d) {
            c.err(
                "steering.default_pop",
                format!("`{d}` is not one of the POPs in `pops` ({})", names()),
            );
        }
    }
    let mut seen = std::collections::HashMap::with_capacity(st.fallback.len());
    for (i, e) in st.fallback.iter().enumerate() {
        let k = |f: &str| format!("steering.fallback[{i}].{f}");
        if !cfg.pops.iter().any(|p| p.name == e.pop) {
            c.err(
                k("pop"),
                format!("`{}` is not one of the POPs in `pops` ({})", e.pop, names()),
            );
        }
        if let Some(p) = c.prefix(k("prefix"), &e.prefix) {
            if let Some(j) = seen.insert(p, i) {
                c.err(
                    k("prefix"),
                    format!("duplicate fallback prefix {p} (also steering.fallback[{j}])"),
                );
            }
        }
    }
}

fn check_dns(c: &mut Checker, cfg: &Config) {
    let d = &cfg.dns;
    if d.udp_workers == 0 || d.udp_workers > 64 {
        c.err("dns.udp_workers", "must be 1 to 64");
    }
    if d.max_in_flight == 0 {
        c.err("dns.max_in_flight", "must be at least 1");
    }
    if d.tcp_timeout == 0 {
        c.err("dns.tcp_timeout", "must be at least 1 second");
    }
    if d.max_udp_payload < 512 {
        c.err("dns.max_udp_payload", "must be at least 512 (RFC 1035)");
    }
    for (i, a) in d.listen.iter().enumerate() {
        if let Some(j) = d.listen[..i].iter().position(|b| b == a) {
            c.err(
                format!("dns.listen[{i}]"),
                format!("duplicate address {a} (also dns.listen[{j}])"),
            );
        }
    }
    if let Some(id) = &d.identity {
        if id.len() > 255 {
            c.err("dns.identity", "must be at most 255 bytes (one TXT string)");
        }
    }
    let mut origins: Vec<(String, usize)> = Vec::new();
    for (i, z) in cfg.zones.iter().enumerate() {
        for (key, msg) in crate::dns::zone::check_zone(z, cfg) {
            c.err(format!("zones[{i}]{key}"), msg);
        }
        let o = z.origin.trim_end_matches('.').to_ascii_lowercase();
        if let Some((_, j)) = origins.iter().find(|(x, _)| *x == o) {
            c.err(
                format!("zones[{i}].origin"),
                format!("duplicate zone `{o}` (also zones[{j}])"),
            );
        }
        origins.push((o, i));
    }
}

fn check_http(c: &mut Checker, cfg: &Config) {
    for (i, p) in cfg.http.trusted_proxies.iter().enumerate() {
        c.prefix(format!("http.trusted_proxies[{i}]"), p);
    }
    for (i, pop) in cfg.pops.iter().enumerate() {
        if let Some(u) = &pop.url {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"));
            match rest {
                Some(r)
                    if !r.is_empty()
                        && !r.starts_with('/')
                        && !u.contains(['?', '#'])
                        && u.bytes().all(|b| b.is_ascii_graphic()) => {}
                _ => c.err(
                    format!("pops[{i}].url"),
                    format!("`{u}` is not an http:// or https:// base URL (printable ASCII, no spaces, no query or fragment)"),
                ),
            }
        }
    }
    if !cfg.http.listen.is_empty() && cfg.pops.iter().all(|p| p.url.is_none()) {
        c.err(
            "http.listen",
            "the HTTP redirector needs a `url` on at least one POP",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POP_X: &str = include_str!("../bgp-configs/two-pop/pop-x.yaml");
    const POP_Y: &str = include_str!("../bgp-configs/two-pop/pop-y.yaml");

    /// A valid config; tests replace one piece and expect one error.
    const BASE: &str = "\
local_asn: 65001
router_id: 10.0.0.1
pop: x
pops:
  - name: x
    asn: 65001
  - name: y
    asn: 65002
admin:
  socket: /tmp/t.sock
  mode: \"0640\"
logging:
  level: info
peers:
  - name: up
    address: 192.0.2.1
    remote_asn: 64510
    role: upstream
    gtsm: true
    password: secret
    max_prefix:
      ipv4:
        limit: 1000
  - name: other
    address: 198.51.100.2
    local_address: 203.0.113.10
    remote_asn: 65002
    role: pop
    multihop: 3
    families:
      - ipv4
      - ipv6
";

    fn ok(text: &str) -> Config {
        match parse(text, "t.yaml") {
            Ok(c) => c,
            Err(es) => panic!("unexpected errors:\n{}", format_errors(&es)),
        }
    }

    fn errs(text: &str) -> Vec<ConfigError> {
        match parse(text, "t.yaml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(es) => es,
        }
    }

    /// 1-based line where the first occurrence of `needle` starts.
    fn line_of(text: &str, needle: &str) -> usize {
        let i = text
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in text"));
        text[..i].matches('\n').count() + 1
    }

    /// Replace `from` (must occur exactly once) with `to`, expect exactly one error
    /// naming `key` on the line containing `at`.
    fn expect_one(from: &str, to: &str, key: &str, at: &str) -> ConfigError {
        assert_eq!(BASE.matches(from).count(), 1, "`{from}` not unique in BASE");
        let text = BASE.replace(from, to);
        let es = errs(&text);
        assert_eq!(es.len(), 1, "{from} -> {to}: {}", format_errors(&es));
        let e = es.into_iter().next().unwrap();
        assert_eq!(e.key, key, "{e}");
        assert_eq!(e.line, line_of(&text, at), "{e}");
        assert_eq!(e.file, "t.yaml");
        e
    }

    /// Like `expect_one`, but other errors may come along.
    fn expect_some(from: &str, to: &str, key: &str, at: &str) {
        let text = BASE.replace(from, to);
        let es = errs(&text);
        let e = es
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no error for {key}: {}", format_errors(&es)));
        assert_eq!(e.line, line_of(&text, at), "{e}");
    }

    #[test]
    fn base_is_valid() {
        let c = ok(BASE);
        assert_eq!(c.local_pop().name, "x");
        assert_eq!(c.pop_by_asn(65002).map(|p| p.name.as_str()), Some("y"));
        assert!(c.pop_by_asn(1).is_none());
        assert_eq!(c.admin_mode(), 0o640);
        assert!(c.peers[0].is_ebgp(c.local_asn));
        assert_eq!(c.peers[1].families, vec![Afi::Ipv4, Afi::Ipv6]);
        assert_eq!(c.peer_by_name("other").map(|p| p.role), Some(Role::Pop));
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = ok(DEFAULT_CONFIG);
        assert!(c.peers.is_empty());
        assert!(!c.listen.enabled, "default must not need root");
        assert_eq!(c.admin.socket, "/tmp/sparrow.sock");
        assert_eq!(c.admin_mode(), 0o600);
        assert_eq!(c.local_pop().asn, c.local_asn);
        let d = Config::embedded_default();
        assert_eq!(d.pop, c.pop);
    }

    #[test]
    fn defaults_of_omitted_keys() {
        let c = ok("local_asn: 1\nrouter_id: 1.2.3.4\npop: a\npops:\n  - name: a\n    asn: 1\npeers:\n  - name: p\n    address: 2001:db8::1\n    remote_asn: 2\n    role: upstream\n");
        let p = &c.peers[0];
        assert_eq!(p.port, 179);
        assert_eq!(p.hold_time, 90);
        assert_eq!(p.connect_retry, 5);
        assert_eq!(p.restart_time, 120);
        assert!(!p.graceful_restart && !p.passive && !p.gtsm);
        assert!(p.enforce_first_as);
        assert_eq!(p.families, vec![Afi::Ipv4, Afi::Ipv6]);
        assert_eq!(p.multihop, None);
        assert_eq!(p.max_prefix, MaxPrefix::default());
        assert!(c.listen.enabled);
        assert_eq!(c.listen.port, 179);
        assert_eq!(c.admin.socket, "/tmp/sparrow.sock");
        assert_eq!(c.logging.level, "info");
        assert_eq!(c.logging.format, LogFormat::Text);
    }

    #[test]
    fn two_pop_examples_are_valid_and_match() {
        let x = ok(POP_X);
        let y = ok(POP_Y);
        assert_eq!(
            (x.local_asn, x.router_id),
            (65001, Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(y.local_asn, 65002);
        // X's upstream: eBGP, GTSM, MD5, max-prefix.
        let up = &x.peers[0];
        assert_eq!(up.role, Role::Upstream);
        assert_eq!(
            (up.remote_asn, up.address.to_string().as_str()),
            (64510, "192.0.2.1")
        );
        assert!(up.gtsm && up.password.is_some() && up.max_prefix.ipv4.is_some());
        // Y's upstream: iBGP.
        assert_eq!(y.peers[0].role, Role::Upstream);
        assert!(!y.peers[0].is_ebgp(y.local_asn));
        // The pop peers point at each other, multihop 3, same password.
        let (xp, yp) = (&x.peers[1], &y.peers[1]);
        assert_eq!((xp.role, yp.role), (Role::Pop, Role::Pop));
        assert_eq!(xp.remote_asn, y.local_asn);
        assert_eq!(yp.remote_asn, x.local_asn);
        assert_eq!(Some(xp.address), yp.local_address);
        assert_eq!(Some(yp.address), xp.local_address);
        assert_eq!((xp.multihop, yp.multihop), (Some(3), Some(3)));
        assert_eq!(xp.password, yp.password);
    }

    #[test]
    fn example_files_on_disk_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bgp-configs/two-pop");
        for f in ["pop-x.yaml", "pop-y.yaml"] {
            if let Err(es) = check(&dir.join(f)) {
                panic!("{}", format_errors(&es));
            }
        }
        let es = load(Path::new("/nonexistent/sparrow.yaml")).unwrap_err();
        assert_eq!(es.len(), 1);
        assert_eq!(es[0].line, 0);
    }

    #[test]
    fn semantic_errors_name_line_and_key() {
        expect_one("local_asn: 65001", "local_asn: 0", "local_asn", "local_asn");
        expect_one(
            "router_id: 10.0.0.1",
            "router_id: 0.0.0.0",
            "router_id",
            "router_id",
        );
        expect_one("pop: x", "pop: z", "pop", "pop: z");
        expect_one(
            "name: y\n",
            "name: x\n",
            "pops[1].name",
            "  - name: x\n    asn: 65002",
        );
        // Also makes peers[1].remote_asn (65002) unknown.
        expect_some(
            "    asn: 65002",
            "    asn: 65001",
            "pops[1].asn",
            "asn: 65001\nadmin",
        );
        expect_one(
            "    asn: 65001\n",
            "    asn: 65003\n",
            "pops[0].asn",
            "asn: 65003",
        );
        expect_one(
            "name: other",
            "name: up",
            "peers[1].name",
            "name: up\n    address: 198",
        );
        expect_one(
            "address: 198.51.100.2",
            "address: 192.0.2.1",
            "peers[1].address",
            "    address: 192.0.2.1\n    local",
        );
        expect_one(
            "remote_asn: 65002",
            "remote_asn: 65009",
            "peers[1].remote_asn",
            "remote_asn: 65009",
        );
    }

    #[test]
    fn more_semantic_errors() {
        let long_pw = format!("password: {}", "k".repeat(81));
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "remote_asn: 65002",
                "remote_asn: 65001",
                "peers[1].remote_asn",
                "remote_asn: 65001",
            ),
            (
                "remote_asn: 64510",
                "remote_asn: 23456",
                "peers[0].remote_asn",
                "23456",
            ),
            (
                "role: upstream\n",
                "role: upstream\n    hold_time: 2\n",
                "peers[0].hold_time",
                "hold_time: 2",
            ),
            (
                "multihop: 3",
                "multihop: 0",
                "peers[1].multihop",
                "multihop: 0",
            ),
            (
                "gtsm: true",
                "gtsm: true\n    multihop: 2",
                "peers[0].gtsm",
                "gtsm: true",
            ),
            (
                "role: pop\n",
                "role: pop\n    gtsm: true\n",
                "peers[1].gtsm",
                "gtsm: true\n    multihop",
            ),
            (
                "local_address: 203.0.113.10",
                "local_address: 2001:db8::1",
                "peers[1].local_address",
                "local_address",
            ),
            (
                "password: secret",
                "password: \"\"",
                "peers[0].password",
                "password",
            ),
            (
                "limit: 1000",
                "limit: 0",
                "peers[0].max_prefix.ipv4.limit",
                "limit: 0",
            ),
            (
                "role: upstream\n",
                "role: upstream\n    restart_time: 4096\n",
                "peers[0].restart_time",
                "restart_time",
            ),
            (
                "      - ipv4\n      - ipv6\n",
                "      - ipv4\n      - ipv4 # again\n",
                "peers[1].families[1]",
                "ipv4 # again",
            ),
            (
                "remote_asn: 64510",
                "remote_asn: 65001",
                "peers[0].gtsm",
                "gtsm: true",
            ),
            (
                "password: secret",
                &long_pw,
                "peers[0].password",
                "password",
            ),
            (
                "    families:\n      - ipv4\n      - ipv6\n",
                "    families: []\n",
                "peers[1].families",
                "families",
            ),
            ("mode: \"0640\"", "mode: \"0800\"", "admin.mode", "mode"),
            ("mode: \"0640\"", "mode: \"01777\"", "admin.mode", "mode"),
            (
                "level: info",
                "level: info, debug",
                "logging.level",
                "level",
            ),
            ("level: info", "level: \"\"", "logging.level", "level"),
            (
                "level: info",
                "level: sparrow=loud",
                "logging.level",
                "level",
            ),
            (
                "role: upstream\n",
                "role: upstream\n    passive: true\n",
                "peers[0].passive",
                "passive",
            ),
            (
                "role: upstream\n",
                "role: upstream\n    connect_retry: 0\n",
                "peers[0].connect_retry",
                "connect_retry",
            ),
        ];
        for &(from, to, key, at) in cases {
            let mut text = BASE.replace(from, to);
            if key == "peers[0].passive" {
                text.push_str("listen:\n  enabled: false\n");
            }
            assert_ne!(text, BASE, "{from}");
            let es = errs(&text);
            assert_eq!(es.len(), 1, "{from} -> {to}: {}", format_errors(&es));
            assert_eq!(es[0].key, key, "{}", es[0]);
            assert_eq!(es[0].line, line_of(&text, at), "{}", es[0]);
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = BASE.replace("    gtsm: true\n", "    gtsm: true\n    hold_tmie: 30\n");
        let es = errs(&text);
        assert_eq!(es.len(), 1, "{}", format_errors(&es));
        assert_eq!(es[0].key, "peers[0].hold_tmie");
        assert_eq!(es[0].line, line_of(&text, "hold_tmie"));
        assert!(es[0].msg.contains("did you mean `hold_time`"), "{}", es[0]);

        // Top level, nested map, and a name nothing resembles.
        let text = format!("{BASE}qqq: []\n");
        let es = errs(&text);
        assert_eq!(
            (es[0].key.as_str(), es[0].line),
            ("qqq", line_of(&text, "qqq"))
        );
        assert!(es[0].msg.contains("expected one of"), "{}", es[0]);
        let text = BASE.replace("limit: 1000", "limit: 1000\n        actoin: warn");
        let es = errs(&text);
        assert_eq!(es[0].key, "peers[0].max_prefix.ipv4.actoin");
        assert_eq!(es[0].line, line_of(&text, "actoin"));
    }

    #[test]
    fn type_errors_name_their_line() {
        let text = BASE.replace("multihop: 3", "multihop: three");
        let es = errs(&text);
        assert_eq!(es.len(), 1, "{}", format_errors(&es));
        assert_eq!(
            (es[0].key.as_str(), es[0].line),
            ("peers[1].multihop", line_of(&text, "three"))
        );
        assert!(es[0].msg.contains("invalid type"), "{}", es[0]);

        for (from, to, key) in [
            ("multihop: 3", "multihop: 256", "peers[1].multihop"),
            (
                "address: 192.0.2.1",
                "address: 192.0.2.999",
                "peers[0].address",
            ),
            ("role: pop", "role: peer", "peers[1].role"),
            ("router_id: 10.0.0.1", "router_id: 2001:db8::1", "router_id"),
            ("local_asn: 65001", "local_asn: 4294967296", "local_asn"),
            ("level: info", "level: [info]", "logging.level"),
            ("gtsm: true", "gtsm: yes please", "peers[0].gtsm"),
        ] {
            let text = BASE.replace(from, to);
            let es = errs(&text);
            assert_eq!(es.len(), 1, "{to}: {}", format_errors(&es));
            assert_eq!(es[0].key, key, "{}", es[0]);
            assert_eq!(es[0].line, line_of(&text, to), "{}", es[0]);
        }
    }

    #[test]
    fn missing_key_points_at_its_map() {
        let text = BASE.replace("    remote_asn: 64510\n", "");
        let es = errs(&text);
        assert_eq!(es.len(), 1, "{}", format_errors(&es));
        assert_eq!(es[0].key, "peers[0].remote_asn");
        assert_eq!(es[0].line, line_of(&text, "- name: up"));
        let es = errs(&BASE.replace("pop: x\n", ""));
        assert_eq!(es[0].key, "pop");
        assert!(es[0].msg.contains("missing field"), "{}", es[0]);
    }

    #[test]
    fn all_schema_errors_are_reported() {
        let text = BASE
            .replace("  socket: /tmp/t.sock", "  sockt: /tmp/t.sock")
            .replace("    gtsm: true\n", "    gtsm: maybe\n")
            .replace("    remote_asn: 64510\n", "")
            .replace("multihop: 3", "multihop: 3\n    bogus: 1")
            .replace("      - ipv6", "      - ipx");
        let es = errs(&text);
        let got: Vec<(String, usize)> = es.iter().map(|e| (e.key.clone(), e.line)).collect();
        let want = vec![
            ("admin.sockt".to_string(), line_of(&text, "sockt")),
            (
                "peers[0].remote_asn".to_string(),
                line_of(&text, "- name: up"),
            ),
            ("peers[0].gtsm".to_string(), line_of(&text, "maybe")),
            ("peers[1].bogus".to_string(), line_of(&text, "bogus")),
            ("peers[1].families".to_string(), line_of(&text, "families")),
        ];
        for w in &want {
            assert!(got.contains(w), "missing {w:?} in\n{}", format_errors(&es));
        }
        assert_eq!(got.len(), want.len(), "{}", format_errors(&es));
        // Sorted by line.
        assert!(es.windows(2).all(|w| w[0].line <= w[1].line));
    }

    #[test]
    fn all_semantic_errors_are_reported() {
        let text = BASE
            .replace("router_id: 10.0.0.1", "router_id: 0.0.0.0")
            .replace(
                "multihop: 3",
                "multihop: 3\n    hold_time: 1\n    restart_time: 5000",
            )
            .replace("password: secret", "password: \"\"");
        let es = errs(&text);
        let keys: Vec<&str> = es.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "router_id",
                "peers[0].password",
                "peers[1].hold_time",
                "peers[1].restart_time"
            ],
            "{}",
            format_errors(&es)
        );
    }

    #[test]
    fn yaml_syntax_error_names_line() {
        let text = "local_asn: 65001\nrouter_id: 10.0.0.1\npops:\n  - name: x\n   asn: 1\n";
        let es = errs(text);
        assert_eq!(es.len(), 1);
        assert!(es[0].line >= 4, "{}", es[0]);
        let es = errs("");
        assert_eq!(es.len(), 1, "{}", format_errors(&es));
    }

    #[test]
    fn error_display() {
        let e = ConfigError {
            file: "a.yaml".into(),
            line: 3,
            key: "peers[1].hold_time".into(),
            msg: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.yaml:3: peers[1].hold_time: bad");
        let e = ConfigError {
            line: 0,
            key: String::new(),
            ..e
        };
        assert_eq!(e.to_string(), "a.yaml: bad");
    }

    #[test]
    fn admin_mode_forms() {
        assert_eq!(parse_mode("0600"), Some(0o600));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o644"), Some(0o644));
        assert_eq!(parse_mode("0777"), Some(0o777));
        for bad in ["", "0800", "1777", "rw", "-600", "0o"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
        // Unquoted, YAML would read 0660 as a number; serde gives us the text.
        let c = ok(&BASE.replace("mode: \"0640\"", "mode: 0660"));
        assert_eq!(c.admin_mode(), 0o660);
    }

    #[test]
    fn locator_walks_block_yaml() {
        let text = "\
# comment
a: 1
b:
  c: 2   # trailing comment
  d:
    - x
    - y: 3
      z: 4
list:
- name: one
  v: 1
- name: two
  inner:
    k: \"#not a comment\"
\"quoted\": 5
flow: [1, 2]
";
        let l = Locator::new(text);
        assert_eq!(l.line("a"), 2);
        assert_eq!(l.line("b.c"), 4);
        assert_eq!(l.line("b.d"), 5);
        assert_eq!(l.line("b.d[0]"), 6);
        assert_eq!(l.line("b.d[1]"), 7);
        assert_eq!(l.line("b.d[1].y"), 7);
        assert_eq!(l.line("b.d[1].z"), 8);
        assert_eq!(l.line("list[0].v"), 11);
        assert_eq!(l.line("list[1]"), 12);
        assert_eq!(l.line("list[1].inner.k"), 14);
        assert_eq!(l.line("quoted"), 15);
        // Fallbacks: to the deepest key found.
        assert_eq!(l.line("flow[1]"), 16);
        assert_eq!(l.line("b.nope"), 3);
        assert_eq!(l.line("list[7].v"), 9);
        assert_eq!(l.line("nope"), 0);
        // A key of the same name at a deeper level is not taken for the top one.
        assert_eq!(l.line("v"), 0);
        assert_eq!(l.line("k"), 0);
    }

    #[test]
    fn bad_required_top_level_key_does_not_hide_later_errors() {
        let text = BASE
            .replace("local_asn: 65001", "local_asn: sixty-five")
            .replace("multihop: 3", "multihop: 3\n    bogus: 1");
        let es = errs(&text);
        let keys: Vec<&str> = es.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["local_asn", "peers[1].bogus"],
            "{}",
            format_errors(&es)
        );
        assert_eq!(es[1].line, line_of(&text, "bogus"));
    }

    #[test]
    fn duplicate_key_names_second_occurrence() {
        let text = BASE.replace("    gtsm: true\n", "    gtsm: true\n    gtsm: false\n");
        let es = errs(&text);
        assert_eq!(es.len(), 1, "{}", format_errors(&es));
        assert_eq!(es[0].key, "peers[0].gtsm");
        assert_eq!(es[0].line, line_of(&text, "gtsm: false"));
    }
}
