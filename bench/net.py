#!/usr/bin/env python3
"""Networking and exec benchmarks: berth side by side with docker and podman. See bench/net.sh (it installs the
peers and builds berth).

One engine at a time: its daemon (if it has one) is started here in a temp root with its own bridge names,
subnets and firewall table, measured, then torn down (containers, networks, daemon, bridges, veths, netns,
nftables/iptables state it made) before the next engine starts, and again in `finally` on any failure.

Measurements (N = --runs):
  1. `run --rm busybox true` on the default bridge vs `--network none` (interleaved, N each)
  2. time until a port published on 127.0.0.1 answers an HTTP GET (`busybox httpd`), N times
  3. TCP throughput host -> container through a port published on 127.0.0.1 (1 GiB by default), 3 times
  4. DNS lookups of a container's name on a user network, from the other container's network namespace
  5. `exec CONTAINER true` latency (N), and `stats --no-stream` with 50 running containers

Engines: berth with daemon.json {bridge bbench0, bip 10.202.0.1/24, firewall-table berth_bench, pools 10.203/16}
(published ports: nftables DNAT in the kernel, route_localnet for 127.0.0.1); dockerd with a bridge made here
(dbench0, 10.201.0.1/24), --iptables=false --ip-masq=false --userland-proxy=true (ports on 127.0.0.1 go through
docker-proxy, as they also do for loopback with iptables on; its embedded DNS still works: its rules live in the
container's namespace); podman (temp --root/--runroot, its own containers.conf: runc, cgroupfs, file events,
netavark with a default network "pbench" on pbench0, 10.205.0.0/24, no DNS, like podman's own default).

Network safety: traffic goes only to 127.0.0.1 and to containers made here; no image is pulled (the busybox image
is Debian's busybox-static, imported into each engine); names looked up all exist on the user network, so no
embedded DNS server forwards a query upstream.
"""
import argparse, json, os, random, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
from common import make_rootfs, pct, umount_under, wait_socket  # noqa: E402
from nethost import (BRIDGES, NFT_TABLE, Ports, cleanup_engine, host_cleanup, kill_leftovers, links,  # noqa: E402
                     ipt_rules, listener, netns_names, nft_tables, preflight, run)

BERTH_JSON = {"bridge": "bbench0", "bip": "10.202.0.1/24", "firewall-table": "berth_bench",
              "default-address-pools": [{"base": "10.203.0.0/16", "size": 24}]}
USER_NET = "benchnet"
STATS_CONTAINERS = 50


