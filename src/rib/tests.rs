//! RIB tests: drive `run` through its channel with fake peers.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::config::Config;
use crate::testutil::{peer_up, session_info, TestConfig, Xorshift};
use crate::types::{AsPath, AsSegment, PathAttrs, Prefix, RouteChange, AS_SET};

const UP1: PeerId = 0;
const UP2: PeerId = 1;
const POP1: PeerId = 2;
const WARN: PeerId = 3;
const TEAR: PeerId = 4;
const GR: PeerId = 5;
const IBGP: PeerId = 6;
const LP: PeerId = 7;
const NOFIRST: PeerId = 8;

/// The embedded default (POP `local`, ASN 64999) with POP `pop1` (65100)
/// and the peers above.
fn test_config() -> Config {
    TestConfig::embedded_default()
        .pop("pop1", 65100)
        .peers(&[
            "{name: up1, address: 10.0.0.1, remote_asn: 65001, role: upstream}",
            "{name: up2, address: 10.0.0.2, remote_asn: 65002, role: upstream}",
            "{name: pop1, address: 10.0.1.1, remote_asn: 65100, role: pop}",
            "{name: warn, address: 10.0.0.3, remote_asn: 65003, role: upstream, max_prefix: {ipv4: {limit: 2, action: warn}}}",
            "{name: tear, address: 10.0.0.4, remote_asn: 65004, role: upstream, max_prefix: {ipv4: {limit: 2, action: teardown}}}",
            "{name: gr, address: 10.0.0.5, remote_asn: 65005, role: upstream, graceful_restart: true}",
            "{name: ibgp, address: 10.0.0.6, remote_asn: 64999, role: upstream}",
            "{name: lp, address: 10.0.0.7, remote_asn: 65007, role: upstream, local_pref: 200}",
            "{name: nofirst, address: 10.0.0.8, remote_asn: 65008, role: upstream, enforce_first_as: false}",
        ])
        .build()
}

struct Harness {
    cfg: Arc<Config>,
    tx: mpsc::Sender<RibMsg>,
    stats: Arc<RibStats>,
}

/// Two IPv4 prefixes that many tests announce together.
const TWO_V4: [&str; 2] = ["192.0.2.0/24", "198.51.100.0/24"];

const LOCAL_ADDR: &str = "10.0.0.254";

impl Harness {
    fn start() -> Harness {
        let cfg = Arc::new(test_config());
        let (tx, rx) = mpsc::channel(1024);
        let stats = Arc::new(RibStats::default());
        tokio::spawn(run(cfg.clone(), rx, stats.clone()));
        Harness { cfg, tx, stats }
    }

    /// [`Harness::start`], then `peers` up (their command channels kept open).
    async fn with_up(peers: &[PeerId]) -> (Harness, Vec<mpsc::UnboundedReceiver<SessionCmd>>) {
        let h = Harness::start();
        let mut sessions = Vec::new();
        for &p in peers {
            sessions.push(h.up(p).await);
        }
        (h, sessions)
    }

    fn info(&self, peer: PeerId) -> SessionInfo {
        session_info(&self.cfg, peer)
    }

    async fn send(&self, m: RibMsg) {
        self.tx.send(m).await.unwrap();
    }

    async fn up(&self, peer: PeerId) -> mpsc::UnboundedReceiver<SessionCmd> {
        let (ctl, rx) = mpsc::unbounded_channel();
        self.send(RibMsg::PeerUp {
            peer,
            info: self.info(peer),
            ctl,
        })
        .await;
        rx
    }

    /// `peer`'s session goes down (keeping its routes stale for `keep_stale`).
    async fn down(&self, peer: PeerId, keep_stale: Option<Duration>) {
        self.send(RibMsg::PeerDown { peer, keep_stale }).await;
    }

    /// End-of-RIB from `peer` for `afi`.
    async fn eor(&self, peer: PeerId, afi: Afi) {
        self.send(RibMsg::EndOfRib { peer, afi }).await;
    }

    async fn announce(&self, peer: PeerId, prefixes: &[&str], attrs: Arc<PathAttrs>) {
        let announced: Vec<Prefix> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
        self.send(RibMsg::Update {
            peer,
            afi: announced[0].afi(),
            change: RouteChange {
                withdrawn: vec![],
                announced,
                attrs: Some(attrs),
            },
        })
        .await;
    }

    async fn withdraw(&self, peer: PeerId, prefixes: &[&str]) {
        let withdrawn: Vec<Prefix> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
        self.send(RibMsg::Update {
            peer,
            afi: withdrawn[0].afi(),
            change: RouteChange {
                withdrawn,
                announced: vec![],
                attrs: None,
            },
        })
        .await;
    }

    async fn query(&self, query: Query) -> Value {
        let (reply, rx) = oneshot::channel();
        self.send(RibMsg::Query { query, reply }).await;
        // The typed reply as the admin socket sends it.
        serde_json::to_value(rx.await.unwrap()).unwrap()
    }

