//! UPDATE validation and decoding (RFC 4271 §4.3/§6.3, RFC 4760, RFC 6793,
//! RFC 7606, RFC 1997, RFC 4360, RFC 8092, RFC 4456, RFC 4724).
//!
//! # Error handling
//!
//! Session reset (returned as `Err`, the NOTIFICATION to send):
//!
//! | problem | NOTIFICATION | why |
//! | --- | --- | --- |
//! | Withdrawn Routes Length or Total Path Attribute Length overruns the message (the NLRI field cannot be located) | 3/1 Malformed Attribute List | RFC 4271 §6.3; RFC 7606 §4 relies on these lengths, so nothing can be trusted when they overrun |
//! | an attribute header or value overruns the path attributes | treat-as-withdraw (NLRI field and any MP_REACH parsed before it) | RFC 7606 §4: "treat-as-withdraw MUST be used", the Total Path Attribute Length locating the NLRI; MP attributes SHALL be first (§5.1) |
//! | MP_REACH_NLRI or MP_UNREACH_NLRI more than once | 3/1 Malformed Attribute List | RFC 7606 §3 g |
//! | a prefix with a length beyond 32/128 or whose bytes overrun its field, in the Withdrawn Routes or NLRI fields **or** inside MP_REACH/MP_UNREACH | 3/10 Invalid Network Field | RFC 4271 §6.3 (NLRI syntax); RFC 7606 §5.3 requires a reset for these; one code for every prefix-syntax error whatever field carries it |
//! | MP_REACH/MP_UNREACH too short, next-hop length not 4 (AFI 1) or 16/32 (AFI 2) | 3/9 Optional Attribute Error, data = the attribute | RFC 4760 §7 / RFC 7606 §7.11: the MP attributes cannot be treat-as-withdraw'n since they carry the NLRI |
//! | MP_REACH/MP_UNREACH with wrong Optional/Transitive flags | 3/4 Attribute Flags Error, data = the attribute | RFC 4271 §6.3; RFC 7606 §3 c makes it "malformed", and malformed MP attributes reset |
//! | unrecognised well-known attribute (Optional bit clear) | 3/2, data = the attribute | RFC 4271 §6.3 |
//!
//! MP_REACH/MP_UNREACH for a family we do not know (SAFI other than 1, AFI other
//! than 1/2) or did not negotiate (`ctx.afis`) are ignored with a warning rather
//! than reset: RFC 4760 §7 lets a speaker ignore them, and resetting a full-table
//! session for an unexpected family would be a needless outage.
//!
//! Treat-as-withdraw (RFC 7606 §2): every prefix this UPDATE announces (NLRI field
//! and accepted MP_REACH) moves to `withdrawn` of its family, `announced` is
//! emptied and `attrs` is `None`. Used for: malformed ORIGIN/AS_PATH/NEXT_HOP/
//! MED/LOCAL_PREF/COMMUNITIES/ORIGINATOR_ID/CLUSTER_LIST/EXTENDED/LARGE
//! COMMUNITIES (wrong flags or length), invalid ORIGIN value, AS_CONFED segments
//! from an eBGP peer, missing ORIGIN/AS_PATH (and NEXT_HOP with IPv4 NLRI, and
//! LOCAL_PREF on iBGP) when something is announced, and a semantically invalid
//! next hop. Attribute discard: duplicates (all but the first), malformed
//! ATOMIC_AGGREGATE/AGGREGATOR/AS4_PATH/AS4_AGGREGATOR, AS4_* on 4-octet
//! sessions, LOCAL_PREF/ORIGINATOR_ID/CLUSTER_LIST from eBGP peers. A NEXT_HOP
//! attribute in an UPDATE without IPv4 NLRI field is ignored (RFC 4760 §3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::iana::safi;
use super::{attr, code, flag, update_err, DecodedUpdate, UpdateCtx, WireError, AS_TRANS};
use crate::types::{
    Afi, AsPath, AsSegment, Origin, PathAttrs, Prefix, RawAttr, AS_CONFED_SEQUENCE, AS_CONFED_SET,
    AS_SEQUENCE, AS_SET,
};

const WELL_KNOWN: u8 = flag::TRANSITIVE;
const OPT_TRANS: u8 = flag::OPTIONAL | flag::TRANSITIVE;
const OPT_NON_TRANS: u8 = flag::OPTIONAL;

