//! The sampled query log (`logging.query_sample: N`, off by default): one
//! JSON object (keys in name order) per line on standard error for every N-th request a UDP
//! worker or the TCP server answers (`stats::Cells::sampled` counts), e.g.
//!
//! ```text
//! {"client":"192.0.2.7","ecs":"used","pop":"x","proto":"udp","qname":"www.example.net.","qtype":1,"querylog":true,"rcode":0,"reason":"closest","size":75,"us":3.1}
//! ```
//!
//! The name is read from the query bytes only for a sampled request, so the
//! log costs nothing between samples.

use std::io::Write;
use std::net::IpAddr;

use super::stats::{EcsUse, Outcome, Proto};

/// The question name of `query` as text (`.` for the root; empty when it
/// does not parse, or uses compression, which a question never needs).
fn qname(query: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 12;
    while let Some(&len) = query.get(at) {
        let len = len as usize;
        if len == 0 {
            break;
        }
        let Some(label) = query.get(at + 1..at + 1 + len).filter(|_| len < 64) else {
            return String::new();
        };
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' && b != b'"' {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        out.push('.');
        at += 1 + len;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The log line for one request (no newline).
pub fn line(
    query: &[u8],
    client: IpAddr,
    proto: Proto,
    o: &Outcome,
    ns: u64,
    pop_names: &[String],
) -> String {
    let ecs = match o.ecs {
        EcsUse::None => "none",
        EcsUse::Used => "used",
        EcsUse::ZeroSource => "zero_source",
        EcsUse::Malformed => "malformed",
    };
    let mut v = serde_json::json!({
        "querylog": true,
        "proto": proto.as_str(),
        "client": client.to_string(),
        "qname": qname(query),
        "qtype": o.qtype,
        "rcode": o.rcode,
        "ecs": ecs,
        "size": o.size,
        "us": (ns as f64 / 1e2).round() / 10.0,
    });
    if let Some(s) = o.steered {
        v["pop"] = s
            .pop
            .and_then(|p| pop_names.get(p as usize))
            .map_or(serde_json::Value::Null, |n| n.as_str().into());
        v["reason"] = s.reason.as_str().into();
    }
    v.to_string()
}

/// Write [`line`] to standard error (errors ignored: the log is best effort).
pub fn write(query: &[u8], client: IpAddr, proto: Proto, o: &Outcome, ns: u64, pops: &[String]) {
    let l = line(query, client, proto, o, ns, pops);
    let _ = writeln!(std::io::stderr().lock(), "{l}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::stats::{AnswerReason, Steered};

    #[test]
    fn a_line_is_one_json_object_with_the_question_and_the_pick() {
        let mut q = vec![0u8; 12];
        q.extend_from_slice(b"\x03www\x07example\x03net\x00\x00\x01\x00\x01");
        let o = Outcome {
            qtype: 1,
            rcode: 0,
            ecs: EcsUse::Used,
            size: 75,
            steered: Some(Steered {
                pop: Some(1),
                reason: AnswerReason::Failover,
            }),
            ..Outcome::default()
        };
        let l = line(
            &q,
            "192.0.2.7".parse().unwrap(),
            Proto::Udp,
            &o,
            3140,
            &["x".into(), "y".into()],
        );
        assert!(!l.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["qname"], "www.example.net.");
        assert_eq!(v["pop"], "y");
        assert_eq!(v["reason"], "failover");
        assert_eq!(v["ecs"], "used");
        assert_eq!(v["us"], 3.1);
        assert_eq!(v["client"], "192.0.2.7");
        assert_eq!(qname(&q[..14]), "", "cut short: nothing");
        assert_eq!(qname(&[0u8; 13]), ".", "the root");
    }
}
