# Sourced by health-cost.sh, rrl-cost.sh, metrics-cost.sh and metrics-instr.sh (not run on its own): what both DNS cost
# benchmarks do the same way. Uses BIN (sparrowd's directory), WD (the work directory),
# PORT (the DNS port on 127.0.0.1) and DUR (seconds of load); knotd serves
# $WD/example.test.zone, dnsperf sends the queries in $WD/q.txt.
# shellcheck shell=bash

# The utime+stime ticks in a /proc/PID/stat (or /proc/PID/task/TID/stat) file.
cpu() { awk '{print $14+$15}' "$1"; }

# Start knotd (2 UDP workers) serving example.test; prints its PID. $1: a name for its config
# ($WD/knot-$1.conf) and log; $2: more top-level configuration before `zone:`, $3: more lines
# of the zone's entry (printf formats, may be empty).
start_knotd() {
    printf "server:\n    listen: 127.0.0.1@$PORT\n    udp-workers: 2\n    tcp-workers: 1\n    background-workers: 1\n    rundir: $WD\nlog:\n  - target: stderr\n    any: warning\ndatabase:\n    storage: $WD/db\n${2}zone:\n  - domain: example.test\n    file: $WD/example.test.zone\n    journal-content: none\n${3}" > "$WD/knot-$1.conf"
    knotd -c "$WD/knot-$1.conf" > "$WD/log-knot-$1.txt" 2>&1 &
    echo $!
}

# The first lines of a sparrowd config: POP `local` (AS 64999), no BGP, DNS on $PORT.
# $1: the `pops` list (flow style), $2: the `admin` mapping (flow style).
sparrow_config_head() {
    cat <<Y
local_asn: 64999
router_id: 192.0.2.1
pop: local
pops: $1
listen: {enabled: false}
admin: $2
peers: []
dns:
  listen: ["127.0.0.1:$PORT"]
Y
}

# Start sparrowd with $WD/cfg-$1.yaml, its log in $WD/log-$1.txt; prints its PID.
start_sparrowd() {
    "$BIN/sparrowd" --config "$WD/cfg-$1.yaml" > "$WD/log-$1.txt" 2>&1 &
    echo $!
}

# Wait until name $1 answers on $PORT (at most 100 tries of 1 s).
wait_answer() {
    local i
    for i in $(seq 100); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" "$1" A | grep -q . && break
    done
}

# dnsperf with $WD/q.txt for DUR s (one client, at most 50k queries/s); its report in $1.
dnsperf_load() {
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$WD/q.txt" -l "$DUR" -Q 50000 -c 1 -q 200 > "$1" 2>&1
}

# The answers (queries completed) in dnsperf report $1.
answers() { awk '/Queries completed/{print $3}' "$1"; }

# CPU seconds per 100k answers: $1 CPU ticks, $2 answers.
per100k() { echo "scale=3; $1/$(getconf CLK_TCK)*100000/$2" | bc -l; }

# $WD/q.txt (one query per name) and $WD/example.test.zone (knotd's static copy) for $1
# names s1..sN.example.test, each answering 127.0.1.N.
steered_zone() {
    local n
    : > "$WD/q.txt"
    for n in $(seq "$1"); do echo "s$n.example.test A" >> "$WD/q.txt"; done
    {
        printf '$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 14400 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n'
        for n in $(seq "$1"); do echo "s$n A 127.0.1.$n"; done
    } > "$WD/example.test.zone"
}

# A sparrowd config named $1 (its admin socket and state file in $WD) with POPs `local` and
# `peer` and $2 steered names s1..sN.example.test (local: 127.0.1.N, peer: 127.0.2.N).
steered_config() {
    local n
    sparrow_config_head "[{name: local, asn: 64999}, {name: peer, asn: 64998}]" \
        "{socket: $WD/adm-$1.sock, state_file: $WD/state-$1.json}"
    cat <<Y
zones:
  - origin: example.test
    soa: {mname: ns1, rname: hostmaster@example.test}
    ns: [ns1]
    records: [{name: ns1, type: A, data: 192.0.2.53}]
    steered:
Y
    for n in $(seq "$2"); do
        echo "      - {name: s$n, ttl: 30, pops: {local: {a: [127.0.1.$n]}, peer: {a: [127.0.2.$n]}}}"
    done
}
