"""`sparrowctl drain|undrain|pops` and drain marks in `explain`, against a running sparrowd.

One loopback daemon with two POPs: `x` (local) and `y`, whose sparrowd is played by a
raw BGP speaker on loopback (a `pop` session; while it is Established POP `y` is up).
Nothing sends End-of-RIB, so answers come from the `steering.fallback` map:
127.0.0.0/8 ranks `x` first, 198.51.100.0/24 ranks `y` first.

Drains are operator state: they change which POP answers (DNS, and `lookup`, which
uses the same pick), never the ranking (`explain`). They are saved in the daemon's
state file and survive a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest

import rawbgp as rb
from harness import ctl_out as _ctl
from harness import sparrowctl as _run
from harness import free_port, loopback_sparrowd, sparrow_config, sparrow_peer, wait_until

pytestmark = pytest.mark.sparrowd

POPS = {"x": 64999, "y": 65020}
Y_ADDR = "127.0.4.2"  # where the raw "sparrowd of POP y" connects from
ZONE = "example.test"
ANSWERS = {"x": "192.0.2.10", "y": "192.0.2.20"}
X_FIRST, Y_FIRST = "127.0.0.1", "198.51.100.7"


def _pops(sock) -> dict:
    return {p["name"]: p for p in json.loads(_ctl(sock, "--json", "pops"))["pops"]}


def _config(bgp_port: int, dns_port: int | None) -> dict:
    cfg = sparrow_config(POPS["x"], "192.0.2.1",
                         [sparrow_peer("pop-y", Y_ADDR, POPS["y"], "pop", passive=True, multihop=64)],
                         pop="x", pops=POPS, listen=["127.0.0.1"], port=bgp_port, log_format="json",
                         steering={"default_pop": "x",
                                   "fallback": [{"prefix": "127.0.0.0/8", "pop": "x"},
                                                {"prefix": "198.51.100.0/24", "pop": "y"}]})
    if dns_port is not None:
        cfg["dns"] = {"listen": [f"127.0.0.1:{dns_port}"]}
        cfg["zones"] = [{"origin": ZONE, "soa": {"mname": f"ns1.{ZONE}", "rname": f"hostmaster.{ZONE}"},
                         "ns": [f"ns1.{ZONE}"],
                         "steered": [{"name": "www", "ttl": 30,
                                      "pops": {p: {"a": [a]} for p, a in ANSWERS.items()}}]}]
    return cfg


@contextmanager
def _started(tmp_path, dns_port: int | None = None):
    """sparrowd with POP y's session Established (a raw speaker); yields the admin socket."""
    port = free_port()
    with loopback_sparrowd(tmp_path, _config(port, dns_port)) as d:
        peer = rb.RawBgp.connect("127.0.0.1", port, source=Y_ADDR)
        try:
            peer.establish(asn=POPS["y"], hold=90, router_id="10.0.4.2")
            wait_until(lambda: _pops(d.socket)["y"]["up"], timeout=15, desc="POP y up")
            yield d.socket
        finally:
            peer.close()


@pytest.fixture
def daemon(tmp_path):
    with _started(tmp_path) as sock:
        yield sock


