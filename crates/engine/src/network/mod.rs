//! Networks: Docker's predefined `bridge`, `host` and `none`, and user-defined bridge networks.
//!
//! A network's record (driver, addressing, bridge interface, options, labels) is one JSON value in the redb
//! table `berth.networks` (schema 1, keyed by id). A container's attachments are [`Endpoint`]s in its own
//! record: what the user asked for (aliases, `--ip`, `--mac-address`) and, while it runs, what it got
//! (address, MAC, interfaces). Addresses in use are therefore known from the container records after a daemon
//! restart, and an address is never handed out twice.
//!
//! The kernel side goes through `berth-network`'s traits, passed in by the daemon: [`berth_network::link::Links`]
//! for bridges and veth pairs and [`berth_network::firewall::Firewall`] for the one nftables table holding
//! masquerade, isolation and published ports, rebuilt from the engine's state on every change
//! ([`Engine::apply_firewall`]). Per container: [`endpoint`] (set up before the container's process runs,
//! torn down when it exits) and [`resolver`] (the embedded DNS server on user networks).

pub mod endpoint;
pub mod resolver;
pub(crate) mod spare;
mod store;

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_network::firewall::{Firewall, NetworkRules, Ruleset};
use berth_network::ipam::{self, AddressSpace, Pool};
use berth_network::link::{BridgeSpec, Links};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
pub use store::NetworkStore;

/// Docker's option naming a bridge network's interface.
pub const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";
const MASQ_OPT: &str = "com.docker.network.bridge.enable_ip_masquerade";
const MTU_OPT: &str = "com.docker.network.driver.mtu";

/// How the daemon configured networking (flags and daemon.json).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// The default bridge's interface (`berth0`); `none` disables the default bridge (containers then get
    /// no network unless they name one).
    pub bridge: String,
    /// `bip`: the default bridge's gateway address and prefix (`172.17.0.1/16`); picked from the pools when
    /// unset.
    pub bip: Option<Ipv4Net>,
    /// `default-address-pools`.
    pub pools: Vec<Pool>,
    /// `mtu` of container interfaces and bridges.
    pub mtu: Option<u32>,
    /// The nftables table berth owns (`berth`).
    pub firewall_table: String,
    /// Set `net.ipv4.ip_forward` (dockerd's `--ip-forward`).
    pub ip_forward: bool,
    /// `/proc/sys`.
    pub sysctl_root: PathBuf,
    /// Where the embedded DNS server listens inside containers on user networks.
    pub dns_listen: std::net::SocketAddr,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            bip: None,
            pools: ipam::default_pools(),
            mtu: None,
            firewall_table: "berth".into(),
            ip_forward: true,
            sysctl_root: "/proc/sys".into(),
            dns_listen: std::net::SocketAddr::from(([127, 0, 0, 11], 53)),
        }
    }
}

/// The kernel-facing parts the daemon hands the engine.
#[derive(Clone)]
pub struct NetDeps {
    pub links: Arc<dyn Links>,
    pub firewall: Arc<dyn Firewall>,
}

/// A network's record.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Addressing of a bridge network.
    pub ipam: Option<AddressSpace>,
    /// The user gave the subnet (only then may containers ask for an address with `--ip`).
    pub user_subnet: bool,
    /// The bridge interface.
    pub bridge: String,
    pub mtu: Option<u32>,
    pub masquerade: bool,
}

impl Network {
    /// `bridge`, `host`, `none`: always there, never removed.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge" && self.ipam.is_some()
    }

    /// User-defined bridge networks get the embedded DNS server and network-scoped aliases.
    pub fn user_defined(&self) -> bool {
        self.is_bridge() && self.name != "bridge"
    }
}

/// A container's attachment to one network.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    /// `--network-alias`, `connect --alias` (and compose's service names).
    pub aliases: Vec<String>,
    /// `--ip`.
    pub requested_ip: Option<Ipv4Addr>,
    /// `--mac-address`.
    pub requested_mac: String,
    /// While running: the address, its prefix, the default gateway, MAC and interfaces.
    pub ip: Option<Ipv4Addr>,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    pub ifname: String,
    pub host_ifname: String,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    /// More than one IPv4 pool was given (berth supports one per network).
    pub extra_pools: usize,
    pub enable_ipv6: bool,
}

