#!/usr/bin/env bash
# DNS benchmark: sparrowd against knotd, interleaved run by run, with the anchors' harness
# (../shared/anchors: dns_bench.py, compare_dns.sh, summarize.py). Comparisons (WHICH):
#   geoip   ANCHOR=knot-geoip, scenario ecs-100000 (100k-subnet map, a different ECS on every
#           query, answers checked by ecsperf);
#   static  ANCHOR=knot, scenario static (www.anchors.test A, no EDNS; sparrowd still loads
#           geo-10000 as its fallback map and answers 127.0.0.1 with the default POP).
# Server pinned to CPU 0, load (ecsperf) to CPU 1, one UDP worker each.
# Usage: tests/bench/dns-anchor.sh [RUNS]        (default 3)
# Environment:
#   ENGINE=fast  sparrowd's dns.udp_engine (only `fast` exists since issue 8; kept for the labels)
#   WHICH="geoip static" comparisons to run
#   DUR=20               seconds per run
#   BUILD=0              skip `cargo build --release --bins`
#   CLEAN_PAIRS=1        do not use compare_dns.sh: run anchor/candidate pairs with dns_bench.py
#                        (the same calls), each started only when no cargo/rustc/clippy runs,
#                        and keep only pairs during which none started and in which each run
#                        saturated the server or the load tool (>= 80% CPU; others go to
#                        RESULTS.dirty); at most 4*RUNS pairs are tried. For a shared machine.
#   ANCHORS              harness directory (default ../shared/anchors)
# Each comparison prints the summary table and ratios (summarize.py --ratio-to ANCHOR) and its
# results file; RESULTS.busy lists the seconds during which a compiler ran (figures not clean).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
RUNS=${1:-${RUNS:-3}}
export ENGINE=${ENGINE:-fast}
WHICH=${WHICH:-"geoip static"}
DUR=${DUR:-20}
cd "$ROOT"
command -v knotd >/dev/null || { echo "knotd missing: run $ANCHORS/setup.sh (or apt-get install knot knot-module-geoip knot-dnsutils dnsperf)" >&2; exit 1; }
if [ "${BUILD:-1}" = 1 ]; then cargo build --release --bins; fi
[ -f /tmp/anchors/dns/q-ecs-100000.txt ] || (cd "$ANCHORS" && python3 dns_prep.py)

# Two cores shared by server and load: never measure while a compiler runs.
builds() { for n in cargo rustc clippy-driver; do pgrep -x "$n" || true; done | tr '\n' ' '; }
wait_idle() {  # bounded: 20 min
  for _ in $(seq 1 120); do
    [ -n "$(builds)" ] || return 0
    echo "waiting for cargo/rustc to finish before measuring..." >&2; sleep 10
  done
  echo "a build is still running after 20 min; not measuring" >&2; return 1
}
start_watcher() {  # appends a line per second during which a compiler runs; bounded: 2 h
  ( for _ in $(seq 1 7200); do
      b=$(builds)
      if [ -n "$b" ]; then echo "$(date +%H:%M:%S) build running: pids $b" >> "$1"; fi
      sleep 1
    done ) &
  watcher=$!
}
watcher=
trap 'if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; fi' EXIT

export CAND="--server-cmd '$ROOT/tests/bench/sparrow-dns-server.sh {port} {zone} {map} {workdir}'"
LABEL=sparrowd-$ENGINE
TS=$(date +%Y%m%d-%H%M%S)
mkdir -p /tmp/anchors/results
files=()
for w in $WHICH; do
  case $w in
    geoip) anchor=knot-geoip scen=ecs-100000 ;;
    static) anchor=knot scen=static ;;
    *) echo "unknown comparison $w (geoip|static)" >&2; exit 2 ;;
  esac
  out=/tmp/anchors/results/sparrow-dns-$ENGINE-vs-$anchor-$TS.jsonl
  echo "== sparrowd (udp_engine $ENGINE) vs $anchor, scenario $scen, $RUNS runs x ${DUR}s ==" >&2
  if [ "${CLEAN_PAIRS:-0}" = 1 ]; then
    clean=0 tries=0
    while [ "$clean" -lt "$RUNS" ] && [ "$tries" -lt $((4 * RUNS)) ]; do
      tries=$((tries + 1))
      wait_idle
      rm -f "$out.pair" "$out.pairbusy"
      start_watcher "$out.pairbusy"
      python3 "$ANCHORS/dns_bench.py" --server "$anchor" --scenario "$scen" --runs 1 --duration "$DUR" \
        --tools ecsperf --results "$out.pair" | cut -c1-160
      eval python3 "$ANCHORS/dns_bench.py" --server custom --label "$LABEL" --scenario "$scen" --runs 1 \
        --duration "$DUR" --tools ecsperf --results "$out.pair" "$CAND" | cut -c1-160
      kill "$watcher" 2>/dev/null || true
      # a closed-loop run saturates the server or the load tool; neither near 100% means CPU
      # time went to something else (another engineer's tests, a link step) during the run
      if ! python3 -c 'import json,sys; rs=[json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if len(rs) == 2 and all(max(r["cpu_pct"], r["loadgen_cpu_pct"]) >= 80 for r in rs) else 1)' "$out.pair"; then
        echo "$(date +%H:%M:%S) neither server nor load tool saturated: CPU shared" >> "$out.pairbusy"
      fi
      if [ -s "$out.pairbusy" ]; then
        echo "pair $tries: a compiler ran or the CPUs were shared during it; kept apart in $out.dirty" >&2
        cat "$out.pair" >> "$out.dirty"; cat "$out.pairbusy" >> "$out.busy"
      else
        clean=$((clean + 1)); cat "$out.pair" >> "$out"
      fi
      rm -f "$out.pair" "$out.pairbusy"
    done
    echo "$clean clean pairs of $tries tried" >&2
    [ -s "$out" ] && python3 "$ANCHORS/summarize.py" "$out" --ratio-to "$anchor"
  else
    wait_idle
    start_watcher "$out.busy"
    RESULTS=$out LABEL=$LABEL ANCHOR=$anchor SCEN=$scen RUNS=$RUNS DUR=$DUR TOOLS=ecsperf \
      "$ANCHORS/compare_dns.sh"
    kill "$watcher" 2>/dev/null || true
    if [ -s "$out.busy" ]; then
      echo "WARNING: cargo/rustc ran during this comparison ($(wc -l < "$out.busy") s, see $out.busy): figures are not clean" >&2
    fi
  fi
  files+=("$out")
done
echo "results files:"; printf '  %s\n' "${files[@]}"
