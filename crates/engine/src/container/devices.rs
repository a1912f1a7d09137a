//! The host's device nodes a container gets: `--device HOST[:CONTAINER[:PERMISSIONS]]`, and every device
//! with `--privileged`, looked up on the host when the container starts (Docker's rules).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_runtime::spec::Device;
use bollard_stubs::models::DeviceMapping;

use crate::error::{EngineError, Result};

/// Directories of `/dev` a privileged container does not take from the host: it has its own `pts`, `shm`
/// and `mqueue`, and `fd` is a link to its own descriptors.
const NOT_FROM_HOST: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Every character and block device below `dev` (the host's `/dev`), at the same path in the container;
/// the console is the container's own.
pub fn host_devices(dev: &Path) -> Vec<Device> {
    let mut out = Vec::new();
    walk(dev, dev, Path::new("/dev"), true, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The devices `--device` asks for; a directory brings every device below it.
pub fn mapped_devices(dev_root: &Path, m: &DeviceMapping) -> Result<Vec<Device>> {
    let host = m.path_on_host.clone().unwrap_or_default();
    let permissions = match m.cgroup_permissions.as_deref() {
        None | Some("") => "rwm".to_string(),
        Some(p) if valid_permissions(p) => p.to_string(),
        Some(p) => {
            return Err(EngineError::Invalid(format!(
                "invalid device mode {p:?} for device {host:?}: use a combination of r, w and m"
            )))
        }
    };
    let inside = m
        .path_in_container
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| host.clone());
    if !inside.starts_with('/') {
        return Err(EngineError::Invalid(format!(
            "invalid device path in the container {inside:?}: it must be absolute"
        )));
    }
    // A host path is given as the host knows it; `dev_root` stands for `/dev` (tests point it elsewhere).
    let on_host = match host.strip_prefix("/dev") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            dev_root.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(&host),
    };
    let gathering = |e: std::io::Error| {
        EngineError::Invalid(format!(
            "error gathering device information while adding custom device {host:?}: {}",
            e.to_string().to_lowercase()
        ))
    };
    let meta = std::fs::metadata(&on_host).map_err(gathering)?;
    let mut out = Vec::new();
    if meta.is_dir() {
        walk(&on_host, &on_host, Path::new(&inside), false, &mut out);
    } else if let Some(d) = device(&meta, &inside) {
        out.push(d);
    } else {
        return Err(EngineError::Invalid(format!(
            "error gathering device information while adding custom device {host:?}: not a device node"
        )));
    }
    for d in &mut out {
        d.permissions = permissions.clone();
    }
    Ok(out)
}

fn valid_permissions(p: &str) -> bool {
    !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c))
}

/// Character and block devices below `dir`, placed below `inside` (symlinks are not followed).
fn walk(root: &Path, dir: &Path, inside: &Path, skip_own: bool, out: &mut Vec<Device>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let rel = e
            .path()
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if meta.is_dir() {
            if skip_own && dir == root && NOT_FROM_HOST.iter().any(|n| name == *n) {
                continue;
            }
            walk(root, &e.path(), inside, skip_own, out);
        } else if skip_own && dir == root && name == "console" {
            continue;
        } else if let Some(d) = device(&meta, &inside.join(&rel).to_string_lossy()) {
            out.push(d);
        }
    }
}

fn device(meta: &std::fs::Metadata, path: &str) -> Option<Device> {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(Device {
        path: path.to_string(),
        kind,
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        permissions: "rwm".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host: &str, inside: &str, perms: &str) -> DeviceMapping {
        DeviceMapping {
            path_on_host: Some(host.into()),
            path_in_container: Some(inside.into()),
            cgroup_permissions: Some(perms.into()),
        }
    }

    #[test]
    fn a_mapped_device_takes_its_node_from_the_host() {
        // /dev/null is on every host: char 1:3.
        let d = mapped_devices(
            Path::new("/dev"),
            &mapping("/dev/null", "/dev/mynull", "rw"),
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (
                d[0].path.as_str(),
                d[0].kind,
                d[0].major,
                d[0].minor,
                d[0].permissions.as_str()
            ),
            ("/dev/mynull", 'c', 1, 3, "rw")
        );
        let d = mapped_devices(Path::new("/dev"), &mapping("/dev/null", "", "")).unwrap();
        assert_eq!(
            (d[0].path.as_str(), d[0].permissions.as_str()),
            ("/dev/null", "rwm")
        );
    }

    #[test]
    fn bad_mappings_get_docker_errors() {
        let e = mapped_devices(Path::new("/dev"), &mapping("/dev/nope-berth", "", "")).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "error gathering device information while adding custom device \"/dev/nope-berth\""
            ),
            "{e}"
        );
        let e = mapped_devices(Path::new("/dev"), &mapping("/dev/null", "", "rx")).unwrap_err();
        assert!(e.to_string().contains("invalid device mode"), "{e}");
        let e = mapped_devices(Path::new("/dev"), &mapping("/etc/hostname", "", "")).unwrap_err();
        assert!(e.to_string().contains("not a device node"), "{e}");
    }

    #[test]
    fn privileged_takes_every_host_device_but_its_own_pts_shm_and_console() {
        let all = host_devices(Path::new("/dev"));
        let paths: Vec<&str> = all.iter().map(|d| d.path.as_str()).collect();
        assert!(paths.contains(&"/dev/null"), "{paths:?}");
        assert!(paths.contains(&"/dev/zero"), "{paths:?}");
        assert!(
            !paths.iter().any(|p| p.starts_with("/dev/pts/")),
            "{paths:?}"
        );
        assert!(!paths.contains(&"/dev/console"), "{paths:?}");
        assert!(all.iter().all(|d| d.kind == 'c' || d.kind == 'b'));
    }
}
