# Sourced by dns-floor.sh and dns-profile.sh (not run on its own): sets ROOT (this checkout,
# also the working directory from here on) and ANCHORS (default ../shared/anchors);
# `dns_floor_setup` then checks for knotd, dnsperf, dig and taskset (the anchors' setup.sh
# installs them), sets BIN ($CARGO_TARGET_DIR/release or target/release unless given),
# builds the release binaries unless BUILD=0, and makes the anchors' DNS data in
# /tmp/anchors/dns with their dns_prep.py when it is missing.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
cd "$ROOT"

dns_floor_setup() {
  local t
  for t in knotd dnsperf dig taskset; do
    command -v "$t" >/dev/null || { echo "$t missing: run $ANCHORS/setup.sh" >&2; exit 1; }
  done
  BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
  if [ "${BUILD:-1}" = 1 ]; then cargo build --release --bins; fi
  [ -f /tmp/anchors/dns/q-ecs-100000.txt ] || (cd "$ANCHORS" && python3 dns_prep.py)
}
