#!/usr/bin/env bash
# DNS CPU per answer against the kernel's floor and knotd (issue 10), interleaved in one run:
# for ROUNDS rounds, each case in turn (A B C ... A B C ...), server pinned to CPU 0, load tool
# to CPU 1, one UDP worker each. Cases (tests/bench/dns_floor.py has the details):
#   floor-static, sparrowd-static, knot-static    ecsperf, web.anchors.test A (static, no EDNS)
#   floor-ecs, sparrowd-ecs, knot-geoip-ecs        ecsperf, q-ecs-100000 (a different ECS each)
#   sparrowd-tcp, knot-tcp                         dnsperf -m tcp, web.anchors.test A
# The floor is target/release/dns-floor: sparrowd's own UDP loop (dns::fast::serve, the same
# sockets and recvmmsg/sendmmsg batches) with a fixed reply instead of resolving.
# Prints per case the server's CPU-s per 100k answers (median [min-max]), its CPU %, the load
# tool's own CPU % (~100%: the tool saturates its core first), QPS, loss; then the ratios
# sparrowd/floor and sparrowd/knotd. Every run is recorded in the results file (JSON lines).
# Usage: tests/bench/dns-floor.sh [ROUNDS] [SECONDS]     (defaults 5 and 20)
# Environment:
#   CASES="floor-static sparrowd-static ..."  cases to run (add sparrowd-www: the steered name
#                                             without ECS, dns-anchor.sh's "static" scenario)
#   BUILD=0       skip `cargo build --release --bins` (uses $CARGO_TARGET_DIR/release or
#                 target/release, or BIN=dir)
#   WARMUP=2      seconds of load per server before the first round
#   ANCHORS       the anchors' directory (default ../shared/anchors); data from its dns_prep.py
#                 in /tmp/anchors/dns (run here when missing)
#   EXTRA="..."   more dns_floor.py measure arguments (--window, --sockets, --map-size, ...)
# Needs knotd (knot, knot-module-geoip), dnsperf, dig: the anchors' setup.sh installs them.
set -euo pipefail
# shellcheck source=tests/bench/dns-floor-setup.sh
. "$(dirname "$0")/dns-floor-setup.sh"
ROUNDS=${1:-${ROUNDS:-5}}
DUR=${2:-${DUR:-20}}
dns_floor_setup
# shellcheck disable=SC2086
exec python3 "$ROOT/tests/bench/dns_floor.py" measure --rounds "$ROUNDS" --duration "$DUR" \
  --warmup "${WARMUP:-2}" --bin "$BIN" --anchors "$ANCHORS" ${CASES:+--cases "$CASES"} ${EXTRA:-}