    async fn route(&self, p: &str) -> Value {
        self.query(Query::Route {
            prefix: p.parse().unwrap(),
            exact: true,
        })
        .await
    }

    /// Peer names of the paths of `p`, best first.
    async fn peers_of(&self, p: &str) -> Vec<String> {
        let r = self.route(p).await;
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["peer"].as_str().unwrap().to_string())
            .collect()
    }

    async fn counts(&self, peer: PeerId) -> Value {
        let v = self.query(Query::PeerCounts).await;
        v["peers"][peer as usize].clone()
    }

    /// What the RIB exported to the session of `rx` (see [`exports`]), once
    /// it has processed everything sent so far.
    async fn exported(
        &self,
        rx: &mut mpsc::UnboundedReceiver<SessionCmd>,
    ) -> (Vec<(String, String)>, Vec<String>) {
        self.sync().await;
        exports(&drain(rx))
    }

    /// Wait for the RIB to have processed everything sent so far.
    async fn sync(&self) {
        self.query(Query::PeerCounts).await;
    }
}

fn attrs(path: &[u32], nh: &str) -> Arc<PathAttrs> {
    Arc::new(PathAttrs {
        as_path: AsPath::sequence(path),
        next_hop: Some(nh.parse::<IpAddr>().unwrap()),
        ..Default::default()
    })
}

/// The families of the End-of-RIB commands, in order.
fn eors(cmds: &[SessionCmd]) -> Vec<Afi> {
    cmds.iter()
        .filter_map(|c| match c {
            SessionCmd::EndOfRib(a) => Some(*a),
            _ => None,
        })
        .collect()
}

/// Commands other than End-of-RIB (which every session gets once its initial update is done).
fn no_eor(cmds: Vec<SessionCmd>) -> Vec<SessionCmd> {
    cmds.into_iter()
        .filter(|c| !matches!(c, SessionCmd::EndOfRib(_)))
        .collect()
}

/// Drain the commands queued on a session's ctl channel.
fn drain(rx: &mut mpsc::UnboundedReceiver<SessionCmd>) -> Vec<SessionCmd> {
    let mut v = Vec::new();
    while let Ok(c) = rx.try_recv() {
        v.push(c);
    }
    v
}

/// (announced prefixes with their AS_PATH text, withdrawn prefixes) of Export commands.
fn exports(cmds: &[SessionCmd]) -> (Vec<(String, String)>, Vec<String>) {
    let mut a = Vec::new();
    let mut w = Vec::new();
    for c in cmds {
        if let SessionCmd::Export {
            announce, withdraw, ..
        } = c
        {
            a.extend(
                announce
                    .iter()
                    .map(|(p, at)| (p.to_string(), at.as_path.to_string())),
            );
            w.extend(withdraw.iter().map(|p| p.to_string()));
        }
    }
    a.sort();
    w.sort();
    (a, w)
}

#[tokio::test]
async fn intern_dedup_and_refcount_freed_on_withdraw() {
    let (h, _sessions) = Harness::with_up(&[UP1]).await;
    let a = attrs(&[65001, 3], "10.0.0.1");
    h.announce(UP1, &TWO_V4, a.clone()).await;
    // The same attributes in a second UPDATE (a different Arc) share the set too.
    h.announce(UP1, &["203.0.113.0/24"], Arc::new((*a).clone()))
        .await;
    h.sync().await;
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 3);
    assert_eq!(h.stats.prefixes_v4.load(Ordering::Relaxed), 3);
    let s = h.query(Query::Summary).await;
    assert_eq!(s["attr_sets"], 1);
    h.withdraw(UP1, &TWO_V4).await;
    h.sync().await;
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 1);
    h.withdraw(UP1, &["203.0.113.0/24"]).await;
    h.sync().await;
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 0);
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 0);
    assert_eq!(h.stats.prefixes_v4.load(Ordering::Relaxed), 0);
    // Replacing a path's attributes frees the old set.
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 1], "10.0.0.1"))
        .await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 2], "10.0.0.1"))
        .await;
    h.sync().await;
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn best_path_switches_on_withdraw() {
    let (h, _sessions) = Harness::with_up(&[UP1, UP2]).await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 7, 8], "10.0.0.1"))
        .await;
    h.announce(UP2, &["192.0.2.0/24"], attrs(&[65002, 8], "10.0.0.2"))
        .await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["up2", "up1"]);
    h.withdraw(UP2, &["192.0.2.0/24"]).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["up1"]);
    // Equal length: lower router id (up1 = 1.1.1.1) wins (RFC 4271 §9.1.2.2 f).
    h.announce(UP2, &["192.0.2.0/24"], attrs(&[65002, 7, 8], "10.0.0.2"))
        .await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["up1", "up2"]);
}

