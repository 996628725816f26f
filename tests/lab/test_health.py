"""Health checks in the Super Sparrow lab: each POP's steered addresses (two A, two
AAAA) served by a real nginx behind its sparrowd (see super_sparrow_lab.add_web);
both sparrowd check every address of both POPs with the example's ``http`` check
(interval 1 s, fall 3, rise 2), plus, here, an ``https`` check against nginx with an
openssl self-signed certificate and a ``file`` check (an external monitor's file).

Asserted (C's client ranks Y first at both POPs):
  * ``sparrowctl health`` lists every target of both POPs, up, each check's last
    result ``ok`` (the https check too);
  * Y's nginx stopped: X and Y both answer X to C's client within interval x fall + 1 s,
    and ``sparrowctl health`` says why; started again: Y within interval x rise + 1 s;
  * Y's nginx flapping (down 0.8 s, up 1.5 s: at most one failed check in a row, fall
    is 3) never changes the answer, and the check's state never changed;
  * one of Y's addresses removed: ``sparrowctl health`` shows that target down and
    POP Y still up, and answers carry only the other address;
  * the monitor file saying ``y DOWN`` moves C's client to X; ``y UP`` moves it back;
  * POP Y's load figure polled from its nginx (``pops[].capacity.url``) shows in
    ``sparrowctl health``, and goes stale (0) when the URL fails.
"""
from __future__ import annotations

import time

import pytest

import harness
import super_sparrow_lab as ssl
from super_sparrow_lab import ANSWERS, X4, Y4
from test_super_sparrow import module_env

pytestmark = pytest.mark.sparrowd

# the example's http check (bgp-configs/super-sparrow/pop-*.yaml)
INTERVAL, FALL, RISE = 1.0, 3, 2
MONITOR = "monitor"  # the file check's file, in the lab's workdir


def _edit(workdir):
    def edit(pop: str, text: str) -> str:
        anchor = "      jitter: 0.1\n"
        assert text.count(anchor) == 1
        extra = (f"    - name: tls\n      type: https\n      port: 443\n      path: /health\n"
                 f"      host: www.example.test\n      interval: 1\n      timeout: 0.5\n"
                 f"    - name: monitor\n      type: file\n      file: {workdir / MONITOR}\n"
                 f"      interval: 0.5\n      timeout: 0.2\n      rise: 1\n      fall: 1\n")
        y = "  - name: y\n    asn: 65002\n"
        assert text.count(y) == 1
        cap = ("    capacity:\n      url: http://203.0.113.20/load\n      interval: 1\n      timeout: 0.5\n"
               "      smoothing: 0.5\n")
        return text.replace(anchor, anchor + extra).replace(y, y + cap)
    return edit


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    def kwargs(lab):
        cert, key = harness.self_signed(lab.workdir, "www.example.test")
        return {"edit": _edit(lab.workdir), "tls": {p: (cert, key, 443) for p in ("x", "y")}}
    yield from module_env(request, tmp_path_factory, "shealth", kwargs)


def _client(env):
    """An IPv4 client in C that ranks Y first at X (and so at Y)."""
    a = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y"
             and env.model.ranking("y", a)[0] == "y")
    return f"{a}/32"


def _answer(env, server: str, ecs: str) -> set:
    return set(ssl.dig_query(env.ns["cc"], server, "A", ecs).addrs)


def _both(env, ecs: str, want: set) -> bool:
    return _answer(env, X4, ecs) == want and _answer(env, Y4, ecs) == want


def _health(sp) -> dict:
    return sp.ctl_json("health")


def _target(h: dict, addr: str) -> dict:
    return next(t for t in h["targets"] if t["address"] == addr)


def _all_up(sp) -> bool:
    h = _health(sp)
    return all(t["up"] and all(c["state"] in ("up", None) for c in t["checks"]) for t in h["targets"])


