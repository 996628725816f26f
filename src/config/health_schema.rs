//! The config file's schema for service health and capacity, as parsed
//! (before any check): `health` (checks, their concurrency cap, the all-down
//! policy) and `pops[].capacity` (the load figure's source and the shedding
//! watermarks). `validate` checks them; `crate::health` runs the checks and
//! load sources, `crate::pops` turns their results into POP availability.
//!
//! Talks to nobody.

use serde::{Deserialize, Serialize};

/// `health`: checks run by this sparrowd against every POP's answer
/// addresses (its own POP's included). With no checks, a POP's availability
/// follows its BGP sessions (see `crate::pops`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    /// Most checks (and load polls) in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// What steered names answer when no POP with records is usable.
    #[serde(default)]
    pub all_down: AllDownPolicy,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            checks: Vec::new(),
            concurrency: default_concurrency(),
            all_down: AllDownPolicy::default(),
        }
    }
}

fn default_concurrency() -> usize {
    32
}

/// `health.all_down`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AllDownPolicy {
    /// Answer as if every POP were up (gdnsd's behaviour): the first ranked
    /// POP with records, all its addresses.
    #[default]
    AnswerAll,
    /// NODATA.
    Empty,
}

/// The kind of a check.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Tcp,
    Http,
    Https,
    Dns,
    File,
}

/// One `health.checks` entry, run against every answer address of each of
/// its POPs (a `file` check reads one file for all of them).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// POP names this check covers; empty: every POP.
    #[serde(default)]
    pub pops: Vec<String>,
    /// Port (default: 80 http, 443 https, 53 dns; required for tcp).
    pub port: Option<u16>,
    /// Seconds between runs.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds one run may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Consecutive passes that bring a down target up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take an up target down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Random spread of each interval, as a fraction of it (0..1).
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// http/https: request path.
    pub path: Option<String>,
    /// http/https: Host header (default: the address).
    pub host: Option<String>,
    /// http/https: accepted status codes.
    #[serde(default = "default_status")]
    pub status: Vec<u16>,
    /// http/https: a substring the body must contain.
    pub body: Option<String>,
    /// https: verify the server certificate (against `host`).
    #[serde(default)]
    pub tls_verify: bool,
    /// dns: the query name.
    pub qname: Option<String>,
    /// dns: the query type (default A).
    pub qtype: Option<String>,
    /// dns: the expected RCODE (default NOERROR).
    pub rcode: Option<String>,
    /// dns: a string one answer record's data must equal.
    pub answer: Option<String>,
    /// file: the file of `POP[/ADDR] UP|DOWN` lines.
    pub file: Option<String>,
}

fn default_interval() -> f64 {
    5.0
}
fn default_timeout() -> f64 {
    2.0
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_jitter() -> f64 {
    0.1
}
fn default_status() -> Vec<u16> {
    vec![200]
}

/// `pops[].capacity`: where the POP's load figure (0..1) comes from, how it
/// is smoothed, and the watermarks that shed and drain.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// At or above: a fraction (load − low) / (high − low) of the prefixes
    /// that rank this POP first move to their next POP.
    #[serde(default = "default_low")]
    pub low: f64,
    /// At or above: the POP counts as drained.
    #[serde(default = "default_high")]
    pub high: f64,
    /// An HTTP URL whose body is the load (a number 0..1), polled every `interval`.
    pub url: Option<String>,
    /// A file holding the load (a number 0..1), re-read when it changes.
    pub file: Option<String>,
    /// Seconds between polls of `url` (and checks of `file`).
    #[serde(default = "default_load_interval")]
    pub interval: f64,
    /// Seconds one poll may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Weight of a new sample in the moving average (1: no smoothing).
    #[serde(default = "default_smoothing")]
    pub smoothing: f64,
    /// Seconds after which a figure not refreshed counts as 0 (default 3 × interval).
    pub stale_after: Option<f64>,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            low: default_low(),
            high: default_high(),
            url: None,
            file: None,
            interval: default_load_interval(),
            timeout: default_timeout(),
            smoothing: default_smoothing(),
            stale_after: None,
        }
    }
}

fn default_low() -> f64 {
    0.8
}
fn default_high() -> f64 {
    1.0
}
fn default_load_interval() -> f64 {
    5.0
}
fn default_smoothing() -> f64 {
    0.5
}
