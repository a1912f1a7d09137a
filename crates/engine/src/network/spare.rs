//! Spare network namespaces for `--network none`: a new network namespace costs about half a
//! millisecond of kernel work in the middle of a start (every per-namespace subsystem sets itself up),
//! so a few are made ahead of time, off the start's path, each with its loopback up as Docker's `none`
//! has it. A start takes one, the container's init joins it, and the daemon lets go of it at once: from
//! then on the container's processes hold it, as they hold one they made themselves. With none ready the
//! init makes its own. More are made after the start that took one ([`SpareNetns::refill`], when its
//! container has ended or a moment after the start: made during it, they took a CPU from its shim and
//! init).
//!
//! The daemon holds each by a descriptor (no file, no bind mount), which the container's runtime reaches
//! as `/proc/<daemon-pid>/fd/<fd>`: letting go of a bound namespace meant an unmount, and the kernel waits
//! for an expedited RCU grace period at every unmount (it interrupts every CPU: in a VM each interruption is
//! an exit to the hypervisor, and the start's container ran late behind them). Namespaces made by earlier
//! daemons, bound under `<exec-root>/netns-spare`, are removed at start-up and shutdown.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many namespaces are kept ready.
const SPARES: usize = 2;

pub(crate) struct SpareNetns {
    /// Where earlier daemons bound theirs.
    dir: PathBuf,
    ready: Mutex<Vec<OwnedFd>>,
    /// Taken by a start and not let go yet, by the path the start was given.
    taken: Mutex<HashMap<PathBuf, OwnedFd>>,
    /// `/proc/<pid>/fd/`: the prefix of the paths given out.
    prefix: PathBuf,
    filling: AtomicBool,
    /// Whether a start has asked for one: a daemon that never runs `--network none` keeps none.
    wanted: AtomicBool,
}

impl SpareNetns {
    pub fn new(dir: PathBuf) -> Arc<SpareNetns> {
        Arc::new(SpareNetns {
            dir,
            ready: Mutex::new(Vec::new()),
            taken: Mutex::new(HashMap::new()),
            prefix: PathBuf::from(format!("/proc/{}/fd", std::process::id())),
            filling: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
        })
    }

    /// Whether `path` is one of ours (to be let go once the init has joined it).
    pub fn owns(&self, path: &Path) -> bool {
        path.starts_with(&self.prefix)
    }

    /// A ready namespace, as a path the container's runtime opens to join it, if there is one (more are
    /// made at the next [`SpareNetns::refill`]). It stays held until [`SpareNetns::release`].
    pub fn take(&self) -> Option<PathBuf> {
        self.wanted.store(true, Ordering::Release);
        let fd = self.ready.lock().ok()?.pop()?;
        let path = self.prefix.join(fd.as_raw_fd().to_string());
        self.taken.lock().ok()?.insert(path.clone(), fd);
        Some(path)
    }

    /// Lets go of a taken namespace (the container holds it now, or never will).
    pub fn release(&self, path: &Path) {
        let fd = self.taken.lock().ok().and_then(|mut t| t.remove(path));
        drop(fd);
    }

    /// Lets go of every spare, and removes the namespaces earlier daemons bound (start-up; shutdown).
    pub fn clear(&self) {
        if let Ok(mut r) = self.ready.lock() {
            r.clear();
        }
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if let Err(err) = berth_sys::netns::remove(&e.path()) {
                tracing::warn!(path = %e.path().display(), "remove a spare network namespace: {err}");
            }
        }
    }

    /// Makes spares up to [`SPARES`] on a blocking thread, once a start has asked for one. (Not at a low
    /// CPU priority: making a namespace takes kernel locks that starts need too, and a preempted holder
    /// would stall them.)
    pub fn refill(self: &Arc<Self>) {
        if !self.wanted.load(Ordering::Acquire) || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            while me.ready.lock().map(|r| r.len()).unwrap_or(SPARES) < SPARES {
                match berth_sys::netns::create_held() {
                    Ok(fd) => {
                        if let Ok(mut r) = me.ready.lock() {
                            r.push(fd);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("make a spare network namespace: {e}");
                        break;
                    }
                }
            }
            me.filling.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The network namespace `path` leads to.
    fn ns_of(path: &Path) -> std::io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| m.ino())
    }

    #[tokio::test]
    async fn a_spare_is_a_namespace_of_its_own_reachable_by_path_until_let_go() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to make network namespaces");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let spares = SpareNetns::new(d.path().join("netns-spare"));
        assert!(spares.take().is_none(), "none before a start asked");
        spares.refill();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while spares.ready.lock().unwrap().len() < SPARES {
            assert!(std::time::Instant::now() < end, "no spares made");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let path = spares.take().unwrap();
        assert!(spares.owns(&path), "{}", path.display());
        let ours = ns_of(Path::new("/proc/self/ns/net")).unwrap();
        let theirs = ns_of(&path).unwrap();
        assert_ne!(ours, theirs, "a namespace of its own");
        // Joinable through that path, with its loopback up (127.0.0.1 exists only on a loopback that is).
        let up =
            berth_sys::netns::run_in(&path, || std::net::UdpSocket::bind("127.0.0.1:0").map(drop));
        assert!(matches!(up, Ok(Ok(()))), "{up:?}");
        let other = spares.take().unwrap();
        assert_ne!(ns_of(&other).unwrap(), theirs, "each spare is another");
        spares.release(&path);
        assert!(ns_of(&path).is_err(), "let go: the path leads nowhere");
        spares.release(&other);
        assert!(!spares.owns(Path::new("/var/run/netns/x")));
    }
}
