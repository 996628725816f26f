//! Explain: what every steered name answers for one steering decision, and
//! why the POPs ranked before the chosen one were passed over (for
//! `sparrowctl explain` through the admin socket).
//!
//! Talks to `pops` (up/drained) and uses [`pick`], as the answers do.

use std::net::IpAddr;

use hickory_proto::rr::{RData, RecordType};

use super::{pick, Zones};
use crate::dns::SteeredAnswer;
use crate::pops::PopState;
use crate::steer::Decision;

impl Zones {
    /// What every steered name answers for decision `d` (A then AAAA).
    pub fn explain(&self, d: &Decision, pops: &PopState) -> Vec<SteeredAnswer> {
        let mut out = Vec::new();
        for node in &self.nodes {
            let Some(st) = &node.steered else { continue };
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
                    name: node.name.to_ascii(),
                    rtype: if rtype == RecordType::A { "A" } else { "AAAA" }.to_string(),
                    pop: chosen.map(|p| self.pop_names[p].clone()),
                    addresses,
                    ttl: st.ttl,
                    skipped,
                });
            }
        }
        out
    }
}
