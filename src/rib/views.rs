//! Read-only views of the Loc-RIB for consumers outside the RIB task's
//! message loop (a [`super::LocRibListener`], tools, tests): changed
//! prefixes since the last call, the best routes per family, a prefix's paths
//! as best-path keys, and AS_PATH ASNs without decoding.

use super::bestpath::PathKey;
use super::state::Rib;
use super::table::{Entry, PrefixKey, Table};
use crate::types::{Afi, PathAttrs, PeerId, Prefix};

impl Rib {
    /// Record prefixes whose best path changes, for [`Rib::take_changed`] (off by default).
    pub fn set_track_changes(&mut self, on: bool) {
        self.core.changed = on.then(Default::default);
    }

    /// Like [`Rib::set_track_changes`], but [`Rib::take_changed`] then reports
    /// every prefix whose paths changed in any way (a path added, replaced,
    /// removed or marked stale), best or not: what a listener needs that ranks
    /// every path of a prefix, not only the best.
    pub fn set_track_all_path_changes(&mut self, on: bool) {
        self.set_track_changes(on);
        self.core.track_all = on;
    }

    /// Prefixes of `afi` whose best path changed (added, removed, or another
    /// path/attribute set) since the last call. Empty unless tracking is on.
    pub fn take_changed(&mut self, afi: Afi) -> Vec<Prefix> {
        match self.core.changed.as_mut() {
            Some(c) => std::mem::take(&mut c[afi.index()]).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The Loc-RIB of a family: every prefix with its best path's peer and
    /// attribute id (see [`Rib::attrs`]).
    pub fn best_routes(&self, afi: Afi) -> Box<dyn Iterator<Item = (Prefix, PeerId, u32)> + '_> {
        match afi {
            Afi::Ipv4 => Box::new(
                self.v4
                    .iter()
                    .map(|e| (e.prefix(), e.paths[0].peer, e.paths[0].attr)),
            ),
            Afi::Ipv6 => Box::new(
                self.v6
                    .iter()
                    .map(|e| (e.prefix(), e.paths[0].peer, e.paths[0].attr)),
            ),
        }
    }

    /// The attributes of an attribute id from [`Rib::best_routes`] (decoded).
    pub fn attrs(&self, id: u32) -> PathAttrs {
        self.core.attrs.decode(id)
    }

    /// For Loc-RIB listeners: the paths of exactly `prefix` as
    /// best-path keys, best (the Loc-RIB path) first, each with its attribute
    /// id. `out` is cleared first; left empty when the prefix is not held.
    pub fn path_keys(&self, prefix: &Prefix, out: &mut Vec<(PathKey, u32)>) {
        fn get<'a, K: PrefixKey>(t: &'a Table<K>, p: &Prefix) -> Option<&'a Entry<K>> {
            t.find(K::from_prefix(p)?).map(|i| t.entry(i))
        }
        out.clear();
        let paths = match prefix.afi() {
            Afi::Ipv4 => get(&self.v4, prefix).map(|e| &e.paths[..]),
            Afi::Ipv6 => get(&self.v6, prefix).map(|e| &e.paths[..]),
        };
        for p in paths.unwrap_or_default() {
            out.push((self.core.path_key(p), p.attr));
        }
    }

    /// Every ASN of the AS_PATH of attribute id `id` (from [`Rib::best_routes`]
    /// or [`Rib::path_keys`]), in path order; decodes nothing else.
    pub fn asns(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        self.core.attrs.asns(id)
    }

    /// Whether `peer` has sent End-of-RIB for `afi` in its current session.
    pub fn end_of_rib_seen(&self, peer: PeerId, afi: Afi) -> bool {
        self.core
            .peers
            .get(peer as usize)
            .is_some_and(|p| p.eor[afi.index()])
    }

    /// The best path's peer and attributes for exactly `prefix`.
    pub fn best(&self, prefix: &Prefix) -> Option<(PeerId, PathAttrs)> {
        fn get<'a, K: PrefixKey>(t: &'a Table<K>, p: &Prefix) -> Option<&'a Entry<K>> {
            t.find(K::from_prefix(p)?).map(|i| t.entry(i))
        }
        let e = match prefix.afi() {
            Afi::Ipv4 => get(&self.v4, prefix).map(|e| e.paths[0]),
            Afi::Ipv6 => get(&self.v6, prefix).map(|e| e.paths[0]),
        }?;
        Some((e.peer, self.core.attrs.decode(e.attr)))
    }
}
