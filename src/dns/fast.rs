//! UDP fast path: our own parsing of the header, the one question and the OPT
//! record (with ECS, RFC 7871), the shared resolver (`answer::resolve`), and
//! the reply spliced together from the query's question bytes and the
//! precomputed RRset bytes (`zone::RrSet::tails`) behind 2-byte owner pointers.
//!
//! Owns the UDP sockets: one blocking thread per SO_REUSEPORT socket, one
//! request at a time each, so requests in flight are capped at the number of
//! sockets times the batch (the kernel's receive buffer queues or drops the rest).
//! Why not hickory-server here: see BENCHMARKS.md ("DNS"), measured.
//!
//! [`respond`] is pure (bytes in, bytes out) and fuzzed (`fuzz/fuzz_targets/dns.rs`).

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

use tracing::{debug, warn};

use super::answer::{rcode, resolve, Querier, Resolution};
use super::zone::RrSet;
use super::Authority;

const TYPE_OPT: u16 = 41;
const ECS_CODE: u16 = 8;
/// Most labels a 255-byte name can have.
const MAX_LABELS: usize = 128;

/// Why a query gets an error RCODE or is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    /// Drop silently (shorter than a header, or a response).
    Drop,
    /// Answer with this RCODE (and the question, if `question` is set).
    Rcode(u16),
}

/// What we parsed from the query.
pub(super) struct Parsed {
    pub(super) id: u16,
    pub(super) flags: u16,
    /// End of the question section in the query (12 when no question was parsed).
    pub(super) question_end: usize,
    pub(super) qname: [u8; 256],
    pub(super) qname_len: usize,
    /// Offsets of each label start in `qname` (for owner-suffix pointers).
    pub(super) labels: [u8; MAX_LABELS],
    pub(super) nlabels: usize,
    pub(super) qtype: u16,
    pub(super) qclass: u16,
    pub(super) opt: Option<Opt>,
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
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
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

pub(super) fn parse(q: &[u8], p: &mut Parsed) -> Result<(), Bad> {
    if q.len() < 12 {
        return Err(Bad::Drop);
    }
    p.id = u16::from_be_bytes([q[0], q[1]]);
    p.flags = u16::from_be_bytes([q[2], q[3]]);
    if p.flags & 0x8000 != 0 {
        return Err(Bad::Drop);
    }
    let formerr = Err(Bad::Rcode(rcode::FORMERR));
    let count = |i: usize| u16::from_be_bytes([q[4 + 2 * i], q[5 + 2 * i]]) as usize;
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    if qd != 1 {
        return if (p.flags >> 11) & 0xF != 0 {
            Err(Bad::Rcode(rcode::NOTIMP))
        } else {
            formerr
        };
    }
    // The question name, lowercased, no compression (nothing to point back to).
    let mut at = 12;
    p.qname_len = 0;
    p.nlabels = 0;
    loop {
        let Some(&l) = q.get(at) else { return formerr };
        let l = l as usize;
        if l & 0xC0 != 0 {
            return formerr;
        }
        if p.qname_len + 1 + l > 255 || at + 1 + l > q.len() || p.nlabels >= MAX_LABELS {
            return formerr;
        }
        p.labels[p.nlabels] = p.qname_len as u8;
        p.nlabels += 1;
        p.qname[p.qname_len] = l as u8;
        for i in 0..l {
            p.qname[p.qname_len + 1 + i] = q[at + 1 + i].to_ascii_lowercase();
        }
        p.qname_len += 1 + l;
        at += 1 + l;
        if l == 0 {
            break;
        }
    }
    let (Some(qtype), Some(qclass)) = (be16(q, at), be16(q, at + 2)) else {
        return formerr;
    };
    p.qtype = qtype;
    p.qclass = qclass;
    at += 4;
    p.question_end = at;
    if (p.flags >> 11) & 0xF != 0 {
        return Err(Bad::Rcode(rcode::NOTIMP));
    }
    // Answer and authority sections: skipped (a query has none normally).
    for _ in 0..an + ns {
        at = skip_name(q, at).ok_or(Bad::Rcode(rcode::FORMERR))?;
        let len = be16(q, at + 8).ok_or(Bad::Rcode(rcode::FORMERR))? as usize;
        at += 10 + len;
        if at > q.len() {
            return formerr;
        }
    }
    for _ in 0..ar {
        let name_at = at;
        at = skip_name(q, at).ok_or(Bad::Rcode(rcode::FORMERR))?;
        let (Some(rtype), Some(class), Some(len)) = (be16(q, at), be16(q, at + 2), be16(q, at + 8))
        else {
            return formerr;
        };
        let rd = at + 10;
        let end = rd + len as usize;
        if end > q.len() {
            return formerr;
        }
        if rtype == TYPE_OPT {
            // One OPT, owned by the root (RFC 6891 §6.1.1).
            if p.opt.is_some() || q[name_at] != 0 || at != name_at + 1 {
                return formerr;
            }
            let mut opt = Opt {
                payload: class,
                version: q[at + 5],
                dnssec_ok: q[at + 6] & 0x80 != 0,
                ecs: None,
            };
            let mut o = rd;
            while o < end {
                let (Some(code), Some(olen)) = (be16(q, o), be16(q, o + 2)) else {
                    return formerr;
                };
                let d = o + 4;
                let dend = d + olen as usize;
                if dend > end {
                    return formerr;
                }
                if code == ECS_CODE {
                    if opt.ecs.is_some() {
                        return formerr;
                    }
                    opt.ecs = Some(parse_ecs(&q[d..dend]).ok_or(Bad::Rcode(rcode::FORMERR))?);
                }
                o = dend;
            }
            p.opt = Some(opt);
        }
        at = end;
    }
    Ok(())
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
            qname: [0; 256],
            qname_len: 0,
            labels: [0; MAX_LABELS],
            nlabels: 0,
            qtype: 0,
            qclass: 0,
            opt: None,
        }
    }
}