#[tokio::test]
async fn peer_down_removes_exactly_its_routes() {
    let (h, _sessions) = Harness::with_up(&[UP1, UP2]).await;
    h.announce(UP1, &TWO_V4, attrs(&[65001], "10.0.0.1")).await;
    h.announce(
        UP2,
        &["192.0.2.0/24", "2001:db8::/32"],
        attrs(&[65002], "2001:db8::2"),
    )
    .await;
    h.sync().await;
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 4);
    h.down(UP1, None).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["up2"]);
    assert!(h.peers_of("198.51.100.0/24").await.is_empty());
    assert_eq!(h.peers_of("2001:db8::/32").await, ["up2"]);
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 2);
    assert_eq!(h.stats.prefixes_v4.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats.prefixes_v6.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 1);
    let c = h.counts(UP1).await;
    assert_eq!(c["received"]["ipv4"], 0);
    assert_eq!(c["accepted"]["ipv4"], 0);
    assert_eq!(h.counts(UP2).await["accepted"]["ipv6"], 1);
}

#[tokio::test]
async fn export_to_pop_peers() {
    let h = Harness::start();
    let mut up1 = h.up(UP1).await;
    let mut up2 = h.up(UP2).await;
    // Our upstream tables have converged (see `deferral_tests`).
    h.eor(UP1, Afi::Ipv4).await;
    h.eor(UP1, Afi::Ipv6).await;
    // Routes present before the POP comes up are in its initial dump.
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 9], "10.0.0.1"))
        .await;
    let mut pop = h.up(POP1).await;
    h.sync().await;
    let cmds = drain(&mut pop);
    assert_eq!(
        exports(&cmds),
        (vec![("192.0.2.0/24".into(), "65001 9".into())], vec![])
    );
    let eors = eors(&cmds);
    assert_eq!(eors, [Afi::Ipv4, Afi::Ipv6]);
    assert!(matches!(cmds.last(), Some(SessionCmd::EndOfRib(Afi::Ipv6))));
    assert_eq!(
        h.counts(POP1).await["exported"],
        serde_json::json!({"ipv4": 1, "ipv6": 0})
    );

    // Upstream announcement: exported with the upstream attributes (local-pref set).
    h.announce(UP1, &["198.51.100.0/24"], attrs(&[65001, 5], "10.0.0.1"))
        .await;
    h.sync().await;
    let cmds = drain(&mut pop);
    assert_eq!(cmds.len(), 1, "one Export per batch");
    match &cmds[0] {
        SessionCmd::Export {
            announce, withdraw, ..
        } => {
            assert!(withdraw.is_empty());
            assert_eq!(announce.len(), 1);
            assert_eq!(announce[0].1.local_pref, Some(100));
            assert_eq!(announce[0].1.next_hop, Some("10.0.0.1".parse().unwrap()));
        }
        c => panic!("unexpected {c:?}"),
    }
    // A better upstream path replaces the announcement.
    h.announce(UP2, &["198.51.100.0/24"], attrs(&[65002], "10.0.0.2"))
        .await;
    assert_eq!(
        h.exported(&mut pop).await,
        (vec![("198.51.100.0/24".into(), "65002".into())], vec![])
    );
    // A worse upstream path changes nothing.
    h.announce(UP1, &["198.51.100.0/24"], attrs(&[65001, 5, 5], "10.0.0.1"))
        .await;
    h.sync().await;
    assert!(drain(&mut pop).is_empty());

    // POP-learned routes are never exported, and a POP path becoming best
    // withdraws our announcement.
    h.announce(POP1, &["203.0.113.0/24"], attrs(&[65100, 1], "10.0.1.1"))
        .await;
    h.announce(POP1, &["192.0.2.0/24"], attrs(&[65100], "10.0.1.1"))
        .await;
    h.sync().await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["pop1", "up1"]);
    assert_eq!(
        exports(&drain(&mut pop)),
        (vec![], vec!["192.0.2.0/24".into()])
    );
    // The best upstream path goes: the next upstream path replaces it.
    h.withdraw(UP2, &["198.51.100.0/24"]).await;
    assert_eq!(
        h.exported(&mut pop).await,
        (vec![("198.51.100.0/24".into(), "65001 5 5".into())], vec![])
    );
    // The upstream route disappears entirely: withdraw.
    h.withdraw(UP1, &["198.51.100.0/24"]).await;
    assert_eq!(
        h.exported(&mut pop).await,
        (vec![], vec!["198.51.100.0/24".into()])
    );
    // When the POP path goes, the upstream path is exported again.
    h.withdraw(POP1, &["192.0.2.0/24"]).await;
    assert_eq!(
        h.exported(&mut pop).await,
        (vec![("192.0.2.0/24".into(), "65001 9".into())], vec![])
    );
    // Route refresh resends the family.
    h.send(RibMsg::RouteRefresh {
        peer: POP1,
        afi: Afi::Ipv4,
    })
    .await;
    assert_eq!(
        h.exported(&mut pop).await,
        (vec![("192.0.2.0/24".into(), "65001 9".into())], vec![])
    );
    // Nothing but End-of-RIB is ever sent to upstream peers.
    assert!(no_eor(drain(&mut up1)).is_empty());
    assert!(no_eor(drain(&mut up2)).is_empty());
    // A POP that went down gets nothing.
    h.down(POP1, None).await;
    h.announce(UP1, &["100.64.0.0/10"], attrs(&[65001], "10.0.0.1"))
        .await;
    h.sync().await;
    assert!(drain(&mut pop).is_empty());
}

