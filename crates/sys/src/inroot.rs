//! Paths inside a container's root filesystem, resolved so that nothing a container controls (symlinks, `..`,
//! renames racing with us) can ever lead out of it: the class of escape of CVE-2018-15664 (`docker cp` following
//! a symlink swapped to `/` between check and use).
//!
//! * A [`View`] is a directory file descriptor on a container's root: for a running container its
//!   `/proc/<pid>/root` (the container's own mount namespace, so volumes and tmpfs mounts are seen exactly as the
//!   container sees them); for a stopped one, an overlay mounted in a private mount namespace that only this
//!   view holds, with the container's binds and volumes mounted at their destinations (see [`private_view`]).
//!   Nothing is ever mounted in the daemon's own namespace, and the namespace goes away with the view.
//! * [`open`] opens a path below a view's root with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the kernel
//!   resolves every symlink and `..` as if the root were `/`, atomically with the open.
//! * [`resolve`] gives the path a symlink leads to, as a string inside the root (Docker's `linkTarget`), by a
//!   component-by-component walk on directory descriptors that never asks the kernel to follow anything.

use crate::mount::Overlay;
use crate::{Result, SysError};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How [`open`] opens the final component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// An `O_PATH` descriptor of whatever is there, following a final symlink.
    Path,
    /// An `O_PATH` descriptor that must be a directory, following a final symlink.
    PathDir,
    /// A readable directory, following a final symlink.
    Dir,
    /// A file opened for reading, following a final symlink (non-blocking: a FIFO cannot hang us).
    File,
}

/// A container root: a directory descriptor and, for a private view, the mount namespace that keeps its mounts.
#[derive(Debug)]
pub struct View {
    root: OwnedFd,
    /// Holds the private mount namespace alive; dropping it unmounts everything the view mounted.
    _ns: Option<OwnedFd>,
}

