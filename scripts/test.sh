#!/usr/bin/env bash
# The whole test suite: installs the system packages the tests need, then fmt, clippy and every test.
# Run as root (the end-to-end tests use namespaces, overlayfs and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
need=(libseccomp-dev pkg-config busybox-static runc tar skopeo chromium openssl docker-registry apache2-utils nftables iproute2 python3-docker python3-venv podman)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# moto's S3 server (PyPI, pinned): the S3-compatible peer of the registry's object-store tests.
moto=target/peers/moto-venv
if [ ! -x "$moto/bin/moto_server" ]; then
  echo "installing moto's S3 server into $moto" >&2
  rm -rf "$moto"
  /usr/bin/python3 -m venv "$moto"
  "$moto/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
fi
export BERTH_MOTO_SERVER=$PWD/$moto/bin/moto_server
command -v docker >/dev/null || { echo "the docker CLI (v28) must be on PATH for the compatibility tests" >&2; exit 1; }
# A clean clone gains nothing from incremental compilation, and its cache is gigabytes of disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
