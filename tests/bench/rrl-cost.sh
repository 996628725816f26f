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
# shellcheck source=tests/bench/dns-cost-lib.sh
. tests/bench/dns-cost-lib.sh
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
        start_knotd "$mode" "$rrlconf" "$mod"
        return
    fi
    local rrl=""
    [ "$mode" = on ] && rrl="  rrl: {rate: 1000000, slip: 2}"
    {
        sparrow_config_head "[{name: local, asn: 64999}]" "{socket: $WD/adm-$mode.sock}"
        cat <<Y
$rrl
zones:
  - origin: example.test
    soa: {mname: ns1, rname: hostmaster@example.test}
    ns: [ns1]
    records: [{name: www, type: A, data: 192.0.2.80}]
Y
    } > "$WD/cfg-$mode.yaml"
    start_sparrowd "$mode"
}
run() {
    local srv=$1 mode=$2 pid t0 t1 ans
    pid=$(start "$srv" "$mode")
    wait_answer www.example.test   # bounded wait for the first answer
    t0=$(cpu /proc/$pid/stat)
    dnsperf_load "$WD/perf-$mode.txt"
    t1=$(cpu /proc/$pid/stat)
    kill $pid; wait $pid 2>/dev/null || true
    ans=$(answers "$WD/perf-$mode.txt")
    echo "$srv rrl=$mode answers=$ans per100k=$(per100k $((t1 - t0)) "$ans")"
}
for r in $(seq "$RUNS"); do
    run sparrowd off; run sparrowd on; run knotd off
done
[ -n "${KEEP:-}" ] || rm -rf "$WD"
