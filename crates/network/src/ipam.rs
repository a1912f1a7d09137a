//! IPv4 address management as pure data: the address pools new networks draw their subnets from, a network's
//! address space (subnet, optional `--ip-range`, gateway) and the allocation of container addresses in it.
//!
//! Nothing here keeps state: the engine persists each network's [`AddressSpace`], the addresses in use and the
//! last address handed out with its network records, and passes them back in. That is what lets allocations
//! survive a daemon restart, and what keeps these functions testable without root.
//!
//! The rules follow Docker's (libnetwork's default IPAM):
//! - pools are split into subnets of the pool's `size`, first free subnet wins ([`pick_subnet`]);
//! - a subnet's network and broadcast addresses are never handed out, except in /31 and /32 subnets
//!   (RFC 3021), where every address is a host;
//! - the gateway defaults to the first host address of the subnet;
//! - addresses are handed out sequentially after the last one given, wrapping around once, so an address just
//!   released is not reused at once ([`allocate`]);
//! - a requested (`--ip`) address only has to be inside the subnet, not inside the ip-range.

use crate::{NetworkError, Result};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// One entry of daemon.json's `default-address-pools`: `base` is split into subnets of prefix length `size`.
/// Deserializing validates like dockerd (`size` must be at least the base's prefix length and at most 32) and
/// normalizes `base` to its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPool")]
pub struct Pool {
    pub base: Ipv4Net,
    pub size: u8,
}

/// The pool as written in daemon.json, before validation.
#[derive(Deserialize)]
struct RawPool {
    base: Ipv4Net,
    size: i64,
}

impl TryFrom<RawPool> for Pool {
    type Error = NetworkError;

    fn try_from(raw: RawPool) -> Result<Pool> {
        let size = u8::try_from(raw.size)
            .ok()
            .filter(|s| (raw.base.prefix_len()..=32).contains(s))
            .ok_or_else(|| NetworkError::Invalid(format!("invalid pools size: {}", raw.size)))?;
        Ok(Pool {
            base: raw.base.trunc(),
            size,
        })
    }
}

impl Pool {
    /// A validated pool (see the type's documentation for the rules).
    pub fn new(base: Ipv4Net, size: u8) -> Result<Pool> {
        Pool::try_from(RawPool {
            base,
            size: i64::from(size),
        })
    }
}

/// Docker's default local address pools: 172.17.0.0/16 to 172.31.0.0/16 as /16s (172.16.0.0/16 is left
/// alone, as Docker does), then 192.168.0.0/16 split into /20s.
pub fn default_pools() -> Vec<Pool> {
    let pool = |a: u8, b: u8, len: u8, size: u8| Pool {
        base: Ipv4Net::new(Ipv4Addr::new(a, b, 0, 0), len).expect("valid prefix length"),
        size,
    };
    vec![
        pool(172, 17, 16, 16),
        pool(172, 18, 16, 16),
        pool(172, 19, 16, 16),
        pool(172, 20, 14, 16),
        pool(172, 24, 14, 16),
        pool(172, 28, 14, 16),
        pool(192, 168, 16, 20),
    ]
}

/// Whether two subnets share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet, in pool order, that overlaps none of `taken` (the subnets of the other networks and the
/// host's routes).
pub fn pick_subnet(pools: &[Pool], taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    for pool in pools {
        let base = pool.base.trunc();
        if pool.size < base.prefix_len() || pool.size > 32 {
            return Err(NetworkError::Invalid(format!(
                "invalid pools size: {}",
                pool.size
            )));
        }
        let block = 1u64 << (32 - pool.size);
        let end = u64::from(u32::from(base.broadcast()));
        let mut start = u64::from(u32::from(base.network()));
        'candidates: while start <= end {
            let candidate = net_at(start, pool.size);
            for t in taken {
                if overlaps(&candidate, t) {
                    // Jump past whichever ends later: this block or the taken subnet (aligned up to a block).
                    let past = u64::from(u32::from(t.broadcast())) + 1;
                    start = (start + block).max(past.div_ceil(block) * block);
                    continue 'candidates;
                }
            }
            return Ok(candidate);
        }
    }
    Err(NetworkError::Exhausted(
        "all predefined address pools have been fully subnetted".into(),
    ))
}

