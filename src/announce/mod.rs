//! Anycast announcements: the prefixes in `announce` that this sparrowd
//! originates over BGP while it is healthy, so that routing itself sends
//! clients to a POP that can answer them (and the router's ECMP spreads them
//! over several sparrowd of one POP).
//!
//! - `state`: one prefix's state machine, pure (rise/fall, hold-down,
//!   `on_down`, the shutdown sequence);
//! - `runner`: the task that evaluates each prefix's condition every
//!   `interval` (its health check, or a DNS query of our own listener; the POP
//!   not drained; steering off the fallback map) and publishes the
//!   [`Adverts`] the sessions send;
//! - this file: what is published ([`Advert`], built by [`advert_attrs`]),
//!   the [`Announcer`] handle and its status rows for `sparrowctl
//!   announcements`.
//!
//! Talks to `config` (`announce`), `health` (the check's verdict, the DNS
//! probe), `pops` (drained), `steer` (the source per family). The sessions
//! (`session::originate`) read the published [`Adverts`] through a
//! `tokio::sync::watch` channel and send each to the peers it is for; the
//! RIB is not involved (nothing we originate is a RIB route).

mod runner;
mod state;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{Announcement, Config};
use crate::types::{AsPath, Origin, PathAttrs, Prefix};
use crate::wire::community;

pub use runner::start;
pub use state::{Machine, Phase};

/// One prefix as the sessions send it.
#[derive(Clone, Debug, PartialEq)]
pub struct Advert {
    pub prefix: Prefix,
    /// ORIGIN IGP, the AS_PATH and communities; the next hop is the
    /// session's (`None` here) unless `next_hop` is configured.
    pub attrs: Arc<PathAttrs>,
    pub to_upstream: bool,
    pub to_pops: bool,
}

/// What is announced now, in config order.
pub type Adverts = Arc<Vec<Advert>>;

/// A channel with nothing announced, for the sessions to start on.
pub fn channel() -> (watch::Sender<Adverts>, watch::Receiver<Adverts>) {
    watch::channel(Arc::new(Vec::new()))
}

/// The attributes of `a` in phase `p` (`None`: withdrawn): our ASN once,
/// plus `prepend` (and `on_down`'s extra prepends when down), the
/// configured communities, GRACEFUL_SHUTDOWN during a grace period.
pub fn advert_attrs(a: &Announcement, local_as: u32, p: Phase) -> Option<PathAttrs> {
    let extra = match (p, a.on_down) {
        (Phase::Withdrawn, _) => return None,
        (Phase::Prepended, crate::config::OnDown::Prepend(n)) => n,
        _ => 0,
    };
    let copies = 1 + usize::from(a.prepend) + usize::from(extra);
    let mut communities = a.communities.clone();
    if matches!(p, Phase::Grace { .. }) {
        communities.push(community::GRACEFUL_SHUTDOWN);
    }
    Some(PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::sequence(&vec![local_as; copies]),
        next_hop: a.next_hop,
        communities,
        large_communities: a.large_communities.clone(),
        ..PathAttrs::default()
    })
}

/// One prefix in `sparrowctl announcements` (the peers that have it come
/// from the sessions' status).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnounceRow {
    pub prefix: Prefix,
    /// `withdrawn`, `up`, `prepended` or `grace`.
    pub state: String,
    pub reason: String,
    /// Seconds since the last change (none yet: `None`).
    pub since_change: Option<f64>,
    /// State changes since sparrowd started.
    #[serde(default)]
    pub changes: u64,
    /// Names of the peers whose session has it.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// The controller's shared handle: the published adverts and the rows.
pub struct Announcer {
    tx: watch::Sender<Adverts>,
    machines: Mutex<Vec<Machine>>,
    cfg: Arc<Config>,
}

impl Announcer {
    /// A controller for `cfg.announcements()`, publishing on `tx`.
    pub fn new(cfg: Arc<Config>, tx: watch::Sender<Adverts>) -> Announcer {
        let now = Instant::now();
        Announcer {
            tx,
            machines: Mutex::new(vec![Machine::new(now); cfg.announcements().len()]),
            cfg,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Machine>> {
        self.machines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply `f` to every machine; publish when a phase changed.
    fn update(&self, mut f: impl FnMut(usize, &Announcement, &mut Machine) -> bool) {
        let mut ms = self.lock();
        let mut changed = false;
        for (i, (a, m)) in self
            .cfg
            .announcements()
            .iter()
            .zip(ms.iter_mut())
            .enumerate()
        {
            if f(i, a, m) {
                tracing::info!(prefix = %a.prefix, phase = ?m.phase(), reason = %m.reason(), "announce: state");
                changed = true;
            }
        }
        if changed {
            let adverts = self.adverts(&ms);
            self.tx.send_replace(Arc::new(adverts));
        }
    }

    fn adverts(&self, ms: &[Machine]) -> Vec<Advert> {
        self.cfg
            .announcements()
            .iter()
            .zip(ms)
            .filter_map(|(a, m)| {
                Some(Advert {
                    prefix: a.prefix,
                    attrs: Arc::new(advert_attrs(a, self.cfg.local_asn, m.phase())?),
                    to_upstream: a.to_upstream,
                    to_pops: a.to_pops,
                })
            })
            .collect()
    }

    /// Record evaluation results (one per announcement, `None`: not due).
    pub fn observe(&self, results: Vec<Option<Result<(), String>>>, now: Instant) {
        let mut results = results.into_iter();
        self.update(|_, a, m| match results.next().flatten() {
            Some(r) => m.observe(a, r, now),
            None => m.expire(now),
        });
    }

    /// Start the shutdown sequence; returns when the last grace period ends
    /// (`None`: nothing to wait for).
    pub fn stop(&self, now: Instant) -> Option<Instant> {
        self.update(|_, a, m| m.stop(a, now));
        self.lock().iter().filter_map(|m| m.grace_until()).max()
    }

    /// End every grace period now (a second signal at shutdown): all withdrawn.
    pub fn stop_now(&self) {
        self.update(|_, _, m| m.end_grace());
    }

    /// When the first grace period in progress ends.
    pub fn grace_until(&self) -> Option<Instant> {
        self.lock().iter().filter_map(|m| m.grace_until()).min()
    }

    /// End grace periods that are over.
    pub fn expire(&self, now: Instant) {
        self.update(|_, _, m| m.expire(now));
    }

    /// The rows for `sparrowctl announcements` (without peers).
    pub fn rows(&self) -> Vec<AnnounceRow> {
        let now = Instant::now();
        self.cfg
            .announcements()
            .iter()
            .zip(self.lock().iter())
            .map(|(a, m)| AnnounceRow {
                prefix: a.prefix,
                state: phase_name(m.phase()).into(),
                reason: m.reason().into(),
                since_change: m.changed_at().map(|t| now.duration_since(t).as_secs_f64()),
                changes: m.changes(),
                peers: Vec::new(),
            })
            .collect()
    }
}

/// The word for a phase.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Withdrawn => "withdrawn",
        Phase::Up => "up",
        Phase::Prepended => "prepended",
        Phase::Grace { .. } => "grace",
    }
}
