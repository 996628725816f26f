#!/usr/bin/env bash
# RRL's cost per answer: sparrowd's CPU time per 100k answers with dns.rrl absent and on
# (rate 1,000,000: nothing limited, every answer pays the full check), alternating runs.
#   tests/bench/rrl-cost.sh [RUNS] [SECONDS]      (defaults 5 and 10)
# Needs dnsperf and dig; uses target/release/sparrowd (or $SPARROW_BIN). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SPARROW_BIN:-$PWD/target/release}
RUNS=${1:-5}; DUR=${2:-10}
WD=$(mktemp -d /tmp/rrl-cost.XXXXXX)
PORT=5391
printf 'www.example.test A\n' > "$WD/q.txt"
run() {
    local mode=$1 rrl=""
    [ "$mode" = on ] && rrl="  rrl: {rate: 1000000, slip: 2}"
    cat > "$WD/cfg-$mode.yaml" <<Y
local_asn: 64999
router_id: 192.0.2.1
pop: local
pops: [{name: local, asn: 64999}]
listen: {enabled: false}
admin: {socket: $WD/adm-$mode.sock}
peers: []
dns:
  listen: ["127.0.0.1:$PORT"]
$rrl
zones:
  - origin: example.test
    soa: {mname: ns1, rname: hostmaster@example.test}
    ns: [ns1]
    records: [{name: www, type: A, data: 192.0.2.80}]
Y
    "$BIN/sparrowd" --config "$WD/cfg-$mode.yaml" > "$WD/log-$mode.txt" 2>&1 &
    local pid=$! i
    for i in $(seq 100); do   # bounded wait for the first answer
        dig +short +time=1 +tries=1 @127.0.0.1 -p $PORT www.example.test A | grep -q . && break
    done
    local t0 t1 ans tck
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    dnsperf -s 127.0.0.1 -p $PORT -d "$WD/q.txt" -l "$DUR" -Q 50000 -c 1 -q 200 > "$WD/perf-$mode.txt" 2>&1
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    kill $pid; wait $pid 2>/dev/null || true
    tck=$(getconf CLK_TCK)
    ans=$(awk '/Queries completed/{print $3}' "$WD/perf-$mode.txt")
    echo "$mode answers=$ans per100k=$(echo "scale=3; ($t1-$t0)/$tck*100000/$ans" | bc -l)"
}
for r in $(seq "$RUNS"); do run off; run on; done
rm -rf "$WD"
