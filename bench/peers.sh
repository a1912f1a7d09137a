# Sourced by the side-by-side benchmark scripts (run.sh, net.sh, build.sh, pull.sh), from the repository root:
#   install_peers PKG...   installs missing apt packages without letting them start their own daemons
#   berth_bin              sets BERTH_BIN (a release build, its build dependencies installed first, unless
#                          BERTH_BIN is already set)

install_peers() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  # Never let the packages start their own daemons on this host (no docker0 bridge, no firewall changes).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || { rm -f /usr/sbin/policy-rc.d; return 1; }
  rm -f /usr/sbin/policy-rc.d
}

# What building berth needs from apt (a fresh machine has neither).
BUILD_DEPS=(libseccomp-dev pkg-config)

berth_bin() {
  if [ -z "${BERTH_BIN:-}" ]; then
    install_peers "${BUILD_DEPS[@]}"
    cargo build --release -p berth >/dev/null
    BERTH_BIN="$PWD/target/x86_64-unknown-linux-gnu/release/berth"
  fi
}

# The engines every side-by-side benchmark starts.
PEERS=(busybox-static runc docker.io podman netavark aardvark-dns nftables iptables iproute2 util-linux python3)
