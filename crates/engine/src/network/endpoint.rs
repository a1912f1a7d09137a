//! A container's network while it runs: its own network namespace (bound under `<exec-root>/netns`), one veth
//! per attached network (`eth0` is the primary one and carries the default route), its published ports
//! (reserved on the host and forwarded by the firewall), its embedded DNS server on user-defined networks,
//! and the `/etc/hosts` and `/etc/resolv.conf` it sees. Set up by [`Engine::network_setup`] before the
//! container's process starts, undone by [`Engine::network_teardown`] when it exits.

use super::{net_err, Endpoint, Network};
use crate::container::{Handle, Record};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_network::firewall::{PortMapping, Proto};
use berth_network::ipam;
use berth_network::link::VethSpec;
use berth_runtime::spec;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// One host binding of a published port, as Docker shows it (`{"HostIp": "0.0.0.0", "HostPort": "8080"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostPort {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// What the user asked for on one network (`--network-alias`, `--ip`, `--mac-address`, `connect --alias`).
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub aliases: Vec<String>,
    pub ipv4: Option<String>,
    pub mac: Option<String>,
}

/// The network a `NetworkMode` names (`default` is the default bridge).
pub fn mode_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" | "bridge" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

/// The firewall's view of a running container's published ports: through its primary (first) endpoint.
pub(crate) fn port_mappings(r: &Record, nets: &[Network]) -> Vec<PortMapping> {
    let mut out = Vec::new();
    if r.ports.is_empty() {
        return out;
    }
    let Some(ep) = primary(r) else { return out };
    let (Some(ip), Some(net)) = (ep.ip, nets.iter().find(|n| n.id == ep.network_id)) else {
        return out;
    };
    for (key, binds) in &r.ports {
        let Some((port, proto)) = parse_port_key(key) else {
            continue;
        };
        for b in binds {
            let Ok(host_port) = b.host_port.parse::<u16>() else {
                continue;
            };
            out.push(PortMapping {
                proto,
                host_ip: b
                    .host_ip
                    .parse::<Ipv4Addr>()
                    .ok()
                    .filter(|i| !i.is_unspecified()),
                host_port,
                container_ip: ip,
                container_port: port,
                bridge: net.bridge.clone(),
            });
        }
    }
    out
}

/// The endpoint holding `eth0` (or, before start, the network the mode names).
fn primary(r: &Record) -> Option<&Endpoint> {
    r.endpoints
        .values()
        .find(|e| e.ifname == "eth0")
        .or_else(|| {
            let mode = r.host_config.network_mode.as_deref().unwrap_or("");
            mode_network(mode).and_then(|n| r.endpoints.get(n))
        })
}

/// `80/tcp` -> (80, Tcp).
pub fn parse_port_key(key: &str) -> Option<(u16, Proto)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    Some((p.parse().ok()?, proto))
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || EngineError::Invalid(format!("invalid MAC address: {s}"));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// The ports to publish: explicit bindings plus, with `-P`, every exposed port on a random host port.
pub fn wanted_ports(r: &Record) -> BTreeMap<String, Vec<HostPort>> {
    let mut out: BTreeMap<String, Vec<HostPort>> = BTreeMap::new();
    let hc = &r.host_config;
    if let Some(pb) = &hc.port_bindings {
        for (k, v) in pb {
            let key = if k.contains('/') {
                k.clone()
            } else {
                format!("{k}/tcp")
            };
            let list: Vec<HostPort> = v
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|b| HostPort {
                    host_ip: b.host_ip.unwrap_or_default(),
                    host_port: b.host_port.unwrap_or_default(),
                })
                .collect();
            out.insert(
                key,
                if list.is_empty() {
                    vec![HostPort::default()]
                } else {
                    list
                },
            );
        }
    }
    if hc.publish_all_ports == Some(true) {
        for k in r.config.exposed_ports.clone().unwrap_or_default() {
            let key = if k.contains('/') {
                k.clone()
            } else {
                format!("{k}/tcp")
            };
            out.entry(key).or_insert_with(|| vec![HostPort::default()]);
        }
    }
    out
}

