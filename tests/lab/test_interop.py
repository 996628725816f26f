"""Interop: sparrowd against real BGP implementations as directly connected upstreams.

Each router (BIRD 2, FRR, GoBGP, ExaBGP) lives in its own namespace with a veth to
sparrowd's namespace (eBGP, TTL 1) and originates IPv4 and IPv6 routes whose AS
paths hold 4-octet ASNs (4200000001, 131072 next to 2 so that a 131072 == 2 mix-up
shows, 4294967294) and, where the router can originate one, an AS_SET.

Transports (see lab_routes.sessions_for): BIRD = both families over IPv4 transport
(MP-BGP IPv6 NLRI over IPv4), FRR and ExaBGP = both families over IPv6 transport
(IPv4 NLRI over IPv6), GoBGP = one IPv4 and one IPv6 session.

Asserted: the sessions reach Established, sparrowd holds exactly the sent routes
(prefix + AS path, via `dump` and per prefix via `route`, with the right next hop,
peer and counters), and a withdrawn route disappears.
"""
import ipaddress
import json
import random

import pytest

import harness
from lab_routes import route_set, sessions_for
from harness import Upstream, sparrow_config, sparrow_peer, wait_equal

SPARROW_ASN = 65001
ROUTER_ASN = {"bird": 4200000010, "frr": 4200000020, "gobgp": 65020, "exabgp": 4200000040}
CAN_ORIGINATE_AS_SET = {"bird": False, "frr": False, "gobgp": True, "exabgp": True}
# routers that send End-of-RIB even without graceful restart negotiated
ALWAYS_EOR = {"bird", "exabgp"}


def _peer_name(kind, i):
    return f"{kind}{i}"


def build(lab, kinds, same_routes=False, up_opts=None, routes=None, **peer_opts):
    """sparrowd in ns 'sp' + one namespace per router kind; returns (sparrowd, {kind: (Upstream, link)})."""
    sp_ns = lab.netns("sp")
    ups = {}
    peers = []
    for n, kind in enumerate(kinds, start=1):
        ns = lab.netns(kind)
        link = lab.link(sp_ns, ns, v4=(f"10.0.{n}.1/24", f"10.0.{n}.2/24"),
                        v6=(f"fd00:{n}::1/64", f"fd00:{n}::2/64"))
        sessions = sessions_for(kind, link.a4, link.a6, link.b4, link.b6, SPARROW_ASN)
        rs = routes if routes is not None else route_set(1 if same_routes else n,
                                                         with_sets=CAN_ORIGINATE_AS_SET[kind])
        up = Upstream(lab, kind, ns, kind, ROUTER_ASN[kind], f"10.255.0.{10 + n}", sessions, rs,
                      nh4=link.b4, nh6=link.b6, **(up_opts or {}))
        ups[kind] = (up, link)
        for i, s in enumerate(sessions):
            peer_addr = link.b4 if ":" not in s.neighbor else link.b6
            peers.append(sparrow_peer(_peer_name(kind, i), peer_addr, ROUTER_ASN[kind], role="upstream",
                                      families=list(s.families), hold_time=30, connect_retry=1,
                                      **peer_opts))
    sp = lab.sparrowd(sp_ns, "sparrowd", sparrow_config(SPARROW_ASN, "10.255.0.1", peers)).start().wait_ready()
    for up, _ in ups.values():
        up.start()
    for kind, (up, _) in ups.items():
        sp.wait_established(*[_peer_name(kind, i) for i in range(len(up.sessions))], timeout=60)
        up.wait_established(timeout=30)
    return sp, ups


def sparrow_table(sp, kind=None, ups=None):
    """{(prefix, path)} from dump, optionally only paths from peers of one router kind."""
    names = None
    if kind is not None:
        names = {_peer_name(kind, i) for i in range(len(ups[kind][0].sessions))}
    return {(str(ipaddress.ip_network(r["prefix"])), harness.dump_path(r["as_path"]))
            for r in sp.dump() if names is None or r["peer"] in names}


