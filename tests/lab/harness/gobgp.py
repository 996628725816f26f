"""GoBGP in the lab: config generator and daemon wrapper.

  gobgp_config(asn, router_id, sessions, graceful_restart=None, listen_port=-1)
  GoBgp(lab, ns, name, config)   via ``lab.gobgp(...)``: .start() .wait_ready() .cli(*args)
      .neighbor_state(addr) .wait_established(*addrs) .add_route(Route, nexthop) .del_route(Route)
  gobgp_aspath(path)   the CLI's AS path text (AS_SETs as ``{a,b}``)

Talks to gobgpd through the gobgp CLI on its gRPC API (127.0.0.1 inside the namespace).
"""
from __future__ import annotations

import json
import shutil
from typing import Iterable

from .lab import Daemon
from .net import wait_until
from .routes import Route, Session, is_set

GOBGPD = shutil.which("gobgpd") or "/usr/bin/gobgpd"
GOBGP = shutil.which("gobgp") or "/usr/bin/gobgp"


def gobgp_config(asn: int, router_id: str, sessions: list[Session], graceful_restart: int | None = None,
                 listen_port: int = -1) -> str:
    """gobgpd TOML; ``graceful_restart``: restart time (RFC 4724 on); listen_port=-1 disables
    listening (we connect out)."""
    out = ["[global.config]", f"  as = {asn}", f'  router-id = "{router_id}"', f"  port = {listen_port}", ""]
    for p in sessions:
        out += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{p.neighbor}"',
                f"    peer-as = {p.peer_as}",
                "  [neighbors.timers.config]", "    connect-retry = 2", "    hold-time = 30",
                "    keepalive-interval = 10"]
        if p.local_address:
            out += ["  [neighbors.transport.config]", f'    local-address = "{p.local_address}"']
        if p.multihop:
            out += ["  [neighbors.ebgp-multihop.config]", "    enabled = true", f"    multihop-ttl = {p.multihop}"]
        if graceful_restart is not None:
            out += ["  [neighbors.graceful-restart.config]", "    enabled = true",
                    f"    restart-time = {graceful_restart}"]
        for f in p.families:
            out += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                    f'      afi-safi-name = "{f}-unicast"']
            if graceful_restart is not None:
                out += ["    [neighbors.afi-safis.mp-graceful-restart.config]", "      enabled = true"]
        out.append("")
    return "\n".join(out) + "\n"


class GoBgp(Daemon):
    API_PORT = 50051
    conf_name = "gobgpd.toml"

    def start(self) -> "GoBgp":
        self.spawn([
            GOBGPD, "-f", str(self.conf), "-p", "--api-hosts", f"127.0.0.1:{self.API_PORT}",
            "--pprof-disable", "-l", "info"])
        return self

    def wait_ready(self, timeout: float = 20.0) -> "GoBgp":
        wait_until(lambda: self.cli("global", check=False).find("AS") >= 0, timeout,
                   desc=f"gobgpd {self.name} API")
        return self

    def cli(self, *args: str, check: bool = True) -> str:
        p = self.ns.run([GOBGP, "-u", "127.0.0.1", "-p", str(self.API_PORT), *args], check=False, timeout=15)
        if check and p.returncode != 0:
            raise RuntimeError(f"gobgp {args}: {p.stdout}{p.stderr}")
        return p.stdout

    def neighbor_state(self, addr: str) -> str:
        d = json.loads(self.cli("neighbor", addr, "-j"))
        return str(d.get("state", {}).get("session_state", ""))

    def session_up(self, addr: str) -> bool:
        return self.neighbor_state(addr).lower() in ("established", "6")

    def add_route(self, r: Route, nexthop: str) -> None:
        args = ["global", "rib", "add", "-a", "ipv4" if r.afi == 4 else "ipv6", str(r.net),
                "origin", r.origin, "nexthop", nexthop]
        if r.as_path:
            args += ["aspath", gobgp_aspath(r.as_path)]
        if r.med is not None:
            args += ["med", str(r.med)]
        if r.communities:
            args += ["community", ",".join(r.communities)]
        self.cli(*args)

    def del_route(self, r: Route) -> None:
        self.cli("global", "rib", "del", "-a", "ipv4" if r.afi == 4 else "ipv6", str(r.net))


def gobgp_aspath(path: Iterable) -> str:
    return " ".join("{" + ",".join(str(x) for x in e) + "}" if is_set(e) else str(e) for e in path)

