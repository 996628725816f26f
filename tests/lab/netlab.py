"""netlab: a small network-namespace lab for whole-daemon BGP interop tests.

Everything here talks only to loopback or to addresses inside network
namespaces that the lab itself creates; every wait is bounded and every
namespace/process the lab creates is removed by ``Lab.cleanup()``.

Stable API (other test modules import this; keep it compatible)
----------------------------------------------------------------
Lab(tag, workdir)                       one per test (use the ``lab`` fixture in conftest.py)
    .netns(short) -> Netns              create namespace ``sp-<tag>-<pid>-<short>`` (lo up, no DAD)
    .link(a, b, v4=(A, B), v6=(A, B))   veth pair between two Netns, returns Link
    .spawn(ns, name, argv, env=None)    start a process inside ns, log to workdir/<name>.log
    .sparrowd(ns, name, config) / .bird(ns, name, config) / .frr(ns, name, config)
    .gobgp(ns, name, config) / .exabgp(ns, name, config)   (not started: call .start())
    .daemons / .procs / .namespaces     what it created
    .log_tails(lines=40) -> str         tails of every process log (printed on failure)
    .cleanup()                          stop all processes (by PID), delete namespaces
Netns: .name, .run(argv, ...), .sh(cmd), .add_addr(ifname, cidr), .add_route(dst, via),
       .sysctl(key, value), .forwarding(on=True), .reachable(addr) (bounded TCP probe)
Link:  .ns_a/.ns_b/.if_a/.if_b and .a4/.b4/.a6/.b6 (addresses without length)
Proc:  .pid, .alive(), .stop() (SIGTERM, then SIGKILL), .kill() (SIGKILL = crash), .tail()
clean_stale_namespaces()                delete sp- namespaces whose creating PID is dead

Route(prefix, as_path=[...], origin="igp", med=None, communities=(), next_hop=None)
    ``as_path`` lists the ASNs the *originating router* puts after its own ASN;
    an element that is a tuple/frozenset is an AS_SET.
    .expected_path(speaker_asn) -> canonical path tuple as the receiver sees it.
Canonical paths are tuples of ints (AS_SEQUENCE members) and sorted tuples (AS_SETs):
    canon_path(segments) from sparrowctl ``as_path_segments``; dump_path(text|list) from
    sparrowctl ``as_path``; bird_path(str) from BIRD's ``BGP.as_path``; norm_path(list).

Speakers (all have .start(), .stop(), .wait_ready(), .proc):
    Sparrowd  .ctl(*args, as_json=True), .peers(), .peer(name), .wait_established(*names),
              .route(query), .dump(), .summary(), .paths_count(), .table(peer=None)
    Bird      .birdc(cmd), .reconfigure(text), .restart(text, recovery), .proto_state(p),
              .wait_established(*p), .show_routes(args) -> [BirdRoute], .best_for(addr),
              .table(proto=None), .route_count(proto)
    Frr       .vtysh(*cmds), .vtysh_json(cmd), .configure(*lines), .neighbor_state(addr),
              .wait_established(*addrs), .table()
    GoBgp     .cli(*args), .add_route(Route, nexthop), .del_route(Route), .neighbor_state(a),
              .wait_established(*addrs)
    ExaBgp    .reload(new_config_text)  (SIGUSR1; removed routes are withdrawn)
Upstream(lab, kind, ns, name, asn, router_id, [Session...], [Route...], nh4, nh6,
         bird_import="none", graceful_restart=None)
    one router of kind bird|frr|gobgp|exabgp originating routes with chosen AS paths:
    .start(), .wait_established(), .withdraw(route), .expected(), .d (the daemon object)
Config generators: sparrow_config(...), sparrow_peer(...), bird_config(...), BirdPeer,
    bird_static_export(...), frr_config(...), FrrPeer, gobgp_config(...), GobgpPeer,
    exabgp_config(...), ExaNeighbor.
Polling: wait_until(fn, timeout=30, interval=0.1, desc=...) returns fn()'s truthy value or
    raises TimeoutError with the last value/exception; wait_equal(fn, expected, ...) raises
    AssertionError with a missing/unexpected diff for sets.

Router notes (found out the hard way):
  * FRR bgpd runs without zebra (-Z), so it does not know its interface addresses:
    IPv4 NLRI over an IPv6 session needs an outbound ``set ip next-hop`` (FrrPeer.nh4);
    route-maps are written before ``router bgp`` so ``network ... route-map`` applies at start.
  * ExaBGP sends ``as-path`` verbatim (own ASN included by Upstream); 4.2.21 rejects a
    config holding an IPv6 /32 route ("ip ranges ... passive") - use another length.
  * GoBGP's CLI takes AS_SETs as ``{a,b}``; BIRD and FRR cannot originate AS_SETs.
  * ``bird -R`` (graceful restart recovery) holds its routes back until it has every
    neighbour's End-of-RIB (or ``graceful restart wait``, 240 s).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

NS_PREFIX = "sp-"
REPO = Path(__file__).resolve().parents[2]

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"
FRR_BGPD = "/usr/lib/frr/bgpd"
VTYSH = shutil.which("vtysh") or "/usr/bin/vtysh"
GOBGPD = shutil.which("gobgpd") or "/usr/bin/gobgpd"
GOBGP = shutil.which("gobgp") or "/usr/bin/gobgp"
EXABGP = shutil.which("exabgp") or "/usr/sbin/exabgp"


def sparrow_bin_dir() -> Path:
    """Directory holding sparrowd/sparrowctl: $SPARROW_BIN or <repo>/target/release."""
    return Path(os.environ.get("SPARROW_BIN") or REPO / "target" / "release")


# ---------------------------------------------------------------------------
# polling / small utilities


def wait_until(fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
               desc: str = "condition") -> Any:
    """Poll ``fn`` until it returns a truthy value; return that value.

    Exceptions raised by ``fn`` count as "not yet".  Raises TimeoutError naming
    ``desc`` plus the last value/exception after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - polling treats errors as not-ready
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {desc}; last: {last!r}")
        time.sleep(interval)


