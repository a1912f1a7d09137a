//! The container's root filesystem, made by its init ([`super::run_init`]): the spec's mounts with every
//! destination opened inside the root, the cgroup mount, `/dev`'s devices, `pivot_root`, the console,
//! read-only and masked paths.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use super::{Device, Init, Mount, MountKind};
use crate::inroot::{self, How};

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{p:?} holds a NUL byte"))
}

/// The path through which the kernel reaches what `fd` is open on (`mount` accepts it as a target).
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Everything before `pivot_root`: propagation, the root bound on itself, the spec's mounts, `/dev`.
pub(super) fn prepare_root(init: &Init) -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        init.root_propagation,
        None::<&str>,
    )
    .map_err(|e| format!("set the propagation of /: {e}"))?;
    let rootfs = cstr(&init.rootfs)?;
    mount(
        Some(rootfs.as_c_str()),
        rootfs.as_c_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind the root {} on itself: {e}", init.rootfs.display()))?;
    let root: OwnedFd = rfs::open(
        &init.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the root {}: {e}", init.rootfs.display()))?;
    // Device nodes are made only on a `/dev` tmpfs of the container's own: the last mount on `/dev`
    // decides, and a `/dev` bound from the host (`-v /dev:/dev`) is never written to.
    let mut dev_tmpfs = false;
    for m in &init.mounts {
        mount_one(root.as_fd(), m, init).map_err(|e| {
            format!(
                "mount {} on {}: {e}",
                m.source.display(),
                m.destination.display()
            )
        })?;
        if m.destination == Path::new("/dev") {
            dev_tmpfs = m.kind == MountKind::Fs && m.fstype == "tmpfs";
        }
    }
    if dev_tmpfs {
        default_devices(root.as_fd())?;
        for d in &init.devices {
            make_device(root.as_fd(), d)
                .map_err(|e| format!("create device {}: {e}", d.path.display()))?;
        }
    }
    Ok(())
}

/// Creates `dest` inside the root (a directory, or an empty file when `file`) unless it exists, and opens it.
fn mount_point(root: BorrowedFd<'_>, dest: &Path, file: bool) -> std::io::Result<OwnedFd> {
    if let Ok(fd) = inroot::open(root, dest, How::Path) {
        return Ok(fd);
    }
    // Most often only the last component is missing (`/dev/pts`, `/dev/mqueue`, `/etc/hosts`): it is made in
    // its parent, found inside the root. A name there already (a symlink leading nowhere) takes the long way.
    if let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) {
        if let Ok(dir) = inroot::open(root, parent, How::PathDir) {
            if let Some(fd) = make_in(dir.as_fd(), name, file)? {
                return Ok(fd);
            }
        }
    }
    // Symlinks on the way (an image's `/var/run -> /run`, or one pointing at a path of the host's) are
    // followed inside the root, and what is missing is created there.
    let resolved = inroot::resolve(root, &dest.to_string_lossy())?;
    let dest = Path::new(&resolved);
    if !file {
        inroot::mkdir_all(root, dest, 0o755, None)?;
    } else {
        let parent = dest.parent().unwrap_or(Path::new("/"));
        let dir = inroot::mkdir_all(root, parent, 0o755, None)?;
        let name = dest.file_name().unwrap_or(OsStr::new("."));
        match rfs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o755),
        ) {
            Ok(_) | Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::LOOP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    inroot::open(root, dest, How::Path)
}

