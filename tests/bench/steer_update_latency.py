#!/usr/bin/env python3
"""Steering with 4 full tables in a real sparrowd: convergence rebuilds and UPDATE -> DNS answer.

One run:
 1. writes a sparrowd config (``steer-sparrow.yaml`` in the work directory): local POP
    ``bench`` (AS 64999), POP ``y`` (AS 65010, the 5th session below) and four POPs on
    frequent transit ASNs of the generated paths (1239, 7018, 701, 3257), so rankings are
    not trivial; 4 passive upstream peers 127.0.0.2-5 (the anchors' table ASNs), one passive
    ``role: pop`` peer 127.0.0.10 AS 65010; DNS on 127.0.0.1:PORT with a steered name
    ``www.bench.test`` (one A per POP); JSON logs with ``sparrow::steer=debug``;
 2. starts sparrowd, feeds the 4 tables with the anchors' ``bgp_blaster.py send`` (pre-encoded
    ``/tmp/anchors/bins/peerI.bin``), waits until all 5M paths are in and no snapshot has been
    published for 2 s, and reads from the log: the first RIB snapshot's build time, every later
    publication (count, us, ranges, rankings), RSS idle / converged / peak;
 3. opens the 5th session (AS 65010, ``role: pop``; a raw Python speaker that discards what
    sparrowd exports to it), waits until the export is drained, then for each mode
    (``v4-more-specific``: a /24 inside a shorter table prefix; ``v6-more-specific``: a /48;
    ``v4-better-path``: an existing prefix whose paths are all >= 3 ASes long, announced with
    ``65010 ORIGIN``) alternates announce / withdraw REPS times each, and times from just before
    the UPDATE is written to the socket until a dnspython ECS query for an address in the prefix
    returns POP y's address (announce) or the previous answer again (withdraw); queries in a
    tight loop over one UDP socket, each change bounded to 5 s, 0.4 s quiet between changes.

Everything is on loopback; the blasters and sparrowd are killed by PID at the end.
Prints one JSON line per measurement and appends them to --out.

Usage: steer_update_latency.py [--runs 3] [--reps 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime

import dns.edns
import dns.exception
import dns.message
import dns.query
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(ROOT, "tests/lab"))
import rawbgp  # noqa: E402

LOCAL_AS = 64999
Y_AS = 65010
Y_ADDR = "127.0.0.10"
TRANSIT_POPS = [1239, 7018, 701, 3257]
ZONE = "bench.test"


def pop_list(extra=()):
    """(name, ASN) of every POP; `extra`: ASNs of feeding peers made `role: pop` peers."""
    pops = [("bench", LOCAL_AS), ("y", Y_AS)] + [(f"t{a}", a) for a in TRANSIT_POPS]
    return pops + [(f"p{a}", a) for a in extra]


def pop_a(i: int) -> str:
    return f"10.0.0.{i + 1}"


def busy() -> list:
    """Other CPU-heavy work on this shared 2-core box (DNS benchmarks, rustc) running now."""
    r = subprocess.run(["pgrep", "-fa", "dns_bench|compare_dns|ecsperf|knotd|dnsperf|/rustc "],
                       capture_output=True, text=True)
    keys = ("dns_bench", "compare_dns", "ecsperf", "knotd", "dnsperf", "rustc")
    return sorted({k for ln in r.stdout.splitlines() for k in keys if k in ln})


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_config(path, sock, bgp_port, dns_port, peer_asns, log_level, pop_peers=()):
    """`pop_peers`: indices of feeding peers configured `role: pop` (a POP of their ASN)."""
    pops = pop_list([peer_asns[i] for i in pop_peers])
    lines = [
        f"local_asn: {LOCAL_AS}",
        "router_id: 192.0.2.254",
        "pop: bench",
        "pops:",
        *[f"  - {{name: {n}, asn: {a}}}" for n, a in pops],
        f"listen: {{enabled: true, addresses: [127.0.0.1], port: {bgp_port}}}",
        f"admin: {{socket: {sock}}}",
        f"logging: {{level: '{log_level}', format: json}}",
        "peers:",
    ]
    for i, asn in enumerate(peer_asns):
        role = "pop" if i in pop_peers else "upstream"
        lines.append(f"  - {{name: p{i}, address: 127.0.0.{2 + i}, remote_asn: {asn}, role: {role}, "
                     "passive: true, multihop: 255, hold_time: 240}")
    lines.append(f"  - {{name: y, address: {Y_ADDR}, remote_asn: {Y_AS}, role: pop, passive: true, "
                 "multihop: 255, hold_time: 240}")
    lines += [
        f'dns: {{listen: ["127.0.0.1:{dns_port}"]}}',
        "zones:",
        f"  - origin: {ZONE}",
        f"    soa: {{mname: ns1.{ZONE}, rname: hostmaster.{ZONE}}}",
        f"    ns: [ns1.{ZONE}]",
        "    steered:",
        "      - name: www",
        "        ttl: 30",
        "        pops:",
        *[f"          {n}: {{a: [{pop_a(i)}]}}" for i, (n, _) in enumerate(pops)],
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024.0  # MiB
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Ctl:
    def __init__(self, sock):
        self.sock = sock
        self.bin = os.path.join(ROOT, "target/release/sparrowctl")

    def run(self, *args, json_out=True):
        cmd = [self.bin, "-s", self.sock] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd}: {r.stderr.strip()}")
        return json.loads(r.stdout) if json_out else r.stdout


class LogTail:
    """Parses sparrowd's JSON log lines (wall-clock timestamps -> monotonic)."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.events = []
        self.offset = time.time() - time.monotonic()

    def poll(self):
        with open(self.path) as f:
            f.seek(self.pos)
            data = f.read()
        last_nl = data.rfind("\n")
        if last_nl < 0:
            return
        self.pos += len(data[: last_nl + 1].encode())
        for line in data[: last_nl + 1].splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ts = ev.get("timestamp")
            if ts:
                t = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                ev["mono"] = t - self.offset
            self.events.append(ev)

    def steer(self):
        return [e for e in self.events if str(e.get("fields", {}).get("message", "")).startswith("steering:")]


