"""Graceful restart (RFC 4724) with RFC 8538 on POP sessions, against real peers.

FRR as the other POP (``test_frr_*``)::

    U (BIRD, AS 64510, upstream of X) --- X (sparrowd, AS 65001) --- F (FRR 8.4, AS 65002, a "pop" of X)
          10.9.1.0/24                                10.9.2.0/24

FRR runs ``bgp graceful-restart`` and ``bgp graceful-restart notification``
(RFC 8538's N bit); sparrowd ``graceful_restart: true`` on the pop peer.
Asserted:
  * the session negotiates graceful restart with N on both sides;
  * SIGTERM sparrowd (Cease/Administrative Shutdown): FRR keeps every route
    sparrowd sent, marked stale, all the time sparrowd is away (polled every
    100 ms); sparrowd starts again (Restart State bit in its OPEN: the restart
    marker), re-sends its table and End-of-RIB, and FRR's stale marks go;
  * ``sparrowctl reset f``: a Cease/Hard Reset, and FRR drops the routes at
    once instead of keeping them stale.
  * sparrowd receiving: FRR's Cease/Administrative Reset (``no bgp
    hard-administrative-reset``) keeps FRR's routes in sparrowd, stale, until
    FRR's End-of-RIB; FRR's Hard Reset removes them at once.
  * FRR crashes (SIGKILL, its FIN/RST never reaching X, as when its host
    dies) and starts again, connecting to sparrowd while sparrowd's session
    is still Established (hold time 90): sparrowd takes the new connection
    within seconds (RFC 4724 §4.2), not at hold-timer expiry; FRR's routes
    stay (stale) in between, and the stale marks go after FRR's End-of-RIB.

The Super Sparrow two-POP lab (``test_super_sparrow_y_restart``): the example
configs with graceful restart on the POP sessions (as shipped). Y's sparrowd
gets SIGTERM, then starts again; at X, polled every 100 ms: Y's routes stay in
the RIB (stale while Y is away), ``explain`` for a client in C ranks Y first
throughout, X's DNS answer for that client stays Y throughout (the example's
health checks, not the BGP session, decide Y's availability: Y's web servers
are fine), and the stale marks are gone after Y's End-of-RIB.
"""
from __future__ import annotations

import ipaddress
import os
import re
import signal
import time
from pathlib import Path

import pytest

import harness
from harness import BirdPeer, Route, sparrow_config, sparrow_peer, wait_until

pytestmark = pytest.mark.sparrowd

X_ASN, F_ASN, U_ASN = 65001, 65002, 64510
X_U, U_X, X_F, F_X = "10.9.1.1", "10.9.1.2", "10.9.2.1", "10.9.2.2"
ROUTES = [Route(f"10.{100 + i}.0.0/16", [64999, 64900 + i]) for i in range(20)]
POLL = 0.1
DOWN_FOR = 3.0  # seconds Y's sparrowd stays stopped in the Super Sparrow restart
# sparrowd's log line when it starts after a planned shutdown (ANSI codes allowed)
MARKER_FOUND = r"restart marker found.*restarting\S*=\S*true"


def frr_routes(frr) -> dict:
    """{prefix: stale?} of FRR's IPv4 paths learned from sparrowd."""
    d = frr.vtysh_json("show bgp ipv4 unicast json")
    out = {}
    for pfx, paths in (d.get("routes") or {}).items():
        for p in paths:
            if p.get("peerId") == X_F:
                out[str(ipaddress.ip_network(pfx))] = bool(p.get("stale"))
    return out


def frr_neighbor(frr) -> dict:
    return frr.vtysh_json(f"show bgp neighbors {X_F} json")[X_F]


F_ROUTES = [Route(f"10.{200 + i}.0.0/16", []) for i in range(3)]


F_IF = "f-x"  # F's end of the X-F link


