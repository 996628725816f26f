//! [`respond`], the one query-to-reply function of UDP and TCP (`tcp`), and
//! the UDP socket loop. One blocking thread per SO_REUSEPORT socket
//! (`net::udp_reuseport`) takes up to [`BATCH`] datagrams per `recvmmsg` and
//! answers them in one `sendmmsg`. The loop ([`serve`]) is generic over its
//! [`Answerer`]: sparrowd's is the [`Shared`](super::Shared) authority, whose
//! queries go through [`respond`] (`packet` parse and decide, `answer`
//! resolve, `response` the reply spliced from the question bytes and
//! precomputed RRset bytes) and then RRL; the `dns-floor` benchmark binary
//! plugs in a fixed reply, so the kernel's floor is measured with this same
//! loop.
//!
//! One request at a time per thread, so requests in flight are capped at the
//! number of sockets times the batch (the kernel's receive buffer queues or
//! drops the rest). hickory-server's UDP engine, slower and not byte-identical,
//! was removed: see BENCHMARKS.md ("DNS").
//!
//! [`respond`] is pure (bytes in, bytes out) and fuzzed (`fuzz/fuzz_targets/dns.rs`).

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

use tracing::{debug, warn};

use super::answer::{resolve, Resolution};
use super::iana::hflag;
use super::packet::{decide, ecs_use, parse, wire_rcode, Decision, Parsed};
use super::stats::{Cells, DropReason, Outcome, Proto};
use super::{response, Authority};

/// Build the reply to `query` from `src` into `out`; `None`: send nothing
/// (and `out` is empty), else what the request was, for the counters
/// (`stats`). `udp`: limit the reply to 512 bytes, or with EDNS to the
/// client's payload capped at `max_udp_payload` (TC when over); TCP (`udp`
/// false, from `tcp`): 65535. Both transports answer through here.
pub fn respond(
    auth: &Authority,
    query: &[u8],
    src: IpAddr,
    udp: bool,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    let mut p = Parsed::new();
    let parsed = parse(query, &mut p);
    let (res, rcode) = match decide(parsed, &p, src) {
        Decision::Drop => {
            out.clear();
            return None;
        }
        Decision::Error(rc) => (Resolution::default(), rc),
        Decision::Resolve(querier) => {
            let r = resolve(auth, p.qname(), p.qtype, p.qclass, querier);
            let rc = r.rcode;
            (r, rc)
        }
    };
    let rcode = wire_rcode(&p, rcode);
    response::write(
        out,
        query,
        &p,
        parsed.is_ok(),
        &res,
        rcode,
        udp,
        auth.max_udp_payload,
    );
    Some(Outcome {
        qtype: p.qtype,
        rcode,
        ecs: ecs_use(&p),
        truncated: out.get(2).is_some_and(|b| b & (hflag::TC >> 8) as u8 != 0),
        size: out.len(),
        steered: res.steered_by,
    })
}

