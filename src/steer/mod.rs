//! Steering: for every client address, all POPs ranked closest first, from
//! the Loc-RIB (or, until the RIB is ready, from a static fallback map).
//!
//! One function answers every consumer (DNS, HTTP, `sparrowctl explain` /
//! `lookup`): [`select`]`(addr, &snapshot) -> `[`Decision`]. Get the snapshot
//! from the daemon's [`Handle`]: `steer::select(addr, &handle.load())`
//! (`load` is lock-free and wait-free in the common case; never hold the
//! guard across an `.await` or for long).
//!
//! Layout:
//! - `rank`: per-prefix ranking of all POPs (repeated best-path selection with
//!   [`crate::rib::select_best`]; the closest-POP rule fixes the first place;
//!   see that module for when they could disagree) and the ranking interner
//!   (`u16` ids, only the orders actually seen).
//! - `lpm`: the immutable longest-prefix match (sorted disjoint ranges plus a
//!   direct index on the top 16 (IPv4) / 20 (IPv6) bits, compressed).
//! - `publish`: [`Publisher`], the RIB task's [`crate::rib::LocRibListener`]
//!   (wired by the daemon into `rib::run_with`), called after every burst: ranks the prefixes whose best path changed and sends
//!   them to a builder thread, which rebuilds and publishes snapshots into the
//!   [`Handle`], coalesced.
//!
//! Graceful restart: a stale path ranks as if it were fresh (see
//! `rank_prefix`), so a POP whose sparrowd restarts keeps its clients while
//! the other POPs hold its routes as stale.
//!
//! Sources: a family answers from the static `steering` config
//! ([`Source::Fallback`]) until the first End-of-RIB from an `upstream` peer for
//! that family (from any peer if no upstream peer carries the family), then from
//! the RIB ([`Source::Rib`]) for good.
//!
//! Compression and ECS: a prefix whose ranking equals its covering prefix's is
//! dropped from the LPM, so [`Decision::prefix`] is then the covering prefix (a
//! shorter length than the true longest match). Used as an ECS scope that
//! widens the scope over addresses that all get the same answer anyway, but
//! like any matched prefix it can also cover more-specifics with other answers.
//! [`Decision::scope`] is the safe ECS scope: the shortest length whose block
//! around the address lies entirely in addresses with the same answer (it is
//! never shorter than needed, and may be longer than the matched prefix).

mod lpm;
mod publish;
mod rank;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::rib::Rib;
use crate::types::{Afi, Prefix};

pub use lpm::safe_scope;
pub use publish::{Publisher, MIN_REBUILD_INTERVAL};
pub use rank::{
    first_then_config_order, ClosestPop, PopIdx, RankInterner, Ranker, Ranking, DEFAULT_RANK,
};

use lpm::{Addr, Lpm};

/// Bits of the direct index in front of the IPv4 ranges (256 KiB).
pub const V4_INDEX_BITS: u32 = 16;
/// Bits of the direct index in front of the IPv6 ranges (4 MiB).
pub const V6_INDEX_BITS: u32 = 20;

/// Where a family's answers come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The Loc-RIB (after the first upstream End-of-RIB).
    Rib,
    /// The static `steering` map of the config.
    #[default]
    Fallback,
}

impl Source {
    /// The name it serializes to: `rib` or `fallback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rib => "rib",
            Source::Fallback => "fallback",
        }
    }
}

/// The shared, atomically replaced current snapshot.
pub type Handle = Arc<ArcSwap<Snapshot>>;

/// A new handle holding the fallback snapshot of `cfg` (generation 0).
pub fn handle(cfg: &Config) -> Handle {
    Arc::new(ArcSwap::from_pointee(fallback(cfg)))
}

/// One family of a snapshot.
#[derive(Debug)]
pub struct Family<A> {
    source: Source,
    lpm: Lpm<A>,
    /// Flattened rankings, `pops` POP indices per id.
    rankings: Arc<Vec<PopIdx>>,
}

impl<A: Addr> Family<A> {
    fn new(
        source: Source,
        prefixes: impl IntoIterator<Item = (A, u8, u16)>,
        default_rank: u16,
        rankings: Arc<Vec<PopIdx>>,
        bits: u32,
    ) -> Family<A> {
        Family {
            source,
            lpm: Lpm::build(prefixes, default_rank, true, bits),
            rankings,
        }
    }
}

