//! UPDATE encoding for export (RFC 4271, RFC 4760, RFC 6793, RFC 8654).

use std::net::{IpAddr, Ipv6Addr};

use super::{attr, finish_msg, flag, msg, start_msg, EncodeCtx, AS_TRANS, MAX_EXT_MSG_LEN};
use crate::types::{Afi, AsPath, PathAttrs, Prefix, AS_CONFED_SEQUENCE, AS_CONFED_SET};

/// Why an announcement could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("no usable {0} next hop in the path attributes")]
    NextHop(Afi),
    #[error("path attributes ({0} bytes) leave no room for NLRI in {1}-byte messages")]
    TooLarge(usize, usize),
}

/// Fixed part of an UPDATE: header + withdrawn length + attribute length.
const FIXED: usize = 19 + 2 + 2;
/// Largest encoded prefix (IPv6 /128).
const MAX_PREFIX_BYTES: usize = 17;

fn prefix_bytes(p: &Prefix) -> usize {
    1 + (p.len() as usize).div_ceil(8)
}

fn put_prefix(out: &mut Vec<u8>, p: &Prefix) {
    let n = (p.len() as usize).div_ceil(8);
    out.push(p.len());
    match *p {
        Prefix::V4 { addr, .. } => out.extend_from_slice(&addr.to_be_bytes()[..n]),
        Prefix::V6 { addr, .. } => out.extend_from_slice(&addr.to_be_bytes()[..n]),
    }
}

fn attr_header_len(value_len: usize) -> usize {
    if value_len > 255 {
        4
    } else {
        3
    }
}

