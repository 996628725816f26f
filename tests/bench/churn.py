#!/usr/bin/env python3
"""UPDATE -> changed DNS answer with full tables loaded, quiet and while another peer churns.

One run (issue 10, "Under churn"):
 1. `steerlab.Lab`: sparrowd with PEERS full tables (the anchors' blaster, 127.0.0.2..),
    converged, and POP y's session (127.0.0.10, AS 65010, ``role: pop``) up with its export
    drained; plus a churn peer configured as ``role: upstream`` (127.0.0.20, AS 65020);
 2. the churn peer is a child process (this script with ``--churn-peer``: a raw Python BGP
    speaker on its own session). Before each window it pre-encodes RATE x SECONDS UPDATEs of
    one prefix each, alternating IPv4 /24s from 100.64.0.0/10 and IPv6 /48s from
    2001:db8:1000::/36 (in none of the generated tables: checked with ``sparrowctl route``
    below), announce then withdraw over a pool of POOL prefixes per family, with AS paths
    ``65020 <POP ASN> <origin>`` cycling over POP y and the four transit POPs, so each change
    adds or removes a prefix with its own ranking and the daemon has to republish. It sends
    them in batches of BATCH, paced to RATE per second, bounded by the count and by
    SECONDS + 5 s, then withdraws what is still announced (untimed) and reports;
 3. probes on POP y's session, one change at a time, IPv4 and IPv6 interleaved: announce a
    /24 inside a shorter table prefix (or a /48 inside a /29-/40) with path ``65010 64600``,
    then withdraw it; each change is timed from just before the UPDATE is written until a
    dnspython ECS query for an address in it returns POP y's address (announce) or the
    previous answer again (withdraw), bounded to 5 s; a random 20-50 ms gap before each change.
    A quiet window (same probes, no churn) comes first, then the churn windows; each phase
    repeats its SECONDS window (up to --max-windows) until it has --min-changes per family;
 4. per window: the daemon's CPU (utime+stime of /proc/PID/stat over the window, as cores),
    the snapshot publications sparrowd logged in it, the churn sender's achieved rate.

Prints one JSON line per measurement (also appended to --out) and a summary table on stderr.
Everything is on loopback; the children and sparrowd are killed by PID at the end.

Usage: churn.py [--peers 4] [--seconds 60] [--rate 1000] [--min-changes 300] [--runs 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import steerlab  # noqa: E402
from steerlab import (TRANSIT_POPS, Y_AS, Lab, busy,  # noqa: E402
                      dns_answer, pick_targets, pop_a, proc_cpu, stats, time_change, update_for)

CHURN_AS = 65020
CHURN_ADDR = "127.0.0.20"
CHURN_V4 = ipaddress.ip_network("100.64.0.0/10")
CHURN_V6 = ipaddress.ip_network("2001:db8:1000::/36")
CHURN_POPS = [Y_AS] + TRANSIT_POPS
PROBE_MODES = {"v4": "v4-more-specific", "v6": "v6-more-specific"}


# --------------------------------------------------------------------------- churn peer (child)

def churn_prefixes(pool: int):
    v4 = [str(n) for _, n in zip(range(pool), CHURN_V4.subnets(new_prefix=24))]
    v6 = [str(n) for _, n in zip(range(pool), CHURN_V6.subnets(new_prefix=48))]
    if len(v4) < pool or len(v6) < pool:
        raise ValueError(f"pool {pool} larger than the churn ranges")
    return v4, v6


def churn_messages(count: int, pool: int):
    """`count` UPDATEs (one prefix each), IPv4 and IPv6 alternating; per family the pool is
    announced in order, then withdrawn in order, and so on. Returns (messages, still announced)."""
    v4, v6 = churn_prefixes(pool)
    msgs = []
    announced = set()
    for k in range(count):
        fam = v4 if k % 2 == 0 else v6
        j = k // 2
        i = j % pool
        pfx = fam[i]
        announce = (j // pool) % 2 == 0
        path = [CHURN_AS, CHURN_POPS[i % len(CHURN_POPS)], 64512 + i % 1000]
        msgs.append(update_for(pfx, path, announce, nh4="192.0.2.20", nh6="2001:db8::20"))
        (announced.add if announce else announced.discard)(pfx)
    return msgs, announced


def churn_peer(a):
    """Child: establish, then per 'go' line on stdin one paced window; 'end' or EOF: close."""
    def say(**rec):
        print(json.dumps(rec), flush=True)
    s, _ = steerlab.drained_session(a.port, a.source, a.asn, "10.255.0.20", quiet=1.0, poll=0.05)
    say(event="ready", export_bytes=s.rx_bytes)
    count = int(a.rate * a.seconds)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        msgs, left = churn_messages(count, a.pool)
        batches = [b"".join(msgs[i:i + a.batch]) for i in range(0, len(msgs), a.batch)]
        interval = a.batch / a.rate
        say(event="encoded", messages=len(msgs), batches=len(batches))
        sent = 0
        max_lag = 0.0
        t0 = time.monotonic()
        hard_stop = t0 + a.seconds + 5.0
        for b, data in enumerate(batches):
            target = t0 + b * interval
            now = time.monotonic()
            if now < target:
                time.sleep(target - now)
            else:
                max_lag = max(max_lag, now - target)
            if time.monotonic() > hard_stop:
                break
            s.send_raw(data)
            sent += min(a.batch, count - b * a.batch)
        t1 = time.monotonic()
        say(event="done", t0=t0, t1=t1, sent=sent, elapsed_s=round(t1 - t0, 3),
            rate=round(sent / max(t1 - t0, 1e-9), 1), max_lag_ms=round(max_lag * 1e3, 2),
            cleanup_withdraws=len(left))
        if left:  # after the window: the next one starts from no churn prefix
            s.send_raw(b"".join(update_for(p, [], False) for p in sorted(left)))
    s.close()


class ChurnChild:
    """The churn peer process, driven over stdin/stdout."""

    def __init__(self, args, bgp_port: int):
        cmd = [sys.executable, os.path.abspath(__file__), "--churn-peer", "--port", str(bgp_port),
               "--source", CHURN_ADDR, "--asn", str(CHURN_AS), "--rate", str(args.rate),
               "--seconds", str(args.seconds), "--batch", str(args.batch), "--pool", str(args.pool)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def wait(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"churn peer: no '{event}' within {timeout}s") from None
            if ev is None:
                raise RuntimeError(f"churn peer exited (rc {self.p.poll()}) before '{event}'")
            if ev.get("event") == event:
                return ev

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("end\n")
                self.p.stdin.close()
                self.p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


# --------------------------------------------------------------------------- probes (parent)

class Prober:
    """Interleaved IPv4 / IPv6 announce+withdraw probes on POP y's session."""

    def __init__(self, lab: Lab, targets: dict, gap):
        self.lab = lab
        self.targets = targets
        self.gap = gap
        self.next = {f: 0 for f in targets}
        self.qsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.qsock.bind(("127.0.0.1", 0))
        self.y_answer = pop_a(1)

    def probe(self, fam: str, lat: dict, errors: dict):
        """One announce then withdraw of the family's next target; appends to lat[fam][kind]."""
        tl = self.targets[fam]
        prefix, addr, srclen, path = tl[self.next[fam] % len(tl)]
        self.next[fam] += 1
        before = dns_answer(self.qsock, self.lab.dns_port, addr, srclen)
        if before is None or before == self.y_answer:
            errors[fam]["skipped"] += 1
            return
        for announce in (True, False):
            time.sleep(random.uniform(*self.gap))
            msg = update_for(prefix, path, announce)
            expect = self.y_answer if announce else before
            ok, dt, _ = time_change(self.lab.y, self.qsock, self.lab.dns_port, msg, addr, srclen, expect)
            if ok:
                lat[fam]["announce" if announce else "withdraw"].append(dt)
            else:
                errors[fam]["timeouts"] += 1
                if not announce:
                    break

    def window(self, until: float, stop=lambda: False, mid=None):
        """Probe (v4, v6, v4, ...) until `until` or stop(); `mid` is called once between two
        probes after half the window. Returns (latencies, errors)."""
        lat = {f: {"announce": [], "withdraw": []} for f in self.targets}
        errors = {f: {"timeouts": 0, "skipped": 0} for f in self.targets}
        fams = list(self.targets)
        half = time.monotonic() + (until - time.monotonic()) / 2
        k = 0
        while time.monotonic() < until and not stop():
            if mid is not None and time.monotonic() >= half:
                mid()
                mid = None
            self.probe(fams[k % len(fams)], lat, errors)
            k += 1
        return lat, errors

    def close(self):
        self.qsock.close()


