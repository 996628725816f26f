//! The validated [`Config`]: the sections of a [`RawConfig`] that passed
//! every check, plus the tables derived from them once at load (this POP's
//! index, POPs by ASN, the admin socket mode as a number).
//!
//! Built only by `validate`; handed (as `Arc<Config>`) to every task.
//! Talks to `schema` (the section types).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::schema::*;
use super::zones::ZoneConfig;

/// A checked config. The section fields are as in the file; the derived
/// tables are read through methods ([`Config::local_pop_index`],
/// [`Config::pop_by_asn`], [`Config::admin_mode`]).
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// This POP's name (one of `pops`).
    pub pop: String,
    pub pops: Vec<PopConfig>,
    pub listen: ListenConfig,
    pub admin: AdminConfig,
    pub logging: LoggingConfig,
    pub peers: Vec<PeerConfig>,
    /// Answers before the RIB is ready (see `crate::steer`).
    pub steering: SteeringConfig,
    /// DNS listeners (see `crate::dns`).
    pub dns: DnsConfig,
    /// Authoritative zones: static records and steered names.
    pub zones: Vec<ZoneConfig>,
    /// Optional HTTP redirect listener (see `crate::http`).
    pub http: HttpConfig,
    /// Longest wait for upstream convergence before exporting to POP peers
    /// (see `crate::rib`), seconds.
    pub selection_deferral: u16,
    /// Service health checks and the all-down policy (see `crate::pops`).
    pub health: HealthConfig,
    /// Anycast prefixes originated while healthy, as written.
    pub announce: Vec<AnnounceConfig>,
    /// The operations endpoint (see `crate::metrics`).
    pub metrics: MetricsConfig,
    /// `announce`, parsed (see `crate::announce`).
    #[serde(skip)]
    announcements: Vec<Announcement>,
    /// Index in `pops` of this POP (`pop`).
    #[serde(skip)]
    local_pop: usize,
    /// POP index by POP ASN.
    #[serde(skip)]
    pop_by_asn: HashMap<u32, usize>,
    /// `admin.mode` as a number.
    #[serde(skip)]
    admin_mode: u32,
}

impl Config {
    /// Take the sections of a raw config that passed validation, and derive
    /// the tables. `admin_mode` is `admin.mode` as validation parsed it.
    pub(super) fn new(raw: RawConfig, admin_mode: u32, announcements: Vec<Announcement>) -> Config {
        let local_pop = pop_index(&raw.pops, &raw.pop).unwrap_or(0);
        let pop_by_asn = raw
            .pops
            .iter()
            .filter_map(|p| Some((p.asn, pop_index_by_asn(&raw.pops, p.asn)?)))
            .collect();
        Config {
            local_asn: raw.local_asn,
            router_id: raw.router_id,
            pop: raw.pop,
            pops: raw.pops,
            listen: raw.listen,
            admin: raw.admin,
            logging: raw.logging,
            peers: raw.peers,
            steering: raw.steering,
            dns: raw.dns,
            zones: raw.zones,
            http: raw.http,
            selection_deferral: raw.selection_deferral,
            health: raw.health,
            announce: raw.announce,
            metrics: raw.metrics,
            announcements,
            local_pop,
            pop_by_asn,
            admin_mode,
        }
    }

    /// The `announce` entries, parsed.
    pub fn announcements(&self) -> &[Announcement] {
        &self.announcements
    }

    /// Whether `p` is one of our `announce` prefixes or inside one: the RIB
    /// rejects such routes from every peer, so our own anycast prefix coming
    /// back from the network (another POP's announcement of it, say) never
    /// changes steering or what we export.
    pub fn originates(&self, p: &crate::types::Prefix) -> bool {
        self.announcements.iter().any(|a| a.prefix.contains(p))
    }

    /// The embedded default config (no peers), parsed and validated.
    pub fn embedded_default() -> Config {
        super::parse(super::DEFAULT_CONFIG, "<default-config>")
            .expect("embedded default config is valid")
    }

    /// Index in `pops` of this POP (computed at load).
    pub fn local_pop_index(&self) -> usize {
        debug_assert_eq!(
            self.pops.get(self.local_pop).map(|p| p.name.as_str()),
            Some(self.pop.as_str()),
            "`pop`/`pops` changed after validation: the derived tables are stale"
        );
        self.local_pop
    }

    /// This POP's entry in `pops`.
    pub fn local_pop(&self) -> &PopConfig {
        &self.pops[self.local_pop_index()]
    }

    /// Index in `pops` of the POP whose sparrowd uses `asn`.
    pub fn pop_index_by_asn(&self, asn: u32) -> Option<usize> {
        self.pop_by_asn.get(&asn).copied()
    }

    /// The POP whose sparrowd uses `asn`.
    pub fn pop_by_asn(&self, asn: u32) -> Option<&PopConfig> {
        self.pop_index_by_asn(asn).and_then(|i| self.pops.get(i))
    }

    /// The admin socket's file mode (`admin.mode`, parsed as octal at load).
    pub fn admin_mode(&self) -> u32 {
        self.admin_mode
    }

    /// The peer named `name`.
    pub fn peer_by_name(&self, name: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.name == name)
    }
}

impl RrlConfig {
    /// The `exempt` prefixes; entries that do not validate are skipped (a
    /// validated config has none).
    pub fn exempt_prefixes(&self) -> Vec<crate::types::Prefix> {
        self.exempt.iter().filter_map(|e| e.parse().ok()).collect()
    }
}

impl SteeringConfig {
    /// The fallback entries as (prefix, POP index in `pops`); entries that do
    /// not validate are skipped (a validated config has none).
    pub fn fallback_entries(&self, cfg: &Config) -> Vec<(crate::types::Prefix, usize)> {
        self.fallback
            .iter()
            .filter_map(|e| {
                let p = e.prefix.parse().ok()?;
                let i = pop_index(&cfg.pops, &e.pop)?;
                Some((p, i))
            })
            .collect()
    }

    /// Index in `pops` of the default POP (`default_pop`, else `pop`, else 0).
    pub fn default_pop_index(&self, cfg: &Config) -> usize {
        let name = self.default_pop.as_deref().unwrap_or(&cfg.pop);
        pop_index(&cfg.pops, name).unwrap_or(0)
    }
}
