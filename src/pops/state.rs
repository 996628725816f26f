//! POP state: the per-POP and per-target facts availability is judged from,
//! held in atomics so that the DNS and HTTP paths read them lock-free.
//!
//! Writers (never on the query path):
//! - the session tasks: [`SessionFlags`] (which peers are Established);
//! - the health task (`crate::health`): [`PopState::set_target_health`] per
//!   target (a POP's answer address) and [`PopState::set_measured_load`];
//! - the operator through the admin socket: drains, forced states and manual
//!   loads ([`PopState::set_drained`], [`PopState::force`],
//!   [`PopState::set_manual_load`]).
//!
//! Every writer recomputes the POP's derived words (`up_mask`, `healthy`)
//! under one writer lock, so readers see whole states.
//!
//! Targets: a POP's targets are the distinct A and AAAA addresses of its
//! records in every steered name, in config order (at most
//! [`MAX_TARGETS`] per POP). A target is up until a check says otherwise.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{Config, Role};

/// Most targets (answer addresses) per POP: one bit each in a `u64`.
pub const MAX_TARGETS: usize = 64;

/// Per peer (by `PeerId`): whether its session is Established. Written by the
/// session tasks on every state change, read lock-free by [`PopState`].
#[derive(Debug, Default)]
pub struct SessionFlags {
    established: Vec<AtomicBool>,
}

impl SessionFlags {
    /// `peers` flags, all down.
    pub fn new(peers: usize) -> SessionFlags {
        SessionFlags {
            established: (0..peers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Record whether `peer`'s session is Established (unknown ids are ignored).
    #[inline]
    pub fn set(&self, peer: usize, established: bool) {
        if let Some(f) = self.established.get(peer) {
            f.store(established, Ordering::Release);
        }
    }

    /// Whether `peer`'s session is Established (false for an unknown id).
    #[inline]
    pub fn is_established(&self, peer: usize) -> bool {
        self.established
            .get(peer)
            .is_some_and(|f| f.load(Ordering::Acquire))
    }
}

/// Why a POP-state request failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PopError {
    #[error("no POP named {0:?} (known: {1})")]
    Unknown(String, String),
    #[error("POP {0} has no answer address {1}")]
    UnknownTarget(String, IpAddr),
    #[error("load must be a number from 0 to 1, not {0}")]
    BadLoad(f64),
}

/// An operator's forced state for a POP or one target (`sparrowctl force`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Force {
    /// Judged by checks (or sessions).
    #[default]
    Auto,
    Up,
    Down,
}

impl Force {
    fn to_u8(self) -> u8 {
        match self {
            Force::Auto => 0,
            Force::Up => 1,
            Force::Down => 2,
        }
    }
    fn from_u8(v: u8) -> Force {
        match v {
            1 => Force::Up,
            2 => Force::Down,
            _ => Force::Auto,
        }
    }
}

/// What the checks last concluded about one target (see `crate::health`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetHealth {
    pub up: bool,
    /// Why, for `explain` and `sparrowctl health`: e.g. `http 503 x3`.
    pub detail: String,
}

/// One POP's state.
struct Pop {
    name: Box<str>,
    /// Peer ids of its `pop` sessions.
    sessions: Vec<usize>,
    /// Its answer addresses.
    targets: Vec<IpAddr>,
    /// Whether health checks cover it (then they, not sessions, decide `up`).
    checked: bool,
    min_up_fraction: f64,
    low: f64,
    high: f64,
    drained: AtomicBool,
    forced: AtomicU8,
    /// Per target: checks say up (bit set) — written by the health task.
    checks_up: AtomicU64,
    /// Per target forced state, two bits each would do; kept simple: one byte each.
    target_forced: Vec<AtomicU8>,
    /// Derived: targets up after forced states (bit per target).
    up_mask: AtomicU64,
    /// Derived: at least `min_up_fraction` of the targets are up.
    healthy: AtomicBool,
    /// Measured load (f32 bits; NaN: none), set by the health task already
    /// smoothed and aged.
    measured_load: AtomicU32,
    /// Operator's load (f32 bits; NaN: none); wins over the measured one.
    manual_load: AtomicU32,
    /// Last check conclusion per target, for explain and `sparrowctl health`.
    detail: Mutex<Vec<TargetHealth>>,
}

