//! Graceful restart on the session side (RFC 4724, RFC 8538): the Graceful
//! Restart capability we send, whether a session that ended keeps the peer's
//! routes (stale) in the RIB, when our own NOTIFICATIONs become a Hard Reset,
//! and the restart marker that tells a new sparrowd it follows a planned
//! shutdown.
//!
//! Pure decisions plus two small file operations; `handshake` builds the
//! capability from [`our_cap`], `established` asks [`keep_stale`] at
//! SessionDown, `task` builds resets with [`teardown`], and the
//! daemon writes the marker at SIGTERM ([`write_restart_marker`]) and reads
//! it at start ([`take_restart_marker`]).
//!
//! Our "forwarding state" (the F bit, set for every family we list): a POP's
//! sparrowd forwards no packets; what the other POPs keep doing with our
//! routes while we restart is steering clients to us. That stays valid across
//! our restart (our web servers keep serving), so every family is listed with
//! F set, and the other POPs keep our routes as stale until our End-of-RIB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{info, warn};

use super::handshake::Negotiated;
use super::{unix_now, SessionError};
use crate::config::{Config, PeerConfig};
use crate::wire::{self, code, GracefulRestartCap, Notification};

/// The Graceful Restart capability for a peer with `graceful_restart` on:
/// our restart time, the N bit (RFC 8538), the Restart State bit when this
/// process restarted after a planned shutdown, and every configured family
/// with its Forwarding State bit set.
pub(super) fn our_cap(pc: &PeerConfig, restarting: bool) -> Option<GracefulRestartCap> {
    pc.graceful_restart.then(|| GracefulRestartCap {
        restart_time: pc.restart_time,
        restarting,
        notification: true,
        afis: pc.families.iter().map(|&a| (a, true)).collect(),
    })
}

/// Whether a session that ended with `why` keeps the peer's routes as stale
/// (`gr`: both sides sent the capability; `n`: both set the N bit).
///
/// RFC 4724: only a TCP failure (the peer's restart) keeps them, or the
/// peer opening a new connection while the session is Established (its
/// restart, noticed before the hold timer). RFC 8538
/// with N on both sides: any NOTIFICATION, sent or received, keeps them too,
/// except a Cease/Hard Reset, which flushes at once.
pub fn keep_stale(gr: bool, n: bool, why: Option<&SessionError>) -> bool {
    if !gr {
        return false;
    }
    match why {
        // A new connection from the peer while Established (RFC 4724 §4.2)
        // ends the old session as a TCP failure does.
        Some(SessionError::Eof | SessionError::Io(_) | SessionError::PeerRestarted) => true,
        Some(SessionError::Received(notif)) => n && !wire::is_hard_reset(notif),
        Some(SessionError::Sent { code, subcode, .. }) => {
            n && !wire::is_hard_reset(&Notification {
                code: *code,
                subcode: *subcode,
                data: Vec::new(),
            })
        }
        // Collision resolution closes only a connection that is not the
        // Established one; a socket option error happens before Established.
        Some(SessionError::CollisionLost) => n,
        Some(SessionError::Sockopt(_) | SessionError::Stopped) | None => false,
    }
}

/// The NOTIFICATION for an operator reset or a max-prefix teardown: a Cease
/// with `subcode` and `data`, or, when both sides of the session (`neg`) set
/// N, that Cease wrapped as a Cease/Hard Reset so the peer flushes our routes
/// instead of keeping them (RFC 8538 §3, §5).
pub(super) fn teardown(neg: Option<&Negotiated>, subcode: u8, data: Vec<u8>) -> Notification {
    teardown_notification(neg.is_some_and(|n| n.gr_notification), subcode, data)
}

fn teardown_notification(n: bool, subcode: u8, data: Vec<u8>) -> Notification {
    let inner = Notification {
        code: code::CEASE,
        subcode,
        data,
    };
    if n {
        wire::hard_reset(&inner)
    } else {
        inner
    }
}

/// The restart marker: next to `admin.state_file`, with the extension
/// `.restart` (`/var/lib/sparrow/state.restart` by default).
pub fn restart_marker_path(cfg: &Config) -> PathBuf {
    Path::new(&cfg.admin.state_file).with_extension("restart")
}

/// The longest restart time announced to any graceful-restart peer: after
/// that, no peer keeps our routes, and a restart is not graceful any more.
fn longest_restart_time(cfg: &Config) -> Duration {
    let s = cfg
        .peers
        .iter()
        .filter(|p| p.graceful_restart)
        .map(|p| p.restart_time)
        .max()
        .unwrap_or(0);
    Duration::from_secs(s.into())
}

/// At a planned shutdown (SIGTERM/SIGINT): write the marker (the time, in
/// Unix seconds), creating its directory. Only when some peer has graceful
/// restart on. Errors are logged; the shutdown goes on.
pub fn write_restart_marker(cfg: &Config) {
    if longest_restart_time(cfg).is_zero() {
        return;
    }
    let path = restart_marker_path(cfg);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("restart.tmp");
        std::fs::write(&tmp, format!("{}\n", unix_now()))?;
        std::fs::rename(&tmp, &path)
    };
    match write() {
        Ok(()) => info!(marker = %path.display(), "graceful restart: restart marker written"),
        Err(e) => {
            warn!(marker = %path.display(), error = %e, "graceful restart: cannot write the restart marker")
        }
    }
}