#[tokio::test]
async fn import_policy_rejections() {
    let (h, _sessions) = Harness::with_up(&[UP1, NOFIRST]).await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 1], "10.0.0.1"))
        .await;
    // AS loop: our ASN (64999) in the path. Rejected, and withdraws the old path.
    h.announce(UP1, &TWO_V4, attrs(&[65001, 64999, 1], "10.0.0.1"))
        .await;
    assert!(h.peers_of("192.0.2.0/24").await.is_empty());
    let c = h.counts(UP1).await;
    assert_eq!(c["received"]["ipv4"], 2);
    assert_eq!(c["accepted"]["ipv4"], 0);
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 0);
    // First AS must be the peer's ASN (eBGP, enforce_first_as).
    h.announce(UP1, &["203.0.113.0/24"], attrs(&[65009, 1], "10.0.0.1"))
        .await;
    // Next hop equal to our own address.
    h.announce(UP1, &["100.64.0.0/10"], attrs(&[65001, 1], LOCAL_ADDR))
        .await;
    let c = h.counts(UP1).await;
    assert_eq!(c["received"]["ipv4"], 4);
    assert_eq!(c["accepted"]["ipv4"], 0);
    // Withdrawing a rejected prefix lowers "received"; a valid re-announcement is accepted.
    h.withdraw(UP1, &["203.0.113.0/24"]).await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 1], "10.0.0.1"))
        .await;
    let c = h.counts(UP1).await;
    assert_eq!(c["received"]["ipv4"], 3);
    assert_eq!(c["accepted"]["ipv4"], 1);
    // enforce_first_as: false accepts any first AS.
    h.announce(NOFIRST, &["203.0.113.0/24"], attrs(&[65009, 1], "10.0.0.8"))
        .await;
    assert_eq!(h.peers_of("203.0.113.0/24").await, ["nofirst"]);
}

#[tokio::test]
async fn local_pref_policy() {
    let (h, _sessions) = Harness::with_up(&[UP1, IBGP, LP]).await;
    let mut with_lp = (*attrs(&[65001], "10.0.0.1")).clone();
    with_lp.local_pref = Some(300);
    // eBGP: received LOCAL_PREF ignored, 100.
    h.announce(UP1, &["192.0.2.0/24"], Arc::new(with_lp.clone()))
        .await;
    // iBGP: received LOCAL_PREF kept (and default 100 when missing).
    let mut ibgp = with_lp.clone();
    ibgp.as_path = AsPath::sequence(&[65010, 1]);
    h.announce(IBGP, &["192.0.2.0/24"], Arc::new(ibgp.clone()))
        .await;
    ibgp.local_pref = None;
    h.announce(IBGP, &["198.51.100.0/24"], Arc::new(ibgp)).await;
    // Configured: always set.
    h.announce(LP, &["192.0.2.0/24"], attrs(&[65007, 1, 2, 3], "10.0.0.7"))
        .await;
    let r = h.route("192.0.2.0/24").await;
    let lp: Vec<(String, u64)> = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["peer"].as_str().unwrap().into(),
                p["local_pref"].as_u64().unwrap(),
            )
        })
        .collect();
    // Highest LOCAL_PREF wins despite the longest AS_PATH.
    assert_eq!(lp[0], ("ibgp".into(), 300));
    assert!(lp.contains(&("up1".into(), 100)));
    assert!(lp.contains(&("lp".into(), 200)));
    let r = h.route("198.51.100.0/24").await;
    assert_eq!(r["paths"][0]["local_pref"], 100);
    assert_eq!(r["paths"][0]["ebgp"], false);
}

#[tokio::test]
async fn max_prefix_warn_vs_teardown() {
    let h = Harness::start();
    let mut w = h.up(WARN).await;
    let mut t = h.up(TEAR).await;
    let four = ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"];
    h.announce(WARN, &four, attrs(&[65003], "10.0.0.3")).await;
    h.announce(TEAR, &four, attrs(&[65004], "10.0.0.4")).await;
    h.sync().await;
    // warn: all accepted, recorded, nothing sent to the session.
    let c = h.counts(WARN).await;
    assert_eq!(c["accepted"]["ipv4"], 4);
    assert_eq!(c["max_prefix_exceeded"]["ipv4"], true);
    assert_eq!(c["max_prefix_exceeded"]["ipv6"], false);
    assert_eq!(c["max_prefix_events"]["ipv4"], 1, "once per session");
    assert!(no_eor(drain(&mut w)).is_empty());
    // teardown: the limit's worth kept, rest of the UPDATE dropped, Cease sent.
    let c = h.counts(TEAR).await;
    assert_eq!(c["accepted"]["ipv4"], 2);
    assert_eq!(c["max_prefix_exceeded"]["ipv4"], true);
    assert_eq!(c["max_prefix_events"]["ipv4"], 1);
    let cmds = no_eor(drain(&mut t));
    assert_eq!(cmds.len(), 1);
    match &cmds[0] {
        SessionCmd::Teardown { subcode, data, .. } => {
            assert_eq!(*subcode, crate::wire::cease::MAX_PREFIX);
            assert_eq!(data, &[0, 1, 1, 0, 0, 0, 2]);
        }
        c => panic!("unexpected {c:?}"),
    }
    // Further UPDATEs before the session reports down are ignored.
    h.announce(TEAR, &["10.9.0.0/16"], attrs(&[65004], "10.0.0.4"))
        .await;
    assert_eq!(h.counts(TEAR).await["accepted"]["ipv4"], 2);
    h.down(TEAR, None).await;
    assert_eq!(h.counts(TEAR).await["accepted"]["ipv4"], 0);
    // Re-announcing within the limit does not trip it again.
    h.announce(WARN, &["10.1.0.0/16"], attrs(&[65003, 1], "10.0.0.3"))
        .await;
    assert!(drain(&mut w).is_empty());
}

