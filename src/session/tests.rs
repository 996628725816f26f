//! The session task against a scripted peer on loopback: every RFC 4271 §8
//! transition the pure FSM tests cover (`crate::fsm` tests), driven through the
//! real task, its sockets and timers. The scripted peer speaks raw BGP with
//! `wire`'s encoders; the RIB is a channel the test reads.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::task::Peer;
use super::{PeerCtl, Peers};
use crate::config::Config;
use crate::fsm::State;
use crate::rib::RibMsg;
use crate::testutil::TestConfig;
use crate::wire::{self, cease, code, fsm_err, Capabilities, Notification, Open};

/// Bound on every wait in these tests (none is expected to come near it).
const LIMIT: Duration = Duration::from_secs(15);
const PEER_AS: u32 = 65001;
/// Lower and higher than the daemon's identifier (192.0.2.1 in the default config).
const LOW_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const HIGH_ID: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// The daemon side: one peer task, its status table and the RIB channel.
struct Daemon {
    peers: Arc<Peers>,
    ctl: mpsc::UnboundedSender<PeerCtl>,
    rib: mpsc::Receiver<RibMsg>,
    /// The RIB's command channel to the Established session, held as the RIB
    /// holds it (the session stops when it closes).
    rib_cmds: Option<mpsc::UnboundedSender<crate::rib::SessionCmd>>,
    /// The anycast adverts the session sends (as `crate::announce` publishes them).
    adverts: tokio::sync::watch::Sender<crate::announce::Adverts>,
    task: JoinHandle<()>,
}

/// The embedded default with one peer `p` on loopback `port` (a passive
/// one needs `listen.enabled`, which validation checks; the task ignores it).
fn config(port: u16, passive: bool, hold_time: u16) -> Arc<Config> {
    let mut cfg = TestConfig::embedded_default().peers(&[format!(
        "{{name: p, address: 127.0.0.1, port: {port}, remote_asn: {PEER_AS}, role: upstream, \
         passive: {passive}, hold_time: {hold_time}, connect_retry: 1}}"
    )]);
    if passive {
        cfg = cfg.replace("  enabled: false\n", "  enabled: true\n");
    }
    Arc::new(cfg.build())
}

impl Daemon {
    fn start(cfg: Arc<Config>) -> Daemon {
        let (adverts, adverts_rx) = crate::announce::channel();
        let (peers, mut ctl_rx) = Peers::new(1, adverts_rx);
        let peers = Arc::new(peers);
        let (rib_tx, rib) = mpsc::channel(64);
        let ctl = peers.ctl[0].clone();
        let peer = Peer::new(0, cfg, rib_tx, peers.clone());
        let task = tokio::spawn(peer.run(ctl_rx.remove(0)));
        Daemon {
            peers,
            ctl,
            rib,
            rib_cmds: None,
            adverts,
            task,
        }
    }

    /// An active daemon (hold time `hold_time`) connecting to a fresh
    /// listener: the listener, the daemon and its accepted connection.
    async fn connected(hold_time: u16) -> (TcpListener, Daemon, Scripted) {
        let (l, port) = listener().await;
        let d = Daemon::start(config(port, false, hold_time));
        let p = Scripted::accept(&l).await;
        (l, d, p)
    }

    /// `p` establishes with identifier [`LOW_ID`] and `hold_time`; the RIB
    /// hears SessionUp.
    async fn establish(&mut self, p: &mut Scripted, hold_time: u16) {
        p.establish(LOW_ID, hold_time).await;
        assert!(matches!(self.rib_event().await, RibMsg::PeerUp { .. }));
    }

    async fn wait_established(&self) {
        self.wait_status("Established", |s| s.state == State::Established)
            .await;
    }

    fn state(&self) -> State {
        self.peers.snapshot(0).state
    }

    /// Wait until the peer's status satisfies `f`.
    async fn wait_status(&self, what: &str, f: impl Fn(&super::PeerStatus) -> bool) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !f(&self.peers.snapshot(0)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.peers.snapshot(0)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The next message to the RIB that is not an UPDATE or End-of-RIB.
    async fn rib_event(&mut self) -> RibMsg {
        loop {
            let m = tokio::time::timeout(LIMIT, self.rib.recv())
                .await
                .expect("RIB message in time")
                .expect("RIB channel open");
            if let RibMsg::PeerUp { ctl, .. } = &m {
                self.rib_cmds = Some(ctl.clone());
            }
            if !matches!(
                m,
                RibMsg::Update { .. } | RibMsg::Updates { .. } | RibMsg::EndOfRib { .. }
            ) {
                return m;
            }
        }
    }

    /// Hand the task an accepted connection, as the listener does; returns the peer's end.
    async fn incoming(&self) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        self.ctl.send(PeerCtl::Incoming(server)).unwrap();
        Scripted::new(client)
    }
}