def test_health_lists_every_target_up_with_https(env):
    for pop in ("x", "y"):
        sp = env.sp[pop]
        harness.wait_until(lambda: all(c["last"] == "ok" for t in _health(sp)["targets"] for c in t["checks"]
                                       if c["name"] in ("web", "tls")), 15, interval=0.5,
                          desc=f"{pop}: every http and https check ok")
        h = _health(sp)
        want = {a for p in ("x", "y") for fam in ("A", "AAAA") for a in ANSWERS[p][fam]}
        assert {t["address"] for t in h["targets"]} == want, h
        for t in h["targets"]:
            assert t["up"] and t["checks_up"] and t["pop_up"] and t["forced"] == "auto", t
            names = [c["name"] for c in t["checks"]]
            assert names == ["web", "tls", "monitor"], t
            web = t["checks"][0]
            assert web["state"] == "up" and web["type"] == "http" and web["consecutive"] >= 1, t
            # the monitor file does not exist: no result, the target keeps its state
            assert t["checks"][2]["last"] is None and t["checks"][2]["state"] is None, t
        assert [load["pop"] for load in h["loads"]] == ["x", "y"]
    text = env.sp["x"].ctl("health", as_json=False)
    assert "web (http)" in text and "203.0.113.21" in text and "2001:db8:ff::11" in text, text


def test_stop_y_web_fails_over_to_x_and_back(env):
    ecs = _client(env)
    assert _both(env, ecs, ANSWERS["y"]["A"])
    web = env.webs["y"]
    t0 = time.monotonic()
    web.stop()
    try:
        harness.wait_until(lambda: _both(env, ecs, ANSWERS["x"]["A"]),
                           INTERVAL * FALL + 1 - (time.monotonic() - t0), interval=0.1,
                           desc="X and Y answering X for C's client after Y's nginx stopped")
        # the POP goes down when fewer than half its targets are up; each target
        # goes down on its own third failure (jitter: up to 1.1 s apart)
        harness.wait_until(lambda: all(not t["up"] for pop in ("x", "y") for t in _health(env.sp[pop])["targets"]
                                       if t["pop"] == "y"), INTERVAL * 1.1 * FALL + 1, interval=0.2,
                           desc="every target of Y down at X and Y")
        for pop in ("x", "y"):
            h = _health(env.sp[pop])
            t = _target(h, "203.0.113.20")
            assert not t["up"] and not t["pop_up"], t
            # the http or the https check, whichever counted to fall first
            assert t["detail"].startswith("tcp connect refused x"), t
            assert any(c["state"] == "down" and c["last"] == "tcp connect refused" for c in t["checks"]), t
            assert _target(h, "203.0.113.10")["up"]
    finally:
        t0 = time.monotonic()
        web.start()
    harness.wait_until(lambda: _both(env, ecs, ANSWERS["y"]["A"]),
                       INTERVAL * RISE + 1 - (time.monotonic() - t0), interval=0.1,
                       desc="X and Y answering Y again after Y's nginx started")
    harness.wait_until(lambda: _all_up(env.sp["x"]) and _all_up(env.sp["y"]), 10, interval=0.5,
                       desc="every target up again")


def _flap(env, ecs: str, web, cycles: int = 8) -> int:
    """Stop ``web`` for 0.8 s, run it for 1.5 s, ``cycles`` times (bounded: ~2.3 s each),
    asserting the answer throughout; returns how many polls saw X's http check of
    203.0.113.20 last failed. Checks come every 0.9-1.1 s: at most one falls in a down
    window and at least one in each up window, so never two failures in a row."""
    failed_seen = 0
    for _ in range(cycles):
        web.stop()
        down_until = time.monotonic() + 0.8
        while time.monotonic() < down_until:
            assert _answer(env, X4, ecs) == ANSWERS["y"]["A"]
            c = _target(_health(env.sp["x"]), "203.0.113.20")["checks"][0]
            failed_seen += c["last"] != "ok"
            time.sleep(0.05)
        web.start()
        up_until = time.monotonic() + 1.5
        while time.monotonic() < up_until:
            assert _answer(env, X4, ecs) == ANSWERS["y"]["A"]
            assert _answer(env, Y4, ecs) == ANSWERS["y"]["A"]
            time.sleep(0.1)
        c = _target(_health(env.sp["x"]), "203.0.113.20")["checks"][0]
        assert c["state"] == "up", c
    return failed_seen


