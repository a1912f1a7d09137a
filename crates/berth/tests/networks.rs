//! Networking end to end, driven by the real `docker` CLI: the default bridge (address, route, hosts,
//! resolv.conf), user networks with name resolution and isolation, published ports from the host (loopback
//! only where asked), connect/disconnect on a live container, the network commands, recovery after a daemon
//! restart, and no leaks after many run/rm cycles.
//!
//! Network safety: every daemon has its own bridge, subnets and nftables table (see `common`); traffic goes
//! only to 127.0.0.1, to the test's own bridge addresses and to its containers.

mod common;

use common::{ok, text, Daemon};
use std::io::{Read, Write};
use std::time::Duration;

/// GET `path` from `addr` over plain HTTP/1.0; the body, or None when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let sa: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Poll until `addr` serves `path` (the server in a fresh container needs a moment), bounded.
fn wait_http(addr: &str, path: &str) -> Option<String> {
    for _ in 0..100 {
        if let Some(b) = http_get(addr, path) {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    None
}

fn veths_on(bridge: &str) -> usize {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    text(&out.stdout).lines().count()
}

/// The veth pairs of an exited container go when the kernel dismantles its namespace, just after the exit:
/// wait (bounded) until the bridge has `n` ports.
fn wait_veths(bridge: &str, n: usize) -> usize {
    for _ in 0..100 {
        let now = veths_on(bridge);
        if now == n {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    veths_on(bridge)
}

fn nft_table(table: &str) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn default_bridge_gives_an_address_a_route_and_etc_files() {
    let d = Daemon::start();
    d.import_busybox_full();
    let (a, b) = d.net;
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.9.9.9",
        "--add-host",
        "gw:host-gateway",
        "--dns-search",
        "example.test",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; cat /etc/hosts; cat /etc/resolv.conf",
    ]));
    let prefix = format!("10.{a}.{b}.");
    assert!(out.contains(&format!("inet {prefix}")), "{out}");
    assert!(
        out.contains(&format!("default via {prefix}1 dev eth0")),
        "{out}"
    );
    assert!(out.contains("10.9.9.9\tdb.local\n"), "{out}");
    assert!(out.contains(&format!("{prefix}1\tgw\n")), "{out}");
    assert!(
        out.contains(&format!("{prefix}2\tbox\n")) || out.contains("\tbox\n"),
        "{out}"
    );
    assert!(out.contains("search example.test\n"), "{out}");
    assert!(
        !out.contains("nameserver 127."),
        "loopback resolvers are dropped: {out}"
    );
    // While running: inspect shows the endpoint; after the exit nothing is left behind.
    let id = ok(&d.docker(&["run", "-d", "busybox", "sleep", "30"]));
    let ip = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.HostConfig.NetworkMode}}",
        id.trim(),
    ]));
    assert!(
        ip.starts_with(&prefix) && ip.contains(&format!(" {prefix}1 bridge")),
        "{ip}"
    );
    let key = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.SandboxKey}}",
        id.trim(),
    ]));
    assert!(std::path::Path::new(key.trim()).exists());
    assert_eq!(wait_veths(&d.bridge, 1), 1);
    ok(&d.docker(&["rm", "-f", id.trim()]));
    assert_eq!(
        wait_veths(&d.bridge, 0),
        0,
        "the veth went with the container"
    );
    assert!(
        !std::path::Path::new(key.trim()).exists(),
        "the namespace went with the container"
    );
    // --network none: only loopback, and up, as Docker has it.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; ip -o -4 addr show lo",
    ]));
    assert!(out.starts_with("lo\n"), "{out}");
    assert!(out.contains("inet 127.0.0.1/8"), "lo is up: {out}");
    // --network container:X shares X's namespace.
    ok(&d.docker(&["run", "-d", "--name", "first", "busybox", "sleep", "30"]));
    let mine = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]));
    let theirs = ok(&d.docker(&["exec", "first", "ip", "-4", "addr", "show", "eth0"]));
    assert_eq!(mine.lines().nth(1), theirs.lines().nth(1));
}

