"""ExaBGP 4.2 as a (possibly malicious) peer, driven through its API.

  x = ExaBgp(workdir, "exa1", local_ip="127.0.3.20", asn=65220, peer_ip="127.0.0.1",
             peer_port=port, peer_asn=64999)
  x.start()
  x.send("announce route 10.9.0.0/24 next-hop 127.0.3.20 as-path [ 65220 ]")
  x.stop()

The API process is a tiny script that prints, in order, the command files the
test drops into its directory (cmd-0000, cmd-0001, ...). ExaBGP writes every
command to the session as it gets it.  Generic attributes
(`attribute [ 0xCODE 0xFLAGS 0xVALUE ]`) replace ExaBGP's own attribute of the
same code (its Attributes dict is keyed by code), so a malformed AS_PATH or
ORIGIN can be sent byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

EXABGP = "/usr/sbin/exabgp"

CTL_SCRIPT = r'''
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


class ExaBgp:
    def __init__(self, workdir: Path, name: str, *, local_ip: str, asn: int, peer_ip: str, peer_port: int,
                 peer_asn: int, hold: int = 90, families=("ipv4 unicast",)):
        self.dir = Path(workdir) / f"exabgp-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cmd_dir = self.dir / "cmds"
        self.cmd_dir.mkdir(exist_ok=True)
        self.n = 0
        (self.dir / "ctl.py").write_text(CTL_SCRIPT)
        fam = " ".join(f"{f};" for f in families)
        (self.dir / "exabgp.conf").write_text(f"""
process ctl {{
  run {sys.executable if os.path.exists(sys.executable) else '/usr/bin/python3'} {self.dir / 'ctl.py'} {self.cmd_dir};
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
        self.log = self.dir / "exabgp.log"
        self.proc: subprocess.Popen | None = None

    def start(self):
        env = dict(os.environ)
        env.update({
            "exabgp.daemon.user": "root",
            "exabgp.daemon.drop": "false",
            "exabgp.daemon.daemonize": "false",
            "exabgp.tcp.bind": "",            # do not listen on 179
            "exabgp.log.destination": str(self.log),
            "exabgp.log.level": "INFO",
            "exabgp.log.packets": "true",
            "exabgp.api.ack": "false",
            "exabgp.reactor.speed": "0.1",
        })
        self.proc = subprocess.Popen([EXABGP, str(self.dir / "exabgp.conf")], env=env, cwd=self.dir,
                                     stdout=open(self.dir / "stdout", "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def send(self, *lines: str):
        tmp = self.cmd_dir / f".tmp-{self.n}"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.rename(self.cmd_dir / f"cmd-{self.n:04d}")
        self.n += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM the process group this object started (ExaBGP and its API script), then SIGKILL."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is our child's pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)  # the API script, if it outlived ExaBGP
        except ProcessLookupError:
            pass
        self.proc = None

    def output(self) -> str:
        out = ""
        for f in (self.dir / "stdout", self.log):
            if f.exists():
                out += f.read_text(errors="replace")[-4000:]
        return out
