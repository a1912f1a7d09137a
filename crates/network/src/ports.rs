//! Host port reservations for published ports.
//!
//! The kernel forwards published ports (the firewall's DNAT rules), so no proxy listens on them; but the
//! port must still be kept from other programs while the container runs, or a host service binding it
//! later would silently lose its traffic to the container. A [`Reservation`] holds a socket bound to the
//! host address and port:
//! - TCP: bound, never listening, so nothing is ever accepted on it (a connection that escaped the DNAT
//!   gets a reset, not a hang);
//! - UDP: bound, with the smallest receive buffer (the DNAT takes the datagrams before local delivery).
//!
//! `SO_REUSEADDR` is deliberately not set: Linux lets two sockets share a port only when both set it, so
//! even a program that does (most servers, and Rust's `TcpListener`) cannot bind over a reservation.
//! Dropping the reservation frees the port.

use crate::firewall::Proto;
use crate::sysctl::Sysctl;
use crate::{NetworkError, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rustix::io::Errno;
use rustix::net::{bind, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::os::fd::OwnedFd;

/// The kernel's default `net.ipv4.ip_local_port_range`, used when it cannot be read.
pub const FALLBACK_RANGE: RangeInclusive<u16> = 32768..=60999;

/// How many random candidates a request for any free port tries before giving up.
const RANDOM_ATTEMPTS: usize = 128;

/// A host port kept for a container; dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    pub proto: Proto,
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
    socket: OwnedFd,
}

impl Reservation {
    /// The bound address (`0.0.0.0:8080` for every host address).
    pub fn host_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), self.port)
    }

    /// The socket that holds the port.
    pub fn socket(&self) -> &OwnedFd {
        &self.socket
    }
}

/// Parse `ip_local_port_range` (`"32768\t60999\n"`); `None` when it is not two ports, low to high.
pub fn parse_port_range(content: &str) -> Option<RangeInclusive<u16>> {
    let mut fields = content.split_whitespace();
    let low: u16 = fields.next()?.parse().ok()?;
    let high: u16 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || low == 0 || low > high {
        return None;
    }
    Some(low..=high)
}

/// Hands out host ports: the one asked for, or a free one from `range` when asked for port 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAllocator {
    range: RangeInclusive<u16>,
}

impl Default for PortAllocator {
    fn default() -> Self {
        PortAllocator::new(FALLBACK_RANGE)
    }
}

impl PortAllocator {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortAllocator { range }
    }

    /// Pick ports where the kernel picks ephemeral ones (`net.ipv4.ip_local_port_range`, as Docker
    /// does), or [`FALLBACK_RANGE`] when that cannot be read.
    pub fn from_kernel(sysctl: &Sysctl) -> Self {
        let range = sysctl
            .get("net.ipv4.ip_local_port_range")
            .ok()
            .and_then(|s| parse_port_range(&s))
            .unwrap_or(FALLBACK_RANGE);
        PortAllocator::new(range)
    }

    pub fn range(&self) -> RangeInclusive<u16> {
        self.range.clone()
    }

    /// Reserve `port` on `host_ip` (`None`: every address); port 0 picks a free one in the range. A port
    /// already in use is a [`NetworkError::Conflict`] worded as Docker words it.
    pub fn reserve(
        &self,
        proto: Proto,
        host_ip: Option<Ipv4Addr>,
        port: u16,
    ) -> Result<Reservation> {
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if port != 0 {
            return match bind_socket(proto, ip, port) {
                Ok(socket) => Ok(Reservation {
                    proto,
                    host_ip,
                    port,
                    socket,
                }),
                Err(Errno::ADDRINUSE) => Err(NetworkError::Conflict(format!(
                    "Bind for {ip}:{port} failed: port is already allocated"
                ))),
                Err(e) => Err(bind_error(proto, ip, port, e)),
            };
        }
        for candidate in self.candidates() {
            match bind_socket(proto, ip, candidate) {
                Ok(socket) => {
                    return Ok(Reservation {
                        proto,
                        host_ip,
                        port: candidate,
                        socket,
                    })
                }
                Err(Errno::ADDRINUSE) => continue,
                Err(e) => return Err(bind_error(proto, ip, candidate, e)),
            }
        }
        Err(NetworkError::Exhausted(format!(
            "no free {proto} port in {}-{} on {ip}",
            self.range.start(),
            self.range.end()
        )))
    }

    /// Random ports from the range: every one of them, shuffled, when the range is small; else
    /// [`RANDOM_ATTEMPTS`] random draws.
    fn candidates(&self) -> Vec<u16> {
        let mut rng = rand::thread_rng();
        if self.range.is_empty() {
            return Vec::new();
        }
        if self.range.len() <= RANDOM_ATTEMPTS {
            let mut all: Vec<u16> = self.range.clone().collect();
            all.shuffle(&mut rng);
            return all;
        }
        (0..RANDOM_ATTEMPTS)
            .map(|_| rng.gen_range(self.range.clone()))
            .collect()
    }
}

