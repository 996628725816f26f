//! Zones in the config: the `zones[]` schema (serde, as parsed) and
//! [`parse_zone`], the one function that parses and checks a zone's names,
//! types and record data, returning every error or a [`ZoneSpec`] (names and
//! RDATA parsed, steered POPs by index). Config validation calls it for the
//! errors; `dns::zone` calls it for the spec it compiles.
//!
//! Talks to `schema` (the POP list) and hickory-proto (names, RDATA).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{CNAME, MX, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use super::error::ZoneError;
use super::schema::{pop_index, PopConfig};

/// One authoritative zone.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The apex, e.g. `example.net` (a trailing dot is optional).
    pub origin: String,
    /// TTL of records that give none, and of the apex NS set.
    #[serde(default = "default_zone_ttl")]
    pub ttl: u32,
    pub soa: SoaConfig,
    /// Apex NS names (absolute, or relative to the origin).
    pub ns: Vec<String>,
    #[serde(default)]
    pub records: Vec<RecordConfig>,
    #[serde(default)]
    pub steered: Vec<SteeredConfig>,
}

fn default_zone_ttl() -> u32 {
    3600
}

/// The zone's SOA; `minimum` is also the negative-caching TTL (RFC 2308).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SoaConfig {
    pub mname: String,
    /// Mailbox as a name (`hostmaster.example.net`) or address (`hostmaster@example.net`).
    pub rname: String,
    #[serde(default = "one")]
    pub serial: u32,
    #[serde(default = "default_refresh")]
    pub refresh: i32,
    #[serde(default = "default_retry")]
    pub retry: i32,
    #[serde(default = "default_expire")]
    pub expire: i32,
    #[serde(default = "default_minimum")]
    pub minimum: u32,
}

fn one() -> u32 {
    1
}
fn default_refresh() -> i32 {
    3600
}
fn default_retry() -> i32 {
    600
}
fn default_expire() -> i32 {
    1_209_600
}
fn default_minimum() -> u32 {
    60
}

/// One static record, with its data in zone-file syntax.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Owner: `@` for the apex, a relative name, or an absolute one in the zone.
    pub name: String,
    /// A, AAAA, CNAME, TXT, MX, SRV, CAA or NS.
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: Option<u32>,
    /// RDATA as in a zone file (`10 mail.example.net.`); names in it are
    /// absolute or relative to the origin.
    pub data: String,
}

/// A name answered per client from the steering decision.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SteeredConfig {
    pub name: String,
    #[serde(default = "default_steered_ttl")]
    pub ttl: u32,
    /// Per POP name: its addresses.
    pub pops: std::collections::BTreeMap<String, PopAnswers>,
}

fn default_steered_ttl() -> u32 {
    30
}

/// Addresses a steered name answers with when this POP is chosen.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct PopAnswers {
    #[serde(default)]
    pub a: Vec<std::net::Ipv4Addr>,
    #[serde(default)]
    pub aaaa: Vec<std::net::Ipv6Addr>,
}

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

/// A zone that passed [`parse_zone`]: every name and RDATA parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSpec {
    /// Lowercase, absolute.
    pub origin: Name,
    /// TTL of records that give none, of the SOA and of the apex NS set.
    pub ttl: u32,
    pub soa: SOA,
    /// Apex NS names, absolute.
    pub ns: Vec<Name>,
    /// Static records in config order.
    pub records: Vec<RecordSpec>,
    pub steered: Vec<SteeredSpec>,
}

/// One static record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSpec {
    /// Lowercase, absolute, inside the zone.
    pub owner: Name,
    /// The record's TTL, else the zone's.
    pub ttl: u32,
    pub data: RData,
}

/// One steered name.
#[derive(Clone, Debug, PartialEq)]
pub struct SteeredSpec {
    /// Lowercase, absolute, inside the zone, not the apex.
    pub owner: Name,
    pub ttl: u32,
    /// (POP index in `pops`, its addresses), in POP-name order.
    pub pops: Vec<(usize, Vec<Ipv4Addr>, Vec<Ipv6Addr>)>,
}