#[tokio::test]
async fn graceful_restart_stale_then_eor_sweep() {
    let (h, _sessions) = Harness::with_up(&[UP1, GR]).await;
    h.announce(GR, &TWO_V4, attrs(&[65005], "10.0.0.5")).await;
    h.announce(GR, &["2001:db8::/32"], attrs(&[65005], "2001:db8::5"))
        .await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 1, 2], "10.0.0.1"))
        .await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr", "up1"]);
    h.down(GR, Some(Duration::from_secs(60))).await;
    // Kept, stale, and a stale path loses to a fresh one.
    let r = h.route("192.0.2.0/24").await;
    assert_eq!(r["paths"][0]["peer"], "up1");
    assert_eq!(r["paths"][1]["stale"], true);
    assert_eq!(h.route("198.51.100.0/24").await["paths"][0]["stale"], true);
    assert_eq!(h.stats.paths.load(Ordering::Relaxed), 4);
    // Re-established: routes stay until replaced or End-of-RIB.
    let _g = h.up(GR).await;
    h.announce(GR, &["192.0.2.0/24"], attrs(&[65005], "10.0.0.5"))
        .await;
    let r = h.route("192.0.2.0/24").await;
    assert_eq!(r["paths"][0]["peer"], "gr");
    assert_eq!(r["paths"][0]["stale"], false);
    assert_eq!(h.peers_of("198.51.100.0/24").await, ["gr"]);
    h.eor(GR, Afi::Ipv4).await;
    assert!(h.peers_of("198.51.100.0/24").await.is_empty());
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr", "up1"]);
    // IPv6 still waits for its own End-of-RIB.
    assert_eq!(h.peers_of("2001:db8::/32").await, ["gr"]);
    let c = h.counts(GR).await;
    assert_eq!(c["eor"]["ipv4"], true);
    assert_eq!(c["eor"]["ipv6"], false);
    h.eor(GR, Afi::Ipv6).await;
    assert!(h.peers_of("2001:db8::/32").await.is_empty());
}

#[tokio::test]
async fn graceful_restart_without_forwarding_state_sweeps_at_once() {
    // RFC 4724 §4.2: when the re-established session's capability does not set
    // the F bit for a family, its stale routes go immediately.
    let (h, _sessions) = Harness::with_up(&[GR]).await;
    h.announce(GR, &["192.0.2.0/24"], attrs(&[65005], "10.0.0.5"))
        .await;
    h.announce(GR, &["2001:db8::/32"], attrs(&[65005], "2001:db8::5"))
        .await;
    h.down(GR, Some(Duration::from_secs(60))).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr"]);
    let (ctl, _rx) = mpsc::unbounded_channel();
    let mut info = h.info(GR);
    info.gr_preserved = [false, true];
    h.send(RibMsg::PeerUp {
        peer: GR,
        info,
        ctl,
    })
    .await;
    assert!(h.peers_of("192.0.2.0/24").await.is_empty());
    assert_eq!(h.peers_of("2001:db8::/32").await, ["gr"]);
}

#[tokio::test]
async fn upstream_gets_end_of_rib_and_nothing_else() {
    let h = Harness::start();
    let mut up = h.up(UP1).await;
    h.announce(UP1, &["192.0.2.0/24"], attrs(&[65001, 1], "10.0.0.1"))
        .await;
    h.sync().await;
    let cmds = drain(&mut up);
    let eor = eors(&cmds);
    assert_eq!(eor, [Afi::Ipv4, Afi::Ipv6]);
    assert!(no_eor(cmds).is_empty());
}

