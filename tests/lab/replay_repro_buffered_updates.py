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

import sys
import time
from pathlib import Path

import rawbgp as rb
from harness import Sparrowd, free_port, loopback_sparrowd, sparrow_config, sparrow_peer

PEER_ADDR = "127.0.3.1"
PEER_ASN = 65101
PREFIX = "198.51.100.0/24"


def run_repro(workdir: Path, out=print, timeout: float = 5.0) -> bool:
    workdir = Path(workdir)
    port = free_port()
    config = sparrow_config(64999, "192.0.2.1",
                            [sparrow_peer("p", PEER_ADDR, PEER_ASN, passive=True, multihop=64, hold_time=0)],
                            pop="lab", listen=["127.0.0.1"], port=port, log_level="debug", log_format=None)
    try:
        with loopback_sparrowd(workdir, config) as d:
            return _play(port, d, out, timeout)
    except RuntimeError as e:
        out(str(e))
        return False


def _play(port: int, d: Sparrowd, out, timeout: float) -> bool:
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
            p = d.ctl("peers")["peers"][0]
            if p["eor"]["ipv4"] and p["accepted"]["ipv4"] == 1:
                route = d.ctl("route", PREFIX)
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
