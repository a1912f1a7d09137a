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
    /// Writes need not survive a crash (a `--rm` container's root): mounted `volatile`, overlayfs never
    /// syncs the upper filesystem, neither on `fsync` nor when unmounted. Unmounting a normal overlay syncs
    /// the whole filesystem its upper directory is on, milliseconds at the end of every container.
    pub volatile: bool,
}

impl Overlay {
    /// The mount option string. An image without layers gets `empty` (an empty lower dir the caller made).
    pub fn options(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}{}",
            lower.join(":"),
            self.upper.display(),
            self.work.display(),
            if self.volatile { ",volatile" } else { "" }
        )
    }
}

/// Mount `overlay` at `target`.
pub fn mount_overlay(overlay: &Overlay, target: &Path) -> Result<()> {
    // A volatile mount leaves `work/incompat/volatile/dirty` behind, and overlayfs refuses the directories
    // again while it is there. Only a mount of this very upper directory made it, and nothing mounts one
    // twice at a time: remove it.
    let incompat = overlay.work.join("work/incompat");
    if incompat.join("volatile").exists() {
        let _ = std::fs::remove_file(incompat.join("volatile/dirty"));
        let _ = std::fs::remove_dir(incompat.join("volatile"));
        let _ = std::fs::remove_dir(&incompat);
    }
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

/// Binds the file `src` read-only at `target` (made if missing; a previous bind there is replaced). A
/// process started from `target` has its `/proc/PID/exe` on a read-only mount, so nothing that can reach
/// that link (a container's process, CVE-2019-5736) can write the binary through it.
pub fn bind_file_readonly(src: &Path, target: &Path) -> Result<()> {
    if is_mounted(target) {
        unmount(target)?;
    }
    if !target.exists() {
        std::fs::File::create(target).map_err(|e| SysError::io("create", target.display(), e))?;
    }
    bind_remount(
        src,
        target,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
    .map_err(|(op, e)| SysError::os(op, target.display(), e))
}

/// Binds `src` at `target`, then remounts the bind with `flags` (a bind takes no flags of its own but
/// `MS_REC`). On failure, which of the two steps failed.
pub fn bind_remount(
    src: &Path,
    target: &Path,
    flags: MsFlags,
) -> std::result::Result<(), (&'static str, nix::Error)> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | (flags & MsFlags::MS_REC),
        None::<&str>,
    )
    .map_err(|e| ("bind", e))?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        (flags - MsFlags::MS_REC) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .map_err(|e| ("remount", e))
}

/// Unmount `target` (lazily if busy). Not mounted is not an error, so teardown can be repeated.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(SysError::os("unmount", target.display(), e)),
    }
}

/// Mount a filesystem the way `mount -t FSTYPE -o OPTIONS DEVICE TARGET` does: the flag words of `options`
/// (`ro`, `nosuid`, `nodev`, `noexec`, `bind`, `rbind`, `sync`, `noatime`...) become mount flags, a
/// propagation word (`rprivate`, `shared`...) is applied once mounted, the rest is passed to the filesystem
/// as its data string (`size=64m,uid=1000`). Used for volumes with driver options.
pub fn mount_fs(device: &str, target: &Path, fstype: &str, options: &str) -> Result<()> {
    let o = parse_mount_options(options.split(','));
    let flags = o.flags;
    let fstype = if flags.contains(MsFlags::MS_BIND) {
        None
    } else {
        Some(fstype)
    };
    let data = (!o.data.is_empty()).then_some(o.data.as_str());
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
    if !o.propagation.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            o.propagation,
            None::<&str>,
        )
        .map_err(|e| SysError::os("set the propagation of", target.display(), e))?;
    }
    Ok(())
}

/// Mount options split the way the kernel takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags other than propagation.
    pub flags: MsFlags,
    /// Propagation to set after mounting (`MS_PRIVATE`, `MS_SLAVE`, ... with `MS_REC`), or empty.
    pub propagation: MsFlags,
    /// The filesystem's own options (`mode=755,size=65536k`).
    pub data: String,
}

/// Reads `mount -o` words (an OCI mount's `options` too): a later word overrides an earlier one (`ro,rw`
/// is read-write), runtime-only words (`defaults`, `tmpcopyup`) are dropped.
pub fn parse_mount_options<'a>(options: impl IntoIterator<Item = &'a str>) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
    };
    let mut data: Vec<&str> = Vec::new();
    for o in options.into_iter().filter(|o| !o.is_empty()) {
        let none = MsFlags::empty();
        let (set, clear) = match o {
            "ro" => (MsFlags::MS_RDONLY, none),
            "rw" => (none, MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, none),
            "suid" => (none, MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, none),
            "dev" => (none, MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, none),
            "exec" => (none, MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, none),
            "async" => (none, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, none),
            "mand" => (MsFlags::MS_MANDLOCK, none),
            "nomand" => (none, MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, none),
            "atime" => (none, MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, none),
            "diratime" => (none, MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, none),
            "norelatime" => (none, MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, none),
            "nostrictatime" => (none, MsFlags::MS_STRICTATIME),
            "bind" => (MsFlags::MS_BIND, none),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, none),
            "tmpcopyup" | "defaults" => continue,
            other => {
                match propagation_flags(other) {
                    Some(p) => out.propagation |= p,
                    None => data.push(other),
                }
                continue;
            }
        };
        out.flags |= set;
        out.flags.remove(clear);
    }
    out.data = data.join(",");
    out
}

