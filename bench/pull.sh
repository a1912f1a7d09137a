#!/usr/bin/env bash
# Pull and push benchmarks: berth vs docker and podman, with skopeo as the transfer-only floor (see bench/pull.py).
# Installs the peers from apt (their packaged daemons are never started), starts each engine in a temp root with
# its own bridges, subnets and firewall table, tears everything down at the end, and prints Markdown tables
# (median, p95, berth/other ratio). Run as root:  sudo bench/pull.sh [RUNS]   (default 5)
# Set BERTH_BIN=/path/to/berth to skip the cargo build; extra arguments go to pull.py (--engines).
# Network safety: traffic only to 127.0.0.1 and to containers made here; no image pulls (busybox-static rootfs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
shift || true
. bench/peers.sh
install_peers "${PEERS[@]}" skopeo docker-registry
berth_bin
exec timeout --signal=TERM --kill-after=60 3600 python3 -B bench/pull.py --berth "$BERTH_BIN" --runs "$RUNS" "$@"
