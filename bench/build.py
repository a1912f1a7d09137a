#!/usr/bin/env python3
"""Build benchmarks: `berth build` side by side with `docker build` (the classic builder, and BuildKit when the
buildx plugin is installed) and `podman build`. See bench/build.sh (it installs the peers and builds berth).

Engines are started and torn down exactly as bench/net.py does (temp roots, own bridges, subnets and firewall
state; see its docstring). All RUN steps use --network none; the base is Debian's busybox-static imported into
each engine (nothing is pulled).

Measurements (N = --runs), for the multi-stage Dockerfile below and a context of a few files:
  1. cold build (--no-cache), N times
  2. fully cached rebuild (same context), N times
  3. rebuild after one copied file changed (new content each time), N times
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
from common import make_rootfs, umount_under  # noqa: E402
from nethost import BRIDGES, NFT_TABLE, cleanup_engine, host_cleanup, kill_leftovers, links, ipt_rules, nft_tables, netns_names, preflight  # noqa: E402
from net import Berth, Docker, Podman  # noqa: E402

DOCKERFILE = """FROM busybox AS build
ARG VERSION=1
WORKDIR /src
COPY lib/ ./lib/
RUN mkdir -p /out && for i in 1 2 3 4 5 6 7 8; do cat lib/* > /out/part$i; done
COPY app.txt ./
RUN cat app.txt lib/a.txt > /out/app && echo "version $VERSION" >> /out/app

FROM busybox AS tools
RUN mkdir -p /tools && echo tool > /tools/t

FROM busybox
COPY --from=build /out /app
COPY --from=tools /tools /tools
ENV APP=/app/app
WORKDIR /app
CMD ["cat", "/app/app"]
"""


def log(*a):
    print("[build]", *a, file=sys.stderr, flush=True)


def make_context(tmp):
    ctx = os.path.join(tmp, "ctx")
    os.makedirs(os.path.join(ctx, "lib"))
    open(os.path.join(ctx, "Dockerfile"), "w").write(DOCKERFILE)
    for n in "abcdefgh":
        open(os.path.join(ctx, "lib", f"{n}.txt"), "w").write((n * 64 + "\n") * 512)
    open(os.path.join(ctx, "app.txt"), "w").write("app v0\n")
    return ctx


def build_cmd(e, ctx, *extra):
    return e.cli + ["build", "--network", "none", "-q", *extra, "-t", "bench:latest", ctx]


def timed_build(e, cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-6:])}: {r.stderr[-400:]}")
    return dt


def measure(name, e, env, ctx, runs, res):
    cold, cached, one = [], [], []
    for _ in range(runs):
        cold.append(timed_build(e, build_cmd(e, ctx, "--no-cache"), env))
    timed_build(e, build_cmd(e, ctx), env)  # warm
    for _ in range(runs):
        cached.append(timed_build(e, build_cmd(e, ctx), env))
    app = os.path.join(ctx, "app.txt")
    for i in range(runs):
        # New content every time (content that came back would be a cache hit).
        open(app, "w").write(f"app v{i} {time.time_ns()}\n")
        one.append(timed_build(e, build_cmd(e, ctx), env))
    open(app, "w").write("app v0\n")
    out = subprocess.run(e.cli + ["run", "--rm", "--network", "none", "bench:latest"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if out.returncode != 0 or "version 1" not in out.stdout:
        raise RuntimeError(f"{name}: the built image does not run as expected: {out.stdout[-200:]} {out.stderr[-200:]}")
    res[name] = {"cold": cold, "cached": cached, "one": one}
    log(name, {k: round(statistics.median(v), 1) for k, v in res[name].items()})


def report(res, runs, notes):
    order = [n for n in ["berth", "docker (classic)", "docker (BuildKit)", "podman"] if n in res]
    print(f"\n### Builds (median ms of {runs} runs; berth/other ratio in parentheses)\n")
    print("| step | " + " | ".join(order) + " |")
    print("|---|" + "---|" * len(order))
    for key, title in [("cold", "cold multi-stage build (--no-cache)"), ("cached", "fully cached rebuild"),
                       ("one", "rebuild after one copied file changed")]:
        cells = []
        b = statistics.median(res["berth"][key]) if "berth" in res else None
        for n in order:
            m = statistics.median(res[n][key])
            cells.append(f"{m:.1f}" if n == "berth" or not b else f"{m:.1f} ({m / b:.1f}x)")
        print(f"| {title} | " + " | ".join(cells) + " |")
    for n in notes:
        print(f"\n- {n}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--engines", default="berth,docker,podman")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo bench/build.sh")
    preflight()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res, engines, notes = {}, [], []
    tables_before, netns_before, ipt_before = nft_tables(), netns_names(), ipt_rules()
    tmp = tempfile.mkdtemp(prefix="bb-", dir="/tmp")
    try:
        _, a.tar = make_rootfs(tmp, all_applets=True)
        ctx = make_context(tmp)
        for name, cls, tool in [("berth", Berth, a.berth), ("docker", Docker, "dockerd"), ("podman", Podman, "podman")]:
            if name not in a.engines.split(","):
                continue
            if not shutil.which(tool):
                notes.append(f"{name}: {tool} not installed, skipped")
                continue
            e = cls(tmp, a)
            engines.append(e)
            try:
                log(f"{name}: starting")
                e.start()
                if name == "docker":
                    env = dict(e.env, DOCKER_BUILDKIT="0")
                    measure("docker (classic)", e, env, ctx, a.runs, res)
                    if subprocess.run(["docker", "buildx", "version"], env=e.env, capture_output=True).returncode == 0:
                        measure("docker (BuildKit)", e, dict(e.env, DOCKER_BUILDKIT="1"), ctx, a.runs, res)
                    else:
                        notes.append("docker (BuildKit): the buildx plugin is not installed (Debian has no package for it), skipped")
                else:
                    measure(name, e, e.env, ctx, a.runs, res)
            except Exception as ex:
                notes.append(f"{name}: failed, skipped: {str(ex)[:400]}")
                log(f"{name}: failed: {ex}")
            finally:
                for x in cleanup_engine(e, tmp, tables_before, ipt_before, netns_before):
                    notes.append(f"{name} cleanup: {x}")
    finally:
        kill_leftovers(tmp)
        for e in engines:
            host_cleanup(e.name, ipt_before, tables_before, netns_before)
        umount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        left = [b for b in sum(BRIDGES.values(), []) if b in links()]
        extra = {(f, t) for f, t in nft_tables() - tables_before
                 if t == NFT_TABLE or (f in ("ip", "ip6") and t in ("nat", "filter", "mangle"))}
        if left or extra:
            notes.append(f"left behind after cleanup: bridges {left}, nft tables {sorted(extra)}")
        report(res, a.runs, notes)


if __name__ == "__main__":
    main()
