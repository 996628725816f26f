"""`sparrowctl explain` and `sparrowctl lookup` against a running sparrowd.

A raw BGP upstream on loopback announces prefixes whose AS paths hold POP ASNs at
various positions (or none). The expected POP for every address is computed here
from what was announced, by the rule (the POP ASN nearest the origin, i.e. last in
the path, else the local POP) over a brute-force longest match, and compared with
what the daemon answers through both doors.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess

import pytest

import rawbgp as rb
from harness import ctl_out as _ctl
from harness import free_port, loopback_sparrowd, sparrow_bin_dir, sparrow_config, sparrow_peer, wait_until

pytestmark = pytest.mark.sparrowd

LOCAL_ASN = 64999
POPS = {"local": LOCAL_ASN, "west": 65010, "east": 4200000020}
PEER_ADDR, PEER_ASN = "127.0.4.1", 64700

# prefix -> AS path as announced (the peer's ASN first, as eBGP requires)
ROUTES4 = {
    "198.51.100.0/24": [PEER_ASN, 65010, 3356],                # west
    "198.51.100.128/25": [PEER_ASN, 3356, 65010, 4200000020],  # east: last POP ASN wins
    "203.0.113.0/24": [PEER_ASN, 174, 2914],                   # no POP ASN: local
    "10.0.0.0/8": [PEER_ASN, 4200000020, 65010, 7018],         # west (last)
    "10.20.0.0/16": [PEER_ASN, 7018],                          # local
}
ROUTES6 = {
    "2001:db8::/32": [PEER_ASN, 4200000020],                   # east
    "2001:db8:50::/48": [PEER_ASN, 6939],                      # local
}


def expected_pop(addr: str) -> str:
    a = ipaddress.ip_address(addr)
    best, best_len = None, -1
    for p, path in {**ROUTES4, **ROUTES6}.items():
        n = ipaddress.ip_network(p)
        if n.version == a.version and a in n and n.prefixlen > best_len:
            best, best_len = path, n.prefixlen
    if best is None:
        return "local"
    for asn in reversed(best):
        for name, pop_asn in POPS.items():
            if asn == pop_asn:
                return name
    return "local"


def _rib_snapshot(sock) -> bool:
    """The snapshot reflects the upstream's routes (it switches to the RIB at End-of-RIB)."""
    e = json.loads(_ctl(sock, "--json", "explain", "198.51.100.1"))
    e6 = json.loads(_ctl(sock, "--json", "explain", "2001:db8::1"))
    return e["source"] == "rib" and e6["source"] == "rib" \
        and e["ranking"][0] == "west" and e6["ranking"][0] == "east"


@pytest.fixture
def daemon(tmp_path):
    port = free_port()
    config = sparrow_config(LOCAL_ASN, "192.0.2.1",
                            [sparrow_peer("up", PEER_ADDR, PEER_ASN, passive=True, multihop=64)],
                            pop="local", pops=POPS, listen=["127.0.0.1"], port=port, log_format=None)
    with loopback_sparrowd(tmp_path, config) as d:
        peer = rb.RawBgp.connect("127.0.0.1", port, source=PEER_ADDR)
        try:
            peer.establish(asn=PEER_ASN, hold=90, router_id="10.0.4.1")
            peer.start_keepalives(20)
            for p, path in ROUTES4.items():
                peer.send_raw(rb.announce4([p], path, "192.0.2.44"))
            for p, path in ROUTES6.items():
                peer.send_raw(rb.announce6([p], path, "2001:db8:ffff::44"))
            peer.send_raw(rb.end_of_rib(rb.AFI_IPV4) + rb.end_of_rib(rb.AFI_IPV6))
            wait_until(lambda: _rib_snapshot(d.socket), 15, desc="snapshot reflecting the RIB")
            yield d.socket
        finally:
            peer.close()


def _sample_addresses(n: int = 200) -> list[str]:
    rng = random.Random(7)
    out = []
    for p in list(ROUTES4) + list(ROUTES6):
        net = ipaddress.ip_network(p)
        out.append(str(net.network_address))
        out.append(str(net.broadcast_address))
        for _ in range(5):
            out.append(str(net.network_address + rng.randrange(net.num_addresses)))
    while len(out) < n:
        out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
    return out


def test_explain_names_the_pop_asn_and_position(daemon):
    e = json.loads(_ctl(daemon, "--json", "explain", "198.51.100.200"))
    assert e["rib_prefix"] == "198.51.100.128/25"
    assert e["best_path"]["as_path"] == "64700 3356 65010 4200000020"
    assert e["pop_asn"] == {"asn": 4200000020, "pop": "east", "position": 3, "path_length": 4}
    assert e["ranking"][0] == "east" and sorted(e["ranking"]) == sorted(POPS)
    assert e["generation"] >= 1
    # No POP ASN in the path: the local POP, and explain says why.
    e = json.loads(_ctl(daemon, "--json", "explain", "203.0.113.5"))
    assert e["pop_asn"] is None and e["ranking"][0] == "local"
    assert "no POP ASN" in e["rule"]
    # No route at all: the local POP, not an error.
    e = json.loads(_ctl(daemon, "--json", "explain", "192.0.2.200"))
    assert e["rib_prefix"] is None and e["best_path"] is None and e["ranking"][0] == "local"
    # The text form carries the same facts.
    t = _ctl(daemon, "explain", "10.1.2.3")
    assert "65010" in t and "west" in t and "Ranking:" in t


def test_explain_and_lookup_agree_with_the_rule(daemon):
    addrs = _sample_addresses()
    for a in addrs[:40]:
        e = json.loads(_ctl(daemon, "--json", "explain", a))
        assert e["ranking"][0] == expected_pop(a), (a, e)
    lines = addrs + ["not-an-address", "::ffff:198.51.100.1"]
    out = _ctl(daemon, "lookup", stdin="\n".join(lines) + "\n").splitlines()
    assert len(out) == len(lines)
    for a, got in zip(addrs, out):
        assert got == expected_pop(a), (a, got)
    assert out[-2] == "NULL"
    assert out[-1] == expected_pop("198.51.100.1")


def test_lookup_answers_each_line_before_the_next(daemon):
    # RewriteMap prg: semantics: one answer per line, written before more input comes.
    p = subprocess.Popen([str(sparrow_bin_dir() / "sparrowctl"), "-s", str(daemon), "lookup"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        for a in ["198.51.100.1", "2001:db8::9", "203.0.113.1"]:
            p.stdin.write(a + "\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == expected_pop(a)
    finally:
        p.stdin.close()
        assert p.wait(10) == 0
