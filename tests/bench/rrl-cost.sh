#!/usr/bin/env bash
# RRL's cost per answer: the server's CPU time per 100k answers with RRL absent and on
# (rate 1,000,000: nothing limited, every answer pays the full check), alternating runs,
# for sparrowd (dns.rrl), with knotd (no RRL) as the reference in the same run. knotd's
# mod-rrl is not measured: in 3.2.6 a rate-limit above ~60000 still limits this load
# heavily (1,000,000 let 1,250 answers/s through), so "on, nothing limited" cannot be set up.
#   KNOT_RATE=N  knotd's mod-rrl rate-limit if `start knotd on` is used by hand
#   tests/bench/rrl-cost.sh [RUNS] [SECONDS]      (defaults 5 and 10)
# Needs dnsperf and dig; uses target/release/sparrowd (or $SPARROW_BIN). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SPARROW_BIN:-$PWD/target/release}
RUNS=${1:-5}; DUR=${2:-10}
WD=$(mktemp -d /tmp/rrl-cost.XXXXXX)
PORT=5391
printf 'www.example.test A\n' > "$WD/q.txt"
printf '$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 14400 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n' > "$WD/example.test.zone"
start() {   # start server $1 (sparrowd|knotd) with RRL $2 (on|off); prints its PID
    local srv=$1 mode=$2
    if [ "$srv" = knotd ]; then
        local mod="" rrlconf=""
        [ "$mode" = on ] && { rrlconf="mod-rrl:\n  - id: r\n    rate-limit: ${KNOT_RATE:-100000}\n    slip: 2\n"; mod="    module: mod-rrl/r\n"; }
        printf "server:\n    listen: 127.0.0.1@$PORT\n    udp-workers: 2\n    tcp-workers: 1\n    background-workers: 1\n    rundir: $WD\nlog:\n  - target: stderr\n    any: warning\ndatabase:\n    storage: $WD/db\n${rrlconf}zone:\n  - domain: example.test\n    file: $WD/example.test.zone\n    journal-content: none\n${mod}" > "$WD/knot-$mode.conf"
        knotd -c "$WD/knot-$mode.conf" > "$WD/log-knot-$mode.txt" 2>&1 &
        echo $!
        return
    fi
    local rrl=""
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
    echo $!
}
run() {
    local srv=$1 mode=$2 pid i
    pid=$(start "$srv" "$mode")
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
    echo "$srv rrl=$mode answers=$ans per100k=$(echo "scale=3; ($t1-$t0)/$tck*100000/$ans" | bc -l)"
}
for r in $(seq "$RUNS"); do
    run sparrowd off; run sparrowd on; run knotd off
done
[ -n "${KEEP:-}" ] || rm -rf "$WD"