def check_routes_in_detail(sp, kind, up, link):
    """Per prefix: `route` finds it, the path is from this router's peer, the AS path
    segments, next hop and origin/MED match what was sent."""
    names = {_peer_name(kind, i): s for i, s in enumerate(up.sessions)}
    for r in up.routes:
        addr = str(next(iter(r.net.hosts())) if r.net.num_addresses > 1 else r.net.network_address)
        for q in (str(r.net), addr):
            res = sp.route(q)
            assert res["prefix"] is not None and ipaddress.ip_network(res["prefix"]) == r.net, (q, res)
            mine = [p for p in res["paths"] if p["peer"] in names]
            assert len(mine) == 1, (q, res)
            p = mine[0]
            assert harness.canon_path(p["as_path_segments"]) == r.expected_path(up.asn), (q, p)
            assert harness.dump_path(p["as_path"]) == r.expected_path(up.asn), (q, p)
            assert p["peer_asn"] == up.asn, p
            assert p["role"] == "upstream", p
            assert p["ebgp"] is True, p
            assert p["router_id"] == up.router_id, p
            nh = link.b4 if r.afi == 4 else link.b6
            assert ipaddress.ip_address(p["next_hop"]) == ipaddress.ip_address(nh), (q, p)
            assert p["origin"] == r.origin, (q, p)
            if r.med is not None:
                assert p["med"] == r.med, (q, p)
            elif kind != "frr":  # FRR puts MED 0 on locally originated networks
                assert p["med"] in (None,), (q, p)


def wait_eor(sp, kind, up, timeout=15):
    """Every session of this router has End-of-RIB recorded for each of its families."""
    want = {_peer_name(kind, i): {f: True for f in s.families} for i, s in enumerate(up.sessions)}

    def got():
        return {p["name"]: {f: p["eor"][f] for f in want[p["name"]]} for p in sp.peers() if p["name"] in want}
    wait_equal(got, want, timeout, desc=f"End-of-RIB flags for {kind}'s sessions")


def expected_counts(routes):
    return {"ipv4": sum(1 for r in routes if r.afi == 4), "ipv6": sum(1 for r in routes if r.afi == 6)}


@pytest.mark.parametrize("kind", Upstream.KINDS)
def test_upstream_interop(lab, sparrow_bin, kind):
    sp, ups = build(lab, [kind])
    up, link = ups[kind]
    expected = up.expected()
    assert any(131072 in p for _, p in expected) and any(2 in p for _, p in expected)
    assert any(any(a > 0xFFFF for a in p if isinstance(a, int)) for _, p in expected)
    if CAN_ORIGINATE_AS_SET[kind]:
        assert any(isinstance(a, tuple) for _, p in expected for a in p)

    wait_equal(lambda: sparrow_table(sp), expected, 30, desc=f"sparrowd table vs routes sent by {kind}")
    check_routes_in_detail(sp, kind, up, link)
    if kind in ALWAYS_EOR:
        wait_eor(sp, kind, up)

    # counters: received/accepted per family sum up over this router's sessions
    want = expected_counts(up.routes)

    def counters():
        got = {"received": {"ipv4": 0, "ipv6": 0}, "accepted": {"ipv4": 0, "ipv6": 0}}
        for p in sp.peers():
            assert p["role"] == "upstream"
            assert p["remote_asn"] == up.asn
            for k in got:
                for f in ("ipv4", "ipv6"):
                    got[k][f] += int((p.get(k) or {}).get(f, 0))
        return got
    wait_equal(counters, {"received": want, "accepted": want}, 15, desc="peer received/accepted counters")
    summ = sp.summary()
    assert summ["prefixes"] == want, summ
    assert summ["paths"] == want, summ
    assert sp.paths_count() == len(up.routes)

    # withdraw one IPv4 and one IPv6 route; only those disappear
    v4 = next(r for r in up.routes if r.afi == 4 and len(r.as_path) >= 3)
    v6 = next(r for r in up.routes if r.afi == 6 and len(r.as_path) >= 3)
    for victim in (v4, v6):
        up.withdraw(victim)
        wait_equal(lambda: sparrow_table(sp), up.expected(), 30,
                   desc=f"sparrowd table after {kind} withdrew {victim.prefix}")
        res = sp.route(str(victim.net.network_address))
        assert res["prefix"] is None or ipaddress.ip_network(res["prefix"]) != victim.net, res
        if res["prefix"] is None:
            assert res["paths"] == [], res
    want = expected_counts(up.routes)
    wait_equal(lambda: sp.summary()["prefixes"], want, 15, desc="summary prefix counts after withdrawals")
    # the rest is unchanged in detail
    check_routes_in_detail(sp, kind, up, link)
    # sessions stayed up throughout
    assert all(p["state"] == "Established" for p in sp.peers()), sp.peers()


