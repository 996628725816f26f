"""Super Sparrow two-POP lab: topology, real-data prefixes, the expected answers, DNS clients.

Used by test_super_sparrow.py. The sparrowd and BIRD configs the lab runs are the
example in ``bgp-configs/super-sparrow/`` (sparrowd: the admin socket path is
replaced; BIRD: the lab writes its own ``routes-<net>.conf`` next to a copy).

Topology (addresses as in the example; everything inside lab namespaces)::

    ca (client in A)                               cc (client in C)
     | 198.51.100.0/25 2001:db8:a::/64              | 198.51.100.128/25 2001:db8:c::/64
    X --- A (AS 64510) --- B (AS 64520) --- C (AS 64530) --- Y
    65001  192.0.2.0/29   .8/29            .16/29           .24/29   (+ 2001:db8:1..4::/64)

Each POP's steered addresses (two A, two AAAA, on the loopback) live on a web
namespace behind its sparrowd namespace (wx behind X over 192.0.2.32/29 and
2001:db8:5::/64, routed as 203.0.113.0/28 and 2001:db8:ff::10/124; wy behind Y over
192.0.2.40/29 and 2001:db8:6::/64, routed as 203.0.113.16/28 and 2001:db8:ff::20/124),
served by nginx; A, B and C route both, so each sparrowd reaches both POPs' web
servers (its health checks)::

    wx (nginx) --- X ... Y --- wy (nginx)

Parts:
  add_web(lab, ns)        the web namespaces, their routes and nginx (before sparrowd starts)
  pick_prefixes(...)      deterministic real prefixes per network (routeviews pfx2as,
                          read in place) incl. nested pairs across networks
  routes_conf(...)        BIRD include file: originated4/6 statics + add_origin()
  Model                   expected ranking per address at each POP (the rule, from the
                          AS paths the topology produces), uniform-answer and exact-scope
                          checks for ECS scopes
  dig_query / kdig_query / py_queries   one query each way, parsed to Answer
  dig_msg(...)            one dig query with header flags and sections (protocol checks)
  big_txt(...)            the example's TXT set at big.example.test (TC without EDNS)
  dnsperf_queries(...)    dnsperf -B input (length-prefixed wire queries with ECS)

Run as a script inside a namespace (``python3 super_sparrow_lab.py query``), it reads
a JSON list of queries on stdin and answers them with dnspython (JSON on stdout).
"""
from __future__ import annotations

import gzip
import ipaddress
import json
import random
import re
import socket
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "bgp-configs" / "super-sparrow"

NETS = ("a", "b", "c")  # the chain A - B - C
ASN = {"a": 64510, "b": 64520, "c": 64530, "x": 65001, "y": 65002}
POPS = ("x", "y")
UPSTREAM = {"x": "a", "y": "c"}  # each POP's upstream network
EXAMPLE_SOCKET = {"x": "/run/sparrow/pop-x.sock", "y": "/run/sparrow/pop-y.sock"}

# Addresses (must match the example files).
X4, X6 = "192.0.2.2", "2001:db8:1::2"
Y4, Y6 = "192.0.2.26", "2001:db8:4::2"
CA4, CA6 = "198.51.100.2", "2001:db8:a::2"  # client in A
CC4, CC6 = "198.51.100.130", "2001:db8:c::2"  # client in C
LAN = {"a": ("198.51.100.0/25", "2001:db8:a::/64"), "c": ("198.51.100.128/25", "2001:db8:c::/64")}
# Each POP's steered addresses (two per family), served by nginx in the POP's web
# namespace (wx, wy); see add_web.
ANSWERS = {"x": {"A": {"203.0.113.10", "203.0.113.11"}, "AAAA": {"2001:db8:ff::10", "2001:db8:ff::11"}},
           "y": {"A": {"203.0.113.20", "203.0.113.21"}, "AAAA": {"2001:db8:ff::20", "2001:db8:ff::21"}}}