#[tokio::test]
async fn graceful_restart_timeout_and_cancel() {
    let (h, _sessions) = Harness::with_up(&[GR]).await;
    h.announce(GR, &["192.0.2.0/24"], attrs(&[65005], "10.0.0.5"))
        .await;
    h.down(GR, Some(Duration::from_millis(100))).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(h.peers_of("192.0.2.0/24").await.is_empty());
    assert_eq!(h.stats.attr_sets.load(Ordering::Relaxed), 0);

    // A timer from an earlier session is void after a new down/up.
    let _g = h.up(GR).await;
    h.announce(GR, &["192.0.2.0/24"], attrs(&[65005], "10.0.0.5"))
        .await;
    h.down(GR, Some(Duration::from_millis(100))).await;
    let _g = h.up(GR).await;
    h.announce(GR, &["192.0.2.0/24"], attrs(&[65005], "10.0.0.5"))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr"]);
    // An old epoch is ignored explicitly too.
    h.send(RibMsg::StaleTimeout { peer: GR, epoch: 0 }).await;
    assert_eq!(h.peers_of("192.0.2.0/24").await, ["gr"]);
}

#[tokio::test]
async fn query_json_shapes() {
    let (h, _sessions) = Harness::with_up(&[UP1, POP1]).await;
    let mut a = (*attrs(&[65001, 2], "10.0.0.1")).clone();
    a.as_path.0.push(AsSegment {
        kind: AS_SET,
        asns: vec![3, 4],
    });
    a.med = Some(5);
    a.communities = vec![(65000 << 16) | 1];
    a.large_communities = vec![[1, 2, 3]];
    a.aggregator = Some((65001, "192.0.2.9".parse().unwrap()));
    a.atomic_aggregate = true;
    h.announce(UP1, &["192.0.2.0/24"], Arc::new(a)).await;
    h.announce(POP1, &["2001:db8::/32"], attrs(&[65100], "2001:db8::1"))
        .await;

    let s = h.query(Query::Summary).await;
    assert_eq!(s["prefixes"]["ipv4"], 1);
    assert_eq!(s["prefixes"]["ipv6"], 1);
    assert_eq!(s["paths"]["ipv4"], 1);
    assert_eq!(s["paths"]["ipv6"], 1);
    assert_eq!(s["best_from"]["upstream"], 1);
    assert_eq!(s["best_from"]["pop"], 1);
    assert_eq!(s["attr_sets"], 2);
    for k in [
        "rss_bytes",
        "hwm_bytes",
        "table_bytes_estimate",
        "attr_bytes_estimate",
    ] {
        assert!(s["memory"][k].as_u64().unwrap() > 0, "{k}");
    }

    // Longest match for an address.
    let r = h
        .query(Query::Route {
            prefix: "192.0.2.77".parse().unwrap(),
            exact: false,
        })
        .await;
    assert_eq!(r["query"], "192.0.2.77/32");
    assert_eq!(r["prefix"], "192.0.2.0/24");
    let p = &r["paths"][0];
    assert_eq!(p["peer"], "up1");
    assert_eq!(p["peer_address"], "10.0.0.1");
    assert_eq!(p["peer_asn"], 65001);
    assert_eq!(p["role"], "upstream");
    assert_eq!(p["best"], true);
    assert_eq!(p["stale"], false);
    assert_eq!(p["ebgp"], true);
    assert_eq!(p["router_id"], "1.1.1.1");
    assert_eq!(p["origin"], "igp");
    assert_eq!(p["as_path"], "65001 2 {3,4}");
    assert_eq!(
        p["as_path_segments"],
        serde_json::json!([{"kind": "sequence", "asns": [65001, 2]}, {"kind": "set", "asns": [3, 4]}])
    );
    assert_eq!(p["next_hop"], "10.0.0.1");
    assert_eq!(p["med"], 5);
    assert_eq!(p["local_pref"], 100);
    assert_eq!(p["communities"], serde_json::json!(["65000:1"]));
    assert_eq!(p["large_communities"], serde_json::json!(["1:2:3"]));
    assert_eq!(p["aggregator"], "65001 192.0.2.9");
    assert_eq!(p["atomic_aggregate"], true);
    assert_eq!(p["originator_id"], Value::Null);
    assert_eq!(p["cluster_list"], serde_json::json!([]));
    // Exact: no such prefix.
    let r = h
        .query(Query::Route {
            prefix: "192.0.2.0/25".parse().unwrap(),
            exact: true,
        })
        .await;
    assert_eq!(r["prefix"], Value::Null);
    assert_eq!(r["paths"], serde_json::json!([]));
    let r = h.route("2001:db8::/32").await;
    assert_eq!(r["paths"][0]["role"], "pop");
    assert_eq!(r["paths"][0]["med"], Value::Null);

    let c = h.query(Query::PeerCounts).await;
    let peers = c["peers"].as_array().unwrap();
    assert_eq!(peers.len(), h.cfg.peers.len());
    assert_eq!(peers[0]["peer"], "up1");
    assert_eq!(
        peers[0]["received"],
        serde_json::json!({"ipv4": 1, "ipv6": 0})
    );
    assert_eq!(
        peers[0]["accepted"],
        serde_json::json!({"ipv4": 1, "ipv6": 0})
    );
    assert_eq!(
        peers[0]["eor"],
        serde_json::json!({"ipv4": false, "ipv6": false})
    );
    assert_eq!(
        peers[0]["max_prefix_exceeded"],
        serde_json::json!({"ipv4": false, "ipv6": false})
    );

    let d = h.query(Query::Dump).await;
    let d = d.as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["prefix"], "192.0.2.0/24");
    assert_eq!(d[1]["prefix"], "2001:db8::/32");
    assert_eq!(d[1]["peer"], "pop1");
}

