//! The reply writer of UDP and TCP alike: header, the question copied from the query
//! as asked, the answer's RRsets spliced from their precomputed wire bytes
//! (`zone::RrSet::tails`) behind 2-byte owner pointers into the question (a
//! steered set: only the records whose health target is up, with the TTL the
//! pick chose patched in; `answer::SteeredOut`), and
//! the OPT record (extended RCODE, DO, ECS echo with the answer's scope).
//!
//! Pure: writes into a caller's buffer (no allocation once it has grown).
//! What goes in (RCODE, ECS echo, size limits) is decided in `packet`; the
//! records come from `answer`. An EDNS query's reply always ends with an OPT
//! (RFC 6891 §7), errors included.
//!
//! [`slip`] cuts a written reply down to the TC=1 reply that response rate
//! limiting (`rrl`) sends instead of a limited one.

use super::answer::{Resolution, SteeredOut};
use super::iana::{hflag, ECS_CODE, OPT_DO_BYTE, TYPE_OPT};
use super::packet::{echo_ecs, our_payload, skip_name, udp_payload, Parsed};
use super::zone::RrSet;

/// Write `owner` as a pointer into the question when it is the question name
/// or one of its suffixes, else in full.
#[inline]
fn put_owner(out: &mut Vec<u8>, owner: &[u8], p: &Parsed) {
    let qname = p.qname();
    for &l in p.name.label_starts() {
        if &qname[l as usize..] == owner {
            let ptr = 0xC000 | (12 + l as u16);
            out.extend_from_slice(&ptr.to_be_bytes());
            return;
        }
    }
    out.extend_from_slice(owner);
}

fn put_sets(out: &mut Vec<u8>, sets: &[&RrSet], p: &Parsed, max_ttl: Option<u32>) -> u16 {
    let mut n = 0u16;
    for s in sets {
        for t in s.tails() {
            put_owner(out, &s.owner, p);
            put_tail(out, t, max_ttl.map(|m| m.min(tail_ttl(t))));
            n += 1;
        }
    }
    n
}

/// The TTL field of a record tail (TYPE CLASS TTL RDLENGTH RDATA).
#[inline]
fn tail_ttl(t: &[u8]) -> u32 {
    u32::from_be_bytes([t[4], t[5], t[6], t[7]])
}

/// Append a record tail, with its TTL replaced by `ttl` if given.
#[inline]
fn put_tail(out: &mut Vec<u8>, t: &[u8], ttl: Option<u32>) {
    let at = out.len();
    out.extend_from_slice(t);
    if let Some(ttl) = ttl {
        out[at + 4..at + 8].copy_from_slice(&ttl.to_be_bytes());
    }
}