/// At start: whether this process restarts after a planned shutdown, i.e. a
/// marker exists written less than the longest restart time ago. The marker
/// is removed either way (a later crash is not a planned restart).
pub fn take_restart_marker(cfg: &Config) -> bool {
    let path = restart_marker_path(cfg);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    let _ = std::fs::remove_file(&path);
    let fresh = restarted_within(&text, unix_now(), longest_restart_time(cfg));
    info!(marker = %path.display(), restarting = fresh, "graceful restart: restart marker found");
    fresh
}

/// Whether a marker's text (Unix seconds) is at most `window` before `now`.
fn restarted_within(text: &str, now: u64, window: Duration) -> bool {
    text.trim()
        .parse::<u64>()
        .is_ok_and(|t| t <= now && now - t <= window.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::cease;

    fn sent(code: u8, subcode: u8) -> SessionError {
        SessionError::Sent {
            code,
            subcode,
            data: Vec::new(),
            msg: String::new(),
        }
    }

    fn received(code: u8, subcode: u8) -> SessionError {
        SessionError::Received(Notification {
            code,
            subcode,
            data: vec![code::CEASE, cease::ADMIN_RESET],
        })
    }

    #[test]
    fn keep_stale_by_notification_kind_and_n_bit() {
        let eof = SessionError::Eof;
        let io = SessionError::Io(std::io::ErrorKind::ConnectionReset.into());
        let cases: Vec<(SessionError, bool, bool)> = vec![
            // (why, keep without N, keep with N)
            (eof, true, true),
            (io, true, true),
            (sent(code::HOLD_TIMER, 0), false, true),
            (received(code::HOLD_TIMER, 0), false, true),
            (sent(code::CEASE, cease::ADMIN_SHUTDOWN), false, true),
            (received(code::CEASE, cease::ADMIN_SHUTDOWN), false, true),
            (received(code::CEASE, cease::ADMIN_RESET), false, true),
            (sent(code::UPDATE, 1), false, true),
            (sent(code::CEASE, cease::HARD_RESET), false, false),
            (received(code::CEASE, cease::HARD_RESET), false, false),
            (SessionError::Stopped, false, false),
        ];
        for (why, without_n, with_n) in &cases {
            assert_eq!(
                keep_stale(true, false, Some(why)),
                *without_n,
                "{why} without N"
            );
            assert_eq!(keep_stale(true, true, Some(why)), *with_n, "{why} with N");
            // No graceful restart negotiated: never.
            assert!(!keep_stale(false, true, Some(why)), "{why} without GR");
        }
        assert!(!keep_stale(true, true, None));
    }

    #[test]
    fn resets_become_hard_resets_only_with_n() {
        let admin_reset = Notification {
            code: code::CEASE,
            subcode: cease::ADMIN_RESET,
            data: Vec::new(),
        };
        assert_eq!(
            teardown_notification(false, cease::ADMIN_RESET, Vec::new()),
            admin_reset
        );
        assert_eq!(teardown(None, cease::ADMIN_RESET, Vec::new()), admin_reset);
        let h = teardown_notification(true, cease::ADMIN_RESET, Vec::new());
        assert_eq!((h.code, h.subcode), (code::CEASE, cease::HARD_RESET));
        assert_eq!(h.data, [code::CEASE, cease::ADMIN_RESET]);
        let h = teardown_notification(true, cease::MAX_PREFIX, vec![0, 1, 1, 0, 0, 0, 5]);
        assert_eq!(h.data, [6, 1, 0, 1, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn our_cap_lists_every_family_with_forwarding_state() {
        let cfg = crate::testutil::TestConfig::two_pops()
            .peers(&["{name: y, address: 10.0.0.2, remote_asn: 65002, role: pop, graceful_restart: true, restart_time: 90}"])
            .build();
        let g = our_cap(&cfg.peers[0], true).unwrap();
        assert_eq!(g.restart_time, 90);
        assert!(g.restarting && g.notification);
        assert_eq!(
            g.afis,
            vec![
                (crate::types::Afi::Ipv4, true),
                (crate::types::Afi::Ipv6, true)
            ]
        );
        let mut pc = cfg.peers[0].clone();
        pc.graceful_restart = false;
        assert!(our_cap(&pc, true).is_none());
    }

    #[test]
    fn marker_freshness() {
        let w = Duration::from_secs(120);
        assert!(restarted_within("1000\n", 1100, w));
        assert!(restarted_within("1000", 1120, w));
        assert!(!restarted_within("1000", 1121, w));
        assert!(!restarted_within("2000", 1000, w));
        assert!(!restarted_within("garbage", 1000, w));
    }

    #[test]
    fn marker_round_trip() {
        let dir = std::env::temp_dir().join(format!("sparrow-gr-marker-{}", std::process::id()));
        let state = dir.join("state.json");
        let mut cfg = crate::testutil::TestConfig::two_pops()
            .peers(&["{name: y, address: 10.0.0.2, remote_asn: 65002, role: pop, graceful_restart: true}"])
            .build();
        cfg.admin.state_file = state.display().to_string();
        assert_eq!(restart_marker_path(&cfg), dir.join("state.restart"));
        assert!(!take_restart_marker(&cfg));
        write_restart_marker(&cfg);
        assert!(take_restart_marker(&cfg));
        // Consumed: a second start (a crash later) is not a planned restart.
        assert!(!take_restart_marker(&cfg));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
