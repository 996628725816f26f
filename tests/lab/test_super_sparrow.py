"""The Super Sparrow two-POP setup in network namespaces, with real DNS clients.

Topology (the example in ``bgp-configs/super-sparrow/``, run as it is)::

    ca (client in A)                                    cc (client in C)
     |                                                   |
    X (sparrowd) --- A (BIRD) --- B (BIRD, transit) --- C (BIRD) --- Y (sparrowd)
    AS 65001         AS 64510     AS 64520               AS 64530     AS 65002

Each POP's two A and two AAAA addresses are served by nginx on a web namespace
behind it (super_sparrow_lab.add_web), which both sparrowd health-check (the
example's ``health`` section; test_health.py exercises it).
A, B and C originate a few hundred real prefixes each (routeviews pfx2as, with the
origin AS from the data in the path), including nested pairs across networks.
X and Y peer over multi-hop eBGP through A, B and C. Asserted:
  * sessions Established, both POPs' tables exactly as the topology implies;
  * steering (``sparrowctl lookup`` / ``explain``) matches the model in
    super_sparrow_lab.Model for every client address, ECS scopes are safe and equal
    the matched prefix length where the prefix stands alone;
  * DNS: ``dig @X +subnet=<client in C>/32`` answers POP Y's address with that scope,
    a client in A gets X (A and AAAA), clients without ECS are steered by their source
    address; kdig and dnspython agree with dig;
  * dnsperf at a bounded rate with varied ECS loses nothing, all NOERROR;
  * protocol behaviour at X over the lab's addresses: TCP answers like UDP (IPv4 and
    IPv6 transport, steered answer and ECS scope), AA set and RA clear, NXDOMAIN/NODATA
    with the SOA, REFUSED outside the zone, minimal ANY (one RRset), CH TXT id.server /
    hostname.bind give the POP name, an answer over 512 bytes without EDNS is TC and
    complete over TCP;
  * POP Y's sparrowd killed while Y's web servers are fine: the example's health checks
    keep Y up and graceful restart keeps its routes, so X keeps answering Y; restarted:
    the steering is the model's again (failover on the session alone, with no checks,
    on a killed or frozen POP: test_failover.py).
"""
from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field

import pytest

import harness
import super_sparrow_lab as ssl
from super_sparrow_lab import ANSWERS, ASN, EXAMPLE, NETS, UPSTREAM, X4, X6, Y4, Y6

pytestmark = pytest.mark.sparrowd

# the hold time of X's session y4 to POP Y, as the example sets it
HOLD_TIME = int(re.search(r"- name: y4\n(?:    .*\n)*?    hold_time: (\d+)",
                          (EXAMPLE / "pop-x.yaml").read_text()).group(1))


def example_sparrowd(lab: harness.Lab, ns: harness.Netns, pop: str, edit=None) -> harness.Sparrowd:
    """sparrowd running the example's pop-<pop>.yaml; only the admin socket path changes
    (and whatever ``edit(pop, text) -> text`` changes)."""
    text = (EXAMPLE / f"pop-{pop}.yaml").read_text()
    assert ssl.EXAMPLE_SOCKET[pop] in text
    if edit:
        text = edit(pop, text)
    return lab.sparrowd(ns, f"sparrowd-{pop}", text.replace(ssl.EXAMPLE_SOCKET[pop], "@SOCKET@"))


@dataclass
class Env:
    lab: harness.Lab
    ns: dict
    birds: dict
    sp: dict
    prefixes: ssl.Prefixes
    model: ssl.Model
    clients: dict  # net -> [address] (deepest lab prefix of each is one of net's)
    webs: dict = field(default_factory=dict)  # pop -> harness.Nginx serving its addresses


def _routes(ns, *routes):
    for dst, via in routes:
        ns.add_route(dst, via)


