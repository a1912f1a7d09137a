#!/usr/bin/env bash
# Build benchmarks: berth build vs docker build (classic; BuildKit if buildx is installed) and podman build (see bench/build.py).
# Installs the peers from apt (their packaged daemons are never started), starts each engine in a temp root with
# its own bridges, subnets and firewall table, tears everything down at the end, and prints Markdown tables
# (median, p95, berth/other ratio). Run as root:  sudo bench/build.sh [RUNS]   (default 10)
# Set BERTH_BIN=/path/to/berth to skip the cargo build; extra arguments go to build.py (--engines).
# Network safety: traffic only to 127.0.0.1 and to containers made here; no image pulls (busybox-static rootfs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
shift || true
. bench/peers.sh
install_peers "${PEERS[@]}"
berth_bin
exec timeout --signal=TERM --kill-after=60 3600 python3 -B bench/build.py --berth "$BERTH_BIN" --runs "$RUNS" "$@"
