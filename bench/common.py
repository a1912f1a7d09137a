"""Helpers shared by the side-by-side benchmarks (bench.py, net.py): subprocess wrappers, percentiles, daemon
start-up waits, memory readings, the processes a run started, and the busybox rootfs built from Debian's
busybox-static (no image is ever pulled).
"""
import os, shutil, signal, subprocess, time

def sh(*args, check=True, env=None, **kw):
    return subprocess.run(list(args), check=check, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]

def timed(cmd, runs, env=None):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.decode()[-400:]}")
        out.append(dt * 1000)
    return out

def wait_socket(path, proc, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up")

def rss_kb(pid):
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    except OSError:
        pass
    return 0

def pss_kb(pid):
    try:
        for l in open(f"/proc/{pid}/smaps_rollup"):
            if l.startswith("Pss:"):
                return int(l.split()[1])
    except OSError:
        pass
    return 0

def children_named(names, under):
    """Processes named in `names` (or berth's shim) whose command line mentions `under` (this run's temp
    root): only what this benchmark started is counted."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                comm = open(f"/proc/{p}/comm").read().strip()
                cmd = open(f"/proc/{p}/cmdline").read().split("\0")
            except OSError:
                continue
            if under not in " ".join(cmd):
                continue
            # A shim, the spare waiting for the next start, and the init that spare cloned ahead.
            shim = comm in ("berth-shim", "berth-spare", "berth-init") or (len(cmd) > 1 and cmd[1] == "shim" and os.path.basename(cmd[0]) == "berth")
            if comm in names or (shim and "berth" in names):
                pids.append(int(p))
    return pids

class Peer:
    def __init__(self, name):
        self.name, self.procs, self.env = name, [], dict(os.environ)
    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()

def make_rootfs(tmp, all_applets=False):
    """A busybox rootfs and its tar in `tmp`, laid out like Docker's `busybox` image (its top-level directories,
    /etc/passwd and /etc/group). `all_applets`: every applet of `busybox --list` gets a symlink in /bin (net.py
    needs nc, httpd, nslookup, netstat, wc...), else only the few bench.py runs."""
    root = os.path.join(tmp, "rootfs")
    for d in ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "var"]:
        os.makedirs(os.path.join(root, d))
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    names = ["sh", "true", "sleep", "echo"]
    if all_applets:
        out = subprocess.run(["/bin/busybox", "--list"], check=True, stdout=subprocess.PIPE, text=True).stdout
        names = sorted({n.strip() for n in out.split() if n.strip() and n.strip() != "busybox" and "/" not in n})
    for c in names:
        os.symlink("busybox", os.path.join(root, "bin", c))
    open(os.path.join(root, "etc/group"), "w").write("root:x:0:\n")
    open(os.path.join(root, "etc/passwd"), "w").write("root:x:0:0:root:/root:/bin/sh\n")
    tar = os.path.join(tmp, "busybox.tar")
    sh("tar", "-C", root, "-cf", tar, ".")
    return root, tar

def umount_under(path):
    """Every mount at or below `path` (podman's storage bind-mounts its overlay dir onto itself), deepest first;
    `umount -R` alone stops when `path` itself is not a mount point."""
    path = os.path.realpath(path)
    points = []
    for l in open("/proc/self/mountinfo"):
        mp = l.split()[4].replace("\\040", " ")
        if mp == path or mp.startswith(path + "/"):
            points.append(mp)
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
