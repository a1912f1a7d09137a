//! Network namespaces that outlive their creator: created in a short-lived thread and kept alive by a bind
//! mount on a file (like `ip netns add`), entered by other short-lived threads to create sockets or netlink
//! connections inside them. A socket keeps the namespace it was created in, so the caller can use it from any
//! thread afterwards.

use crate::{Result, SysError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::path::{Path, PathBuf};

/// Create a new network namespace and bind it at `path` (a file; its parent must exist). An existing bound
/// namespace at `path` is an error (`EEXIST`), so two creators cannot share one by accident.
pub fn create(path: &Path) -> Result<()> {
    create_inner(path, false)
}

/// [`create`], with the namespace's loopback interface brought up.
pub fn create_with_loopback(path: &Path) -> Result<()> {
    create_inner(path, true)
}

fn create_inner(path: &Path, loopback: bool) -> Result<()> {
    if crate::mount::is_mounted(path) {
        return Err(SysError::os(
            "create network namespace at",
            path.display(),
            nix::Error::EEXIST,
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| SysError::io("create netns file", path.display(), e))?;
    let target: PathBuf = path.to_path_buf();
    let res = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| SysError::os("unshare network namespace for", target.display(), e))?;
        if loopback {
            loopback_up().map_err(|e| SysError::io("bring lo up in", target.display(), e))?;
        }
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| SysError::os("bind network namespace at", target.display(), e))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(SysError::os(
            "create network namespace at",
            path.display(),
            nix::Error::EIO,
        ))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// A new network namespace with its loopback interface up, held by the descriptor returned (no file, no
/// mount: it lives as long as the descriptor, or a process in it). Another process reaches it as
/// `/proc/<pid>/fd/<fd>` of the holder's.
pub fn create_held() -> Result<std::os::fd::OwnedFd> {
    std::thread::spawn(move || -> Result<std::os::fd::OwnedFd> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| SysError::os("unshare", "a network namespace", e))?;
        loopback_up().map_err(|e| SysError::io("bring lo up in", "a new network namespace", e))?;
        std::fs::File::open("/proc/thread-self/ns/net")
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| SysError::io("open", "/proc/thread-self/ns/net", e))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(SysError::os(
            "create",
            "a network namespace",
            nix::Error::EIO,
        ))
    })
}

/// Unbind and delete a namespace made by [`create`]. Missing is not an error, so teardown can be repeated.
/// The kernel frees the namespace once no process or socket holds it any more.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(SysError::os("unbind network namespace", path.display(), e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SysError::io("remove netns file", path.display(), e)),
    }
}

/// Run `f` on a fresh thread that has joined the network namespace at `ns` (a bound namespace file or
/// `/proc/<pid>/ns/net`). Sockets `f` creates belong to that namespace for their whole life.
pub fn run_in<T, F>(ns: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let file = std::fs::File::open(ns)
        .map_err(|e| SysError::io("open network namespace", ns.display(), e))?;
    let shown = ns.display().to_string();
    std::thread::spawn(move || -> Result<T> {
        setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| SysError::os("enter network namespace", &shown, e))?;
        Ok(f())
    })
    .join()
    .unwrap_or_else(|_| {
        Err(SysError::os(
            "run in network namespace",
            ns.display(),
            nix::Error::EIO,
        ))
    })
}

/// Brings the loopback interface of the calling thread's network namespace up (a new namespace starts
/// with `lo` down; Docker's containers, `--network none` included, have it up with 127.0.0.1).
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket call; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero ifreq is valid; the name is NUL-terminated within IFNAMSIZ.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which lives across both calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn create_enter_remove() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("ns");
        create(&ns).unwrap();
        assert!(crate::mount::is_mounted(&ns));
        // A second create on the same path is refused.
        assert!(create(&ns).is_err());
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        let inside = run_in(&ns, || {
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        })
        .unwrap();
        assert_ne!(mine, inside, "the thread ran in another namespace");
        remove(&ns).unwrap();
        assert!(!ns.exists());
        remove(&ns).unwrap();
        assert!(run_in(&ns, || ()).is_err());
    }
}
