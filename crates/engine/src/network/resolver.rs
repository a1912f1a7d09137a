//! The table behind the embedded DNS servers: which names each container can resolve. Rebuilt from the
//! container records on every change and swapped whole (like aardvark-dns), so a lookup never sees half an
//! update and never waits for the engine.

use super::Network;
use crate::container::{Record, Status};
use berth_network::dns::Resolve;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Table {
    /// container id -> ids of the user-defined networks it is on.
    nets_of: HashMap<String, Vec<String>>,
    /// (network id, lowercase name) -> addresses.
    names: HashMap<(String, String), Vec<Ipv4Addr>>,
    /// (network id, address) -> `name.network`.
    ptr: HashMap<(String, Ipv4Addr), String>,
}

/// The names of containers with an address on user-defined networks (running, or starting: addresses are
/// given before the process starts and taken back when it exits): the container's name, its network aliases
/// and its short id, scoped to the network (Docker's `DNSNames`).
pub fn build(records: &[Record], nets: &[Network]) -> Table {
    let mut t = Table::default();
    for r in records {
        if matches!(
            r.state.status,
            Status::Exited | Status::Dead | Status::Removing
        ) {
            continue;
        }
        for (net_name, ep) in &r.endpoints {
            let Some(net) = nets.iter().find(|n| n.id == ep.network_id) else {
                continue;
            };
            if !net.user_defined() {
                continue;
            }
            let Some(ip) = ep.ip else { continue };
            t.nets_of
                .entry(r.id.clone())
                .or_default()
                .push(net.id.clone());
            for name in dns_names(r, &ep.aliases) {
                let v = t.names.entry((net.id.clone(), name)).or_default();
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            t.ptr.insert(
                (net.id.clone(), ip),
                format!("{}.{net_name}", r.short_name()),
            );
        }
    }
    t
}

/// Docker's `DNSNames` of an endpoint: name, aliases, short id.
pub fn dns_names(r: &Record, aliases: &[String]) -> Vec<String> {
    let mut out = vec![r.short_name().to_ascii_lowercase()];
    for a in aliases {
        let a = a.to_ascii_lowercase();
        if !out.contains(&a) {
            out.push(a);
        }
    }
    let short = r.id[..12.min(r.id.len())].to_string();
    if !out.contains(&short) {
        out.push(short);
    }
    out
}

/// The live table, shared with every DNS server.
#[derive(Default)]
pub struct DnsTable {
    table: RwLock<Arc<Table>>,
}

impl DnsTable {
    pub fn replace(&self, t: Table) {
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(t);
    }

    fn current(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Resolve for DnsTable {
    fn lookup_a(&self, container: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let t = self.current();
        let nets = t.nets_of.get(container)?;
        let mut found: Option<Vec<Ipv4Addr>> = None;
        for n in nets {
            if let Some(ips) = t.names.get(&(n.clone(), name.to_string())) {
                found
                    .get_or_insert_with(Vec::new)
                    .extend(ips.iter().copied());
            }
        }
        found
    }

    fn lookup_ptr(&self, container: &str, ip: Ipv4Addr) -> Option<String> {
        let t = self.current();
        let nets = t.nets_of.get(container)?;
        nets.iter()
            .find_map(|n| t.ptr.get(&(n.clone(), ip)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Endpoint;

    fn net(id: &str, name: &str) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            driver: "bridge".into(),
            ipam: Some(
                berth_network::ipam::AddressSpace::new("10.9.0.0/24".parse().unwrap(), None, None)
                    .unwrap(),
            ),
            ..Default::default()
        }
    }

    fn rec(id: &str, name: &str, eps: &[(&str, &str, &str, &[&str])], running: bool) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("/{name}"), "created": "", "image_id": "", "image": "",
            "path": "sh", "args": [], "config": {}, "host_config": {},
            "state": {"status": if running {"running"} else {"exited"}, "pid": 1, "exit_code": 0, "error": "",
                      "started_at": "", "finished_at": "", "oom_killed": false},
            "restart_count": 0, "log_path": "", "hostname_path": "", "hosts_path": "", "resolv_conf_path": ""
        }))
        .unwrap();
        for (net_name, net_id, ip, aliases) in eps {
            r.endpoints.insert(
                net_name.to_string(),
                Endpoint {
                    network_id: net_id.to_string(),
                    ip: Some(ip.parse().unwrap()),
                    aliases: aliases.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
            );
        }
        r
    }

    #[test]
    fn names_resolve_only_on_shared_user_networks() {
        let nets = vec![net("n1", "app"), net("n2", "other"), {
            let mut b = net("n0", "bridge");
            b.name = "bridge".into();
            b
        }];
        let recs = vec![
            rec(
                "aaaaaaaaaaaa1",
                "web",
                &[("app", "n1", "10.9.0.2", &["www"])],
                true,
            ),
            rec(
                "bbbbbbbbbbbb2",
                "db",
                &[
                    ("app", "n1", "10.9.0.3", &[]),
                    ("other", "n2", "10.9.1.3", &[]),
                ],
                true,
            ),
            rec(
                "cccccccccccc3",
                "lone",
                &[("other", "n2", "10.9.1.4", &[])],
                true,
            ),
            rec(
                "dddddddddddd4",
                "stopped",
                &[("app", "n1", "10.9.0.9", &[])],
                false,
            ),
            rec(
                "eeeeeeeeeeee5",
                "legacy",
                &[("bridge", "n0", "172.17.0.2", &[])],
                true,
            ),
        ];
        let t = DnsTable::default();
        t.replace(build(&recs, &nets));
        let a = |c: &str, n: &str| t.lookup_a(c, n);
        assert_eq!(
            a("aaaaaaaaaaaa1", "db"),
            Some(vec!["10.9.0.3".parse().unwrap()])
        );
        assert_eq!(
            a("bbbbbbbbbbbb2", "www"),
            Some(vec!["10.9.0.2".parse().unwrap()])
        );
        assert_eq!(
            a("bbbbbbbbbbbb2", "aaaaaaaaaaaa"),
            Some(vec!["10.9.0.2".parse().unwrap()])
        );
        // Not on a shared network: not visible (forwarded upstream instead).
        assert_eq!(a("cccccccccccc3", "web"), None);
        assert_eq!(
            a("cccccccccccc3", "db"),
            Some(vec!["10.9.1.3".parse().unwrap()])
        );
        assert_eq!(a("aaaaaaaaaaaa1", "stopped"), None);
        // The default bridge has no embedded DNS.
        assert_eq!(a("eeeeeeeeeeee5", "web"), None);
        assert_eq!(a("aaaaaaaaaaaa1", "legacy"), None);
        assert_eq!(
            t.lookup_ptr("aaaaaaaaaaaa1", "10.9.0.3".parse().unwrap()),
            Some("db.app".into())
        );
    }
}