/// Randomized: after every step, the stored best equals a fresh selection over
/// all paths, counters and refcounts agree with the table, and a POP peer's
/// view rebuilt from the Export stream equals the exportable Loc-RIB.
#[test]
fn randomized_invariants() {
    use std::collections::HashMap;

    let peers: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "{{name: p{i}, address: 10.0.0.{}, remote_asn: {}, role: {}, enforce_first_as: false}}",
                i + 1,
                65001 + i,
                if i == 4 { "pop" } else { "upstream" }
            )
        })
        .collect();
    let cfg = Arc::new(
        TestConfig::embedded_default()
            .pop("p4", 65005)
            .peers(&peers)
            .with("selection_deferral: 0\n")
            .build(),
    );
    let stats = Arc::new(RibStats::default());
    let mut rib = Rib::new(cfg.clone(), stats.clone(), None);
    let mut ctls = Vec::new();
    // Identifiers in the reverse order of the peers.
    let info = |p: PeerId| SessionInfo {
        router_id: Ipv4Addr::new(1, 1, 1, 5 - p as u8),
        ..session_info(&cfg, p)
    };
    for p in 0..5u16 {
        ctls.push(peer_up(&mut rib, p, info(p)));
    }
    let mut view: HashMap<Prefix, Arc<PathAttrs>> = HashMap::new();
    let mut rng = Xorshift::new(0x1234_5678_9abc_def0);
    let mut rnd = move |n: u64| rng.below(n);
    let prefixes: Vec<Prefix> = (0..24u32)
        .map(|i| Prefix::v4(0x0a00_0000 | (i << 8), 24).unwrap())
        .chain((0..8u128).map(|i| Prefix::v6((0x2001_0db8u128 << 96) | (i << 80), 48).unwrap()))
        .collect();
    let mut nonempty_views = 0;
    for step in 0..4000 {
        let peer = rnd(5) as PeerId;
        let msg = match rnd(20) {
            0 => RibMsg::PeerDown {
                peer,
                keep_stale: None,
            },
            1 => RibMsg::PeerDown {
                peer,
                keep_stale: Some(Duration::from_secs(60)),
            },
            2 => RibMsg::EndOfRib {
                peer,
                afi: if rnd(2) == 0 { Afi::Ipv4 } else { Afi::Ipv6 },
            },
            3..=4 => {
                let (ctl, rx) = mpsc::unbounded_channel();
                ctls[peer as usize] = rx;
                if peer == 4 {
                    view.clear(); // a new session: the dump rebuilds the view
                }
                RibMsg::PeerUp {
                    peer,
                    info: info(peer),
                    ctl,
                }
            }
            k => {
                let p = prefixes[rnd(prefixes.len() as u64) as usize];
                let withdraw = k < 9;
                let mut a = PathAttrs {
                    as_path: AsPath::sequence(
                        &[1 + rnd(2) as u32]
                            .into_iter()
                            .chain((0..rnd(3)).map(|_| 7))
                            .collect::<Vec<_>>(),
                    ),
                    next_hop: Some(if p.afi() == Afi::Ipv4 {
                        "10.9.9.9".parse().unwrap()
                    } else {
                        "2001:db8::9".parse().unwrap()
                    }),
                    med: (rnd(3) > 0).then(|| rnd(3) as u32),
                    origin: crate::types::Origin::from_code(rnd(2) as u8).unwrap(),
                    ..Default::default()
                };
                if rnd(10) == 0 {
                    a.as_path = AsPath::sequence(&[1, 64999]); // loop: rejected
                }
                RibMsg::Update {
                    peer,
                    afi: p.afi(),
                    change: if withdraw {
                        RouteChange {
                            withdrawn: vec![p],
                            announced: vec![],
                            attrs: None,
                        }
                    } else {
                        RouteChange {
                            withdrawn: vec![],
                            announced: vec![p],
                            attrs: Some(Arc::new(a)),
                        }
                    },
                }
            }
        };
        rib.handle(msg);
        if rnd(3) == 0 {
            rib.flush();
            for c in drain(&mut ctls[4]) {
                if let SessionCmd::Export {
                    announce, withdraw, ..
                } = c
                {
                    for p in withdraw {
                        view.remove(&p);
                    }
                    for (p, a) in announce {
                        view.insert(p, a);
                    }
                }
            }
            // Check the POP's view only while it is up.
            if rib.core.peers[4].ctl.is_some() {
                let mut expect = HashMap::new();
                for afi in Afi::ALL {
                    for (p, peer, attr) in rib.best_routes(afi) {
                        if peer != 4 {
                            expect.insert(p, rib.attrs(attr));
                        }
                    }
                }
                let got: HashMap<Prefix, PathAttrs> =
                    view.iter().map(|(p, a)| (*p, (**a).clone())).collect();
                assert_eq!(got, expect, "step {step}");
                nonempty_views += usize::from(!got.is_empty());
            }
        }
        // Table invariants.
        let mut per_peer = [[0u64; 2]; 5];
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let core = &rib.core;
        let mut check = |e_paths: &[table::PathRef], fam: usize| {
            let keys: Vec<PathKey> = e_paths.iter().map(|p| core.path_key(p)).collect();
            assert_eq!(select_best(&keys), 0, "step {step}: best not first");
            let upstream = e_paths[0].peer != 4;
            assert_eq!(e_paths[0].flags & table::ANNOUNCED != 0, upstream);
            for (i, p) in e_paths.iter().enumerate() {
                assert!(i == 0 || p.flags & table::ANNOUNCED == 0);
                per_peer[p.peer as usize][fam] += 1;
                *refs.entry(p.attr).or_default() += 1;
            }
        };
        rib.v4.iter().for_each(|e| check(&e.paths, 0));
        rib.v6.iter().for_each(|e| check(&e.paths, 1));
        for (i, ps) in rib.core.peers.iter().enumerate() {
            assert_eq!(ps.accepted, per_peer[i], "step {step}: peer {i} counts");
            for f in 0..2 {
                assert!(ps.stale[f] <= ps.accepted[f]);
            }
        }
        assert_eq!(rib.core.attrs.len(), refs.len(), "step {step}: attr sets");
        for (id, n) in refs {
            assert_eq!(rib.core.attrs.refs(id), n, "step {step}: refcount");
        }
        assert_eq!(
            stats.paths.load(Ordering::Relaxed),
            (rib.v4.paths() + rib.v6.paths()) as u64
        );
    }
    assert!(nonempty_views > 100, "{nonempty_views}");
}