def run(argv: Sequence[str], check: bool = True, timeout: float = 30.0,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (bounded), capture text output; raise with output on failure."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {shlex.join(argv)}\n"
                           f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def is_root() -> bool:
    return os.geteuid() == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_list() -> list[str]:
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _kill_pids(pids: Iterable[int], grace: float = 3.0) -> None:
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def delete_netns(name: str) -> None:
    """Kill the processes inside namespace ``name`` (by PID) and delete it."""
    p = run(["ip", "netns", "pids", name], check=False)
    _kill_pids(int(x) for x in p.stdout.split() if x.isdigit())
    run(["ip", "netns", "del", name], check=False)


_OUR_NS = re.compile(r"^sp-.+-(\d+)-[^-]+$")


def clean_stale_namespaces(max_age_unowned: float = 600.0) -> list[str]:
    """Delete ``sp-`` namespaces left behind by dead lab runs.

    Namespaces named by this module embed the creating PID
    (``sp-<tag>-<pid>-<short>``) and are deleted when that PID is gone.  Other
    ``sp-`` namespaces are deleted only when empty and older than
    ``max_age_unowned`` seconds, so a concurrent run is never disturbed.
    """
    removed = []
    for name in netns_list():
        if not name.startswith(NS_PREFIX):
            continue
        m = _OUR_NS.match(name)
        if m:
            if _pid_alive(int(m.group(1))):
                continue
        else:
            pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
            try:
                age = time.time() - os.stat(f"/run/netns/{name}").st_mtime
            except OSError:
                age = 0
            if pids or age < max_age_unowned:
                continue
        delete_netns(name)
        removed.append(name)
    return removed


# ---------------------------------------------------------------------------
# namespaces and links


class Netns:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Netns({self.name})"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 30.0,
            input: str | None = None) -> subprocess.CompletedProcess:
        return run(self.argv(argv), check=check, timeout=timeout, input=input)

    def sh(self, cmd: str, check: bool = True, timeout: float = 30.0) -> str:
        return self.run(["sh", "-c", cmd], check=check, timeout=timeout).stdout

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])

    def forwarding(self, on: bool = True) -> None:
        v = 1 if on else 0
        self.sysctl("net.ipv4.ip_forward", v)
        self.sysctl("net.ipv6.conf.all.forwarding", v)

    def add_addr(self, ifname: str, cidr: str) -> None:
        argv = ["ip", "addr", "add", cidr, "dev", ifname]
        if ":" in cidr:
            argv.append("nodad")
        self.run(argv)

    def add_route(self, dst: str, via: str) -> None:
        self.run(["ip", "-6" if ":" in dst else "-4", "route", "add", dst, "via", via])

    def reachable(self, addr: str, port: int = 9, timeout: float = 1.0) -> bool:
        """One bounded TCP connect from this namespace to a lab address: True when
        the far end answers (connection accepted or refused), False on timeout."""
        code = ("import socket,sys\n"
                f"s=socket.socket(socket.AF_INET6 if ':' in {addr!r} else socket.AF_INET)\n"
                f"s.settimeout({timeout})\n"
                f"try:\n s.connect(({addr!r},{port}))\nexcept ConnectionRefusedError:\n pass\n"
                "except OSError:\n sys.exit(1)\n")
        return self.run([sys.executable, "-c", code], check=False, timeout=timeout + 10).returncode == 0


@dataclass
class Link:
    ns_a: Netns
    ns_b: Netns
    if_a: str
    if_b: str
    a4: str | None = None
    b4: str | None = None
    a6: str | None = None
    b6: str | None = None


def _host(cidr: str | None) -> str | None:
    return None if cidr is None else str(ipaddress.ip_interface(cidr).ip)


# ---------------------------------------------------------------------------
# processes


