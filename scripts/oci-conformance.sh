#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite (the `conformance/` folder of
# github.com/opencontainers/distribution-spec) against `berth registry serve`: all four workflows
# (pull, push, content discovery, content management), then prints the pass/fail summary.
#
# The suite's source is not part of this repository and is never downloaded here: point at checkouts.
#   DIST_SPEC_SRC  a distribution-spec checkout (or its conformance/ folder) at a commit whose suite still
#                  uses ginkgo v1, e.g. 46cff1914f8beb0053873d75270107980531629c (the last such commit,
#                  v1.1.0-rc.2 plus the first referrers tests) or tag v1.1.0-rc2
#   REGGIE_SRC     a github.com/bloodorangeio/reggie checkout (v0.6.1, as the suite's go.mod asks)
# Without them the script prints "skipped: ..." on stderr and exits 0 (CI cannot fetch them).
#
# It is built with Debian's Go and Debian's Go library packages only (installed here with apt-get if
# missing, so run as root), in GOPATH mode with no module downloads: a GOPATH under a temp dir holds copies
# of the two checkouts and is layered over /usr/share/gocode.
#
#   DIST_SPEC_SRC=/path/to/distribution-spec REGGIE_SRC=/path/to/reggie scripts/oci-conformance.sh
#
# Optional environment:
#   BERTH_BIN                 the berth binary (default target/x86_64-unknown-linux-gnu/debug/berth; build it first)
#   OCI_RESULTS_DIR           keep junit.xml, report.html, the suite's output and the registry's log there
#   OCI_CONFORMANCE_TIMEOUT   seconds the suite may run (default 600; the build gets as long)
#   OCI_NAMESPACE, OCI_CROSSMOUNT_NAMESPACE, OCI_DELETE_MANIFEST_BEFORE_BLOBS, OCI_DEBUG,
#   OCI_AUTOMATIC_CROSSMOUNT (default 0), OCI_SKIP_EMPTY_LAYER_PUSH_TEST, ...  passed to the suite (see its README)
# The registry runs on a free 127.0.0.1 port with a temp root and deletes enabled; only the registry
# this script started is stopped, and the temp dir is removed on exit. Exit status: the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DIST_SPEC_SRC:-}" ] || [ -z "${REGGIE_SRC:-}" ]; then
  echo "skipped: set DIST_SPEC_SRC (a github.com/opencontainers/distribution-spec checkout) and REGGIE_SRC (a github.com/bloodorangeio/reggie checkout) to run the OCI conformance suite" >&2
  exit 0
fi

suite_src=$DIST_SPEC_SRC
[ -f "$suite_src/conformance/go.mod" ] && suite_src=$suite_src/conformance
if ! grep -q '^module github.com/opencontainers/distribution-spec/conformance' "$suite_src/go.mod" 2>/dev/null; then
  echo "oci-conformance: $DIST_SPEC_SRC holds no distribution-spec conformance suite" >&2
  exit 2
fi
if ! grep -qE '^[[:space:]]*github.com/onsi/ginkgo v1\.' "$suite_src/go.mod"; then
  echo "oci-conformance: this suite does not use ginkgo v1 (Debian packages ginkgo v1 only); check out a commit" \
    "whose conformance/go.mod requires github.com/onsi/ginkgo v1.x, e.g. 46cff1914f8beb0053873d75270107980531629c" >&2
  exit 2
fi
if ! grep -q '^module github.com/bloodorangeio/reggie' "$REGGIE_SRC/go.mod" 2>/dev/null; then
  echo "oci-conformance: $REGGIE_SRC is not a reggie checkout" >&2
  exit 2
fi
berth=${BERTH_BIN:-target/x86_64-unknown-linux-gnu/debug/berth}
[ -x "$berth" ] || { echo "oci-conformance: no berth binary at $berth (cargo build -p berth --bin berth, or set BERTH_BIN)" >&2; exit 2; }
berth=$(cd "$(dirname "$berth")" && pwd)/$(basename "$berth")
limit=${OCI_CONFORMANCE_TIMEOUT:-600}

