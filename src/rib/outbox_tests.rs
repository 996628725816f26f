//! The paced table export (`outbox`): the window of batches not yet written,
//! credits continuing the walk, End-of-RIB after the walk, and changes during
//! a walk (neither lost nor reordered), with a fake POP session whose socket
//! writes are simulated by dropping the commands it received.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::outbox::WINDOW;
use super::*;
use crate::testutil::{peer_up, session_info, TestConfig, Xorshift};
use crate::types::{AsPath, PathAttrs, Prefix, RouteChange};

const UP: PeerId = 0;
const UP2: PeerId = 1;
const POP: PeerId = 2;

/// A RIB with two upstreams and a POP, exports released at once, paced
/// batches of `batch` routes; and the RIB's own channel (where credits return).
fn rib(batch: usize) -> (Rib, mpsc::UnboundedReceiver<RibMsg>) {
    let cfg = TestConfig::embedded_default()
        .pop("pop1", 65100)
        .peers(&[
            "{name: up, address: 10.0.0.1, remote_asn: 65001, role: upstream, enforce_first_as: false}",
            "{name: up2, address: 10.0.0.2, remote_asn: 65002, role: upstream, enforce_first_as: false}",
            "{name: pop1, address: 10.0.1.1, remote_asn: 65100, role: pop}",
        ])
        .with("selection_deferral: 0\n")
        .build();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut rib = Rib::new(Arc::new(cfg), Arc::new(RibStats::default()), Some(tx));
    rib.export_batch = batch;
    (rib, rx)
}

fn up(rib: &mut Rib, peer: PeerId) -> mpsc::UnboundedReceiver<SessionCmd> {
    let info = session_info(&rib.core.cfg, peer);
    let rx = peer_up(rib, peer, info);
    rib.flush();
    rx
}

fn v4(i: u32) -> Prefix {
    Prefix::v4(0x0a00_0000 | (i << 8), 24).unwrap()
}

fn v6(i: u32) -> Prefix {
    Prefix::v6((0x2001_0db8u128 << 96) | ((i as u128) << 80), 48).unwrap()
}

fn change(peer: PeerId, p: Prefix, path: Option<&[u32]>) -> RibMsg {
    let nh = if p.afi() == Afi::Ipv4 {
        "10.9.9.9"
    } else {
        "2001:db8::9"
    };
    RibMsg::Update {
        peer,
        afi: p.afi(),
        change: match path {
            Some(path) => RouteChange {
                withdrawn: vec![],
                announced: vec![p],
                attrs: Some(Arc::new(PathAttrs {
                    as_path: AsPath::sequence(path),
                    next_hop: Some(nh.parse().unwrap()),
                    ..Default::default()
                })),
            },
            None => RouteChange {
                withdrawn: vec![p],
                announced: vec![],
                attrs: None,
            },
        },
    }
}

/// The fake POP session: commands received and not yet "written", and the
/// routes the peer holds from what was written, in order.
#[derive(Default)]
struct Session {
    queued: VecDeque<SessionCmd>,
    view: HashMap<Prefix, String>,
    eor: Vec<Afi>,
    /// Announcements written per prefix (to count resends).
    announced: HashMap<Prefix, usize>,
}

impl Session {
    fn receive(&mut self, ctl: &mut mpsc::UnboundedReceiver<SessionCmd>) {
        while let Ok(c) = ctl.try_recv() {
            self.queued.push_back(c);
        }
    }

    /// Paced batches received and not yet written.
    fn credits(&self) -> usize {
        self.queued
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    SessionCmd::Export {
                        credit: Some(_),
                        ..
                    }
                )
            })
            .count()
    }

    /// Write up to `n` commands (dropping them returns their credits).
    fn write(&mut self, n: usize) {
        for _ in 0..n {
            let Some(c) = self.queued.pop_front() else {
                return;
            };
            match c {
                SessionCmd::Export {
                    announce, withdraw, ..
                } => {
                    for p in withdraw {
                        self.view.remove(&p);
                    }
                    for (p, a) in announce {
                        self.view.insert(p, a.as_path.to_string());
                        *self.announced.entry(p).or_default() += 1;
                    }
                }
                SessionCmd::EndOfRib(afi) => self.eor.push(afi),
                SessionCmd::Teardown { .. } => panic!("teardown"),
            }
        }
    }
}