#[test]
fn user_networks_resolve_names_and_stay_isolated() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.docker(&["network", "create", "app"]));
    ok(&d.docker(&["network", "create", "other"]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--network",
        "app",
        "--name",
        "db",
        "--network-alias",
        "database",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]));
    // By name and by alias, through the embedded DNS server.
    let out = ok(&d.docker(&[
        "run", "--rm", "--network", "app", "busybox", "sh", "-c",
        "cat /etc/resolv.conf; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://database/passwd && break; sleep 0.2; done; ping -c1 -W2 db",
    ]));
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("root:x:0:0"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    // Another network neither resolves nor reaches it.
    let db_ip = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
        "db",
    ]));
    let out = d.docker(&[
        "run", "--rm", "--network", "other", "busybox", "sh", "-c",
        &format!("nslookup db 127.0.0.11 >/dev/null 2>&1 && echo resolved; wget -T 2 -qO- http://{}/passwd && echo reached; true", db_ip.trim()),
    ]);
    let s = text(&out.stdout);
    assert!(
        !s.contains("resolved") && !s.contains("reached"),
        "isolation broken: {s}"
    );
    // Connected live to `other` with an alias: now reachable there, and not after disconnecting.
    ok(&d.docker(&[
        "run",
        "-d",
        "--network",
        "other",
        "--name",
        "peer",
        "busybox",
        "sleep",
        "60",
    ]));
    ok(&d.docker(&["network", "connect", "--alias", "dbx", "other", "db"]));
    let out = ok(&d.docker(&["exec", "peer", "sh", "-c", "wget -qO- http://dbx/passwd"]));
    assert!(out.contains("root:x:0:0"), "{out}");
    let ifs = ok(&d.docker(&["exec", "db", "ls", "/sys/class/net"]));
    assert_eq!(ifs, "eth0\neth1\nlo\n");
    let containers = ok(&d.docker(&["network", "inspect", "-f", "{{len .Containers}}", "other"]));
    assert_eq!(containers.trim(), "2");
    ok(&d.docker(&["network", "disconnect", "other", "db"]));
    let out = d.docker(&[
        "exec",
        "peer",
        "sh",
        "-c",
        "nslookup dbx 127.0.0.11 >/dev/null 2>&1 && echo resolved; true",
    ]);
    assert!(!text(&out.stdout).contains("resolved"));
    assert_eq!(
        ok(&d.docker(&["exec", "db", "ls", "/sys/class/net"])),
        "eth0\nlo\n"
    );
    // Static addresses need a user subnet; aliases need a user network.
    let out = d.docker(&["run", "--rm", "--ip", "10.1.1.1", "busybox", "true"]);
    assert!(
        text(&out.stderr).contains("user defined networks only"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn network_commands_follow_docker() {
    let d = Daemon::start();
    d.import_busybox_full();
    let (a, _) = d.net;
    let subnet = format!("10.{a}.250.0/24");
    let id = ok(&d.docker(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--gateway",
        &format!("10.{a}.250.254"),
        "--label",
        "k=v",
        "--internal",
        "-o",
        "com.docker.network.bridge.name=btnet",
        "net1",
    ]));
    assert_eq!(id.trim().len(), 64);
    let ls = ok(&d.docker(&["network", "ls"]));
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    for n in ["bridge", "host", "none", "net1"] {
        assert!(ls.contains(&format!(" {n} ")), "{ls}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&ok(&d.docker(&["network", "inspect", "net1"]))).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], subnet);
    assert_eq!(v[0]["Internal"], true);
    assert_eq!(v[0]["Labels"]["k"], "v");
    assert!(std::path::Path::new("/sys/class/net/btnet").exists());
    // A fixed address, and no default route on an internal network.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "net1",
        "--ip",
        &format!("10.{a}.250.7"),
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route",
    ]));
    assert!(out.contains(&format!("inet 10.{a}.250.7/24")), "{out}");
    assert!(!out.contains("default"), "{out}");
    // Overlapping subnets, duplicate names, predefined networks, networks in use: refused.
    let out = d.docker(&["network", "create", "--subnet", &subnet, "net2"]);
    assert!(
        text(&out.stderr).contains("overlaps"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["network", "create", "net1"]);
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["network", "rm", "bridge"]);
    assert!(
        text(&out.stderr).contains("pre-defined network"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&[
        "run",
        "-d",
        "--network",
        "net1",
        "--name",
        "user",
        "busybox",
        "sleep",
        "60",
    ]));
    let out = d.docker(&["network", "rm", "net1"]);
    assert!(
        text(&out.stderr).contains("active endpoints"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert!(
        text(&out.stderr).contains("network nope not found"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&["rm", "-f", "user"]));
    ok(&d.docker(&["network", "create", "spare"]));
    let pruned = ok(&d.docker(&["network", "prune", "-f"]));
    assert!(
        pruned.contains("net1") && pruned.contains("spare"),
        "{pruned}"
    );
    assert!(!std::path::Path::new("/sys/class/net/btnet").exists());
    assert_eq!(
        ok(&d.docker(&["network", "ls", "-q", "--filter", "type=custom"])),
        ""
    );
}

#[test]
fn published_ports_answer_on_the_host_and_only_where_bound() {
    let d = Daemon::start();
    d.import_busybox_full();
    let (a, b) = d.net;
    let lo_port = common::free_port();
    let any_port = common::free_port();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{lo_port}:80"),
        "-p",
        &format!("{any_port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]));
    let body = wait_http(&format!("127.0.0.1:{lo_port}"), "/passwd")
        .expect("loopback-published port answers");
    assert!(body.starts_with("root:x:0:0"), "{body}");
    assert!(http_get(&format!("127.0.0.1:{any_port}"), "/passwd").is_some());
    // The bridge's own address is a host address too: the all-addresses port answers there, the loopback one
    // must not.
    let gw = format!("10.{a}.{b}.1");
    assert!(http_get(&format!("{gw}:{any_port}"), "/passwd").is_some());
    assert!(
        http_get(&format!("{gw}:{lo_port}"), "/passwd").is_none(),
        "127.0.0.1-only port reached on {gw}"
    );
    // Container to container through the published port (hairpin through the host).
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{any_port}/passwd"),
    ]));
    assert!(out.starts_with("root:x:0:0"), "{out}");
    let port = ok(&d.docker(&["port", "web"]));
    assert!(
        port.contains(&format!("80/tcp -> 127.0.0.1:{lo_port}")),
        "{port}"
    );
    assert!(
        port.contains(&format!("80/tcp -> 0.0.0.0:{any_port}")),
        "{port}"
    );
    let ps = ok(&d.docker(&["ps", "--format", "{{.Ports}}"]));
    assert!(ps.contains(&format!("127.0.0.1:{lo_port}->80/tcp")), "{ps}");
    // A taken host port: Docker's error, nothing half set up.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{any_port}:80"),
        "busybox",
        "sleep",
        "9",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("port is already allocated"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(wait_veths(&d.bridge, 1), 1, "the failed start left no veth");
    // -P: every exposed port on a random host port.
    ok(&d.docker(&[
        "run", "-d", "--name", "web2", "--expose", "80", "-P", "busybox", "httpd", "-f", "-p",
        "80", "-h", "/etc",
    ]));
    let mapped = ok(&d.docker(&["port", "web2", "80"]));
    let p = mapped.trim().rsplit(':').next().unwrap().to_string();
    assert!(
        wait_http(&format!("127.0.0.1:{p}"), "/passwd").is_some(),
        "-P port {p}"
    );
    // Rules exist while the containers run and are gone with them.
    assert!(nft_table(&d.table).contains(&format!("dport {any_port}")));
    ok(&d.docker(&["rm", "-f", "web", "web2"]));
    let t = nft_table(&d.table);
    assert!(
        !t.contains(&format!("dport {any_port}")) && !t.contains(&format!("dport {lo_port}")),
        "{t}"
    );
    assert!(http_get(&format!("127.0.0.1:{lo_port}"), "/passwd").is_none());
}

#[test]
fn ports_dns_and_rules_come_back_after_a_daemon_restart() {
    let mut d = Daemon::start();
    d.import_busybox_full();
    let port = common::free_port();
    ok(&d.docker(&["network", "create", "app"]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--network",
        "app",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--network",
        "app",
        "--name",
        "client",
        "busybox",
        "sleep",
        "300",
    ]));
    assert!(wait_http(&format!("127.0.0.1:{port}"), "/passwd").is_some());
    d.kill9();
    // The host lost our rules while the daemon was down (a firewall reload): the next daemon restores them.
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "ip", &d.table])
        .status();
    assert!(http_get(&format!("127.0.0.1:{port}"), "/passwd").is_none());
    d.spawn();
    assert!(
        wait_http(&format!("127.0.0.1:{port}"), "/passwd").is_some(),
        "port forwarding restored"
    );
    let out = ok(&d.docker(&["exec", "client", "sh", "-c", "wget -qO- http://web/passwd"]));
    assert!(out.starts_with("root:x:0:0"), "DNS served again: {out}");
    // A new container does not get an address already in use.
    let ips = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]));
    for name in ["web", "client"] {
        let ip = ok(&d.docker(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.app.IPAddress}}",
            name,
        ]));
        assert!(
            !ips.contains(&format!("inet {}/", ip.trim())),
            "{ips} reuses {ip}"
        );
    }
}

