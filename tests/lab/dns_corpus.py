"""The differential DNS test's data: one static zone pair written for both servers, and a
generated query corpus.

  ZONES                       {origin: [(owner, type, ttl, rdata)]}: diff.test and its child zone
  sparrow_zones()             the same zones as sparrowd ``zones:`` config entries
  knot_zonefile(origin)       the same zone as an RFC 1035 master file for knotd
  corpus()                    list of Query: every qtype, names around cuts, empty non-terminals,
                              wildcards, case, classes, EDNS versions/options/payloads, ECS variants,
                              opcodes, QDCOUNT 0 and 2, flag bits (each sent over UDP and TCP)
  normalise(wire)             a response as a dict of comparable fields (or {"malformed": ...})

The zone data is written once here so that both servers serve exactly the same records.
Talks to nothing: data in, data out.
"""
from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ORIGIN = "diff.test."
CHILD = "child.diff.test."
IDENTITY = "diff-pop"
SOA = {"mname": "ns1", "rname": "hostmaster", "serial": 2026120401, "refresh": 14400,
       "retry": 3600, "expire": 1209600, "minimum": 300}
TTL = 3600

ZONES: dict[str, list[tuple[str, str, int, str]]] = {
    ORIGIN: [
        ("ns1", "A", TTL, "192.0.2.53"),
        ("ns1", "AAAA", TTL, "2001:db8::53"),
        ("ns2", "A", TTL, "192.0.2.54"),
        ("@", "MX", TTL, "10 mail"),
        ("@", "TXT", TTL, '"v=spf1 -all"'),
        ("@", "CAA", TTL, '0 issue "letsencrypt.org"'),
        ("mail", "A", TTL, "192.0.2.25"),
        ("www", "A", 300, "192.0.2.80"),
        ("www", "A", 300, "192.0.2.81"),
        ("www", "AAAA", 300, "2001:db8::80"),
        ("alias", "CNAME", TTL, "www"),
        ("chain1", "CNAME", TTL, "chain2"),
        ("chain2", "CNAME", TTL, "www"),
        ("dangling", "CNAME", TTL, "nothing"),
        ("outside", "CNAME", TTL, "www.example.org."),
        ("_sip._udp", "SRV", TTL, "10 5 5060 sip"),
        ("sip", "A", TTL, "192.0.2.60"),
        ("a.b.ent", "TXT", TTL, '"deep"'),
        ("big", "TXT", TTL, " ".join(f'"{c * 200}"' for c in "abcdefgh")),
        ("*.wild", "TXT", TTL, '"wildcard"'),
        ("*.wild", "A", TTL, "192.0.2.99"),
        ("sub.wild", "TXT", TTL, '"exists"'),
        ("lab", "NS", TTL, "ns.lab"),
        ("ns.lab", "A", TTL, "192.0.2.77"),
        ("child", "NS", TTL, "ns1"),
        ("child", "NS", TTL, "ns2"),
    ],
    CHILD: [
        ("www", "A", TTL, "192.0.2.180"),
        ("*.wc", "A", TTL, "192.0.2.181"),
    ],
}

# Query names relative to ORIGIN (absolute when ending in '.').
NAMES = [
    "@", "www", "WwW", "ns1", "ns2", "mail", "alias", "chain1", "dangling", "outside", "_sip._udp",
    "a.b.ent", "b.ent", "ent", "big", "nx", "x.nx", "wild", "*.wild", "x.wild", "y.x.wild", "sub.wild",
    "x.sub.wild", "lab", "ns.lab", "x.lab", "child", "www.child", "nx.child", "q.wc.child", "CHILD",
    "www.example.org.", "test.", ".",
]
QTYPES = ["A", "AAAA", "NS", "SOA", "CNAME", "MX", "TXT", "SRV", "CAA", "PTR", "ANY", "DS", "DNSKEY",
          "HINFO", "TYPE65280"]


def _abs(name: str, origin: str = ORIGIN) -> str:
    if name == "@":
        return origin
    return name if name.endswith(".") else f"{name}.{origin}"


def sparrow_zones() -> list[dict]:
    """The zones as sparrowd config: the apex NS and SOA from the records, the rest as records."""
    out = []
    for origin, recs in ZONES.items():
        out.append({
            "origin": origin.rstrip("."),
            "ttl": TTL,
            "soa": {**SOA, "mname": f"ns1.{ORIGIN}", "rname": f"hostmaster.{ORIGIN}"},
            "ns": [f"ns1.{ORIGIN}", f"ns2.{ORIGIN}"],
            "records": [{"name": n, "type": t, "ttl": ttl, "data": d} for n, t, ttl, d in recs],
        })
    return out


def knot_zonefile(origin: str) -> str:
    s = SOA
    lines = [f"$ORIGIN {origin}", f"$TTL {TTL}",
             f"@ {TTL} IN SOA ns1.{ORIGIN} hostmaster.{ORIGIN} {s['serial']} {s['refresh']} "
             f"{s['retry']} {s['expire']} {s['minimum']}",
             f"@ {TTL} IN NS ns1.{ORIGIN}", f"@ {TTL} IN NS ns2.{ORIGIN}"]
    for n, t, ttl, d in ZONES[origin]:
        lines.append(f"{n} {ttl} IN {t} {d}")
    return "\n".join(lines) + "\n"


