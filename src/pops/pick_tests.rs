//! Tests of [`super::pick`]: examples, a property test against a brute-force
//! model (health, drain, force, shed, all-down policies), monotone shedding,
//! the shed fraction, and the ECS-scope truthfulness of the shed key.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

/// Plain per-POP tables.
#[derive(Clone, Debug)]
struct Model {
    usable: Vec<bool>,
    load: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl Avail for Model {
    fn usable(&self, p: usize) -> bool {
        self.usable[p]
    }
    fn load(&self, p: usize) -> f64 {
        self.load[p]
    }
    fn watermarks(&self, p: usize) -> (f64, f64) {
        (self.low[p], self.high[p])
    }
}

fn quiet(_: usize, _: Skip) {}

fn model(n: usize) -> Model {
    Model {
        usable: vec![true; n],
        load: vec![0.0; n],
        low: vec![0.8; n],
        high: vec![1.0; n],
    }
}

/// The rules written as set operations over the ranking.
fn brute(
    ranking: &[PopIdx],
    key: u64,
    m: &Model,
    rec: &[Records],
    policy: AllDownPolicy,
) -> Option<(usize, Reason)> {
    let cands: Vec<usize> = ranking
        .iter()
        .map(|&p| p as usize)
        .filter(|&p| rec[p] != Records::None)
        .collect();
    let ok = |p: usize| m.usable[p] && rec[p] == Records::Up && m.load[p] < m.high[p];
    let Some(i) = cands.iter().position(|&p| ok(p)) else {
        return match policy {
            AllDownPolicy::AnswerAll => cands.first().map(|&p| (p, Reason::AllDown)),
            AllDownPolicy::Empty => None,
        };
    };
    let p = cands[i];
    let keep = (
        p,
        if i == 0 {
            Reason::Closest
        } else {
            Reason::Failover
        },
    );
    let f = (m.load[p] - m.low[p]) / (m.high[p] - m.low[p]);
    if m.load[p] >= m.low[p] && unit(key, p) < f {
        let runner = cands[i + 1..]
            .iter()
            .find(|&&q| ok(q) && m.load[q] < m.low[q]);
        if let Some(&q) = runner {
            return Some((q, Reason::Shed));
        }
    }
    Some(keep)
}

#[test]
fn examples() {
    let m = model(3);
    let up = |_| Records::Up;
    let aa = AllDownPolicy::AnswerAll;
    let r = pick(&[1, 0, 2], 7, &m, up, aa, quiet).unwrap();
    assert_eq!((r.pop, r.reason, r.first), (1, Reason::Closest, true));
    // No records at 1: 0 is the first-ranked POP, normal TTL.
    let rec = |p| if p == 1 { Records::None } else { Records::Up };
    let r = pick(&[1, 0, 2], 7, &m, rec, aa, quiet).unwrap();
    assert_eq!(
        (r.pop, r.reason, r.normal_ttl()),
        (0, Reason::Closest, true)
    );
    // 1 down: failover to 0.
    let mut d = m.clone();
    d.usable[1] = false;
    let mut skipped = Vec::new();
    let r = pick(&[1, 0, 2], 7, &d, up, aa, |p, s| skipped.push((p, s))).unwrap();
    assert_eq!((r.pop, r.reason, r.first), (0, Reason::Failover, false));
    assert_eq!(skipped, vec![(1, Skip::Unusable)]);
    // 1's records all down: failover.
    let rec = |p| {
        if p == 1 {
            Records::AllDown
        } else {
            Records::Up
        }
    };
    let r = pick(&[1, 0, 2], 7, &m, rec, aa, quiet).unwrap();
    assert_eq!((r.pop, r.reason), (0, Reason::Failover));
    // Load at high: drained.
    let mut o = m.clone();
    o.load[1] = 1.0;
    let mut skipped = Vec::new();
    let r = pick(&[1, 0, 2], 7, &o, up, aa, |p, s| skipped.push((p, s))).unwrap();
    assert_eq!(r.pop, 0);
    assert_eq!(skipped, vec![(1, Skip::Overloaded { load: 1.0 })]);
    // Everything down: answer_all gives the first with records, empty none.
    let mut all = m.clone();
    all.usable = vec![false; 3];
    let r = pick(&[1, 0, 2], 7, &all, up, aa, quiet).unwrap();
    assert_eq!(
        (r.pop, r.reason, r.normal_ttl()),
        (1, Reason::AllDown, false)
    );
    assert_eq!(
        pick(&[1, 0, 2], 7, &all, up, AllDownPolicy::Empty, quiet),
        None
    );
    // No POP has records.
    assert_eq!(pick(&[1, 0, 2], 7, &m, |_| Records::None, aa, quiet), None);
    assert_eq!(pick(&[], 7, &m, up, aa, quiet), None);
}

#[test]
fn shedding_moves_f_to_runner_up_below_low_and_is_monotone() {
    let mut m = model(3);
    let up = |_| Records::Up;
    let aa = AllDownPolicy::AnswerAll;
    let keys: Vec<u64> = (0..20_000u32)
        .map(|i| shed_key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24))
        .collect();
    let moved = |m: &Model| -> Vec<bool> {
        keys.iter()
            .map(|&k| pick(&[0, 1, 2], k, m, up, aa, quiet).unwrap().pop != 0)
            .collect()
    };
    let mut before = vec![false; keys.len()];
    for (load, want) in [
        (0.8, 0.0),
        (0.85, 0.25),
        (0.9, 0.5),
        (0.95, 0.75),
        (1.0, 1.0),
    ] {
        m.load[0] = load;
        let now = moved(&m);
        let share = now.iter().filter(|&&b| b).count() as f64 / keys.len() as f64;
        assert!((share - want).abs() < 0.015, "load {load}: {share}");
        // What moved at a lower load stays moved.
        assert!(before.iter().zip(&now).all(|(b, n)| !b || *n), "monotone");
        before = now;
    }
    // A runner-up at or above its low is passed over: moved units go to 2.
    m.load[0] = 0.9;
    m.load[1] = 0.8;
    let mut seen = Vec::new();
    for &k in &keys[..200] {
        let r = pick(&[0, 1, 2], k, &m, up, aa, |p, s| seen.push((p, s))).unwrap();
        assert!(r.pop == 0 || (r.pop == 2 && r.reason == Reason::Shed));
    }
    assert!(seen.contains(&(1, Skip::AboveLow { load: 0.8 })));
    // Every runner-up above its low: the POP keeps them all.
    m.load[2] = 0.85;
    assert!(keys[..500]
        .iter()
        .all(|&k| pick(&[0, 1, 2], k, &m, up, aa, quiet).unwrap().pop == 0));
}

