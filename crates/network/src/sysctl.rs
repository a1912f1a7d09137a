//! The few kernel settings networking needs, read and written under a root directory.
//!
//! The daemon passes `/proc/sys`; tests pass a temporary tree with the same layout. Keys are written the
//! way `sysctl(8)` writes them (`net.ipv4.ip_forward`); because interface names may contain dots, a key may
//! also use `/` as its separator (`net/ipv4/conf/eth0.100/route_localnet`), and the helpers that take an
//! interface name build the path from parts.

use crate::{NetworkError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kernel settings under `root` (`/proc/sys` on a real host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    root: PathBuf,
}

impl Sysctl {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysctl { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current value, surrounding whitespace trimmed (`"1"`, `"32768\t60999"`).
    pub fn get(&self, key: &str) -> Result<String> {
        let parts = split_key(key)?;
        self.get_parts(key, &parts)
    }

    /// Set `key` to `value`. Nothing is written when the value is already right, so a read-only
    /// `/proc/sys` that already has what berth needs is fine.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        let parts = split_key(key)?;
        self.set_parts(key, &parts, value)
    }

    /// `net.ipv4.ip_forward = 1`: route between the bridges and the host's other interfaces.
    pub fn enable_ip_forward(&self) -> Result<()> {
        self.set("net.ipv4.ip_forward", "1")
    }

    /// `net.ipv4.conf.<bridge>.route_localnet = 1`: lets traffic published on 127.0.0.1 leave through the
    /// bridge (and its replies come back). The firewall drops packets *to* 127.0.0.0/8 arriving on berth
    /// bridges, which closes the hole this opens (CVE-2020-8558).
    pub fn enable_route_localnet(&self, bridge: &str) -> Result<()> {
        crate::link::validate_ifname(bridge)?;
        let key = format!("net.ipv4.conf.{bridge}.route_localnet");
        self.set_parts(
            &key,
            &["net", "ipv4", "conf", bridge, "route_localnet"],
            "1",
        )
    }

    fn path_of(&self, parts: &[&str]) -> PathBuf {
        parts.iter().fold(self.root.clone(), |p, part| p.join(part))
    }

    fn get_parts(&self, key: &str, parts: &[&str]) -> Result<String> {
        let path = self.path_of(parts);
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| NetworkError::io(format!("read sysctl {key} ({})", path.display()), e))
    }

    fn set_parts(&self, key: &str, parts: &[&str], value: &str) -> Result<()> {
        let current = self.get_parts(key, parts)?;
        if same_value(&current, value) {
            return Ok(());
        }
        let path = self.path_of(parts);
        // Never create: a missing file is a missing setting (a typo, an interface that is gone).
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| NetworkError::io(format!("open sysctl {key} ({})", path.display()), e))?;
        file.write_all(format!("{}\n", value.trim()).as_bytes())
            .map_err(|e| NetworkError::io(format!("set sysctl {key} to {value:?}"), e))
    }
}

/// Values compare by their whitespace-separated fields (`"32768 60999"` equals `"32768\t60999\n"`).
fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// `net.ipv4.ip_forward` or `net/ipv4/ip_forward` into its parts, refusing anything that could leave the
/// root.
fn split_key(key: &str) -> Result<Vec<&str>> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    let bad = parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..");
    if bad || (sep == '.' && parts.len() < 2) {
        return Err(NetworkError::Invalid(format!("invalid sysctl key {key:?}")));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Sysctl) {
        let dir = tempfile::tempdir().unwrap();
        for (path, value) in [
            ("net/ipv4/ip_forward", "0\n"),
            ("net/ipv4/ip_local_port_range", "32768\t60999\n"),
            ("net/ipv4/conf/br0/route_localnet", "0\n"),
            ("net/ipv4/conf/eth0.100/route_localnet", "0\n"),
        ] {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, value).unwrap();
        }
        let s = Sysctl::new(dir.path());
        (dir, s)
    }

    #[test]
    fn set_writes_and_get_reads_back() {
        let (dir, s) = tree();
        assert_eq!(s.get("net.ipv4.ip_forward").unwrap(), "0");
        s.enable_ip_forward().unwrap();
        assert_eq!(s.get("net.ipv4.ip_forward").unwrap(), "1");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("net/ipv4/ip_forward")).unwrap(),
            "1\n"
        );
    }

    #[test]
    fn set_skips_the_write_when_the_value_is_already_right() {
        let (dir, s) = tree();
        let path = dir.path().join("net/ipv4/ip_local_port_range");
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&path, perms).unwrap();
        // Root ignores the mode bits, so prove "no write" by the untouched content instead.
        s.set("net.ipv4.ip_local_port_range", "32768 60999")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "32768\t60999\n",
            "same value, no write"
        );
    }

    #[test]
    fn route_localnet_is_per_interface_even_with_dots_in_the_name() {
        let (_dir, s) = tree();
        s.enable_route_localnet("eth0.100").unwrap();
        assert_eq!(s.get("net/ipv4/conf/eth0.100/route_localnet").unwrap(), "1");
        assert_eq!(s.get("net.ipv4.conf.br0.route_localnet").unwrap(), "0");
        s.enable_route_localnet("br0").unwrap();
        assert_eq!(s.get("net.ipv4.conf.br0.route_localnet").unwrap(), "1");
    }

    #[test]
    fn errors_name_the_key_and_missing_settings_are_not_created() {
        let (dir, s) = tree();
        let err = s
            .set("net.ipv4.conf.gone0.route_localnet", "1")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("read sysctl net.ipv4.conf.gone0.route_localnet"),
            "{err}"
        );
        assert!(!dir.path().join("net/ipv4/conf/gone0").exists());
        let err = s.enable_route_localnet("gone0").unwrap_err();
        assert!(err.to_string().contains("gone0"), "{err}");
    }

    #[test]
    fn keys_cannot_leave_the_root() {
        let (_dir, s) = tree();
        for bad in [
            "",
            "net",
            "net..ipv4",
            "../etc/passwd",
            "net/../../x",
            "./x",
        ] {
            assert!(
                matches!(s.get(bad), Err(NetworkError::Invalid(_))),
                "{bad:?} accepted"
            );
        }
        assert!(s.enable_route_localnet("../../x").is_err());
    }
}
