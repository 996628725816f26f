//! The announcement state machine, its attributes, and `announce` validation.

use std::time::{Duration, Instant};

use super::*;
use crate::config::{Announcement, OnDown};
use crate::testutil::TestConfig;

const ASN: u32 = 64999;

fn ann(on_down: OnDown, hold_down: u64) -> Announcement {
    Announcement {
        prefix: "192.0.2.53/32".parse().unwrap(),
        communities: vec![65000 << 16 | 53],
        large_communities: vec![[65000, 1, 53]],
        prepend: 1,
        to_upstream: true,
        to_pops: false,
        next_hop: None,
        check: None,
        rise: 2,
        fall: 3,
        interval: Duration::from_secs(1),
        hold_down: Duration::from_secs(hold_down),
        on_down,
        announce_before_rib: false,
    }
}

fn bad() -> Result<(), String> {
    Err("check failing".into())
}

/// Feed `n` results a second apart from `t`; returns the time after.
fn feed(m: &mut Machine, a: &Announcement, r: Result<(), String>, n: u32, t: &mut Instant) {
    for _ in 0..n {
        *t += Duration::from_secs(1);
        m.observe(a, r.clone(), *t);
    }
}

#[test]
fn starts_withdrawn_rises_after_rise_and_falls_after_fall() {
    let a = ann(OnDown::Withdraw, 0);
    let mut t = Instant::now();
    let mut m = Machine::new(t);
    assert_eq!(m.phase(), Phase::Withdrawn);
    feed(&mut m, &a, Ok(()), 1, &mut t);
    assert_eq!(m.phase(), Phase::Withdrawn, "one good is below rise 2");
    feed(&mut m, &a, Ok(()), 1, &mut t);
    assert_eq!(m.phase(), Phase::Up);
    feed(&mut m, &a, bad(), 2, &mut t);
    assert_eq!(m.phase(), Phase::Up, "two bad are below fall 3");
    feed(&mut m, &a, Ok(()), 1, &mut t);
    feed(&mut m, &a, bad(), 2, &mut t);
    assert_eq!(m.phase(), Phase::Up, "a good one resets the count");
    feed(&mut m, &a, bad(), 1, &mut t);
    assert_eq!(m.phase(), Phase::Withdrawn);
    assert_eq!(m.reason(), "check failing");
}

#[test]
fn hold_down_delays_a_due_change() {
    let a = ann(OnDown::Withdraw, 10);
    let mut t = Instant::now();
    let mut m = Machine::new(t);
    feed(&mut m, &a, Ok(()), 2, &mut t);
    assert_eq!(m.phase(), Phase::Up, "the first change is not held");
    let up_at = t;
    feed(&mut m, &a, bad(), 3, &mut t);
    assert_eq!(m.phase(), Phase::Up, "3 s after going up: held");
    while t < up_at + Duration::from_secs(10) {
        assert_eq!(m.phase(), Phase::Up);
        feed(&mut m, &a, bad(), 1, &mut t);
    }
    assert_eq!(m.phase(), Phase::Withdrawn, "held only for hold_down");
}

#[test]
fn on_down_prepend_keeps_a_longer_path() {
    let a = ann(OnDown::Prepend(3), 0);
    let mut t = Instant::now();
    let mut m = Machine::new(t);
    feed(&mut m, &a, Ok(()), 2, &mut t);
    let up = advert_attrs(&a, ASN, m.phase()).unwrap();
    assert_eq!(up.as_path.iter_asns().collect::<Vec<_>>(), vec![ASN; 2]);
    feed(&mut m, &a, bad(), 3, &mut t);
    assert_eq!(m.phase(), Phase::Prepended);
    let down = advert_attrs(&a, ASN, m.phase()).unwrap();
    assert_eq!(down.as_path.iter_asns().count(), 5, "1 + prepend 1 + 3");
    assert_eq!(down.communities, up.communities);
    feed(&mut m, &a, Ok(()), 2, &mut t);
    assert_eq!(m.phase(), Phase::Up);
}

#[test]
fn on_down_graceful_shutdown_marks_then_withdraws() {
    let a = ann(OnDown::GracefulShutdown(Duration::from_secs(5)), 0);
    let mut t = Instant::now();
    let mut m = Machine::new(t);
    feed(&mut m, &a, Ok(()), 2, &mut t);
    feed(&mut m, &a, bad(), 3, &mut t);
    assert!(matches!(m.phase(), Phase::Grace { .. }));
    let g = advert_attrs(&a, ASN, m.phase()).unwrap();
    assert!(g
        .communities
        .contains(&crate::wire::community::GRACEFUL_SHUTDOWN));
    assert!(g.communities.contains(&(65000 << 16 | 53)));
    let until = m.grace_until().unwrap();
    assert!(!m.expire(until - Duration::from_millis(1)));
    assert!(m.expire(until));
    assert_eq!(m.phase(), Phase::Withdrawn);
    assert_eq!(advert_attrs(&a, ASN, m.phase()), None);
}