/// The subnet of prefix length `len` starting at `start` (a `u32` value widened to `u64`).
fn net_at(start: u64, len: u8) -> Ipv4Net {
    let addr = Ipv4Addr::from(u32::try_from(start).unwrap_or(u32::MAX));
    Ipv4Net::new(addr, len)
        .expect("prefix length checked")
        .trunc()
}

/// The destinations of the routes in `/proc/net/route` content, skipping the header, default routes and
/// lines that do not parse. The file prints addresses as the kernel's in-memory (network order) `u32`, in
/// hexadecimal, in the host's byte order.
pub fn host_routes(proc_net_route: &str) -> Vec<Ipv4Net> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    let mut routes: Vec<Ipv4Net> = Vec::new();
    for line in proc_net_route.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(mask)) = (
            fields.get(1).and_then(|f| hex(f)),
            fields.get(7).and_then(|f| hex(f)),
        ) else {
            continue;
        };
        let Ok(net) = Ipv4Net::with_netmask(dest, mask) else {
            continue; // a non-contiguous mask
        };
        if net.prefix_len() == 0 {
            continue;
        }
        let net = net.trunc();
        if !routes.contains(&net) {
            routes.push(net);
        }
    }
    routes
}

/// A network's IPv4 addressing, validated: the subnet, the optional sub-range container addresses are
/// allocated from (`--ip-range`) and the gateway (the bridge's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpace {
    pub subnet: Ipv4Net,
    pub ip_range: Option<Ipv4Net>,
    pub gateway: Ipv4Addr,
}

