//! The resolver both request paths share: one question in, the sections of
//! the answer out (as references to compiled RRsets), plus the RCODE, AA and
//! the ECS scope. Pure apart from one `steering.load()` for steered names.
//!
//! Rules (RFC 1034 §4.3.2 in the small, RFC 2308 for negative answers):
//! - the nearest enclosing zone answers (a child zone served beside its
//!   parent answers for its own names; `zone::Zones::find`);
//! - a name in no zone of ours: REFUSED, AA clear;
//! - a name at or below a delegation point: referral (NS in authority, glue
//!   in additional), AA clear;
//! - no such name: the wildcard `*.<closest encloser>` answers if the zone
//!   has one (RFC 4592: its static, CNAME or steered data, or NODATA, with
//!   the query name as owner); else NXDOMAIN with the zone's SOA in
//!   authority; a name without the asked type: NODATA (NOERROR, SOA in
//!   authority);
//! - CNAME: the CNAME, then the target's answer if it is ours (8 steps at most);
//! - glue: A/AAAA of the NS targets from the referring zone, else from the
//!   target's own zone, each set once;
//! - ANY: one RRset (RFC 8482 §4.2);
//! - steered names: `steer::select` on the querier, then the POP of
//!   `zone::pick` over `pops::pick` (availability, load shedding keyed on the
//!   decision's safe-scope block, `health.all_down`); the answer carries only
//!   the POP's records whose target is up, with the name's `ttl` from the
//!   client's first-ranked POP and `ttl_failover` otherwise ([`SteeredOut`],
//!   applied by the writer); `all_down: empty` gives NODATA with the SOA's TTL
//!   capped at `ttl_failover`. ECS scope is the decision's safe scope, even when
//!   longer than the source prefix length (RFC 7871 §7.2.1: the resolver learns
//!   its prefix was not specific enough).
//! - class CH: `id.server` / `hostname.bind` TXT; other CH names REFUSED;
//!   class ANY (`*`) is answered as IN, other classes REFUSED;
//! - DS is answered by the parent side of a cut (RFC 4035 §3.1.4.1): at a
//!   delegation point NODATA from the parent, not a referral.

use std::net::IpAddr;

use hickory_proto::rr::{Name, Record, RecordType};
use smallvec::SmallVec;

use super::iana::{class, rcode};
use super::stats::{AnswerReason, Steered};
use super::zone::{pick, Found, RrSet};
use super::Authority;
use crate::pops::Reason;
use crate::steer;

/// Whom the answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Querier {
    /// The transport source address (no ECS, or ECS with source length 0).
    Source(IpAddr),
    /// The ECS address (host bits already zero) and its source prefix length.
    Ecs(IpAddr, u8),
}

impl Querier {
    fn addr(&self) -> IpAddr {
        match *self {
            Querier::Source(a) | Querier::Ecs(a, _) => a,
        }
    }
}

/// The answer to one question.
#[derive(Debug, Default)]
pub struct Resolution<'z> {
    pub rcode: u16,
    pub aa: bool,
    pub answer: SmallVec<[&'z RrSet; 2]>,
    pub authority: SmallVec<[&'z RrSet; 1]>,
    pub additional: SmallVec<[&'z RrSet; 2]>,
    /// ECS SCOPE PREFIX-LENGTH for the reply (0 unless the answer depended on
    /// the querier's address).
    pub scope: u8,
    /// The steered set among `answer`, if any: which of its records are
    /// written and with what TTL.
    pub steered: Option<SteeredOut>,
    /// A NODATA because no POP is usable (`all_down: empty`): the authority
    /// SOA's TTL (the negative-caching time) is capped at this, the name's
    /// `ttl_failover`, so resolvers ask again soon.
    pub neg_ttl: Option<u32>,
    /// For a steered name: the POP it answered with and why (counted by
    /// `stats`).
    pub steered_by: Option<Steered>,
}

/// How the writer treats the steered answer set: only records whose target
/// bit is set in `up` (records that are no target always), with TTL `ttl`
/// (the name's `ttl`, or `ttl_failover` when not from the first-ranked POP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteeredOut {
    /// Index in `Resolution::answer`.
    pub set: usize,
    pub up: u64,
    pub ttl: u32,
}

impl SteeredOut {
    /// Whether record `i` of answer set `set` is written, and the TTL to
    /// write it with (`None`: as compiled).
    #[inline]
    pub fn apply(
        this: Option<&SteeredOut>,
        set: usize,
        rr: &RrSet,
        i: usize,
    ) -> (bool, Option<u32>) {
        match this {
            Some(s) if s.set == set => (rr.record_up(i, s.up), Some(s.ttl)),
            _ => (true, None),
        }
    }
}

impl<'z> Resolution<'z> {
    fn rcode(rcode: u16) -> Resolution<'z> {
        Resolution {
            rcode,
            ..Resolution::default()
        }
    }

    /// The owner (lowercase wire form) of answer set `i` as written: its own,
    /// or for a set owned by a wildcard the name it answered (RFC 4592
    /// §3.3.1): `qname`, or the target of the CNAME before it.
    pub fn owner<'a>(&'a self, i: usize, qname: &'a [u8]) -> &'a [u8] {
        let set = self.answer[i];
        match (set.wildcard, i.checked_sub(1)) {
            (false, _) => &set.owner,
            (true, None) => qname,
            (true, Some(prev)) => &self.answer[prev].target,
        }
    }

    /// The answer's records for an encoder that takes hickory `Record`s: as
    /// compiled, with the owners of [`Resolution::owner`].
    pub fn answer_records(&self, qname: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        for (i, set) in self.answer.iter().enumerate() {
            let name = set.wildcard.then(|| wire_name(self.owner(i, qname)));
            for (k, r) in set.records.iter().enumerate() {
                let (write, ttl) = SteeredOut::apply(self.steered.as_ref(), i, set, k);
                if !write {
                    continue;
                }
                let mut r = r.clone();
                if let Some(n) = &name {
                    r.name = n.clone();
                }
                if let Some(t) = ttl {
                    r.ttl = t;
                }
                out.push(r);
            }
        }
        out
    }
}

