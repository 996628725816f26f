#!/usr/bin/env bash
# Steering benchmarks with 4 full tables (BENCHMARKS.md, "Steering snapshot (4 full tables)").
#   tests/bench/steer-bench.sh [RUNS] [REPS]
# 1. target/release/steer-bench: the 4 generated tables (anchors' gen_tables.py, text form)
#    loaded into a RIB in-process; steer::build time, Publisher first publication and
#    single-change rebuild latency, SnapshotStats, steer::select ns/lookup (10M addresses per set).
# 2. tests/bench/steer_update_latency.py: real sparrowd, 4 blaster sessions + a 5th (POP y)
#    session; convergence rebuilds, snapshot build time, RSS; UPDATE -> DNS answer latency.
# Waits (up to ~30 min, polling every 30 s) while DNS benchmarks or rustc run on this 2-core box.
# Results: /tmp/anchors/results/steer-bench-*.jsonl and steer_update_latency.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
RUNS=${1:-3}
REPS=${2:-30}
TABLES=${TABLES:-/tmp/anchors/tables}
BINS=${BINS:-/tmp/anchors/bins}
RESULTS=/tmp/anchors/results
cd "$ROOT"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bins
if [ ! -f "$TABLES/peer3.txt" ]; then
  (cd "$ANCHORS" && ./prep_data.sh && python3 gen_tables.py --peers 4 --combined-mrt)
fi
mkdir -p "$BINS" "$RESULTS"
for i in 0 1 2 3; do
  [ -f "$BINS/peer$i.bin" ] || python3 "$ANCHORS/bgp_blaster.py" encode --table "$TABLES/peer$i.txt" \
    --nh4 192.0.2.1 --nh6 2001:db8:ffff::1 --out "$BINS/peer$i.bin"
done

quiet() {  # wait until no DNS benchmark / rustc runs (bounded ~30 min)
  local n=0
  while pgrep -f 'dns_bench|compare_dns|ecsperf|knotd|dnsperf' >/dev/null || pgrep -x rustc >/dev/null; do
    n=$((n + 1))
    if [ $n -gt 60 ]; then echo "steer-bench: still busy after 30 min, measuring anyway" >&2; return; fi
    echo "steer-bench: waiting for other benchmarks/builds: $(pgrep -fa 'dns_bench|compare_dns|ecsperf|knotd|dnsperf|rustc' | cut -c1-80 | tr '\n' ';')" >&2
    sleep 30
  done
}

# The same config as the daemon run (pops, 4 upstream peers + POP y), for the in-process bench.
CFG=/tmp/anchors/steer-runs/steer-bench.yaml
mkdir -p /tmp/anchors/steer-runs
python3 - "$CFG" "$TABLES/meta.json" <<'EOF'
import json, sys
sys.path.insert(0, "tests/bench")
import steerlab as s
asns = json.load(open(sys.argv[2]))["peer_asns"][:4]
s.write_config(sys.argv[1], "/tmp/anchors/steer-runs/unused.sock", 1179, 5353, asns, "warn")
EOF
OUT=$RESULTS/steer-bench-$(date -u +%Y%m%d-%H%M%S).jsonl
for r in $(seq 1 "$RUNS"); do
  quiet
  echo "steer-bench: in-process run $r" >&2
  target/release/steer-bench --config "$CFG" \
    --tables "$TABLES/peer0.txt,$TABLES/peer1.txt,$TABLES/peer2.txt,$TABLES/peer3.txt" | tee -a "$OUT"
done
echo "steer-bench: in-process results in $OUT" >&2
quiet
python3 tests/bench/steer_update_latency.py --runs "$RUNS" --reps "$REPS" --tables "$TABLES" --bins "$BINS" \
  --anchors "$ANCHORS"
