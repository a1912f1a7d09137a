//! Root test: a real server in a throwaway network namespace, queried from inside it, forwarding to a fake
//! upstream on the host's loopback. No traffic leaves loopback or the namespace made here.

use super::*;
use crate::dns::tests::{query, FakeResolver};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::io::{Read, Write};
use std::path::PathBuf;

const DNS: &str = "127.0.0.11:53";
const CLIENT_WAIT: Duration = Duration::from_secs(5);

/// A namespace bound in a temp dir, removed on drop.
struct Netns {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Netns {
    fn new() -> Netns {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net");
        berth_sys::netns::create(&path).unwrap();
        let ns = Netns { path, _dir: dir };
        let status = std::process::Command::new("nsenter")
            .arg(format!("--net={}", ns.path.display()))
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(status.success(), "bring lo up: {status}");
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = berth_sys::netns::remove(&self.path);
    }
}

/// A stand-in for the host's resolver on 127.0.0.1: answers `example.com` with 192.0.2.77 (over UDP, and
/// over TCP for `big.example.com`, which it truncates over UDP), and never answers anything else.
async fn fake_upstream() -> (SocketAddr, JoinHandle<()>) {
    // UDP and TCP on one port: the UDP port the kernel picks may be taken for TCP by a parallel test,
    // so pick again until both are free (bounded).
    let mut pair = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            pair = Some((udp, addr, tcp));
            break;
        }
    }
    let (udp, addr, tcp) = pair.expect("a loopback port free for both UDP and TCP");
    let answer = |q: &Message, truncate: bool| -> Vec<u8> {
        let mut resp = Message::response(q.metadata.id, q.metadata.op_code);
        resp.metadata.truncation = truncate;
        resp.add_query(q.queries[0].clone());
        if !truncate {
            resp.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                30,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 77))),
            ));
        }
        resp.to_vec().unwrap()
    };
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                Ok((n, peer)) = udp.recv_from(&mut buf) => {
                    let q = Message::from_vec(&buf[..n]).unwrap();
                    match q.queries[0].name().to_ascii().as_str() {
                        "example.com." => { udp.send_to(&answer(&q, false), peer).await.unwrap(); }
                        "big.example.com." => { udp.send_to(&answer(&q, true), peer).await.unwrap(); }
                        _ => {}
                    }
                }
                Ok((mut s, _)) = tcp.accept() => {
                    let mut len = [0u8; 2];
                    s.read_exact(&mut len).await.unwrap();
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    s.read_exact(&mut q).await.unwrap();
                    let q = Message::from_vec(&q).unwrap();
                    let a = answer(&q, false);
                    s.write_all(&(a.len() as u16).to_be_bytes()).await.unwrap();
                    s.write_all(&a).await.unwrap();
                }
            }
        }
    });
    (addr, task)
}

