//! systemd service notification: the `sd_notify(3)` datagram protocol,
//! spoken with std's `UnixDatagram` (no libsystemd).
//!
//! When `$NOTIFY_SOCKET` is set (systemd sets it for `Type=notify` units),
//! sparrowd sends newline-separated `KEY=VALUE` lines, one datagram per
//! change, to that socket: a path (`/run/systemd/notify`) or an abstract name
//! written `@name`. It sends:
//! - `READY=1` with the first `STATUS=` once every listener (BGP, DNS, HTTP,
//!   admin socket) is bound and served ([`Systemd::serving`]);
//! - `STATUS=steering v4=<rib|fallback> v6=<rib|fallback>, N/M peers
//!   established` ([`status_line`]): the steering source of each family
//!   (`steer::Source`) and the Established sessions, sent again whenever it
//!   changes (looked at every [`STATUS_EVERY`]);
//! - `RELOADING=1` with `MONOTONIC_USEC=` (`CLOCK_MONOTONIC`, as
//!   `Type=notify-reload` wants it), then `READY=1`, around every reload
//!   (`crate::reload`, SIGHUP or `sparrowctl reload`), whether or not the
//!   file was accepted ([`Notifier::reloading`]);
//! - `STOPPING=1` when a shutdown begins ([`Systemd::stopping`]).
//!
//! Without `$NOTIFY_SOCKET` nothing is sent. The socket is non-blocking: a
//! send that fails (systemd gone, its queue full) is logged as a warning and
//! never stops or slows the daemon.
//!
//! Used by the daemon (`crate::daemon`) and the reloader.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::session::Peers;
use crate::steer::{self, Source};
use crate::types::Afi;

/// The environment variable naming systemd's notification socket.
pub const ENV: &str = "NOTIFY_SOCKET";

/// How often the status line is recomputed (sent only when it changed).
pub const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Why notifications cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("${ENV}={0:?}: not an absolute path or an @abstract name")]
    Address(String),
    #[error("${ENV}={target}: {source}")]
    Socket {
        target: String,
        source: std::io::Error,
    },
    #[error("notification to {target}: {source}")]
    Send {
        target: String,
        source: std::io::Error,
    },
}

/// A socket that sends to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    target: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names; `Ok(None)` when it is unset or empty.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        match std::env::var_os(ENV) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => match v.to_str() {
                Some(s) => Notifier::new(s).map(Some),
                None => Err(NotifyError::Address(v.to_string_lossy().into_owned())),
            },
        }
    }

    /// A notifier sending to `target`: an absolute path or `@abstract-name`.
    pub fn new(target: &str) -> Result<Notifier, NotifyError> {
        let addr = parse_target(target)?;
        let socket_err = |source| NotifyError::Socket {
            target: target.to_string(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(socket_err)?;
        socket.set_nonblocking(true).map_err(socket_err)?;
        Ok(Notifier {
            socket,
            addr,
            target: target.to_string(),
        })
    }

    /// Send `state` (newline-separated `KEY=VALUE` lines) as one datagram.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
            .map_err(|source| NotifyError::Send {
                target: self.target.clone(),
                source,
            })
    }

    /// `RELOADING=1` and `MONOTONIC_USEC=` now (logged on failure).
    pub fn reloading(&self) {
        match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
            Ok(t) => {
                let usec = t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000;
                self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
            }
            Err(_) => self.notify("RELOADING=1"),
        }
    }

    /// [`Notifier::send`], a failure logged as a warning.
    pub fn notify(&self, state: &str) {
        match self.send(state) {
            Ok(()) => debug!(state, "systemd notified"),
            Err(e) => warn!("{e}"),
        }
    }
}

/// The socket address of a `$NOTIFY_SOCKET` value.
fn parse_target(target: &str) -> Result<SocketAddr, NotifyError> {
    let addr = if let Some(name) = target.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if target.starts_with('/') {
        SocketAddr::from_pathname(target)
    } else {
        return Err(NotifyError::Address(target.to_string()));
    };
    addr.map_err(|source| NotifyError::Socket {
        target: target.to_string(),
        source,
    })
}

/// The notifier of `$NOTIFY_SOCKET`, shared; `None` when unset. A value that
/// cannot be used is logged as a warning (the daemon runs without it).
pub fn from_env() -> Option<Arc<Notifier>> {
    match Notifier::from_env() {
        Ok(n) => n.map(Arc::new),
        Err(e) => {
            warn!("systemd notification off: {e}");
            None
        }
    }
}

/// The `STATUS=` text: each family's steering source and the sessions up.
pub fn status_line(v4: Source, v6: Source, established: usize, peers: usize) -> String {
    format!(
        "steering v4={} v6={}, {established}/{peers} peers established",
        v4.as_str(),
        v6.as_str()
    )
}

