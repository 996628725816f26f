//! Configuration reload (SIGHUP or `sparrowctl reload`): re-read the config
//! file, validate it completely, and either keep the running configuration
//! (any error: every one is logged and returned as `file:line: key: message`)
//! or apply what can change live: `zones`, the DNS identity/UDP payload
//! limit and `dns.rrl` (a new `dns::Authority` swapped in atomically; queries
//! in progress finish on the old one; its RRL table starts empty). Sections that need a restart (sessions, POPs,
//! listeners, steering fallback, HTTP) are compared with the running ones and
//! named in the report and the log, not applied. New zones whose steered
//! addresses differ from the running health targets are applied, and the
//! targets named as needing a restart (a new address is answered unchecked
//! until then). Under systemd, every reload is bracketed by `RELOADING=1`
//! and `READY=1` (`crate::notify`).
//!
//! Owns nothing but the path and the startup config. Talks to: `config`,
//! `dns` (the shared authority handle), `notify`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::dns;
use crate::pops::PopState;
use crate::steer;

/// What a reload did (the `reload` reply on the admin socket).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Report {
    pub file: String,
    /// Applied live.
    pub applied: Vec<Cow<'static, str>>,
    /// Changed in the file but only taken at the next start.
    pub needs_restart: Vec<Cow<'static, str>>,
    pub zones: usize,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("running on the embedded default config: nothing to reload")]
    NoFile,
    #[error("reload lock poisoned")]
    Poisoned,
    /// The file has errors (each as `file:line: key: message`, one per line).
    #[error("{0}\nkeeping the running configuration")]
    Invalid(String),
    /// The new zones do not compile against the running config.
    #[error("{path}: {source}")]
    Dns { path: String, source: dns::DnsError },
}

/// Reloads the config file the daemon started from.
pub struct Reloader {
    path: Option<PathBuf>,
    running: Arc<Config>,
    dns: dns::Shared,
    steering: steer::Handle,
    pops: Arc<PopState>,
    /// One reload at a time; holds the config last applied.
    last: Mutex<Config>,
    /// Reloads that applied, that failed, and when the last one applied.
    counts: ReloadCounts,
    /// systemd's notification socket: `RELOADING=1` ... `READY=1` around a reload.
    notifier: Option<Arc<crate::notify::Notifier>>,
}

/// Reload outcomes since start (exported as metrics).
#[derive(Debug, Default)]
pub struct ReloadCounts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Unix time of the last successful reload (0: none).
    pub last_ok_unix: AtomicU64,
}

impl Reloader {
    pub fn new(
        path: Option<PathBuf>,
        running: Arc<Config>,
        dns: dns::Shared,
        steering: steer::Handle,
        pops: Arc<PopState>,
    ) -> Reloader {
        let last = Mutex::new((*running).clone());
        Reloader {
            path,
            running,
            dns,
            steering,
            pops,
            last,
            counts: ReloadCounts::default(),
            notifier: None,
        }
    }

    /// Tell systemd (`crate::notify`) when a reload starts and ends.
    pub fn with_notifier(mut self, notifier: Option<Arc<crate::notify::Notifier>>) -> Reloader {
        self.notifier = notifier;
        self
    }

    /// Reload outcomes so far.
    pub fn counts(&self) -> &ReloadCounts {
        &self.counts
    }

    /// Reload now (see `apply`), between `RELOADING=1` and `READY=1` to
    /// systemd when it listens. Counted in [`Reloader::counts`].
    pub fn reload(&self) -> Result<Report, ReloadError> {
        if let Some(n) = &self.notifier {
            n.reloading();
        }
        let r = self.apply();
        match &r {
            Ok(_) => {
                self.counts.ok.fetch_add(1, Relaxed);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.counts.last_ok_unix.store(now, Relaxed);
            }
            Err(_) => {
                self.counts.failed.fetch_add(1, Relaxed);
            }
        }
        if let Some(n) = &self.notifier {
            n.notify("READY=1");
        }
        r
    }

