//! Root tests of bridges, veth pairs and published ports on the real kernel.
//!
//! Each test builds its own world (a bridge `bt<pid><n>`, a 10.199.x.0/24 subnet, namespaces in a temp dir,
//! an nft table `berth_b<pid>_<n>`) and a guard removes all of it when the test ends, panic or not. Traffic
//! only ever goes to 127.0.0.1 and to the namespaces the test made. Without root every test says so and
//! returns.

use berth_network::firewall::{Firewall, NetworkRules, Nft, PortMapping, Proto, Ruleset};
use berth_network::link::{BridgeSpec, Links, Netlink, VethSpec};
use berth_network::ports::PortAllocator;
use berth_network::sysctl::Sysctl;
use berth_network::NetworkError;
use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

fn root() -> bool {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (bridges, veths, namespaces, nftables): run them as root (CI does)"
    );
    true
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test's bridge, subnet, namespaces, veths and nft table, all removed on drop.
struct World {
    id: String,
    bridge: String,
    subnet: Ipv4Net,
    dir: tempfile::TempDir,
    namespaces: Vec<PathBuf>,
    veths: Vec<String>,
    table: String,
}

impl World {
    fn new() -> World {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let id = format!("{}{n}", pid % 100_000);
        // Up to 5 worlds per process get distinct subnets.
        let third = ((pid % 51) * 5 + n) % 256;
        let subnet: Ipv4Net = format!("10.199.{third}.0/24").parse().unwrap();
        World {
            bridge: format!("bt{id}"),
            subnet,
            dir: tempfile::tempdir().unwrap(),
            namespaces: Vec::new(),
            veths: Vec::new(),
            table: format!("berth_b{pid}_{n}"),
            id,
        }
    }

    /// `10.199.x.<host>`
    fn ip(&self, host: u8) -> Ipv4Addr {
        let o = self.subnet.network().octets();
        Ipv4Addr::new(o[0], o[1], o[2], host)
    }

    fn gateway(&self) -> Ipv4Net {
        Ipv4Net::new(self.ip(1), self.subnet.prefix_len()).unwrap()
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        berth_sys::netns::create(&path).unwrap();
        self.namespaces.push(path.clone());
        path
    }

    fn bridge_spec(&self) -> BridgeSpec {
        BridgeSpec {
            name: self.bridge.clone(),
            gateway: self.gateway(),
            mtu: None,
        }
    }

    /// A veth spec for `ns` with address `.host`; the host end is remembered for cleanup.
    fn veth(&mut self, ns: &Path, ifname: &str, host: u8) -> VethSpec {
        let host_ifname = format!("vt{}_{host}", self.id);
        self.veths.push(host_ifname.clone());
        VethSpec {
            bridge: self.bridge.clone(),
            host_ifname,
            netns: ns.to_path_buf(),
            container_ifname: ifname.to_string(),
            address: Ipv4Net::new(self.ip(host), self.subnet.prefix_len()).unwrap(),
            gateway: Some(self.ip(1)),
            mac: None,
            mtu: None,
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let veths = self.veths.clone();
        let bridge = self.bridge.clone();
        // Drop may run inside the test's runtime, which must not block: clean up from a runtime of our own.
        let links = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut errors = Vec::new();
                let nl = match Netlink::new() {
                    Ok(nl) => nl,
                    Err(e) => return vec![e.to_string()],
                };
                for v in &veths {
                    if let Err(e) = nl.detach(v).await {
                        errors.push(e.to_string());
                    }
                }
                if let Err(e) = nl.delete_bridge(&bridge).await {
                    errors.push(e.to_string());
                }
                errors
            })
        })
        .join()
        .unwrap_or_else(|_| vec!["link cleanup panicked".to_string()]);
        for e in links {
            eprintln!("cleanup: {e}");
        }
        for ns in &self.namespaces {
            if let Err(e) = berth_sys::netns::remove(ns) {
                eprintln!("cleanup: {e}");
            }
        }
        if let Err(e) = Nft::new(self.table.clone()).clear() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Listen on `0.0.0.0:80` inside `ns` and answer one connection on a thread: read a line, reply
