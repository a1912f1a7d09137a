#!/usr/bin/env bash
# Networking and exec benchmarks: berth vs docker and podman, side by side (see bench/net.py for what is measured).
# Installs the peers from apt (their packaged daemons are never started), starts each engine in a temp root with
# its own bridges, subnets and firewall table, tears everything down at the end, and prints Markdown tables
# (median, p95, berth/other ratio). Run as root:  sudo bench/net.sh [RUNS]   (default 20)
# Set BERTH_BIN=/path/to/berth to skip the cargo build; extra arguments go to net.py (--engines, --only, --bytes).
# Network safety: traffic only to 127.0.0.1 and to containers made here; no image pulls (busybox-static rootfs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-20}"
shift || true
. bench/peers.sh
install_peers "${PEERS[@]}"
berth_bin
exec timeout --signal=TERM --kill-after=60 3600 python3 -B bench/net.py --berth "$BERTH_BIN" --runs "$RUNS" "$@"