/// A `Name` from an uncompressed wire name (the root if it does not parse).
fn wire_name(wire: &[u8]) -> Name {
    let mut labels = Vec::new();
    let mut rest = wire;
    while let Some((&l, tail)) = rest.split_first() {
        if l == 0 || tail.len() < l as usize {
            break;
        }
        labels.push(&tail[..l as usize]);
        rest = &tail[l as usize..];
    }
    let mut n = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// The counted reason for a pick: the pick's own, except that the
/// first-ranked POP under the static `steering` map is `fallback`.
fn answer_reason(r: Reason, source: steer::Source) -> AnswerReason {
    match (r, source) {
        (Reason::Closest, steer::Source::Fallback) => AnswerReason::Fallback,
        (Reason::Closest, steer::Source::Rib) => AnswerReason::Closest,
        (Reason::Failover, _) => AnswerReason::Failover,
        (Reason::Shed, _) => AnswerReason::Shed,
        (Reason::AllDown, _) => AnswerReason::AllDown,
    }
}

const MAX_CHAIN: usize = 8;

/// Answer `qname` (lowercase wire form) / `qtype` / `qclass` for `querier`.
pub fn resolve<'z>(
    auth: &'z Authority,
    qname: &[u8],
    qtype: u16,
    qclass: u16,
    querier: Querier,
) -> Resolution<'z> {
    if qclass == class::CH {
        return chaos(auth, qname, qtype);
    }
    // QCLASS * (RFC 1035 §3.2.5) matches our one class, IN.
    if qclass != class::IN && qclass != class::ANY {
        return Resolution::rcode(rcode::REFUSED);
    }
    let qtype = RecordType::from(qtype);
    match qtype {
        // No zone transfers, no legacy meta types.
        RecordType::AXFR | RecordType::IXFR => return Resolution::rcode(rcode::REFUSED),
        RecordType::OPT => return Resolution::rcode(rcode::FORMERR),
        _ => {}
    }
    let zones = &auth.zones;
    let mut res = Resolution {
        aa: true,
        ..Resolution::default()
    };
    let find = |name: &[u8]| {
        if qtype == RecordType::DS {
            zones.find_ds(name)
        } else {
            zones.find(name)
        }
    };
    let mut found = find(qname);
    for step in 0..MAX_CHAIN {
        match found {
            Found::NotOurs => {
                if step == 0 {
                    return Resolution::rcode(rcode::REFUSED);
                }
                return res;
            }
            Found::NxDomain(z) => {
                res.rcode = rcode::NXDOMAIN;
                res.authority.push(&zones.zones[z as usize].soa_neg);
                return res;
            }
            Found::Referral(cut) => {
                if step == 0 {
                    res.aa = false;
                }
                let node = &zones.nodes[cut as usize];
                if let Some(ns) = node.set(RecordType::NS) {
                    res.authority.push(ns);
                    glue(auth, node.zone, ns, &mut res);
                }
                return res;
            }
            // A wildcard's data answers as if it were the name's own.
            Found::Node(n) | Found::Wildcard(n) => {
                let node = &zones.nodes[n as usize];
                // CNAME first: it answers every type but itself.
                if let Some(cname) = node.set(RecordType::CNAME) {
                    res.answer.push(cname);
                    if qtype == RecordType::CNAME || qtype == RecordType::ANY {
                        return res;
                    }
                    let key = &cname.target[..];
                    // A loop back to a name already answered ends the chain.
                    if key.is_empty() || res.answer.iter().any(|s| *s.owner == *key) {
                        return res;
                    }
                    found = find(key);
                    continue;
                }
                if let Some(st) = &node.steered {
                    let want = match qtype {
                        RecordType::A | RecordType::AAAA => Some(qtype),
                        // Minimal ANY: the A set (else AAAA) of the chosen POP.
                        RecordType::ANY => Some(if st.a.iter().any(|s| s.is_some()) {
                            RecordType::A
                        } else {
                            RecordType::AAAA
                        }),
                        _ => None,
                    };
                    if let Some(t) = want {
                        let sets = st.sets(t);
                        let snap = auth.steering.load();
                        let d = steer::select(querier.addr(), &snap);
                        let scope = match querier {
                            Querier::Ecs(..) => d.scope,
                            Querier::Source(_) => 0,
                        };
                        let all_down = zones.all_down;
                        let chosen = pick(
                            st,
                            sets,
                            &d,
                            querier.addr(),
                            &auth.pops,
                            all_down,
                            |_, _| {},
                        );
                        match chosen.and_then(|c| Some((c, sets[c.pick.pop].as_ref()?))) {
                            Some((c, set)) => {
                                res.steered_by = Some(Steered {
                                    pop: Some(c.pick.pop as u16),
                                    reason: answer_reason(c.pick.reason, d.source),
                                });
                                res.steered = Some(SteeredOut {
                                    set: res.answer.len(),
                                    up: c.up,
                                    ttl: c.ttl,
                                });
                                res.answer.push(set);
                                res.scope = scope;
                                return res;
                            }
                            // `all_down: empty` with records somewhere: NODATA,
                            // which depends on the querier too.
                            None if sets.iter().any(Option::is_some) => {
                                res.steered_by = Some(Steered {
                                    pop: None,
                                    reason: AnswerReason::AllDown,
                                });
                                res.scope = scope;
                                res.neg_ttl = Some(st.ttl_failover);
                                res.authority.push(&zones.zones[node.zone as usize].soa_neg);
                                return res;
                            }
                            None => {}
                        }
                    }
                }
                let set = match qtype {
                    RecordType::ANY => node.sets.first(),
                    t => node.set(t),
                };
                match set {
                    Some(s) => res.answer.push(s),
                    // NODATA (also at the end of a CNAME chain).
                    None => res.authority.push(&zones.zones[node.zone as usize].soa_neg),
                }
                if let (Some(s), RecordType::NS) = (set, qtype) {
                    glue(auth, node.zone, s, &mut res);
                }
                return res;
            }
        }
    }
    res
}

