"""DNS transport regressions (issue 8, defects 3-6) against one loopback sparrowd.

* OPT on every reply to an EDNS query (RFC 6891 §7): ``dig +ednsopt=8:00011800c0000201``
  (a malformed ECS) gets FORMERR *with* an OPT record; QDCOUNT 0 and opcodes 1-15 with
  EDNS (dnspython, raw) get FORMERR / NOTIMP with an OPT; without EDNS, none.
* ECS scope wider than the source (RFC 7871 §7.2.1): ``+subnet=10.0.0.0/8`` where the
  static steering map sends 10.1.0.0/16 elsewhere is answered with the snapshot's safe
  scope (``sparrowctl explain``), which is longer than 8.
* UDP and TCP answer alike: for a corpus of queries the UDP reply (EDNS payload large
  enough, not truncated) equals the TCP reply byte for byte.
* Idle TCP connections cannot exhaust descriptors: sparrowd under a descriptor limit of
  256 (set at start, or lowered while it runs), 400 idle TCP connections opened from
  python: its CPU stays under 10% of a core, a new TCP client (kdig +tcp) is answered
  (idle ones are evicted) and UDP answers throughout.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import pytest

from harness import Lab, ROOT, free_port, sparrow_config, wait_until

pytestmark = pytest.mark.sparrowd

ZONE = "sparrow.test"
ANSWERS = {"x": "192.0.2.10", "y": "192.0.2.20"}
HOST = "127.0.0.1"
NOFILE = 256
IDLE_CONNS = 400


def _config(dns_port: int) -> dict:
    cfg = sparrow_config(65001, "192.0.2.1", [], pop="x", pops={"x": 65001, "y": 65002}, listen=[],
                         steering={"default_pop": "x",
                                   "fallback": [{"prefix": "10.0.0.0/8", "pop": "x"},
                                                {"prefix": "10.1.0.0/16", "pop": "y"}]})
    cfg["dns"] = {"listen": [f"{HOST}:{dns_port}"], "max_udp_payload": 4096}
    cfg["zones"] = [{
        "origin": ZONE, "soa": {"mname": f"ns1.{ZONE}", "rname": f"hostmaster.{ZONE}"},
        "ns": [f"ns1.{ZONE}"],
        "records": [{"name": "ns1", "type": "A", "data": "192.0.2.53"},
                    {"name": "mail", "type": "A", "data": "192.0.2.25"},
                    {"name": "alias", "type": "CNAME", "data": "www"}]
                   + [{"name": "big", "type": "TXT", "data": f'"record {i} ' + "x" * 60 + '"'}
                      for i in range(12)],
        "steered": [{"name": "www", "ttl": 30, "pops": {p: {"a": [a]} for p, a in ANSWERS.items()}}],
    }]
    return cfg


class Env:
    def __init__(self, lab: Lab, port: int, nofile_at_start: bool):
        self.port = port
        self.d = lab.sparrowd(ROOT, "sparrowd", _config(port))
        if nofile_at_start:
            spawn = self.d.spawn
            self.d.spawn = lambda argv, **kw: spawn(["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--", *argv], **kw)
        self.d.start().wait_ready()
        wait_until(lambda: self.udp(self.q("www")) is not None, timeout=10, desc="DNS answers")

    @property
    def pid(self) -> int:
        return self.d.proc.popen.pid

    def q(self, name: str, rtype: str = "A", **kw) -> dns.message.Message:
        return dns.message.make_query(f"{name}.{ZONE}" if name else ZONE, rtype, **kw)

    def udp_wire(self, wire: bytes, timeout: float = 2.0) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(wire, (HOST, self.port))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None

    def tcp_wire(self, wire: bytes, timeout: float = 5.0) -> bytes:
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            n = struct.unpack("!H", _recv_exact(s, 2))[0]
            return _recv_exact(s, n)

    def udp(self, m: dns.message.Message) -> dns.message.Message | None:
        r = self.udp_wire(m.to_wire())
        return dns.message.from_wire(r) if r else None

    def cpu_ticks(self) -> int:
        f = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("closed")
        b += chunk
    return b


@pytest.fixture
def env(tmp_path):
    with Lab("dnsxport", tmp_path) as lab:
        yield Env(lab, free_port(), nofile_at_start=False)


def _dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", f"@{HOST}", "-p", str(port), "+time=2", "+tries=1", *args],
                          capture_output=True, text=True, timeout=20).stdout


def _opt_of_raw(wire: bytes) -> tuple[int, bool]:
    """(RCODE with its extended bits, has an OPT) of an error reply, read by hand (any
    opcode, no ECS): the OPT, if any, is its last record (root owner, type 41, 11 bytes)."""
    arcount = struct.unpack("!H", wire[10:12])[0]
    has = arcount >= 1 and wire[-11:-8] == b"\x00\x00\x29" and wire[-2:] == b"\x00\x00"
    return (wire[3] & 0x0F) | ((wire[-6] << 4) if has else 0), has


def test_formerr_for_malformed_ecs_carries_opt(env):
    out = _dig(env.port, f"www.{ZONE}", "+ednsopt=8:00011800c0000201")
    assert "status: FORMERR" in out, out
    assert "OPT PSEUDOSECTION" in out, out
    assert "CLIENT-SUBNET" not in out.split("OPT PSEUDOSECTION")[1].split("QUESTION")[0], out
    # Without EDNS, a FORMERR has no OPT.
    q = env.q("www", use_edns=False).to_wire()
    q = q[:4] + b"\x00\x00" + q[6:12]  # QDCOUNT 0, no question
    assert _opt_of_raw(env.udp_wire(q)) == (dns.rcode.FORMERR, False)


def test_qdcount0_and_other_opcodes_with_edns_get_opt(env):
    q = env.q("www", use_edns=0).to_wire()
    # QDCOUNT 0: the question removed, the OPT kept.
    qname_end = 12 + len(dns.name.from_text(f"www.{ZONE}").to_wire()) + 4
    q0 = q[:4] + b"\x00\x00" + q[6:12] + q[qname_end:]
    assert _opt_of_raw(env.udp_wire(q0)) == (dns.rcode.FORMERR, True)
    for op in range(1, 16):
        m = env.q("www", use_edns=0)
        m.flags = (m.flags & ~0x7800) | (op << 11)
        got = _opt_of_raw(env.udp_wire(m.to_wire()))
        assert got == (dns.rcode.NOTIMP, True), (dns.opcode.to_text(op) if op < 7 else op, got)
        # and over TCP alike
        assert _opt_of_raw(env.tcp_wire(m.to_wire())) == (dns.rcode.NOTIMP, True), op
    m = env.q("www", use_edns=0)
    m.flags |= dns.opcode.to_flags(dns.opcode.NOTIFY)
    m.use_edns(False)
    assert _opt_of_raw(env.udp_wire(m.to_wire())) == (dns.rcode.NOTIMP, False)
    # BADVERS (EDNS version 1) keeps its OPT.
    r = env.udp(env.q("www", use_edns=1))
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0


def test_ecs_scope_longer_than_source(env):
    safe = env.d.explain("10.0.0.0")["scope"]
    assert safe > 8, safe  # 10.1.0.0/16 ranks y first, the rest of 10/8 x
    out = _dig(env.port, f"www.{ZONE}", "A", "+subnet=10.0.0.0/8")
    assert f"CLIENT-SUBNET: 10.0.0.0/8/{safe}" in out, out
    assert ANSWERS["x"] in out, out
    # dnspython: the same; a more specific prefix inside 10.1/16 gets y.
    for ecs, pop in (("10.0.0.0", "x"), ("10.1.0.0", "y")):
        r = env.udp(env.q("www", use_edns=0, options=[dns.edns.ECSOption(ecs, 8 if pop == "x" else 16)]))
        addrs = {rr.address for rrset in r.answer for rr in rrset}
        scope = next(o.scopelen for o in r.options if o.otype == dns.edns.ECS)
        assert addrs == {ANSWERS[pop]}, (ecs, r)
        assert scope == env.d.explain(ecs)["scope"], (ecs, scope)
    # A client-independent answer: scope 0.
    r = env.udp(env.q("mail", use_edns=0, options=[dns.edns.ECSOption("10.0.0.0", 8)]))
    assert next(o.scopelen for o in r.options if o.otype == dns.edns.ECS) == 0


def _corpus(env) -> list[bytes]:
    out = []
    for name in ("www", "WwW", "mail", "alias", "big", "nope", "", "ns1", "a.b.nope"):
        for rtype in ("A", "AAAA", "TXT", "SOA", "NS", "ANY", "MX"):
            out.append(env.q(name, rtype, use_edns=0, payload=4096).to_wire())
    for ecs, plen in (("10.0.0.0", 8), ("10.1.2.0", 24), ("192.0.2.0", 24), ("0.0.0.0", 0), ("2001:db8::", 32)):
        out.append(env.q("www", use_edns=0, payload=4096, options=[dns.edns.ECSOption(ecs, plen)]).to_wire())
    out.append(env.q("www", use_edns=1, payload=4096).to_wire())
    out.append(env.q("www", use_edns=0, payload=4096, want_dnssec=True).to_wire())
    out.append(env.q("mail", use_edns=False).to_wire())
    ch = dns.message.make_query("id.server", "TXT", rdclass="CH", use_edns=0, payload=4096)
    out.append(ch.to_wire())
    good = env.q("www", use_edns=0, payload=4096).to_wire()
    out.append(good[:20])  # cut question
    out.append(good[:4] + b"\x00\x00" + good[6:])  # QDCOUNT 0 (question bytes left over)
    return out


def test_udp_and_tcp_replies_are_the_same_bytes(env):
    corpus = _corpus(env)
    compared = 0
    for wire in corpus:
        u = env.udp_wire(wire)
        t = env.tcp_wire(wire)
        assert u is not None, wire
        if u[2] & 0x02:  # TC: UDP truncated, TCP not; nothing to compare
            continue
        assert u == t, (wire.hex(), u.hex(), t.hex())
        compared += 1
    assert compared >= len(corpus) - 2, compared


@pytest.mark.parametrize("when", ["at_start", "while_running"])
def test_idle_tcp_connections_do_not_exhaust_descriptors(tmp_path, when):
    with Lab("dnsxport", tmp_path) as lab:
        env = Env(lab, free_port(), nofile_at_start=(when == "at_start"))
        if when == "while_running":
            subprocess.run(["prlimit", "--pid", str(env.pid), f"--nofile={NOFILE}:{NOFILE}"], check=True)
        assert f"{NOFILE}" in subprocess.run(["prlimit", "--pid", str(env.pid), "--nofile", "-o", "SOFT",
                                              "--noheadings"], capture_output=True, text=True).stdout
        conns = []
        try:
            deadline = time.monotonic() + 30
            for i in range(IDLE_CONNS):
                assert time.monotonic() < deadline, f"only {i} connections in 30 s"
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                # many client addresses, so the per-client cap (64) is not what limits them
                s.bind((f"127.0.{1 + i // 200}.{1 + i % 200}", 0))
                s.settimeout(3)
                s.connect((HOST, env.port))
                conns.append(s)
            # Measure CPU over a few seconds while UDP keeps answering.
            t0, c0 = time.monotonic(), env.cpu_ticks()
            answered = 0
            while time.monotonic() - t0 < 4:
                r = env.udp(env.q("www"))
                assert r is not None and r.rcode() == dns.rcode.NOERROR, r
                answered += 1
                time.sleep(0.1)
            used = (env.cpu_ticks() - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
            print(f"{when}: sparrowd CPU {used:.1%} of a core, {answered} UDP answers, "
                  f"{len(os.listdir(f'/proc/{env.pid}/fd'))} descriptors open")
            assert used < 0.10, f"sparrowd used {used:.0%} of a core with {IDLE_CONNS} idle TCP connections"
            assert answered >= 20
            # A new TCP client is served (idle connections are evicted for it).
            out = subprocess.run(["kdig", f"@{HOST}", "-p", str(env.port), "+tcp", "+time=5", "+retry=0",
                                  f"www.{ZONE}", "A"], capture_output=True, text=True, timeout=30).stdout
            assert "status: NOERROR" in out and ANSWERS["x"] in out, out
            nfd = len(os.listdir(f"/proc/{env.pid}/fd"))
            assert nfd <= NOFILE, nfd
            # and its replies are still the UDP ones
            wire = env.q("www", use_edns=0, payload=4096).to_wire()
            assert env.tcp_wire(wire) == env.udp_wire(wire)
        finally:
            for s in conns:
                s.close()
        assert env.d.alive()
