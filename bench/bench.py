#!/usr/bin/env python3
"""berth side by side with docker, podman, runc and crun. See bench/run.sh (it installs the peers).

Every engine gets its own temp root, socket and the same busybox rootfs (Debian's busybox-static). Daemons are
started here and stopped by PID at the end. Prints Markdown tables: medians, p95 and the berth/other ratio.
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

from common import Peer, children_named, make_rootfs, pct, pss_kb, rss_kb, sh, timed, umount_under, wait_socket

# Runs each engine makes before it is measured, the same for all: a fresh daemon's first few dozen starts
# are slower (caches, berth's kept container directories filling up), and 2 or 3 measured that, not the engine.
WARMUP = 10
# The measured runs go in rounds, every engine's share of them in each, so that each engine's runs spread over
# the same minutes: this machine's speed drifts by 10-20% (and more, for seconds) within a minute, and one
# engine after the other, berth's 50 runs took half a second, the speed of one moment, while docker's took 10.
ROUNDS = 5
# Runs each engine makes, unmeasured, at the start of its share of a round: the engines before it have filled
# the CPU's caches and the kernel's with their own (a docker run churns through far more than berth's whole
# run), and each is measured warm, as when it runs alone.
ROUND_WARMUP = 3

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--containers", type=int, default=100)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bb-", dir="/tmp")
    root, tar = make_rootfs(tmp)
    results, memory, concurrent, peers, notes = {}, {}, {}, [], []
    try:
        # berth
        b = Peer("berth"); peers.append(b)
        sock = os.path.join(tmp, "berth.sock")
        open(os.path.join(tmp, "berth.json"), "w").write("{}")  # dockerd's (it gets --bridge=none as a flag)
        # berth without its default bridge, like dockerd here (no berth0); it still makes its (empty) nftables
        # table, so that gets a name of this benchmark's, removed at the end
        open(os.path.join(tmp, "berth-nobridge.json"), "w").write('{"bridge": "none", "firewall-table": "berth_bench_run"}')
        b.procs.append(subprocess.Popen([a.berth, "daemon", "-H", "unix://" + sock, "--data-root", os.path.join(tmp, "bd"),
                                         "--exec-root", os.path.join(tmp, "bx"), "--config-file", os.path.join(tmp, "berth-nobridge.json")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_socket(sock, b.procs[0], "berth daemon")
        b.env["BERTH_HOST"] = "unix://" + sock
        sh(a.berth, "import", tar, "busybox:latest", env=b.env)
        time.sleep(1)
        memory["berth"] = {"daemon_rss_mb": rss_kb(b.procs[0].pid) / 1024}
        bcmd = [a.berth, "run", "--rm", "--network", "none", "busybox", "true"]
        timed(bcmd, WARMUP, b.env)
        timing = {"berth": (bcmd, b.env)}

        # docker
        if shutil.which("dockerd"):
            d = Peer("docker"); peers.append(d)
            dsock = os.path.join(tmp, "docker.sock")
            d.procs.append(subprocess.Popen(["dockerd", "-H", "unix://" + dsock, "--data-root", os.path.join(tmp, "dd"),
                                             "--exec-root", os.path.join(tmp, "dx"), "--pidfile", os.path.join(tmp, "docker.pid"),
                                             "--bridge=none", "--iptables=false", "--ip6tables=false",
                                             "--containerd-namespace", "bench", "--config-file", os.path.join(tmp, "berth.json")],
                                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "dockerd.log"), "w")))
            try:
                wait_socket(dsock, d.procs[0], "dockerd", 90)
                d.env["DOCKER_HOST"] = "unix://" + dsock
                time.sleep(2)
                sh("docker", "import", tar, "busybox:latest", env=d.env)
                dcmd = ["docker", "run", "--rm", "--network", "none", "busybox", "true"]
                timed(dcmd, WARMUP, d.env)
                timing["docker"] = (dcmd, d.env)
                idle = rss_kb(d.procs[0].pid) + sum(rss_kb(p) for p in children_named({"containerd"}, tmp))
                memory["docker"] = {"daemon_rss_mb": idle / 1024}
            except Exception as e:
                notes.append(f"docker: {e}")

        # podman
        if shutil.which("podman"):
            p = Peer("podman"); peers.append(p)
            conf = os.path.join(tmp, "containers.conf")
            open(conf, "w").write('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                                  '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
            p.env["CONTAINERS_CONF"] = conf
            base = ["podman", "--root", os.path.join(tmp, "pr"), "--runroot", os.path.join(tmp, "prr")]
            try:
                sh(*base, "import", tar, "busybox:latest", env=p.env)
                pcmd = base + ["run", "--rm", "--network", "none", "busybox", "true"]
                timed(pcmd, WARMUP, p.env)
                timing["podman"] = (pcmd, p.env)
            except Exception as e:
                notes.append(f"podman: {e}")

        # runc / crun on a bundle
        for rt in ["runc", "crun"]:
            if not shutil.which(rt):
                continue
            bundle = os.path.join(tmp, rt + "-bundle")
            os.makedirs(bundle)
            sh(rt, "spec", cwd=bundle) if rt == "runc" else sh("runc", "spec", cwd=bundle)
            spec = json.load(open(os.path.join(bundle, "config.json")))
            spec["process"]["terminal"] = False
            spec["process"]["args"] = ["true"]
            spec["root"]["path"] = root
            spec["linux"]["cgroupsPath"] = f"/bench-{rt}"
            json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
            try:
                cmd = [rt, "run", "--bundle", bundle, f"bench-{rt}"]
                timed(cmd, WARMUP)
                timing[rt] = (cmd, None)
            except Exception as e:
                notes.append(f"{rt}: {str(e).splitlines()[0][:200]}")

        for r in range(ROUNDS):
            for name, (cmd, env) in list(timing.items()):
                k = a.runs // ROUNDS + (1 if r < a.runs % ROUNDS else 0)
                try:
                    timed(cmd, ROUND_WARMUP, env)
                    results.setdefault(name, []).extend(timed(cmd, k, env))
                except Exception as e:
                    notes.append(f"{name}: {str(e).splitlines()[0][:200]}")
                    del timing[name]
                    results.pop(name, None)

        # memory per running container, and concurrent starts
        n = a.containers
        def berth_run(i):
            return [a.berth, "run", "-d", "--network", "none", "--name", f"berth-c{i}", "busybox", "sleep", "600"]
        t = time.perf_counter()
        procs = [subprocess.Popen(berth_run(i), env=b.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
        errs = [pr.communicate()[1] for pr in procs]
        concurrent["berth"] = time.perf_counter() - t
        bad = [e for pr, e in zip(procs, errs) if pr.returncode != 0]
        if bad:
            notes.append(f"berth: {len(bad)}/{n} concurrent starts failed: {bad[0].decode()[-200:]}")
        time.sleep(2)
        shims = children_named({"berth"}, tmp)
        shims = [x for x in shims if x != b.procs[0].pid]
        # Every shim under the root counts, the spare one waiting for the next start too, shared by the n.
        memory["berth"]["per_container_pss_mb"] = sum(pss_kb(x) for x in shims) / max(1, n) / 1024
        memory["berth"]["daemon_rss_with_100_mb"] = rss_kb(b.procs[0].pid) / 1024
        subprocess.run([a.berth, "rm", "-f"] + [f"berth-c{i}" for i in range(n)], env=b.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for peer, base in [(x, ["docker"]) for x in peers if x.name == "docker" and "docker" in results] + \
                          [(x, ["podman", "--root", os.path.join(tmp, "pr"), "--runroot", os.path.join(tmp, "prr")]) for x in peers if x.name == "podman" and "podman" in results]:
            shim = {"docker": {"containerd-shim", "containerd-shim-runc-v2"}, "podman": {"conmon"}}[peer.name]
            t = time.perf_counter()
            procs = [subprocess.Popen(base + ["run", "-d", "--network", "none", "--name", f"{peer.name}-c{i}", "busybox", "sleep", "600"],
                                      env=peer.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
            errs = [pr.communicate()[1] for pr in procs]
            concurrent[peer.name] = time.perf_counter() - t
            bad = [e for pr, e in zip(procs, errs) if pr.returncode != 0]
            if bad:
                notes.append(f"{peer.name}: {len(bad)}/{n} concurrent starts failed: {bad[0].decode()[-200:]}")
            time.sleep(2)
            sp = children_named(shim, tmp)
            memory.setdefault(peer.name, {})["per_container_pss_mb"] = sum(pss_kb(x) for x in sp) / max(1, len(sp)) / 1024
            subprocess.run(base + ["rm", "-f"] + [f"{peer.name}-c{i}" for i in range(n)], env=peer.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        for p in peers:
            p.stop()
        umount_under(tmp)  # podman's storage bind-mounts its overlay dir below tmp
        subprocess.run(["nft", "delete", "table", "ip", "berth_bench_run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)

    bm = statistics.median(results["berth"])
    print(f"\n### `run --rm --network none busybox true`, {a.runs} runs each (ms)\n")
    print("| engine | median | p95 | berth / engine (median) |")
    print("|---|---:|---:|---:|")
    for k, v in results.items():
        m = statistics.median(v)
        print(f"| {k} | {m:.1f} | {pct(v, 95):.1f} | {bm / m:.3f} |")
    print(f"\n### memory\n")
    print("| engine | daemon idle RSS (MB) | per running container, shim PSS (MB) |")
    print("|---|---:|---:|")
    for k, v in memory.items():
        d = v.get("daemon_rss_mb")
        pc = v.get("per_container_pss_mb")
        print(f"| {k} | {'' if d is None else f'{d:.1f}'} | {'' if pc is None else f'{pc:.2f}'} |")
    print(f"\n### {a.containers} containers started concurrently (wall seconds)\n")
    print("| engine | wall | berth / engine |")
    print("|---|---:|---:|")
    for k, v in concurrent.items():
        print(f"| {k} | {v:.2f} | {concurrent['berth'] / v:.3f} |")
    for n_ in notes:
        print(f"\nnote: {n_}")

if __name__ == "__main__":
    main()
