//! DNS request parsing and the decisions UDP and TCP share: the UDP loop
//! (`fast`) and the TCP server (`tcp`) both answer through `fast::respond`,
//! which calls this one module, so they accept, reject and answer alike.
//!
//! Parsing: the header, the one question (name lowercased, label offsets kept
//! for owner pointers), and the OPT record with ECS (RFC 6891, RFC 7871),
//! into a fixed-size [`Parsed`] on the stack (no allocation). The whole
//! message is walked even after a refusal (QDCOUNT 0, another opcode, a bad
//! ECS) or a malformed OPT, so that the query's OPT is known whenever the
//! walk reaches it and every reply to an EDNS query carries an OPT (RFC 6891
//! §7): see [`Parsed::opt`].
//!
//! Decisions ([`decide`] and the helpers after it), in this order:
//! - dropped: shorter than a header, or a response;
//! - FORMERR: malformed: a truncated question or section, more than one
//!   question (RFC 9619), two OPTs, a non-root OPT owner, OPT options
//!   overrunning the RDATA, two ECS options, bytes after the counted records;
//! - BADVERS: an EDNS version other than 0;
//! - NOTIMP: an opcode other than QUERY; FORMERR: no question (QDCOUNT 0), a
//!   malformed ECS option (RFC 7871 §7.1.1);
//! - the querier: the ECS address when ECS has a source prefix length above
//!   0, else the transport source;
//! - ECS is echoed (with the answer's scope) only on a query that parsed and
//!   was not BADVERS (RFC 7871 §7.2.1);
//! - the UDP size limit and the payload size we advertise.
//!
//! Talks to nobody: bytes in, decisions out; `answer` resolves and
//! `response` writes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::answer::Querier;
use super::iana::{hflag, rcode, ECS_CODE, OPT_DO_BYTE, TYPE_OPT};
use super::stats::EcsUse;

/// Most labels a 255-byte name can have.
const MAX_LABELS: usize = 128;

/// Why a query gets an error RCODE or is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    /// Drop silently (shorter than a header, or a response).
    Drop,
    /// Malformed (a section, the question, QDCOUNT over 1, the OPT record
    /// itself): FORMERR, before BADVERS.
    Malformed,
    /// Well-formed but refused with this RCODE (NOTIMP for an opcode other
    /// than QUERY; FORMERR for QDCOUNT 0 or a malformed ECS option); BADVERS
    /// comes first.
    Refuse(u16),
}

/// What we parsed from the query.
pub(super) struct Parsed {
    pub(super) id: u16,
    pub(super) flags: u16,
    /// End of the question section in the query (12 when no question was parsed).
    pub(super) question_end: usize,
    /// The question name.
    pub(super) name: QName,
    pub(super) qtype: u16,
    pub(super) qclass: u16,
    /// The query's OPT record, kept as soon as the walk through the
    /// additional section reaches an RR of type OPT whose RDATA lies within
    /// the message (the first one, if there are two), even when the query is
    /// then refused or found malformed: every reply to it carries an OPT
    /// (RFC 6891 §7). A query malformed before its OPT has none.
    pub(super) opt: Option<Opt>,
    /// An ECS option was present but malformed (refused with FORMERR).
    pub(super) ecs_malformed: bool,
}

#[derive(Clone, Copy)]
pub(super) struct Opt {
    pub(super) payload: u16,
    pub(super) version: u8,
    pub(super) dnssec_ok: bool,
    /// ECS as received: family, source, scope, address bytes (≤ 16).
    pub(super) ecs: Option<Ecs>,
}

#[derive(Clone, Copy)]
pub(super) struct Ecs {
    pub(super) family: u16,
    pub(super) source: u8,
    pub(super) addr: [u8; 16],
    pub(super) addr_len: usize,
}

