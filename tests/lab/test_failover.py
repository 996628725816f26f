"""POP failover on the BGP session alone (no health checks): the Super Sparrow lab
with the example configs minus their ``health`` section, so a POP is up while one of
its ``pop`` sessions is Established (the rule when no check covers a POP).

  * POP Y's sparrowd killed: within hold time + 1 s X answers the client in C with
    itself (graceful restart keeps Y's routes stale, so the ranking still says Y, but
    Y is down); restarted: X answers Y again.
  * POP Y silent (SIGSTOP, or every X<->Y packet dropped at B): X's hold timer notices
    within hold time + 1 s and X answers itself; Y back: Y again.

With the example's checks, the same deaths of Y's sparrowd do not move Y's clients
(its web servers are fine): test_super_sparrow.py and test_graceful_restart.py.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

import harness
import super_sparrow_lab as ssl
from super_sparrow_lab import ANSWERS, X4, X6, Y4, Y6
from test_super_sparrow import HOLD_TIME, PEERS, _ecs, actual_paths, expected_paths, lookup_matches, module_env

pytestmark = pytest.mark.sparrowd


def _without_health(pop: str, text: str) -> str:
    """The example config with its ``health`` section removed."""
    out = re.sub(r"^health:\n(?:[ \t]+.*\n|\n)*", "", text, flags=re.M)
    assert not re.search(r"^health:", out, re.M)
    return out


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    yield from module_env(request, tmp_path_factory, "spfail", lambda lab: {"edit": _without_health})


def test_pop_y_failover(env):
    """Kill POP Y's sparrowd: within hold time + 1 s X answers the client in C with itself;
    restart it: X answers Y again."""
    cc, spx, spy = env.ns["cc"], env.sp["x"], env.sp["y"]
    a = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y")
    a6 = next(a for a in env.clients["c"] if a.version == 6 and env.model.ranking("x", a)[0] == "y")
    assert set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS["y"]["A"]

    t0 = time.monotonic()
    spy.proc.kill()
    harness.wait_until(lambda: set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS["x"]["A"],
                      HOLD_TIME + 1 - (time.monotonic() - t0), interval=0.1,
                      desc="X answering itself for a client in C after POP Y's sparrowd died")
    assert set(ssl.dig_query(cc, X6, "AAAA", _ecs(a6)).addrs) == ANSWERS["x"]["AAAA"]
    st = {p["name"]: p["state"] for p in spx.peers()}
    assert st["y4"] != "Established" and st["y6"] != "Established", st

    spy.start().wait_ready()
    spx.wait_established(*PEERS["x"], timeout=60)
    harness.wait_until(lambda: set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS["y"]["A"], 60,
                      interval=0.2, desc="X answering Y again after POP Y's sparrowd restarted")
    harness.wait_until(lambda: set(ssl.dig_query(cc, X6, "AAAA", _ecs(a6)).addrs) == ANSWERS["y"]["AAAA"], 30,
                      interval=0.2, desc="X answering Y (AAAA) again")
    # and the whole steering is back to the model
    harness.wait_equal(lambda: actual_paths(spx), expected_paths(env, "x"), 60, desc="X's paths after restart")
    harness.wait_until(lambda: lookup_matches(env, "x"), 30, interval=0.5, desc="X's steering after restart")


HOLD_EXPIRED = re.compile(r"^sent NOTIFICATION Hold Timer Expired\b")


def _answers(cc, a, a6, pop: str) -> bool:
    return set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS[pop]["A"] and \
        set(ssl.dig_query(cc, X6, "AAAA", _ecs(a6)).addrs) == ANSWERS[pop]["AAAA"]


def _partition(b: harness.Netns, on: bool) -> None:
    """Silently drop X<->Y packets in transit at B (policy rules with the blackhole
    action: no ICMP, no RST); everything else, the client's queries too, still flows."""
    for fam, src, dst in (("-4", X4, Y4), ("-4", Y4, X4), ("-6", X6, Y6), ("-6", Y6, X6)):
        b.run(["ip", fam, "rule", "add" if on else "del", "from", src, "to", dst, "pref", "100", "blackhole"],
              check=on)  # removing: best effort (a failed add must not hide the first error)


@pytest.mark.parametrize("how", ["sigstop", "partition"])
def test_pop_y_silent_death_hold_timer(env, how):
    """POP Y goes silent: its sparrowd SIGSTOPped (``sigstop``: Y's kernel still ACKs, but
    no KEEPALIVE, no FIN/RST) or every X<->Y packet dropped at B (``partition``). Only
    X's hold timer can notice: within hold time + 1 s of the freeze X answers the client
    in C with itself, and its sessions to Y have left Established with the Hold Timer
    Expired NOTIFICATION it sent as last error. Y back (SIGCONT / rules removed): the
    sessions re-establish and X answers Y again."""
    cc, spx, spy = env.ns["cc"], env.sp["x"], env.sp["y"]
    a = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y")
    a6 = next(a for a in env.clients["c"] if a.version == 6 and env.model.ranking("x", a)[0] == "y")
    spx.wait_established(*PEERS["x"], timeout=60)
    harness.wait_until(lambda: _answers(cc, a, a6, "y"), 60, interval=0.2, desc="X answering Y before the freeze")
    peers = {p["name"]: p for p in spx.peers()}
    for n in ("y4", "y6"):
        assert peers[n]["hold_time"] and peers[n]["hold_time"] <= HOLD_TIME, peers[n]

    if how == "sigstop":
        freeze = lambda: os.kill(spy.proc.pid, signal.SIGSTOP)  # noqa: E731
        thaw = lambda: os.kill(spy.proc.pid, signal.SIGCONT)  # noqa: E731
    else:
        freeze = lambda: _partition(env.ns["b"], True)  # noqa: E731
        thaw = lambda: _partition(env.ns["b"], False)  # noqa: E731
    frozen_at = int(time.time())
    t0 = time.monotonic()
    freeze()
    try:
        harness.wait_until(lambda: _answers(cc, a, a6, "x"), HOLD_TIME + 1 - (time.monotonic() - t0),
                          interval=0.1, desc=f"X answering itself for a client in C after POP Y went silent ({how})")
        peers = {p["name"]: p for p in spx.peers()}
        for n in ("y4", "y6"):
            p = peers[n]
            assert p["state"] != "Established", p
            assert HOLD_EXPIRED.match(p["last_error"] or "") and p["last_error_at"] >= frozen_at, p
        assert spy.proc.alive()
    finally:
        thaw()

    spx.wait_established(*PEERS["x"], timeout=120)
    spy.wait_established(*PEERS["y"], timeout=120)
    harness.wait_until(lambda: _answers(cc, a, a6, "y"), 60, interval=0.2, desc=f"X answering Y again ({how})")
    for pop in ("x", "y"):
        harness.wait_equal(lambda: actual_paths(env.sp[pop]), expected_paths(env, pop), 60,
                          desc=f"POP {pop}'s paths after Y came back ({how})")
        harness.wait_until(lambda: lookup_matches(env, pop), 30, interval=0.5,
                          desc=f"POP {pop}'s steering after Y came back ({how})")
