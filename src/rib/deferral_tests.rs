//! The export deferral (`graceful`): a POP peer gets a family's table and our
//! End-of-RIB only after the first upstream End-of-RIB for the family, or
//! when the selection deferral runs out.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::*;
use crate::testutil::{peer_up, session_info, TestConfig};
use crate::types::{AsPath, PathAttrs, Prefix, RouteChange};

const UP: PeerId = 0;
const POP: PeerId = 1;

fn rib_with(extra: &str, up_families: &str) -> Rib {
    let cfg = TestConfig::embedded_default()
        .pop("pop1", 65100)
        .peers(&[
            format!("{{name: up, address: 10.0.0.1, remote_asn: 65001, role: upstream, families: {up_families}}}"),
            "{name: pop1, address: 10.0.1.1, remote_asn: 65100, role: pop}".to_string(),
        ])
        .with(extra)
        .build();
    Rib::new(Arc::new(cfg), Arc::new(RibStats::default()), None)
}

fn up(rib: &mut Rib, peer: PeerId) -> mpsc::UnboundedReceiver<SessionCmd> {
    let info = session_info(&rib.core.cfg, peer);
    peer_up(rib, peer, info)
}

fn announce(rib: &mut Rib, prefix: &str) {
    let p: Prefix = prefix.parse().unwrap();
    let nh = if p.afi() == Afi::Ipv4 {
        "10.0.0.1"
    } else {
        "2001:db8::1"
    };
    rib.handle(RibMsg::Update {
        peer: UP,
        afi: p.afi(),
        change: RouteChange {
            withdrawn: vec![],
            announced: vec![p],
            attrs: Some(Arc::new(PathAttrs {
                as_path: AsPath::sequence(&[65001, 7]),
                next_hop: Some(nh.parse().unwrap()),
                ..Default::default()
            })),
        },
    });
    rib.flush();
}

/// (prefixes announced, End-of-RIB families) in the commands queued so far.
fn sent(rx: &mut mpsc::UnboundedReceiver<SessionCmd>) -> (Vec<String>, Vec<Afi>) {
    let (mut a, mut e) = (Vec::new(), Vec::new());
    while let Ok(c) = rx.try_recv() {
        match c {
            SessionCmd::Export { announce, .. } => {
                a.extend(announce.iter().map(|(p, _)| p.to_string()))
            }
            SessionCmd::EndOfRib(afi) => e.push(afi),
            SessionCmd::Teardown { .. } => panic!("teardown"),
        }
    }
    a.sort();
    (a, e)
}

#[test]
fn pop_gets_no_end_of_rib_before_the_upstream_one() {
    let mut rib = rib_with("", "[ipv4, ipv6]");
    assert!(!rib.export_released(Afi::Ipv4) && !rib.export_released(Afi::Ipv6));
    let _u = up(&mut rib, UP);
    let mut pop = up(&mut rib, POP);
    announce(&mut rib, "192.0.2.0/24");
    announce(&mut rib, "2001:db8:1::/48");
    // Nothing, not even End-of-RIB, while the upstream table is incomplete;
    // a ROUTE-REFRESH does not run ahead either; nor does the POP's own EoR.
    rib.handle(RibMsg::RouteRefresh {
        peer: POP,
        afi: Afi::Ipv4,
    });
    rib.handle(RibMsg::EndOfRib {
        peer: POP,
        afi: Afi::Ipv4,
    });
    rib.flush();
    assert_eq!(sent(&mut pop), (vec![], vec![]));
    // The upstream's IPv4 End-of-RIB: the IPv4 table, then End-of-RIB.
    rib.handle(RibMsg::EndOfRib {
        peer: UP,
        afi: Afi::Ipv4,
    });
    rib.flush();
    assert_eq!(
        sent(&mut pop),
        (vec!["192.0.2.0/24".into()], vec![Afi::Ipv4])
    );
    // From now on IPv4 changes flow as they happen; IPv6 still waits.
    announce(&mut rib, "198.51.100.0/24");
    announce(&mut rib, "2001:db8:2::/48");
    assert_eq!(sent(&mut pop), (vec!["198.51.100.0/24".into()], vec![]));
    rib.handle(RibMsg::EndOfRib {
        peer: UP,
        afi: Afi::Ipv6,
    });
    rib.flush();
    assert_eq!(
        sent(&mut pop),
        (
            vec!["2001:db8:1::/48".into(), "2001:db8:2::/48".into()],
            vec![Afi::Ipv6]
        )
    );
    // A POP that comes up later gets table and End-of-RIB at once.
    rib.handle(RibMsg::PeerDown {
        peer: POP,
        keep_stale: None,
    });
    let mut pop = up(&mut rib, POP);
    let (a, e) = sent(&mut pop);
    assert_eq!((a.len(), e), (4, vec![Afi::Ipv4, Afi::Ipv6]));
}

#[test]
fn deferral_timer_releases_every_waiting_family() {
    let mut rib = rib_with("", "[ipv4, ipv6]");
    let _u = up(&mut rib, UP);
    let mut pop = up(&mut rib, POP);
    announce(&mut rib, "192.0.2.0/24");
    assert_eq!(sent(&mut pop), (vec![], vec![]));
    rib.handle(RibMsg::DeferralTimeout);
    rib.flush();
    assert_eq!(
        sent(&mut pop),
        (vec!["192.0.2.0/24".into()], vec![Afi::Ipv4, Afi::Ipv6])
    );
    // A late upstream End-of-RIB sends nothing more.
    rib.handle(RibMsg::EndOfRib {
        peer: UP,
        afi: Afi::Ipv4,
    });
    rib.flush();
    assert_eq!(sent(&mut pop), (vec![], vec![]));
}

#[test]
fn shutdown_withdraws_nothing_from_pop_peers() {
    let mut rib = rib_with("selection_deferral: 0\n", "[ipv4, ipv6]");
    let _u = up(&mut rib, UP);
    let mut pop = up(&mut rib, POP);
    announce(&mut rib, "192.0.2.0/24");
    assert_eq!(sent(&mut pop).0, ["192.0.2.0/24"]);
    rib.handle(RibMsg::Shutdown);
    // The upstream session closes before the POP one: no withdrawal goes out.
    rib.handle(RibMsg::PeerDown {
        peer: UP,
        keep_stale: None,
    });
    rib.handle(RibMsg::DeferralTimeout);
    rib.flush();
    let mut cmds = Vec::new();
    while let Ok(c) = pop.try_recv() {
        cmds.push(c);
    }
    assert!(cmds.is_empty(), "{cmds:?}");
}

#[test]
fn families_without_upstream_and_zero_deferral_export_at_once() {
    // No upstream carries IPv6: nothing to wait for there.
    let mut rib = rib_with("", "[ipv4]");
    let mut pop = up(&mut rib, POP);
    assert_eq!(sent(&mut pop), (vec![], vec![Afi::Ipv6]));
    // selection_deferral 0: today's behaviour, no wait at all.
    let mut rib = rib_with("selection_deferral: 0\n", "[ipv4, ipv6]");
    let mut pop = up(&mut rib, POP);
    assert_eq!(sent(&mut pop), (vec![], vec![Afi::Ipv4, Afi::Ipv6]));
}