def build(lab: harness.Lab, edit=None, tls: dict | None = None, bird_edit=None, setup=None) -> Env:
    """The lab, converged; ``edit``: see example_sparrowd; ``tls``: see ssl.add_web;
    ``bird_edit(net, text) -> text`` changes a BIRD config; ``setup(ns)`` runs once the
    namespaces are linked and routed, before any daemon starts."""
    ns = {k: lab.netns(k) for k in ("x", "a", "b", "c", "y", "ca", "cc")}
    lab.link(ns["x"], ns["a"], v4=("192.0.2.2/29", "192.0.2.1/29"), v6=("2001:db8:1::2/64", "2001:db8:1::1/64"))
    lab.link(ns["a"], ns["b"], v4=("192.0.2.9/29", "192.0.2.10/29"), v6=("2001:db8:2::1/64", "2001:db8:2::2/64"))
    lab.link(ns["b"], ns["c"], v4=("192.0.2.17/29", "192.0.2.18/29"), v6=("2001:db8:3::1/64", "2001:db8:3::2/64"))
    lab.link(ns["c"], ns["y"], v4=("192.0.2.25/29", "192.0.2.26/29"), v6=("2001:db8:4::1/64", "2001:db8:4::2/64"))
    lab.link(ns["a"], ns["ca"], v4=("198.51.100.1/25", "198.51.100.2/25"),
             v6=("2001:db8:a::1/64", "2001:db8:a::2/64"))
    lab.link(ns["c"], ns["cc"], v4=("198.51.100.129/25", "198.51.100.130/25"),
             v6=("2001:db8:c::1/64", "2001:db8:c::2/64"))
    for r in ("a", "b", "c"):
        ns[r].forwarding(True)
    # static forwarding along the chain (BIRD here has no kernel protocol: the
    # real-data routes never reach a kernel table)
    lab4, lan4, lab6 = "192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"
    _routes(ns["x"], (lab4, "192.0.2.1"), (lan4, "192.0.2.1"), (lab6, "2001:db8:1::1"))
    _routes(ns["a"], (lab4, "192.0.2.10"), (lan4, "192.0.2.10"), (lab6, "2001:db8:2::2"))
    _routes(ns["b"], ("192.0.2.0/29", "192.0.2.9"), ("198.51.100.0/25", "192.0.2.9"),
            ("2001:db8:1::/64", "2001:db8:2::1"), ("2001:db8:a::/64", "2001:db8:2::1"),
            ("192.0.2.24/29", "192.0.2.18"), ("198.51.100.128/25", "192.0.2.18"),
            ("2001:db8:4::/64", "2001:db8:3::2"), ("2001:db8:c::/64", "2001:db8:3::2"))
    _routes(ns["c"], (lab4, "192.0.2.17"), (lan4, "192.0.2.17"), (lab6, "2001:db8:3::1"))
    _routes(ns["y"], (lab4, "192.0.2.25"), (lan4, "192.0.2.25"), (lab6, "2001:db8:4::1"))
    _routes(ns["ca"], (lab4, "198.51.100.1"), (lan4, "198.51.100.1"), (lab6, "2001:db8:a::1"))
    _routes(ns["cc"], (lab4, "198.51.100.129"), (lan4, "198.51.100.129"), (lab6, "2001:db8:c::1"))
    webs = ssl.add_web(lab, ns, tls)
    if setup:
        setup(ns)
    harness.wait_until(lambda: ns["x"].reachable(Y4) and ns["x"].reachable(Y6)
                      and ns["ca"].reachable(ssl.CC4) and ns["cc"].reachable(X6), 15,
                      desc="X reaches Y and the clients each other through A, B, C")
    web = [(p, a) for p in ("x", "y") for fam in ("A", "AAAA") for a in sorted(ANSWERS[p][fam])]
    harness.wait_until(lambda: all(ns[s].reachable(a, 80) for s in ("x", "y") for _, a in web), 15,
                      desc="X and Y reach every POP's web server")

    prefixes = ssl.pick_prefixes()
    model = ssl.Model(prefixes)
    birds = {}
    for n in NETS:
        text = (EXAMPLE / f"bird-{n}.conf").read_text()
        b = lab.bird(ns[n], f"bird-{n}", bird_edit(n, text) if bird_edit else text)
        (b.dir / f"routes-{n}.conf").write_text(ssl.routes_conf(prefixes.by_net[n]))
        birds[n] = b.start().wait_ready()
    sp = {}
    for p in ("x", "y"):
        sp[p] = example_sparrowd(lab, ns[p], p, edit).start().wait_ready()

    rng = random.Random(7)
    clients: dict = {n: [] for n in NETS}
    for n, p, _ in prefixes.all():
        a = model.client_in(p, rng)
        if a is not None:
            clients[n].append(a)
    return Env(lab, ns, birds, sp, prefixes, model, clients, webs)


