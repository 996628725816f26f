//! Zones compiled from the config: every owner name becomes a [`Node`] found
//! by its lowercase wire form in one hash map; every RRset is held twice, as
//! hickory-proto `Record`s (for hickory-server's path) and as precomputed wire
//! bytes after the owner name (for the UDP fast path, which only writes a
//! compression pointer in front of each).
//!
//! Owns the compiled zones (immutable after start). Read by `answer`.
//! `check_zone` is the semantic half of config validation for `zones[]`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{CNAME, MX, NS, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rustc_hash::FxHashMap;

use crate::config::{Config, ZoneConfig};
use crate::pops::PopState;
use crate::steer::Decision;

use super::{DnsError, SteeredAnswer};

/// Record types allowed in `zones[].records`.
pub const STATIC_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::MX,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::NS,
];

/// One RRset, in both forms.
#[derive(Debug)]
pub struct RrSet {
    pub rtype: RecordType,
    /// Lowercase wire form of the owner name.
    pub owner: Box<[u8]>,
    pub records: Vec<Record>,
    /// Per record: TYPE CLASS TTL RDLENGTH RDATA, concatenated.
    pub tails: Box<[u8]>,
    pub count: u16,
}

impl RrSet {
    /// Build from records that share owner, type and class.
    pub fn new(records: Vec<Record>) -> Result<RrSet, String> {
        let first = records.first().ok_or("empty RRset")?;
        let rtype = first.record_type();
        let owner = name_wire(&first.name);
        let mut tails = Vec::new();
        for r in &records {
            let mut rd = Vec::new();
            {
                let mut enc = BinEncoder::new(&mut rd);
                enc.set_name_encoding(NameEncoding::UncompressedLowercase);
                r.data
                    .emit(&mut enc)
                    .map_err(|e| format!("cannot encode {rtype} data: {e}"))?;
            }
            let len = u16::try_from(rd.len()).map_err(|_| "record data too long".to_string())?;
            tails.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
            tails.extend_from_slice(&u16::from(r.dns_class).to_be_bytes());
            tails.extend_from_slice(&r.ttl.to_be_bytes());
            tails.extend_from_slice(&len.to_be_bytes());
            tails.extend_from_slice(&rd);
        }
        Ok(RrSet {
            rtype,
            owner: owner.into(),
            count: records.len() as u16,
            records,
            tails: tails.into(),
        })
    }

    /// Wire size of the set when every owner is a 2-byte pointer.
    pub fn wire_len_compressed(&self) -> usize {
        self.tails.len() + 2 * self.count as usize
    }