class Proc:
    """A process started inside a namespace, logging stdout+stderr to a file."""

    def __init__(self, name: str, ns: Netns, argv: Sequence[str], log: Path,
                 env: dict | None = None, cwd: str | None = None):
        self.name, self.ns, self.argv, self.log = name, ns, list(argv), log
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._logf = open(log, "ab")
        self._logf.write(f"=== {shlex.join(self.argv)} (netns {ns.name})\n".encode())
        self._logf.flush()
        # `ip netns exec` execs the command, so the PID is the daemon's.
        self.popen = subprocess.Popen(ns.argv(self.argv), stdout=self._logf, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> int | None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        self._logf.close()
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL (a crash: no NOTIFICATION, the kernel closes the TCP sessions)."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)
        return self.popen.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"<{e}>"
        return "\n".join(text[-lines:])


class Lab:
    """Owns the namespaces and processes of one test; ``cleanup()`` removes all."""

    def __init__(self, tag: str, workdir: Path):
        self.tag = re.sub(r"[^a-z0-9]+", "", tag.lower())[:12] or "t"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.namespaces: list[Netns] = []
        self.procs: list[Proc] = []
        self.daemons: list[Any] = []
        self._ifcount = 0

    # namespaces ---------------------------------------------------------
    def netns(self, short: str) -> Netns:
        name = f"{NS_PREFIX}{self.tag}-{os.getpid()}-{short}"
        if name in netns_list():
            delete_netns(name)
        run(["ip", "netns", "add", name])
        ns = Netns(name)
        self.namespaces.append(ns)
        ns.run(["ip", "link", "set", "lo", "up"])
        # addresses come up immediately; no router advertisements from the kernel
        ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
        ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
        ns.sysctl("net.ipv6.conf.all.accept_ra", 0)
        ns.sysctl("net.ipv6.conf.default.accept_ra", 0)
        return ns

    def link(self, a: Netns, b: Netns, v4: tuple[str, str] | None = None,
             v6: tuple[str, str] | None = None, if_a: str | None = None,
             if_b: str | None = None) -> Link:
        """veth between ``a`` and ``b``; v4/v6 are (cidr_a, cidr_b), e.g. ("10.0.1.1/24", ...)."""
        self._ifcount += 1
        if_a = if_a or f"v{self._ifcount}{b.name.rsplit('-', 1)[-1]}"[:15]
        if_b = if_b or f"v{self._ifcount}{a.name.rsplit('-', 1)[-1]}"[:15]
        run(["ip", "link", "add", if_a, "netns", a.name, "type", "veth", "peer", "name", if_b,
             "netns", b.name])
        link = Link(a, b, if_a, if_b)
        for ns, ifn, idx in ((a, if_a, 0), (b, if_b, 1)):
            if v4:
                ns.add_addr(ifn, v4[idx])
            if v6:
                ns.add_addr(ifn, v6[idx])
            ns.run(["ip", "link", "set", ifn, "up"])
        if v4:
            link.a4, link.b4 = _host(v4[0]), _host(v4[1])
        if v6:
            link.a6, link.b6 = _host(v6[0]), _host(v6[1])
        return link

    # processes ----------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.workdir / name

    def spawn(self, ns: Netns, name: str, argv: Sequence[str], env: dict | None = None,
              cwd: str | None = None) -> Proc:
        p = Proc(name, ns, argv, self.path(f"{name}.log"), env=env, cwd=cwd)
        self.procs.append(p)
        return p

    def _add(self, d):
        self.daemons.append(d)
        return d

    def sparrowd(self, ns: Netns, name: str, config: dict) -> "Sparrowd":
        return self._add(Sparrowd(self, ns, name, config))

    def bird(self, ns: Netns, name: str, config: str) -> "Bird":
        return self._add(Bird(self, ns, name, config))

    def frr(self, ns: Netns, name: str, config: str) -> "Frr":
        return self._add(Frr(self, ns, name, config))

    def gobgp(self, ns: Netns, name: str, config: str) -> "GoBgp":
        return self._add(GoBgp(self, ns, name, config))

    def exabgp(self, ns: Netns, name: str, config: str) -> "ExaBgp":
        return self._add(ExaBgp(self, ns, name, config))

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for p in self.procs:
            out.append(f"----- {p.name} (pid {p.pid}, {'running' if p.alive() else f'exit {p.popen.returncode}'})"
                       f" {p.log}\n{p.tail(lines)}")
        return "\n".join(out)

    def cleanup(self) -> None:
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
        for ns in reversed(self.namespaces):
            delete_netns(ns.name)
        self.namespaces.clear()


# ---------------------------------------------------------------------------
# routes and AS paths

PathElem = int | tuple  # tuple = AS_SET (sorted)


def norm_path(elems: Iterable) -> tuple:
    """Canonical AS path: ints for AS_SEQUENCE members, sorted tuples for AS_SETs."""
    out = []
    for e in elems:
        if isinstance(e, (tuple, list, set, frozenset)):
            out.append(tuple(sorted(int(x) for x in e)))
        else:
            out.append(int(e))
    return tuple(out)


def path_str(path: Iterable) -> str:
    return " ".join("{" + " ".join(map(str, e)) + "}" if isinstance(e, tuple) else str(e)
                    for e in norm_path(path))


def canon_path(segments: list[dict]) -> tuple:
    """sparrowctl ``as_path_segments`` -> canonical path (sets become sorted tuples)."""
    out: list = []
    for seg in segments:
        kind = seg.get("kind", "").lower()
        asns = [int(a) for a in seg.get("asns", [])]
        if kind in ("sequence", "as_sequence", "seq"):
            out.extend(asns)
        elif kind in ("set", "as_set"):
            out.append(tuple(sorted(asns)))
        else:
            out.append((kind, tuple(sorted(asns)) if "set" in kind else tuple(asns)))  # confed: keep visible
    return tuple(out)


def bird_path(text: str) -> tuple:
    """BIRD ``BGP.as_path`` text ('1 2 {3 4}') -> canonical path."""
    out: list = []
    for m in re.finditer(r"\{([^}]*)\}|\(([^)]*)\)|\[([^\]]*)\]|(\d+)", text):
        if m.group(1) is not None:
            out.append(tuple(sorted(int(x) for x in m.group(1).replace(",", " ").split())))
        elif m.group(2) is not None:
            out.append(("confed_sequence", tuple(int(x) for x in m.group(2).replace(",", " ").split())))
        elif m.group(3) is not None:
            out.append(("confed_set", tuple(sorted(int(x) for x in m.group(3).replace(",", " ").split()))))
        else:
            out.append(int(m.group(4)))
    return tuple(out)


@dataclass
class Route:
    prefix: str
    as_path: list = field(default_factory=list)  # after the originating router's ASN
    origin: str = "igp"  # igp | egp | incomplete
    med: int | None = None
    communities: tuple = ()
    next_hop: str | None = None  # only for speakers that let us choose (ExaBGP, GoBGP)

    @property
    def afi(self) -> int:
        return ipaddress.ip_network(self.prefix).version

    @property
    def net(self):
        return ipaddress.ip_network(self.prefix)

    def expected_path(self, speaker_asn: int) -> tuple:
        return norm_path([speaker_asn, *self.as_path])

    def has_set(self) -> bool:
        return any(isinstance(e, (tuple, list, set, frozenset)) for e in self.as_path)


def expected_table(routes: Iterable[Route], speaker_asn: int) -> set[tuple[str, tuple]]:
    return {(str(r.net), r.expected_path(speaker_asn)) for r in routes}


# ---------------------------------------------------------------------------
# sparrowd


def sparrow_peer(name: str, address: str, remote_asn: int, role: str = "upstream", **kw) -> dict:
    """One ``peers:`` entry; extra keys (multihop, passive, local_address, ...) pass through."""
    d = {"name": name, "address": address, "remote_asn": remote_asn, "role": role}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def sparrow_config(local_asn: int, router_id: str, peers: list[dict], pop: str = "x",
                   pops: list[dict] | None = None, listen: list[str] | None = None,
                   port: int = 179, log_level: str = "info", **extra) -> dict:
    """A sparrowd config dict; ``admin.socket`` is filled in by Sparrowd."""
    cfg = {
        "local_asn": local_asn,
        "router_id": router_id,
        "pop": pop,
        "pops": pops if pops is not None else [{"name": pop, "asn": local_asn}],
        "listen": {"enabled": True, "addresses": listen or ["::"], "port": port},
        "logging": {"level": log_level, "format": "text"},
        "peers": peers,
    }
    cfg.update(extra)
    return cfg


class Sparrowd:
    """sparrowd under test, controlled via sparrowctl on its admin socket."""

    def __init__(self, lab: Lab, ns: Netns, name: str, config: dict):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(exist_ok=True)
        self.socket = str(self.dir / "admin.sock")
        self.config = dict(config)
        self.config.setdefault("admin", {})
        self.config["admin"] = {**self.config["admin"], "socket": self.socket, "mode": "0600"}
        self.conf_path = self.dir / "sparrowd.yaml"
        bindir = sparrow_bin_dir()
        self.bin = bindir / "sparrowd"
        self.ctl_bin = bindir / "sparrowctl"
        self.proc: Proc | None = None

    def write_config(self) -> None:
        # JSON is valid YAML; no YAML library needed.
        self.conf_path.write_text(json.dumps(self.config, indent=2) + "\n")

    def check_config(self) -> subprocess.CompletedProcess:
        self.write_config()
        return run([str(self.bin), "--check-config", str(self.conf_path)], check=False)

    def start(self) -> "Sparrowd":
        for b in (self.bin, self.ctl_bin):
            if not b.exists():
                raise FileNotFoundError(f"{b} missing (set SPARROW_BIN or run cargo build --release)")
        chk = self.check_config()
        if chk.returncode != 0:
            raise RuntimeError(f"sparrowd --check-config rejected {self.conf_path}:\n{chk.stdout}{chk.stderr}\n"
                               f"{self.conf_path.read_text()}")
        self.proc = self.lab.spawn(self.ns, self.name, [str(self.bin), "--config", str(self.conf_path)],
                                   env={"RUST_BACKTRACE": "1"})
        return self

    def wait_ready(self, timeout: float = 20.0) -> "Sparrowd":
        def ready():
            if self.proc and not self.proc.alive():
                raise RuntimeError(f"sparrowd {self.name} exited:\n{self.proc.tail()}")
            return self.ctl("peers", check=False) is not None
        try:
            wait_until(ready, timeout, desc=f"sparrowd {self.name} admin socket")
        except TimeoutError:
            if self.proc and not self.proc.alive():
                raise RuntimeError(f"sparrowd {self.name} exited:\n{self.proc.tail()}") from None
            raise
        return self

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc else None

    def ctl(self, *args: str, as_json: bool = True, check: bool = True, timeout: float = 15.0):
        argv = [str(self.ctl_bin), "--socket", self.socket] + (["--json"] if as_json else []) + list(args)
        p = run(argv, check=False, timeout=timeout)
        if p.returncode != 0:
            if check:
                raise RuntimeError(f"sparrowctl {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
            return None
        if not as_json:
            return p.stdout
        return json.loads(p.stdout)

    def peers(self) -> list[dict]:
        return self.ctl("peers")["peers"]

    def peer(self, name: str) -> dict:
        for p in self.peers():
            if p["name"] == name:
                return p
        raise KeyError(f"no peer {name} in sparrowd {self.name}")

    def wait_established(self, *names: str, timeout: float = 60.0) -> None:
        def ok():
            st = {p["name"]: p["state"] for p in self.peers()}
            missing = [n for n in names if st.get(n) != "Established"]
            return not missing or (False, st)
        try:
            wait_until(lambda: ok() is True, timeout, interval=0.2,
                       desc=f"sparrowd {self.name} peers {names} Established")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\npeers: {json.dumps(self.peers(), indent=1)}") from None

    def route(self, query: str) -> dict:
        return self.ctl("route", query)

    def summary(self) -> dict:
        return self.ctl("summary")

    def paths_count(self) -> int:
        return int(self.ctl("paths", as_json=False).strip())

    def dump(self) -> list[dict]:
        argv = [str(self.ctl_bin), "--socket", self.socket, "--json", "dump"]
        p = run(argv, timeout=60)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def table(self, peer: str | None = None) -> set[tuple[str, tuple]]:
        """{(prefix, canonical path)} from ``dump`` (optionally only one peer's paths).

        ``dump`` gives ``as_path`` as text ('1 2 {3,4}'), parsed like BIRD's."""
        rows = self.dump()
        return {(str(ipaddress.ip_network(r["prefix"])), dump_path(r["as_path"]))
                for r in rows if peer is None or r.get("peer") == peer}


def dump_path(value) -> tuple:
    """``as_path`` from sparrowctl dump/route: list of segments or text."""
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return canon_path(value)
        return norm_path(value)
    return bird_path(str(value))


# ---------------------------------------------------------------------------
# BIRD


@dataclass
class BirdPeer:
    name: str
    neighbor: str
    local_as: int
    peer_as: int
    local_address: str | None = None
    families: tuple = ("ipv4", "ipv6")
    export: str = "none"  # BIRD filter expression: "none", "all", "where proto = \"s4\"", "filter f"
    import_: str = "all"
    multihop: int | None = None  # None = direct
    passive: bool = False
    extra: str = ""  # raw lines inside the protocol block
    channel_extra: str = ""  # raw lines inside each channel block
    next_hop_ipv6: str | None = None  # for ipv6 channel over IPv4 transport
    graceful_restart: int | None = None  # restart time: `graceful restart on` with that time


def bird_static_export(routes: Iterable[Route], fname: str = "export_static") -> str:
    """A BIRD filter prepending each route's ``as_path`` (and setting origin/MED/communities).

    Static routes carry no BGP attributes, so this filter goes on the BGP
    export side; BIRD then prepends its own ASN itself.
    """
    lines = [f"filter {fname} {{"]
    for r in routes:
        body = []
        for asn in reversed(r.as_path):
            if isinstance(asn, (tuple, list, set, frozenset)):
                raise ValueError("BIRD cannot originate AS_SETs")
            body.append(f"bgp_path.prepend({asn});")
        body.append({"igp": "bgp_origin = ORIGIN_IGP;", "egp": "bgp_origin = ORIGIN_EGP;",
                     "incomplete": "bgp_origin = ORIGIN_INCOMPLETE;"}[r.origin])
        if r.med is not None:
            body.append(f"bgp_med = {r.med};")
        for c in r.communities:
            a, b = c.split(":")
            body.append(f"bgp_community.add(({a},{b}));")
        lines.append(f"  if net = {r.net} then {{ {' '.join(body)} accept; }}")
    lines.append("  reject;")
    lines.append("}")
    return "\n".join(lines)


def bird_config(router_id: str, peers: list[BirdPeer], static_routes: Iterable[Route] = (),
                extra: str = "", log_file: str | None = None, static_name: str = "statics") -> str:
    routes = list(static_routes)
    out = []
    if log_file:
        out.append(f'log "{log_file}" all;')
    out.append(f"router id {router_id};")
    out.append("protocol device { scan time 2; }")
    v4 = [r for r in routes if r.afi == 4]
    v6 = [r for r in routes if r.afi == 6]
    out.append(f"protocol static {static_name}4 {{ ipv4;")
    out += [f"  route {r.net} blackhole;" for r in v4]
    out.append("}")
    out.append(f"protocol static {static_name}6 {{ ipv6;")
    out += [f"  route {r.net} blackhole;" for r in v6]
    out.append("}")
    if extra:
        out.append(extra)
    for p in peers:
        out.append(f"protocol bgp {p.name} {{")
        out.append(f"  local {p.local_address or ''} as {p.local_as};".replace("local  as", "local as"))
        out.append(f"  neighbor {p.neighbor} as {p.peer_as};")
        if p.multihop:
            out.append(f"  multihop {p.multihop};")
        else:
            out.append("  direct;")
        if p.passive:
            out.append("  passive on;")
        if p.graceful_restart is not None:
            out.append(f"  graceful restart on; graceful restart time {p.graceful_restart};")
        out.append("  connect retry time 1; connect delay time 1; error wait time 1, 5;")
        if p.extra:
            out.append(p.extra)
        for fam in p.families:
            out.append(f"  {fam} {{")
            imp = p.import_.strip()
            out.append(f"    import {imp};" if imp in ("all", "none") or imp.startswith(("filter", "where"))
                       else f"    import {imp};")
            out.append(f"    export {p.export};")
            if fam == "ipv6" and p.next_hop_ipv6:
                out.append(f"    next hop address {p.next_hop_ipv6};")
            if p.channel_extra:
                out.append(p.channel_extra)
            out.append("  };")
        out.append("}")
    return "\n".join(out) + "\n"


@dataclass
class BirdRoute:
    net: str
    proto: str
    best: bool
    via: str | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def as_path(self) -> tuple:
        return bird_path(self.attrs.get("BGP.as_path", ""))

    @property
    def next_hop(self) -> str | None:
        nh = self.attrs.get("BGP.next_hop")
        return nh.split()[0] if nh else None


_BIRD_ROUTE = re.compile(r"^(\S+)?\s+(unicast|blackhole|unreachable|prohibited)\s+\[(\S+)\s[^\]]*\]\s*(\*)?")


def parse_bird_routes(text: str) -> list[BirdRoute]:
    """Parse ``birdc show route ... all`` output."""
    routes: list[BirdRoute] = []
    cur_net = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("Table ", "BIRD ", "Access restricted")):
            continue
        m = _BIRD_ROUTE.match(line)
        if m:
            if m.group(1):
                cur_net = m.group(1)
            routes.append(BirdRoute(net=cur_net, proto=m.group(3), best=bool(m.group(4))))
            continue
        if not routes:
            continue
        s = line.strip()
        if s.startswith("via "):
            routes[-1].via = s.split()[1]
        elif ":" in s:
            k, _, v = s.partition(":")
            routes[-1].attrs[k.strip()] = v.strip()
    return routes


class Bird:
    def __init__(self, lab: Lab, ns: Netns, name: str, config: str):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(exist_ok=True)
        self.sock = str(self.dir / "bird.ctl")
        self.conf = self.dir / "bird.conf"
        self.conf.write_text(config)
        self.proc: Proc | None = None

    def restart(self, config: str | None = None, recovery: bool = False) -> "Bird":
        """Start again after stop()/kill(), optionally with a new config;
        ``recovery`` = ``bird -R`` (graceful restart recovery: R/F bits set)."""
        if config is not None:
            self.conf.write_text(config)
        return self.start(extra=["-R"] if recovery else [])

    def start(self, extra: Sequence[str] = ()) -> "Bird":
        run([BIRD, "-p", "-c", str(self.conf)])  # parse check, shows errors early
        self.proc = self.lab.spawn(self.ns, self.name, [BIRD, "-f", "-c", str(self.conf), "-s", self.sock,
                                                       "-P", str(self.dir / "bird.pid"), *extra])
        return self

    def wait_ready(self, timeout: float = 15.0) -> "Bird":
        wait_until(lambda: self.birdc("show status", check=False).find("Daemon is up") >= 0,
                   timeout, desc=f"bird {self.name} up")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def birdc(self, cmd: str, check: bool = True) -> str:
        p = run([BIRDC, "-s", self.sock, *shlex.split(cmd)], check=False, timeout=15)
        if check and p.returncode != 0:
            raise RuntimeError(f"birdc {cmd}: {p.stdout}{p.stderr}")
        return p.stdout

    def reconfigure(self, config: str) -> None:
        self.conf.write_text(config)
        out = self.birdc("configure")
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out \
                and "Reconfiguration" not in out:
            raise RuntimeError(f"bird {self.name} configure failed: {out}")

    def proto_state(self, proto: str) -> str:
        out = self.birdc(f"show protocols {proto}")
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == proto:
                # name proto table state since info
                return parts[-1] if len(parts) >= 6 else parts[3]
        return ""

    def wait_established(self, *protos: str, timeout: float = 60.0) -> None:
        for p in protos:
            try:
                wait_until(lambda: self.proto_state(p) == "Established", timeout, interval=0.2,
                           desc=f"bird {self.name} protocol {p} Established")
            except TimeoutError as e:
                raise TimeoutError(f"{e}\n{self.birdc(f'show protocols all {p}', check=False)}") from None

    def show_routes(self, args: str = "") -> list[BirdRoute]:
        return parse_bird_routes(self.birdc(f"show route {args} all"))

    def table(self, proto: str | None = None) -> set[tuple[str, tuple]]:
        """{(prefix, canonical path)} of routes in master4+master6 (optionally from one protocol)."""
        out = set()
        for t in ("master4", "master6"):
            args = f"table {t}" + (f" protocol {proto}" if proto else "")
            for r in self.show_routes(args):
                out.add((str(ipaddress.ip_network(r.net)), r.as_path))
        return out

    def best_for(self, addr: str) -> BirdRoute | None:
        t = "master6" if ":" in addr else "master4"
        out = self.birdc(f"show route for {addr} table {t} all", check=False)
        if "Network not found" in out:
            return None
        rs = [r for r in parse_bird_routes(out) if r.best]
        return rs[0] if rs else None

    def route_count(self, proto: str) -> dict:
        """Import statistics of a BGP protocol: {'imported': n, 'exported': n} summed over channels."""
        out = self.birdc(f"show protocols all {proto}")
        tot = {"imported": 0, "exported": 0, "filtered": 0}
        for m in re.finditer(r"Routes:\s+(\d+) imported,(?:\s+(\d+) filtered,)?\s+(\d+) exported", out):
            tot["imported"] += int(m.group(1))
            tot["filtered"] += int(m.group(2) or 0)
            tot["exported"] += int(m.group(3))
        return tot


# ---------------------------------------------------------------------------
# FRR (bgpd only, no zebra)


@dataclass
class FrrPeer:
    neighbor: str
    remote_as: int
    families: tuple = ("ipv4", "ipv6")
    update_source: str | None = None
    multihop: int | None = None
    extra: tuple = ()
    nh4: str | None = None  # outbound `set ip next-hop` (needed for IPv4 over IPv6 transport:
    nh6: str | None = None  # bgpd without zebra does not know its interface addresses)
    graceful_restart: bool = False


def frr_config(asn: int, router_id: str, peers: list[FrrPeer], routes: Iterable[Route] = (),
               hostname: str = "frr") -> str:
    """bgpd config originating ``routes`` via ``network ... route-map`` with as-path prepend."""
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
    for j, p in enumerate(peers):
        if p.nh4:
            out += [f"route-map NH{j}-4 permit 10", f" set ip next-hop {p.nh4}", "exit"]
        if p.nh6:
            out += [f"route-map NH{j}-6 permit 10", f" set ipv6 next-hop global {p.nh6}", "exit"]
    out += [f"router bgp {asn}", f" bgp router-id {router_id}", " no bgp ebgp-requires-policy",
            " no bgp network import-check", " no bgp default ipv4-unicast",
            " timers bgp 10 30"]
    if any(p.graceful_restart for p in peers):
        out.append(" bgp graceful-restart")
    for p in peers:
        out.append(f" neighbor {p.neighbor} remote-as {p.remote_as}")
        out.append(f" neighbor {p.neighbor} timers connect 2")
        if p.update_source:
            out.append(f" neighbor {p.neighbor} update-source {p.update_source}")
        if p.multihop:
            out.append(f" neighbor {p.neighbor} ebgp-multihop {p.multihop}")
        for x in p.extra:
            out.append(f" neighbor {p.neighbor} {x}")
    for fam, ver in (("ipv4", 4), ("ipv6", 6)):
        out.append(f" address-family {fam} unicast")
        for i, r in enumerate(routes):
            if r.afi == ver:
                out.append(f"  network {r.net} route-map ORIG{i}")
        for j, p in enumerate(peers):
            if fam in p.families:
                out.append(f"  neighbor {p.neighbor} activate")
                if (p.nh4 if ver == 4 else p.nh6):
                    out.append(f"  neighbor {p.neighbor} route-map NH{j}-{ver} out")
        out.append(" exit-address-family")
    out.append("exit")
    return "\n".join(out) + "\n"


class Frr:
    def __init__(self, lab: Lab, ns: Netns, name: str, config: str):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.conf = self.dir / "bgpd.conf"
        self.conf.write_text(config)
        self.proc: Proc | None = None

    def start(self) -> "Frr":
        self.proc = self.lab.spawn(self.ns, self.name, [
            FRR_BGPD, "-Z", "-S", "-u", "root", "-g", "root", "-P", "0",
            "-f", str(self.conf), "-i", str(self.dir / "bgpd.pid"), "--vty_socket", str(self.dir),
            "--log", f"file:{self.dir / 'bgpd.file.log'}"])
        return self

    def wait_ready(self, timeout: float = 20.0) -> "Frr":
        wait_until(lambda: "BGP" in self.vtysh("show bgp summary", check=False)
                   or "router identifier" in self.vtysh("show bgp summary", check=False),
                   timeout, desc=f"frr {self.name} vty")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

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

    def wait_established(self, *addrs: str, timeout: float = 60.0) -> None:
        for a in addrs:
            try:
                wait_until(lambda: self.neighbor_state(a) == "Established", timeout, interval=0.2,
                           desc=f"frr {self.name} neighbor {a} Established")
            except TimeoutError as e:
                raise TimeoutError(f"{e}\n{self.vtysh('show bgp summary', check=False)}") from None

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


# ---------------------------------------------------------------------------
# GoBGP


@dataclass
class GobgpPeer:
    neighbor: str
    peer_as: int
    families: tuple = ("ipv4-unicast", "ipv6-unicast")
    local_address: str | None = None
    multihop: int | None = None
    graceful_restart: int | None = None  # restart time


def gobgp_config(asn: int, router_id: str, peers: list[GobgpPeer], listen_port: int = -1) -> str:
    """gobgpd TOML; listen_port=-1 disables listening (we connect out)."""
    out = ["[global.config]", f"  as = {asn}", f'  router-id = "{router_id}"', f"  port = {listen_port}", ""]
    for p in peers:
        out += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{p.neighbor}"',
                f"    peer-as = {p.peer_as}",
                "  [neighbors.timers.config]", "    connect-retry = 2", "    hold-time = 30",
                "    keepalive-interval = 10"]
        if p.local_address:
            out += ["  [neighbors.transport.config]", f'    local-address = "{p.local_address}"']
        if p.multihop:
            out += ["  [neighbors.ebgp-multihop.config]", "    enabled = true", f"    multihop-ttl = {p.multihop}"]
        if p.graceful_restart is not None:
            out += ["  [neighbors.graceful-restart.config]", "    enabled = true",
                    f"    restart-time = {p.graceful_restart}"]
        for f in p.families:
            out += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]", f'      afi-safi-name = "{f}"']
            if p.graceful_restart is not None:
                out += ["    [neighbors.afi-safis.mp-graceful-restart.config]", "      enabled = true"]
        out.append("")
    return "\n".join(out) + "\n"


