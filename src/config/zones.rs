//! Zones in the config: the `zones[]` schema (serde, as parsed) and
//! [`parse_zone`], the one function that parses and checks a zone's names,
//! types and record data (its zone file's records first, the YAML records
//! and steered names merged on top, conflicts reported with file, line and
//! owner), returning every error or a [`ZoneSpec`] (names and RDATA parsed,
//! steered POPs by index). Config validation reads the zone files and calls
//! it for the errors; `dns::zone` calls it for the spec it compiles.
//!
//! Talks to `schema` (the POP list), `zonefile` (zone files) and
//! hickory-proto (names, RDATA).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{CNAME, MX, NS, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};

use super::error::ZoneError;
use super::schema::{pop_index, PopConfig};
pub use super::zonefile::ZoneFile;

/// One authoritative zone.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The apex, e.g. `example.net` (a trailing dot is optional).
    pub origin: String,
    /// TTL of records that give none, and of the apex NS set.
    #[serde(default = "default_zone_ttl")]
    pub ttl: u32,
    /// The SOA (else the zone file's).
    #[serde(default)]
    pub soa: Option<SoaConfig>,
    /// Apex NS names (absolute, or relative to the origin); else the zone file's.
    #[serde(default)]
    pub ns: Vec<String>,
    /// An RFC 1035 master file with static records (relative to the config
    /// file); `records` and `steered` merge on top.
    #[serde(default)]
    pub file: Option<String>,
    /// The zone file as read at load (`validate`); compared on reload.
    #[serde(skip)]
    pub source: Option<ZoneFile>,
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
// Default timers within Zonemaster's recommendations (its Zone02–Zone06
// test cases): refresh at least 4 hours, retry at least 1 hour and below
// refresh, expire at least 1 week and 7 refreshes, minimum 5 minutes to 1 day.
fn default_refresh() -> i32 {
    14_400
}
fn default_retry() -> i32 {
    3_600
}
fn default_expire() -> i32 {
    1_209_600
}
fn default_minimum() -> u32 {
    300
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
    /// TTL of answers that are not the client's first-ranked POP (failover,
    /// shed, drained, all down); default `min(ttl, 10)`, at most `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_failover: Option<u32>,
    /// Per POP name: its addresses.
    pub pops: std::collections::BTreeMap<String, PopAnswers>,
}

/// `ttl_failover` when not given: `min(ttl, this)`.
pub const DEFAULT_TTL_FAILOVER: u32 = 10;

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