impl View {
    /// The root directory (an `O_PATH` descriptor).
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Open `path` (absolute or relative, taken relative to the root either way) below `root`. The kernel may ask
/// for a retry when a rename raced with the walk (`EAGAIN`); that is done here.
pub fn open(root: BorrowedFd<'_>, path: &Path, how: How) -> io::Result<OwnedFd> {
    let flags = OFlags::CLOEXEC
        | match how {
            How::Path => OFlags::PATH,
            How::PathDir => OFlags::PATH | OFlags::DIRECTORY,
            How::Dir => OFlags::RDONLY | OFlags::DIRECTORY,
            How::File => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        };
    let rel = relative(path);
    let mut tries = 0;
    loop {
        match rfs::openat2(root, rel, flags, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) if tries < 64 => tries += 1,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Make the directory `path` and any missing parents below `root` (resolved in the root, like [`open`]), each new one
/// with `mode` and, when given, `owner`; returns a readable descriptor of the directory. Existing directories keep
/// their metadata (a build's `COPY` into `/usr/local/bin` must not reset `/usr`).
pub fn mkdir_all(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    // Most directories asked for exist already: one lookup.
    if let Ok(dir) = open(root, path, How::Dir) {
        return Ok(dir);
    }
    let comps = components(path.as_os_str().as_bytes());
    let mut prefix = PathBuf::from("/");
    // Each directory is looked up from the root (a symlink on the way resolves inside it), and the
    // descriptor of the one found or made is the parent of the next.
    let mut parent = open(root, &prefix, How::PathDir)?;
    for comp in comps {
        let name = OsStr::from_bytes(&comp);
        prefix.push(name);
        match open(root, &prefix, How::PathDir) {
            Ok(dir) => {
                parent = dir;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        match rfs::mkdirat(&parent, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                rfs::chmodat(&parent, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
                if let Some((uid, gid)) = owner {
                    rfs::chownat(
                        &parent,
                        name,
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        parent = open(root, &prefix, How::PathDir)?;
    }
    open(root, &prefix, How::Dir)
}

/// `path` without its leading slashes (`.` for the root itself).
fn relative(path: &Path) -> &Path {
    let bytes = path.as_os_str().as_bytes();
    let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
    if start == bytes.len() {
        Path::new(".")
    } else {
        Path::new(OsStr::from_bytes(&bytes[start..]))
    }
}

/// The longest chain of symlinks followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Where `path` leads inside `root`, as an absolute path string: every symlink evaluated as if `root` were `/`
/// (a final one too), components that do not exist kept as written (Docker's `FollowSymlinkInScope`). Fails with
/// `ELOOP` on a symlink loop and `ENOTDIR` when a non-directory has components below it.
pub fn resolve(root: BorrowedFd<'_>, path: &str) -> io::Result<String> {
    // Directories walked so far: (name, descriptor); the root is implicit.
    let mut stack: Vec<(Vec<u8>, OwnedFd)> = Vec::new();
    let mut pending: Vec<Vec<u8>> = components(path.as_bytes());
    pending.reverse();
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        if comp == b".." {
            stack.pop();
            continue;
        }
        let dir = match stack.last() {
            Some((_, fd)) => fd.as_fd(),
            None => root,
        };
        let name = OsStr::from_bytes(&comp);
        let fd = match rfs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                // The rest does not exist: keep it lexically.
                let mut out = names(&stack);
                out.push(comp);
                while let Some(c) = pending.pop() {
                    if c == b".." {
                        out.pop();
                    } else {
                        out.push(c);
                    }
                }
                return Ok(join_abs(&out));
            }
            Err(e) => return Err(e.into()),
        };
        let st = rfs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = rfs::readlinkat(&fd, "", Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    stack.clear();
                }
                let mut parts = components(target);
                parts.reverse();
                pending.extend(parts);
            }
            FileType::Directory => stack.push((comp, fd)),
            _ if !pending.is_empty() => return Err(Errno::NOTDIR.into()),
            _ => {
                let mut out = names(&stack);
                out.push(comp);
                return Ok(join_abs(&out));
            }
        }
    }
    Ok(join_abs(&names(&stack)))
}

fn names(stack: &[(Vec<u8>, OwnedFd)]) -> Vec<Vec<u8>> {
    stack.iter().map(|(n, _)| n.clone()).collect()
}

fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn join_abs(parts: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(&String::from_utf8_lossy(p));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The root of a running process's mount namespace (`/proc/<pid>/root`) as a [`View`]. The process directory
/// is opened first and the root through it, so a pid reused meanwhile fails (`ENOENT`) instead of giving another
/// process's root.
pub fn process_view(pid: i32) -> io::Result<View> {
    let proc_dir = rfs::openat(
        CWD,
        format!("/proc/{pid}"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let root = rfs::openat(
        &proc_dir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(View { root, _ns: None })
}

/// A bind mount of a private view: a host path (trusted, resolved normally) mounted at a destination inside the
/// container root (resolved in the root; created, as a directory or an empty file like the source, when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewBind {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Mount `overlay` at `mountpoint` in a new private mount namespace, then each of `binds` (parents first) at
/// its destination inside it, and make the root read-only if asked. The namespace lives as long as the returned
/// view; the daemon's own namespace never sees any of these mounts.
pub fn private_view(
    overlay: &Overlay,
    mountpoint: &Path,
    binds: &[ViewBind],
    readonly_root: bool,
) -> Result<View> {
    let overlay = overlay.clone();
    let mountpoint = mountpoint.to_path_buf();
    let mut binds = binds.to_vec();
    binds.sort_by_key(|b| components(b.destination.as_bytes()).len());
    let shown = mountpoint.display().to_string();
    std::thread::spawn(move || setup_private(&overlay, &mountpoint, &binds, readonly_root))
        .join()
        .unwrap_or_else(|_| {
            Err(SysError::os(
                "prepare a private view of",
                shown,
                nix::Error::EIO,
            ))
        })
}

/// Runs on a thread of its own: unsharing the mount namespace (and with it the thread's root and working
/// directory) affects this thread only, and it ends right after.
fn setup_private(
    overlay: &Overlay,
    mountpoint: &Path,
    binds: &[ViewBind],
    readonly_root: bool,
) -> Result<View> {
    let shown = mountpoint.display();
    // A root the daemon mounted ahead of a start (an auto-remove container's) is in the copy this thread
    // gets: a second overlay on the same upper and work directories is not allowed to be made.
    let mounted = crate::mount::is_mounted(mountpoint);
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| SysError::os("unshare mount namespace for", &shown, e))?;
    // Nothing mounted here may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SysError::os("make private the mounts of", "/", e))?;
    if !mounted {
        crate::mount::mount_overlay(overlay, mountpoint)?;
    }
    let io_err = |op: &'static str, target: &str| {
        let target = target.to_string();
        move |e: io::Error| SysError::io(op, target, e)
    };
    let root = rfs::openat(
        CWD,
        mountpoint,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::io("open", &shown, e.into()))?;
    for b in binds {
        let file = std::fs::metadata(&b.source)
            .map(|m| !m.is_dir())
            .map_err(io_err(
                "inspect bind source",
                &b.source.display().to_string(),
            ))?;
        let target = ensure(root.as_fd(), &b.destination, file)
            .map_err(io_err("create mount point", &b.destination))?;
        let target_path = format!("/proc/thread-self/fd/{}", target.as_raw_fd());
        mount(
            Some(&b.source),
            target_path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| SysError::os("bind mount at", &b.destination, e))?;
        if b.readonly {
            // The new mount is reached by opening the destination again.
            let how = if file { How::Path } else { How::PathDir };
            let mounted = open(root.as_fd(), Path::new(&b.destination), how)
                .map_err(io_err("open mount", &b.destination))?;
            remount_readonly(&mounted)
                .map_err(|e| SysError::os("remount read-only", &b.destination, e))?;
        }
    }
    if readonly_root {
        remount_readonly(&root).map_err(|e| SysError::os("remount read-only", &shown, e))?;
    }
    let ns = rfs::openat(
        CWD,
        "/proc/thread-self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::io("open", "/proc/thread-self/ns/mnt", e.into()))?;
    Ok(View {
        root,
        _ns: Some(ns),
    })
}

fn remount_readonly(fd: &OwnedFd) -> nix::Result<()> {
    let p = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    mount(
        None::<&str>,
        p.as_str(),
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
}

/// An `O_PATH` descriptor of `path` inside `root`, creating missing directories on the way and the last
/// component as a directory (or an empty file when `file`).
fn ensure(root: BorrowedFd<'_>, path: &str, file: bool) -> io::Result<OwnedFd> {
    let parts = components(path.as_bytes());
    let mut done = PathBuf::from("/");
    for (i, comp) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next = done.join(OsStr::from_bytes(comp));
        match open(root, &next, How::Path) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                let parent = open(root, &done, How::PathDir)?;
                let name = OsStr::from_bytes(comp);
                let made = if last && file {
                    rfs::openat(
                        &parent,
                        name,
                        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                } else {
                    rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                if last {
                    return open(root, &next, How::Path);
                }
            }
            Err(e) => return Err(e),
        }
        done = next;
    }
    open(root, Path::new("/"), How::PathDir)
}

/// File metadata as the archive endpoints report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    /// Permission and set-id/sticky bits (`st_mode & 0o7777`).
    pub perm: u32,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// `fstat` of a descriptor.
pub fn meta_fd(fd: BorrowedFd<'_>) -> io::Result<Meta> {
    Ok(to_meta(&rfs::fstat(fd)?))
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)` of `name` in `dir`.
pub fn meta_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Meta> {
    Ok(to_meta(&rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?))
}

fn to_meta(st: &rfs::Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        _ => FileKind::File,
    };
    Meta {
        kind,
        perm: st.st_mode & 0o7777,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_sec: st.st_mtime,
        mtime_nsec: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_fd(p: &Path) -> OwnedFd {
        rfs::openat(CWD, p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn open_stays_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("etc/up")).unwrap();
        // A host file the root must never reach.
        std::fs::write(d.path().join("outside"), "host").unwrap();
        let fd = dir_fd(&root);
        let r = fd.as_fd();
        for p in [
            "/escape/etc/marker",
            "etc/up/etc/marker",
            "/../../etc/marker",
        ] {
            let f = open(r, Path::new(p), How::Path).unwrap();
            assert_eq!(meta_fd(f.as_fd()).unwrap().size, 6, "{p}");
        }
        let err = open(r, Path::new("/escape/../outside"), How::Path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(open(r, Path::new("/etc/marker"), How::Dir).is_err());
        assert!(open(r, Path::new("/"), How::Dir).is_ok());
    }

    #[test]
    fn resolve_evaluates_links_in_scope() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/sh"), "x").unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("sh", root.join("usr/bin/link")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let fd = dir_fd(root);
        let r = fd.as_fd();
        assert_eq!(resolve(r, "/bin/sh").unwrap(), "/usr/bin/sh");
        assert_eq!(resolve(r, "/bin/link").unwrap(), "/usr/bin/sh");
        assert_eq!(resolve(r, "/usr/up/etc/x").unwrap(), "/etc/x");
        assert_eq!(resolve(r, "/escape").unwrap(), "/");
        assert_eq!(
            resolve(r, "/bin/missing/x/../y").unwrap(),
            "/usr/bin/missing/y"
        );
        assert_eq!(resolve(r, "/").unwrap(), "/");
        assert_eq!(
            resolve(r, "/loop").unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            resolve(r, "/usr/bin/sh/x").unwrap_err().raw_os_error(),
            Some(libc::ENOTDIR)
        );
    }

    #[test]
    fn a_process_view_is_that_process_root() {
        let view = process_view(std::process::id() as i32).unwrap();
        let f = open(view.root(), Path::new("/proc/self/root/etc"), How::Path);
        assert!(f.is_err(), "magic links are not followed below a view");
        let etc = open(view.root(), Path::new("/etc"), How::Dir).unwrap();
        assert_eq!(meta_fd(etc.as_fd()).unwrap().kind, FileKind::Dir);
        assert!(process_view(i32::MAX).is_err());
    }

    #[test]
    fn private_view_mounts_binds_and_leaves_the_host_alone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        for s in ["lower/etc", "upper", "work", "rootfs", "vol"] {
            std::fs::create_dir_all(d.path().join(s)).unwrap();
        }
        std::fs::write(d.path().join("lower/etc/os"), "img").unwrap();
        std::fs::write(d.path().join("vol/data"), "volume").unwrap();
        std::fs::write(d.path().join("hosts"), "hosts").unwrap();
        let ov = Overlay {
            lower: vec![d.path().join("lower")],
            upper: d.path().join("upper"),
            work: d.path().join("work"),
            volatile: false,
        };
        let binds = [
            ViewBind {
                source: d.path().join("vol"),
                destination: "/srv/data".into(),
                readonly: true,
            },
            ViewBind {
                source: d.path().join("hosts"),
                destination: "/etc/hosts".into(),
                readonly: false,
            },
        ];
        let rootfs = d.path().join("rootfs");
        let view = private_view(&ov, &rootfs, &binds, false).unwrap();
        assert!(!crate::mount::is_mounted(&rootfs), "leaked into the host");
        let r = view.root();
        let f = open(r, Path::new("/srv/data/data"), How::Path).unwrap();
        assert_eq!(meta_fd(f.as_fd()).unwrap().size, 6);
        let f = open(r, Path::new("/etc/hosts"), How::Path).unwrap();
        assert_eq!(meta_fd(f.as_fd()).unwrap().size, 5);
        let f = open(r, Path::new("/etc/os"), How::Path).unwrap();
        assert_eq!(meta_fd(f.as_fd()).unwrap().size, 3);
        // The volume is read-only, the root is not.
        let vol = open(r, Path::new("/srv/data"), How::Dir).unwrap();
        let err = rfs::mkdirat(&vol, "x", Mode::from_raw_mode(0o755)).unwrap_err();
        assert_eq!(err, Errno::ROFS);
        let top = open(r, Path::new("/"), How::Dir).unwrap();
        rfs::mkdirat(&top, "new", Mode::from_raw_mode(0o755)).unwrap();
        drop((f, vol, top, view));
        assert!(d.path().join("upper/new").is_dir());
        assert!(
            d.path().join("upper/srv/data").is_dir(),
            "mount point made in the upper dir"
        );
        assert!(!d.path().join("vol/x").exists());
    }
}
