//! The announcement task: every `interval`, each prefix's condition is
//! evaluated — the POP is not drained, steering has left the fallback map for
//! the prefix's family (unless `announce_before_rib`), and its check passes
//! (a `health.checks` entry's verdict on this POP's targets, or a DNS query
//! of our own listener for the first zone's apex SOA) — and the results go
//! to the [`Announcer`], which publishes what changed.
//!
//! Talks to `health` (`Status::check_verdict`, `probe`), `pops` (drained),
//! `steer` (the source); runs on the daemon's runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use super::{Adverts, Announcer};
use crate::config::{Announcement, CheckConfig, CheckKind, Config};
use crate::health::{self, Outcome, Status};
use crate::pops::PopState;
use crate::steer::{self, Source};

/// What the task reads.
struct Inputs {
    cfg: Arc<Config>,
    health: Arc<Status>,
    pops: Arc<PopState>,
    steering: steer::Handle,
    /// The self-query, with the listener it goes to (`None`: no DNS).
    self_check: Option<(CheckConfig, IpAddr)>,
}

/// Start the controller for `cfg.announcements()` on the current runtime,
/// publishing on `tx`. The handle serves `sparrowctl announcements` and the
/// shutdown sequence.
pub fn start(
    cfg: Arc<Config>,
    tx: watch::Sender<Adverts>,
    health: Arc<Status>,
    pops: Arc<PopState>,
    steering: steer::Handle,
) -> Arc<Announcer> {
    let ann = Arc::new(Announcer::new(cfg.clone(), tx));
    if !cfg.announcements().is_empty() {
        let inputs = Arc::new(Inputs {
            self_check: self_check(&cfg),
            cfg,
            health,
            pops,
            steering,
        });
        tokio::spawn(run(ann.clone(), inputs));
    }
    ann
}

/// The DNS self-query: the first zone's apex SOA from the first listener
/// (an unspecified address is asked on loopback).
fn self_check(cfg: &Config) -> Option<(CheckConfig, IpAddr)> {
    let listen = cfg.dns.listen.first()?;
    let zone = cfg.zones.first()?;
    let addr = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    };
    let check = CheckConfig {
        name: "self".into(),
        kind: CheckKind::Dns,
        pops: Vec::new(),
        port: Some(listen.port()),
        interval: 1.0,
        timeout: 1.0,
        rise: 1,
        fall: 1,
        jitter: 0.0,
        path: None,
        host: None,
        status: Vec::new(),
        body: None,
        tls_verify: false,
        qname: Some(zone.origin.clone()),
        qtype: Some("SOA".into()),
        rcode: None,
        answer: None,
        file: None,
    };
    Some((check, addr))
}

async fn run(ann: Arc<Announcer>, inputs: Arc<Inputs>) {
    let anns = inputs.cfg.announcements();
    let mut next: Vec<Instant> = vec![Instant::now(); anns.len()];
    loop {
        let mut wake = *next.iter().min().expect("at least one announcement");
        if let Some(g) = ann.grace_until() {
            wake = wake.min(g);
        }
        sleep_until(wake.into()).await;
        let now = Instant::now();
        let mut runs = JoinSet::new();
        for (i, a) in anns.iter().enumerate() {
            if next[i] <= now {
                next[i] = now + a.interval;
                let inputs = inputs.clone();
                let a = a.clone();
                runs.spawn(async move { (i, evaluate(&inputs, &a).await) });
            }
        }
        let mut results = vec![None; anns.len()];
        while let Some(r) = runs.join_next().await {
            if let Ok((i, r)) = r {
                results[i] = Some(r);
            }
        }
        ann.observe(results, Instant::now());
    }
}

/// One evaluation of `a`'s condition: `Err` says why it fails.
async fn evaluate(inputs: &Inputs, a: &Announcement) -> Result<(), String> {
    let local = inputs.pops.local();
    if inputs.pops.drained(local) {
        return Err("POP drained".into());
    }
    if !a.announce_before_rib && inputs.steering.load().source(a.prefix.afi()) == Source::Fallback {
        return Err("steering still on the fallback map".into());
    }
    match a.check {
        Some(ci) => {
            let name = &inputs.cfg.health.checks[ci].name;
            match inputs.health.check_verdict(ci, local) {
                Some(true) => Ok(()),
                Some(false) => Err(format!("check `{name}` failing")),
                None => Err(format!("check `{name}` has no verdict yet")),
            }
        }
        None => {
            let Some((c, addr)) = &inputs.self_check else {
                return Err("no DNS listener to query".into());
            };
            let mut c = c.clone();
            c.timeout = a.interval.as_secs_f64().clamp(0.05, 2.0) * 0.8;
            match health::probe(&c, *addr).await {
                Outcome::Pass => Ok(()),
                Outcome::Fail(why) => Err(format!("self-query: {why}")),
            }
        }
    }
}
