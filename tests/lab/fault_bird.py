"""Minimal BIRD 2 control for the fault tests (loopback only, no namespaces).

  b = Bird(workdir, name="healthy", config_text)   # writes bird.conf
  b.start()                                        # bird -f as a child; waits for the control socket
  b.proto_state("peer")  -> "Established" | "Connect" | "Active" | ... (the "BGP state:" line)
  b.cmd("show route count")
  b.stop()                                         # SIGTERM by PID, then SIGKILL

Each instance has its own control socket, pid file and log file in `workdir`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"


def wait_for(pred, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll pred() until truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except Exception as e:  # noqa: BLE001 - keep polling through transient errors
            last = e
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}: last error {e!r}") from e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)



def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, wait up to 5 s, then SIGKILL: stop a process we started, by its PID."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass

class Bird:
    def __init__(self, workdir: Path, name: str, config: str):
        self.dir = Path(workdir) / f"bird-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.conf = self.dir / "bird.conf"
        self.ctl = self.dir / "bird.ctl"
        self.log = self.dir / "bird.log"
        self.pidfile = self.dir / "bird.pid"
        self.conf.write_text(config.replace("@LOG@", str(self.log)))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0):
        self.proc = subprocess.Popen(
            [BIRD, "-f", "-c", str(self.conf), "-s", str(self.ctl), "-P", str(self.pidfile)],
            stdout=open(self.dir / "stdout", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.alive() and self._ready(), timeout, what=f"BIRD {self.name} control socket")
        return self

    def _ready(self) -> bool:
        if not self.ctl.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"BIRD {self.name} exited: {(self.dir / 'stdout').read_text()}")
            return False
        r = subprocess.run([BIRDC, "-s", str(self.ctl), "show", "status"], capture_output=True, text=True, timeout=5)
        return r.returncode == 0 and "Daemon is up" in r.stdout

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cmd(self, *args: str, timeout: float = 5.0) -> str:
        r = subprocess.run([BIRDC, "-s", str(self.ctl), *args], capture_output=True, text=True, timeout=timeout)
        return r.stdout

    def proto_info(self, proto: str) -> str:
        return self.cmd("show", "protocols", "all", proto)

    def proto_state(self, proto: str) -> str:
        m = re.search(r"BGP state:\s+(\S+)", self.proto_info(proto))
        return m.group(1) if m else ""

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        terminate(self.proc)
        self.proc = None


def bgp_peer_config(*, router_id: str, local_ip: str, local_port: int, local_asn: int,
                    neighbor_ip: str, neighbor_port: int, neighbor_asn: int, proto: str = "peer",
                    static4=(), static6=(), nh4: str | None = None, nh6: str = "2001:db8:ffff::2", password: str | None = None,
                    passive: bool = False, connect_retry: int = 1, hold: int = 90,
                    import_routes: bool = False, debug: str = "states, events") -> str:
    """A BIRD config with one eBGP session over IPv4 loopback carrying IPv4 and IPv6
    and static routes to export (next hop `nh4` for IPv4 when given, else BIRD's
    source address; `nh6` for IPv6). `strict bind` keeps BIRD's listening socket on
    local_ip:local_port only (several BIRDs can share the machine)."""
    s4 = "\n".join(f"  route {p} unreachable;" for p in static4)
    s6 = "\n".join(f"  route {p} unreachable;" for p in static6)
    imp = "all" if import_routes else "none"
    pw = f'  password "{password}";\n' if password is not None else ""
    return f"""
router id {router_id};
log "@LOG@" all;
protocol device {{}}
protocol static st4 {{ ipv4; {s4} }}
protocol static st6 {{ ipv6; {s6} }}
protocol bgp {proto} {{
  debug {{ {debug} }};
  local {local_ip} port {local_port} as {local_asn};
  strict bind on;
  neighbor {neighbor_ip} port {neighbor_port} as {neighbor_asn};
  multihop 64;
  hold time {hold};
  connect delay time 1;
  connect retry time {connect_retry};
  error wait time 1, 2;
  {"passive on;" if passive else ""}
{pw}  ipv4 {{ import {imp}; export where source = RTS_STATIC; {f"next hop address {nh4};" if nh4 else ""} }};
  ipv6 {{ import {imp}; export where source = RTS_STATIC; next hop address {nh6}; }};
}}
"""
