//! Extraction of layer tars (with whiteout conversion) and plain rootfs tars into a directory.
//!
//! The rules, in the spirit of containerd's and runc's hardening:
//! * names are cleaned lexically; one that climbs above the root with `..` rejects the whole archive
//!   ([`ArchiveError::UnsafePath`]); an absolute name is relative to the destination;
//! * parents are resolved component by component with `O_NOFOLLOW | O_DIRECTORY`; a symlink among
//!   them is an error ([`ArchiveError::SymlinkInPath`]); an entry over an existing symlink replaces
//!   the symlink;
//! * hard links must name an existing regular file inside the destination, reached the same way;
//! * character and block devices are refused ([`ArchiveError::DeviceNode`]): Docker creates them when
//!   running as root, but no image needs them and a device in a rootfs is a way out of a container;
//!   FIFOs are created;
//! * xattrs from PAX `SCHILY.xattr.*` records are applied except overlayfs' own (`trusted.overlay.*`,
//!   `user.overlay.*`), which an archive may not fake;
//! * [`Limits`] bound the data, the entry count and (fixed) the header metadata per entry;
//! * a stream that is corrupt, truncated or ends without the end-of-archive marker is an error,
//!   never a partial success. The caller extracts into a fresh directory and discards it on error.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags};
use tar::EntryType;

use crate::error::{show, LimitKind};
use crate::fsat::{file_type, lstat_at, remove_all_at, Tree};
use crate::guard::{GuardState, Guarded, METADATA_BUDGET};
use crate::meta::Meta;
use crate::path::{clean, join, split_last, whiteout, Refusal, Whiteout};
use crate::{ApplyStats, ArchiveError, Limits};

/// Size of the copy buffer.
const BUF_SIZE: usize = 128 * 1024;

/// Extracts a plain (already decompressed) layer tar into `dest`, an existing (usually empty)
/// directory, so that `dest` can serve as an overlayfs lowerdir: `.wh.NAME` entries become 0:0
/// character devices named `NAME` (removing whatever was there) and `.wh..wh..opq` sets
/// `trusted.overlay.opaque=y` on its directory. Reads the stream to its end.
///
/// On error `dest` holds part of the layer and must be discarded.
pub fn apply_layer(
    reader: impl Read,
    dest: &Path,
    limits: &Limits,
) -> Result<ApplyStats, ArchiveError> {
    extract(
        reader,
        Tree::open(dest)?,
        &Rules::new(limits, Flavor::Layer),
    )
    .map(|(s, _)| s)
}

/// Extracts a plain rootfs tar into `dest` with the same safety rules as [`apply_layer`] but without
/// whiteout conversion: `.wh.` names are ordinary files. Used when a flat rootfs is imported.
pub fn extract_plain(
    reader: impl Read,
    dest: &Path,
    limits: &Limits,
) -> Result<ApplyStats, ArchiveError> {
    extract(
        reader,
        Tree::open(dest)?,
        &Rules::new(limits, Flavor::Plain),
    )
    .map(|(s, _)| s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Layer,
    Plain,
    /// The archive endpoints' uploads (`docker cp`): a plain tree, with the extra rules of [`Rules`].
    Copy,
}

/// Who owns what an extraction creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// The uid and gid each entry carries.
    #[default]
    FromArchive,
    /// Whoever runs the extraction (no chown; what `docker cp` does on the client side).
    Caller,
    /// One owner for everything (Docker's `copyUIDGID` with the container's user).
    Fixed { uid: u32, gid: u32 },
}

/// How one extraction behaves beyond the safety rules every flavor keeps.
#[derive(Debug, Clone)]
pub(crate) struct Rules<'l> {
    pub(crate) limits: &'l Limits,
    pub(crate) flavor: Flavor,
    pub(crate) ownership: Ownership,
    /// Refuse names that start with `/` instead of taking them relative to the destination.
    pub(crate) refuse_absolute: bool,
    /// Rename the first component of every name (and hard link target): `(old, new)`, where an empty
    /// `old` prefixes `new` (Docker's `RebaseArchiveEntries`).
    pub(crate) rebase: Option<(Vec<u8>, Vec<u8>)>,
    /// Skip character and block devices instead of refusing them.
    pub(crate) skip_devices: bool,
}

