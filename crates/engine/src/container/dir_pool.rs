//! Container directories kept for reuse. A removed container whose directory holds nothing of its own (an
//! empty upper directory, the files every container gets) gives it to the next create, renamed, instead of
//! having it deleted and the next one made: seven inodes fewer made and freed per `run --rm` on the data
//! root's filesystem (ext4 frees an inode only after a delay, and each allocation looks past the recently
//! freed ones first).
//!
//! A directory is only taken when it holds exactly what [`super::create`] makes (plus the spec, which is
//! emptied for the next start to write its own into, and the log, which is removed): `upper` and `rootfs` empty and `rootfs` not a mount point, `work` (overlayfs's own
//! scratch space, which it cleans at every mount), and `hostname`, `hosts`, `resolv.conf` as regular files,
//! which the next create writes again. Anything else and it is deleted as before. Kept directories are named
//! `.free-<n>` beside the containers' own, their `work` emptied (as a new one is: overlayfs would clean it
//! at the next mount, on the start's path); start-up deletes any left over.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many directories are kept.
const KEEP: usize = 4;
/// The prefix of a kept directory's name (never a container id: ids are hex).
pub(crate) const PREFIX: &str = ".free-";
/// The files a container directory is made with ([`super::create`]).
const FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

pub(crate) struct DirPool {
    root: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    next: AtomicU64,
}

impl DirPool {
    /// A pool in `root` (the data root's `containers`), with nothing kept.
    pub(crate) fn new(root: PathBuf) -> DirPool {
        DirPool {
            root,
            free: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        }
    }

    /// Deletes the kept directories a daemon left behind (start-up).
    pub(crate) fn clear_stale(&self) {
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(PREFIX) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Moves a kept directory to `dir` (which does not exist yet); false when none is kept.
    pub(crate) fn take(&self, dir: &Path) -> bool {
        let Some(kept) = self.free.lock().ok().and_then(|mut f| f.pop()) else {
            return false;
        };
        if std::fs::rename(&kept, dir).is_ok() {
            return true;
        }
        let _ = std::fs::remove_dir_all(&kept);
        false
    }

    /// Takes the directory of removed container `id` (its root unmounted, its shim gone) if it holds only
    /// what a container directory is made with; the spec is emptied and the log removed. False when it is not
    /// taken: the caller deletes it.
    pub(crate) fn give(&self, dir: &Path, id: &str) -> bool {
        if self.free.lock().map_or(true, |f| f.len() >= KEEP) || !reusable(dir, id) {
            return false;
        }
        // overlayfs's scratch space, emptied here rather than at the next mount (on the start's path).
        for e in std::fs::read_dir(dir.join("work"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::remove_dir_all(e.path()).is_err() {
                return false;
            }
        }
        match std::fs::remove_file(dir.join(format!("{id}-json.log"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return false,
        }
        // The spec is emptied, not removed: the next start writes its own into the same file.
        if let Ok(f) = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("config.json"))
        {
            if f.set_len(0).is_err() {
                return false;
            }
        }
        let kept = self.root.join(format!(
            "{PREFIX}{}",
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        if std::fs::rename(dir, &kept).is_err() {
            return false;
        }
        match self.free.lock() {
            Ok(mut f) => {
                f.push(kept);
                true
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&kept);
                true
            }
        }
    }
}

/// Whether `dir` holds only what a container directory is made with (see the module's documentation).
fn reusable(dir: &Path, id: &str) -> bool {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    let log = format!("{id}-json.log");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut seen = 0;
    for e in entries {
        let Ok(e) = e else { return false };
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            return false;
        };
        let ok = match name.as_ref() {
            "upper" | "rootfs" => {
                // Empty, and on the directory's own filesystem (an unmounted root).
                m.is_dir()
                    && m.dev() == top.dev()
                    && std::fs::read_dir(e.path()).is_ok_and(|mut r| r.next().is_none())
            }
            "work" => m.is_dir() && m.dev() == top.dev(),
            "config.json" => m.is_file(),
            n if n == log => m.is_file(),
            n if FILES.contains(&n) => m.is_file(),
            _ => false,
        };
        if !ok {
            return false;
        }
        if matches!(name.as_ref(), "upper" | "rootfs" | "work") || FILES.contains(&name.as_ref()) {
            seen += 1;
        }
    }
    seen == 6
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn made(root: &Path, name: &str) -> PathBuf {
        let dir = root.join(name);
        for d in ["upper", "work/work", "rootfs"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for f in FILES {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join(format!("{name}-json.log")), "").unwrap();
        dir
    }

    #[test]
    fn an_untouched_directory_is_kept_and_given_to_the_next_create() {
        let d = tempfile::tempdir().unwrap();
        let pool = DirPool::new(d.path().to_path_buf());
        let dir = made(d.path(), ID);
        assert!(pool.give(&dir, ID));
        assert!(!dir.exists());
        let next = d.path().join("next");
        assert!(pool.take(&next));
        for p in [
            "upper",
            "work",
            "rootfs",
            "hostname",
            "hosts",
            "resolv.conf",
        ] {
            assert!(next.join(p).exists(), "{p}");
        }
        assert!(
            std::fs::read_dir(next.join("work"))
                .unwrap()
                .next()
                .is_none(),
            "overlayfs's scratch space is emptied"
        );
        assert_eq!(
            std::fs::read(next.join("config.json")).unwrap(),
            b"",
            "the last container's spec is not kept"
        );
        assert!(!next.join(format!("{ID}-json.log")).exists());
        assert!(!pool.take(&d.path().join("another")), "one was kept");
    }

    #[test]
    fn a_directory_with_anything_of_the_container_is_not_kept() {
        let d = tempfile::tempdir().unwrap();
        let pool = DirPool::new(d.path().to_path_buf());
        // Something written in the container's root.
        let dir = made(d.path(), ID);
        std::fs::write(dir.join("upper/secret"), "x").unwrap();
        assert!(!pool.give(&dir, ID));
        assert!(
            dir.join("upper/secret").exists(),
            "left for the caller to delete"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // A rotated log, a file of unknown purpose, a hosts that is a link.
        for spoil in [
            |d: &Path| std::fs::write(d.join(format!("{ID}-json.log.1")), "").unwrap(),
            |d: &Path| std::fs::write(d.join("other"), "").unwrap(),
            |d: &Path| {
                std::fs::remove_file(d.join("hosts")).unwrap();
                std::os::unix::fs::symlink("/etc/hosts", d.join("hosts")).unwrap();
            },
            |d: &Path| std::fs::remove_dir(d.join("rootfs")).unwrap(),
        ] {
            let dir = made(d.path(), ID);
            spoil(&dir);
            assert!(!pool.give(&dir, ID));
            std::fs::remove_dir_all(&dir).unwrap();
        }
        assert!(!pool.take(&d.path().join("next")));
    }

    #[test]
    fn at_most_a_few_are_kept_and_start_up_deletes_them() {
        let d = tempfile::tempdir().unwrap();
        let pool = DirPool::new(d.path().to_path_buf());
        for i in 0..KEEP + 2 {
            let id = format!("{i:064x}");
            let dir = made(d.path(), &id);
            assert_eq!(pool.give(&dir, &id), i < KEEP, "{i}");
        }
        let kept = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(PREFIX)
            })
            .count();
        assert_eq!(kept, KEEP);
        DirPool::new(d.path().to_path_buf()).clear_stale();
        assert!(std::fs::read_dir(d.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(PREFIX)));
    }
}
