//! Compiled zones: every owner name of a zone becomes a [`Node`] found by its
//! lowercase wire form in that zone's hash map (a child zone's apex and the
//! parent's delegation point are two nodes, one per zone); every RRset
//! ([`RrSet`], `rrset`) is held as hickory-proto `Record`s and as
//! precomputed wire bytes. `compile` builds [`Zones`] from the zones that
//! `config::zones::parse_zone` parsed and checked; `explain` says what
//! steered names answer. [`pick`] is the failover POP pick of a steered name.
//!
//! [`Zones::find`] is RFC 1034 §4.3.2 steps 2–3 with RFC 4592 wildcards: the
//! nearest enclosing zone answers; in it, an existing name (empty
//! non-terminals included) is answered as it is, a name at or below a
//! delegation point is referred, and a name that does not exist is answered
//! from the wildcard `*.<closest encloser>` if there is one, else NXDOMAIN.
//!
//! Owns the compiled zones (immutable after start). Read by `answer`.

use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHashMap;

use std::net::IpAddr;

use crate::config::AllDownPolicy;
use crate::pops::{Pick, PopState, Reason, Records, Skip};
use crate::steer::Decision;

mod compile;
mod explain;
#[cfg(test)]
mod resolve_tests;
mod rrset;
#[cfg(test)]
pub(crate) mod tests;

pub use crate::config::zones::{name_wire, STATIC_TYPES};
pub use rrset::{chaos_txt, RrSet, NO_TARGET};

/// A steered name: per POP (index in the config's `pops`), its A and AAAA sets.
#[derive(Debug)]
pub struct Steered {
    pub ttl: u32,
    /// TTL of answers not from the client's first-ranked POP.
    pub ttl_failover: u32,
    pub a: Vec<Option<RrSet>>,
    pub aaaa: Vec<Option<RrSet>>,
}

impl Steered {
    /// The sets for `rtype` (A or AAAA).
    pub fn sets(&self, rtype: RecordType) -> &[Option<RrSet>] {
        if rtype == RecordType::AAAA {
            &self.aaaa
        } else {
            &self.a
        }
    }
}

/// One owner name of one zone.
#[derive(Debug)]
pub struct Node {
    pub zone: u16,
    pub name: Name,
    /// Static RRsets (at the apex SOA first, then NS).
    pub sets: Vec<RrSet>,
    pub steered: Option<Steered>,
    /// A delegation point (NS below the apex).
    pub cut: bool,
    /// At or below a delegation point: the highest such cut, whose NS set
    /// answers with a referral.
    pub referral: Option<u32>,
    /// The node `*.<this name>`, if the zone has it (RFC 4592 §2.1.1).
    pub wildcard: Option<u32>,
}

impl Node {
    pub fn set(&self, rtype: RecordType) -> Option<&RrSet> {
        self.sets.iter().find(|s| s.rtype == rtype)
    }
}

/// One zone.
#[derive(Debug)]
pub struct Zone {
    pub origin: Name,
    /// Nodes of this zone by lowercase wire name.
    index: FxHashMap<Box<[u8]>, u32>,
    /// Node index of the apex.
    pub apex: u32,
    /// The SOA with its negative-caching TTL (min of TTL and MINIMUM, RFC 2308 §3),
    /// for the authority section of NXDOMAIN / NODATA.
    pub soa_neg: RrSet,
}

/// All zones.
#[derive(Debug, Default)]
pub struct Zones {
    pub zones: Vec<Zone>,
    pub nodes: Vec<Node>,
    origins: FxHashMap<Box<[u8]>, u16>,
    pop_names: Vec<String>,
    /// `health.all_down`: what steered names answer when no POP is usable.
    pub all_down: AllDownPolicy,
}

/// Where a lowercase wire name falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// An existing node (maybe an empty non-terminal), authoritative.
    Node(u32),
    /// No such name, but the wildcard node (`*.<closest encloser>`) answers
    /// for it, with the query name as owner (RFC 4592 §3.3.1).
    Wildcard(u32),
    /// Below a delegation point: refer to that node's NS set.
    Referral(u32),
    /// In zone (index) but no such name.
    NxDomain(u16),
    /// Not in any of our zones.
    NotOurs,
}

