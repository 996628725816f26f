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
//! - `trie`: the snapshot's longest-prefix match, a copy-on-write multibit
//!   trie (a /16 root, then 8 bits per node, run-compressed) whose leaves hold
//!   the ranking id, the matched length and the exact ECS scope.
//! - `lpm`: the range view it is built from (the compressing sweep over
//!   sorted prefixes, the inherited context of a block, the safe scope).
//! - `ranked`: the builder's ranked Loc-RIB per family (prefix -> ranking
//!   id: a sorted flat vector of packed entries plus a small delta).
//! - `update`: the full build from a ranked map, and the incremental update
//!   that rebuilds only what changed prefixes cover.
//! - `publish`: [`Publisher`], the RIB task's [`crate::rib::LocRibListener`]
//!   (wired by the daemon into `rib::run_with`), called after every burst:
//!   ranks the prefixes whose paths changed and sends them to a builder
//!   thread, which updates the changed family's trie and publishes a new
//!   snapshot into the [`Handle`] at once.
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
mod ranked;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_trie;
mod trie;
mod update;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::rib::Rib;
use crate::types::{Afi, Prefix};

pub use lpm::safe_scope;
pub use publish::{eor_peers, PublishStats, Publisher, INCREMENTAL_MAX, MIN_REBUILD_INTERVAL};
pub use rank::{
    first_then_config_order, ClosestPop, PopIdx, RankInterner, Ranker, Ranking, DEFAULT_RANK,
};

use lpm::Addr;
use trie::Trie;
use update::{Params, RankedMap};

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
    trie: Trie<A>,
    /// Flattened rankings, `pops` POP indices per id.
    rankings: Arc<Vec<PopIdx>>,
}

impl<A: Addr> Family<A> {
    /// A full build from ranked prefixes (compressed).
    fn new(
        source: Source,
        map: &RankedMap<A>,
        default_rank: u16,
        rankings: Arc<Vec<PopIdx>>,
    ) -> Family<A> {
        let p = Params {
            default_rank,
            compress: true,
        };
        Family {
            source,
            trie: update::full(map, p),
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
    let leaf = fam.trie.lookup(addr);
    let n = snap.pops.len();
    let id = lpm::val_rank(leaf) as usize;
    let r = &fam.rankings;
    let ranking = r
        .get(id * n..id * n + n)
        .unwrap_or_else(|| &r[..n.min(r.len())]);
    Decision {
        prefix: lpm::val_len(leaf).and_then(|l| mk(addr, l)),
        scope: (leaf >> 24) as u8,
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
    /// Trie leaf words (distinct answer blocks) and nodes per family.
    pub leaves_v4: usize,
    pub leaves_v6: usize,
    pub nodes_v4: usize,
    pub nodes_v6: usize,
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
        let (nodes_v4, leaves_v4) = self.v4.trie.counts();
        let (nodes_v6, leaves_v6) = self.v6.trie.counts();
        SnapshotStats {
            leaves_v4,
            leaves_v6,
            nodes_v4,
            nodes_v6,
            rankings: self.v4.rankings.len().max(self.v6.rankings.len()) / n,
            bytes: self.v4.trie.bytes()
                + self.v6.trie.bytes()
                + rank_bytes * std::mem::size_of::<PopIdx>(),
        }
    }
}

fn pop_names(cfg: &Config) -> Arc<[Box<str>]> {
    cfg.pops.iter().map(|p| p.name.as_str().into()).collect()
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
    let mut entries: Vec<(Prefix, u16)> = entries
        .into_iter()
        .map(|(p, pop)| (p, pop as u16))
        .collect();
    // Of several entries for one prefix, the lowest POP index wins.
    entries.sort_unstable_by_key(|&(p, pop)| (p, std::cmp::Reverse(pop)));
    let mut v4 = RankedMap::new();
    let mut v6 = RankedMap::new();
    for (p, pop) in entries {
        match p {
            Prefix::V4 { addr, len } => v4.set(addr, len, Some(pop)),
            Prefix::V6 { addr, len } => v6.set(addr, len, Some(pop)),
        };
    }
    Snapshot {
        generation: 0,
        pops: pop_names(cfg),
        v4: Arc::new(Family::new(
            Source::Fallback,
            &v4,
            default,
            rankings.clone(),
        )),
        v6: Arc::new(Family::new(Source::Fallback, &v6, default, rankings)),
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
    let mut v4 = RankedMap::new();
    let mut v6 = RankedMap::new();
    for afi in Afi::ALL {
        for (p, _, _) in rib.best_routes(afi) {
            if rank_prefix(rib, &ranker, &p, &mut paths, &mut r).is_none() {
                continue;
            }
            let id = interner.intern(&r);
            match p {
                Prefix::V4 { addr, len } => v4.set(addr, len, Some(id)),
                Prefix::V6 { addr, len } => v6.set(addr, len, Some(id)),
            };
        }
    }
    let rankings = Arc::new(interner.take_new());
    Snapshot {
        generation,
        pops: pop_names(cfg),
        v4: Arc::new(Family::new(
            Source::Rib,
            &v4,
            DEFAULT_RANK,
            rankings.clone(),
        )),
        v6: Arc::new(Family::new(Source::Rib, &v6, DEFAULT_RANK, rankings)),
    }
}