def test_drain_round_trip_in_pops(daemon, tmp_path):
    p = _pops(daemon)
    rest = {"forced": "auto", "load": 0.0, "manual_load": None, "low": 0.8, "high": 1.0,
            "forced_addresses": []}
    assert p == {
        "x": {"name": "x", "asn": POPS["x"], "local": True, "up": True, "monitored": False, "drained": False,
              "usable": True, **rest},
        "y": {"name": "y", "asn": POPS["y"], "local": False, "up": True, "monitored": True, "drained": False,
              "usable": True, **rest},
    }
    rows = [line.split() for line in _ctl(daemon, "pops").splitlines()]
    assert rows == [["POP", "ASN", "Local", "Up", "Forced", "Drained", "Load", "Low-High", "Answers"],
                    ["x", str(POPS["x"]), "yes", "yes", "-", "no", "0.00", "0.80-1.00", "yes"],
                    ["y", str(POPS["y"]), "no", "yes", "-", "no", "0.00", "0.80-1.00", "yes"]]

    r = json.loads(_ctl(daemon, "--json", "drain", "y"))
    assert r["pop"] == "y" and r["was_drained"] is False and r["drained"] is True
    assert r["changed"] is True
    p = _pops(daemon)
    assert p["y"]["drained"] is True and p["y"]["usable"] is False and p["y"]["up"] is True
    assert p["x"]["drained"] is False
    rows = [line.split() for line in _ctl(daemon, "pops").splitlines()]
    assert rows[2] == ["y", str(POPS["y"]), "no", "yes", "-", "yes", "0.00", "0.80-1.00", "no"]

    # Again: no change, and the reply says it was already drained.
    assert _ctl(daemon, "drain", "y") == "POP y: drained (was already drained)\n"

    assert _ctl(daemon, "undrain", "y") == "POP y: not drained (was drained)\n"
    assert _pops(daemon)["y"]["drained"] is False
    r = json.loads(_ctl(daemon, "--json", "undrain", "y"))
    assert (r["was_drained"], r["drained"], r["changed"]) == (False, False, False)

    # The local POP can be drained too.
    assert _ctl(daemon, "drain", "x") == "POP x: drained (was not drained)\n"
    assert _pops(daemon)["x"]["drained"] is True
    _ctl(daemon, "undrain", "x")

    # Every drain and undrain is logged at info with the POP, the states and who asked.
    def drains():
        out = []
        for line in (tmp_path / "sparrowd.log").read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            f = rec.get("fields", {})
            if "admin " in f.get("message", "") and "pop" in f:
                out.append((rec["level"], f["pop"], f["drained"], f["was_drained"], f))
        return out

    logged = wait_until(lambda: len(drains()) == 6 and drains(), timeout=10, desc="drain logs")
    assert [x[:4] for x in logged] == [
        ("INFO", "y", True, False), ("INFO", "y", True, True), ("INFO", "y", False, True),
        ("INFO", "y", False, False), ("INFO", "x", True, False), ("INFO", "x", False, True),
    ]
    f = logged[0][4]
    assert f["message"] == "admin drain: POP y is drained (was not drained)"
    assert f["uid"] == os.getuid() and f["pid"] > 0 and isinstance(f["by"], str)


def test_unknown_pop_is_an_error(daemon):
    for cmd in ("drain", "undrain"):
        r = _run(daemon, cmd, "nowhere")
        assert r.returncode != 0
        assert "no POP named \"nowhere\"" in r.stderr and "known: x, y" in r.stderr, r.stderr
        assert r.stdout == ""
    r = _run(daemon, "--json", "drain", "nowhere")
    assert r.returncode != 0 and "known: x, y" in r.stderr
    assert not any(p["drained"] for p in _pops(daemon).values())