def test_flapping_faster_than_fall_never_changes_the_answer(env):
    ecs = _client(env)
    harness.wait_until(lambda: _all_up(env.sp["x"]) and _all_up(env.sp["y"]), 10, interval=0.5,
                       desc="every target up before flapping")
    web = env.webs["y"]
    t0 = time.monotonic()
    try:
        failed_seen = _flap(env, ecs, web)
    finally:
        if not web.alive():
            web.start()
    elapsed = time.monotonic() - t0
    assert failed_seen, "the check never ran while the server was down: the test proves nothing"
    # the state never changed: its last change is older than the flapping
    for pop in ("x", "y"):
        c = _target(_health(env.sp[pop]), "203.0.113.20")["checks"][0]
        assert c["state"] == "up" and c["since_change_secs"] >= elapsed, (pop, c, elapsed)


def test_one_address_down_shows_in_health_answers_carry_only_the_other(env):
    ecs = _client(env)
    w = env.ns["wy"]
    gone = "203.0.113.21"
    w.run(["ip", "addr", "del", f"{gone}/32", "dev", "lo"])
    try:
        harness.wait_until(lambda: not _target(_health(env.sp["x"]), gone)["up"], INTERVAL * FALL + 3,
                           interval=0.2, desc=f"X sees {gone} down")
        h = _health(env.sp["x"])
        t = _target(h, gone)
        assert t["pop_up"] and t["detail"], t
        assert _target(h, "203.0.113.20")["up"]
        pops = {p["name"]: p for p in env.sp["x"].ctl_json("pops")["pops"]}
        assert pops["y"]["up"], pops
        assert _answer(env, X4, ecs) == {"203.0.113.20"}, "POP Y answers with its address that is up"
    finally:
        w.run(["ip", "addr", "add", f"{gone}/32", "dev", "lo"])
    harness.wait_until(lambda: _target(_health(env.sp["x"]), gone)["up"], INTERVAL * RISE + 3, interval=0.2,
                       desc=f"X sees {gone} up again")
    harness.wait_until(lambda: _answer(env, X4, ecs) == ANSWERS["y"]["A"], INTERVAL * RISE + 3, interval=0.2,
                       desc="both of Y's addresses answered again")


def test_monitor_file_moves_the_answer(env):
    ecs = _client(env)
    f = env.lab.workdir / MONITOR
    harness.wait_until(lambda: _both(env, ecs, ANSWERS["y"]["A"]), 10, interval=0.2, desc="Y answering")
    try:
        f.write_text("# external monitor\ny DOWN\n")
        harness.wait_until(lambda: _both(env, ecs, ANSWERS["x"]["A"]), 3, interval=0.1,
                           desc="X for C's client after the monitor said y DOWN")
        t = _target(_health(env.sp["x"]), "203.0.113.20")
        assert t["detail"] == "file DOWN" and t["checks"][2]["state"] == "down", t
        f.write_text("y UP\n")
        harness.wait_until(lambda: _both(env, ecs, ANSWERS["y"]["A"]), 3, interval=0.1,
                           desc="Y again after the monitor said y UP")
    finally:
        f.write_text("")


def test_load_url_polled_and_stale_when_it_fails(env):
    def load(pop: str) -> dict:
        return next(l for l in _health(env.sp[pop])["loads"] if l["pop"] == "y")
    for pop in ("x", "y"):
        harness.wait_until(lambda: load(pop)["measured"] is not None, 5, interval=0.2, desc=f"{pop}: Y's load")
        ld = load(pop)
        assert ld["source"] == "http://203.0.113.20/load" and abs(ld["measured"] - 0.25) < 1e-6, ld
        assert abs(ld["load"] - 0.25) < 1e-6 and ld["error"] is None, ld
        assert load(pop)["pop"] == "y" and all(l["source"] is None for l in _health(env.sp[pop])["loads"]
                                               if l["pop"] == "x")
    web = env.webs["y"]
    web.stop()
    try:
        # stale_after defaults to 3 x interval: then no figure (counts as 0)
        harness.wait_until(lambda: load("x")["measured"] is None, 3 * INTERVAL + 2.5, interval=0.2,
                           desc="Y's load stale at X")
        ld = load("x")
        assert ld["load"] == 0 and ld["error"] == "tcp connect refused", ld
    finally:
        web.start()
    harness.wait_until(lambda: load("x")["measured"] is not None, 5, interval=0.2, desc="Y's load back")
