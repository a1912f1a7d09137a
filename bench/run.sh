#!/usr/bin/env bash
# Side-by-side benchmark: berth vs docker, podman and runc (crun where it runs) on this machine.
# Installs what it compares against from apt, starts and stops their daemons itself in temp roots, and prints
# a table (median, p95, berth/other ratio). Run as root:  sudo bench/run.sh  [RUNS]  (default 50 runs)
# Network safety: every container runs with --network none; dockerd runs with --bridge=none --iptables=false and
# berth with "bridge": "none" (no bridge; its empty nftables table, berth_bench_run, is deleted at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-50}"
pkgs=(busybox-static runc crun docker.io podman python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # Never let the packages start their own daemons on this host (no docker0 bridge, no firewall changes).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
fi
cargo build --release -p berth >/dev/null
exec python3 -B bench/bench.py --berth "$PWD/target/release/berth" --runs "$RUNS"
