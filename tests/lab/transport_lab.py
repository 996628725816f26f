"""Helpers for test_transport.py: one sparrowd + one directly connected BIRD 2.

Topology: namespace ``sp`` (sparrowd, AS 65001) --veth 10.0.9.0/24-- namespace ``bird``
(BIRD, AS 4200000010), one IPv4-transport session carrying ipv4 + ipv6.  BIRD logs to
a file with ``debug { states, events }`` so connection attempts, collisions and
received NOTIFICATIONs can be counted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import BirdPeer, Route, sparrow_config, sparrow_peer

SP_ASN = 65001
BIRD_ASN = 4200000010
PEER = "bird"          # sparrowd's peer name
PROTO = "s0"           # BIRD's protocol name
ROUTES = [Route("10.201.0.0/24", [64512]), Route("10.201.1.0/24", []),
          Route("fd20:1::/48", [64512, 4200000001])]


@dataclass
class Topo:
    lab: harness.Lab
    sp_ns: harness.Netns
    bird_ns: harness.Netns
    link: harness.Link
    sp: harness.Sparrowd | None = None
    bird: harness.Bird | None = None
    bird_log: Path | None = None

    # -- BIRD ---------------------------------------------------------------
    def bird_conf(self, router_id: str = "10.255.0.10", extra: str = "") -> str:
        peer = BirdPeer(PROTO, self.link.a4, BIRD_ASN, SP_ASN, local_address=self.link.b4,
                        families=("ipv4", "ipv6"), export="filter export_static", import_="all",
                        next_hop_ipv6=self.link.b6,
                        extra="  debug { states, events };\n" + extra)
        return harness.bird_config(router_id, [peer], ROUTES, extra=harness.bird_static_export(ROUTES),
                                  log_file=str(self.bird_log))

    def start_bird(self, **kw) -> harness.Bird:
        self.bird = self.lab.bird(self.bird_ns, "bird", self.bird_conf(**kw)).start().wait_ready()
        return self.bird

    def bird_log_text(self) -> str:
        try:
            return self.bird_log.read_text(errors="replace")
        except OSError:
            return ""

    def bird_log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.bird_log_text()))

    # -- sparrowd -------------------------------------------------------------
    def sp_conf(self, router_id: str = "10.255.0.1", **peer_kw) -> dict:
        kw = dict(hold_time=9, connect_retry=1)
        kw.update(peer_kw)
        return sparrow_config(SP_ASN, router_id, [
            sparrow_peer(PEER, self.link.b4, BIRD_ASN, "upstream", families=["ipv4", "ipv6"], **kw)])

    def start_sparrowd(self, router_id: str = "10.255.0.1", **peer_kw) -> harness.Sparrowd:
        self.sp = self.lab.sparrowd(self.sp_ns, "sparrowd", self.sp_conf(router_id, **peer_kw)).start().wait_ready()
        return self.sp

    def sp_log_text(self) -> str:
        return self.sp.proc.log.read_text(errors="replace") if self.sp and self.sp.proc else ""

    # -- checks -----------------------------------------------------------------
    def expected_table(self) -> set:
        return harness.expected_table(ROUTES, BIRD_ASN)

    def wait_routes(self, timeout: float = 20) -> None:
        harness.wait_equal(lambda: self.sp.table(PEER), self.expected_table(), timeout,
                          desc="sparrowd's routes from BIRD")

    def wait_up(self, timeout: float = 30) -> None:
        self.sp.wait_established(PEER, timeout=timeout)
        self.bird.wait_established(PROTO, timeout=timeout)

    def converge(self, bird_extra: str = "", **peer_kw) -> "Topo":
        """Start BIRD and sparrowd, wait until the session is up on both sides and
        sparrowd holds BIRD's routes."""
        self.start_bird(extra=bird_extra)
        self.start_sparrowd(**peer_kw)
        self.wait_up()
        self.wait_routes()
        return self


def make_topo(lab: harness.Lab) -> Topo:
    sp_ns, bird_ns = lab.netns("sp"), lab.netns("bird")
    link = lab.link(sp_ns, bird_ns, v4=("10.0.9.1/24", "10.0.9.2/24"), v6=("fd00:9::1/64", "fd00:9::2/64"))
    return Topo(lab, sp_ns, bird_ns, link, bird_log=lab.path("bird.file.log"))


def tcp_ext(ns: harness.Netns, key: str) -> int:
    """A TcpExt counter (e.g. TCPMinTTLDrop) of namespace ``ns`` from /proc/net/netstat."""
    lines = ns.sh("cat /proc/net/netstat").splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:]))
            return int(d[key])
    raise KeyError(key)


def syn_sent(ns: harness.Netns, dst: str) -> bool:
    """A socket of ``ns`` is in SYN-SENT towards dst:179."""
    out = ns.sh(f"ss -Htn state syn-sent dst {dst}:179")
    return bool(out.strip())


def hold_neighbors(link: harness.Link) -> None:
    """Make both ends unable to resolve each other via ARP, so outgoing SYNs wait in
    the (INCOMPLETE) neighbour queue instead of leaving."""
    for ns, ifn in ((link.ns_a, link.if_a), (link.ns_b, link.if_b)):
        ns.sysctl(f"net.ipv4.conf.{ifn}.arp_ignore", 8)         # answer no ARP request
        ns.sysctl(f"net.ipv4.neigh.{ifn}.mcast_solicit", 60)    # stay INCOMPLETE ~60 s
        ns.sysctl(f"net.ipv4.neigh.{ifn}.ucast_solicit", 60)
        ns.run(["ip", "neigh", "flush", "dev", ifn])


def mac(ns: harness.Netns, ifn: str) -> str:
    return ns.sh(f"cat /sys/class/net/{ifn}/address").strip()


def release_neighbors(link: harness.Link) -> None:
    """Install permanent neighbour entries on both ends at (nearly) the same instant:
    the kernel then flushes the queued SYNs of both sides together."""
    ma, mb = mac(link.ns_a, link.if_a), mac(link.ns_b, link.if_b)
    cmd = (f"ip -n {link.ns_a.name} neigh replace {link.b4} lladdr {mb} dev {link.if_a} nud permanent; "
           f"ip -n {link.ns_b.name} neigh replace {link.a4} lladdr {ma} dev {link.if_b} nud permanent")
    harness.run(["sh", "-c", cmd])
