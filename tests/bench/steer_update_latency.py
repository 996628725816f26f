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
    publication (count, us, kind full|incremental, prefixes, rankings), RSS idle / converged / peak;
 3. opens the 5th session (AS 65010, ``role: pop``; a raw Python speaker that discards what
    sparrowd exports to it), waits until the export is drained, then for each mode
    (``v4-more-specific``: a /24 inside a shorter table prefix; ``v6-more-specific``: a /48;
    ``v4-better-path``: an existing prefix whose paths are all >= 3 ASes long, announced with
    ``65010 ORIGIN``) alternates announce / withdraw REPS times each, and times from just before
    the UPDATE is written to the socket until a dnspython ECS query for an address in the prefix
    returns POP y's address (announce) or the previous answer again (withdraw); queries in a
    tight loop over one UDP socket, each change bounded to 5 s, 0.4 s quiet between changes.

Everything is on loopback; the blasters and sparrowd are killed by PID at the end.
The daemon, the tables and the POP y session come from `steerlab.py` (shared with `churn.py`).
Prints one JSON line per measurement and appends them to --out.

Usage: steer_update_latency.py [--runs 3] [--reps 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import steerlab  # noqa: E402
from steerlab import (Lab, busy, dns_answer, pct, pop_a,  # noqa: E402
                      pick_targets, proc_status, time_change, update_for)


def one_run(args, run_no: int, emit):
    lab = Lab(args, os.path.join(args.workdir, f"run{run_no}"))
    try:
        emit(lab.converge(run_no))
        emit(lab.open_pop_y(run_no))
        targets = pick_targets(lab.ctl, args.tables, lab.pop_asns())
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
                before = dns_answer(qsock, lab.dns_port, addr, srclen)
                for announce in (True, False):
                    expect = y_answer if announce else before
                    msg = update_for(prefix, path, announce)
                    time.sleep(0.4)
                    ok, dt, nq = time_change(lab.y, qsock, lab.dns_port, msg, addr, srclen, expect)
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
        lab.tail.poll()
        emit({"what": "after_updates", "run": run_no,
              "publications_total": len(lab.tail.publications()),
              "rss_mib": round(proc_status(lab.sp.pid).get("VmRSS", 0), 1)})
    finally:
        lab.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steerlab.add_lab_args(ap, runs=3, peers=4, tables="/tmp/anchors/tables", bins="/tmp/anchors/bins",
                          workdir="/tmp/anchors/steer-runs", timeout=300,
                          out="/tmp/anchors/results/steer_update_latency.jsonl", peers_help=None)
    steerlab.add_pop_peers_arg(ap)
    ap.add_argument("--reps", type=int, default=30, help="announce+withdraw pairs per mode")
    steerlab.run_runs(ap.parse_args(), one_run)


if __name__ == "__main__":
    main()
