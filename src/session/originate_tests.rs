//! The anycast adverts on a real session task against a scripted peer: sent
//! when published (the configured next hop, our ASN, the communities), withdrawn when
//! taken back, only to the peers they are for, and withdrawn before the
//! Cease of a shutdown.

use std::sync::Arc;

use super::*;
use crate::announce::{advert_attrs, Advert, Phase};
use crate::config::{Announcement, OnDown};
use crate::types::Prefix;
use crate::wire::UpdateCtx;

fn advert(prefix: &str, to_upstream: bool) -> Advert {
    let a = Announcement {
        prefix: prefix.parse().unwrap(),
        communities: vec![65000 << 16 | 53],
        large_communities: Vec::new(),
        prepend: 0,
        to_upstream,
        to_pops: !to_upstream,
        // A configured next hop (127.0.0.1, the session's own, is not a
        // valid next hop to decode); next hop self is checked against BIRD
        // in the lab.
        next_hop: Some("192.0.2.1".parse().unwrap()),
        check: None,
        rise: 1,
        fall: 1,
        interval: Duration::from_secs(1),
        hold_down: Duration::ZERO,
        on_down: OnDown::Withdraw,
        announce_before_rib: false,
    };
    Advert {
        prefix: a.prefix,
        attrs: Arc::new(advert_attrs(&a, 64999, Phase::Up).unwrap()),
        to_upstream: a.to_upstream,
        to_pops: a.to_pops,
    }
}

impl Scripted {
    /// The next UPDATE, decoded (KEEPALIVEs skipped).
    async fn update(&mut self) -> wire::DecodedUpdate {
        loop {
            match self.recv().await {
                Some((wire::msg::KEEPALIVE, _)) => continue,
                Some((wire::msg::UPDATE, body)) => {
                    let ctx = UpdateCtx {
                        as4: true,
                        ebgp: true,
                        peer_as: 64999,
                        local_as: PEER_AS,
                        local_addr: None,
                        afis: [true, false],
                    };
                    return wire::decode_update(&body, &ctx).unwrap();
                }
                other => panic!("expected an UPDATE, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn adverts_are_announced_withdrawn_and_filtered_by_role() {
    let (_l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 90).await;
    let ours: Prefix = "192.0.2.0/24".parse().unwrap();
    d.adverts.send_replace(Arc::new(vec![
        advert("192.0.2.0/24", true),
        advert("198.51.100.0/24", false),
    ]));
    let u = p.update().await;
    assert_eq!(
        u.v4.announced,
        vec![ours],
        "only the upstream advert: {u:?}"
    );
    let a = u.v4.attrs.as_ref().unwrap();
    assert_eq!(a.as_path.iter_asns().collect::<Vec<_>>(), vec![64999]);
    assert_eq!(a.next_hop, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(a.communities, vec![65000 << 16 | 53]);
    d.wait_status("originated", |s| s.originated == vec![ours])
        .await;
    d.adverts.send_replace(Arc::new(Vec::new()));
    let u = p.update().await;
    assert_eq!(u.v4.withdrawn, vec![ours]);
    assert!(u.v4.announced.is_empty());
    d.wait_status("nothing originated", |s| s.originated.is_empty())
        .await;
}

#[tokio::test]
async fn shutdown_withdraws_before_the_cease() {
    let (_l, mut d, mut p) = Daemon::connected(90).await;
    d.establish(&mut p, 90).await;
    d.adverts
        .send_replace(Arc::new(vec![advert("192.0.2.0/24", true)]));
    assert_eq!(p.update().await.v4.announced.len(), 1);
    // As the daemon does: the announcer withdraws, then the sessions stop.
    d.adverts.send_replace(Arc::new(Vec::new()));
    d.ctl.send(PeerCtl::Shutdown).unwrap();
    assert_eq!(p.update().await.v4.withdrawn.len(), 1);
    assert_eq!(
        cease_subcode(&p.expect_notification().await),
        cease::ADMIN_SHUTDOWN
    );
}
