"""knotd (Knot DNS 3.x) as a reference authoritative server: static zones from zone files.

  Knot(lab, ns, name, zones, listen, identity)   zones: {origin: zone file text}
    .start() / .wait_ready()                      knotd -c <dir>/knot.conf, ready when SOA answers

Used by the differential DNS test (sparrowd against knotd on the same zones) and the
Zonemaster lab (knotd as the local root). Talks only to its own listen addresses.
"""
from __future__ import annotations

import socket

from .lab import Daemon
from .net import wait_until

KNOTD = "knotd"


class Knot(Daemon):
    conf_name = "knot.conf"

    def __init__(self, lab, ns, name: str, zones: dict[str, str], listen: list[str],
                 identity: str | None = None, extra_server: str = ""):
        super().__init__(lab, ns, name)
        self.zones = zones
        self.listen = listen  # "ADDR@PORT"
        files = []
        for origin, text in zones.items():
            fname = (origin.rstrip(".") or "root") + ".zone"
            (self.dir / fname).write_text(text)
            files.append((origin, self.dir / fname))
        server = [f"    rundir: {self.dir}", f"    listen: [{', '.join(listen)}]",
                  "    udp-workers: 1", "    tcp-workers: 1", "    background-workers: 1",
                  "    edns-client-subnet: on"]
        if identity is not None:
            server.append(f'    identity: "{identity}"')
        conf = ("server:\n" + "\n".join(server) + "\n" + extra_server
                + "log:\n  - target: stderr\n    any: info\n"
                + f"database:\n    storage: {self.dir}/db\n"
                + "zone:\n" + "".join(
                    f"  - domain: {o}\n    file: {f}\n    journal-content: none\n"
                    "    zonefile-load: whole\n    zonefile-sync: -1\n" for o, f in files))
        self.conf.write_text(conf)

    def start(self) -> "Knot":
        self.spawn([KNOTD, "-c", str(self.conf)])
        return self

    def _soa_answers(self) -> bool:
        import dns.message
        import dns.query
        self.check_alive()
        addr, port = self.listen[0].rsplit("@", 1)
        origin = next(iter(self.zones))
        q = dns.message.make_query(origin, "SOA")
        try:
            r = dns.query.udp(q, addr, port=int(port), timeout=0.5)
        except (socket.timeout, OSError, dns.exception.Timeout):
            return False
        return r.rcode() == 0 and bool(r.answer)

    def wait_ready(self, timeout: float = 20.0) -> "Knot":
        if self.ns.name is not None:
            # Queries from this process cannot reach a namespace: wait for the log line.
            wait_until(lambda: self.check_alive() and "server started" in self.proc.tail(200),
                       timeout, desc=f"knotd {self.name} started")
            return self
        wait_until(self._soa_answers, timeout, desc=f"knotd {self.name} answering SOA")
        return self