    /// Each record's tail (TYPE .. RDATA).
    pub fn tails(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.tails[..];
        std::iter::from_fn(move || {
            if rest.len() < 10 {
                return None;
            }
            let n = 10 + u16::from_be_bytes([rest[8], rest[9]]) as usize;
            let (t, r) = rest.split_at(n);
            rest = r;
            Some(t)
        })
    }
}

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
    /// Compile `cfg.zones` (validated by `config::validate` already; errors here
    /// carry the same key paths).
    pub fn compile(cfg: &Config) -> Result<Zones, DnsError> {
        let mut z = Zones {
            pop_names: cfg.pops.iter().map(|p| p.name.clone()).collect(),
            ..Zones::default()
        };
        for (i, zc) in cfg.zones.iter().enumerate() {
            z.add_zone(i, zc, cfg)
                .map_err(|(key, msg)| DnsError::Zone { zone: i, key, msg })?;
        }
        z.mark_cuts();
        Ok(z)
    }

    fn node_for(&mut self, zone: u16, name: &Name) -> u32 {
        let key: Box<[u8]> = name_wire(name).into();
        if let Some(&n) = self.index.get(&key) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            zone,
            name: name.to_lowercase(),
            sets: Vec::new(),
            steered: None,
            cut: false,
            under_cut: false,
        });
        self.index.insert(key, n);
        // Empty non-terminals up to the apex exist too (NODATA, not NXDOMAIN).
        let origin = self.zones[zone as usize].origin.clone();
        if name.num_labels() > origin.num_labels() {
            let parent = name.base_name();
            self.node_for(zone, &parent);
        }
        n
    }

    fn add_zone(
        &mut self,
        zi: usize,
        zc: &ZoneConfig,
        cfg: &Config,
    ) -> Result<(), (String, String)> {
        let origin = parse_origin(&zc.origin).map_err(|m| (".origin".to_string(), m))?;
        let zone = zi as u16;
        let soa = soa_rdata(zc, &origin)?;
        let neg_ttl = zc.ttl.min(zc.soa.minimum);
        let soa_neg = RrSet::new(vec![Record::from_rdata(
            origin.clone(),
            neg_ttl,
            RData::SOA(soa.clone()),
        )])
        .map_err(|m| (".soa".to_string(), m))?;
        self.origins.insert(name_wire(&origin).into(), zone);
        self.zones.push(Zone {
            origin: origin.clone(),
            apex: 0,
            soa_neg,
        });
        let apex = self.node_for(zone, &origin);
        self.zones[zi].apex = apex;

        // Static records grouped by (owner, type), in config order.
        type Group = ((Vec<u8>, RecordType), Vec<Record>);
        let mut groups: Vec<Group> = Vec::new();
        let mut push = |r: Record| {
            let k = (name_wire(&r.name), r.record_type());
            match groups.iter_mut().find(|(g, _)| *g == k) {
                Some((_, v)) => v.push(r),
                None => groups.push((k, vec![r])),
            }
        };
        push(Record::from_rdata(origin.clone(), zc.ttl, RData::SOA(soa)));
        for (j, ns) in zc.ns.iter().enumerate() {
            let n = parse_name(ns, &origin).map_err(|m| (format!(".ns[{j}]"), m))?;
            push(Record::from_rdata(origin.clone(), zc.ttl, RData::NS(NS(n))));
        }
        for (j, rc) in zc.records.iter().enumerate() {
            let k = |f: &str| format!(".records[{j}].{f}");
            let owner = parse_owner(&rc.name, &origin).map_err(|m| (k("name"), m))?;
            let rtype = parse_type(&rc.rtype).map_err(|m| (k("type"), m))?;
            let data = parse_rdata(rtype, &rc.data, &origin).map_err(|m| (k("data"), m))?;
            push(Record::from_rdata(owner, rc.ttl.unwrap_or(zc.ttl), data));
        }
        // Identical records in one set are one record (RFC 2181 §5).
        for ((_, _), mut recs) in groups {
            let mut seen: Vec<RData> = Vec::new();
            recs.retain(|r| {
                let dup = seen.contains(&r.data);
                if !dup {
                    seen.push(r.data.clone());
                }
                !dup
            });
            // One TTL per RRset (RFC 2181 §5.2): the lowest.
            let ttl = recs.iter().map(|r| r.ttl).min().unwrap_or(0);
            for r in &mut recs {
                r.ttl = ttl;
            }
            let node = self.node_for(zone, &recs[0].name.clone());
            let set = RrSet::new(recs).map_err(|m| (".records".to_string(), m))?;
            self.nodes[node as usize].sets.push(set);
        }

        for (j, sc) in zc.steered.iter().enumerate() {
            let k = |f: &str| format!(".steered[{j}].{f}");
            let owner = parse_owner(&sc.name, &origin).map_err(|m| (k("name"), m))?;
            let n = cfg.pops.len();
            let mut st = Steered {
                ttl: sc.ttl,
                a: (0..n).map(|_| None).collect(),
                aaaa: (0..n).map(|_| None).collect(),
            };
            for (pop, ans) in &sc.pops {
                let Some(p) = cfg.pops.iter().position(|x| &x.name == pop) else {
                    return Err((k("pops"), format!("`{pop}` is not a POP")));
                };
                let mk = |data: Vec<RData>| -> Result<Option<RrSet>, (String, String)> {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    let recs = data
                        .into_iter()
                        .map(|d| Record::from_rdata(owner.clone(), sc.ttl, d))
                        .collect();
                    RrSet::new(recs).map(Some).map_err(|m| (k("pops"), m))
                };
                st.a[p] = mk(ans.a.iter().map(|&a| RData::A(a.into())).collect())?;
                st.aaaa[p] = mk(ans.aaaa.iter().map(|&a| RData::AAAA(a.into())).collect())?;
            }
            let node = self.node_for(zone, &owner);
            self.nodes[node as usize].steered = Some(st);
        }
        Ok(())
    }

    /// Mark delegation points (NS below an apex) and everything under them.
    fn mark_cuts(&mut self) {
        for i in 0..self.nodes.len() {
            let apex = self.zones[self.nodes[i].zone as usize].apex;
            if i as u32 != apex && self.nodes[i].set(RecordType::NS).is_some() {
                self.nodes[i].cut = true;
            }
        }
        for i in 0..self.nodes.len() {
            let zone = &self.zones[self.nodes[i].zone as usize];
            let mut name = self.nodes[i].name.clone();
            while name.num_labels() > zone.origin.num_labels() {
                if let Some(&n) = self.index.get(&name_wire(&name)[..]) {
                    if self.nodes[n as usize].cut {
                        self.nodes[i].under_cut = true;
                        break;
                    }
                }
                name = name.base_name();
            }
        }
    }

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
                    skipped.push((self.pop_names[p].clone(), why));
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
                    rtype: if rtype == RecordType::A { "A" } else { "AAAA" },
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