/// `pong <line>` and close. The thread returns the peer's address.
fn serve_once(ns: &Path) -> std::thread::JoinHandle<std::io::Result<SocketAddr>> {
    let listener = berth_sys::netns::run_in(ns, || TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let (stream, peer) = loop {
            match listener.accept() {
                Ok(conn) => break conn,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        (&stream).write_all(format!("pong {line}").as_bytes())?;
        Ok(peer)
    })
}

/// Send `ping <from>` to `addr` and return the answer.
fn ping(addr: SocketAddr, from: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(format!("ping {from}\n").as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// What an interface inside `ns` looks like, read over netlink from inside it.
#[derive(Debug)]
struct Seen {
    up: bool,
    mac: Vec<u8>,
    mtu: u32,
    lo_up: bool,
    default_gw: Option<Ipv4Addr>,
}

async fn inspect(ns: &Path, ifname: &str) -> Option<Seen> {
    let rt = tokio::runtime::Handle::current();
    let (conn, h, _) = berth_sys::netns::run_in(ns, move || {
        let _entered = rt.enter();
        rtnetlink::new_connection()
    })
    .unwrap()
    .unwrap();
    let task = tokio::spawn(conn);
    let get = |name: String| {
        let h = h.clone();
        async move {
            h.link()
                .get()
                .match_name(name)
                .execute()
                .try_next()
                .await
                .ok()
                .flatten()
        }
    };
    let link = get(ifname.to_string()).await?;
    let lo = get("lo".to_string()).await.unwrap();
    let routes: Vec<_> = h
        .route()
        .get(rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .unwrap();
    task.abort();
    let default_gw = routes
        .iter()
        .filter(|r| r.header.destination_prefix_length == 0)
        .find_map(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(*gw),
                _ => None,
            })
        });
    let mac = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) => Some(m.clone()),
        _ => None,
    });
    let mtu = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    });
    Some(Seen {
        up: link.header.flags.contains(LinkFlags::Up),
        mac: mac.unwrap_or_default(),
        mtu: mtu.unwrap_or(0),
        lo_up: lo.header.flags.contains(LinkFlags::Up),
        default_gw,
    })
}

#[tokio::test]
async fn containers_on_one_bridge_reach_each_other_and_detach_removes_the_veth() {
    if !root() {
        return;
    }
    let mut w = World::new();
    let nl = Netlink::new().unwrap();
    nl.ensure_bridge(&w.bridge_spec()).await.unwrap();
    nl.ensure_bridge(&w.bridge_spec()).await.unwrap(); // idempotent
    let ns_a = w.netns("a");
    let ns_b = w.netns("b");
    let a = w.veth(&ns_a, "eth0", 2);
    let mut b = w.veth(&ns_b, "eth0", 3);
    b.mac = Some([0x02, 0x42, 10, 199, 0, 3]);
    b.mtu = Some(1400);
    nl.attach(&a).await.unwrap();
    nl.attach(&b).await.unwrap();

    let seen = inspect(&ns_b, "eth0").await.expect("eth0 in namespace b");
    assert!(seen.up && seen.lo_up, "{seen:?}");
    assert_eq!(seen.mac, vec![0x02, 0x42, 10, 199, 0, 3]);
    assert_eq!(seen.mtu, 1400);
    assert_eq!(seen.default_gw, Some(w.ip(1)));

    let server = serve_once(&ns_a);
    let to = SocketAddr::from((w.ip(2), 80));
    let answer = berth_sys::netns::run_in(&ns_b, move || ping(to, "b"))
        .unwrap()
        .unwrap();
    assert_eq!(answer, "pong ping b\n");
    let peer = server.join().unwrap().unwrap();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(w.ip(3)),
        "no NAT on the bridge"
    );

    // A veth is not a bridge: neither ensure_bridge nor delete_bridge touches it.
    let mut wrong = w.bridge_spec();
    wrong.name = a.host_ifname.clone();
    assert!(matches!(
        nl.ensure_bridge(&wrong).await,
        Err(NetworkError::Conflict(_))
    ));
    assert!(nl.delete_bridge(&a.host_ifname).await.is_err());

    assert!(nl.link_exists(&a.host_ifname).await.unwrap());
    nl.detach(&a.host_ifname).await.unwrap();
    assert!(!nl.link_exists(&a.host_ifname).await.unwrap());
    assert!(
        inspect(&ns_a, "eth0").await.is_none(),
        "the peer went with it"
    );
    nl.detach(&a.host_ifname).await.unwrap(); // missing is fine
    nl.delete_bridge(&w.bridge).await.unwrap();
    assert!(!nl.link_exists(&w.bridge).await.unwrap());
    nl.delete_bridge(&w.bridge).await.unwrap();
}

