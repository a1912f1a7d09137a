#!/usr/bin/env bash
# Side-by-side benchmark: berth registry vs Debian's docker-registry (distribution 2.8) on the same machine and
# disk. Push and pull of a ~200 MB, 5-layer image with skopeo; manifest GET and blob HEAD requests per second
# with wrk (loopback only, bounded duration); a 1 GB blob GET; idle RSS. Prints a table.
#   bench/registry.sh            (installs skopeo, wrk, docker-registry, curl and berth's build deps if missing)
#   LAYER_MB=40 BIG_MB=1024 WRK_SECS=10 WRK_CONN=32 BERTH_BIN=target/x86_64-unknown-linux-gnu/release/berth bench/registry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LAYER_MB=${LAYER_MB:-40}
BIG_MB=${BIG_MB:-1024}
WRK_SECS=${WRK_SECS:-10}
WRK_CONN=${WRK_CONN:-32}
# libseccomp-dev and pkg-config build berth (a fresh machine has neither).
need=(skopeo wrk docker-registry curl libseccomp-dev pkg-config)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# `berth registry serve` as users run it; BERTH_BIN=path skips the build.
if [ -z "${BERTH_BIN:-}" ]; then cargo build --release -q -p berth --bin berth --bin berth-shim; fi
BERTH=${BERTH_BIN:-$PWD/target/x86_64-unknown-linux-gnu/release/berth}

