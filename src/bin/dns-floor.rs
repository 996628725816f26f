//! `dns-floor`: the kernel's floor for sparrowd's UDP answers. A null DNS
//! responder on sparrowd's own UDP loop (`sparrow::dns::fast::serve`: the
//! same SO_REUSEPORT sockets from `fast::bind`, the same `recvmmsg`/`sendmmsg`
//! batches of `fast::BATCH`, one thread per socket), answering every query
//! with a fixed reply instead of resolving it: the query's ID and question,
//! QR and AA set, RD copied, NOERROR, and one A record (`--answer`, TTL 60)
//! whose owner points at the question. Nothing is parsed beyond the header
//! and the question's length (no EDNS in the reply); a datagram that is not a
//! one-question query is not answered.
//!
//! What sparrowd spends per answer above this binary's CPU per answer under
//! the same load is the cost of its own answering (`tests/bench/dns-floor.sh`).
//!
//! Usage: `dns-floor --listen 127.0.0.1:5399 [--workers 1] [--answer 192.0.2.80]`

#![deny(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use sparrow::dns::fast::{self, Answerer};
use sparrow::dns::stats::{DnsStats, Outcome};

#[derive(Parser)]
#[command(about = "Null DNS responder on sparrowd's UDP loop (the floor for CPU per answer)")]
struct Args {
    /// UDP address to answer on.
    #[arg(long)]
    listen: SocketAddr,
    /// SO_REUSEPORT sockets, one thread each (sparrowd's `dns.udp_workers`).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The address of the one A record in every reply.
    #[arg(long, default_value = "192.0.2.80")]
    answer: Ipv4Addr,
}

/// The fixed answer: one A record with this address.
struct Fixed([u8; 4]);

impl Answerer for Fixed {
    type Batch<'a> = &'a Fixed;

    fn batch(&self) -> &Fixed {
        self
    }

    #[inline]
    fn answer(f: &&Fixed, query: &[u8], _src: IpAddr, out: &mut Vec<u8>) -> Option<Outcome> {
        fixed_reply(query, f.0, out).then(|| Outcome {
            qtype: 1,
            size: out.len(),
            ..Outcome::default()
        })
    }
}

/// Header flags of the reply's third byte: QR and AA (opcode QUERY).
const QR_AA: u8 = 0x84;
/// RD, the one bit copied from the query.
const RD: u8 = 0x01;
/// The answer record after the question: owner a pointer to offset 12 (the
/// question's name), type A, class IN, TTL 60, RDLENGTH 4.
const RR: [u8; 12] = [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4];

/// The reply to `query` into `out`: its ID and question, one A record with
/// address `a`. `false` (and `out` empty) when `query` is shorter than a
/// header, is a response, does not have exactly one question, or its
/// question is cut short.
fn fixed_reply(query: &[u8], a: [u8; 4], out: &mut Vec<u8>) -> bool {
    out.clear();
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return false;
    }
    // The question's name: labels up to the root (no compression in a question).
    let mut end = 12;
    loop {
        let Some(&len) = query.get(end) else {
            return false;
        };
        end += 1 + len as usize;
        if len == 0 {
            break;
        }
        if len > 63 {
            return false;
        }
    }
    end += 4; // QTYPE, QCLASS
    if end > query.len() {
        return false;
    }
    out.extend_from_slice(&query[..2]);
    out.extend_from_slice(&[QR_AA | (query[2] & RD), 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    out.extend_from_slice(&RR);
    out.extend_from_slice(&a);
    true
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    let socks = fast::bind(args.listen, args.workers)
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!(
        "dns-floor: answering on {} (UDP, {} sockets, batch {})",
        args.listen,
        args.workers,
        fast::BATCH
    );
    let mut threads = Vec::new();
    // Counted as sparrowd counts, so the loop's cost is the same.
    let stats = DnsStats::new(0, 0);
    for (i, sock) in socks.into_iter().enumerate() {
        let answer = Fixed(args.answer.octets());
        let cells = stats.udp_worker();
        threads.push(
            std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || fast::serve(answer, sock, &cells))
                .context("starting a UDP thread")?,
        );
    }
    for t in threads {
        // `serve` never returns; a panic ends the process with its message.
        if t.join().is_err() {
            anyhow::bail!("a UDP thread panicked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new(0xBEEF, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[test]
    fn replies_with_the_id_question_and_one_fixed_a_record() {
        let mut out = Vec::new();
        assert!(fixed_reply(
            &query("WWW.anchors.test."),
            [192, 0, 2, 80],
            &mut out
        ));
        let r = Message::from_vec(&out).expect("the reply decodes");
        assert_eq!(r.metadata.id, 0xBEEF);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert!(r.metadata.authoritative && r.metadata.recursion_desired);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.queries[0].name().to_ascii(), "WWW.anchors.test.");
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].name.to_ascii(), "WWW.anchors.test.");
        assert_eq!(r.answers[0].ttl, 60);
        assert_eq!(
            r.answers[0].data,
            RData::A(Ipv4Addr::new(192, 0, 2, 80).into())
        );
    }

    #[test]
    fn does_not_answer_what_is_not_one_whole_question() {
        let q = query("www.anchors.test.");
        let mut out = Vec::new();
        // Shorter than a header, the question cut short.
        for cut in [0, 11, 13, 20, q.len() - 1] {
            assert!(!fixed_reply(&q[..cut], [1, 2, 3, 4], &mut out), "cut {cut}");
            assert!(out.is_empty());
        }
        // A response, and QDCOUNT 0 or 2.
        for (at, byte) in [(2, q[2] | 0x80), (5, 0), (5, 2)] {
            let mut bad = q.clone();
            bad[at] = byte;
            assert!(
                !fixed_reply(&bad, [1, 2, 3, 4], &mut out),
                "byte {at} = {byte}"
            );
        }
    }
}