@dataclass
class Query:
    """One corpus entry: ``tag`` groups it (accepted differences match on it), ``wire`` is sent."""
    tag: str
    desc: str
    wire: bytes = field(repr=False)


def _msg(qname: str, qtype: str, qclass: str = "IN", edns: int | None = None, payload: int = 1232,
         options=(), do: bool = False, flags: int = 0, opcode: int = 0) -> dns.message.Message:
    m = dns.message.make_query(qname, qtype, qclass, use_edns=edns if edns is not None else False,
                               payload=payload, options=list(options), want_dnssec=do)
    m.flags = (m.flags & ~dns.flags.RD) | flags
    m.set_opcode(opcode)
    return m


def _ecs(addr: str, src: int, scope: int = 0) -> dns.edns.ECSOption:
    return dns.edns.ECSOption(addr, src, scope)


def _raw_ecs(family: int, src: int, scope: int, addr: bytes) -> dns.edns.GenericOption:
    return dns.edns.GenericOption(dns.edns.ECS, struct.pack("!HBB", family, src, scope) + addr)


def corpus() -> list[Query]:
    """At least 2,000 distinct queries (before the UDP/TCP doubling)."""
    qs: list[Query] = []
    ids = itertools.count(1)

    def add(tag: str, desc: str, m: dns.message.Message | bytes) -> None:
        if isinstance(m, dns.message.Message):
            m.id = next(ids) & 0xFFFF
            wire = m.to_wire()
        else:
            wire = m
        qs.append(Query(tag, desc, wire))

    # 1. every name x every qtype, without EDNS and with EDNS 0.
    for name, qt in itertools.product(NAMES, QTYPES):
        q = _abs(name)
        add("plain", f"{q} {qt}", _msg(q, qt))
        add("edns", f"{q} {qt} +edns", _msg(q, qt, edns=0))
    # 2. classes.
    for name, qt, cls in itertools.product(["@", "www", "nx"], ["A", "SOA", "TXT"], ["CH", "HS", "ANY", "NONE"]):
        add(f"class-{cls}", f"{_abs(name)} {cls} {qt}", _msg(_abs(name), qt, cls, edns=0))
    for q in ["id.server.", "hostname.bind.", "version.bind.", "version.server.", "authors.bind."]:
        for edns in (None, 0):
            add("chaos", f"{q} CH TXT edns={edns}", _msg(q, "TXT", "CH", edns=edns))
    # 3. EDNS variants on a few names.
    variant_names = ["www", "@", "nx", "alias", "x.wild", "lab", "big", "www.child"]
    for name in variant_names:
        q = _abs(name)
        for qt in ["A", "TXT", "NS"]:
            add("edns-version", f"{q} {qt} edns1", _msg(q, qt, edns=1))
            add("edns-version", f"{q} {qt} edns255", _msg(q, qt, edns=255))
            for payload in (0, 100, 512, 1232, 4096, 65535):
                add("edns-payload", f"{q} {qt} bufsize {payload}", _msg(q, qt, edns=0, payload=payload))
            add("edns-do", f"{q} {qt} +dnssec", _msg(q, qt, edns=0, do=True))
            add("edns-unknown-option", f"{q} {qt} opt 65001",
                _msg(q, qt, edns=0, options=[dns.edns.GenericOption(65001, b"\x01\x02")]))
            add("edns-cookie", f"{q} {qt} cookie",
                _msg(q, qt, edns=0, options=[dns.edns.GenericOption(10, b"\x01" * 8)]))
            add("edns-nsid", f"{q} {qt} nsid", _msg(q, qt, edns=0, options=[dns.edns.GenericOption(3, b"")]))
            add("edns-padding", f"{q} {qt} padding",
                _msg(q, qt, edns=0, options=[dns.edns.GenericOption(12, b"\x00" * 16)]))
            # ECS variants.
            for addr, src in [("192.0.2.1", 24), ("192.0.2.1", 32), ("0.0.0.0", 0), ("10.0.0.0", 8),
                              ("2001:db8::", 56), ("2001:db8::1", 128), ("::", 0)]:
                add("ecs", f"{q} {qt} ecs {addr}/{src}", _msg(q, qt, edns=0, options=[_ecs(addr, src)]))
            add("ecs", f"{q} {qt} ecs scope 24 in query",
                _msg(q, qt, edns=0, options=[_raw_ecs(1, 24, 24, bytes([192, 0, 2]))]))
            for fam, src, addr, why in [(1, 24, bytes([192, 0, 2, 1]), "address too long"),
                                        (1, 24, bytes([192, 0]), "address too short"),
                                        (1, 33, bytes([192, 0, 2, 1, 0]), "source too long"),
                                        (3, 8, bytes([1]), "unknown family"),
                                        (1, 23, bytes([192, 0, 3]), "bits past source")]:
                add("ecs-malformed", f"{q} {qt} ecs {why}", _msg(q, qt, edns=0, options=[_raw_ecs(fam, src, 0, addr)]))
            # header flags.
            for fname, f in [("rd", dns.flags.RD), ("cd", dns.flags.CD), ("ad", dns.flags.AD),
                             ("tc", dns.flags.TC), ("ra", dns.flags.RA), ("aa", dns.flags.AA)]:
                add(f"flag-{fname}", f"{q} {qt} +{fname}", _msg(q, qt, edns=0, flags=f))
                add(f"flag-{fname}", f"{q} {qt} +{fname} noedns", _msg(q, qt, flags=f))
            add("flag-z", f"{q} {qt} z bit", _msg(q, qt, edns=0, flags=0x0040))
    # 4. opcodes other than QUERY.
    for op in range(1, 16):
        for edns in (None, 0):
            add(f"opcode-{op}", f"www opcode {op} edns={edns}", _msg(_abs("www"), "A", edns=edns, opcode=op))
    # 5. QDCOUNT 0 and 2, and other malformed or odd headers.
    base = _msg(_abs("www"), "A", edns=0)
    base.id = 4242
    w = base.to_wire()
    hdr, rest = w[:12], w[12:]
    qlen = len(_abs("www").encode()) + 1 + 4  # name wire length + type/class
    question = rest[:qlen]
    opt = rest[qlen:]
    for edns in (False, True):
        tail = opt if edns else b""
        arc = 1 if edns else 0
        add("qdcount-0", f"QDCOUNT 0 edns={edns}", hdr[:4] + struct.pack("!HHHH", 0, 0, 0, arc) + tail)
        add("qdcount-2", f"QDCOUNT 2 edns={edns}",
            hdr[:4] + struct.pack("!HHHH", 2, 0, 0, arc) + question + question + tail)
    add("opt-owner", "OPT with non-root owner",
        hdr[:4] + struct.pack("!HHHH", 1, 0, 0, 1) + question + b"\x01a\x00" + opt[1:])
    add("opt-twice", "two OPT records", hdr[:4] + struct.pack("!HHHH", 1, 0, 0, 2) + question + opt + opt)
    add("trailing", "trailing garbage", w + b"\x00\x01\x02")
    add("truncated-question", "question cut short", hdr[:4] + struct.pack("!HHHH", 1, 0, 0, 0) + question[:5])
    # 6. case and 0x20.
    for name in ["wWw", "NS1", "Alias", "X.WiLd", "WWW.CHILD", "A.B.ENT"]:
        for qt in ["A", "TXT", "ANY"]:
            add("case", f"{name} {qt}", _msg(_abs(name, "DiFf.TeSt."), qt, edns=0))
    # 7. zone transfers over UDP (refused).
    for qt in ["AXFR", "IXFR"]:
        add("xfr", f"@ {qt}", _msg(ORIGIN, qt, edns=0))
    return qs