/// The POP a steered name answers with: the first in `ranking` that is usable
/// (up, not drained) and has a set; if none is usable, the first with a set
/// (all down counts as all up, as in gdnsd); `None` if no POP has one.
#[inline]
pub fn pick(ranking: &[u8], sets: &[Option<RrSet>], pops: &PopState) -> Option<usize> {
    let has = |p: usize| sets.get(p).is_some_and(|s| s.is_some());
    ranking
        .iter()
        .map(|&p| p as usize)
        .find(|&p| has(p) && pops.usable(p))
        .or_else(|| ranking.iter().map(|&p| p as usize).find(|&p| has(p)))
}

/// Lowercase wire form of a name (labels, then the root label).
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

fn parse_origin(s: &str) -> Result<Name, String> {
    let s = s.trim();
    if s.is_empty() || s == "." {
        return Err("must be a domain name (the root zone is not served)".into());
    }
    let mut n = Name::from_ascii(s).map_err(|e| format!("`{s}` is not a domain name: {e}"))?;
    n.set_fqdn(true);
    Ok(n.to_lowercase())
}

/// A name in record data: absolute with a trailing dot, else relative to `origin`.
fn parse_name(s: &str, origin: &Name) -> Result<Name, String> {
    let s = s.trim();
    if s == "@" {
        return Ok(origin.clone());
    }
    Name::parse(s, Some(origin)).map_err(|e| format!("`{s}` is not a domain name: {e}"))
}

/// An owner name: `@`, relative, or absolute inside the zone.
fn parse_owner(s: &str, origin: &Name) -> Result<Name, String> {
    let n = parse_name(s, origin)?;
    if !origin.zone_of(&n) {
        return Err(format!("`{s}` is not inside zone {origin}"));
    }
    Ok(n.to_lowercase())
}

fn parse_type(s: &str) -> Result<RecordType, String> {
    let t = RecordType::from_str(&s.trim().to_ascii_uppercase()).ok();
    match t {
        Some(t) if STATIC_TYPES.contains(&t) => Ok(t),
        _ => Err(format!(
            "`{s}` is not one of A, AAAA, CNAME, TXT, MX, SRV, CAA, NS"
        )),
    }
}

