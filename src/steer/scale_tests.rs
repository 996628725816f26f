//! Steering with many POPs (issue 10): POP indices past one byte through the
//! ranking, the snapshot, `select` and the POP pick, and the ranking
//! interner once its `u16` id space is full. A child of the steering tests,
//! so it uses their RIB helpers.

use super::*;
use crate::config::{AllDownPolicy, MAX_POPS};
use crate::pops::{Force, PopState, Reason, Records, SessionFlags};
use crate::testutil::numbered_pop_asn;

/// POPs x (local), y and `p2`..`p299`; an upstream and `pop` sessions to
/// p256 (256 as one byte would be x's 0) and p299 (one byte: 43).
fn many_pops_config() -> Config {
    TestConfig::two_pops()
        .numbered_pops(300)
        .peers(&[
            "{name: up1, address: 10.0.0.1, remote_asn: 64510, role: upstream}".to_string(),
            format!(
                "{{name: p256, address: 10.0.2.0, remote_asn: {}, role: pop}}",
                numbered_pop_asn(256)
            ),
            format!(
                "{{name: p299, address: 10.0.2.43, remote_asn: {}, role: pop}}",
                numbered_pop_asn(299)
            ),
        ])
        .build()
}

const UP: PeerId = 0;
const P256: PeerId = 1;
const P299: PeerId = 2;

#[test]
fn pops_past_one_byte_are_ranked_selected_and_picked() {
    let cfg = Arc::new(many_pops_config());
    let (mut rib, _sessions) = rib_all_up(&cfg);
    let p = pfx("192.0.2.0/24");
    // p299's path is shortest, then p256's, then the local upstream's.
    rib.handle(announce_msg(
        P299,
        p,
        attrs(&[numbered_pop_asn(299), 13335], None),
    ));
    rib.handle(announce_msg(
        P256,
        p,
        attrs(&[numbered_pop_asn(256), 1, 13335], None),
    ));
    rib.handle(announce_msg(UP, p, attrs(&[64510, 2, 3, 13335], None)));
    // An upstream path that crosses p298's ASN: the rule puts that POP first.
    let q = pfx("198.51.100.0/24");
    rib.handle(announce_msg(
        UP,
        q,
        attrs(&[64510, numbered_pop_asn(298), 7], None),
    ));

    let snap = build(&rib, &cfg, 1);
    let d = select(ip("192.0.2.9"), &snap);
    assert_eq!(d.ranking[..3], [299, 256, X]);
    assert_eq!(d.first_name(), "p299");
    assert_eq!(names(&d)[..3], ["p299", "p256", "x"]);
    // Every POP once, the rest in config order.
    let mut all = d.ranking.to_vec();
    assert_eq!(all[3..6], [Y, 2, 3]);
    all.sort_unstable();
    assert_eq!(all, (0..300).collect::<Vec<PopIdx>>());
    let d = select(ip("198.51.100.1"), &snap);
    assert_eq!(d.ranking[..2], [298, X]);
    assert_eq!(d.first_name(), "p298");

    // The pick (DNS, HTTP, lookup): p299 first; forced down, p256 by
    // failover; p256 drained too, the local POP. Every session is up.
    let up = Arc::new(SessionFlags::new(cfg.peers.len()));
    (0..cfg.peers.len()).for_each(|p| up.set(p, true));
    let pops = PopState::new(&cfg, Some(up));
    let d = select(ip("192.0.2.9"), &snap);
    let key = crate::pops::shed_key(ip("192.0.2.9"), d.scope);
    let pick = || {
        crate::pops::pick(
            d.ranking,
            key,
            &pops,
            |_| Records::Up,
            AllDownPolicy::AnswerAll,
            |_, _| {},
        )
        .map(|p| (d.pops[p.pop].to_string(), p.reason))
    };
    assert_eq!(pick(), Some(("p299".into(), Reason::Closest)));
    pops.force("p299", None, Force::Down).unwrap();
    assert_eq!(pick(), Some(("p256".into(), Reason::Failover)));
    pops.set_drained("p256", true).unwrap();
    assert_eq!(pick(), Some(("x".into(), Reason::Failover)));
}

#[test]
fn fallback_snapshot_ranks_pops_past_one_byte_first() {
    let cfg = TestConfig::two_pops()
        .numbered_pops(MAX_POPS)
        .with(
            "steering:\n  default_pop: p1023\n  fallback:\n    - {prefix: 10.0.0.0/8, pop: p256}\n",
        )
        .build();
    let snap = fallback(&cfg);
    let d = select(ip("10.1.2.3"), &snap);
    assert_eq!((d.first(), d.first_name()), (256, "p256"));
    assert_eq!(d.ranking.len(), MAX_POPS);
    assert_eq!(d.ranking[1..4], [X, Y, 2]);
    let d = select(ip("192.0.2.1"), &snap);
    assert_eq!((d.first(), d.first_name()), (1023, "p1023"));
}

/// Distinct rankings of `n` POPs: the `i`-th permutation in the factorial
/// number system.
fn nth_ranking(mut i: usize, n: usize) -> Ranking {
    let mut left: Vec<PopIdx> = (0..n as PopIdx).collect();
    let mut out = Ranking::new();
    for k in (1..=n).rev() {
        out.push(left.remove(i % k));
        i /= k;
    }
    out
}

#[test]
fn a_full_interner_falls_back_to_first_then_config_order() {
    use super::rank::RANK_IDS;
    let n = 12;
    let mut int = RankInterner::new(3, n);
    assert_eq!(int.len(), n);
    let mut i = 0;
    while int.len() < RANK_IDS {
        let before = int.len();
        let id = int.intern(&nth_ranking(i, n));
        // A new ranking gets the next id (a few are the base rankings).
        assert!(usize::from(id) == before || int.len() == before);
        i += 1;
    }
    assert_eq!(int.take_new().len(), RANK_IDS * n);
    // Full: a new ranking gets the id of its first POP, then config order.
    let mut fresh = RankInterner::new(3, n);
    let base: Vec<u16> = (0..n as PopIdx)
        .map(|p| fresh.intern(&first_then_config_order(p, n)))
        .collect();
    for j in 0..200 {
        let r = nth_ranking(i + j * 7919, n);
        let id = int.intern(&r);
        assert_eq!(id, base[usize::from(r[0])], "{r:?}");
    }
    // Known rankings keep their ids; nothing new is queued.
    assert_eq!(
        int.intern(&nth_ranking(5, n)),
        int.intern(&nth_ranking(5, n))
    );
    assert_eq!(int.len(), RANK_IDS);
    assert!(int.take_new().is_empty());
    // Never a panic, even for a ranking that is empty or names no POP.
    assert_eq!(int.intern(&Ranking::new()), DEFAULT_RANK);
    assert_eq!(int.intern(&Ranking::from_slice(&[900, 1])), DEFAULT_RANK);
}

#[test]
fn interner_base_ids_cover_every_pop_up_to_max_pops() {
    let int = RankInterner::new(700, MAX_POPS);
    assert_eq!(int.len(), MAX_POPS);
    let r = first_then_config_order(1000, MAX_POPS);
    assert_eq!(r[..3], [1000, 0, 1]);
    assert_eq!(r.len(), MAX_POPS);
}
