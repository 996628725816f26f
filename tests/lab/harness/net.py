"""Polling, bounded commands and local ports: the small utilities every lab module uses.

  wait_until(fn, timeout, interval, desc)   fn's first truthy value, else TimeoutError
  wait_equal(fn, expected, ...)             until fn() == expected, else AssertionError (set diff)
  run(argv, check, timeout, input)          one bounded command, text output
  free_port(addr)                           a free TCP port on a loopback address (v4 or v6)
  v6_loopback()                             whether ::1 can be bound here
  listening(port, argv_prefix)              a TCP listener on ``port`` (``ss``)

Talks to nothing but the local kernel (sockets bound to loopback, ``ss``).
"""
from __future__ import annotations

import shlex
import socket
import subprocess
import time
from typing import Any, Callable, Sequence


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


def run(argv: Sequence[str], check: bool = True, timeout: float = 30.0,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (bounded), capture text output; raise with output on failure."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {shlex.join(argv)}\n"
                           f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def free_port(addr: str = "127.0.0.1") -> int:
    """A port free at ``addr`` right now for both TCP and UDP (IPv4 or IPv6 loopback).
    UDP too: a DNS server binds both, and its SO_REUSEPORT UDP sockets would share a
    port with another same-user SO_REUSEPORT socket still bound there (a server of an
    earlier test shutting down), splitting the queries between the two."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for _ in range(100):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
            with socket.socket(fam, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((addr, port))
                except OSError:
                    continue
            return port
    raise OSError(f"no port free for both TCP and UDP at {addr}")


def v6_loopback() -> bool:
    """True when ::1 can be bound (IPv6 enabled on lo)."""
    try:
        free_port("::1")
        return True
    except OSError:
        return False


def listening(port: int, argv_prefix: Sequence[str] = ()) -> bool:
    """A TCP socket listens on ``port`` (``argv_prefix`` runs ``ss`` inside a namespace)."""
    r = subprocess.run([*argv_prefix, "ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                       text=True, timeout=5)
    return bool(r.stdout.strip())