/// Write `owner` as a pointer into the question when it is the question name
/// or one of its suffixes, else in full.
#[inline]
fn put_owner(out: &mut Vec<u8>, owner: &[u8], p: &Parsed) {
    let qname = &p.qname[..p.qname_len];
    for &l in &p.labels[..p.nlabels] {
        if &qname[l as usize..] == owner {
            let ptr = 0xC000 | (12 + l as u16);
            out.extend_from_slice(&ptr.to_be_bytes());
            return;
        }
    }
    out.extend_from_slice(owner);
}

fn put_sets(out: &mut Vec<u8>, sets: &[&RrSet], p: &Parsed) -> u16 {
    let mut n = 0u16;
    for s in sets {
        for t in s.tails() {
            put_owner(out, &s.owner, p);
            out.extend_from_slice(t);
            n += 1;
        }
    }
    n
}

/// Build the reply to `query` from `src` into `out`; `false`: send nothing.
/// `udp`: limit the reply to 512 bytes, or with EDNS to the client's payload
/// capped at `max_udp_payload` (TC when over); TCP: 65535.
pub fn respond(auth: &Authority, query: &[u8], src: IpAddr, udp: bool, out: &mut Vec<u8>) -> bool {
    let mut p = Parsed::new();
    let parsed = parse(query, &mut p);
    out.clear();
    let mut res;
    let mut ext_rcode: u16;
    match parsed {
        Err(Bad::Drop) => return false,
        Err(Bad::Rcode(rc)) => {
            res = Resolution::default();
            res.rcode = rc;
            ext_rcode = rc;
        }
        Ok(()) => {
            let opt = p.opt;
            if opt.is_some_and(|o| o.version != 0) {
                res = Resolution::default();
                ext_rcode = rcode::BADVERS;
            } else {
                let querier = match opt.and_then(|o| o.ecs) {
                    Some(e) if e.source > 0 => Querier::Ecs(e.ip(), e.source),
                    _ => Querier::Source(src),
                };
                res = resolve(auth, &p.qname[..p.qname_len], p.qtype, p.qclass, querier);
                ext_rcode = res.rcode;
            }
        }
    }
    // An extended RCODE needs an OPT to carry its high bits (only BADVERS is
    // extended, and it only arises with an OPT; kept as a guard).
    if p.opt.is_none() && ext_rcode > 15 {
        ext_rcode = rcode::SERVFAIL;
    }
    let has_question = p.question_end > 12;
    // Header: QR, opcode copied, AA, RD and CD copied, RA clear.
    let flags = 0x8000
        | (p.flags & 0x7800)
        | if res.aa { 0x0400 } else { 0 }
        | (p.flags & 0x0100)
        | (p.flags & 0x0010)
        | (ext_rcode & 0xF);
    out.extend_from_slice(&p.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, has_question as u8, 0, 0, 0, 0, 0, 0]);
    if has_question {
        out.extend_from_slice(&query[12..p.question_end]);
    }
    let body_start = out.len();
    let an = put_sets(out, &res.answer, &p);
    let ns = put_sets(out, &res.authority, &p);
    let ar = put_sets(out, &res.additional, &p);
    let limit = match (udp, p.opt) {
        (false, _) => 65535,
        (true, None) => 512,
        (true, Some(o)) => o.payload.clamp(512, auth.max_udp_payload.max(512)) as usize,
    };
    let opt_len = p
        .opt
        .map_or(0, |o| 11 + o.ecs.map_or(0, |e| 8 + e.addr_len));
    let (an, ns, ar) = if out.len() + opt_len > limit {
        // TC: drop every record (the client retries over TCP).
        out.truncate(body_start);
        out[2] |= 0x02;
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
        out.extend_from_slice(&auth.max_udp_payload.max(512).to_be_bytes());
        out.push((ext_rcode >> 4) as u8);
        out.push(0);
        out.push(if o.dnssec_ok { 0x80 } else { 0 });
        out.push(0);
        // ECS echoed only on a parsed query (RFC 7871 §7.2.1); FORMERR gets none.
        match o
            .ecs
            .filter(|_| parsed.is_ok() && ext_rcode != rcode::BADVERS)
        {
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
    true
}

/// Bind `workers` SO_REUSEPORT UDP sockets on `addr`.
pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<UdpSocket>> {
    (0..workers)
        .map(|_| {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )?;
            if addr.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.set_reuse_port(true)?;
            // Room for bursts while the thread answers (the kernel doubles it).
            let _ = s.set_recv_buffer_size(4 << 20);
            s.bind(&addr.into())?;
            Ok(s.into())
        })
        .collect()
}

