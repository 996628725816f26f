"""Config reload (SIGHUP and `sparrowctl reload`) against a running sparrowd on loopback.

A good file: new zone contents answer at once (dig), sections that need a restart
are named. A bad file: every error comes back as FILE:LINE: KEY: MESSAGE, the
reload fails (exit status 1), and the running configuration keeps answering.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from harness import free_port, loopback_sparrowd, wait_until

pytestmark = pytest.mark.sparrowd

ZONE = "example.test"


def _config(sock, dns_port: int, extra_records: list[str], peers: str = "[]") -> str:
    lines = [
        "local_asn: 64999",
        "router_id: 192.0.2.1",
        "pop: x",
        "pops: [{name: x, asn: 64999}, {name: y, asn: 65020}]",
        "listen: {enabled: false}",
        f"admin: {{socket: {sock}}}",
        "logging: {level: info, format: json}",
        f"peers: {peers}",
        f'dns: {{listen: ["127.0.0.1:{dns_port}"]}}',
        "zones:",
        f"  - origin: {ZONE}",
        f"    soa: {{mname: ns1, rname: hostmaster@{ZONE}}}",
        "    ns: [ns1]",
        "    records:",
        "      - {name: ns1, type: A, data: 192.0.2.53}",
        *[f"      - {r}" for r in extra_records],
        "    steered:",
        "      - name: www",
        "        pops: {x: {a: [192.0.2.10]}, y: {a: [192.0.2.20]}}",
    ]
    return "\n".join(lines) + "\n"


def _dig(port: int, name: str, rtype: str = "A") -> tuple[str, list[str]]:
    out = subprocess.run(["dig", f"@127.0.0.1", "-p", str(port), "+norec", "+time=2", "+tries=1",
                          "-t", rtype, "-q", name], capture_output=True, text=True, timeout=10).stdout
    status = next(l.split("status: ")[1].split(",")[0] for l in out.splitlines() if "status:" in l)
    answers = []
    in_answer = False
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
        elif in_answer and not line.strip():
            in_answer = False
        elif in_answer:
            answers.append(line.split()[-1])
    return status, answers


def test_reload_applies_zones_and_rejects_bad_files(tmp_path):
    port = free_port()
    with loopback_sparrowd(tmp_path, _config("@SOCKET@", port, [])) as d:
        sock, cfg = d.socket, d.conf
        wait_until(lambda: _dig(port, f"ns1.{ZONE}")[0] == "NOERROR", timeout=10)
        assert _dig(port, f"new.{ZONE}")[0] == "NXDOMAIN"

        # A good file: applied by `sparrowctl reload`, answers change at once.
        cfg.write_text(_config(sock, port, ["{name: new, type: A, data: 192.0.2.77}"]))
        r = d.run_ctl("--json", "reload")
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert rep["applied"] == ["zones"] and rep["needs_restart"] == []
        assert _dig(port, f"new.{ZONE}") == ("NOERROR", ["192.0.2.77"])

        # A bad file: every error named with file, line and key; nothing changes.
        bad = _config(sock, port, ["{name: new, type: A, data: 192.0.2.78}",
                                   "{name: other, type: MX, data: 'ten mail'}",
                                   "{name: elsewhere.example.org., type: A, data: 192.0.2.1}"])
        cfg.write_text(bad)
        r = d.run_ctl("--json", "reload")
        assert r.returncode == 1
        lines = bad.splitlines()
        mx_line = next(i for i, l in enumerate(lines, 1) if "ten mail" in l)
        org_line = next(i for i, l in enumerate(lines, 1) if "example.org" in l)
        assert f"{cfg}:{mx_line}: zones[0].records[2].data:" in r.stderr, r.stderr
        assert f"{cfg}:{org_line}: zones[0].records[3].name:" in r.stderr, r.stderr
        assert "keeping the running configuration" in r.stderr
        assert _dig(port, f"new.{ZONE}") == ("NOERROR", ["192.0.2.77"])
        assert _dig(port, f"other.{ZONE}")[0] == "NXDOMAIN"

        # SIGHUP does the same; a section that needs a restart is reported, not applied.
        cfg.write_text(_config(sock, port, ["{name: new, type: A, data: 192.0.2.79}"],
                               peers="[{name: p, address: 127.0.0.9, remote_asn: 65020, "
                                     "role: pop, multihop: 4}]"))
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_until(lambda: _dig(port, f"new.{ZONE}") == ("NOERROR", ["192.0.2.79"]), timeout=10)
        log = d.log_text()
        hup = [json.loads(l) for l in log.splitlines() if l.startswith("{")]
        restart = [e for e in hup if "need a restart" in e.get("fields", {}).get("message", "")]
        assert restart and "peers" in restart[-1]["fields"]["sections"], restart
        # The daemon still runs with no peers (the new peer is not started).
        peers = d.run_ctl("--json", "peers")
        assert peers.returncode == 0 and "127.0.0.9" not in peers.stdout, peers.stdout
        assert d.proc.poll() is None
