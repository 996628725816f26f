"""Zone data against a running sparrowd, with real dig and kdig (issue 8, defects 1, 2 and 7).

One loopback sparrowd, no BGP peers: answers come from the `steering.fallback` map
(10.0.0.0/8 -> POP y, 10.1.0.0/16 -> POP x). Zones:
- `sparrow.test` from a zone file next to the config (`file: sparrow.zone`, relative),
  with `child NS` and its glue, a TXT wildcard `*.wild` and YAML records and a steered
  wildcard `*.cdn` merged on top;
- `child.sparrow.test`, served beside its parent (both zone orders are tried).

Checks the issue's commands: `dig +norec child.sparrow.test SOA` (AA, the child's SOA),
`nx.child.sparrow.test` (NXDOMAIN, the child's SOA), no duplicate RR in any section,
`x.wild.sparrow.test TXT` answered with the query name as owner, `*.cdn` per client (ECS),
the default SOA timers, a reload re-reading the zone file (a bad one keeps the running
zones), and a conflicting zone file rejected by `--check-config` with file:line.
"""

from __future__ import annotations

import subprocess

import pytest

from harness import ROOT, Lab, free_port, run, sparrow_config

pytestmark = pytest.mark.sparrowd

ZONE_FILE = """\
$ORIGIN sparrow.test.
$TTL 3600
@      IN SOA ns1 hostmaster ( 2026120401 14400 3600 1209600 300 )
       IN NS  ns1
ns1    IN A   192.0.2.53
child  IN NS  ns.child
ns.child IN A 192.0.2.99
*.wild IN TXT "wild answer"
"""

CDN = {"x": "192.0.2.10", "y": "198.51.100.10"}


def _zones(child_first: bool) -> list[dict]:
    parent = {"origin": "sparrow.test", "file": "sparrow.zone",
              "records": [{"name": "www", "type": "A", "data": "192.0.2.80"}],
              "steered": [{"name": "*.cdn", "ttl": 30, "pops": {p: {"a": [a]} for p, a in CDN.items()}}]}
    child = {"origin": "child.sparrow.test", "soa": {"mname": "ns", "rname": "hostmaster@sparrow.test"},
             "ns": ["ns"], "records": [{"name": "ns", "type": "A", "data": "192.0.2.99"}]}
    return [child, parent] if child_first else [parent, child]


def _config(dns_port: int, child_first: bool) -> dict:
    return sparrow_config(64999, "192.0.2.1", [], pop="x", pops={"x": 64999, "y": 65020}, listen=[],
                          steering={"default_pop": "x",
                                    "fallback": [{"prefix": "10.0.0.0/8", "pop": "y"},
                                                 {"prefix": "10.1.0.0/16", "pop": "x"}]},
                          dns={"listen": [f"127.0.0.1:{dns_port}"]}, zones=_zones(child_first))


def _start(lab: Lab, dns_port: int, child_first: bool, zone_text: str = ZONE_FILE):
    d = lab.sparrowd(ROOT, f"sparrowd-{int(child_first)}", _config(dns_port, child_first))
    d.conf.parent.mkdir(parents=True, exist_ok=True)
    (d.conf.parent / "sparrow.zone").write_text(zone_text)
    return d