#[tokio::test]
async fn exports_share_one_arc_per_attribute_set() {
    // The session groups announcements into UPDATEs by Arc pointer.
    let (h, _sessions) = Harness::with_up(&[UP1]).await;
    h.eor(UP1, Afi::Ipv4).await;
    h.announce(UP1, &TWO_V4, attrs(&[65001], "10.0.0.1")).await;
    let mut pop = h.up(POP1).await;
    h.announce(
        UP1,
        &["203.0.113.0/24", "100.64.0.0/10"],
        attrs(&[65001, 2], "10.0.0.1"),
    )
    .await;
    h.sync().await;
    let cmds = drain(&mut pop);
    let batches: Vec<&Vec<(Prefix, Arc<PathAttrs>)>> = cmds
        .iter()
        .filter_map(|c| match c {
            SessionCmd::Export { announce, .. } if !announce.is_empty() => Some(announce),
            _ => None,
        })
        .collect();
    assert_eq!(batches.len(), 2, "dump, then the UPDATE");
    for b in batches {
        assert_eq!(b.len(), 2);
        assert!(Arc::ptr_eq(&b[0].1, &b[1].1));
    }
}

#[test]
fn change_tracking_and_loc_rib_iteration() {
    let cfg = Arc::new(test_config());
    let mut rib = Rib::new(cfg.clone(), Arc::new(RibStats::default()), None);
    rib.set_track_changes(true);
    let (ctl, _rx) = mpsc::unbounded_channel();
    let h_info = session_info(&cfg, UP1);
    assert_eq!(h_info.remote_as, 65001);
    rib.handle(RibMsg::PeerUp {
        peer: UP1,
        info: h_info,
        ctl,
    });
    let upd = |announced: Vec<Prefix>, withdrawn: Vec<Prefix>| RibMsg::Update {
        peer: UP1,
        afi: Afi::Ipv4,
        change: RouteChange {
            withdrawn,
            attrs: (!announced.is_empty()).then(|| attrs(&[65001], "10.0.0.1")),
            announced,
        },
    };
    let a: Prefix = "192.0.2.0/24".parse().unwrap();
    let b: Prefix = "198.51.100.0/24".parse().unwrap();
    rib.handle(upd(vec![a, b], vec![]));
    let mut c = rib.take_changed(Afi::Ipv4);
    c.sort();
    assert_eq!(c, [a, b]);
    assert!(rib.take_changed(Afi::Ipv4).is_empty());
    // Same attributes again: no change.
    rib.handle(upd(vec![a], vec![]));
    assert!(rib.take_changed(Afi::Ipv4).is_empty());
    rib.handle(upd(vec![], vec![b]));
    assert_eq!(rib.take_changed(Afi::Ipv4), [b]);
    let routes: Vec<(Prefix, PeerId)> = rib
        .best_routes(Afi::Ipv4)
        .map(|(p, peer, _)| (p, peer))
        .collect();
    assert_eq!(routes, [(a, UP1)]);
    let (peer, at) = rib.best(&a).unwrap();
    assert_eq!(peer, UP1);
    assert_eq!(at.local_pref, Some(100));
}