#[test]
fn stop_runs_the_shutdown_sequence_and_ignores_later_results() {
    let grace = ann(OnDown::GracefulShutdown(Duration::from_secs(3)), 30);
    let plain = ann(OnDown::Withdraw, 30);
    let mut t = Instant::now();
    let (mut g, mut w) = (Machine::new(t), Machine::new(t));
    feed(&mut g, &grace, Ok(()), 2, &mut t);
    feed(&mut w, &plain, Ok(()), 2, &mut t);
    assert!(g.stop(&grace, t), "hold-down does not delay shutdown");
    assert!(w.stop(&plain, t));
    assert!(matches!(g.phase(), Phase::Grace { .. }));
    assert_eq!(w.phase(), Phase::Withdrawn);
    let until = g.grace_until().unwrap();
    feed(&mut g, &grace, Ok(()), 1, &mut t);
    assert!(
        matches!(g.phase(), Phase::Grace { .. }),
        "grace runs its course"
    );
    assert!(g.expire(until));
    assert_eq!(g.phase(), Phase::Withdrawn);
    feed(&mut w, &plain, Ok(()), 5, &mut t);
    assert_eq!(
        w.phase(),
        Phase::Withdrawn,
        "no announcement while stopping"
    );
}

#[test]
fn advert_attrs_origin_path_and_communities() {
    let a = ann(OnDown::Withdraw, 0);
    let p = advert_attrs(&a, ASN, Phase::Up).unwrap();
    assert_eq!(p.origin, crate::types::Origin::Igp);
    assert_eq!(p.as_path.iter_asns().collect::<Vec<_>>(), vec![ASN, ASN]);
    assert_eq!(p.next_hop, None, "next hop self: the session fills it");
    assert_eq!(p.large_communities, vec![[65000, 1, 53]]);
    assert!(!p
        .communities
        .contains(&crate::wire::community::GRACEFUL_SHUTDOWN));
}

#[test]
fn announcer_publishes_only_changes() {
    let cfg = std::sync::Arc::new(
        TestConfig::embedded_default()
            .with("announce:\n  - {prefix: 192.0.2.53/32, rise: 1, fall: 1, hold_down: 0}\n")
            .build(),
    );
    let (tx, mut rx) = channel();
    let an = Announcer::new(cfg, tx);
    let t = Instant::now();
    an.observe(vec![Some(Ok(()))], t);
    assert!(rx.has_changed().unwrap());
    let now = rx.borrow_and_update().clone();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].prefix.to_string(), "192.0.2.53/32");
    an.observe(vec![Some(Ok(()))], t + Duration::from_secs(1));
    assert!(!rx.has_changed().unwrap(), "no change, nothing published");
    an.observe(vec![Some(bad())], t + Duration::from_secs(2));
    assert!(rx.borrow_and_update().is_empty());
    let rows = an.rows();
    assert_eq!(rows[0].state, "withdrawn");
    assert_eq!(rows[0].reason, "check failing");
}

#[test]
fn config_parses_every_key() {
    let cfg = TestConfig::embedded_default()
        .with(
            "health:\n  checks:\n    - {name: web, type: tcp, port: 80}\n\
             announce:\n  - prefix: 2001:db8::/48\n    communities: [\"65000:53\"]\n\
             \x20   large_communities: [\"65000:1:2\"]\n    prepend: 2\n    to: [upstream, pop]\n\
             \x20   next_hop: 2001:db8::1\n    check: web\n    rise: 3\n    fall: 4\n\
             \x20   interval: 0.5\n    hold_down: 2\n    on_down: graceful_shutdown 30\n\
             \x20   announce_before_rib: true\n",
        )
        .build();
    let a = &cfg.announcements()[0];
    assert_eq!(a.prefix.to_string(), "2001:db8::/48");
    assert_eq!(a.communities, vec![65000 << 16 | 53]);
    assert_eq!(a.large_communities, vec![[65000, 1, 2]]);
    assert_eq!((a.prepend, a.to_upstream, a.to_pops), (2, true, true));
    assert_eq!(a.check, Some(0));
    assert_eq!((a.rise, a.fall), (3, 4));
    assert_eq!(a.interval, Duration::from_millis(500));
    assert_eq!(a.on_down, OnDown::GracefulShutdown(Duration::from_secs(30)));
    assert!(a.announce_before_rib);
}

