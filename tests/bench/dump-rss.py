#!/usr/bin/env python3
"""sparrowd's RSS around `sparrowctl dump` with full tables loaded (issue 8, defect 9).

Usage: tests/bench/dump-rss.py [--bin target/release] [--peers 4] [--bins /tmp/anchors/bins]

Starts sparrowd on 127.0.0.1 (passive eBGP multihop peers, as tests/bench/sparrow-recv.py),
feeds it the anchors' pre-encoded full tables (../shared/anchors/bgp_blaster.py send, peer i
from 127.0.0.(2+i) as AS 3356/1299/174/2914), waits until it holds every path, then prints
VmRSS before the dump, the peak sampled every 20 ms while `sparrowctl dump` runs (its output
counted and discarded), and VmRSS 5 s after it, as one JSON line. Loopback only; every wait
is bounded; stops only the processes it started, by PID.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASNS = [3356, 1299, 174, 2914]


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release"))
    ap.add_argument("--peers", type=int, default=4)
    ap.add_argument("--bins", default="/tmp/anchors/bins")
    ap.add_argument("--anchors", default=str(ROOT / "../shared/anchors"))
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dump-rss-"))
    port, sock = free_port(), work / "s.sock"
    lines = ["local_asn: 64999", "router_id: 192.0.2.254", "pop: bench",
             "pops: [{name: bench, asn: 64999}]",
             f"listen: {{enabled: true, addresses: [127.0.0.1], port: {port}}}",
             f"admin: {{socket: {sock}}}", "logging: {level: warn}", "peers:"]
    expected = 0
    for i in range(a.peers):
        meta = json.load(open(f"{a.bins}/peer{i}.bin.json"))
        expected += meta["prefixes"]
        lines.append(f"  - {{name: p{i}, address: 127.0.0.{2 + i}, remote_asn: {ASNS[i]}, "
                     "role: upstream, passive: true, multihop: 255, hold_time: 240}")
    (work / "sparrow.yaml").write_text("\n".join(lines) + "\n")
    ctl = [f"{a.bin}/sparrowctl", "-s", str(sock)]
    procs = []
    try:
        d = subprocess.Popen([f"{a.bin}/sparrowd", "--config", str(work / "sparrow.yaml")],
                             stdout=open(work / "d.log", "w"), stderr=subprocess.STDOUT)
        procs.append(d)
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline and d.poll() is None, "sparrowd did not start"
            time.sleep(0.1)
        rss_idle = rss(d.pid)
        for i in range(a.peers):
            procs.append(subprocess.Popen(
                [sys.executable, f"{a.anchors}/bgp_blaster.py", "send", "--bin", f"{a.bins}/peer{i}.bin",
                 "--connect", f"127.0.0.1:{port}", "--bind", f"127.0.0.{2 + i}", "--asn", str(ASNS[i]),
                 "--linger", str(a.timeout)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline, t0 = time.monotonic() + a.timeout, time.monotonic()
        while True:
            out = subprocess.run(ctl + ["paths"], capture_output=True, text=True).stdout.strip()
            if out.isdigit() and int(out) >= expected:
                break
            assert time.monotonic() < deadline, f"only {out} of {expected} paths"
            time.sleep(1)
        load_s = time.monotonic() - t0
        time.sleep(5)
        before = rss(d.pid)
        peak, n, t0 = before, 0, time.monotonic()
        dump = subprocess.Popen(ctl + ["dump"], stdout=subprocess.PIPE)
        os.set_blocking(dump.stdout.fileno(), False)
        last = 0.0
        while True:
            chunk = dump.stdout.read(1 << 20)
            if chunk:
                n += chunk.count(b"\n")
            elif chunk == b"" and dump.poll() is not None:
                break
            now = time.monotonic()
            if now - last >= 0.02:
                peak, last = max(peak, rss(d.pid)), now
            if chunk is None:
                time.sleep(0.005)
            assert now - t0 < a.timeout, "dump did not finish"
        dump_s = time.monotonic() - t0
        time.sleep(5)
        after = rss(d.pid)
        mb = lambda b: round(b / 2**20, 1)  # noqa: E731
        print(json.dumps({"peers": a.peers, "paths": expected, "dump_lines": n, "dump_rc": dump.returncode,
                          "load_s": round(load_s, 1), "dump_s": round(dump_s, 1),
                          "rss_idle_mb": mb(rss_idle), "rss_before_mb": mb(before),
                          "rss_peak_mb": mb(peak), "rss_after_mb": mb(after),
                          "after_over_before": round(after / before, 3)}))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
