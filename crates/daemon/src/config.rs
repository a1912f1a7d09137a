//! Daemon settings: flags (dockerd's names) over `daemon.json` over defaults.

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
pub const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub hosts: Vec<String>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: Option<PathBuf>,
    pub log_level: String,
    pub cgroup_parent: String,
    pub cgroup_root: PathBuf,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Per-registry CAs and client certificates: `certs.d` beside the configuration file, then
    /// Docker's `/etc/docker/certs.d`, so a host set up for Docker works unchanged.
    pub certs_dirs: Vec<PathBuf>,
    pub network: berth_engine::network::NetworkConfig,
}

/// The `daemon.json` keys berth understands (Docker's names); unknown keys are refused like dockerd does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonJson {
    pub hosts: Option<Vec<String>>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub log_level: Option<String>,
    pub debug: Option<bool>,
    pub cgroup_parent: Option<String>,
    pub log_driver: Option<String>,
    pub log_opts: Option<std::collections::HashMap<String, String>>,
    pub live_restore: Option<bool>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<u32>,
    pub max_concurrent_uploads: Option<u32>,
    pub bip: Option<String>,
    pub default_address_pools: Option<serde_json::Value>,
    pub mtu: Option<u32>,
    pub bridge: Option<String>,
    pub ip_forward: Option<bool>,
    pub iptables: Option<bool>,
    pub userland_proxy: Option<bool>,
    /// berth's own: the nftables table holding berth's rules.
    pub firewall_table: Option<String>,
    #[serde(rename = "detachKeys")]
    pub detach_keys: Option<String>,
}

/// What came from the command line (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub log_level: Option<String>,
    pub debug: bool,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub mtu: Option<u32>,
    pub firewall_table: Option<String>,
}