fn bind_error(proto: Proto, ip: Ipv4Addr, port: u16, e: Errno) -> NetworkError {
    NetworkError::io(
        format!("reserve {proto} port {ip}:{port}"),
        std::io::Error::from(e),
    )
}

/// A socket bound to `ip:port`, close-on-exec, without `SO_REUSEADDR` (see the module docs).
fn bind_socket(proto: Proto, ip: Ipv4Addr, port: u16) -> std::result::Result<OwnedFd, Errno> {
    let kind = match proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let fd = socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)?;
    if proto == Proto::Udp {
        // The kernel rounds this up to its minimum; stray datagrams cost next to nothing.
        sockopt::set_socket_recv_buffer_size(&fd, 0)?;
    }
    bind(&fd, &SocketAddrV4::new(ip, port))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    const LOCAL: Option<Ipv4Addr> = Some(Ipv4Addr::LOCALHOST);

    #[test]
    fn port_range_parses_the_kernel_file() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("1024 1024"), Some(1024..=1024));
        for bad in ["", "1", "a b", "5 4", "0 10", "1 2 3", "1 70000"] {
            assert_eq!(parse_port_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn range_comes_from_the_kernel_setting_or_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let sysctl = Sysctl::new(dir.path());
        assert_eq!(PortAllocator::from_kernel(&sysctl).range(), FALLBACK_RANGE);
        std::fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
        let file = dir.path().join("net/ipv4/ip_local_port_range");
        std::fs::write(&file, "40000\t40100\n").unwrap();
        assert_eq!(PortAllocator::from_kernel(&sysctl).range(), 40000..=40100);
        std::fs::write(&file, "garbage\n").unwrap();
        assert_eq!(PortAllocator::from_kernel(&sysctl).range(), FALLBACK_RANGE);
    }

    #[test]
    fn any_port_is_picked_from_the_range() {
        let alloc = PortAllocator::new(41000..=41999);
        let r = alloc.reserve(Proto::Tcp, LOCAL, 0).unwrap();
        assert!((41000..=41999).contains(&r.port), "{}", r.port);
        assert_eq!(r.host_addr().to_string(), format!("127.0.0.1:{}", r.port));
    }

    #[test]
    fn a_reserved_tcp_port_cannot_be_taken_and_accepts_nothing() {
        let alloc = PortAllocator::default();
        let r = alloc.reserve(Proto::Tcp, LOCAL, 0).unwrap();
        let addr = r.host_addr();
        // Rust's TcpListener sets SO_REUSEADDR; the reservation still wins.
        assert!(TcpListener::bind(addr).is_err(), "port stolen");
        let again = alloc.reserve(Proto::Tcp, LOCAL, r.port).unwrap_err();
        assert!(matches!(again, NetworkError::Conflict(_)));
        assert_eq!(
            again.to_string(),
            format!("Bind for {addr} failed: port is already allocated")
        );
        // Bound but not listening: a connection is refused rather than accepted.
        assert!(TcpStream::connect(addr).is_err());
        drop(r);
        let listener = TcpListener::bind(addr).expect("port freed by drop");
        drop(listener);
    }

    #[test]
    fn a_port_taken_by_another_program_is_a_conflict() {
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let err = PortAllocator::default()
            .reserve(Proto::Tcp, LOCAL, port)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
    }

    #[test]
    fn udp_ports_are_reserved_separately_from_tcp() {
        let alloc = PortAllocator::default();
        let udp = alloc.reserve(Proto::Udp, LOCAL, 0).unwrap();
        assert!(UdpSocket::bind(udp.host_addr()).is_err());
        assert!(matches!(
            alloc.reserve(Proto::Udp, LOCAL, udp.port),
            Err(NetworkError::Conflict(_))
        ));
        // The same number over TCP is another port; it is free unless some test holds it.
        if let Ok(tcp) = alloc.reserve(Proto::Tcp, LOCAL, udp.port) {
            assert_eq!(tcp.proto, Proto::Tcp);
        }
    }

    #[test]
    fn a_full_range_is_exhausted_not_endless() {
        let held = PortAllocator::default()
            .reserve(Proto::Tcp, LOCAL, 0)
            .unwrap();
        let tiny = PortAllocator::new(held.port..=held.port);
        let err = tiny.reserve(Proto::Tcp, LOCAL, 0).unwrap_err();
        assert!(matches!(err, NetworkError::Exhausted(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!("no free tcp port in {0}-{0} on 127.0.0.1", held.port)
        );
        #[allow(clippy::reversed_empty_ranges)] // an empty range on purpose
        let empty = PortAllocator::new(2..=1);
        assert!(matches!(
            empty.reserve(Proto::Tcp, LOCAL, 0),
            Err(NetworkError::Exhausted(_))
        ));
    }

    #[test]
    fn other_bind_errors_name_the_address() {
        // 203.0.113.77 is a documentation address this host does not have.
        let err = PortAllocator::default()
            .reserve(Proto::Tcp, Some(Ipv4Addr::new(203, 0, 113, 77)), 8080)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reserve tcp port 203.0.113.77:8080: "),
            "{err}"
        );
    }
}
