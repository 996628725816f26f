"""A real resolver in the anycast loop (issue 11): Unbound (Debian package, built with
the subnet module) runs as the recursive resolver in the client namespaces of the
anycast lab (test_anycast.py's, built the same way: both POPs announce 192.0.2.53/32
and A, B, C route it with BIRD's kernel protocol). Each Unbound has a stub zone for
example.test at the anycast address, sends EDNS Client Subnet there
(``send-client-subnet``, ``module-config: "subnetcache iterator"``, source prefix
``max-client-subnet-ipv4: 32``, see MAX_V4), and answers its own LAN (cc's also three
extra client addresses on cc's loopback, inside real-data prefixes of the lab). Asserted:
  * the client behind C asking its resolver for www.example.test A gets POP Y's
    addresses (and the client behind A gets X's); the answers came from sparrowd with
    ECS (Unbound's ``num.query.subnet``); why not Unbound's default /24 source: C's
    LAN's /24 asked directly gets X's addresses with scope 25;
  * Unbound caches by the scope sparrowd returns: two clients inside one lab prefix P
    of C (safe scope = len(P) < 24, checked with ``sparrowctl explain`` at Y), in
    different /24s so that only our scope can join them: the first is a miss (one more
    ECS answer from the authority), the second is answered from the subnet cache
    (``num.query.subnet_cache``), both with Y's addresses; a client in a prefix of A
    is not answered from that cache: a miss, answered with X's addresses.
"""
from __future__ import annotations

import ipaddress
from itertools import islice

import pytest

import harness
import super_sparrow_lab as ssl
import test_anycast as anycast
from super_sparrow_lab import ANSWERS
from test_super_sparrow import module_env

pytestmark = pytest.mark.sparrowd

# The ECS source prefix length the resolvers send for IPv4. Not Unbound's default 24:
# the lab's client LANs are the two /25 halves of 198.51.100.0/24, so a /24 source
# mixes them (sparrowd answers scope 25, longer than the source, RFC 7871 §7.2.1, with
# the decision of the /24's first address, in A's LAN: POP X; Unbound 1.17 caches that
# for the /24 and does not ask again with a longer prefix).
MAX_V4 = 32
BLOCK = 24  # the caching clients sit in different /24s: only our scope joins them
ZONE = "example.test"
RESOLVER = {"ca": ssl.CA4, "cc": ssl.CC4}  # each client namespace's Unbound listens on its LAN address
LAN4 = {"ca": ssl.LAN["a"][0], "cc": ssl.LAN["c"][0]}


def pick_clients(model: ssl.Model, clients: dict) -> tuple:
    """(same1, same2, other, P), deterministic from the model: same1 and same2 inside
    one lab prefix P of C whose safe scope at Y is exactly len(P) < BLOCK and whose
    deepest lab prefix is P, in different /BLOCK blocks; ``other`` in a prefix of A
    with an exact scope at Y (so ranked X first there)."""
    other = next(a for a in clients["a"] if a.version == 4 and model.exact_scope("y", a) is not None)
    for a in clients["c"]:
        if a.version != 4 or (model.exact_scope("y", a) or BLOCK) >= BLOCK:
            continue
        p = model.deepest(a)
        own = ipaddress.ip_network(f"{a}/{BLOCK}", strict=False)
        for block in islice(p.subnets(new_prefix=BLOCK), 256):
            b = block.network_address + 1
            if block != own and model.deepest(b) == p:
                return a, b, other, p
    raise AssertionError("no lab prefix of C with an exact scope shorter than /24 and two clients in it")


def resolve(env, client: str, source: str | None = None) -> ssl.Answer:
    """www.example.test A asked of the client namespace's Unbound (from ``source``)."""
    return ssl.dig_query(env.ns[client], RESOLVER[client], "A", source=source)


def subnet_counts(u: harness.Unbound) -> tuple[int, int]:
    """(answers fetched from the authority with ECS, answers from the subnet cache);
    Unbound's ``num.query.subnet`` counts both."""
    s = u.stats()
    cached = int(s["num.query.subnet_cache"])
    return int(s["num.query.subnet"]) - cached, cached


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    envs = module_env(request, tmp_path_factory, "sanyres", anycast.build_kwargs)
    e = next(envs)
    try:
        e.picks = pick_clients(e.model, e.clients)
        for a in e.picks[:3]:
            e.ns["cc"].add_addr("lo", f"{a}/32")
        e.resolvers = {}
        for c in ("ca", "cc"):
            access = [LAN4[c]] + ([f"{a}/32" for a in e.picks[:3]] if c == "cc" else [])
            e.resolvers[c] = e.lab.unbound(e.ns[c], f"unbound-{c}", [RESOLVER[c]], {ZONE: [anycast.ANYCAST]},
                                           access, ecs_servers=[anycast.ANYCAST], max_v4=MAX_V4)
            e.resolvers[c].start().wait_ready()
        # the anycast address reachable (BIRD's routes in the kernels) before the
        # resolvers ask it, so they never hold it as unresponsive
        harness.wait_until(lambda: anycast.identity(e, "ca") == "x" and anycast.identity(e, "cc") == "y", 30,
                           desc="the clients reach their closest POP at the anycast address")
    except BaseException as exc:
        envs.throw(exc)  # lab logs, cleanup, re-raised
    yield e
    next(envs, None)  # cleanup


def test_client_behind_c_gets_y_through_its_resolver(env):
    for client, pop in (("cc", "y"), ("ca", "x")):
        ans = harness.wait_until(lambda: (a := resolve(env, client)).rcode == "NOERROR" and a.addrs and a, 30,
                                 desc=f"{client}'s resolver answers {ssl.QNAME}")
        assert set(ans.addrs) == ANSWERS[pop]["A"], (client, ans)
        assert subnet_counts(env.resolvers[client])[0] >= 1, env.resolvers[client].stats()
    lan24 = ipaddress.ip_network(f"{ssl.CC4}/24", strict=False)
    ans = ssl.dig_query(env.ns["cc"], anycast.ANYCAST, "A", ecs=str(lan24))
    assert (set(ans.addrs), ans.scope) == (ANSWERS["x"]["A"], 25), ans


def test_resolver_caches_by_our_ecs_scope(env):
    same1, same2, other, p = env.picks
    for a, pop in ((same1, "y"), (same2, "y"), (other, "x")):
        e = env.sp["y"].explain(str(a))
        assert e["ranking"][0] == pop, (str(a), e)
    assert other not in p, (str(other), p)
    assert env.sp["y"].explain(str(same1))["scope"] == p.prefixlen < BLOCK, (p, env.sp["y"].explain(str(same1)))
    u = env.resolvers["cc"]
    steps = (("first client in P: a miss", same1, "y", (1, 0)),
             ("second client in P, another /24: from the subnet cache", same2, "y", (0, 1)),
             ("client in a prefix of A: not from that cache", other, "x", (1, 0)))
    for what, src, pop, (fetched, cached) in steps:
        before = subnet_counts(u)
        ans = resolve(env, "cc", str(src))
        after = subnet_counts(u)
        assert ans.rcode == "NOERROR" and set(ans.addrs) == ANSWERS[pop]["A"], (what, str(src), ans)
        assert (after[0] - before[0], after[1] - before[1]) == (fetched, cached), (what, str(src), before, after)