/// Feed the returned credits to the RIB, then end the burst (`flush`).
fn credits_back(rib: &mut Rib, own: &mut mpsc::UnboundedReceiver<RibMsg>) {
    while let Ok(m) = own.try_recv() {
        rib.handle(m);
    }
    rib.flush();
}

/// Write everything, returning credits, until the RIB sends nothing more.
fn settle(
    rib: &mut Rib,
    own: &mut mpsc::UnboundedReceiver<RibMsg>,
    ctl: &mut mpsc::UnboundedReceiver<SessionCmd>,
    s: &mut Session,
) {
    loop {
        credits_back(rib, own);
        s.receive(ctl);
        assert!(s.credits() <= WINDOW, "window exceeded: {}", s.credits());
        if s.queued.is_empty() {
            return;
        }
        s.write(usize::MAX);
    }
}

/// The exportable Loc-RIB: prefix -> AS_PATH text of the best upstream path.
fn expected(rib: &Rib) -> HashMap<Prefix, String> {
    let mut m = HashMap::new();
    for afi in Afi::ALL {
        for (p, peer, attr) in rib.best_routes(afi) {
            if peer != POP {
                m.insert(p, rib.attrs(attr).as_path.to_string());
            }
        }
    }
    m
}

/// What the RIB counts as exported to the POP, per family.
fn exported(rib: &Rib) -> [u64; 2] {
    Afi::ALL.map(|a| rib.exported(POP, a))
}

#[test]
fn the_window_bounds_a_full_export_and_credits_continue_it() {
    let (mut rib, mut own) = rib(2);
    let _u = up(&mut rib, UP);
    for i in 0..20 {
        rib.handle(change(UP, v4(i), Some(&[65001, i % 3])));
    }
    for i in 0..3 {
        rib.handle(change(UP, v6(i), Some(&[65001])));
    }
    rib.flush();
    let mut ctl = up(&mut rib, POP);
    let mut s = Session::default();
    s.receive(&mut ctl);
    // Four batches of two routes, nothing more until one is written.
    assert_eq!(s.queued.len(), WINDOW);
    assert_eq!(s.credits(), WINDOW);
    // Counted as exported: what the walks have sent, no more.
    assert_eq!(exported(&rib), [2 * WINDOW as u64, 0]);
    assert_eq!(
        rib.exported(UP, Afi::Ipv4),
        0,
        "upstreams get no RIB routes"
    );
    credits_back(&mut rib, &mut own);
    s.receive(&mut ctl);
    assert_eq!(s.queued.len(), WINDOW, "no credit came back");
    // One batch written: one more batch.
    s.write(1);
    credits_back(&mut rib, &mut own);
    s.receive(&mut ctl);
    assert_eq!((s.queued.len(), s.credits()), (WINDOW, WINDOW));
    assert!(s.eor.is_empty());
    settle(&mut rib, &mut own, &mut ctl, &mut s);
    assert_eq!(s.eor, [Afi::Ipv4, Afi::Ipv6]);
    assert_eq!(s.view, expected(&rib));
    assert_eq!(s.view.len(), 23);
    assert_eq!(exported(&rib), [20, 3]);
    assert!(s.announced.values().all(|&n| n == 1), "each route once");
    assert!(!rib.core.walking, "the walks are over");
}

