#!/usr/bin/env python3
"""Scale in POPs (issue 10): sparrowd with 64 POPs and 8 sessions each relaying a full table.

One run:
 1. writes a sparrowd config (``pops-scale.yaml`` in the run's work directory) with --pops
    POPs: the local POP ``bench`` (AS 64999); POP ``y`` (AS 65010, the change session below);
    one POP per feeding peer past --upstreams (``p<ASN>``, its session ``role: pop``, so its
    table's paths count for that POP); then POPs ``t<ASN>`` on the most frequent other ASNs in
    peer0's paths (the closest-POP rule puts them first where a path crosses them, so there
    are many distinct rankings); ``s<N>`` POPs on unused ASNs if the table has too few ASNs.
    The first --upstreams feeding peers are ``role: upstream``. JSON logs with
    ``sparrow::steer=debug`` (the ``steering:`` lines carry ``us=``/``ms=``);
 2. starts sparrowd, feeds the tables with the anchors' ``bgp_blaster.py send`` (binaries
    encoded into --bins from --tables if missing), waits until every path is in and no
    snapshot was published for 2 s; reports RSS idle / converged / peak, the time from the
    first Established to all paths and to the last snapshot, the first RIB snapshot's build
    time and the publications during the ingest (count, us median/max, rankings);
 3. unless --changes 0: opens the change session (POP y, a raw speaker from
    steer_update_latency that discards sparrowd's export), waits for the export to drain, then
    announces and withdraws, alternately, a /24 (IPv4) or /48 (IPv6) inside table prefixes
    --changes times, --gap s apart, and reports the per-change update time: the ``us`` of the
    snapshot publications each change caused (median, p99, max) and the time from the UPDATE
    to its publication.

Not run by CI, no timed runs on a busy machine. Tables for 8 peers:
    cd ../shared/anchors && python3 gen_tables.py --peers 8 --no-mrt --out /tmp/anchors/tables8
Then:  tests/bench/pops_scale.py [--runs 3] [--out FILE]
A quick check on a tiny input (2 peers, a few thousand prefixes): gen_tables.py always keeps
the ~705k real prefixes, so take every 200th line of peer0.txt and peer1.txt (and meta.json)
into /tmp/pops-tiny/small, then
    tests/bench/pops_scale.py --peers 2 --tables /tmp/pops-tiny/small --bins /tmp/pops-tiny/bins \\
        --workdir /tmp/pops-tiny/runs --out /tmp/pops-tiny/out.jsonl --changes 6
(--sparrowd/--sparrowctl for another build.) The convergence record's ranges and rankings
come from the last "snapshot published" line: null when the first RIB snapshot was the only
publication.
Prints one JSON line per measurement and appends them to --out.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from steerlab import (  # noqa: E402
    LOCAL_AS, ROOT, Y_AS, busy, free_port, pct, proc_status, update_for)
import steerlab  # noqa: E402

Y_ADDR = "127.0.0.200"


def frequent_asns(table: str, skip: set, want: int, lines: int = 300_000) -> list:
    """The `want` ASNs seen most often in the paths of `table`'s first `lines` lines,
    leaving out `skip` and private/reserved ones."""
    seen = collections.Counter()
    with open(table) as f:
        for n, line in enumerate(f):
            if n >= lines:
                break
            for a in line.split("|")[1].split():
                a = int(a)
                if a not in skip and 0 < a < 64496:
                    seen[a] += 1
    return [a for a, _ in seen.most_common(want)]


def pop_list(args, peer_asns) -> list:
    """(name, ASN) of every POP, --pops of them (see the module doc)."""
    pops = [("bench", LOCAL_AS), ("y", Y_AS)]
    pops += [(f"p{a}", a) for a in peer_asns[args.upstreams:]]
    used = {a for _, a in pops} | set(peer_asns)
    left = max(0, args.pops - len(pops))
    pops += [(f"t{a}", a) for a in frequent_asns(os.path.join(args.tables, "peer0.txt"), used, left)]
    pops += [(f"s{i}", 4_200_000_000 + i) for i in range(args.pops - len(pops))]
    return pops[: args.pops]


def write_config(path, sock, bgp_port, dns_port, pops, peer_asns, upstreams):
    lines = steerlab.config_head(pops, bgp_port, sock, "info,sparrow::steer=debug") + [
        f'dns: {{listen: ["127.0.0.1:{dns_port}"]}}',
        "peers:",
    ]
    for i, asn in enumerate(peer_asns):
        role = "upstream" if i < upstreams else "pop"
        lines.append(steerlab.passive_peer(f"f{i}", f"127.0.0.{2 + i}", asn, role))
    lines.append(steerlab.passive_peer("y", Y_ADDR, Y_AS, "pop"))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def change_targets(table: str, n: int) -> list:
    """`n` (prefix, family) more-specifics inside table prefixes: a /24 in an IPv4 /16-/22,
    a /48 in an IPv6 /29-/40, alternating families, spread over the table."""
    v4, v6 = [], []
    with open(table) as f:
        for i, line in enumerate(f):
            if i % 101:
                continue
            net = ipaddress.ip_network(line.split("|", 1)[0])
            if net.version == 4 and 16 <= net.prefixlen <= 22 and len(v4) < n:
                v4.append(f"{net.network_address}/24")
            elif net.version == 6 and 29 <= net.prefixlen <= 40 and len(v6) < n:
                v6.append(f"{net.network_address}/48")
    out = []
    for a, b in zip(v4, v6):
        out += [a, b]
    return (out + v4 + v6)[:n]


def stats(vals, digits=1) -> dict | None:
    if not vals:
        return None
    return {"n": len(vals), "median": round(statistics.median(vals), digits),
            "p99": round(pct(vals, 99), digits), "max": round(max(vals), digits)}


def one_run(args, run_no: int, emit):
    workdir = os.path.join(args.workdir, f"run{run_no}")
    os.makedirs(workdir, exist_ok=True)
    sock = os.path.join(workdir, "s.sock")
    log_path = os.path.join(workdir, "sparrowd.log")
    meta = json.load(open(os.path.join(args.tables, "meta.json")))
    peer_asns = meta["peer_asns"][: args.peers]
    want = sum(steerlab.ensure_bins_counted(args.anchors, args.tables, args.bins, args.peers))
    pops = pop_list(args, peer_asns)
    bgp_port, dns_port = free_port(), free_port()
    cfg = os.path.join(workdir, "pops-scale.yaml")
    write_config(cfg, sock, bgp_port, dns_port, pops, peer_asns, args.upstreams)
    sp, ctl = steerlab.start_sparrowd(args.sparrowd, cfg, sock, log_path, ctl_bin=args.sparrowctl)
    procs = [sp]
    y = None
    try:
        tail = steerlab.LogTail(log_path)
        ing = steerlab.ingest(sp, ctl, tail, args.anchors, args.bins, bgp_port, peer_asns, want,
                              args.timeout, procs)
        t_est = ing["t_est"]
        first = steerlab.steer_fields(tail, steerlab.FROM_RIB)[0]
        pubs = steerlab.steer_fields(tail, steerlab.PUBLISHED)
        last = pubs[-1] if pubs else first
        emit({
            "what": "convergence", "run": run_no, "pops": len(pops), "peers": args.peers,
            "upstreams": args.upstreams, "paths": want,
            "ingest_s": round(ing["t_all"] - t_est, 3),
            "converged_s": round(ing["t_last"] - t_est, 3),
            "first_rib_snapshot_ms": first.get("ms"),
            "publications_after_first": len(pubs),
            "publication_us": stats([p["us"] for p in pubs], 0),
            "final_generation": last.get("generation"),
            "ranges_v4": last.get("ranges_v4"), "ranges_v6": last.get("ranges_v6"),
            "rankings": last.get("rankings"),
            **ing["usage"],
        })
        if args.changes <= 0:
            return
        y, _ = steerlab.drained_session(bgp_port, Y_ADDR, Y_AS, "10.255.0.10")
        targets = change_targets(os.path.join(args.tables, "peer0.txt"), args.changes)
        sent = []
        for k in range(args.changes):
            prefix = targets[(k // 2) % len(targets)]
            msg = update_for(prefix, [Y_AS, 64600], announce=(k % 2 == 0))
            time.sleep(args.gap)
            sent.append(time.monotonic())
            y.send_raw(msg)
        time.sleep(max(args.gap, 1.0))
        tail.poll()
        pubs = [p for p in steerlab.steer_fields(tail, steerlab.PUBLISHED) if p["mono"] >= sent[0]]
        per_change, delay = [], []
        for k, t0 in enumerate(sent):
            t1 = sent[k + 1] if k + 1 < len(sent) else float("inf")
            mine = [p for p in pubs if t0 <= p["mono"] < t1]
            if mine:
                per_change.append(sum(p["us"] for p in mine))
                delay.append((mine[0]["mono"] - t0) * 1e3)
        emit({
            "what": "per_change", "run": run_no, "pops": len(pops), "changes": len(sent),
            "changes_published": len(per_change), "publications": len(pubs),
            "update_us": stats(per_change, 0),
            "update_to_publication_ms": stats(delay, 2),
            "rankings": pubs[-1].get("rankings") if pubs else None,
            "rss_mib": round(proc_status(sp.pid).get("VmRSS", 0), 1),
            "overlap": busy(),
        })
    finally:
        if y is not None:
            y.close()
        steerlab.stop_all(procs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steerlab.add_lab_args(ap, runs=1, peers=8, tables="/tmp/anchors/tables8", bins="/tmp/anchors/bins8",
                          workdir="/tmp/anchors/pops-scale-runs", timeout=600,
                          out="/tmp/anchors/results/pops_scale.jsonl")
    ap.add_argument("--upstreams", type=int, default=1,
                    help="the first N feeding sessions are role: upstream, the rest role: pop")
    ap.add_argument("--pops", type=int, default=64)
    ap.add_argument("--changes", type=int, default=60, help="announce/withdraw changes after convergence")
    ap.add_argument("--gap", type=float, default=0.3, help="seconds between changes")
    ap.add_argument("--sparrowctl", default=os.path.join(ROOT, "target/release/sparrowctl"))
    steerlab.run_runs(ap.parse_args(), one_run)


if __name__ == "__main__":
    main()