/// [`status_line`] of the current steering snapshot and sessions.
pub fn status_of(steering: &steer::Handle, peers: &Peers) -> String {
    let snap = steering.load();
    let n = peers.status.len();
    let up = (0..n)
        .filter(|&i| peers.established.is_established(i))
        .count();
    status_line(snap.source(Afi::Ipv4), snap.source(Afi::Ipv6), up, n)
}

/// The daemon's side of the protocol once it serves: the status task, and
/// `STOPPING=1` at shutdown. Does nothing without a notifier.
pub struct Systemd {
    notifier: Option<Arc<Notifier>>,
    status: Option<JoinHandle<()>>,
}

impl Systemd {
    /// Send `READY=1` with the first status, then every `every` the status
    /// again when it changed. Needs a Tokio runtime when `notifier` is some.
    pub fn serving<F>(notifier: Option<Arc<Notifier>>, every: Duration, mut status: F) -> Systemd
    where
        F: FnMut() -> String + Send + 'static,
    {
        let Some(n) = notifier.clone() else {
            return Systemd {
                notifier,
                status: None,
            };
        };
        let mut last = status();
        n.notify(&format!("READY=1\nSTATUS={last}"));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = status();
                if now != last {
                    n.notify(&format!("STATUS={now}"));
                    last = now;
                }
            }
        });
        Systemd {
            notifier,
            status: Some(task),
        }
    }

    /// [`Systemd::serving`] with [`status_of`] every [`STATUS_EVERY`].
    pub fn serving_steering(
        notifier: Option<Arc<Notifier>>,
        steering: steer::Handle,
        peers: Arc<Peers>,
    ) -> Systemd {
        Systemd::serving(notifier, STATUS_EVERY, move || status_of(&steering, &peers))
    }

    /// The shutdown began: stop the status task, send `STOPPING=1`.
    pub fn stopping(&self) {
        if let Some(t) = &self.status {
            t.abort();
        }
        if let Some(n) = &self.notifier {
            n.notify("STOPPING=1\nSTATUS=stopping");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn receiver_at_path(name: &str) -> (UnixDatagram, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("sparrow-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (sock, path)
    }

    #[test]
    fn sends_to_a_path() {
        let (rx, path) = receiver_at_path("path");
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        n.send("READY=1").unwrap();
        assert_eq!(recv(&rx), "READY=1");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn sends_to_an_abstract_name() {
        let name = format!("sparrow-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::new(&format!("@{name}")).unwrap();
        n.send("STATUS=x\nREADY=1").unwrap();
        assert_eq!(recv(&rx), "STATUS=x\nREADY=1");
    }

    #[test]
    fn a_relative_target_is_refused_and_a_missing_socket_is_a_send_error() {
        assert!(matches!(
            Notifier::new("run/notify"),
            Err(NotifyError::Address(_))
        ));
        let n = Notifier::new("/nonexistent/sparrow-notify").unwrap();
        assert!(matches!(n.send("READY=1"), Err(NotifyError::Send { .. })));
    }

    #[test]
    fn reloading_carries_the_monotonic_time() {
        let (rx, path) = receiver_at_path("reload");
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        n.reloading();
        let got = recv(&rx);
        let usec = got
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{got:?}"));
        assert!(usec.parse::<u64>().unwrap() > 0, "{got:?}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn status_line_names_each_family_source() {
        assert_eq!(
            status_line(Source::Rib, Source::Fallback, 3, 4),
            "steering v4=rib v6=fallback, 3/4 peers established"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn ready_then_status_on_change_then_stopping() {
        let (rx, path) = receiver_at_path("serving");
        let n = Arc::new(Notifier::new(path.to_str().unwrap()).unwrap());
        let rib = Arc::new(AtomicBool::new(false));
        let flag = rib.clone();
        let sd = Systemd::serving(Some(n), Duration::from_millis(10), move || {
            let v4 = if flag.load(Ordering::Relaxed) {
                Source::Rib
            } else {
                Source::Fallback
            };
            status_line(v4, Source::Fallback, 0, 1)
        });
        assert_eq!(
            recv(&rx),
            "READY=1\nSTATUS=steering v4=fallback v6=fallback, 0/1 peers established"
        );
        rib.store(true, Ordering::Relaxed);
        assert_eq!(
            recv(&rx),
            "STATUS=steering v4=rib v6=fallback, 0/1 peers established"
        );
        sd.stopping();
        assert_eq!(recv(&rx), "STOPPING=1\nSTATUS=stopping");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn without_a_notifier_nothing_runs() {
        let sd = Systemd::serving(None, STATUS_EVERY, || unreachable!());
        assert!(sd.status.is_none());
        sd.stopping();
    }
}
