"""The one Lab of a test: network namespaces, veth links, processes, and their cleanup.

  Lab(tag, workdir)                   one per test (the ``lab`` fixture in conftest.py) or
                                      per module (``with Lab(...) as lab``)
    .netns(short) -> Netns            namespace ``sp-<tag>-<pid>-<short>`` (lo up, no DAD, no RA)
    .link(a, b, v4=(A, B), v6=(A, B)) veth pair between two Netns -> Link
    .spawn(ns, name, argv, env)       a process in ns (ROOT: this namespace), log workdir/<name>.log
    .sparrowd / .bird / .frr / .gobgp / .exabgp / .knot / .unbound (ns, name, config, ...)
                                      daemons, not started
    .log_tails(lines) -> str          every process log's tail (printed when a test failed)
    .cleanup()                        stop every process (by PID / process group), delete namespaces
  ROOT                                the test's own namespace (loopback-only tests)
  Daemon                              base of every daemon wrapper: dir, config file, proc, stop(),
                                      wait_established(*sessions) over the wrapper's session_up()
  clean_stale_namespaces()            delete sp- namespaces whose creating PID is dead

Talks to the kernel through ``ip`` and ``sysctl``; processes are our own children only.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .net import run, wait_until

NS_PREFIX = "sp-"


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


def _signal(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except ProcessLookupError:
        pass


def _kill_pids(pids: Iterable[int], grace: float = 3.0) -> None:
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)


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
    """A network namespace by name; ``Netns(None)`` (ROOT) is the test's own."""

    def __init__(self, name: str | None):
        self.name = name

    def __repr__(self) -> str:
        return f"Netns({self.name or 'root'})"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv] if self.name else list(argv)

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


ROOT = Netns(None)


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
    """A process started inside a namespace in its own process group, logging
    stdout+stderr to a file.  ``stop``/``kill`` signal the whole group (a daemon's
    helper children go with it)."""

    def __init__(self, name: str, ns: Netns, argv: Sequence[str], log: Path,
                 env: dict | None = None, cwd: str | None = None):
        self.name, self.ns, self.argv, self.log = name, ns, list(argv), log
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._logf = open(log, "ab")
        self._logf.write(f"=== {shlex.join(self.argv)} (netns {ns.name or 'root'})\n".encode())
        self._logf.flush()
        # `ip netns exec` execs the command, so the PID is the daemon's.
        self.popen = subprocess.Popen(ns.argv(self.argv), stdout=self._logf, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def poll(self) -> int | None:
        return self.popen.poll()

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds; returns the exit status."""
        if self.popen.poll() is None:
            _signal(self.pid, signal.SIGTERM, group=True)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal(self.pid, signal.SIGKILL, group=True)
                self.popen.wait(timeout=5)
            _signal(self.pid, signal.SIGKILL, group=True)  # helpers that outlived the leader
        self._logf.close()
        return self.popen.returncode

    def kill(self) -> int | None:
        """SIGKILL (a crash: no NOTIFICATION, the kernel closes the TCP sessions)."""
        if self.popen.poll() is None:
            _signal(self.pid, signal.SIGKILL, group=True)
            self.popen.wait(timeout=10)
        return self.popen.returncode

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"<{e}>"
        return "\n".join(text[-lines:])


class Daemon:
    """Base of the daemon wrappers: a directory ``workdir/<name>`` holding the config
    file ``conf_name``, and the running Proc (``None`` before ``start``)."""

    conf_name = "daemon.conf"

    def __init__(self, lab: "Lab", ns: Netns, name: str, config: str | None = None):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / self.conf_name
        if config is not None:
            self.conf.write_text(config)
        self.proc: Proc | None = None

    def spawn(self, argv: Sequence[str], env: dict | None = None, cwd: str | None = None) -> Proc:
        self.proc = self.lab.spawn(self.ns, self.name, argv, env=env, cwd=cwd)
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def check_alive(self) -> bool:
        """True while running; raises with the log tail once the process has exited."""
        if self.proc is not None and not self.proc.alive():
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.proc.tail()}")
        return True

    def stop(self):
        return self.proc.stop() if self.proc else None

    # BGP sessions (the speakers' wrappers say how to read one) -------------
    def session_up(self, key: str) -> bool:
        raise NotImplementedError

    def session_detail(self, key: str) -> str:
        """Diagnostics shown when a session did not come up."""
        return ""

    def wait_established(self, *keys: str, timeout: float = 60.0) -> None:
        for k in keys:
            try:
                wait_until(lambda: self.session_up(k), timeout, interval=0.2,
                           desc=f"{type(self).__name__} {self.name} session {k} Established")
            except TimeoutError as e:
                raise TimeoutError(f"{e}\n{self.session_detail(k)}") from None


class Lab:
    """Owns the namespaces and processes of one test (or module); ``cleanup()`` removes all."""

    def __init__(self, tag: str, workdir: Path):
        self.tag = re.sub(r"[^a-z0-9]+", "", tag.lower())[:12] or "t"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.namespaces: list[Netns] = []
        self.procs: list[Proc] = []
        self.daemons: list[Any] = []
        self._ifcount = 0

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> bool:
        self.cleanup()
        return False

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

    def add(self, d):
        """Register a daemon wrapper (returned unchanged)."""
        self.daemons.append(d)
        return d

    def sparrowd(self, ns: Netns, name: str, config: dict | str, **kw):
        from .sparrowd import Sparrowd
        return self.add(Sparrowd(self, ns, name, config, **kw))

    def bird(self, ns: Netns, name: str, config: str):
        from .bird import Bird
        return self.add(Bird(self, ns, name, config))

    def frr(self, ns: Netns, name: str, config: str):
        from .frr import Frr
        return self.add(Frr(self, ns, name, config))

    def gobgp(self, ns: Netns, name: str, config: str):
        from .gobgp import GoBgp
        return self.add(GoBgp(self, ns, name, config))

    def knot(self, ns: Netns, name: str, zones: dict, listen: list, **kw):
        from .knot import Knot
        return self.add(Knot(self, ns, name, zones, listen, **kw))

    def unbound(self, ns: Netns, name: str, listen: list, stubs: dict, access: list, **kw):
        from .unbound import Unbound
        return self.add(Unbound(self, ns, name, listen, stubs, access, **kw))

    def prometheus(self, ns: Netns, name: str, targets: dict, **kw):
        from .prometheus import Prometheus
        return self.add(Prometheus(self, ns, name, targets, **kw))

    def exabgp(self, ns: Netns, name: str, config: str, env: dict | None = None):
        from .exabgp import ExaBgp
        return self.add(ExaBgp(self, ns, name, config, env=env))

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