fn update_error(subcode: u8, data: &[u8], msg: impl Into<String>) -> WireError {
    WireError::new(code::UPDATE, subcode, data.to_vec(), msg)
}

fn malformed_list(msg: impl Into<String>) -> WireError {
    update_error(update_err::MALFORMED_ATTR_LIST, &[], msg)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The value of a fixed-size attribute, or `None` (malformed) when its flags
/// are not `want` or its length is not `N`.
#[inline]
fn fixed_attr<const N: usize>(fl: u8, want: u8, value: &[u8]) -> Option<[u8; N]> {
    if fl == want {
        value.try_into().ok()
    } else {
        None
    }
}

/// The items of a list attribute (`size` bytes each), or `None` (malformed)
/// when its flags are not `want` or its length is not a non-zero multiple of
/// `size` (RFC 7606 §7.8, §7.10, §7.14; RFC 8092 §5).
#[inline]
fn list_attr<T>(
    fl: u8,
    want: u8,
    value: &[u8],
    size: usize,
    item: impl Fn(&[u8]) -> T,
) -> Option<Vec<T>> {
    (fl == want && !value.is_empty() && value.len() % size == 0)
        .then(|| value.chunks_exact(size).map(item).collect())
}

/// Scan a prefix field, returning the number of prefixes, or `None` if a prefix
/// is longer than `max_bits` or overruns the field.
fn count_prefixes(mut b: &[u8], max_bits: u8) -> Option<usize> {
    let mut n = 0;
    while let [len, rest @ ..] = b {
        if *len > max_bits {
            return None;
        }
        let nb = (*len as usize).div_ceil(8);
        b = rest.get(nb..)?;
        n += 1;
    }
    Some(n)
}

fn invalid_network(what: &str) -> WireError {
    update_error(
        update_err::INVALID_NETWORK_FIELD,
        &[],
        format!("invalid prefix in {what}"),
    )
}

/// A prefix's address bytes (`len.div_ceil(8)` of them, at most N), zero-padded.
#[inline]
fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a[..bytes.len()].copy_from_slice(bytes);
    a
}

/// Decode a field of IPv4 or IPv6 prefixes (RFC 4271 §4.3 encoding) into `out`.
/// Host bits beyond the length are cleared. Errors are 3/10.
fn parse_prefixes(
    field: &[u8],
    afi: Afi,
    out: &mut Vec<Prefix>,
    what: &str,
) -> Result<(), WireError> {
    let max_bits = match afi {
        Afi::Ipv4 => 32,
        Afi::Ipv6 => 128,
    };
    let n = count_prefixes(field, max_bits).ok_or_else(|| invalid_network(what))?;
    out.reserve(n);
    let mut b = field;
    while let [len, rest @ ..] = b {
        let len = *len;
        let nb = (len as usize).div_ceil(8);
        let (Some(bytes), Some(tail)) = (rest.get(..nb), rest.get(nb..)) else {
            return Err(invalid_network(what));
        };
        b = tail;
        // `Prefix::v4`/`v6` clear the host bits past `len`.
        let p = match afi {
            Afi::Ipv4 => Prefix::v4(u32::from_be_bytes(padded(bytes)), len),
            Afi::Ipv6 => Prefix::v6(u128::from_be_bytes(padded(bytes)), len),
        };
        out.push(p.ok_or_else(|| invalid_network(what))?);
    }
    Ok(())
}

/// Parse AS_PATH / AS4_PATH segments with `asn_size` (2 or 4) byte ASNs.
/// Errors (RFC 7606 §7.2): truncated segment, zero-length segment, unknown type.
fn parse_as_path(v: &[u8], asn_size: usize) -> Result<AsPath, &'static str> {
    let mut segs = Vec::new();
    let mut b = v;
    while !b.is_empty() {
        let [kind, n, rest @ ..] = b else {
            return Err("truncated segment header");
        };
        let (kind, n) = (*kind, *n as usize);
        if !(AS_SET..=AS_CONFED_SET).contains(&kind) {
            return Err("unknown segment type");
        }
        if n == 0 {
            return Err("zero-length segment");
        }
        let Some(body) = rest.get(..n * asn_size) else {
            return Err("segment overruns the attribute");
        };
        let asns = if asn_size == 4 {
            body.chunks_exact(4).map(be32).collect()
        } else {
            body.chunks_exact(2).map(|c| be16(c) as u32).collect()
        };
        segs.push(AsSegment { kind, asns });
        b = &rest[n * asn_size..];
    }
    Ok(AsPath(segs))
}

