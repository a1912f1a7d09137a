//! `docker cp`'s engine side (the `/containers/{id}/archive` endpoints): stat a path of a container, archive
//! it, extract an upload into a directory. Running and stopped containers alike.
//!
//! Every path is resolved inside the container's root by the kernel (`openat2(RESOLVE_IN_ROOT)`, see
//! [`berth_sys::inroot`]), and the archive code below the resolved directory works on descriptors only, so a
//! container that swaps a symlink to `/` while we work can never make us read or write the host
//! (CVE-2018-15664). The root is the container's own view while it runs (`/proc/<pid>/root`: volumes, binds and
//! tmpfs mounts as the container sees them) and, when it does not, the overlay mounted with its binds and
//! volumes in a private mount namespace that disappears with the operation; the container's operation lock is
//! held meanwhile so that it cannot start under us.

use super::{Handle, MountType, Record, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_archive::{ArchiveError, ExtractOptions, Ownership, Resource, ResourceOptions};
use berth_sys::inroot::{self, FileKind, How, View, ViewBind};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `HEAD /containers/{id}/archive` reports (Docker's `ContainerPathStat`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (what Docker's clients decode).
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Options of an upload (`PUT /containers/{id}/archive`).
#[derive(Debug, Clone, Default)]
pub struct ExtractRequest {
    /// The directory to extract into (must exist; a final symlink is followed).
    pub path: String,
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give everything the container user's uid and gid (when the container has a user).
    pub copy_uid_gid: bool,
}

/// Go's `os.FileMode` type and permission bits for a file kind and `st_mode & 0o7777`.
pub fn go_file_mode(kind: FileKind, perm: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut mode = perm & 0o777;
    mode |= match kind {
        FileKind::File => 0,
        FileKind::Dir => DIR,
        FileKind::Symlink => SYMLINK,
        FileKind::Fifo => NAMED_PIPE,
        FileKind::Socket => SOCKET,
        FileKind::CharDevice => DEVICE | CHAR_DEVICE,
        FileKind::BlockDevice => DEVICE,
    };
    for (bit, go) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if perm & bit != 0 {
            mode |= go;
        }
    }
    mode
}

/// Go's `path.Clean` for a path made absolute.
pub fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Docker's `PreserveTrailingDotOrSeparator(Clean("/" + path), path)`: the absolute form of a requested path
/// that keeps what the trailing `/` or `/.` asserted (a directory, or a directory's content).
pub fn abs_path(path: &str) -> String {
    let mut out = clean_abs(path);
    let dot = path == "." || path.ends_with("/.");
    if dot && !out.ends_with("/.") {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if path.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Go's `filepath.Base`: the last element, `/` for the root.
pub fn go_base(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return if path.is_empty() {
            ".".into()
        } else {
            "/".into()
        };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Whether a path asserts a directory (trailing `/` or a final `.`).
fn asserts_dir(abs: &str) -> bool {
    abs.ends_with('/') || go_base(abs) == "."
}

/// What a running container has mounted by its runtime (not part of its file system in Docker's sense, which
/// archives the root, binds and volumes only): relative to the archived resource at `at`, the directories whose
/// content is left out. A user mount at the same place is kept.
fn runtime_mounts_below(rec: &Record, at: &str) -> Vec<Vec<u8>> {
    const RUNTIME: [&str; 3] = ["/dev", "/proc", "/sys"];
    RUNTIME
        .iter()
        .filter(|m| !rec.mounts.iter().any(|u| u.destination == **m))
        .filter_map(|m| {
            if *m == at {
                Some(Vec::new())
            } else if at == "/" {
                Some(m.as_bytes()[1..].to_vec())
            } else {
                m.strip_prefix(at)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(|r| r.as_bytes().to_vec())
            }
        })
        .collect()
}

/// The mount of `path` (a resolved container path): the one with the longest destination containing it.
fn mount_of<'r>(rec: &'r Record, path: &str) -> Option<&'r super::MountPoint> {
    rec.mounts
        .iter()
        .filter(|m| {
            let d = m.destination.trim_end_matches('/');
            path == d || path.starts_with(&format!("{d}/"))
        })
        .max_by_key(|m| m.destination.len())
}

/// A container root opened for one operation.
struct Access<'h> {
    view: View,
    running: bool,
    /// Held for stopped containers: no start while their root is mounted privately.
    _op: Option<tokio::sync::MutexGuard<'h, ()>>,
}

