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