pub fn load(flags: &Flags) -> anyhow::Result<DaemonConfig> {
    let path = flags
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let json = match std::fs::read(&path) {
        Ok(b) => parse_json(&b)
            .with_context(|| format!("invalid daemon configuration {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && flags.config_file.is_none() => {
            DaemonJson::default()
        }
        Err(e) => {
            return Err(e).with_context(|| format!("read daemon configuration {}", path.display()))
        }
    };
    resolve(flags, json)
}

/// `certs.d` next to the configuration file (`/etc/berth/certs.d` by default), then Docker's.
fn certs_dirs(flags: &Flags) -> Vec<PathBuf> {
    let config = flags
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let mut dirs = vec![config
        .parent()
        .unwrap_or_else(|| Path::new("/"))
        .join("certs.d")];
    let docker = PathBuf::from("/etc/docker/certs.d");
    if !dirs.contains(&docker) {
        dirs.push(docker);
    }
    dirs
}

pub fn parse_json(b: &[u8]) -> anyhow::Result<DaemonJson> {
    Ok(serde_json::from_slice(b)?)
}

pub fn resolve(flags: &Flags, json: DaemonJson) -> anyhow::Result<DaemonConfig> {
    if !flags.hosts.is_empty() && json.hosts.is_some() {
        anyhow::bail!("the following directives are specified both as a flag and in the configuration file: hosts");
    }
    let hosts = if !flags.hosts.is_empty() {
        flags.hosts.clone()
    } else {
        json.hosts
            .clone()
            .unwrap_or_else(|| vec![format!("unix://{DEFAULT_SOCKET}")])
    };
    let hosts = hosts
        .into_iter()
        .map(|h| {
            if h.starts_with('/') {
                format!("unix://{h}")
            } else {
                h
            }
        })
        .collect();
    let opts = json.log_opts.clone().unwrap_or_default();
    let log_max_size = match opts.get("max-size") {
        Some(s) => berth_engine::container::parse_size(s)
            .map_err(|e| anyhow::anyhow!("log-opts max-size: {e}"))?,
        None => 10_000_000,
    };
    let log_max_files = match opts.get("max-file") {
        Some(s) => s
            .parse()
            .with_context(|| format!("log-opts max-file: {s}"))?,
        None => 3,
    };
    if let Some(d) = &json.log_driver {
        if d != "json-file" {
            anyhow::bail!("log driver {d:?} is not supported (only json-file)");
        }
    }
    let mut network = berth_engine::network::NetworkConfig::default();
    if let Some(b) = flags.bridge.clone().or(json.bridge.clone()) {
        if b != "none" {
            berth_network::link::validate_ifname(&b).map_err(|e| anyhow::anyhow!("bridge: {e}"))?;
        }
        network.bridge = b;
    }
    if let Some(bip) = flags.bip.clone().or(json.bip.clone()) {
        network.bip = Some(bip.parse().with_context(|| {
            format!("bip: {bip:?} is not an IPv4 address with a prefix (172.17.0.1/16)")
        })?);
    }
    if let Some(p) = &json.default_address_pools {
        network.pools = serde_json::from_value(p.clone()).context("default-address-pools")?;
    }
    network.mtu = flags.mtu.or(json.mtu);
    if let Some(t) = flags.firewall_table.clone().or(json.firewall_table.clone()) {
        network.firewall_table = t;
    }
    network.ip_forward = json.ip_forward.unwrap_or(true);
    Ok(DaemonConfig {
        network,
        hosts,
        data_root: flags
            .data_root
            .clone()
            .or(json.data_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT)),
        exec_root: flags
            .exec_root
            .clone()
            .or(json.exec_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT)),
        pidfile: flags.pidfile.clone().or(json.pidfile),
        log_level: if flags.debug || json.debug == Some(true) {
            "debug".into()
        } else {
            flags
                .log_level
                .clone()
                .or(json.log_level)
                .unwrap_or_else(|| "info".into())
        },
        cgroup_parent: json.cgroup_parent.unwrap_or_else(|| "/berth".into()),
        cgroup_root: Path::new("/sys/fs/cgroup").to_path_buf(),
        log_max_size,
        log_max_files,
        insecure_registries: json.insecure_registries.clone().unwrap_or_default(),
        registry_mirrors: json.registry_mirrors.clone().unwrap_or_default(),
        max_concurrent_downloads: json.max_concurrent_downloads.unwrap_or(3) as usize,
        max_concurrent_uploads: json.max_concurrent_uploads.unwrap_or(5) as usize,
        certs_dirs: certs_dirs(flags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_daemon_json() {
        let json = parse_json(br#"{"data-root": "/srv/berth", "log-opts": {"max-size": "1m", "max-file": "5"}, "debug": true}"#).unwrap();
        let flags = Flags {
            data_root: Some("/tmp/x".into()),
            ..Default::default()
        };
        let c = resolve(&flags, json).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/tmp/x"));
        assert_eq!(c.exec_root, PathBuf::from(DEFAULT_EXEC_ROOT));
        assert_eq!(c.log_max_size, 1_000_000);
        assert_eq!(c.log_max_files, 5);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.hosts, vec!["unix:///run/berth/berth.sock"]);
        assert_eq!(c.network.bridge, "berth0");
        assert_eq!(
            c.certs_dirs,
            vec![
                PathBuf::from("/etc/berth/certs.d"),
                PathBuf::from("/etc/docker/certs.d")
            ]
        );
    }

    #[test]
    fn network_settings_from_daemon_json() {
        let json = parse_json(
            br#"{"bridge": "bt0", "bip": "10.55.0.1/24", "mtu": 1400, "firewall-table": "t1",
                 "default-address-pools": [{"base": "10.60.0.0/16", "size": 24}]}"#,
        )
        .unwrap();
        let c = resolve(&Flags::default(), json).unwrap();
        assert_eq!(c.network.bridge, "bt0");
        assert_eq!(c.network.bip.unwrap().to_string(), "10.55.0.1/24");
        assert_eq!(c.network.mtu, Some(1400));
        assert_eq!(c.network.firewall_table, "t1");
        assert_eq!(c.network.pools.len(), 1);
        let bad = parse_json(br#"{"bip": "nonsense"}"#).unwrap();
        assert!(resolve(&Flags::default(), bad).is_err());
        let bad = parse_json(br#"{"bridge": "a/b"}"#).unwrap();
        assert!(resolve(&Flags::default(), bad).is_err());
    }

    #[test]
    fn unknown_keys_and_conflicts_are_refused() {
        assert!(parse_json(br#"{"no-such-key": 1}"#).is_err());
        let json = parse_json(br#"{"hosts": ["unix:///a.sock"]}"#).unwrap();
        let flags = Flags {
            hosts: vec!["unix:///b.sock".into()],
            ..Default::default()
        };
        assert!(resolve(&flags, json)
            .unwrap_err()
            .to_string()
            .contains("both as a flag"));
    }
}
