//! Rankings: every POP ordered by the best path it offers for a prefix.
//!
//! Each path of a prefix belongs to a POP by the session it came from: an
//! `upstream` peer's to the local POP, a `pop` peer's to the POP with that
//! peer's `remote_asn`. The ranking is built by repeated best-path selection
//! ([`crate::rib::select_best`], the RIB's own rule): the winner's POP comes
//! next and all of that POP's paths leave the candidate set. The first round
//! therefore picks exactly the Loc-RIB best path, and each later POP is ranked
//! by its own best path (selection over a POP's paths and over the union agree
//! as long as no neighbouring AS is shared between POPs, which the session
//! ASNs guarantee: a POP's paths start with that POP's ASN). POPs offering no
//! path follow in config order.
//!
//! The closest-POP rule (the last POP ASN in the Loc-RIB best AS_PATH, else
//! the local POP) decides the FIRST position: when it names another POP than
//! the best path's session, that POP is moved to the front and the others
//! keep their order. This happens only when an AS_PATH carries a POP ASN of
//! another POP than the session it arrived on, e.g. POP Y relays a route that
//! crossed POP Z's ASN ("Y Z 3356 ..." -> Z first, then Y), or an upstream
//! path crosses a POP ASN, or (briefly) when keys changed without reselection.
//! The rule wins because it is the contract for "closest POP"; the rest of the
//! ranking is only for fail-over.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::config::{Config, Role, MAX_POPS};
use crate::rib::{select_best, PathKey};
use crate::types::PeerId;
pub use crate::types::PopIdx;

/// One ranking: every POP once, closest first.
pub type Ranking = SmallVec<[PopIdx; 16]>;

/// What the closest-POP rule found in an AS_PATH ([`Ranker::closest_pop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosestPop {
    /// The POP the rule picks.
    pub pop: PopIdx,
    /// The POP ASN that decided and its position (0-based, path order);
    /// `None`: the path has no POP ASN, so the local POP.
    pub by: Option<(u32, usize)>,
    /// ASNs in the path.
    pub path_len: usize,
}

/// Per-config data to rank paths.
#[derive(Clone, Debug)]
pub struct Ranker {
    /// POP of each peer's paths (`None`: a `pop` peer whose ASN is no POP's,
    /// which a validated config does not have).
    peer_pop: Vec<Option<PopIdx>>,
    /// POP ASNs, by POP index.
    pop_asn: Vec<u32>,
    local: PopIdx,
}

impl Ranker {
    pub fn new(cfg: &Config) -> Ranker {
        let local = cfg.local_pop_index() as PopIdx;
        let peer_pop = cfg
            .peers
            .iter()
            .map(|p| match p.role {
                Role::Upstream => Some(local),
                Role::Pop => cfg.pop_index_by_asn(p.remote_asn).map(|i| i as PopIdx),
            })
            .collect();
        Ranker {
            peer_pop,
            pop_asn: cfg.pops.iter().map(|p| p.asn).collect(),
            local,
        }
    }

    pub fn pops(&self) -> usize {
        self.pop_asn.len()
    }

    pub fn local(&self) -> PopIdx {
        self.local
    }

    pub fn peer_pop(&self, peer: PeerId) -> Option<PopIdx> {
        self.peer_pop.get(peer as usize).copied().flatten()
    }

    /// The POP using `asn`, if any.
    pub fn pop_of_asn(&self, asn: u32) -> Option<PopIdx> {
        self.pop_asn
            .iter()
            .position(|&x| x == asn)
            .map(|i| i as PopIdx)
    }

    /// THE closest-POP rule, over an AS_PATH's ASNs in path order: the POP
    /// whose ASN stands last (nearest the origin), else the local POP. The one
    /// implementation, used by steering ([`super::rank_prefix`]), `explain`
    /// (admin) and the tests.
    pub fn closest_pop(&self, asns: impl IntoIterator<Item = u32>) -> ClosestPop {
        let mut c = ClosestPop {
            pop: self.local,
            by: None,
            path_len: 0,
        };
        for (i, a) in asns.into_iter().enumerate() {
            if let Some(p) = self.pop_of_asn(a) {
                c.pop = p;
                c.by = Some((a, i));
            }
            c.path_len = i + 1;
        }
        c
    }

    /// The POP of [`Ranker::closest_pop`].
    pub fn rule_pop(&self, asns: impl IntoIterator<Item = u32>) -> PopIdx {
        self.closest_pop(asns).pop
    }

