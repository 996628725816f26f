//! Explain: what every steered name (or one query name, through the
//! wildcard it matches if any) answers for one steering decision, and why
//! the POPs ranked before the chosen one were passed over (for
//! `sparrowctl explain` through the admin socket).
//!
//! Talks to `pops` (up/drained) and uses [`pick`], as the answers do.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, RecordType};

use super::{name_wire, pick, Found, Node, Zones};
use crate::dns::SteeredAnswer;
use crate::pops::PopState;
use crate::steer::Decision;

impl Zones {
    /// What every steered name answers for decision `d` (A then AAAA); with
    /// `qname`, only what that name answers if it is steered (directly or
    /// through a wildcard, named in `wildcard`).
    pub fn explain(
        &self,
        d: &Decision,
        pops: &PopState,
        qname: Option<&str>,
    ) -> Vec<SteeredAnswer> {
        let mut out = Vec::new();
        let Some(q) = qname else {
            for node in &self.nodes {
                self.explain_node(d, pops, node, node.name.to_ascii(), None, &mut out);
            }
            return out;
        };
        let Ok(mut name) = Name::from_ascii(q) else {
            return out;
        };
        name.set_fqdn(true);
        let name = name.to_lowercase();
        let (n, wildcard) = match self.find(&name_wire(&name)) {
            Found::Node(n) => (n, None),
            Found::Wildcard(w) => (w, Some(self.nodes[w as usize].name.to_ascii())),
            _ => return out,
        };
        let node = &self.nodes[n as usize];
        self.explain_node(d, pops, node, name.to_ascii(), wildcard, &mut out);
        out
    }

    /// The A and AAAA answers of one steered node (nothing if not steered).
    fn explain_node(
        &self,
        d: &Decision,
        pops: &PopState,
        node: &Node,
        name: String,
        wildcard: Option<String>,
        out: &mut Vec<SteeredAnswer>,
    ) {
        {
            let Some(st) = &node.steered else { return };
            for rtype in [RecordType::A, RecordType::AAAA] {
                let sets = st.sets(rtype);
                let chosen = pick(d.ranking, sets, pops);
                let mut skipped = Vec::new();
                for &p in d.ranking {
                    let p = p as usize;
                    if Some(p) == chosen {
                        break;
                    }
                    let why = if sets.get(p).is_none_or(|s| s.is_none()) {
                        "no records"
                    } else if pops.drained(p) {
                        "drained"
                    } else if !pops.up(p) {
                        "down"
                    } else {
                        "passed over"
                    };
                    skipped.push((self.pop_names[p].clone(), why.to_string()));
                }
                let addresses = chosen
                    .and_then(|p| sets[p].as_ref())
                    .map(|s| {
                        s.records
                            .iter()
                            .filter_map(|r| match r.data {
                                RData::A(a) => Some(IpAddr::V4(a.0)),
                                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(SteeredAnswer {
                    name: name.clone(),
                    wildcard: wildcard.clone(),
                    rtype: if rtype == RecordType::A { "A" } else { "AAAA" }.to_string(),
                    pop: chosen.map(|p| self.pop_names[p].clone()),
                    addresses,
                    ttl: st.ttl,
                    skipped,
                });
            }
        }
    }
}