/// Filters of `network ls` and `network prune`.
#[derive(Debug, Clone, Default)]
pub struct NetworkFilters {
    pub name: Vec<String>,
    pub id: Vec<String>,
    pub driver: Vec<String>,
    pub label: Vec<String>,
    /// `custom` or `builtin`.
    pub kind: Option<String>,
    pub dangling: Option<bool>,
}

/// Per-daemon live networking state (not persisted: rebuilt from the records at start-up).
#[derive(Default)]
pub(crate) struct NetState {
    /// The last address handed out per network (sequential allocation).
    pub last_ip: HashMap<String, Ipv4Addr>,
    /// Host port reservations per container.
    pub ports: HashMap<String, Vec<berth_network::ports::Reservation>>,
    /// Embedded DNS servers per container.
    pub dns: HashMap<String, berth_network::dns::DnsServer>,
}

/// The engine's networking services.
pub(crate) struct NetServices {
    pub cfg: NetworkConfig,
    pub deps: NetDeps,
    pub sysctl: berth_network::sysctl::Sysctl,
    pub ports: berth_network::ports::PortAllocator,
    pub store: NetworkStore,
    pub state: std::sync::Mutex<NetState>,
    /// Serialises address allocation, network create/remove and firewall updates.
    pub lock: tokio::sync::Mutex<()>,
    pub dns: Arc<resolver::DnsTable>,
}