/// Append one attribute; the Extended Length flag is set iff the value exceeds 255 bytes.
fn put_attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    let flags = flags & !flag::EXTENDED_LENGTH;
    if value.len() > 255 {
        out.push(flags | flag::EXTENDED_LENGTH);
        out.push(code);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.push(flags);
        out.push(code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

fn put_attr_header(out: &mut Vec<u8>, flags: u8, code: u8, value_len: usize) {
    if value_len > 255 {
        out.push(flags | flag::EXTENDED_LENGTH);
        out.push(code);
        out.extend_from_slice(&(value_len as u16).to_be_bytes());
    } else {
        out.push(flags);
        out.push(code);
        out.push(value_len as u8);
    }
}

/// AS_PATH / AS4_PATH value. Segments longer than 255 ASNs are split; with
/// `four == false` ASNs above 65535 become AS_TRANS. With `skip_confed`,
/// confederation segments are left out (AS4_PATH, RFC 6793 §4.2.2).
fn as_path_value(path: &AsPath, four: bool, skip_confed: bool) -> Vec<u8> {
    let size = if four { 4 } else { 2 };
    let mut v = Vec::with_capacity(path.0.iter().map(|s| 2 + size * s.asns.len()).sum());
    for seg in &path.0 {
        if skip_confed && (seg.kind == AS_CONFED_SEQUENCE || seg.kind == AS_CONFED_SET) {
            continue;
        }
        for chunk in seg.asns.chunks(255) {
            v.push(seg.kind);
            v.push(chunk.len() as u8);
            for &a in chunk {
                if four {
                    v.extend_from_slice(&a.to_be_bytes());
                } else {
                    let a = u16::try_from(a).unwrap_or(AS_TRANS as u16);
                    v.extend_from_slice(&a.to_be_bytes());
                }
            }
        }
    }
    v
}

/// Encoded attributes in type-code order, split around MP_REACH_NLRI (code 14),
/// which is built per message because it carries the NLRI.
struct Attrs {
    before_mp: Vec<u8>,
    after_mp: Vec<u8>,
}

fn build_attrs(ctx: &EncodeCtx, afi: Afi, a: &PathAttrs) -> Result<Attrs, EncodeError> {
    const WK: u8 = flag::TRANSITIVE;
    const OT: u8 = flag::OPTIONAL | flag::TRANSITIVE;
    const ON: u8 = flag::OPTIONAL;
    let mut pieces: Vec<(u8, Vec<u8>)> = Vec::with_capacity(12 + a.other.len());
    let mut add = |code: u8, flags: u8, value: &[u8]| {
        let mut v = Vec::with_capacity(4 + value.len());
        put_attr(&mut v, flags, code, value);
        pieces.push((code, v));
    };

    add(attr::ORIGIN, WK, &[a.origin as u8]);
    add(
        attr::AS_PATH,
        WK,
        &as_path_value(&a.as_path, ctx.as4, false),
    );
    if !ctx.as4
        && a.as_path
            .0
            .iter()
            .filter(|s| s.kind != AS_CONFED_SEQUENCE && s.kind != AS_CONFED_SET)
            .any(|s| s.asns.iter().any(|&x| x > 0xffff))
    {
        add(attr::AS4_PATH, OT, &as_path_value(&a.as_path, true, true));
    }
    if afi == Afi::Ipv4 {
        match a.next_hop {
            Some(IpAddr::V4(nh)) => add(attr::NEXT_HOP, WK, &nh.octets()),
            _ => return Err(EncodeError::NextHop(afi)),
        }
    }
    if let Some(med) = a.med {
        add(attr::MED, ON, &med.to_be_bytes());
    }
    if let Some(lp) = a.local_pref {
        add(attr::LOCAL_PREF, WK, &lp.to_be_bytes());
    }
    if a.atomic_aggregate {
        add(attr::ATOMIC_AGGREGATE, WK, &[]);
    }
    if let Some((asn, addr)) = a.aggregator {
        let mut v = Vec::with_capacity(8);
        if ctx.as4 {
            v.extend_from_slice(&asn.to_be_bytes());
        } else {
            v.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS as u16).to_be_bytes());
        }
        v.extend_from_slice(&addr.octets());
        add(attr::AGGREGATOR, OT, &v);
        if !ctx.as4 && asn > 0xffff {
            let mut v = asn.to_be_bytes().to_vec();
            v.extend_from_slice(&addr.octets());
            add(attr::AS4_AGGREGATOR, OT, &v);
        }
    }
    if !a.communities.is_empty() {
        let v: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        add(attr::COMMUNITIES, OT, &v);
    }
    if let Some(id) = a.originator_id {
        add(attr::ORIGINATOR_ID, ON, &id.octets());
    }
    if !a.cluster_list.is_empty() {
        let v: Vec<u8> = a.cluster_list.iter().flat_map(|c| c.octets()).collect();
        add(attr::CLUSTER_LIST, ON, &v);
    }
    if !a.ext_communities.is_empty() {
        let v: Vec<u8> = a
            .ext_communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        add(attr::EXT_COMMUNITIES, OT, &v);
    }
    if !a.large_communities.is_empty() {
        let v: Vec<u8> = a
            .large_communities
            .iter()
            .flat_map(|c| c.iter().flat_map(|x| x.to_be_bytes()))
            .collect();
        add(attr::LARGE_COMMUNITIES, OT, &v);
    }
    for r in &a.other {
        // Only unrecognised optional transitive attributes are passed on, with
        // Partial set (RFC 4271 §5): non-transitive ones must not be propagated.
        // Codes the codec encodes itself are never taken from `other`.
        let transitive = flag::OPTIONAL | flag::TRANSITIVE;
        if r.flags & transitive == transitive && !attr::is_native(r.code) {
            add(r.code, r.flags | flag::PARTIAL, &r.value);
        }
    }
    if pieces.iter().any(|(_, v)| v.len() > 4 + u16::MAX as usize) {
        return Err(EncodeError::TooLarge(
            pieces.iter().map(|(_, v)| v.len()).sum(),
            ctx.max_len,
        ));
    }
    pieces.sort_by_key(|(c, _)| *c);
    let mut before_mp = Vec::new();
    let mut after_mp = Vec::new();
    for (c, v) in pieces {
        if c < attr::MP_REACH_NLRI {
            before_mp.extend_from_slice(&v);
        } else {
            after_mp.extend_from_slice(&v);
        }
    }
    Ok(Attrs {
        before_mp,
        after_mp,
    })
}

