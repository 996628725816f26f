"""Transport behaviour of sparrowd against a real BIRD 2 (directly connected over a veth):

* GTSM (RFC 5082): both sides on -> Established with routes; one side only (either
  way round) -> never Established while several connection attempts are dropped by
  IP_MINTTL (kernel counter TcpExt.TCPMinTTLDrop), then a config fix on BIRD brings
  the session up (positive control in the same test).
* Connection collision (RFC 4271 §6.8): both sides active, their SYNs released at
  the same instant (held back in the ARP queue, see transport_lab.hold_neighbors),
  so both TCP connections reach the OPEN exchange.  Exactly one session survives,
  it does not flap, and it is the connection initiated by the higher BGP identifier.
  Done with sparrowd's identifier higher and lower than BIRD's.
* `sparrowctl reset` -> BIRD receives Cease/Administrative Reset, session comes back.
* SIGTERM -> BIRD receives Cease/Administrative Shutdown, sparrowd exits 0 quickly,
  admin socket removed.
"""
import ipaddress
import os
import re
import signal
import time

import pytest

import harness
from transport_lab import PEER, PROTO, hold_neighbors, make_topo, release_neighbors, syn_sent, tcp_ext

# BIRD connection attempts as its `debug { events }` logs them
ATTEMPT_RE = r"Connecting to \S+|Incoming connection from \S+"


def never_established_while(topo, attempts_wanted, drops_ns, sp_may_establish=False, timeout=40):
    """Poll until BIRD logged ``attempts_wanted`` connection attempts and the kernel of
    ``drops_ns`` dropped packets for GTSM; fail at once if BIRD reaches Established or
    sparrowd holds a route (or, unless ``sp_may_establish``, sparrowd reaches
    Established).  Returns (attempts, drops, sparrowd's established_count)."""
    drops0 = tcp_ext(drops_ns, "TCPMinTTLDrop")
    deadline = time.monotonic() + timeout
    while True:
        p = topo.sp.peer(PEER)
        if not sp_may_establish:
            assert p["state"] != "Established" and p["established_count"] == 0, p
        assert topo.sp.table(PEER) == set(), "sparrowd got routes over a GTSM-mismatched session"
        assert topo.bird.proto_state(PROTO) != "Established", topo.bird.birdc(f"show protocols all {PROTO}")
        attempts = topo.bird_log_count(ATTEMPT_RE)
        drops = tcp_ext(drops_ns, "TCPMinTTLDrop") - drops0
        if attempts >= attempts_wanted and drops > 0:
            return attempts, drops, p["established_count"]
        if time.monotonic() > deadline:
            pytest.fail(f"no evidence of {attempts_wanted} dropped connection attempts in {timeout}s: "
                        f"attempts={attempts} minttl_drops={drops}")
        time.sleep(0.2)


def test_gtsm_both_sides(lab, sparrow_bin):
    t = make_topo(lab).converge(bird_extra="  ttl security on;", gtsm=True)
    p = t.sp.peer(PEER)
    assert p["established_count"] == 1, p
    assert p["remote_router_id"] == "10.255.0.10", p


def test_gtsm_only_sparrowd(lab, sparrow_bin):
    """sparrowd gtsm, BIRD plain direct eBGP (TTL 1): sparrowd's kernel drops BIRD's
    segments, no session; BIRD switched to ttl security -> Established."""
    t = make_topo(lab)
    t.start_bird(extra="  startup hold time 3;")
    t.start_sparrowd(gtsm=True)
    attempts, drops, _ = never_established_while(t, 3, t.sp_ns)
    print(f"\nGTSM sparrowd-only: {attempts} BIRD attempts, {drops} TTL drops in sparrowd's netns, no session")
    # positive control on the same sparrowd and link
    t.bird.reconfigure(t.bird_conf(extra="  ttl security on;"))
    t.wait_up(timeout=40)
    t.wait_routes()


