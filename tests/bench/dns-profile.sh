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
# shellcheck source=tests/bench/dns-floor-setup.sh
. "$(dirname "$0")/dns-floor-setup.sh"
CASE=${1:-sparrowd-ecs}
DUR=${2:-10}
if ! command -v perf >/dev/null; then
  apt-get install -y linux-perf >&2 || { apt-get update >&2 && apt-get install -y linux-perf >&2; }
fi
# perf must be able to count at all here (kernel.perf_event_paranoid, a matching perf)
perf stat -e task-clock true >/dev/null 2>&1 || { echo "perf stat does not work here:" >&2; perf stat -e task-clock true; exit 1; }
dns_floor_setup
exec python3 "$ROOT/tests/bench/dns_floor.py" profile "$CASE" --duration "$DUR" --warmup "${WARMUP:-2}" \
  --bin "$BIN" --anchors "$ANCHORS" --call-graph "${CALL_GRAPH:-fp}" --top "${TOP:-30}" ${EVENT:+--event "$EVENT"}