def build_frr_lab(lab, frr_connects: bool = False):
    """``frr_connects``: FRR connects (sparrowd only accepts) and both offer hold time 90;
    otherwise FRR only accepts and the hold time is 30."""
    u, x, f = lab.netns("u"), lab.netns("x"), lab.netns("f")
    lab.link(x, u, v4=(f"{X_U}/24", f"{U_X}/24"))
    lab.link(x, f, v4=(f"{X_F}/24", f"{F_X}/24"), if_b=F_IF)
    bird_peer = BirdPeer("sp", X_U, U_ASN, X_ASN, local_address=U_X, families=("ipv4",),
                         export="filter export_static", import_="none")
    conf = harness.bird_config("10.255.9.1", [bird_peer], ROUTES, extra=harness.bird_static_export(ROUTES))
    bird = lab.bird(u, "bird-u", conf).start().wait_ready()
    frr_conf = harness.frr_config(F_ASN, "10.255.9.2", [harness.Session(X_F, X_ASN, F_X, families=("ipv4",))],
                                  F_ROUTES, hostname="pop-f", graceful_restart=True)
    # RFC 8538; FRR only waits for sparrowd to connect (its restarts and resets
    # then show without FRR's own reconnects in between).
    frr_conf = frr_conf.replace(" bgp graceful-restart\n",
                                " bgp graceful-restart\n bgp graceful-restart notification\n")
    if frr_connects:
        # hold time 90 both sides; FRR's first UPDATE (and End-of-RIB) to a new
        # session waits for its coalesce timer: a window to see the stale marks.
        # preserve-fw-state: F bit set after its restart (without it, RFC 4724
        # §4.2 has sparrowd remove the stale routes at once)
        frr_conf = frr_conf.replace(" timers bgp 10 30\n", " timers bgp 30 90\n bgp coalesce-time 2000\n"
                                    " bgp graceful-restart preserve-fw-state\n")
    else:
        frr_conf = frr_conf.replace(f" neighbor {X_F} timers connect 2\n",
                                    f" neighbor {X_F} timers connect 2\n neighbor {X_F} passive\n")
    frr = lab.frr(f, "frr-f", frr_conf).start().wait_ready()
    peers = [sparrow_peer("u", U_X, U_ASN, families=["ipv4"], connect_retry=1),
             sparrow_peer("f", F_X, F_ASN, role="pop", families=["ipv4"], graceful_restart=True,
                          restart_time=120, connect_retry=5, hold_time=90 if frr_connects else 30,
                          passive=True if frr_connects else None)]
    cfg = sparrow_config(X_ASN, X_U, peers, pop="x", pops={"x": X_ASN, "f": F_ASN},
                         listen=[X_U, X_F], selection_deferral=60)
    sp = lab.sparrowd(x, "sparrowd-x", cfg).start().wait_ready()
    return bird, frr, sp


def wait_frr_fresh(frr, timeout=60.0):
    want = {r.prefix: False for r in ROUTES}
    harness.wait_equal(lambda: frr_routes(frr), want, timeout, desc="FRR holds sparrowd's routes, none stale")


def test_frr_keeps_routes_stale_over_sigterm_restart(lab, sparrow_bin):
    bird, frr, sp = build_frr_lab(lab)
    sp.wait_established("u", "f")
    frr.wait_established(X_F)
    wait_frr_fresh(frr)
    gr = frr_neighbor(frr)["gracefulRestartInfo"]
    assert gr.get("nBit") is True, gr  # our N bit, as FRR saw it
    assert sp.peer("f")["graceful_restart"] is True
    assert sp.peer("f")["graceful_notification"] is True

    # the harness gives each sparrowd its own admin.state_file; the marker sits beside it
    marker = Path(sp.state_file).with_suffix(".restart")
    os.kill(sp.proc.pid, signal.SIGTERM)
    t0 = time.monotonic()
    while sp.proc.alive():
        assert time.monotonic() - t0 < 10, "sparrowd did not stop on SIGTERM"
        time.sleep(POLL)
    assert marker.exists(), "no restart marker after SIGTERM"
    # FRR keeps every route, and marks them stale.
    harness.wait_equal(lambda: set(frr_routes(frr).values()), {True}, 10, interval=POLL,
                       desc="FRR marks sparrowd's routes stale")
    assert set(frr_routes(frr)) == {r.prefix for r in ROUTES}

    sp.start()
    seen_r = False
    deadline = time.monotonic() + 60
    while True:
        routes = frr_routes(frr)
        assert set(routes) == {r.prefix for r in ROUTES}, f"FRR lost routes during the restart: {routes}"
        if frr.session_up(X_F):
            seen_r = seen_r or frr_neighbor(frr)["gracefulRestartInfo"].get("rBit") is True
        if not any(routes.values()):
            break
        assert time.monotonic() < deadline, f"stale marks still there: {routes}"
        time.sleep(POLL)
    assert not marker.exists(), "the marker is consumed at start"
    assert re.search(MARKER_FOUND, sp.log_text()), sp.log_tail()
    assert seen_r, frr_neighbor(frr)["gracefulRestartInfo"]
    eor = frr_neighbor(frr)["gracefulRestartInfo"]["ipv4Unicast"]["endOfRibStatus"]
    assert eor["endOfRibRecv"] is True, eor


