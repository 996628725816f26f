"""Anycast (issue 11) in the Super Sparrow lab: both POPs' sparrowd announce the same
DNS address, 192.0.2.53/32, and the BIRD routers of A, B and C install their best BGP
route for it into their kernel tables (BIRD ``kernel`` protocol), so packets really
follow BGP. A and C accept only that prefix from their sparrowd; every BGP import of
A, B and C gives a route carrying GRACEFUL_SHUTDOWN (65535:0) local-pref 0, as RFC 8326
asks of every network the community reaches (with B honouring it too, B stops
preferring X's path through A, so A learns Y's path from B during the grace period).

Each sparrowd gates the prefix on a ``file`` check of its own POP (the lab writes the
file), with ``on_down: graceful_shutdown GRACE``. Asserted:
  * each POP also sends it to the other POP (``to: [upstream, pop]``); neither keeps
    the other's in its RIB (import policy rejects our own announce prefixes);
  * wire: BIRD on A shows X's announcement with AS_PATH ``65001`` (our ASN, no
    prepend), next hop X's session address, and the configured community and large
    community; ``sparrowctl announcements`` says up, and which peers have it;
  * ``dig @192.0.2.53 CH TXT id.server`` from the client behind A answers ``x``, from
    the client behind C ``y``;
  * X's check failing: BIRD on A shows X's route with the GRACEFUL_SHUTDOWN community
    during the grace period, then no route from X at all; A's client reaches Y within
    interval x fall + 2 s; restored, A's client reaches X again;
  * SIGTERM on X: the shutdown sequence (grace, then withdraw, then Cease) loses at
    most one of A's client's queries sent every 100 ms, and they end up at Y.
"""
from __future__ import annotations

import subprocess
import time

import pytest

import harness
from test_super_sparrow import build, module_env

pytestmark = pytest.mark.sparrowd

ANYCAST = "192.0.2.53"
PREFIX = f"{ANYCAST}/32"
INTERVAL, FALL, GRACE = 0.5, 2, 3
COMMUNITY, LARGE = "65000:53", "65000:1:53"


def _check_file(workdir, pop: str):
    return workdir / f"anycast-{pop}"


def _sparrowd_edit(workdir):
    def edit(pop: str, text: str) -> str:
        checks = "health:\n  checks:\n"
        assert text.count(checks) == 1
        check = (f"    - {{name: anycast, type: file, file: {_check_file(workdir, pop)}, pops: [{pop}],"
                 f" interval: {INTERVAL}, timeout: 0.2, rise: 1, fall: 1}}\n")
        listen = 'dns:\n  listen: ["'
        assert text.count(listen) == 1
        announce = (f"announce:\n  - prefix: {PREFIX}\n    communities: [\"{COMMUNITY}\"]\n"
                    f"    large_communities: [\"{LARGE}\"]\n    check: anycast\n    to: [upstream, pop]\n"
                    f"    interval: {INTERVAL}\n    rise: 1\n    fall: {FALL}\n    hold_down: 0\n"
                    f"    on_down: graceful_shutdown {GRACE}\n")
        return (text.replace(checks, checks + check)
                .replace(listen, f'{listen}{ANYCAST}:53", "') + announce)
    return edit


def _bird_edit(net: str, text: str) -> str:
    """A and C import the anycast prefix (only) from their sparrowd; every BGP import
    gives a route with GRACEFUL_SHUTDOWN local-pref 0; A, B and C install their best
    route for the prefix in the kernel."""
    filters = ("filter honour_gshut {\n  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;\n"
               "  accept;\n}\n"
               f"filter from_sparrowd {{\n  if net != {PREFIX} then reject;\n"
               "  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;\n  accept;\n}\n")
    kernel = (f"protocol kernel anycast_kernel {{\n  scan time 5;\n"
              f"  ipv4 {{ export where net = {PREFIX} && source = RTS_BGP; import none; }};\n}}\n")
    first = text.index("protocol bgp ")
    text = text[:first] + filters + text[first:].replace("{ import all;", "{ import filter honour_gshut;")
    if net in ("a", "c"):
        pop = "pop_x4" if net == "a" else "pop_y4"
        i = text.index(f"protocol bgp {pop} {{")
        j = text.index("ipv4 { import none;", i)
        text = text[:j] + "ipv4 { import filter from_sparrowd;" + text[j + len("ipv4 { import none;"):]
    return text + kernel


def _setup(workdir):
    def setup(ns):
        for pop in ("x", "y"):
            _check_file(workdir, pop).write_text(f"{pop} UP\n")
            ns[pop].run(["ip", "addr", "add", PREFIX, "dev", "lo"])
    return setup


def build_kwargs(lab) -> dict:
    """test_super_sparrow.build's arguments for the anycast lab (also used by
    test_anycast_resolver.py)."""
    return {"edit": _sparrowd_edit(lab.workdir), "bird_edit": _bird_edit, "setup": _setup(lab.workdir)}


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    yield from module_env(request, tmp_path_factory, "sanycast", build_kwargs)


def identity(env, client: str) -> str | None:
    """The POP answering CH TXT id.server at the anycast address for a client, or None."""
    out = env.ns[client].sh(f"dig +short +tries=1 +time=1 @{ANYCAST} CH TXT id.server", check=False)
    out = out.strip().strip('"')
    return out if out in ("x", "y") else None