def test_drain_keeps_rankings_and_explain_marks_it(daemon):
    addrs = [X_FIRST, Y_FIRST, "203.0.113.9", "2001:db8::1"]

    def rankings():
        out = _ctl(daemon, "lookup", stdin="\n".join(addrs) + "\n").splitlines()
        exp = {a: json.loads(_ctl(daemon, "--json", "explain", a)) for a in addrs}
        return out, exp

    look0, exp0 = rankings()
    assert look0 == ["x", "y", "x", "x"]
    assert exp0[Y_FIRST]["ranking"] == ["y", "x"]
    assert exp0[Y_FIRST]["ranking_state"] == [
        {"pop": "y", "local": False, "up": True, "drained": False},
        {"pop": "x", "local": True, "up": True, "drained": False},
    ]
    assert "Ranking:    y > x\n" in _ctl(daemon, "explain", Y_FIRST)
    # Before any End-of-RIB the fallback map decides, and explain says so.
    assert exp0[Y_FIRST]["source"] == "fallback"
    assert exp0[Y_FIRST]["rule"] == \
        "steering.fallback (the RIB is not used yet): 198.51.100.0/24 ranks y first"
    assert "no entry covers 2001:db8::1, the default POP (x) first" in exp0["2001:db8::1"]["rule"]

    _ctl(daemon, "drain", "y")
    try:
        look1, exp1 = rankings()
        # lookup is the DNS pick: y drained, its clients go to x
        assert look1 == ["x", "x", "x", "x"]
        for a in addrs:
            assert exp1[a]["ranking"] == exp0[a]["ranking"], a
            assert exp1[a]["prefix"] == exp0[a]["prefix"], a
            assert exp1[a]["generation"] == exp0[a]["generation"], a
            assert [p["drained"] for p in exp1[a]["ranking_state"]] == \
                [p == "y" for p in exp1[a]["ranking"]], a
        assert "Ranking:    y [drained] > x\n" in _ctl(daemon, "explain", Y_FIRST)
        assert "Ranking:    x > y [drained]\n" in _ctl(daemon, "explain", X_FIRST)
        # The answers key is always there (a list; empty without zones).
        assert exp1[X_FIRST]["answers"] == []
        assert "Answers:    no steered names configured" in _ctl(daemon, "explain", X_FIRST)
    finally:
        _ctl(daemon, "undrain", "y")
    look2, exp2 = rankings()
    assert look2 == look0
    assert exp2[Y_FIRST]["ranking_state"] == exp0[Y_FIRST]["ranking_state"]


def test_drain_survives_restart(tmp_path):
    with _started(tmp_path) as sock:
        r = json.loads(_ctl(sock, "--json", "drain", "x"))
        assert r["saved"] is True and r["save_error"] is None, r
        assert _pops(sock)["x"]["drained"] is True
    # the same daemon directory (state file) again: still drained
    with _started(tmp_path) as sock:
        assert _pops(sock)["x"]["drained"] is True
        assert not _pops(sock)["y"]["drained"]
        _ctl(sock, "undrain", "x")
    with _started(tmp_path) as sock:
        assert not any(p["drained"] for p in _pops(sock).values())


def _dig(port: int) -> list[str]:
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "-b", X_FIRST, f"www.{ZONE}",
                        "A", "+short", "+tries=1", "+time=2"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    return sorted(r.stdout.split())


def test_drain_moves_dns_answers_to_the_next_pop(tmp_path):
    if not shutil.which("dig"):
        pytest.fail("dig missing (apt-get install bind9-dnsutils)")
    dns_port = free_port()
    with _started(tmp_path, dns_port) as sock:
        # 127.0.0.1 ranks x first: x answers while it is usable.
        assert wait_until(lambda: _dig(dns_port) == [ANSWERS["x"]], timeout=15,
                          desc="DNS answers with POP x")
        e = json.loads(_ctl(sock, "--json", "explain", X_FIRST))
        www = [a for a in e["answers"] if a["rtype"] == "A"]
        assert [(a["name"], a["pop"], a["addresses"], a["ttl"], a["skipped"]) for a in www] == \
            [(f"www.{ZONE}.", "x", [ANSWERS["x"]], 30, [])]

        _ctl(sock, "drain", "x")
        assert _dig(dns_port) == [ANSWERS["y"]]
        e = json.loads(_ctl(sock, "--json", "explain", X_FIRST))
        assert e["ranking"] == ["x", "y"]
        www = [a for a in e["answers"] if a["rtype"] == "A"]
        assert [(a["pop"], a["addresses"], a["skipped"]) for a in www] == \
            [("y", [ANSWERS["y"]], [["x", "drained"]])]
        t = _ctl(sock, "explain", X_FIRST)
        assert f"www.{ZONE}." in t and ANSWERS["y"] in t and "x: drained" in t

        _ctl(sock, "undrain", "x")
        assert _dig(dns_port) == [ANSWERS["x"]]