class GoBgp:
    API_PORT = 50051

    def __init__(self, lab: Lab, ns: Netns, name: str, config: str):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(exist_ok=True)
        self.conf = self.dir / "gobgpd.toml"
        self.conf.write_text(config)
        self.proc: Proc | None = None

    def start(self) -> "GoBgp":
        self.proc = self.lab.spawn(self.ns, self.name, [
            GOBGPD, "-f", str(self.conf), "-p", "--api-hosts", f"127.0.0.1:{self.API_PORT}",
            "--pprof-disable", "-l", "info"])
        return self

    def wait_ready(self, timeout: float = 20.0) -> "GoBgp":
        wait_until(lambda: self.cli("global", check=False).find("AS") >= 0, timeout,
                   desc=f"gobgpd {self.name} API")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def cli(self, *args: str, check: bool = True) -> str:
        p = self.ns.run([GOBGP, "-u", "127.0.0.1", "-p", str(self.API_PORT), *args], check=False, timeout=15)
        if check and p.returncode != 0:
            raise RuntimeError(f"gobgp {args}: {p.stdout}{p.stderr}")
        return p.stdout

    def neighbor_state(self, addr: str) -> str:
        d = json.loads(self.cli("neighbor", addr, "-j"))
        return str(d.get("state", {}).get("session_state", ""))

    def wait_established(self, *addrs: str, timeout: float = 60.0) -> None:
        for a in addrs:
            wait_until(lambda: self.neighbor_state(a).lower() in ("established", "6"), timeout,
                       interval=0.2, desc=f"gobgp {self.name} neighbor {a} Established")

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
    parts = []
    for e in path:
        if isinstance(e, (tuple, list, set, frozenset)):
            parts.append("{" + ",".join(str(x) for x in e) + "}")
        else:
            parts.append(str(e))
    return " ".join(parts)