    /// The ranking for a prefix's paths (any order), `first` (the rule's POP
    /// for the Loc-RIB best path) in front.
    pub fn rank(&self, paths: &[(PathKey, u32)], first: PopIdx, out: &mut Ranking) {
        let n = self.pops();
        out.clear();
        // One bit per POP; on the stack up to `config::MAX_POPS`.
        let mut placed: SmallVec<[u64; MAX_POPS / 64]> = SmallVec::from_elem(0, n.div_ceil(64));
        let mut place = |p: PopIdx, out: &mut Ranking| {
            let (word, bit) = (usize::from(p) / 64, 1u64 << (p % 64));
            if placed[word] & bit == 0 {
                placed[word] |= bit;
                out.push(p);
            }
        };
        place(first, out);
        let mut cand: SmallVec<[(PathKey, PopIdx); 8]> = paths
            .iter()
            .filter_map(|(k, _)| Some((*k, self.peer_pop(k.peer)?)))
            .collect();
        let mut keys: SmallVec<[PathKey; 8]> = SmallVec::new();
        while !cand.is_empty() {
            keys.clear();
            keys.extend(cand.iter().map(|c| c.0));
            let pop = cand[select_best(&keys)].1;
            place(pop, out);
            cand.retain(|c| c.1 != pop);
        }
        for p in 0..n {
            place(p as PopIdx, out);
        }
    }

    /// The ranking of an address no route covers: local POP, then config order.
    pub fn default_ranking(&self) -> Ranking {
        first_then_config_order(self.local, self.pops())
    }
}

/// `first`, then every other POP in config order.
pub fn first_then_config_order(first: PopIdx, n: usize) -> Ranking {
    std::iter::once(first)
        .chain((0..n as PopIdx).filter(|&p| p != first))
        .collect()
}

/// Ranking id 0: the default ranking (local POP first, then config order).
/// Ids never change meaning, so the builder appends rankings as announced.
pub const DEFAULT_RANK: u16 = 0;

/// Interns rankings to `u16` ids; new ones are queued for the builder.
///
/// The id space holds 65536 rankings. Once it is full, a ranking not seen
/// before gets the id of "its first POP, then config order"
/// ([`first_then_config_order`], interned for every POP by
/// [`RankInterner::new`]): the closest POP stays right, only the fail-over
/// order after it is approximate. A warning is logged the first time.
#[derive(Debug)]
pub struct RankInterner {
    ids: FxHashMap<Ranking, u16>,
    /// Per POP, the id of [`first_then_config_order`] with it first.
    by_first: Vec<u16>,
    /// Rankings added since the last [`RankInterner::take_new`], flattened.
    new: Vec<PopIdx>,
    full_warned: bool,
}

/// How many rankings the `u16` ids can name.
pub const RANK_IDS: usize = u16::MAX as usize + 1;

impl RankInterner {
    /// Ids `0..n` are "POP p first, then config order", id 0 being `local`'s
    /// (so every first POP has an id even once the id space is full).
    pub fn new(local: PopIdx, n: usize) -> RankInterner {
        let mut r = RankInterner {
            ids: FxHashMap::default(),
            by_first: Vec::new(),
            new: Vec::new(),
            full_warned: false,
        };
        r.intern(&first_then_config_order(local, n));
        r.by_first = (0..n)
            .map(|p| r.intern(&first_then_config_order(p as PopIdx, n)))
            .collect();
        r
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of `r`, a new one if `r` was not seen yet and the id space has
    /// room; else the id of `r`'s first POP, then config order (see the type).
    pub fn intern(&mut self, r: &Ranking) -> u16 {
        if let Some(&id) = self.ids.get(r) {
            return id;
        }
        let len = self.ids.len();
        if len >= RANK_IDS {
            if !self.full_warned {
                self.full_warned = true;
                tracing::warn!(
                    rankings = len,
                    "steering: the ranking ids are all used; new rankings get their first POP's \
                     default order (first POP right, fail-over order approximate)"
                );
            }
            return r
                .first()
                .and_then(|&p| self.by_first.get(usize::from(p)))
                .copied()
                .unwrap_or(DEFAULT_RANK);
        }
        let id = len as u16;
        self.ids.insert(r.clone(), id);
        self.new.extend_from_slice(r);
        id
    }

    /// Rankings interned since the last call, flattened in id order.
    pub fn take_new(&mut self) -> Vec<PopIdx> {
        std::mem::take(&mut self.new)
    }
}
