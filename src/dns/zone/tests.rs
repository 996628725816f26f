//! Zone tests: compiling, lookup, wire tails against hickory's encoding, and
//! zone errors reported through config validation.

use hickory_proto::rr::{Name, RecordType};

use super::*;
use crate::testutil::{two_pops_yaml, TestConfig};

/// Two POPs and one zone with every record type, a delegation and a
/// steered name (also used by the `fast` tests).
pub const CFG: &str = concat!(
    two_pops_yaml!(),
    "\
zones:
  - origin: Example.NET
    soa: {mname: ns1, rname: hostmaster@example.net, minimum: 60}
    ns: [ns1, ns2.example.net.]
    records:
      - {name: ns1, type: A, data: 192.0.2.53}
      - {name: '@', type: MX, data: '10 mail'}
      - {name: mail, type: A, data: 192.0.2.25}
      - {name: alias, type: CNAME, data: www}
      - {name: txt.deep.sub, type: TXT, data: '\"hello world\"'}
      - {name: '@', type: CAA, data: '0 issue \"letsencrypt.org\"'}
      - {name: _sip._udp, type: SRV, data: '10 5 5060 sip'}
      - {name: child, type: NS, data: ns.child}
      - {name: ns.child, type: A, data: 192.0.2.99}
    steered:
      - name: www
        ttl: 20
        pops:
          x: {a: [192.0.2.10], aaaa: ['2001:db8::10']}
          y: {a: [198.51.100.10, 198.51.100.11]}
"
);

fn wire(s: &str) -> Vec<u8> {
    name_wire(&Name::from_ascii(s).unwrap())
}

#[test]
fn compiles_and_finds() {
    let cfg = TestConfig::yaml(CFG).build();
    let z = Zones::compile(&cfg).unwrap();
    let Found::Node(n) = z.find(&wire("WWW.example.net.").to_ascii_lowercase()) else {
        panic!()
    };
    let st = z.nodes[n as usize].steered.as_ref().unwrap();
    assert_eq!(st.a[1].as_ref().unwrap().count, 2);
    assert!(st.aaaa[1].is_none());
    // Empty non-terminal.
    assert!(matches!(
        z.find(&wire("deep.sub.example.net.")),
        Found::Node(_)
    ));
    assert!(matches!(z.find(&wire("sub.example.net.")), Found::Node(_)));
    assert!(matches!(
        z.find(&wire("nope.example.net.")),
        Found::NxDomain(0)
    ));
    assert!(matches!(
        z.find(&wire("a.b.nope.example.net.")),
        Found::NxDomain(0)
    ));
    assert_eq!(z.find(&wire("example.org.")), Found::NotOurs);
    assert_eq!(z.find(&wire(".")), Found::NotOurs);
    // Delegation: the cut and everything below it refer.
    let child = z.node_in(0, &wire("child.example.net.")).unwrap();
    assert_eq!(z.find(&wire("child.example.net.")), Found::Referral(child));
    assert_eq!(
        z.find(&wire("ns.child.example.net.")),
        Found::Referral(child)
    );
    assert_eq!(
        z.find(&wire("x.y.child.example.net.")),
        Found::Referral(child)
    );
    // The apex holds SOA, NS (2), MX, CAA; MX target made absolute.
    let apex = &z.nodes[z.zones[0].apex as usize];
    assert_eq!(apex.set(RecordType::NS).unwrap().count, 2);
    let mx = &apex.set(RecordType::MX).unwrap().records[0];
    assert_eq!(mx.data.to_string(), "10 mail.example.net.");
    // Negative TTL = min(zone ttl 3600, minimum 60).
    assert_eq!(z.zones[0].soa_neg.records[0].ttl, 60);
    let soa = &z.zones[0].soa_neg.records[0];
    assert_eq!(
        soa.data.to_string().split(' ').take(2).collect::<Vec<_>>(),
        ["ns1.example.net.", "hostmaster.example.net."]
    );
}

#[test]
fn tails_match_hickory_encoding() {
    use hickory_proto::op::Message;
    let cfg = TestConfig::yaml(CFG).build();
    let z = Zones::compile(&cfg).unwrap();
    for node in &z.nodes {
        for set in &node.sets {
            // Owner written in full + our tails == a message hickory decodes to the records.
            let mut m = vec![0, 1, 0x84, 0, 0, 0, 0, set.count as u8, 0, 0, 0, 0];
            for t in set.tails() {
                m.extend_from_slice(&set.owner);
                m.extend_from_slice(t);
            }
            let msg = Message::from_vec(&m).unwrap();
            assert_eq!(msg.answers, set.records, "{}", node.name);
        }
    }
}

#[test]
fn check_zone_errors_name_keys() {
    let errs = TestConfig::yaml(CFG)
        .replace("type: MX, data: '10 mail'", "type: MX, data: 'ten mail'")
        .replace("name: alias, type: CNAME", "name: mail, type: CNAME")
        .replace("{name: ns1, type: A", "{name: ns1.example.org., type: A")
        .replace("type: SRV", "type: HINFO")
        .replace("y: {a:", "z: {a:")
        .errors();
    let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "zones[0].records[1].data",
        "zones[0].records[0].name",
        "zones[0].records[6].type",
        "zones[0].steered[0].pops.z",
    ] {
        assert!(keys.contains(&k), "{k} missing in {errs:?}");
    }
    assert!(
        errs.iter().any(|e| e.msg.contains("CNAME cannot share")),
        "{errs:?}"
    );
    assert!(errs.iter().all(|e| e.line > 0), "{errs:?}");
}
