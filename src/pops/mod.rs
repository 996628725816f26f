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
//! [`pick`] is the one usable-POP pick: DNS answers (`dns::answer`, explain)
//! and the HTTP redirector choose their POP from a steering ranking with it.

mod state;

pub use state::{pop_targets, Force, PopError, PopState, SessionFlags, TargetHealth, MAX_TARGETS};

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
