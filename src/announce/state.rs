//! One announced prefix's state machine, pure: evaluations of its condition
//! go in (good, or bad with a reason), its phase comes out. `rise` good
//! evaluations in a row announce it, `fall` bad ones take it down as
//! `on_down` says (withdraw, a longer AS_PATH, or GRACEFUL_SHUTDOWN for a
//! while and then withdraw), and no two changes come closer than
//! `hold_down` (a change that is due waits for it). A prefix starts
//! withdrawn. [`Machine::stop`] runs the shutdown sequence.
//!
//! Talks to `config` (the [`Announcement`]) only; `runner` drives it.

use std::time::Instant;

use serde::Serialize;

use crate::config::{Announcement, OnDown};

/// Where a prefix is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not announced.
    Withdrawn,
    /// Announced with its configured attributes.
    Up,
    /// Down, still announced with `on_down`'s extra prepends (a backup).
    Prepended,
    /// Down, announced with GRACEFUL_SHUTDOWN until the time, then withdrawn.
    Grace { until_ms: u64 },
}

impl Phase {
    /// Whether the prefix is sent to peers in this phase.
    pub fn announced(self) -> bool {
        !matches!(self, Phase::Withdrawn)
    }
}

/// The state of one prefix.
#[derive(Clone, Debug)]
pub struct Machine {
    phase: Phase,
    /// Good (or bad) evaluations in a row, signed: > 0 good, < 0 bad.
    streak: i64,
    changed_at: Option<Instant>,
    /// The epoch of `Phase::Grace::until_ms`.
    epoch: Instant,
    /// Why it is where it is (the last bad evaluation's reason, or "healthy").
    reason: String,
    stopping: bool,
    /// Phase changes so far (a counter for metrics).
    changes: u64,
}

impl Machine {
    /// A withdrawn prefix; `epoch` anchors the grace deadlines.
    pub fn new(epoch: Instant) -> Machine {
        Machine {
            phase: Phase::Withdrawn,
            streak: 0,
            changed_at: None,
            epoch,
            reason: "not evaluated yet".into(),
            stopping: false,
            changes: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn changed_at(&self) -> Option<Instant> {
        self.changed_at
    }

    /// Phase changes since start.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Record one evaluation; returns whether the phase changed.
    pub fn observe(&mut self, a: &Announcement, r: Result<(), String>, now: Instant) -> bool {
        if self.stopping {
            return self.expire(now);
        }
        let good = r.is_ok();
        self.streak = match (good, self.streak) {
            (true, s) if s > 0 => s + 1,
            (true, _) => 1,
            (false, s) if s < 0 => s - 1,
            (false, _) => -1,
        };
        self.reason = match r {
            Ok(()) => "healthy".into(),
            Err(why) => why,
        };
        let held = self
            .changed_at
            .is_some_and(|t| now.duration_since(t) < a.hold_down);
        let next = if good && self.streak >= i64::from(a.rise.max(1)) {
            Phase::Up
        } else if !good && -self.streak >= i64::from(a.fall.max(1)) && self.phase == Phase::Up {
            self.down_phase(a, now)
        } else {
            return self.expire(now);
        };
        if next == self.phase || held {
            return self.expire(now);
        }
        self.set(next, now);
        true
    }

    /// A grace period that has run out withdraws the prefix; returns whether
    /// the phase changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Grace { until_ms } if self.ms(now) >= until_ms => {
                self.set(Phase::Withdrawn, now);
                true
            }
            _ => false,
        }
    }

    /// End a grace period now; returns whether the phase changed.
    pub fn end_grace(&mut self) -> bool {
        match self.grace_until() {
            Some(until) => self.expire(until.max(Instant::now())),
            None => false,
        }
    }

    /// Shutdown: an announced prefix with `graceful_shutdown` enters its
    /// grace period, any other is withdrawn; no evaluation changes it after.
    /// Returns whether the phase changed.
    pub fn stop(&mut self, a: &Announcement, now: Instant) -> bool {
        self.stopping = true;
        self.reason = "sparrowd is stopping".into();
        let next = match (self.phase, a.on_down) {
            (Phase::Withdrawn | Phase::Grace { .. }, _) => return false,
            (_, OnDown::GracefulShutdown(d)) => Phase::Grace {
                until_ms: self.ms(now) + d.as_millis() as u64,
            },
            _ => Phase::Withdrawn,
        };
        self.set(next, now);
        true
    }

    /// When the grace period ends, if in one.
    pub fn grace_until(&self) -> Option<Instant> {
        match self.phase {
            Phase::Grace { until_ms } => {
                Some(self.epoch + std::time::Duration::from_millis(until_ms))
            }
            _ => None,
        }
    }

    fn down_phase(&self, a: &Announcement, now: Instant) -> Phase {
        match a.on_down {
            OnDown::Withdraw => Phase::Withdrawn,
            OnDown::Prepend(_) => Phase::Prepended,
            OnDown::GracefulShutdown(d) => Phase::Grace {
                until_ms: self.ms(now) + d.as_millis() as u64,
            },
        }
    }

    fn set(&mut self, p: Phase, now: Instant) {
        self.phase = p;
        self.changed_at = Some(now);
        self.changes += 1;
    }

    fn ms(&self, now: Instant) -> u64 {
        now.duration_since(self.epoch).as_millis() as u64
    }
}