/// Write the reply to `query` (parsed into `p`; `parsed_ok`: it parsed
/// without error) into `out`: `res`'s records with `rcode` (extended, as
/// decided; see `packet::wire_rcode`). `udp`: limit the reply to 512 bytes,
/// or with EDNS to `packet::udp_payload` (TC and no records when over); TCP:
/// 65535.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    out: &mut Vec<u8>,
    query: &[u8],
    p: &Parsed,
    parsed_ok: bool,
    res: &Resolution<'_>,
    rcode: u16,
    udp: bool,
    max_udp_payload: u16,
) {
    out.clear();
    let has_question = p.question_end > 12;
    // Header: QR, opcode copied, AA, RD and CD copied, RA clear.
    let flags = hflag::QR
        | (p.flags & hflag::OPCODE_MASK)
        | if res.aa { hflag::AA } else { 0 }
        | (p.flags & (hflag::RD | hflag::CD))
        | (rcode & hflag::RCODE_MASK);
    out.extend_from_slice(&p.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, has_question as u8, 0, 0, 0, 0, 0, 0]);
    if has_question {
        out.extend_from_slice(&query[12..p.question_end]);
    }
    let body_start = out.len();
    let mut an = 0u16;
    for (i, s) in res.answer.iter().enumerate() {
        for (k, t) in s.tails().enumerate() {
            // Steered set: only the records that are up, with the TTL chosen.
            let (write, ttl) = SteeredOut::apply(res.steered.as_ref(), i, s, k);
            if !write {
                continue;
            }
            put_owner(out, res.owner(i, p.qname()), p);
            put_tail(out, t, ttl);
            an += 1;
        }
    }
    let ns = put_sets(out, &res.authority, p, res.neg_ttl);
    let ar = put_sets(out, &res.additional, p, None);
    let limit = match (udp, p.opt) {
        (false, _) => 65535,
        (true, None) => 512,
        (true, Some(o)) => udp_payload(&o, max_udp_payload) as usize,
    };
    let opt_len = p
        .opt
        .map_or(0, |o| 11 + o.ecs.map_or(0, |e| 8 + e.addr_len));
    let (an, ns, ar) = if out.len() + opt_len > limit {
        // TC: drop every record (the client retries over TCP).
        out.truncate(body_start);
        out[2] |= (hflag::TC >> 8) as u8;
        (0, 0, 0)
    } else {
        (an, ns, ar)
    };
    let ar = ar + p.opt.is_some() as u16;
    out[6..8].copy_from_slice(&an.to_be_bytes());
    out[8..10].copy_from_slice(&ns.to_be_bytes());
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    if let Some(o) = p.opt {
        // OPT: root owner, our payload, extended RCODE, version 0, DO copied.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&our_payload(max_udp_payload).to_be_bytes());
        out.push((rcode >> 4) as u8);
        out.push(0);
        out.push(if o.dnssec_ok { OPT_DO_BYTE } else { 0 });
        out.push(0);
        match echo_ecs(&o, parsed_ok, rcode) {
            Some(e) => {
                let olen = 4 + e.addr_len as u16;
                out.extend_from_slice(&(4 + olen).to_be_bytes());
                out.extend_from_slice(&ECS_CODE.to_be_bytes());
                out.extend_from_slice(&olen.to_be_bytes());
                out.extend_from_slice(&e.family.to_be_bytes());
                out.push(e.source);
                out.push(res.scope);
                out.extend_from_slice(&e.addr[..e.addr_len]);
            }
            None => out.extend_from_slice(&[0, 0]),
        }
    }
}

/// Turn the reply [`write`] put in `out` into a minimal truncated one (RRL's
/// slip): header with TC set, the question, and the OPT record if there was
/// one (RFC 6891 §7); no other records. Leaves a reply it cannot walk (not
/// ours) with its header and question only.
pub(super) fn slip(out: &mut Vec<u8>) {
    if out.len() < 12 {
        return;
    }
    let count = |b: &[u8], i: usize| u16::from_be_bytes([b[4 + 2 * i], b[5 + 2 * i]]) as usize;
    let q_end = match count(out, 0) {
        0 => Some(12),
        _ => skip_name(out, 12).map(|e| e + 4),
    }
    .filter(|&e| e <= out.len())
    .unwrap_or(12);
    let (an, ns, ar) = (count(out, 1), count(out, 2), count(out, 3));
    let mut at = q_end;
    let mut opt = None;
    for i in 0..an + ns + ar {
        let Some(rd) = skip_name(out, at)
            .map(|e| e + 10)
            .filter(|&e| e <= out.len())
        else {
            break;
        };
        let rtype = u16::from_be_bytes([out[rd - 10], out[rd - 9]]);
        let end = rd + u16::from_be_bytes([out[rd - 2], out[rd - 1]]) as usize;
        if end > out.len() {
            break;
        }
        if i >= an + ns && rtype == TYPE_OPT {
            opt = Some(at..end);
        }
        at = end;
    }
    let qd = (q_end > 12) as u16;
    let ar = opt.is_some() as u16;
    let opt_len = opt.as_ref().map_or(0, |o| o.len());
    if let Some(o) = opt {
        out.copy_within(o, q_end);
    }
    out.truncate(q_end + opt_len);
    out[2] |= (hflag::TC >> 8) as u8;
    out[4..12].copy_from_slice(&[0, qd as u8, 0, 0, 0, 0, 0, ar as u8]);
}