/// The upstream servers of a container's embedded DNS: its `--dns` servers, else the host's.
fn dns_upstreams(r: &Record, host_resolv: &str) -> Vec<SocketAddr> {
    let dns = r.host_config.dns.clone().unwrap_or_default();
    let list: Vec<String> = if dns.is_empty() {
        host_resolv
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        dns
    };
    list.iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .filter(|ip| ip.is_ipv4())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The `/etc/resolv.conf` a container sees (Docker's rules): the embedded server on user-defined networks,
/// else the host's servers without loopback ones (public fallbacks when none is left); `--dns`,
/// `--dns-search` and `--dns-option` replace the host's lines. With the host's network: the host's file.
pub fn resolv_conf(host: &str, r: &Record, embedded: Option<Ipv4Addr>, host_net: bool) -> String {
    let hc = &r.host_config;
    let dns = hc.dns.clone().unwrap_or_default();
    let search = hc.dns_search.clone().unwrap_or_default();
    let options = hc.dns_options.clone().unwrap_or_default();
    if host_net && dns.is_empty() && search.is_empty() && options.is_empty() {
        return host.to_string();
    }
    let mut host_servers = Vec::new();
    let mut host_search = Vec::new();
    let mut host_options = Vec::new();
    for line in host.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(s) = words.next() {
                    host_servers.push(s.to_string());
                }
            }
            Some("search") | Some("domain") => host_search = words.map(str::to_string).collect(),
            Some("options") => host_options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    let search = if search.is_empty() {
        host_search
    } else {
        search
    };
    let mut out = String::new();
    match embedded {
        Some(ip) => out.push_str(&format!("nameserver {ip}\n")),
        None => {
            let servers: Vec<String> = if dns.is_empty() {
                let s: Vec<String> = host_servers
                    .into_iter()
                    .filter(|s| !s.starts_with("127.") && s != "::1")
                    .collect();
                if s.is_empty() {
                    vec!["8.8.8.8".into(), "8.8.4.4".into()]
                } else {
                    s
                }
            } else {
                dns
            };
            for s in servers {
                out.push_str(&format!("nameserver {s}\n"));
            }
        }
    }
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    let mut opts = if options.is_empty() {
        host_options
    } else {
        options
    };
    if embedded.is_some() && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.insert(0, "ndots:0".into());
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// The `/etc/hosts` a container sees: localhost lines, `--add-host` entries (`host-gateway` is the default
/// bridge's gateway) and its own address with its hostname.
pub fn hosts_file(
    r: &Record,
    own_ip: Option<Ipv4Addr>,
    host_gateway: Option<Ipv4Addr>,
) -> Result<String> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in r.host_config.extra_hosts.clone().unwrap_or_default() {
        let Some((name, ip)) = h.split_once([':', '=']) else {
            return Err(EngineError::Invalid(format!(
                "invalid argument \"{h}\" for \"--add-host\" flag"
            )));
        };
        let ip = if ip == "host-gateway" {
            match host_gateway {
                Some(g) => g.to_string(),
                None => {
                    return Err(EngineError::Invalid(
                        "unable to derive the IP value for host-gateway: the default bridge is disabled".into(),
                    ))
                }
            }
        } else {
            ip.trim_start_matches('[').trim_end_matches(']').to_string()
        };
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = own_ip {
        let host = r.config.hostname.clone().unwrap_or_default();
        let domain = r.config.domainname.clone().unwrap_or_default();
        if domain.is_empty() {
            hosts.push_str(&format!("{ip}\t{host}\n"));
        } else {
            hosts.push_str(&format!("{ip}\t{host}.{domain} {host}\n"));
        }
    }
    Ok(hosts)
}

impl Engine {
    /// The endpoints a new container starts with: the network its mode names, plus any further networks of
    /// `NetworkingConfig` (API 1.44+), with their aliases and requested addresses validated.
    pub(crate) fn initial_endpoints(
        &self,
        mode: &str,
        requests: &BTreeMap<String, EndpointRequest>,
    ) -> Result<BTreeMap<String, Endpoint>> {
        let mut out = BTreeMap::new();
        let mut names: Vec<String> = Vec::new();
        match mode_network(mode) {
            Some("bridge") if self.inner.net.cfg.bridge == "none" => {}
            Some(n) => names.push(n.to_string()),
            None => {
                if let Some(k) = requests
                    .keys()
                    .find(|k| mode_network(k).is_some() && *k != mode)
                {
                    if mode == "host" || mode == "none" || mode.starts_with("container:") {
                        return Err(EngineError::Invalid(format!(
                            "conflicting options: cannot attach both user-defined and non-user-defined network-modes ({k})"
                        )));
                    }
                }
            }
        }
        for k in requests.keys() {
            if mode_network(k).is_some()
                && !names.iter().any(|n| n == k)
                && !(k == "default" || k == "bridge")
            {
                names.push(k.clone());
            }
        }
        for name in names {
            let net = self.network_lookup(&name)?;
            let req = requests
                .get(&name)
                .or_else(|| {
                    if name == "bridge" {
                        requests.get("default")
                    } else {
                        None
                    }
                })
                .cloned()
                .unwrap_or_default();
            let ep = self.endpoint_for(&net, &req)?;
            out.insert(net.name.clone(), ep);
        }
        Ok(out)
    }

    fn endpoint_for(&self, net: &Network, req: &EndpointRequest) -> Result<Endpoint> {
        if !net.is_bridge() {
            return Err(EngineError::Invalid(format!(
                "container cannot be connected to network {} ({})",
                net.name, net.driver
            )));
        }
        let requested_ip = match req.ipv4.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                if !net.user_defined() {
                    return Err(EngineError::Invalid(
                        "user specified IP address is supported on user defined networks only"
                            .into(),
                    ));
                }
                if !net.user_subnet {
                    return Err(EngineError::Invalid(
                        "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                    ));
                }
                let ip: Ipv4Addr = s
                    .parse()
                    .map_err(|_| EngineError::Invalid(format!("invalid IPv4 address: {s}")))?;
                if let Some(space) = net.ipam {
                    if !space.subnet.contains(&ip) {
                        return Err(EngineError::Invalid(format!(
                            "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
                        )));
                    }
                }
                Some(ip)
            }
            None => None,
        };
        let aliases: Vec<String> = req
            .aliases
            .iter()
            .filter(|a| !a.is_empty())
            .cloned()
            .collect();
        if !aliases.is_empty() && !net.user_defined() {
            return Err(EngineError::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        let requested_mac = req.mac.clone().unwrap_or_default();
        if !requested_mac.is_empty() {
            parse_mac(&requested_mac)?;
        }
        Ok(Endpoint {
            network_id: net.id.clone(),
            endpoint_id: super::super::container::new_id(),
            aliases,
            requested_ip,
            requested_mac,
            ..Default::default()
        })
    }

    /// Before the container's process starts: its network namespace, interfaces, ports, DNS and etc files.
    pub(crate) async fn network_setup(&self, h: &Arc<Handle>) -> Result<spec::NetworkMode> {
        let rec = h.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let host_resolv = std::fs::read_to_string(&self.inner.cfg.resolv_conf).unwrap_or_default();
        if mode == "host" {
            return Ok(spec::NetworkMode::Host);
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.lookup(other).await?;
            let or = o.record();
            if !matches!(
                or.state.status,
                crate::container::Status::Running | crate::container::Status::Paused
            ) {
                return Err(EngineError::Conflict(format!(
                    "cannot join network namespace of a non running container: {other}"
                )));
            }
            let path = if or.sandbox_key.is_empty() {
                PathBuf::from(format!("/proc/{}/ns/net", or.state.pid))
            } else {
                PathBuf::from(&or.sandbox_key)
            };
            // It shares the other container's hosts and resolver.
            let _ = std::fs::copy(&or.hosts_path, &rec.hosts_path);
            let _ = std::fs::copy(&or.resolv_conf_path, &rec.resolv_conf_path);
            return Ok(spec::NetworkMode::Container(path));
        }
        if rec.endpoints.is_empty() {
            self.write_etc(&rec, None, None, &host_resolv)?;
            // A namespace made ahead, which the start releases once the init has joined it.
            return Ok(match self.inner.spare_netns.take() {
                Some(ns) => spec::NetworkMode::Path(ns),
                None => spec::NetworkMode::None,
            });
        }
        self.network_namespace(h).await
    }

    /// The container's own network namespace, created and bound (its interfaces come with
    /// [`Engine::network_plumb`], which may run while the runtime creates the container).
    async fn network_namespace(&self, h: &Arc<Handle>) -> Result<spec::NetworkMode> {
        let dir = self.inner.cfg.exec_root.join("netns");
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        let netns = dir.join(&h.id);
        {
            let ns = netns.clone();
            tokio::task::spawn_blocking(move || {
                if berth_sys::mount::is_mounted(&ns) {
                    let _ = berth_sys::netns::remove(&ns);
                }
                berth_sys::netns::create(&ns)
            })
            .await
            .map_err(EngineError::join)?
            .map_err(|e| {
                EngineError::Internal(format!("create the container's network namespace: {e}"))
            })?;
        }
        h.update(|r| r.sandbox_key = netns.display().to_string());
        Ok(spec::NetworkMode::Path(netns))
    }

    /// Plug the container into its networks (addresses, veths, published ports, DNS, etc files). Runs
    /// after [`Engine::network_setup`] and before the container's process is started; nothing to do
    /// without a namespace of its own.
    pub(crate) async fn network_plumb(&self, h: &Arc<Handle>) -> Result<()> {
        let n = &self.inner.net;
        let rec = h.record();
        if rec.sandbox_key.is_empty() || rec.endpoints.is_empty() {
            return Ok(());
        }
        let host_resolv = std::fs::read_to_string(&self.inner.cfg.resolv_conf).unwrap_or_default();
        let host_resolv = host_resolv.as_str();
        let netns = PathBuf::from(&rec.sandbox_key);
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let first = mode_network(&mode).map(str::to_string);
        let mut order: Vec<String> = rec.endpoints.keys().cloned().collect();
        order.sort_by_key(|k| (Some(k) != first.as_ref(), k.clone()));
        for (i, name) in order.iter().enumerate() {
            self.attach_endpoint(h, name, &format!("eth{i}"), i == 0)
                .await?;
        }
        self.publish_ports(h).await?;
        let rec = h.record();
        let nets = n.store.all()?;
        let user_net = rec.endpoints.values().any(|e| {
            nets.iter()
                .any(|x| x.id == e.network_id && x.user_defined())
        });
        if user_net {
            self.start_dns(h, &netns, host_resolv).await?;
        }
        self.refresh_dns().await;
        let own_ip = primary(&rec).and_then(|e| e.ip);
        let embedded = match n.cfg.dns_listen {
            SocketAddr::V4(a) if user_net => Some(*a.ip()),
            _ => None,
        };
        self.write_etc(&rec, own_ip, embedded, host_resolv)
    }

    /// Rewrite the container's hosts and resolv.conf for this run.
    fn write_etc(
        &self,
        rec: &Record,
        own_ip: Option<Ipv4Addr>,
        embedded: Option<Ipv4Addr>,
        host_resolv: &str,
    ) -> Result<()> {
        let host_net = rec.host_config.network_mode.as_deref() == Some("host");
        let gw = self
            .inner
            .net
            .store
            .all()?
            .into_iter()
            .find(|n| n.name == "bridge")
            .and_then(|n| n.ipam.map(|a| a.gateway));
        let hosts = if host_net {
            std::fs::read_to_string(&self.inner.cfg.hosts_file).unwrap_or_default()
        } else {
            hosts_file(rec, own_ip, gw)?
        };
        let resolv = resolv_conf(host_resolv, rec, embedded, host_net);
        for (path, content) in [(&rec.hosts_path, hosts), (&rec.resolv_conf_path, resolv)] {
            if path.is_empty() {
                continue;
            }
            crate::container::write_in_place(std::path::Path::new(path), content.as_bytes())
                .map_err(|e| EngineError::io(format!("write {path}"), e))?;
        }
        Ok(())
    }

    /// Allocate an address on `name` for the container and plug a veth into its namespace.
    async fn attach_endpoint(
        &self,
        h: &Arc<Handle>,
        name: &str,
        ifname: &str,
        primary: bool,
    ) -> Result<()> {
        let n = &self.inner.net;
        let rec = h.record();
        let ep = rec
            .endpoints
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchNetwork(name.to_string()))?;
        let net = self
            .network_lookup(&ep.network_id)
            .map_err(|_| EngineError::NoSuchNetwork(name.to_string()))?;
        let space = net
            .ipam
            .ok_or_else(|| EngineError::Invalid(format!("network {name} has no addresses")))?;
        let ip = {
            let _g = n.lock.lock().await;
            let mut used = BTreeSet::new();
            for other in self.inner.containers.read().await.values() {
                if other.id == h.id {
                    continue;
                }
                for e in other.record().endpoints.values() {
                    if e.network_id == net.id {
                        if let Some(ip) = e.ip {
                            used.insert(ip);
                        }
                    }
                }
            }
            let last = n.state().last_ip.get(&net.id).copied();
            let ip = ipam::allocate(
                &space,
                &used,
                last,
                ep.requested_ip,
                &format!("{} ({})", net.name, net.id),
            )
            .map_err(net_err)?;
            n.state().last_ip.insert(net.id.clone(), ip);
            let host_ifname = format!("veth{}", random_hex(7));
            h.update(|r| {
                if let Some(e) = r.endpoints.get_mut(name) {
                    e.ip = Some(ip);
                    e.prefix_len = space.subnet.prefix_len();
                    e.gateway = (primary && !net.internal).then_some(space.gateway);
                    e.ifname = ifname.to_string();
                    e.host_ifname = host_ifname;
                }
            });
            ip
        };
        let mac = if ep.requested_mac.is_empty() {
            ipam::mac_for(ip)
        } else {
            parse_mac(&ep.requested_mac)?
        };
        let rec = h.record();
        let e = rec.endpoints.get(name).cloned().unwrap_or_default();
        let spec = VethSpec {
            bridge: net.bridge.clone(),
            host_ifname: e.host_ifname.clone(),
            netns: PathBuf::from(&rec.sandbox_key),
            container_ifname: ifname.to_string(),
            address: Ipv4Net::new(ip, space.subnet.prefix_len())
                .map_err(|e| EngineError::Internal(e.to_string()))?,
            gateway: e.gateway,
            mac: Some(mac),
            mtu: net.mtu,
        };
        if !n.deps.links.link_exists(&net.bridge).await.unwrap_or(true) {
            // The host lost the bridge (a reboot of the network stack, a manual delete): make it again.
            self.ensure_bridge(&net).await?;
        }
        n.deps
            .links
            .attach(&spec)
            .await
            .map_err(|e| EngineError::Internal(format!("attach to network {name}: {e}")))?;
        h.update(|r| {
            if let Some(e) = r.endpoints.get_mut(name) {
                e.mac = berth_network::link::format_mac(&mac);
            }
        });
        Ok(())
    }

    /// Reserve host ports for the container's published ports and forward them (one firewall update).
    async fn publish_ports(&self, h: &Arc<Handle>) -> Result<()> {
        let n = &self.inner.net;
        let rec = h.record();
        let wanted = wanted_ports(&rec);
        if wanted.is_empty() {
            return Ok(());
        }
        let primary_net = primary(&rec).and_then(|e| self.network_lookup(&e.network_id).ok());
        if primary_net.as_ref().is_none_or(|n| n.internal) {
            // Docker publishes nothing from an internal network.
            return Ok(());
        }
        let mut reservations = Vec::new();
        let mut bound: BTreeMap<String, Vec<HostPort>> = BTreeMap::new();
        for (key, binds) in &wanted {
            let Some((_, proto)) = parse_port_key(key) else {
                return Err(EngineError::Invalid(format!(
                    "unsupported port protocol: {key}"
                )));
            };
            for b in binds {
                let host_ip = match b.host_ip.as_str() {
                    "" | "0.0.0.0" => None,
                    s => match s.parse::<Ipv4Addr>() {
                        Ok(ip) => Some(ip),
                        Err(_) if s.contains(':') => continue, // IPv6 bindings: berth's bridges are IPv4 only
                        Err(_) => {
                            return Err(EngineError::Invalid(format!("invalid host IP: {s}")))
                        }
                    },
                };
                let (lo, hi) = match b.host_port.split_once('-') {
                    Some((a, z)) => (parse_host_port(a)?, parse_host_port(z)?),
                    None if b.host_port.is_empty() => (0, 0),
                    None => {
                        let p = parse_host_port(&b.host_port)?;
                        (p, p)
                    }
                };
                let mut last_err = None;
                let mut got = None;
                for p in lo..=hi {
                    match n.ports.reserve(proto, host_ip, p) {
                        Ok(r) => {
                            got = Some(r);
                            break;
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                let r = match got {
                    Some(r) => r,
                    None => {
                        let e = last_err.map(|e| e.to_string()).unwrap_or_default();
                        return Err(EngineError::Conflict(format!(
                            "driver failed programming external connectivity on endpoint {} ({}): {e}",
                            rec.short_name(),
                            primary(&rec).map(|e| e.endpoint_id.as_str()).unwrap_or("")
                        )));
                    }
                };
                bound.entry(key.clone()).or_default().push(HostPort {
                    host_ip: host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                    host_port: r.port.to_string(),
                });
                reservations.push(r);
            }
        }
        n.state().ports.insert(h.id.clone(), reservations);
        h.update(|r| r.ports = bound);
        self.apply_firewall().await
    }

    async fn start_dns(
        &self,
        h: &Arc<Handle>,
        netns: &std::path::Path,
        host_resolv: &str,
    ) -> Result<()> {
        let n = &self.inner.net;
        let rec = h.record();
        let upstreams = dns_upstreams(&rec, host_resolv);
        let resolver: Arc<dyn berth_network::dns::Resolve> = n.dns.clone();
        let server = berth_network::dns::serve_in_netns(
            netns,
            n.cfg.dns_listen,
            h.id.clone(),
            resolver,
            upstreams,
        )
        .await
        .map_err(|e| EngineError::Internal(format!("start the embedded DNS server: {e}")))?;
        n.state().dns.insert(h.id.clone(), server);
        Ok(())
    }

    /// Rebuild the DNS table from the running containers.
    pub(crate) async fn refresh_dns(&self) {
        let recs: Vec<Record> = self
            .inner
            .containers
            .read()
            .await
            .values()
            .map(|h| h.record())
            .collect();
        let nets = self.inner.net.store.all().unwrap_or_default();
        self.inner
            .net
            .dns
            .replace(super::resolver::build(&recs, &nets));
    }

    /// After the container exited (or a start failed): everything [`Engine::network_setup`] made, best
    /// effort; returns what could not be undone.
    pub(crate) async fn network_teardown(&self, h: &Arc<Handle>) -> Vec<String> {
        let n = &self.inner.net;
        let mut errors = Vec::new();
        let dns = n.state().dns.remove(&h.id);
        if let Some(s) = dns {
            s.stop().await;
        }
        let had_ports = n.state().ports.remove(&h.id).is_some();
        let rec = h.record();
        h.update(|r| r.ports.clear());
        if had_ports {
            if let Err(e) = self.apply_firewall().await {
                errors.push(format!("update the firewall: {e}"));
            }
        }
        // Unbinding the namespace is enough: once nothing holds it, the kernel dismantles it and every veth
        // pair with an end inside, off the exit path (deleting each veth here costs an RCU grace period).
        // Only when the namespace cannot be released are the veths deleted one by one.
        let mut released = false;
        if !rec.sandbox_key.is_empty() {
            let p = PathBuf::from(&rec.sandbox_key);
            match tokio::task::spawn_blocking(move || berth_sys::netns::remove(&p)).await {
                Ok(Ok(())) => released = true,
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(e.to_string()),
            }
            h.update(|r| r.sandbox_key.clear());
        }
        if !released {
            for ep in rec.endpoints.values() {
                if !ep.host_ifname.is_empty() {
                    if let Err(e) = n.deps.links.detach(&ep.host_ifname).await {
                        errors.push(format!("delete {}: {e}", ep.host_ifname));
                    }
                }
            }
        }
        h.update(|r| {
            for e in r.endpoints.values_mut() {
                clear_runtime(e);
            }
        });
        self.refresh_dns().await;
        errors
    }

    /// After a daemon restart: take back the ports and DNS servers of containers that kept running, and
    /// put the firewall back as the state says.
    pub(crate) async fn network_recover(&self) {
        let n = &self.inner.net;
        let handles: Vec<Arc<Handle>> = self
            .inner
            .containers
            .read()
            .await
            .values()
            .cloned()
            .collect();
        let host_resolv = std::fs::read_to_string(&self.inner.cfg.resolv_conf).unwrap_or_default();
        let nets = n.store.all().unwrap_or_default();
        for h in handles {
            let r = h.record();
            if !matches!(
                r.state.status,
                crate::container::Status::Running | crate::container::Status::Paused
            ) {
                continue;
            }
            for e in r.endpoints.values() {
                if let Some(ip) = e.ip {
                    let mut st = n.state();
                    let last = st.last_ip.entry(e.network_id.clone()).or_insert(ip);
                    if ip > *last {
                        *last = ip;
                    }
                }
            }
            let mut reservations = Vec::new();
            for (key, binds) in &r.ports {
                let Some((_, proto)) = parse_port_key(key) else {
                    continue;
                };
                for b in binds {
                    let ip = b
                        .host_ip
                        .parse::<Ipv4Addr>()
                        .ok()
                        .filter(|i| !i.is_unspecified());
                    match b
                        .host_port
                        .parse::<u16>()
                        .map(|p| n.ports.reserve(proto, ip, p))
                    {
                        Ok(Ok(res)) => reservations.push(res),
                        Ok(Err(e)) => {
                            tracing::warn!(id = %r.id, "cannot take back port {}: {e}", b.host_port)
                        }
                        Err(_) => {}
                    }
                }
            }
            if !reservations.is_empty() {
                n.state().ports.insert(r.id.clone(), reservations);
            }
            let user_net = r.endpoints.values().any(|e| {
                nets.iter()
                    .any(|x| x.id == e.network_id && x.user_defined())
            });
            if user_net && !r.sandbox_key.is_empty() {
                if let Err(e) = self
                    .start_dns(&h, std::path::Path::new(&r.sandbox_key), &host_resolv)
                    .await
                {
                    tracing::warn!(id = %r.id, "cannot restart the embedded DNS server: {e}");
                }
            }
        }
        self.refresh_dns().await;
        if let Err(e) = self.apply_firewall().await {
            tracing::warn!("cannot restore the firewall rules: {e}");
        }
    }

    /// `network connect`: attach a container (live if it runs).
    pub async fn network_connect(
        &self,
        network: &str,
        container: &str,
        req: EndpointRequest,
    ) -> Result<()> {
        let net = self.network_lookup(network)?;
        let h = self.lookup(container).await?;
        let _op = h.op.lock().await;
        let rec = h.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == "none" {
            return Err(EngineError::Forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
            ));
        }
        if mode == "host" || !net.is_bridge() {
            return Err(EngineError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if mode.starts_with("container:") {
            return Err(EngineError::Forbidden(
                "conflicting options: container type network can't be used with multiple networks"
                    .into(),
            ));
        }
        if rec.endpoints.contains_key(&net.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.short_name(),
                net.name
            )));
        }
        let ep = self.endpoint_for(&net, &req)?;
        h.update(|r| {
            r.endpoints.insert(net.name.clone(), ep);
        });
        let running = matches!(
            rec.state.status,
            crate::container::Status::Running | crate::container::Status::Paused
        );
        if running && !rec.sandbox_key.is_empty() {
            let used: BTreeSet<String> = h
                .record()
                .endpoints
                .values()
                .map(|e| e.ifname.clone())
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .unwrap_or_else(|| "eth9".into());
            if let Err(e) = self.attach_endpoint(&h, &net.name, &ifname, false).await {
                h.update(|r| {
                    r.endpoints.remove(&net.name);
                });
                return Err(e);
            }
            if net.user_defined() && !self.inner.net.state().dns.contains_key(&h.id) {
                let host_resolv =
                    std::fs::read_to_string(&self.inner.cfg.resolv_conf).unwrap_or_default();
                let ns = PathBuf::from(&rec.sandbox_key);
                self.start_dns(&h, &ns, &host_resolv).await?;
            }
            self.refresh_dns().await;
        }
        self.save(&h)?;
        self.network_event(&net, "connect", &[("container", h.id.clone())]);
        Ok(())
    }

    /// `network disconnect`.
    pub async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let net = self.network_lookup(network)?;
        let h = match self.lookup(container).await {
            Ok(h) => h,
            Err(e) if force => {
                tracing::debug!("disconnect --force of a missing container: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let _op = h.op.lock().await;
        let rec = h.record();
        let Some(ep) = rec.endpoints.get(&net.name).cloned() else {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                h.id, net.name
            )));
        };
        if !ep.host_ifname.is_empty() {
            if let Err(e) = self.inner.net.deps.links.detach(&ep.host_ifname).await {
                if !force {
                    return Err(EngineError::Internal(format!(
                        "delete {}: {e}",
                        ep.host_ifname
                    )));
                }
            }
        }
        h.update(|r| {
            r.endpoints.remove(&net.name);
        });
        self.save(&h)?;
        self.refresh_dns().await;
        self.network_event(&net, "disconnect", &[("container", h.id.clone())]);
        Ok(())
    }
}

fn parse_host_port(s: &str) -> Result<u16> {
    s.parse::<u16>()
        .map_err(|_| EngineError::Invalid(format!("invalid host port: {s}")))
}

fn clear_runtime(e: &mut Endpoint) {
    e.ip = None;
    e.prefix_len = 0;
    e.gateway = None;
    e.mac.clear();
    e.ifname.clear();
    e.host_ifname.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: serde_json::Value) -> Record {
        let mut base = serde_json::json!({
            "id": "0123456789abcdef", "name": "/web", "created": "", "image_id": "", "image": "",
            "path": "sh", "args": [], "config": {"Hostname": "web1"}, "host_config": {},
            "state": {"status": "running", "pid": 1, "exit_code": 0, "error": "",
                      "started_at": "", "finished_at": "", "oom_killed": false},
            "restart_count": 0, "log_path": "", "hostname_path": "", "hosts_path": "", "resolv_conf_path": ""
        });
        if let (Some(b), Some(o)) = (base.as_object_mut(), json.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn resolv_conf_follows_docker() {
        let host =
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        let r = rec(serde_json::json!({}));
        assert_eq!(
            resolv_conf(host, &r, None, false),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf(host, &r, Some(Ipv4Addr::new(127, 0, 0, 11)), false),
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n", &r, None, false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf(host, &r, None, true), host);
        let r = rec(
            serde_json::json!({"host_config": {"Dns": ["1.1.1.1"], "DnsSearch": ["a.b"], "DnsOptions": ["ndots:2"]}}),
        );
        assert_eq!(
            resolv_conf(host, &r, None, false),
            "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
        );
        assert_eq!(dns_upstreams(&r, host), vec!["1.1.1.1:53".parse().unwrap()]);
        let r = rec(serde_json::json!({}));
        assert_eq!(
            dns_upstreams(&r, host),
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap()
            ],
            "the embedded server forwards from the host's namespace, so loopback resolvers work"
        );
    }

    #[test]
    fn hosts_file_has_own_address_and_extra_hosts() {
        let r = rec(
            serde_json::json!({"host_config": {"ExtraHosts": ["db:10.1.1.1", "gw:host-gateway"]}}),
        );
        let h = hosts_file(
            &r,
            Some(Ipv4Addr::new(172, 18, 0, 2)),
            Some(Ipv4Addr::new(172, 17, 0, 1)),
        )
        .unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.1.1.1\tdb\n"));
        assert!(h.contains("172.17.0.1\tgw\n"));
        assert!(h.ends_with("172.18.0.2\tweb1\n"));
        assert!(
            hosts_file(&r, None, None).is_err(),
            "host-gateway needs the default bridge"
        );
    }

    #[test]
    fn ports_to_publish_include_publish_all() {
        let r = rec(serde_json::json!({
            "config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
            "host_config": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}, "PublishAllPorts": true}
        }));
        let w = wanted_ports(&r);
        assert_eq!(
            w["80/tcp"],
            vec![HostPort {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into()
            }]
        );
        assert_eq!(w["53/udp"], vec![HostPort::default()]);
        assert_eq!(parse_port_key("53/udp"), Some((53, Proto::Udp)));
        assert_eq!(parse_port_key("80/sctp"), None);
        assert_eq!(mode_network("default"), Some("bridge"));
        assert_eq!(mode_network("container:x"), None);
        assert_eq!(mode_network("app"), Some("app"));
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("02:42").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }
}