def test_frr_reset_is_a_hard_reset(lab, sparrow_bin):
    bird, frr, sp = build_frr_lab(lab)
    sp.wait_established("u", "f")
    wait_frr_fresh(frr)
    assert frr_neighbor(frr)["gracefulRestartInfo"].get("nBit") is True
    sp.ctl("reset", "f")
    # Dropped at once, not kept stale (sparrowd reconnects only after connect_retry, 5 s).
    harness.wait_equal(lambda: frr_routes(frr), {}, 3, interval=POLL, desc="FRR drops sparrowd's routes")
    n = frr_neighbor(frr)
    assert "Hard Reset" in (n.get("lastNotificationReason", "") + n.get("lastResetDueTo", "")) \
        or n.get("lastNotificationHardReset") is True, n
    assert "Hard Reset" in (sp.peer("f")["last_error"] or ""), sp.peer("f")
    # and the session and routes come back
    wait_frr_fresh(frr, 60)


def f_paths(sp) -> dict:
    """{prefix: stale} of sparrowd's paths from FRR."""
    return {str(ipaddress.ip_network(r["prefix"])): bool(r.get("stale")) for r in sp.dump() if r["peer"] == "f"}


def test_frr_notifications_received(lab, sparrow_bin):
    """sparrowd as the receiving side with N negotiated: FRR's Cease/Administrative Reset
    (``no bgp hard-administrative-reset``) keeps FRR's routes, stale; its Hard Reset
    (FRR's default for ``clear bgp``) removes them at once."""
    bird, frr, sp = build_frr_lab(lab)
    sp.wait_established("u", "f")
    want = {r.prefix: False for r in F_ROUTES}
    harness.wait_equal(lambda: f_paths(sp), want, 30, desc="sparrowd holds FRR's routes")

    frr.configure("router bgp 65002", "no bgp hard-administrative-reset")
    frr.vtysh(f"clear bgp {X_F}")
    harness.wait_equal(lambda: f_paths(sp), {p: True for p in want}, 5, interval=POLL,
                       desc="FRR's routes kept stale after its Cease/Administrative Reset")
    assert "Administrative Reset" in (sp.peer("f")["last_error"] or ""), sp.peer("f")
    harness.wait_equal(lambda: f_paths(sp), want, 30, desc="FRR's routes fresh again after its End-of-RIB")

    frr.configure("router bgp 65002", "bgp hard-administrative-reset")
    sp.wait_established("f")
    frr.vtysh(f"clear bgp {X_F}")
    harness.wait_equal(lambda: f_paths(sp), {}, 3, interval=POLL,
                       desc="FRR's routes removed at once after its Hard Reset")
    assert "Hard Reset" in (sp.peer("f")["last_error"] or ""), sp.peer("f")


def test_frr_sigkill_reconnect_replaces_established_session(lab, sparrow_bin):
    """RFC 4724 §4.2: FRR restarts (SIGKILL, start) faster than the hold timer (90 s)
    notices; its new connection ends sparrowd's old session with FRR's routes kept stale."""
    bird, frr, sp = build_frr_lab(lab, frr_connects=True)
    sp.wait_established("u", "f")
    want = {r.prefix: False for r in F_ROUTES}
    harness.wait_equal(lambda: f_paths(sp), want, 30, desc="sparrowd holds FRR's routes")
    st = sp.peer("f")
    assert st["hold_time"] == 90 and st["graceful_restart"] is True, st
    count = st["established_count"]

    # The crash's FIN/RST never reach X (as when F's host dies): drop them on
    # F's side of the link, so X's old session stays Established.
    # (tc: u32 puts TCP segments with FIN or RST, flags at IP offset 20 + 13, in
    # an HTB class whose queue is a blackhole; everything else passes.)
    def tc(*args):
        frr.ns.run(["tc", *args])
    tc("qdisc", "add", "dev", F_IF, "root", "handle", "1:", "htb", "default", "20")
    tc("class", "add", "dev", F_IF, "parent", "1:", "classid", "1:10", "htb", "rate", "1mbit")
    tc("class", "add", "dev", F_IF, "parent", "1:", "classid", "1:20", "htb", "rate", "1gbit")
    tc("qdisc", "add", "dev", F_IF, "parent", "1:10", "handle", "10:", "blackhole")
    for prio, flag in ((1, "0x01"), (2, "0x04")):
        tc("filter", "add", "dev", F_IF, "parent", "1:", "protocol", "ip", "prio", str(prio), "u32",
           "match", "ip", "protocol", "6", "0xff", "match", "u8", flag, flag, "at", "33", "flowid", "1:10")
    frr.proc.kill()
    t0 = time.monotonic()
    assert sp.state("f") == "Established"
    frr.start().wait_ready()

    # FRR's new session can resend its routes within a millisecond of the old
    # session ending, faster than any poll: the stale marking is asserted from
    # the RIB's log line (with its path count) below, continuity by this loop.
    while True:
        paths = f_paths(sp)
        assert set(paths) == set(want), f"sparrowd lost FRR's routes: {paths}\n{sp.log_tail()}"
        st = sp.peer("f")
        if st["established_count"] > count and st["state"] == "Established" and not any(paths.values()):
            break
        # well before the hold time (90 s) would end the old session
        assert time.monotonic() - t0 < 20, f"stale={paths} {st}"
        time.sleep(POLL / 2)
    took = time.monotonic() - t0
    log = sp.log_text()
    assert re.search(r"peer opened a new connection", log), sp.log_tail()
    assert re.search(r"session down.*the peer restarted", log), sp.log_tail()
    assert re.search(rf"peer down, keeping routes as stale peer=f paths={len(F_ROUTES)}\b", log), \
        f"FRR's {len(F_ROUTES)} routes were not kept stale between the sessions\n{sp.log_tail()}"
    assert not re.search(r"removing stale routes peer=f afi=\S+ stale=[1-9]", log), \
        f"FRR's new session did not refresh every stale route\n{sp.log_tail()}"
    assert frr.session_up(X_F)
    print(f"FRR killed and restarted; sparrowd took its new session after {took:.1f} s")