class DrainingBgp(rawbgp.RawBgp):
    """RawBgp whose reader keeps only the first messages (OPEN, KEEPALIVE, NOTIFICATION)
    and afterwards only counts bytes: sparrowd exports its whole table to a POP peer."""

    def _read_loop(self):
        buf = bytearray()
        self.rx_bytes = 0
        self.rx_last = time.monotonic()
        kept = 0
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    self.close_reason = "eof"
                    break
                self.rx_bytes += len(data)
                self.rx_last = time.monotonic()
                if kept < 3:
                    buf += data
                    for m in rawbgp.split_messages(buf):
                        if kept < 3:
                            kept += 1
                            self.q.put(m)
                        elif m.type == rawbgp.NOTIFICATION:
                            self.q.put(m)
                    if kept >= 3:
                        buf.clear()  # the rest is export data: not parsed
        except OSError as e:
            self.close_reason = f"{type(e).__name__}: {e}"
        finally:
            self.closed.set()
            self.q.put(None)


def dns_answer(sock, port, addr: str, srclen: int) -> str | None:
    q = dns.message.make_query(f"www.{ZONE}", "A", use_edns=0,
                               options=[dns.edns.ECSOption(addr, srclen)])
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1.0, sock=sock)
    except (dns.exception.Timeout, OSError):
        return None
    for rr in r.answer:
        if rr.rdtype == dns.rdatatype.A:
            return sorted(x.address for x in rr)[0]
    return None


# More-specific modes: (mode, IP version, lengths of the table prefix to cover,
# length of the more-specific announced inside it, ECS source length queried).
MORE_SPECIFIC = [
    ("v4-more-specific", 4, range(16, 23), 24, 24),
    ("v6-more-specific", 6, range(29, 41), 48, 56),
]


def pick_targets(ctl: Ctl, tables_dir: str, pop_asns: set, want: int = 10):
    """Targets per mode: (prefix to announce, address to query, ECS length, as path)."""
    out = {"v4-more-specific": [], "v6-more-specific": [], "v4-better-path": []}
    step = 0
    with open(os.path.join(tables_dir, "peer0.txt")) as f:
        for line in f:
            step += 1
            if step % 997:
                continue
            if all(len(v) >= want for v in out.values()):
                break
            pfx, path, _ = line.rstrip("\n").split("|")
            net = ipaddress.ip_network(pfx)
            asns = [int(a) for a in path.split()]
            ms = [m for m in MORE_SPECIFIC
                  if m[1] == net.version and net.prefixlen in m[2] and len(out[m[0]]) < want]
            if ms:
                mode, _, _, sub_len, ecs_len = ms[0]
                q = ipaddress.ip_network(f"{net.network_address}/{sub_len}")
                addr = str(q.network_address + 1)
                r = ctl.run("route", addr)
                if r.get("prefix") == pfx:
                    out[mode].append((str(q), addr, ecs_len, [Y_AS, 64600]))
            elif (net.version == 4 and net.prefixlen <= 24 and len(asns) >= 4
                  and asns[-1] not in pop_asns and len(out["v4-better-path"]) < want):
                addr = str(net.network_address + 1)
                r = ctl.run("route", addr)
                if r.get("prefix") != pfx or len(r.get("paths", [])) < 4:
                    continue
                lens = [sum(len(s["asns"]) for s in p["as_path_segments"]) for p in r["paths"]]
                if min(lens) >= 3:
                    out["v4-better-path"].append((pfx, addr, 24, [Y_AS, asns[-1]]))
    return out


