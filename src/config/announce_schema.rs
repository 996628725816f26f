//! The config file's schema for anycast announcements, as parsed (before any
//! check): `announce`, the prefixes this sparrowd originates over BGP while
//! it is healthy. `validate_announce` checks them and derives the
//! [`Announcement`]s the `crate::announce` controller runs.
//!
//! Talks to nobody (uses `crate::types::Prefix`).

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::Prefix;

/// One `announce` entry as written.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnnounceConfig {
    /// `ADDRESS/LENGTH`, IPv4 or IPv6, host bits clear.
    pub prefix: String,
    /// `ASN:VALUE` standard communities (RFC 1997), each half 0..=65535.
    #[serde(default)]
    pub communities: Vec<String>,
    /// `GLOBAL:DATA1:DATA2` large communities (RFC 8092).
    #[serde(default)]
    pub large_communities: Vec<String>,
    /// Extra copies of our ASN in the AS_PATH while up.
    #[serde(default)]
    pub prepend: u8,
    /// Which peers get it: `upstream` (the default) and/or `pop`.
    #[serde(default = "default_to")]
    pub to: Vec<String>,
    /// Next hop to send instead of the session's local address.
    pub next_hop: Option<IpAddr>,
    /// The `health.checks` entry whose result on this POP's targets gates
    /// the prefix; none: a DNS query of our own listener for the first
    /// zone's apex SOA.
    pub check: Option<String>,
    /// Consecutive good evaluations that announce a withdrawn prefix.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive bad evaluations that take an announced prefix down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Seconds between evaluations (and self-queries).
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Least seconds between two changes of the prefix's state.
    #[serde(default = "default_hold_down")]
    pub hold_down: f64,
    /// `withdraw`, `prepend N`, or `graceful_shutdown N` (seconds).
    #[serde(default = "default_on_down")]
    pub on_down: String,
    /// Announce while steering still answers from the fallback map.
    #[serde(default)]
    pub announce_before_rib: bool,
}

fn default_to() -> Vec<String> {
    vec!["upstream".into()]
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_interval() -> f64 {
    1.0
}
fn default_hold_down() -> f64 {
    5.0
}
fn default_on_down() -> String {
    "withdraw".into()
}

/// What a prefix does when its condition fails (`on_down`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDown {
    /// Withdraw it.
    Withdraw,
    /// Keep it, with this many more copies of our ASN (a backup path).
    Prepend(u8),
    /// Re-announce it with GRACEFUL_SHUTDOWN (RFC 8326) for this long, then withdraw.
    GracefulShutdown(Duration),
}

/// A checked `announce` entry, with everything parsed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Announcement {
    pub prefix: Prefix,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub prepend: u8,
    pub to_upstream: bool,
    pub to_pops: bool,
    pub next_hop: Option<IpAddr>,
    /// Index in `health.checks`; `None`: the DNS self-query.
    pub check: Option<usize>,
    pub rise: u32,
    pub fall: u32,
    pub interval: Duration,
    pub hold_down: Duration,
    pub on_down: OnDown,
    pub announce_before_rib: bool,
}