/// What a requested path is.
enum Located {
    /// `name` in the directory `parent` (a symlink is not followed).
    Entry { parent: OwnedFd, name: OsString },
    /// A directory reached through a trailing `/` or `/.` (symlinks followed).
    Dir(OwnedFd),
}

impl Engine {
    /// The root of a container for one operation: its live view while it runs, a private mount otherwise.
    async fn open_root<'h>(&self, h: &'h Arc<Handle>) -> Result<Access<'h>> {
        for _ in 0..3 {
            let rec = h.record();
            if matches!(rec.state.status, Status::Running | Status::Paused) && rec.state.pid > 0 {
                let pid = rec.state.pid;
                let view = tokio::task::spawn_blocking(move || inroot::process_view(pid))
                    .await
                    .map_err(EngineError::join)?;
                // The pid must still be this container's after the open: the record did not change and the
                // process is in the container's cgroup (when that can be read).
                let still = h.record();
                let members = self.cgroup_of(&h.id).pids();
                let ours = still.state.pid == pid
                    && matches!(still.state.status, Status::Running | Status::Paused)
                    && (members.is_empty() || members.contains(&pid));
                if let (Ok(view), true) = (view, ours) {
                    return Ok(Access {
                        view,
                        running: true,
                        _op: None,
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
            let guard = h.op.lock().await;
            let rec = h.record();
            if matches!(rec.state.status, Status::Running | Status::Paused) {
                continue;
            }
            let view = self.private_root(&rec).await?;
            return Ok(Access {
                view,
                running: false,
                _op: Some(guard),
            });
        }
        Err(EngineError::Conflict(format!(
            "container {} changed state while its filesystem was being opened; try again",
            h.id
        )))
    }

    /// The overlay of a stopped container with its binds, volumes and `/etc` files, in a private namespace.
    async fn private_root(&self, rec: &Record) -> Result<View> {
        let dir = self.paths(&rec.id).dir;
        let image_id = rec.image_id.clone();
        let layers = self
            .images_blocking(move |s| s.layer_dirs(&image_id))
            .await?;
        let lower = super::init_layer::lower(&self.inner.init_layer, layers);
        let overlay = berth_sys::mount::Overlay {
            lower,
            upper: dir.join("upper"),
            work: dir.join("work"),
            volatile: false,
        };
        let mut binds: Vec<ViewBind> = Vec::new();
        let readonly_root = rec.host_config.readonly_rootfs.unwrap_or(false);
        for (src, dest) in [
            (&rec.resolv_conf_path, "/etc/resolv.conf"),
            (&rec.hostname_path, "/etc/hostname"),
            (&rec.hosts_path, "/etc/hosts"),
        ] {
            if !src.is_empty()
                && Path::new(src).exists()
                && !rec.mounts.iter().any(|m| m.destination == dest)
            {
                binds.push(ViewBind {
                    source: PathBuf::from(src),
                    destination: dest.into(),
                    readonly: readonly_root,
                });
            }
        }
        for m in &rec.mounts {
            if matches!(m.kind, MountType::Bind | MountType::Volume) && !m.source.is_empty() {
                binds.push(ViewBind {
                    source: PathBuf::from(&m.source),
                    destination: m.destination.clone(),
                    readonly: !m.rw,
                });
            }
        }
        let rootfs = dir.join("rootfs");
        tokio::task::spawn_blocking(move || {
            inroot::private_view(&overlay, &rootfs, &binds, readonly_root)
        })
        .await
        .map_err(EngineError::join)?
        .map_err(|e| EngineError::Internal(format!("open the container's filesystem: {e}")))
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn stat_path(&self, name_or_id: &str, path: &str) -> Result<PathStat> {
        check_path(path)?;
        let h = self.lookup(name_or_id).await?;
        self.dir_made(&h).await?;
        let access = self.open_root(&h).await?;
        let view = access.view;
        let (p, n) = (path.to_string(), name_or_id.to_string());
        let stat = tokio::task::spawn_blocking(move || {
            let abs = abs_path(&p);
            locate(&view, &abs)
                .and_then(|loc| stat_of(&view, &abs, &loc))
                .map_err(|e| not_found_or(e, &p, &n))
        })
        .await
        .map_err(EngineError::join)??;
        Ok(stat)
    }

    /// `GET /containers/{id}/archive?path=`: the stat goes to `ready` (or the error that prevented it), then the
    /// tar of the path is written to `writer`. An error after `ready` was answered is returned.
    pub async fn archive_path(
        &self,
        name_or_id: &str,
        path: &str,
        ready: tokio::sync::oneshot::Sender<Result<PathStat>>,
        writer: impl Write + Send + 'static,
    ) -> Result<()> {
        let prepared = async {
            check_path(path)?;
            let h = self.lookup(name_or_id).await?;
            self.dir_made(&h).await?;
            Ok::<_, EngineError>(h)
        }
        .await;
        let h = match prepared {
            Ok(h) => h,
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        let access = match self.open_root(&h).await {
            Ok(a) => a,
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        let (view, running) = (access.view, access.running);
        let (p, n) = (path.to_string(), name_or_id.to_string());
        let rec = h.record();
        let found = tokio::task::spawn_blocking(move || {
            let abs = abs_path(&p);
            let r = locate(&view, &abs)
                .and_then(|loc| stat_of(&view, &abs, &loc).map(|s| (loc, s)))
                .map_err(|e| not_found_or(e, &p, &n));
            (view, abs, r)
        })
        .await
        .map_err(EngineError::join)?;
        let (view, abs, (located, stat)) = match found {
            (v, a, Ok(r)) => (v, a, r),
            (_, _, Err(e)) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        if ready.send(Ok(stat)).is_err() {
            return Ok(()); // the client went away
        }
        self.container_event(&h, "archive-path", &[]);
        let shown = abs.clone();
        tokio::task::spawn_blocking(move || {
            let mut opts = ResourceOptions {
                skip_pseudo_fs: running,
                ..ResourceOptions::default()
            };
            if running {
                let at = inroot::resolve(view.root(), &abs).unwrap_or_else(|_| clean_abs(&abs));
                opts.skip_content = runtime_mounts_below(&rec, &at);
            }
            let name = go_base(&abs);
            let display = PathBuf::from(&abs);
            let res = match &located {
                Located::Entry { parent, name: n } => Resource::Entry {
                    parent: parent.as_fd(),
                    name: n,
                },
                Located::Dir(fd) => Resource::Dir(fd.as_fd()),
            };
            let r = berth_archive::write_resource(res, name.as_bytes(), &display, writer, &opts);
            drop(view);
            r
        })
        .await
        .map_err(EngineError::join)?
        .map(|_| ())
        .map_err(|e| EngineError::Internal(format!("archive {shown}: {}", chain(&e))))?;
        drop(access._op);
        Ok(())
    }

    /// `PUT /containers/{id}/archive?path=`: extract the tar `reader` into a directory of the container.
    pub async fn extract_to_dir(
        &self,
        name_or_id: &str,
        req: ExtractRequest,
        reader: impl Read + Send + 'static,
    ) -> Result<()> {
        check_path(&req.path)?;
        let h = self.lookup(name_or_id).await?;
        self.dir_made(&h).await?;
        let access = self.open_root(&h).await?;
        let view = access.view;
        let rec = h.record();
        let n = name_or_id.to_string();
        tokio::task::spawn_blocking(move || extract_blocking(&view, &rec, &n, &req, reader))
            .await
            .map_err(EngineError::join)??;
        drop(access._op);
        self.container_event(&h, "extract-to-dir", &[]);
        Ok(())
    }
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(EngineError::Invalid("Path cannot be empty".into()));
    }
    Ok(())
}

/// Docker's error for a path that is not there, or the system error.
fn not_found_or(e: std::io::Error, path: &str, container: &str) -> EngineError {
    match e.raw_os_error() {
        Some(nix::libc::ENOENT) => EngineError::NotFoundMsg(format!(
            "Could not find the file {path} in container {container}"
        )),
        Some(nix::libc::ENOTDIR) => EngineError::Invalid(format!("{path}: not a directory")),
        Some(nix::libc::ELOOP) => {
            EngineError::Invalid(format!("{path}: too many levels of symbolic links"))
        }
        _ => EngineError::io(format!("stat {path}"), e),
    }
}

fn locate(view: &View, abs: &str) -> std::io::Result<Located> {
    if abs == "/" || asserts_dir(abs) {
        return Ok(Located::Dir(inroot::open(
            view.root(),
            Path::new(abs),
            How::Dir,
        )?));
    }
    let (dir, base) = abs.rsplit_once('/').unwrap_or(("", abs));
    let parent = inroot::open(
        view.root(),
        Path::new(if dir.is_empty() { "/" } else { dir }),
        How::PathDir,
    )?;
    // Fails when nothing is there.
    inroot::meta_at(parent.as_fd(), std::ffi::OsStr::new(base))?;
    Ok(Located::Entry {
        parent,
        name: OsString::from_vec(base.as_bytes().to_vec()),
    })
}

fn stat_of(view: &View, abs: &str, loc: &Located) -> std::io::Result<PathStat> {
    let meta = match loc {
        Located::Entry { parent, name } => inroot::meta_at(parent.as_fd(), name)?,
        Located::Dir(fd) => inroot::meta_fd(fd.as_fd())?,
    };
    let link_target = if meta.kind == FileKind::Symlink {
        inroot::resolve(view.root(), abs)?
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(meta.mtime_sec, meta.mtime_nsec)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok(PathStat {
        name: go_base(abs),
        size: i64::try_from(meta.size).unwrap_or(i64::MAX),
        mode: go_file_mode(meta.kind, meta.perm),
        mtime,
        link_target,
    })
}

/// The whole upload, on a blocking thread.
fn extract_blocking(
    view: &View,
    rec: &Record,
    container: &str,
    req: &ExtractRequest,
    reader: impl Read,
) -> Result<()> {
    let abs = abs_path(&req.path);
    let dir = inroot::open(view.root(), Path::new(&abs), How::Dir).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ENOTDIR) {
            EngineError::Invalid("extraction point is not a directory".into())
        } else {
            not_found_or(e, &req.path, container)
        }
    })?;
    let resolved = inroot::resolve(view.root(), &abs).unwrap_or_else(|_| clean_abs(&abs));
    let readonly = match mount_of(rec, &resolved) {
        Some(m) if !m.rw => Some("mounted volume is marked read-only"),
        Some(_) => None,
        None if rec.host_config.readonly_rootfs == Some(true) => {
            Some("container rootfs is marked read-only")
        }
        None => None,
    };
    if let Some(msg) = readonly {
        return Err(EngineError::Forbidden(msg.into()));
    }
    let ownership = match rec.config.user.as_deref() {
        Some(user) if req.copy_uid_gid && !user.is_empty() => {
            let ids = crate::user::resolve(user, |p| read_small(view, p))?;
            Ownership::Fixed {
                uid: ids.uid,
                gid: ids.gid,
            }
        }
        _ => Ownership::FromArchive,
    };
    let opts = ExtractOptions {
        ownership,
        no_overwrite_dir_non_dir: req.no_overwrite_dir_non_dir,
        refuse_absolute: true,
        ..ExtractOptions::default()
    };
    berth_archive::extract_resource(reader, dir.as_fd(), Path::new(&resolved), &opts)
        .map(|_| ())
        .map_err(|e| extract_error(e, rec))
}

/// A small regular file of the container (passwd, group), if there is one.
fn read_small(view: &View, path: &str) -> Option<Vec<u8>> {
    let fd = inroot::open(view.root(), Path::new(path), How::File).ok()?;
    if inroot::meta_fd(fd.as_fd()).ok()?.kind != FileKind::File {
        return None;
    }
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn extract_error(e: ArchiveError, rec: &Record) -> EngineError {
    let erofs = matches!(&e, ArchiveError::Io { source, .. } if source.raw_os_error() == Some(nix::libc::EROFS));
    if erofs {
        let msg = if rec.host_config.readonly_rootfs == Some(true) {
            "container rootfs is marked read-only"
        } else {
            "mounted volume is marked read-only"
        };
        return EngineError::Forbidden(msg.into());
    }
    match e {
        ArchiveError::Io { .. } | ArchiveError::Write { .. } => {
            EngineError::Internal(format!("extract: {}", chain(&e)))
        }
        e => EngineError::Invalid(chain(&e)),
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_what_their_trailing_characters_assert() {
        for (given, abs, base) in [
            ("etc/hosts", "/etc/hosts", "hosts"),
            ("/etc/", "/etc/", "etc"),
            ("/etc/.", "/etc/.", "."),
            ("/etc/./", "/etc/", "etc"),
            ("//etc//x/../hosts", "/etc/hosts", "hosts"),
            ("/", "/", "/"),
            (".", "/.", "."),
            ("/..", "/", "/"),
            ("../../etc/passwd", "/etc/passwd", "passwd"),
        ] {
            assert_eq!(abs_path(given), abs, "{given}");
            assert_eq!(go_base(&abs_path(given)), base, "{given}");
        }
        assert!(asserts_dir("/etc/"));
        assert!(asserts_dir("/etc/."));
        assert!(!asserts_dir("/etc"));
    }

    #[test]
    fn modes_are_gos_file_modes() {
        assert_eq!(go_file_mode(FileKind::File, 0o644), 0o644);
        assert_eq!(go_file_mode(FileKind::Dir, 0o755), 0x8000_01ed);
        assert_eq!(go_file_mode(FileKind::Symlink, 0o777), 0x0800_01ff);
        assert_eq!(go_file_mode(FileKind::Dir, 0o1777), 0x8010_01ff);
        assert_eq!(go_file_mode(FileKind::File, 0o4755), 0x0080_01ed);
        assert_eq!(go_file_mode(FileKind::CharDevice, 0o666), 0x0420_01b6);
        assert_eq!(go_file_mode(FileKind::Fifo, 0o600), 0x0200_0180);
    }

    #[test]
    fn the_stat_header_is_dockers_json() {
        let s = PathStat {
            name: "hosts".into(),
            size: 174,
            mode: 420,
            mtime: "2024-01-02T03:04:05.5Z".into(),
            link_target: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"name":"hosts","size":174,"mode":420,"mtime":"2024-01-02T03:04:05.5Z","linkTarget":""}"#
        );
    }

    #[test]
    fn runtime_mounts_are_named_relative_to_the_resource() {
        let rec = record();
        assert_eq!(
            runtime_mounts_below(&rec, "/"),
            [b"dev".to_vec(), b"proc".to_vec(), b"sys".to_vec()]
        );
        assert_eq!(runtime_mounts_below(&rec, "/dev"), [Vec::<u8>::new()]);
        assert!(runtime_mounts_below(&rec, "/etc").is_empty());
        assert!(runtime_mounts_below(&rec, "/dev/shm").is_empty());
    }

    fn record() -> Record {
        serde_json::from_value(serde_json::json!({
            "id": "x", "name": "/x", "created": "", "image_id": "", "image": "", "path": "", "args": [],
            "config": {}, "host_config": {}, "state": {"status": "created", "pid": 0, "exit_code": 0,
            "error": "", "started_at": "", "finished_at": "", "oom_killed": false},
            "restart_count": 0, "log_path": "", "hostname_path": "", "hosts_path": "", "resolv_conf_path": ""
        }))
        .unwrap()
    }

    #[test]
    fn paths_belong_to_the_deepest_mount() {
        let mut rec = record();
        for (d, rw) in [("/data", true), ("/data/ro", false)] {
            rec.mounts.push(super::super::MountPoint {
                destination: d.into(),
                rw,
                ..Default::default()
            });
        }
        assert_eq!(mount_of(&rec, "/data/x").map(|m| m.rw), Some(true));
        assert_eq!(mount_of(&rec, "/data/ro/x").map(|m| m.rw), Some(false));
        assert_eq!(mount_of(&rec, "/data/ro").map(|m| m.rw), Some(false));
        assert!(mount_of(&rec, "/database").is_none());
        assert!(mount_of(&rec, "/").is_none());
    }
}