/// Makes `name` in `dir`, an empty file when `file` else a directory, mode 0755 (the init runs with umask 0,
/// see [`super::run_init`]), and opens it without following anything. `None` when the name is taken.
fn make_in(dir: BorrowedFd<'_>, name: &OsStr, file: bool) -> std::io::Result<Option<OwnedFd>> {
    let made = if file {
        rfs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o755),
        )
    } else {
        rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)).and_then(|()| {
            rfs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
    };
    match made {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::EXIST) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount, init: &Init) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match m.kind {
        MountKind::Bind => {
            let src_dir = std::fs::metadata(&m.source)
                .map_err(|e| format!("source: {e}"))?
                .is_dir();
            let target = mount_point(root, &m.destination, !src_dir).map_err(io)?;
            let t = fd_path(&target);
            let bind = MsFlags::MS_BIND | (m.flags & MsFlags::MS_REC);
            mount(
                Some(&m.source),
                t.as_str(),
                None::<&str>,
                bind,
                None::<&str>,
            )
            .map_err(|e| e.to_string())?;
            let extra = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            if !extra.is_empty() {
                // Re-open: the bind is a new mount on top of the old descriptor's.
                let target = inroot::open(root, &m.destination, How::Path).map_err(io)?;
                mount(
                    None::<&str>,
                    fd_path(&target).as_str(),
                    None::<&str>,
                    extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None::<&str>,
                )
                .map_err(|e| format!("remount with its options: {e}"))?;
            }
        }
        MountKind::Cgroup => mount_cgroups(root, m, init)?,
        MountKind::Fs => {
            let target = mount_point(root, &m.destination, false).map_err(io)?;
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            mount(
                Some(&m.source),
                fd_path(&target).as_str(),
                Some(m.fstype.as_str()),
                m.flags,
                data,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    if !m.propagation.is_empty() {
        let target = inroot::open(root, &m.destination, How::Path).map_err(io)?;
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            m.propagation,
            None::<&str>,
        )
        .map_err(|e| format!("set propagation: {e}"))?;
    }
    Ok(())
}

/// `/sys/fs/cgroup`: on a v2 host the unified hierarchy itself; on v1 a tmpfs with one directory per
/// hierarchy. In the container's own cgroup namespace each hierarchy is mounted afresh (its root is the
/// container's cgroup); without one, the container's cgroup directories are bound.
fn mount_cgroups(root: BorrowedFd<'_>, m: &Mount, init: &Init) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let flags = m.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = m.flags & MsFlags::MS_RDONLY;
    let hs = &init.cgroup_hierarchies;
    if let [h] = hs.as_slice() {
        if h.fstype == "cgroup2" {
            let target = mount_point(root, &m.destination, false).map_err(io)?;
            let t = fd_path(&target);
            return if init.cgroup_ns {
                mount(
                    Some("cgroup2"),
                    t.as_str(),
                    Some("cgroup2"),
                    flags | ro,
                    None::<&str>,
                )
                .map_err(|e| e.to_string())
            } else {
                bind_readonly(&h.host_dir, &t, flags | ro)
            };
        }
    }
    let target = mount_point(root, &m.destination, false).map_err(io)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| e.to_string())?;
    // The tmpfs just mounted: nothing else has seen it, its directories are made and opened in it directly.
    let tmpfs = inroot::open(root, &m.destination, How::PathDir).map_err(io)?;
    for h in hs.iter().filter(|h| h.fstype == "cgroup") {
        let dir = match make_in(tmpfs.as_fd(), OsStr::new(&h.name), false).map_err(io)? {
            Some(dir) => dir,
            None => mount_point(root, &m.destination.join(&h.name), false).map_err(io)?,
        };
        let t = fd_path(&dir);
        if init.cgroup_ns {
            mount(
                Some("cgroup"),
                t.as_str(),
                Some("cgroup"),
                flags | ro,
                Some(h.options.as_str()),
            )
            .map_err(|e| format!("{}: {e}", h.name))?;
        } else {
            bind_readonly(&h.host_dir, &t, flags | ro)?;
        }
        // `cpu` and `cpuacct` for a `cpu,cpuacct` hierarchy, as hosts have them.
        if h.name.contains(',') {
            for ctl in h.name.split(',') {
                let _ = rfs::symlinkat(h.name.as_str(), &tmpfs, ctl);
            }
        }
    }
    if !ro.is_empty() {
        // `tmpfs` is open on the tmpfs's root: the remount applies to that mount.
        mount(
            None::<&str>,
            fd_path(&tmpfs).as_str(),
            None::<&str>,
            flags | ro | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .map_err(|e| format!("remount read-only: {e}"))?;
    }
    Ok(())
}

fn bind_readonly(src: &Path, target: &str, flags: MsFlags) -> Result<(), String> {
    crate::mount::bind_remount(src, Path::new(target), flags)
        .map_err(|(op, e)| format!("{op} {}: {e}", src.display()))
}

/// Docker's default devices on the container's `/dev` tmpfs, and its usual symlinks.
fn default_devices(root: BorrowedFd<'_>) -> Result<(), String> {
    const DEFAULTS: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    let dev =
        inroot::open(root, Path::new("/dev"), How::Dir).map_err(|e| format!("open /dev: {e}"))?;
    for (name, major, minor) in DEFAULTS {
        let d = Device {
            path: Path::new("/dev").join(name),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make_node(dev.as_fd(), OsStr::new(name), &d)
            .map_err(|e| format!("create /dev/{name}: {e}"))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match rfs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("create /dev/{name}: {e}")),
        }
    }
    Ok(())
}