/// An immutable steering table for both families.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    pops: Arc<[Box<str>]>,
    v4: Arc<Family<u32>>,
    v6: Arc<Family<u128>>,
}

/// The answer for one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    /// The matched prefix (after compression: possibly a covering prefix of
    /// the true longest match with the same ranking); `None` when no route
    /// (or fallback entry) covers the address.
    pub prefix: Option<Prefix>,
    /// Safe ECS scope prefix length (see the module docs).
    pub scope: u8,
    /// Every POP (index into the config's `pops`), closest first.
    pub ranking: &'a [PopIdx],
    /// POP names by index.
    pub pops: &'a [Box<str>],
    pub generation: u64,
    pub source: Source,
}

impl<'a> Decision<'a> {
    /// The closest POP's index.
    pub fn first(&self) -> PopIdx {
        self.ranking[0]
    }
    /// The closest POP's name.
    pub fn first_name(&self) -> &'a str {
        &self.pops[self.ranking[0] as usize]
    }
    /// POP names, closest first.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let pops = self.pops;
        self.ranking.iter().map(move |&i| &*pops[i as usize])
    }
}

/// THE selection function: the ranking for `addr` in `snap`. Addresses no
/// route covers get the default ranking (the local POP first; for the
/// fallback source `steering.default_pop` first).
#[inline]
pub fn select(addr: IpAddr, snap: &Snapshot) -> Decision<'_> {
    match addr {
        IpAddr::V4(a) => decide(u32::from(a), &snap.v4, snap, Prefix::v4),
        IpAddr::V6(a) => decide(u128::from(a), &snap.v6, snap, Prefix::v6),
    }
}

#[inline]
fn decide<'a, A: Addr>(
    addr: A,
    fam: &'a Family<A>,
    snap: &'a Snapshot,
    mk: impl Fn(A, u8) -> Option<Prefix>,
) -> Decision<'a> {
    let hit = fam.lpm.lookup(addr);
    let n = snap.pops.len();
    let id = lpm::val_rank(hit.val) as usize;
    let r = &fam.rankings;
    let ranking = r
        .get(id * n..id * n + n)
        .unwrap_or_else(|| &r[..n.min(r.len())]);
    Decision {
        prefix: lpm::val_len(hit.val).and_then(|l| mk(addr, l)),
        scope: safe_scope(addr, hit.start, hit.end),
        ranking,
        pops: &snap.pops,
        generation: snap.generation,
        source: fam.source,
    }
}

/// Sizes of a snapshot, for logs and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotStats {
    pub ranges_v4: usize,
    pub ranges_v6: usize,
    pub rankings: usize,
    pub bytes: usize,
}

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn source(&self, afi: Afi) -> Source {
        match afi {
            Afi::Ipv4 => self.v4.source,
            Afi::Ipv6 => self.v6.source,
        }
    }
    /// POP names, by index.
    pub fn pops(&self) -> &[Box<str>] {
        &self.pops
    }
    pub fn stats(&self) -> SnapshotStats {
        let n = self.pops.len().max(1);
        let rk = |r: &Arc<Vec<PopIdx>>| r.len();
        let same = Arc::ptr_eq(&self.v4.rankings, &self.v6.rankings);
        let rank_bytes = rk(&self.v4.rankings) + if same { 0 } else { rk(&self.v6.rankings) };
        SnapshotStats {
            ranges_v4: self.v4.lpm.ranges(),
            ranges_v6: self.v6.lpm.ranges(),
            rankings: self.v4.rankings.len().max(self.v6.rankings.len()) / n,
            bytes: self.v4.lpm.bytes() + self.v6.lpm.bytes() + rank_bytes,
        }
    }
}

fn pop_names(cfg: &Config) -> Arc<[Box<str>]> {
    cfg.pops.iter().map(|p| p.name.as_str().into()).collect()
}

/// Prefix -> sortable (address, length) parts.
fn v4_parts(p: &Prefix) -> Option<(u32, u8)> {
    match *p {
        Prefix::V4 { addr, len } => Some((addr, len)),
        Prefix::V6 { .. } => None,
    }
}

fn v6_parts(p: &Prefix) -> Option<(u128, u8)> {
    match *p {
        Prefix::V6 { addr, len } => Some((addr, len)),
        Prefix::V4 { .. } => None,
    }
}

