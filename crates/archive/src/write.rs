//! Writing a directory tree, or an overlay upper directory as a layer diff, as a tar stream.
//!
//! The tree is walked through directory file descriptors (`O_NOFOLLOW`), each object is checked with
//! `fstat` after it is opened, and names are visited in bytewise order, so the output depends only on
//! the tree: the same tree gives the same bytes (and the same diff id). Entries are relative (`bin/`,
//! `bin/sh`); the root itself is not an entry. Regular files, directories, symlinks, FIFOs and device
//! nodes are written with their mode (including set-id bits), numeric owner and mtime (whole
//! seconds); a regular file with several links is written once and then as hard links to that first
//! name; sockets are skipped. Extended attributes of files and directories go into PAX
//! `SCHILY.xattr.*` records, except overlayfs' own and host-specific labels (`security.selinux`,
//! `security.ima`, `security.evm`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode, OFlags, Stat, CWD};
use tar::{EntryType, Header};
use xattr::FileExt;

use crate::fsat::{file_type, list_dir, lstat_at, DIR_FLAGS};
use crate::meta::{is_overlay_xattr, Xattrs, PAX_XATTR_PREFIX};
use crate::path::{join, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::ArchiveError;

/// Writes the tree at `src` as a tar stream: relative names (`bin/`, `bin/sh`), sorted, with modes,
/// owners, mtimes, symlinks, hard links and xattrs. Returns the bytes written. On error the stream
/// is left without its end-of-archive marker, so no reader takes it for complete.
pub fn write_dir_tar(src: &Path, writer: impl Write) -> Result<u64, ArchiveError> {
    write_tree(src, writer, Flavor::Tree)
}

/// Writes an overlay upper directory as a layer diff: whiteouts (0:0 character devices) become
/// `.wh.NAME` entries and opaque directories (`trusted.overlay.opaque=y`) are followed by a
/// `.wh..wh..opq` entry. Upper directories made with `redirect_dir` or `metacopy` cannot be expressed
/// as a tar diff and give [`ArchiveError::Unsupported`]. Returns the bytes written.
pub fn write_overlay_diff(upper: &Path, writer: impl Write) -> Result<u64, ArchiveError> {
    write_tree(upper, writer, Flavor::OverlayDiff)
}

/// Writes an overlay upper directory as a layer diff like [`write_overlay_diff`], leaving out the
/// mount points a runtime creates in a container's upper directory (`proc`, `sys`, `dev`,
/// `etc/hosts`, `etc/hostname`, `etc/resolv.conf`) when they are empty: they are placeholders for
/// mounts, not changes (Docker keeps them in a separate init layer). Used by `commit`.
pub fn write_container_diff(upper: &Path, writer: impl Write) -> Result<u64, ArchiveError> {
    let root = open_dir(upper)?;
    let mut tw = TreeWriter::new(writer, Flavor::OverlayDiff);
    tw.placeholders = RUNTIME_PLACEHOLDERS;
    let walked = tw
        .root(&root, upper)
        .and_then(|()| tw.walk(&root, b"", upper));
    tw.finish(walked)
}

/// Mount points a runtime makes when the image lacks them.
const RUNTIME_PLACEHOLDERS: &[&[u8]] = &[
    b"proc",
    b"sys",
    b"dev",
    b"etc/hosts",
    b"etc/hostname",
    b"etc/resolv.conf",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Tree,
    OverlayDiff,
}

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Overlay features whose upper directories are not self-contained.
const UNSUPPORTED_OVERLAY_XATTRS: [(&str, &str); 2] = [
    (
        "trusted.overlay.redirect",
        "overlay redirect_dir is not supported",
    ),
    (
        "trusted.overlay.metacopy",
        "overlay metacopy is not supported",
    ),
];

fn open_dir(src: &Path) -> Result<File, ArchiveError> {
    let root = rfs::openat(
        CWD,
        src,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ArchiveError::io("open directory", src.to_path_buf(), e))?;
    Ok(File::from(root))
}

fn write_tree<W: Write>(src: &Path, writer: W, flavor: Flavor) -> Result<u64, ArchiveError> {
    let root = open_dir(src)?;
    let mut tw = TreeWriter::new(writer, flavor);
    let walked = tw.root(&root, src).and_then(|()| tw.walk(&root, b"", src));
    tw.finish(walked)
}

pub(crate) struct TreeWriter<W: Write> {
    builder: tar::Builder<Counting<W>>,
    flavor: Flavor,
    /// First name written for each (device, inode) of a regular file with several links.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Name of the archived resource: entries are `base/rel` (`etc/passwd`), `/rel` when the base is
    /// `/`, or just `rel` when empty (a tree whose root is not an entry).
    pub(crate) base: Vec<u8>,
    /// Owner written in place of the files' own.
    pub(crate) owner: Option<(u32, u32)>,
    /// Permission bits written in place of the files' own (symlinks keep theirs).
    pub(crate) mode: Option<u32>,
    /// Write the directory of a procfs, sysfs or similar mount but nothing below it.
    pub(crate) skip_pseudo_fs: bool,
    /// Directories (relative paths) written without their content.
    pub(crate) skip_content: Vec<Vec<u8>>,
    /// Entries (relative paths) left out with everything below them.
    pub(crate) skip: Vec<Vec<u8>>,
    /// Entries (relative paths) left out when they are an empty directory or empty file.
    placeholders: &'static [&'static [u8]],
    /// Write entry names byte for byte (see [`TreeWriter::emit`]).
    pub(crate) raw_names: bool,
    /// PAX records waiting for the next entry (raw names only).
    pending_pax: Vec<u8>,
}

