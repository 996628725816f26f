"""Deterministic reproduction of a race the MRT replay used to hit at random.

A peer that sends its KEEPALIVE (answering OpenConfirm) and its first UPDATEs
in ONE write leaves those UPDATEs in sparrowd's read buffer at the moment the
session becomes Established. sparrowd must process them at once, not when the
next bytes arrive. With hold time 0 the peer never sends anything else, so a
daemon with the bug would never show the route.

`run_repro(workdir, out)` starts sparrowd on loopback, plays the peer with
`rawbgp`, and returns True when the route and End-of-RIB show up in time.
Run as a script for a manual check (exit 1 = bug).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import rawbgp as rb
from replay_lab import LoopbackDaemon, bin_dir, free_port

PEER_ADDR = "127.0.3.1"
PEER_ASN = 65101
PREFIX = "198.51.100.0/24"


def _ctl(sock: Path, *args) -> dict | int:
    r = subprocess.run([str(bin_dir() / "sparrowctl"), "-s", str(sock), "--json", *args],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return json.loads(r.stdout)


def run_repro(workdir: Path, out=print, timeout: float = 5.0) -> bool:
    workdir = Path(workdir)
    port = free_port()
    sock = workdir / "s.sock"
    config = "\n".join([
        "local_asn: 64999",
        "router_id: 192.0.2.1",
        "pop: lab",
        "pops: [{name: lab, asn: 64999}]",
        f"listen: {{enabled: true, addresses: [127.0.0.1], port: {port}}}",
        f"admin: {{socket: {sock}}}",
        "logging: {level: debug}",
        "peers:",
        f"  - {{name: p, address: {PEER_ADDR}, remote_asn: {PEER_ASN}, role: upstream, "
        f"passive: true, multihop: 64, hold_time: 0}}",
    ]) + "\n"
    try:
        with LoopbackDaemon(workdir, config, sock):
            return _play(port, sock, out, timeout)
    except RuntimeError as e:
        out(str(e))
        return False


def _play(port: int, sock: Path, out, timeout: float) -> bool:
    peer = rb.RawBgp.connect("127.0.0.1", port, source=PEER_ADDR)
    try:
        peer.send_raw(rb.open_msg(PEER_ASN, 0, "10.0.3.1", rb.default_caps(PEER_ASN)))
        peer.recv_until(lambda m: m.type == rb.OPEN, 5)
        peer.recv_until(lambda m: m.type == rb.KEEPALIVE, 5)
        # KEEPALIVE, UPDATE and End-of-RIB in one segment, then silence.
        peer.send_raw(rb.keepalive()
                      + rb.announce4([PREFIX], [PEER_ASN, 3], "192.0.2.77")
                      + rb.end_of_rib(rb.AFI_IPV4))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = _ctl(sock, "peers")["peers"][0]
            if p["eor"]["ipv4"] and p["accepted"]["ipv4"] == 1:
                route = _ctl(sock, "route", PREFIX)
                ok = route["prefix"] == PREFIX and route["paths"][0]["as_path"] == f"{PEER_ASN} 3"
                out(f"route after buffered UPDATE: {route['prefix']} {route['paths'][0]['as_path']}")
                return ok
            time.sleep(0.05)
        out(f"BUG: buffered UPDATE not processed within {timeout}s: {p}")
        return False
    finally:
        peer.close()


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        sys.exit(0 if run_repro(Path(t)) else 1)