/// A port on 127.0.0.1 nothing listens on (bound, then closed).
fn dead_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Send `msg` to 127.0.0.11:53 over UDP from inside the namespace.
async fn ask_udp(ns: &Path, msg: &Message) -> Option<Message> {
    let bytes = msg.to_vec().unwrap();
    let ns = ns.to_path_buf();
    tokio::task::spawn_blocking(move || {
        berth_sys::netns::run_in(&ns, move || -> std::io::Result<Vec<u8>> {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
            sock.set_read_timeout(Some(CLIENT_WAIT))?;
            sock.send_to(&bytes, DNS)?;
            let mut buf = vec![0u8; 4096];
            let n = sock.recv(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    })
    .await
    .unwrap()
    .unwrap()
    .ok()
    .map(|b| Message::from_vec(&b).unwrap())
}

/// Send `msg` to 127.0.0.11:53 over TCP from inside the namespace.
async fn ask_tcp(ns: &Path, msg: &Message) -> Message {
    let bytes = msg.to_vec().unwrap();
    let ns = ns.to_path_buf();
    let answer = tokio::task::spawn_blocking(move || {
        berth_sys::netns::run_in(&ns, move || -> std::io::Result<Vec<u8>> {
            let mut s = std::net::TcpStream::connect_timeout(&DNS.parse().unwrap(), CLIENT_WAIT)?;
            s.set_read_timeout(Some(CLIENT_WAIT))?;
            s.write_all(&(bytes.len() as u16).to_be_bytes())?;
            s.write_all(&bytes)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len)?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf)?;
            Ok(buf)
        })
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    Message::from_vec(&answer).unwrap()
}

fn a_records(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_forwards_inside_a_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the scenario finished in time");
}

async fn scenario() {
    let ns = Netns::new();
    let (upstream, upstream_task) = fake_upstream().await;
    let server = serve_in_netns(
        &ns.path,
        DNS.parse().unwrap(),
        "c1".into(),
        Arc::new(FakeResolver::new()),
        // The first upstream refuses: the second must be asked.
        vec![dead_port(), upstream],
    )
    .await
    .unwrap();
    assert_eq!(server.local_addr(), DNS.parse().unwrap());

    // An owned name.
    let resp = ask_udp(&ns.path, &query("web.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(resp.metadata.id, 0x1234);
    assert!(resp.metadata.authoritative);
    assert_eq!(a_records(&resp), vec![Ipv4Addr::new(172, 18, 0, 2)]);
    assert_eq!(resp.answers[0].ttl, 600);

    // An owned name, AAAA: empty NOERROR.
    let resp = ask_udp(&ns.path, &query("web.", RecordType::AAAA))
        .await
        .unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
    assert!(resp.answers.is_empty());

    // A foreign name: the fake upstream's answer, relayed with the client's id.
    let resp = ask_udp(&ns.path, &query("example.com.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(resp.metadata.id, 0x1234);
    assert_eq!(a_records(&resp), vec![Ipv4Addr::new(192, 0, 2, 77)]);
    assert!(!resp.metadata.authoritative);

    // Over TCP: an owned name, and a foreign one the upstream truncates over UDP (asked again over TCP).
    let resp = ask_tcp(&ns.path, &query("db.", RecordType::A)).await;
    assert_eq!(a_records(&resp).len(), 2);
    let resp = ask_tcp(&ns.path, &query("big.example.com.", RecordType::A)).await;
    assert!(!resp.metadata.truncation);
    assert_eq!(a_records(&resp), vec![Ipv4Addr::new(192, 0, 2, 77)]);
    // The same over UDP is relayed truncated, for the client to retry over TCP.
    let resp = ask_udp(&ns.path, &query("big.example.com.", RecordType::A))
        .await
        .unwrap();
    assert!(resp.metadata.truncation);

    // Garbage over UDP is dropped and the server keeps serving.
    let ns_path = ns.path.clone();
    tokio::task::spawn_blocking(move || {
        berth_sys::netns::run_in(&ns_path, || {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.send_to(&[0xff; 7], DNS).unwrap();
        })
    })
    .await
    .unwrap()
    .unwrap();
    let resp = ask_udp(&ns.path, &query("web.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(a_records(&resp).len(), 1);

    // Nobody answers: SERVFAIL after the upstream timeout.
    let started = std::time::Instant::now();
    let resp = ask_udp(&ns.path, &query("silent.example.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() >= UPSTREAM_TIMEOUT);

    // Stopped: the address is free again at once.
    server.stop().await;
    let ns_path = ns.path.clone();
    let rebound = tokio::task::spawn_blocking(move || {
        berth_sys::netns::run_in(&ns_path, || {
            std::net::UdpSocket::bind(DNS).is_ok() && std::net::TcpListener::bind(DNS).is_ok()
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert!(rebound, "the server's sockets are closed once stop returns");
    upstream_task.abort();
}

#[tokio::test]
async fn binding_in_a_missing_namespace_fails_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let err = serve_in_netns(
        &missing,
        DNS.parse().unwrap(),
        "c1".into(),
        Arc::new(FakeResolver::new()),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("none"), "{err}");
}