# Each POP's web namespace: the link to its sparrowd namespace (sparrowd side, web
# side) and the ranges its web addresses (ANSWERS', /32 and /128 on its loopback)
# are routed as.
WEB = {"x": {"link4": ("192.0.2.33/29", "192.0.2.34/29"), "link6": ("2001:db8:5::1/64", "2001:db8:5::2/64"),
             "net4": "203.0.113.0/28", "net6": "2001:db8:ff::10/124"},
       "y": {"link4": ("192.0.2.41/29", "192.0.2.42/29"), "link6": ("2001:db8:6::1/64", "2001:db8:6::2/64"),
             "net4": "203.0.113.16/28", "net6": "2001:db8:ff::20/124"}}
QNAME = "www.example.test"

# The example's static TXT set at big.example.test (pop-x.yaml; pop-y.yaml has the same):
# too big for a 512-byte UDP answer without EDNS (TC), small enough for 1232 with EDNS.
BIG_TXT_NAME = "big.example.test"


def big_txt(pop: str = "x") -> list[str]:
    """The strings of the example's TXT records at ``big`` (one string per record)."""
    text = (EXAMPLE / f"pop-{pop}.yaml").read_text()
    return re.findall(r"^      - \{name: big, type: TXT, data: '\"([^\"]*)\"'\}$", text, re.M)


def _sibling_routes(ns: dict) -> None:
    """Routes to both web segments along the chain X - A - B - C - Y."""
    hops4 = {"x": {"y": "192.0.2.1"}, "a": {"x": "192.0.2.2", "y": "192.0.2.10"},
             "b": {"x": "192.0.2.9", "y": "192.0.2.18"}, "c": {"x": "192.0.2.17", "y": "192.0.2.26"},
             "y": {"x": "192.0.2.25"}}
    hops6 = {"x": {"y": "2001:db8:1::1"}, "a": {"x": "2001:db8:1::2", "y": "2001:db8:2::2"},
             "b": {"x": "2001:db8:2::1", "y": "2001:db8:3::2"}, "c": {"x": "2001:db8:3::1", "y": "2001:db8:4::2"},
             "y": {"x": "2001:db8:4::1"}}
    for r, to in hops4.items():
        for pop, via in to.items():
            ns[r].add_route(WEB[pop]["net4"], via)
    for r, to in hops6.items():
        for pop, via in to.items():
            ns[r].add_route(WEB[pop]["net6"], via)


def add_web(lab, ns: dict, tls: dict | None = None) -> dict:
    """Web namespaces wx, wy (added to ``ns``) linked to X and Y, routed through A, B, C;
    nginx in each, listening on every address (port 80; ``tls``: {pop: (cert, key, port)}).
    Returns {pop: harness.Nginx}, started."""
    import harness
    webs = {}
    for pop in POPS:
        w = ns[f"w{pop}"] = lab.netns(f"w{pop}")
        link = lab.link(ns[pop], w, v4=WEB[pop]["link4"], v6=WEB[pop]["link6"])
        for a in sorted(ANSWERS[pop]["A"]) + sorted(ANSWERS[pop]["AAAA"]):
            w.add_addr("lo", f"{a}/{128 if ':' in a else 32}")
        w.add_route("default", link.a4)
        w.run(["ip", "-6", "route", "add", "default", "via", link.a6])
        ns[pop].add_route(WEB[pop]["net4"], link.b4)
        ns[pop].add_route(WEB[pop]["net6"], link.b6)
        ns[pop].forwarding(True)
        webs[pop] = harness.Nginx(lab, w, f"nginx-{pop}", body=f"pop {pop}",
                                  tls=(tls or {}).get(pop)).start()
        webs[pop].link = link
    _sibling_routes(ns)
    return webs