#[test]
fn changes_during_a_walk_are_neither_lost_nor_reordered() {
    let (mut rib, mut own) = rib(2);
    let _u = up(&mut rib, UP);
    let _u2 = up(&mut rib, UP2);
    // One attribute set, so the walk goes in slot (announcement) order.
    for i in 0..40 {
        rib.handle(change(UP, v4(i), Some(&[65001])));
    }
    rib.flush();
    let mut ctl = up(&mut rib, POP);
    let mut s = Session::default();
    s.receive(&mut ctl);
    s.write(2); // the first four prefixes are on the wire
    let walked: Vec<Prefix> = s.view.keys().copied().collect();
    assert_eq!(walked.len(), 4);
    let behind = walked[0];
    let ahead = v4(39);
    // Behind the cursor: an update. Ahead: left to the walk (sent once, new).
    rib.handle(change(UP2, behind, Some(&[65002])));
    rib.handle(change(UP, behind, None));
    rib.handle(change(UP2, ahead, Some(&[65002])));
    rib.handle(change(UP, ahead, None));
    // Ahead, withdrawn and announced again (another slot): not hidden.
    rib.handle(change(UP, v4(30), None));
    rib.flush();
    rib.handle(change(UP, v4(30), Some(&[65001, 9])));
    // A new prefix (not in the walk's snapshot): an update.
    rib.handle(change(UP, v4(100), Some(&[65001])));
    // Ahead, withdrawn for good: the peer never gets it.
    rib.handle(change(UP, v4(31), None));
    rib.flush();
    // Sent, then (in one burst) moved into a slot the walk has not reached
    // (freed before), then withdrawn: not hidden behind the walk either.
    let moved = walked[1];
    rib.handle(change(UP, v4(35), None));
    rib.flush();
    rib.handle(change(UP, moved, None));
    rib.handle(change(UP, v4(101), Some(&[65001])));
    rib.handle(change(UP, moved, Some(&[65001, 8])));
    rib.flush();
    rib.handle(change(UP, moved, None));
    rib.flush();
    s.receive(&mut ctl);
    // The updates came behind the paced batches already queued.
    let update_at = s
        .queued
        .iter()
        .position(|c| matches!(c, SessionCmd::Export { credit: None, .. }))
        .unwrap();
    assert!(update_at >= 2, "{update_at}");
    settle(&mut rib, &mut own, &mut ctl, &mut s);
    assert_eq!(s.view, expected(&rib));
    assert_eq!(s.view[&behind], "65002");
    assert_eq!(s.view[&ahead], "65002");
    assert_eq!(s.view[&v4(30)], "65001 9");
    assert!(!s.view.contains_key(&v4(31)));
    assert!(!s.view.contains_key(&moved));
    assert_eq!(s.announced[&ahead], 1, "the walk sent its new state once");
    assert_eq!(s.announced.get(&v4(31)), None);
    assert_eq!(s.eor, [Afi::Ipv4, Afi::Ipv6]);
}

#[test]
fn credits_of_an_earlier_session_are_ignored() {
    let (mut rib, mut own) = rib(1);
    let _u = up(&mut rib, UP);
    for i in 0..20 {
        rib.handle(change(UP, v4(i), Some(&[65001])));
    }
    rib.flush();
    let mut ctl = up(&mut rib, POP);
    let mut old = Session::default();
    old.receive(&mut ctl);
    rib.handle(RibMsg::PeerDown {
        peer: POP,
        keep_stale: None,
    });
    let mut ctl = up(&mut rib, POP);
    // The old session's batches are dropped: their credits do not widen the window.
    drop(old);
    credits_back(&mut rib, &mut own);
    let mut s = Session::default();
    s.receive(&mut ctl);
    assert_eq!(s.credits(), WINDOW);
    settle(&mut rib, &mut own, &mut ctl, &mut s);
    assert_eq!(s.view, expected(&rib));
    assert_eq!(s.eor, [Afi::Ipv4, Afi::Ipv6]);
}

