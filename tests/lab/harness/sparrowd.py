"""The one way to run sparrowd in the lab: write its config, start it, wait until its
admin socket answers, and query it with sparrowctl.

  sparrow_bin_dir()                    $SPARROW_BIN or <repo>/target/release
  sparrowctl(sock, *args, stdin, check)   one sparrowctl call -> CompletedProcess (check: assert rc 0)
  ctl_out(sock, *args, stdin)          its stdout; asserts it succeeded
  sparrow_peer(...) / sparrow_config(...)   config dicts (JSON is valid YAML)
  Sparrowd(lab, ns, name, config)      via ``lab.sparrowd(ns, name, config)``; ``config`` is a dict
                                       (admin socket filled in) or YAML text (``@SOCKET@`` replaced);
                                       ``admin.state_file`` is <its dir>/state.json unless given
                                       (kept across restarts of the same Sparrowd); ``wrap``: argv
                                       run in front of sparrowd that execs it (e.g. ``setpriv ...``),
                                       ``env``: more environment (e.g. NOTIFY_SOCKET)
      .start() .wait_ready() .stop() .alive()    restartable: start() again after stop()/kill
      .ctl(*args, as_json=True, check=True, stdin=None)   parsed JSON / text / None
      .run_ctl(*args) .ctl_json(*args)   CompletedProcess / JSON or None on failure
      .peers() .peer(name) .state(name) .wait_established(*names)
      .route(q) .summary() .paths_count() .dump() .table(peer) .paths_from(prefix, peer)
      .has_route(prefix, peer) .lookup(addrs) .explain(addr) .log .log_text() .log_tail(n)
  loopback_sparrowd(workdir, config)   context manager: a started, ready sparrowd in this
                                       namespace (its own Lab), stopped on exit

Talks to the sparrowd/sparrowctl binaries and the daemon's admin socket (and ``ss`` for
its BGP listener).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .lab import ROOT, Daemon, Lab, Netns
from .net import listening, run, wait_until
from .routes import dump_path

REPO = Path(__file__).resolve().parents[3]


def sparrow_bin_dir() -> Path:
    """Directory holding sparrowd/sparrowctl: $SPARROW_BIN or <repo>/target/release."""
    return Path(os.environ.get("SPARROW_BIN") or REPO / "target" / "release")


def sparrowctl(sock, *args: str, stdin: str | None = None, timeout: float = 30.0,
               check: bool = False) -> subprocess.CompletedProcess:
    """One ``sparrowctl -s sock args...`` call; ``check`` asserts that it succeeded."""
    r = subprocess.run([str(sparrow_bin_dir() / "sparrowctl"), "-s", str(sock), *args],
                       input=stdin, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def ctl_out(sock, *args: str, stdin: str | None = None) -> str:
    """stdout of a sparrowctl call that must succeed."""
    return sparrowctl(sock, *args, stdin=stdin, check=True).stdout


def sparrow_peer(name: str, address: str, remote_asn: int, role: str = "upstream", **kw) -> dict:
    """One ``peers:`` entry; extra keys (multihop, passive, local_address, ...) pass through."""
    d = {"name": name, "address": address, "remote_asn": remote_asn, "role": role}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def sparrow_config(local_asn: int, router_id: str, peers: list[dict], pop: str = "x",
                   pops: list[dict] | None = None, listen: list[str] | None = None,
                   port: int = 179, log_level: str = "info", log_format: str | None = "text",
                   **extra) -> dict:
    """A sparrowd config dict; ``admin.socket`` is filled in by Sparrowd.
    ``pops`` may be a list of dicts or {name: asn}; ``listen=[]`` disables the BGP listener."""
    if isinstance(pops, dict):
        pops = [{"name": n, "asn": a} for n, a in pops.items()]
    logging = {"level": log_level}
    if log_format:
        logging["format"] = log_format
    cfg = {
        "local_asn": local_asn,
        "router_id": router_id,
        "pop": pop,
        "pops": pops if pops is not None else [{"name": pop, "asn": local_asn}],
        "listen": {"enabled": True, "addresses": listen or ["::"], "port": port}
        if listen != [] else {"enabled": False},
        "logging": logging,
        "peers": peers,
    }
    cfg.update(extra)
    return cfg


class Sparrowd(Daemon):
    """sparrowd under test, controlled via sparrowctl on its admin socket."""

    conf_name = "sparrowd.yaml"

    def __init__(self, lab, ns: Netns, name: str, config: dict | str, port: int | None = None,
                 wrap: list[str] | None = None, env: dict | None = None):
        super().__init__(lab, ns, name)
        self.wrap = list(wrap or [])  # must exec sparrowd: the Proc's PID stays the daemon's
        self.env = dict(env or {})
        self.socket = str(self.dir / "admin.sock")
        # Operator state (drains, forced states, loads) of this daemon only, kept
        # across its restarts (start() again), never the default /var/lib/sparrow.
        self.state_file = str(self.dir / "state.json")
        if isinstance(config, dict):
            self.config = dict(config)
            admin = self.config.get("admin", {})
            self.config["admin"] = {"state_file": self.state_file, **admin,
                                    "socket": self.socket, "mode": "0600"}
            listen = self.config.get("listen") or {}
            if port is None and listen.get("enabled"):
                port = listen.get("port")
            self.text = None
        else:
            self.config = None
            self.text = config.replace("@SOCKET@", self.socket)
            if "state_file:" not in self.text:
                # beside the socket line of the ``admin:`` map, same indentation
                self.text = re.sub(rf"^([ \t]*)socket: {re.escape(self.socket)}[ \t]*$",
                                   lambda m: f"{m.group(0)}\n{m.group(1)}state_file: {self.state_file}",
                                   self.text, count=1, flags=re.M)
        self.port = port  # BGP listener waited for by wait_ready (None: not waited for)
        bindir = sparrow_bin_dir()
        self.bin = bindir / "sparrowd"
        self.ctl_bin = bindir / "sparrowctl"

    @property
    def conf_path(self) -> Path:
        return self.conf

    @property
    def log(self) -> Path:
        return self.lab.path(f"{self.name}.log")

    def write_config(self) -> None:
        # JSON is valid YAML; no YAML library needed.
        self.conf.write_text(self.text if self.text is not None else json.dumps(self.config, indent=2) + "\n")

    def check_config(self) -> subprocess.CompletedProcess:
        self.write_config()
        return run([str(self.bin), "--check-config", str(self.conf)], check=False)

    def start(self) -> "Sparrowd":
        for b in (self.bin, self.ctl_bin):
            if not b.exists():
                raise FileNotFoundError(f"{b} missing (set SPARROW_BIN or run cargo build --release)")
        chk = self.check_config()
        if chk.returncode != 0:
            raise RuntimeError(f"sparrowd --check-config rejected {self.conf}:\n{chk.stdout}{chk.stderr}\n"
                               f"{self.conf.read_text()}")
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.spawn([*self.wrap, str(self.bin), "--config", str(self.conf)],
                   env={"RUST_BACKTRACE": "1", **self.env})
        return self

    def _ready(self) -> bool:
        self.check_alive()
        if self.port and not listening(self.port, self.ns.argv([])):
            return False
        return self.ctl("peers", check=False) is not None

    def wait_ready(self, timeout: float = 20.0) -> "Sparrowd":
        try:
            wait_until(self._ready, timeout, desc=f"sparrowd {self.name} admin socket and BGP listener")
        except TimeoutError:
            self.check_alive()
            raise
        return self

    # ---- sparrowctl
    def run_ctl(self, *args: str, stdin: str | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return sparrowctl(self.socket, *args, stdin=stdin, timeout=timeout)

    def ctl(self, *args: str, as_json: bool = True, check: bool = True, stdin: str | None = None,
            timeout: float = 15.0):
        """Parsed JSON (``as_json``) or stdout; on failure raise (``check``) or return None."""
        p = self.run_ctl(*(["--json"] if as_json else []), *args, stdin=stdin, timeout=timeout)
        if p.returncode != 0:
            if check:
                raise RuntimeError(f"sparrowctl {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
            return None
        if not as_json:
            return p.stdout
        return json.loads(p.stdout)

    def ctl_json(self, *args: str, timeout: float = 15.0):
        """Parsed JSON, or None when sparrowctl failed."""
        return self.ctl(*args, check=False, timeout=timeout)

    def peers(self) -> list[dict]:
        return self.ctl("peers")["peers"]

    def peer(self, name: str) -> dict:
        for p in self.peers():
            if p["name"] == name:
                return p
        raise KeyError(f"no peer {name} in sparrowd {self.name}")

    def state(self, name: str) -> str:
        return self.peer(name)["state"]

    def wait_established(self, *names: str, timeout: float = 60.0) -> None:
        def ok():
            st = {p["name"]: p["state"] for p in self.peers()}
            return all(st.get(n) == "Established" for n in names)
        try:
            wait_until(ok, timeout, interval=0.2, desc=f"sparrowd {self.name} peers {names} Established")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\npeers: {json.dumps(self.peers(), indent=1)}") from None

    def route(self, query: str) -> dict:
        return self.ctl("route", query)

    def explain(self, addr) -> dict:
        return self.ctl("explain", str(addr))

    def lookup(self, addrs) -> list[str]:
        return self.ctl("lookup", as_json=False, stdin="".join(f"{a}\n" for a in addrs), timeout=60).split()

    def summary(self) -> dict:
        return self.ctl("summary")

    def paths_count(self) -> int:
        return int(self.ctl("paths", as_json=False).strip())

    total_paths = paths_count

    def paths_from(self, prefix: str, peer: str) -> list:
        """Paths for exactly ``prefix`` learned from ``peer``."""
        d = self.route(prefix)
        if not d.get("prefix") or ipaddress.ip_network(d["prefix"], strict=False) != \
                ipaddress.ip_network(prefix, strict=False):
            return []
        return [p for p in d.get("paths", []) if p.get("peer") == peer]

    def has_route(self, prefix: str, peer: str) -> bool:
        return bool(self.paths_from(prefix, peer))

    def dump(self, timeout: float = 60.0) -> list[dict]:
        """Every path the daemon holds (``sparrowctl dump``: one JSON object per line)."""
        out = self.ctl("--json", "dump", as_json=False, timeout=timeout)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def table(self, peer: str | None = None) -> set[tuple[str, tuple]]:
        """{(prefix, canonical path)} from ``dump`` (optionally only one peer's paths).

        ``dump`` gives ``as_path`` as text ('1 2 {3,4}'), parsed like BIRD's."""
        rows = self.dump()
        return {(str(ipaddress.ip_network(r["prefix"])), dump_path(r["as_path"]))
                for r in rows if peer is None or r.get("peer") == peer}

    # ---- log
    def log_text(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


@contextmanager
def loopback_sparrowd(workdir, config: dict | str, name: str = "sparrowd") -> Iterator[Sparrowd]:
    """sparrowd on loopback in the test's own namespace, ready; stopped (with its Lab) on exit."""
    with Lab(name, workdir) as lab:
        yield lab.sparrowd(ROOT, name, config).start().wait_ready()