def dig(port: int, *args: str) -> str:
    r = run(["dig", "@127.0.0.1", "-p", str(port), "+norec", "+time=2", "+tries=1", *args], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _section(out: str, name: str) -> list[tuple]:
    """Records of one dig section as (owner, ttl, class, type, rdata)."""
    rows, on = [], False
    for line in out.splitlines():
        if line.startswith(f";; {name} SECTION:"):
            on = True
            continue
        if on:
            if not line.strip() or line.startswith(";"):
                break
            f = line.split(None, 4)
            rows.append((f[0].lower(), f[1], f[2], f[3], f[4] if len(f) > 4 else ""))
    return rows


def _flags(out: str) -> set[str]:
    for line in out.splitlines():
        if line.startswith(";; flags:"):
            return set(line.split(";")[2].split(":")[1].split())
    return set()


def _status(out: str) -> str:
    return out.split("status: ", 1)[1].split(",", 1)[0]


def _no_duplicates(out: str) -> None:
    for s in ("ANSWER", "AUTHORITY", "ADDITIONAL"):
        rows = [(o, c, t, d) for o, _, c, t, d in _section(out, s)]
        assert len(rows) == len(set(rows)), f"duplicate RR in {s}:\n{out}"


@pytest.mark.parametrize("child_first", [False, True])
def test_nested_zone_wildcards_and_zone_file(tmp_path, child_first):
    port = free_port()
    with Lab("dnszone", tmp_path) as lab:
        d = _start(lab, port, child_first).start().wait_ready()

        # Defect 1: the child zone answers for its own apex and names.
        out = dig(port, "child.sparrow.test", "SOA")
        assert "aa" in _flags(out) and _status(out) == "NOERROR", out
        ans = _section(out, "ANSWER")
        assert [(a[0], a[3]) for a in ans] == [("child.sparrow.test.", "SOA")], out
        _no_duplicates(out)
        out = dig(port, "nx.child.sparrow.test", "A")
        assert _status(out) == "NXDOMAIN" and "aa" in _flags(out), out
        assert [(a[0], a[3]) for a in _section(out, "AUTHORITY")] == [("child.sparrow.test.", "SOA")], out
        out = dig(port, "child.sparrow.test", "NS")
        assert "aa" in _flags(out), out
        _no_duplicates(out)
        assert len(_section(out, "ADDITIONAL")) == 1, out

        # Defect 7: the default SOA timers (the child gives none) within Zonemaster's ranges.
        out = dig(port, "child.sparrow.test", "SOA")
        ans = _section(out, "ANSWER")
        assert len(ans) == 1, out  # (once seen empty in CI: the reply is kept to tell why)
        soa = ans[0][4].split()
        refresh, retry, expire, minimum = map(int, soa[3:7])
        assert refresh >= 14400 and 3600 <= retry < refresh, soa
        assert expire >= max(604800, 7 * refresh) and 300 <= minimum <= 86400, soa

        # Defect 2: the wildcard answers with the query name as owner (dig and kdig).
        out = dig(port, "x.wild.sparrow.test", "TXT")
        assert _status(out) == "NOERROR" and "aa" in _flags(out), out
        assert [(a[0], a[3], a[4]) for a in _section(out, "ANSWER")] == \
            [("x.wild.sparrow.test.", "TXT", '"wild answer"')], out
        k = run(["kdig", "@127.0.0.1", "-p", str(port), "+norec", "x.wild.sparrow.test", "TXT"], check=False)
        assert k.returncode == 0 and "x.wild.sparrow.test." in k.stdout and "malformed" not in k.stdout, k.stdout
        out = dig(port, "x.wild.sparrow.test", "A")
        assert _status(out) == "NOERROR" and not _section(out, "ANSWER"), out
        out = dig(port, "nope.sparrow.test", "A")
        assert _status(out) == "NXDOMAIN", out
        # The YAML record merged on top of the file.
        out = dig(port, "www.sparrow.test", "A")
        assert [a[4] for a in _section(out, "ANSWER")] == ["192.0.2.80"], out

        # Steered wildcard: each client its POP, over UDP and TCP.
        for subnet, pop in (("10.2.0.0/16", "y"), ("10.1.2.0/24", "x")):
            for tcp in ([], ["+tcp"]):
                out = dig(port, "img.cdn.sparrow.test", "A", f"+subnet={subnet}", *tcp)
                ans = _section(out, "ANSWER")
                assert [(a[0], a[4]) for a in ans] == [("img.cdn.sparrow.test.", CDN[pop])], out

        # explain with a name shows the wildcard.
        v = d.ctl("explain", "10.2.0.1", "img.cdn.sparrow.test")
        assert {a["wildcard"] for a in v["answers"]} == {"*.cdn.sparrow.test."}, v
        assert any(a["pop"] == "y" for a in v["answers"]), v

        # Reload re-reads the zone file; a bad one keeps the running zones.
        zf = d.conf.parent / "sparrow.zone"
        zf.write_text(ZONE_FILE + "new IN A 192.0.2.77\n")
        d.ctl("reload", as_json=False)
        assert [a[4] for a in _section(dig(port, "new.sparrow.test", "A"), "ANSWER")] == ["192.0.2.77"]
        zf.write_text(ZONE_FILE + "bad IN A not-an-address\n")
        r = d.run_ctl("reload")
        assert r.returncode != 0 and f"{zf}:9" in r.stdout + r.stderr, r.stdout + r.stderr
        assert [a[4] for a in _section(dig(port, "new.sparrow.test", "A"), "ANSWER")] == ["192.0.2.77"]
        d.stop()


def test_conflicting_zone_file_rejected_with_file_line(tmp_path):
    with Lab("dnszonebad", tmp_path) as lab:
        # `www A` is in the file and in the YAML records; a CNAME beside data at ns1.
        d = _start(lab, free_port(), False,
                   ZONE_FILE + "www IN A 192.0.2.81\nns1 IN CNAME www\n")
        r = d.check_config()
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        zf = str(d.conf.parent / "sparrow.zone")
        assert f"{zf}:9" in out and "www.sparrow.test." in out, out
        assert f"{zf}:10: zones[" in out and "ns1.sparrow.test." in out and "CNAME" in out, out