/// Randomized: churn from two upstreams and the POP, POP flaps and ROUTE-REFRESH while
/// the POP's session writes a random number of commands at random times.
/// The window is never exceeded, and once everything is written the POP's
/// view is the exportable Loc-RIB with one End-of-RIB per family.
#[test]
fn randomized_churn_during_walks() {
    let (mut rib, mut own) = rib(3);
    let _u = up(&mut rib, UP);
    let _u2 = up(&mut rib, UP2);
    let mut rng = Xorshift::new(0x9e37_79b9_7f4a_7c15);
    let mut rnd = move |n: u64| rng.below(n);
    let prefixes: Vec<Prefix> = (0..60).map(v4).chain((0..20).map(v6)).collect();
    for &p in &prefixes {
        rib.handle(change(UP, p, Some(&[65001, rnd(4) as u32])));
    }
    rib.flush();
    let mut ctl = up(&mut rib, POP);
    let mut s = Session::default();
    let mut checks = 0;
    for step in 0..6000 {
        match rnd(40) {
            0 => {
                rib.handle(RibMsg::PeerDown {
                    peer: POP,
                    keep_stale: None,
                });
                s = Session::default(); // dropped unwritten: credits void
                ctl = up(&mut rib, POP);
                credits_back(&mut rib, &mut own);
            }
            1 => rib.handle(RibMsg::RouteRefresh {
                peer: POP,
                afi: if rnd(2) == 0 { Afi::Ipv4 } else { Afi::Ipv6 },
            }),
            2 => {
                settle(&mut rib, &mut own, &mut ctl, &mut s);
                assert_eq!(s.view, expected(&rib), "step {step}");
                let held = Afi::ALL.map(|a| s.view.keys().filter(|p| p.afi() == a).count());
                assert_eq!(exported(&rib), held.map(|n| n as u64), "step {step}");
                assert_eq!(s.eor, [Afi::Ipv4, Afi::Ipv6], "step {step}");
                checks += 1;
            }
            3..=9 => {
                s.receive(&mut ctl);
                s.write(rnd(4) as usize);
            }
            10..=14 => credits_back(&mut rib, &mut own),
            _ => {
                let p = prefixes[rnd(prefixes.len() as u64) as usize];
                // Now and then a POP path, which wins over the upstream ones.
                let peer = [UP, UP2, UP, UP2, POP][rnd(5) as usize];
                let path = match peer {
                    POP => vec![65100],
                    _ => vec![65001 + peer as u32, rnd(3) as u32],
                };
                let announce = rnd(3) > 0;
                rib.handle(change(peer, p, announce.then_some(&path[..])));
            }
        }
        if rnd(2) == 0 {
            rib.flush();
        }
        s.receive(&mut ctl);
        assert!(s.credits() <= WINDOW, "step {step}: {}", s.credits());
        // Every batch counted in the window is unwritten or its credit is on the way.
        assert_eq!(
            rib.core.peers[POP as usize].outbox.in_flight(),
            s.credits() + own.len(),
            "step {step}"
        );
        assert!(s.eor.len() <= 2, "step {step}: {:?}", s.eor);
    }
    assert!(checks > 50, "{checks}");
}

/// A route that leaves the export (a POP path becomes best) while a
/// ROUTE-REFRESH walk has not reached it is withdrawn, not skipped.
#[test]
fn leaving_the_export_during_a_refresh_walk_is_withdrawn() {
    let (mut rib, mut own) = rib(1);
    let _u = up(&mut rib, UP);
    for i in 0..10 {
        rib.handle(change(UP, v4(i), Some(&[65001, 7])));
    }
    rib.flush();
    let mut ctl = up(&mut rib, POP);
    let mut s = Session::default();
    settle(&mut rib, &mut own, &mut ctl, &mut s);
    assert_eq!(s.view.len(), 10);
    rib.handle(RibMsg::RouteRefresh {
        peer: POP,
        afi: Afi::Ipv4,
    });
    rib.handle(change(POP, v4(9), Some(&[65100])));
    rib.flush();
    settle(&mut rib, &mut own, &mut ctl, &mut s);
    assert_eq!(s.view, expected(&rib));
    assert_eq!(s.view.len(), 9);
    assert_eq!(exported(&rib), [9, 0]);
}
