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
//!
//! An auto-remove container's directory is kept with its root still mounted ([`Root`]): the next
//! auto-remove container of the same image takes it mounted, and no overlay is mounted on its start's path
//! (a mount makes overlayfs's scratch directories and test files: on a data root where containers come
//! and go, ext4 looks past every recently freed inode for each new one, and the mount cost most of a
//! millisecond of the start's path here). Its upper directory must be empty: the mount then shows exactly
//! the image's layers, as a new one would. A kept mount pins its lower directories: it is only taken for
//! the same directories (device and inode, which cannot be reused while the mount holds them), and an
//! image removal unmounts every kept root ([`DirPool::release_mounted`]) so that no deleted layer's space
//! stays taken.

use berth_sys::mount::unmount;
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
    free: Mutex<Vec<Kept>>,
    next: AtomicU64,
}

/// A kept directory, and the root mounted in it if any.
struct Kept {
    path: PathBuf,
    root: Option<Root>,
}

/// The lower directories of an overlay root mounted by the daemon (top-most first), with their device and
/// inode numbers when it was mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Root {
    lower: Vec<PathBuf>,
    ids: Vec<(u64, u64)>,
}

impl Root {
    /// The root over `lower` as the directories are now.
    pub(crate) fn of(lower: Vec<PathBuf>) -> std::io::Result<Root> {
        let ids = lower
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| (m.dev(), m.ino())))
            .collect::<std::io::Result<_>>()?;
        Ok(Root { lower, ids })
    }

    pub(crate) fn lower(&self) -> &[PathBuf] {
        &self.lower
    }
}

/// What [`DirPool::take`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Nothing: the caller makes the directory.
    Nothing,
    /// A directory with nothing mounted in it.
    Dir,
    /// A directory with the root asked for mounted in it.
    Mounted,
}

/// Whether `rootfs` is the root of an overlay mount.
fn overlay_mounted(rootfs: &Path) -> bool {
    berth_sys::mount::is_mounted(rootfs)
        && nix::sys::statfs::statfs(rootfs)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
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

    /// Deletes the kept directories a daemon left behind (start-up), their roots unmounted first.
    pub(crate) fn clear_stale(&self) {
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(PREFIX) {
                delete(&e.path());
            }
        }
    }

    /// Moves a kept directory to `dir` (which does not exist yet): one with `want` mounted in it if there is
    /// one, else one with nothing mounted, else any (its root unmounted).
    pub(crate) fn take(&self, dir: &Path, want: Option<&Root>) -> Taken {
        let kept = {
            let Ok(mut free) = self.free.lock() else {
                return Taken::Nothing;
            };
            let at = free
                .iter()
                .rposition(|k| want.is_some() && k.root.as_ref() == want)
                .or_else(|| free.iter().rposition(|k| k.root.is_none()))
                .or_else(|| free.len().checked_sub(1));
            match at {
                Some(i) => free.remove(i),
                None => return Taken::Nothing,
            }
        };
        let mounted = kept.root.is_some() && kept.root.as_ref() == want;
        if kept.root.is_some() && !mounted && unmount(&kept.path.join("rootfs")).is_err() {
            delete(&kept.path);
            return Taken::Nothing;
        }
        if std::fs::rename(&kept.path, dir).is_ok() {
            return if mounted { Taken::Mounted } else { Taken::Dir };
        }
        delete(&kept.path);
        Taken::Nothing
    }

    /// Takes the directory of removed container `id` with its root still mounted over `root` (its shim
    /// gone), if the root is an overlay and the directory holds only what a container directory is made
    /// with, its upper directory empty. False when it is not taken: the caller unmounts the root.
    pub(crate) fn give_mounted(&self, dir: &Path, id: &str, root: Root) -> bool {
        if self.free.lock().map_or(true, |f| f.len() >= KEEP)
            || !overlay_mounted(&dir.join("rootfs"))
            || !reusable(dir, id, true)
        {
            return false;
        }
        self.keep(dir, id, Some(root))
    }

    /// Unmounts the roots of the kept directories (an image was removed: no kept mount may hold on to its
    /// layers; at shutdown, nothing is left mounted). The directories stay kept, unmounted.
    pub(crate) fn release_mounted(&self) {
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        free.retain_mut(|k| {
            if k.root.is_none() {
                return true;
            }
            k.root = None;
            if unmount(&k.path.join("rootfs")).is_ok() {
                return true;
            }
            delete(&k.path);
            false
        });
    }

    /// Takes the directory of removed container `id` (its root unmounted, its shim gone) if it holds only
    /// what a container directory is made with; the spec is emptied and the log removed. False when it is not
    /// taken: the caller deletes it.
    pub(crate) fn give(&self, dir: &Path, id: &str) -> bool {
        if self.free.lock().map_or(true, |f| f.len() >= KEEP) || !reusable(dir, id, false) {
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
        self.keep(dir, id, None)
    }

    /// Keeps `dir` (checked by the caller): the log removed, the spec emptied, renamed. The log is
    /// removed, not emptied for the next container: a client may still read it through a descriptor it
    /// opened (docker-py's `run(remove=True)` removes the container before it reads its logs).
    fn keep(&self, dir: &Path, id: &str, root: Option<Root>) -> bool {
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
                f.push(Kept { path: kept, root });
                true
            }
            Err(_) => {
                delete(&kept);
                true
            }
        }
    }
}

