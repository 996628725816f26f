//! The shared health status: per target, per check, the hysteresis state
//! (last result, state, consecutive count, time of the last change); per
//! POP with a load source, the smoothed figure. Written by the runner's
//! tasks (one short lock per result), read by admin (`sparrowctl health`)
//! as a [`Snapshot`].
//!
//! Every result is folded here: a target's state is the worst of its checks
//! (down if any check is down; checks without a result yet count as up),
//! and `PopState::set_target_health` is called when that state or its
//! detail changes; load figures go to `PopState::set_measured_load`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{info, warn};

use super::hysteresis::{Hysteresis, Outcome};
use super::load::Smoother;
use crate::config::{CheckConfig, CheckKind, Config};
use crate::pops::{PopState, TargetHealth};

/// One check as the status knows it.
#[derive(Clone, Debug)]
struct CheckMeta {
    name: String,
    kind: CheckKind,
    rise: u32,
    fall: u32,
}

/// One target (a POP's answer address) and its checks' states.
#[derive(Debug)]
struct TargetRow {
    pop: usize,
    target: usize,
    addr: IpAddr,
    /// (check index, its state on this target), in config order.
    checks: Vec<(usize, Hysteresis)>,
    /// What was last given to `PopState` (`None`: nothing yet; it starts up).
    pushed: Option<TargetHealth>,
}

#[derive(Debug)]
struct LoadRow {
    pop: usize,
    source: String,
    smoother: Smoother,
    /// What was last given to `PopState::set_measured_load`.
    published: Option<f64>,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    checks: Vec<CheckMeta>,
    targets: Vec<TargetRow>,
    loads: Vec<LoadRow>,
}

/// The health status shared by the runner (writer) and admin (reader).
pub struct Status {
    pops: Arc<PopState>,
    names: Vec<String>,
    table: Mutex<Table>,
}

/// Which POPs check `c` covers (indices; empty `pops`: every POP).
pub fn covered(c: &CheckConfig, pops: &PopState) -> Vec<usize> {
    if c.pops.is_empty() {
        return (0..pops.len()).collect();
    }
    c.pops.iter().filter_map(|n| pops.index(n).ok()).collect()
}