/// Each suffix of a wire name, the name itself first, the root label last.
fn suffixes(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut off = Some(0usize);
    std::iter::from_fn(move || {
        let o = off?;
        let rest = name.get(o..)?;
        let l = *rest.first()? as usize;
        off = (l != 0).then_some(o + 1 + l);
        Some(rest)
    })
}

impl Zones {
    /// Find a lowercase wire name (no compression, ends with the root label).
    #[inline]
    pub fn find(&self, name: &[u8]) -> Found {
        match self.zone_of(name) {
            Some(z) => self.find_in(z, name, false),
            None => Found::NotOurs,
        }
    }

    /// Find for a DS query. DS lives on the parent side of a cut (RFC 4035
    /// §3.1.4.1): at a delegation point the parent answers for the name
    /// itself instead of referring, and at the apex of a zone of ours whose
    /// parent zone is ours too, the parent zone answers.
    pub fn find_ds(&self, name: &[u8]) -> Found {
        let Some(mut z) = self.zone_of(name) else {
            return Found::NotOurs;
        };
        if self.origins.contains_key(name) {
            if let Some(parent) = suffixes(name).nth(1).and_then(|p| self.zone_of(p)) {
                z = parent;
            }
        }
        self.find_in(z, name, true)
    }

    /// `name` in zone `z`; `ds`: a cut at the name itself answers as a node.
    fn find_in(&self, z: u16, name: &[u8], ds: bool) -> Found {
        let index = &self.zones[z as usize].index;
        // The name itself, else its closest encloser (the apex at the latest).
        for (i, suffix) in suffixes(name).enumerate() {
            let Some(&n) = index.get(suffix) else {
                continue;
            };
            let node = &self.nodes[n as usize];
            return match (node.referral, i, node.wildcard) {
                (Some(cut), 0, _) if ds && cut == n => Found::Node(n),
                (Some(cut), _, _) => Found::Referral(cut),
                (None, 0, _) => Found::Node(n),
                (None, _, Some(w)) => Found::Wildcard(w),
                (None, _, None) => Found::NxDomain(z),
            };
        }
        Found::NxDomain(z)
    }

    /// The nearest enclosing zone of a lowercase wire name (RFC 1034 §4.3.2 step 2).
    #[inline]
    pub fn zone_of(&self, name: &[u8]) -> Option<u16> {
        suffixes(name).find_map(|s| self.origins.get(s).copied())
    }

    /// Node of zone `zone` by lowercase wire name, if it exists.
    pub fn node_in(&self, zone: u16, name: &[u8]) -> Option<u32> {
        self.zones[zone as usize].index.get(name).copied()
    }

    pub fn pop_names(&self) -> &[String] {
        &self.pop_names
    }
}

/// A steered name's choice: the POP, why, the target bits whose records
/// are written (all when none of the set's would be), and the TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteeredPick {
    pub pick: Pick,
    pub up: u64,
    pub ttl: u32,
}

/// The POP a steered name answers with for decision `d` about `addr`:
/// [`crate::pops::pick`] over the POPs that have a set of the asked type
/// (`sets`), a set whose records are all down (`up_mask`, forced states of
/// addresses applied) counting as down even when its POP is forced up (that
/// overrides the POP's `min_up_fraction`, not its addresses), with the
/// shedding key of `d`'s safe-scope block. `trace`: see `pops::pick` (a
/// no-op on the query path).
#[inline]
pub fn pick(
    st: &Steered,
    sets: &[Option<RrSet>],
    d: &Decision<'_>,
    addr: IpAddr,
    pops: &PopState,
    all_down: AllDownPolicy,
    trace: impl FnMut(usize, Skip),
) -> Option<SteeredPick> {
    let serves = |p: usize| match sets.get(p) {
        Some(Some(set)) if set.any_up(pops.up_mask(p)) => Records::Up,
        Some(Some(_)) => Records::AllDown,
        _ => Records::None,
    };
    let key = crate::pops::shed_key(addr, d.scope);
    let pick = crate::pops::pick(d.ranking, key, pops, serves, all_down, trace)?;
    let set = sets.get(pick.pop)?.as_ref()?;
    let mut up = pops.up_mask(pick.pop);
    if pick.reason == Reason::AllDown || !set.any_up(up) {
        up = u64::MAX;
    }
    let ttl = if pick.normal_ttl() {
        st.ttl
    } else {
        st.ttl_failover
    };
    Some(SteeredPick { pick, up, ttl })
}
