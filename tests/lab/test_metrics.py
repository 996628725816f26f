"""Metrics (issue 12) in the Super Sparrow lab: each POP's sparrowd serves its
operations endpoint (``metrics.listen`` in the example, ``ADDRESS:9153``), and a real
Prometheus (Debian's package) in namespace B scrapes both every second. Asserted:
  * ``promtool check metrics`` accepts each exposition;
  * while a bounded dig loop runs against X, Prometheus's ``rate()`` of X's
    ``sparrow_dns_requests_total`` is above 0, and X's sampled query log
    (``logging.query_sample``) writes JSON lines for those queries;
  * Prometheus shows every peer's session Established at both POPs
    (``sparrow_bgp_session_established``, ``sparrow_bgp_session_state``);
  * ``/readyz``: Y restarted while C's sessions to it are disabled answers 503 naming
    the End-of-RIB it waits for (and ``/healthz`` 200); once C's sessions are enabled
    again, 200;
  * POP usability: X's ``sparrow_pop_usable{pop="y"}`` is 1, and 0 in Prometheus
    once POP Y is killed: its sparrowd and its web server (X's health checks of Y's
    addresses decide whether POP Y is up, so its sparrowd alone going away does not
    take it down).
"""
from __future__ import annotations

import json
import subprocess

import pytest

import harness
from super_sparrow_lab import X4, Y4
from test_super_sparrow import PEERS, module_env

pytestmark = pytest.mark.sparrowd

PORT = 9153
TARGET = {"x": f"{X4}:{PORT}", "y": f"{Y4}:{PORT}"}
SAMPLE = 10


def _edit(pop: str, text: str) -> str:
    """The example as it is (metrics on), plus the sampled query log at X."""
    if pop != "x":
        return text
    fmt = "logging:\n  level: info\n  format: text\n"
    assert text.count(fmt) == 1
    return text.replace(fmt, fmt + f"  query_sample: {SAMPLE}\n")


@pytest.fixture(scope="module")
def env(request, tmp_path_factory, _lab_session, sparrow_bin):
    gen = module_env(request, tmp_path_factory, "smetrics", lambda lab: {"edit": _edit})
    e = next(gen)
    try:
        e.prom = e.lab.prometheus(e.ns["b"], "prometheus", {"sparrow": list(TARGET.values())}).start().wait_ready()
    except BaseException:
        gen.close()
        raise
    yield e
    yield from gen


def get(env, pop: str, path: str) -> tuple[int, str]:
    """(status, body) of GET ``path`` on a POP's endpoint, from namespace B."""
    out = env.ns["b"].run(["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                           f"http://{TARGET[pop]}{path}"], check=False, timeout=10).stdout
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def scraped(env, expr: str) -> dict:
    """{(pop, other labels...): value} of a Prometheus query, the POP from ``instance``."""
    pop_of = {v: k for k, v in TARGET.items()}
    out = {}
    for s in env.prom.query(expr):
        m = dict(s["metric"])
        pop = pop_of.get(m.pop("instance", ""), "?")
        m.pop("job", None)
        m.pop("__name__", None)
        out[(pop, *sorted(m.items()))] = float(s["value"][1])
    return out


def test_exposition_passes_promtool(env):
    for pop in ("x", "y"):
        code, text = get(env, pop, "/metrics")
        assert code == 200, text
        ok, said = harness.promtool_check_metrics(text)
        assert ok, f"promtool check metrics ({pop}):\n{said}"
        for name in ("sparrow_dns_requests_total", "sparrow_bgp_session_established", "sparrow_pop_usable",
                     "sparrow_steering_snapshot_generation", "sparrow_rib_prefixes", "sparrow_build_info"):
            assert f"\n{name}" in text, f"{name} missing from {pop}'s exposition"


def test_dns_request_rate_while_dig_runs(env):
    sp = env.sp["x"]
    before = sp.log.read_text().count('"querylog":true')
    # A bounded loop: 400 queries, each with a 1 s timeout, the whole loop at most 60 s.
    loop = subprocess.Popen(env.ns["ca"].argv([
        "sh", "-c", f"for i in $(seq 400); do dig +short +tries=1 +time=1 @{X4} www.example.test A >/dev/null; done"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        expr = 'sum by (instance) (rate(sparrow_dns_requests_total{proto="udp"}[5s]))'
        rate = harness.wait_until(lambda: (v := scraped(env, expr).get(("x",))) and v > 0 and v, 40,
                                  interval=0.5, desc="Prometheus: rate of X's DNS requests above 0")
        assert rate > 0
    finally:
        try:
            loop.wait(timeout=60)
        except subprocess.TimeoutExpired:
            loop.kill()
            loop.wait()
    # The sampled query log: one JSON line per SAMPLE queries of a worker.
    lines = [json.loads(line) for line in sp.log.read_text().splitlines()
             if line.startswith("{") and '"querylog":true' in line]
    assert len(lines) > before, "no query log line"
    assert any(q["qname"] == "www.example.test." and q["pop"] in ("x", "y") and q["reason"] for q in lines), lines[-3:]


def test_prometheus_shows_every_session_state(env):
    want = {(pop, ("peer", p)) for pop in ("x", "y") for p in PEERS[pop]}

    def established():
        got = scraped(env, "sparrow_bgp_session_established == 1")
        return {(k[0], next(kv for kv in k[1:] if kv[0] == "peer")) for k in got}
    harness.wait_equal(established, want, 30, desc="Prometheus: sessions Established")
    states = scraped(env, 'sparrow_bgp_session_state{state="established"}')
    assert len(states) == len(want) and all(v == 1 for v in states.values()), states


def test_readyz_waits_for_the_first_end_of_rib(env):
    c, y = env.birds["c"], env.sp["y"]
    y.stop()
    for proto in ("pop_y4", "pop_y6"):
        c.birdc(f"disable {proto}")
    try:
        y.start().wait_ready()
        code, body = harness.wait_until(lambda: (r := get(env, "y", "/readyz"))[0] and r, 15,
                                        desc="Y's /readyz answers")
        assert code == 503, body
        assert "End-of-RIB" in body and "c4" in body, body
        assert get(env, "y", "/healthz")[0] == 200
    finally:
        for proto in ("pop_y4", "pop_y6"):
            c.birdc(f"enable {proto}")
    harness.wait_until(lambda: get(env, "y", "/readyz")[0] == 200, 60, desc="Y's /readyz 200 after End-of-RIB")
    env.sp["y"].wait_established(*PEERS["y"], timeout=60)


def test_pop_usability_follows_pop_y(env):
    usable = 'sparrow_pop_usable{pop="y"}'
    harness.wait_until(lambda: scraped(env, usable).get(("x", ("pop", "y"))) == 1, 30,
                       desc="Prometheus: X finds POP y usable")
    env.sp["y"].proc.kill()
    env.webs["y"].stop()
    harness.wait_until(lambda: scraped(env, usable).get(("x", ("pop", "y"))) == 0, 60,
                       desc="Prometheus: X finds POP y unusable after Y is killed")
    assert scraped(env, 'up{instance="%s"}' % TARGET["y"]).get(("y",)) == 0