def module_env(request, tmp_path_factory, name: str, build_kwargs=lambda lab: {}):
    """A test module's ``env`` fixture body (``yield from`` it): the lab named ``name``
    built with ``build_kwargs(lab)`` (see build), converged, yielded, its logs shown on
    failure, cleaned up."""
    lab = harness.Lab(name, tmp_path_factory.mktemp(name))
    try:
        e = build(lab, **build_kwargs(lab))
        wait_converged(e)
        yield e
    except BaseException:
        print(f"\n===== lab logs =====\n{lab.log_tails(60)}")
        raise
    finally:
        if request.session.testsfailed or os.environ.get("SPARROW_LAB_VERBOSE"):
            print(f"\n===== lab logs ({lab.workdir}) =====\n{lab.log_tails(60)}")
        lab.cleanup()


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    yield from module_env(request, tmp_path_factory, "ssparrow")


# ---------------------------------------------------------------------------
# expectations


def chain(u: str, n: str) -> list[int]:
    i, j = NETS.index(u), NETS.index(n)
    step = 1 if j >= i else -1
    return [ASN[NETS[k]] for k in range(i, j + step, step)]


def expected_paths(env: Env, pop: str) -> set:
    """{(prefix, 'upstream'|'pop', path)}: everything from the upstream; from the other
    POP what it learned from its own upstream and holds as its best path."""
    other = "y" if pop == "x" else "x"
    out = set()
    for n, p, o in env.prefixes.all():
        tail = [o] if o is not None else []
        out.add((str(p), "upstream", harness.norm_path(chain(UPSTREAM[pop], n) + tail)))
        if env.model.ranking_for_net(other, n)[0] == other:
            out.add((str(p), "pop", harness.norm_path([ASN[other]] + chain(UPSTREAM[other], n) + tail)))
    return out


def actual_paths(sp: harness.Sparrowd) -> set:
    up = {"a4", "a6", "c4", "c6"}
    return {(str(ipaddress.ip_network(r["prefix"])), "upstream" if r["peer"] in up else "pop",
             harness.dump_path(r["as_path"])) for r in sp.dump()}


PEERS = {"x": ("a4", "a6", "y4", "y6"), "y": ("c4", "c6", "x4", "x6")}
BIRD_PROTOS = {"a": ("pop_x4", "pop_x6", "net_b4", "net_b6"), "b": ("net_a4", "net_a6", "net_c4", "net_c6"),
               "c": ("net_b4", "net_b6", "pop_y4", "pop_y6")}


def all_clients(env: Env) -> list:
    return [a for n in NETS for a in env.clients[n]]


def lookup_matches(env: Env, pop: str) -> bool:
    addrs = all_clients(env) + [ipaddress.ip_address(a) for a in (ssl.CA4, ssl.CA6, ssl.CC4, ssl.CC6)]
    got = env.sp[pop].lookup(addrs)
    return got == [env.model.ranking(pop, a)[0] for a in addrs]


