//! Health tests against local servers on 127.0.0.1: each check type passing
//! and failing, a self-signed https server (rcgen), a UDP DNS responder,
//! load polls; and the status folding results into `PopState`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{rdata::A, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::hysteresis::Outcome;
use super::*;
use crate::config::{CapacityConfig, CheckConfig};
use crate::pops::PopState;
use crate::testutil::TestConfig;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn check(yaml: &str) -> CheckConfig {
    serde_yaml::from_str(yaml).unwrap()
}

/// An HTTP server answering every request with `status` and `body`; its port.
async fn http_server(status: u16, body: &'static str) -> u16 {
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let r = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(r.as_bytes()).await;
            });
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn tcp_check() {
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c = check(&format!("{{name: t, type: tcp, port: {port}}}"));
    assert_eq!(probe::run(&c, LO).await, Outcome::Pass);
    drop(l);
    let c = check(&format!(
        "{{name: t, type: tcp, port: {}}}",
        closed_port().await
    ));
    assert_eq!(
        probe::run(&c, LO).await,
        Outcome::Fail("tcp connect refused".into())
    );
}

#[tokio::test]
async fn http_check_status_and_body() {
    let ok = http_server(200, "service ok").await;
    let busy = http_server(503, "busy").await;
    let c = |port: u16, extra: &str| {
        check(&format!(
            "{{name: w, type: http, port: {port}, path: /h, host: www.example.test{extra}}}"
        ))
    };
    assert_eq!(probe::run(&c(ok, ""), LO).await, Outcome::Pass);
    assert_eq!(probe::run(&c(ok, ", body: ok"), LO).await, Outcome::Pass);
    assert_eq!(
        probe::run(&c(ok, ", body: fine"), LO).await,
        Outcome::Fail("http 200 body mismatch".into())
    );
    assert_eq!(
        probe::run(&c(busy, ""), LO).await,
        Outcome::Fail("http 503".into())
    );
    assert_eq!(
        probe::run(&c(busy, ", status: [200, 503]"), LO).await,
        Outcome::Pass
    );
    assert_eq!(
        probe::run(&c(closed_port().await, ""), LO).await,
        Outcome::Fail("tcp connect refused".into())
    );
}

#[tokio::test]
async fn http_check_times_out_on_a_silent_server() {
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    // accepts (backlog) but never answers
    let c = check(&format!(
        "{{name: w, type: http, port: {port}, timeout: 0.2}}"
    ));
    let t = Instant::now();
    assert_eq!(probe::run(&c, LO).await, Outcome::Fail("timeout".into()));
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(l);
}

#[tokio::test]
async fn https_check_with_a_self_signed_certificate() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["www.example.test".to_string()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let scfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(scfg));
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let c = check(&format!(
        "{{name: s, type: https, port: {port}, host: www.example.test, body: healthy}}"
    ));
    assert_eq!(probe::run(&c, LO).await, Outcome::Pass);
    // verifying against the system roots: a self-signed certificate fails
    let c = check(&format!(
        "{{name: s, type: https, port: {port}, host: www.example.test, tls_verify: true}}"
    ));
    match probe::run(&c, LO).await {
        Outcome::Fail(m) => assert!(m.starts_with("tls"), "{m}"),
        Outcome::Pass => panic!("a self-signed certificate passed verification"),
    }
}

/// A UDP DNS server answering every query with `rcode` and one A record 192.0.2.53.
async fn dns_server(rcode: u16) -> u16 {
    let s = UdpSocket::bind((LO, 0)).await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            r.metadata.response_code = rcode.into();
            if let Some(qq) = q.queries.first() {
                r.add_query(qq.clone());
                if rcode == 0 {
                    r.answers.push(Record::from_rdata(
                        qq.name().clone(),
                        30,
                        RData::A(A::new(192, 0, 2, 53)),
                    ));
                }
            }
            let _ = s.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    port
}

