//! Explain: what every steered name (or one query name, through the
//! wildcard it matches if any) answers for one steering decision, and why
//! the POPs ranked before the chosen one were passed over (for
//! `sparrowctl explain` through the admin socket).
//!
//! Talks to `pops` (state, and `pops::skip_reason` for the words) and uses
//! [`pick`], as the answers do, with a trace callback that collects why each
//! POP was passed over: `no records`, `down`, `unhealthy (http 503 x3)`,
//! `forced`, `drained`, `drained (load 1.00)`, `shed (load 0.87, f=0.35)`,
//! `above low watermark (load 0.85)`. The addresses shown are the ones the
//! answer carries (targets that are up), with the TTL it uses.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, RecordType};

use super::{name_wire, pick, Found, Node, Zones};
use crate::dns::SteeredAnswer;
use crate::pops::{PopState, Reason};
use crate::steer::Decision;

impl Zones {
    /// What every steered name answers for decision `d` about `addr` (A then AAAA); with
    /// `qname`, only what that name answers if it is steered (directly or
    /// through a wildcard, named in `wildcard`).
    pub fn explain(
        &self,
        d: &Decision,
        addr: IpAddr,
        pops: &PopState,
        qname: Option<&str>,
    ) -> Vec<SteeredAnswer> {
        let mut out = Vec::new();
        let Some(q) = qname else {
            for node in &self.nodes {
                self.explain_node(d, addr, pops, node, node.name.to_ascii(), None, &mut out);
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
        self.explain_node(d, addr, pops, node, name.to_ascii(), wildcard, &mut out);
        out
    }

    /// The A and AAAA answers of one steered node (nothing if not steered).
    #[allow(clippy::too_many_arguments)]
    fn explain_node(
        &self,
        d: &Decision,
        addr: IpAddr,
        pops: &PopState,
        node: &Node,
        name: String,
        wildcard: Option<String>,
        out: &mut Vec<SteeredAnswer>,
    ) {
        let Some(st) = &node.steered else { return };
        for rtype in [RecordType::A, RecordType::AAAA] {
            let sets = st.sets(rtype);
            let mut passed = Vec::new();
            let chosen = pick(st, sets, d, addr, pops, self.all_down, |p, why| {
                passed.push((p, why))
            });
            let chosen_pop = chosen.map(|c| c.pick.pop);
            // The POPs ranked before the answer (a shedding POP that kept the
            // unit, and runners-up after it, are not passed over).
            let before: Vec<usize> = d
                .ranking
                .iter()
                .map(|&p| p as usize)
                .take_while(|&p| Some(p) != chosen_pop)
                .collect();
            let skipped = passed
                .into_iter()
                .filter(|(p, _)| before.contains(p))
                .map(|(p, why)| {
                    let records = sets
                        .get(p)
                        .and_then(Option::as_ref)
                        .map_or(0, |s| s.target_mask);
                    (
                        self.pop_names[p].clone(),
                        crate::pops::skip_reason(pops, p, why, records),
                    )
                })
                .collect();
            let addresses = chosen
                .and_then(|c| Some((c, sets[c.pick.pop].as_ref()?)))
                .map(|(c, s)| {
                    s.records
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| s.record_up(i, c.up))
                        .filter_map(|(_, r)| match r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let has_records = sets.iter().any(Option::is_some);
            out.push(SteeredAnswer {
                name: name.clone(),
                wildcard: wildcard.clone(),
                rtype: if rtype == RecordType::A { "A" } else { "AAAA" }.to_string(),
                pop: chosen_pop.map(|p| self.pop_names[p].clone()),
                addresses,
                // NODATA under `all_down: empty` is short-lived; without
                // records anywhere the name's ttl stands.
                ttl: chosen.map_or(if has_records { st.ttl_failover } else { st.ttl }, |c| {
                    c.ttl
                }),
                reason: match chosen {
                    Some(c) => Some(c.pick.reason),
                    // `all_down: empty`: NODATA.
                    None if has_records => Some(Reason::AllDown),
                    None => None,
                },
                skipped,
            });
        }
    }
}