impl Status {
    /// The status for `cfg`'s checks and load sources over `pops`' targets.
    pub fn new(cfg: &Config, pops: Arc<PopState>) -> Status {
        let mut t = Table {
            checks: cfg
                .health
                .checks
                .iter()
                .map(|c| CheckMeta {
                    name: c.name.clone(),
                    kind: c.kind,
                    rise: c.rise,
                    fall: c.fall,
                })
                .collect(),
            ..Table::default()
        };
        let cover: Vec<Vec<usize>> = cfg
            .health
            .checks
            .iter()
            .map(|c| covered(c, &pops))
            .collect();
        for pop in 0..pops.len() {
            let checks: Vec<usize> = (0..cover.len())
                .filter(|&ci| cover[ci].contains(&pop))
                .collect();
            if checks.is_empty() {
                continue;
            }
            for (target, &addr) in pops.targets(pop).iter().enumerate() {
                t.targets.push(TargetRow {
                    pop,
                    target,
                    addr,
                    checks: checks
                        .iter()
                        .map(|&ci| (ci, Hysteresis::default()))
                        .collect(),
                    pushed: None,
                });
            }
        }
        for (pop, pc) in cfg.pops.iter().enumerate() {
            let c = &pc.capacity;
            let source = match (&c.url, &c.file) {
                (Some(u), _) => u.clone(),
                (None, Some(f)) => format!("file {f}"),
                (None, None) => continue,
            };
            t.loads.push(LoadRow {
                pop,
                source,
                smoother: Smoother::for_config(c),
                published: None,
                last_error: None,
            });
        }
        Status {
            names: pops.names().iter().map(|s| s.to_string()).collect(),
            pops,
            table: Mutex::new(t),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether there is anything to run (checks on some target, or a load source).
    pub fn has_work(&self) -> bool {
        let t = self.lock();
        !t.targets.is_empty() || !t.loads.is_empty()
    }

    /// Record one result of check `check` on target `target` of `pop`.
    pub fn record(&self, check: usize, pop: usize, target: usize, r: Outcome, now: Instant) {
        let mut guard = self.lock();
        let t = &mut *guard;
        let Some(row) = t
            .targets
            .iter_mut()
            .find(|r| r.pop == pop && r.target == target)
        else {
            return;
        };
        let Some((_, h)) = row.checks.iter_mut().find(|(ci, _)| *ci == check) else {
            return;
        };
        let meta = &t.checks[check];
        let first = h.state().is_none();
        if h.observe(r, meta.rise, meta.fall, now) {
            let up = h.state() == Some(true);
            let detail = h
                .down_detail(meta.kind != CheckKind::File)
                .unwrap_or_default();
            if up && first {
                // targets start up: nothing new to tell
            } else if up {
                info!(pop = %self.names[pop], target = %row.addr, check = %meta.name, "health: check up");
            } else {
                warn!(pop = %self.names[pop], target = %row.addr, check = %meta.name, %detail, "health: check down");
            }
        }
        let health = combine(&t.checks, &row.checks);
        if row.pushed.as_ref() != Some(&health) {
            if row.pushed.as_ref().is_none_or(|p| p.up) != health.up {
                info!(pop = %self.names[pop], target = %row.addr, up = health.up, detail = %health.detail, "health: target state");
            }
            self.pops.set_target_health(pop, target, health.clone());
            row.pushed = Some(health);
        }
    }

    /// Check `check` on `pop`'s targets: `Some(true)` when one of them
    /// passes it, `Some(false)` when each has a verdict and none passes,
    /// `None` before that (or when the check covers none of them). The
    /// anycast controller (`crate::announce`) gates its prefixes on it.
    pub fn check_verdict(&self, check: usize, pop: usize) -> Option<bool> {
        let t = self.lock();
        let states: Vec<Option<bool>> = t
            .targets
            .iter()
            .filter(|r| r.pop == pop)
            .filter_map(|r| r.checks.iter().find(|(ci, _)| *ci == check))
            .map(|(_, h)| h.state())
            .collect();
        if states.contains(&Some(true)) {
            Some(true)
        } else if !states.is_empty() && states.iter().all(|s| s.is_some()) {
            Some(false)
        } else {
            None
        }
    }

    /// Record one poll of `pop`'s load source and publish the smoothed figure.
    pub fn record_load(&self, pop: usize, r: Result<f64, String>, now: Instant) {
        let mut t = self.lock();
        let Some(row) = t.loads.iter_mut().find(|l| l.pop == pop) else {
            return;
        };
        match r {
            Ok(v) => {
                row.smoother.sample(v, now);
                row.last_error = None;
            }
            Err(e) => {
                if row.last_error.as_deref() != Some(e.as_str()) {
                    warn!(pop = %self.names[pop], source = %row.source, error = %e, "load poll failed");
                }
                row.last_error = Some(e);
            }
        }
        row.published = row.smoother.value(now);
        self.pops.set_measured_load(pop, row.published);
    }

    /// Everything, for `sparrowctl health`.
    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let t = self.lock();
        let targets = t
            .targets
            .iter()
            .map(|row| {
                let h = combine(&t.checks, &row.checks);
                TargetSnapshot {
                    pop: row.pop,
                    pop_name: self.names[row.pop].clone(),
                    target: row.target,
                    addr: row.addr,
                    up: h.up,
                    detail: h.detail,
                    checks: row
                        .checks
                        .iter()
                        .map(|(ci, h)| CheckSnapshot {
                            name: t.checks[*ci].name.clone(),
                            kind: kind_name(t.checks[*ci].kind).into(),
                            last: h.last().map(|o| match o {
                                Outcome::Pass => "ok".to_string(),
                                Outcome::Fail(m) => m.clone(),
                            }),
                            state: h.state(),
                            consecutive: h.streak(),
                            since_change_secs: h
                                .changed_at()
                                .map(|c| now.saturating_duration_since(c).as_secs_f64()),
                        })
                        .collect(),
                }
            })
            .collect();
        let loads = t
            .loads
            .iter()
            .map(|l| LoadSnapshot {
                pop: l.pop,
                pop_name: self.names[l.pop].clone(),
                source: l.source.clone(),
                smoothed: l.published,
                last_sample: l.smoother.last_sample,
                age_secs: l.smoother.age(now),
                error: l.last_error.clone(),
            })
            .collect();
        Snapshot { targets, loads }
    }
}

/// The worst of a target's checks: down if any is down (the first such in
/// config order gives the detail).
fn combine(meta: &[CheckMeta], checks: &[(usize, Hysteresis)]) -> TargetHealth {
    for (ci, h) in checks {
        if let Some(d) = h.down_detail(meta[*ci].kind != CheckKind::File) {
            return TargetHealth {
                up: false,
                detail: d,
            };
        }
    }
    TargetHealth {
        up: true,
        detail: String::new(),
    }
}

pub fn kind_name(k: CheckKind) -> &'static str {
    match k {
        CheckKind::Tcp => "tcp",
        CheckKind::Http => "http",
        CheckKind::Https => "https",
        CheckKind::Dns => "dns",
        CheckKind::File => "file",
    }
}

/// A copy of the status (see [`Status::snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub targets: Vec<TargetSnapshot>,
    pub loads: Vec<LoadSnapshot>,
}

#[derive(Clone, Debug)]
pub struct TargetSnapshot {
    pub pop: usize,
    pub pop_name: String,
    pub target: usize,
    pub addr: IpAddr,
    /// The checks' combined verdict (before forced states).
    pub up: bool,
    pub detail: String,
    pub checks: Vec<CheckSnapshot>,
}

#[derive(Clone, Debug)]
pub struct CheckSnapshot {
    pub name: String,
    pub kind: String,
    /// `ok` or the failure (`http 503`, `timeout`, ...); `None` before the first run.
    pub last: Option<String>,
    /// Up, down, or `None` before the first result.
    pub state: Option<bool>,
    /// Consecutive results like the last one.
    pub consecutive: u32,
    pub since_change_secs: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct LoadSnapshot {
    pub pop: usize,
    pub pop_name: String,
    /// The URL, or `file PATH`.
    pub source: String,
    /// The smoothed figure given to the pick at the last poll (`None`: none
    /// yet, or stale then).
    pub smoothed: Option<f64>,
    pub last_sample: Option<f64>,
    pub age_secs: Option<f64>,
    /// The last poll's error, if it failed.
    pub error: Option<String>,
}