def wait_converged(env: Env, timeout: float = 90.0) -> None:
    for pop in ("x", "y"):
        env.sp[pop].wait_established(*PEERS[pop], timeout=60)
    for n, b in env.birds.items():
        b.wait_established(*BIRD_PROTOS[n], timeout=60)
    for pop in ("x", "y"):
        harness.wait_equal(lambda: actual_paths(env.sp[pop]), expected_paths(env, pop), timeout,
                          desc=f"POP {pop}'s paths")
        harness.wait_until(lambda: lookup_matches(env, pop), 30, interval=0.5,
                          desc=f"POP {pop}'s steering snapshot matches the model")


# ---------------------------------------------------------------------------
# tests


def test_example_configs_are_valid(sparrow_bin, tmp_path):
    """The example's files as shipped: sparrowd --check-config, bird -p (routes-*.conf beside)."""
    for pop in ("x", "y"):
        p = harness.run([str(sparrow_bin / "sparrowd"), "--check-config", str(EXAMPLE / f"pop-{pop}.yaml")],
                       check=False)
        assert p.returncode == 0, p.stdout + p.stderr
    for n in NETS:
        p = harness.run([harness.BIRD, "-p", "-c", str(EXAMPLE / f"bird-{n}.conf")], check=False)
        assert p.returncode == 0, p.stdout + p.stderr
    # and with the lab's generated route lists
    prefixes = ssl.pick_prefixes()
    for n in NETS:
        shutil.copy(EXAMPLE / f"bird-{n}.conf", tmp_path / f"bird-{n}.conf")
        (tmp_path / f"routes-{n}.conf").write_text(ssl.routes_conf(prefixes.by_net[n]))
        p = harness.run([harness.BIRD, "-p", "-c", str(tmp_path / f"bird-{n}.conf")], check=False)
        assert p.returncode == 0, p.stdout + p.stderr


def test_real_data_prefixes():
    """The lab carries a few hundred real prefixes per network, with nested pairs across networks."""
    pf = ssl.pick_prefixes()
    assert pf.by_net == ssl.pick_prefixes().by_net, "prefix choice is not deterministic"
    for n in NETS:
        fams = {p.version for p, _ in pf.by_net[n]}
        assert len(pf.by_net[n]) >= 150 and fams == {4, 6}, (n, len(pf.by_net[n]))
    assert len(pf.pairs) == 5
    for cn, cover, sn, spec in pf.pairs:
        assert cn != sn and spec.subnet_of(cover) and spec != cover


def test_sessions_and_tables(env):
    for pop in ("x", "y"):
        st = {p["name"]: p["state"] for p in env.sp[pop].peers()}
        assert all(st[n] == "Established" for n in PEERS[pop]), st
        assert actual_paths(env.sp[pop]) == expected_paths(env, pop)


def test_steering_matches_model(env):
    """explain per client address at X (and a sample at Y): ranking, matched prefix, safe scope."""
    exact = 0
    for pop, addrs in (("x", all_clients(env)), ("y", all_clients(env)[::7])):
        for a in addrs:
            e = env.sp[pop].explain(a)
            assert e["source"] == "rib", e
            assert tuple(e["ranking"]) == env.model.ranking(pop, a), (pop, str(a), e)
            deepest = env.model.deepest(a)
            assert ipaddress.ip_network(e["prefix"]).subnet_of(deepest) or \
                deepest.subnet_of(ipaddress.ip_network(e["prefix"])), (pop, str(a), deepest, e)
            assert env.model.uniform(pop, a, e["scope"]), f"unsafe scope at {pop}: {a} {e}"
            want = env.model.exact_scope(pop, a)
            if want is not None:
                exact += 1
                assert e["scope"] == want, (pop, str(a), deepest, e)
    assert exact >= 400, exact


def _ecs(a) -> str:
    a = ipaddress.ip_address(a)
    return f"{a}/{a.max_prefixlen}"


def _rtype(a) -> str:
    return "A" if ipaddress.ip_address(a).version == 4 else "AAAA"