def test_gtsm_only_bird(lab, sparrow_bin):
    """BIRD ttl security, sparrowd without gtsm (sends TTL 1): BIRD's kernel drops
    sparrowd's segments, BIRD never Established, no routes; BIRD without ttl security
    -> Established.

    sparrowd itself may briefly call the session Established: BIRD sets IP_MINTTL on
    an accepted socket only after accept(), so sparrowd's OPEN (sent right after the
    handshake, TTL 1) can slip in, and BIRD's OPEN + KEEPALIVE (TTL 255) reach
    sparrowd while sparrowd's KEEPALIVE is dropped (BIRD stays in OpenConfirm)."""
    t = make_topo(lab)
    t.start_bird(extra="  ttl security on; startup hold time 3;")
    t.start_sparrowd(gtsm=False)
    attempts, drops, sp_est = never_established_while(t, 3, t.bird_ns, sp_may_establish=True)
    print(f"\nGTSM BIRD-only: {attempts} attempts, {drops} TTL drops in BIRD's netns, BIRD never Established "
          f"(sparrowd half-up {sp_est}x)")
    t.bird.reconfigure(t.bird_conf())
    t.wait_up(timeout=40)
    t.wait_routes()


def _port(addr: str) -> int:
    return int(str(addr).rsplit(":", 1)[1])


def _bird_since(show: str) -> float:
    """The Since column of ``birdc show protocols NAME`` (HH:MM:SS.mmm) in seconds."""
    m = re.search(rf"^{PROTO}\s.*?\s(\d\d):(\d\d):(\d\d\.\d+)\s", show, re.M)
    assert m, show
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def _ip_int(a: str) -> int:
    return int(ipaddress.IPv4Address(a))


COLLISION_ROUNDS = 2


@pytest.mark.parametrize("sp_id,bird_id", [("10.255.0.200", "10.255.0.100"),
                                           ("10.255.0.1", "10.255.0.100")],
                         ids=["sparrowd-higher", "sparrowd-lower"])
