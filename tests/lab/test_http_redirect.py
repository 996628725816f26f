"""The HTTP redirector (`http.listen`) against a running sparrowd, on loopback.

Three POPs, each with a url: `x` (local), `y` (up: a raw BGP speaker on
127.0.4.2 plays its sparrowd over a `pop` session) and `z` (down: its session never comes up).
The static `steering.fallback` map answers (the configured upstream never
connects, so the map stays the source). Clients are real `curl` and Python
sockets; `trusted_proxies` holds 127.0.0.1/32 only, so a client bound to
127.0.0.2 is an untrusted source.

The expected POP of every request is not written down: it is the daemon's own
ranking (`sparrowctl explain`, cross-checked with `sparrowctl lookup`), then the
first POP that is usable (up and not drained, as `sparrowctl pops` reports), else
the first with a url.
"""

from __future__ import annotations

import json
import socket
import subprocess
from functools import partial
from pathlib import Path

import pytest

import rawbgp as rb
from harness import free_port, loopback_sparrowd, sparrow_config, sparrow_peer, sparrowctl, v6_loopback, wait_until

_ctl = partial(sparrowctl, check=True)

pytestmark = pytest.mark.sparrowd

LOCAL_ASN = 64999
POPS = {"x": LOCAL_ASN, "y": 65010, "z": 65020}
URLS = {"x": "https://x.example.net", "y": "https://y.example.net/base/",
        "z": "http://z.example.net:8080"}
FALLBACK = {"198.51.100.0/24": "y", "203.0.113.0/24": "z", "192.0.2.0/24": "x",
            "127.0.0.2/32": "y", "2001:db8:10::/48": "y"}
UP_ADDR, UP_ASN = "127.0.4.1", 64700     # configured upstream: never connects
POPY_ADDR = "127.0.4.2"                  # plays POP y's sparrowd
POPZ_ADDR = "127.0.4.3"                  # POP z's configured session: never connects

Y_ADDR, Z_ADDR, X_ADDR = "198.51.100.7", "203.0.113.9", "192.0.2.77"


class Redirector:
    """The running daemon as the HTTP tests see it: admin socket, HTTP ports, drains."""

    def __init__(self, sock: str, port: int, port6: int | None, workdir: Path):
        self.sock, self.port, self.port6, self.workdir = sock, port, port6, workdir
        self.drained: set[str] = set()

    def up(self) -> set[str]:
        peers = json.loads(_ctl(self.sock, "--json", "peers").stdout)["peers"]
        est = {p["name"] for p in peers if str(p.get("state", "")).lower() == "established"}
        return {"x"} | ({"y"} if "py" in est else set())

    def usable(self) -> set[str]:
        """POPs answers may use: the daemon's own view (`sparrowctl pops`) when it
        has that command, else up (sessions) minus what this test drained."""
        r = _ctl(self.sock, "--json", "pops", check=False)
        if r.returncode == 0:
            return {p["name"] for p in json.loads(r.stdout)["pops"] if p["usable"]}
        return self.up() - self.drained

    def expected(self, addr: str) -> str:
        """The POP the redirector must choose for client `addr`, from the daemon's ranking."""
        ranking = json.loads(_ctl(self.sock, "--json", "explain", addr).stdout)["ranking"]
        picked = _ctl(self.sock, "lookup", stdin=addr + "\n").stdout.strip()
        assert sorted(ranking) == sorted(POPS)
        usable_now = self.usable()
        # lookup is the same pick with every POP serving (URLs ignored)
        assert picked == next((p for p in ranking if p in usable_now), ranking[0]), (addr, picked, ranking)
        usable = [p for p in ranking if p in usable_now and URLS[p]]
        return usable[0] if usable else next(p for p in ranking if URLS[p])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    bgp_port, port = free_port(), free_port()
    port6 = free_port("::1") if v6_loopback() else None
    listen = [f"127.0.0.1:{port}"] + ([f"[::1]:{port6}"] if port6 else [])
    config = sparrow_config(
        LOCAL_ASN, "192.0.2.1", [
            sparrow_peer("up", UP_ADDR, UP_ASN, passive=True, multihop=64),
            sparrow_peer("py", POPY_ADDR, POPS["y"], "pop", passive=True, multihop=64),
            # z's session is configured but never comes up: z is down (a POP with
            # no session at all would count as up: nothing watches it).
            sparrow_peer("pz", POPZ_ADDR, POPS["z"], "pop", passive=True, multihop=64)],
        pop="x", pops=[{"name": n, "asn": a, "url": URLS[n]} for n, a in POPS.items()],
        listen=["127.0.0.1"], port=bgp_port, log_level="info,sparrow::http=debug", log_format=None,
        steering={"fallback": [{"prefix": p, "pop": n} for p, n in FALLBACK.items()]},
        http={"listen": listen, "trusted_proxies": ["127.0.0.1/32"]})
    with loopback_sparrowd(tmp, config) as d:
        peer = rb.RawBgp.connect("127.0.0.1", bgp_port, source=POPY_ADDR)
        try:
            peer.establish(asn=POPS["y"], hold=90, router_id="10.0.4.2")
            lab = Redirector(d.socket, port, port6, tmp)
            wait_until(lambda: "y" in lab.up(), 15, desc="pop session py Established")

            def http_up():
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    return True
            wait_until(http_up, 10, desc="HTTP listener accepting")
            yield lab
        finally:
            peer.close()