def check_answer(env: Env, pop_server: str, a, ans: ssl.Answer, ecs: bool = True) -> None:
    first = env.model.ranking(pop_server, a)[0]
    assert ans.rcode == "NOERROR", (pop_server, str(a), ans)
    assert set(ans.addrs) == ANSWERS[first][_rtype(a)], (pop_server, str(a), first, ans)
    if ecs:
        e = env.sp[pop_server].explain(a)
        assert ans.scope == e["scope"], (pop_server, str(a), ans, e)
        want = env.model.exact_scope(pop_server, a)
        if want is not None:
            assert ans.scope == want, (pop_server, str(a), ans, want)


def test_dns_ecs_steering(env):
    """dnspython from the client in C, ECS = every client address: X's and Y's answers
    follow the model; the scope equals explain's and the matched prefix length."""
    cc = env.ns["cc"]
    addrs = all_clients(env)
    for pop, server4 in (("x", X4), ("y", Y4)):
        qs = [{"server": server4, "rtype": _rtype(a), "ecs": _ecs(a)} for a in addrs]
        for a, ans in zip(addrs, ssl.py_queries(cc, qs)):
            first = env.model.ranking(pop, a)[0]
            assert ans.rcode == "NOERROR" and set(ans.addrs) == ANSWERS[first][_rtype(a)], (pop, str(a), ans)
            want = env.model.exact_scope(pop, a)
            if want is not None:
                assert ans.scope == want, (pop, str(a), env.model.deepest(a), ans)
            assert ans.scope is not None and env.model.uniform(pop, a, ans.scope), (pop, str(a), ans)


def test_dig_client_in_c_gets_y_and_client_in_a_gets_x(env):
    cc = env.ns["cc"]
    for n, want_pop in (("c", "y"), ("a", "x")):
        for a in [a for a in env.clients[n] if env.model.exact_scope("x", a) is not None][:6] + \
                 [a for a in env.clients[n] if a.version == 6][:4]:
            assert env.model.ranking("x", a)[0] == want_pop
            for server in (X4, X6):
                ans = ssl.dig_query(cc, server, _rtype(a), _ecs(a))
                check_answer(env, "x", a, ans)
                assert ans.scope == env.model.deepest(a).prefixlen or env.model.exact_scope("x", a) is None
    # nested pairs: the more-specific's client gets its network's POP, the covering
    # prefix's client (outside the more-specific) gets the other one, with a scope
    # that does not reach into the more-specific
    for cn, cover, sn, spec in env.prefixes.pairs:
        inner = next(a for a in env.clients[sn] if a in spec)
        outer = next(a for a in env.clients[cn] if a in cover)
        for a in (inner, outer):
            ans = ssl.dig_query(cc, X4, _rtype(a), _ecs(a))
            check_answer(env, "x", a, ans)
        a_in = ssl.dig_query(cc, X4, _rtype(inner), _ecs(inner))
        assert env.model.exact_scope("x", inner) in (None, spec.prefixlen)
        assert a_in.scope == spec.prefixlen or env.model.exact_scope("x", inner) is None, (spec, a_in)
        a_out = ssl.dig_query(cc, X4, _rtype(outer), _ecs(outer))
        block = ipaddress.ip_network(f"{outer}/{a_out.scope}", strict=False)
        assert not block.overlaps(spec) or env.model.ranking("x", outer) == env.model.ranking("x", inner), \
            (outer, a_out, spec)


def test_dns_without_ecs_uses_source_address(env):
    """No ECS: the querier's address decides (clients' LANs are originated by A and C)."""
    for client, srcs in (("cc", (ssl.CC4, ssl.CC6)), ("ca", (ssl.CA4, ssl.CA6))):
        for src, server in zip(srcs, (X4, X6)):
            for rtype in ("A", "AAAA"):
                ans = ssl.dig_query(env.ns[client], server, rtype)
                e = env.sp["x"].explain(src)
                assert e["ranking"][0] == env.model.ranking("x", src)[0], e
                assert ans.rcode == "NOERROR" and set(ans.addrs) == ANSWERS[e["ranking"][0]][rtype], \
                    (client, src, ans, e)
                assert ans.scope is None, ans
    # from inside X itself (its link address is in no routed prefix): the local POP
    ans = ssl.dig_query(env.ns["x"], X4, "A")
    assert env.sp["x"].explain(X4)["ranking"][0] == "x"
    assert set(ans.addrs) == ANSWERS["x"]["A"], ans


