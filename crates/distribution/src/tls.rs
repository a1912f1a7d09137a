//! Per-registry TLS material in a `certs.d` directory, laid out as Docker reads `/etc/docker/certs.d`:
//! `certs.d/<host[:port]>/` holds
//! - `*.crt`: CA certificates (PEM, one or more per file) trusted for that registry, on top of the
//!   system roots;
//! - `*.cert` with a `*.key` of the same stem: a client certificate and its key, offered to registries
//!   that ask for one (mutual TLS).
//!
//! A `.cert` without its `.key` (or the reverse) is refused with Docker's wording, so a misnamed CA
//! (`ca.cert`) is noticed instead of silently ignored.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::DistError;

/// What one registry's directory holds.
#[derive(Default)]
pub(crate) struct HostTls {
    pub(crate) dir: PathBuf,
    pub(crate) roots: Vec<reqwest::Certificate>,
    pub(crate) identity: Option<reqwest::Identity>,
    /// sha256 over the names and contents read: a changed directory gives a new client.
    pub(crate) fingerprint: [u8; 32],
}

impl std::fmt::Debug for HostTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTls")
            .field("dir", &self.dir)
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

fn invalid(registry: &str, path: &Path, reason: impl Into<String>) -> DistError {
    DistError::TlsConfig {
        registry: registry.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads `certs_dir/<host>` (`host` as `host[:port]`); `None` when that directory does not exist.
pub(crate) fn read_host_dir(certs_dir: &Path, host: &str) -> Result<Option<HostTls>, DistError> {
    // A host name never contains a path separator; refuse anything that could leave certs.d.
    if host.is_empty() || host.contains('/') || host.starts_with('.') {
        return Ok(None);
    }
    let dir = certs_dir.join(host);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(host, &dir, e.to_string())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = HostTls {
        dir: dir.clone(),
        ..HostTls::default()
    };
    let mut hasher = Sha256::new();
    let mut read = |name: &str| {
        let p = dir.join(name);
        let b = std::fs::read(&p).map_err(|e| invalid(host, &p, e.to_string()))?;
        hasher.update(name.as_bytes());
        hasher.update((b.len() as u64).to_le_bytes());
        hasher.update(&b);
        Ok::<_, DistError>(b)
    };
    for name in &names {
        if name.ends_with(".crt") {
            let pem = read(name)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                invalid(host, &dir.join(name), format!("not a PEM certificate: {e}"))
            })?;
            if certs.is_empty() {
                return Err(invalid(host, &dir.join(name), "holds no PEM certificate"));
            }
            out.roots.extend(certs);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(invalid(
                    host,
                    &dir.join(name),
                    format!("missing key {key} for client certificate {name}. CA certificates must use the extension .crt"),
                ));
            }
            if out.identity.is_some() {
                return Err(invalid(host, &dir, "more than one client certificate"));
            }
            let mut pem = read(&key)?;
            pem.push(b'\n');
            pem.extend(read(name)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                invalid(
                    host,
                    &dir.join(name),
                    format!("client certificate or key is not valid PEM: {e}"),
                )
            })?;
            out.identity = Some(identity);
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !names.contains(&cert) {
                return Err(invalid(
                    host,
                    &dir.join(name),
                    format!("missing client certificate {cert} for key {name}"),
                ));
            }
        }
    }
    out.fingerprint = hasher.finalize().into();
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed P-256 certificate and its key, made once with
    // `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=test`.
    const CERT: &str = include_str!("testdata/tls/test.cert");
    const KEY: &str = include_str!("testdata/tls/test.key");

    #[test]
    fn missing_dir_is_none_and_names_cannot_escape() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(read_host_dir(tmp.path(), "reg.lan:5000").unwrap().is_none());
        std::fs::write(tmp.path().join("ca.crt"), CERT).unwrap();
        assert!(read_host_dir(tmp.path(), "..").unwrap().is_none());
        assert!(read_host_dir(tmp.path(), "a/../..").unwrap().is_none());
    }

    #[test]
    fn cas_and_a_client_pair_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("reg.lan:5000");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), format!("{CERT}\n{CERT}")).unwrap();
        std::fs::write(dir.join("client.cert"), CERT).unwrap();
        std::fs::write(dir.join("client.key"), KEY).unwrap();
        std::fs::write(dir.join("README"), "ignored").unwrap();
        let t = read_host_dir(tmp.path(), "reg.lan:5000").unwrap().unwrap();
        assert_eq!(t.roots.len(), 2);
        assert!(t.identity.is_some());
    }

    #[test]
    fn half_pairs_and_garbage_are_refused_with_the_file_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("reg.lan");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ca.cert"), CERT).unwrap();
        let e = read_host_dir(tmp.path(), "reg.lan")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing key ca.key for client certificate ca.cert")
                && e.contains("must use the extension .crt"),
            "{e}"
        );
        std::fs::remove_file(dir.join("ca.cert")).unwrap();
        std::fs::write(dir.join("client.key"), KEY).unwrap();
        let e = read_host_dir(tmp.path(), "reg.lan")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing client certificate client.cert"), "{e}");
        std::fs::remove_file(dir.join("client.key")).unwrap();
        std::fs::write(dir.join("ca.crt"), "not a certificate").unwrap();
        let e = read_host_dir(tmp.path(), "reg.lan")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
