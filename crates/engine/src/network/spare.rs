//! Spare network namespaces for `--network none`: a new network namespace costs about half a
//! millisecond of kernel work in the middle of a start (every per-namespace subsystem sets itself up),
//! so a few are made ahead of time, off the start's path, each with its
//! loopback up as Docker's `none` has it. A start takes one, the container's init joins it, and the
//! file that kept it alive is removed at once: from then on the container's processes hold it, as they
//! hold one they made themselves. With none ready the init makes its own. More are made after the start
//! that took one ([`SpareNetns::refill`], when its container has ended or a moment after the start: made
//! during it, they took a CPU from its shim and init).
//!
//! The spares live under `<exec-root>/netns-spare`; start-up and shutdown remove whatever is there.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How many namespaces are kept ready.
const SPARES: usize = 2;

pub(crate) struct SpareNetns {
    dir: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
    filling: AtomicBool,
    /// Whether a start has asked for one: a daemon that never runs `--network none` keeps none.
    wanted: AtomicBool,
    next: AtomicU64,
}

impl SpareNetns {
    pub fn new(dir: PathBuf) -> Arc<SpareNetns> {
        Arc::new(SpareNetns {
            dir,
            ready: Mutex::new(Vec::new()),
            filling: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            next: AtomicU64::new(0),
        })
    }

    /// Whether `path` is one of ours (to be removed once the init has joined it).
    pub fn owns(&self, path: &Path) -> bool {
        path.starts_with(&self.dir)
    }

    /// A ready namespace, if there is one (more are made at the next [`SpareNetns::refill`]).
    pub fn take(&self) -> Option<PathBuf> {
        self.wanted.store(true, Ordering::Release);
        self.ready.lock().ok().and_then(|mut r| r.pop())
    }

    /// Removes the file that kept a taken namespace alive (the container holds it now, or never will).
    pub fn release(&self, path: &Path) {
        if let Err(e) = berth_sys::netns::remove(path) {
            tracing::warn!(path = %path.display(), "remove a spare network namespace: {e}");
        }
    }

    /// Removes every spare (start-up: left by a daemon that stopped; shutdown).
    pub fn clear(&self) {
        if let Ok(mut r) = self.ready.lock() {
            r.clear();
        }
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            self.release(&e.path());
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
                if let Err(e) = std::fs::create_dir_all(&me.dir) {
                    tracing::warn!(dir = %me.dir.display(), "make spare network namespaces: {e}");
                    break;
                }
                let n = me.next.fetch_add(1, Ordering::Relaxed);
                let path = me.dir.join(format!("{}-{n}", std::process::id()));
                match berth_sys::netns::create_with_loopback(&path) {
                    Ok(()) => {
                        if let Ok(mut r) = me.ready.lock() {
                            r.push(path);
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
