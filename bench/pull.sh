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
pkgs=(busybox-static runc docker.io podman netavark aardvark-dns nftables iptables iproute2 util-linux python3 skopeo docker-registry)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # Never let the packages start their own daemons on this host (no docker0 bridge, no firewall changes).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || { rm -f /usr/sbin/policy-rc.d; exit 1; }
  rm -f /usr/sbin/policy-rc.d
fi
if [ -z "${BERTH_BIN:-}" ]; then
  cargo build --release -p berth >/dev/null
  BERTH_BIN="$PWD/target/release/berth"
fi
exec timeout --signal=TERM --kill-after=60 3600 python3 -B bench/pull.py --berth "$BERTH_BIN" --runs "$RUNS" "$@"
