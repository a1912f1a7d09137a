//! File descriptor relative file system operations that never follow a symlink.
//!
//! Everything the extractor does inside the destination goes through a directory file descriptor that
//! was opened component by component with `O_NOFOLLOW | O_DIRECTORY`, and every final component is
//! created or removed with the `*at` calls relative to it. A symlink anywhere among the parents is an
//! error; a symlink as the last component is replaced, never written through.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::error::show;
use crate::ArchiveError;

/// Flags to open a directory that must not be a symlink.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Mode of parent directories that the archive did not describe (as Docker's `MkdirAll(.., 0755)`).
pub(crate) const IMPLICIT_DIR_MODE: u32 = 0o755;

/// A destination directory and a resolver of directories inside it.
pub(crate) struct Tree {
    root: Rc<OwnedFd>,
    root_path: PathBuf,
    /// The last directory resolved, by cleaned relative path; most archives list a directory's files
    /// together, so this saves re-walking from the root for every entry.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

impl Tree {
    /// Opens `dest`, which must be an existing directory. `dest` itself is trusted by the caller and
    /// may be reached through symlinks; nothing below it is.
    pub(crate) fn open(dest: &Path) -> Result<Self, ArchiveError> {
        let root = rfs::openat(
            CWD,
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ArchiveError::io("open destination directory", dest.to_path_buf(), e))?;
        Ok(Tree {
            root: Rc::new(root),
            root_path: dest.to_path_buf(),
            cache: None,
        })
    }

    /// A destination directory the caller already opened (`O_RDONLY | O_DIRECTORY`); `dest` names it in
    /// errors.
    pub(crate) fn from_fd(root: OwnedFd, dest: &Path) -> Self {
        Tree {
            root: Rc::new(root),
            root_path: dest.to_path_buf(),
            cache: None,
        }
    }

    /// The destination directory itself.
    pub(crate) fn root(&self) -> Rc<OwnedFd> {
        Rc::clone(&self.root)
    }

    /// Full path of a cleaned relative path, for error messages.
    pub(crate) fn full(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root_path.clone()
        } else {
            self.root_path.join(OsStr::from_bytes(rel))
        }
    }

    /// Forgets the cached directory; called whenever a directory is removed, so that no entry is ever
    /// written into a directory that is no longer part of the tree.
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Resolves the directory `rel` (a cleaned path, empty for the root) without following symlinks.
    /// With `create`, missing components are created with mode 0755; without, a missing component
    /// gives `Ok(None)`. `entry` names the archive entry being processed, for errors.
    pub(crate) fn dir(
        &mut self,
        rel: &[u8],
        create: bool,
        entry: &[u8],
    ) -> Result<Option<Rc<OwnedFd>>, ArchiveError> {
        if rel.is_empty() {
            return Ok(Some(self.root()));
        }
        let (mut cur, rest): (Rc<OwnedFd>, &[u8]) = match &self.cache {
            Some((key, fd)) if key.as_slice() == rel => return Ok(Some(Rc::clone(fd))),
            Some((key, fd)) if rel.starts_with(key) && rel.get(key.len()) == Some(&b'/') => {
                (Rc::clone(fd), &rel[key.len() + 1..])
            }
            _ => (self.root(), rel),
        };
        let base_len = rel.len() - rest.len();
        let mut end = base_len;
        for comp in rest.split(|b| *b == b'/') {
            end += comp.len();
            let so_far = &rel[..end];
            match self.step(&cur, comp, create, so_far, entry)? {
                Some(fd) => cur = Rc::new(fd),
                None => return Ok(None),
            }
            end += 1;
        }
        self.cache = Some((rel.to_vec(), Rc::clone(&cur)));
        Ok(Some(cur))
    }

    /// Opens one component below `cur` as a directory, creating it if asked.
    fn step(
        &self,
        cur: &OwnedFd,
        comp: &[u8],
        create: bool,
        so_far: &[u8],
        entry: &[u8],
    ) -> Result<Option<OwnedFd>, ArchiveError> {
        let name = OsStr::from_bytes(comp);
        let mut tried = false;
        let mut created = false;
        loop {
            match rfs::openat(cur, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => {
                    if created {
                        rfs::fchmod(&fd, Mode::from_raw_mode(IMPLICIT_DIR_MODE))
                            .map_err(|e| ArchiveError::io("set mode of", self.full(so_far), e))?;
                    }
                    return Ok(Some(fd));
                }
                Err(Errno::NOENT) if create && !tried => {
                    // Try once; a second ENOENT falls through to the error below.
                    tried = true;
                    match rfs::mkdirat(cur, name, Mode::from_raw_mode(IMPLICIT_DIR_MODE)) {
                        Ok(()) => created = true,
                        Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(ArchiveError::io("create directory", self.full(so_far), e))
                        }
                    }
                }
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(match lstat_at(cur, name) {
                        Ok(Some(st)) if file_type(&st) == FileType::Symlink => {
                            ArchiveError::SymlinkInPath { path: show(entry) }
                        }
                        _ => ArchiveError::NotADirectory { path: show(entry) },
                    })
                }
                Err(e) => return Err(ArchiveError::io("open directory", self.full(so_far), e)),
            }
        }
    }
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`; `Ok(None)` when nothing is there.
pub(crate) fn lstat_at(dir: &impl AsFd, name: &OsStr) -> io::Result<Option<Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file type of a stat result.
pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Removes `name` below `dir` whatever it is, recursing into directories through file descriptors
/// (never following symlinks). `path` is its full path, for errors. Missing is not an error.
pub(crate) fn remove_all_at(
    dir: &impl AsFd,
    name: &OsStr,
    path: &Path,
) -> Result<(), ArchiveError> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(ArchiveError::io("remove", path.to_path_buf(), e)),
    }
    let fd = match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(ArchiveError::io("open directory", path.to_path_buf(), e)),
    };
    for child in list_dir(&fd, path)? {
        let child = OsStr::from_bytes(&child);
        remove_all_at(&fd, child, &path.join(child))?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(ArchiveError::io("remove directory", path.to_path_buf(), e)),
    }
}

/// The names in a directory, without `.` and `..`, sorted bytewise.
pub(crate) fn list_dir(fd: &impl AsFd, path: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let dir = rfs::Dir::read_from(fd)
        .map_err(|e| ArchiveError::io("read directory", path.to_path_buf(), e))?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| ArchiveError::io("read directory", path.to_path_buf(), e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort_unstable();
    Ok(names)
}