def settle(lab: Lab, quiet: float = 1.0, bound: float = 15.0):
    """Wait until sparrowd logged no publication for `quiet` s (bounded)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        lab.tail.poll()
        pubs = lab.tail.publications()
        last = pubs[-1].get("mono", 0) if pubs else 0
        if time.monotonic() - last >= quiet:
            return
        time.sleep(0.1)


def check_unrelated(lab: Lab, pool: int):
    """The churn prefixes must be in no table: sparrowctl route finds no prefix for samples."""
    v4, v6 = churn_prefixes(pool)
    for pfx in v4[:: max(1, pool // 8)] + v6[:: max(1, pool // 8)] + [str(CHURN_V4), str(CHURN_V6)]:
        addr = str(ipaddress.ip_network(pfx).network_address + 1)
        r = lab.ctl.run("route", addr)
        if isinstance(r, dict) and r.get("prefix"):
            raise RuntimeError(f"churn range is not unrelated: {addr} is in {r.get('prefix')}")


def phase(args, lab: Lab, prober: Prober, run_no: int, name: str, churn: ChurnChild | None, emit):
    """Windows of `args.seconds` until each family has args.min_changes changes (bounded)."""
    total = {f: {"announce": [], "withdraw": []} for f in prober.targets}
    errs = {f: {"timeouts": 0, "skipped": 0} for f in prober.targets}
    cpu_s = wall_s = pub_span = 0.0
    pubs_n = 0
    for w in range(1, args.max_windows + 1):
        overlap0 = busy()
        lab.tail.poll()
        done = {}
        paths = {"before": int(lab.ctl.run("paths", json_out=False).strip() or 0)}

        def mid():  # the churn is ingested: paths counted mid-window differ from before
            paths["mid"] = int(lab.ctl.run("paths", json_out=False).strip() or 0)
        if churn is not None:
            churn.go()
            churn.wait("encoded", 60)
        t0 = time.monotonic()
        c0 = proc_cpu(lab.sp.pid)
        if churn is not None:
            def stop():
                if not done:
                    try:
                        ev = churn.q.get_nowait()
                    except queue.Empty:
                        return False
                    if ev is None or ev.get("event") == "done":
                        done["ev"] = ev or {}
                return bool(done)
            lat, errors = prober.window(t0 + args.seconds, stop, mid)
            if not done:
                done["ev"] = churn.wait("done", args.seconds + 15)
            ev = done["ev"]
            t1 = ev.get("t1", time.monotonic())
        else:
            lat, errors = prober.window(t0 + args.seconds, mid=mid)
            ev = None
            t1 = time.monotonic()
        c1 = proc_cpu(lab.sp.pid)
        t_end = time.monotonic()
        lab.tail.poll()
        pubs = lab.tail.publications(t0, t1)
        us = sorted(e["fields"].get("us", 0) for e in pubs)
        rec = {"what": "window", "run": run_no, "phase": name, "window": w,
               "seconds": round(t_end - t0, 3), "daemon_cpu_s": round(c1 - c0, 3),
               "daemon_cpu_cores": round((c1 - c0) / max(t_end - t0, 1e-9), 3),
               "publications": len(pubs), "publications_per_s": round(len(pubs) / max(t1 - t0, 1e-9), 1),
               "publication_us_median": us[len(us) // 2] if us else None,
               "publication_us_max": us[-1] if us else None,
               "full_builds": sum(1 for e in pubs if "full" in (e["fields"].get("v4"), e["fields"].get("v6"))),
               "paths_before": paths["before"], "paths_mid": paths.get("mid"),
               "overlap": sorted(set(overlap0) | set(busy()))}
        if ev is not None:
            rec["churn"] = {k: ev.get(k) for k in ("sent", "elapsed_s", "rate", "max_lag_ms", "cleanup_withdraws")}
        for f in lat:
            allv = lat[f]["announce"] + lat[f]["withdraw"]
            rec[f] = dict(stats(allv) if allv else {"n": 0}, **errors[f])
            for k in ("announce", "withdraw"):
                total[f][k] += lat[f][k]
            for k in errs[f]:
                errs[f][k] += errors[f][k]
        emit(rec)
        cpu_s += c1 - c0
        wall_s += t_end - t0
        pubs_n += len(pubs)
        pub_span += t1 - t0
        if churn is not None:
            settle(lab)
        if all(len(total[f]["announce"]) + len(total[f]["withdraw"]) >= args.min_changes for f in total):
            break
    out = []
    for f in total:
        allv = total[f]["announce"] + total[f]["withdraw"]
        rec = {"what": "update_to_answer", "run": run_no, "phase": name, "family": f,
               "mode": PROBE_MODES[f], "changes": len(allv), "windows": w, "peers": args.peers,
               "churn_rate": args.rate if churn is not None else 0,
               "daemon_cpu_cores": round(cpu_s / max(wall_s, 1e-9), 3),
               "publications_per_s": round(pubs_n / max(pub_span, 1e-9), 1), **errs[f]}
        for k, v in list(total[f].items()) + [("all", allv)]:
            if v:
                rec[k] = stats(v)
        emit(rec)
        out.append(rec)
    return out


def one_run(args, run_no: int, emit):
    lab = Lab(args, os.path.join(args.workdir, f"run{run_no}"), log_level=args.log_level,
              extra_peers=[("churn", CHURN_ADDR, CHURN_AS, "upstream")])
    churn = prober = None
    try:
        emit(lab.converge(run_no))
        emit(lab.open_pop_y(run_no))
        check_unrelated(lab, args.pool)
        picked = pick_targets(lab.ctl, args.tables, lab.pop_asns())
        targets = {f: picked[m] for f, m in PROBE_MODES.items()}
        for f, tl in targets.items():
            if not tl:
                raise RuntimeError(f"no {f} probe target found")
        churn = ChurnChild(args, lab.bgp_port)
        ready = churn.wait("ready", 150)
        emit({"what": "churn_session", "run": run_no, "export_bytes": ready.get("export_bytes")})
        settle(lab)
        prober = Prober(lab, targets, (args.gap_min_ms / 1e3, args.gap_max_ms / 1e3))
        res = phase(args, lab, prober, run_no, "quiet", None, emit)
        res += phase(args, lab, prober, run_no, "churn", churn, emit)
        return res
    finally:
        if prober is not None:
            prober.close()
        if churn is not None:
            churn.close()
        lab.close()


def table(results) -> str:
    head = "| phase | family | changes | p50 ms | p99 ms | max ms | timeouts | daemon CPU (cores) | publications/s |"
    rows = [head, "|" + "---|" * 9]
    for r in results:
        a = r.get("all", {})
        rows.append(f"| {r['phase']} | {r['family']} | {r['changes']} | {a.get('p50_ms', '-')} | "
                    f"{a.get('p99_ms', '-')} | {a.get('max_ms', '-')} | {r['timeouts']} | "
                    f"{r['daemon_cpu_cores']} | {r['publications_per_s']} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steerlab.add_lab_args(ap, runs=1, peers=4, tables="/tmp/anchors/tables", bins="/tmp/anchors/bins",
                          workdir="/tmp/anchors/churn-runs", timeout=300, out="/tmp/anchors/results/churn.jsonl",
                          peers_help="full tables loaded (1-4)", timeout_help="convergence bound")
    steerlab.add_pop_peers_arg(ap)
    ap.add_argument("--seconds", type=float, default=60, help="length of one window (quiet or churn)")
    ap.add_argument("--rate", type=float, default=1000, help="churn UPDATEs per second")
    ap.add_argument("--batch", type=int, default=10, help="churn UPDATEs per write")
    ap.add_argument("--pool", type=int, default=1000, help="churn prefixes per family")
    ap.add_argument("--min-changes", type=int, default=300, help="per family and phase")
    ap.add_argument("--max-windows", type=int, default=3, help="windows per phase at most")
    ap.add_argument("--gap-min-ms", type=float, default=20)
    ap.add_argument("--gap-max-ms", type=float, default=50)
    ap.add_argument("--log-level", default="info,sparrow::steer=debug")
    # the churn peer child (internal)
    ap.add_argument("--churn-peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--asn", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.churn_peer:
        churn_peer(args)
        return
    print(table(steerlab.run_runs(args, one_run)), file=sys.stderr)


if __name__ == "__main__":
    main()
