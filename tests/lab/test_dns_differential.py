"""Differential test: sparrowd against knotd on the same static zones and a generated corpus.

Both servers run on loopback and serve ``dns_corpus.ZONES`` (diff.test and its child zone
child.diff.test, delegated from the parent). Every corpus query (over 2,000: every qtype,
names around cuts, empty non-terminals, wildcards, case, classes, EDNS versions, options and
payload sizes, ECS variants, opcodes, QDCOUNT 0 and 2, header flags) is sent over UDP and over
TCP to both, and the responses are compared field by field (``dns_corpus.normalise``).

A difference passes only if ``dns_accepted_differences.txt`` lists it (query tag, field) with
its RFC reason; any other difference fails the test, listing each one.
"""
from __future__ import annotations

import fnmatch
import json
import socket
import struct
from pathlib import Path

import pytest

import dns_corpus as dc
from harness import ROOT, free_port, sparrow_config, wait_until

pytestmark = pytest.mark.sparrowd

ACCEPTED = Path(__file__).with_name("dns_accepted_differences.txt")


def accepted_rules() -> list[tuple[str, str, list[str], str]]:
    """Lines ``tag/transport glob | query globs | field globs | reason`` (globs comma-separated,
    queries matched case-insensitively)."""
    rules = []
    for n, line in enumerate(ACCEPTED.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|", 3)]
        assert len(parts) == 4 and parts[3], f"{ACCEPTED.name}:{n}: want tag | query | fields | reason: {line}"
        rules.append((parts[0], parts[1], parts[2].split(","), parts[3]))
    return rules


def accepted_by(rules, tag: str, transport: str, desc: str, fld: str) -> int | None:
    for i, (tg, qg, fields, _) in enumerate(rules):
        if (fnmatch.fnmatch(f"{tag}/{transport}", tg)
                and any(fnmatch.fnmatch(desc.lower(), g.strip().lower()) for g in qg.split(","))
                and any(fnmatch.fnmatch(fld, f.strip()) for f in fields)):
            return i
    return None


def udp(addr: str, port: int, wire: bytes, timeout: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(wire, (addr, port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def _recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp(addr: str, port: int, wire: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.create_connection((addr, port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        try:
            hdr = _recv_exact(s, 2)
            if hdr is None:
                return None
            return _recv_exact(s, struct.unpack("!H", hdr)[0])
        except (socket.timeout, ConnectionResetError):
            return None


def test_sparrowd_matches_knotd(lab):
    sp_port, kn_port = free_port(), free_port()
    cfg = sparrow_config(64999, "192.0.2.1", [], listen=[], pop="x")
    cfg["dns"] = {"listen": [f"127.0.0.1:{sp_port}"], "identity": dc.IDENTITY, "max_udp_payload": 1232}
    cfg["zones"] = dc.sparrow_zones()
    sp = lab.sparrowd(ROOT, "sparrowd", cfg).start().wait_ready()
    kn = lab.knot(ROOT, "knotd", {o: dc.knot_zonefile(o) for o in dc.ZONES},
                  [f"127.0.0.1@{kn_port}"], identity=dc.IDENTITY).start().wait_ready()
    # sparrowd answers its apex too before the corpus starts.
    wait_until(lambda: udp("127.0.0.1", sp_port, dc.corpus()[0].wire) is not None, 10,
               desc="sparrowd answering DNS")

    corpus = dc.corpus()
    assert len(corpus) >= 2000, len(corpus)
    rules = accepted_rules()
    used: set[int] = set()
    unaccepted = []
    compared = 0
    for q in corpus:
        for transport, send in (("udp", udp), ("tcp", tcp)):
            ours = dc.normalise(send("127.0.0.1", sp_port, q.wire))
            ref = dc.normalise(send("127.0.0.1", kn_port, q.wire))
            compared += 1
            for fld in sorted(set(ours) | set(ref)):
                if ours.get(fld) == ref.get(fld):
                    continue
                hit = accepted_by(rules, q.tag, transport, q.desc, fld)
                if hit is None:
                    unaccepted.append((q.tag, transport, q.desc, fld, ours.get(fld), ref.get(fld)))
                else:
                    used.add(hit)
    report = lab.path("differences.json")
    report.write_text(json.dumps(unaccepted, indent=1, default=str))
    assert sp.alive() and kn.alive()
    lines = [f"{t}/{tr} {d}: {f}: sparrowd={o!r} knotd={r!r}" for t, tr, d, f, o, r in unaccepted]
    assert not unaccepted, (f"{len(unaccepted)} differences not in {ACCEPTED.name} "
                            f"(of {compared} exchanges; all in {report}):\n" + "\n".join(lines[:60]))
    unused = [rules[i][:2] for i in range(len(rules)) if i not in used]
    assert not unused, f"rules in {ACCEPTED.name} that no difference needed (remove them): {unused}"
