#!/usr/bin/env bash
# BGP ingest benchmark: sparrowd against BIRD, interleaved in one run, with the
# anchors' harness (../shared/anchors). Results and ratios go to stdout; the raw
# records to the results file it names. Usage: tests/bench/bgp-ingest.sh [RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
RUNS=${1:-3}
cd "$ROOT"
cargo build --release --bins
[ -f /tmp/anchors/tables/peer3.txt ] || {
  (cd "$ANCHORS" && ./prep_data.sh && python3 gen_tables.py --peers 4 --combined-mrt)
}
export CAND="--recv-cmd '$ROOT/tests/bench/sparrow-recv.py {peers_json} {workdir}' --count-cmd '$ROOT/target/release/sparrowctl -s {workdir}/s.sock paths'"
LABEL=sparrowd ANCHOR=bird PEERS="1 4" RUNS=$RUNS TIMEOUT=300 "$ANCHORS/compare_bgp.sh"