def curl(lab: Redirector, path: str, *args: str, host: str = "127.0.0.1", port: int | None = None):
    """curl a path; returns (status, headers as lower-case dict, body bytes)."""
    hostport = f"[{host}]" if ":" in host else host
    r = subprocess.run(["curl", "-sS", "--path-as-is", "-g", "--max-time", "10", "-D", "-",
                        "-o", str(lab.workdir / "body"), *args,
                        f"http://{hostport}:{port or lab.port}{path}"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, (lab.workdir / "body").read_bytes()


def raw(port: int, data: bytes, host: str = "127.0.0.1", source: str | None = None) -> bytes:
    """Send bytes, read the whole response until the server closes."""
    with socket.create_connection((host, port), timeout=10,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def loc(pop: str, target: str) -> str:
    base = URLS[pop]
    return (base[:-1] if base.endswith("/") else base) + target


def test_get_and_head_redirect_keeping_path_and_query(lab):
    pop = lab.expected("127.0.0.1")
    target = "/a/b/../c%2Fd?x=1&y=a%20b&&z"
    st, h, body = curl(lab, target)
    assert st == 302
    assert h["location"] == loc(pop, target)
    assert h["x-sparrow-pop"] == pop
    assert h["cache-control"] == "no-store" and h["connection"] == "close"
    assert int(h["content-length"]) == len(body) > 0
    assert "date" in h
    st, hh, _ = curl(lab, target, "-I")
    assert st == 302 and hh["location"] == h["location"]
    assert hh["content-length"] == h["content-length"]
    # HEAD: the header block and nothing after it (read to the server's close).
    out = raw(lab.port, f"HEAD {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 302 Found\r\n") and out.endswith(b"\r\n\r\n")
    assert out.count(b"\r\n\r\n") == 1 and f"\r\nLocation: {h['location']}\r\n".encode() in out
    # The root, and a base URL with a path: one '/' where they meet.
    st, h, _ = curl(lab, "/", "-H", f"X-Forwarded-For: {Y_ADDR}")
    assert lab.expected(Y_ADDR) == "y", "POP y should be up and first for its prefix"
    assert h["location"] == "https://y.example.net/base/"


def test_other_methods_and_garbage(lab):
    for m in ("POST", "PUT", "DELETE", "OPTIONS"):
        st, h, _ = curl(lab, "/x", "-X", m, *(["--data-binary", "a" * 20000] if m == "POST" else []))
        assert st == 405 and h["allow"] == "GET, HEAD", m
    for bad, code in [
        (b"garbage\r\n\r\n", 400),
        (b"GET http://x.example.net/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),   # not origin-form
        (b"GET / HTTP/1.1\r\n\r\n", 400),                                 # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"\x00\xff\x16\x03\x01" * 10 + b"\r\n\r\n", 400),
    ]:
        out = raw(lab.port, bad)
        assert out.startswith(f"HTTP/1.1 {code} ".encode()), (bad[:40], out[:80])
        assert b"\r\nConnection: close\r\n" in out
    # The daemon is still answering.
    assert curl(lab, "/")[0] == 302


def test_xff_from_trusted_proxy_is_honoured(lab):
    own = lab.expected("127.0.0.1")
    for addr in (Y_ADDR, Z_ADDR, X_ADDR, "2001:db8:10::5"):
        want = lab.expected(addr)
        st, h, _ = curl(lab, "/p?q=1", "-H", f"X-Forwarded-For: {addr}")
        assert st == 302 and h["x-sparrow-pop"] == want, addr
        assert h["location"] == loc(want, "/p?q=1")
    # The decision changes with the forwarded address, not only the TCP source.
    assert lab.expected(Y_ADDR) != own
    # Right to left, skipping trusted proxies: "client, proxy" -> client.
    st, h, _ = curl(lab, "/", "-H", f"X-Forwarded-For: {X_ADDR}, {Y_ADDR}, 127.0.0.1")
    assert h["x-sparrow-pop"] == lab.expected(Y_ADDR)
    # Two fields are one list; IPv4-mapped IPv6 counts as IPv4.
    st, h, _ = curl(lab, "/", "-H", f"X-Forwarded-For: {X_ADDR}", "-H",
                    f"X-Forwarded-For: ::ffff:{Y_ADDR}")
    assert h["x-sparrow-pop"] == lab.expected(Y_ADDR)
    # An entry we cannot read: the field is ignored, the TCP source decides.
    st, h, _ = curl(lab, "/", "-H", f"X-Forwarded-For: {Y_ADDR}:443")
    assert h["x-sparrow-pop"] == own


def test_xff_from_untrusted_source_is_ignored(lab):
    own = lab.expected("127.0.0.2")
    assert own == "y" and lab.expected(X_ADDR) == "x"
    st, h, _ = curl(lab, "/u", "--interface", "127.0.0.2", "-H", f"X-Forwarded-For: {X_ADDR}")
    assert st == 302 and h["x-sparrow-pop"] == own and h["location"] == loc(own, "/u")
    out = raw(lab.port, f"GET /u HTTP/1.0\r\nX-Forwarded-For: {X_ADDR}\r\n\r\n".encode(),
              source="127.0.0.2")
    assert f"\r\nLocation: {loc(own, '/u')}\r\n".encode() in out


def test_down_pop_is_skipped(lab):
    # z's session is down: clients of z's prefix go to the next POP of their ranking.
    want = lab.expected(Z_ADDR)
    assert want != "z"
    st, h, _ = curl(lab, "/", "-H", f"X-Forwarded-For: {Z_ADDR}")
    assert h["x-sparrow-pop"] == want


def test_drained_pop_is_skipped(lab):
    r = _ctl(lab.sock, "drain", "--help", check=False)
    if r.returncode != 0:
        pytest.skip("`sparrowctl drain` does not exist yet (admin drain/undrain is being added)")
    before = lab.expected(Y_ADDR)
    assert before == "y"
    _ctl(lab.sock, "drain", "y")
    lab.drained.add("y")
    try:
        want = lab.expected(Y_ADDR)
        assert want != "y"
        st, h, _ = curl(lab, "/d", "-H", f"X-Forwarded-For: {Y_ADDR}")
        assert h["x-sparrow-pop"] == want and h["location"] == loc(want, "/d")
    finally:
        _ctl(lab.sock, "undrain", "y")
        lab.drained.discard("y")
    st, h, _ = curl(lab, "/d", "-H", f"X-Forwarded-For: {Y_ADDR}")
    assert h["x-sparrow-pop"] == "y"


def test_ipv6_listener(lab):
    if lab.port6 is None:
        pytest.skip("no ::1 on this host")
    want = lab.expected("::1")
    st, h, _ = curl(lab, "/six?x", host="::1", port=lab.port6)
    assert st == 302 and h["location"] == loc(want, "/six?x")


def test_slow_client_gets_408(lab):
    # Bounded by the server's 10 s head timeout; the socket timeout is a safety net.
    with socket.create_connection(("127.0.0.1", lab.port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    assert out.startswith(b"HTTP/1.1 408 ")
    # Several requests in a row on fresh connections still work.
    for i in range(5):
        assert curl(lab, f"/n{i}")[0] == 302
