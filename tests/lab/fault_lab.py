"""Whole-daemon harness for the fault tests: sparrowd on loopback, sparrowctl
queries, raw peers, and a healthy BIRD peer that must survive every fault.

Everything runs on 127.0.0.0/8 (no namespaces): sparrowd listens on
127.0.0.1:<free port>; every peer connects from its own 127.0.x.y source.
Processes are started as children and stopped by PID.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import rawbgp as rb
from fault_bird import Bird, bgp_peer_config, terminate, wait_for

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("SPARROW_BIN", str(REPO / "target" / "release")))
SPARROWD = BIN_DIR / "sparrowd"
SPARROWCTL = BIN_DIR / "sparrowctl"

LOCAL_ASN = 64999
ROUTER_ID = "192.0.2.1"
ESTABLISHED = "Established"


def free_port(addr: str = "127.0.0.1") -> int:
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port: int, addr: str = "127.0.0.1") -> bool:
    r = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
    return f"{addr}:{port}" in r.stdout


class Sparrowd:
    """One sparrowd process with its config, admin socket and log in `workdir`."""

    def __init__(self, workdir: Path, config: dict):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.port = config["listen"]["port"]
        self.sock = config["admin"]["socket"]
        self.conf = self.dir / "sparrowd.yaml"
        # JSON is valid YAML (flow style); keeps us free of a YAML dependency.
        self.conf.write_text(json.dumps(config, indent=2) + "\n")
        self.log = self.dir / "sparrowd.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.starts += 1
        logf = open(self.log, "ab")
        logf.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
        logf.flush()
        self.proc = subprocess.Popen([str(SPARROWD), "--config", str(self.conf)],
                                     stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"sparrowd exited with {self.proc.returncode}:\n{self.log_tail()}")
            return os.path.exists(self.sock) and listening(self.port) and self.ctl_json("summary") is not None

        try:
            wait_for(ready, timeout, interval=0.1, what="sparrowd admin socket and BGP listener")
        except Exception:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        terminate(self.proc)

    # ---- sparrowctl
    def ctl(self, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(SPARROWCTL), "--socket", self.sock, *args],
                              capture_output=True, text=True, timeout=timeout)

    def ctl_json(self, *args: str):
        r = self.ctl("--json", *args)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def peers(self) -> dict:
        d = self.ctl_json("peers")
        if d is None:
            raise RuntimeError("sparrowctl peers failed")
        return {p["name"]: p for p in d["peers"]}

    def peer(self, name: str) -> dict:
        return self.peers()[name]

    def state(self, name: str) -> str:
        return self.peer(name)["state"]

    def route(self, prefix: str) -> dict:
        d = self.ctl_json("route", prefix)
        if d is None:
            raise RuntimeError(f"sparrowctl route {prefix} failed: {self.ctl('--json', 'route', prefix).stderr}")
        return d

    def paths_from(self, prefix: str, peer: str) -> list:
        """Paths for exactly `prefix` learned from `peer`."""
        d = self.route(prefix)
        if not d.get("prefix") or not same_prefix(d["prefix"], prefix):
            return []
        return [p for p in d.get("paths", []) if p.get("peer") == peer]

    def has_route(self, prefix: str, peer: str) -> bool:
        return bool(self.paths_from(prefix, peer))

    def total_paths(self) -> int:
        r = self.ctl("paths")
        if r.returncode != 0:
            raise RuntimeError(f"sparrowctl paths failed: {r.stderr}")
        return int(r.stdout.strip())

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def same_prefix(a: str, b: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return a == b


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


def daemon_config(workdir: Path, port: int, peers: list[PeerSpec], log_level: str = "info") -> dict:
    return {
        "local_asn": LOCAL_ASN,
        "router_id": ROUTER_ID,
        "pop": "lab",
        "pops": [{"name": "lab", "asn": LOCAL_ASN}],
        "listen": {"enabled": True, "addresses": ["127.0.0.1"], "port": port},
        "admin": {"socket": str(Path(workdir) / "admin.sock"), "mode": "0600"},
        "logging": {"level": log_level, "format": "text"},
        "peers": [p.config() for p in peers],
    }


class RawPeer:
    """A raw session for one configured peer, plus what it announced (for cleanup)."""

    def __init__(self, lab: "Lab", spec: PeerSpec, hold: int = 90):
        self.lab, self.spec = lab, spec
        self.announced: set[str] = set()
        self.s = rb.RawBgp.connect("127.0.0.1", lab.port, source=spec.address, timeout=5)
        try:
            self.open = self.s.establish(spec.asn, hold=hold, router_id=spec.address.replace("127.", "10.", 1))
        except Exception:
            self.s.close()
            raise
        wait_for(lambda: lab.d.state(spec.name) == ESTABLISHED, 5, what=f"{spec.name} Established in sparrowd")

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
        wait_for(lambda: all(self.lab.d.has_route(p, self.spec.name) for p in prefixes), timeout,
                 what=f"{len(prefixes)} routes from {self.spec.name}")

    def wait_routes_gone(self, prefixes, timeout: float = 5.0):
        wait_for(lambda: not any(self.lab.d.has_route(p, self.spec.name) for p in prefixes), timeout,
                 what=f"routes from {self.spec.name} to disappear")

    def close(self, wait: bool = True):
        self.s.close()
        if wait and self.lab.d.alive():
            try:
                wait_for(lambda: self.lab.d.state(self.spec.name) != ESTABLISHED, 5)
                if self.announced:
                    self.wait_routes_gone(sorted(self.announced), 5)
            except Exception:  # noqa: BLE001 - cleanup is best effort; tests assert on their own
                pass


@dataclass
class HealthyBaseline:
    t: float
    uptime: int
    accepted: dict


class Lab:
    """sparrowd + the healthy BIRD peer; raw peers are added per test."""

    def __init__(self, workdir: Path, peers: list[PeerSpec]):
        self.dir = Path(workdir)
        self.port = free_port()
        self.bird_port = free_port(HEALTHY.address)
        self.specs = {p.name: p for p in [HEALTHY, *peers]}
        self.d = Sparrowd(self.dir / "sparrowd", daemon_config(self.dir / "sparrowd", self.port,
                                                              list(self.specs.values())))
        self.bird = Bird(self.dir, "healthy", bgp_peer_config(
            router_id="10.0.0.2", local_ip=HEALTHY.address, local_port=self.bird_port, local_asn=HEALTHY.asn,
            neighbor_ip="127.0.0.1", neighbor_port=self.port, neighbor_asn=LOCAL_ASN, proto="healthy",
            static4=HEALTHY_V4, static6=HEALTHY_V6, nh4=lab_nh4(HEALTHY.address), nh6="2001:db8:ffff::2"))

    def start(self):
        self.d.start()
        self.bird.start()
        try:
            self.wait_healthy(timeout=30)
        except TimeoutError as e:
            raise RuntimeError(f"{e}\n--- sparrowd log ---\n{self.d.log_tail(40)}\n"
                               f"--- BIRD ---\n{self.bird.proto_info('healthy')}\n{self.bird.log_text()[-2000:]}") from e
        return self

    def stop(self):
        self.bird.stop()
        self.d.stop()

    def ensure_running(self):
        """Restart sparrowd if an earlier test killed it (that test has already failed)."""
        if not self.d.alive():
            self.d.start()
            self.wait_healthy(timeout=30)

    def wait_healthy(self, timeout: float = 10):
        def ok():
            p = self.d.peer(HEALTHY.name)
            return (p["state"] == ESTABLISHED and p["accepted"]["ipv4"] == len(HEALTHY_V4)
                    and p["accepted"]["ipv6"] == len(HEALTHY_V6))
        wait_for(ok, timeout, interval=0.2, what="healthy BIRD peer Established with all its routes")

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
        assert self.bird.proto_state("healthy") == ESTABLISHED, self.bird.proto_info("healthy")
        # the routes themselves, not only the counter
        for pfx in (HEALTHY_V4[0], HEALTHY_V4[-1], HEALTHY_V6[0]):
            assert self.d.has_route(pfx, HEALTHY.name), f"{pfx} from the healthy peer is gone"

    def raw(self, name: str, hold: int = 90) -> RawPeer:
        return RawPeer(self, self.specs[name], hold=hold)
