//! POP availability for answers. `state` holds the facts ([`PopState`]:
//! sessions, health-check results per target, forced states, drains, load
//! figures) in atomics, read lock-free per query by DNS and HTTP; [`pick`]
//! turns a steering ranking into the POP that answers.
//!
//! A POP is up when forced up; else not when forced down; else, when health
//! checks cover it, while at least `min_up_fraction` of its targets (answer
//! addresses) are up; else (no checks) the local POP always, another while
//! one of its `pop` sessions is Established, or always if it has none. It is
//! usable when up and not drained.
//!
//! Files: `state` the facts; `pick` [`pick`], the one POP pick (DNS answers
//! through `dns::zone::pick`, explain, `sparrowctl lookup` and the HTTP
//! redirector choose their POP with it: availability, load shedding keyed on
//! the decision's safe-scope block, the all-down policy; see its module doc);
//! `why` the words explain gives for a POP passed over; `persist` the
//! operator state (drains, forced states, manual loads) saved to
//! `admin.state_file` and read at start.

mod persist;
mod pick;
mod state;
mod why;

pub use persist::{Forced, ManualLoad, OperatorState, PersistError, Restored, StateStore};
pub use pick::{pick, shed_fraction, shed_key, unit, Avail, Pick, Reason, Records, Skip};
pub use state::{pop_targets, Force, PopError, PopState, SessionFlags, TargetHealth, MAX_TARGETS};
pub use why::{down_details, skip_reason};

impl Avail for PopState {
    #[inline]
    fn usable(&self, pop: usize) -> bool {
        PopState::usable(self, pop)
    }
    #[inline]
    fn load(&self, pop: usize) -> f64 {
        PopState::load(self, pop)
    }
    #[inline]
    fn watermarks(&self, pop: usize) -> (f64, f64) {
        PopState::watermarks(self, pop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use crate::testutil::TestConfig;
    use std::sync::Arc;

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
