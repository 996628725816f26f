"""Self-test of the lab itself, without sparrowd: every upstream router kind
originates the interop route set towards a BIRD receiver, which must hold exactly
those routes (prefix + AS path), and lose the one that is withdrawn.

When this fails the lab (router configs, namespaces) is broken, not sparrowd.
"""
import pytest

import harness
from lab_routes import route_set, sessions_for
from harness import BirdPeer, Upstream

RX_ASN = 65001
ASNS = {"bird": 4200000010, "frr": 4200000020, "gobgp": 65020, "exabgp": 4200000040}


@pytest.mark.parametrize("kind", Upstream.KINDS)
def test_upstream_to_bird(lab, kind):
    rx = lab.netns("rx")
    up = lab.netns("up")
    link = lab.link(rx, up, v4=("10.0.1.1/24", "10.0.1.2/24"), v6=("fd00:1::1/64", "fd00:1::2/64"))
    routes = route_set(1, with_sets=kind in ("exabgp", "gobgp"))
    sessions = sessions_for(kind, link.a4, link.a6, link.b4, link.b6, RX_ASN)
    asn = ASNS[kind]
    peers = [BirdPeer(f"p{i}", s.neighbor.replace(link.a4, link.b4).replace(link.a6, link.b6), RX_ASN, asn,
                      local_address=s.neighbor, families=s.families, passive=True)
             for i, s in enumerate(sessions)]
    recv = lab.bird(rx, "recv", harness.bird_config("10.255.0.1", peers)).start().wait_ready()
    u = Upstream(lab, kind, up, kind, asn, "10.255.0.2", sessions, routes, nh4=link.b4, nh6=link.b6).start()
    u.wait_established()
    recv.wait_established(*[p.name for p in peers])
    expected = u.expected()
    assert any(len(p) > 3 for _, p in expected)
    harness.wait_equal(recv.table, expected, 30, desc=f"BIRD receiver table vs routes sent by {kind}")
    # next hops as the interop test expects them: the router's own address on the link
    for r in recv.show_routes("table master4") + recv.show_routes("table master6"):
        want = link.b6 if ":" in r.net else link.b4
        assert r.next_hop == want, (r.net, r.attrs)
    victim = routes[0]
    u.withdraw(victim)
    harness.wait_equal(recv.table, u.expected(), 30, desc=f"{victim.prefix} withdrawn by {kind}")
    assert str(victim.net) not in {p for p, _ in recv.table()}