fn is_confed(kind: u8) -> bool {
    kind == AS_CONFED_SEQUENCE || kind == AS_CONFED_SET
}

/// Reconstruct the AS path of a 2-octet session from AS_PATH and AS4_PATH
/// (RFC 6793 §4.2.3). `as4_path` must not contain confederation segments.
///
/// Counts use the best-path length rules (AS_SET = 1, confederation segments 0).
/// If AS_PATH counts fewer ASNs than AS4_PATH, AS4_PATH is ignored; otherwise
/// the leading AS_PATH entries needed to make up the difference (plus leading
/// or adjacent confederation segments) are prepended to AS4_PATH.
pub fn merge_as4_path(as_path: &AsPath, as4_path: &AsPath) -> AsPath {
    let n2 = as_path.path_len();
    let n4 = as4_path.path_len();
    if n2 < n4 {
        return as_path.clone();
    }
    let mut need = n2 - n4;
    let mut segs: Vec<AsSegment> = Vec::with_capacity(as_path.0.len() + as4_path.0.len());
    for s in &as_path.0 {
        if is_confed(s.kind) {
            // Leading, or adjacent to a prepended segment: kept.
            segs.push(s.clone());
            continue;
        }
        if need == 0 {
            break;
        }
        if s.kind == AS_SET {
            segs.push(s.clone());
            need -= 1;
        } else {
            let take = (need as usize).min(s.asns.len());
            segs.push(AsSegment {
                kind: s.kind,
                asns: s.asns[..take].to_vec(),
            });
            need -= take as u32;
        }
    }
    for s in &as4_path.0 {
        match segs.last_mut() {
            Some(l)
                if l.kind == AS_SEQUENCE
                    && s.kind == AS_SEQUENCE
                    && l.asns.len() + s.asns.len() <= 255 =>
            {
                l.asns.extend_from_slice(&s.asns)
            }
            _ => segs.push(s.clone()),
        }
    }
    AsPath(segs)
}

/// Whether an IPv4 next hop is unusable (RFC 4271 §6.3): 0/8, loopback,
/// multicast, class E and broadcast, or our own address.
fn bad_v4_next_hop(nh: Ipv4Addr, ctx: &UpdateCtx) -> bool {
    let o = nh.octets()[0];
    o == 0 || o == 127 || o >= 224 || ctx.local_addr == Some(IpAddr::V4(nh))
}

/// Whether an IPv6 global next hop is unusable: unspecified, loopback,
/// multicast, or our own address.
fn bad_v6_next_hop(nh: Ipv6Addr, ctx: &UpdateCtx) -> bool {
    nh.is_unspecified()
        || nh.is_loopback()
        || nh.is_multicast()
        || ctx.local_addr == Some(IpAddr::V6(nh))
}

/// Per-UPDATE scratch state of the attribute walk.
#[derive(Default)]
struct Walk {
    attrs: PathAttrs,
    seen: [u64; 4],
    attr_count: usize,
    have_origin: bool,
    have_as_path: bool,
    have_local_pref: bool,
    next_hop: Option<Ipv4Addr>,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
    mp_v4_nh: Option<Ipv4Addr>,
    mp_v6_nh: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
    /// Accepted MP_UNREACH: (family, had no prefixes) for End-of-RIB detection.
    mp_unreach: Option<(Afi, bool)>,
    /// Reasons for treat-as-withdraw (non-empty = withdraw).
    withdraw: Vec<String>,
    warnings: Vec<String>,
    /// Attributes discarded.
    discarded: u32,
}

impl Walk {
    fn withdraw(&mut self, why: String) {
        self.withdraw.push(why);
    }
    fn discard(&mut self, why: String) {
        self.discarded += 1;
        self.warnings.push(format!("attribute discarded: {why}"));
    }
    /// Marks `code` seen; returns whether it had been seen before.
    fn dup(&mut self, code: u8) -> bool {
        let (w, b) = ((code >> 6) as usize, 1u64 << (code & 63));
        let seen = self.seen[w] & b != 0;
        self.seen[w] |= b;
        seen
    }
}