#[test]
fn network_none_containers_each_get_a_namespace_of_their_own_with_lo_up() {
    // The daemon keeps a few namespaces made ahead for `none`: each container still gets its own, with its
    // loopback up, and the spares stay few.
    let d = Daemon::start();
    d.import_busybox_full();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut seen = Vec::new();
    for i in 0..3 {
        let name = format!("none{i}");
        ok(&d.docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "busybox",
            "sleep",
            "60",
        ]));
        let out = ok(&d.docker(&[
            "exec",
            &name,
            "sh",
            "-c",
            "readlink /proc/1/ns/net; ls /sys/class/net; ip -o -4 addr show lo",
        ]));
        let mut lines = out.lines();
        let ns = lines.next().unwrap().to_string();
        assert_ne!(std::path::Path::new(&ns), host, "not the host's namespace");
        assert!(!seen.contains(&ns), "{ns} shared by two containers");
        seen.push(ns);
        assert_eq!(lines.next(), Some("lo"), "{out}");
        assert!(out.contains("inet 127.0.0.1/8"), "lo is up: {out}");
        // Time for the spares to be made again.
        std::thread::sleep(Duration::from_millis(300));
    }
    // The daemon holds its spares by descriptors: a few, none of them a running container's.
    let daemon = d.pid().unwrap();
    let held: Vec<String> = std::fs::read_dir(format!("/proc/{daemon}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| l.starts_with("net:"))
        .collect();
    assert!(held.len() <= 2, "{held:?}");
    for ns in &seen {
        assert!(
            !held.contains(ns),
            "{ns}: a container's namespace still held"
        );
    }
}

#[test]
fn many_run_rm_cycles_leak_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    let cycles: usize = std::env::var("BERTH_LEAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let port = common::free_port();
    // Mounts under the test's roots, but the roots kept mounted for the next `--rm` containers (a few).
    let kept = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains("/containers/.free-"))
            .count()
    };
    let ours = |_: ()| {
        let prefix = d.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&prefix) && !l.contains("/containers/.free-"))
            .count()
    };
    let mounts_before = ours(());
    for i in 0..cycles {
        let out = d.berth(&[
            "run",
            "--rm",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "true",
        ]);
        assert!(out.status.success(), "cycle {i}: {}", text(&out.stderr));
    }
    assert_eq!(wait_veths(&d.bridge, 0), 0, "veths left");
    let netns = d.dir.path().join("x/netns");
    let left = std::fs::read_dir(&netns).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "network namespaces left in {}", netns.display());
    let t = nft_table(&d.table);
    assert!(
        !t.contains(&format!("dport {port}")),
        "port rules left: {t}"
    );
    // The last container's root is unmounted by its shim just after `run --rm` returns.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut mounts_after = ours(());
    while mounts_after != mounts_before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        mounts_after = ours(());
    }
    assert_eq!(
        mounts_after, mounts_before,
        "mounts leaked under the daemon's roots"
    );
    assert!(kept() <= 4, "{} roots kept mounted", kept());
    // The port is free again, and addresses were handed out again and again without running out (/24).
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still held"
    );
}