/// A and AAAA sets of the NS targets into the additional section: from
/// `zone` (the zone of the NS set: glue below its cut, or its own names),
/// else from the target's own zone; each set once (RFC 2181 §5).
fn glue<'z>(auth: &'z Authority, zone: u16, ns: &'z RrSet, res: &mut Resolution<'z>) {
    let zones = &auth.zones;
    for r in &ns.records {
        if let hickory_proto::rr::RData::NS(n) = &r.data {
            let key = super::zone::name_wire(&n.0);
            let node = zones.node_in(zone, &key).or_else(|| {
                let z = zones.zone_of(&key)?;
                zones.node_in(z, &key)
            });
            let Some(t) = node else { continue };
            for s in &zones.nodes[t as usize].sets {
                if (s.rtype == RecordType::A || s.rtype == RecordType::AAAA)
                    && res.additional.len() < 8
                    && !res.additional.iter().any(|a| std::ptr::eq(*a, s))
                {
                    res.additional.push(s);
                }
            }
        }
    }
}

/// `id.server` / `hostname.bind` CH TXT (or ANY); other CH names REFUSED.
fn chaos<'z>(auth: &'z Authority, qname: &[u8], qtype: u16) -> Resolution<'z> {
    let set = [&auth.ch_id, &auth.ch_hostname]
        .into_iter()
        .find(|s| *s.owner == *qname);
    let Some(set) = set else {
        return Resolution::rcode(rcode::REFUSED);
    };
    let mut res = Resolution {
        aa: true,
        ..Resolution::default()
    };
    if qtype == u16::from(RecordType::TXT) || qtype == u16::from(RecordType::ANY) {
        res.answer.push(set);
    }
    res
}
