#!/usr/bin/env bash
# Metrics' cost in instructions (issue 12), which unlike CPU time do not move with the
# machine's noise: sparrowd under callgrind, collecting only inside the UDP loop
# (`dns::fast::serve`: parse, answer, count, write; no kernel time), for the same
# fixed load of QUERIES queries (dnsperf at RATE per second, 50 steered names), for:
#   before  the binary from before the DNS counters ($OLD_BIN);
#   off     this binary, `metrics` off (the counters count);
#   on      this binary, /metrics scraped every second (the scrapes run on other
#           threads and are not in the loop's count; their own cost is reported apart
#           from the scrape task's functions, `metrics::collect::exposition`).
#   tests/bench/metrics-instr.sh [QUERIES] [RATE]     (defaults 20000 and 2000)
# Needs valgrind, dnsperf, dig, curl; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/dns-cost-lib.sh
. tests/bench/dns-cost-lib.sh
BIN=${SPARROW_BIN:-$PWD/target/release}
NEW_BIN=$BIN
QUERIES=${1:-20000}; RATE=${2:-2000}
WD=$(mktemp -d /tmp/metrics-instr.XXXXXX)
PORT=5394; MPORT=19154
trap '[ -n "${KEEP:-}" ] || rm -rf "$WD"' EXIT
steered_zone 50
ir() {   # total instructions in callgrind file $1, under functions matching $2 (inclusive)
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk -v pat="$2" '
        $0 ~ pat { gsub(",", "", $1); if ($1 + 0 > best) best = $1 + 0 } END { print best + 0 }'
}
run() {   # $1 before|off|on
    local mode=$1 pid
    steered_config "$mode" 50 > "$WD/cfg-$mode.yaml"
    [ "$mode" = on ] && echo "metrics: {listen: 127.0.0.1:$MPORT}" >> "$WD/cfg-$mode.yaml"
    if [ "$mode" = before ]; then BIN=$OLD_BIN; else BIN=$NEW_BIN; fi
    valgrind --tool=callgrind --callgrind-out-file="$WD/cg-$mode.out" \
        "$BIN/sparrowd" --config "$WD/cfg-$mode.yaml" > "$WD/log-$mode.txt" 2>&1 &
    pid=$!
    BIN=$NEW_BIN
    wait_answer s1.example.test
    local scraper=
    if [ "$mode" = on ]; then
        ( for _ in $(seq $((QUERIES / RATE + 5))); do
              curl -sf -o /dev/null "http://127.0.0.1:$MPORT/metrics"; sleep 1
          done ) &
        scraper=$!
    fi
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$WD/q.txt" -n $((QUERIES / 50)) -Q "$RATE" -c 1 -q 20 \
        > "$WD/perf-$mode.txt" 2>&1
    [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
    kill -INT $pid; wait $pid 2>/dev/null || true
    local ans loop scrape
    ans=$(answers "$WD/perf-$mode.txt")
    loop=$(ir "$WD/cg-$mode.out" 'dns::fast::serve')
    scrape=$(ir "$WD/cg-$mode.out" 'metrics::collect::exposition')
    echo "sparrowd metrics=$mode answers=$ans udp_loop_instructions=$loop per_answer=$((loop / ans)) scrape_instructions=$scrape"
}
[ -n "${OLD_BIN:-}" ] && run before
run off
run on
