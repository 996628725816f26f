#!/usr/bin/env bash
# Start sparrowd as the DNS anchors' "custom" server (../shared/anchors/dns_bench.py).
# Usage: sparrow-dns-server.sh PORT ZONE MAP [WORKDIR]
#   dns_bench.py --server custom --server-cmd '<repo>/tests/bench/sparrow-dns-server.sh {port} {zone} {map} {workdir}'
# Writes WORKDIR/sparrow.yaml with map_to_config.py (zone + geo-N.map -> one zone, steered `www`,
# one POP per distinct answer, the map as steering.fallback), checks it, then execs sparrowd so
# the harness measures sparrowd's own PID (and the taskset pinning applies to it).
# Environment: ENGINE=fast|hickory (dns.udp_engine, default fast), WORKERS (dns.udp_workers,
# default 1, the same as the anchors' knotd), SPARROWD (binary, default target/release/sparrowd),
# LEVEL (logging.level, default warn), DRAIN_LOCAL (see below, default auto).
#
# DRAIN_LOCAL=auto (default) | 1 | 0: a POP with no `pop` session configured counts as up
# (src/pops/state.rs), so with the generated config (no sessions) nothing is drained under `auto`.
# Kept for daemons that count unwatched POPs as down: there a steered name answers with the first
# *usable* POP of the client's ranking (`pops::pick`), so with no sessions every answer
# would be the local POP's (192.0.2.80). To answer the map's longest match anyway, the wrapper
# drains the local POP (`dflt`) as soon as the admin socket is up: then no POP is usable and
# `pick` falls back to the first ranked POP with records, which is exactly the fallback map's
# match. The price is a scan of the whole ranking (255 POPs) per query before that fallback, so
# figures taken this way are a lower bound for sparrowd. `auto` drains only when `sparrowctl
# pops` shows a non-local POP down (so a daemon that counts session-less POPs as up is measured
# without the trick); 1 always drains, 0 never.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 3 ] || { echo "usage: $0 PORT ZONE MAP [WORKDIR]" >&2; exit 2; }
PORT=$1 ZONE=$2 MAP=$3
WORKDIR=${4:-}
if [ -z "$WORKDIR" ]; then
  mkdir -p /tmp/anchors
  WORKDIR=$(mktemp -d /tmp/anchors/sparrow-dns-XXXXXX)
fi
mkdir -p "$WORKDIR"
SPARROWD=${SPARROWD:-$HERE/../../target/release/sparrowd}
CFG=$WORKDIR/sparrow.yaml
python3 "$HERE/map_to_config.py" "$PORT" "$ZONE" "$MAP" "$CFG" \
  --engine "${ENGINE:-fast}" --workers "${WORKERS:-1}" --admin "$WORKDIR/s.sock" --level "${LEVEL:-warn}"
"$SPARROWD" --check-config "$CFG" >&2
DRAIN_LOCAL=${DRAIN_LOCAL:-auto}
if [ "$DRAIN_LOCAL" != 0 ]; then
  SPARROWCTL=${SPARROWCTL:-$(dirname "$SPARROWD")/sparrowctl}
  DAEMON=$$   # after the exec below, sparrowd's PID
  (  # bounded: 60 s at most, and only while sparrowd lives; the harness's 2 s warm-up runs
     # before any measurement
    for _ in $(seq 1 600); do
      kill -0 "$DAEMON" 2>/dev/null || exit 0
      if [ -S "$WORKDIR/s.sock" ] && J=$("$SPARROWCTL" -s "$WORKDIR/s.sock" --json pops 2>/dev/null); then
        if [ "$DRAIN_LOCAL" = 1 ] || echo "$J" | python3 -c \
            'import json,sys; sys.exit(0 if any(not p["up"] for p in json.load(sys.stdin)["pops"]) else 1)'; then
          "$SPARROWCTL" -s "$WORKDIR/s.sock" drain dflt >&2
          echo "sparrow-dns-server.sh: drained the local POP dflt (DRAIN_LOCAL=$DRAIN_LOCAL)" >&2
        else
          echo "sparrow-dns-server.sh: every POP is up; local POP left undrained" >&2
        fi
        exit 0
      fi
      sleep 0.1
    done
    echo "sparrow-dns-server.sh: admin socket never answered; local POP not drained" >&2
  ) &
fi
exec "$SPARROWD" --config "$CFG"
