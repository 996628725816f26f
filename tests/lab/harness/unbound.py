"""Unbound (Debian ``unbound``) as a lab recursive resolver: one process per instance
inside a namespace, in the foreground (``-d``), every file under its own directory
(config, control socket; log on stderr, so in the Lab's process log).

  Unbound(lab, ns, name, listen, stubs, access, ecs_servers=(), max_v4=24, max_v6=56)
    listen        addresses it answers on (port 53)
    stubs         {zone: [server address]}: ``stub-zone`` entries (no priming), each
                  zone also a ``transparent`` local zone (so one under a default
                  local zone such as ``test.`` resolves)
    access        prefixes allowed to query (everything else refused)
    ecs_servers   upstream addresses sent EDNS Client Subnet (``send-client-subnet``);
                  non-empty: ``module-config: "subnetcache iterator"``, else "iterator"
    max_v4/max_v6 the ECS source prefix lengths it sends (``max-client-subnet-ipv4/6``)
    .start() / .wait_ready()       ready when ``unbound-control status`` answers
    .control(*args) -> str         unbound-control over the instance's unix socket
    .stats() -> {name: float}      ``stats_noreset`` (counters since start)

No DNSSEC validation (no validator module, no trust anchor), no prefetch, no QNAME
minimisation (the stub gets the query name as asked); queries to lab addresses
(``do-not-query-localhost: no``). The master is a Proc of the Lab (cleanup stops it).
"""
from __future__ import annotations

import shutil
from typing import Iterable

from .lab import Daemon
from .net import wait_until

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
UNBOUND_CONTROL = shutil.which("unbound-control") or "/usr/sbin/unbound-control"


class Unbound(Daemon):
    conf_name = "unbound.conf"

    def __init__(self, lab, ns, name: str, listen: Iterable[str], stubs: dict[str, list[str]],
                 access: Iterable[str], ecs_servers: Iterable[str] = (), max_v4: int = 24, max_v6: int = 56):
        super().__init__(lab, ns, name)
        self.listen = list(listen)
        self.socket = self.dir / "control.sock"
        ecs = list(ecs_servers)
        server = [f'directory: "{self.dir}"', 'username: ""', 'chroot: ""', 'pidfile: ""',
                  'logfile: ""', "use-syslog: no", "verbosity: 1", "num-threads: 1",
                  *(f"interface: {a}" for a in self.listen), "port: 53", "interface-automatic: no",
                  "do-not-query-localhost: no", "qname-minimisation: no", "prefetch: no",
                  "extended-statistics: yes", "statistics-cumulative: no",
                  "access-control: 0.0.0.0/0 refuse", "access-control: ::/0 refuse",
                  *(f"access-control: {p} allow" for p in access),
                  f'module-config: "{"subnetcache iterator" if ecs else "iterator"}"']
        if ecs:
            server += [*(f"send-client-subnet: {a}" for a in ecs),
                       f"max-client-subnet-ipv4: {max_v4}", f"max-client-subnet-ipv6: {max_v6}"]
        conf = "server:\n" + "".join(f"  {line}\n" for line in server)
        conf += (f'remote-control:\n  control-enable: yes\n  control-interface: "{self.socket}"\n'
                 "  control-use-cert: no\n")
        for zone, addrs in stubs.items():
            # a stub under a default local zone (``test.``, RFC 6761) needs it opened
            conf += f'server:\n  local-zone: "{zone.rstrip(".")}." transparent\n'
            conf += f"stub-zone:\n  name: {zone}\n" + "".join(f"  stub-addr: {a}\n" for a in addrs)
        self.conf.write_text(conf)

    def start(self) -> "Unbound":
        assert not self.alive(), f"{self.name} already running"
        if self.socket.exists():
            self.socket.unlink()
        self.spawn([UNBOUND, "-d", "-c", str(self.conf)])
        return self

    def control(self, *args: str, check: bool = True) -> str:
        p = self.ns.run([UNBOUND_CONTROL, "-c", str(self.conf), *args], check=check, timeout=10)
        return p.stdout

    def _ready(self) -> bool:
        self.check_alive()
        return self.socket.exists() and "is running" in self.control("status", check=False)

    def wait_ready(self, timeout: float = 20.0) -> "Unbound":
        wait_until(self._ready, timeout, desc=f"unbound {self.name} answering unbound-control status")
        return self

    def stats(self) -> dict[str, float]:
        out = {}
        for line in self.control("stats_noreset").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out