# Never originate anything overlapping the lab's own ranges.
LAB_RANGES = [ipaddress.ip_network(n) for n in
              ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def data_dir() -> Path:
    import replay_lab
    return replay_lab.data_dir()


# ---------------------------------------------------------------------------
# real-data prefixes


def _usable_asn(a: int) -> bool:
    # public ASNs only: no AS_TRANS, no private/reserved/documentation ranges
    # (they could collide with the lab's ASNs)
    return 0 < a < 64496 and a != 23456 or 131072 <= a < 4200000000


def read_pfx2as(path: Path, version: int) -> list[tuple[int, int, int]]:
    """``prefix/len<TAB>asn`` lines of one family as (address int, length, asn), file order
    (sorted by address); comments, multi-origin entries, unusable ASNs and anything
    overlapping the lab's ranges are skipped. Plain ints: a million ipaddress objects are slow."""
    fam = socket.AF_INET if version == 4 else socket.AF_INET6
    width = 32 if version == 4 else 128
    lab = [(int(r.network_address), int(r.broadcast_address)) for r in LAB_RANGES if r.version == version]
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith(";") or ("." in line) != (version == 4):
                continue
            pfx, _, asn = line.rstrip("\n").partition("\t")
            if not asn.isdigit() or not _usable_asn(int(asn)):
                continue
            addr, _, plen = pfx.partition("/")
            a, n = int.from_bytes(socket.inet_pton(fam, addr), "big"), int(plen)
            last = a | ((1 << (width - n)) - 1)
            if a & ((1 << (width - n)) - 1) or any(a <= hi and last >= lo for lo, hi in lab):
                continue
            out.append((a, n, int(asn)))
    return out


def nested_pairs(entries: list, width: int, min_gap: int = 2) -> list[tuple]:
    """(covering, more-specific) pairs of (addr, len, asn) with different origins."""
    pairs, stack = [], []
    for e in entries:
        a, n, asn = e
        def inside(top):
            return top[1] <= n and (a >> (width - top[1])) == (top[0] >> (width - top[1]))
        while stack and not inside(stack[-1]):
            stack.pop()
        if stack and stack[-1][2] != asn and n - stack[-1][1] >= min_gap:
            pairs.append((stack[-1], e))
        stack.append(e)
    return pairs


def _net(e: tuple, version: int):
    a, n, asn = e
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return cls((a, n)), asn


@dataclass
class Prefixes:
    """What each network originates: {net: [(network, origin asn or None)]} plus the nested pairs."""
    by_net: dict = field(default_factory=dict)
    pairs: list = field(default_factory=list)  # (cover_net, cover, specific_net, specific)

    def all(self):
        for n, lst in self.by_net.items():
            for p, asn in lst:
                yield n, p, asn


# nested pairs: (network of the covering prefix, network of the more-specific)
PAIR_PLAN = [("a", "c"), ("c", "a"), ("b", "c")]


def pick_prefixes(n4: int = 150, n6: int = 40, seed: int = 20140513) -> Prefixes:
    """Deterministic choice: per family, nested pairs first (PAIR_PLAN), then a seeded
    sample of the rest, dealt round-robin to A, B, C; plus the client LANs of A and C."""
    rng = random.Random(seed)
    out = Prefixes(by_net={n: [] for n in NETS})
    used: set = set()
    for fname, count, ver in (("routeviews-ipasn.20140513.dat.gz", n4, 4),
                              ("routeviews-ipasn6.20151101.dat.gz", n6, 6)):
        entries = read_pfx2as(data_dir() / fname, ver)
        pairs = nested_pairs(entries, 32 if ver == 4 else 128)
        cands = [p for p in pairs if p[0][1] >= (12 if ver == 4 else 28)]
        rng.shuffle(cands)
        plan = PAIR_PLAN if ver == 4 else PAIR_PLAN[:2]
        for (cn, sn), (cover, spec) in zip(plan, cands):
            c, s_ = _net(cover, ver), _net(spec, ver)
            out.by_net[cn].append(c)
            out.by_net[sn].append(s_)
            used.update({cover, spec})
            out.pairs.append((cn, c[0], sn, s_[0]))
        rest = [e for e in entries if e not in used]
        for i, e in enumerate(rng.sample(rest, 3 * count)):
            out.by_net[NETS[i % 3]].append(_net(e, ver))
    for n, (l4, l6) in LAN.items():
        out.by_net[n] += [(ipaddress.ip_network(l4), None), (ipaddress.ip_network(l6), None)]
    return out


def routes_conf(entries: list) -> str:
    """BIRD include: protocols originated4/originated6 and add_origin() (see bird-a.conf)."""
    v4 = [(p, a) for p, a in entries if p.version == 4]
    v6 = [(p, a) for p, a in entries if p.version == 6]
    out = ["# generated by tests/lab/super_sparrow_lab.py from routeviews pfx2as data"]
    for name, fam, lst in (("originated4", "ipv4", v4), ("originated6", "ipv6", v6)):
        out.append(f"protocol static {name} {{\n  {fam};")
        out += [f"  route {p} blackhole;" for p, _ in lst]
        out.append("}")
    out.append("function add_origin() {")
    for kind, lst in (("NET_IP4", v4), ("NET_IP6", v6)):
        by_asn: dict = {}
        for p, a in lst:
            if a is not None:
                by_asn.setdefault(a, []).append(p)
        if not by_asn:
            continue
        out.append(f"  if net.type = {kind} then {{")
        for a, ps in sorted(by_asn.items()):
            out.append(f"    if net ~ [ {', '.join(map(str, ps))} ] then bgp_path.prepend({a});")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# the expected steering


class Model:
    """Expected rankings at each POP, from the AS paths this topology produces.

    A prefix originated by network N (origin AS o, or none for the client LANs)
    reaches POP P over its upstream U as ``U .. N [o]`` and over the other POP Q as
    ``Q V .. N [o]`` (Q prepends its ASN to what its upstream V sent). Shorter wins
    (no ties occur here); the winner's POP is first (the rule: the last POP ASN in
    the best path, else the local POP), the other second. Uncovered: local first.
    """

    def __init__(self, prefixes: Prefixes):
        self.origin_net: dict = {}
        for n, p, _ in prefixes.all():
            self.origin_net[p] = n
        self.by_fam = {4: sorted((p for p in self.origin_net if p.version == 4), key=lambda p: p.prefixlen),
                       6: sorted((p for p in self.origin_net if p.version == 6), key=lambda p: p.prefixlen)}

    @staticmethod
    def ranking_for_net(pop: str, net: str) -> tuple:
        other = "y" if pop == "x" else "x"
        d_up = abs(NETS.index(UPSTREAM[pop]) - NETS.index(net)) + 1
        d_other = 1 + abs(NETS.index(UPSTREAM[other]) - NETS.index(net)) + 1
        assert d_up != d_other, "tie: the model would need the later tie-breaks"
        return (pop, other) if d_up < d_other else (other, pop)

    def ranking_of_prefix(self, pop: str, p) -> tuple:
        return self.ranking_for_net(pop, self.origin_net[p])

    def covering(self, addr) -> list:
        """Lab prefixes containing ``addr``, shortest first."""
        a = ipaddress.ip_address(addr)
        return [p for p in self.by_fam[a.version] if a in p]

    def deepest(self, addr):
        c = self.covering(addr)
        return c[-1] if c else None

    def ranking(self, pop: str, addr) -> tuple:
        p = self.deepest(addr)
        if p is None:
            return (pop, "y" if pop == "x" else "x")
        return self.ranking_of_prefix(pop, p)

    def uniform(self, pop: str, addr, length: int) -> bool:
        """Do all addresses of ``addr``/length get the same ranking at ``pop``?"""
        a = ipaddress.ip_address(addr)
        block = ipaddress.ip_network(f"{a}/{length}", strict=False)
        outer = [p for p in self.by_fam[a.version] if p.prefixlen <= length and block.subnet_of(p)]
        # the block's own answer: its deepest covering prefix's, else the default
        want = self.ranking_of_prefix(pop, outer[-1]) if outer else (pop, "y" if pop == "x" else "x")
        return all(self.ranking_of_prefix(pop, p) == want for p in self.by_fam[a.version]
                   if p.prefixlen > length and p.subnet_of(block))

    def exact_scope(self, pop: str, addr) -> int | None:
        """The matched prefix length when the daemon's range for ``addr`` is exactly the
        deepest lab prefix P holding it (so the safe ECS scope must equal len(P)): every
        prefix inside P ranks like P, P's nearest covering prefix ranks differently (or
        there is none), and P's sibling is not a lab prefix of the same length and ranking.
        None when those conditions do not hold (the scope may then legitimately differ)."""
        cov = self.covering(addr)
        if not cov:
            return None
        p = cov[-1]
        r = self.ranking_of_prefix(pop, p)
        if len(cov) > 1 and self.ranking_of_prefix(pop, cov[-2]) == r:
            return None
        for q in self.by_fam[p.version]:
            if q.prefixlen > p.prefixlen and q.subnet_of(p) and self.ranking_of_prefix(pop, q) != r:
                return None
        if p.prefixlen == 0:
            return None
        sib = type(p)((int(p.network_address) ^ (1 << (p.max_prefixlen - p.prefixlen)), p.prefixlen))
        if sib in self.origin_net and self.ranking_of_prefix(pop, sib) == r:
            return None
        return p.prefixlen

    def client_in(self, p, rng: random.Random, tries: int = 64):
        """An address inside lab prefix ``p`` whose deepest lab prefix is ``p`` (or None)."""
        for i in range(tries):
            off = 1 if i == 0 and p.num_addresses > 2 else rng.randrange(p.num_addresses)
            a = p.network_address + off
            if self.deepest(a) == p:
                return a
        return None


# ---------------------------------------------------------------------------
# DNS clients


@dataclass(frozen=True)
class Answer:
    rcode: str
    addrs: frozenset
    scope: int | None  # ECS scope prefix length in the reply, None: no ECS option
    ttl: int | None = None

    def key(self):
        return (self.rcode, self.addrs, self.scope)


_ECS = re.compile(r"CLIENT-SUBNET:\s*([0-9a-fA-F:.]+)/(\d+)/(\d+)", re.I)
_STATUS = re.compile(r"status:\s*([A-Z]+)")


def _parse_text(out: str, rtype: str) -> Answer:
    m = _STATUS.search(out)
    addrs, ttl = set(), None
    for line in out.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        f = line.split()
        if len(f) >= 5 and f[3] == rtype and f[2] == "IN":
            addrs.add(str(ipaddress.ip_address(f[4])))
            ttl = int(f[1])
    e = _ECS.search(out)
    return Answer(m.group(1) if m else "?", frozenset(addrs), int(e.group(3)) if e else None, ttl)


def _subnet(ecs: str | None) -> list[str]:
    return [f"+subnet={ecs}"] if ecs else []


def dig_query(ns, server: str, rtype: str = "A", ecs: str | None = None, name: str = QNAME,
              tcp: bool = False, source: str | None = None) -> Answer:
    """One dig query (``source``: the address it sends from, ``dig -b``)."""
    argv = ["dig", f"@{server}", "-p", "53", name, rtype, "+noall", "+answer", "+comments",
            "+time=2", "+tries=1", *_subnet(ecs)] + (["+tcp"] if tcp else []) + (["-b", source] if source else [])
    return _parse_text(ns.run(argv, timeout=15).stdout, rtype)


@dataclass(frozen=True)
class DigReply:
    """One dig reply: header status and flags, answer/authority records as
    (owner, ttl, class, type, rdata) tuples, the ECS scope (None: no ECS option)."""
    status: str
    flags: frozenset
    answer: tuple
    authority: tuple
    scope: int | None
    text: str

    def rrsets(self) -> set:
        """{(owner, class, type)} of the answer section."""
        return {(r[0].lower(), r[2], r[3]) for r in self.answer}


_FLAGS = re.compile(r";; flags:([^;]*);")


def dig_msg(ns, server: str, name: str, rtype: str = "A", *opts: str, qclass: str = "IN") -> DigReply:
    """dig with the header, answer and authority sections, parsed (``opts``: more dig
    options, e.g. ``+tcp``, ``+norec``, ``+noedns``, ``+ignore``, ``+subnet=...``)."""
    # -c/-t/-q spelled out: with ``-c`` before them, dig takes a bare type word for a second name
    argv = ["dig", f"@{server}", "-p", "53", "-c", qclass, "-t", rtype, "-q", name, "+noall", "+comments",
            "+answer", "+authority", "+time=2", "+tries=1", *opts]
    out = ns.run(argv, timeout=15).stdout
    assert out.count("->>HEADER<<-") == 1, f"expected one reply: {argv}\n{out}"
    m, f = _STATUS.search(out), _FLAGS.search(out)
    sections: dict = {"ANSWER": [], "AUTHORITY": []}
    cur = None
    for line in out.splitlines():
        h = re.match(r";; (\w+) SECTION:", line)
        if h:
            cur = h.group(1)
            continue
        if not line.strip() or line.startswith(";"):
            continue
        if cur in sections:
            owner, ttl, cls, typ, *rest = line.split(None, 4)
            sections[cur].append((owner, int(ttl), cls, typ, rest[0] if rest else ""))
    e = _ECS.search(out)
    return DigReply(m.group(1) if m else "?", frozenset(f.group(1).split()) if f else frozenset(),
                    tuple(sections["ANSWER"]), tuple(sections["AUTHORITY"]),
                    int(e.group(3)) if e else None, out)


def kdig_query(ns, server: str, rtype: str = "A", ecs: str | None = None, name: str = QNAME) -> Answer:
    argv = ["kdig", f"@{server}", "-p", "53", name, rtype, "+time=2", "+retry=0", *_subnet(ecs)]
    return _parse_text(ns.run(argv, timeout=15).stdout, rtype)


def py_queries(ns, queries: list[dict]) -> list[Answer]:
    """dnspython inside ``ns``: each query {server, rtype, ecs ('addr/len' or None), name?}."""
    p = ns.run([sys.executable, str(Path(__file__).resolve()), "query"], timeout=60,
               input=json.dumps(queries))
    return [Answer(d["rcode"], frozenset(d["addrs"]), d["scope"], d["ttl"]) for d in json.loads(p.stdout)]


def _py_main() -> None:
    import dns.edns
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    out = []
    for q in json.load(sys.stdin):
        opts = []
        if q.get("ecs"):
            addr, _, plen = q["ecs"].partition("/")
            opts.append(dns.edns.ECSOption(addr, int(plen)))
        msg = dns.message.make_query(q.get("name", QNAME), q["rtype"], use_edns=0, options=opts)
        r = dns.query.udp(msg, q["server"], port=q.get("port", 53), timeout=3)
        rt = dns.rdatatype.from_text(q["rtype"])
        addrs, ttl = [], None
        for rrset in r.answer:
            if rrset.rdtype == rt:
                addrs += [str(ipaddress.ip_address(rd.address)) for rd in rrset]
                ttl = rrset.ttl
        scope = next((o.scopelen for o in r.options if o.otype == dns.edns.ECS), None)
        out.append({"rcode": dns.rcode.to_text(r.rcode()), "addrs": addrs, "scope": scope, "ttl": ttl})
    json.dump(out, sys.stdout)


# ---------------------------------------------------------------------------
# dnsperf


def wire_query(qname: str, qtype: int, ecs_addr: str, srclen: int, qid: int = 0) -> bytes:
    """A DNS query in wire form with EDNS(0) and an ECS option (as the anchors' dns_prep.py)."""
    h = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1)
    q = b"".join(bytes([len(lbl)]) + lbl.encode() for lbl in qname.strip(".").split(".")) + b"\x00"
    q += struct.pack(">HH", qtype, 1)
    fam = 2 if ":" in ecs_addr else 1
    a = socket.inet_pton(socket.AF_INET6 if fam == 2 else socket.AF_INET, ecs_addr)[:(srclen + 7) // 8]
    opt = struct.pack(">HBB", fam, srclen, 0) + a
    rr = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 4 + len(opt)) + struct.pack(">HH", 8, len(opt)) + opt
    return h + q + rr


def dnsperf_queries(path: Path, addrs: list, qname: str = QNAME) -> int:
    """dnsperf ``-B`` input: each query length-prefixed; A for IPv4 ECS, AAAA for IPv6."""
    with open(path, "wb") as f:
        for i, a in enumerate(addrs):
            a = ipaddress.ip_address(a)
            w = wire_query(qname, 1 if a.version == 4 else 28, str(a), 32 if a.version == 4 else 56, i & 0xFFFF)
            f.write(struct.pack(">H", len(w)) + w)
    return len(addrs)


if __name__ == "__main__":
    if sys.argv[1:] == ["query"]:
        _py_main()
    else:
        sys.exit(f"usage: {sys.argv[0]} query  (JSON list of queries on stdin)")
