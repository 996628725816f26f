"""ExaBGP 4 in the lab: static-route configs, and a peer driven line by line through its API.

  ExaNeighbor / exa_route(route) / exabgp_config(neighbors)   static configs (as-path verbatim)
  ExaBgp(lab, ns, name, config)   via ``lab.exabgp(...)``: .start() .wait_ready() .stop() .alive()
      .reload(new_config)   SIGUSR1: ExaBGP re-reads it, removed routes are withdrawn
  ExaBgp.api_peer(lab, name, local_ip=, asn=, peer_ip=, peer_port=, peer_asn=)   one loopback
      session fed by .send(*lines) (``announce route ...``, raw ``attribute [ ... ]``); .output()

ExaBGP sends ``as-path`` verbatim (it does not prepend its own ASN on eBGP). Generic
attributes (``attribute [ 0xCODE 0xFLAGS 0xVALUE ]``) replace ExaBGP's own attribute
of the same code, so a malformed AS_PATH or ORIGIN can be sent byte for byte.
The API process is a small script printing, in order, the command files ``send`` drops
into the daemon's ``cmds`` directory. Talks to nothing but its BGP peer.
"""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field

from .lab import ROOT, Daemon
from .net import wait_until
from .routes import Route, is_set

EXABGP = "/usr/sbin/exabgp"

API_SCRIPT = r'''
import os, sys, time
d = sys.argv[1]
i = 0
idle_until = time.time() + 900
while time.time() < idle_until:
    p = os.path.join(d, "cmd-%04d" % i)
    if os.path.exists(p):
        with open(p) as f:
            for line in f.read().splitlines():
                if line.strip():
                    sys.stdout.write(line.strip() + "\n")
        sys.stdout.flush()
        i += 1
        idle_until = time.time() + 900
        continue
    time.sleep(0.05)
'''


@dataclass
class ExaNeighbor:
    neighbor: str
    local_address: str
    local_as: int
    peer_as: int
    router_id: str
    routes: list = field(default_factory=list)  # Route objects; next_hop required
    families: tuple = ("ipv4 unicast", "ipv6 unicast")
    hold_time: int = 30
    graceful_restart: int | None = None  # restart time


def exa_route(r: Route) -> str:
    parts = [f"route {r.net} next-hop {r.next_hop}", f"origin {r.origin}"]
    if r.as_path:
        segs = ("( " + " ".join(str(x) for x in e) + " )" if is_set(e) else str(e) for e in r.as_path)
        parts.append("as-path [ " + " ".join(segs) + " ]")
    if r.med is not None:
        parts.append(f"med {r.med}")
    if r.communities:
        parts.append("community [ " + " ".join(r.communities) + " ]")
    return " ".join(parts) + ";"


def exabgp_config(neighbors: list[ExaNeighbor]) -> str:
    """ExaBGP 4 config.  NOTE: ExaBGP sends ``as-path`` verbatim (it does NOT prepend
    its own ASN on eBGP), so give the full path, first ASN = local_as."""
    out = []
    for n in neighbors:
        out += [f"neighbor {n.neighbor} {{", f"  router-id {n.router_id};", f"  local-address {n.local_address};",
                f"  local-as {n.local_as};", f"  peer-as {n.peer_as};", f"  hold-time {n.hold_time};"]
        if n.graceful_restart is not None:
            out += ["  capability {", f"    graceful-restart {n.graceful_restart};", "  }"]
        out += ["  family {"]
        out += [f"    {f};" for f in n.families]
        out += ["  }", "  static {"]
        out += [f"    {exa_route(r)}" for r in n.routes]
        out += ["  }", "}"]
    return "\n".join(out) + "\n"


class ExaBgp(Daemon):
    conf_name = "exabgp.conf"

    def __init__(self, lab, ns, name: str, config: str | None, env: dict | None = None):
        super().__init__(lab, ns, name, config)
        self.extra_env = dict(env or {})
        self.cmd_dir = self.dir / "cmds"
        self.log = self.dir / "exabgp.log"
        self.n = 0

    @classmethod
    def api_peer(cls, lab, name: str, *, local_ip: str, asn: int, peer_ip: str, peer_port: int,
                 peer_asn: int, hold: int = 90, families=("ipv4 unicast",)) -> "ExaBgp":
        """A loopback session to ``peer_ip:peer_port`` whose UPDATEs come from ``send``."""
        x = lab.add(cls(lab, ROOT, name, None))
        x.extra_env = {"exabgp.log.destination": str(x.log), "exabgp.log.packets": "true",
                       "exabgp.api.ack": "false", "exabgp.reactor.speed": "0.1"}
        x.cmd_dir.mkdir(exist_ok=True)
        (x.dir / "ctl.py").write_text(API_SCRIPT)
        fam = " ".join(f"{f};" for f in families)
        x.conf.write_text(f"""
process ctl {{
  run {sys.executable if os.path.exists(sys.executable) else '/usr/bin/python3'} {x.dir / 'ctl.py'} {x.cmd_dir};
  encoder text;
}}
neighbor {peer_ip} {{
  router-id {local_ip.replace('127.', '10.', 1)};
  local-address {local_ip};
  local-as {asn};
  peer-as {peer_asn};
  connect {peer_port};
  hold-time {hold};
  family {{ {fam} }}
  api {{ processes [ ctl ]; }}
}}
""")
        return x

    def env(self) -> dict:
        return {
            "exabgp.daemon.user": "root", "exabgp.daemon.drop": "false",
            "exabgp.daemon.daemonize": "false", "exabgp.tcp.bind": "", "exabgp.api.cli": "false",
            "exabgp.log.destination": "stdout", "exabgp.log.level": "INFO",
            "exabgp.daemon.pid": str(self.dir / "exabgp.pid"),
            # exabgp is a system python program; keep pyenv out of its way
            "PYTHONPATH": "", "PYENV_VERSION": "system",
            **self.extra_env,
        }

    def start(self) -> "ExaBgp":
        self.spawn([EXABGP, str(self.conf)], env=self.env(), cwd=str(self.dir))
        return self

    def _pid_written(self) -> bool:
        pidfile = self.dir / "exabgp.pid"
        return self.check_alive() and pidfile.exists() and pidfile.read_text().strip() == str(self.proc.pid)

    def wait_ready(self, timeout: float = 10.0) -> "ExaBgp":
        """Until ExaBGP has loaded its config and written its PID file (its signal
        handlers are in place from then on: ``reload`` works)."""
        wait_until(self._pid_written, timeout, desc=f"exabgp {self.name} running (PID file)")
        return self

    def reload(self, config: str) -> None:
        """Replace the config and make ExaBGP re-read it (SIGUSR1): removed routes get withdrawn."""
        self.conf.write_text(config)
        os.kill(self.proc.pid, signal.SIGUSR1)

    def send(self, *lines: str) -> None:
        """Hand ``lines`` to the API process (api_peer only), in order."""
        tmp = self.cmd_dir / f".tmp-{self.n}"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.rename(self.cmd_dir / f"cmd-{self.n:04d}")
        self.n += 1

    def output(self) -> str:
        out = self.proc.tail(200) if self.proc else ""
        if self.log.exists():
            out += self.log.read_text(errors="replace")[-4000:]
        return out