def _rrsets(section) -> list[str]:
    out = []
    for rrset in section:
        # RDATA names compare case-insensitively (RFC 4343): Knot writes them in the
        # query's case (compression against the question), we in the zone's.
        rd = sorted(r.to_text().lower() for r in rrset)
        out.append(f"{rrset.name} {rrset.ttl} {dns.rdataclass.to_text(rrset.rdclass)} "
                   f"{dns.rdatatype.to_text(rrset.rdtype)} {' | '.join(rd)}")
    return sorted(out)


def _options(opts) -> list[str]:
    out = []
    for o in opts:
        if isinstance(o, dns.edns.ECSOption):
            out.append(f"ECS {o.address}/{o.srclen}/{o.scopelen}")
        else:
            out.append(f"OPT{int(o.otype)} {o.to_wire().hex() if hasattr(o, 'to_wire') else ''}")
    return sorted(out)


def normalise(wire: bytes | None) -> dict:
    """The comparable fields of a response (None: no response)."""
    if wire is None:
        return {"response": "none"}
    try:
        m = dns.message.from_wire(wire, ignore_trailing=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is a finding
        hdr = struct.unpack("!HHHHHH", wire[:12]) if len(wire) >= 12 else None
        return {"response": f"malformed: {type(e).__name__}", "header": hdr}
    flags = sorted(dns.flags.to_text(m.flags).split())
    d = {
        "response": "ok",
        "rcode": dns.rcode.to_text(m.rcode()),
        "opcode": dns.opcode.to_text(m.opcode()),
        "flags": " ".join(flags),
        "question": [f"{r.name} {dns.rdataclass.to_text(r.rdclass)} {dns.rdatatype.to_text(r.rdtype)}"
                     for r in m.question],
        "answer": _rrsets(m.answer),
        "authority": _rrsets(m.authority),
        "additional": _rrsets(m.additional),
        "edns": m.edns,
        "edns.payload": m.payload if m.edns >= 0 else None,
        "edns.do": bool(m.ednsflags & dns.flags.DO) if m.edns >= 0 else None,
        "edns.options": _options(m.options) if m.edns >= 0 else None,
    }
    return d