/// Validate and decode an UPDATE body (after the header) per RFC 4271/4760/6793/7606.
/// `Err` means the session must be reset with `err.notification()`; RFC 7606
/// treat-as-withdraw and attribute-discard are applied inside, reported in
/// `warnings` and counted (`treat_as_withdraw`, `attributes_discarded`).
///
/// See the module documentation for which NOTIFICATION each error gives.
/// Never panics; work and allocation are linear in `body.len()`.
pub fn decode_update(body: &[u8], ctx: &UpdateCtx) -> Result<DecodedUpdate, WireError> {
    // Framing (RFC 4271 §6.3): every length must fit exactly.
    if body.len() < 4 {
        return Err(malformed_list("UPDATE shorter than 4 bytes"));
    }
    let wlen = be16(body) as usize;
    let Some(after_w) = body.get(2 + wlen..).filter(|r| r.len() >= 2) else {
        return Err(malformed_list(format!(
            "withdrawn routes length {wlen} overruns the message"
        )));
    };
    let withdrawn_field = &body[2..2 + wlen];
    let alen = be16(after_w) as usize;
    let Some(attr_field) = after_w.get(2..2 + alen) else {
        return Err(malformed_list(format!(
            "total path attribute length {alen} overruns the message"
        )));
    };
    let nlri_field = &after_w[2 + alen..];

    let mut out = DecodedUpdate::default();
    parse_prefixes(
        withdrawn_field,
        Afi::Ipv4,
        &mut out.v4.withdrawn,
        "withdrawn routes",
    )?;

    let mut w = Walk::default();
    walk_attrs(attr_field, !nlri_field.is_empty(), ctx, &mut w, &mut out)?;

    parse_prefixes(nlri_field, Afi::Ipv4, &mut out.v4.announced, "NLRI")?;

    // End-of-RIB (RFC 4724 §2).
    if body.len() == 4 {
        out.end_of_rib = Some(Afi::Ipv4);
    } else if let (1, Some((afi, true)), true, true) = (
        w.attr_count,
        w.mp_unreach,
        withdrawn_field.is_empty(),
        nlri_field.is_empty(),
    ) {
        out.end_of_rib = Some(afi);
    }

    finish(ctx, w, out, !nlri_field.is_empty())
}