impl<W: Write> TreeWriter<W> {
    pub(crate) fn new(writer: W, flavor: Flavor) -> Self {
        TreeWriter {
            builder: tar::Builder::new(Counting {
                inner: writer,
                count: 0,
                poisoned: false,
            }),
            flavor,
            links: HashMap::new(),
            base: Vec::new(),
            owner: None,
            mode: None,
            skip_pseudo_fs: false,
            skip_content: Vec::new(),
            skip: Vec::new(),
            placeholders: &[],
            raw_names: false,
            pending_pax: Vec::new(),
        }
    }

    /// Ends the stream after a walk: with the end-of-archive marker when it succeeded, without when
    /// it failed (so that no reader takes a partial stream for complete). Returns the bytes written.
    pub(crate) fn finish(mut self, walked: Result<(), ArchiveError>) -> Result<u64, ArchiveError> {
        if let Err(e) = walked {
            // The builder writes the end-of-archive marker when dropped; a failed stream must not get one.
            self.builder.get_mut().poisoned = true;
            return Err(e);
        }
        let mut out = self
            .builder
            .into_inner()
            .map_err(|source| ArchiveError::Write { source })?;
        out.flush()
            .map_err(|source| ArchiveError::Write { source })?;
        Ok(out.count)
    }

    /// The entry name of a path relative to the archived resource.
    pub(crate) fn name(&self, rel: &[u8]) -> Vec<u8> {
        match (self.base.as_slice(), rel) {
            (b"", rel) => rel.to_vec(),
            (base, b"") => base.to_vec(),
            (b"/", rel) => [b"/", rel].concat(),
            (base, rel) => [base, b"/", rel].concat(),
        }
    }

    /// A ustar header with the common fields of `st` (or the fixed owner) and size 0.
    pub(crate) fn header(&self, st: &Stat, kind: EntryType) -> Header {
        let mut h = header(st, kind);
        if let Some((uid, gid)) = self.owner {
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
        }
        if let Some(mode) = self.mode {
            if kind != EntryType::Symlink {
                h.set_mode(mode & 0o7777);
            }
        }
        h
    }

    fn is_placeholder(&self, dir: &File, name: &OsStr, rel: &[u8], st: &Stat) -> bool {
        if !self.placeholders.contains(&rel) {
            return false;
        }
        match file_type(st) {
            FileType::RegularFile => st.st_size == 0,
            FileType::Directory => rfs::openat(dir, name, DIR_FLAGS, Mode::empty())
                .ok()
                .and_then(|fd| list_dir(&fd, Path::new("")).ok())
                .is_some_and(|names| names.is_empty()),
            _ => false,
        }
    }
    /// The root is not an entry, but in a diff an opaque root still needs its marker.
    fn root(&mut self, root: &File, path: &Path) -> Result<(), ArchiveError> {
        if self.flavor != Flavor::OverlayDiff {
            return Ok(());
        }
        let st =
            rfs::fstat(root).map_err(|e| ArchiveError::io("inspect", path.to_path_buf(), e))?;
        self.overlay_checks(root, path)?;
        if is_opaque(root) {
            self.append_opaque(b"", &st)?;
        }
        Ok(())
    }

