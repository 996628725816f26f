//! Resolver tests through `answer::resolve` on compiled zones: a child zone
//! served beside its parent (RFC 1034 §4.3.2 step 2, RFC 2181 §5), RFC 4592
//! wildcards (static, CNAME, NODATA, steered, none below a cut, none over
//! existing names or empty non-terminals), and `explain` of a wildcard.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::name_wire;
use crate::dns::answer::{resolve, Querier, Resolution};
use crate::dns::iana::{class, rcode};
use crate::dns::Authority;
use crate::pops::PopState;
use crate::testutil::TestConfig;

/// 10.0.0.0/8 steered to y and 10.1.0.0/16 to x.
const STEERING: &str = "\
steering:
  fallback:
    - {prefix: 10.0.0.0/8, pop: y}
    - {prefix: 10.1.0.0/16, pop: x}
";

const PARENT: &str = "  - origin: sparrow.test
    soa: {mname: ns1, rname: hostmaster@sparrow.test}
    ns: [ns1]
    records:
      - {name: ns1, type: A, data: 192.0.2.53}
      - {name: child, type: NS, data: ns.child}
      - {name: ns.child, type: A, data: 192.0.2.99}
      - {name: www, type: A, data: 192.0.2.80}
";

const CHILD: &str = "  - origin: child.sparrow.test
    soa: {mname: ns, rname: hostmaster@sparrow.test, serial: 7}
    ns: [ns]
    records:
      - {name: ns, type: A, data: 192.0.2.99}
      - {name: www, type: A, data: 192.0.2.81}
";

const WILD: &str = "  - origin: sparrow.test
    soa: {mname: ns1, rname: hostmaster@sparrow.test}
    ns: [ns1]
    records:
      - {name: ns1, type: A, data: 192.0.2.53}
      - {name: www, type: A, data: 192.0.2.80}
      - {name: '*.wild', type: TXT, data: '\"wild\"'}
      - {name: sub.wild, type: A, data: 192.0.2.1}
      - {name: a.ent.wild, type: A, data: 192.0.2.2}
      - {name: '*.alias', type: CNAME, data: www}
      - {name: deleg, type: NS, data: ns.deleg}
      - {name: ns.deleg, type: A, data: 192.0.2.98}
      - {name: '*.deleg', type: TXT, data: '\"below the cut\"'}
      - {name: '*', type: TXT, data: '\"apex wildcard\"'}
    steered:
      - name: '*.cdn'
        pops:
          x: {a: [192.0.2.10]}
          y: {a: [198.51.100.10]}
";

/// POPs x and y with no sessions (both usable), [`STEERING`], then `yaml`.
fn authority(yaml: &str) -> Authority {
    let cfg = TestConfig::two_pops()
        .peers::<&str>(&[])
        .with(STEERING)
        .with(yaml)
        .build();
    let pops = Arc::new(PopState::new(&cfg, None));
    Authority::new(&cfg, crate::steer::handle(&cfg), pops).unwrap()
}

fn wire(s: &str) -> Vec<u8> {
    name_wire(&Name::from_ascii(s).unwrap())
}

fn ask<'z>(a: &'z Authority, name: &str, t: RecordType, q: Querier) -> Resolution<'z> {
    resolve(a, &wire(name), u16::from(t), class::IN, q)
}

fn src() -> Querier {
    Querier::Source("192.0.2.200".parse().unwrap())
}

/// Every record of every section, as written (wildcard owners synthesised).
fn records(r: &Resolution<'_>, qname: &str) -> Vec<Record> {
    let mut out = r.answer_records(&wire(qname));
    for s in r.authority.iter().chain(&r.additional) {
        out.extend(s.records.iter().cloned());
    }
    out
}

fn no_duplicates(r: &Resolution<'_>, qname: &str) {
    let all = records(r, qname);
    for (i, a) in all.iter().enumerate() {
        assert!(
            !all[..i]
                .iter()
                .any(|b| b.name == a.name && b.data == a.data),
            "duplicate {a} in {all:?}"
        );
    }
}