impl Ecs {
    pub(super) fn ip(&self) -> IpAddr {
        if self.family == 1 {
            let mut b = [0u8; 4];
            b[..self.addr_len].copy_from_slice(&self.addr[..self.addr_len]);
            IpAddr::V4(Ipv4Addr::from(b))
        } else {
            let mut b = [0u8; 16];
            b[..self.addr_len].copy_from_slice(&self.addr[..self.addr_len]);
            IpAddr::V6(Ipv6Addr::from(b))
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Skip a (possibly compressed) name; the offset after it.
pub(super) fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *b.get(at)? as usize;
        match l & 0xC0 {
            0x00 if l == 0 => return Some(at + 1),
            0x00 => at += 1 + l,
            0xC0 => {
                b.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// Parse `q` into `p` (a fresh [`Parsed::new`]). On an error, `p` holds what
/// was parsed: the question (if `question_end > 12`) and the query's OPT
/// whenever the walk reached one (see [`Parsed::opt`]), even if a check
/// after it failed.
pub(super) fn parse(q: &[u8], p: &mut Parsed) -> Result<(), Bad> {
    if q.len() < 12 {
        return Err(Bad::Drop);
    }
    p.id = u16::from_be_bytes([q[0], q[1]]);
    p.flags = u16::from_be_bytes([q[2], q[3]]);
    if p.flags & hflag::QR != 0 {
        return Err(Bad::Drop);
    }
    let count = |i: usize| u16::from_be_bytes([q[4 + 2 * i], q[5 + 2 * i]]) as usize;
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    // The first refusal of a well-formed query (BADVERS comes before it),
    // and whether the message is malformed (FORMERR before anything else).
    let mut refuse = None;
    let mut malformed = false;
    if p.flags & hflag::OPCODE_MASK != 0 {
        refuse = Some(rcode::NOTIMP);
    }
    let mut at = 12;
    match qd {
        1 => {
            at = parse_question(q, p).ok_or(Bad::Malformed)?;
            p.question_end = at;
        }
        // More than one question: malformed (RFC 9619); none: refused below,
        // but the OPT is still looked for.
        0 => {
            refuse.get_or_insert(rcode::FORMERR);
        }
        _ => {
            for _ in 0..qd {
                at = skip_name(q, at).ok_or(Bad::Malformed)? + 4;
            }
            if at > q.len() {
                return Err(Bad::Malformed);
            }
            malformed = true;
        }
    }
    // Answer and authority sections: skipped (a query has none normally).
    for _ in 0..an + ns {
        at = skip_rr(q, at).ok_or(Bad::Malformed)?.2;
    }
    for _ in 0..ar {
        let name_at = at;
        let (rr, rd, end) = skip_rr(q, at).ok_or(Bad::Malformed)?;
        at = end;
        if be16(q, rr) != Some(TYPE_OPT) {
            continue;
        }
        // Found: remembered from here on, whatever fails next.
        if p.opt.is_some() {
            // Two OPTs (RFC 6891 §6.1.1); the first one stays.
            malformed = true;
            continue;
        }
        let mut opt = Opt {
            payload: be16(q, rr + 2).unwrap_or(0),
            version: q[rr + 5],
            dnssec_ok: q[rr + 6] & OPT_DO_BYTE != 0,
            ecs: None,
        };
        // Owned by the root (RFC 6891 §6.1.1).
        if rr != name_at + 1 || q[name_at] != 0 {
            malformed = true;
        }
        let mut o = rd;
        while o < end {
            let (Some(code), Some(olen)) = (be16(q, o), be16(q, o + 2)) else {
                malformed = true;
                break;
            };
            let d = o + 4;
            let dend = d + olen as usize;
            if dend > end {
                malformed = true;
                break;
            }
            if code == ECS_CODE {
                if opt.ecs.is_some() {
                    malformed = true;
                } else {
                    match parse_ecs(&q[d..dend]) {
                        Some(e) => opt.ecs = Some(e),
                        None => {
                            p.ecs_malformed = true;
                            refuse.get_or_insert(rcode::FORMERR);
                        }
                    }
                }
            }
            o = dend;
        }
        p.opt = Some(opt);
    }
    // Bytes after the counted records: malformed (Knot and BIND say FORMERR).
    if malformed || at != q.len() {
        return Err(Bad::Malformed);
    }
    refuse.map_or(Ok(()), |rc| Err(Bad::Refuse(rc)))
}

/// The one question at offset 12 into `p` (name lowercased, no compression:
/// nothing to point back to); the offset after it, `None` if malformed.
fn parse_question(q: &[u8], p: &mut Parsed) -> Option<usize> {
    let mut at = 12;
    p.name.clear();
    loop {
        let l = *q.get(at)? as usize;
        if l & 0xC0 != 0 {
            return None;
        }
        let label = q.get(at + 1..at + 1 + l)?;
        if !p.name.push_label(label) {
            return None;
        }
        at += 1 + l;
        if l == 0 {
            break;
        }
    }
    p.qtype = be16(q, at)?;
    p.qclass = be16(q, at + 2)?;
    Some(at + 4)
}

/// Skip the resource record at `at`: where its TYPE and its RDATA start,
/// and where it ends (within `q`).
fn skip_rr(q: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    let rr = skip_name(q, at)?;
    let len = be16(q, rr + 8)? as usize;
    let rd = rr + 10;
    let end = rd + len;
    (end <= q.len()).then_some((rr, rd, end))
}

/// RFC 7871 §6: FAMILY 1/2, SOURCE within the family, exactly ceil(SOURCE/8)
/// address bytes, no bits set beyond SOURCE.
fn parse_ecs(d: &[u8]) -> Option<Ecs> {
    if d.len() < 4 {
        return None;
    }
    let family = u16::from_be_bytes([d[0], d[1]]);
    let source = d[2];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max {
        return None;
    }
    let addr = &d[4..];
    let n = (source as usize).div_ceil(8);
    if addr.len() != n {
        return None;
    }
    if n > 0 && source % 8 != 0 && addr[n - 1] & (0xFF >> (source % 8)) != 0 {
        return None;
    }
    let mut a = [0u8; 16];
    a[..n].copy_from_slice(addr);
    Some(Ecs {
        family,
        source,
        addr: a,
        addr_len: n,
    })
}

impl Parsed {
    pub(super) fn new() -> Parsed {
        Parsed {
            id: 0,
            flags: 0,
            question_end: 12,
            name: QName {
                bytes: [0; 256],
                len: 0,
                labels: [0; MAX_LABELS],
                nlabels: 0,
            },
            qtype: 0,
            qclass: 0,
            opt: None,
            ecs_malformed: false,
        }
    }

    /// The question name (lowercase wire form).
    #[inline]
    pub(super) fn qname(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

/// A question name being parsed: its lowercase wire form (at most 255 bytes)
/// and where each of its labels starts (for owner-suffix pointers).
pub(super) struct QName {
    bytes: [u8; 256],
    len: usize,
    labels: [u8; MAX_LABELS],
    nlabels: usize,
}

impl QName {
    fn clear(&mut self) {
        self.len = 0;
        self.nlabels = 0;
    }

    /// Append `label` (its bytes, lowercased); `false`: the name would be
    /// over 255 bytes or [`MAX_LABELS`] labels.
    #[inline]
    fn push_label(&mut self, label: &[u8]) -> bool {
        let (at, l) = (self.len, label.len());
        if at + 1 + l > 255 || self.nlabels >= MAX_LABELS {
            return false;
        }
        self.labels[self.nlabels] = at as u8;
        self.nlabels += 1;
        self.bytes[at] = l as u8;
        for (d, c) in self.bytes[at + 1..at + 1 + l].iter_mut().zip(label) {
            *d = c.to_ascii_lowercase();
        }
        self.len = at + 1 + l;
        true
    }

    /// The name (lowercase wire form).
    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Where each label starts in [`QName::as_bytes`]: the name's suffixes.
    #[inline]
    pub(super) fn label_starts(&self) -> &[u8] {
        &self.labels[..self.nlabels]
    }
}

/// What to do with a query, decided from its parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Send nothing.
    Drop,
    /// Answer with this RCODE and no records (FORMERR, NOTIMP, BADVERS).
    Error(u16),
    /// Resolve the question for this querier.
    Resolve(Querier),
}

/// The one decision on a parsed query from `src` (the transport source,
/// canonical), for UDP and TCP alike: drop; FORMERR for a malformed message;
/// BADVERS for an EDNS version other than 0 (before any other refusal, as
/// Knot does: options of an unknown version are not read); the refusal
/// (NOTIMP, FORMERR for QDCOUNT 0 or a bad ECS); or resolve for the querier
/// (the ECS address when its source prefix length is above 0, else `src`).
#[inline]
pub(super) fn decide(parsed: Result<(), Bad>, p: &Parsed, src: IpAddr) -> Decision {
    match parsed {
        Err(Bad::Drop) => Decision::Drop,
        Err(Bad::Malformed) => Decision::Error(rcode::FORMERR),
        _ if p.opt.is_some_and(|o| o.version != 0) => Decision::Error(rcode::BADVERS),
        Err(Bad::Refuse(rc)) => Decision::Error(rc),
        Ok(()) => Decision::Resolve(match p.opt.and_then(|o| o.ecs) {
            Some(e) if e.source > 0 => Querier::Ecs(e.ip(), e.source),
            _ => Querier::Source(src),
        }),
    }
}

/// How the query used ECS, for the counters.
#[inline]
pub(super) fn ecs_use(p: &Parsed) -> EcsUse {
    match p.opt.and_then(|o| o.ecs) {
        _ if p.ecs_malformed => EcsUse::Malformed,
        Some(e) if e.source > 0 => EcsUse::Used,
        Some(_) => EcsUse::ZeroSource,
        None => EcsUse::None,
    }
}

/// The RCODE to send: an extended RCODE needs an OPT to carry its high bits,
/// so without one it becomes SERVFAIL (only BADVERS is extended, and it only
/// arises with an OPT; kept as a guard).
#[inline]
pub(super) fn wire_rcode(p: &Parsed, rcode: u16) -> u16 {
    if p.opt.is_none() && rcode > 15 {
        rcode::SERVFAIL
    } else {
        rcode
    }
}

/// The ECS option to echo in the reply's OPT: the query's, only on a query
/// that parsed (`parsed_ok`) and was not BADVERS (RFC 7871 §7.2.1); FORMERR
/// gets none.
#[inline]
pub(super) fn echo_ecs(opt: &Opt, parsed_ok: bool, rcode: u16) -> Option<Ecs> {
    opt.ecs.filter(|_| parsed_ok && rcode != rcode::BADVERS)
}

/// The UDP payload size we advertise in the reply's OPT (at least 512).
#[inline]
pub(super) fn our_payload(max_udp_payload: u16) -> u16 {
    max_udp_payload.max(512)
}

/// Largest UDP reply with EDNS: the client's payload size, at least 512 and
/// at most [`our_payload`].
#[inline]
pub(super) fn udp_payload(opt: &Opt, max_udp_payload: u16) -> u16 {
    opt.payload.clamp(512, our_payload(max_udp_payload))
}