fn max_len(ctx: &EncodeCtx) -> usize {
    ctx.max_len.min(MAX_EXT_MSG_LEN)
}

/// Split `prefixes` into runs whose encoded size fits `room` bytes, calling `emit`
/// for each run with its encoded size.
fn chunks<'a>(prefixes: &'a [Prefix], room: usize, mut emit: impl FnMut(&'a [Prefix], usize)) {
    let mut start = 0;
    let mut size = 0;
    for (i, p) in prefixes.iter().enumerate() {
        let n = prefix_bytes(p);
        if size + n > room && i > start {
            emit(&prefixes[start..i], size);
            start = i;
            size = 0;
        }
        size += n;
    }
    if start < prefixes.len() {
        emit(&prefixes[start..], size);
    }
}

/// Like [`encode_announce`], but reports why nothing could be encoded. On
/// error nothing is appended. Returns the number of messages appended.
/// Prefixes not of family `afi` are skipped.
pub fn try_encode_announce(
    ctx: &EncodeCtx,
    afi: Afi,
    prefixes: &[Prefix],
    attrs: &PathAttrs,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let prefixes = of_family(prefixes, afi);
    let prefixes = &prefixes[..];
    if prefixes.is_empty() {
        return Ok(0);
    }
    let a = build_attrs(ctx, afi, attrs)?;
    let fixed_attrs = a.before_mp.len() + a.after_mp.len();
    let max = max_len(ctx);
    let mut count = 0;
    match afi {
        Afi::Ipv4 => {
            let room = max.saturating_sub(FIXED + fixed_attrs);
            if room < MAX_PREFIX_BYTES || fixed_attrs > u16::MAX as usize {
                return Err(EncodeError::TooLarge(fixed_attrs, ctx.max_len));
            }
            chunks(prefixes, room, |run, size| {
                out.reserve(FIXED + fixed_attrs + size);
                let s = start_msg(out, msg::UPDATE);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(fixed_attrs as u16).to_be_bytes());
                out.extend_from_slice(&a.before_mp);
                out.extend_from_slice(&a.after_mp);
                for p in run {
                    put_prefix(out, p);
                }
                finish_msg(out, s);
                count += 1;
            });
        }
        Afi::Ipv6 => {
            let (nh, ll) = match attrs.next_hop {
                Some(IpAddr::V6(g)) => (g, attrs.next_hop_ll),
                // An IPv4 next hop for IPv6 NLRI: IPv4-mapped (RFC 4291 §2.5.5.2).
                Some(IpAddr::V4(g)) => (g.to_ipv6_mapped(), None),
                None => return Err(EncodeError::NextHop(afi)),
            };
            let mut mp_head = Vec::with_capacity(37);
            mp_head.extend_from_slice(&Afi::Ipv6.code().to_be_bytes());
            mp_head.push(1);
            mp_head.push(if ll.is_some() { 32 } else { 16 });
            mp_head.extend_from_slice(&nh.octets());
            if let Some(ll) = ll {
                mp_head.extend_from_slice(&Ipv6Addr::octets(&ll));
            }
            mp_head.push(0);
            let room = max.saturating_sub(FIXED + fixed_attrs + 4 + mp_head.len());
            if room < MAX_PREFIX_BYTES {
                return Err(EncodeError::TooLarge(fixed_attrs, ctx.max_len));
            }
            chunks(prefixes, room, |run, size| {
                let mp_len = mp_head.len() + size;
                let attr_len = fixed_attrs + attr_header_len(mp_len) + mp_len;
                out.reserve(FIXED + attr_len);
                let s = start_msg(out, msg::UPDATE);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(attr_len as u16).to_be_bytes());
                out.extend_from_slice(&a.before_mp);
                put_attr_header(out, flag::OPTIONAL, attr::MP_REACH_NLRI, mp_len);
                out.extend_from_slice(&mp_head);
                for p in run {
                    put_prefix(out, p);
                }
                out.extend_from_slice(&a.after_mp);
                finish_msg(out, s);
                count += 1;
            });
        }
    }
    Ok(count)
}