/// The distinct A and AAAA addresses of POP `pop` across every steered name
/// of `zones`: the POP's targets (health checks, the answer sets). The one
/// implementation; `crate::pops::pop_targets` and validation use it.
pub fn pop_targets(zones: &[ZoneConfig], pop: &str) -> Vec<std::net::IpAddr> {
    let mut out: Vec<std::net::IpAddr> = Vec::new();
    for s in zones.iter().flat_map(|z| &z.steered) {
        if let Some(ans) = s.pops.get(pop) {
            let addrs = ans
                .a
                .iter()
                .map(|&a| std::net::IpAddr::V4(a))
                .chain(ans.aaaa.iter().map(|&a| std::net::IpAddr::V6(a)));
            for a in addrs {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
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
    /// TTL of the SOA record (the zone's, or the file's SOA record's).
    pub soa_ttl: u32,
    /// Apex NS names, absolute (from `ns`; the file's apex NS are in `records`).
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
    /// `ttl_failover`, defaulted.
    pub ttl_failover: u32,
    /// (POP index in `pops`, its addresses), in POP-name order.
    pub pops: Vec<(usize, Vec<Ipv4Addr>, Vec<Ipv6Addr>)>,
}

/// Where an owner's data of one type came from, for conflict messages.
enum Src {
    /// A config key, relative to the zone (`.records[2].type`).
    Key(String),
    /// The zone file.
    File,
}

/// Owner (lowercase wire) -> its name and (type, source) pairs.
type Owners = BTreeMap<Vec<u8>, (Name, Vec<(RecordType, Src)>)>;

/// The zone file of a zone being parsed, to name lines in errors.
struct FileAt<'a> {
    file: Option<&'a ZoneFile>,
    origin: &'a Name,
    ttl: u32,
}

impl FileAt<'_> {
    /// `file:line` of the first `name`/`rtype` record of the zone file.
    fn at(&self, name: &Name, rtype: RecordType) -> (String, usize) {
        match self.file {
            Some(f) => (
                f.path.clone(),
                f.line_of(self.origin, self.ttl, name, rtype),
            ),
            None => (String::new(), 0),
        }
    }

    /// Where a source is, in words.
    fn describe(&self, name: &Name, rtype: RecordType, src: &Src) -> String {
        match src {
            Src::Key(k) => format!("zones[]{k}"),
            Src::File => {
                let (p, l) = self.at(name, rtype);
                format!("{rtype} in the zone file {p}:{l}")
            }
        }
    }

    /// An error at the zone file's line of `name`/`rtype`.
    fn error(&self, name: &Name, rtype: RecordType, msg: String) -> ZoneError {
        let (p, l) = self.at(name, rtype);
        ZoneError::new(".file", format!("`{name}`: {msg}")).at(p, l)
    }
}

/// The records of the zone file, checked: inside the zone, class IN, SOA
/// only at the apex. Errors name the file and line; `None`: the file did
/// not parse (nothing else is checked then).
fn file_records(z: &ZoneConfig, origin: &Name, errs: &mut Vec<ZoneError>) -> Option<Vec<Record>> {
    let Some(path) = &z.file else {
        return Some(Vec::new());
    };
    let Some(f) = &z.source else {
        errs.push(ZoneError::new(
            ".file",
            format!("zone file `{path}` was not read"),
        ));
        return None;
    };
    let fa = FileAt {
        file: Some(f),
        origin,
        ttl: z.ttl,
    };
    let records = match f.records(origin, z.ttl) {
        Ok(r) => r,
        Err((line, m)) => {
            errs.push(ZoneError::new(".file", m).at(f.path.clone(), line));
            return None;
        }
    };
    let mut ok = Vec::with_capacity(records.len());
    for mut r in records {
        let t = r.record_type();
        r.name = r.name.to_lowercase();
        let bad = if !origin.zone_of(&r.name) {
            Some(format!("not inside zone {origin}"))
        } else if r.dns_class != DNSClass::IN {
            Some(format!("class {} (only IN is served)", r.dns_class))
        } else if t == RecordType::SOA && r.name != *origin {
            Some("an SOA only at the zone apex".into())
        } else {
            None
        };
        match bad {
            Some(m) => errs.push(fa.error(&r.name, t, m)),
            None => ok.push(r),
        }
    }
    Some(ok)
}

/// Parse and check one zone against the POP list: the spec, or every error
/// (keys relative to the zone, e.g. `.records[2].data`; errors in the zone
/// file name its path and line). The zone file's records come first; YAML
/// records and steered names merge on top, and may not repeat an owner and
/// type the file has.
pub fn parse_zone(z: &ZoneConfig, pops: &[PopConfig]) -> Result<ZoneSpec, Vec<ZoneError>> {
    let mut errs = Vec::new();
    let origin = match parse_origin(&z.origin) {
        Ok(o) => o,
        Err(m) => return Err(vec![ZoneError::new(".origin", m)]),
    };
    let fa = FileAt {
        file: z.source.as_ref().filter(|_| z.file.is_some()),
        origin: &origin,
        ttl: z.ttl,
    };
    let Some(from_file) = file_records(z, &origin, &mut errs) else {
        return Err(errs);
    };
    let mut owners: Owners = BTreeMap::new();
    let note = |owners: &mut Owners, name: &Name, t: RecordType, src: Src| {
        let e = owners
            .entry(name_wire(name))
            .or_insert_with(|| (name.clone(), Vec::new()));
        e.1.push((t, src));
    };
    let mut records = Vec::with_capacity(z.records.len() + from_file.len());
    let mut file_soa = None;
    for r in from_file {
        let t = r.record_type();
        if !owners
            .get(&name_wire(&r.name))
            .is_some_and(|(_, ts)| ts.iter().any(|(x, _)| *x == t))
        {
            note(&mut owners, &r.name, t, Src::File);
        }
        match r.data {
            RData::SOA(soa) => file_soa = Some((soa, r.ttl)),
            data => records.push(RecordSpec {
                owner: r.name,
                ttl: r.ttl,
                data,
            }),
        }
    }
    let soa = match (&z.soa, file_soa) {
        (Some(_), Some(_)) => {
            let (p, l) = fa.at(&origin, RecordType::SOA);
            errs.push(ZoneError::new(
                ".soa",
                format!("the zone file {p}:{l} has the SOA already"),
            ));
            None
        }
        (None, None) => {
            errs.push(ZoneError::new(
                ".soa",
                "a zone needs an SOA: give `soa` or put one in `file`",
            ));
            None
        }
        (None, Some(s)) => Some(s),
        (Some(sc), None) => {
            for (k, v) in [
                ("refresh", sc.refresh),
                ("retry", sc.retry),
                ("expire", sc.expire),
            ] {
                if v < 0 {
                    errs.push(ZoneError::new(format!(".soa.{k}"), "must not be negative"));
                }
            }
            note(
                &mut owners,
                &origin,
                RecordType::SOA,
                Src::Key(".soa".into()),
            );
            soa_rdata(sc, &origin)
                .map_err(|e| errs.push(e))
                .ok()
                .map(|s| (s, z.ttl))
        }
    };
    let file_ns = owners
        .get(&name_wire(&origin))
        .and_then(|(_, ts)| ts.iter().find(|(t, _)| *t == RecordType::NS));
    match (z.ns.is_empty(), file_ns) {
        (true, None) => errs.push(ZoneError::new(
            ".ns",
            "a zone needs at least one NS name (in `ns` or in `file`)",
        )),
        (false, Some((t, src))) => errs.push(ZoneError::new(
            ".ns",
            format!(
                "the apex NS set is {} already",
                fa.describe(&origin, *t, src)
            ),
        )),
        (false, None) => note(&mut owners, &origin, RecordType::NS, Src::Key(".ns".into())),
        (true, Some(_)) => {}
    }
    let mut ns = Vec::with_capacity(z.ns.len());
    for (j, n) in z.ns.iter().enumerate() {
        match parse_name(n, &origin) {
            Ok(n) => ns.push(n),
            Err(m) => errs.push(ZoneError::new(format!(".ns[{j}]"), m)),
        }
    }
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
            let in_file = owners
                .get(&name_wire(o))
                .and_then(|(_, ts)| ts.iter().find(|(x, s)| *x == t && matches!(s, Src::File)));
            if let Some((_, src)) = in_file {
                errs.push(ZoneError::new(
                    k("type"),
                    format!("`{o}` {t}: the set is {} already", fa.describe(o, t, src)),
                ));
            }
            note(&mut owners, o, t, Src::Key(k("type")));
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
                let e = owners
                    .entry(name_wire(&o))
                    .or_insert_with(|| (o.clone(), Vec::new()));
                if let Some((t, src)) =
                    e.1.iter()
                        .find(|(t, _)| *t == RecordType::A || *t == RecordType::AAAA)
                {
                    errs.push(ZoneError::new(
                        k("name"),
                        format!(
                            "`{}` also has static A/AAAA records ({})",
                            s.name,
                            fa.describe(&o, *t, src)
                        ),
                    ));
                }
                if let Some((_, Src::Key(other))) =
                    e.1.iter().find(|(t, _)| *t == RecordType::Unknown(0))
                {
                    errs.push(ZoneError::new(
                        k("name"),
                        format!("steered twice (also zones[]{other})"),
                    ));
                }
                e.1.push((RecordType::Unknown(0), Src::Key(k("name"))));
                Some(o)
            }
        };
        let ttl_failover = s.ttl_failover.unwrap_or(s.ttl.min(DEFAULT_TTL_FAILOVER));
        if ttl_failover > s.ttl {
            errs.push(ZoneError::new(
                k("ttl_failover"),
                format!(
                    "must not exceed the name's ttl ({}): failover answers are the short-lived ones",
                    s.ttl
                ),
            ));
        }
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
                ttl_failover,
                pops: answers,
            });
        }
    }
    const MSG: &str = "a CNAME cannot share its name with other data (RFC 1034 §3.6.2)";
    for (name, types) in owners.values() {
        let Some((_, src)) = types.iter().find(|(t, _)| *t == RecordType::CNAME) else {
            continue;
        };
        let Some((t, other)) = types.iter().find(|(t, _)| *t != RecordType::CNAME) else {
            continue;
        };
        let also = fa.describe(name, *t, other);
        errs.push(match src {
            Src::Key(key) => ZoneError::new(key.clone(), format!("{MSG}; also {also}")),
            Src::File => fa.error(name, RecordType::CNAME, format!("{MSG}; also {also}")),
        });
    }
    match soa {
        Some((soa, soa_ttl)) if errs.is_empty() => Ok(ZoneSpec {
            origin,
            ttl: z.ttl,
            soa,
            soa_ttl,
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

fn soa_rdata(sc: &SoaConfig, origin: &Name) -> Result<SOA, ZoneError> {
    let mname = parse_name(&sc.mname, origin).map_err(|m| ZoneError::new(".soa.mname", m))?;
    // `hostmaster@example.net` -> `hostmaster.example.net.`
    let rname_text = match sc.rname.split_once('@') {
        Some((user, dom)) => {
            format!("{}.{}", user.replace('.', "\\."), dom.trim_end_matches('.')) + "."
        }
        None => sc.rname.clone(),
    };
    let rname = parse_name(&rname_text, origin).map_err(|m| ZoneError::new(".soa.rname", m))?;
    Ok(SOA::new(
        mname, rname, sc.serial, sc.refresh, sc.retry, sc.expire, sc.minimum,
    ))
}
