"""Anycast scale-out inside one POP (issue 11): two sparrowd of POP X, on two hosts
(namespaces h1, h2) behind one router (namespace r, BIRD), announce the same
192.0.2.53/32 with the default condition (a DNS query of their own listener for the
zone's apex SOA, steering off the fallback map). BIRD's kernel protocol with
``merge paths`` installs one multipath route, and the router hashes flows on ports
(``fib_multipath_hash_policy=1``), so queries from many source ports are spread.

Topology::

    c (client 198.18.3.2) --- r (BIRD, AS 64510) ---+--- h1 (sparrowd x1, AS 65001)
                                                     +--- h2 (sparrowd x2, AS 65001)

Asserted:
  * both instances announce (``sparrowctl announcements``), and r's kernel route for
    the prefix has two next hops;
  * queries from many source ports reach both instances (CH TXT id.server: x1, x2);
  * h2 killed (SIGKILL): once BIRD has withdrawn its path (one next hop left), every
    query goes to h1 and none is lost.
"""
from __future__ import annotations

import json

import pytest

import harness

pytestmark = pytest.mark.sparrowd

ANYCAST = "192.0.2.53"
PREFIX = f"{ANYCAST}/32"
HOSTS = {"h1": ("198.18.1.1/30", "198.18.1.2/30"), "h2": ("198.18.2.1/30", "198.18.2.2/30")}
CLIENT = ("198.18.3.1/24", "198.18.3.2/24")
QUERIES = 200


def _router_bird() -> str:
    peers = "".join(
        f"""
protocol bgp {h} {{
  local {r.split('/')[0]} as 64510;
  neighbor {s.split('/')[0]} as 65001;
  direct;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  ipv4 {{ import filter from_sparrowd; export where source = RTS_STATIC; }};
}}""" for h, (r, s) in HOSTS.items())
    return f"""
router id 198.18.3.1;
log "@LOG@" all;
protocol device {{ scan time 10; }}
protocol static st4 {{ ipv4; route 203.0.113.0/24 unreachable; }}
filter from_sparrowd {{
  if net = {PREFIX} then accept;
  reject;
}}
protocol kernel k4 {{
  scan time 5;
  merge paths on;
  ipv4 {{ export where net = {PREFIX} && source = RTS_BGP; import none; }};
}}
{peers}
"""


def _sparrowd_config(name: str, router: str, router_id: str) -> str:
    return f"""
local_asn: 65001
router_id: {router_id}
pop: x
pops: [{{name: x, asn: 65001}}]
listen: {{enabled: false}}
admin: {{socket: "@SOCKET@"}}
logging: {{level: info, format: text}}
peers:
  - {{name: r, address: {router}, remote_asn: 64510, role: upstream, connect_retry: 1}}
dns:
  listen: ["{ANYCAST}:53"]
  identity: {name}
zones:
  - origin: example.test
    soa: {{mname: ns1, rname: hostmaster@example.test}}
    ns: [ns1]
    records:
      - {{name: ns1, type: A, data: {ANYCAST}}}
announce:
  - {{prefix: {PREFIX}, interval: 0.5, rise: 1, fall: 2, hold_down: 0}}
"""


# Run inside the client namespace: QUERIES CH TXT id.server queries, each from a new
# UDP socket (a new source port); prints {identity or "LOST": count}.
QUERY_SCRIPT = f"""
import collections, json, socket, dns.message, dns.query, dns.rdataclass
seen = collections.Counter()
for _ in range({QUERIES}):
    q = dns.message.make_query("id.server.", "TXT", rdclass=dns.rdataclass.CH)
    try:
        r = dns.query.udp(q, "{ANYCAST}", timeout=1.0)
        seen[r.answer[0][0].strings[0].decode()] += 1
    except Exception:
        seen["LOST"] += 1
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    lab = harness.Lab("sscaleout", tmp_path_factory.mktemp("scaleout"))
    try:
        ns = {k: lab.netns(k) for k in ("r", "h1", "h2", "c")}
        for h, cidrs in HOSTS.items():
            lab.link(ns["r"], ns[h], v4=cidrs)
            ns[h].run(["ip", "addr", "add", PREFIX, "dev", "lo"])
            ns[h].run(["ip", "route", "add", "default", "via", cidrs[0].split("/")[0]])
        lab.link(ns["r"], ns["c"], v4=CLIENT)
        ns["c"].run(["ip", "route", "add", "default", "via", CLIENT[0].split("/")[0]])
        ns["r"].forwarding(True)
        ns["r"].sysctl("net.ipv4.fib_multipath_hash_policy", 1)
        bird = lab.bird(ns["r"], "bird-r", _router_bird()).start().wait_ready()
        sp = {h: lab.sparrowd(ns[h], f"sparrowd-{h}", _sparrowd_config(f"x{h[1]}", cidrs[0].split("/")[0], cidrs[1].split("/")[0]))
              .start().wait_ready() for h, cidrs in HOSTS.items()}
        yield {"lab": lab, "ns": ns, "bird": bird, "sp": sp}
    except BaseException:
        print(f"\n===== lab logs =====\n{lab.log_tails(60)}")
        raise
    finally:
        if request.session.testsfailed:
            print(f"\n===== lab logs ({lab.workdir}) =====\n{lab.log_tails(60)}")
        lab.cleanup()


def next_hops(env) -> set[str]:
    """The next hops of r's kernel route for the anycast prefix."""
    out = env["ns"]["r"].sh(f"ip -4 route show {PREFIX}", check=False)
    return {w[i + 1] for line in out.splitlines() for w in [line.split()]
            for i, t in enumerate(w[:-1]) if t == "via"}


def spread(env) -> dict:
    out = env["ns"]["c"].run(["python3", "-c", QUERY_SCRIPT], timeout=QUERIES * 1.5).stdout
    return json.loads(out)


def test_both_instances_announce_and_the_router_installs_two_paths(env):
    for h, sp in env["sp"].items():
        harness.wait_until(lambda: sp.ctl_json("announcements")["announcements"][0]["state"] == "up",
                           30, desc=f"{h} announces")
    assert harness.wait_until(lambda: next_hops(env) == {"198.18.1.2", "198.18.2.2"}, 30,
                              desc="multipath route at r")


def test_queries_from_many_ports_reach_both(env):
    harness.wait_until(lambda: len(next_hops(env)) == 2, 30, desc="multipath route at r")
    seen = spread(env)
    assert seen.get("LOST", 0) == 0, seen
    assert seen.get("x1", 0) > 0 and seen.get("x2", 0) > 0, seen
    assert seen["x1"] + seen["x2"] == QUERIES, seen


def test_killed_instance_loses_nothing_after_the_withdrawal(env):
    harness.wait_until(lambda: len(next_hops(env)) == 2, 30, desc="multipath route at r")
    env["sp"]["h2"].proc.kill()
    harness.wait_until(lambda: next_hops(env) == {"198.18.1.2"}, 30,
                       desc="h2's path withdrawn at r")
    assert spread(env) == {"x1": QUERIES}