/// Datagrams taken per `recvmmsg` and answered per `sendmmsg`.
pub const BATCH: usize = 32;

/// The address a datagram came from, as a std `SocketAddr`.
fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()))
    } else {
        a.as_sockaddr_in6()
            .map(|v6| SocketAddr::new(IpAddr::V6(v6.ip()), v6.port()))
    }
}

/// Serve `sock` on this thread forever (until the process exits): up to
/// [`BATCH`] queries per `recvmmsg` (waiting for the first only), answered in
/// one `sendmmsg`, so that a busy server pays two system calls per batch
/// instead of two per query (nix's safe wrappers; no `unsafe` here).
pub fn serve(auth: super::Shared, sock: UdpSocket) {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; 4096]; BATCH];
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut rh = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut sh = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut got: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
    let mut to: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    loop {
        got.clear();
        {
            let mut iovs: Vec<[IoSliceMut; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(fd, &mut rh, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(msgs) => got.extend(msgs.map(|m| (m.bytes, m.address))),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, "DNS UDP receive");
                    continue;
                }
            }
        }
        to.clear();
        {
            let auth = auth.load();
            for (i, (n, from)) in got.iter().enumerate() {
                let Some(addr) = from.as_ref().and_then(std_addr) else {
                    continue;
                };
                // Source port 0 cannot be answered (RFC 768); reflection guard.
                if addr.port() == 0 {
                    continue;
                }
                let k = to.len();
                if respond(
                    &auth,
                    &bufs[i][..*n],
                    addr.ip().to_canonical(),
                    true,
                    &mut outs[k],
                ) {
                    to.push(*from);
                }
            }
        }
        if to.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice; 1]> =
            outs[..to.len()].iter().map(|o| [IoSlice::new(o)]).collect();
        let none: [ControlMessage; 0] = [];
        if let Err(e) = sendmmsg(fd, &mut sh, &slices, &to, none, MsgFlags::empty()) {
            debug!(error = %e, "DNS UDP send");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::pops::PopState;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
    use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
    use std::sync::Arc;

    fn auth() -> Authority {
        let text = format!(
            "{}steering:\n  fallback:\n    - {{prefix: 10.0.0.0/8, pop: y}}\n    - {{prefix: 10.1.0.0/16, pop: x}}\n    - {{prefix: 2001:db8::/32, pop: y}}\n",
            crate::dns::zone::tests::CFG
        );
        let cfg = config::parse(&text, "t.yaml").unwrap();
        let pops = Arc::new(PopState::new(&cfg, None));
        Authority::new(&cfg, crate::steer::handle(&cfg), pops).unwrap()
    }

    fn query(name: &str, t: RecordType, ecs: Option<(&str, u8)>) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let mut e = Edns::new();
        e.set_max_payload(1232);
        if let Some((a, l)) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                a.parse().unwrap(),
                l,
                0,
            )));
        }
        m.set_edns(e);
        m
    }

    fn ask(a: &Authority, q: &[u8]) -> Option<Message> {
        let mut out = Vec::new();
        respond(a, q, "192.0.2.200".parse().unwrap(), true, &mut out)
            .then(|| Message::from_vec(&out).expect("our reply decodes"))
    }

    fn scope(m: &Message) -> Option<u8> {
        match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
            EdnsOption::Subnet(c) => Some(c.scope_prefix()),
            _ => None,
        }
    }

    #[test]
    fn steered_answer_follows_ranking_and_up_state_with_ecs_scope() {
        let a = auth();
        // y is down (no sessions): 10.2.3.4 ranks y first but gets x.
        let r = ask(
            &a,
            &query("WWW.example.net.", RecordType::A, Some(("10.2.3.0", 24)))
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative && !r.metadata.recursion_available);
        assert!(r.metadata.recursion_desired, "RD copied");
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::A("192.0.2.10".parse::<std::net::Ipv4Addr>().unwrap().into())
        );
        // Question echoed as asked (case kept), owner compressed onto it.
        assert_eq!(r.queries[0].name().to_ascii(), "WWW.example.net.");
        // Safe scope 15 (10.2.0.0/15 is all "y first"), clamped to source 24.
        assert_eq!(scope(&r), Some(15));
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::A, Some(("10.1.0.0", 16)))
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(scope(&r), Some(16));
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::A, Some(("10.0.0.0", 12)))
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(scope(&r), Some(12), "clamped to the source length");
        // Source 0: scope 0, decision on the transport source.
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::A, Some(("0.0.0.0", 0)))
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(scope(&r), Some(0));
        // Drain x: y is down, x drained -> nothing usable -> first with records (y).
        a.pops.set_drained("x", true).unwrap();
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::A, Some(("10.2.3.0", 24)))
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.answers.len(), 2, "y's two addresses: {r:?}");
        // AAAA: only x has AAAA: answered with x even though drained (no one else has it).
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::AAAA, None)
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn negative_answers_and_errors() {
        let a = auth();
        let r = ask(
            &a,
            &query("nope.example.net.", RecordType::A, None)
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.metadata.authoritative);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.authorities[0].ttl, 60);
        let r = ask(
            &a,
            &query("www.example.net.", RecordType::MX, None)
                .to_vec()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty() && r.authorities.len() == 1);
        let r = ask(
            &a,
            &query("example.com.", RecordType::A, None).to_vec().unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!r.metadata.authoritative);
        // Garbage: shorter than a header is dropped; a response is dropped.
        assert!(ask(&a, &[1, 2, 3]).is_none());
        let mut resp = query("www.example.net.", RecordType::A, None);
        resp.metadata.message_type = MessageType::Response;
        assert!(ask(&a, &resp.to_vec().unwrap()).is_none());
        // Truncated question: FORMERR.
        let q = query("www.example.net.", RecordType::A, None)
            .to_vec()
            .unwrap();
        let r = ask(&a, &q[..20]).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // Other opcodes: NOTIMP.
        let mut n = query("www.example.net.", RecordType::A, None);
        n.metadata.op_code = OpCode::Notify;
        let r = ask(&a, &n.to_vec().unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        // EDNS version 1: BADVERS.
        let mut v = query("www.example.net.", RecordType::A, None);
        v.edns.as_mut().unwrap().set_version(1);
        let r = ask(&a, &v.to_vec().unwrap()).unwrap();
        // 16 is BADVERS with an OPT (hickory names it BADSIG, the TSIG meaning).
        assert_eq!(u16::from(r.metadata.response_code), 16);
        // CH id.server.
        let mut c = Message::new(7, MessageType::Query, OpCode::Query);
        let mut cq = Query::query(Name::from_ascii("id.server.").unwrap(), RecordType::TXT);
        cq.set_query_class(DNSClass::CH);
        c.add_query(cq);
        let r = ask(&a, &c.to_vec().unwrap()).unwrap();
        assert_eq!(r.answers[0].data.to_string(), "x");
    }

    #[test]
    fn malformed_ecs_is_formerr() {
        let a = auth();
        let good = query("www.example.net.", RecordType::A, Some(("10.1.0.0", 16)))
            .to_vec()
            .unwrap();
        // ECS option bytes are the last 8: family 1, source 16, scope 0, 10.1.
        assert_eq!(&good[good.len() - 6..], &[0, 1, 16, 0, 10, 1]);
        for (i, v) in [
            (good.len() - 4, 17u8),
            (good.len() - 6, 9),
            (good.len() - 4, 12),
        ] {
            // source 17 with 2 address bytes; family 9; source 12 with 10.1 (bits past /12 set).
            let mut bad = good.clone();
            bad[i] = v;
            let r = ask(&a, &bad).unwrap();
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::FormErr,
                "byte {i} = {v}"
            );
            assert!(scope(&r).is_none(), "no ECS echo on FORMERR");
        }
    }

    #[test]
    fn truncation_without_edns() {
        // 40 TXT records at one name: over 512 without EDNS -> TC, no records.
        let mut text = crate::dns::zone::tests::CFG.to_string();
        for i in 0..40 {
            text = text.replace(
                "    steered:",
                &format!("      - {{name: big, type: TXT, data: '\"record number {i} padding padding\"'}}\n    steered:"),
            );
        }
        let cfg = config::parse(&text, "t.yaml").unwrap();
        let a = Authority::new(
            &cfg,
            crate::steer::handle(&cfg),
            Arc::new(PopState::new(&cfg, None)),
        )
        .unwrap();
        let mut q = query("big.example.net.", RecordType::TXT, None);
        q.edns = None;
        let r = ask(&a, &q.to_vec().unwrap()).unwrap();
        assert!(r.metadata.truncation && r.answers.is_empty());
        let mut out = Vec::new();
        assert!(respond(
            &a,
            &q.to_vec().unwrap(),
            "192.0.2.1".parse().unwrap(),
            false,
            &mut out
        ));
        let r = Message::from_vec(&out).unwrap();
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 40);
    }

    #[test]
    fn random_bytes_never_panic() {
        use proptest::prelude::*;
        let a = auth();
        let good = query("www.example.net.", RecordType::A, Some(("10.1.0.0", 16)))
            .to_vec()
            .unwrap();
        proptest!(ProptestConfig::with_cases(3000), |(flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6), cut in 0usize..80)| {
            let mut q = good.clone();
            for (i, b) in flips { if i < q.len() { q[i] = b; } }
            q.truncate(cut.max(1).min(q.len()));
            let mut out = Vec::new();
            if respond(&a, &q, "192.0.2.1".parse().unwrap(), true, &mut out) {
                prop_assert!(out.len() <= 1232);
                prop_assert!(Message::from_vec(&out).is_ok() || out.len() >= 12);
            }
        });
    }
}
