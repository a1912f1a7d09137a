//! Copying one resource (a file, a directory tree, a symlink) out of or into a directory, as Docker's archive
//! endpoints (`GET`/`PUT /containers/{id}/archive`) and `docker cp` do.
//!
//! * [`write_resource`] archives an object reached through a directory descriptor, under the name the caller
//!   chooses (`hosts`, `etc/...`, `./...` for a directory's content, `/...` for a root), byte for byte as
//!   Docker names them, because clients rename entries by plain string replacement.
//! * [`extract_resource`] never writes into the destination while it reads the archive: the whole archive is
//!   first extracted (with the usual safety rules, plus the upload rules of [`ExtractOptions`]) into a fresh
//!   directory inside the destination, then conflicts are checked, then everything is moved into place with
//!   `renameat` (directories that already exist are merged). A corrupt, truncated or malicious archive therefore
//!   leaves the destination as it was. Every step works on directory descriptors and never follows a symlink,
//!   so a container that swaps symlinks under us can only rename its own files.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Stat, Timespec, Timestamps};

use crate::apply::{extract, Flavor, Ownership, Rules};
use crate::error::show;
use crate::fsat::{file_type, list_dir, lstat_at, remove_all_at, Tree, DIR_FLAGS};
use crate::path::join;
use crate::write::{Flavor as WriteFlavor, TreeWriter};
use crate::{ApplyStats, ArchiveError, Limits};

/// How [`write_resource`] writes entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOptions {
    /// Owner (uid, gid) written in place of the files' own.
    pub owner: Option<(u32, u32)>,
    /// Permission bits written in place of the files' own (a build's `COPY --chmod`); symlinks keep theirs.
    pub mode: Option<u32>,
    /// Do not descend into procfs, sysfs and other kernel interface mounts (a running container's
    /// `/proc`): their directory is written, their content is not.
    pub skip_pseudo_fs: bool,
    /// Directories, relative to the resource (empty: the resource itself), written without their
    /// content (a running container's `/dev`, which belongs to the runtime, not to its file system).
    pub skip_content: Vec<Vec<u8>>,
    /// Entries, relative to the resource, left out with everything below them (a build's `COPY --exclude`).
    pub skip: Vec<Vec<u8>>,
}

/// What [`write_resource`] archives.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// The object `name` in the directory `parent`, whatever it is (a symlink is archived as a symlink).
    Entry {
        parent: BorrowedFd<'a>,
        name: &'a OsStr,
    },
    /// An open, readable directory and everything below it.
    Dir(BorrowedFd<'a>),
}