fn walk_attrs(
    field: &[u8],
    has_nlri: bool,
    ctx: &UpdateCtx,
    w: &mut Walk,
    out: &mut DecodedUpdate,
) -> Result<(), WireError> {
    let mut b = field;
    while !b.is_empty() {
        // RFC 7606 §4: an attribute header or value that runs past the Total Path
        // Attribute Length is treat-as-withdraw; that length still locates the NLRI
        // field, and MP_REACH/MP_UNREACH, which SHALL come first (§5.1), are parsed.
        let (flags, code) = match b {
            [f, c, _, ..] => (*f, *c),
            _ => {
                w.withdraw("truncated path attribute header (RFC 7606 §4)".into());
                break;
            }
        };
        let (hlen, vlen) = if flags & flag::EXTENDED_LENGTH != 0 {
            match b {
                [_, _, l0, l1, ..] => (4, u16::from_be_bytes([*l0, *l1]) as usize),
                _ => {
                    w.withdraw("truncated path attribute header (RFC 7606 §4)".into());
                    break;
                }
            }
        } else {
            (3, b[2] as usize)
        };
        let Some(raw) = b.get(..hlen + vlen) else {
            w.withdraw(format!(
                "attribute {code} length {vlen} overruns the path attributes (RFC 7606 §4)"
            ));
            break;
        };
        b = &b[hlen + vlen..];
        let value = &raw[hlen..];
        w.attr_count += 1;

        if w.dup(code) {
            if code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI {
                return Err(malformed_list(format!(
                    "attribute {code} (MP_REACH/MP_UNREACH) repeated"
                )));
            }
            w.discard(format!("duplicate attribute {code} (RFC 7606 §3 g)"));
            continue;
        }
        let fl = flags & (flag::OPTIONAL | flag::TRANSITIVE);
        match code {
            attr::ORIGIN => {
                w.have_origin = true;
                if fl != WELL_KNOWN || value.len() != 1 {
                    w.withdraw("malformed ORIGIN (RFC 7606 §7.1)".into());
                } else if let Some(o) = Origin::from_code(value[0]) {
                    w.attrs.origin = o;
                } else {
                    w.withdraw(format!("invalid ORIGIN {} (RFC 7606 §7.1)", value[0]));
                }
            }
            attr::AS_PATH => {
                w.have_as_path = true;
                if fl != WELL_KNOWN {
                    w.withdraw("AS_PATH with wrong flags (RFC 7606 §3 c)".into());
                    continue;
                }
                match parse_as_path(value, if ctx.as4 { 4 } else { 2 }) {
                    Err(why) => w.withdraw(format!("malformed AS_PATH: {why} (RFC 7606 §7.2)")),
                    Ok(p) if ctx.ebgp && p.0.iter().any(|s| is_confed(s.kind)) => w.withdraw(
                        "AS_PATH with confederation segment from eBGP peer (RFC 7606 §7.2)".into(),
                    ),
                    Ok(p) => w.attrs.as_path = p,
                }
            }
            attr::NEXT_HOP => {
                if !has_nlri {
                    // RFC 4760 §3: ignored without IPv4 NLRI field.
                    continue;
                }
                if fl != WELL_KNOWN || value.len() != 4 {
                    w.withdraw("malformed NEXT_HOP (RFC 7606 §7.3)".into());
                    // Counts as present: the withdraw reason already covers it.
                    w.next_hop = Some(Ipv4Addr::UNSPECIFIED);
                    continue;
                }
                let nh = Ipv4Addr::from(be32(value));
                if bad_v4_next_hop(nh, ctx) {
                    w.withdraw(format!(
                        "invalid NEXT_HOP {nh} (RFC 4271 §6.3, RFC 7606 §7.3)"
                    ));
                }
                w.next_hop = Some(nh);
            }
            attr::MED => match fixed_attr(fl, OPT_NON_TRANS, value) {
                Some(v) => w.attrs.med = Some(u32::from_be_bytes(v)),
                None => w.withdraw("malformed MULTI_EXIT_DISC (RFC 7606 §7.4)".into()),
            },
            attr::LOCAL_PREF => {
                if ctx.ebgp {
                    w.discard("LOCAL_PREF from eBGP peer (RFC 7606 §7.5)".into());
                    continue;
                }
                w.have_local_pref = true;
                match fixed_attr(fl, WELL_KNOWN, value) {
                    Some(v) => w.attrs.local_pref = Some(u32::from_be_bytes(v)),
                    None => w.withdraw("malformed LOCAL_PREF (RFC 7606 §7.5)".into()),
                }
            }
            attr::ATOMIC_AGGREGATE => {
                if fl != WELL_KNOWN || !value.is_empty() {
                    w.discard("malformed ATOMIC_AGGREGATE (RFC 7606 §7.6)".into());
                } else {
                    w.attrs.atomic_aggregate = true;
                }
            }
            attr::AGGREGATOR => {
                let want = if ctx.as4 { 8 } else { 6 };
                if fl != OPT_TRANS || value.len() != want {
                    w.discard("malformed AGGREGATOR (RFC 7606 §7.7)".into());
                } else if ctx.as4 {
                    w.attrs.aggregator = Some((be32(value), Ipv4Addr::from(be32(&value[4..]))));
                } else {
                    let asn = be16(value) as u32;
                    w.attrs.aggregator = Some((asn, Ipv4Addr::from(be32(&value[2..]))));
                }
            }
            attr::COMMUNITIES => match list_attr(fl, OPT_TRANS, value, 4, be32) {
                Some(v) => w.attrs.communities = v,
                None => w.withdraw("malformed COMMUNITIES (RFC 7606 §7.8)".into()),
            },
            attr::ORIGINATOR_ID if ctx.ebgp => {
                w.discard("ORIGINATOR_ID from eBGP peer (RFC 4456, RFC 7606 §7.9)".into())
            }
            attr::ORIGINATOR_ID => match fixed_attr::<4>(fl, OPT_NON_TRANS, value) {
                Some(v) => w.attrs.originator_id = Some(Ipv4Addr::from(v)),
                None => w.withdraw("malformed ORIGINATOR_ID (RFC 7606 §7.9)".into()),
            },
            attr::CLUSTER_LIST if ctx.ebgp => {
                w.discard("CLUSTER_LIST from eBGP peer (RFC 4456, RFC 7606 §7.10)".into())
            }
            attr::CLUSTER_LIST => {
                match list_attr(fl, OPT_NON_TRANS, value, 4, |c| Ipv4Addr::from(be32(c))) {
                    Some(v) => w.attrs.cluster_list = v,
                    None => w.withdraw("malformed CLUSTER_LIST (RFC 7606 §7.10)".into()),
                }
            }
            attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => {
                mp_attr(code, fl, raw, value, ctx, w, out)?
            }
            attr::EXT_COMMUNITIES => {
                let ext = |c: &[u8]| (u64::from(be32(c)) << 32) | u64::from(be32(&c[4..]));
                match list_attr(fl, OPT_TRANS, value, 8, ext) {
                    Some(v) => w.attrs.ext_communities = v,
                    None => w.withdraw("malformed EXTENDED_COMMUNITIES (RFC 7606 §7.14)".into()),
                }
            }
            attr::AS4_PATH if ctx.as4 => {
                w.discard("AS4_PATH on a 4-octet session (RFC 6793 §4.1)".into())
            }
            attr::AS4_PATH if fl != OPT_TRANS => {
                w.discard("AS4_PATH with wrong flags (RFC 6793 §6)".into())
            }
            attr::AS4_PATH => match parse_as_path(value, 4) {
                Ok(mut p) => {
                    let n = p.0.len();
                    p.0.retain(|s| !is_confed(s.kind));
                    if p.0.len() != n {
                        w.warnings.push(
                            "confederation segments removed from AS4_PATH (RFC 6793 §6)".into(),
                        );
                    }
                    w.as4_path = Some(p);
                }
                Err(why) => w.discard(format!("malformed AS4_PATH: {why} (RFC 6793 §6)")),
            },
            attr::AS4_AGGREGATOR if ctx.as4 => {
                w.discard("AS4_AGGREGATOR on a 4-octet session (RFC 6793 §4.1)".into())
            }
            attr::AS4_AGGREGATOR => match fixed_attr::<8>(fl, OPT_TRANS, value) {
                Some(v) => w.as4_aggregator = Some((be32(&v), Ipv4Addr::from(be32(&v[4..])))),
                None => w.discard("malformed AS4_AGGREGATOR (RFC 6793 §6)".into()),
            },
            attr::LARGE_COMMUNITIES => {
                let large = |c: &[u8]| [be32(c), be32(&c[4..]), be32(&c[8..])];
                match list_attr(fl, OPT_TRANS, value, 12, large) {
                    Some(v) => w.attrs.large_communities = v,
                    None => w.withdraw("malformed LARGE_COMMUNITIES (RFC 8092 §5)".into()),
                }
            }
            _ => {
                if flags & flag::OPTIONAL == 0 {
                    return Err(update_error(
                        update_err::UNRECOGNIZED_WELL_KNOWN,
                        raw,
                        format!("unrecognized well-known attribute {code}"),
                    ));
                }
                w.attrs.other.push(RawAttr {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    code,
                    value: value.into(),
                });
            }
        }
    }
    Ok(())
}

