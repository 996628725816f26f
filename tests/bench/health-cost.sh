#!/usr/bin/env bash
# Health checks' cost: the DNS server's CPU time per 100k answers with no checks and with
# 100 monitored targets (50 steered names, POPs `local` and `peer`, one address each per
# name, an http check every second against a local HTTP server on loopback), alternating
# runs, with knotd (the same names as static A records) as the reference in the same run.
# `dns_per100k` leaves out the `health` thread (the checker); `per100k` is the whole process.
# Also the checker's own CPU per second: the `health` thread's CPU time over an idle period.
#   tests/bench/health-cost.sh [RUNS] [SECONDS]      (defaults 5 and 10)
# Needs dnsperf, dig, knotd, python3; uses target/release/sparrowd (or $SPARROW_BIN).
# Loopback only: targets are 127.0.1.1-50 and 127.0.2.1-50, served by one python
# http.server bound to 127.0.0.1's loopback net (0.0.0.0 on a port only this script uses).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/dns-cost-lib.sh
. tests/bench/dns-cost-lib.sh
BIN=${SPARROW_BIN:-$PWD/target/release}
RUNS=${1:-5}; DUR=${2:-10}; IDLE=${IDLE:-10}
WD=$(mktemp -d /tmp/health-cost.XXXXXX)
PORT=5392; WEB=18093
NAMES=50
trap 'kill $web 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WD"' EXIT
mkdir -p "$WD/www" && echo ok > "$WD/www/index.html"
python3 -m http.server --bind 0.0.0.0 --directory "$WD/www" "$WEB" > "$WD/web.log" 2>&1 &
web=$!
for i in $(seq 100); do curl -s -o /dev/null "http://127.0.1.1:$WEB/" && break; sleep 0.05; done

steered_zone $NAMES

config() {   # $1: checks on|off
    steered_config "$1" $NAMES
    if [ "$1" = on ]; then
        echo "health:"
        echo "  checks: [{name: web, type: http, port: $WEB, path: /, interval: 1, timeout: 0.5, rise: 2, fall: 3}]"
    fi
}
start() {   # start server $1 (sparrowd|knotd) with checks $2 (on|off); prints its PID
    local srv=$1 mode=$2
    if [ "$srv" = knotd ]; then
        start_knotd "$mode" "" ""
        return
    fi
    config "$mode" > "$WD/cfg-$mode.yaml"
    start_sparrowd "$mode"
}
hcpu() {   # the CPU ticks of process $1's `health` thread (0 without one)
    local f h=0
    for f in /proc/$1/task/*; do grep -qx health "$f/comm" && h=$((h + $(cpu "$f/stat"))); done
    echo $h
}
run() {
    local srv=$1 mode=$2 pid
    pid=$(start "$srv" "$mode")
    wait_answer s1.example.test   # bounded wait for the first answer
    local t0 t1 ans tck
    tck=$(getconf CLK_TCK)
    t0=$(cpu /proc/$pid/stat); th0=$(hcpu $pid)
    dnsperf_load "$WD/perf-$srv-$mode.txt"
    t1=$(cpu /proc/$pid/stat); th1=$(hcpu $pid)
    ans=$(answers "$WD/perf-$srv-$mode.txt")
    local extra=""
    if [ "$srv" = sparrowd ]; then
        # Idle CPU (no DNS load) over IDLE seconds: the whole process, and the health thread.
        local h0 h1 p0 p1 up=0
        h0=$(hcpu $pid)
        p0=$(cpu /proc/$pid/stat)
        sleep "$IDLE"
        h1=$(hcpu $pid)
        p1=$(cpu /proc/$pid/stat)
        [ "$mode" = on ] && up=$("$BIN/sparrowctl" --json --socket "$WD/adm-on.sock" health \
            | python3 -c 'import json,sys; print(sum(t["up"] for t in json.load(sys.stdin)["targets"]))')
        extra=" idle_process_cpu_ms_per_s=$(echo "scale=2; ($p1-$p0)/$tck*1000/$IDLE" | bc -l) health_thread_cpu_ms_per_s=$(echo "scale=2; ($h1-$h0)/$tck*1000/$IDLE" | bc -l) targets_up=$up"
    fi
    kill $pid; wait $pid 2>/dev/null || true
    # per100k: the whole server process; dns_per100k: without the health thread (the DNS
    # server's own CPU: UDP workers, runtime, RIB, everything but the checker).
    echo "$srv checks=$mode answers=$ans per100k=$(per100k $((t1 - t0)) "$ans") dns_per100k=$(per100k $((t1 - t0 - th1 + th0)) "$ans")$extra"
}
for r in $(seq "$RUNS"); do
    run sparrowd off; run sparrowd on; run knotd off
done