/// Availability state of every POP, by index in the config's `pops`.
pub struct PopState {
    pops: Vec<Pop>,
    local: usize,
    sessions_up: Option<Arc<SessionFlags>>,
    /// Serialises writers' read-modify-write of the derived words.
    write: Mutex<()>,
}

fn nan() -> AtomicU32 {
    AtomicU32::new(f32::NAN.to_bits())
}

/// The distinct A and AAAA addresses of POP `pop` across every steered name
/// (`config::zones::pop_targets`).
pub fn pop_targets(cfg: &Config, pop: &str) -> Vec<IpAddr> {
    crate::config::zones::pop_targets(&cfg.zones, pop)
}

impl PopState {
    /// State for `cfg`'s POPs; `sessions_up` gives session state (`None`: no
    /// sessions, so only the local POP is up; for tests and tools).
    pub fn new(cfg: &Config, sessions_up: Option<Arc<SessionFlags>>) -> PopState {
        // (With `sessions_up` None and sessions configured, those POPs read as down.)
        let mut sessions = vec![Vec::new(); cfg.pops.len()];
        for (i, p) in cfg.peers.iter().enumerate() {
            if p.role == Role::Pop {
                if let Some(pop) = cfg.pop_index_by_asn(p.remote_asn) {
                    sessions[pop].push(i);
                }
            }
        }
        let pops = cfg
            .pops
            .iter()
            .zip(sessions)
            .map(|(pc, sessions)| {
                let mut targets = pop_targets(cfg, &pc.name);
                targets.truncate(MAX_TARGETS);
                let n = targets.len();
                let all = mask_of(n);
                let checked = cfg
                    .health
                    .checks
                    .iter()
                    .any(|c| c.pops.is_empty() || c.pops.contains(&pc.name));
                Pop {
                    name: pc.name.as_str().into(),
                    sessions,
                    targets,
                    checked,
                    min_up_fraction: pc.min_up_fraction,
                    low: pc.capacity.low,
                    high: pc.capacity.high,
                    drained: AtomicBool::new(false),
                    forced: AtomicU8::new(0),
                    checks_up: AtomicU64::new(all),
                    target_forced: (0..n).map(|_| AtomicU8::new(0)).collect(),
                    up_mask: AtomicU64::new(all),
                    healthy: AtomicBool::new(true),
                    measured_load: nan(),
                    manual_load: nan(),
                    detail: Mutex::new(vec![TargetHealth::default(); n]),
                }
            })
            .collect();
        PopState {
            pops,
            local: cfg.local_pop_index(),
            sessions_up,
            write: Mutex::new(()),
        }
    }

    // ---- read side: lock-free, per query ------------------------------------

    /// Whether the POP's service is available, before drains: forced up or
    /// down by the operator; else, with checks on it, at least
    /// `min_up_fraction` of its targets up; else (today's rule) the local POP
    /// always, another while one of its `pop` sessions is Established, or
    /// always if it has none configured (nothing watches it).
    #[inline]
    pub fn up(&self, pop: usize) -> bool {
        let Some(p) = self.pops.get(pop) else {
            return false;
        };
        match Force::from_u8(p.forced.load(Ordering::Relaxed)) {
            Force::Up => return true,
            Force::Down => return false,
            Force::Auto => {}
        }
        if p.checked {
            return p.healthy.load(Ordering::Acquire);
        }
        if pop == self.local || p.sessions.is_empty() {
            return true;
        }
        let Some(flags) = &self.sessions_up else {
            return false;
        };
        p.sessions.iter().any(|&i| flags.is_established(i))
    }