fn make_device(root: BorrowedFd<'_>, d: &Device) -> std::io::Result<()> {
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d.path.file_name().unwrap_or(OsStr::new("."));
    let dir = inroot::mkdir_all(root, parent, 0o755, None)?;
    make_node(dir.as_fd(), name, d)
}

/// The node `d` as `name` in `dir`.
fn make_node(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> std::io::Result<()> {
    let kind = rfs::FileType::from_raw_mode(d.kind);
    match rfs::mknodat(
        dir,
        name,
        kind,
        Mode::from_raw_mode(d.mode & 0o7777),
        rfs::makedev(d.major as u32, d.minor as u32),
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {
            // The container's own tmpfs (see `prepare_root`): a default node the spec lists again is
            // made anew with the spec's owner and mode.
            rfs::unlinkat(dir, name, AtFlags::empty())?;
            rfs::mknodat(
                dir,
                name,
                kind,
                Mode::from_raw_mode(d.mode & 0o7777),
                rfs::makedev(d.major as u32, d.minor as u32),
            )?;
        }
        Err(e) => return Err(e.into()),
    }
    rfs::chownat(
        dir,
        name,
        Some(rfs::Uid::from_raw(d.uid)),
        Some(rfs::Gid::from_raw(d.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// `pivot_root` onto `rootfs` and detach the old root, without a directory for it (`pivot_root(".", ".")`).
pub(super) fn pivot_root(rootfs: &Path) -> Result<(), String> {
    let old = rfs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open /: {e}"))?;
    let new = rfs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the root {}: {e}", rootfs.display()))?;
    nix::unistd::fchdir(new.as_raw_fd()).map_err(|e| format!("enter the root: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(|e| format!("enter the old root: {e}"))?;
    // The old root's mounts must not take the host's mounts with them as they go.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("make the old root a slave: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach the old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Binds the terminal's peer on `/dev/console`, as runtimes do for a container with a terminal.
pub(super) fn bind_console(slave: &OwnedFd) -> Result<(), String> {
    match rfs::open(
        "/dev/console",
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(format!("create /dev/console: {e}")),
    }
    mount(
        Some(fd_path(slave).as_str()),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind the terminal on /dev/console: {e}"))
}

/// The flags of the mount at `path` that a remount must keep (or the kernel refuses, or clears them).
fn kept_flags(path: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

pub(super) fn remount_readonly(path: &Path) -> Result<(), String> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(path),
        None::<&str>,
    )
    .map_err(|e| format!("remount {} read-only: {e}", path.display()))
}

/// A read-only path: bound on itself, then remounted read-only. One that does not exist is skipped.
pub(super) fn readonly_path(p: &Path) -> Result<(), String> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => remount_readonly(p),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(format!("bind {} on itself: {e}", p.display())),
    }
}

/// A masked path: `/dev/null` over a file, an empty read-only tmpfs over a directory.
pub(super) fn mask_path(p: &Path) -> Result<(), String> {
    match mount(
        Some("/dev/null"),
        p,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::ENOTDIR) => mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("mask {}: {e}", p.display())),
        Err(e) => Err(format!("mask {}: {e}", p.display())),
    }
}