work=$(mktemp -d /var/tmp/registry-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/v2/" && return 0; sleep 0.1; done; echo "registry on $1 did not start" >&2; exit 1; }
rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

echo "building a ${LAYER_MB}x5 MB image..." >&2
layout=$work/layout
mkdir -p "$layout/blobs/sha256" "$work/l"
layers=""; diffids=""
for i in 1 2 3 4 5; do
  rm -rf "$work/l"/*; head -c "${LAYER_MB}M" /dev/urandom > "$work/l/data$i"
  tar -C "$work/l" -cf "$work/layer$i.tar" "data$i"
  diff=$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)
  gzip -1 -c "$work/layer$i.tar" > "$work/layer$i.tgz"
  d=$(sha256sum "$work/layer$i.tgz" | cut -d' ' -f1); s=$(stat -c %s "$work/layer$i.tgz")
  mv "$work/layer$i.tgz" "$layout/blobs/sha256/$d"; rm "$work/layer$i.tar"
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}"
  diffids="$diffids${diffids:+,}\"sha256:$diff\""
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffids" > "$work/config"
cd_=$(sha256sum "$work/config" | cut -d' ' -f1); cs=$(stat -c %s "$work/config"); mv "$work/config" "$layout/blobs/sha256/$cd_"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd_" "$cs" "$layers" > "$work/manifest"
md=$(sha256sum "$work/manifest" | cut -d' ' -f1); ms=$(stat -c %s "$work/manifest"); mv "$work/manifest" "$layout/blobs/sha256/$md"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' "$md" "$ms" > "$layout/index.json"
empty_digest=sha256:$(printf '' | sha256sum | cut -d' ' -f1)
head -c "${BIG_MB}M" /dev/urandom > "$work/big"
big_digest=sha256:$(sha256sum "$work/big" | cut -d' ' -f1)
cat > "$work/head.lua" <<'LUA'
wrk.method = "HEAD"
LUA

start_berth() {
  local port=$1
  "$BERTH" registry serve --addr "127.0.0.1:$port" --root "$work/berth-root" --log-level warn >/dev/null 2>"$work/berth.log" &
  pids+=($!); echo $!
}
start_distribution() {
  local port=$1
  cat > "$work/dist.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/dist-root}, cache: {blobdescriptor: inmemory}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$work/dist.yml" >/dev/null 2>"$work/dist.log" &
  pids+=($!); echo $!
}

# Monolithic upload (POST, then PUT with the digest), which both registries support.
push_blob() {
  local port=$1 repo=$2 file=$3 digest=$4 loc sep
  loc=$(curl -fsS -o /dev/null -D - -X POST "http://127.0.0.1:$port/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc";; esac
  case "$loc" in *\?*) sep='&';; *) sep='?';; esac
  curl -fsS -o /dev/null -H "Content-Type: application/octet-stream" -T "$file" "$loc${sep}digest=$digest"
}

declare -A R
run() {
  local name=$1 port=$2 pid=$3
  wait_up "$port"; sleep 0.5
  R[$name,rss_idle]=$(rss_kb "$pid")
  local t; t=$(now)
  skopeo copy -q --dest-tls-verify=false "oci:$layout:v1" "docker://127.0.0.1:$port/bench/img:v1" >/dev/null
  R[$name,push]=$(elapsed "$t")
  rm -rf "$work/out"; t=$(now)
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/bench/img:v1" "oci:$work/out:v1" >/dev/null
  R[$name,pull]=$(elapsed "$t")
  local accept="Accept: application/vnd.oci.image.manifest.v1+json"
  R[$name,manifest_rps]=$(wrk -t2 -c"$WRK_CONN" -d"${WRK_SECS}s" -H "$accept" "http://127.0.0.1:$port/v2/bench/img/manifests/v1" | awk '/Requests\/sec/ {print int($2)}')
  # wrk cannot tell a HEAD response has no body, so it would wait for Content-Length bytes: HEAD the
  # empty blob (same code path, Content-Length 0).
  : > "$work/empty"; push_blob "$port" bench/img "$work/empty" "$empty_digest"
  R[$name,head_rps]=$(wrk -t2 -c"$WRK_CONN" -d"${WRK_SECS}s" -s "$work/head.lua" "http://127.0.0.1:$port/v2/bench/img/blobs/$empty_digest" | awk '/Requests\/sec/ {print int($2)}')
  push_blob "$port" bench/big "$work/big" "$big_digest"
  t=$(now)
  curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/bench/big/blobs/$big_digest"
  local s; s=$(elapsed "$t"); R[$name,big_mbps]=$(echo "$BIG_MB / $s" | bc)
  R[$name,rss_after]=$(rss_kb "$pid")
}

p1=$(free_port); pid1=$(start_berth "$p1"); run berth "$p1" "$pid1"; kill "$pid1"
p2=$(free_port); pid2=$(start_distribution "$p2"); run distribution "$p2" "$pid2"; kill "$pid2"

# The loopback ceiling for one stream: the same file through a trivial reader (curl file://).
t=$(now); curl -fsS -o /dev/null "file://$work/big"; s=$(elapsed "$t"); file_mbps=$(echo "$BIG_MB / $s" | bc)

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-34s %14s %14s %8s\n' "measure" "berth" "distribution" "ratio"
printf '%-34s %14s %14s %8s\n' "push ${LAYER_MB}x5 MB, skopeo (s)" "${R[berth,push]:0:6}" "${R[distribution,push]:0:6}" "$(ratio "${R[distribution,push]}" "${R[berth,push]}")x"
printf '%-34s %14s %14s %8s\n' "pull ${LAYER_MB}x5 MB, skopeo (s)" "${R[berth,pull]:0:6}" "${R[distribution,pull]:0:6}" "$(ratio "${R[distribution,pull]}" "${R[berth,pull]}")x"
printf '%-34s %14s %14s %8s\n' "manifest GET (req/s, wrk c=$WRK_CONN)" "${R[berth,manifest_rps]}" "${R[distribution,manifest_rps]}" "$(ratio "${R[berth,manifest_rps]}" "${R[distribution,manifest_rps]}")x"
printf '%-34s %14s %14s %8s\n' "blob HEAD (req/s, wrk c=$WRK_CONN)" "${R[berth,head_rps]}" "${R[distribution,head_rps]}" "$(ratio "${R[berth,head_rps]}" "${R[distribution,head_rps]}")x"
printf '%-34s %14s %14s %8s\n' "${BIG_MB} MB blob GET (MB/s)" "${R[berth,big_mbps]}" "${R[distribution,big_mbps]}" "$(ratio "${R[berth,big_mbps]}" "${R[distribution,big_mbps]}")x"
printf '%-34s %14s %14s\n' "idle RSS (kB)" "${R[berth,rss_idle]}" "${R[distribution,rss_idle]}"
printf '%-34s %14s %14s\n' "RSS after the run (kB)" "${R[berth,rss_after]}" "${R[distribution,rss_after]}"
printf '(reading the same file with curl file:// for reference: %s MB/s; rerun: %s)\n' "$file_mbps" "$0"
