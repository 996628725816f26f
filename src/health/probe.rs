//! One run of a network check against one target: `tcp` (connect), `http` /
//! `https` (GET, status in the list, optional body substring) and `dns` (a
//! UDP query built with hickory-proto; the expected RCODE and optionally an
//! answer datum). Each run is bounded by the check's timeout (`timeout`).
//!
//! Used by `runner`; HTTP through `httpget`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::{TcpStream, UdpSocket};

use super::httpget::{self, Get};
use super::hysteresis::Outcome;
use crate::config::{CheckConfig, CheckKind};

/// The port a check connects to (validation guarantees one for tcp).
pub fn port_of(c: &CheckConfig) -> u16 {
    c.port.unwrap_or(match c.kind {
        CheckKind::Https => 443,
        CheckKind::Dns => 53,
        _ => 80,
    })
}

/// Run check `c` once against `addr` (not for `file` checks), bounded by its timeout.
pub async fn run(c: &CheckConfig, addr: IpAddr) -> Outcome {
    let to = Duration::from_secs_f64(c.timeout.max(0.001));
    match tokio::time::timeout(to, run_inner(c, addr)).await {
        Ok(o) => o,
        Err(_) => Outcome::Fail("timeout".into()),
    }
}

async fn run_inner(c: &CheckConfig, addr: IpAddr) -> Outcome {
    let sa = SocketAddr::new(addr, port_of(c));
    match c.kind {
        CheckKind::Tcp => match TcpStream::connect(sa).await {
            Ok(_) => Outcome::Pass,
            Err(e) => Outcome::Fail(httpget::connect_error(&e)),
        },
        CheckKind::Http | CheckKind::Https => http(c, sa).await,
        CheckKind::Dns => dns(c, sa).await,
        CheckKind::File => Outcome::Fail("file checks are not probed".into()),
    }
}

async fn http(c: &CheckConfig, sa: SocketAddr) -> Outcome {
    let g = Get {
        addr: sa,
        tls: c.kind == CheckKind::Https,
        verify: c.tls_verify,
        host: c.host.as_deref(),
        path: c.path.as_deref().unwrap_or("/"),
    };
    match httpget::get(&g).await {
        Err(e) => Outcome::Fail(e),
        Ok(r) if !c.status.contains(&r.status) => Outcome::Fail(format!("http {}", r.status)),
        Ok(r) => match &c.body {
            Some(want) if !contains(&r.body, want.as_bytes()) => {
                Outcome::Fail(format!("http {} body mismatch", r.status))
            }
            _ => Outcome::Pass,
        },
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// RCODE number of a name (`NOERROR`, `NXDOMAIN`, ...); `None` if unknown.
pub fn rcode_number(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        _ => return None,
    })
}

fn rcode_name(n: u16) -> String {
    match n {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// The query a `dns` check sends (`None`: bad qname/qtype, which validation rejects).
pub fn dns_query(c: &CheckConfig, id: u16) -> Option<Vec<u8>> {
    let name = Name::from_str(c.qname.as_deref()?).ok()?;
    let rtype =
        RecordType::from_str(&c.qtype.as_deref().unwrap_or("A").to_ascii_uppercase()).ok()?;
    let mut m = Message::new(
        id,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    m.add_query(Query::query(name, rtype));
    m.to_vec().ok()
}

async fn dns(c: &CheckConfig, sa: SocketAddr) -> Outcome {
    let id = super::runner::random_u16();
    let Some(q) = dns_query(c, id) else {
        return Outcome::Fail("dns: bad qname or qtype".into());
    };
    let bind: SocketAddr = if sa.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("dns socket: {e}")),
    };
    if let Err(e) = sock.connect(sa).await {
        return Outcome::Fail(format!("dns connect: {e}"));
    }
    if let Err(e) = sock.send(&q).await {
        return Outcome::Fail(format!("dns send: {e}"));
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Outcome::Fail("dns port unreachable".into())
            }
            Err(e) => return Outcome::Fail(format!("dns recv: {e}")),
        };
        let Ok(m) = Message::from_vec(&buf[..n]) else {
            return Outcome::Fail("dns: malformed reply".into());
        };
        if m.metadata.id != id {
            continue; // not ours: keep waiting (bounded by the timeout)
        }
        return judge_dns(c, &m);
    }
}

/// Does reply `m` satisfy check `c` (RCODE, and the answer datum if set)?
pub fn judge_dns(c: &CheckConfig, m: &Message) -> Outcome {
    let want = c.rcode.as_deref().and_then(rcode_number).unwrap_or(0);
    let got = u16::from(m.metadata.response_code);
    if got != want {
        return Outcome::Fail(format!("dns {}", rcode_name(got)));
    }
    if let Some(a) = &c.answer {
        let found = m.answers.iter().any(|r| {
            let d = r.data.to_string();
            d == *a || d.trim_end_matches('.') == a.trim_end_matches('.')
        });
        if !found {
            return Outcome::Fail("dns answer missing".into());
        }
    }
    Outcome::Pass
}
