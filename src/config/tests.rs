//! Config tests: schema and semantic errors with their lines and keys, the
//! locator, defaults, and the example files.

use std::net::Ipv4Addr;
use std::path::Path;

use super::validate::parse_mode;
use super::*;
use crate::testutil::{
    config_head, line_of, parse_errs as errs, parse_ok as ok, repo_path, TestConfig,
};
use crate::types::Afi;

const POP_X: &str = include_str!("../../bgp-configs/two-pop/pop-x.yaml");
const POP_Y: &str = include_str!("../../bgp-configs/two-pop/pop-y.yaml");

/// A valid config; tests replace one piece and expect one error.
const BASE: &str = concat!(
    config_head!(),
    "  - name: x
    asn: 65001
  - name: y
    asn: 65002
admin:
  socket: /tmp/t.sock
  mode: \"0640\"
logging:
  level: info
peers:
  - name: up
    address: 192.0.2.1
    remote_asn: 64510
    role: upstream
    gtsm: true
    password: secret
    max_prefix:
      ipv4:
        limit: 1000
  - name: other
    address: 198.51.100.2
    local_address: 203.0.113.10
    remote_asn: 65002
    role: pop
    multihop: 3
    families:
      - ipv4
      - ipv6
"
);

/// Replace `from` (must occur exactly once) with `to`, expect exactly one error
/// naming `key` on the line containing `at`.
fn expect_one(from: &str, to: &str, key: &str, at: &str) -> ConfigError {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` not unique in BASE");
    expect_one_in(&BASE.replace(from, to), key, at)
}

/// Expect exactly one error in `text`, naming `key` on the line containing `at`.
fn expect_one_in(text: &str, key: &str, at: &str) -> ConfigError {
    let es = errs(text);
    assert_eq!(es.len(), 1, "{text}: {}", format_errors(&es));
    let e = es.into_iter().next().unwrap();
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.line, line_of(text, at), "{e}");
    assert_eq!(e.file, "t.yaml");
    e
}

/// Like `expect_one`, but other errors may come along.
fn expect_some(from: &str, to: &str, key: &str, at: &str) {
    let text = BASE.replace(from, to);
    let es = errs(&text);
    let e = es
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no error for {key}: {}", format_errors(&es)));
    assert_eq!(e.line, line_of(&text, at), "{e}");
}

#[test]
fn base_is_valid() {
    let c = ok(BASE);
    assert_eq!(c.local_pop().name, "x");
    assert_eq!(c.pop_by_asn(65002).map(|p| p.name.as_str()), Some("y"));
    assert!(c.pop_by_asn(1).is_none());
    assert_eq!(c.admin_mode(), 0o640);
    assert!(c.peers[0].is_ebgp(c.local_asn));
    assert_eq!(c.peers[1].families, vec![Afi::Ipv4, Afi::Ipv6]);
    assert_eq!(c.peer_by_name("other").map(|p| p.role), Some(Role::Pop));
}

#[test]
fn derived_tables() {
    // This POP second in the list: its index is 1, wherever it is asked for.
    let c = TestConfig::two_pops()
        .pop("z", 65003)
        .replace("pop: x", "pop: y")
        .replace("local_asn: 65001", "local_asn: 65002")
        .replace("remote_asn: 65002", "remote_asn: 65003")
        .build();
    assert_eq!(c.local_pop_index(), 1);
    assert_eq!(c.local_pop().name, "y");
    assert_eq!(c.pop_index_by_asn(65003), Some(2));
    assert_eq!(c.pop_index_by_asn(65001), Some(0));
    assert_eq!(c.pop_index_by_asn(64999), None);
    assert_eq!(c.steering.default_pop_index(&c), 1);
}

#[test]
fn embedded_default_is_valid() {
    let c = ok(DEFAULT_CONFIG);
    assert!(c.peers.is_empty());
    assert!(!c.listen.enabled, "default must not need root");
    // A path a user without root can create (the schema default cannot be).
    assert_eq!(c.admin.socket, "/tmp/sparrow.sock");
    assert_eq!(c.admin_mode(), 0o600);
    assert_eq!(c.local_pop().asn, c.local_asn);
    let d = Config::embedded_default();
    assert_eq!(d.pop, c.pop);
}

#[test]
fn defaults_of_omitted_keys() {
    let c = ok("local_asn: 1\nrouter_id: 1.2.3.4\npop: a\npops:\n  - name: a\n    asn: 1\npeers:\n  - name: p\n    address: 2001:db8::1\n    remote_asn: 2\n    role: upstream\n");
    let p = &c.peers[0];
    assert_eq!(p.port, 179);
    assert_eq!(p.hold_time, 90);
    assert_eq!(p.connect_retry, 5);
    assert_eq!(p.restart_time, 120);
    assert_eq!(c.selection_deferral, 90);
    assert!(!p.graceful_restart && !p.passive && !p.gtsm);
    assert!(p.enforce_first_as);
    assert_eq!(p.families, vec![Afi::Ipv4, Afi::Ipv6]);
    assert_eq!(p.multihop, None);
    assert_eq!(p.max_prefix, MaxPrefix::default());
    assert!(c.listen.enabled);
    assert_eq!(c.listen.port, 179);
    assert_eq!(c.admin.socket, "/run/sparrow/sparrow.sock");
    assert_eq!(c.admin.socket, DEFAULT_ADMIN_SOCKET);
    assert_eq!(c.admin.state_file, "/var/lib/sparrow/state.json");
    assert_eq!(c.logging.level, "info");
    assert_eq!(c.logging.format, LogFormat::Text);
}

#[test]
fn two_pop_examples_are_valid_and_match() {
    let x = ok(POP_X);
    let y = ok(POP_Y);
    assert_eq!(
        (x.local_asn, x.router_id),
        (65001, Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(y.local_asn, 65002);
    // X's upstream: eBGP, GTSM, MD5, max-prefix.
    let up = &x.peers[0];
    assert_eq!(up.role, Role::Upstream);
    assert_eq!(
        (up.remote_asn, up.address.to_string().as_str()),
        (64510, "192.0.2.1")
    );
    assert!(up.gtsm && up.password.is_some() && up.max_prefix.ipv4.is_some());
    // Y's upstream: iBGP.
    assert_eq!(y.peers[0].role, Role::Upstream);
    assert!(!y.peers[0].is_ebgp(y.local_asn));
    // The pop peers point at each other, multihop 3, same password.
    let (xp, yp) = (&x.peers[1], &y.peers[1]);
    assert_eq!((xp.role, yp.role), (Role::Pop, Role::Pop));
    assert_eq!(xp.remote_asn, y.local_asn);
    assert_eq!(yp.remote_asn, x.local_asn);
    assert_eq!(Some(xp.address), yp.local_address);
    assert_eq!(Some(yp.address), xp.local_address);
    assert_eq!((xp.multihop, yp.multihop), (Some(3), Some(3)));
    assert_eq!(xp.password, yp.password);
}

#[test]
fn example_files_on_disk_load() {
    let dir = repo_path("bgp-configs/two-pop");
    for f in ["pop-x.yaml", "pop-y.yaml"] {
        if let Err(es) = check(&dir.join(f)) {
            panic!("{}", format_errors(&es));
        }
    }
    let es = load(Path::new("/nonexistent/sparrow.yaml")).unwrap_err();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].line, 0);
}

#[test]
fn semantic_errors_name_line_and_key() {
    expect_one("local_asn: 65001", "local_asn: 0", "local_asn", "local_asn");
    expect_one(
        "router_id: 10.0.0.1",
        "router_id: 0.0.0.0",
        "router_id",
        "router_id",
    );
    expect_one("pop: x", "pop: z", "pop", "pop: z");
    expect_one(
        "name: y\n",
        "name: x\n",
        "pops[1].name",
        "  - name: x\n    asn: 65002",
    );
    // Also makes peers[1].remote_asn (65002) unknown.
    expect_some(
        "    asn: 65002",
        "    asn: 65001",
        "pops[1].asn",
        "asn: 65001\nadmin",
    );
    expect_one(
        "    asn: 65001\n",
        "    asn: 65003\n",
        "pops[0].asn",
        "asn: 65003",
    );
    expect_one(
        "name: other",
        "name: up",
        "peers[1].name",
        "name: up\n    address: 198",
    );
    expect_one(
        "address: 198.51.100.2",
        "address: 192.0.2.1",
        "peers[1].address",
        "    address: 192.0.2.1\n    local",
    );
    expect_one(
        "remote_asn: 65002",
        "remote_asn: 65009",
        "peers[1].remote_asn",
        "remote_asn: 65009",
    );
}

#[test]
fn more_semantic_errors() {
    let long_pw = format!("password: {}", "k".repeat(81));
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "remote_asn: 65002",
            "remote_asn: 65001",
            "peers[1].remote_asn",
            "remote_asn: 65001",
        ),
        (
            "remote_asn: 64510",
            "remote_asn: 23456",
            "peers[0].remote_asn",
            "23456",
        ),
        (
            "role: upstream\n",
            "role: upstream\n    hold_time: 2\n",
            "peers[0].hold_time",
            "hold_time: 2",
        ),
        (
            "multihop: 3",
            "multihop: 0",
            "peers[1].multihop",
            "multihop: 0",
        ),
        (
            "gtsm: true",
            "gtsm: true\n    multihop: 2",
            "peers[0].gtsm",
            "gtsm: true",
        ),
        (
            "role: pop\n",
            "role: pop\n    gtsm: true\n",
            "peers[1].gtsm",
            "gtsm: true\n    multihop",
        ),
        (
            "local_address: 203.0.113.10",
            "local_address: 2001:db8::1",
            "peers[1].local_address",
            "local_address",
        ),
        (
            "password: secret",
            "password: \"\"",
            "peers[0].password",
            "password",
        ),
        (
            "limit: 1000",
            "limit: 0",
            "peers[0].max_prefix.ipv4.limit",
            "limit: 0",
        ),
        (
            "role: upstream\n",
            "role: upstream\n    restart_time: 4096\n",
            "peers[0].restart_time",
            "restart_time",
        ),
        (
            "      - ipv4\n      - ipv6\n",
            "      - ipv4\n      - ipv4 # again\n",
            "peers[1].families[1]",
            "ipv4 # again",
        ),
        (
            "remote_asn: 64510",
            "remote_asn: 65001",
            "peers[0].gtsm",
            "gtsm: true",
        ),
        (
            "password: secret",
            &long_pw,
            "peers[0].password",
            "password",
        ),
        (
            "    families:\n      - ipv4\n      - ipv6\n",
            "    families: []\n",
            "peers[1].families",
            "families",
        ),
        ("mode: \"0640\"", "mode: \"0800\"", "admin.mode", "mode"),
        ("mode: \"0640\"", "mode: \"01777\"", "admin.mode", "mode"),
        (
            "level: info",
            "level: info, debug",
            "logging.level",
            "level",
        ),
        ("level: info", "level: \"\"", "logging.level", "level"),
        (
            "level: info",
            "level: sparrow=loud",
            "logging.level",
            "level",
        ),
        (
            "role: upstream\n",
            "role: upstream\n    passive: true\n",
            "peers[0].passive",
            "passive",
        ),
        (
            "role: upstream\n",
            "role: upstream\n    connect_retry: 0\n",
            "peers[0].connect_retry",
            "connect_retry",
        ),
        (
            "router_id: 10.0.0.1\n",
            "router_id: 10.0.0.1\nselection_deferral: 3601\n",
            "selection_deferral",
            "selection_deferral",
        ),
    ];
    for &(from, to, key, at) in cases {
        let mut text = BASE.replace(from, to);
        if key == "peers[0].passive" {
            text.push_str("listen:\n  enabled: false\n");
        }
        assert_ne!(text, BASE, "{from}");
        expect_one_in(&text, key, at);
    }
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = expect_one(
        "    gtsm: true\n",
        "    gtsm: true\n    hold_tmie: 30\n",
        "peers[0].hold_tmie",
        "hold_tmie",
    );
    assert!(e.msg.contains("did you mean `hold_time`"), "{e}");

    // Top level, nested map, and a name nothing resembles.
    let text = format!("{BASE}qqq: []\n");
    let es = errs(&text);
    assert_eq!(
        (es[0].key.as_str(), es[0].line),
        ("qqq", line_of(&text, "qqq"))
    );
    assert!(es[0].msg.contains("expected one of"), "{}", es[0]);
    let text = BASE.replace("limit: 1000", "limit: 1000\n        actoin: warn");
    let es = errs(&text);
    assert_eq!(es[0].key, "peers[0].max_prefix.ipv4.actoin");
    assert_eq!(es[0].line, line_of(&text, "actoin"));
}

#[test]
fn type_errors_name_their_line() {
    let e = expect_one_in(
        &BASE.replace("multihop: 3", "multihop: three"),
        "peers[1].multihop",
        "three",
    );
    assert!(e.msg.contains("invalid type"), "{e}");

    // (from, to, key); the error stands on the line of `to`.
    for (from, to, key) in [
        ("multihop: 3", "multihop: 256", "peers[1].multihop"),
        (
            "address: 192.0.2.1",
            "address: 192.0.2.999",
            "peers[0].address",
        ),
        ("role: pop", "role: peer", "peers[1].role"),
        ("router_id: 10.0.0.1", "router_id: 2001:db8::1", "router_id"),
        ("local_asn: 65001", "local_asn: 4294967296", "local_asn"),
        ("level: info", "level: [info]", "logging.level"),
        ("gtsm: true", "gtsm: yes please", "peers[0].gtsm"),
    ] {
        expect_one_in(&BASE.replace(from, to), key, to);
    }
}

#[test]
fn missing_key_points_at_its_map() {
    expect_one(
        "    remote_asn: 64510\n",
        "",
        "peers[0].remote_asn",
        "- name: up",
    );
    let es = errs(&BASE.replace("pop: x\n", ""));
    assert_eq!(es[0].key, "pop");
    assert!(es[0].msg.contains("missing field"), "{}", es[0]);
}

#[test]
fn all_schema_errors_are_reported() {
    let text = BASE
        .replace("  socket: /tmp/t.sock", "  sockt: /tmp/t.sock")
        .replace("    gtsm: true\n", "    gtsm: maybe\n")
        .replace("    remote_asn: 64510\n", "")
        .replace("multihop: 3", "multihop: 3\n    bogus: 1")
        .replace("      - ipv6", "      - ipx");
    let es = errs(&text);
    let got: Vec<(String, usize)> = es.iter().map(|e| (e.key.clone(), e.line)).collect();
    let want = vec![
        ("admin.sockt".to_string(), line_of(&text, "sockt")),
        (
            "peers[0].remote_asn".to_string(),
            line_of(&text, "- name: up"),
        ),
        ("peers[0].gtsm".to_string(), line_of(&text, "maybe")),
        ("peers[1].bogus".to_string(), line_of(&text, "bogus")),
        ("peers[1].families".to_string(), line_of(&text, "families")),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in\n{}", format_errors(&es));
    }
    assert_eq!(got.len(), want.len(), "{}", format_errors(&es));
    // Sorted by line.
    assert!(es.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn all_semantic_errors_are_reported() {
    let text = BASE
        .replace("router_id: 10.0.0.1", "router_id: 0.0.0.0")
        .replace(
            "multihop: 3",
            "multihop: 3\n    hold_time: 1\n    restart_time: 5000",
        )
        .replace("password: secret", "password: \"\"");
    let es = errs(&text);
    let keys: Vec<&str> = es.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "router_id",
            "peers[0].password",
            "peers[1].hold_time",
            "peers[1].restart_time"
        ],
        "{}",
        format_errors(&es)
    );
}

#[test]
fn yaml_syntax_error_names_line() {
    let text = "local_asn: 65001\nrouter_id: 10.0.0.1\npops:\n  - name: x\n   asn: 1\n";
    let es = errs(text);
    assert_eq!(es.len(), 1);
    assert!(es[0].line >= 4, "{}", es[0]);
    let es = errs("");
    assert_eq!(es.len(), 1, "{}", format_errors(&es));
}

#[test]
fn error_display() {
    let e = ConfigError {
        file: "a.yaml".into(),
        line: 3,
        key: "peers[1].hold_time".into(),
        msg: "bad".into(),
    };
    assert_eq!(e.to_string(), "a.yaml:3: peers[1].hold_time: bad");
    let e = ConfigError {
        line: 0,
        key: String::new(),
        ..e
    };
    assert_eq!(e.to_string(), "a.yaml: bad");
}

#[test]
fn admin_mode_forms() {
    assert_eq!(parse_mode("0600"), Some(0o600));
    assert_eq!(parse_mode("600"), Some(0o600));
    assert_eq!(parse_mode("0o644"), Some(0o644));
    assert_eq!(parse_mode("0777"), Some(0o777));
    for bad in ["", "0800", "1777", "rw", "-600", "0o"] {
        assert_eq!(parse_mode(bad), None, "{bad}");
    }
    // Unquoted, YAML would read 0660 as a number; serde gives us the text.
    let c = ok(&BASE.replace("mode: \"0640\"", "mode: 0660"));
    assert_eq!(c.admin_mode(), 0o660);
}

#[test]
fn locator_walks_block_yaml() {
    let text = "\
# comment
a: 1
b:
  c: 2   # trailing comment
  d:
    - x
    - y: 3
      z: 4
list:
- name: one
  v: 1
- name: two
  inner:
    k: \"#not a comment\"
\"quoted\": 5
flow: [1, 2]
";
    let l = Locator::new(text);
    assert_eq!(l.line("a"), 2);
    assert_eq!(l.line("b.c"), 4);
    assert_eq!(l.line("b.d"), 5);
    assert_eq!(l.line("b.d[0]"), 6);
    assert_eq!(l.line("b.d[1]"), 7);
    assert_eq!(l.line("b.d[1].y"), 7);
    assert_eq!(l.line("b.d[1].z"), 8);
    assert_eq!(l.line("list[0].v"), 11);
    assert_eq!(l.line("list[1]"), 12);
    assert_eq!(l.line("list[1].inner.k"), 14);
    assert_eq!(l.line("quoted"), 15);
    // Fallbacks: to the deepest key found.
    assert_eq!(l.line("flow[1]"), 16);
    assert_eq!(l.line("b.nope"), 3);
    assert_eq!(l.line("list[7].v"), 9);
    assert_eq!(l.line("nope"), 0);
    // A key of the same name at a deeper level is not taken for the top one.
    assert_eq!(l.line("v"), 0);
    assert_eq!(l.line("k"), 0);
}

#[test]
fn bad_required_top_level_key_does_not_hide_later_errors() {
    let text = BASE
        .replace("local_asn: 65001", "local_asn: sixty-five")
        .replace("multihop: 3", "multihop: 3\n    bogus: 1");
    let es = errs(&text);
    let keys: Vec<&str> = es.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["local_asn", "peers[1].bogus"],
        "{}",
        format_errors(&es)
    );
    assert_eq!(es[1].line, line_of(&text, "bogus"));
}

#[test]
fn duplicate_key_names_second_occurrence() {
    let text = BASE.replace("    gtsm: true\n", "    gtsm: true\n    gtsm: false\n");
    let es = errs(&text);
    assert_eq!(es.len(), 1, "{}", format_errors(&es));
    assert_eq!(es[0].key, "peers[0].gtsm");
    assert_eq!(es[0].line, line_of(&text, "gtsm: false"));
}

#[test]
fn dns_tcp_keys_defaults_and_errors() {
    let d = ok(BASE).dns;
    assert_eq!(
        (
            d.tcp_idle_timeout,
            d.tcp_max_connections,
            d.tcp_max_per_client
        ),
        (10, 1000, 64)
    );
    // The old name of the idle timeout still loads; `udp_engine: fast` too.
    let c = ok(&format!(
        "{BASE}dns:\n  tcp_timeout: 7\n  udp_engine: fast\n  tcp_max_per_client: 3\n"
    ));
    assert_eq!((c.dns.tcp_idle_timeout, c.dns.tcp_max_per_client), (7, 3));
    for (yaml, key) in [
        ("udp_engine: hickory", "dns.udp_engine"),
        ("udp_engine: turbo", "dns.udp_engine"),
        ("max_in_flight: 100", "dns.max_in_flight"),
        ("tcp_idle_timeout: 0", "dns.tcp_idle_timeout"),
        ("tcp_max_connections: 0", "dns.tcp_max_connections"),
        ("tcp_max_per_client: 0", "dns.tcp_max_per_client"),
    ] {
        let e = expect_one_in(&format!("{BASE}dns:\n  {yaml}\n"), key, yaml);
        if yaml.contains("hickory") {
            assert!(e.msg.contains("removed") && e.msg.contains("`fast`"), "{e}");
        }
    }
}

/// A directory with `t.yaml` (zone `sparrow.test` with `file: sparrow.zone`
/// and `yaml` appended to the zone) and `sparrow.zone` (`zone`).
fn zone_file_config(name: &str, zone: &str, yaml: &str) -> (std::path::PathBuf, String) {
    let dir = crate::testutil::temp_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sparrow.zone"), zone).unwrap();
    let text = format!(
        "{}zones:\n  - origin: sparrow.test\n    file: sparrow.zone\n{yaml}",
        crate::testutil::TWO_POPS
    );
    let path = dir.join("t.yaml");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

const ZONE_FILE: &str = "\
$ORIGIN sparrow.test.
@   IN SOA ns1 hostmaster ( 3 14400 3600 1209600 300 )
    IN NS  ns1
ns1 IN A   192.0.2.53
www 300 IN A 192.0.2.80
txt IN TXT \"from the file\"
";

#[test]
fn zone_file_loads_relative_to_the_config_and_merges_yaml() {
    let (path, _) = zone_file_config(
        "zf-ok",
        ZONE_FILE,
        "    records:\n      - {name: www, type: TXT, data: '\"yaml\"'}\n    steered:\n      - {name: cdn, pops: {x: {a: [192.0.2.10]}}}\n",
    );
    let cfg = load(&path).unwrap();
    let spec = zones::parse_zone(&cfg.zones[0], &cfg.pops).unwrap();
    assert_eq!(spec.soa.serial, 3);
    assert!(spec.ns.is_empty(), "apex NS from the file");
    let owners: Vec<String> = spec.records.iter().map(|r| r.owner.to_ascii()).collect();
    for o in [
        "sparrow.test.",
        "ns1.sparrow.test.",
        "www.sparrow.test.",
        "txt.sparrow.test.",
    ] {
        assert!(owners.iter().any(|x| x == o), "{o} in {owners:?}");
    }
    assert_eq!(spec.steered.len(), 1);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn zone_file_conflicts_name_file_line_and_owner() {
    // A YAML record at an owner/type the file has.
    let (path, text) = zone_file_config(
        "zf-dup",
        ZONE_FILE,
        "    records:\n      - {name: www, type: A, data: 192.0.2.81}\n    steered:\n      - {name: ns1, pops: {x: {a: [192.0.2.10]}}}\n",
    );
    let errs = load(&path).unwrap_err();
    let zf = path
        .parent()
        .unwrap()
        .join("sparrow.zone")
        .display()
        .to_string();
    let e = errs
        .iter()
        .find(|e| e.key == "zones[0].records[0].type")
        .expect("dup");
    assert_eq!(e.line, line_of(&text, "{name: www"));
    assert!(
        e.msg.contains("www.sparrow.test.") && e.msg.contains(&format!("{zf}:5")),
        "{e}"
    );
    let e = errs
        .iter()
        .find(|e| e.key == "zones[0].steered[0].name")
        .expect("steered");
    assert!(e.msg.contains(&format!("{zf}:4")), "{e}");
    // A CNAME beside other data in the file: the file's line.
    std::fs::write(
        path.parent().unwrap().join("sparrow.zone"),
        format!("{ZONE_FILE}www IN CNAME ns1\n"),
    )
    .unwrap();
    std::fs::write(&path, text.split("    records:").next().unwrap()).unwrap();
    let errs = load(&path).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].file.as_str(), errs[0].line),
        (zf.as_str(), 7),
        "{}",
        errs[0]
    );
    assert!(errs[0].msg.contains("www.sparrow.test.") && errs[0].msg.contains("CNAME"));
    // A syntax error (a record spanning lines is found at its first line).
    std::fs::write(
        path.parent().unwrap().join("sparrow.zone"),
        format!("{ZONE_FILE}mx IN MX ( ten\n  mail )\n"),
    )
    .unwrap();
    let errs = load(&path).unwrap_err();
    assert_eq!(
        (errs[0].file.as_str(), errs[0].line),
        (zf.as_str(), 7),
        "{}",
        errs[0]
    );
    // A missing file: the config's `file` key.
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let errs = errs_missing();
    assert!(
        errs[0].key == "zones[0].file" && errs[0].msg.contains("cannot read"),
        "{errs:?}"
    );
}

fn errs_missing() -> Vec<ConfigError> {
    errs(&format!(
        "{}zones:\n  - origin: sparrow.test\n    file: /nonexistent/sparrow.zone\n",
        crate::testutil::TWO_POPS
    ))
}

#[test]
fn default_soa_timers_meet_zonemaster() {
    let cfg = ok(&format!(
        "{}zones:\n  - {{origin: a.test, soa: {{mname: ns, rname: h.a.test.}}, ns: [ns]}}\n",
        crate::testutil::TWO_POPS
    ));
    let s = cfg.zones[0].soa.as_ref().unwrap();
    assert!(s.refresh >= 14_400 && s.retry >= 3_600 && s.retry < s.refresh);
    assert!(s.expire >= 604_800 && s.expire >= 7 * s.refresh);
    assert!((300..=86_400).contains(&s.minimum));
}

#[test]
fn dns_rrl_is_off_by_default_and_checked() {
    assert!(ok(BASE).dns.rrl.is_none(), "off unless configured");
    let on = format!("{BASE}dns:\n  rrl:\n    rate: 20\n    slip: 2\n    exempt: [192.0.2.0/24]\n");
    let r = ok(&on).dns.rrl.unwrap();
    assert_eq!(
        (r.rate, r.slip, r.ipv4_prefix, r.ipv6_prefix),
        (20, 2, 24, 56)
    );
    assert_eq!(r.exempt_prefixes().len(), 1);
    for (bad, key) in [
        ("rate: 0", "dns.rrl.rate"),
        ("slip: 11", "dns.rrl.slip"),
        ("ipv4_prefix: 33", "dns.rrl.ipv4_prefix"),
        ("ipv6_prefix: 0", "dns.rrl.ipv6_prefix"),
        ("table_size: 0", "dns.rrl.table_size"),
        ("exempt: [192.0.2.1/24]", "dns.rrl.exempt[0]"),
    ] {
        let text = format!("{BASE}dns:\n  rrl:\n    rate: 20\n    {bad}\n")
            .replace("rate: 20\n    rate: 0", "rate: 0");
        expect_one_in(&text, key, bad);
    }
    let text = format!("{BASE}dns:\n  rrl:\n    rate: 20\n    burst: 5\n");
    expect_one_in(&text, "dns.rrl.burst", "burst: 5");
}

#[path = "tests_availability.rs"]
mod availability;

#[test]
fn max_pops_load_and_one_more_names_its_entry() {
    let c = TestConfig::two_pops().numbered_pops(MAX_POPS).build();
    assert_eq!(MAX_POPS, 1024);
    assert_eq!(c.pops.len(), MAX_POPS);
    assert_eq!(c.pops[1023].name, "p1023");
    assert_eq!(
        c.pop_index_by_asn(crate::testutil::numbered_pop_asn(1023)),
        Some(1023)
    );
    let t = TestConfig::two_pops().numbered_pops(MAX_POPS + 1);
    let es = t.errors();
    assert_eq!(es.len(), 1, "{}", format_errors(&es));
    let e = &es[0];
    assert_eq!((e.file.as_str(), e.key.as_str()), ("t.yaml", "pops[1024]"));
    assert_eq!(e.line, line_of(t.text(), "{name: p1024,"));
    assert_eq!(
        e.to_string(),
        format!(
            "t.yaml:{}: pops[1024]: 1025 POPs configured, at most 1024 are supported",
            e.line
        )
    );
}