#[test]
fn child_zone_beside_parent_answers_for_itself_in_either_order() {
    for zones in [[PARENT, CHILD], [CHILD, PARENT]] {
        let a = authority(&format!("zones:\n{}{}", zones[0], zones[1]));
        // The child's SOA, authoritative (not a referral).
        let r = ask(&a, "child.sparrow.test.", RecordType::SOA, src());
        assert!(r.aa && r.rcode == rcode::NOERROR, "{r:?}");
        let soa = &r.answer[0].records[0];
        assert_eq!(soa.name.to_ascii(), "child.sparrow.test.");
        assert!(matches!(&soa.data, RData::SOA(s) if s.serial == 7));
        // A name the child lacks: NXDOMAIN with the child's SOA.
        let r = ask(&a, "nx.child.sparrow.test.", RecordType::A, src());
        assert_eq!(r.rcode, rcode::NXDOMAIN);
        assert!(r.aa && r.answer.is_empty());
        assert_eq!(
            r.authority[0].records[0].name.to_ascii(),
            "child.sparrow.test."
        );
        // The child's own data, not the parent's glue.
        let r = ask(&a, "www.child.sparrow.test.", RecordType::A, src());
        assert_eq!(r.answer[0].records[0].data.to_string(), "192.0.2.81");
        // NS at the child apex: one NS set, its address once.
        let r = ask(&a, "child.sparrow.test.", RecordType::NS, src());
        assert!(r.aa);
        assert_eq!(r.answer.len(), 1);
        assert_eq!(r.additional.len(), 1);
        no_duplicates(&r, "child.sparrow.test.");
        let r = ask(&a, "ns.child.sparrow.test.", RecordType::A, src());
        assert!(r.aa && r.answer.len() == 1 && r.additional.is_empty());
        // The parent still answers its own names.
        let r = ask(&a, "www.sparrow.test.", RecordType::A, src());
        assert!(r.aa && r.answer[0].records[0].data.to_string() == "192.0.2.80");
        let r = ask(&a, "nx.sparrow.test.", RecordType::A, src());
        assert_eq!(r.authority[0].records[0].name.to_ascii(), "sparrow.test.");
    }
}

#[test]
fn referral_glue_is_listed_once() {
    let a = authority(&format!("zones:\n{PARENT}"));
    let r = ask(&a, "x.child.sparrow.test.", RecordType::A, src());
    assert!(
        !r.aa && r.authority.len() == 1 && r.additional.len() == 1,
        "{r:?}"
    );
    no_duplicates(&r, "x.child.sparrow.test.");
}

#[test]
fn wildcard_synthesises_for_names_that_do_not_exist() {
    let a = authority(&format!("zones:\n{WILD}"));
    for q in ["x.wild.sparrow.test.", "a.b.wild.sparrow.test."] {
        let r = ask(&a, q, RecordType::TXT, src());
        assert!(r.aa && r.rcode == rcode::NOERROR, "{q}: {r:?}");
        assert_eq!(r.answer.len(), 1);
        // The owner written is the query name (RFC 4592 §3.3.1).
        assert_eq!(r.owner(0, &wire(q)), &wire(q)[..]);
        let recs = r.answer_records(&wire(q));
        assert_eq!(recs[0].name.to_ascii(), q);
        assert_eq!(recs[0].data.to_string(), "wild");
    }
    // The wildcard asked for itself: its own owner.
    let r = ask(&a, "*.wild.sparrow.test.", RecordType::TXT, src());
    assert_eq!(
        r.answer_records(&wire("*.wild.sparrow.test."))[0]
            .name
            .to_ascii(),
        "*.wild.sparrow.test."
    );
    // Wildcard without the type: NODATA.
    let r = ask(&a, "x.wild.sparrow.test.", RecordType::A, src());
    assert!(r.rcode == rcode::NOERROR && r.answer.is_empty() && r.authority.len() == 1);
    assert_eq!(r.authority[0].rtype, RecordType::SOA);
}

#[test]
fn wildcard_does_not_cover_existing_names_or_names_below_them() {
    let a = authority(&format!("zones:\n{WILD}"));
    // sub.wild exists: NODATA for TXT, not the wildcard.
    let r = ask(&a, "sub.wild.sparrow.test.", RecordType::TXT, src());
    assert!(r.rcode == rcode::NOERROR && r.answer.is_empty());
    // Below an existing name without its own wildcard: NXDOMAIN.
    let r = ask(&a, "x.sub.wild.sparrow.test.", RecordType::TXT, src());
    assert_eq!(r.rcode, rcode::NXDOMAIN);
    // An empty non-terminal exists too.
    let r = ask(&a, "ent.wild.sparrow.test.", RecordType::TXT, src());
    assert!(r.rcode == rcode::NOERROR && r.answer.is_empty());
    let r = ask(&a, "x.ent.wild.sparrow.test.", RecordType::TXT, src());
    assert_eq!(r.rcode, rcode::NXDOMAIN);
    // The apex wildcard covers other names of the apex.
    let r = ask(&a, "other.sparrow.test.", RecordType::TXT, src());
    assert_eq!(r.answer[0].records[0].data.to_string(), "apex wildcard");
    // No wildcard below a cut: a referral.
    for q in ["x.deleg.sparrow.test.", "deleg.sparrow.test."] {
        let r = ask(&a, q, RecordType::TXT, src());
        assert!(!r.aa && r.answer.is_empty(), "{q}: {r:?}");
        assert_eq!(r.authority[0].rtype, RecordType::NS);
    }
}

