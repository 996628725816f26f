//! Tests of the scrape and readiness against an admin side built from a test
//! config (`admin::tests::serve_config`: a fake RIB, the first peer up).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{exposition, liveness, readiness, Ops};
use crate::admin::tests::serve_config;
use crate::dns::stats::{AnswerReason, DnsStats, Outcome, Steered};
use crate::testutil::TestConfig;

async fn ops(tag: &str, cfg: crate::config::Config) -> (Arc<Ops>, Arc<DnsStats>) {
    let (_, admin) = serve_config(tag, cfg, Default::default()).await;
    let pops = admin.cfg.pops.len();
    let dns = Arc::new(DnsStats::new(pops, 0));
    let publisher = crate::steer::Publisher::new(&admin.cfg, admin.steering.clone()).unwrap();
    let ops = Arc::new(Ops {
        dns: dns.clone(),
        http: Arc::new(crate::http::HttpStats::new(pops)),
        publish: publisher.stats(),
        listening: false.into(),
        admin,
    });
    (ops, dns)
}

#[tokio::test]
async fn readiness_names_the_listeners_and_the_end_of_rib_it_waits_for() {
    let (ops, _) = ops("metrics-ready", TestConfig::two_pops().build()).await;
    let why = readiness(&ops).await;
    assert!(why.iter().any(|w| w.starts_with("listeners")), "{why:?}");
    // The only peer (`py`, a POP peer) carries both families: its End-of-RIB
    // is awaited for each.
    for afi in ["ipv4", "ipv6"] {
        assert!(
            why.iter().any(|w| w.contains(&format!("steering {afi}"))
                && w.contains("End-of-RIB from py")),
            "{why:?}"
        );
    }
    ops.listening.store(true, Ordering::Release);
    assert_eq!(readiness(&ops).await.len(), 2);
    assert!(liveness(&ops).await.is_empty());
}

#[tokio::test]
async fn without_peers_ready_once_listening() {
    let (ops, _) = ops("metrics-nopeers", TestConfig::embedded_default().build()).await;
    assert_eq!(readiness(&ops).await.len(), 1);
    ops.listening.store(true, Ordering::Release);
    assert!(readiness(&ops).await.is_empty());
}

#[tokio::test]
async fn exposition_reads_the_counters_and_the_admin_replies() {
    let (ops, dns) = ops("metrics-expo", TestConfig::two_pops().build()).await;
    let w = dns.udp_worker();
    let o = Outcome {
        qtype: 28,
        size: 90,
        steered: Some(Steered {
            pop: Some(1),
            reason: AnswerReason::Failover,
        }),
        ..Outcome::default()
    };
    w.record(true, &o, 4_000);
    w.record(true, &o, 4_000);
    let t = exposition(&ops).await.unwrap();
    for line in [
        "sparrow_dns_requests_total{proto=\"udp\",family=\"2\",type=\"AAAA\"} 2",
        "sparrow_dns_responses_total{proto=\"udp\",rcode=\"NOERROR\"} 2",
        "sparrow_steering_answers_total{pop=\"y\",reason=\"failover\"} 2",
        "sparrow_dns_request_duration_seconds_count{proto=\"udp\"} 2",
        "sparrow_pop_usable{pop=\"y\"} 1",
        "sparrow_pop_up{pop=\"x\"} 1",
        "sparrow_bgp_session_state{peer=\"py\",role=\"pop\",state=\"idle\"} 1",
        "sparrow_steering_source{family=\"ipv4\",source=\"fallback\"} 1",
        "sparrow_ready 0",
        "sparrow_config_reloads_total{result=\"success\"} 0",
    ] {
        assert!(t.contains(line), "missing {line}:\n{t}");
    }
    assert!(t.contains("# TYPE sparrow_dns_request_duration_seconds histogram"));
}