/// The (AFI, SAFI) of an MP attribute as one of our families, or a warning.
fn mp_family(afi: u16, safi: u8, ctx: &UpdateCtx, w: &mut Walk, what: &str) -> Option<Afi> {
    match (Afi::from_code(afi), safi) {
        (Some(f), safi::UNICAST) if ctx.afis[f.index()] => Some(f),
        (Some(f), safi::UNICAST) => {
            w.warnings.push(format!(
                "{what} for {f} unicast, not negotiated: ignored (RFC 4760 §7)"
            ));
            None
        }
        _ => {
            w.warnings.push(format!(
                "{what} for unsupported AFI {afi} SAFI {safi}: ignored (RFC 4760 §7)"
            ));
            None
        }
    }
}

/// The checks MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) share: wrong flags
/// are 3/4; a malformed attribute is 3/9 with the attribute as data (`mp_err`).
fn mp_flags(fl: u8, raw: &[u8], what: &str) -> Result<(), WireError> {
    if fl != OPT_NON_TRANS {
        let why = format!("{what} with wrong flags");
        return Err(update_error(update_err::ATTR_FLAGS, raw, why));
    }
    Ok(())
}

fn mp_err(raw: &[u8], what: &str, why: &str) -> WireError {
    update_error(
        update_err::OPTIONAL_ATTR,
        raw,
        format!("malformed {what}: {why}"),
    )
}

/// MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760): the flags and length checks
/// they share, then the family. Withdrawn prefixes go to `out` and the
/// End-of-RIB marker to `w`; announced prefixes go to `out` and the next hop
/// to `w`. A next hop overrunning the attribute or of the wrong length is 3/9;
/// a family not negotiated is ignored with a warning.
fn mp_attr(
    code: u8,
    fl: u8,
    raw: &[u8],
    v: &[u8],
    ctx: &UpdateCtx,
    w: &mut Walk,
    out: &mut DecodedUpdate,
) -> Result<(), WireError> {
    let reach = code == attr::MP_REACH_NLRI;
    let what = if reach {
        "MP_REACH_NLRI"
    } else {
        "MP_UNREACH_NLRI"
    };
    mp_flags(fl, raw, what)?;
    let err = |why: &str| mp_err(raw, what, why);
    // AFI, SAFI; for MP_REACH also the next hop length and the reserved byte.
    if v.len() < if reach { 5 } else { 3 } {
        return Err(err("too short"));
    }
    if !reach {
        let Some(fam) = mp_family(be16(v), v[2], ctx, w, what) else {
            return Ok(());
        };
        let field = &v[3..];
        let list = match fam {
            Afi::Ipv4 => &mut out.v4.withdrawn,
            Afi::Ipv6 => &mut out.v6.withdrawn,
        };
        parse_prefixes(field, fam, list, what)?;
        w.mp_unreach = Some((fam, field.is_empty()));
        return Ok(());
    }
    let nh_len = v[3] as usize;
    let Some(nh) = v.get(4..4 + nh_len) else {
        return Err(err("next hop overruns the attribute"));
    };
    // One reserved byte (RFC 4760 §3) follows the next hop.
    let Some(nlri) = v.get(5 + nh_len..) else {
        return Err(err("next hop overruns the attribute"));
    };
    let Some(fam) = mp_family(be16(v), v[2], ctx, w, what) else {
        return Ok(());
    };
    match fam {
        Afi::Ipv4 => {
            if nh_len != 4 {
                return Err(err(&format!("IPv4 next hop length {nh_len}")));
            }
            let a = Ipv4Addr::from(be32(nh));
            if bad_v4_next_hop(a, ctx) {
                w.withdraw(format!(
                    "invalid MP_REACH_NLRI next hop {a} (RFC 7606 §7.11)"
                ));
            }
            w.mp_v4_nh = Some(a);
            parse_prefixes(nlri, Afi::Ipv4, &mut out.v4.announced, what)?;
        }
        Afi::Ipv6 => {
            if nh_len != 16 && nh_len != 32 {
                return Err(err(&format!("IPv6 next hop length {nh_len}")));
            }
            let mut g = [0u8; 16];
            g.copy_from_slice(&nh[..16]);
            let global = Ipv6Addr::from(g);
            let ll = if nh_len == 32 {
                let mut l = [0u8; 16];
                l.copy_from_slice(&nh[16..]);
                Some(Ipv6Addr::from(l)).filter(|a| !a.is_unspecified())
            } else {
                None
            };
            if bad_v6_next_hop(global, ctx) {
                w.withdraw(format!(
                    "invalid MP_REACH_NLRI next hop {global} (RFC 7606 §7.11)"
                ));
            }
            w.mp_v6_nh = Some((global, ll));
            parse_prefixes(nlri, Afi::Ipv6, &mut out.v6.announced, what)?;
        }
    }
    Ok(())
}