/// The scripted peer's end of one connection.
struct Scripted {
    s: TcpStream,
    buf: BytesMut,
}

impl Scripted {
    fn new(s: TcpStream) -> Scripted {
        Scripted {
            s,
            buf: BytesMut::new(),
        }
    }

    async fn accept(l: &TcpListener) -> Scripted {
        let (s, _) = tokio::time::timeout(LIMIT, l.accept())
            .await
            .expect("the daemon connects in time")
            .unwrap();
        Scripted::new(s)
    }

    /// The next message (type, body), or `None` at EOF.
    async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= wire::HEADER_LEN {
                let (ty, len) = wire::check_header(&self.buf, wire::MAX_EXT_MSG_LEN).unwrap();
                if self.buf.len() >= len {
                    let m = self.buf.split_to(len);
                    return Some((ty, m[wire::HEADER_LEN..].to_vec()));
                }
            }
            let n = tokio::time::timeout(LIMIT, self.s.read_buf(&mut self.buf))
                .await
                .expect("a message in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    async fn expect(&mut self, ty: u8) -> Vec<u8> {
        match self.recv().await {
            Some((t, body)) if t == ty => body,
            other => panic!("expected message type {ty}, got {other:?}"),
        }
    }

    /// The NOTIFICATION the daemon sends, then EOF.
    async fn expect_notification(&mut self) -> Notification {
        loop {
            match self.recv().await {
                Some((wire::msg::KEEPALIVE, _)) => continue,
                Some((wire::msg::NOTIFICATION, body)) => {
                    let n = wire::decode_notification(&body);
                    assert!(
                        self.recv().await.is_none(),
                        "connection closed after NOTIFICATION"
                    );
                    return n;
                }
                other => panic!("expected a NOTIFICATION, got {other:?}"),
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    async fn send_open(&mut self, id: Ipv4Addr, hold_time: u16) {
        let open = Open {
            asn: PEER_AS,
            my_as: PEER_AS as u16,
            hold_time,
            router_id: id,
            caps: Capabilities {
                as4: Some(PEER_AS),
                ..Capabilities::default()
            },
        };
        self.send(&wire::encode_open(&open)).await;
    }

    /// OPEN and KEEPALIVE both ways: the daemon's session reaches Established.
    async fn establish(&mut self, id: Ipv4Addr, hold_time: u16) {
        let ours = wire::decode_open(&self.expect(wire::msg::OPEN).await).unwrap();
        assert_eq!(ours.asn, 64999);
        self.send_open(id, hold_time).await;
        self.expect(wire::msg::KEEPALIVE).await;
        self.send(&wire::encode_keepalive()).await;
    }
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn cease_subcode(n: &Notification) -> u8 {
    assert_eq!(n.code, code::CEASE, "{n:?}");
    n.subcode
}

/// Idle -> Connect -> OpenSent -> OpenConfirm -> Established; the smaller hold
/// time wins and keepalives come every third of it; the RIB hears SessionUp.
#[tokio::test]
async fn active_open_reaches_established() {
    let (_l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 30).await;
    d.wait_established().await;
    let st = d.peers.snapshot(0);
    assert_eq!((st.hold_time, st.keepalive), (Some(30), Some(10)));
    assert_eq!(st.established_count, 1);
    assert!(d.peers.established.is_established(0));
}

/// A passive peer never connects: it waits in Active, and an accepted
/// connection takes it to OpenSent.
#[tokio::test]
async fn passive_open_never_connects() {
    let (l, port) = listener().await;
    let d = Daemon::start(config(port, true, 90));
    d.wait_status("Active", |s| s.state == State::Active).await;
    // Two connect-retry periods (1 s each) pass without a connection.
    let waited = tokio::time::timeout(Duration::from_millis(2500), l.accept()).await;
    assert!(waited.is_err(), "a passive peer connected");
    let mut p = d.incoming().await;
    p.expect(wire::msg::OPEN).await;
    d.wait_status("OpenSent", |s| s.state == State::OpenSent)
        .await;
}

/// Connect fails -> Active; the connect-retry timer -> Connect again.
#[tokio::test]
async fn connect_retry_reconnects() {
    let (l, port) = listener().await;
    drop(l); // nothing listens: the first attempt is refused
    let d = Daemon::start(config(port, false, 90));
    d.wait_status("a failed connect", |s| s.last_error.is_some())
        .await;
    let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await
        .unwrap();
    let mut p = Scripted::accept(&l).await;
    p.expect(wire::msg::OPEN).await;
}

/// Established and the peer falls silent: keepalives, then Hold Timer Expired
/// (4/0), the RIB hears SessionDown, and the session restarts.
#[tokio::test]
async fn hold_timer_expiry_sends_4_0() {
    let (l, mut d, mut p) = Daemon::connected(3).await;
    d.establish(&mut p, 3).await;
    let n = p.expect_notification().await;
    assert_eq!((n.code, n.subcode), (code::HOLD_TIMER, 0));
    assert!(matches!(d.rib_event().await, RibMsg::PeerDown { .. }));
    let st = d.peers.snapshot(0);
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("sent NOTIFICATION Hold Timer Expired"),
        "{st:?}"
    );
    // Automatic restart after the connect-retry time.
    Scripted::accept(&l).await.expect(wire::msg::OPEN).await;
}

/// A zero hold time on either side: no hold timer and no keepalives.
#[tokio::test]
async fn hold_time_zero_disables_timers() {
    let (_l, d, mut p) = Daemon::connected(90).await;
    p.establish(LOW_ID, 0).await;
    d.wait_established().await;
    assert_eq!(d.peers.snapshot(0).hold_time, Some(0));
    let quiet = tokio::time::timeout(Duration::from_millis(1500), p.recv()).await;
    assert!(quiet.is_err(), "a message with hold time 0: {quiet:?}");
    assert_eq!(d.state(), State::Established);
}

/// Reset: Cease/Administrative Reset, then reconnect. Shutdown: Cease/
/// Administrative Shutdown, and the task ends without reconnecting.
#[tokio::test]
async fn stop_sends_cease_with_subcode() {
    let (l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 90).await;
    d.ctl.send(PeerCtl::Reset).unwrap();
    assert_eq!(
        cease_subcode(&p.expect_notification().await),
        cease::ADMIN_RESET
    );
    assert!(matches!(d.rib_event().await, RibMsg::PeerDown { .. }));
    let mut p = Scripted::accept(&l).await;
    d.establish(&mut p, 90).await;
    d.ctl.send(PeerCtl::Shutdown).unwrap();
    assert_eq!(
        cease_subcode(&p.expect_notification().await),
        cease::ADMIN_SHUTDOWN
    );
    tokio::time::timeout(LIMIT, d.task)
        .await
        .expect("the task ends after shutdown")
        .unwrap();
    assert_eq!(d.peers.snapshot(0).state, State::Idle);
}

/// An UPDATE before Established is an FSM error: 5/1 in OpenSent, 5/2 in OpenConfirm.
#[tokio::test]
async fn update_before_established_is_fsm_error() {
    let (l, port) = listener().await;
    let d = Daemon::start(config(port, false, 90));
    let eor = wire::encode_end_of_rib(crate::types::Afi::Ipv4);
    let mut p = Scripted::accept(&l).await;
    p.expect(wire::msg::OPEN).await;
    p.send(&eor).await;
    let n = p.expect_notification().await;
    assert_eq!((n.code, n.subcode), (code::FSM, fsm_err::IN_OPENSENT));

    let mut p = Scripted::accept(&l).await;
    p.expect(wire::msg::OPEN).await;
    p.send_open(LOW_ID, 90).await;
    p.expect(wire::msg::KEEPALIVE).await;
    p.send(&eor).await;
    let n = p.expect_notification().await;
    assert_eq!((n.code, n.subcode), (code::FSM, fsm_err::IN_OPENCONFIRM));
    // Each counted once, as sent, under its code and subcode.
    d.wait_status("two NOTIFICATIONs counted", |s| s.notifications.len() == 2)
        .await;
    let sent: Vec<_> = d
        .peers
        .snapshot(0)
        .notifications
        .iter()
        .map(|n| (n.direction, n.code, n.subcode, n.count))
        .collect();
    let fsm = |subcode| (super::Direction::Sent, code::FSM, subcode, 1);
    assert_eq!(
        sent,
        [fsm(fsm_err::IN_OPENSENT), fsm(fsm_err::IN_OPENCONFIRM)]
    );
}

/// A NOTIFICATION from the peer closes the session without sending one back.
#[tokio::test]
async fn notification_received_closes_without_sending() {
    let (_l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 90).await;
    let n = Notification {
        code: code::CEASE,
        subcode: cease::ADMIN_SHUTDOWN,
        data: Vec::new(),
    };
    p.send(&wire::encode_notification(&n)).await;
    loop {
        match p.recv().await {
            None => break,
            Some((wire::msg::KEEPALIVE, _)) => {}
            other => panic!("expected close without NOTIFICATION, got {other:?}"),
        }
    }
    assert!(matches!(d.rib_event().await, RibMsg::PeerDown { .. }));
    let st = d.peers.snapshot(0);
    assert_eq!((st.notifications_received, st.notifications_sent), (1, 0));
}

/// The status counters: messages by type and direction, a received
/// NOTIFICATION under its code and subcode, an UPDATE treated as withdraw
/// (bad next hop) with an attribute discarded (LOCAL_PREF from eBGP), the
/// flap and the time of the last state change.
#[tokio::test]
async fn status_counts_messages_notifications_and_rfc7606() {
    let (_l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 90).await;
    d.wait_established().await;
    let st = d.peers.snapshot(0);
    assert_eq!((st.messages_received.open, st.messages_sent.open), (1, 1));
    assert_eq!(st.messages_received.keepalive, 1);
    assert!(st.messages_sent.keepalive >= 1, "{st:?}");
    assert!(st.last_change_unix > 0);

    let attrs = crate::types::PathAttrs {
        as_path: crate::types::AsPath::sequence(&[PEER_AS]),
        next_hop: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        local_pref: Some(100),
        ..Default::default()
    };
    let enc = wire::EncodeCtx {
        as4: true,
        max_len: wire::MAX_MSG_LEN,
    };
    let prefix: crate::types::Prefix = "10.1.0.0/16".parse().unwrap();
    let mut update = Vec::new();
    wire::encode_announce(
        &enc,
        crate::types::Afi::Ipv4,
        &[prefix],
        &attrs,
        &mut update,
    );
    p.send(&update).await;
    d.wait_status("an RFC 7606 action", |s| s.rfc7606.treat_as_withdraw > 0)
        .await;
    let st = d.peers.snapshot(0);
    assert_eq!(
        (st.rfc7606.treat_as_withdraw, st.rfc7606.attribute_discard),
        (1, 1)
    );
    assert_eq!((st.messages_received.update, st.updates_received), (1, 1));

    let n = Notification {
        code: code::CEASE,
        subcode: cease::ADMIN_SHUTDOWN,
        data: Vec::new(),
    };
    p.send(&wire::encode_notification(&n)).await;
    assert!(matches!(d.rib_event().await, RibMsg::PeerDown { .. }));
    let st = d.peers.snapshot(0);
    let want = super::NotificationCount {
        direction: super::Direction::Received,
        code: code::CEASE,
        subcode: cease::ADMIN_SHUTDOWN,
        count: 1,
    };
    assert_eq!(st.notifications, [want]);
    assert_eq!(st.messages_received.notification, 1);
    assert_eq!(
        (st.messages_sent.notification, st.messages_sent.update),
        (0, 0)
    );
    assert_eq!((st.flaps, st.established_count), (1, 1));
}

/// Two connections at once (RFC 4271 §6.8): the one initiated by the higher
/// BGP Identifier survives, the other gets Cease/Connection Collision Resolution.
#[tokio::test]
async fn collision_keeps_higher_identifier_side() {
    for (peer_id, ours_kept) in [(LOW_ID, true), (HIGH_ID, false)] {
        let (l, port) = listener().await;
        let mut d = Daemon::start(config(port, false, 90));
        let mut out = Scripted::accept(&l).await; // the daemon initiated it
        let mut inc = d.incoming().await; // the peer initiated it
        out.expect(wire::msg::OPEN).await;
        inc.expect(wire::msg::OPEN).await;
        out.send_open(peer_id, 90).await;
        if ours_kept {
            out.expect(wire::msg::KEEPALIVE).await; // OpenConfirm on the daemon's connection
            inc.send_open(peer_id, 90).await;
            assert_eq!(
                cease_subcode(&inc.expect_notification().await),
                cease::COLLISION
            );
            out.send(&wire::encode_keepalive()).await;
        } else {
            // The connection to keep (theirs) is still in OpenSent: ours gives way now.
            assert_eq!(
                cease_subcode(&out.expect_notification().await),
                cease::COLLISION
            );
            inc.send_open(peer_id, 90).await;
            inc.expect(wire::msg::KEEPALIVE).await;
            inc.send(&wire::encode_keepalive()).await;
        }
        assert!(matches!(d.rib_event().await, RibMsg::PeerUp { .. }));
        d.wait_established().await;
        let st = d.peers.snapshot(0);
        let daemon_initiated = st.remote_address.unwrap().port() == port;
        assert_eq!(daemon_initiated, ours_kept, "{st:?}");
        assert_eq!(st.established_count, 1);
    }
}

/// A daemon connecting to a fresh listener, with `graceful_restart: gr`.
async fn connected_gr(gr: bool) -> (TcpListener, Daemon, Scripted) {
    let (l, port) = listener().await;
    let cfg = TestConfig::embedded_default().peers(&[format!(
        "{{name: p, address: 127.0.0.1, port: {port}, remote_asn: {PEER_AS}, role: upstream, \
         hold_time: 90, connect_retry: 1, graceful_restart: {gr}}}"
    )]);
    let d = Daemon::start(Arc::new(cfg.build()));
    let p = Scripted::accept(&l).await;
    (l, d, p)
}

/// The peer's OPEN with the Graceful Restart capability (restart time 60,
/// IPv4 with forwarding state kept, Restart State bit `restarting`).
fn gr_open(restarting: bool) -> Open {
    Open {
        asn: PEER_AS,
        my_as: PEER_AS as u16,
        hold_time: 90,
        router_id: LOW_ID,
        caps: Capabilities {
            as4: Some(PEER_AS),
            graceful_restart: Some(wire::GracefulRestartCap {
                restart_time: 60,
                restarting,
                notification: false,
                afis: vec![(crate::types::Afi::Ipv4, true)],
            }),
            ..Capabilities::default()
        },
    }
}

impl Scripted {
    /// The daemon's OPEN, then ours with the Graceful Restart capability
    /// (restart time 60, Restart State bit `restarting`), and KEEPALIVEs.
    async fn establish_gr(&mut self, restarting: bool) {
        self.expect(wire::msg::OPEN).await;
        self.send(&wire::encode_open(&gr_open(restarting))).await;
        self.expect(wire::msg::KEEPALIVE).await;
        self.send(&wire::encode_keepalive()).await;
    }
}

/// RFC 4724 §4.2: a graceful-restart peer that restarts faster than the hold
/// timer (a new connection and OPEN while the old session is Established)
/// ends the old session as a TCP failure does: the old connection closes
/// without a NOTIFICATION, the RIB keeps the routes stale (the restart time),
/// and the new connection becomes the session. Without graceful restart the
/// new connection is refused (§6.8, Cease/Connection Collision Resolution).
#[tokio::test]
async fn graceful_restart_peer_reconnecting_replaces_established_session() {
    let (_l, mut d, mut old) = connected_gr(true).await;
    old.establish_gr(false).await;
    assert!(matches!(d.rib_event().await, RibMsg::PeerUp { .. }));
    d.wait_established().await;

    let mut new = d.incoming().await;
    new.expect(wire::msg::OPEN).await;
    // Until the peer's OPEN on it, the new connection changes nothing.
    assert_eq!(d.state(), State::Established);
    new.send(&wire::encode_open(&gr_open(true))).await;
    match d.rib_event().await {
        RibMsg::PeerDown { keep_stale, .. } => {
            assert_eq!(keep_stale, Some(Duration::from_secs(60)))
        }
        other => panic!("expected PeerDown, got {other:?}"),
    }
    // The old connection closes without a NOTIFICATION.
    loop {
        match old.recv().await {
            Some((wire::msg::KEEPALIVE, _)) => continue,
            None => break,
            other => panic!("expected EOF on the old connection, got {other:?}"),
        }
    }
    new.expect(wire::msg::KEEPALIVE).await;
    new.send(&wire::encode_keepalive()).await;
    assert!(matches!(d.rib_event().await, RibMsg::PeerUp { .. }));
    d.wait_established().await;
    let st = d.peers.snapshot(0);
    assert_eq!(st.established_count, 2, "{st:?}");
    assert_eq!(st.notifications_sent, 0, "{st:?}");
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("peer restarted")),
        "{st:?}"
    );

    // Without graceful restart: the Established session is kept, the new
    // connection gets Cease/Connection Collision Resolution.
    let (_l, mut d, mut p) = connected_gr(false).await;
    d.establish(&mut p, 90).await;
    d.wait_established().await;
    let mut new = d.incoming().await;
    assert_eq!(
        cease_subcode(&new.expect_notification().await),
        cease::COLLISION
    );
    assert_eq!(d.state(), State::Established);
    assert_eq!(d.peers.snapshot(0).established_count, 1);
}

#[path = "originate_tests.rs"]
mod originate_tests;