/// The fallback snapshot (generation 0, both families [`Source::Fallback`]):
/// each `steering.fallback` prefix ranks its POP first, then the others in
/// config order; uncovered addresses rank `default_pop` (else `pop`) first.
pub fn fallback(cfg: &Config) -> Snapshot {
    let n = cfg.pops.len();
    // Id p: POP p first, then config order.
    let rankings: Vec<PopIdx> = (0..n)
        .flat_map(|p| first_then_config_order(p as PopIdx, n))
        .collect();
    let rankings = Arc::new(rankings);
    let default = cfg.steering.default_pop_index(cfg) as u16;
    let entries = cfg.steering.fallback_entries(cfg);
    let mut v4: Vec<(u32, u8, u16)> = Vec::new();
    let mut v6: Vec<(u128, u8, u16)> = Vec::new();
    for (p, pop) in entries {
        match p {
            Prefix::V4 { addr, len } => v4.push((addr, len, pop as u16)),
            Prefix::V6 { addr, len } => v6.push((addr, len, pop as u16)),
        }
    }
    v4.sort_unstable();
    v4.dedup_by_key(|e| (e.0, e.1));
    v6.sort_unstable();
    v6.dedup_by_key(|e| (e.0, e.1));
    Snapshot {
        generation: 0,
        pops: pop_names(cfg),
        v4: Arc::new(Family::new(
            Source::Fallback,
            v4,
            default,
            rankings.clone(),
            V4_INDEX_BITS,
        )),
        v6: Arc::new(Family::new(
            Source::Fallback,
            v6,
            default,
            rankings,
            V6_INDEX_BITS,
        )),
    }
}

/// Rank one prefix held by `rib`: `None` when it has no path. `paths` is scratch.
///
/// Stale paths (graceful restart) rank as if fresh: they are kept precisely
/// so that a restarting POP's clients do not move. The RIB itself prefers
/// any fresh path over a stale one; here the best path of the rule is then
/// selected again without the stale mark.
pub(crate) fn rank_prefix(
    rib: &Rib,
    ranker: &Ranker,
    p: &Prefix,
    paths: &mut Vec<(crate::rib::PathKey, u32)>,
    out: &mut Ranking,
) -> Option<()> {
    rib.path_keys(p, paths);
    if paths.iter().any(|(k, _)| k.stale) {
        paths.iter_mut().for_each(|(k, _)| k.stale = false);
        let keys: smallvec::SmallVec<[crate::rib::PathKey; 8]> =
            paths.iter().map(|(k, _)| *k).collect();
        paths.swap(0, crate::rib::select_best(&keys));
    }
    let &(_, best_attr) = paths.first()?;
    let first = ranker.rule_pop(rib.asns(best_attr));
    ranker.rank(paths, first, out);
    Some(())
}

/// A snapshot of the whole Loc-RIB of `rib` (both families [`Source::Rib`]),
/// built synchronously on the caller's thread. The daemon publishes through
/// [`Publisher`] instead (incremental input, built off the RIB thread); this
/// is the reference (tests, benchmarks, one-shot tools).
pub fn build(rib: &Rib, cfg: &Config, generation: u64) -> Snapshot {
    let ranker = Ranker::new(cfg);
    let n = ranker.pops();
    let mut interner = RankInterner::new(ranker.local(), n);
    let mut paths = Vec::new();
    let mut r = Ranking::new();
    let mut v4: Vec<(u32, u8, u16)> = Vec::new();
    let mut v6: Vec<(u128, u8, u16)> = Vec::new();
    for afi in Afi::ALL {
        for (p, _, _) in rib.best_routes(afi) {
            if rank_prefix(rib, &ranker, &p, &mut paths, &mut r).is_none() {
                continue;
            }
            let id = interner.intern(&r);
            if let Some((a, l)) = v4_parts(&p) {
                v4.push((a, l, id));
            } else if let Some((a, l)) = v6_parts(&p) {
                v6.push((a, l, id));
            }
        }
    }
    v4.sort_unstable();
    v6.sort_unstable();
    let rankings = Arc::new(interner.take_new());
    Snapshot {
        generation,
        pops: pop_names(cfg),
        v4: Arc::new(Family::new(
            Source::Rib,
            v4,
            DEFAULT_RANK,
            rankings.clone(),
            V4_INDEX_BITS,
        )),
        v6: Arc::new(Family::new(
            Source::Rib,
            v6,
            DEFAULT_RANK,
            rankings,
            V6_INDEX_BITS,
        )),
    }
}