    /// Whether anything watches `pop` (checks, or sessions): else `up` is always true.
    pub fn monitored(&self, pop: usize) -> bool {
        self.pops
            .get(pop)
            .is_some_and(|p| p.checked || (pop != self.local && !p.sessions.is_empty()))
    }

    /// Whether checks decide `pop`'s availability.
    pub fn checked(&self, pop: usize) -> bool {
        self.pops.get(pop).is_some_and(|p| p.checked)
    }

    /// Drained by the operator.
    #[inline]
    pub fn drained(&self, pop: usize) -> bool {
        self.pops
            .get(pop)
            .is_some_and(|p| p.drained.load(Ordering::Relaxed))
    }

    /// Up and not drained by the operator (capacity is the pick's business:
    /// see `super::pick`).
    #[inline]
    pub fn usable(&self, pop: usize) -> bool {
        !self.drained(pop) && self.up(pop)
    }

    /// The operator's forced state of the POP.
    pub fn forced(&self, pop: usize) -> Force {
        self.pops.get(pop).map_or(Force::Auto, |p| {
            Force::from_u8(p.forced.load(Ordering::Relaxed))
        })
    }

    /// The POP's targets (answer addresses), bit `i` of [`PopState::up_mask`] is target `i`.
    pub fn targets(&self, pop: usize) -> &[IpAddr] {
        self.pops.get(pop).map_or(&[], |p| &p.targets)
    }

    /// Index of `addr` among `pop`'s targets.
    pub fn target_index(&self, pop: usize, addr: IpAddr) -> Option<usize> {
        self.targets(pop).iter().position(|&a| a == addr)
    }

    /// Targets that are up (checks, then forced states applied), one bit each.
    #[inline]
    pub fn up_mask(&self, pop: usize) -> u64 {
        self.pops
            .get(pop)
            .map_or(0, |p| p.up_mask.load(Ordering::Acquire))
    }

    /// The POP's load figure: the operator's if set, else the measured one
    /// (smoothed; the health task clears it when stale), else 0.
    #[inline]
    pub fn load(&self, pop: usize) -> f64 {
        let Some(p) = self.pops.get(pop) else {
            return 0.0;
        };
        let m = f32::from_bits(p.manual_load.load(Ordering::Relaxed));
        if !m.is_nan() {
            return m as f64;
        }
        let l = f32::from_bits(p.measured_load.load(Ordering::Relaxed));
        if l.is_nan() {
            0.0
        } else {
            l as f64
        }
    }

    /// The operator's load, if set.
    pub fn manual_load(&self, pop: usize) -> Option<f64> {
        let p = self.pops.get(pop)?;
        let m = f32::from_bits(p.manual_load.load(Ordering::Relaxed));
        (!m.is_nan()).then_some(m as f64)
    }

    /// `(low, high)` shedding watermarks.
    #[inline]
    pub fn watermarks(&self, pop: usize) -> (f64, f64) {
        self.pops.get(pop).map_or((0.8, 1.0), |p| (p.low, p.high))
    }

