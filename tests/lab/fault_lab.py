"""The fault tests' scenario on the harness: sparrowd on loopback, raw peers, and a
healthy BIRD peer that must survive every fault.

Everything runs on 127.0.0.0/8 in the test's own namespace: sparrowd listens on
127.0.0.1:<free port>; every peer connects from its own 127.0.x.y source.
Processes belong to a harness Lab and are stopped by PID.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import rawbgp as rb
from harness import ROOT, Lab, free_port, loopback_peer_config, sparrow_config, wait_until

LOCAL_ASN = 64999
ROUTER_ID = "192.0.2.1"
ESTABLISHED = "Established"


# --------------------------------------------------------------------------- peers in the lab

@dataclass
class PeerSpec:
    name: str
    address: str
    asn: int
    extra: dict = field(default_factory=dict)   # more sparrowd peer keys (hold_time, max_prefix, password...)

    def config(self) -> dict:
        d = {"name": self.name, "address": self.address, "remote_asn": self.asn, "role": "upstream",
             "passive": True, "multihop": 64, "connect_retry": 1}
        d.update(self.extra)
        return d


def lab_nh4(address: str) -> str:
    """The IPv4 next hop a lab peer announces: sparrowd (rightly) treats loopback
    next hops as invalid (RFC 4271 §6.3), so peers use 100.64.X.Y for 127.0.X.Y."""
    a = address.split(".")
    return f"100.64.{a[2]}.{a[3]}"


HEALTHY = PeerSpec("bird-healthy", "127.0.0.2", 65002)
HEALTHY_V4 = [f"198.51.{100 + i // 4}.{(i % 4) * 64}/26" for i in range(20)]
HEALTHY_V6 = [f"2001:db8:bbbb:{i}::/64" for i in range(5)]


def daemon_config(port: int, peers: list[PeerSpec], log_level: str = "info") -> dict:
    return sparrow_config(LOCAL_ASN, ROUTER_ID, [p.config() for p in peers], pop="lab",
                          listen=["127.0.0.1"], port=port, log_level=log_level)


class RawPeer:
    """A raw session for one configured peer, plus what it announced (for cleanup)."""

    def __init__(self, lab: FaultLab, spec: PeerSpec, hold: int = 90):
        self.lab, self.spec = lab, spec
        self.announced: set[str] = set()
        self.s = rb.RawBgp.connect("127.0.0.1", lab.port, source=spec.address, timeout=5)
        try:
            self.open = self.s.establish(spec.asn, hold=hold, router_id=spec.address.replace("127.", "10.", 1))
        except Exception:
            self.s.close()
            raise
        wait_until(lambda: lab.d.state(spec.name) == ESTABLISHED, 5, desc=f"{spec.name} Established in sparrowd")

    @property
    def nh4(self) -> str:
        return lab_nh4(self.spec.address)

    @property
    def nh6(self) -> str:
        last = self.spec.address.split(".")
        return f"2001:db8:ffff::{int(last[2]):x}:{int(last[3]):x}"

    def announce4(self, prefixes, path=None, **kw):
        self.s.announce4(prefixes, path or [self.spec.asn], self.nh4, **kw)
        self.announced.update(prefixes)

    def announce6(self, prefixes, path=None, **kw):
        self.s.announce6(prefixes, path or [self.spec.asn], self.nh6, **kw)
        self.announced.update(prefixes)

    def wait_routes(self, prefixes, timeout: float = 5.0):
        wait_until(lambda: all(self.lab.d.has_route(p, self.spec.name) for p in prefixes), timeout,
                   desc=f"{len(prefixes)} routes from {self.spec.name}")

    def wait_routes_gone(self, prefixes, timeout: float = 5.0):
        wait_until(lambda: not any(self.lab.d.has_route(p, self.spec.name) for p in prefixes), timeout,
                   desc=f"routes from {self.spec.name} to disappear")

    def close(self, wait: bool = True):
        self.s.close()
        if wait and self.lab.d.alive():
            try:
                wait_until(lambda: self.lab.d.state(self.spec.name) != ESTABLISHED, 5)
                if self.announced:
                    self.wait_routes_gone(sorted(self.announced), 5)
            except Exception:  # noqa: BLE001 - cleanup is best effort; tests assert on their own
                pass


@dataclass
class HealthyBaseline:
    t: float
    uptime: int
    accepted: dict


class FaultLab(Lab):
    """A harness Lab holding sparrowd + the healthy BIRD peer; raw peers are added per test."""

    def __init__(self, workdir: Path, peers: list[PeerSpec]):
        super().__init__("faults", workdir)
        self.dir = Path(workdir)
        self.port = free_port()
        self.bird_port = free_port(HEALTHY.address)
        self.specs = {p.name: p for p in [HEALTHY, *peers]}
        self.d = self.sparrowd(ROOT, "sparrowd", daemon_config(self.port, list(self.specs.values())))
        self.healthy = self.bird(ROOT, "bird-healthy", loopback_peer_config(
            router_id="10.0.0.2", local_ip=HEALTHY.address, local_port=self.bird_port, local_asn=HEALTHY.asn,
            neighbor_ip="127.0.0.1", neighbor_port=self.port, neighbor_asn=LOCAL_ASN, proto="healthy",
            static4=HEALTHY_V4, static6=HEALTHY_V6, nh4=lab_nh4(HEALTHY.address), nh6="2001:db8:ffff::2"))

    def start(self):
        self.d.start().wait_ready()
        self.healthy.start().wait_ready()
        try:
            self.wait_healthy(timeout=30)
        except TimeoutError as e:
            raise RuntimeError(f"{e}\n--- sparrowd log ---\n{self.d.log_tail(40)}\n"
                               f"--- BIRD ---\n{self.healthy.proto_info('healthy')}\n{self.healthy.log_text()[-2000:]}") from e
        return self

    def stop(self):
        self.cleanup()

    def ensure_running(self):
        """Restart sparrowd if an earlier test killed it (that test has already failed)."""
        if not self.d.alive():
            self.d.start().wait_ready()
            self.wait_healthy(timeout=30)

    def wait_healthy(self, timeout: float = 10):
        def ok():
            p = self.d.peer(HEALTHY.name)
            return (p["state"] == ESTABLISHED and p["accepted"]["ipv4"] == len(HEALTHY_V4)
                    and p["accepted"]["ipv6"] == len(HEALTHY_V6))
        wait_until(ok, timeout, interval=0.2, desc="healthy BIRD peer Established with all its routes")

    def healthy_baseline(self) -> HealthyBaseline:
        p = self.d.peer(HEALTHY.name)
        assert p["state"] == ESTABLISHED, f"healthy BIRD peer not Established before the test: {p}"
        return HealthyBaseline(time.monotonic(), p["uptime_secs"], dict(p["accepted"]))

    def assert_healthy(self, base: HealthyBaseline):
        """The daemon runs, and the healthy BIRD session never reset and kept every route."""
        assert self.d.alive(), f"sparrowd died (exit {self.d.proc.returncode}):\n{self.d.log_tail()}"
        p = self.d.peer(HEALTHY.name)
        elapsed = time.monotonic() - base.t
        assert p["state"] == ESTABLISHED, f"healthy BIRD session left Established: {p}"
        assert p["uptime_secs"] >= base.uptime + int(elapsed) - 2, \
            f"healthy BIRD session was reset: uptime {p['uptime_secs']} < {base.uptime} + {elapsed:.1f}s"
        assert p["accepted"] == base.accepted, f"healthy BIRD routes changed: {p['accepted']} != {base.accepted}"
        assert self.healthy.proto_state("healthy") == ESTABLISHED, self.healthy.proto_info("healthy")
        # the routes themselves, not only the counter
        for pfx in (HEALTHY_V4[0], HEALTHY_V4[-1], HEALTHY_V6[0]):
            assert self.d.has_route(pfx, HEALTHY.name), f"{pfx} from the healthy peer is gone"

    def raw(self, name: str, hold: int = 90) -> RawPeer:
        return RawPeer(self, self.specs[name], hold=hold)

    @contextmanager
    def raw_session(self, name: str, hold: int = 90, wait_close: bool = True) -> Iterator[RawPeer]:
        """A raw peer's session for one test body. Afterwards the peer is closed and,
        when the body passed, the healthy BIRD session must be untouched (assert_healthy)."""
        base = self.healthy_baseline()
        p = self.raw(name, hold=hold)
        try:
            yield p
        finally:
            p.close(wait=wait_close)
        self.assert_healthy(base)