/// Deletes a kept directory, its root unmounted first (never through a mount).
fn delete(dir: &Path) {
    let rootfs = dir.join("rootfs");
    let _ = unmount(&rootfs);
    if berth_sys::mount::is_mounted(&rootfs) {
        tracing::warn!("{} is still mounted: left in place", rootfs.display());
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Whether `dir` holds only what a container directory is made with (see the module's documentation); with
/// `mounted`, its root is mounted (its mount point is not looked at, overlayfs's scratch space not emptied).
fn reusable(dir: &Path, id: &str, mounted: bool) -> bool {
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
            "rootfs" if mounted => m.is_dir(),
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
        std::fs::write(dir.join(format!("{name}-json.log")), "a line").unwrap();
        dir
    }

    #[test]
    fn an_untouched_directory_is_kept_and_given_to_the_next_create() {
        let d = tempfile::tempdir().unwrap();
        let pool = DirPool::new(d.path().to_path_buf());
        let dir = made(d.path(), ID);
        // A client reading the removed container's log (docker-py reads it after the removal).
        let mut reading = std::fs::File::open(dir.join(format!("{ID}-json.log"))).unwrap();
        assert!(pool.give(&dir, ID));
        assert!(!dir.exists());
        let mut log = String::new();
        std::io::Read::read_to_string(&mut reading, &mut log).unwrap();
        assert_eq!(log, "a line", "the log is still there for whoever reads it");
        let next = d.path().join("next");
        assert_eq!(pool.take(&next, None), Taken::Dir);
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
        assert!(
            !next.join("next-json.log").exists(),
            "the last container's log is not the next one's"
        );
        assert_eq!(
            pool.take(&d.path().join("another"), None),
            Taken::Nothing,
            "one was kept"
        );
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
        assert_eq!(pool.take(&d.path().join("next"), None), Taken::Nothing);
    }

    /// An overlay over `lower` mounted on `dir`'s root, as the daemon mounts an auto-remove container's.
    fn mount_root(dir: &Path, lower: &Path) -> Root {
        let root = Root::of(vec![lower.to_path_buf()]).unwrap();
        let ov = berth_sys::mount::Overlay {
            lower: vec![lower.to_path_buf()],
            upper: dir.join("upper"),
            work: dir.join("work"),
            volatile: true,
        };
        berth_sys::mount::mount_overlay(&ov, &dir.join("rootfs")).unwrap();
        root
    }

    /// Unmounts whatever a failed test left mounted below `root`.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let prefix = self.0.display().to_string();
            for mp in info.lines().filter_map(|l| l.split(' ').nth(4)) {
                if mp.starts_with(&prefix) {
                    let _ = unmount(Path::new(mp));
                }
            }
        }
    }

    #[test]
    fn a_root_is_kept_mounted_for_the_same_layers_only() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root to mount overlays");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let _guard = Unmount(d.path().to_path_buf());
        let layer = |name: &str| {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.join("bin")).unwrap();
            std::fs::write(p.join("bin").join(name), name).unwrap();
            p
        };
        let (a, b) = (layer("a"), layer("b"));
        let pool = DirPool::new(d.path().to_path_buf());

        // A clean root is kept mounted, and given for the same layers as they are.
        let dir = made(d.path(), ID);
        let root = mount_root(&dir, &a);
        assert!(pool.give_mounted(&dir, ID, root));
        let next = d.path().join("next");
        let want = Root::of(vec![a.clone()]).unwrap();
        assert_eq!(pool.take(&next, Some(&want)), Taken::Mounted);
        assert!(overlay_mounted(&next.join("rootfs")));
        assert!(
            next.join("rootfs/bin/a").exists(),
            "the layer shows through"
        );
        assert!(!next.join(format!("{ID}-json.log")).exists());

        // Something the container left in its upper directory: not kept (the caller unmounts it).
        std::fs::write(next.join("rootfs/left"), "x").unwrap();
        assert!(!pool.give_mounted(&next, "next", want.clone()));
        unmount(&next.join("rootfs")).unwrap();
        std::fs::remove_dir_all(&next).unwrap();

        // Asked for other layers, a mounted one is given unmounted (nothing else is kept).
        let dir = made(d.path(), ID);
        let root = mount_root(&dir, &a);
        assert!(pool.give_mounted(&dir, ID, root));
        let other = Root::of(vec![b.clone(), a.clone()]).unwrap();
        assert_eq!(pool.take(&next, Some(&other)), Taken::Dir);
        assert!(!berth_sys::mount::is_mounted(&next.join("rootfs")));
        std::fs::remove_dir_all(&next).unwrap();

        // A layer deleted and made again at the same path is not the one the kept mount shows.
        let dir = made(d.path(), ID);
        let root = mount_root(&dir, &a);
        assert!(pool.give_mounted(&dir, ID, root));
        std::fs::remove_dir_all(&a).unwrap();
        let a = layer("a");
        let want = Root::of(vec![a.clone()]).unwrap();
        assert_eq!(pool.take(&next, Some(&want)), Taken::Dir);
        assert!(!berth_sys::mount::is_mounted(&next.join("rootfs")));
        std::fs::remove_dir_all(&next).unwrap();

        // An image removal unmounts every kept root; start-up deletes kept directories, mounted or not.
        let dir = made(d.path(), ID);
        let root = mount_root(&dir, &a);
        assert!(pool.give_mounted(&dir, ID, root));
        let kept = pool.free.lock().unwrap()[0].path.clone();
        pool.release_mounted();
        assert!(!berth_sys::mount::is_mounted(&kept.join("rootfs")));
        assert_eq!(pool.take(&next, Some(&want)), Taken::Dir);
        std::fs::remove_dir_all(&next).unwrap();
        let dir = made(d.path(), ID);
        let root = mount_root(&dir, &a);
        assert!(pool.give_mounted(&dir, ID, root));
        let kept = pool.free.lock().unwrap()[0].path.clone();
        DirPool::new(d.path().to_path_buf()).clear_stale();
        assert!(!kept.exists());
        assert!(
            a.join("bin/a").exists(),
            "nothing deleted through the mount"
        );
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