def test_dig_kdig_dnspython_agree(env):
    cc = env.ns["cc"]
    picks = []
    for n in NETS:
        picks += [a for a in env.clients[n] if a.version == 4][:2] + [a for a in env.clients[n] if a.version == 6][:2]
    picks += [ipaddress.ip_address(ssl.CC4), ipaddress.ip_address(ssl.CA6)]
    for server in (X4, X6, Y4):
        pop = "x" if server in (X4, X6) else "y"
        qs = [{"server": server, "rtype": _rtype(a), "ecs": _ecs(a)} for a in picks]
        py = ssl.py_queries(cc, qs)
        for a, p in zip(picks, py):
            d = ssl.dig_query(cc, server, _rtype(a), _ecs(a))
            k = ssl.kdig_query(cc, server, _rtype(a), _ecs(a))
            assert d.key() == k.key() == p.key(), (server, str(a), d, k, p)
            check_answer(env, pop, a, d)
        # TCP gives the same
        a = picks[0]
        assert ssl.dig_query(cc, server, _rtype(a), _ecs(a), tcp=True).key() == py[0].key()


# ---------------------------------------------------------------------------
# protocol behaviour at POP X, over the lab's real addresses (from the client in C)

ZONE = "example.test."
TRANSPORTS = ((), ("+tcp",))  # dig over UDP, over TCP


def _soa(r: ssl.DigReply) -> list:
    return [rr for rr in r.authority if rr[3] == "SOA" and rr[0].lower() == ZONE]


def _txt(rdata: str) -> str:
    assert rdata.startswith('"') and rdata.endswith('"'), rdata
    return rdata[1:-1]


def test_tcp_answers_like_udp_over_ipv4_and_ipv6(env):
    """dig +tcp to X's IPv4 and IPv6 address gives the same steered answer and ECS scope
    as UDP: clients steered to X and to Y, A and AAAA, with ECS and without."""
    cc = env.ns["cc"]
    picks = []
    for n in ("a", "b", "c"):
        picks += [a for a in env.clients[n] if a.version == 4][:2] + [a for a in env.clients[n] if a.version == 6][:2]
    assert {env.model.ranking("x", a)[0] for a in picks} == {"x", "y"}
    for server in (X4, X6):
        for a in picks:
            udp = ssl.dig_query(cc, server, _rtype(a), _ecs(a))
            tcp = ssl.dig_query(cc, server, _rtype(a), _ecs(a), tcp=True)
            check_answer(env, "x", a, tcp)
            assert tcp.key() == udp.key(), (server, str(a), udp, tcp)
        # without ECS the transport's source address decides, over TCP as over UDP
        src = ssl.CC4 if server == X4 else ssl.CC6
        first = env.model.ranking("x", src)[0]
        for rtype in ("A", "AAAA"):
            udp = ssl.dig_query(cc, server, rtype)
            tcp = ssl.dig_query(cc, server, rtype, tcp=True)
            assert tcp.key() == udp.key() and set(tcp.addrs) == ANSWERS[first][rtype], (server, rtype, udp, tcp)
            assert tcp.scope is None, tcp


def test_authoritative_flags(env):
    """AA set, RA clear (with and without RD), RD echoed; UDP and TCP, IPv4 and IPv6."""
    cc = env.ns["cc"]
    for server in (X4, X6):
        for tr in TRANSPORTS:
            for rd in ("+norec", "+rec"):
                r = ssl.dig_msg(cc, server, ssl.QNAME, "A", rd, *tr)
                assert r.status == "NOERROR" and r.answer, r.text
                assert "aa" in r.flags and "ra" not in r.flags, (server, tr, rd, r.flags)
                assert ("rd" in r.flags) == (rd == "+rec"), (server, tr, rd, r.text)


