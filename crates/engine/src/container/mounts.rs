//! A container's mounts: resolved once at create from `--volumes-from`, `-v`, `--mount` and the image's
//! `VOLUME`s into [`MountPoint`]s (Docker's `Mounts` in inspect), turned into spec mounts at every start.
//!
//! Precedence follows Docker: `--volumes-from` first, then `-v`/`--mount` replace any mount with the same
//! destination, and each remaining image or `-v /path` volume gets an anonymous volume. Named volumes that do
//! not exist yet are created. A volume that is empty when a container starts is filled with what the image has
//! at that path (Docker's copy-up), unless `nocopy`.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_runtime::spec;
use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One resolved mount of a container (persisted with its record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MountPoint {
    pub kind: MountType,
    /// Volume name (volumes only).
    pub name: String,
    /// Host path: the bind source or the volume's `_data`; empty for tmpfs.
    pub source: String,
    pub destination: String,
    /// `local` for volumes, empty otherwise.
    pub driver: String,
    /// The mode string as given (`ro`, `z`...), shown in inspect.
    pub mode: String,
    pub rw: bool,
    /// `rprivate`... for binds; empty for volumes and tmpfs (as Docker shows them).
    pub propagation: String,
    /// Do not copy the image's content into an empty volume.
    pub nocopy: bool,
    /// Tmpfs mount options (`size=...`, `mode=...`).
    pub tmpfs_options: Vec<String>,
}

/// Resolve the mounts of a new container; returns them and the volumes created on the way (so a failed
/// create can remove them again).
pub(crate) async fn resolve(
    engine: &Engine,
    config: &ContainerConfig,
    hc: &HostConfig,
) -> Result<(Vec<MountPoint>, Vec<String>)> {
    let mut created = Vec::new();
    match resolve_inner(engine, config, hc, &mut created).await {
        Ok(m) => Ok((m, created)),
        Err(e) => {
            for n in &created {
                let _ = engine.volume_remove(n, true).await;
            }
            Err(e)
        }
    }
}

async fn resolve_inner(
    engine: &Engine,
    config: &ContainerConfig,
    hc: &HostConfig,
    created: &mut Vec<String>,
) -> Result<Vec<MountPoint>> {
    let mut out: Vec<MountPoint> = Vec::new();
    for from in hc.volumes_from.clone().unwrap_or_default() {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if matches!(m, "ro" | "rw" | "z" | "Z") => (n, m),
            _ => (from.as_str(), ""),
        };
        let other = engine.lookup(name).await?;
        for mut m in other.record().mounts {
            match mode {
                "ro" => m.rw = false,
                "rw" => m.rw = true,
                _ => {}
            }
            replace(&mut out, m);
        }
    }
    let mut explicit: Vec<String> = Vec::new();
    let mut add_explicit = |out: &mut Vec<MountPoint>, m: MountPoint| -> Result<()> {
        if explicit.contains(&m.destination) {
            return Err(EngineError::Invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        explicit.push(m.destination.clone());
        replace(out, m);
        Ok(())
    };
    for b in hc.binds.clone().unwrap_or_default() {
        let p = parse_bind(&b)?;
        let m = if p.source.starts_with('/') {
            // Docker's `-v` creates a missing host directory (only `--mount` refuses it).
            if !Path::new(&p.source).exists() {
                std::fs::create_dir_all(&p.source)
                    .map_err(|e| EngineError::io(format!("create bind source {}", p.source), e))?;
            }
            p
        } else {
            let (v, new) = engine
                .volume_for_container(Some(&p.source), BTreeMap::new(), BTreeMap::new())
                .await?;
            if new {
                created.push(v.name.clone());
            }
            MountPoint {
                kind: MountType::Volume,
                source: engine.volume_mountpoint(&v.name).display().to_string(),
                name: v.name,
                driver: v.driver,
                propagation: String::new(),
                mode: if p.mode.is_empty() {
                    "z".into()
                } else {
                    p.mode
                },
                ..p
            }
        };
        add_explicit(&mut out, m)?;
    }
    for mount in hc.mounts.clone().unwrap_or_default() {
        let v = serde_json::to_value(&mount).unwrap_or(Value::Null);
        let m = from_mount_api(engine, &v, created).await?;
        add_explicit(&mut out, m)?;
    }
    let mut image_volumes: Vec<String> = config.volumes.clone().unwrap_or_default();
    image_volumes.sort();
    for dest in image_volumes {
        let dest = clean_dest(&dest)?;
        if out.iter().any(|m| m.destination == dest) {
            continue;
        }
        let (v, _) = engine
            .volume_for_container(None, BTreeMap::new(), BTreeMap::new())
            .await?;
        created.push(v.name.clone());
        out.push(MountPoint {
            kind: MountType::Volume,
            source: engine.volume_mountpoint(&v.name).display().to_string(),
            name: v.name,
            destination: dest,
            driver: v.driver,
            rw: true,
            ..Default::default()
        });
    }
    Ok(out)
}

fn replace(out: &mut Vec<MountPoint>, m: MountPoint) {
    out.retain(|o| o.destination != m.destination);
    out.push(m);
}

fn clean_dest(d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(EngineError::Invalid(format!(
            "invalid mount config: invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    let t = d.trim_end_matches('/');
    if t.is_empty() {
        return Err(EngineError::Invalid(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(t.to_string())
}

/// `HostConfig.Mounts` entry (the `--mount` flag) to a mount point.
async fn from_mount_api(
    engine: &Engine,
    v: &Value,
    created: &mut Vec<String>,
) -> Result<MountPoint> {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let typ = s("Type");
    let target = s("Target");
    if target.is_empty() {
        return Err(EngineError::Invalid(format!(
            "invalid mount config for type \"{typ}\": field Target must not be empty"
        )));
    }
    let dest = clean_dest(&target).map_err(|_| {
        EngineError::Invalid(format!(
            "invalid mount config for type \"{typ}\": invalid mount path: '{target}' mount path must be absolute"
        ))
    })?;
    let ro = v["ReadOnly"].as_bool().unwrap_or(false);
    let source = s("Source");
    match typ.as_str() {
        "bind" => {
            if source.is_empty() {
                return Err(EngineError::Invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            let create = v["BindOptions"]["CreateMountpoint"]
                .as_bool()
                .unwrap_or(false);
            if !Path::new(&source).exists() {
                if create {
                    std::fs::create_dir_all(&source)
                        .map_err(|e| EngineError::io(format!("create bind source {source}"), e))?;
                } else {
                    return Err(EngineError::Invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                    )));
                }
            }
            let prop = v["BindOptions"]["Propagation"].as_str().unwrap_or("");
            let prop = if prop.is_empty() { "rprivate" } else { prop };
            parse_propagation(prop)?;
            Ok(MountPoint {
                kind: MountType::Bind,
                source,
                destination: dest,
                rw: !ro,
                propagation: prop.into(),
                ..Default::default()
            })
        }
        "volume" => {
            let vo = &v["VolumeOptions"];
            let to_map = |x: &Value| -> BTreeMap<String, String> {
                x.as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let driver = vo["DriverConfig"]["Name"].as_str().unwrap_or("");
            if !driver.is_empty() && driver != "local" {
                return Err(EngineError::NotFoundMsg(format!(
                    "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                )));
            }
            if !source.starts_with('/')
                && !source.is_empty()
                && !crate::volumes::valid_volume_name(&source)
            {
                return Err(EngineError::Invalid(format!(
                    "invalid mount config for type \"volume\": invalid volume name: {source:?}"
                )));
            }
            if source.starts_with('/') {
                return Err(EngineError::Invalid(format!(
                    "invalid mount config for type \"volume\": invalid volume name: {source:?}: a volume name can't be an absolute path, use type=bind"
                )));
            }
            let name = (!source.is_empty()).then_some(source.as_str());
            let (vol, new) = engine
                .volume_for_container(
                    name,
                    to_map(&vo["DriverConfig"]["Options"]),
                    to_map(&vo["Labels"]),
                )
                .await?;
            if new {
                created.push(vol.name.clone());
            }
            Ok(MountPoint {
                kind: MountType::Volume,
                source: engine.volume_mountpoint(&vol.name).display().to_string(),
                name: vol.name,
                destination: dest,
                driver: vol.driver,
                rw: !ro,
                nocopy: vo["NoCopy"].as_bool().unwrap_or(false),
                ..Default::default()
            })
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(EngineError::Invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                        .into(),
                ));
            }
            let t = &v["TmpfsOptions"];
            let mut opts = Vec::new();
            if let Some(sz) = t["SizeBytes"].as_i64().filter(|s| *s > 0) {
                opts.push(format!("size={sz}"));
            }
            if let Some(mode) = t["Mode"].as_i64().filter(|m| *m > 0) {
                opts.push(format!("mode={mode:o}"));
            }
            Ok(MountPoint {
                kind: MountType::Tmpfs,
                destination: dest,
                rw: !ro,
                tmpfs_options: opts,
                ..Default::default()
            })
        }
        other => Err(EngineError::Invalid(format!(
            "invalid mount config: mount type unknown: {other:?}"
        ))),
    }
}

fn parse_propagation(p: &str) -> Result<spec::Propagation> {
    Ok(match p {
        "private" => spec::Propagation::Private,
        "" | "rprivate" => spec::Propagation::Rprivate,
        "shared" => spec::Propagation::Shared,
        "rshared" => spec::Propagation::Rshared,
        "slave" => spec::Propagation::Slave,
        "rslave" => spec::Propagation::Rslave,
        _ => {
            return Err(EngineError::Invalid(format!(
                "invalid propagation mode: {p}"
            )))
        }
    })
}

/// Parse a `-v SRC:DST[:MODE]` bind; SRC is a host path or a volume name (left for the caller to resolve).
pub fn parse_bind(b: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(EngineError::Invalid(format!(
                "invalid volume specification: '{b}'"
            )))
        }
    };
    if src.is_empty() {
        return Err(EngineError::Invalid(format!(
            "invalid volume specification: '{b}'"
        )));
    }
    if !src.starts_with('/') && !crate::volumes::valid_volume_name(src) {
        return Err(EngineError::Invalid(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    if !dst.starts_with('/') || dst.trim_end_matches('/').is_empty() {
        return Err(EngineError::Invalid(format!("invalid volume specification: '{b}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute")));
    }
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" => {}
            "nocopy" => nocopy = true,
            p => {
                parse_propagation(p)
                    .map_err(|_| EngineError::Invalid(format!("invalid mode: {m}")))?;
                propagation = p.to_string();
            }
        }
    }
    let bind = src.starts_with('/');
    if bind && propagation.is_empty() {
        propagation = "rprivate".into();
    }
    Ok(MountPoint {
        kind: MountType::Bind,
        name: String::new(),
        source: src.to_string(),
        destination: dst.trim_end_matches('/').to_string(),
        driver: String::new(),
        mode: mode.to_string(),
        rw,
        propagation,
        nocopy,
        tmpfs_options: vec![],
    })
}

impl Engine {
    /// The spec mounts of a starting container; volumes with driver options get mounted on the way.
    pub(crate) fn spec_mounts(&self, mounts: &[MountPoint]) -> Result<Vec<spec::MountSpec>> {
        let mut out = Vec::new();
        for m in mounts {
            out.push(match m.kind {
                MountType::Bind => spec::MountSpec {
                    destination: m.destination.clone(),
                    source: m.source.clone().into(),
                    kind: spec::MountKind::Bind,
                    readonly: !m.rw,
                    options: vec![],
                    propagation: Some(parse_propagation(&m.propagation)?),
                },
                MountType::Volume => spec::MountSpec {
                    destination: m.destination.clone(),
                    source: self.prepare_volume(&m.name)?,
                    kind: spec::MountKind::Volume,
                    readonly: !m.rw,
                    options: vec![],
                    propagation: None,
                },
                MountType::Tmpfs => spec::MountSpec {
                    destination: m.destination.clone(),
                    source: "tmpfs".into(),
                    kind: spec::MountKind::Tmpfs,
                    readonly: !m.rw,
                    options: m.tmpfs_options.clone(),
                    propagation: None,
                },
            });
        }
        order_mounts(&mut out);
        Ok(out)
    }
}

/// Parents before children, so `/data` does not hide `/data/sub`.
fn order_mounts(m: &mut [spec::MountSpec]) {
    m.sort_by_key(|m| Path::new(&m.destination).components().count());
}

/// Volumes of `mounts` that are empty and want the image's content (copy-up candidates).
pub(crate) fn copy_up_candidates(mounts: &[MountPoint]) -> Vec<&MountPoint> {
    mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && !m.nocopy)
        .filter(|m| {
            std::fs::read_dir(&m.source)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        })
        .collect()
}

/// Docker's copy-up: fill the empty volume directory `dst` with the container root's content at `dest`
/// (resolved inside `rootfs`, symlinks never leave it), keeping modes, owners and symlinks.
pub(crate) fn copy_up(rootfs: &Path, dest: &str, dst: &Path) -> Result<()> {
    let Some(src) = crate::user::resolve_in_root(rootfs, dest) else {
        return Ok(());
    };
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    copy_tree(&src, dst)?;
    copy_attrs(&meta, dst)
}

fn copy_attrs(meta: &std::fs::Metadata, dst: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    nix::unistd::chown(
        dst,
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    )
    .map_err(|e| EngineError::io(format!("chown {}", dst.display()), e.into()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| EngineError::io(format!("chmod {}", dst.display()), e))
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let rd = std::fs::read_dir(src)
        .map_err(|e| EngineError::io(format!("read {}", src.display()), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| EngineError::io(format!("read {}", src.display()), e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)
            .map_err(|e| EngineError::io(format!("stat {}", from.display()), e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)
                .map_err(|e| EngineError::io(format!("create {}", to.display()), e))?;
            copy_tree(&from, &to)?;
            copy_attrs(&meta, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from)
                .map_err(|e| EngineError::io(format!("read link {}", from.display()), e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| EngineError::io(format!("create link {}", to.display()), e))?;
            let _ = nix::unistd::fchownat(
                None,
                &to,
                Some(nix::unistd::Uid::from_raw(meta.uid())),
                Some(nix::unistd::Gid::from_raw(meta.gid())),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
        } else if ft.is_file() {
            std::fs::copy(&from, &to)
                .map_err(|e| EngineError::io(format!("copy {}", from.display()), e))?;
            copy_attrs(&meta, &to)?;
        }
        // Sockets, fifos and device nodes are not copied into volumes.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        let m = parse_bind("/h:/c:ro").unwrap();
        assert_eq!(
            (m.source.as_str(), m.destination.as_str(), m.rw),
            ("/h", "/c", false)
        );
        assert_eq!(m.propagation, "rprivate");
        let m = parse_bind("data:/var/lib/data/").unwrap();
        assert_eq!(m.source, "data");
        assert_eq!(m.destination, "/var/lib/data");
        assert!(m.rw);
        assert!(parse_bind("data:/d:nocopy").unwrap().nocopy);
        assert_eq!(parse_bind("/h:/c:rshared").unwrap().propagation, "rshared");
        assert!(parse_bind("/h").is_err());
        assert!(parse_bind("/h:rel").is_err());
        assert!(parse_bind("/h:/c:bogus").is_err());
        assert!(parse_bind("a:/c")
            .unwrap_err()
            .to_string()
            .contains("invalid characters"));
        assert!(parse_bind("/h:/").is_err());
    }

    #[test]
    fn copy_up_keeps_modes_links_and_stays_in_root() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("data/sub")).unwrap();
        std::fs::write(r.join("data/sub/f"), "x").unwrap();
        std::fs::set_permissions(r.join("data/sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("data/link")).unwrap();
        // A symlinked destination resolves inside the root, never to the host's /etc.
        std::os::unix::fs::symlink("/data", r.join("alias")).unwrap();
        let out = tempfile::tempdir().unwrap();
        copy_up(r, "/alias", out.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("sub/f")).unwrap(),
            "x"
        );
        let mode = std::fs::metadata(out.path().join("sub/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(out.path().join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let out2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("escape")).unwrap();
        copy_up(r, "/escape", out2.path()).unwrap();
        assert!(std::fs::read_dir(out2.path()).unwrap().next().is_none());
    }

    #[test]
    fn spec_mounts_put_parents_first() {
        let m = |d: &str| spec::MountSpec {
            destination: d.into(),
            ..Default::default()
        };
        let mut v = vec![m("/a/b/c"), m("/a"), m("/z/y"), m("/b")];
        order_mounts(&mut v);
        let d: Vec<_> = v.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(d, vec!["/a", "/b", "/z/y", "/a/b/c"]);
    }
}