def test_all_upstreams_same_prefixes(lab, sparrow_bin):
    """All four routers at once, announcing the same prefixes: sparrowd keeps one path
    per router per prefix (with that router's AS path); a withdrawal by one router
    removes only that router's path."""
    kinds = list(Upstream.KINDS)
    sp, ups = build(lab, kinds, same_routes=True)
    expected_by_kind = {k: u.expected() for k, (u, _) in ups.items()}
    for kind in kinds:
        wait_equal(lambda: sparrow_table(sp, kind, ups), expected_by_kind[kind], 30,
                   desc=f"paths from {kind}")
    allexp = set().union(*expected_by_kind.values())
    assert sparrow_table(sp) == allexp
    # every prefix announced by all four has four paths and exactly one best
    common = set.intersection(*[{p for p, _ in e} for e in expected_by_kind.values()])
    assert common
    rng = random.Random(4242)
    for pfx in sorted(common):
        res = sp.route(pfx)
        assert ipaddress.ip_network(res["prefix"]) == ipaddress.ip_network(pfx)
        assert len(res["paths"]) == len(kinds), res
        assert [p["best"] for p in res["paths"]].count(True) == 1, res
        assert res["paths"][0]["best"] is True, res
        peers = {p["peer_address"] for p in res["paths"]}
        assert len(peers) == len(kinds), res
        net = ipaddress.ip_network(pfx)
        addr = str(net.network_address + rng.randrange(net.num_addresses))
        assert ipaddress.ip_network(sp.route(addr)["prefix"]) == net
    # GoBGP withdraws one prefix; the other three keep theirs
    up, _ = ups["gobgp"]
    victim = next(r for r in up.routes if r.afi == 4 and str(r.net) in common)
    up.withdraw(victim)
    wait_equal(lambda: sparrow_table(sp, "gobgp", ups), up.expected(), 30, desc="gobgp withdrawal")
    res = sp.route(str(victim.net))
    assert len(res["paths"]) == len(kinds) - 1, res
    assert all(not p["peer"].startswith("gobgp") for p in res["paths"]), res
    assert [p["best"] for p in res["paths"]].count(True) == 1, res


