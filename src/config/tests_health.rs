//! Config tests of `health` and the load-source keys of `pops[].capacity`:
//! defaults, and each bad value reported with its file, line and key.

use super::*;
use crate::testutil::{config_head, line_of, parse_errs as errs, parse_ok as ok};

/// A valid config with every kind of check and a load URL; tests replace one
/// piece and expect one error.
const BASE: &str = concat!(
    config_head!(),
    "  - name: x
    asn: 65001
    capacity:
      url: http://192.0.2.9:8080/load
      interval: 2
      timeout: 1
      smoothing: 0.5
  - name: y
    asn: 65002
    capacity:
      file: /run/y-load
admin:
  socket: /tmp/t.sock
health:
  concurrency: 8
  checks:
    - name: web
      type: http
      path: /health
      host: www.example.test
      status: [200, 204]
      body: ok
      interval: 1
      timeout: 0.5
      rise: 2
      fall: 3
      jitter: 0.1
    - name: tls
      type: https
      pops: [y]
      tls_verify: true
    - name: port
      type: tcp
      port: 8443
    - name: ns
      type: dns
      qname: www.example.test.
      qtype: AAAA
      rcode: NOERROR
      answer: 2001:db8::1
    - name: monitor
      type: file
      file: /run/sparrow/health
"
);

fn expect_one(from: &str, to: &str, key: &str, at: &str) {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` not unique in BASE");
    let text = BASE.replace(from, to);
    let es = errs(&text);
    assert_eq!(es.len(), 1, "{text}: {}", format_errors(&es));
    let e = &es[0];
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.line, line_of(&text, at), "{e}");
    assert_eq!(e.file, "t.yaml");
}

#[test]
fn base_is_valid_with_defaults() {
    let c = ok(BASE);
    assert_eq!(c.health.checks.len(), 5);
    assert_eq!(c.health.concurrency, 8);
    let tls = &c.health.checks[1];
    assert_eq!(
        (tls.interval, tls.timeout, tls.rise, tls.fall, tls.jitter),
        (5.0, 2.0, 2, 3, 0.1)
    );
    assert_eq!(tls.status, [200]);
    assert_eq!(c.pops[1].capacity.interval, 5.0);
    assert_eq!(c.pops[1].capacity.stale_after, None);
    let none =
        ok("local_asn: 65001\nrouter_id: 10.0.0.1\npop: x\npops:\n  - {name: x, asn: 65001}\n");
    assert!(none.health.checks.is_empty());
    assert_eq!(none.health.concurrency, 32);
}

#[test]
fn check_errors_name_line_and_key() {
    expect_one(
        "      pops: [y]\n",
        "      pops: [y, z]\n",
        "health.checks[1].pops[1]",
        "pops: [y, z]",
    );
    expect_one(
        "      port: 8443\n",
        "",
        "health.checks[2].port",
        "- name: port",
    );
    expect_one(
        "      port: 8443\n",
        "      port: 0\n",
        "health.checks[2].port",
        "port: 0",
    );
    expect_one(
        "      qname: www.example.test.\n",
        "",
        "health.checks[3].qname",
        "- name: ns",
    );
    expect_one(
        "      qtype: AAAA\n",
        "      qtype: BOGUS\n",
        "health.checks[3].qtype",
        "qtype: BOGUS",
    );
    expect_one(
        "      rcode: NOERROR\n",
        "      rcode: FINE\n",
        "health.checks[3].rcode",
        "rcode: FINE",
    );
    expect_one(
        "      file: /run/sparrow/health\n",
        "",
        "health.checks[4].file",
        "- name: monitor",
    );
    expect_one(
        "      interval: 1\n",
        "      interval: 0\n",
        "health.checks[0].interval",
        "interval: 0",
    );
    expect_one(
        "      timeout: 0.5\n",
        "      timeout: 1.5\n",
        "health.checks[0].timeout",
        "timeout: 1.5",
    );
    expect_one(
        "      timeout: 0.5\n",
        "      timeout: 0\n",
        "health.checks[0].timeout",
        "timeout: 0\n",
    );
    expect_one(
        "      rise: 2\n",
        "      rise: 0\n",
        "health.checks[0].rise",
        "rise: 0",
    );
    expect_one(
        "      fall: 3\n",
        "      fall: 0\n",
        "health.checks[0].fall",
        "fall: 0",
    );
    expect_one(
        "      jitter: 0.1\n",
        "      jitter: 1\n",
        "health.checks[0].jitter",
        "jitter: 1",
    );
    expect_one(
        "      jitter: 0.1\n",
        "      jitter: -0.1\n",
        "health.checks[0].jitter",
        "jitter: -0.1",
    );
    expect_one(
        "  concurrency: 8\n",
        "  concurrency: 0\n",
        "health.concurrency",
        "concurrency: 0",
    );
    expect_one(
        "      path: /health\n",
        "      path: health\n",
        "health.checks[0].path",
        "path: health",
    );
    expect_one(
        "      status: [200, 204]\n",
        "      status: [200, 999]\n",
        "health.checks[0].status[1]",
        "status: [200, 999]",
    );
    expect_one(
        "    - name: tls\n",
        "    - name: web\n",
        "health.checks[1].name",
        "- name: web\n      type: https",
    );
    // a key another kind of check reads
    expect_one(
        "      port: 8443\n",
        "      port: 8443\n      qname: x.\n",
        "health.checks[2].qname",
        "qname: x.",
    );
    expect_one(
        "      type: https\n",
        "      type: http\n",
        "health.checks[1].tls_verify",
        "tls_verify: true",
    );
}

#[test]
fn capacity_source_errors_name_line_and_key() {
    expect_one(
        "      url: http://192.0.2.9:8080/load\n",
        "      url: ftp://192.0.2.9/load\n",
        "pops[0].capacity.url",
        "url: ftp",
    );
    expect_one(
        "      url: http://192.0.2.9:8080/load\n",
        "      url: http:///load\n",
        "pops[0].capacity.url",
        "url: http:///load",
    );
    expect_one(
        "      file: /run/y-load\n",
        "      file: /run/y-load\n      url: http://192.0.2.1/\n",
        "pops[1].capacity.file",
        "file: /run/y-load",
    );
    expect_one(
        "      interval: 2\n",
        "      interval: -1\n",
        "pops[0].capacity.interval",
        "interval: -1",
    );
    expect_one(
        "      timeout: 1\n",
        "      timeout: 3\n",
        "pops[0].capacity.timeout",
        "timeout: 3",
    );
    expect_one(
        "      smoothing: 0.5\n",
        "      smoothing: 0\n",
        "pops[0].capacity.smoothing",
        "smoothing: 0\n",
    );
    expect_one(
        "      smoothing: 0.5\n",
        "      smoothing: 1.5\n",
        "pops[0].capacity.smoothing",
        "smoothing: 1.5",
    );
    expect_one(
        "      smoothing: 0.5\n",
        "      smoothing: 0.5\n      stale_after: 0\n",
        "pops[0].capacity.stale_after",
        "stale_after: 0",
    );
}

#[test]
fn unknown_check_key_and_type_are_schema_errors() {
    let es = errs(&BASE.replace("      body: ok\n", "      bodi: ok\n"));
    assert!(
        es.iter().any(|e| e.key.contains("bodi")),
        "{}",
        format_errors(&es)
    );
    let es = errs(&BASE.replace("      type: tcp\n", "      type: icmp\n"));
    assert!(!es.is_empty());
}