#[tokio::test]
async fn dns_check_rcode_and_answer() {
    let ok = dns_server(0).await;
    let nx = dns_server(3).await;
    let c = |port: u16, extra: &str| {
        check(&format!(
            "{{name: d, type: dns, port: {port}, qname: www.example.test.{extra}}}"
        ))
    };
    assert_eq!(probe::run(&c(ok, ""), LO).await, Outcome::Pass);
    assert_eq!(
        probe::run(&c(ok, ", answer: 192.0.2.53"), LO).await,
        Outcome::Pass
    );
    assert_eq!(
        probe::run(&c(ok, ", answer: 192.0.2.54"), LO).await,
        Outcome::Fail("dns answer missing".into())
    );
    assert_eq!(
        probe::run(&c(nx, ""), LO).await,
        Outcome::Fail("dns NXDOMAIN".into())
    );
    assert_eq!(
        probe::run(&c(nx, ", rcode: nxdomain"), LO).await,
        Outcome::Pass
    );
    // nobody there: ICMP port unreachable, or silence until the timeout
    let c = check(&format!(
        "{{name: d, type: dns, port: {}, qname: x., timeout: 0.3}}",
        closed_port().await
    ));
    assert!(!probe::run(&c, LO).await.passed());
}

#[tokio::test]
async fn load_poll_from_url_and_file() {
    let good = http_server(200, "0.42\n").await;
    let bad = http_server(200, "1.5").await;
    let cap = |url: String| CapacityConfig {
        url: Some(url),
        timeout: 1.0,
        ..Default::default()
    };
    let v = load::poll(&cap(format!("http://127.0.0.1:{good}/load"))).await;
    assert_eq!(v, Ok(0.42));
    let e = load::poll(&cap(format!("http://127.0.0.1:{bad}/load"))).await;
    assert!(e.unwrap_err().contains("outside"));
    let path = crate::testutil::temp_path("health-load");
    std::fs::write(&path, "0.9\n").unwrap();
    let c = CapacityConfig {
        file: Some(path.display().to_string()),
        ..Default::default()
    };
    assert_eq!(load::poll(&c).await, Ok(0.9));
    std::fs::write(&path, "lots").unwrap();
    assert!(load::poll(&c).await.is_err());
    let _ = std::fs::remove_file(&path);
}

const TWO_TARGETS: &str = "\
zones:
  - origin: example.test
    soa: {mname: ns1.example.test., rname: h.example.test.}
    ns: [ns1.example.test.]
    steered:
      - name: www
        pops:
          x: {a: [192.0.2.10, 192.0.2.11]}
          y: {a: [192.0.2.20, 192.0.2.21]}
health:
  checks:
    - {name: web, type: http, pops: [y], rise: 2, fall: 2}
    - {name: mon, type: file, file: /nonexistent, pops: [y], rise: 1, fall: 1}
";

#[test]
fn status_folds_checks_into_pop_state() {
    let cfg = TestConfig::two_pops().with(TWO_TARGETS).build();
    let pops = Arc::new(PopState::new(&cfg, None));
    let st = Status::new(&cfg, pops.clone());
    let y = pops.index("y").unwrap();
    assert!(pops.checked(y) && !pops.checked(pops.index("x").unwrap()));
    let snap = st.snapshot();
    assert_eq!(snap.targets.len(), 2, "only y's targets are checked");
    let now = Instant::now();
    let fail = || Outcome::Fail("http 503".into());
    // first result sets the state: target 0 down at once
    st.record(0, y, 0, fail(), now);
    assert_eq!(pops.up_mask(y), 0b10);
    assert_eq!(pops.target_health(y)[0].detail, "http 503 x1");
    st.record(0, y, 0, fail(), now);
    assert_eq!(pops.target_health(y)[0].detail, "http 503 x2");
    // the other check passing does not bring it up: the worst wins
    st.record(1, y, 0, Outcome::Pass, now);
    assert_eq!(pops.up_mask(y), 0b10);
    // rise 2
    st.record(0, y, 0, Outcome::Pass, now);
    assert_eq!(pops.up_mask(y), 0b10);
    st.record(0, y, 0, Outcome::Pass, now);
    assert_eq!(pops.up_mask(y), 0b11);
    assert_eq!(pops.target_health(y)[0].detail, "");
    // the file check takes target 1 down (no count in the detail)
    st.record(1, y, 1, Outcome::Fail("file DOWN".into()), now);
    assert_eq!(pops.up_mask(y), 0b01);
    assert_eq!(pops.target_health(y)[1].detail, "file DOWN");
    let snap = st.snapshot();
    let t1 = &snap.targets[1];
    assert!(!t1.up);
    assert_eq!(t1.checks[1].last.as_deref(), Some("file DOWN"));
    assert_eq!(t1.checks[1].state, Some(false));
    assert_eq!(t1.checks[0].state, None, "web has not run on target 1");
}