impl<'l> Rules<'l> {
    pub(crate) fn new(limits: &'l Limits, flavor: Flavor) -> Self {
        Rules {
            limits,
            flavor,
            ownership: Ownership::FromArchive,
            refuse_absolute: false,
            rebase: None,
            skip_devices: false,
        }
    }
}

/// Docker's rebase of an entry name: the leading `old` becomes `new`.
pub(crate) fn rebase_name(raw: &[u8], rebase: &Option<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    match rebase {
        Some((old, new)) if old.is_empty() => [new.as_slice(), raw].concat(),
        Some((old, new)) if raw.starts_with(old) => [new.as_slice(), &raw[old.len()..]].concat(),
        _ => raw.to_vec(),
    }
}

/// Extracts into `tree`; returns the stats and the directories the archive described (cleaned
/// relative paths, empty for the root).
pub(crate) fn extract<R: Read>(
    reader: R,
    tree: Tree,
    rules: &Rules<'_>,
) -> Result<(ApplyStats, Vec<Vec<u8>>), ArchiveError> {
    let state = Rc::new(GuardState::default());
    let mut archive = tar::Archive::new(Guarded::new(reader, Rc::clone(&state)));
    let mut ex = Extractor {
        tree,
        limits: rules.limits,
        flavor: rules.flavor,
        rules,
        state: Rc::clone(&state),
        stats: ApplyStats::default(),
        used: 0,
        buf: vec![0; BUF_SIZE],
        dir_times: Vec::new(),
    };
    {
        let mut entries = archive.entries().map_err(|e| ex.stream_error(e))?;
        loop {
            state.arm();
            let next = entries.next();
            state.disarm();
            match next {
                None => break,
                Some(Ok(entry)) => ex.entry(entry)?,
                Some(Err(e)) => return Err(ex.stream_error(e)),
            }
        }
    }
    if state.eof() {
        return Err(ArchiveError::Corrupt {
            offset: state.pos(),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended without the end-of-archive marker",
            ),
        });
    }
    let mut rest = archive.into_inner();
    ex.drain_trailing(&mut rest)?;
    let dirs = ex.dir_times.iter().map(|(rel, _)| rel.clone()).collect();
    ex.finish_dirs()?;
    Ok((ex.stats, dirs))
}

struct Extractor<'l> {
    tree: Tree,
    limits: &'l Limits,
    flavor: Flavor,
    rules: &'l Rules<'l>,
    state: Rc<GuardState>,
    stats: ApplyStats,
    /// Entry data consumed so far, against `limits.max_total_bytes`.
    used: u64,
    buf: Vec<u8>,
    /// Directories whose times are set at the end, once nothing more is created inside them.
    dir_times: Vec<(Vec<u8>, Timestamps)>,
}

