//! Compiled zones: every owner name becomes a [`Node`] found by its
//! lowercase wire form in one hash map; every RRset ([`RrSet`], `rrset`) is
//! held as hickory-proto `Record`s and as precomputed wire bytes. `compile`
//! builds [`Zones`] from the zones that `config::zones::parse_zone` parsed
//! and checked; `explain` says what steered names answer. [`pick`] is the
//! failover POP pick of a steered name.
//!
//! Owns the compiled zones (immutable after start). Read by `answer`.

use hickory_proto::rr::{Name, RecordType};
use rustc_hash::FxHashMap;

use crate::pops::PopState;

mod compile;
mod explain;
mod rrset;
#[cfg(test)]
pub(crate) mod tests;

pub use crate::config::zones::{name_wire, STATIC_TYPES};
pub use rrset::{chaos_txt, RrSet};

/// A steered name: per POP (index in the config's `pops`), its A and AAAA sets.
#[derive(Debug)]
pub struct Steered {
    pub ttl: u32,
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

/// One owner name.
#[derive(Debug)]
pub struct Node {
    pub zone: u16,
    pub name: Name,
    /// Static RRsets (at the apex SOA first, then NS).
    pub sets: Vec<RrSet>,
    pub steered: Option<Steered>,
    /// A delegation point (NS below the apex).
    pub cut: bool,
    /// At or below a delegation point: answered by a referral.
    pub under_cut: bool,
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
    index: FxHashMap<Box<[u8]>, u32>,
    origins: FxHashMap<Box<[u8]>, u16>,
    pop_names: Vec<String>,
}

/// Where a lowercase wire name falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// An existing node (maybe an empty non-terminal), authoritative.
    Node(u32),
    /// Below a delegation point: refer to that node's NS set.
    Referral(u32),
    /// In zone (index) but no such name.
    NxDomain(u16),
    /// Not in any of our zones.
    NotOurs,
}

impl Zones {
    /// Find a lowercase wire name (no compression, ends with the root label).
    #[inline]
    pub fn find(&self, name: &[u8]) -> Found {
        if let Some(&n) = self.index.get(name) {
            let node = &self.nodes[n as usize];
            if !node.under_cut {
                return Found::Node(n);
            }
        }
        // Walk up: the closest enclosing zone, and the highest cut in it.
        let mut cut = None;
        let mut off = 0;
        while off < name.len() {
            let suffix = &name[off..];
            if let Some(&n) = self.index.get(suffix) {
                let node = &self.nodes[n as usize];
                if node.cut {
                    cut = Some(n);
                }
                if self.zones[node.zone as usize].apex == n {
                    return match cut {
                        Some(c) => Found::Referral(c),
                        None => Found::NxDomain(node.zone),
                    };
                }
            } else if let Some(&z) = self.origins.get(suffix) {
                return Found::NxDomain(z);
            }
            let l = name[off] as usize;
            if l == 0 {
                break;
            }
            off += 1 + l;
        }
        Found::NotOurs
    }

    /// Node by lowercase wire name, if it exists.
    pub fn node(&self, name: &[u8]) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn pop_names(&self) -> &[String] {
        &self.pop_names
    }
}

/// The POP a steered name answers with: [`crate::pops::pick`] over the POPs
/// that have a set of the asked type.
#[inline]
pub fn pick(ranking: &[u8], sets: &[Option<RrSet>], pops: &PopState) -> Option<usize> {
    crate::pops::pick(
        ranking,
        |p| pops.usable(p),
        |p| sets.get(p).is_some_and(Option::is_some),
    )
}