# ---------------------------------------------------------------------------
# Super Sparrow: restart Y's sparrowd, X keeps Y's routes and ranking


def test_super_sparrow_y_restart(lab, sparrow_bin):
    """Y's sparrowd restarts (SIGTERM, start): X keeps Y's routes, ranks Y first and answers Y
    for a client in C throughout (queried every 100 ms)."""
    _y_restart(lab, check_dns=True)


def _y_restart(lab, check_dns: bool) -> None:
    import super_sparrow_lab as ssl
    import test_super_sparrow as tss
    from super_sparrow_lab import ANSWERS, X4

    text = (ssl.EXAMPLE / "pop-x.yaml").read_text()
    assert re.search(r"- name: y4\n(?:    .*\n)*?    graceful_restart: true", text), \
        "the example's POP sessions run graceful restart"
    env = tss.build(lab)
    tss.wait_converged(env)
    spx, spy, cc = env.sp["x"], env.sp["y"], env.ns["cc"]
    a = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y")
    a6 = next(a for a in env.clients["c"] if a.version == 6 and env.model.ranking("x", a)[0] == "y")
    from_y = {p for p, kind, _ in tss.expected_paths(env, "x") if kind == "pop"}

    def y_paths():
        """{prefix: stale} of X's paths from Y."""
        return {str(ipaddress.ip_network(r["prefix"])): bool(r.get("stale"))
                for r in spx.dump() if r["peer"] in ("y4", "y6")}

    def ranked_y_first(addr) -> bool:
        return spx.explain(str(addr))["ranking"][0] == "y"

    assert set(y_paths()) == from_y and not any(y_paths().values())
    assert ranked_y_first(a) and ranked_y_first(a6)

    os.kill(spy.proc.pid, signal.SIGTERM)
    t0 = time.monotonic()
    restarted = went_stale = False
    polls = 0
    while True:
        paths = y_paths()
        assert set(paths) == from_y, f"X lost Y's routes ({len(paths)} of {len(from_y)})"
        assert ranked_y_first(a) and ranked_y_first(a6), spx.explain(str(a))
        if check_dns:
            assert set(ssl.dig_query(cc, X4, "A", tss._ecs(a)).addrs) == ANSWERS["y"]["A"]
        polls += 1
        went_stale = went_stale or all(paths.values())
        # Y stays away DOWN_FOR seconds and until X shows its routes stale (a
        # bare restart takes ~50 ms: polling could miss the window otherwise)
        if not restarted and went_stale and not spy.proc.alive() and time.monotonic() - t0 >= DOWN_FOR:
            spy.start()
            restarted = True
        if restarted and went_stale and not any(paths.values()) and spx.state("y4") == "Established" \
                and spx.state("y6") == "Established":
            break
        assert time.monotonic() - t0 < 120, (
            f"restarted={restarted} went_stale={went_stale} stale={sum(paths.values())} "
            f"y4={spx.state('y4')} y6={spx.state('y6')}")
        time.sleep(POLL)
    assert went_stale, "X never marked Y's routes stale"
    assert polls >= DOWN_FOR / POLL / 2, polls
    assert re.search(MARKER_FOUND, spy.log_text()), spy.log_tail()
    print(f"Y restarted; X polled {polls} times over {time.monotonic() - t0:.1f} s")
