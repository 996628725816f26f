"""Load shedding and operator state in the Super Sparrow lab (test_super_sparrow's topology).

The lab of ``test_super_sparrow.build`` (X - A - B - C - Y, BIRD in A, B, C, sparrowd in
X and Y, the example configs), with 2,000 more prefixes originated by network A: /24s
in 240.0.0.0/12, every other one, so that no two are adjacent and each is its own
steering range (its own ECS scope, its own shedding unit). They rank X first at X.

Asserted, querying X with dnspython from the client namespace in A, ECS = each prefix:
  * ``sparrowctl load x 0.9`` (low 0.8, high 1.0): 45-55 % of the prefixes answer Y
    (their next POP), with ``ttl_failover`` (10 s, the default for ttl 20), the rest X
    with the normal TTL;
  * at 0.95 a superset moves; at 1.0 all of them; ``load x auto``: none;
  * the ECS scope of every answer is the prefix (/24) and the model says the block is
    uniform; addresses sampled inside shed answers' scopes get the same answer;
  * ``sparrowctl force y down``, ``force y/ADDR up`` and ``sparrowctl drain x`` survive
    ``kill -TERM`` and a restart of X's sparrowd: the state file and ``pops`` show them,
    answers and ``explain`` follow them.
"""
from __future__ import annotations

import ipaddress
import json
import random
import time

import pytest

import harness
import super_sparrow_lab as ssl
import test_super_sparrow as tss
from super_sparrow_lab import ANSWERS, X4

pytestmark = pytest.mark.sparrowd

N_EXTRA = 2000
EXTRA = [ipaddress.ip_network((0xF0000000 + (2 * i << 8), 24)) for i in range(N_EXTRA)]
TTL, TTL_FAILOVER = 20, 10  # the example's www ttl; ttl_failover defaults to min(ttl, 10)


def _with_extra(orig):
    def pick(*a, **kw):
        p = orig(*a, **kw)
        p.by_net["a"] += [(n, None) for n in EXTRA]
        return p
    return pick


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    orig = ssl.pick_prefixes
    ssl.pick_prefixes = _with_extra(orig)
    try:
        yield from tss.module_env(request, tmp_path_factory, "spcap")
    finally:
        ssl.pick_prefixes = orig


def _pop_of(ans: ssl.Answer) -> str | None:
    """Which POP an A answer names (None: neither, or empty)."""
    got = set(ans.addrs)
    hits = [p for p in ("x", "y") if got and got <= ANSWERS[p]["A"] | _extra_addrs(p)]
    return hits[0] if len(hits) == 1 else None


def _extra_addrs(pop: str) -> set:
    # the example may list more than one address per POP: read them from its file
    text = (ssl.EXAMPLE / "pop-x.yaml").read_text()
    line = next((ln for ln in text.splitlines() if ln.strip().startswith(f"{pop}: {{a:")), "")
    return {a.strip(' "\'') for a in line.split("[", 1)[-1].split("]", 1)[0].split(",") if a.strip()}


def _ask(env, ecs_list: list[str]) -> list[ssl.Answer]:
    out = []
    for i in range(0, len(ecs_list), 500):
        out += ssl.py_queries(env.ns["ca"], [{"server": X4, "rtype": "A", "ecs": e}
                                             for e in ecs_list[i:i + 500]])
    return out


def _load(env, value: str) -> dict:
    r = env.sp["x"].ctl("load", "x", value)
    assert r["saved"] is True, r
    return r


def _moved(env) -> tuple[set, list]:
    """(prefixes answered with Y, the answers), checking POP, TTL and scope of each."""
    answers = _ask(env, [str(p) for p in EXTRA])
    moved = set()
    for p, a in zip(EXTRA, answers):
        pop = _pop_of(a)
        assert a.rcode == "NOERROR" and pop is not None, (p, a)
        assert a.scope == 24, (p, a)
        assert env.model.uniform("x", p.network_address, a.scope), p
        assert a.ttl == (TTL if pop == "x" else TTL_FAILOVER), (p, a)
        if pop == "y":
            moved.add(p)
    return moved, answers