impl Extractor<'_> {
    /// Maps an error of the input stream: ours if the metadata budget tripped, else corruption.
    fn stream_error(&self, source: io::Error) -> ArchiveError {
        if self.state.tripped() {
            ArchiveError::TooLarge {
                what: LimitKind::Metadata,
                max: METADATA_BUDGET,
            }
        } else {
            ArchiveError::Corrupt {
                offset: self.state.pos(),
                source,
            }
        }
    }

    /// The metadata of an entry, with the ownership rule applied.
    fn meta<E: Read>(
        &self,
        entry: &mut tar::Entry<'_, E>,
        raw: &[u8],
    ) -> Result<Meta, ArchiveError> {
        let mut meta = Meta::read(entry, raw, self.state.pos())?;
        match self.rules.ownership {
            Ownership::FromArchive => {}
            Ownership::Caller => meta.chown = false,
            Ownership::Fixed { uid, gid } => (meta.uid, meta.gid) = (uid, gid),
        }
        Ok(meta)
    }

    fn corrupt(&self, message: &'static str) -> ArchiveError {
        ArchiveError::Corrupt {
            offset: self.state.pos(),
            source: io::Error::new(io::ErrorKind::InvalidData, message),
        }
    }

    fn entry<E: Read>(&mut self, mut entry: tar::Entry<'_, E>) -> Result<(), ArchiveError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(ArchiveError::TooLarge {
                what: LimitKind::Entries,
                max: self.limits.max_entries,
            });
        }
        let size = entry.size();
        if self.used.saturating_add(size) > self.limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                what: LimitKind::TotalBytes,
                max: self.limits.max_total_bytes,
            });
        }
        let raw = rebase_name(&entry.path_bytes(), &self.rules.rebase);
        self.dispatch(&mut entry, &raw, size)?;
        // Whatever data the handler did not consume is read here, so that the parser only ever reads
        // headers under the metadata budget.
        self.copy(&mut entry, None, &raw)?;
        Ok(())
    }

    fn dispatch<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        raw: &[u8],
        size: u64,
    ) -> Result<(), ArchiveError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            tracing::debug!(entry = %show(raw), "skipping pax global header");
            return Ok(());
        }
        if self.rules.refuse_absolute && raw.starts_with(b"/") {
            return Err(ArchiveError::AbsolutePath { path: show(raw) });
        }
        let rel = clean(raw).map_err(|r| refused(r, raw))?;
        let (parent, name) = split_last(&rel);
        if self.flavor == Flavor::Layer && !rel.is_empty() {
            match whiteout(name) {
                Whiteout::No => {}
                Whiteout::Opaque => return self.opaque(parent, raw),
                Whiteout::Meta => {
                    tracing::debug!(entry = %show(raw), "ignoring aufs metadata entry");
                    return Ok(());
                }
                Whiteout::Remove(target) => return self.whiteout(entry, parent, target, raw),
                Whiteout::Invalid => return Err(ArchiveError::UnsafePath { path: show(raw) }),
            }
        }
        // Old (v7) archives mark directories with a regular type and a trailing slash.
        let old_dir = entry.header().as_bytes()[156] == 0 && raw.ends_with(b"/");
        if kind.is_dir() || old_dir {
            return self.directory(entry, &rel, raw);
        }
        if rel.is_empty() {
            return Err(ArchiveError::InvalidEntry {
                path: show(raw),
                reason: "only a directory can describe the root",
            });
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &rel, raw, size)
            }
            EntryType::Symlink => self.symlink(entry, &rel, raw),
            EntryType::Link => self.hardlink(entry, &rel, raw),
            EntryType::Fifo => self.fifo(entry, &rel, raw),
            EntryType::Char | EntryType::Block if self.rules.skip_devices => {
                tracing::debug!(entry = %show(raw), "skipping device node");
                Ok(())
            }
            EntryType::Char | EntryType::Block => Err(ArchiveError::DeviceNode { path: show(raw) }),
            other => Err(ArchiveError::UnsupportedEntry {
                path: show(raw),
                kind: char::from(other.as_byte()),
            }),
        }
    }

    /// Resolves (creating as needed) the parent directory of an entry.
    fn parent(&mut self, parent: &[u8], raw: &[u8]) -> Result<Rc<OwnedFd>, ArchiveError> {
        self.tree
            .dir(parent, true, raw)?
            .ok_or_else(|| ArchiveError::NotADirectory { path: show(raw) })
    }

    /// Makes room for `name` in `dir`: removes what is there, unless it is a directory and `keep_dir`.
    /// Returns whether a directory was kept.
    fn make_room(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        rel: &[u8],
        keep_dir: bool,
    ) -> Result<bool, ArchiveError> {
        let existing =
            lstat_at(dir, name).map_err(|e| ArchiveError::io("inspect", self.tree.full(rel), e))?;
        match existing {
            None => Ok(false),
            Some(st) if file_type(&st) == FileType::Directory => {
                if keep_dir {
                    return Ok(true);
                }
                self.tree.invalidate();
                remove_all_at(dir, name, &self.tree.full(rel))?;
                Ok(false)
            }
            Some(_) => {
                rfs::unlinkat(dir, name, AtFlags::empty())
                    .map_err(|e| ArchiveError::io("remove", self.tree.full(rel), e))?;
                Ok(false)
            }
        }
    }

    fn directory<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        rel: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let meta = self.meta(entry, raw)?;
        if !rel.is_empty() {
            let (parent, name) = split_last(rel);
            let pfd = self.parent(parent, raw)?;
            let name = OsStr::from_bytes(name);
            if !self.make_room(&pfd, name, rel, true)? {
                rfs::mkdirat(&*pfd, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| ArchiveError::io("create directory", self.tree.full(rel), e))?;
            }
        }
        let fd = self
            .tree
            .dir(rel, false, raw)?
            .ok_or_else(|| ArchiveError::NotADirectory { path: show(raw) })?;
        meta.apply_fd(&*fd, &self.tree, rel)?;
        self.dir_times.push((rel.to_vec(), meta.timestamps()));
        Ok(())
    }

    fn regular<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        rel: &[u8],
        raw: &[u8],
        size: u64,
    ) -> Result<(), ArchiveError> {
        let meta = self.meta(entry, raw)?;
        let (parent, name) = split_last(rel);
        let pfd = self.parent(parent, raw)?;
        let name = OsStr::from_bytes(name);
        self.make_room(&pfd, name, rel, false)?;
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = rfs::openat(&*pfd, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| ArchiveError::io("create", self.tree.full(rel), e))?;
        let mut file = File::from(fd);
        let written = self.copy(entry, Some(&mut file), rel)?;
        if written != size {
            return Err(self.corrupt("entry data is shorter than its header says"));
        }
        meta.apply_fd(&file, &self.tree, rel)?;
        rfs::futimens(&file, &meta.timestamps())
            .map_err(|e| ArchiveError::io("set times of", self.tree.full(rel), e))?;
        self.stats.bytes += written;
        Ok(())
    }

    fn symlink<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        rel: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let target = match entry.link_name_bytes() {
            Some(t) if !t.is_empty() => t.into_owned(),
            _ => {
                return Err(ArchiveError::InvalidEntry {
                    path: show(raw),
                    reason: "symlink without a target",
                })
            }
        };
        let meta = self.meta(entry, raw)?;
        let (parent, name) = split_last(rel);
        let pfd = self.parent(parent, raw)?;
        let name = OsStr::from_bytes(name);
        self.make_room(&pfd, name, rel, false)?;
        // The target is data: it is stored, never resolved by us.
        rfs::symlinkat(OsStr::from_bytes(&target), &*pfd, name)
            .map_err(|e| ArchiveError::io("create symlink", self.tree.full(rel), e))?;
        meta.apply_at(&pfd, name, true, &self.tree, rel)
    }

    fn hardlink<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        rel: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let target_raw = match entry.link_name_bytes() {
            Some(t) => rebase_name(&t, &self.rules.rebase),
            None => Vec::new(),
        };
        if self.rules.refuse_absolute && target_raw.starts_with(b"/") {
            return Err(ArchiveError::AbsolutePath {
                path: show(&target_raw),
            });
        }
        let bad = |reason| ArchiveError::BadHardLink {
            path: show(raw),
            target: show(&target_raw),
            reason,
        };
        let target = clean(&target_raw).map_err(|r| refused(r, &target_raw))?;
        if target.is_empty() {
            return Err(bad("the target is the root directory"));
        }
        if target == rel {
            return Err(bad("the link names itself"));
        }
        let (tparent, tname) = split_last(&target);
        let tname = OsStr::from_bytes(tname);
        let tdir = self
            .tree
            .dir(tparent, false, &target_raw)?
            .ok_or_else(|| bad("the target does not exist"))?;
        let st = lstat_at(&*tdir, tname)
            .map_err(|e| ArchiveError::io("inspect", self.tree.full(&target), e))?
            .ok_or_else(|| bad("the target does not exist"))?;
        if file_type(&st) != FileType::RegularFile {
            return Err(bad("the target is not a regular file"));
        }
        let (parent, name) = split_last(rel);
        let pfd = self.parent(parent, raw)?;
        let name = OsStr::from_bytes(name);
        self.make_room(&pfd, name, rel, false)?;
        // No AT_SYMLINK_FOLLOW: links the target entry itself, which we checked is a regular file.
        rfs::linkat(&*tdir, tname, &*pfd, name, AtFlags::empty())
            .map_err(|e| ArchiveError::io("create hard link", self.tree.full(rel), e))
    }

    fn fifo<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        rel: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let meta = self.meta(entry, raw)?;
        let (parent, name) = split_last(rel);
        let pfd = self.parent(parent, raw)?;
        let name = OsStr::from_bytes(name);
        self.make_room(&pfd, name, rel, false)?;
        rfs::mknodat(&*pfd, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| ArchiveError::io("create fifo", self.tree.full(rel), e))?;
        meta.apply_at(&pfd, name, false, &self.tree, rel)
    }

    /// `dir/.wh.NAME`: removes `dir/NAME` and leaves an overlayfs whiteout (0:0 character device).
    fn whiteout<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        parent: &[u8],
        target: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let meta = self.meta(entry, raw)?;
        let pfd = self.parent(parent, raw)?;
        let rel = join(parent, target);
        let name = OsStr::from_bytes(target);
        self.make_room(&pfd, name, &rel, false)?;
        rfs::mknodat(
            &*pfd,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| ArchiveError::io("create whiteout", self.tree.full(&rel), e))?;
        rfs::chownat(
            &*pfd,
            name,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ArchiveError::io("set owner of", self.tree.full(&rel), e))
    }

    /// `dir/.wh..wh..opq`: marks `dir` opaque.
    fn opaque(&mut self, parent: &[u8], raw: &[u8]) -> Result<(), ArchiveError> {
        let fd = self.parent(parent, raw)?;
        rfs::fsetxattr(&*fd, "trusted.overlay.opaque", b"y", XattrFlags::empty()).map_err(|e| {
            ArchiveError::io(
                "mark opaque (trusted.overlay.opaque)",
                self.tree.full(parent),
                e,
            )
        })
    }

    /// Reads the rest of the entry's data, into `out` if given, counting it against the limits.
    fn copy<E: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, E>,
        mut out: Option<&mut File>,
        rel: &[u8],
    ) -> Result<u64, ArchiveError> {
        let mut total = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.stream_error(e)),
            };
            total += n as u64;
            self.used += n as u64;
            if self.used > self.limits.max_total_bytes {
                return Err(ArchiveError::TooLarge {
                    what: LimitKind::TotalBytes,
                    max: self.limits.max_total_bytes,
                });
            }
            if let Some(file) = out.as_deref_mut() {
                file.write_all(&self.buf[..n])
                    .map_err(|e| ArchiveError::io("write", self.tree.full(rel), e))?;
            }
        }
    }

    /// Reads what follows the end-of-archive marker (padding to the record size, usually), so that a
    /// digesting reader below sees the whole stream; it counts against the size limit.
    fn drain_trailing(&mut self, rest: &mut impl Read) -> Result<(), ArchiveError> {
        let mut trailing = 0u64;
        loop {
            match rest.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    trailing += n as u64;
                    if trailing > self.limits.max_total_bytes {
                        return Err(ArchiveError::TooLarge {
                            what: LimitKind::TotalBytes,
                            max: self.limits.max_total_bytes,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.stream_error(e)),
            }
        }
    }

    /// Sets directory times last: creating entries inside a directory changes its mtime.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        for (rel, times) in std::mem::take(&mut self.dir_times) {
            let fd = match self.tree.dir(&rel, false, &rel) {
                Ok(Some(fd)) => fd,
                // Replaced or removed by a later entry: nothing to time.
                Ok(None)
                | Err(ArchiveError::SymlinkInPath { .. } | ArchiveError::NotADirectory { .. }) => {
                    continue
                }
                Err(e) => return Err(e),
            };
            rfs::futimens(&*fd, &times)
                .map_err(|e| ArchiveError::io("set times of", self.tree.full(&rel), e))?;
        }
        Ok(())
    }
}

/// The error for a name that [`clean`] refused.
fn refused(refusal: Refusal, raw: &[u8]) -> ArchiveError {
    match refusal {
        Refusal::Escapes => ArchiveError::UnsafePath { path: show(raw) },
        Refusal::Nul => ArchiveError::InvalidEntry {
            path: show(raw),
            reason: "name contains a NUL byte",
        },
        Refusal::TooLong => ArchiveError::InvalidEntry {
            path: show(raw),
            reason: "name longer than PATH_MAX",
        },
    }
}