/// Parse and check one zone against the POP list: the spec, or every error
/// (keys relative to the zone, e.g. `.records[2].data`).
pub fn parse_zone(z: &ZoneConfig, pops: &[PopConfig]) -> Result<ZoneSpec, Vec<ZoneError>> {
    let mut errs = Vec::new();
    let origin = match parse_origin(&z.origin) {
        Ok(o) => o,
        Err(m) => return Err(vec![ZoneError::new(".origin", m)]),
    };
    let soa = soa_rdata(z, &origin).map_err(|e| errs.push(e)).ok();
    for (k, v) in [
        ("refresh", z.soa.refresh),
        ("retry", z.soa.retry),
        ("expire", z.soa.expire),
    ] {
        if v < 0 {
            errs.push(ZoneError::new(format!(".soa.{k}"), "must not be negative"));
        }
    }
    if z.ns.is_empty() {
        errs.push(ZoneError::new(".ns", "a zone needs at least one NS name"));
    }
    let mut ns = Vec::with_capacity(z.ns.len());
    for (j, n) in z.ns.iter().enumerate() {
        match parse_name(n, &origin) {
            Ok(n) => ns.push(n),
            Err(m) => errs.push(ZoneError::new(format!(".ns[{j}]"), m)),
        }
    }
    // Owner -> (types, first record index) to catch CNAME clashes.
    let mut owners: BTreeMap<Vec<u8>, Vec<(RecordType, String)>> = BTreeMap::new();
    owners.entry(name_wire(&origin)).or_default().extend([
        (RecordType::SOA, ".soa".to_string()),
        (RecordType::NS, ".ns".to_string()),
    ]);
    let mut records = Vec::with_capacity(z.records.len());
    for (j, r) in z.records.iter().enumerate() {
        let k = |f: &str| format!(".records[{j}].{f}");
        let owner = parse_owner(&r.name, &origin);
        let rtype = parse_type(&r.rtype);
        if let Err(m) = &owner {
            errs.push(ZoneError::new(k("name"), m.clone()));
        }
        let data = match &rtype {
            Err(m) => {
                errs.push(ZoneError::new(k("type"), m.clone()));
                None
            }
            Ok(t) => match parse_rdata(*t, &r.data, &origin) {
                Ok(d) => Some(d),
                Err(m) => {
                    errs.push(ZoneError::new(k("data"), m));
                    None
                }
            },
        };
        if let (Ok(o), Ok(t)) = (&owner, rtype) {
            owners.entry(name_wire(o)).or_default().push((t, k("type")));
        }
        if let (Ok(owner), Some(data)) = (owner, data) {
            records.push(RecordSpec {
                owner,
                ttl: r.ttl.unwrap_or(z.ttl),
                data,
            });
        }
    }
    let mut steered = Vec::with_capacity(z.steered.len());
    for (j, s) in z.steered.iter().enumerate() {
        let k = |f: &str| format!(".steered[{j}].{f}");
        let owner = match parse_owner(&s.name, &origin) {
            Err(m) => {
                errs.push(ZoneError::new(k("name"), m));
                None
            }
            Ok(o) => {
                if o == origin {
                    errs.push(ZoneError::new(k("name"), "the zone apex cannot be steered"));
                }
                let e = owners.entry(name_wire(&o)).or_default();
                if e.iter()
                    .any(|(t, _)| *t == RecordType::A || *t == RecordType::AAAA)
                {
                    errs.push(ZoneError::new(
                        k("name"),
                        format!("`{}` also has static A/AAAA records", s.name),
                    ));
                }
                if let Some((_, other)) = e.iter().find(|(t, _)| *t == RecordType::Unknown(0)) {
                    errs.push(ZoneError::new(
                        k("name"),
                        format!("steered twice (also zones[]{other})"),
                    ));
                }
                e.push((RecordType::Unknown(0), k("name")));
                Some(o)
            }
        };
        if s.pops.is_empty() {
            errs.push(ZoneError::new(
                k("pops"),
                "needs addresses for at least one POP",
            ));
        }
        let mut answers = Vec::with_capacity(s.pops.len());
        for (pop, ans) in &s.pops {
            let key = format!(".steered[{j}].pops.{pop}");
            match pop_index(pops, pop) {
                Some(p) => answers.push((p, ans.a.clone(), ans.aaaa.clone())),
                None => {
                    let names: Vec<_> = pops.iter().map(|p| p.name.as_str()).collect();
                    errs.push(ZoneError::new(
                        key.clone(),
                        format!(
                            "`{pop}` is not one of the POPs in `pops` ({})",
                            names.join(", ")
                        ),
                    ));
                }
            }
            if ans.a.is_empty() && ans.aaaa.is_empty() {
                errs.push(ZoneError::new(key, "give `a` or `aaaa` addresses"));
            }
        }
        if let Some(owner) = owner {
            steered.push(SteeredSpec {
                owner,
                ttl: s.ttl,
                pops: answers,
            });
        }
    }
    for types in owners.values() {
        if let Some((_, key)) = types.iter().find(|(t, _)| *t == RecordType::CNAME) {
            if types.len() > 1 {
                errs.push(ZoneError::new(
                    key.clone(),
                    "a CNAME cannot share its name with other data (RFC 1034 §3.6.2)",
                ));
            }
        }
    }
    match soa {
        Some(soa) if errs.is_empty() => Ok(ZoneSpec {
            origin,
            ttl: z.ttl,
            soa,
            ns,
            records,
            steered,
        }),
        _ => Err(errs),
    }
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

fn soa_rdata(zc: &ZoneConfig, origin: &Name) -> Result<SOA, ZoneError> {
    let mname = parse_name(&zc.soa.mname, origin).map_err(|m| ZoneError::new(".soa.mname", m))?;
    // `hostmaster@example.net` -> `hostmaster.example.net.`
    let rname_text = match zc.soa.rname.split_once('@') {
        Some((user, dom)) => {
            format!("{}.{}", user.replace('.', "\\."), dom.trim_end_matches('.')) + "."
        }
        None => zc.soa.rname.clone(),
    };
    let rname = parse_name(&rname_text, origin).map_err(|m| ZoneError::new(".soa.rname", m))?;
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
