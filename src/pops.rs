//! POP availability for answers: which POPs are up (the local POP always; any
//! other while at least one of its `pop` sessions is Established, or always if
//! it has none configured) and which an
//! operator has drained (`sparrowctl drain|undrain <pop>`).
//!
//! Owns the drain flags (runtime state: a restart forgets them) and defines
//! [`SessionFlags`], the per-peer Established flags the session tasks write
//! and this module reads (it knows nothing else of the sessions). Read per
//! query by DNS and HTTP, so every read is a few atomic loads, no lock.
//!
//! [`pick`] is the one usable-POP pick: DNS answers (`dns::answer`, explain)
//! and the HTTP redirector choose their POP from a steering ranking with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{Config, Role};

/// The usable-POP pick: the first POP of `ranking` that `serves` the request
/// (has records of the asked type, or a URL) and is `usable` (up and not
/// drained); if no serving POP is usable, the first that serves (all down
/// counts as all up, as in gdnsd); `None` if no POP in the ranking serves.
#[inline]
pub fn pick(
    ranking: &[u8],
    usable: impl Fn(usize) -> bool,
    serves: impl Fn(usize) -> bool,
) -> Option<usize> {
    let order = ranking.iter().map(|&p| p as usize);
    order
        .clone()
        .find(|&p| serves(p) && usable(p))
        .or_else(|| order.clone().find(|&p| serves(p)))
}

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

/// Why a drain request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PopError {
    #[error("no POP named {0:?} (known: {1})")]
    Unknown(String, String),
}

/// Up/drained state of every POP, by index in the config's `pops`.
pub struct PopState {
    names: Vec<Box<str>>,
    local: usize,
    /// Peer ids of each POP's `pop` sessions.
    sessions: Vec<Vec<usize>>,
    drained: Vec<AtomicBool>,
    sessions_up: Option<Arc<SessionFlags>>,
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
        PopState {
            names: cfg.pops.iter().map(|p| p.name.as_str().into()).collect(),
            local: cfg.local_pop_index(),
            sessions,
            drained: cfg.pops.iter().map(|_| AtomicBool::new(false)).collect(),
            sessions_up,
        }
    }

    /// The local POP is always up; another POP while one of its sessions is
    /// Established. A POP with no `pop` session configured cannot be watched
    /// and counts as up (as gdnsd treats unmonitored resources): a deployment
    /// steering from the static fallback map alone answers with every POP.
    #[inline]
    pub fn up(&self, pop: usize) -> bool {
        if pop == self.local {
            return true;
        }
        let Some(ids) = self.sessions.get(pop) else {
            return false;
        };
        if ids.is_empty() {
            return true;
        }
        let Some(flags) = &self.sessions_up else {
            return false;
        };
        ids.iter().any(|&i| flags.is_established(i))
    }

    /// Whether any session watches `pop` (else `up` is always true).
    pub fn monitored(&self, pop: usize) -> bool {
        pop != self.local && self.sessions.get(pop).is_some_and(|ids| !ids.is_empty())
    }

    #[inline]
    pub fn drained(&self, pop: usize) -> bool {
        self.drained
            .get(pop)
            .is_some_and(|d| d.load(Ordering::Relaxed))
    }

    /// Up and not drained: may be answered with.
    #[inline]
    pub fn usable(&self, pop: usize) -> bool {
        !self.drained(pop) && self.up(pop)
    }

    /// Drain (`true`) or undrain a POP by name; returns whether it was drained before.
    pub fn set_drained(&self, name: &str, drained: bool) -> Result<bool, PopError> {
        let i = self.index(name)?;
        Ok(self.drained[i].swap(drained, Ordering::Relaxed))
    }

    /// Index of a POP by name.
    pub fn index(&self, name: &str) -> Result<usize, PopError> {
        self.names.iter().position(|n| &**n == name).ok_or_else(|| {
            PopError::Unknown(
                name.to_string(),
                self.names
                    .iter()
                    .map(|n| &**n)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    pub fn local(&self) -> usize {
        self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_first_usable_that_serves_else_first_that_serves() {
        let serves = |i: usize| i != 3;
        // First usable that serves.
        assert_eq!(pick(&[0, 1, 2], |i| i != 0, serves), Some(1));
        assert_eq!(pick(&[2, 1, 0], |_| true, serves), Some(2));
        // A usable POP that does not serve is skipped.
        assert_eq!(pick(&[3, 1, 0], |_| true, serves), Some(1));
        // None usable: the first that serves (all down = all up).
        assert_eq!(pick(&[3, 2, 0], |_| false, serves), Some(2));
        // None serves.
        assert_eq!(pick(&[3], |_| true, serves), None);
        assert_eq!(pick(&[], |_| true, serves), None);
    }
    use crate::testutil::TestConfig;

    /// POPs x (local), y (one `pop` session) and z (none).
    fn cfg() -> Config {
        TestConfig::two_pops().pop("z", 65003).build()
    }

    #[test]
    fn local_is_up_others_follow_sessions_and_drain() {
        let c = cfg();
        let flags = Arc::new(SessionFlags::new(1));
        let st = PopState::new(&c, Some(flags.clone()));
        assert!(st.usable(0));
        assert!(!st.up(1));
        flags.set(0, true);
        assert!(st.usable(1));
        assert_eq!(st.set_drained("y", true), Ok(false));
        assert!(st.up(1) && !st.usable(1));
        assert_eq!(st.set_drained("y", false), Ok(true));
        assert!(st.usable(1));
        assert!(matches!(
            st.set_drained("w", true),
            Err(PopError::Unknown(..))
        ));
        // z has no session: nothing watches it, so it counts as up.
        assert!(st.up(2) && !st.monitored(2) && st.monitored(1));
        // Draining the local POP is allowed (answers then move to the next POP).
        st.set_drained("x", true).unwrap();
        assert!(!st.usable(0));
    }
}
