#!/usr/bin/env bash
# The whole test run: packages, build, cargo unit+integration tests, namespace lab.
# Must run as root (network namespaces). Idempotent; exits non-zero if anything failed.
#   SKIP_CARGO=1   skip the cargo build/test steps (lab only, against existing binaries)
#   LAB_ARGS=...   extra pytest arguments for the lab run (e.g. "-k interop")
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

if [ "$(id -u)" != 0 ]; then
    echo "run-all.sh: must run as root (the lab uses network namespaces)" >&2
    exit 2
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
status=0
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

# --- 1. packages ---------------------------------------------------------------
step "packages"
missing=0
# podman + runc (crun fails on these hosts' hybrid cgroups) and mmdebstrap (the BIRD image):
# tests/lab/test_container.py. systemd-analyze, setpriv, useradd: tests/lab/test_nonroot.py.
for b in bird birdc /usr/lib/frr/bgpd vtysh gobgpd gobgp exabgp dig kdig knotd zonemaster-cli dnsperf ip bgpdump curl prlimit nginx openssl unbound unbound-control podman runc mmdebstrap \
         systemd-analyze setpriv useradd; do
    command -v "$b" >/dev/null 2>&1 || [ -x "$b" ] || { echo "missing: $b"; missing=1; }
done
if [ "$missing" = 1 ]; then
    apt-get update -q && apt-get install -y -q bird2 frr gobgpd exabgp bind9-dnsutils knot-dnsutils \
        knot zonemaster-cli dnsperf iproute2 bgpdump curl util-linux nginx-light openssl unbound \
        podman runc mmdebstrap systemd passwd || { echo "apt-get install failed" >&2; exit 1; }
else
    echo "all router/DNS tools present, skipping apt"
fi
# Prometheus and promtool (tests/lab/test_metrics.py), without the exporters it recommends.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    apt-get install -y -q --no-install-recommends prometheus || { apt-get update -q && \
        apt-get install -y -q --no-install-recommends prometheus; } || { echo "apt-get install prometheus failed" >&2; exit 1; }
fi

# Stop daemons the packages may have started (system services, root namespace,
# default configs). Our lab daemons run inside sp-* namespaces and are left alone.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for svc in bird frr gobgpd exabgp knot nginx unbound prometheus; do
        systemctl stop "$svc" >/dev/null 2>&1 || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
    done
fi
rootns=$(readlink /proc/1/ns/net)
for exe in /usr/sbin/bird /usr/lib/frr/watchfrr /usr/lib/frr/zebra /usr/lib/frr/bgpd \
           /usr/lib/frr/staticd /usr/bin/gobgpd /usr/sbin/knotd /usr/sbin/unbound /usr/bin/prometheus; do
    for pid in $(pgrep -x "$(basename "$exe")" 2>/dev/null); do
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || continue
        [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$rootns" ] || continue   # lab ones live in netns
        [ "$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null)" = 1 ] || continue     # daemonized by a service
        cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
        case "$cmd" in *" -s "*|*--vty_socket*|*--api-hosts*) continue ;; esac       # started by a test
        echo "stopping package-started $exe (pid $pid): $cmd"
        kill "$pid" 2>/dev/null || true
    done
done

# --- 2. python test deps ----------------------------------------------------------
step "python deps"
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest || status=1
python3 -c 'import pytest_timeout' 2>/dev/null || python3 -m pip install -q pytest-timeout || true
python3 -c 'import dns.edns' 2>/dev/null || python3 -m pip install -q dnspython || status=1
# podman-compose for tests/lab/test_container.py (Debian's 1.0.3 cannot read docker/compose.yaml;
# 1.6.0 is the version tested with Debian 12's podman 4.3).
python3 -c 'import podman_compose' 2>/dev/null || python3 -m pip install -q 'podman-compose==1.6.0' || true

# --- 3. cargo ---------------------------------------------------------------------
if [ "${SKIP_CARGO:-0}" != 1 ]; then
    step "cargo build --release --bins"
    cargo build --release --bins || { echo "cargo build failed" >&2; exit 1; }
    step "cargo test --release"
    cargo test --release || status=1
fi

# --- 4. namespace lab ---------------------------------------------------------------
step "lab (pytest tests/lab)"
export SPARROW_BIN="${SPARROW_BIN:-$REPO/target/release}"
timeout_args=()
python3 -c 'import pytest_timeout' 2>/dev/null && timeout_args=(--timeout=300)
# shellcheck disable=SC2086
python3 -m pytest -v -p no:cacheprovider --continue-on-collection-errors "${timeout_args[@]}" tests/lab ${LAB_ARGS:-}
rc=$?
[ "$rc" = 0 ] || status=1
leftover=$(ip netns list | awk '{print $1}' | grep '^sp-' || true)
[ -z "$leftover" ] || echo "warning: namespaces left behind: $leftover"

step "done, status $status"
exit "$status"