/// The flags of a propagation word (`rslave` is `MS_SLAVE | MS_REC`).
pub fn propagation_flags(o: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match o {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// Whether `path` is a mount point: the root of a mount, as `statx` says (Linux 5.8 and later), or else as
/// `/proc/self/mountinfo` lists (slower: the kernel prints every mount of the namespace for it).
pub fn is_mounted(path: &Path) -> bool {
    mount_root(path).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|info| is_mount_point(&info, path))
    })
}

/// `statx`'s `STATX_ATTR_MOUNT_ROOT` for `path` (not followed if a symbolic link); `None` where the kernel
/// does not tell.
fn mount_root(path: &Path) -> Option<bool> {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    match statx(
        CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) {
        Ok(st) => st
            .stx_attributes_mask
            .contains(StatxAttributes::MOUNT_ROOT)
            .then(|| st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Some(false),
        Err(_) => None,
    }
}

/// Whether `path` is a mount point in a `mountinfo` text already read.
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    let want = path.display().to_string();
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let split = |s: &str| {
            let o = parse_mount_options(s.split(','));
            (o.flags, o.data)
        };
        let (f, d) = split("ro,nosuid,size=64m,uid=1000,rbind");
        assert!(f.contains(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert_eq!(d, "size=64m,uid=1000");
        let (f, d) = split("");
        assert!(f.is_empty());
        assert_eq!(d, "");
    }

    fn opts(o: &[&str]) -> (MsFlags, MsFlags, String) {
        let o = parse_mount_options(o.iter().copied());
        (o.flags, o.propagation, o.data)
    }

    #[test]
    fn mount_options_split_into_flags_propagation_and_data() {
        let (f, p, d) = opts(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]);
        assert_eq!(
            f,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert!(p.is_empty());
        assert_eq!(d, "mode=1777,size=65536k");
        let (f, p, d) = opts(&["rbind", "ro", "rprivate"]);
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert_eq!(p, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(d, "");
        let (f, p, _) = opts(&["bind", "ro", "rw", "slave"]);
        assert_eq!(f, MsFlags::MS_BIND, "rw clears an earlier ro");
        assert_eq!(p, MsFlags::MS_SLAVE);
        let (_, p, _) = opts(&["runbindable"]);
        assert_eq!(p, MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
        let (_, p, _) = opts(&["unbindable"]);
        assert_eq!(p, MsFlags::MS_UNBINDABLE);
        let (_, p, _) = opts(&["private"]);
        assert_eq!(p, MsFlags::MS_PRIVATE);
    }

    #[test]
    fn overlay_options_keep_lower_order() {
        let o = Overlay {
            lower: vec!["/s/b".into(), "/s/a".into()],
            upper: "/c/upper".into(),
            work: "/c/work".into(),
            volatile: false,
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
            volatile: false,
        };
        let m = d.path().join("m");
        assert!(!is_mounted(&m));
        assert!(!is_mounted(&d.path().join("missing")));
        mount_overlay(&o, &m).unwrap();
        assert!(is_mounted(&m));
        // The kernel's answer and the mount table's agree.
        assert_eq!(mount_root(&m), Some(true));
        assert!(is_mount_point(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
            &m
        ));
        assert_eq!(std::fs::read_to_string(m.join("a")).unwrap(), "top");
        assert_eq!(std::fs::read_to_string(m.join("b")).unwrap(), "b");
        unmount(&m).unwrap();
        assert!(!is_mounted(&m));
        unmount(&m).unwrap();

        // Volatile, then normal again on the same directories: the marker a volatile mount leaves does not
        // stand in the way, and what was written is still there.
        let v = Overlay {
            volatile: true,
            ..o.clone()
        };
        assert!(v.options().ends_with(",volatile"));
        mount_overlay(&v, &m).unwrap();
        std::fs::write(m.join("c"), "written").unwrap();
        unmount(&m).unwrap();
        assert!(d.path().join("w/work/incompat/volatile").exists());
        mount_overlay(&o, &m).unwrap();
        assert_eq!(std::fs::read_to_string(m.join("c")).unwrap(), "written");
        unmount(&m).unwrap();
    }
}
