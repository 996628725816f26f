"""Upstream: "a router of kind bird|frr|gobgp|exabgp originating these routes over these
sessions", built on the speaker wrappers.

  Session (harness.routes): one BGP session of the router
  Upstream(lab, kind, ns, name, asn, router_id, [Session...], [Route...], nh4, nh6,
           bird_import="none", graceful_restart=None)
      .start() .wait_established() .withdraw(route) .expected() .d (the daemon object)

Talks to the daemons through their wrappers only.
"""
from __future__ import annotations

from typing import Any

from .bird import BirdPeer, bird_config, bird_static_export
from .exabgp import ExaNeighbor, exabgp_config
from .frr import frr_config
from .gobgp import gobgp_config
from .lab import Lab, Netns
from .routes import Route, Session, expected_table


class Upstream:
    """A BIRD/FRR/GoBGP/ExaBGP router originating ``routes`` with chosen AS paths.

    ``routes[i].as_path`` is what follows the router's own ASN on the wire
    (ExaBGP is given the full path incl. its ASN, the others prepend it).
    Route next hops: nh4/nh6 (used where the router lets us choose, and as
    BIRD's ``next hop address`` for IPv6 over IPv4 transport).
    """

    KINDS = ("bird", "frr", "gobgp", "exabgp")

    def __init__(self, lab: Lab, kind: str, ns: Netns, name: str, asn: int, router_id: str,
                 sessions: list[Session], routes: list[Route], nh4: str | None = None,
                 nh6: str | None = None, bird_import: str = "none",
                 graceful_restart: int | None = None):
        """``bird_import``: import filter of a BIRD upstream (``"all"`` to see what it is sent);
        ``graceful_restart``: enable RFC 4724 on the router with this restart time."""
        assert kind in self.KINDS, kind
        self.bird_import = bird_import
        self.graceful_restart = graceful_restart
        self.lab, self.kind, self.ns, self.name = lab, kind, ns, name
        self.asn, self.router_id, self.sessions = asn, router_id, sessions
        self.routes = list(routes)
        self.nh4, self.nh6 = nh4, nh6
        self.d: Any = None

    # config builders
    def _bird_conf(self) -> str:
        peers = []
        for i, s in enumerate(self.sessions):
            nh6 = self.nh6 if ("ipv6" in s.families and ":" not in s.neighbor) else None
            peers.append(BirdPeer(name=f"s{i}", neighbor=s.neighbor, local_as=self.asn, peer_as=s.peer_as,
                                  local_address=s.local_address, families=s.families,
                                  export="filter export_static", import_=self.bird_import,
                                  multihop=s.multihop,
                                  next_hop_ipv6=nh6, graceful_restart=self.graceful_restart))
        return bird_config(self.router_id, peers, self.routes, extra=bird_static_export(self.routes))

    def _exa_conf(self) -> str:
        ns = []
        for s in self.sessions:
            rs = []
            for r in self.routes:
                fam = "ipv4" if r.afi == 4 else "ipv6"
                if fam in s.families:
                    nh = r.next_hop or (self.nh4 if r.afi == 4 else self.nh6)
                    rs.append(Route(r.prefix, [self.asn, *r.as_path], r.origin, r.med, r.communities, nh))
            ns.append(ExaNeighbor(neighbor=s.neighbor, local_address=s.local_address, local_as=self.asn,
                                  peer_as=s.peer_as, router_id=self.router_id, routes=rs,
                                  families=tuple(f"{f} unicast" for f in s.families),
                                  graceful_restart=self.graceful_restart))
        return exabgp_config(ns)

    def start(self) -> "Upstream":
        if self.kind == "bird":
            self.d = self.lab.bird(self.ns, self.name, self._bird_conf()).start()
        elif self.kind == "frr":
            self.d = self.lab.frr(self.ns, self.name, frr_config(
                self.asn, self.router_id, self.sessions, self.routes, hostname=self.name, nh4=self.nh4,
                graceful_restart=self.graceful_restart is not None)).start()
        elif self.kind == "gobgp":
            self.d = self.lab.gobgp(self.ns, self.name, gobgp_config(
                self.asn, self.router_id, self.sessions, graceful_restart=self.graceful_restart)).start()
        else:
            self.d = self.lab.exabgp(self.ns, self.name, self._exa_conf()).start()
        self.d.wait_ready()
        if self.kind == "gobgp":
            for r in self.routes:
                self.d.add_route(r, r.next_hop or (self.nh4 if r.afi == 4 else self.nh6))
        return self

    def wait_established(self, timeout: float = 60.0) -> None:
        if self.kind == "bird":
            self.d.wait_established(*[f"s{i}" for i in range(len(self.sessions))], timeout=timeout)
        elif self.kind in ("frr", "gobgp"):
            self.d.wait_established(*[s.neighbor for s in self.sessions], timeout=timeout)
        # ExaBGP has no query interface; the receiver's state is what we check.

    def withdraw(self, route: Route) -> None:
        """Stop originating ``route`` (the router sends a WITHDRAW)."""
        self.routes = [r for r in self.routes if r.prefix != route.prefix]
        if self.kind == "bird":
            self.d.reconfigure(self._bird_conf())
        elif self.kind == "frr":
            fam = "ipv4" if route.afi == 4 else "ipv6"
            self.d.configure(f"router bgp {self.asn}", f"address-family {fam} unicast",
                             f"no network {route.net}")
        elif self.kind == "gobgp":
            self.d.del_route(route)
        else:
            self.d.reload(self._exa_conf())

    def expected(self) -> set[tuple[str, tuple]]:
        return expected_table(self.routes, self.asn)