    /// Read, check and apply the file. `Err`: nothing changed; the error lists every problem.
    fn apply(&self) -> Result<Report, ReloadError> {
        let Some(path) = &self.path else {
            let e = ReloadError::NoFile;
            warn!("{e}");
            return Err(e);
        };
        let mut last = self.last.lock().map_err(|_| ReloadError::Poisoned)?;
        let new = match config::load(path) {
            Ok(c) => c,
            Err(errs) => {
                for e in &errs {
                    error!(error = %e, "reload: config rejected");
                }
                error!(
                    errors = errs.len(),
                    file = %path.display(),
                    "reload failed: keeping the running configuration"
                );
                return Err(ReloadError::Invalid(
                    config::format_errors(&errs).trim_end().to_string(),
                ));
            }
        };
        let r = &*self.running;
        let differs = |a: Value, b: Value| a != b;
        let mut needs_restart = Vec::new();
        for (name, changed) in [
            ("local_asn", r.local_asn != new.local_asn),
            ("router_id", r.router_id != new.router_id),
            ("pop", r.pop != new.pop),
            ("pops", differs(json!(r.pops), json!(new.pops))),
            ("listen", differs(json!(r.listen), json!(new.listen))),
            ("admin", differs(json!(r.admin), json!(new.admin))),
            ("logging", differs(json!(r.logging), json!(new.logging))),
            ("peers", differs(json!(r.peers), json!(new.peers))),
            ("steering", r.steering != new.steering),
            ("http", r.http != new.http),
            ("health", r.health != new.health),
            ("announce", r.announce != new.announce),
            ("metrics", r.metrics != new.metrics),
            (
                "selection_deferral",
                r.selection_deferral != new.selection_deferral,
            ),
            (
                "dns.listen/udp_workers/tcp_*",
                r.dns.listen != new.dns.listen
                    || r.dns.udp_workers != new.dns.udp_workers
                    || r.dns.tcp_idle_timeout != new.dns.tcp_idle_timeout
                    || r.dns.tcp_max_connections != new.dns.tcp_max_connections
                    || r.dns.tcp_max_per_client != new.dns.tcp_max_per_client,
            ),
        ] {
            if changed {
                needs_restart.push(name.into());
            }
        }
        let mut applied = Vec::new();
        // Zones refer to POPs by index: only with the running POP list.
        if json!(r.pops) != json!(new.pops) || r.pop != new.pop {
            warn!("reload: `pops` changed; zones are not reloaded until a restart");
        } else {
            let zones_changed = last.zones != new.zones;
            let dns_changed = last.dns.identity != new.dns.identity
                || last.dns.max_udp_payload != new.dns.max_udp_payload
                || last.dns.rrl != new.dns.rrl;
            if zones_changed || dns_changed {
                // Built against the running config (POPs, pop name), with the new zones.
                let mut cfg = (*self.running).clone();
                cfg.zones = new.zones.clone();
                cfg.dns.identity = new.dns.identity.clone();
                cfg.dns.max_udp_payload = new.dns.max_udp_payload;
                cfg.dns.rrl = new.dns.rrl.clone();
                let auth = dns::Authority::new(&cfg, self.steering.clone(), self.pops.clone())
                    .map_err(|source| ReloadError::Dns {
                        path: path.display().to_string(),
                        source,
                    })?;
                self.dns.store(Arc::new(auth));
                if zones_changed {
                    applied.push("zones".into());
                    // Health targets (and their bits) are fixed at start: a
                    // new answer address is written unchecked until then.
                    let targets_changed = cfg.pops.iter().enumerate().any(|(i, p)| {
                        let mut t = crate::pops::pop_targets(&cfg, &p.name);
                        t.truncate(crate::pops::MAX_TARGETS);
                        t != self.pops.targets(i)
                    });
                    if targets_changed {
                        needs_restart.push("health targets (steered addresses)".into());
                    }
                }
                if dns_changed {
                    applied.push("dns.identity/max_udp_payload/rrl".into());
                }
            }
        }
        let report = Report {
            file: path.display().to_string(),
            applied,
            needs_restart,
            zones: new.zones.len(),
        };
        if !report.needs_restart.is_empty() {
            warn!(sections = ?report.needs_restart, "reload: changed sections need a restart");
        }
        info!(applied = ?report.applied, zones = report.zones, file = %report.file, "config reloaded");
        *last = new;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{config_head, temp_path};

    const BASE: &str = concat!(
        config_head!(),
        "  - {name: x, asn: 65001}
  - {name: y, asn: 65002}
admin: {socket: /nonexistent/s.sock}
health:
  checks: [{name: web, type: tcp, port: 80}]
zones:
  - origin: example.test
    soa: {mname: ns1, rname: hostmaster@example.test}
    ns: [ns1]
    records: [{name: ns1, type: A, data: 192.0.2.53}]
    steered:
      - {name: www, ttl: 30, pops: {x: {a: [192.0.2.10]}, y: {a: [192.0.2.20]}}}
"
    );

    fn reloader(text: &str, name: &str) -> (Reloader, PathBuf) {
        let path = temp_path(name);
        std::fs::write(&path, text).unwrap();
        let cfg = Arc::new(config::load(&path).unwrap());
        let steering = steer::handle(&cfg);
        let pops = Arc::new(PopState::new(&cfg, None));
        let auth = dns::Authority::new(&cfg, steering.clone(), pops.clone()).unwrap();
        let shared: dns::Shared = Arc::new(arc_swap::ArcSwap::from_pointee(auth));
        (
            Reloader::new(Some(path.clone()), cfg, shared, steering, pops),
            path,
        )
    }

    #[test]
    fn a_new_steered_address_is_applied_and_its_health_target_needs_a_restart() {
        let (r, path) = reloader(BASE, "reload-targets.yaml");
        // Same addresses, another TTL: applied, nothing needs a restart.
        std::fs::write(&path, BASE.replace("ttl: 30", "ttl: 40")).unwrap();
        let rep = r.reload().unwrap();
        assert_eq!(rep.applied, vec![Cow::Borrowed("zones")]);
        assert!(rep.needs_restart.is_empty(), "{rep:?}");
        // A second address for y: applied, the health targets need a restart.
        std::fs::write(
            &path,
            BASE.replace("[192.0.2.20]", "[192.0.2.20, 192.0.2.21]"),
        )
        .unwrap();
        let rep = r.reload().unwrap();
        assert_eq!(rep.applied, vec![Cow::Borrowed("zones")]);
        assert_eq!(
            rep.needs_restart,
            vec![Cow::Borrowed("health targets (steered addresses)")]
        );
        let _ = std::fs::remove_file(&path);
    }
}
