"""Export between POPs: multi-hop eBGP through a router namespace, and a BIRD pop peer.

Topology (all eBGP)::

    U (BIRD, AS 4200000010, upstream of X)
    |  10.1.1.0/24  fd00:11::/64
    X (sparrowd, AS 65001) --- 10.1.2.0/24 fd00:12::/64 --- P (BIRD, AS 65003, a "pop" of X)
    |  10.1.3.0/24  fd00:13::/64
    R (plain router namespace: forwarding + static routes, no BGP)
    |  10.1.4.0/24  fd00:14::/64
    Y (sparrowd, AS 65002) --- 10.1.5.0/24 fd00:15::/64 --- Q (BIRD, AS 65004, a "pop" of Y)
    |  10.1.6.0/24  fd00:16::/64
    V (GoBGP, AS 4200000030, upstream of Y)

X<->Y: two sessions (IPv4 transport for ipv4, IPv6 transport for ipv6), multihop 3.
Asserted: sessions establish; Y holds X's upstream routes with AS path
``65001 4200000010 ...`` and next hop = X's address (and X holds Y's); P gets X's
upstream routes as a plain AS_SEQUENCE with next hop X; nothing goes back to the
upstreams; pop-learned routes (from Y, from P) are not re-exported to other pops;
withdrawals propagate.
"""
import ipaddress
import re

import harness
from lab_routes import route_set, sessions_for
from harness import BirdPeer, Route, Upstream, sparrow_config, sparrow_peer, wait_equal

X_ASN, Y_ASN, P_ASN, Q_ASN = 65001, 65002, 65003, 65004
U_ASN, V_ASN = 4200000010, 4200000030
POPS = [{"name": "x", "asn": X_ASN}, {"name": "y", "asn": Y_ASN},
        {"name": "p", "asn": P_ASN}, {"name": "q", "asn": Q_ASN}]

P_ROUTES = [Route("10.103.0.0/24", [64999]), Route("fd03:1::/48", [])]
Q_ROUTES = [Route("10.104.0.0/24", []), Route("fd04:1::/48", [64998])]


def pop_bird(lab, ns, name, asn, link, sp_asn, routes):
    """BIRD standing in for another POP's sparrowd: imports everything, exports ``routes``."""
    peers = [BirdPeer("sp4", link.a4, asn, sp_asn, local_address=link.b4, families=("ipv4",),
                      export="filter export_static", import_="all"),
             BirdPeer("sp6", link.a6, asn, sp_asn, local_address=link.b6, families=("ipv6",),
                      export="filter export_static", import_="all")]
    conf = harness.bird_config(f"10.255.1.{asn % 256}", peers, routes, extra=harness.bird_static_export(routes))
    return lab.bird(ns, name, conf).start().wait_ready()


def paths_from(sp, peer_names):
    """{(prefix, path, next_hop)} of paths in sparrowd learned from the given peers."""
    return {(str(ipaddress.ip_network(r["prefix"])), harness.dump_path(r["as_path"]),
             str(ipaddress.ip_address(r["next_hop"])))
            for r in sp.dump() if r["peer"] in peer_names}


def bird_received(bird, protos):
    """{(prefix, path, next_hop)} of what a BIRD imported from protocols ``protos``."""
    out = set()
    for p in protos:
        for r in bird.show_routes(f"protocol {p}"):
            out.add((str(ipaddress.ip_network(r.net)), r.as_path, str(ipaddress.ip_address(r.next_hop))))
    return out


