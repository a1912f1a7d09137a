"""Host state for bench/net.py: the bridges, subnets, nftables table and iptables rules the networking
benchmark owns, the checks before a run and the best-effort cleanup after each engine (and again at the end).
Everything is found by names and subnets only this benchmark uses; nothing else on the host is touched.
"""
import ipaddress, json, os, shlex, shutil, signal, socket, subprocess, sys, time

from common import children_named, umount_under


# Names and addresses this script owns (nothing else on the host uses them; checked before the run).
BRIDGES = {"berth": ["bbench0", "bbench1"], "docker": ["dbench0", "dbench1"], "podman": ["pbench0", "pbench1"]}
SUBNETS = ["10.201.0.0/16", "10.202.0.0/16", "10.203.0.0/16", "10.204.0.0/16", "10.205.0.0/16"]
NFT_TABLE = "berth_bench"


def run(cmd, env=None, timeout=120, check=True, **kw):
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
    return r


def quiet(cmd, timeout=30):
    """Best-effort teardown step: never raises; returns an error string or None."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        return None if r.returncode == 0 else f"{' '.join(cmd)}: {r.stderr.strip()[-200:]}"
    except Exception as e:  # timeout, missing binary
        return f"{' '.join(cmd)}: {e}"


# ---------------------------------------------------------------------------------------------------- host state
def links():
    out = run(["ip", "-j", "link", "show"]).stdout
    return {l["ifname"]: l for l in json.loads(out or "[]")}


def nft_tables():
    out = run(["nft", "list", "tables"], check=False).stdout
    return {tuple(l.split()[1:3]) for l in out.splitlines() if l.startswith("table ")}


def ipt_rules():
    """{(binary, table): [lines of -S]} for the iptables tables netavark writes to."""
    snap = {}
    for b in ["iptables", "ip6tables"]:
        if not shutil.which(b):
            continue
        for t in ["nat", "filter", "mangle"]:
            r = run([b, "-w", "5", "-t", t, "-S"], check=False, timeout=30)
            snap[(b, t)] = r.stdout.splitlines() if r.returncode == 0 else []
    return snap


def netns_names():
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def preflight():
    """Refuses to run if a subnet of ours is already on an interface; removes a previous run's leftovers (only
    names this script owns)."""
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    mine = set(sum(BRIDGES.values(), []))
    for l in addrs:
        if l["ifname"] in mine:
            continue
        for a in l.get("addr_info", []):
            ip = ipaddress.ip_address(a["local"])
            if any(ip in ipaddress.ip_network(s) for s in SUBNETS):
                raise SystemExit(f"{l['ifname']} has {a['local']}: one of this benchmark's subnets {SUBNETS} is in use")
    stale = [b for b in mine if b in links()]
    if stale or any(t[1] == NFT_TABLE for t in nft_tables()):
        print(f"[net] removing leftovers of a previous run: {stale} {NFT_TABLE}", file=sys.stderr)
        remove_links(stale)
        for fam, t in nft_tables():
            if t == NFT_TABLE:
                quiet(["nft", "delete", "table", fam, t])


def remove_links(bridges):
    errs = []
    ls = links()
    for b in bridges:
        if b not in ls:
            continue
        for name, l in ls.items():  # veths still enslaved to our bridge are ours too
            if l.get("master") == b:
                e = quiet(["ip", "link", "del", name])
                errs += [e] if e else []
        e = quiet(["ip", "link", "del", b])
        errs += [e] if e else []
    return errs


def kill_leftovers(tmp):
    """Processes our daemons started that outlived them (shims, containerd, docker-proxy, aardvark-dns, conmon):
    found by this run's temp root in their command line, ended by PID."""
    names = {"containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy", "aardvark-dns", "conmon",
             "berth", "berth-shim", "dockerd"}
    me = os.getpid()
    pids = [p for p in children_named(names, tmp) if p != me]
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return pids


def listener(port):
    """Which process listens on 127.0.0.1:port on the host, if any ('' = none: the kernel forwards)."""
    r = run(["ss", "-Hltnp", f"sport = :{port}"], check=False)
    procs = set()
    for l in r.stdout.splitlines():
        if 'users:(("' in l:
            procs.add(l.split('users:(("')[1].split('"')[0])
    return ",".join(sorted(procs))


class Ports:
    def __init__(self, base):
        self.next = base

    def take(self):
        for _ in range(500):
            p, self.next = self.next, self.next + 1
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
            finally:
                s.close()
        raise RuntimeError("no free port")


# ---------------------------------------------------------------------------------------------------- cleanup
def undo_iptables(before):
    """Removes what netavark added to iptables during this run: NETAVARK chains and rules naming them or our
    subnets, then any iptables table that did not exist before and is empty again. Rules that were there before
    are never touched."""
    errs = []
    after = ipt_rules()
    for (b, t), lines in after.items():
        old = set(before.get((b, t), []))
        new = [l for l in lines if l not in old]
        for l in reversed([l for l in new if l.startswith("-A ") and ("NETAVARK" in l or "10.205." in l)]):
            e = quiet([b, "-w", "5", "-t", t, "-D"] + shlex.split(l)[1:])
            errs += [e] if e else []
        for l in [l for l in new if l.startswith("-N ") and "NETAVARK" in l]:
            quiet([b, "-w", "5", "-t", t, "-F", l.split()[1]])
        for l in [l for l in new if l.startswith("-N ") and "NETAVARK" in l]:
            e = quiet([b, "-w", "5", "-t", t, "-X", l.split()[1]])
            errs += [e] if e else []
    return errs


def drop_empty_new_tables(tables_before):
    """iptables-nft tables (ip/ip6 nat, filter, mangle) created during the run and now without rules."""
    errs = []
    for fam, t in nft_tables() - tables_before:
        if t not in ("nat", "filter", "mangle") or fam not in ("ip", "ip6"):
            continue
        b = "iptables" if fam == "ip" else "ip6tables"
        lines = run([b, "-w", "5", "-t", t, "-S"], check=False).stdout.splitlines()
        if all(l.startswith("-P ") for l in lines):
            e = quiet(["nft", "delete", "table", fam, t])
            errs += [e] if e else []
    return errs


def host_cleanup(engine, ipt_before, tables_before, netns_before):
    """What an engine left on the host, by the names and subnets this script owns. Safe to repeat."""
    errs = remove_links(BRIDGES[engine])
    # any other interface on our subnets (none expected: user networks get our bridge names)
    for l in json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]"):
        for ad in l.get("addr_info", []):
            if any(ipaddress.ip_address(ad["local"]) in ipaddress.ip_network(s) for s in SUBNETS):
                errs += remove_links([l["ifname"]]) + [f"removed {l['ifname']} ({ad['local']})"]
    if engine == "berth":
        for fam, t in nft_tables():
            if t == NFT_TABLE:
                err = quiet(["nft", "delete", "table", fam, t])
                errs += [err] if err else []
    if engine == "podman":
        errs += undo_iptables(ipt_before)
        for ns in netns_names() - netns_before:
            if ns.startswith("netns-"):  # podman's names
                err = quiet(["ip", "netns", "del", ns])
                errs += [err or f"removed leftover netns {ns}"]
    errs += drop_empty_new_tables(tables_before)
    return errs


def cleanup_engine(e, tmp, tables_before, ipt_before, netns_before):
    errs = e.teardown()
    time.sleep(0.5)
    killed = kill_leftovers(tmp)
    if killed:
        errs.append(f"ended leftover processes {killed}")
    errs += host_cleanup(e.name, ipt_before, tables_before, netns_before)
    umount_under(e.dir)
    return errs