@pytest.mark.parametrize("kind", Upstream.KINDS)
def test_graceful_restart_negotiated_eor(lab, sparrow_bin, kind):
    """Graceful restart (RFC 4724) enabled on both sides: the capability shows as
    negotiated, every router's End-of-RIB is recorded for each of its families, and
    sparrowd sends its own End-of-RIB per family (seen by FRR/GoBGP, counted by sparrowd)."""
    sp, ups = build(lab, [kind], up_opts={"graceful_restart": 120}, graceful_restart=True, restart_time=120)
    up, _ = ups[kind]
    wait_equal(lambda: sparrow_table(sp), up.expected(), 30, desc=f"sparrowd table vs routes sent by {kind}")
    for p in sp.peers():
        assert p["graceful_restart"] is True, p
    wait_eor(sp, kind, up)

    # ... and the router gets sparrowd's End-of-RIB for each family even though an
    # upstream is sent no routes (RFC 4724 4.2: "including the case that it has no
    # routes to send"); a restarting router in recovery mode waits for it.
    if kind == "frr":
        s = up.sessions[0]

        def frr_eor_recv():
            gr = up.d.vtysh_json(f"show bgp neighbors {s.neighbor} json")[s.neighbor]["gracefulRestartInfo"]
            return {f: gr[f"{f}Unicast"]["endOfRibStatus"]["endOfRibRecv"] for f in s.families}
        wait_equal(frr_eor_recv, {f: True for f in s.families}, 15, desc="FRR endOfRibRecv from sparrowd")
    if kind == "gobgp":
        for s in up.sessions:
            wait_equal(lambda: json.loads(up.d.cli("neighbor", s.neighbor, "-j"))["state"]["messages"]
                       ["received"].get("update", 0) >= 1, True, 15,
                       desc=f"GoBGP received an UPDATE (End-of-RIB) from sparrowd on {s.neighbor}")

    want = {_peer_name(kind, i): len(s.families) for i, s in enumerate(up.sessions)}
    wait_equal(lambda: {p["name"]: min(p["updates_sent"], want[p["name"]]) for p in sp.peers()}, want, 15,
               desc="sparrowd sent an End-of-RIB UPDATE per family (updates_sent)")


def _stale_flags(sp):
    """{prefix: [stale flags of its paths]} from dump."""
    out = {}
    for r in sp.dump():
        out.setdefault(str(ipaddress.ip_network(r["prefix"])), []).append(r.get("stale"))
    return out


def test_graceful_restart_helper_with_bird(lab, sparrow_bin):
    """BIRD crashes (SIGKILL: no NOTIFICATION) with graceful restart negotiated:
    sparrowd keeps its routes marked stale; BIRD comes back (``bird -R``) without one
    route: after its End-of-RIB the table is exactly the new set, nothing stale.
    BIRD crashes again and stays down: the stale routes go after the restart time."""
    gr_time = 6
    sp, ups = build(lab, ["bird"], up_opts={"graceful_restart": gr_time}, graceful_restart=True, restart_time=120)
    up, _ = ups["bird"]
    first = up.expected()
    wait_equal(lambda: sparrow_table(sp), first, 30, desc="initial table")
    wait_eor(sp, "bird", up)
    assert sp.peer("bird0")["graceful_restart"] is True

    up.d.proc.kill()
    harness.wait_until(lambda: sp.peer("bird0")["state"] != "Established", 15, desc="session down after kill")
    # routes retained, all stale
    flags = harness.wait_until(lambda: (f := _stale_flags(sp)) and all(all(v) for v in f.values()) and f, 10,
                              desc="all paths stale")
    assert set(flags) == {p for p, _ in first}
    assert sparrow_table(sp) == first

    victim = next(r for r in up.routes if r.afi == 4 and r.as_path)
    up.routes = [r for r in up.routes if r is not victim]
    up.d.restart(up._bird_conf(), recovery=True)
    sp.wait_established("bird0", timeout=30)
    # `bird -R` holds its routes back until it has the neighbours' End-of-RIB (or its
    # `graceful restart wait`, 240 s): so this also needs sparrowd's End-of-RIB
    wait_equal(lambda: sparrow_table(sp), up.expected(), 30,
               desc="table after BIRD's restart (recovery mode) + End-of-RIB")
    harness.wait_until(lambda: not any(any(v) for v in _stale_flags(sp).values()), 15, desc="no stale paths")

    up.d.proc.kill()
    harness.wait_until(lambda: sp.peer("bird0")["state"] != "Established", 15, desc="session down after 2nd kill")
    harness.wait_until(lambda: sp.paths_count() == 0, gr_time + 20,
                      desc=f"stale paths removed after BIRD's restart time ({gr_time}s)")