/// Mandatory-attribute checks, AS4 merging, treat-as-withdraw and per-family attributes.
fn finish(
    ctx: &UpdateCtx,
    mut w: Walk,
    mut out: DecodedUpdate,
    has_nlri: bool,
) -> Result<DecodedUpdate, WireError> {
    let announces = !out.v4.announced.is_empty() || !out.v6.announced.is_empty();
    if announces {
        // RFC 7606 §3 d: missing well-known mandatory attributes.
        if !w.have_origin {
            w.withdraw("missing ORIGIN (RFC 7606 §3 d)".into());
        }
        if !w.have_as_path {
            w.withdraw("missing AS_PATH (RFC 7606 §3 d)".into());
        }
        if has_nlri && w.next_hop.is_none() {
            w.withdraw("missing NEXT_HOP (RFC 7606 §3 d)".into());
        }
        if !ctx.ebgp && !w.have_local_pref {
            w.withdraw("missing LOCAL_PREF from iBGP peer (RFC 7606 §3 d)".into());
        }
        if let (true, Some(a), Some(b)) = (has_nlri, w.next_hop, w.mp_v4_nh) {
            if a != b && !out.v4.announced.is_empty() {
                w.withdraw(format!(
                    "conflicting IPv4 next hops {a} (NEXT_HOP) and {b} (MP_REACH_NLRI)"
                ));
            }
        }
    }

    out.attributes_discarded = w.discarded;
    if !w.withdraw.is_empty() {
        out.treat_as_withdraw = true;
        for why in w.withdraw.drain(..) {
            w.warnings.push(format!("treat-as-withdraw: {why}"));
        }
        let v4 = std::mem::take(&mut out.v4.announced);
        out.v4.withdrawn.extend(v4);
        let v6 = std::mem::take(&mut out.v6.announced);
        out.v6.withdrawn.extend(v6);
        out.warnings = w.warnings;
        return Ok(out);
    }

    // RFC 6793 §4.2.3: AS4 reconstruction on 2-octet sessions. Only when
    // AGGREGATOR and AS4_AGGREGATOR are both received and AGGREGATOR is not
    // AS_TRANS (aggregated by an OLD speaker) are AS4_PATH and
    // AS4_AGGREGATOR ignored; otherwise AS4_AGGREGATOR replaces an AS_TRANS
    // AGGREGATOR and AS4_PATH is merged, as BIRD does.
    if !ctx.as4 {
        let agg_trans = w.attrs.aggregator.map(|(a, _)| a == AS_TRANS);
        if agg_trans == Some(false) && w.as4_aggregator.is_some() {
            w.warnings.push(
                "AS4_PATH/AS4_AGGREGATOR ignored: AGGREGATOR is not AS_TRANS (RFC 6793 §4.2.3)"
                    .into(),
            );
        } else {
            if let (Some(true), Some(a4)) = (agg_trans, w.as4_aggregator) {
                w.attrs.aggregator = Some(a4);
            }
            if let Some(p4) = w.as4_path.take() {
                if w.attrs.as_path.path_len() < p4.path_len() {
                    w.warnings
                        .push("AS4_PATH longer than AS_PATH: ignored (RFC 6793 §4.2.3)".into());
                } else {
                    w.attrs.as_path = merge_as4_path(&w.attrs.as_path, &p4);
                }
            }
        }
    }
    out.warnings = w.warnings;

    let v4_nh = if has_nlri { w.next_hop } else { w.mp_v4_nh };
    let need4 = !out.v4.announced.is_empty();
    let need6 = !out.v6.announced.is_empty();
    let mut base = w.attrs;
    match (need4, need6) {
        (true, true) => {
            let mut a6 = base.clone();
            set_v6_nh(&mut a6, w.mp_v6_nh);
            out.v6.attrs = Some(Arc::new(a6));
            base.next_hop = v4_nh.map(IpAddr::V4);
            out.v4.attrs = Some(Arc::new(base));
        }
        (true, false) => {
            base.next_hop = v4_nh.map(IpAddr::V4);
            out.v4.attrs = Some(Arc::new(base));
        }
        (false, true) => {
            set_v6_nh(&mut base, w.mp_v6_nh);
            out.v6.attrs = Some(Arc::new(base));
        }
        (false, false) => {}
    }
    Ok(out)
}

fn set_v6_nh(a: &mut PathAttrs, nh: Option<(Ipv6Addr, Option<Ipv6Addr>)>) {
    if let Some((g, ll)) = nh {
        a.next_hop = Some(IpAddr::V6(g));
        a.next_hop_ll = ll;
    }
}