impl NetServices {
    pub fn new(cfg: NetworkConfig, deps: NetDeps, store: NetworkStore) -> Self {
        let sysctl = berth_network::sysctl::Sysctl::new(cfg.sysctl_root.clone());
        let ports = berth_network::ports::PortAllocator::from_kernel(&sysctl);
        NetServices {
            cfg,
            deps,
            sysctl,
            ports,
            store,
            state: std::sync::Mutex::new(NetState::default()),
            lock: tokio::sync::Mutex::new(()),
            dns: Arc::new(resolver::DnsTable::default()),
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn net_err(e: berth_network::NetworkError) -> EngineError {
    use berth_network::NetworkError as N;
    match e {
        N::Invalid(m) => EngineError::Invalid(m),
        N::Conflict(m) => EngineError::Conflict(m),
        N::Exhausted(m) => EngineError::Invalid(m),
        other => EngineError::Internal(other.to_string()),
    }
}

/// Host routes, so new subnets never shadow a network the host already reaches.
fn host_routes() -> Vec<Ipv4Net> {
    std::fs::read_to_string("/proc/net/route")
        .map(|s| ipam::host_routes(&s))
        .unwrap_or_default()
}

impl Engine {
    /// At start-up: the predefined networks, every bridge network's interface and the firewall.
    pub(crate) async fn init_networks(&self) -> Result<()> {
        let n = &self.inner.net;
        let existing = n.store.all()?;
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !existing.iter().any(|x| x.name == name) {
                n.store.put(&Network {
                    id: super::container::new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: now(),
                    ..Default::default()
                })?;
            }
        }
        let default = existing.iter().find(|x| x.name == "bridge").cloned();
        if n.cfg.bridge == "none" {
            if let Some(d) = default {
                n.store.delete(&d.id)?;
            }
        } else {
            let taken: Vec<Ipv4Net> = existing
                .iter()
                .filter(|x| x.name != "bridge")
                .filter_map(|x| x.ipam.map(|a| a.subnet))
                .collect();
            let space = match n.cfg.bip {
                Some(bip) => {
                    AddressSpace::new(bip.trunc(), None, Some(bip.addr())).map_err(net_err)?
                }
                None => match default.as_ref().and_then(|d| d.ipam) {
                    Some(a) => a,
                    None => {
                        let mut all = taken.clone();
                        all.extend(host_routes());
                        let subnet = ipam::pick_subnet(&n.cfg.pools, &all).map_err(net_err)?;
                        AddressSpace::new(subnet, None, None).map_err(net_err)?
                    }
                },
            };
            let mut options = BTreeMap::new();
            options.insert(BRIDGE_NAME_OPT.to_string(), n.cfg.bridge.clone());
            options.insert(MASQ_OPT.to_string(), "true".into());
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            options.insert("com.docker.network.bridge.enable_icc".into(), "true".into());
            if let Some(m) = n.cfg.mtu {
                options.insert(MTU_OPT.into(), m.to_string());
            }
            let rec = Network {
                id: default
                    .as_ref()
                    .map(|d| d.id.clone())
                    .unwrap_or_else(super::container::new_id),
                name: "bridge".into(),
                driver: "bridge".into(),
                created: default
                    .as_ref()
                    .map(|d| d.created.clone())
                    .unwrap_or_else(now),
                ipam: Some(space),
                user_subnet: n.cfg.bip.is_some(),
                bridge: n.cfg.bridge.clone(),
                mtu: n.cfg.mtu,
                masquerade: true,
                options,
                ..Default::default()
            };
            if default.as_ref() != Some(&rec) {
                n.store.put(&rec)?;
            }
        }
        if n.cfg.ip_forward && n.store.all()?.iter().any(Network::is_bridge) {
            if let Err(e) = n.sysctl.enable_ip_forward() {
                tracing::warn!("cannot enable IP forwarding: {e}");
            }
        }
        for net in n.store.all()?.iter().filter(|x| x.is_bridge()) {
            self.ensure_bridge(net).await?;
        }
        Ok(())
    }

    async fn ensure_bridge(&self, net: &Network) -> Result<()> {
        let n = &self.inner.net;
        let Some(space) = net.ipam else { return Ok(()) };
        n.deps
            .links
            .ensure_bridge(&BridgeSpec {
                name: net.bridge.clone(),
                gateway: space.gateway_cidr(),
                mtu: net.mtu,
            })
            .await
            .map_err(|e| {
                EngineError::Internal(format!(
                    "set up bridge {} of network {}: {e}",
                    net.bridge, net.name
                ))
            })?;
        // Ports published on 127.0.0.1 are forwarded to containers through the bridge.
        if let Err(e) = n.sysctl.enable_route_localnet(&net.bridge) {
            tracing::warn!(bridge = %net.bridge, "cannot enable route_localnet: {e}");
        }
        Ok(())
    }

    /// Find a network by full id, name, or unique id prefix (Docker's order).
    pub fn network_lookup(&self, name_or_id: &str) -> Result<Network> {
        let all = self.inner.net.store.all()?;
        if let Some(n) = all.iter().find(|n| n.id == name_or_id) {
            return Ok(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.name == name_or_id) {
            return Ok(n.clone());
        }
        let matches: Vec<&Network> = all
            .iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NoSuchNetwork(name_or_id.to_string())),
            _ => Err(EngineError::Invalid(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    pub async fn network_create(&self, req: CreateNetwork) -> Result<Network> {
        let n = &self.inner.net;
        if req.name.is_empty() {
            return Err(EngineError::Invalid(
                "network name must not be empty".into(),
            ));
        }
        let b = req.name.as_bytes();
        let valid = b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !valid {
            return Err(EngineError::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            if matches!(driver.as_str(), "host" | "null") {
                return Err(EngineError::Conflict(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )));
            }
            return Err(EngineError::NotFoundMsg(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found"
            )));
        }
        if req.enable_ipv6 {
            return Err(EngineError::Invalid(
                "IPv6 networks are not supported by berth yet".into(),
            ));
        }
        if req.extra_pools > 0 {
            return Err(EngineError::Invalid(
                "berth supports one IPv4 subnet per network".into(),
            ));
        }
        let _g = n.lock.lock().await;
        let all = n.store.all()?;
        if all.iter().any(|x| x.name == req.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let parse = |what: &str, s: &Option<String>| -> Result<Option<Ipv4Net>> {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<Ipv4Net>().map_err(|_| {
                        EngineError::Invalid(format!("invalid {what}: {s}: must be an IPv4 CIDR"))
                    })
                })
                .transpose()
        };
        let subnet = parse("subnet", &req.subnet)?;
        let ip_range = parse("ip-range", &req.ip_range)?;
        let gateway = req
            .gateway
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|g| {
                g.parse::<Ipv4Addr>()
                    .map_err(|_| EngineError::Invalid(format!("invalid gateway address: {g}")))
            })
            .transpose()?;
        if subnet.is_none() && (ip_range.is_some() || gateway.is_some()) {
            return Err(EngineError::Invalid(
                "ip-range and gateway need a subnet".into(),
            ));
        }
        let others: Vec<Ipv4Net> = all
            .iter()
            .filter_map(|x| x.ipam.map(|a| a.subnet))
            .collect();
        let space = match subnet {
            Some(s) => {
                let space = AddressSpace::new(s, ip_range, gateway).map_err(net_err)?;
                if let Some(o) = others.iter().find(|o| ipam::overlaps(o, &space.subnet)) {
                    return Err(EngineError::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({o})"
                    )));
                }
                space
            }
            None => {
                let mut taken = others.clone();
                taken.extend(host_routes());
                let s = ipam::pick_subnet(&n.cfg.pools, &taken).map_err(net_err)?;
                AddressSpace::new(s, None, None).map_err(net_err)?
            }
        };
        let id = loop {
            let id = super::container::new_id();
            if !all.iter().any(|x| x.id == id) {
                break id;
            }
        };
        let bridge = match req.options.get(BRIDGE_NAME_OPT).filter(|b| !b.is_empty()) {
            Some(b) => {
                berth_network::link::validate_ifname(b).map_err(net_err)?;
                if all.iter().any(|x| &x.bridge == b) {
                    return Err(EngineError::Conflict(format!(
                        "bridge name {b} is already used by another network"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let mtu = match req.options.get(MTU_OPT) {
            Some(m) => Some(
                m.parse::<u32>()
                    .map_err(|_| EngineError::Invalid(format!("invalid {MTU_OPT} value: {m}")))?,
            ),
            None => n.cfg.mtu,
        };
        let masquerade = req.options.get(MASQ_OPT).is_none_or(|v| v != "false");
        let net = Network {
            id,
            name: req.name.clone(),
            driver,
            created: now(),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels,
            options: req.options,
            ipam: Some(space),
            user_subnet: subnet.is_some(),
            bridge,
            mtu,
            masquerade,
        };
        self.ensure_bridge(&net).await?;
        if let Err(e) = n.store.put(&net) {
            let _ = n.deps.links.delete_bridge(&net.bridge).await;
            return Err(e);
        }
        if let Err(e) = self.apply_firewall_locked().await {
            tracing::warn!("firewall update after creating network {}: {e}", net.name);
        }
        self.network_event(&net, "create", &[]);
        Ok(net)
    }

    pub async fn network_list(&self, f: &NetworkFilters) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        let users = self.network_users().await;
        for n in self.inner.net.store.all()? {
            if !f.name.is_empty() && !f.name.iter().any(|x| n.name.contains(x.as_str())) {
                continue;
            }
            if !f.id.is_empty() && !f.id.iter().any(|x| n.id.starts_with(x.as_str())) {
                continue;
            }
            if !f.driver.is_empty() && !f.driver.contains(&n.driver) {
                continue;
            }
            if !crate::container::list::labels_match(&n.labels, &f.label) {
                continue;
            }
            match f.kind.as_deref() {
                Some("custom") if n.predefined() => continue,
                Some("builtin") if !n.predefined() => continue,
                _ => {}
            }
            if let Some(d) = f.dangling {
                let used = users
                    .get(&n.id)
                    .is_some_and(|u| u.iter().any(|(_, _, ep)| ep.ip.is_some()));
                if d == (used || n.predefined()) {
                    continue;
                }
            }
            out.push(n);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Containers attached to each network id: (container id, container name, endpoint).
    pub async fn network_users(&self) -> HashMap<String, Vec<(String, String, Endpoint)>> {
        let mut out: HashMap<String, Vec<(String, String, Endpoint)>> = HashMap::new();
        for h in self.inner.containers.read().await.values() {
            let r = h.record();
            for ep in r.endpoints.values() {
                out.entry(ep.network_id.clone()).or_default().push((
                    r.id.clone(),
                    r.short_name().to_string(),
                    ep.clone(),
                ));
            }
        }
        out
    }

    pub async fn network_remove(&self, name_or_id: &str) -> Result<()> {
        let net = self.network_lookup(name_or_id)?;
        if net.predefined() {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name
            )));
        }
        // Like dockerd, only running containers have endpoints that keep a network; a stopped container that
        // names it fails to start once it is gone.
        let users = self.network_users().await;
        let active: Vec<&str> = users
            .get(&net.id)
            .into_iter()
            .flatten()
            .filter(|(_, _, ep)| ep.ip.is_some())
            .map(|(_, n, _)| n.as_str())
            .collect();
        if !active.is_empty() {
            let names = active;
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints (name:{:?})",
                net.name,
                net.id,
                names.join(",")
            )));
        }
        let n = &self.inner.net;
        let _g = n.lock.lock().await;
        n.store.delete(&net.id)?;
        let mut errors = Vec::new();
        if let Err(e) = self.apply_firewall_locked().await {
            errors.push(e.to_string());
        }
        if let Err(e) = n.deps.links.delete_bridge(&net.bridge).await {
            errors.push(format!("delete bridge {}: {e}", net.bridge));
        }
        n.state().last_ip.remove(&net.id);
        self.network_event(&net, "destroy", &[]);
        if !errors.is_empty() {
            return Err(EngineError::Internal(format!(
                "network {} removed, but: {}",
                net.name,
                errors.join("; ")
            )));
        }
        Ok(())
    }

    /// `network prune`: user-defined networks no container uses.
    pub async fn network_prune(&self, labels: &[String]) -> Result<Vec<String>> {
        let f = NetworkFilters {
            label: labels.to_vec(),
            kind: Some("custom".into()),
            dangling: Some(true),
            ..Default::default()
        };
        let mut out = Vec::new();
        for n in self.network_list(&f).await? {
            if self.network_remove(&n.id).await.is_ok() {
                out.push(n.name);
            }
        }
        Ok(out)
    }

    /// The whole firewall rule set from the engine's state: every bridge network and the published ports
    /// of running containers. Callers hold the network lock.
    pub(crate) async fn apply_firewall_locked(&self) -> Result<()> {
        let n = &self.inner.net;
        let nets = n.store.all()?;
        let mut rs = Ruleset::default();
        for net in nets.iter().filter(|x| x.is_bridge()) {
            if let Some(a) = net.ipam {
                rs.networks.push(NetworkRules {
                    bridge: net.bridge.clone(),
                    subnet: a.subnet,
                    masquerade: net.masquerade,
                    internal: net.internal,
                });
            }
        }
        for h in self.inner.containers.read().await.values() {
            let r = h.record();
            rs.ports.extend(endpoint::port_mappings(&r, &nets));
        }
        let fw = n.deps.firewall.clone();
        tokio::task::spawn_blocking(move || fw.apply(&rs))
            .await
            .map_err(EngineError::join)?
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    pub async fn apply_firewall(&self) -> Result<()> {
        let _g = self.inner.net.lock.lock().await;
        self.apply_firewall_locked().await
    }

    pub(crate) fn network_event(&self, net: &Network, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), net.name.clone());
        attrs.insert("type".to_string(), net.driver.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.inner.events.publish("network", action, &net.id, attrs);
    }

    /// The networks' records, for API views.
    pub fn networks_all(&self) -> Result<Vec<Network>> {
        self.inner.net.store.all()
    }
}
