//! The sockets and tasks of one container's DNS server.
//!
//! [`serve_in_netns`] binds a UDP socket and a TCP listener inside the container's network namespace (on a
//! short-lived thread, through `berth_sys::netns::run_in`) and serves both from ONE task on the caller's
//! runtime. Answers berth owns are computed inline on that task; forwarded queries run in child tasks (at most
//! [`MAX_FORWARDS`] at a time) that use sockets made in the daemon's own namespace, so the host's resolvers
//! (even loopback ones like 127.0.0.53) are reachable. TCP connections (at most [`MAX_TCP_CONNS`]) are served
//! in child tasks too, each bounded in time. Every child task lives in a `JoinSet` owned by the server task,
//! so stopping the server aborts them all and closes every socket.

use super::{handle, servfail, Reply, Resolve, Transport};
use crate::{NetworkError, Result};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

/// How long one upstream gets to answer before the next one is tried.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many queries are being forwarded at once per server; more get SERVFAIL at once.
pub const MAX_FORWARDS: usize = 100;
/// At most this many TCP clients are served at once per server; more are closed at once.
pub const MAX_TCP_CONNS: usize = 16;
/// The whole life of one TCP connection, however many queries it carries.
pub const TCP_SESSION: Duration = Duration::from_secs(10);
/// The largest UDP query read (queries are small; a larger datagram is cut and fails to parse).
const UDP_QUERY_BUF: usize = 4096;

