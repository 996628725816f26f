#!/usr/bin/env bash
# Profile a DNS server under the load of tests/bench/dns-floor.sh: `perf record` on the server's
# PID for exactly one load run (server on CPU 0, load tool on CPU 1, as in dns-floor.sh), then
# the top entries of `perf report --no-children --sort dso,sym` (self time by library and
# symbol) and the split by dso (kernel against the server's own code). Installs Debian's linux-perf when `perf` is missing.
# Usage: tests/bench/dns-profile.sh [CASE] [SECONDS]    (defaults sparrowd-ecs and 10)
#   CASE: a dns-floor.sh case: sparrowd-ecs, sparrowd-static, sparrowd-tcp, sparrowd-www,
#         floor-static, floor-ecs, knot-static, knot-geoip-ecs, knot-tcp
# Environment:
#   EVENT        perf event (default cycles; cpu-clock where the CPU's counters are not visible,
#                as in most VMs: then it samples on a timer)
#   CALL_GRAPH   perf --call-graph (default fp, i.e. -g; the release build has no frame
#                pointers, so use dwarf for whole Rust stacks: the self-time top is the same)
#   TOP=30       entries printed; BUILD=0, BIN, ANCHORS, WARMUP as in dns-floor.sh
# The perf data stays in /tmp/anchors/dnsfloor/perf-CASE.data (perf report -i ... for more).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
CASE=${1:-sparrowd-ecs}
DUR=${2:-10}
cd "$ROOT"
if ! command -v perf >/dev/null; then
  apt-get install -y linux-perf >&2 || { apt-get update >&2 && apt-get install -y linux-perf >&2; }
fi
# perf must be able to count at all here (kernel.perf_event_paranoid, a matching perf)
perf stat -e task-clock true >/dev/null 2>&1 || { echo "perf stat does not work here:" >&2; perf stat -e task-clock true; exit 1; }
for t in knotd dnsperf dig taskset; do
  command -v "$t" >/dev/null || { echo "$t missing: run $ANCHORS/setup.sh" >&2; exit 1; }
done
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
if [ "${BUILD:-1}" = 1 ]; then cargo build --release --bins; fi
[ -f /tmp/anchors/dns/q-ecs-100000.txt ] || (cd "$ANCHORS" && python3 dns_prep.py)
exec python3 "$ROOT/tests/bench/dns_floor.py" profile "$CASE" --duration "$DUR" --warmup "${WARMUP:-2}" \
  --bin "$BIN" --anchors "$ANCHORS" --call-graph "${CALL_GRAPH:-fp}" --top "${TOP:-30}" ${EVENT:+--event "$EVENT"}