/// Bind `workers` SO_REUSEPORT UDP sockets on `addr`.
pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<UdpSocket>> {
    (0..workers)
        .map(|_| crate::net::udp_reuseport(addr))
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

/// What the UDP loop ([`serve`]) answers with.
pub trait Answerer {
    /// What one batch of queries is answered from (sparrowd: one `load()` of
    /// the authority per `recvmmsg`, not one per query).
    type Batch<'a>
    where
        Self: 'a;
    /// Called once per received batch, before its first query.
    fn batch(&self) -> Self::Batch<'_>;
    /// Write the reply to `query` from `src` (canonical, port not 0) into
    /// `out` and say what it was (`size` 0: answered, then not sent);
    /// `None`: not answered.
    fn answer(
        batch: &Self::Batch<'_>,
        query: &[u8],
        src: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<Outcome>;
    /// Write a sampled query log line (`querylog`) for this request.
    fn log(_batch: &Self::Batch<'_>, _query: &[u8], _src: IpAddr, _o: &Outcome, _ns: u64) {}
}

/// sparrowd's answers: [`respond`] over the current authority (UDP limits),
/// then response rate limiting (`dns.rrl`) when configured.
impl Answerer for super::Shared {
    type Batch<'a> = arc_swap::Guard<std::sync::Arc<Authority>>;

    fn batch(&self) -> Self::Batch<'_> {
        self.load()
    }

    #[inline]
    fn answer(
        auth: &Self::Batch<'_>,
        query: &[u8],
        src: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let mut o = respond(auth, query, src, true, out)?;
        if auth.rrl.as_ref().is_some_and(|r| !r.admit(src, out)) {
            o.size = 0;
        } else {
            o.size = out.len();
            o.truncated |= out.get(2).is_some_and(|b| b & (hflag::TC >> 8) as u8 != 0);
        }
        Some(o)
    }

    fn log(auth: &Self::Batch<'_>, query: &[u8], src: IpAddr, o: &Outcome, ns: u64) {
        super::querylog::write(query, src, Proto::Udp, o, ns, auth.zones.pop_names());
    }
}

/// Serve `sock` on this thread forever (until the process exits): up to
/// [`BATCH`] queries per `recvmmsg` (waiting for the first only), answered by
/// `answerer` (one [`Answerer::batch`] per `recvmmsg`) in one `sendmmsg`, so
/// that a busy server pays two system calls per batch instead of two per
/// query (nix's safe wrappers; no `unsafe` here). Datagrams from port 0
/// (RFC 768: no reply possible; a reflection guard) are not answered.
/// Each request is counted in `cells`, this thread's own block, after its
/// batch is answered: its time is the batch's (two clock reads per batch)
/// divided by the requests answered in it.
pub fn serve<A: Answerer>(answerer: A, sock: UdpSocket, cells: &Cells) {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; 4096]; BATCH];
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut rh = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut sh = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut got: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
    let mut to: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    // (index in the batch, source, what it was) of each request answered.
    let mut seen: Vec<(usize, IpAddr, Outcome)> = Vec::with_capacity(BATCH);
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
        seen.clear();
        {
            let batch = answerer.batch();
            let t = Instant::now();
            for (i, (n, from)) in got.iter().enumerate() {
                let Some(addr) = from.as_ref().and_then(std_addr) else {
                    continue;
                };
                // Source port 0 cannot be answered (RFC 768); reflection guard.
                if addr.port() == 0 {
                    cells.dropped(DropReason::SourcePortZero);
                    continue;
                }
                let k = to.len();
                let ip = crate::net::canonical_ip(addr.ip());
                match A::answer(&batch, &bufs[i][..*n], ip, &mut outs[k]) {
                    Some(o) => {
                        seen.push((i, ip, o));
                        if o.size > 0 {
                            to.push(*from);
                        }
                    }
                    None => cells.dropped(DropReason::Invalid),
                }
            }
            let ns = t.elapsed().as_nanos() as u64 / seen.len().max(1) as u64;
            for &(i, ip, ref o) in &seen {
                cells.record(ip.is_ipv6(), o, ns);
                if cells.sampled() {
                    A::log(&batch, &bufs[i][..got[i].0], ip, o, ns);
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
    use crate::pops::PopState;
    use crate::testutil::TestConfig;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
    use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
    use std::sync::Arc;

    fn auth() -> Authority {
        auth_from(
            &TestConfig::yaml(crate::dns::zone::tests::CFG)
                .with("steering:\n  fallback:\n    - {prefix: 10.0.0.0/8, pop: y}\n    - {prefix: 10.1.0.0/16, pop: x}\n    - {prefix: 2001:db8::/32, pop: y}\n")
                .build(),
        )
    }

    /// The authority of `cfg` (no sessions: only the local POP is up).
    fn auth_from(cfg: &crate::config::Config) -> Authority {
        let pops = Arc::new(PopState::new(cfg, None));
        Authority::new(cfg, crate::steer::handle(cfg), pops).unwrap()
    }

    /// A query for www.example.net. A with ECS 10.1.0.0/16, as bytes.
    fn ecs_query() -> Vec<u8> {
        query("www.example.net.", RecordType::A, Some(("10.1.0.0", 16)))
            .to_vec()
            .unwrap()
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
            .map(|_| Message::from_vec(&out).expect("our reply decodes"))
    }

    /// The reply to [`query`]`(name, t, ecs)` (one is sent).
    fn ask_q(a: &Authority, name: &str, t: RecordType, ecs: Option<(&str, u8)>) -> Message {
        ask(a, &query(name, t, ecs).to_vec().unwrap()).expect("a reply")
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
        let r = ask_q(
            &a,
            "WWW.example.net.",
            RecordType::A,
            Some(("10.2.3.0", 24)),
        );
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
        // Safe scope 15 (10.2.0.0/15 is all "y first"), shorter than source 24.
        assert_eq!(scope(&r), Some(15));
        // The safe scope even when longer than the source (RFC 7871 §7.2.1):
        // 10.0.0.0/16 is all "y first" but 10.1.0.0/16 is not, so a /12 or /8
        // source is not specific enough. Source 0: scope 0, the decision on
        // the transport source.
        for (subnet, len, want) in [
            ("10.1.0.0", 16, 16),
            ("10.0.0.0", 12, 16),
            ("10.0.0.0", 8, 16),
            ("0.0.0.0", 0, 0),
        ] {
            let r = ask_q(&a, "www.example.net.", RecordType::A, Some((subnet, len)));
            assert_eq!(scope(&r), Some(want), "{subnet}/{len}");
        }
        // A client-independent answer: scope 0.
        let r = ask_q(
            &a,
            "mail.example.net.",
            RecordType::A,
            Some(("10.0.0.0", 8)),
        );
        assert_eq!((r.answers.len(), scope(&r)), (1, Some(0)));
        // Drain x: y is down, x drained -> nothing usable -> first with records (y).
        a.pops.set_drained("x", true).unwrap();
        let r = ask_q(
            &a,
            "www.example.net.",
            RecordType::A,
            Some(("10.2.3.0", 24)),
        );
        assert_eq!(r.answers.len(), 2, "y's two addresses: {r:?}");
        // AAAA: only x has AAAA: answered with x even though drained (no one else has it).
        let r = ask_q(&a, "www.example.net.", RecordType::AAAA, None);
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn negative_answers_and_errors() {
        let a = auth();
        let r = ask_q(&a, "nope.example.net.", RecordType::A, None);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.metadata.authoritative);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.authorities[0].ttl, 60);
        let r = ask_q(&a, "www.example.net.", RecordType::MX, None);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty() && r.authorities.len() == 1);
        let r = ask_q(&a, "example.com.", RecordType::A, None);
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
        let good = ecs_query();
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

    /// A query from raw parts: header flags, questions, additional records.
    fn raw(flags: u16, qd: &[&[u8]], ar: &[Vec<u8>]) -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD];
        q.extend_from_slice(&flags.to_be_bytes());
        q.extend_from_slice(&(qd.len() as u16).to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q.extend_from_slice(&(ar.len() as u16).to_be_bytes());
        for x in qd {
            q.extend_from_slice(x);
        }
        for x in ar {
            q.extend_from_slice(x);
        }
        q
    }

    /// www.example.net. IN A
    const QUESTION: &[u8] = b"\x03www\x07example\x03net\x00\x00\x01\x00\x01";

    /// An OPT record: owner, EDNS version, RDATA (options).
    fn opt(owner: &[u8], version: u8, rdata: &[u8]) -> Vec<u8> {
        let mut o = owner.to_vec();
        o.extend_from_slice(&[0, 41, 0x04, 0xD0, 0, version, 0, 0]);
        o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        o.extend_from_slice(rdata);
        o
    }

    /// The reply's full RCODE (extended with the OPT's bits) and whether it
    /// has an OPT.
    fn rcode_and_opt(a: &Authority, q: &[u8]) -> (u16, bool) {
        let r = ask(a, q).expect("a reply");
        (u16::from(r.metadata.response_code), r.edns.is_some())
    }

    #[test]
    fn every_reply_to_an_edns_query_has_opt() {
        let a = auth();
        let edns = opt(b"\0", 0, &[]);
        // Malformed ECS (RFC 7871 §7.1.1: FORMERR), e.g. dig +ednsopt=8:00011800c0000201.
        let ecs: &[u8] = &[0, 8, 0, 8, 0, 1, 0x18, 0, 0xc0, 0, 2, 1];
        let bad_ecs = opt(b"\0", 0, ecs);
        let (formerr, notimp, badvers) = (1, 4, 16);
        for (what, q, want) in [
            (
                "malformed ECS",
                raw(0x0100, &[QUESTION], std::slice::from_ref(&bad_ecs)),
                formerr,
            ),
            (
                "QDCOUNT 0",
                raw(0x0100, &[], std::slice::from_ref(&edns)),
                formerr,
            ),
            (
                "QDCOUNT 2",
                raw(0x0100, &[QUESTION, QUESTION], std::slice::from_ref(&edns)),
                formerr,
            ),
            (
                "non-root OPT owner",
                raw(0, &[QUESTION], &[opt(b"\x01a\0", 0, &[])]),
                formerr,
            ),
            (
                "two OPTs",
                raw(0, &[QUESTION], &[edns.clone(), edns.clone()]),
                formerr,
            ),
            (
                "option overruns",
                raw(0, &[QUESTION], &[opt(b"\0", 0, &[0, 8, 0, 9])]),
                formerr,
            ),
            (
                "version 1",
                raw(0, &[QUESTION], &[opt(b"\0", 1, &[])]),
                badvers,
            ),
            // BADVERS before other refusals (as Knot): the options of an
            // unknown version are not read.
            (
                "version 1, bad ECS",
                raw(0, &[QUESTION], &[opt(b"\0", 1, ecs)]),
                badvers,
            ),
            (
                "version 1, QDCOUNT 0",
                raw(0, &[], &[opt(b"\0", 1, &[])]),
                badvers,
            ),
        ] {
            assert_eq!(rcode_and_opt(&a, &q), (want, true), "{what}");
            assert!(
                scope(&ask(&a, &q).unwrap()).is_none(),
                "{what}: no ECS echo"
            );
        }
        for op in 1..=15u16 {
            let q = raw(op << 11, &[QUESTION], std::slice::from_ref(&edns));
            assert_eq!(rcode_and_opt(&a, &q), (notimp, true), "opcode {op}");
            let q = raw(op << 11, &[], std::slice::from_ref(&edns));
            assert_eq!(
                rcode_and_opt(&a, &q),
                (notimp, true),
                "opcode {op}, QDCOUNT 0"
            );
            let q = raw(op << 11, &[QUESTION], &[opt(b"\0", 1, &[])]);
            assert_eq!(
                rcode_and_opt(&a, &q),
                (badvers, true),
                "opcode {op}, version 1"
            );
        }
        // Without EDNS: no OPT.
        for (what, q, want) in [
            ("QDCOUNT 0", raw(0, &[], &[]), formerr),
            ("QDCOUNT 2", raw(0, &[QUESTION, QUESTION], &[]), formerr),
            ("opcode 2", raw(2 << 11, &[QUESTION], &[]), notimp),
        ] {
            assert_eq!(rcode_and_opt(&a, &q), (want, false), "{what}");
        }
        // A question cut short: the walk never reaches an OPT.
        let mut q = raw(0, &[QUESTION], std::slice::from_ref(&edns));
        q.truncate(20);
        q[11] = 1;
        assert_eq!(rcode_and_opt(&a, &q), (formerr, false));
        // A well-formed EDNS query still resolves (and the OPT walk keeps
        // going past other additional records).
        let other = b"\0\0\x10\0\x01\0\0\0\0\0\x01\0".to_vec();
        let q = raw(0, &[QUESTION], &[other, edns.clone()]);
        assert_eq!(rcode_and_opt(&a, &q), (0, true));
    }

    #[test]
    fn truncation_without_edns() {
        // 40 TXT records at one name: over 512 without EDNS -> TC, no records.
        let mut text = TestConfig::yaml(crate::dns::zone::tests::CFG);
        for i in 0..40 {
            text = text.replace(
                "    steered:",
                &format!("      - {{name: big, type: TXT, data: '\"record number {i} padding padding\"'}}\n    steered:"),
            );
        }
        let a = auth_from(&text.build());
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
        )
        .is_some());
        let r = Message::from_vec(&out).unwrap();
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 40);
    }

    #[test]
    fn random_bytes_never_panic() {
        use proptest::prelude::*;
        let a = auth();
        let good = ecs_query();
        proptest!(ProptestConfig::with_cases(3000), |(flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6), cut in 0usize..80)| {
            let mut q = good.clone();
            for (i, b) in flips { if i < q.len() { q[i] = b; } }
            q.truncate(cut.max(1).min(q.len()));
            let mut out = Vec::new();
            if respond(&a, &q, "192.0.2.1".parse().unwrap(), true, &mut out).is_some() {
                prop_assert!(out.len() <= 1232);
                prop_assert!(Message::from_vec(&out).is_ok() || out.len() >= 12);
            }
        });
    }
}