/// Record data in zone-file syntax; names relative to `origin` unless absolute.
fn parse_rdata(rtype: RecordType, s: &str, origin: &Name) -> Result<RData, String> {
    let fix = |n: Name| -> Result<Name, String> {
        if n.is_fqdn() {
            Ok(n)
        } else {
            n.append_domain(origin).map_err(|e| e.to_string())
        }
    };
    let data = match rtype {
        // A lone name: use our own name parsing (handles `@`).
        RecordType::CNAME => RData::CNAME(CNAME(parse_name(s, origin)?)),
        RecordType::NS => RData::NS(NS(parse_name(s, origin)?)),
        _ => RData::try_from_str(rtype, s.trim())
            .map_err(|e| format!("bad {rtype} data `{s}`: {e}"))?,
    };
    Ok(match data {
        RData::MX(mx) => RData::MX(MX::new(mx.preference, fix(mx.exchange)?)),
        RData::SRV(srv) => RData::SRV(SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            fix(srv.target)?,
        )),
        d => d,
    })
}

fn soa_rdata(zc: &ZoneConfig, origin: &Name) -> Result<SOA, (String, String)> {
    let mname = parse_name(&zc.soa.mname, origin).map_err(|m| (".soa.mname".to_string(), m))?;
    // `hostmaster@example.net` -> `hostmaster.example.net.`
    let rname_text = match zc.soa.rname.split_once('@') {
        Some((user, dom)) => {
            format!("{}.{}", user.replace('.', "\\."), dom.trim_end_matches('.')) + "."
        }
        None => zc.soa.rname.clone(),
    };
    let rname = parse_name(&rname_text, origin).map_err(|m| (".soa.rname".to_string(), m))?;
    Ok(SOA::new(
        mname,
        rname,
        zc.soa.serial,
        zc.soa.refresh,
        zc.soa.retry,
        zc.soa.expire,
        zc.soa.minimum,
    ))
}

/// Semantic checks of one zone for `config::validate`: `(key suffix, message)`.
pub fn check_zone(z: &ZoneConfig, cfg: &Config) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let origin = match parse_origin(&z.origin) {
        Ok(o) => o,
        Err(m) => return vec![(".origin".into(), m)],
    };
    if let Err(e) = soa_rdata(z, &origin) {
        errs.push(e);
    }
    for (k, v) in [
        ("refresh", z.soa.refresh),
        ("retry", z.soa.retry),
        ("expire", z.soa.expire),
    ] {
        if v < 0 {
            errs.push((format!(".soa.{k}"), "must not be negative".into()));
        }
    }
    if z.ns.is_empty() {
        errs.push((".ns".into(), "a zone needs at least one NS name".into()));
    }
    for (j, ns) in z.ns.iter().enumerate() {
        if let Err(m) = parse_name(ns, &origin) {
            errs.push((format!(".ns[{j}]"), m));
        }
    }
    // Owner -> (types, first record index) to catch CNAME clashes.
    let mut owners: BTreeMap<Vec<u8>, Vec<(RecordType, String)>> = BTreeMap::new();
    owners.entry(name_wire(&origin)).or_default().extend([
        (RecordType::SOA, ".soa".to_string()),
        (RecordType::NS, ".ns".to_string()),
    ]);
    for (j, r) in z.records.iter().enumerate() {
        let k = |f: &str| format!(".records[{j}].{f}");
        let owner = parse_owner(&r.name, &origin);
        let rtype = parse_type(&r.rtype);
        if let Err(m) = &owner {
            errs.push((k("name"), m.clone()));
        }
        match &rtype {
            Err(m) => errs.push((k("type"), m.clone())),
            Ok(t) => {
                if let Err(m) = parse_rdata(*t, &r.data, &origin) {
                    errs.push((k("data"), m));
                }
            }
        }
        if let (Ok(o), Ok(t)) = (owner, rtype) {
            owners
                .entry(name_wire(&o))
                .or_default()
                .push((t, k("type")));
        }
    }
    for (j, s) in z.steered.iter().enumerate() {
        let k = |f: &str| format!(".steered[{j}].{f}");
        match parse_owner(&s.name, &origin) {
            Err(m) => errs.push((k("name"), m)),
            Ok(o) => {
                if o == origin {
                    errs.push((k("name"), "the zone apex cannot be steered".into()));
                }
                let e = owners.entry(name_wire(&o)).or_default();
                if e.iter()
                    .any(|(t, _)| *t == RecordType::A || *t == RecordType::AAAA)
                {
                    errs.push((
                        k("name"),
                        format!("`{}` also has static A/AAAA records", s.name),
                    ));
                }
                if let Some((_, other)) = e.iter().find(|(t, _)| *t == RecordType::Unknown(0)) {
                    errs.push((k("name"), format!("steered twice (also zones[]{other})")));
                }
                e.push((RecordType::Unknown(0), k("name")));
            }
        }
        if s.pops.is_empty() {
            errs.push((k("pops"), "needs addresses for at least one POP".into()));
        }
        for (pop, ans) in &s.pops {
            if !cfg.pops.iter().any(|p| &p.name == pop) {
                let names: Vec<_> = cfg.pops.iter().map(|p| p.name.as_str()).collect();
                errs.push((
                    format!(".steered[{j}].pops.{pop}"),
                    format!(
                        "`{pop}` is not one of the POPs in `pops` ({})",
                        names.join(", ")
                    ),
                ));
            }
            if ans.a.is_empty() && ans.aaaa.is_empty() {
                errs.push((
                    format!(".steered[{j}].pops.{pop}"),
                    "give `a` or `aaaa` addresses".into(),
                ));
            }
        }
    }
    for types in owners.values() {
        if let Some((_, key)) = types.iter().find(|(t, _)| *t == RecordType::CNAME) {
            if types.len() > 1 {
                errs.push((
                    key.clone(),
                    "a CNAME cannot share its name with other data (RFC 1034 §3.6.2)".into(),
                ));
            }
        }
    }
    errs
}