/// Encode announcements of `prefixes` (all of family `afi`) with `attrs` as complete
/// UPDATE messages, each at most `ctx.max_len` bytes, appended to `out`.
/// IPv4 uses the NLRI field and NEXT_HOP; IPv6 uses MP_REACH_NLRI.
///
/// Attributes are in type-code order. On 2-octet sessions (`!ctx.as4`) ASNs above
/// 65535 become AS_TRANS and AS4_PATH / AS4_AGGREGATOR are added when needed.
/// From `attrs.other` only optional transitive attributes are sent (Partial bit
/// set). If nothing can be encoded (no next hop of the right family, attributes
/// too large for `ctx.max_len`), nothing is appended and a warning is logged; use
/// [`try_encode_announce`] to get the reason.
pub fn encode_announce(
    ctx: &EncodeCtx,
    afi: Afi,
    prefixes: &[Prefix],
    attrs: &PathAttrs,
    out: &mut Vec<u8>,
) {
    if let Err(e) = try_encode_announce(ctx, afi, prefixes, attrs, out) {
        tracing::warn!(%afi, prefixes = prefixes.len(), "cannot encode announcement: {e}");
    }
}

/// The prefixes of family `afi`, borrowed when they all are (the usual case).
fn of_family(prefixes: &[Prefix], afi: Afi) -> std::borrow::Cow<'_, [Prefix]> {
    if prefixes.iter().all(|p| p.afi() == afi) {
        std::borrow::Cow::Borrowed(prefixes)
    } else {
        prefixes
            .iter()
            .copied()
            .filter(|p| p.afi() == afi)
            .collect()
    }
}

/// Encode withdrawals of `prefixes` (all of family `afi`) as complete UPDATEs appended to `out`.
/// IPv4 uses the Withdrawn Routes field, IPv6 MP_UNREACH_NLRI; prefixes of the
/// other family are skipped.
pub fn encode_withdraw(ctx: &EncodeCtx, afi: Afi, prefixes: &[Prefix], out: &mut Vec<u8>) {
    let prefixes = of_family(prefixes, afi);
    let prefixes = &prefixes[..];
    // Smallest sensible message: room for at least one /128.
    let max = max_len(ctx).max(FIXED + 7 + MAX_PREFIX_BYTES);
    match afi {
        Afi::Ipv4 => chunks(prefixes, max - FIXED, |run, size| {
            out.reserve(FIXED + size);
            let s = start_msg(out, msg::UPDATE);
            out.extend_from_slice(&(size as u16).to_be_bytes());
            for p in run {
                put_prefix(out, p);
            }
            out.extend_from_slice(&[0, 0]);
            finish_msg(out, s);
        }),
        Afi::Ipv6 => chunks(prefixes, max - FIXED - 4 - 3, |run, size| {
            let mp_len = 3 + size;
            let attr_len = attr_header_len(mp_len) + mp_len;
            out.reserve(FIXED + attr_len);
            let s = start_msg(out, msg::UPDATE);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(attr_len as u16).to_be_bytes());
            put_attr_header(out, flag::OPTIONAL, attr::MP_UNREACH_NLRI, mp_len);
            out.extend_from_slice(&Afi::Ipv6.code().to_be_bytes());
            out.push(1);
            for p in run {
                put_prefix(out, p);
            }
            finish_msg(out, s);
        }),
    }
}

/// End-of-RIB marker for a family (RFC 4724 §2): an empty UPDATE for IPv4, an
/// UPDATE with only an empty MP_UNREACH_NLRI otherwise.
pub fn encode_end_of_rib(afi: Afi) -> Vec<u8> {
    let mut out = Vec::with_capacity(30);
    let s = start_msg(&mut out, msg::UPDATE);
    match afi {
        Afi::Ipv4 => out.extend_from_slice(&[0, 0, 0, 0]),
        Afi::Ipv6 => {
            out.extend_from_slice(&[0, 0, 0, 6]);
            put_attr(&mut out, flag::OPTIONAL, attr::MP_UNREACH_NLRI, &[0, 2, 1]);
        }
    }
    finish_msg(&mut out, s);
    out
}