def test_negative_answers_carry_the_soa(env):
    """NXDOMAIN and NODATA (a steered name's TXT, a static name's MX): AA, empty answer,
    the zone's SOA in authority (RFC 2308)."""
    cc = env.ns["cc"]
    for server in (X4, X6):
        for tr in TRANSPORTS:
            for name, rtype, status in (("no-such-name.example.test", "A", "NXDOMAIN"),
                                        ("deeper.no-such-name.example.test", "AAAA", "NXDOMAIN"),
                                        (ssl.QNAME, "TXT", "NOERROR"), ("ns1.example.test", "MX", "NOERROR")):
                r = ssl.dig_msg(cc, server, name, rtype, "+norec", *tr)
                assert r.status == status and "aa" in r.flags, (server, tr, name, rtype, r.text)
                assert not r.answer, r.text
                assert len(_soa(r)) == 1, r.text


def test_outside_the_zone_is_refused(env):
    """Names in no zone of ours (another TLD, the zone's parent): REFUSED, no AA, nothing."""
    cc = env.ns["cc"]
    for server in (X4, X6):
        for tr in TRANSPORTS:
            for name, rtype in (("www.example.org", "A"), ("test", "SOA"), ("example.com", "NS")):
                r = ssl.dig_msg(cc, server, name, rtype, "+norec", *tr)
                assert r.status == "REFUSED", (server, tr, name, r.text)
                assert "aa" not in r.flags and not r.answer and not r.authority, r.text


def test_minimal_any(env):
    """ANY at the steered name and at the apex returns one RRset (RFC 8482); at the
    steered name it is the chosen POP's address set."""
    cc = env.ns["cc"]
    a_c = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y")
    a_a = next(a for a in env.clients["a"] if a.version == 4 and env.model.ranking("x", a)[0] == "x")
    for server in (X4, X6):
        for tr in TRANSPORTS:
            for a in (a_c, a_a):
                r = ssl.dig_msg(cc, server, ssl.QNAME, "ANY", f"+subnet={_ecs(a)}", *tr)
                assert r.status == "NOERROR" and "aa" in r.flags, r.text
                assert len(r.rrsets()) == 1, (server, tr, r.text)
                (_, _, typ), = r.rrsets()
                first = env.model.ranking("x", a)[0]
                assert typ in ("A", "AAAA") and {rr[4] for rr in r.answer} == ANSWERS[first][typ], r.text
            r = ssl.dig_msg(cc, server, ZONE, "ANY", *tr)
            assert r.status == "NOERROR" and "aa" in r.flags and len(r.rrsets()) == 1, (server, tr, r.text)


def test_chaos_identity(env):
    """CH TXT id.server and hostname.bind name the POP answering: x at X, y at Y."""
    cc = env.ns["cc"]
    for pop, servers in (("x", (X4, X6)), ("y", (Y4, Y6))):
        for server in servers:
            for tr in TRANSPORTS:
                for name in ("id.server", "hostname.bind"):
                    r = ssl.dig_msg(cc, server, name, "TXT", *tr, qclass="CH")
                    assert r.status == "NOERROR", (server, tr, name, r.text)
                    assert [(rr[0].lower(), rr[2], rr[3], _txt(rr[4])) for rr in r.answer] == \
                        [(f"{name}.", "CH", "TXT", pop)], (server, tr, name, r.text)


def test_truncation_without_edns_and_complete_over_tcp(env):
    """The example's TXT set at big.example.test is over 512 bytes: without EDNS the UDP
    answer has TC set; over TCP (and over UDP with EDNS, 1232 bytes) it is complete."""
    cc = env.ns["cc"]
    big = ssl.big_txt("x")
    # each record: compressed owner 2, type/class/TTL/length 10, string length 1, string
    assert len(big) >= 2 and sum(13 + len(t) for t in big) > 512 and big == ssl.big_txt("y"), big
    for server in (X4, X6):
        r = ssl.dig_msg(cc, server, ssl.BIG_TXT_NAME, "TXT", "+noedns", "+ignore")
        assert r.status == "NOERROR" and "tc" in r.flags and "aa" in r.flags, (server, r.text)
        assert len(r.answer) < len(big), r.text
        for opts in (("+tcp",), ("+tcp", "+noedns"), ()):
            r = ssl.dig_msg(cc, server, ssl.BIG_TXT_NAME, "TXT", *opts)
            assert r.status == "NOERROR" and "tc" not in r.flags, (server, opts, r.text)
            assert sorted(_txt(rr[4]) for rr in r.answer) == sorted(big), (server, opts, r.text)