fn records() -> impl Strategy<Value = Records> {
    prop_oneof![
        1 => Just(Records::None),
        1 => Just(Records::AllDown),
        4 => Just(Records::Up),
    ]
}

proptest! {
    #[test]
    fn pick_matches_brute_force(
        n in 1usize..6,
        seed in any::<u64>(),
        usable in proptest::collection::vec(proptest::bool::weighted(0.7), 6),
        loads in proptest::collection::vec(prop_oneof![Just(0.0), Just(0.8), Just(1.0), 0.0..1.0f64], 6),
        lows in proptest::collection::vec(prop_oneof![Just(0.8), 0.0..0.9f64], 6),
        recs in proptest::collection::vec(records(), 6),
        empty in any::<bool>(),
        key in any::<u64>(),
    ) {
        // A ranking: a permutation of 0..n from the seed.
        let mut ranking: Vec<PopIdx> = (0..n as PopIdx).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = mix(s);
            ranking.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let m = Model {
            usable: usable[..n].to_vec(),
            load: loads[..n].to_vec(),
            low: lows[..n].to_vec(),
            high: vec![1.0; n],
        };
        let policy = if empty { AllDownPolicy::Empty } else { AllDownPolicy::AnswerAll };
        let mut traced = Vec::new();
        let got = pick(&ranking, key, &m, |p| recs[p], policy, |p, _| traced.push(p));
        let want = brute(&ranking, key, &m, &recs, policy);
        prop_assert_eq!(got.map(|g| (g.pop, g.reason)), want);
        if let Some(g) = got {
            prop_assert_eq!(g.first, g.reason == Reason::Closest || g.reason == Reason::AllDown);
            // Every POP ranked before the answer was traced as passed over.
            let before: Vec<usize> = ranking.iter().map(|&p| p as usize).take_while(|&p| p != g.pop).collect();
            prop_assert!(before.iter().all(|p| traced.contains(p)));
        }
    }
}

/// The ECS scope the answer carries (the decision's safe scope) never covers
/// an address with another answer: brute force over a small address space
/// cut into random ranges (each range one ranking, as the LPM's), with POP 0
/// shedding half its units.
#[test]
fn shed_answers_are_constant_over_their_scope_block() {
    let mut m = model(3);
    m.load[0] = 0.9;
    let base = 0x0a00_0000u32;
    let mut s = 1u64;
    for round in 0..50 {
        // Random range ends over 10.0.0.0/22; ranking 0,1,2 or 1,0,2 per range.
        let mut cuts: Vec<u32> = (0..12)
            .map(|_| {
                s = mix(s);
                (s % 1024) as u32
            })
            .collect();
        cuts.push(1023);
        cuts.sort_unstable();
        cuts.dedup();
        let mut ranges = Vec::new();
        let mut start = 0u32;
        for (i, &end) in cuts.iter().enumerate() {
            if end >= start {
                ranges.push((
                    base + start,
                    base + end,
                    if (i + round) % 3 == 0 { 1u8 } else { 0 },
                ));
                start = end + 1;
            }
        }
        let answer = |a: u32| -> (usize, u8) {
            let &(st, en, first) = ranges.iter().find(|r| r.0 <= a && a <= r.1).unwrap();
            let ranking: [PopIdx; 3] = if first == 1 { [1, 0, 2] } else { [0, 1, 2] };
            // Addresses outside the /22 are not modelled: clip the range.
            let scope = crate::steer::safe_scope(a, st, en).max(22);
            let key = shed_key(IpAddr::V4(Ipv4Addr::from(a)), scope);
            let p = pick(
                &ranking,
                key,
                &m,
                |_| Records::Up,
                AllDownPolicy::AnswerAll,
                quiet,
            )
            .unwrap();
            (p.pop, scope)
        };
        let all: Vec<(usize, u8)> = (0..1024).map(|i| answer(base + i)).collect();
        for i in 0..1024u32 {
            let (pop, scope) = all[i as usize];
            let block = if scope == 0 { 0 } else { !0u32 << (32 - scope) };
            let lo = (base + i) & block;
            let hi = lo | !block;
            for b in lo..=hi {
                assert_eq!(all[(b - base) as usize].0, pop, "{i} scope {scope} vs {b}");
            }
        }
        assert!(all.iter().any(|a| a.0 == 0) && all.iter().any(|a| a.0 != 0));
    }
}