def log(*a):
    print("[net]", *a, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------------------------------- engines
class Engine:
    name = ""
    path = ""  # how a port published on 127.0.0.1 reaches the container

    def __init__(self, tmp, args):
        self.tmp, self.args, self.procs, self.env, self.notes = tmp, args, [], dict(os.environ), []
        self.dir = os.path.join(tmp, self.name)
        os.makedirs(self.dir)

    def c(self, *a, timeout=120, check=True):
        return run(self.cli + list(a), env=self.env, timeout=timeout, check=check)

    rm_args = ["rm", "-f"]

    def rm(self, *names, check=True):
        """Removes containers at once (SIGKILL), as docker's `rm -f` does; not part of any timing."""
        return self.c(*self.rm_args, *names, timeout=300, check=check)

    def popen_cli(self, *a):
        return subprocess.Popen(self.cli + list(a), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def make_user_net(self, name):
        self.c(*self.user_net(name))

    def teardown(self):
        """Containers, networks, the daemon: best effort, every error reported."""
        errs = []
        try:
            ids = self.c("ps", "-aq", timeout=60, check=False).stdout.split()
            if ids:
                r = self.rm(*ids, check=False)
                if r.returncode:
                    errs.append(f"rm -f: {r.stderr.strip()[-200:]}")
            r = self.c("network", "rm", USER_NET, timeout=60, check=False)
        except Exception as e:
            errs.append(f"teardown: {e}")
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        return errs

    def daemon_log(self):
        try:
            return open(os.path.join(self.dir, "daemon.log")).read()[-600:]
        except OSError:
            return ""


class Berth(Engine):
    name = "berth"
    path = "kernel (nftables DNAT, route_localnet)"

    def start(self):
        sock = os.path.join(self.tmp, "b.sock")
        cfg = os.path.join(self.dir, "daemon.json")
        json.dump(BERTH_JSON, open(cfg, "w"))
        self.procs.append(subprocess.Popen(
            [self.args.berth, "daemon", "-H", "unix://" + sock, "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.tmp, "bx"), "--config-file", cfg],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "daemon.log"), "w")))
        wait_socket(sock, self.procs[0], "berth daemon", 60)
        self.env.update(BERTH_HOST="unix://" + sock, BERTH_NO_AUTOSTART="1")
        self.cli = [self.args.berth]
        self.c("import", self.args.tar, "busybox:latest")

    def user_net(self, name):
        return ["network", "create", "--subnet", "10.203.9.0/24", "-o", "com.docker.network.bridge.name=bbench1", name]


class Docker(Engine):
    name = "docker"
    path = "userland proxy (docker-proxy)"

    def start(self):
        # Our own bridge, made here (dockerd's --bridge and --bip exclude each other): docker0 is never touched.
        run(["ip", "link", "add", "dbench0", "type", "bridge"])
        run(["ip", "addr", "add", "10.201.0.1/24", "dev", "dbench0"])
        run(["ip", "link", "set", "dbench0", "up"])
        sock = os.path.join(self.tmp, "d.sock")
        cfg = os.path.join(self.dir, "daemon.json")
        open(cfg, "w").write("{}")
        self.procs.append(subprocess.Popen(
            ["dockerd", "-H", "unix://" + sock, "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.tmp, "dx"), "--pidfile", os.path.join(self.dir, "docker.pid"),
             "--bridge", "dbench0", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             "--userland-proxy=true", "--default-address-pool", "base=10.204.0.0/16,size=24",
             "--containerd-namespace", "bench-net", "--containerd-plugins-namespace", "bench-net-plugins",
             "--config-file", cfg],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "daemon.log"), "w")))
        wait_socket(sock, self.procs[0], "dockerd", 90)
        self.env["DOCKER_HOST"] = "unix://" + sock
        self.cli = ["docker"]
        end = time.time() + 60
        while self.c("version", check=False, timeout=30).returncode != 0:
            if time.time() > end:
                raise RuntimeError("dockerd does not answer: " + self.daemon_log())
            time.sleep(0.5)
        self.c("import", self.args.tar, "busybox:latest")

    def user_net(self, name):
        return ["network", "create", "--subnet", "10.204.9.0/24", "-o", "com.docker.network.bridge.name=dbench1", name]


class Podman(Engine):
    name = "podman"
    path = "kernel (netavark iptables DNAT)"
    rm_args = ["rm", "-f", "-t", "0"]  # podman 4.3's rm -f would wait 10 s for SIGTERM first

    def start(self):
        conf = os.path.join(self.dir, "containers.conf")
        open(conf, "w").write(
            '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'tmp_dir = "{os.path.join(self.dir, "tmp")}"\n'
            f'[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "{os.path.join(self.dir, "networks")}"\n'
            'default_network = "pbench"\ndefault_subnet = "10.205.0.0/24"\n'
            'default_subnet_pools = [{"base" = "10.205.128.0/17", "size" = 24}]\n')
        self.env["CONTAINERS_CONF"] = conf
        self.cli = ["podman", "--root", os.path.join(self.dir, "root"), "--runroot", os.path.join(self.dir, "run")]
        # The default network, like podman's own (no DNS) but with our interface name and subnet: written as
        # its network file before podman first runs, or podman would make "pbench" itself with podman0.
        os.makedirs(os.path.join(self.dir, "networks"))
        json.dump({"name": "pbench", "id": os.urandom(32).hex(), "driver": "bridge", "network_interface": "pbench0",
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "subnets": [{"subnet": "10.205.0.0/24", "gateway": "10.205.0.1"}], "ipv6_enabled": False,
                   "internal": False, "dns_enabled": False, "ipam_options": {"driver": "host-local"}},
                  open(os.path.join(self.dir, "networks", "pbench.json"), "w"), indent=2)
        got = json.loads(self.c("network", "inspect", "pbench").stdout)[0].get("network_interface")
        if got != "pbench0":
            raise RuntimeError(f"default network pbench: interface {got}, expected pbench0")
        self.c("import", self.args.tar, "busybox:latest")

    def net_create(self, name, bridge, subnet, *extra):
        """podman 4.3 has no --interface-name: create, then name the bridge in the network's own file (podman
        reads the file again on every command)."""
        self.c("network", "create", "--subnet", subnet, *extra, name)
        f = os.path.join(self.dir, "networks", name + ".json")
        cfg = json.load(open(f))
        cfg["network_interface"] = bridge
        json.dump(cfg, open(f, "w"), indent=2)
        got = json.loads(self.c("network", "inspect", name).stdout)[0].get("network_interface")
        if got != bridge:
            raise RuntimeError(f"network {name}: interface {got}, expected {bridge}")

    def make_user_net(self, name):
        self.net_create(name, "pbench1", "10.205.1.0/24")

    def teardown(self):
        errs = super().teardown()
        for n in ["pbench"]:
            r = self.c("network", "rm", "-f", n, timeout=60, check=False)
        return errs


# ---------------------------------------------------------------------------------------------------- measurements
def m_run(e, n):
    none = ["run", "--rm", "--network", "none", "busybox", "true"]
    bridge = ["run", "--rm", "busybox", "true"]
    for _ in range(2):
        e.c(*none)
        e.c(*bridge)
    out = {"none": [], "bridge": []}
    for _ in range(n):  # interleaved, so drift from other load hits both alike
        for k, cmd in [("none", none), ("bridge", bridge)]:
            t = time.perf_counter()
            e.c(*cmd, timeout=60)
            out[k].append((time.perf_counter() - t) * 1000)
    return out


def http_get(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /passwd HTTP/1.0\r\nHost: bench\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.") and b" 200" in data[:16]
    except OSError:
        return False


def poll_http(port, budget):
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        if http_get(port):
            return True
        time.sleep(0.002)
    return False


def m_port(e, n, ports, budget=5.0):
    """Two clients: an eager one polling from the moment `run -d` is launched (what a script that starts a
    server and connects at once sees), and one that polls only after `run -d` returned. Both times are measured
    from the launch of `run -d`. The first round of each is a warm-up."""
    out = {"eager": [], "after": [], "run_d": [], "fails": 0, "listener": None}
    args = ["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]
    for mode in ["eager", "after"]:
        for i in range(n + 1):
            port = ports.take()
            name = f"web-{mode}{i}"
            cmd = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80"] + args
            t = time.perf_counter()
            if mode == "eager":
                p = e.popen_cli(*cmd)
                ok = poll_http(port, budget)
                dt = time.perf_counter() - t
                try:
                    _, err = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
                    err = "timed out"
                if p.returncode != 0:
                    raise RuntimeError(f"run -d -p failed: {err.strip()[-300:]}")
            else:
                e.c(*cmd, timeout=60)
                t_run = time.perf_counter() - t
                ok = poll_http(port, budget)
                dt = time.perf_counter() - t
                if i > 0:
                    out["run_d"].append(t_run * 1000)
            if out["listener"] is None:
                out["listener"] = listener(port) or "none"
            if i > 0:
                if ok:
                    out[mode].append(dt * 1000)
                else:
                    out["fails"] += 1
            e.rm(name)
    return out


def wait_listening(e, name, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        r = e.c("exec", name, "netstat", "-ltn", check=False, timeout=30)
        if r.returncode == 0 and ":80 " in r.stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name}: nothing listens on :80 after {timeout}s")


def m_throughput(e, reps, size, ports):
    out, path = [], None
    chunk = b"\0" * (1 << 20)
    for i in range(reps):
        port = ports.take()
        name = f"tp{i}"
        # busybox nc copies through a 1 KiB buffer, which would measure nc, not the network path: it only
        # accepts, then hands the socket to dd (1 MiB reads), which reads to the end; the interface counters
        # then show what arrived
        e.c("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
            "nc -l -p 80 -e dd of=/dev/null bs=1M 2>/dev/null; cat /proc/net/dev")
        try:
            wait_listening(e, name)
            if path is None:
                path = listener(port) or "none"
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.settimeout(30)
            sent, t = 0, time.perf_counter()
            deadline = t + 120
            while sent < size and time.perf_counter() < deadline:
                s.sendall(chunk[: min(len(chunk), size - sent)])
                sent += min(len(chunk), size - sent)
            s.shutdown(socket.SHUT_WR)
            while time.perf_counter() < deadline + 30:  # the receiver closes once it read everything
                if not s.recv(65536):
                    break
            dt = time.perf_counter() - t
            s.close()
            e.c("wait", name, timeout=30, check=False)
            r = e.c("logs", name, timeout=30)
            m = re.search(r"^\s*eth0:\s*(\d+)", r.stdout + r.stderr, re.M)
            got = int(m.group(1)) if m else 0
            if sent != size or got < size:
                raise RuntimeError(f"sent {sent} of {size} bytes, the container's eth0 received {got} bytes")
            out.append(size / (1 << 20) / dt)
        finally:
            e.rm(name, check=False)
    return {"mibs": out, "listener": path}


def dns_query_packet(qid, name):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)


def dns_probe(server, name, k):
    """Runs inside the container's network namespace (nsenter -n): k A queries for `name`, one at a time; prints
    JSON with the microseconds of each answered query."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((server, 53))
    us, fails = [], 0
    for _ in range(k):
        qid = random.randrange(65536)
        t = time.perf_counter_ns()
        try:
            s.send(dns_query_packet(qid, name))
            while True:
                data = s.recv(4096)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    break
        except OSError:
            fails += 1
            continue
        dt = time.perf_counter_ns() - t
        flags, ancount = struct.unpack(">H", data[2:4])[0], struct.unpack(">H", data[6:8])[0]
        if flags & 0xF or ancount == 0:
            fails += 1
            continue
        us.append(dt / 1000)
    print(json.dumps({"us": us, "fails": fails}))


def m_dns(e, k):
    e.make_user_net(USER_NET)
    for n in ["dns-srv", "dns-cli"]:
        e.c("run", "-d", "--name", n, "--network", USER_NET, "busybox", "sleep", "600")
    pid = e.c("inspect", "-f", "{{.State.Pid}}", "dns-cli").stdout.strip()
    resolv = open(f"/proc/{pid}/root/etc/resolv.conf").read()
    server = next(l.split()[1] for l in resolv.splitlines() if l.startswith("nameserver"))
    # the name resolves inside the container, with its own resolver (a trailing dot: no search domains, so
    # nothing is ever forwarded upstream). The timing itself is taken from the container's network namespace
    # by this script (busybox's date has no %N, and a process spawned per lookup would dwarf the lookup).
    r = e.c("exec", "dns-cli", "nslookup", "-type=a", "dns-srv.", server, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"nslookup dns-srv. {server} inside dns-cli failed: {(r.stdout + r.stderr).strip()[-300:]}")
    probe = run(["nsenter", "-t", pid, "-n", sys.executable, "-B", os.path.abspath(__file__), "--dns-probe", server,
                 "dns-srv.", str(k)], timeout=120)
    res = json.loads(probe.stdout)
    e.rm("dns-srv", "dns-cli")
    e.c("network", "rm", USER_NET, timeout=60)
    return {"us": res["us"], "fails": res["fails"], "server": server}


def m_exec(e, n):
    e.c("run", "-d", "--name", "ex", "busybox", "sleep", "600")
    for _ in range(2):
        e.c("exec", "ex", "true")
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        e.c("exec", "ex", "true", timeout=60)
        xs.append((time.perf_counter() - t) * 1000)
    e.rm("ex")
    return xs


# Attach streams: NUL bytes (the json-file log's worst case: every byte becomes `\u0000`) and text lines
# (what containers print: one log entry per line).
TEXT_LINE = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnop"
STREAMS = {
    "zeros": lambda size: ["head", "-c", str(size), "/dev/zero"],
    "text": lambda size: ["sh", "-c", f"yes {TEXT_LINE} | head -c {size}"],
}


def m_attach(e, size, stream="zeros", reps=3):
    """Attach throughput: `run --rm busybox <stream>` with stdout attached (stdcopy-framed, no TTY) into a
    counting reader on the host; MiB/s, checked against the byte count."""
    out = []
    for _ in range(reps):
        p = subprocess.Popen(e.cli + ["run", "--rm", "busybox"] + STREAMS[stream](size), env=e.env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        t = time.perf_counter()
        got = 0
        while True:
            b = p.stdout.read1(1 << 20)
            if not b:
                break
            got += len(b)
        p.wait(timeout=600)
        dt = time.perf_counter() - t
        if got != size:
            raise RuntimeError(f"attach delivered {got} of {size} bytes")
        out.append(size / dt / (1 << 20))
    return out


def pipe_baseline(size, stream="zeros", reps=3):
    """The same bytes through a plain pipe from a host process: the floor of what attach can reach."""
    out = []
    bb = "/bin/busybox"
    cmd = STREAMS[stream](size)
    if cmd[0] == "sh":
        cmd = [bb, "sh", "-c", cmd[2].replace("yes ", f"{bb} yes ").replace("| head", f"| {bb} head")]
    else:
        cmd = [bb] + cmd
    for _ in range(reps):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        t = time.perf_counter()
        got = 0
        while True:
            b = p.stdout.read1(1 << 20)
            if not b:
                break
            got += len(b)
        p.wait()
        out.append(got / (time.perf_counter() - t) / (1 << 20))
    return out


def m_stats(e, count, reps=5):
    t = time.perf_counter()
    failed = 0
    for i in range(count):
        if e.c("run", "-d", "--name", f"st{i}", "busybox", "sleep", "600", timeout=60, check=False).returncode:
            failed += 1
    start_s = time.perf_counter() - t
    e.c("stats", "--no-stream", timeout=180)
    xs, rows = [], 0
    for _ in range(reps):
        t = time.perf_counter()
        r = e.c("stats", "--no-stream", timeout=180)
        xs.append((time.perf_counter() - t) * 1000)
        rows = len([l for l in r.stdout.splitlines() if l.strip()]) - 1
    ids = [f"st{i}" for i in range(count)]
    e.rm(*ids, check=False)
    return {"ms": xs, "rows": rows, "start_s": start_s, "failed": failed}


def measure(e, a, ports, res):
    steps = [("run", lambda: m_run(e, a.runs)),
             ("port", lambda: m_port(e, a.runs, ports)),
             ("throughput", lambda: m_throughput(e, 3, a.bytes, ports)),
             ("dns", lambda: m_dns(e, a.lookups)),
             ("exec", lambda: m_exec(e, a.runs)),
             ("attach", lambda: m_attach(e, a.bytes)),
             ("attach_text", lambda: m_attach(e, a.bytes, "text")),
             ("stats", lambda: m_stats(e, a.containers))]
    for key, f in steps:
        if a.only and key not in a.only.split(","):
            continue
        log(f"{e.name}: {key}")
        t = time.perf_counter()
        try:
            res.setdefault(key, {})[e.name] = f()
        except Exception as ex:
            e.notes.append(f"{key}: {str(ex).splitlines()[0][:300] if str(ex) else type(ex).__name__}")
            log(f"{e.name}: {key} failed: {ex}")
            # leave no half-made state for the next step
            ids = e.c("ps", "-aq", check=False, timeout=60).stdout.split()
            if ids:
                e.rm(*ids, check=False)
            e.c("network", "rm", USER_NET, check=False, timeout=60)
        log(f"{e.name}: {key} took {time.perf_counter() - t:.1f}s")


# ---------------------------------------------------------------------------------------------------- report
def fmt(x, d=1):
    return "" if x is None or x != x else f"{x:.{d}f}"


def ratio(b, o):
    return "" if not b or not o or b != b or o != o else f"{b / o:.3f}"


def table(title, header, rows):
    if not rows:
        return
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 or h in ("port path", "host listener", "server") else "---:"
                         for i, h in enumerate(header)) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def report(res, a, engines, notes):
    order = [e.name for e in engines]
    path = {e.name: e.path for e in engines}

    r = res.get("run", {})
    bb = med(r["berth"]["bridge"]) if "berth" in r else None
    table(f"1. `run --rm busybox true`: default bridge vs `--network none` ({a.runs} runs each, ms)",
          ["engine", "none median", "none p95", "bridge median", "bridge p95", "bridge − none (median)",
           "berth/engine (bridge median)"],
          [[k, fmt(med(v["none"])), fmt(pct(v["none"], 95)), fmt(med(v["bridge"])), fmt(pct(v["bridge"], 95)),
            fmt(med(v["bridge"]) - med(v["none"])), ratio(bb, med(v["bridge"]))]
           for k in order if k in r for v in [r[k]]])

    r = res.get("port", {})
    bb = med(r["berth"]["eager"]) if "berth" in r else None
    table(f"2. `run -d -p 127.0.0.1:PORT:80 busybox httpd` until an HTTP GET on 127.0.0.1:PORT answers "
          f"({a.runs} runs each, ms from launching `run -d`)",
          ["engine", "port path", "host listener", "polled from launch: median", "p95",
           "polled once `run -d` returned: median", "p95", "`run -d` returns (median)",
           "berth/engine (from launch, median)"],
          [[k, path[k], v["listener"],
            fmt(med(v["eager"])) + (f" ({v['fails']} did not answer in 5 s)" if v["fails"] else ""),
            fmt(pct(v["eager"], 95) if v["eager"] else None), fmt(med(v["after"])),
            fmt(pct(v["after"], 95) if v["after"] else None), fmt(med(v["run_d"])), ratio(bb, med(v["eager"]))]
           for k in order if k in r for v in [r[k]]])

    r = res.get("throughput", {})
    bb = med(r["berth"]["mibs"]) if "berth" in r else None
    table(f"3. TCP throughput host → container through 127.0.0.1:PORT ({a.bytes >> 20} MiB per run, 3 runs, "
          "MiB/s; higher is better)",
          ["engine", "port path", "host listener", "median", "min", "max", "berth/engine (median)"],
          [[k, path[k], r[k]["listener"], fmt(med(v), 0), fmt(min(v), 0), fmt(max(v), 0), ratio(bb, med(v))]
           for k in order if k in r for v in [r[k]["mibs"]]])

    r = res.get("dns", {})
    bb = med(r["berth"]["us"]) if "berth" in r else None
    srv = {"berth": "embedded", "docker": "embedded (dockerd)", "podman": "aardvark-dns"}
    table(f"4. DNS: A lookups of a container's name on a user network ({a.lookups} queries one at a time from "
          "the other container's network namespace, µs per query)",
          ["engine", "server", "median", "p95", "failed", "berth/engine (median)"],
          [[k, f"{srv[k]} {v['server']}", fmt(med(v["us"]), 0), fmt(pct(v["us"], 95) if v["us"] else None, 0),
            str(v["fails"]), ratio(bb, med(v["us"]))]
           for k in order if k in r for v in [r[k]]])

    r = res.get("exec", {})
    bb = med(r["berth"]) if "berth" in r else None
    table(f"5a. `exec CONTAINER true` ({a.runs} runs, ms)", ["engine", "median", "p95", "berth/engine (median)"],
          [[k, fmt(med(r[k])), fmt(pct(r[k], 95)), ratio(bb, med(r[k]))] for k in order if k in r])

    for key, stream, what in [("attach", "zeros", f"head -c {a.bytes} /dev/zero"),
                              ("attach_text", "text", f"yes <100-byte line> | head -c {a.bytes}")]:
        r = res.get(key, {})
        if not r:
            continue
        bb = med(r["berth"]) if "berth" in r else None
        base = med(pipe_baseline(a.bytes, stream))
        rows = [[k, fmt(med(r[k]), 0), fmt(min(r[k]), 0), ratio(bb, med(r[k])),
                 fmt(med(r[k]) / base * 100, 0) + "%"] for k in order if k in r]
        rows.append(["plain pipe (host process)", fmt(base, 0), "", "", "100%"])
        table(f"5c. attach throughput, {stream}: `run --rm busybox {what}` to the CLI (3 runs, MiB/s)",
              ["engine", "median", "min", "berth/engine", "of a pipe"], rows)

    r = res.get("stats", {})
    bb = med(r["berth"]["ms"]) if "berth" in r else None
    table(f"5b. `stats --no-stream` with {a.containers} running containers (default bridge; 5 runs, ms)",
          ["engine", "median", "p95", "rows shown", "berth/engine (median)",
           f"starting the {a.containers} one by one (s)"],
          [[k, fmt(med(v["ms"])), fmt(pct(v["ms"], 95)), str(v["rows"]), ratio(bb, med(v["ms"])),
            fmt(v["start_s"], 1) + (f" ({v['failed']} failed)" if v["failed"] else "")]
           for k in order if k in r for v in [r[k]]])

    print("\nberth/engine: below 1 means berth is faster, except throughput (above 1: berth moves more).")
    for e in engines:
        for n in e.notes:
            print(f"\nnote: {e.name}: {n}")
    for n in notes:
        print(f"\nnote: {n}")
    print("\nrerun: `sudo bench/net.sh [RUNS]`")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--dns-probe":
        dns_probe(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bytes", type=int, default=1 << 30, help="bytes per throughput run (at most 4 GiB)")
    ap.add_argument("--lookups", type=int, default=500)
    ap.add_argument("--containers", type=int, default=STATS_CONTAINERS)
    ap.add_argument("--engines", default="berth,docker,podman")
    ap.add_argument("--only", default="", help="comma-separated subset of run,port,throughput,dns,exec,attach,attach_text,stats")
    a = ap.parse_args()
    a.bytes = max(1 << 20, min(a.bytes, 4 << 30))
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo bench/net.sh")
    preflight()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res, engines, notes = {}, [], []
    tables_before, netns_before = nft_tables(), netns_names()
    ipt_before = ipt_rules()
    tmp = tempfile.mkdtemp(prefix="bn-", dir="/tmp")
    try:
        _, a.tar = make_rootfs(tmp, all_applets=True)
        for i, (name, cls, tool) in enumerate([("berth", Berth, a.berth), ("docker", Docker, "dockerd"), ("podman", Podman, "podman")]):
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
                measure(e, a, Ports(38100 + 1000 * i), res)
            except Exception as ex:
                e.notes.append(f"set-up failed, skipped: {str(ex)[:400]}")
                log(f"{name}: set-up failed: {ex}")
            finally:
                errs = cleanup_engine(e, tmp, tables_before, ipt_before, netns_before)
                for x in errs:
                    e.notes.append(f"cleanup: {x}")
    finally:
        # whatever an interrupted run left: every engine's names again, then the temp root
        kill_leftovers(tmp)
        for e in engines:
            host_cleanup(e.name, ipt_before, tables_before, netns_before)
        umount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(tmp):
            notes.append(f"{tmp} could not be removed entirely (a mount left under it?)")
        left = [b for b in sum(BRIDGES.values(), []) if b in links()]
        extra = {(f, t) for f, t in nft_tables() - tables_before
                 if t == NFT_TABLE or (f in ("ip", "ip6") and t in ("nat", "filter", "mangle"))}
        if left or extra:
            notes.append(f"left behind after cleanup: bridges {left}, nft tables {sorted(extra)}")
        report(res, a, engines, notes)  # what was measured, also after an interruption


if __name__ == "__main__":
    main()