def update_for(prefix: str, path, announce: bool) -> bytes:
    net = ipaddress.ip_network(prefix)
    if net.version == 4:
        return rawbgp.announce4([prefix], path, "192.0.2.10") if announce else rawbgp.withdraw4([prefix])
    return rawbgp.announce6([prefix], path, "2001:db8::10") if announce else rawbgp.withdraw6([prefix])


def pct(vals, p):
    s = sorted(vals)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def one_run(args, run_no: int, emit):
    workdir = os.path.join(args.workdir, f"run{run_no}")
    os.makedirs(workdir, exist_ok=True)
    sock = os.path.join(workdir, "s.sock")
    log_path = os.path.join(workdir, "sparrowd.log")
    meta = json.load(open(os.path.join(args.tables, "meta.json")))
    peer_asns = meta["peer_asns"][: args.peers]
    bgp_port, dns_port = free_port(), free_port()
    cfg = os.path.join(workdir, "steer-sparrow.yaml")
    write_config(cfg, sock, bgp_port, dns_port, peer_asns, "info,sparrow::steer=debug", args.pop_peers)
    procs = []
    logf = open(log_path, "w")
    sp = subprocess.Popen([args.sparrowd, "--config", cfg], stdout=logf, stderr=subprocess.STDOUT)
    procs.append(sp)
    ctl = Ctl(sock)
    y = None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ctl.run("paths", json_out=False)
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline or sp.poll() is not None:
                    raise RuntimeError(f"sparrowd did not start; see {log_path}")
                time.sleep(0.05)
        time.sleep(1.0)
        idle = proc_status(sp.pid)
        busy_start = busy()
        cpu0 = proc_cpu(sp.pid)
        tail = LogTail(log_path)
        # Feed the tables.
        blasters = []
        for i, asn in enumerate(peer_asns):
            b = subprocess.Popen(
                [sys.executable, os.path.join(args.anchors, "bgp_blaster.py"), "send",
                 "--bin", os.path.join(args.bins, f"peer{i}.bin"), "--connect", f"127.0.0.1:{bgp_port}",
                 "--bind", f"127.0.0.{2 + i}", "--asn", str(asn), "--linger", "3600"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(b)
            blasters.append(b)
        bl_events = []

        def read_blaster(b):
            for line in b.stdout:
                try:
                    bl_events.append(json.loads(line))
                except ValueError:
                    pass
        for b in blasters:
            threading.Thread(target=read_blaster, args=(b,), daemon=True).start()
        want = sum(json.load(open(os.path.join(args.bins, f"peer{i}.bin.json"))).get("prefixes", 0)
                   for i in range(args.peers)) or args.peers * meta["total"]
        t_start = time.monotonic()
        t_all = None
        deadline = t_start + args.timeout
        quiet_since = None
        while time.monotonic() < deadline:
            n = int(ctl.run("paths", json_out=False).strip() or 0)
            if t_all is None and n >= want:
                t_all = time.monotonic()
            tail.poll()
            st = tail.steer()
            rib_ready = any("answering from the RIB" in e["fields"]["message"] for e in st)
            if t_all is not None and rib_ready:
                last = max(e.get("mono", 0) for e in st)
                if time.monotonic() - last >= 2.0:
                    quiet_since = last
                    break
            time.sleep(0.05)
        if t_all is None or quiet_since is None:
            raise RuntimeError(f"no convergence within {args.timeout}s (paths {n}/{want})")
        conv = proc_status(sp.pid)
        cpu1 = proc_cpu(sp.pid)
        est = [e["t"] for e in bl_events if e.get("event") == "established" and "t" in e]
        t_est = min(est) if est else t_start
        st = tail.steer()
        first = next(e for e in st if "answering from the RIB" in e["fields"]["message"])
        later = [e for e in st if e["fields"]["message"] == "steering: snapshot published"]
        us = [e["fields"]["us"] for e in later]
        last_pub = later[-1] if later else first
        res = {
            "what": "convergence", "run": run_no, "peers": args.peers, "paths": want,
            "pop_peers": args.pop_peers,
            "ingest_s": round(t_all - t_est, 3),
            "first_rib_snapshot_ms": first["fields"].get("ms"),
            "first_rib_snapshot_at_s": round(first["mono"] - t_est, 3),
            "first_rib_prefixes_v4": first["fields"].get("prefixes_v4"),
            "first_rib_prefixes_v6": first["fields"].get("prefixes_v6"),
            "publications_after_first": len(later),
            "publication_us_median": statistics.median(us) if us else None,
            "publication_us_max": max(us) if us else None,
            "last_publication_after_all_paths_s": round(last_pub["mono"] - t_all, 3),
            "final_generation": last_pub["fields"].get("generation"),
            "ranges_v4": last_pub["fields"].get("ranges_v4"),
            "ranges_v6": last_pub["fields"].get("ranges_v6"),
            "rankings": last_pub["fields"].get("rankings"),
            "rss_idle_mib": round(idle.get("VmRSS", 0), 1),
            "rss_converged_mib": round(conv.get("VmRSS", 0), 1),
            "hwm_mib": round(conv.get("VmHWM", 0), 1),
            "cpu_s": round(cpu1 - cpu0, 2),
            "blaster_established": len(est),
            "overlap": sorted(set(busy_start) | set(busy())),
        }
        emit(res)

        # The 5th session: POP y.
        y = DrainingBgp.connect("127.0.0.1", bgp_port, source=Y_ADDR)
        y.establish(asn=Y_AS, hold=240, router_id="10.255.0.10")
        t_y = time.monotonic()
        dl = t_y + 120
        while time.monotonic() < dl and time.monotonic() - y.rx_last < 2.0:
            time.sleep(0.1)
        emit({"what": "pop_session_export", "run": run_no, "bytes": y.rx_bytes,
              "drained_after_s": round(y.rx_last - t_y, 3)})
        pops = {p["name"]: p for p in ctl.run("pops")["pops"]}
        if not pops["y"].get("up"):
            raise RuntimeError(f"POP y not up: {pops['y']}")
        targets = pick_targets(ctl, args.tables, set(a for _, a in pop_list(peer_asns)))
        y_answer = pop_a(1)
        qsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        qsock.bind(("127.0.0.1", 0))
        for mode, tl in targets.items():
            if not tl:
                emit({"what": "update_to_answer", "run": run_no, "mode": mode, "error": "no target found"})
                continue
            lat = {"announce": [], "withdraw": []}
            mode_busy = busy()
            queries = []
            errors = 0
            for rep in range(args.reps):
                prefix, addr, srclen, path = tl[rep % len(tl)]
                before = dns_answer(qsock, dns_port, addr, srclen)
                for announce in (True, False):
                    expect = y_answer if announce else before
                    msg = update_for(prefix, path, announce)
                    time.sleep(0.4)
                    t0 = time.monotonic()
                    y.send_raw(msg)
                    nq = 0
                    ok = False
                    while time.monotonic() - t0 < 5.0:
                        nq += 1
                        if dns_answer(qsock, dns_port, addr, srclen) == expect:
                            ok = True
                            break
                    dt = (time.monotonic() - t0) * 1e3
                    if ok:
                        lat["announce" if announce else "withdraw"].append(dt)
                        queries.append(nq)
                    else:
                        errors += 1
            allv = lat["announce"] + lat["withdraw"]
            rec = {"what": "update_to_answer", "run": run_no, "mode": mode, "changes": len(allv),
                   "overlap": sorted(set(mode_busy) | set(busy())),
                   "timeouts": errors, "targets": len(tl), "before_answer_example": before,
                   "queries_per_change_median": statistics.median(queries) if queries else None}
            for k, v in list(lat.items()) + [("all", allv)]:
                if v:
                    rec[k] = {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2),
                              "p99_ms": round(pct(v, 99), 2), "max_ms": round(max(v), 2), "n": len(v)}
            emit(rec)
        qsock.close()
        tail.poll()
        emit({"what": "after_updates", "run": run_no,
              "publications_total": len([e for e in tail.steer()
                                         if e["fields"]["message"] == "steering: snapshot published"]),
              "rss_mib": round(proc_status(sp.pid).get("VmRSS", 0), 1)})
    finally:
        if y is not None:
            y.close()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        logf.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=30, help="announce+withdraw pairs per mode")
    ap.add_argument("--peers", type=int, default=4)
    ap.add_argument("--tables", default="/tmp/anchors/tables")
    ap.add_argument("--bins", default="/tmp/anchors/bins")
    ap.add_argument("--anchors", default=os.path.abspath(os.path.join(ROOT, "../shared/anchors")))
    ap.add_argument("--workdir", default="/tmp/anchors/steer-runs")
    ap.add_argument("--sparrowd", default=os.path.join(ROOT, "target/release/sparrowd"))
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--pop-peers", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help="feeding peers (0-based, comma list) configured as role: pop peers of their own POP")
    ap.add_argument("--out", default="/tmp/anchors/results/steer_update_latency.jsonl")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    out = open(args.out, "a")

    def emit(rec):
        rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps(rec)
        print(line, flush=True)
        out.write(line + "\n")
        out.flush()
    for r in range(1, args.runs + 1):
        one_run(args, r, emit)
    out.close()


if __name__ == "__main__":
    main()
