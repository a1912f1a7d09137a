#!/usr/bin/env bash
# Side-by-side benchmark: berth vs docker, podman and runc (crun where it runs) on this machine.
# Installs what it compares against from apt, starts and stops their daemons itself in temp roots, and prints
# a table (median, p95, berth/other ratio). Run as root:  sudo bench/run.sh  [RUNS]  (default 50 runs)
# Network safety: every container runs with --network none; dockerd runs with --bridge=none --iptables=false and
# berth with "bridge": "none" (no bridge; its empty nftables table, berth_bench_run, is deleted at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-50}"
. bench/peers.sh
install_peers busybox-static runc crun docker.io podman python3
berth_bin
exec python3 -B bench/bench.py --berth "$BERTH_BIN" --runs "$RUNS"