/// Writes `resource` as a tar stream whose entries are named `archive_name` (the resource itself) and
/// `archive_name/...` (`/...` when it is `/`). `display` names the resource in errors. Returns the bytes
/// written. As [`crate::write_dir_tar`], nothing below the resource is ever reached through a symlink.
pub fn write_resource(
    resource: Resource<'_>,
    archive_name: &[u8],
    display: &Path,
    writer: impl Write,
    opts: &ResourceOptions,
) -> Result<u64, ArchiveError> {
    let mut tw = TreeWriter::new(writer, WriteFlavor::Tree);
    tw.base = archive_name.to_vec();
    tw.owner = opts.owner;
    tw.mode = opts.mode;
    tw.skip_pseudo_fs = opts.skip_pseudo_fs;
    tw.skip_content = opts.skip_content.clone();
    tw.skip = opts.skip.clone();
    tw.raw_names = true;
    let walked = match resource {
        Resource::Dir(fd) => fd
            .try_clone_to_owned()
            .map_err(|e| ArchiveError::io("duplicate descriptor of", display.to_path_buf(), e))
            .and_then(|fd| tw.directory_fd(&File::from(fd), b"", display)),
        Resource::Entry { parent, name } => match lstat_at(&parent, name) {
            Ok(Some(st)) => tw.child(&parent, name, &st, b"", b"", display),
            Ok(None) => Err(ArchiveError::io(
                "inspect",
                display.to_path_buf(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
            Err(e) => Err(ArchiveError::io("inspect", display.to_path_buf(), e)),
        },
    };
    tw.finish(walked)
}

/// How [`extract_resource`] extracts.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub limits: Limits,
    pub ownership: Ownership,
    /// Refuse to replace an existing directory with a non-directory or the reverse (Docker's
    /// `noOverwriteDirNonDir`); without it the existing object is removed first.
    pub no_overwrite_dir_non_dir: bool,
    /// Refuse entry names and hard link targets that start with `/` (server side uploads); otherwise
    /// they are taken relative to the destination.
    pub refuse_absolute: bool,
    /// Rename the leading `old` of every entry name to `new` (an empty `old` prefixes `new`), as
    /// Docker's `RebaseArchiveEntries` does on the client side.
    pub rebase: Option<(Vec<u8>, Vec<u8>)>,
    /// Leave out device nodes instead of refusing the archive (a client copying a container's files
    /// out; a daemon never creates devices).
    pub skip_devices: bool,
}

/// Extracts the plain tar `reader` into the directory `dest` (an open, readable directory), all or
/// nothing with respect to the archive (see the module documentation). `display` is how errors name
/// `dest` (the container path for uploads). Directories that exist are merged and take the metadata
/// the archive gives them; other existing objects are replaced.
pub fn extract_resource(
    reader: impl Read,
    dest: BorrowedFd<'_>,
    display: &Path,
    opts: &ExtractOptions,
) -> Result<ApplyStats, ArchiveError> {
    let tmp = temp_name();
    rfs::mkdirat(dest, &tmp, Mode::from_raw_mode(0o700))
        .map_err(|e| ArchiveError::io("create", display.join(&tmp), e))?;
    let result = extract_then_merge(reader, dest, &tmp, display, opts);
    let cleanup = remove_all_at(&dest, &tmp, &display.join(&tmp));
    let stats = result?;
    cleanup?;
    Ok(stats)
}

fn extract_then_merge(
    reader: impl Read,
    dest: BorrowedFd<'_>,
    tmp: &OsStr,
    display: &Path,
    opts: &ExtractOptions,
) -> Result<ApplyStats, ArchiveError> {
    let staging = rfs::openat(dest, tmp, DIR_FLAGS, Mode::empty())
        .map_err(|e| ArchiveError::io("open", display.join(tmp), e))?;
    let tree_fd = staging
        .try_clone()
        .map_err(|e| ArchiveError::io("duplicate descriptor of", display.join(tmp), e))?;
    let rules = Rules {
        limits: &opts.limits,
        flavor: Flavor::Copy,
        ownership: opts.ownership,
        refuse_absolute: opts.refuse_absolute,
        rebase: opts.rebase.clone(),
        skip_devices: opts.skip_devices,
    };
    let (stats, dirs) = extract(reader, Tree::from_fd(tree_fd, &display.join(tmp)), &rules)?;
    let explicit: HashSet<Vec<u8>> = dirs.into_iter().collect();
    let dest = dest
        .try_clone_to_owned()
        .map_err(|e| ArchiveError::io("duplicate descriptor of", display.to_path_buf(), e))?;
    if list_dir(&staging, display)?
        .iter()
        .any(|n| n == tmp.as_bytes())
    {
        // An entry named like our staging directory would replace it while we merge.
        return Err(ArchiveError::UnsafePath {
            path: show(tmp.as_bytes()),
        });
    }
    let merge = Merge {
        explicit: &explicit,
        ownership: opts.ownership,
        display,
    };
    if opts.no_overwrite_dir_non_dir {
        merge.check(&staging, &dest, b"")?;
    }
    merge.merge(&staging, &dest, b"")?;
    if explicit.contains(&b""[..]) {
        let st =
            rfs::fstat(&staging).map_err(|e| ArchiveError::io("inspect", display.join(tmp), e))?;
        merge.apply_dir_meta(&st, &dest, b"")?;
    }
    Ok(stats)
}

/// A name for the staging directory that no archive names by accident.
fn temp_name() -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    OsString::from(format!(
        ".berth-cp-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Moving a staged tree into place.
struct Merge<'a> {
    /// Directories the archive described (their metadata is applied to existing directories).
    explicit: &'a HashSet<Vec<u8>>,
    ownership: Ownership,
    display: &'a Path,
}

impl Merge<'_> {
    fn full(&self, rel: &[u8]) -> String {
        self.display
            .join(OsStr::from_bytes(rel))
            .display()
            .to_string()
    }

    /// Refuses, before anything moves, every directory/non-directory replacement.
    fn check(&self, src: &OwnedFd, dst: &OwnedFd, rel: &[u8]) -> Result<(), ArchiveError> {
        for name in list_dir(src, self.display)? {
            let child = join(rel, &name);
            let name = OsStr::from_bytes(&name);
            let (Some(s), Some(d)) = (
                self.lstat(src, name, &child)?,
                self.lstat(dst, name, &child)?,
            ) else {
                continue;
            };
            let (s_dir, d_dir) = (is_dir(&s), is_dir(&d));
            if d_dir && !s_dir {
                return Err(ArchiveError::OverwriteDirectory {
                    path: self.full(&child),
                    dest: self.display.display().to_string(),
                });
            }
            if s_dir && !d_dir {
                return Err(ArchiveError::OverwriteNonDirectory {
                    path: self.full(&child),
                    dest: self.display.display().to_string(),
                });
            }
            if s_dir {
                let (sfd, dfd) = (
                    self.open_dir(src, name, &child)?,
                    self.open_dir(dst, name, &child)?,
                );
                self.check(&sfd, &dfd, &child)?;
            }
        }
        Ok(())
    }

    fn merge(&self, src: &OwnedFd, dst: &OwnedFd, rel: &[u8]) -> Result<(), ArchiveError> {
        for name in list_dir(src, self.display)? {
            let child = join(rel, &name);
            let name = OsStr::from_bytes(&name);
            let Some(s) = self.lstat(src, name, &child)? else {
                continue;
            };
            match self.lstat(dst, name, &child)? {
                Some(d) if is_dir(&d) && is_dir(&s) => {
                    let sfd = self.open_dir(src, name, &child)?;
                    let dfd = self.open_dir(dst, name, &child)?;
                    self.merge(&sfd, &dfd, &child)?;
                    if self.explicit.contains(&child) {
                        self.apply_dir_meta(&s, &dfd, &child)?;
                    }
                    continue;
                }
                Some(d) if is_dir(&d) => {
                    remove_all_at(dst, name, Path::new(&self.full(&child)))?;
                }
                Some(_) if is_dir(&s) => {
                    rfs::unlinkat(dst, name, AtFlags::empty())
                        .map_err(|e| ArchiveError::io("remove", self.full(&child).into(), e))?;
                }
                _ => {}
            }
            // Replaces a non-directory atomically.
            match rfs::renameat(src, name, dst, name) {
                Ok(()) => {}
                // Below a mount point inside the destination (a volume): copied instead of moved.
                Err(rustix::io::Errno::XDEV) => {
                    match rfs::unlinkat(dst, name, AtFlags::empty()) {
                        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                        Err(e) => {
                            return Err(ArchiveError::io("remove", self.full(&child).into(), e))
                        }
                    }
                    self.copy_across(src, name, dst, &child, &s)?;
                }
                Err(e) => {
                    return Err(ArchiveError::io(
                        "move into place",
                        self.full(&child).into(),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Copies a staged object to another file system (what `renameat` cannot do): content, owner, mode and
    /// times; never following a symlink on either side.
    fn copy_across(
        &self,
        src: &OwnedFd,
        name: &OsStr,
        dst: &OwnedFd,
        rel: &[u8],
        st: &Stat,
    ) -> Result<(), ArchiveError> {
        let path = || -> std::path::PathBuf { self.full(rel).into() };
        let owner = (self.ownership != Ownership::Caller).then(|| {
            (
                Some(rfs::Uid::from_raw(st.st_uid)),
                Some(rfs::Gid::from_raw(st.st_gid)),
            )
        });
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        match file_type(st) {
            FileType::Directory => {
                rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| ArchiveError::io("create directory", path(), e))?;
                let sfd = self.open_dir(src, name, rel)?;
                let dfd = self.open_dir(dst, name, rel)?;
                for child in list_dir(&sfd, self.display)? {
                    let child_rel = join(rel, &child);
                    let child = OsStr::from_bytes(&child);
                    if let Some(cst) = self.lstat(&sfd, child, &child_rel)? {
                        self.copy_across(&sfd, child, &dfd, &child_rel, &cst)?;
                    }
                }
                self.apply_dir_meta(st, &dfd, rel)
            }
            FileType::RegularFile => {
                let from = rfs::openat(
                    src,
                    name,
                    rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::NOFOLLOW
                        | rustix::fs::OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ArchiveError::io("open", path(), e))?;
                let to = rfs::openat(
                    dst,
                    name,
                    rustix::fs::OFlags::WRONLY
                        | rustix::fs::OFlags::CREATE
                        | rustix::fs::OFlags::EXCL
                        | rustix::fs::OFlags::NOFOLLOW
                        | rustix::fs::OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| ArchiveError::io("create", path(), e))?;
                let (mut from, mut to) = (File::from(from), File::from(to));
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| ArchiveError::io("copy", path(), e))?;
                if let Some((uid, gid)) = owner {
                    rfs::fchown(&to, uid, gid)
                        .map_err(|e| ArchiveError::io("set owner of", path(), e))?;
                }
                rfs::fchmod(&to, mode).map_err(|e| ArchiveError::io("set mode of", path(), e))?;
                rfs::futimens(&to, &times(st))
                    .map_err(|e| ArchiveError::io("set times of", path(), e))
            }
            FileType::Symlink | FileType::Fifo => {
                if file_type(st) == FileType::Symlink {
                    let target = rfs::readlinkat(src, name, Vec::new())
                        .map_err(|e| ArchiveError::io("read symlink", path(), e))?;
                    rfs::symlinkat(OsStr::from_bytes(target.as_bytes()), dst, name)
                        .map_err(|e| ArchiveError::io("create symlink", path(), e))?;
                } else {
                    rfs::mknodat(dst, name, FileType::Fifo, mode, 0)
                        .map_err(|e| ArchiveError::io("create fifo", path(), e))?;
                    rfs::chmodat(dst, name, mode, AtFlags::empty())
                        .map_err(|e| ArchiveError::io("set mode of", path(), e))?;
                }
                if let Some((uid, gid)) = owner {
                    rfs::chownat(dst, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| ArchiveError::io("set owner of", path(), e))?;
                }
                rfs::utimensat(dst, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ArchiveError::io("set times of", path(), e))
            }
            // Nothing else can be staged (devices are refused, sockets never archived).
            _ => Ok(()),
        }
    }

    /// Gives an existing directory the owner, mode and times the archive gave its staged copy.
    fn apply_dir_meta(&self, st: &Stat, dir: &OwnedFd, rel: &[u8]) -> Result<(), ArchiveError> {
        let path = || self.full(rel).into();
        if self.ownership != Ownership::Caller {
            rfs::fchown(
                dir,
                Some(rfs::Uid::from_raw(st.st_uid)),
                Some(rfs::Gid::from_raw(st.st_gid)),
            )
            .map_err(|e| ArchiveError::io("set owner of", path(), e))?;
        }
        rfs::fchmod(dir, Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(|e| ArchiveError::io("set mode of", path(), e))?;
        rfs::futimens(dir, &times(st)).map_err(|e| ArchiveError::io("set times of", path(), e))
    }

    fn lstat(&self, dir: &OwnedFd, name: &OsStr, rel: &[u8]) -> Result<Option<Stat>, ArchiveError> {
        lstat_at(dir, name).map_err(|e| ArchiveError::io("inspect", self.full(rel).into(), e))
    }

    fn open_dir(&self, dir: &OwnedFd, name: &OsStr, rel: &[u8]) -> Result<OwnedFd, ArchiveError> {
        rfs::openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
            // Swapped for a symlink (or something else) under us: never followed.
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => ArchiveError::SymlinkInPath {
                path: self.full(rel),
            },
            e => ArchiveError::io("open directory", self.full(rel).into(), e),
        })
    }
}

/// A stat's modification time as both times (what the extractor sets).
fn times(st: &Stat) -> Timestamps {
    let t = Timespec {
        tv_sec: st.st_mtime,
        tv_nsec: st.st_mtime_nsec as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn is_dir(st: &Stat) -> bool {
    file_type(st) == FileType::Directory
}