#[test]
fn cname_at_a_wildcard_is_followed() {
    let a = authority(&format!("zones:\n{WILD}"));
    let q = "x.alias.sparrow.test.";
    let r = ask(&a, q, RecordType::A, src());
    assert_eq!(r.answer.len(), 2, "{r:?}");
    let recs = r.answer_records(&wire(q));
    assert_eq!(recs[0].name.to_ascii(), q);
    assert_eq!(recs[0].record_type(), RecordType::CNAME);
    assert_eq!(recs[1].name.to_ascii(), "www.sparrow.test.");
    assert_eq!(recs[1].data.to_string(), "192.0.2.80");
}

#[test]
fn steered_wildcard_answers_each_client_with_its_pop() {
    let a = authority(&format!("zones:\n{WILD}"));
    let q = "img.cdn.sparrow.test.";
    let ecs = |s: &str, l| Querier::Ecs(s.parse::<IpAddr>().unwrap(), l);
    let r = ask(&a, q, RecordType::A, ecs("10.2.0.0", 16));
    assert_eq!(r.answer[0].records[0].data.to_string(), "198.51.100.10");
    assert_eq!(r.answer_records(&wire(q))[0].name.to_ascii(), q);
    assert!(r.scope > 0);
    let r = ask(&a, q, RecordType::A, ecs("10.1.2.0", 24));
    assert_eq!(r.answer[0].records[0].data.to_string(), "192.0.2.10");
    // AAAA: no POP has any: NODATA.
    let r = ask(&a, q, RecordType::AAAA, ecs("10.1.2.0", 24));
    assert!(r.rcode == rcode::NOERROR && r.answer.is_empty());
}

#[test]
fn explain_names_the_matching_wildcard() {
    let a = authority(&format!("zones:\n{WILD}"));
    let snap = a.steering.load();
    let addr = "10.2.0.1".parse().unwrap();
    let d = crate::steer::select(addr, &snap);
    let all = a.zones.explain(&d, addr, &a.pops, None);
    assert!(
        all.iter().any(|s| s.name == "*.cdn.sparrow.test."),
        "{all:?}"
    );
    let one = a
        .zones
        .explain(&d, addr, &a.pops, Some("IMG.cdn.sparrow.test"));
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(one[0].name, "img.cdn.sparrow.test.");
    assert_eq!(one[0].wildcard.as_deref(), Some("*.cdn.sparrow.test."));
    assert_eq!(one[0].pop.as_deref(), Some("y"));
    assert!(a
        .zones
        .explain(&d, addr, &a.pops, Some("www.sparrow.test."))
        .is_empty());
}

#[test]
fn ds_at_a_cut_is_answered_by_the_parent() {
    // RFC 4035 §3.1.4.1: DS belongs to the parent side of a delegation,
    // both for a child zone we serve too and for one we only delegate.
    for zones in [
        format!("{PARENT}{CHILD}"),
        PARENT.to_string(),
        WILD.to_string(),
    ] {
        let a = authority(&format!("zones:\n{zones}"));
        let q = if zones.contains("deleg") {
            "deleg.sparrow.test."
        } else {
            "child.sparrow.test."
        };
        let r = ask(&a, q, RecordType::DS, src());
        assert_eq!(r.rcode, rcode::NOERROR, "{q}");
        assert!(r.aa && r.answer.is_empty(), "{q}: authoritative NODATA");
        assert_eq!(
            r.authority[0].records[0].name.to_ascii(),
            "sparrow.test.",
            "{q}: parent SOA"
        );
        // Other types at the cut still get the referral (or the child's data).
        let r = ask(&a, q, RecordType::A, src());
        assert!(!r.aa || zones.contains(CHILD), "{q}: {r:?}");
    }
}

#[test]
fn class_any_is_answered_as_in() {
    let a = authority(&format!("zones:\n{PARENT}"));
    let r = resolve(
        &a,
        &wire("www.sparrow.test."),
        u16::from(RecordType::A),
        class::ANY,
        src(),
    );
    assert_eq!((r.rcode, r.answer.len()), (rcode::NOERROR, 1));
    let r = resolve(
        &a,
        &wire("www.sparrow.test."),
        u16::from(RecordType::A),
        4,
        src(),
    );
    assert_eq!(r.rcode, rcode::REFUSED, "class HS");
}