    fn walk(&mut self, dir: &File, rel: &[u8], path: &Path) -> Result<(), ArchiveError> {
        for name in list_dir(dir, path)? {
            let child_rel = join(rel, &name);
            let name = OsStr::from_bytes(&name);
            let child_path = path.join(name);
            let Some(st) = lstat_at(dir, name)
                .map_err(|e| ArchiveError::io("inspect", child_path.clone(), e))?
            else {
                tracing::debug!(path = %child_path.display(), "vanished while archiving");
                continue;
            };
            if self.is_placeholder(dir, name, &child_rel, &st) {
                continue;
            }
            self.child(dir, name, &st, rel, &child_rel, &child_path)?;
        }
        Ok(())
    }

    /// One object `name` of `dir` (whose stat is `st`): `rel` is the directory's relative path,
    /// `child_rel` the object's.
    pub(crate) fn child(
        &mut self,
        dir: &impl AsFd,
        name: &OsStr,
        st: &Stat,
        rel: &[u8],
        child_rel: &[u8],
        child_path: &Path,
    ) -> Result<(), ArchiveError> {
        if self.skip.iter().any(|r| r == child_rel) {
            return Ok(());
        }
        match file_type(st) {
            FileType::Directory => self.directory(dir, name, child_rel, child_path)?,
            FileType::RegularFile => self.regular(dir, name, st, child_rel, child_path)?,
            FileType::Symlink => {
                let target = rfs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| ArchiveError::io("read symlink", child_path.to_path_buf(), e))?;
                self.append_symlink(st, child_rel, target.as_bytes())?;
            }
            FileType::CharacterDevice if self.flavor == Flavor::OverlayDiff && st.st_rdev == 0 => {
                let whiteout = [WHITEOUT_PREFIX, name.as_bytes()].concat();
                let mut h = self.header(st, EntryType::Regular);
                self.append_empty(&mut h, &join(rel, &whiteout))?;
            }
            kind @ (FileType::CharacterDevice | FileType::BlockDevice) => {
                let entry_type = if kind == FileType::CharacterDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                let mut h = self.header(st, entry_type);
                let set = h
                    .set_device_major(rfs::major(st.st_rdev))
                    .and_then(|()| h.set_device_minor(rfs::minor(st.st_rdev)));
                set.map_err(|source| ArchiveError::Write { source })?;
                self.append_empty(&mut h, child_rel)?;
            }
            FileType::Fifo => {
                let mut h = self.header(st, EntryType::Fifo);
                self.append_empty(&mut h, child_rel)?;
            }
            _ => tracing::debug!(path = %child_path.display(), "skipping socket"),
        }
        Ok(())
    }

    fn directory(
        &mut self,
        parent: &impl AsFd,
        name: &OsStr,
        rel: &[u8],
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let fd = match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Err(ArchiveError::Changed {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(ArchiveError::io("open directory", path.to_path_buf(), e)),
        };
        self.directory_fd(&fd, rel, path)
    }

    /// The entry of an open directory, then (unless it is a pseudo file system we skip) its content.
    pub(crate) fn directory_fd(
        &mut self,
        fd: &File,
        rel: &[u8],
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let st = rfs::fstat(fd).map_err(|e| ArchiveError::io("inspect", path.to_path_buf(), e))?;
        if self.flavor == Flavor::OverlayDiff {
            self.overlay_checks(fd, path)?;
        }
        let xattrs = exported_xattrs(fd, path)?;
        let mut h = self.header(&st, EntryType::Directory);
        self.append_pax(&xattrs)?;
        let mut with_slash = self.name(rel);
        if with_slash.last() != Some(&b'/') {
            with_slash.push(b'/');
        }
        self.emit(&mut h, &with_slash, None, io::empty())
            .map_err(|source| ArchiveError::Write { source })?;
        if self.flavor == Flavor::OverlayDiff && is_opaque(fd) {
            self.append_opaque(rel, &st)?;
        }
        if self.skip_content.iter().any(|r| r == rel) {
            return Ok(());
        }
        if self.skip_pseudo_fs && is_pseudo_fs(fd) {
            tracing::debug!(path = %path.display(), "not archiving the content of a pseudo file system");
            return Ok(());
        }
        self.walk(fd, rel, path)
    }

    pub(crate) fn regular(
        &mut self,
        parent: &impl AsFd,
        name: &OsStr,
        st: &Stat,
        rel: &[u8],
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let key = inode_key(st);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                let (first, name) = (self.name(first), self.name(rel));
                let mut h = self.header(st, EntryType::Link);
                return self
                    .emit(&mut h, &name, Some(&first), io::empty())
                    .map_err(|source| ArchiveError::Write { source });
            }
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let file = match rfs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(rustix::io::Errno::LOOP) => {
                return Err(ArchiveError::Changed {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(ArchiveError::io("open", path.to_path_buf(), e)),
        };
        let now =
            rfs::fstat(&file).map_err(|e| ArchiveError::io("inspect", path.to_path_buf(), e))?;
        if file_type(&now) != FileType::RegularFile || inode_key(&now) != key {
            return Err(ArchiveError::Changed {
                path: path.to_path_buf(),
            });
        }
        if self.flavor == Flavor::OverlayDiff {
            self.overlay_checks(&file, path)?;
        }
        let xattrs = exported_xattrs(&file, path)?;
        let size = u64::try_from(now.st_size).map_err(|_| ArchiveError::Changed {
            path: path.to_path_buf(),
        })?;
        let mut h = self.header(&now, EntryType::Regular);
        h.set_size(size);
        self.append_pax(&xattrs)?;
        let mut data = Exact {
            inner: &file,
            left: size,
            outcome: ReadOutcome::Fine,
        };
        let name = self.name(rel);
        if let Err(source) = self.emit(&mut h, &name, None, &mut data) {
            return Err(match data.outcome {
                ReadOutcome::Fine => ArchiveError::Write { source },
                ReadOutcome::Shrank => ArchiveError::Changed {
                    path: path.to_path_buf(),
                },
                ReadOutcome::Failed => ArchiveError::io("read", path.to_path_buf(), source),
            });
        }
        if now.st_nlink > 1 {
            self.links.insert(key, rel.to_vec());
        }
        Ok(())
    }

    /// Refuses upper directories that only make sense together with their lower layers.
    fn overlay_checks(&self, fd: &File, path: &Path) -> Result<(), ArchiveError> {
        for (name, reason) in UNSUPPORTED_OVERLAY_XATTRS {
            if matches!(fd.get_xattr(name), Ok(Some(_))) {
                return Err(ArchiveError::Unsupported {
                    path: path.to_path_buf(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// `rel/.wh..wh..opq`, with the directory's permission bits, owner and mtime (as Docker writes it).
    fn append_opaque(&mut self, rel: &[u8], dir: &Stat) -> Result<(), ArchiveError> {
        let mut h = self.header(dir, EntryType::Regular);
        self.append_empty(&mut h, &join(rel, OPAQUE_MARKER))
    }

    /// An entry without data (directories add their slash themselves).
    pub(crate) fn append_empty(&mut self, h: &mut Header, rel: &[u8]) -> Result<(), ArchiveError> {
        let name = self.name(rel);
        self.emit(h, &name, None, io::empty())
            .map_err(|source| ArchiveError::Write { source })
    }

    pub(crate) fn append_symlink(
        &mut self,
        st: &Stat,
        rel: &[u8],
        target: &[u8],
    ) -> Result<(), ArchiveError> {
        let mut h = self.header(st, EntryType::Symlink);
        let name = self.name(rel);
        self.emit(&mut h, &name, Some(target), io::empty())
            .map_err(|source| ArchiveError::Write { source })
    }

    /// Appends one entry named `name` (a link to `link` for symlinks and hard links). Without
    /// `raw_names` the tar crate encodes the names (normalising them: `./a` becomes `a`); with it,
    /// names are written byte for byte (`./a`, `/bin` as Docker's archive endpoint sends them),
    /// long ones in PAX `path`/`linkpath` records together with any pending xattrs.
    fn emit<R: Read>(
        &mut self,
        h: &mut Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: R,
    ) -> io::Result<()> {
        if !self.raw_names {
            return match link {
                Some(l) => self.builder.append_link(h, as_path(name), as_path(l)),
                None => self.builder.append_data(h, as_path(name), data),
            };
        }
        let mut pax = std::mem::take(&mut self.pending_pax);
        let old = h.as_old_mut();
        old.name.fill(0);
        let n = name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&name[..n]);
        if name.len() > old.name.len() {
            pax_record(&mut pax, b"path", name);
        }
        if let Some(l) = link {
            old.linkname.fill(0);
            let n = l.len().min(old.linkname.len());
            old.linkname[..n].copy_from_slice(&l[..n]);
            if l.len() > old.linkname.len() {
                pax_record(&mut pax, b"linkpath", l);
            }
        }
        if !pax.is_empty() {
            self.write_pax(&pax)?;
        }
        h.set_cksum();
        self.builder.append(h, data)
    }

    /// A PAX extended header carrying the xattrs of the entry that follows.
    fn append_pax(&mut self, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), ArchiveError> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in xattrs {
            pax_record(&mut data, &[PAX_XATTR_PREFIX, name].concat(), value);
        }
        if self.raw_names {
            // Written with the entry's own records by `emit`.
            self.pending_pax.extend_from_slice(&data);
            return Ok(());
        }
        self.write_pax(&data)
            .map_err(|source| ArchiveError::Write { source })
    }

    fn write_pax(&mut self, data: &[u8]) -> io::Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_path("@PaxHeader")?;
        h.set_cksum();
        self.builder.append(&h, data)
    }
}

/// A ustar header with the common fields of `st` and size 0.
fn header(st: &Stat, kind: EntryType) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

#[allow(
    clippy::useless_conversion,
    reason = "st_dev and st_ino are u64 on some targets and narrower on others"
)]
fn inode_key(st: &Stat) -> (u64, u64) {
    (u64::from(st.st_dev), u64::from(st.st_ino))
}

fn as_path(rel: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(rel))
}

/// Whether an open directory is on procfs, sysfs or another kernel interface file system, whose
/// content is no file a copy wants (a running container's `/proc`, `/sys`, `/dev/pts`...).
fn is_pseudo_fs(fd: &File) -> bool {
    const PSEUDO: [i128; 15] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x1cd1,      // devpts
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x1980_0202, // mqueue
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
        0x6165_676c, // pstore
        0x4249_4e4d, // binfmt_misc
        0x6e73_6673, // nsfs
        0x6265_6570, // configfs
        0x6573_5543, // fusectl
    ];
    rfs::fstatfs(fd).is_ok_and(|st| PSEUDO.contains(&i128::from(st.f_type)))
}

