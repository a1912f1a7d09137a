//! Mounts: overlay root filesystems for containers, and their teardown.

use crate::{Result, SysError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// An overlay mount described as data (lower dirs top-most first), applied by [`mount_overlay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Overlay {
    /// The mount option string. An image without layers gets `empty` (an empty lower dir the caller made).
    pub fn options(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }
}

/// Mount `overlay` at `target`.
pub fn mount_overlay(overlay: &Overlay, target: &Path) -> Result<()> {
    let opts = overlay.options();
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| SysError::os("mount overlay on", target.display(), e))
}

/// Unmount `target` (lazily if busy). Not mounted is not an error, so teardown can be repeated.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(SysError::os("unmount", target.display(), e)),
    }
}

/// Mount a filesystem the way `mount -t FSTYPE -o OPTIONS DEVICE TARGET` does: the flag words of `options`
/// (`ro`, `nosuid`, `nodev`, `noexec`, `bind`, `rbind`, `sync`, `noatime`...) become mount flags, the rest is
/// passed to the filesystem as its data string (`size=64m,uid=1000`). Used for volumes with driver options.
pub fn mount_fs(device: &str, target: &Path, fstype: &str, options: &str) -> Result<()> {
    let (flags, data) = split_mount_options(options);
    let fstype = if flags.contains(MsFlags::MS_BIND) {
        None
    } else {
        Some(fstype)
    };
    let data = (!data.is_empty()).then_some(data.as_str());
    mount(Some(device), target, fstype, flags, data)
        .map_err(|e| SysError::os("mount volume on", target.display(), e))?;
    // A read-only bind needs a remount to take effect.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| SysError::os("remount read-only", target.display(), e))?;
    }
    Ok(())
}

/// Split `mount -o` options into flags and the filesystem's data string.
pub fn split_mount_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let f = match o {
            "ro" => MsFlags::MS_RDONLY,
            "rw" | "defaults" => MsFlags::empty(),
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "dirsync" => MsFlags::MS_DIRSYNC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "bind" => MsFlags::MS_BIND,
            "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
            "suid" | "dev" | "exec" | "async" | "atime" | "diratime" => MsFlags::empty(),
            other => {
                data.push(other);
                continue;
            }
        };
        flags |= f;
    }
    (flags, data.join(","))
}

/// Whether `path` is a mount point, read from `/proc/self/mountinfo`.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let (f, d) = split_mount_options("ro,nosuid,size=64m,uid=1000,rbind");
        assert!(f.contains(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert_eq!(d, "size=64m,uid=1000");
        let (f, d) = split_mount_options("");
        assert!(f.is_empty());
        assert_eq!(d, "");
    }

    #[test]
    fn overlay_options_keep_lower_order() {
        let o = Overlay {
            lower: vec!["/s/b".into(), "/s/a".into()],
            upper: "/c/upper".into(),
            work: "/c/work".into(),
        };
        assert_eq!(
            o.options(),
            "lowerdir=/s/b:/s/a,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn overlay_mount_and_unmount() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        for s in ["l1", "l2", "u", "w", "m"] {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        std::fs::write(d.path().join("l1/a"), "top").unwrap();
        std::fs::write(d.path().join("l2/a"), "bottom").unwrap();
        std::fs::write(d.path().join("l2/b"), "b").unwrap();
        let o = Overlay {
            lower: vec![d.path().join("l1"), d.path().join("l2")],
            upper: d.path().join("u"),
            work: d.path().join("w"),
        };
        let m = d.path().join("m");
        mount_overlay(&o, &m).unwrap();
        assert!(is_mounted(&m));
        assert_eq!(std::fs::read_to_string(m.join("a")).unwrap(), "top");
        assert_eq!(std::fs::read_to_string(m.join("b")).unwrap(), "b");
        unmount(&m).unwrap();
        assert!(!is_mounted(&m));
        unmount(&m).unwrap();
    }
}