    /// The last check conclusion per target (for explain and `sparrowctl health`).
    pub fn target_health(&self, pop: usize) -> Vec<TargetHealth> {
        self.pops
            .get(pop)
            .map(|p| p.detail.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// The forced state of one target.
    pub fn target_forced(&self, pop: usize, target: usize) -> Force {
        self.pops
            .get(pop)
            .and_then(|p| p.target_forced.get(target))
            .map_or(Force::Auto, |f| Force::from_u8(f.load(Ordering::Relaxed)))
    }

    // ---- write side ---------------------------------------------------------

    /// The health task's conclusion for target `target` of `pop` (indices as
    /// in [`PopState::targets`]); out-of-range ids are ignored.
    pub fn set_target_health(&self, pop: usize, target: usize, health: TargetHealth) {
        let Some(p) = self.pops.get(pop) else { return };
        if target >= p.targets.len() {
            return;
        }
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let bit = 1u64 << target;
        if health.up {
            p.checks_up.fetch_or(bit, Ordering::Relaxed);
        } else {
            p.checks_up.fetch_and(!bit, Ordering::Relaxed);
        }
        p.detail.lock().unwrap_or_else(|e| e.into_inner())[target] = health;
        self.derive(p);
    }

    /// The health task's smoothed load for `pop` (`None`: none, or stale).
    pub fn set_measured_load(&self, pop: usize, load: Option<f64>) {
        if let Some(p) = self.pops.get(pop) {
            let v = load.map_or(f32::NAN, |l| l.clamp(0.0, 1.0) as f32);
            p.measured_load.store(v.to_bits(), Ordering::Relaxed);
        }
    }

    /// Drain (`true`) or undrain a POP by name; returns whether it was drained before.
    pub fn set_drained(&self, name: &str, drained: bool) -> Result<bool, PopError> {
        let i = self.index(name)?;
        Ok(self.pops[i].drained.swap(drained, Ordering::Relaxed))
    }

    /// Force a POP (`addr` None) or one of its targets up, down, or back to
    /// auto; returns the previous forced state.
    pub fn force(&self, name: &str, addr: Option<IpAddr>, to: Force) -> Result<Force, PopError> {
        let i = self.index(name)?;
        let p = &self.pops[i];
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let was = match addr {
            None => p.forced.swap(to.to_u8(), Ordering::Relaxed),
            Some(a) => {
                let t = self
                    .target_index(i, a)
                    .ok_or_else(|| PopError::UnknownTarget(name.to_string(), a))?;
                p.target_forced[t].swap(to.to_u8(), Ordering::Relaxed)
            }
        };
        self.derive(p);
        Ok(Force::from_u8(was))
    }

    /// Set (or clear, `None`) the operator's load for a POP; returns the previous one.
    pub fn set_manual_load(&self, name: &str, load: Option<f64>) -> Result<Option<f64>, PopError> {
        if let Some(l) = load {
            if !(0.0..=1.0).contains(&l) {
                return Err(PopError::BadLoad(l));
            }
        }
        let i = self.index(name)?;
        let was = self.manual_load(i);
        let v = load.map_or(f32::NAN, |l| l as f32);
        self.pops[i]
            .manual_load
            .store(v.to_bits(), Ordering::Relaxed);
        Ok(was)
    }

    /// Recompute `up_mask` and `healthy` of one POP (writer lock held).
    fn derive(&self, p: &Pop) {
        let mut mask = p.checks_up.load(Ordering::Relaxed);
        for (t, f) in p.target_forced.iter().enumerate() {
            match Force::from_u8(f.load(Ordering::Relaxed)) {
                Force::Up => mask |= 1 << t,
                Force::Down => mask &= !(1 << t),
                Force::Auto => {}
            }
        }
        let n = p.targets.len();
        let up = mask.count_ones() as f64;
        let healthy = n == 0 || (up > 0.0 && up >= p.min_up_fraction * n as f64);
        p.up_mask.store(mask, Ordering::Release);
        p.healthy.store(healthy, Ordering::Release);
    }

    /// Index of a POP by name.
    pub fn index(&self, name: &str) -> Result<usize, PopError> {
        self.pops
            .iter()
            .position(|p| &*p.name == name)
            .ok_or_else(|| {
                PopError::Unknown(
                    name.to_string(),
                    self.pops
                        .iter()
                        .map(|p| &*p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
    }

    /// POP names, by index.
    pub fn names(&self) -> Vec<&str> {
        self.pops.iter().map(|p| &*p.name).collect()
    }

    /// Number of POPs.
    pub fn len(&self) -> usize {
        self.pops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pops.is_empty()
    }

    pub fn local(&self) -> usize {
        self.local
    }
}

/// The low `n` bits set.
fn mask_of(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}