# Debian's Go and the libraries the suite and reggie import (resty pulls in golang.org/x/net).
need=(golang-go golang-github-onsi-ginkgo-dev golang-gomega-dev golang-github-google-uuid-dev
  golang-github-opencontainers-go-digest-dev golang-github-go-resty-resty-dev
  golang-github-mitchellh-mapstructure-dev golang-github-asaskevich-govalidator-dev golang-golang-x-net-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
go=/usr/bin/go # Debian's toolchain, whatever else is on PATH
gocode=/usr/share/gocode/src

tmp=$(mktemp -d /tmp/berth-oci-conformance.XXXXXX)
reg_pid=
cleanup() {
  if [ -n "$reg_pid" ] && kill -0 "$reg_pid" 2>/dev/null; then
    kill "$reg_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$reg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GOPATH: copies of the two checkouts at their import paths, over Debian's /usr/share/gocode. Debian keeps
# resty v2 at github.com/go-resty/resty, without the /v2 its import path has under modules.
gp=$tmp/gopath/src
pkg=$gp/github.com/opencontainers/distribution-spec/conformance
mkdir -p "$pkg" "$gp/github.com/bloodorangeio/reggie" "$gp/github.com/go-resty/resty"
cp -R "$suite_src"/. "$pkg"
cp -R "$REGGIE_SRC"/. "$gp/github.com/bloodorangeio/reggie"
rm -rf "$gp/github.com/bloodorangeio/reggie/.git"
ln -s "$gocode/github.com/go-resty/resty" "$gp/github.com/go-resty/resty/v2"
echo "building the conformance suite with $("$go" version)" >&2
(cd "$pkg" && GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$tmp/gocache" GOFLAGS= \
  GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 timeout "$limit" "$go" test -c -o "$tmp/conformance.test" .)

# The registry: port 0, then the port it announces.
mkdir -p "$tmp/root" "$tmp/results"
printf '{"delete_enabled": true, "shutdown_timeout_secs": 5}\n' >"$tmp/registry.json"
"$berth" registry serve --addr 127.0.0.1:0 --root "$tmp/root" --config "$tmp/registry.json" \
  --log-format text >"$tmp/registry.out" 2>"$tmp/registry.log" &
reg_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*#\1#p' "$tmp/registry.out" | head -n1)
  [ -n "$port" ] && break
  kill -0 "$reg_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "oci-conformance: the registry did not start:" >&2
  cat "$tmp/registry.out" "$tmp/registry.log" >&2
  exit 1
fi
echo "berth registry (pid $reg_pid) on http://127.0.0.1:$port" >&2

export OCI_ROOT_URL=http://127.0.0.1:$port
export OCI_NAMESPACE=${OCI_NAMESPACE:-conformance/main}
export OCI_CROSSMOUNT_NAMESPACE=${OCI_CROSSMOUNT_NAMESPACE:-conformance/crossmount}
export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
export OCI_HIDE_SKIPPED_WORKFLOWS=${OCI_HIDE_SKIPPED_WORKFLOWS:-0}
export OCI_DEBUG=${OCI_DEBUG:-0}
export OCI_DELETE_MANIFEST_BEFORE_BLOBS=${OCI_DELETE_MANIFEST_BEFORE_BLOBS:-1}
# berth mounts a blob only when the client names the repository it is `from`: no automatic cross-mount.
export OCI_AUTOMATIC_CROSSMOUNT=${OCI_AUTOMATIC_CROSSMOUNT:-0}
export OCI_REPORT_DIR=$tmp/results
rc=0
(cd "$tmp/results" && timeout "$limit" "$tmp/conformance.test" -ginkgo.noColor) >"$tmp/suite.log" 2>&1 || rc=$?
cat "$tmp/suite.log"

if [ -n "${OCI_RESULTS_DIR:-}" ]; then
  mkdir -p "$OCI_RESULTS_DIR"
  cp "$tmp/suite.log" "$tmp/registry.log" "$OCI_RESULTS_DIR"/
  cp "$tmp/results"/* "$OCI_RESULTS_DIR"/ 2>/dev/null || true
fi

# Ginkgo v1's closing line: "FAIL! -- 66 Passed | 8 Failed | 0 Pending | 5 Skipped".
counts=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed' "$tmp/suite.log" | tail -n1 || true)
echo
echo "== OCI conformance against berth registry =="
grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$tmp/suite.log" | tail -n1 || true
if [ -n "$counts" ]; then
  n() { sed -n "s/.* \([0-9][0-9]*\) $1.*/\1/p" <<<"$counts"; }
  grep -E '^\[Fail\]' "$tmp/suite.log" | sed 's/^\[Fail\] OCI Distribution Conformance Tests /FAIL: /' || true
  echo "conformance: $(n Passed) passed, $(n Failed) failed, $(n Skipped) skipped"
else
  echo "oci-conformance: the suite printed no summary (exit status $rc; timeout after ${limit}s gives 124)" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