# ---------------------------------------------------------------------------
# ExaBGP


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
        segs = []
        for e in r.as_path:
            if isinstance(e, (tuple, list, set, frozenset)):
                segs.append("( " + " ".join(str(x) for x in e) + " )")
            else:
                segs.append(str(e))
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


class ExaBgp:
    def __init__(self, lab: Lab, ns: Netns, name: str, config: str):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(exist_ok=True)
        self.conf = self.dir / "exabgp.conf"
        self.conf.write_text(config)
        self.proc: Proc | None = None

    def env(self) -> dict:
        return {
            "exabgp.daemon.user": "root", "exabgp.daemon.drop": "false",
            "exabgp.daemon.daemonize": "false", "exabgp.tcp.bind": "", "exabgp.api.cli": "false",
            "exabgp.log.destination": "stdout", "exabgp.log.level": "INFO",
            "exabgp.daemon.pid": str(self.dir / "exabgp.pid"),
            # exabgp is a system python program; keep pyenv out of its way
            "PYTHONPATH": "", "PYENV_VERSION": "system",
        }

    def start(self) -> "ExaBgp":
        self.proc = self.lab.spawn(self.ns, self.name, [EXABGP, str(self.conf)], env=self.env())
        return self

    def wait_ready(self, timeout: float = 10.0) -> "ExaBgp":
        time_start = time.monotonic()
        wait_until(lambda: self.proc.alive() and time.monotonic() - time_start > 0.5, timeout,
                   desc=f"exabgp {self.name} running")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def reload(self, config: str) -> None:
        """Replace the config and make ExaBGP re-read it (SIGUSR1): removed routes get withdrawn."""
        self.conf.write_text(config)
        os.kill(self.proc.pid, signal.SIGUSR1)