def bird_route_from(env, net: str, proto: str):
    """BIRD ``net``'s route for the anycast prefix learned from ``proto``, or None."""
    for r in env.birds[net].show_routes(PREFIX):
        if r.proto == proto:
            return r
    return None


def announcements(env, pop: str) -> dict:
    rows = env.sp[pop].ctl_json("announcements")["announcements"]
    return {r["prefix"]: r for r in rows}


def test_announced_with_our_attributes(env):
    for pop, peers in (("x", ["a4", "y4"]), ("y", ["c4", "x4"])):
        row = harness.wait_until(lambda: (r := announcements(env, pop).get(PREFIX)) and r["state"] == "up"
                                 and sorted(r["peers"]) == peers and r, 30, desc=f"{pop} announces")
        assert row["reason"] == "healthy", row
    r = harness.wait_until(lambda: bird_route_from(env, "a", "pop_x4"), 15, desc="A has X's route")
    assert r.as_path == (65001,), r
    assert r.next_hop == "192.0.2.2", r
    assert "(65000,53)" in r.attrs.get("BGP.community", ""), r.attrs
    assert "(65000, 1, 53)" in r.attrs.get("BGP.large_community", ""), r.attrs


def test_clients_reach_their_closest_pop(env):
    assert harness.wait_until(lambda: identity(env, "ca") == "x", 30, desc="A's client reaches X")
    assert harness.wait_until(lambda: identity(env, "cc") == "y", 30, desc="C's client reaches Y")


def test_own_prefix_from_the_network_is_dropped(env):
    """Each POP also sends the prefix to the other (``to: [upstream, pop]``): Y's
    announcement reaches X over their session, and X's import policy rejects routes
    for its own announce prefixes, so X's RIB (and so its steering and its exports)
    has no path for it; the same at Y."""
    for pop, other_peer in (("y", "x4"), ("x", "y4")):
        harness.wait_until(lambda: other_peer in announcements(env, pop)[PREFIX]["peers"], 30,
                           desc=f"{pop} sends the prefix to the other POP")
    for pop in ("x", "y"):
        assert [p for p in env.sp[pop].dump() if p["prefix"] == PREFIX] == [], pop


def test_failing_check_graceful_shutdown_then_withdraw(env):
    assert harness.wait_until(lambda: identity(env, "ca") == "x", 30, desc="A's client at X")
    _check_file(env.lab.workdir, "x").write_text("x DOWN\n")
    t0 = time.monotonic()
    # During the grace period A holds X's route with GRACEFUL_SHUTDOWN (local-pref 0).
    r = harness.wait_until(
        lambda: (r := bird_route_from(env, "a", "pop_x4")) and "(65535,0)" in r.attrs.get("BGP.community", "")
        and r, INTERVAL * FALL + 2, desc="GRACEFUL_SHUTDOWN on X's route at A")
    assert "(65000,53)" in r.attrs["BGP.community"], r.attrs
    harness.wait_until(lambda: identity(env, "ca") == "y", INTERVAL * FALL + 2 - (time.monotonic() - t0),
                       interval=0.05, desc="A's client reaches Y within interval x fall + 2 s")
    row = announcements(env, "x")[PREFIX]
    assert row["state"] in ("grace", "withdrawn") and "anycast" in row["reason"], row
    harness.wait_until(lambda: bird_route_from(env, "a", "pop_x4") is None, GRACE + 5,
                       desc="X's route withdrawn after the grace period")
    assert announcements(env, "x")[PREFIX]["state"] == "withdrawn"
    _check_file(env.lab.workdir, "x").write_text("x UP\n")
    harness.wait_until(lambda: identity(env, "ca") == "x", 15, desc="A's client back at X")


def test_sigterm_moves_clients_with_at_most_one_lost_query(env):
    assert harness.wait_until(lambda: identity(env, "ca") == "x", 30, desc="A's client at X")
    # One query every 100 ms from A's client, bounded in count, while X stops.
    script = (f"for i in $(seq 1 {int((GRACE + 6) / 0.1)}); do "
              f"r=$(dig +short +tries=1 +time=1 @{ANYCAST} CH TXT id.server); echo \"${{r:-LOST}}\"; "
              f"sleep 0.1; done")
    ca = env.ns["ca"]
    loop = subprocess.Popen(ca.argv(["sh", "-c", script]), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # some answers from X first
        env.sp["x"].proc.stop(grace=GRACE + 10)
        out, _ = loop.communicate(timeout=GRACE + 60)
    finally:
        if loop.poll() is None:
            loop.kill()
    answers = [line.strip().strip('"') for line in out.splitlines()]
    assert answers and answers[0] == "x", answers
    assert answers[-1] == "y", answers
    assert answers.count("LOST") <= 1, answers
    first_y = answers.index("y")
    assert all(a == "y" for a in answers[first_y:]), answers
    log = env.sp["x"].log_text()
    assert "announce: graceful shutdown" in log, env.sp["x"].log_tail()
    assert "phase=Grace" in log.split("SIGTERM")[-1], "the grace period ran after SIGTERM"
