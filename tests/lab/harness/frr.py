"""FRR bgpd (without zebra) in the lab: config generator and daemon wrapper.

  frr_config(asn, router_id, sessions, routes, hostname, nh4, graceful_restart)
  Frr(lab, ns, name, config)   via ``lab.frr(...)``: .start() .wait_ready() .vtysh(*cmds)
      .vtysh_json(cmd) .configure(*lines) .neighbor_state(addr) .wait_established(*addrs) .table()

bgpd runs with -Z, so it does not know its interface addresses: IPv4 NLRI over an
IPv6 session needs an outbound ``set ip next-hop`` (frr_config's nh4); route-maps are
written before ``router bgp`` so ``network ... route-map`` applies at start.
Talks to bgpd through vtysh on the vty socket in the daemon's directory.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
from typing import Any, Iterable

from .lab import Daemon
from .net import wait_until
from .routes import Route, Session, bird_path

FRR_BGPD = "/usr/lib/frr/bgpd"
VTYSH = shutil.which("vtysh") or "/usr/bin/vtysh"


def frr_config(asn: int, router_id: str, sessions: list[Session], routes: Iterable[Route] = (),
               hostname: str = "frr", nh4: str | None = None, graceful_restart: bool = False) -> str:
    """bgpd config originating ``routes`` via ``network ... route-map`` with as-path prepend;
    ``nh4``: outbound IPv4 next hop on IPv6-transport sessions (bgpd without zebra does not
    know its interface addresses)."""
    routes = list(routes)
    out = ["frr defaults traditional", f"hostname {hostname}", "!"]
    # route-maps first so `network ... route-map` finds them at startup
    for i, r in enumerate(routes):
        if r.has_set():
            raise ValueError("FRR network statements cannot originate AS_SETs")
        out.append(f"route-map ORIG{i} permit 10")
        if r.as_path:
            out.append(" set as-path prepend " + " ".join(str(a) for a in r.as_path))
        out.append(f" set origin {r.origin}")
        if r.med is not None:
            out.append(f" set metric {r.med}")
        if r.communities:
            out.append(" set community " + " ".join(r.communities))
        out.append("exit")
    nh = {j: nh4 for j, s in enumerate(sessions) if nh4 and ":" in s.neighbor and "ipv4" in s.families}
    for j, addr in nh.items():
        out += [f"route-map NH{j}-4 permit 10", f" set ip next-hop {addr}", "exit"]
    out += [f"router bgp {asn}", f" bgp router-id {router_id}", " no bgp ebgp-requires-policy",
            " no bgp network import-check", " no bgp default ipv4-unicast",
            " timers bgp 10 30"]
    if graceful_restart:
        out.append(" bgp graceful-restart")
    for p in sessions:
        out.append(f" neighbor {p.neighbor} remote-as {p.peer_as}")
        out.append(f" neighbor {p.neighbor} timers connect 2")
        if p.local_address:
            out.append(f" neighbor {p.neighbor} update-source {p.local_address}")
        if p.multihop:
            out.append(f" neighbor {p.neighbor} ebgp-multihop {p.multihop}")
    for fam, ver in (("ipv4", 4), ("ipv6", 6)):
        out.append(f" address-family {fam} unicast")
        for i, r in enumerate(routes):
            if r.afi == ver:
                out.append(f"  network {r.net} route-map ORIG{i}")
        for j, p in enumerate(sessions):
            if fam in p.families:
                out.append(f"  neighbor {p.neighbor} activate")
                if ver == 4 and j in nh:
                    out.append(f"  neighbor {p.neighbor} route-map NH{j}-4 out")
        out.append(" exit-address-family")
    out.append("exit")
    return "\n".join(out) + "\n"


class Frr(Daemon):
    conf_name = "bgpd.conf"

    def __init__(self, lab, ns, name: str, config: str):
        super().__init__(lab, ns, name, config)
        os.chmod(self.dir, 0o777)

    def start(self) -> "Frr":
        self.spawn([
            FRR_BGPD, "-Z", "-S", "-u", "root", "-g", "root", "-P", "0",
            "-f", str(self.conf), "-i", str(self.dir / "bgpd.pid"), "--vty_socket", str(self.dir),
            "--log", f"file:{self.dir / 'bgpd.file.log'}"])
        return self

    def wait_ready(self, timeout: float = 20.0) -> "Frr":
        wait_until(lambda: "BGP" in self.vtysh("show bgp summary", check=False)
                   or "router identifier" in self.vtysh("show bgp summary", check=False),
                   timeout, desc=f"frr {self.name} vty")
        return self

    def vtysh(self, *cmds: str, check: bool = True) -> str:
        argv = [VTYSH, "--vty_socket", str(self.dir), "-d", "bgpd"]
        for c in cmds:
            argv += ["-c", c]
        p = self.ns.run(argv, check=False, timeout=20)
        if check and p.returncode != 0:
            raise RuntimeError(f"vtysh {cmds}: {p.stdout}{p.stderr}")
        return p.stdout

    def vtysh_json(self, cmd: str) -> Any:
        return json.loads(self.vtysh(cmd))

    def configure(self, *lines: str) -> None:
        self.vtysh("configure terminal", *lines)

    def neighbor_state(self, addr: str) -> str:
        d = self.vtysh_json(f"show bgp neighbors {addr} json")
        return d.get(addr, {}).get("bgpState", "")

    def session_up(self, addr: str) -> bool:
        return self.neighbor_state(addr) == "Established"

    def session_detail(self, addr: str) -> str:
        return self.vtysh("show bgp summary", check=False)

    def table(self) -> set[tuple[str, tuple]]:
        """{(prefix, canonical path)} of all received (non-local) paths, both families."""
        out = set()
        for fam in ("ipv4", "ipv6"):
            d = self.vtysh_json(f"show bgp {fam} unicast json")
            for pfx, paths in (d.get("routes") or {}).items():
                for p in paths:
                    if p.get("peerId") in (None, "(unspec)"):
                        continue
                    out.add((str(ipaddress.ip_network(pfx)), bird_path(p.get("path", ""))))
        return out

