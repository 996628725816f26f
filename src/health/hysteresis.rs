//! Hysteresis of one check on one target: the first result sets the state
//! directly; after that a down target needs `rise` consecutive passes to come
//! up and an up target `fall` consecutive failures to go down.
//!
//! Pure (the caller passes the time); used by `runner`.

use std::time::Instant;

/// One result of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Why it failed, e.g. `http 503`, `tcp connect refused`, `timeout`, `file DOWN`.
    Fail(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

/// The judged state of one (check, target).
#[derive(Clone, Debug, Default)]
pub struct Hysteresis {
    /// `None` until the first result.
    state: Option<bool>,
    /// The last result.
    last: Option<Outcome>,
    /// Consecutive results equal (pass/fail) to the last one.
    streak: u32,
    /// When `state` last changed (or was first set).
    changed_at: Option<Instant>,
}

impl Hysteresis {
    /// Record a result; returns whether the state changed.
    pub fn observe(&mut self, r: Outcome, rise: u32, fall: u32, now: Instant) -> bool {
        let pass = r.passed();
        self.streak = match &self.last {
            Some(l) if l.passed() == pass => self.streak.saturating_add(1),
            _ => 1,
        };
        self.last = Some(r);
        let change = match self.state {
            None => true,
            Some(s) if s == pass => false,
            Some(_) => self.streak >= if pass { rise.max(1) } else { fall.max(1) },
        };
        if change {
            self.state = Some(pass);
            self.changed_at = Some(now);
        }
        change
    }

    /// Up, down, or `None` before the first result.
    pub fn state(&self) -> Option<bool> {
        self.state
    }

    /// The last result.
    pub fn last(&self) -> Option<&Outcome> {
        self.last.as_ref()
    }

    /// Consecutive results like the last one.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    pub fn changed_at(&self) -> Option<Instant> {
        self.changed_at
    }

    /// Why this check holds the target down (`None` while it is up or unknown):
    /// the last failure and how many in a row, e.g. `http 503 x3`. A check
    /// that is down but passing again (rising) keeps reporting `... rising`.
    pub fn down_detail(&self, counted: bool) -> Option<String> {
        if self.state != Some(false) {
            return None;
        }
        Some(match &self.last {
            Some(Outcome::Fail(m)) if counted => format!("{m} x{}", self.streak),
            Some(Outcome::Fail(m)) => m.clone(),
            _ => format!("rising x{}", self.streak),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Outcome {
        Outcome::Fail("http 503".into())
    }

    /// Feed results (true: pass), return the state after each.
    fn run(seq: &[bool], rise: u32, fall: u32) -> Vec<bool> {
        let mut h = Hysteresis::default();
        let now = Instant::now();
        seq.iter()
            .map(|&p| {
                h.observe(if p { Outcome::Pass } else { fail() }, rise, fall, now);
                h.state().unwrap()
            })
            .collect()
    }

    #[test]
    fn first_result_sets_the_state() {
        assert_eq!(run(&[false], 2, 3), [false]);
        assert_eq!(run(&[true], 2, 3), [true]);
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        let s = run(&[true, false, false, true, false, false, false], 2, 3);
        assert_eq!(s, [true, true, true, true, true, true, false]);
    }

    #[test]
    fn rise_needs_consecutive_passes() {
        let s = run(&[false, true, false, true, true], 2, 3);
        assert_eq!(s, [false, false, false, false, true]);
    }

    #[test]
    fn flapping_faster_than_fall_never_goes_down() {
        let seq: Vec<bool> = (1..100).map(|i| i % 3 != 0).collect();
        assert!(run(&seq, 2, 3).iter().all(|&s| s));
        // two failures in a row, then a pass: still below fall 3
        let seq: Vec<bool> = (0..99).map(|i| i % 3 == 2).collect();
        assert!(run(&[&[true][..], &seq].concat(), 2, 3).iter().all(|&s| s));
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_result() {
        let seq = [true, false, true, false];
        assert_eq!(run(&seq, 1, 1), seq);
    }

    #[test]
    fn detail_counts_the_failures() {
        let mut h = Hysteresis::default();
        let now = Instant::now();
        h.observe(Outcome::Pass, 2, 3, now);
        assert_eq!(h.down_detail(true), None);
        for _ in 0..3 {
            h.observe(fail(), 2, 3, now);
        }
        assert_eq!(h.down_detail(true).as_deref(), Some("http 503 x3"));
        assert_eq!(h.down_detail(false).as_deref(), Some("http 503"));
        h.observe(Outcome::Pass, 2, 3, now);
        assert_eq!(h.down_detail(true).as_deref(), Some("rising x1"));
        h.observe(Outcome::Pass, 2, 3, now);
        assert_eq!(h.state(), Some(true));
        assert_eq!(h.streak(), 2);
    }
}