def test_multihop_pop_export(lab, sparrow_bin):
    x, y, r = lab.netns("x"), lab.netns("y"), lab.netns("r")
    u, p, q, v = lab.netns("u"), lab.netns("p"), lab.netns("q"), lab.netns("v")
    xu = lab.link(x, u, v4=("10.1.1.1/24", "10.1.1.2/24"), v6=("fd00:11::1/64", "fd00:11::2/64"))
    xp = lab.link(x, p, v4=("10.1.2.1/24", "10.1.2.2/24"), v6=("fd00:12::1/64", "fd00:12::2/64"))
    xr = lab.link(x, r, v4=("10.1.3.1/24", "10.1.3.2/24"), v6=("fd00:13::1/64", "fd00:13::2/64"))
    ry = lab.link(r, y, v4=("10.1.4.1/24", "10.1.4.2/24"), v6=("fd00:14::1/64", "fd00:14::2/64"))
    yq = lab.link(y, q, v4=("10.1.5.1/24", "10.1.5.2/24"), v6=("fd00:15::1/64", "fd00:15::2/64"))
    yv = lab.link(y, v, v4=("10.1.6.1/24", "10.1.6.2/24"), v6=("fd00:16::1/64", "fd00:16::2/64"))
    r.forwarding(True)
    x.add_route("10.1.4.0/24", xr.b4)
    x.add_route("fd00:14::/64", xr.b6)
    y.add_route("10.1.3.0/24", ry.a4)
    y.add_route("fd00:13::/64", ry.a6)
    assert harness.wait_until(lambda: x.reachable(ry.b4) and x.reachable(ry.b6), 10, desc="X reaches Y through R")

    u_routes = route_set(1)
    v_routes = route_set(2)
    mh = dict(multihop=3, hold_time=30, connect_retry=1)
    x_cfg = sparrow_config(X_ASN, "10.255.0.1", pop="x", pops=POPS, peers=[
        sparrow_peer("u", xu.b4, U_ASN, "upstream", families=["ipv4", "ipv6"], connect_retry=1),
        sparrow_peer("p4", xp.b4, P_ASN, "pop", families=["ipv4"], connect_retry=1),
        sparrow_peer("p6", xp.b6, P_ASN, "pop", families=["ipv6"], connect_retry=1),
        sparrow_peer("y4", ry.b4, Y_ASN, "pop", families=["ipv4"], local_address=xr.a4, **mh),
        sparrow_peer("y6", ry.b6, Y_ASN, "pop", families=["ipv6"], local_address=xr.a6, **mh),
    ])
    y_cfg = sparrow_config(Y_ASN, "10.255.0.2", pop="y", pops=POPS, peers=[
        sparrow_peer("v4", yv.b4, V_ASN, "upstream", families=["ipv4"], connect_retry=1),
        sparrow_peer("v6", yv.b6, V_ASN, "upstream", families=["ipv6"], connect_retry=1),
        sparrow_peer("q4", yq.b4, Q_ASN, "pop", families=["ipv4"], connect_retry=1),
        sparrow_peer("q6", yq.b6, Q_ASN, "pop", families=["ipv6"], connect_retry=1),
        sparrow_peer("x4", xr.a4, X_ASN, "pop", families=["ipv4"], local_address=ry.b4, **mh),
        sparrow_peer("x6", xr.a6, X_ASN, "pop", families=["ipv6"], local_address=ry.b6, **mh),
    ], selection_deferral=0)  # GoBGP sends End-of-RIB only under graceful restart: export at once
    spx = lab.sparrowd(x, "sparrowd-x", x_cfg).start().wait_ready()
    spy = lab.sparrowd(y, "sparrowd-y", y_cfg).start().wait_ready()

    up_u = Upstream(lab, "bird", u, "bird-u", U_ASN, "10.255.2.1",
                    sessions_for("bird", xu.a4, xu.a6, xu.b4, xu.b6, X_ASN), u_routes,
                    nh4=xu.b4, nh6=xu.b6, bird_import="all").start()
    up_v = Upstream(lab, "gobgp", v, "gobgp-v", V_ASN, "10.255.2.2",
                    sessions_for("gobgp", yv.a4, yv.a6, yv.b4, yv.b6, Y_ASN), v_routes,
                    nh4=yv.b4, nh6=yv.b6).start()
    bird_p = pop_bird(lab, p, "bird-p", P_ASN, xp, X_ASN, P_ROUTES)
    bird_q = pop_bird(lab, q, "bird-q", Q_ASN, yq, Y_ASN, Q_ROUTES)

    spx.wait_established("u", "p4", "p6", "y4", "y6", timeout=60)
    spy.wait_established("v4", "v6", "q4", "q6", "x4", "x6", timeout=60)
    up_u.wait_established()
    up_v.wait_established()
    bird_p.wait_established("sp4", "sp6")
    bird_q.wait_established("sp4", "sp6")

    def exported(routes, up_asn, sp_asn, nh4, nh6):
        return {(str(r.net), harness.norm_path([sp_asn, up_asn, *r.as_path]), nh4 if r.afi == 4 else nh6)
                for r in routes}

    # Y holds exactly X's upstream routes from X, with 65001 prepended and next hop = X
    wait_equal(lambda: paths_from(spy, {"x4", "x6"}), exported(up_u.routes, U_ASN, X_ASN, xr.a4, xr.a6), 40,
               desc="Y's paths from X (multihop)")
    # and X holds exactly Y's upstream routes from Y
    wait_equal(lambda: paths_from(spx, {"y4", "y6"}), exported(up_v.routes, V_ASN, Y_ASN, ry.b4, ry.b6), 40,
               desc="X's paths from Y (multihop)")
    # the pop peers' own routes arrived too (role pop, their ASN first)
    wait_equal(lambda: paths_from(spx, {"p4", "p6"}),
               {(str(rt.net), rt.expected_path(P_ASN), xp.b4 if rt.afi == 4 else xp.b6) for rt in P_ROUTES},
               30, desc="X's paths from BIRD pop P")
    for res_path in spy.route(str(u_routes[0].net))["paths"]:
        assert res_path["role"] == "pop" and res_path["peer_asn"] == X_ASN, res_path

    # BIRD pop P receives exactly X's upstream routes: AS_SEQUENCE 65001 U ..., next hop X
    want_p = exported(up_u.routes, U_ASN, X_ASN, xp.a4, xp.a6)
    wait_equal(lambda: bird_received(bird_p, ["sp4", "sp6"]), want_p, 40, desc="BIRD pop P's routes from X")
    for br in bird_p.show_routes("protocol sp4") + bird_p.show_routes("protocol sp6"):
        text = br.attrs["BGP.as_path"]
        assert "{" not in text and "}" not in text, f"AS_SET in export: {br.net}: {text}"
        rt = next(rr for rr in up_u.routes if str(rr.net) == str(ipaddress.ip_network(br.net)))
        assert text.split() == [str(a) for a in [X_ASN, U_ASN, *rt.as_path]], (br.net, text)
        assert br.attrs.get("BGP.origin", "").lower() == rt.origin, (br.net, br.attrs)
    # Q receives exactly Y's upstream routes (not X's, not P's: pop-learned is not re-exported)
    wait_equal(lambda: bird_received(bird_q, ["sp4", "sp6"]), exported(up_v.routes, V_ASN, Y_ASN, yq.a4, yq.a6),
               40, desc="BIRD pop Q's routes from Y")
    # Y's paths from X contain nothing learned by X from pops (P's routes, Y's own routes)
    assert not {pfx for pfx, _, _ in paths_from(spy, {"x4", "x6"})} & {str(rt.net) for rt in P_ROUTES + v_routes}
    # the upstreams got nothing
    assert bird_p.route_count("sp4")["imported"] + bird_p.route_count("sp6")["imported"] == len(u_routes)
    assert up_u.d.show_routes("protocol s0") == [], up_u.d.birdc("show route protocol s0")
    assert up_u.d.route_count("s0")["imported"] == 0
    rec = up_u.d.birdc("show protocols all s0")
    for m in re.finditer(r"Import updates:\s+(\d+)", rec):
        assert int(m.group(1)) == 0, rec
    for fam in ("ipv4", "ipv6"):
        got = up_v.d.cli("global", "rib", "-a", fam)
        assert not any(str(rt.net) in got for rt in u_routes + P_ROUTES), got

    # withdrawal at U propagates to Y and P
    victim4 = next(rt for rt in u_routes if rt.afi == 4 and len(rt.as_path) >= 2)
    victim6 = next(rt for rt in u_routes if rt.afi == 6)
    up_u.withdraw(victim4)
    up_u.withdraw(victim6)
    wait_equal(lambda: paths_from(spy, {"x4", "x6"}), exported(up_u.routes, U_ASN, X_ASN, xr.a4, xr.a6), 30,
               desc="Y's paths from X after U's withdrawals")
    wait_equal(lambda: bird_received(bird_p, ["sp4", "sp6"]), exported(up_u.routes, U_ASN, X_ASN, xp.a4, xp.a6),
               30, desc="P's routes after U's withdrawals")
    for sp, names in ((spx, ("u", "p4", "p6", "y4", "y6")), (spy, ("v4", "v6", "q4", "q6", "x4", "x6"))):
        st = {pp["name"]: pp["state"] for pp in sp.peers()}
        assert all(st[n] == "Established" for n in names), st