def test_shedding_moves_a_growing_fraction_with_truthful_scopes(env):
    t0 = time.monotonic()
    assert all(env.model.ranking("x", p.network_address) == ("x", "y") for p in EXTRA)
    moved0, _ = _moved(env)
    assert moved0 == set()
    try:
        _load(env, "0.9")
        moved9, answers9 = _moved(env)
        share = len(moved9) / N_EXTRA
        assert 0.45 <= share <= 0.55, share
        # addresses inside a shed answer's scope get the same answer
        rng = random.Random(9)
        sample = rng.sample(sorted(moved9), 100) + rng.sample(sorted(set(EXTRA) - moved9), 50)
        inner = [(p, p.network_address + rng.randrange(1, 256)) for p in sample for _ in range(2)]
        got = _ask(env, [f"{a}/32" for _, a in inner])
        for (p, a), ans in zip(inner, got):
            assert _pop_of(ans) == ("y" if p in moved9 else "x"), (p, a, ans)
            assert ans.scope == 24, (p, a, ans)
        r = env.sp["x"].explain(sample[0].network_address + 1)
        www_a = next(s for s in r["answers"] if s["rtype"] == "A")
        assert www_a["pop"] == "y" and www_a["reason"] == "shed" and www_a["ttl"] == TTL_FAILOVER, www_a
        assert www_a["skipped"][0][0] == "x" and www_a["skipped"][0][1].startswith("shed (load 0.90, f=0.50"), www_a

        _load(env, "0.95")
        moved95, _ = _moved(env)
        assert moved9 <= moved95 and 0.70 <= len(moved95) / N_EXTRA <= 0.80, len(moved95)

        _load(env, "1")
        moved1, _ = _moved(env)
        assert moved1 == set(EXTRA)
    finally:
        _load(env, "auto")
    moved_auto, _ = _moved(env)
    assert moved_auto == set()
    print(f"capacity: moved at 0.9 {len(moved9)}, at 0.95 {len(moved95)} of {N_EXTRA}; "
          f"{time.monotonic() - t0:.1f} s")


def _pops(env) -> dict:
    return {p["name"]: p for p in env.sp["x"].ctl("pops")["pops"]}


def test_force_and_drain_survive_a_restart(env):
    spx = env.sp["x"]
    c_client = next(a for a in env.clients["c"] if a.version == 4)  # ranks y first at X
    ecs = f"{c_client}/32"
    assert env.model.ranking("x", c_client) == ("y", "x")
    try:
        assert spx.ctl("force", "y", "down")["saved"] is True
        assert spx.ctl("drain", "x")["saved"] is True
        # one address forced too (POP/ADDR): Y's A address, forced up
        y_addr = sorted(ANSWERS["y"]["A"])[0]
        r = spx.ctl("force", f"y/{y_addr}", "up")
        assert r["saved"] is True and r["address"] == y_addr, r
        p = _pops(env)
        assert p["y"]["forced"] == "down" and p["x"]["drained"] is True
        state = json.loads(open(spx.state_file).read())
        assert state["drained"] == ["x"], state
        assert state["forced"] == [{"pop": "y", "state": "down"},
                                   {"pop": "y", "address": y_addr, "state": "up"}], state

        rc = spx.stop()  # SIGTERM
        assert rc == 0 or rc is None, rc
        spx.start().wait_ready()
        p = _pops(env)
        assert p["y"]["forced"] == "down" and not p["y"]["up"] and p["x"]["drained"] is True, p
        assert p["y"]["forced_addresses"] == [[y_addr, "up"]], p
        spx.wait_established(*tss.PEERS["x"], timeout=60)
        harness.wait_until(lambda: spx.explain(c_client)["source"] == "rib", 60, interval=0.5,
                          desc="X's steering from the RIB again")
        # nothing usable (y forced down, x drained): answer_all, the first-ranked POP
        a = _ask(env, [ecs])[0]
        assert _pop_of(a) == "y" and a.ttl == TTL_FAILOVER, a
        spx.ctl("undrain", "x")
        a = _ask(env, [ecs])[0]
        assert _pop_of(a) == "x" and a.ttl == TTL_FAILOVER, a
        e = spx.explain(c_client)
        www_a = next(s for s in e["answers"] if s["rtype"] == "A")
        assert www_a["pop"] == "x" and www_a["reason"] == "failover" and ["y", "forced"] in www_a["skipped"], www_a
    finally:
        spx.ctl("force", "y", "auto")
        spx.ctl("force", f"y/{sorted(ANSWERS['y']['A'])[0]}", "auto")
        spx.ctl("undrain", "x")
    harness.wait_until(lambda: _pop_of(_ask(env, [ecs])[0]) == "y", 30, interval=0.5,
                      desc="Y answers its client again")
    a = _ask(env, [ecs])[0]
    assert a.ttl == TTL, a
