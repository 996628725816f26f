#!/usr/bin/env bash
# Metrics' cost (issue 12): the DNS server's CPU time per 100k answers, rounds interleaved:
#   sparrowd before   the binary from before the DNS counters ($OLD_BIN: no counting at all);
#   sparrowd off      this binary, `metrics` off (the per-worker counters still count);
#   sparrowd on       this binary, `metrics.listen` on and /metrics scraped every second
#                     during the run by one Python process (the scrapes' CPU counted in);
#   knotd             the same 50 names as static A records (the reference, as before).
# 50 steered names, POPs `local` and `peer` (one address each per name), no health checks.
#   tests/bench/metrics-cost.sh [RUNS] [SECONDS]     (defaults 5 and 10)
# OLD_BIN: directory of the pre-counter sparrowd (e.g. a build of b601275); without it the
# `before` rows are skipped. Needs dnsperf, dig, knotd, curl, bc; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/dns-cost-lib.sh
. tests/bench/dns-cost-lib.sh
BIN=${SPARROW_BIN:-$PWD/target/release}
NEW_BIN=$BIN
RUNS=${1:-5}; DUR=${2:-10}
WD=$(mktemp -d /tmp/metrics-cost.XXXXXX)
PORT=5393; MPORT=19153
NAMES=50
scraper=
trap 'kill $scraper 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WD"' EXIT
steered_zone $NAMES

config() {   # $1: before|off|on
    steered_config "$1" $NAMES
    [ "$1" = on ] && echo "metrics: {listen: 127.0.0.1:$MPORT}"
    true
}
run() {   # $1 sparrowd|knotd, $2 before|off|on
    local srv=$1 mode=$2 pid scrapes=0
    if [ "$srv" = knotd ]; then
        pid=$(start_knotd "$mode" "" "")
    else
        config "$mode" > "$WD/cfg-$mode.yaml"
        if [ "$mode" = before ]; then BIN=$OLD_BIN; else BIN=$NEW_BIN; fi
        pid=$(start_sparrowd "$mode")
        BIN=$NEW_BIN
    fi
    wait_answer s1.example.test
    if [ "$mode" = on ]; then
        # One scrape a second while the load runs, from one Python process started (and
        # its first scrape done) before the measurement: a curl per scrape would add an
        # exec per second to the two cores the server and dnsperf share.
        python3 -c '
import sys, time, urllib.request
url, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    urllib.request.urlopen(url, timeout=5).read()
    open(out, "a").write("x\n")
    time.sleep(1)
' "http://127.0.0.1:$MPORT/metrics" $((DUR + 3)) "$WD/scrapes" &
        scraper=$!
        for _ in $(seq 50); do [ -s "$WD/scrapes" ] && break; sleep 0.1; done
        : > "$WD/scrapes"
    fi
    local t0 t1 ans
    t0=$(cpu /proc/$pid/stat)
    dnsperf_load "$WD/perf-$srv-$mode.txt"
    t1=$(cpu /proc/$pid/stat)
    ans=$(answers "$WD/perf-$srv-$mode.txt")
    if [ -n "$scraper" ]; then
        kill $scraper 2>/dev/null || true; wait $scraper 2>/dev/null || true; scraper=
        scrapes=$(wc -l < "$WD/scrapes"); rm -f "$WD/scrapes"
    fi
    kill $pid; wait $pid 2>/dev/null || true
    echo "$srv metrics=$mode answers=$ans per100k=$(per100k $((t1 - t0)) "$ans") scrapes=$scrapes"
}
# Each round starts one step later in the order, so no server always runs first.
order=("sparrowd off" "sparrowd on" "knotd off")
[ -n "${OLD_BIN:-}" ] && order=("sparrowd before" "${order[@]}")
for r in $(seq "$RUNS"); do
    for k in $(seq 0 $((${#order[@]} - 1))); do
        # shellcheck disable=SC2086
        run ${order[$(( (r + k) % ${#order[@]} ))]}
    done
done