def _dnsperf_stats(out: str) -> dict:
    g = lambda pat: (re.search(pat, out) or [None, None])[1]  # noqa: E731
    return {"sent": int(g(r"Queries sent:\s+(\d+)") or -1), "completed": int(g(r"Queries completed:\s+(\d+)") or -1),
            "lost": int(g(r"Queries lost:\s+(\d+)") or -1), "rcodes": g(r"Response codes:\s+(.*)") or ""}


def test_dnsperf_varied_ecs_loses_nothing(env):
    """2,000 queries, each with another ECS address from A/B/C (v4 /32 -> A, v6 /56 -> AAAA),
    offered at 2,000 qps from the client in C, one pass (bounded count and time)."""
    rng = random.Random(11)
    pool = all_clients(env)
    addrs = [pool[rng.randrange(len(pool))] for _ in range(2000)]
    qfile = env.lab.path("dnsperf-ecs.bin")
    n = ssl.dnsperf_queries(qfile, addrs)
    p = env.ns["cc"].run(["dnsperf", "-B", "-d", str(qfile), "-s", X4, "-p", "53", "-Q", "2000", "-l", "10",
                          "-n", "1", "-t", "2", "-c", "2"], timeout=60, check=False)
    st = _dnsperf_stats(p.stdout)
    assert st["sent"] == n and st["completed"] == n and st["lost"] == 0, (st, p.stdout[-2000:], p.stderr[-500:])
    assert st["rcodes"].startswith(f"NOERROR {n} "), st


def test_pop_y_sparrowd_killed_service_fine(env):
    """Kill POP Y's sparrowd (SIGKILL) while Y's web servers are fine: the example's health
    checks, not the BGP session, decide Y's availability, and graceful restart keeps Y's
    routes at X (stale), so X keeps answering Y for the client in C, queried every 100 ms
    for hold time + 2 s; restart it: the sessions come back and the steering is the model's.
    (Failover on the BGP session alone, with no checks: test_failover.py.)"""
    cc, spx, spy = env.ns["cc"], env.sp["x"], env.sp["y"]
    a = next(a for a in env.clients["c"] if a.version == 4 and env.model.ranking("x", a)[0] == "y")
    a6 = next(a for a in env.clients["c"] if a.version == 6 and env.model.ranking("x", a)[0] == "y")
    assert set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS["y"]["A"]

    spy.proc.kill()
    harness.wait_until(lambda: all(p["state"] != "Established" for p in spx.peers() if p["name"] in ("y4", "y6")),
                       HOLD_TIME + 1, interval=0.1, desc="X's sessions to Y down")
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < HOLD_TIME + 2 and n < 200:
        assert set(ssl.dig_query(cc, X4, "A", _ecs(a)).addrs) == ANSWERS["y"]["A"], n
        n += 1
        time.sleep(0.1)
    assert set(ssl.dig_query(cc, X6, "AAAA", _ecs(a6)).addrs) == ANSWERS["y"]["AAAA"]
    assert spx.explain(str(a))["ranking"][0] == "y"

    spy.start().wait_ready()
    spx.wait_established(*PEERS["x"], timeout=60)
    harness.wait_equal(lambda: actual_paths(spx), expected_paths(env, "x"), 60, desc="X's paths after restart")
    harness.wait_until(lambda: lookup_matches(env, "x"), 30, interval=0.5, desc="X's steering after restart")