/// CH-class TXT set answering `name` with `text` (`id.server`, `hostname.bind`).
pub fn chaos_txt(name: &str, text: &str) -> RrSet {
    let mut r = Record::from_rdata(
        Name::from_ascii(name).unwrap_or_else(|_| Name::root()),
        0,
        RData::TXT(TXT::new(vec![text.to_string()])),
    );
    r.dns_class = DNSClass::CH;
    RrSet::new(vec![r]).unwrap_or_else(|_| RrSet {
        rtype: RecordType::TXT,
        owner: Box::new([0]),
        records: Vec::new(),
        tails: Box::new([]),
        count: 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config;

    pub const CFG: &str = "\
local_asn: 65001
router_id: 10.0.0.1
pop: x
pops:
  - {name: x, asn: 65001}
  - {name: y, asn: 65002}
peers:
  - {name: py, address: 10.0.0.2, remote_asn: 65002, role: pop, multihop: 4}
zones:
  - origin: Example.NET
    soa: {mname: ns1, rname: hostmaster@example.net}
    ns: [ns1, ns2.example.net.]
    records:
      - {name: ns1, type: A, data: 192.0.2.53}
      - {name: '@', type: MX, data: '10 mail'}
      - {name: mail, type: A, data: 192.0.2.25}
      - {name: alias, type: CNAME, data: www}
      - {name: txt.deep.sub, type: TXT, data: '\"hello world\"'}
      - {name: '@', type: CAA, data: '0 issue \"letsencrypt.org\"'}
      - {name: _sip._udp, type: SRV, data: '10 5 5060 sip'}
      - {name: child, type: NS, data: ns.child}
      - {name: ns.child, type: A, data: 192.0.2.99}
    steered:
      - name: www
        ttl: 20
        pops:
          x: {a: [192.0.2.10], aaaa: ['2001:db8::10']}
          y: {a: [198.51.100.10, 198.51.100.11]}
";

    fn wire(s: &str) -> Vec<u8> {
        name_wire(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn compiles_and_finds() {
        let cfg = config::parse(CFG, "t.yaml").unwrap();
        let z = Zones::compile(&cfg).unwrap();
        let Found::Node(n) = z.find(&wire("WWW.example.net.").to_ascii_lowercase()) else {
            panic!()
        };
        let st = z.nodes[n as usize].steered.as_ref().unwrap();
        assert_eq!(st.a[1].as_ref().unwrap().count, 2);
        assert!(st.aaaa[1].is_none());
        // Empty non-terminal.
        assert!(matches!(
            z.find(&wire("deep.sub.example.net.")),
            Found::Node(_)
        ));
        assert!(matches!(z.find(&wire("sub.example.net.")), Found::Node(_)));
        assert!(matches!(
            z.find(&wire("nope.example.net.")),
            Found::NxDomain(0)
        ));
        assert!(matches!(
            z.find(&wire("a.b.nope.example.net.")),
            Found::NxDomain(0)
        ));
        assert_eq!(z.find(&wire("example.org.")), Found::NotOurs);
        assert_eq!(z.find(&wire(".")), Found::NotOurs);
        // Delegation: the cut and everything below it refer.
        let child = z.node(&wire("child.example.net.")).unwrap();
        assert_eq!(z.find(&wire("child.example.net.")), Found::Referral(child));
        assert_eq!(
            z.find(&wire("ns.child.example.net.")),
            Found::Referral(child)
        );
        assert_eq!(
            z.find(&wire("x.y.child.example.net.")),
            Found::Referral(child)
        );
        // The apex holds SOA, NS (2), MX, CAA; MX target made absolute.
        let apex = &z.nodes[z.zones[0].apex as usize];
        assert_eq!(apex.set(RecordType::NS).unwrap().count, 2);
        let mx = &apex.set(RecordType::MX).unwrap().records[0];
        assert_eq!(mx.data.to_string(), "10 mail.example.net.");
        // Negative TTL = min(zone ttl 3600, minimum 60).
        assert_eq!(z.zones[0].soa_neg.records[0].ttl, 60);
        let soa = &z.zones[0].soa_neg.records[0];
        assert_eq!(
            soa.data.to_string().split(' ').take(2).collect::<Vec<_>>(),
            ["ns1.example.net.", "hostmaster.example.net."]
        );
    }

    #[test]
    fn tails_match_hickory_encoding() {
        use hickory_proto::op::Message;
        let cfg = config::parse(CFG, "t.yaml").unwrap();
        let z = Zones::compile(&cfg).unwrap();
        for node in &z.nodes {
            for set in &node.sets {
                // Owner written in full + our tails == a message hickory decodes to the records.
                let mut m = vec![0, 1, 0x84, 0, 0, 0, 0, set.count as u8, 0, 0, 0, 0];
                for t in set.tails() {
                    m.extend_from_slice(&set.owner);
                    m.extend_from_slice(t);
                }
                let msg = Message::from_vec(&m).unwrap();
                assert_eq!(msg.answers, set.records, "{}", node.name);
            }
        }
    }

    #[test]
    fn check_zone_errors_name_keys() {
        let bad = CFG
            .replace("type: MX, data: '10 mail'", "type: MX, data: 'ten mail'")
            .replace("name: alias, type: CNAME", "name: mail, type: CNAME")
            .replace("{name: ns1, type: A", "{name: ns1.example.org., type: A")
            .replace("type: SRV", "type: HINFO")
            .replace("y: {a:", "z: {a:");
        let errs = config::parse(&bad, "t.yaml").unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "zones[0].records[1].data",
            "zones[0].records[0].name",
            "zones[0].records[6].type",
            "zones[0].steered[0].pops.z",
        ] {
            assert!(keys.contains(&k), "{k} missing in {errs:?}");
        }
        assert!(
            errs.iter().any(|e| e.msg.contains("CNAME cannot share")),
            "{errs:?}"
        );
        assert!(errs.iter().all(|e| e.line > 0), "{errs:?}");
    }
}