#[tokio::test]
async fn a_port_published_on_loopback_reaches_the_container_from_the_host() {
    if !root() {
        return;
    }
    let mut w = World::new();
    let nl = Netlink::new().unwrap();
    nl.ensure_bridge(&w.bridge_spec()).await.unwrap();
    let ns_a = w.netns("a");
    let a = w.veth(&ns_a, "eth0", 2);
    nl.attach(&a).await.unwrap();
    // Host-made traffic is not forwarded, so ip_forward is not needed; route_localnet is, for the 127.0.0.1
    // source on its way out of the bridge and the reply's 127.0.0.1 destination on its way back.
    Sysctl::new("/proc/sys")
        .enable_route_localnet(&w.bridge)
        .unwrap();
    let reservation = PortAllocator::default()
        .reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), 0)
        .unwrap();
    let rs = Ruleset {
        networks: vec![NetworkRules {
            bridge: w.bridge.clone(),
            subnet: w.subnet,
            masquerade: true,
            internal: false,
        }],
        ports: vec![PortMapping {
            proto: Proto::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: reservation.port,
            container_ip: w.ip(2),
            container_port: 80,
            bridge: w.bridge.clone(),
        }],
    };
    let nft = Nft::new(w.table.clone());
    nft.apply(&rs).unwrap();
    nft.apply(&rs).unwrap(); // idempotent

    let server = serve_once(&ns_a);
    let answer = tokio::task::spawn_blocking(move || {
        ping(SocketAddr::from(reservation.host_addr()), "host")
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(answer, "pong ping host\n");
    let peer = server.join().unwrap().unwrap();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(w.ip(1)),
        "the 127.0.0.1 source is masqueraded to the bridge address"
    );
}

#[tokio::test]
async fn a_failed_attach_leaves_no_veth_behind() {
    if !root() {
        return;
    }
    let mut w = World::new();
    let nl = Netlink::new().unwrap();
    nl.ensure_bridge(&w.bridge_spec()).await.unwrap();
    let ns = w.netns("a");
    // The gateway is not on the interface's subnet, so the last step (the default route) fails.
    let mut bad = w.veth(&ns, "eth0", 2);
    bad.gateway = Some(Ipv4Addr::new(198, 51, 100, 1));
    let err = nl.attach(&bad).await.unwrap_err().to_string();
    assert!(
        err.contains("add default route via 198.51.100.1 on eth0"),
        "{err}"
    );
    assert!(err.contains(&bad.host_ifname), "{err}");
    assert!(!nl.link_exists(&bad.host_ifname).await.unwrap());
    assert!(inspect(&ns, "eth0").await.is_none(), "peer gone too");

    // A taken container name is refused up front, and the message says which side is taken.
    let good = w.veth(&ns, "eth0", 3);
    nl.attach(&good).await.unwrap();
    let twin = w.veth(&ns, "eth0", 4);
    let err = nl.attach(&twin).await.unwrap_err();
    assert!(matches!(err, NetworkError::Conflict(_)), "{err}");
    assert!(
        err.to_string()
            .contains("eth0 already exists in the container namespace"),
        "{err}"
    );
    assert!(!nl.link_exists(&twin.host_ifname).await.unwrap());
    assert!(
        nl.link_exists(&good.host_ifname).await.unwrap(),
        "the first one is untouched"
    );

    // A missing bridge is named.
    let mut orphan = w.veth(&ns, "eth1", 5);
    orphan.bridge = format!("{}x", w.bridge);
    let err = nl.attach(&orphan).await.unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn ten_interfaces_attach_to_one_namespace_with_one_default_route() {
    if !root() {
        return;
    }
    let mut w = World::new();
    let nl = Netlink::new().unwrap();
    nl.ensure_bridge(&w.bridge_spec()).await.unwrap();
    let ns = w.netns("a");
    for i in 0..10u8 {
        let mut spec = w.veth(&ns, &format!("eth{i}"), 10 + i);
        if i > 0 {
            spec.gateway = None; // one default route per namespace
        }
        nl.attach(&spec).await.unwrap();
    }
    for i in 0..10u8 {
        let seen = inspect(&ns, &format!("eth{i}"))
            .await
            .unwrap_or_else(|| panic!("eth{i} is in the namespace"));
        assert!(seen.up, "eth{i} is up");
        assert_eq!(
            seen.default_gw,
            Some(w.ip(1)),
            "the one default route, via the bridge"
        );
    }
}
