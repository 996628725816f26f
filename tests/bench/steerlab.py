"""Shared steps of the steering benchmarks (tests/bench/*.py): table binaries, a sparrowd
started and waited for, the anchors' blasters feeding it, convergence read from its log.

Built on steer_update_latency.py's pieces (Ctl, LogTail, proc_status, ...), imported from
there, not copied. Every process is started with Popen and stopped by its PID (stop_all).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from steer_update_latency import Ctl, LogTail  # noqa: F401  (re-exported for the benches)

PUBLISHED = "steering: snapshot published"
FROM_RIB = "answering from the RIB"


def ensure_bins(anchors: str, tables: str, bins: str, peers: int) -> list:
    """`bins/peerI.bin` for I < peers, encoded from `tables/peerI.txt` with the anchors'
    blaster (`bgp_blaster.py encode`, next hops from meta.json) where missing. Returns
    the prefix count of each."""
    os.makedirs(bins, exist_ok=True)
    meta = json.load(open(os.path.join(tables, "meta.json")))
    counts = []
    for i in range(peers):
        out = os.path.join(bins, f"peer{i}.bin")
        if not (os.path.exists(out) and os.path.exists(out + ".json")):
            subprocess.run(
                [sys.executable, os.path.join(anchors, "bgp_blaster.py"), "encode",
                 "--table", os.path.join(tables, f"peer{i}.txt"), "--out", out,
                 "--nh4", meta["next_hops4"][i], "--nh6", meta["next_hops6"][i]],
                check=True, stdout=subprocess.DEVNULL)
        counts.append(json.load(open(out + ".json"))["prefixes"])
    return counts


def start_sparrowd(binary: str, cfg: str, sock: str, log_path: str, timeout: float = 20,
                   ctl_bin: str | None = None):
    """sparrowd with `cfg`, its output to `log_path`; returns (Popen, Ctl) once `paths`
    answers on the admin socket `sock`. `ctl_bin`: the sparrowctl to use (default: Ctl's,
    the release build)."""
    logf = open(log_path, "w")
    sp = subprocess.Popen([binary, "--config", cfg], stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    ctl = Ctl(sock)
    if ctl_bin:
        ctl.bin = ctl_bin
    deadline = time.monotonic() + timeout
    while True:
        try:
            ctl.run("paths", json_out=False)
            return sp, ctl
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline or sp.poll() is not None:
                stop_all([sp])
                raise RuntimeError(f"sparrowd did not start; see {log_path}")
            time.sleep(0.05)


def start_blasters(anchors: str, bins: str, port: int, asns: list, first_addr: int = 2):
    """One `bgp_blaster.py send` per ASN: peer i from 127.0.0.(first_addr + i) with
    bins/peerI.bin. Returns (Popen list, events): events fills with the blasters' JSON lines
    (`established`, `sent`, ... with monotonic `t`)."""
    procs, events = [], []

    def read(p):
        for line in p.stdout:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    for i, asn in enumerate(asns):
        p = subprocess.Popen(
            [sys.executable, os.path.join(anchors, "bgp_blaster.py"), "send",
             "--bin", os.path.join(bins, f"peer{i}.bin"), "--connect", f"127.0.0.1:{port}",
             "--bind", f"127.0.0.{first_addr + i}", "--asn", str(asn), "--linger", "3600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=read, args=(p,), daemon=True).start()
        procs.append(p)
    return procs, events


def steer_fields(tail: LogTail, message: str) -> list:
    """The `fields` (plus `mono`, the monotonic time) of every steering log line whose
    message is `message` or contains it."""
    out = []
    for e in tail.steer():
        f = e.get("fields", {})
        if message in str(f.get("message", "")):
            out.append(dict(f, mono=e.get("mono")))
    return out


def wait_converged(ctl: Ctl, tail: LogTail, want: int, timeout: float, quiet: float = 2.0):
    """Until `sparrowctl paths` reaches `want`, steering answers from the RIB and no
    snapshot was published for `quiet` s. Returns (t_all_paths, t_last_publication),
    monotonic; raises on timeout."""
    t_all = None
    n = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = int(ctl.run("paths", json_out=False).strip() or 0)
        if t_all is None and n >= want:
            t_all = time.monotonic()
        tail.poll()
        if t_all is not None and steer_fields(tail, FROM_RIB):
            last = max(e.get("mono") or 0 for e in tail.steer())
            if time.monotonic() - last >= quiet:
                return t_all, last
        time.sleep(0.05)
    raise RuntimeError(f"no convergence within {timeout}s (paths {n}/{want})")


def stop_all(procs):
    """SIGTERM each process still running (by its Popen), then wait; SIGKILL after 15 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
