#!/usr/bin/env python3
"""Pull and push benchmarks: berth side by side with docker and podman, and skopeo as the transfer-only floor. See
bench/pull.sh (it installs the peers and builds berth).

The image: 5 layers of 40 MB each (half random, half zeros: ~100 MB gzip-compressed, 200 MB unpacked), made here as
an OCI layout and put into Debian's docker-registry on 127.0.0.1 with skopeo. Engines are started and torn down as
bench/net.py does (temp roots, own bridges and firewall state).

Measurements (N = --runs), each on a cold store:
  1. pull (the engine's image and its layers removed before each run; skopeo copies into a fresh OCI directory)
  2. push of the pulled image into a fresh, empty registry (restarted with new storage before each run)
Network safety: only 127.0.0.1.
"""
import argparse, gzip, hashlib, json, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
from common import make_rootfs, umount_under  # noqa: E402
from nethost import BRIDGES, NFT_TABLE, cleanup_engine, host_cleanup, kill_leftovers, links, ipt_rules, nft_tables, netns_names, preflight  # noqa: E402
from net import Berth, Docker, Podman  # noqa: E402

LAYERS, LAYER_BYTES = 5, 40 << 20


def log(*a):
    print("[pull]", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Registry:
    def __init__(self, tmp, port):
        self.tmp, self.port, self.proc, self.n = tmp, port, None, 0
        self.bin = next(b for b in ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"] if os.path.exists(b))

    def start(self):
        """A fresh, empty registry on the same port."""
        self.stop()
        self.n += 1
        d = os.path.join(self.tmp, f"registry{self.n}")
        os.makedirs(d)
        cfg = os.path.join(d, "config.yml")
        open(cfg, "w").write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n"
                             f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc = subprocess.Popen([self.bin, "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 20
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        if self.n:
            shutil.rmtree(os.path.join(self.tmp, f"registry{self.n}"), ignore_errors=True)


def make_layout(tmp):
    """An OCI image layout with LAYERS gzip layers."""
    lay = os.path.join(tmp, "layout")
    blobs = os.path.join(lay, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        open(os.path.join(blobs, d), "wb").write(data)
        return "sha256:" + d, len(data)

    rnd = random.Random(42)
    layers, diff_ids = [], []
    for i in range(LAYERS):
        block, payload = 64 << 10, bytearray()
        for b in range(LAYER_BYTES // block):
            payload += rnd.randbytes(block) if b % 2 == 0 else bytes(block)
        import io, tarfile
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
            ti = tarfile.TarInfo(f"data/layer{i}.bin")
            ti.size, ti.mode, ti.mtime = len(payload), 0o644, 0
            t.addfile(ti, io.BytesIO(bytes(payload)))
        raw = raw.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d, n = put(gzip.compress(raw, compresslevel=1, mtime=0))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/data"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": [{"created_by": f"layer {i}"} for i in range(LAYERS)]}
    cd, cn = put(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": layers}
    md, mn = put(json.dumps(man).encode())
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                                                  "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
              open(os.path.join(lay, "index.json"), "w"))
    open(os.path.join(lay, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
    return lay


def timed(cmd, env=None, timeout=900):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: {r.stderr[-400:]}")
    return (time.perf_counter() - t) * 1000


def seed(reg, lay, ref):
    reg.start()
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{lay}:big", f"docker://{ref}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engines", default="berth,docker,podman,skopeo")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo bench/pull.sh")
    preflight()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res, notes, engines = {}, [], []
    tables_before, netns_before, ipt_before = nft_tables(), netns_names(), ipt_rules()
    tmp = tempfile.mkdtemp(prefix="bp-", dir="/tmp")
    reg = Registry(tmp, free_port())
    ref = f"127.0.0.1:{reg.port}/bench/big:1"
    try:
        _, a.tar = make_rootfs(tmp)
        log("making the image")
        lay = make_layout(tmp)
        wanted = a.engines.split(",")
        if "skopeo" in wanted:
            seed(reg, lay, ref)
            pulls = []
            for i in range(a.runs):
                out = os.path.join(tmp, f"skopeo{i}")
                pulls.append(timed(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:big"]))
                shutil.rmtree(out, ignore_errors=True)
            res["skopeo (transfer only)"] = {"pull": pulls}
            log("skopeo", round(statistics.median(pulls), 1))
        for name, cls, tool in [("berth", Berth, a.berth), ("docker", Docker, "dockerd"), ("podman", Podman, "podman")]:
            if name not in wanted:
                continue
            if not shutil.which(tool):
                notes.append(f"{name}: {tool} not installed, skipped")
                continue
            e = cls(tmp, a)
            engines.append(e)
            try:
                log(f"{name}: starting")
                e.start()
                tls = ["--tls-verify=false"] if name == "podman" else []
                pulls, pushes = [], []
                seed(reg, lay, ref)
                for _ in range(a.runs):
                    e.c("rmi", "-f", ref, check=False)
                    if e.c("images", "-q", ref).stdout.strip():
                        raise RuntimeError("the image is still there after rmi")
                    pulls.append(timed(e.cli + ["pull", *tls, ref], env=e.env))
                for _ in range(a.runs):
                    reg.start()
                    pushes.append(timed(e.cli + ["push", *tls, ref], env=e.env))
                res[name] = {"pull": pulls, "push": pushes}
                log(name, {k: round(statistics.median(v), 1) for k, v in res[name].items()})
            except Exception as ex:
                notes.append(f"{name}: failed, skipped: {str(ex)[:400]}")
                log(f"{name}: failed: {ex}")
            finally:
                for x in cleanup_engine(e, tmp, tables_before, ipt_before, netns_before):
                    notes.append(f"{name} cleanup: {x}")
    finally:
        reg.stop()
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
        order = [n for n in ["berth", "docker", "podman", "skopeo (transfer only)"] if n in res]
        print(f"\n### Pull and push of a 5-layer image (~100 MB compressed, 200 MB unpacked) from docker-registry on "
              f"127.0.0.1 (median ms of {a.runs} cold runs; other/berth in parentheses)\n")
        print("| | " + " | ".join(order) + " |")
        print("|---|" + "---:|" * len(order))
        for key in ["pull", "push"]:
            b = statistics.median(res["berth"][key]) if "berth" in res and key in res["berth"] else None
            cells = []
            for n in order:
                if key not in res[n]:
                    cells.append("—")
                    continue
                m = statistics.median(res[n][key])
                cells.append(f"{m:.0f}" if n == "berth" or not b else f"{m:.0f} ({m / b:.2f}x)")
            print(f"| {key} | " + " | ".join(cells) + " |")
        for n in notes:
            print(f"\n- {n}")


if __name__ == "__main__":
    main()