impl AddressSpace {
    /// Validate a network's IPAM settings the way dockerd does for API 1.44 and later (a subnet or ip-range
    /// with host bits set is refused with the masked form suggested; callers emulating older API versions
    /// can `trunc()` first). All problems are reported together, in Docker's wording. Without a gateway, the
    /// first host address of the subnet is used.
    pub fn new(
        subnet: Ipv4Net,
        ip_range: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<AddressSpace> {
        let mut errs: Vec<String> = Vec::new();
        if subnet != subnet.trunc() {
            errs.push(format!(
                "invalid subnet {subnet}: it should be {}",
                subnet.trunc()
            ));
        }
        let net = subnet.trunc();
        if let Some(range) = ip_range {
            if range.prefix_len() < net.prefix_len() {
                errs.push(format!(
                    "invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}"
                ));
            }
            if range != range.trunc() {
                errs.push(format!(
                    "invalid ip-range {range}: it should be {}",
                    range.trunc()
                ));
            }
            if !overlaps(&net, &range) {
                errs.push(format!(
                    "invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range"
                ));
            }
        }
        if let Some(gw) = gateway {
            if !net.contains(&gw) {
                errs.push(format!(
                    "invalid gateway {gw}: parent subnet {subnet} doesn't contain this address"
                ));
            }
        }
        match errs.len() {
            0 => {}
            1 => return Err(invalid_config(&errs[0])),
            _ => return Err(invalid_config(&format!("* {}", errs.join("\n* ")))),
        }
        let (first, last) = host_bounds(&net);
        let gateway = match gateway {
            Some(gw) if u32::from(gw) < first || u32::from(gw) > last => {
                // dockerd reserves the network and broadcast addresses, so asking for either fails this way.
                return Err(NetworkError::Invalid(format!(
                    "failed to allocate gateway ({gw}): Address already in use"
                )));
            }
            Some(gw) => gw,
            None => Ipv4Addr::from(first),
        };
        Ok(AddressSpace {
            subnet: net,
            ip_range: ip_range.map(|r| r.trunc()),
            gateway,
        })
    }

    /// The gateway with the subnet's prefix length, as it is set on the bridge (`172.18.0.1/16`).
    pub fn gateway_cidr(&self) -> Ipv4Net {
        Ipv4Net::new(self.gateway, self.subnet.prefix_len()).expect("prefix length of a subnet")
    }
}

fn invalid_config(detail: &str) -> NetworkError {
    NetworkError::Invalid(format!("invalid network config:\n{detail}"))
}

/// The first and last host addresses of a subnet: all of it for /31 and /32, else without the network and
/// broadcast addresses.
fn host_bounds(net: &Ipv4Net) -> (u32, u32) {
    let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
    if net.prefix_len() >= 31 {
        (lo, hi)
    } else {
        (lo + 1, hi - 1)
    }
}

/// An address for a container on a network with `space`, given the addresses already `used` there (the
/// gateway need not be among them) and the `last` address handed out.
///
/// - `requested` (`--ip`) must be in the subnet (the ip-range does not matter) and free; the network's
///   reserved addresses (network, broadcast, gateway) count as in use, as in dockerd;
/// - otherwise the next free address after `last` in the ip-range (or the subnet), wrapping around once.
///
/// `network` names the network in the exhaustion error (dockerd shows `name (id)`).
pub fn allocate(
    space: &AddressSpace,
    used: &BTreeSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    network: &str,
) -> Result<Ipv4Addr> {
    let (host_lo, host_hi) = host_bounds(&space.subnet);
    let gateway = u32::from(space.gateway);
    let reserved = |a: u32| a < host_lo || a > host_hi || a == gateway;
    if let Some(ip) = requested {
        if !space.subnet.contains(&ip) {
            return Err(NetworkError::Invalid(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
        if reserved(u32::from(ip)) || used.contains(&ip) {
            return Err(NetworkError::Conflict("Address already in use".into()));
        }
        return Ok(ip);
    }
    let range = space.ip_range.unwrap_or(space.subnet);
    let lo = u32::from(range.network()).max(host_lo);
    let hi = u32::from(range.broadcast()).min(host_hi);
    let exhausted = || {
        NetworkError::Exhausted(format!(
            "no available IPv4 addresses on this network's address pools: {network}"
        ))
    };
    if lo > hi {
        return Err(exhausted());
    }
    let start = match last.map(u32::from) {
        Some(l) if l >= lo && l < hi => l + 1,
        _ => lo,
    };
    first_free(start, hi, used, &reserved)
        .or_else(|| {
            (start > lo)
                .then(|| first_free(lo, start - 1, used, &reserved))
                .flatten()
        })
        .map(Ipv4Addr::from)
        .ok_or_else(exhausted)
}

/// The first address in `lo..=hi` that is neither reserved nor used. Runs of used addresses are walked
/// through the set in order, so a crowded range costs what is used, not its size.
fn first_free(
    lo: u32,
    hi: u32,
    used: &BTreeSet<Ipv4Addr>,
    reserved: &dyn Fn(u32) -> bool,
) -> Option<u32> {
    let mut taken = used
        .range(Ipv4Addr::from(lo)..=Ipv4Addr::from(hi))
        .map(|a| u32::from(*a))
        .peekable();
    let mut c = u64::from(lo);
    while c <= u64::from(hi) {
        let a = c as u32;
        while taken.next_if(|&t| t < a).is_some() {}
        if reserved(a) || taken.peek() == Some(&a) {
            c += 1;
            continue;
        }
        return Some(a);
    }
    None
}

/// The MAC address Docker derives from a container's IPv4 address: `02:42` followed by the address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn set(addrs: &[&str]) -> BTreeSet<Ipv4Addr> {
        addrs.iter().map(|a| ip(a)).collect()
    }

    fn space(subnet: &str, range: Option<&str>, gw: Option<&str>) -> AddressSpace {
        AddressSpace::new(net(subnet), range.map(net), gw.map(ip)).unwrap()
    }

    fn message(e: NetworkError) -> String {
        e.to_string()
    }

    #[test]
    fn default_pools_are_dockers() {
        let pools = default_pools();
        let subnets: Vec<Ipv4Net> = pools
            .iter()
            .flat_map(|p| p.base.subnets(p.size).unwrap())
            .collect();
        // 172.17..172.31 as /16s, then 16 /20s of 192.168.0.0/16.
        assert_eq!(subnets.len(), 15 + 16);
        assert_eq!(subnets[0], net("172.17.0.0/16"));
        assert_eq!(subnets[14], net("172.31.0.0/16"));
        assert_eq!(subnets[15], net("192.168.0.0/20"));
        assert_eq!(subnets[30], net("192.168.240.0/20"));
        assert!(!subnets.iter().any(|s| s.contains(&ip("172.16.0.1"))));
    }

    #[test]
    fn pick_takes_the_first_free_subnet() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[]).unwrap(), net("172.17.0.0/16"));
        // The default bridge holds 172.17/16, a host route sits in 172.18/16.
        let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken).unwrap(), net("172.19.0.0/16"));
        // A taken supernet covers many candidates at once.
        let taken = [net("172.16.0.0/12"), net("192.168.1.0/24")];
        assert_eq!(pick_subnet(&pools, &taken).unwrap(), net("192.168.16.0/20"));
    }

    #[test]
    fn pick_skips_host_routes_parsed_from_proc() {
        if cfg!(target_endian = "big") {
            return; // the sample below is a little-endian host's file
        }
        let routes = host_routes(PROC_NET_ROUTE);
        let pools = default_pools();
        // docker0's 172.17/16 and the VPN's 172.18.0.0/15 are in use.
        assert_eq!(pick_subnet(&pools, &routes).unwrap(), net("172.20.0.0/16"));
    }

    #[test]
    fn pick_in_a_large_pool_jumps_over_taken_ranges() {
        let pools = [Pool::new(net("10.0.0.0/8"), 24).unwrap()];
        let taken = [
            net("10.0.0.0/12"),
            net("10.16.0.0/28"),
            net("10.16.1.128/25"),
        ];
        assert_eq!(pick_subnet(&pools, &taken).unwrap(), net("10.16.2.0/24"));
        // The whole pool taken: refused at once, not after 65536 tries each scanning the list.
        let err = pick_subnet(&pools, &[net("0.0.0.0/1")]).unwrap_err();
        assert!(matches!(err, NetworkError::Exhausted(_)));
        assert_eq!(
            message(err),
            "all predefined address pools have been fully subnetted"
        );
    }

    #[test]
    fn pick_exhausts_all_pools() {
        let pools = default_pools();
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        let err = pick_subnet(&pools, &taken).unwrap_err();
        assert_eq!(
            message(err),
            "all predefined address pools have been fully subnetted"
        );
        assert!(pick_subnet(&[], &[]).is_err());
        // The very last block of the address space can be handed out.
        let pools = [Pool::new(net("255.255.255.0/24"), 25).unwrap()];
        let taken = [net("255.255.255.0/25")];
        assert_eq!(
            pick_subnet(&pools, &taken).unwrap(),
            net("255.255.255.128/25")
        );
        let taken = [net("255.255.255.0/25"), net("255.255.255.255/32")];
        assert!(pick_subnet(&pools, &taken).is_err());
    }

    #[test]
    fn pools_from_daemon_json() {
        let json = r#"[{"base":"172.80.0.0/16","size":24},{"base":"10.10.1.0/16","size":16}]"#;
        let pools: Vec<Pool> = serde_json::from_str(json).unwrap();
        assert_eq!(pools[0].base, net("172.80.0.0/16"));
        assert_eq!(pools[0].size, 24);
        // The base is normalized to its network address, as net.ParseCIDR does in dockerd.
        assert_eq!(pools[1].base, net("10.10.0.0/16"));
        assert_eq!(pick_subnet(&pools, &[]).unwrap(), net("172.80.0.0/24"));
        assert_eq!(
            serde_json::to_string(&pools[0]).unwrap(),
            r#"{"base":"172.80.0.0/16","size":24}"#
        );
        for (bad, msg) in [
            (
                r#"{"base":"172.80.0.0/16","size":8}"#,
                "invalid pools size: 8",
            ),
            (
                r#"{"base":"172.80.0.0/16","size":33}"#,
                "invalid pools size: 33",
            ),
            (
                r#"{"base":"172.80.0.0/16","size":-1}"#,
                "invalid pools size: -1",
            ),
        ] {
            let err = serde_json::from_str::<Pool>(bad).unwrap_err().to_string();
            assert!(err.contains(msg), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<Pool>(r#"{"base":"172.80.0.0","size":24}"#).is_err());
        assert!(serde_json::from_str::<Pool>(r#"{"base":"fd00::/8","size":24}"#).is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.2.0/24")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.0.0.0/8")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.1.2.0/24")));
        assert!(!overlaps(&net("10.1.2.0/24"), &net("10.1.3.0/24")));
        assert!(!overlaps(&net("10.1.2.0/25"), &net("10.1.2.128/25")));
        // Host bits do not matter.
        assert!(overlaps(&net("10.1.2.7/24"), &net("10.1.2.200/30")));
    }

    #[test]
    fn host_routes_parse_proc_net_route() {
        if cfg!(target_endian = "big") {
            return;
        }
        let routes = host_routes(PROC_NET_ROUTE);
        assert_eq!(
            routes,
            vec![
                net("192.168.2.0/24"),
                net("172.17.0.0/16"),
                net("172.18.0.0/15"),
                net("10.9.8.7/32"),
            ]
        );
        assert!(host_routes("").is_empty());
        assert!(host_routes("Iface\tDestination\n").is_empty());
    }

    const PROC_NET_ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
tun0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FEFF\t0\t0\t0
tun0\t000012AC\t00000000\t0001\t0\t0\t5\t0000FEFF\t0\t0\t0
wg0\t0708090A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
bad\tZZZZ\t00000000\t0001\t0\t0\t0\tFFFFFFFF\t0\t0\t0
odd\t0000000A\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0
short\t0000000A
";

    #[test]
    fn address_space_defaults_the_gateway() {
        let s = space("172.18.0.0/16", None, None);
        assert_eq!(s.gateway, ip("172.18.0.1"));
        assert_eq!(s.gateway_cidr(), net("172.18.0.1/16"));
        let s = space("10.0.0.0/24", Some("10.0.0.128/25"), Some("10.0.0.254"));
        assert_eq!(s.gateway, ip("10.0.0.254"));
        assert_eq!(s.ip_range, Some(net("10.0.0.128/25")));
        // RFC 3021: /31 and /32 have no network or broadcast address.
        assert_eq!(space("10.0.0.4/31", None, None).gateway, ip("10.0.0.4"));
        assert_eq!(space("10.0.0.9/32", None, None).gateway, ip("10.0.0.9"));
    }

    #[test]
    fn address_space_rejects_like_dockerd() {
        let err = |subnet: &str, range: Option<&str>, gw: Option<&str>| {
            message(AddressSpace::new(net(subnet), range.map(net), gw.map(ip)).unwrap_err())
        };
        assert_eq!(
            err("10.1.2.3/24", None, None),
            "invalid network config:\ninvalid subnet 10.1.2.3/24: it should be 10.1.2.0/24"
        );
        assert_eq!(
            err("10.1.2.0/24", Some("10.1.3.0/24"), None),
            "invalid network config:\ninvalid ip-range 10.1.3.0/24: parent subnet 10.1.2.0/24 \
             doesn't contain ip-range"
        );
        assert_eq!(
            err("10.1.2.0/24", Some("10.1.0.0/16"), None),
            "invalid network config:\ninvalid ip-range 10.1.0.0/16: CIDR block is bigger than its \
             parent subnet 10.1.2.0/24"
        );
        assert_eq!(
            err("10.1.2.0/24", Some("10.1.2.5/25"), None),
            "invalid network config:\ninvalid ip-range 10.1.2.5/25: it should be 10.1.2.0/25"
        );
        assert_eq!(
            err("10.1.2.0/24", None, Some("10.1.3.1")),
            "invalid network config:\ninvalid gateway 10.1.3.1: parent subnet 10.1.2.0/24 doesn't \
             contain this address"
        );
        assert_eq!(
            err("10.1.2.9/24", Some("10.9.0.0/24"), Some("10.1.3.1")),
            "invalid network config:\n* invalid subnet 10.1.2.9/24: it should be 10.1.2.0/24\n\
             * invalid ip-range 10.9.0.0/24: parent subnet 10.1.2.9/24 doesn't contain ip-range\n\
             * invalid gateway 10.1.3.1: parent subnet 10.1.2.9/24 doesn't contain this address"
        );
        assert_eq!(
            err("10.1.2.0/24", None, Some("10.1.2.0")),
            "failed to allocate gateway (10.1.2.0): Address already in use"
        );
        assert_eq!(
            err("10.1.2.0/24", None, Some("10.1.2.255")),
            "failed to allocate gateway (10.1.2.255): Address already in use"
        );
        assert!(matches!(
            AddressSpace::new(net("10.1.2.3/24"), None, None),
            Err(NetworkError::Invalid(_))
        ));
    }

    #[test]
    fn address_space_round_trips_through_json() {
        let s = space("10.0.0.0/24", Some("10.0.0.128/25"), None);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"subnet":"10.0.0.0/24","ip_range":"10.0.0.128/25","gateway":"10.0.0.1"}"#
        );
        assert_eq!(serde_json::from_str::<AddressSpace>(&json).unwrap(), s);
    }

    #[test]
    fn allocation_is_sequential_after_the_last() {
        let s = space("172.18.0.0/16", None, None);
        let mut used = BTreeSet::new();
        let mut last = None;
        for want in ["172.18.0.2", "172.18.0.3", "172.18.0.4"] {
            let got = allocate(&s, &used, last, None, "net").unwrap();
            assert_eq!(got, ip(want));
            used.insert(got);
            last = Some(got);
        }
        // .3 is released: the next address still comes after the last one given.
        used.remove(&ip("172.18.0.3"));
        assert_eq!(
            allocate(&s, &used, last, None, "net").unwrap(),
            ip("172.18.0.5")
        );
        // Used addresses after the last are skipped.
        let used = set(&["172.18.0.5", "172.18.0.6", "172.18.0.8"]);
        let got = allocate(&s, &used, Some(ip("172.18.0.4")), None, "net").unwrap();
        assert_eq!(got, ip("172.18.0.7"));
    }

    #[test]
    fn allocation_wraps_around_once() {
        let s = space("10.0.0.0/24", None, None);
        let used = set(&["10.0.0.2", "10.0.0.254"]);
        let got = allocate(&s, &used, Some(ip("10.0.0.254")), None, "net").unwrap();
        assert_eq!(got, ip("10.0.0.3"));
        let used = set(&["10.0.0.2", "10.0.0.3", "10.0.0.200"]);
        let got = allocate(&s, &used, Some(ip("10.0.0.200")), None, "net").unwrap();
        assert_eq!(got, ip("10.0.0.201"));
        // Everything above the last is used: the search wraps to the start of the range.
        let mut used: BTreeSet<Ipv4Addr> =
            (100..=254).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        used.insert(ip("10.0.0.2"));
        let got = allocate(&s, &used, Some(ip("10.0.0.100")), None, "net").unwrap();
        assert_eq!(got, ip("10.0.0.3"));
        // A last address outside the range (e.g. before an ip-range change) restarts at the beginning.
        let got = allocate(&s, &BTreeSet::new(), Some(ip("192.0.2.1")), None, "net").unwrap();
        assert_eq!(got, ip("10.0.0.2"));
    }

    #[test]
    fn allocation_exhausts_small_subnets() {
        // A /30 has two hosts; the gateway takes one.
        let s = space("10.0.0.8/30", None, None);
        assert_eq!(s.gateway, ip("10.0.0.9"));
        let got = allocate(&s, &BTreeSet::new(), None, None, "tiny").unwrap();
        assert_eq!(got, ip("10.0.0.10"));
        let err = allocate(&s, &set(&["10.0.0.10"]), Some(got), None, "tiny").unwrap_err();
        assert!(matches!(err, NetworkError::Exhausted(_)));
        assert_eq!(
            message(err),
            "no available IPv4 addresses on this network's address pools: tiny"
        );
        // /31: both addresses are hosts, one is the gateway.
        let s = space("10.0.0.8/31", None, None);
        assert_eq!(
            allocate(&s, &BTreeSet::new(), None, None, "p2p").unwrap(),
            ip("10.0.0.9")
        );
        assert!(allocate(&s, &set(&["10.0.0.9"]), None, None, "p2p").is_err());
        let s = space("10.0.0.8/31", None, Some("10.0.0.9"));
        assert_eq!(
            allocate(&s, &BTreeSet::new(), None, None, "p2p").unwrap(),
            ip("10.0.0.8")
        );
        // /32: the gateway is the only address.
        let s = space("10.0.0.8/32", None, None);
        assert!(allocate(&s, &BTreeSet::new(), None, None, "one").is_err());
        // Full /24 with the last one given in the middle.
        let s = space("10.0.1.0/24", None, None);
        let used: BTreeSet<Ipv4Addr> = (2..=254).map(|i| Ipv4Addr::new(10, 0, 1, i)).collect();
        assert!(allocate(&s, &used, Some(ip("10.0.1.77")), None, "full").is_err());
    }

    #[test]
    fn allocation_stays_in_the_ip_range() {
        let s = space("10.0.0.0/16", Some("10.0.5.0/30"), None);
        // The range's own first and last addresses are usable (only the subnet's are reserved).
        let mut used = BTreeSet::new();
        let mut last = None;
        for want in ["10.0.5.0", "10.0.5.1", "10.0.5.2", "10.0.5.3"] {
            let got = allocate(&s, &used, last, None, "r").unwrap();
            assert_eq!(got, ip(want));
            used.insert(got);
            last = Some(got);
        }
        assert!(allocate(&s, &used, last, None, "r").is_err());
        used.remove(&ip("10.0.5.1"));
        assert_eq!(
            allocate(&s, &used, last, None, "r").unwrap(),
            ip("10.0.5.1")
        );
        // A range at the start of the subnet skips the network address and the gateway.
        let s = space("10.0.0.0/16", Some("10.0.0.0/30"), None);
        assert_eq!(
            allocate(&s, &BTreeSet::new(), None, None, "r").unwrap(),
            ip("10.0.0.2")
        );
        // A range at the end skips the broadcast address.
        let s = space("10.0.0.0/16", Some("10.0.255.252/30"), None);
        let used = set(&["10.0.255.252", "10.0.255.253"]);
        let got = allocate(&s, &used, None, None, "r").unwrap();
        assert_eq!(got, ip("10.0.255.254"));
        assert!(allocate(
            &s,
            &set(&["10.0.255.252", "10.0.255.253", "10.0.255.254"]),
            None,
            None,
            "r"
        )
        .is_err());
    }

    #[test]
    fn requested_addresses() {
        let s = space("10.0.0.0/16", Some("10.0.5.0/24"), None);
        let used = set(&["10.0.5.7"]);
        // Outside the ip-range but inside the subnet: allowed, as in dockerd.
        let got = allocate(&s, &used, None, Some(ip("10.0.9.9")), "r").unwrap();
        assert_eq!(got, ip("10.0.9.9"));
        let err = allocate(&s, &used, None, Some(ip("10.1.0.9")), "r").unwrap_err();
        assert!(matches!(err, NetworkError::Invalid(_)));
        assert_eq!(
            message(err),
            "Invalid address 10.1.0.9: It does not belong to any of this network's subnets"
        );
        for taken in ["10.0.5.7", "10.0.0.1", "10.0.0.0", "10.0.255.255"] {
            let err = allocate(&s, &used, None, Some(ip(taken)), "r").unwrap_err();
            assert!(matches!(err, NetworkError::Conflict(_)), "{taken}");
            assert_eq!(message(err), "Address already in use");
        }
        // In a /31 both ends are ordinary hosts.
        let s = space("10.0.0.8/31", None, Some("10.0.0.9"));
        let got = allocate(&s, &BTreeSet::new(), None, Some(ip("10.0.0.8")), "p2p").unwrap();
        assert_eq!(got, ip("10.0.0.8"));
    }

    #[test]
    fn allocation_in_a_crowded_large_subnet_finds_the_first_free_address() {
        // (How fast is for benchmarks; this is the answer in a /8 with 200 000 addresses taken.)
        let s = space("10.0.0.0/8", None, None);
        let used: BTreeSet<Ipv4Addr> = (2..200_000u32)
            .map(|i| Ipv4Addr::from(u32::from(ip("10.0.0.0")) + i))
            .collect();
        let got = allocate(&s, &used, None, None, "big").unwrap();
        assert_eq!(got, Ipv4Addr::from(u32::from(ip("10.0.0.0")) + 200_000));
    }

    #[test]
    fn mac_is_02_42_and_the_address() {
        assert_eq!(mac_for(ip("172.17.0.2")), [0x02, 0x42, 172, 17, 0, 2]);
    }
}