def test_collision(lab, sparrow_bin, sp_id, bird_id):
    t = make_topo(lab)
    stats = []
    for rnd in range(COLLISION_ROUNDS):
        hold_neighbors(t.link)
        log_off = len(t.bird_log_text())
        bird = lab.bird(t.bird_ns, f"bird-r{rnd}", t.bird_conf(
            router_id=bird_id, extra="  connect retry time 30; hold time 3;")).start().wait_ready()
        t.bird = bird
        t.sp = lab.sparrowd(t.sp_ns, f"sparrowd-r{rnd}", t.sp_conf(
            router_id=sp_id, passive=False, connect_retry=1, hold_time=3)).start().wait_ready()
        # both sides have a SYN waiting for ARP: release them together
        harness.wait_until(lambda: syn_sent(t.sp_ns, t.link.b4) and syn_sent(t.bird_ns, t.link.a4), 15,
                          desc="both sides connecting (SYN-SENT)")
        sp_port = int(t.sp_ns.sh(f"ss -Htn state syn-sent dst {t.link.b4}:179").split()[-2].rsplit(":", 1)[1])
        bird_port = int(t.bird_ns.sh(f"ss -Htn state syn-sent dst {t.link.a4}:179").split()[-2].rsplit(":", 1)[1])
        release_neighbors(t.link)
        t.wait_up(timeout=30)

        # stable: no flap for > hold time (3 s, keepalive 1 s)
        p0 = t.sp.peer(PEER)
        bird_since = _bird_since(t.bird.birdc(f"show protocols {PROTO}"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            p = t.sp.peer(PEER)
            assert p["state"] == "Established" and p["established_count"] == 1, p
            assert (p["local_address"], p["remote_address"]) == (p0["local_address"], p0["remote_address"]), p
            assert t.bird.proto_state(PROTO) == "Established"
            time.sleep(0.3)
        # BIRD prints its monotonic state-change time as wall time, so the same instant can
        # read 1 ms apart; a restart (reconnect + OPEN) would be seconds later.
        since = _bird_since(t.bird.birdc(f"show protocols {PROTO}"))
        assert abs(since - bird_since) < 0.05, f"BIRD's session restarted ({bird_since} -> {since})"
        p = t.sp.peer(PEER)
        assert p["remote_router_id"] == bird_id, p
        t.wait_routes()

        sp_initiated = _port(p["remote_address"]) == 179 and _port(p["local_address"]) != 179
        bird_initiated = _port(p["local_address"]) == 179 and _port(p["remote_address"]) != 179
        assert sp_initiated != bird_initiated, p

        blog = t.bird_log_text()[log_off:]
        splog = t.sp_log_text()
        evidence = {
            "bird_collision_lines": len(re.findall(r"Connection collision", blog)),
            "bird_rx_cease7": len(re.findall(r"Received: Connection collision resolution", blog)),
            "bird_lines": re.findall(r"Connection collision, giving up (?:the other|this) connection", blog),
            "sp_collision_lines": len(re.findall(r"connection collision", splog)),
            "sp_notif_sent": p["notifications_sent"],
            "sp_notif_recv": p["notifications_received"],
        }
        collided = evidence["bird_collision_lines"] > 0 or evidence["sp_collision_lines"] > 0 \
            or evidence["sp_notif_sent"] > 0 or evidence["sp_notif_recv"] > 0
        winner = "sparrowd" if sp_initiated else "bird"
        stats.append((rnd, collided, winner, evidence))
        print(f"\nCOLLISION round {rnd} sp_id={sp_id} bird_id={bird_id}: collided={collided} "
              f"kept={winner}-initiated ({p['local_address']} <- {p['remote_address']}) {evidence}")
        # the surviving connection is one of the two released together, or a later one
        surv_port = _port(p["local_address"]) if sp_initiated else _port(p["remote_address"])
        from_pair = surv_port == (sp_port if sp_initiated else bird_port)
        if collided and not from_pair:
            # Both colliding connections were closed: only acceptable when BIRD already had
            # one Established (it then closes the new one, RFC 4271 §6.8) while sparrowd, still
            # in OpenConfirm there, resolved by identifier and closed the other (BIRD got Cease/7).
            assert "Connection collision, giving up this connection" in evidence["bird_lines"] \
                and evidence["bird_rx_cease7"] >= 1, (f"collision ended with a later connection "
                                                      f"{surv_port} (pair {sp_port}/{bird_port}); {evidence}")
        stats[-1] = (rnd, collided, winner, evidence, from_pair)
        print(f"   survivor from the colliding pair: {from_pair}")
        if collided and from_pair:
            want = "sparrowd" if _ip_int(sp_id) > _ip_int(bird_id) else "bird"
            assert winner == want, (f"collision kept the {winner}-initiated connection, RFC 4271 §6.8 says "
                                    f"{want} (higher BGP identifier); {p}; {evidence}")

        # tear down for the next round
        t.sp.stop()
        bird.stop()
        for ns, ifn in ((t.sp_ns, t.link.if_a), (t.bird_ns, t.link.if_b)):
            ns.run(["ip", "neigh", "flush", "dev", ifn, "nud", "all"], check=False)
    print(f"\nCOLLISION summary {sp_id} vs {bird_id}: "
          f"{sum(1 for s in stats if s[1])}/{len(stats)} rounds collided")


def test_admin_reset(lab, sparrow_bin):
    t = make_topo(lab).converge()
    before = t.sp.peer(PEER)
    assert before["established_count"] == 1, before
    t.sp.ctl("reset", PEER, as_json=False)
    harness.wait_until(lambda: t.bird_log_count(rf"{PROTO}: Received: Administrative reset") >= 1, 15,
                      desc="BIRD logs 'Received: Administrative reset'")
    harness.wait_until(lambda: (lambda p: p["state"] == "Established" and p["established_count"] == 2)(
        t.sp.peer(PEER)), 30, desc="sparrowd re-established (established_count 2)")
    t.bird.wait_established(PROTO, timeout=30)
    t.wait_routes()
    after = t.sp.peer(PEER)
    assert after["notifications_sent"] >= before["notifications_sent"] + 1, after
    assert after["notifications_received"] == before["notifications_received"], after
    assert t.bird_log_count(r"Received: Administrative reset") == 1


def test_sigterm_shutdown(lab, sparrow_bin):
    t = make_topo(lab).converge()
    sock = t.sp.socket
    assert os.path.exists(sock)
    proc = t.sp.proc
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    rc = proc.popen.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"sparrowd exit code {rc}\n{proc.tail()}"
    assert elapsed < 5, f"sparrowd took {elapsed:.1f}s to exit"
    assert not os.path.exists(sock), "admin socket left behind"
    harness.wait_until(lambda: t.bird_log_count(rf"{PROTO}: Received: Administrative shutdown") >= 1, 10,
                      desc="BIRD logs 'Received: Administrative shutdown'")
    harness.wait_until(lambda: t.bird.proto_state(PROTO) != "Established", 10, desc="BIRD session down")
    assert "sparrowd stopped" in proc.tail(20)