#[test]
fn config_errors_name_line_and_key() {
    let t = TestConfig::embedded_default().with(
        "announce:\n  - prefix: 192.0.2.1/24\n  - prefix: 192.0.2.0/25\n    communities: [\"70000:1\"]\n\
         \x20   to: [everyone]\n    check: nope\n    on_down: prepend 0\n    next_hop: 2001:db8::1\n",
    );
    let errs = t.errors();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "announce[0].prefix",
        "announce[1].communities[0]",
        "announce[1].to[0]",
        "announce[1].check",
        "announce[1].on_down",
        "announce[1].next_hop",
    ] {
        assert!(keys.contains(&k), "{k} missing from {errs:?}");
    }
    for e in &errs {
        assert!(e.line > 0, "{e}");
    }
    let no_dns = TestConfig::embedded_default()
        .replace(
            "  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n",
            "  listen: []\n",
        )
        .with("announce:\n  - {prefix: 192.0.2.0/24}\n")
        .errors();
    assert_eq!(no_dns[0].key, "announce[0].check", "{no_dns:?}");
}

#[test]
fn config_originates_our_prefixes_and_what_they_cover() {
    let cfg = TestConfig::embedded_default()
        .with("announce:\n  - {prefix: 192.0.2.0/24}\n")
        .build();
    for (p, ours) in [
        ("192.0.2.0/24", true),
        ("192.0.2.53/32", true),
        ("192.0.0.0/16", false),
        ("198.51.100.0/24", false),
    ] {
        assert_eq!(cfg.originates(&p.parse().unwrap()), ours, "{p}");
    }
}

#[test]
fn anycast_example_is_valid() {
    let cfg = crate::testutil::parse_ok(include_str!("../../bgp-configs/anycast/sparrowd.yaml"));
    let anns = cfg.announcements();
    assert_eq!(anns.len(), 2);
    assert!(anns.iter().all(|a| a.to_upstream
        && matches!(a.on_down, OnDown::GracefulShutdown(_))
        && !a.communities.is_empty()));
}

#[test]
fn rows_count_changes_and_render_as_a_table() {
    let cfg = std::sync::Arc::new(
        TestConfig::embedded_default()
            .with("announce:\n  - {prefix: 192.0.2.53/32, rise: 1, fall: 1, hold_down: 0}\n")
            .build(),
    );
    let an = Announcer::new(cfg, channel().0);
    let t = Instant::now();
    for (i, r) in [Ok(()), Err("down".to_string()), Ok(())]
        .into_iter()
        .enumerate()
    {
        an.observe(vec![Some(r)], t + Duration::from_secs(i as u64));
    }
    let mut rows = an.rows();
    assert_eq!((rows[0].state.as_str(), rows[0].changes), ("up", 3));
    rows[0].peers = vec!["r1".into(), "r2".into()];
    let text = crate::render::announce::announcements(&crate::admin::reply::AnnouncementsReply {
        announcements: rows,
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Prefix") && lines[0].contains("Changes"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("192.0.2.53/32")
            && lines[1].contains(" up ")
            && lines[1].contains("r1,r2"),
        "{text}"
    );
}

#[test]
fn stop_now_ends_the_grace_period() {
    let cfg = std::sync::Arc::new(
        TestConfig::embedded_default()
            .with(
                "announce:\n  - {prefix: 192.0.2.53/32, rise: 1, hold_down: 0, \
                 on_down: graceful_shutdown 60}\n",
            )
            .build(),
    );
    let (tx, rx) = channel();
    let an = Announcer::new(cfg, tx);
    an.observe(vec![Some(Ok(()))], Instant::now());
    let until = an.stop(Instant::now()).expect("a grace period");
    assert!(until > Instant::now() + Duration::from_secs(50));
    assert!(rx.borrow()[0]
        .attrs
        .communities
        .contains(&crate::wire::community::GRACEFUL_SHUTDOWN));
    an.stop_now();
    assert!(rx.borrow().is_empty(), "withdrawn at once");
    assert_eq!(an.rows()[0].state, "withdrawn");
}

#[test]
fn a_named_check_needs_targets_on_this_pop() {
    let errs = TestConfig::embedded_default()
        .replace(
            "          local: {a: [127.0.0.1], aaaa: [\"::1\"]}\n",
            "          other: {a: [127.0.0.1]}\n",
        )
        .pop("other", 65010)
        .with(
            "health:\n  checks:\n    - {name: web, type: tcp, port: 80}\n\
             announce:\n  - {prefix: 192.0.2.53/32, check: web}\n",
        )
        .errors();
    let e = errs
        .iter()
        .find(|e| e.key == "announce[0].check")
        .expect("an error on check");
    assert!(e.msg.contains("has none"), "{e}");
}
