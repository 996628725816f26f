//! Config tests of the availability keys: `pops[].min_up_fraction`,
//! `pops[].capacity.low` / `.high`, `health.all_down`, `admin.state_file`
//! and `zones[].steered[].ttl_failover` (defaults, and errors naming file,
//! line and key).

use super::*;

const ZONE: &str = "zones:
  - origin: sparrow.test
    soa: {mname: ns1, rname: h.sparrow.test.}
    ns: [ns1]
    records:
      - {name: ns1, type: A, data: 192.0.2.53}
    steered:
      - name: www
";

#[test]
fn availability_defaults() {
    let c = ok(BASE);
    assert_eq!(c.admin.state_file, "/var/lib/sparrow/state.json");
    assert_eq!(c.health.all_down, AllDownPolicy::AnswerAll);
    assert_eq!(c.pops[0].min_up_fraction, 0.5);
    assert_eq!(
        (c.pops[0].capacity.low, c.pops[0].capacity.high),
        (0.8, 1.0)
    );
    let c = ok(&format!(
        "{BASE}health:\n  all_down: empty\n{ZONE}        ttl: 60\n        pops: {{x: {{a: [192.0.2.1]}}}}\n      - {{name: w2, ttl: 5, pops: {{x: {{a: [192.0.2.1]}}}}}}\n"
    ));
    assert_eq!(c.health.all_down, AllDownPolicy::Empty);
    let z = zones::parse_zone(&c.zones[0], &c.pops).unwrap();
    // Default min(ttl, 10).
    assert_eq!((z.steered[0].ttl, z.steered[0].ttl_failover), (60, 10));
    assert_eq!((z.steered[1].ttl, z.steered[1].ttl_failover), (5, 5));
}

#[test]
fn availability_errors_name_line_and_key() {
    let pop_y = "  - name: y\n    asn: 65002\n";
    for (extra, key, at) in [
        (
            "    min_up_fraction: 0\n",
            "pops[1].min_up_fraction",
            "min_up_fraction",
        ),
        (
            "    min_up_fraction: 1.5\n",
            "pops[1].min_up_fraction",
            "min_up_fraction",
        ),
        (
            "    capacity: {low: -0.1}\n",
            "pops[1].capacity.low",
            "capacity",
        ),
        (
            "    capacity: {high: 1.5}\n",
            "pops[1].capacity.high",
            "capacity",
        ),
        (
            "    capacity:\n      low: 0.9\n      high: 0.5\n",
            "pops[1].capacity.high",
            "high: 0.5",
        ),
    ] {
        let text = BASE.replace(pop_y, &format!("{pop_y}{extra}"));
        expect_one_in(&text, key, at);
    }
    expect_one(
        "  mode: \"0640\"\n",
        "  mode: \"0640\"\n  state_file: \"\"\n",
        "admin.state_file",
        "state_file",
    );
    expect_one(
        "  mode: \"0640\"\n",
        "  mode: \"0640\"\n  state_file: /var/lib/sparrow/\n",
        "admin.state_file",
        "state_file",
    );
    let text = format!("{BASE}health:\n  all_down: nothing\n");
    let e = expect_one_in(&text, "health.all_down", "all_down");
    assert!(e.msg.contains("answer_all"), "{e}");
    let text = format!(
        "{BASE}{ZONE}        ttl: 30\n        ttl_failover: 60\n        pops: {{x: {{a: [192.0.2.1]}}}}\n"
    );
    let e = expect_one_in(&text, "zones[0].steered[0].ttl_failover", "ttl_failover");
    assert!(e.msg.contains("(30)"), "{e}");
}