fn is_opaque(fd: &File) -> bool {
    matches!(fd.get_xattr(OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// The xattrs of an open file or directory worth putting in an archive, sorted by name.
fn exported_xattrs(fd: &File, path: &Path) -> Result<Xattrs, ArchiveError> {
    let names = match fd.list_xattr() {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) => {
            return Ok(Vec::new())
        }
        Err(e) => {
            return Err(ArchiveError::io(
                "list extended attributes of",
                path.to_path_buf(),
                e,
            ))
        }
    };
    let mut out = Vec::new();
    for name in names {
        let bytes = name.as_bytes();
        if is_overlay_xattr(bytes)
            || matches!(
                bytes,
                b"security.selinux" | b"security.ima" | b"security.evm"
            )
        {
            continue;
        }
        match fd.get_xattr(&name) {
            Ok(Some(value)) => out.push((bytes.to_vec(), value)),
            Ok(None) => {}
            Err(e) => {
                return Err(ArchiveError::io(
                    "read extended attributes of",
                    path.to_path_buf(),
                    e,
                ))
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including
/// its own digits.
pub(crate) fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Counts what goes to the output; once poisoned, refuses to write.
struct Counting<W> {
    inner: W,
    count: u64,
    poisoned: bool,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("tar stream abandoned after an error"));
        }
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOutcome {
    Fine,
    Shrank,
    Failed,
}

/// Reads exactly `left` bytes of a file: fewer is an error (the header already promised the size),
/// more is not read.
struct Exact<R> {
    inner: R,
    left: u64,
    outcome: ReadOutcome,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let cap = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match self.inner.read(&mut buf[..cap]) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.outcome = ReadOutcome::Failed;
                }
                return Err(e);
            }
        };
        if n == 0 {
            self.outcome = ReadOutcome::Shrank;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value, expect) in [
            (&b"a"[..], &b"b"[..], &b"6 a=b\n"[..]),
            (b"path", b"12345", b"14 path=12345\n"),
            (b"k", &[b'v'; 4], b"9 k=vvvv\n"),
            (b"k", &[b'v'; 5], b"11 k=vvvvv\n"),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, key, value);
            assert_eq!(out, expect, "{}", String::from_utf8_lossy(expect));
        }
    }

    #[test]
    fn pax_record_lengths_at_digit_boundaries() {
        for n in 0..2000 {
            let value = vec![b'x'; n];
            let mut out = Vec::new();
            pax_record(&mut out, b"SCHILY.xattr.user.k", &value);
            let space = out.iter().position(|b| *b == b' ').expect("space");
            let len: usize = std::str::from_utf8(&out[..space])
                .expect("digits")
                .parse()
                .expect("number");
            assert_eq!(len, out.len(), "value of {n} bytes");
        }
    }
}