#[test]
fn status_publishes_smoothed_load_and_forgets_it_when_stale() {
    let cfg = TestConfig::two_pops()
        .replace(
            "  - {name: y, asn: 65002}\n",
            "  - name: y\n    asn: 65002\n    capacity: {file: /x, interval: 1, timeout: 0.5, smoothing: 0.5}\n",
        )
        .build();
    let pops = Arc::new(PopState::new(&cfg, None));
    let st = Status::new(&cfg, pops.clone());
    let y = pops.index("y").unwrap();
    let t = Instant::now();
    st.record_load(y, Ok(0.8), t);
    assert!((pops.load(y) - 0.8).abs() < 1e-6);
    st.record_load(y, Ok(0.4), t + Duration::from_secs(1));
    assert!((pops.load(y) - 0.6).abs() < 1e-6);
    st.record_load(y, Err("timeout".into()), t + Duration::from_secs(2));
    assert!(
        (pops.load(y) - 0.6).abs() < 1e-6,
        "one failed poll keeps it"
    );
    st.record_load(y, Err("timeout".into()), t + Duration::from_secs(5));
    assert_eq!(pops.load(y), 0.0, "stale after 3 intervals: none (0)");
    assert_eq!(st.snapshot().loads[0].error.as_deref(), Some("timeout"));
}

#[test]
fn dns_query_is_well_formed() {
    let c = check("{name: d, type: dns, qname: www.example.test., qtype: aaaa}");
    let q = dns_query(&c, 0x1234).unwrap();
    let m = Message::from_vec(&q).unwrap();
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(
        m.queries[0].query_type(),
        hickory_proto::rr::RecordType::AAAA
    );
    assert_eq!(port_of(&c), 53);
    let _: SocketAddr = SocketAddr::new(LO, port_of(&c));
}

/// The runner end to end: an http check on 127.0.0.1 (POP y's one target)
/// every 50 ms; the server answers 200, then 503: the target goes down after
/// `fall` results, with the reason.
#[tokio::test]
async fn runner_takes_a_failing_target_down() {
    let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let st = status.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let code = st.load(std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let _ = s.read(&mut buf).await;
                let r = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(r.as_bytes()).await;
            });
        }
    });
    let cfg = Arc::new(
        TestConfig::two_pops()
            .with(&format!(
                "zones:
  - origin: example.test
    soa: {{mname: ns1.example.test., rname: h.example.test.}}
    ns: [ns1.example.test.]
    steered:
      - name: www
        pops:
          x: {{a: [192.0.2.10]}}
          y: {{a: [127.0.0.1]}}
health:
  checks:
    - {{name: web, type: http, port: {port}, pops: [y], interval: 0.05, timeout: 0.04, rise: 2, fall: 3, jitter: 0.2}}
"
            ))
            .build(),
    );
    let pops = Arc::new(PopState::new(&cfg, None));
    let st = Arc::new(Status::new(&cfg, pops.clone()));
    assert!(st.has_work());
    let y = pops.index("y").unwrap();
    let job = tokio::spawn(runner::run(cfg.clone(), pops.clone(), st.clone()));
    let wait = |want: bool| {
        let pops = pops.clone();
        async move {
            for _ in 0..100 {
                if pops.up(y) == want && pops.target_health(y)[0].up == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        }
    };
    assert!(wait(true).await);
    // wait for a few passes first
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(st.snapshot().targets[0].checks[0].state, Some(true));
    status.store(503, std::sync::atomic::Ordering::Relaxed);
    assert!(wait(false).await, "down after fall");
    let d = pops.target_health(y)[0].detail.clone();
    assert!(d.starts_with("http 503 x"), "{d}");
    status.store(200, std::sync::atomic::Ordering::Relaxed);
    assert!(wait(true).await, "up after rise");
    job.abort();
}