/// A running DNS server. Dropping it (or [`DnsServer::stop`]) stops serving and closes its sockets.
#[derive(Debug)]
pub struct DnsServer {
    task: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl DnsServer {
    /// The address the server listens on (inside the container's namespace), for both UDP and TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stop serving and wait until the sockets are closed, so the address can be bound again at once.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What every task of one server shares.
struct Shared {
    container: String,
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
    forwards: Arc<Semaphore>,
}

/// Serve DNS for `container` on `listen` (normally 127.0.0.11:53) inside the network namespace at `netns`,
/// answering from `resolver` and forwarding the rest to `upstreams` in order. The namespace's loopback
/// interface must be up (the address is bound, not just routed). Must be called within a tokio runtime,
/// which then runs the server.
pub async fn serve_in_netns(
    netns: &Path,
    listen: SocketAddr,
    container: String,
    resolver: Arc<dyn Resolve>,
    upstreams: Vec<SocketAddr>,
) -> Result<DnsServer> {
    let ns = netns.to_path_buf();
    let (udp, tcp) = tokio::task::spawn_blocking(move || {
        berth_sys::netns::run_in(&ns, move || bind_pair(listen))
    })
    .await
    .map_err(|e| NetworkError::io("bind DNS server", std::io::Error::other(e)))??
    .map_err(|e| {
        NetworkError::io(
            format!("bind DNS server on {listen} in {}", netns.display()),
            e,
        )
    })?;
    let context = || format!("serve DNS on {listen} in {}", netns.display());
    let udp = UdpSocket::from_std(udp).map_err(|e| NetworkError::io(context(), e))?;
    let tcp = TcpListener::from_std(tcp).map_err(|e| NetworkError::io(context(), e))?;
    let local = udp
        .local_addr()
        .map_err(|e| NetworkError::io(context(), e))?;
    let shared = Arc::new(Shared {
        container,
        resolver,
        upstreams,
        forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
    });
    let task = tokio::spawn(serve(udp, tcp, shared));
    Ok(DnsServer {
        task: Some(task),
        local,
    })
}

/// Bind the UDP socket, then the TCP listener on the same address and port (the UDP socket's, should
/// `listen` ask for port 0), both non-blocking for tokio.
fn bind_pair(listen: SocketAddr) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let udp = std::net::UdpSocket::bind(listen)?;
    let tcp = std::net::TcpListener::bind(udp.local_addr()?)?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// The server task: UDP queries, TCP connections, and reaping the child tasks.
async fn serve(udp: UdpSocket, tcp: TcpListener, shared: Arc<Shared>) {
    let udp = Arc::new(udp);
    let mut buf = vec![0u8; UDP_QUERY_BUF];
    let mut forwards: JoinSet<()> = JoinSet::new();
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            got = udp.recv_from(&mut buf) => match got {
                Ok((n, peer)) => on_udp(&buf[..n], peer, &udp, &shared, &mut forwards),
                Err(e) => {
                    tracing::debug!(container = %shared.container, "dns: udp receive: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            got = tcp.accept() => match got {
                Ok((stream, _)) if conns.len() < MAX_TCP_CONNS => {
                    conns.spawn(tcp_session(stream, shared.clone()));
                }
                Ok(_) => tracing::debug!(container = %shared.container, "dns: too many tcp clients"),
                Err(e) => {
                    // EMFILE and the like: do not spin.
                    tracing::debug!(container = %shared.container, "dns: tcp accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = forwards.join_next() => {}
            Some(_) = conns.join_next() => {}
        }
    }
}

/// One UDP query: answered at once, or forwarded in a child task that replies when upstream does.
fn on_udp(
    query: &[u8],
    peer: SocketAddr,
    udp: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    forwards: &mut JoinSet<()>,
) {
    match handle(
        query,
        Transport::Udp,
        &shared.container,
        shared.resolver.as_ref(),
    ) {
        Reply::Answer(bytes) => {
            // A full socket buffer drops the answer, as the network could; the client retries.
            let _ = udp.try_send_to(&bytes, peer);
        }
        Reply::Drop => {}
        Reply::Forward { max_size } => {
            let permit = if shared.upstreams.is_empty() {
                None
            } else {
                shared.forwards.clone().try_acquire_owned().ok()
            };
            let Some(permit) = permit else {
                // Nowhere to forward to, or too many forwards in flight.
                if let Some(bytes) = servfail(query) {
                    let _ = udp.try_send_to(&bytes, peer);
                }
                return;
            };
            let query = query.to_vec();
            let udp = udp.clone();
            let shared = shared.clone();
            forwards.spawn(async move {
                let _permit = permit;
                let reply = forward(&query, &shared.upstreams, max_size, Transport::Udp)
                    .await
                    .or_else(|| servfail(&query));
                if let Some(bytes) = reply {
                    let _ = udp.send_to(&bytes, peer).await;
                }
            });
        }
    }
}

/// One TCP client: length-prefixed queries answered in order until it closes, sends garbage, or its time
/// ([`TCP_SESSION`]) is up.
async fn tcp_session(mut stream: TcpStream, shared: Arc<Shared>) {
    let session = async {
        let mut query = Vec::new();
        loop {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.ok()?;
            let len = usize::from(u16::from_be_bytes(len));
            if len == 0 {
                return None;
            }
            query.resize(len, 0);
            stream.read_exact(&mut query).await.ok()?;
            let reply = match handle(
                &query,
                Transport::Tcp,
                &shared.container,
                shared.resolver.as_ref(),
            ) {
                Reply::Answer(bytes) => bytes,
                Reply::Drop => return None,
                Reply::Forward { max_size } => {
                    let permit = shared.forwards.clone().try_acquire_owned().ok();
                    let answer = match permit {
                        Some(_permit) => {
                            forward(&query, &shared.upstreams, max_size, Transport::Tcp).await
                        }
                        None => None,
                    };
                    answer.or_else(|| servfail(&query))?
                }
            };
            let len = u16::try_from(reply.len()).ok()?;
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&reply);
            stream.write_all(&framed).await.ok()?;
        }
    };
    let _: std::result::Result<Option<()>, _> = timeout(TCP_SESSION, session).await;
}

/// Ask each upstream in turn, [`UPSTREAM_TIMEOUT`] each, over UDP; a truncated answer for a TCP client is
/// asked again over TCP. The answer is relayed unchanged (it carries the client's id, since the query went
/// out unchanged). `None` when no upstream answered.
async fn forward(
    query: &[u8],
    upstreams: &[SocketAddr],
    max_size: u16,
    client: Transport,
) -> Option<Vec<u8>> {
    if upstreams.is_empty() {
        return None;
    }
    // One byte more than the client accepts, to tell an oversized datagram from one that fits exactly.
    let mut buf = vec![0u8; usize::from(max_size.max(512)) + 1];
    for upstream in upstreams {
        let n = match timeout(UPSTREAM_TIMEOUT, udp_exchange(query, *upstream, &mut buf)).await {
            Ok(Ok(n)) if n < buf.len() => n,
            Ok(Ok(_)) => {
                tracing::debug!(%upstream, "dns: upstream answer larger than asked for");
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!(%upstream, "dns: forward: {e}");
                continue;
            }
            Err(_) => {
                tracing::debug!(%upstream, "dns: forward: no answer in time");
                continue;
            }
        };
        let truncated = buf[2] & 0x02 != 0;
        if truncated && client == Transport::Tcp {
            if let Ok(Ok(full)) = timeout(UPSTREAM_TIMEOUT, tcp_exchange(query, *upstream)).await {
                return Some(full);
            }
        }
        buf.truncate(n);
        return Some(buf);
    }
    None
}

/// Whether `answer` is a response to `query`: same id, QR set.
fn answers(query: &[u8], answer: &[u8]) -> bool {
    answer.len() >= 12 && answer[..2] == query[..2] && answer[2] & 0x80 != 0
}

/// One query over UDP from a fresh socket (a random source port, connected so only `upstream` can answer).
async fn udp_exchange(
    query: &[u8],
    upstream: SocketAddr,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    loop {
        let n = sock.recv(buf).await?;
        if answers(query, &buf[..n]) {
            return Ok(n);
        }
    }
}

/// One query over TCP (length-prefixed both ways).
async fn tcp_exchange(query: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await?;
    if !answers(query, &answer) {
        return Err(std::io::Error::other("answer does not match the query"));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests;