# ---------------------------------------------------------------------------
# Upstream: "a router of kind K originating these routes over these sessions"


@dataclass
class Session:
    """One BGP session of an originating router: towards ``neighbor`` (AS ``peer_as``)."""
    neighbor: str
    peer_as: int
    local_address: str
    families: tuple = ("ipv4", "ipv6")
    multihop: int | None = None


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
            peers = [FrrPeer(s.neighbor, s.peer_as, s.families, update_source=s.local_address,
                             multihop=s.multihop,
                             nh4=self.nh4 if (":" in s.neighbor and "ipv4" in s.families) else None,
                             graceful_restart=self.graceful_restart is not None)
                     for s in self.sessions]
            self.d = self.lab.frr(self.ns, self.name, frr_config(self.asn, self.router_id, peers, self.routes,
                                                                  hostname=self.name)).start()
        elif self.kind == "gobgp":
            peers = [GobgpPeer(s.neighbor, s.peer_as, tuple(f"{f}-unicast" for f in s.families),
                               local_address=s.local_address, multihop=s.multihop,
                               graceful_restart=self.graceful_restart) for s in self.sessions]
            self.d = self.lab.gobgp(self.ns, self.name, gobgp_config(self.asn, self.router_id, peers)).start()
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


def wait_equal(fn: Callable[[], Any], expected: Any, timeout: float = 30.0, interval: float = 0.2,
               desc: str = "value") -> Any:
    """Poll until ``fn() == expected``; on timeout raise AssertionError with a set diff."""
    box: dict = {}

    def check():
        box["v"] = fn()
        return box["v"] == expected
    try:
        wait_until(check, timeout, interval, desc)
    except TimeoutError as e:
        got = box.get("v")
        if isinstance(got, (set, frozenset)) and isinstance(expected, (set, frozenset)):
            raise AssertionError(f"{desc}: after {timeout}s\n  missing: {sorted(expected - got, key=str)}\n"
                                 f"  unexpected: {sorted(got - expected, key=str)}") from None
        raise AssertionError(f"{desc}: after {timeout}s got {got!r}, expected {expected!r} ({e})") from None
    return box["v"]
