//! Tests of the public API against a real file system. They need root (ownership, `trusted.` xattrs,
//! whiteout devices), which every berth test environment has.

mod apply;
mod copy;
mod malicious;
mod stream;
mod write;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use crate::{ApplyStats, ArchiveError, Limits};

/// An in-memory tar stream under construction. Headers are written by hand so that tests can use
/// names `tar::Header::set_path` would refuse.
pub(crate) struct TarBuf {
    out: Vec<u8>,
}

/// Fields of a test entry beyond its name and type.
#[derive(Clone)]
pub(crate) struct E<'a> {
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: u64,
    pub(crate) link: &'a [u8],
    pub(crate) data: &'a [u8],
    pub(crate) xattrs: &'a [(&'a str, &'a [u8])],
    pub(crate) dev: (u32, u32),
}

pub(crate) const MTIME: u64 = 1_600_000_000;

impl Default for E<'_> {
    fn default() -> Self {
        E {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            link: b"",
            data: b"",
            xattrs: &[],
            dev: (0, 0),
        }
    }
}

impl TarBuf {
    pub(crate) fn new() -> Self {
        TarBuf { out: Vec::new() }
    }

    /// Appends an entry whose name (and link name) are written verbatim into a GNU header; longer
    /// names go into a PAX `path` record.
    pub(crate) fn entry(&mut self, name: &[u8], kind: EntryType, e: E<'_>) -> &mut Self {
        let mut pax = Vec::new();
        for (key, value) in e.xattrs {
            crate::write::pax_record(&mut pax, format!("SCHILY.xattr.{key}").as_bytes(), value);
        }
        if name.len() > 100 {
            crate::write::pax_record(&mut pax, b"path", name);
        }
        if !pax.is_empty() {
            let mut h = Header::new_ustar();
            h.as_old_mut().name[..10].copy_from_slice(b"@PaxHeader");
            h.set_entry_type(EntryType::XHeader);
            h.set_size(pax.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            self.raw(&h, &pax);
        }
        let mut h = Header::new_gnu();
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).expect("major");
            h.set_device_minor(e.dev.1).expect("minor");
        }
        h.set_cksum();
        self.raw(&h, e.data)
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Regular,
            E {
                data,
                ..E::default()
            },
        )
    }

    pub(crate) fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Directory,
            E {
                mode: 0o755,
                ..E::default()
            },
        )
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Symlink,
            E {
                mode: 0o777,
                link: target.as_bytes(),
                ..E::default()
            },
        )
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Link,
            E {
                link: target.as_bytes(),
                ..E::default()
            },
        )
    }

    /// A header and its data, padded to a block.
    pub(crate) fn raw(&mut self, h: &Header, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// The stream with its end-of-archive marker.
    pub(crate) fn finish(&self) -> Vec<u8> {
        let mut out = self.out.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// The stream without the end-of-archive marker.
    pub(crate) fn unterminated(&self) -> Vec<u8> {
        self.out.clone()
    }
}

pub(crate) fn apply_to(bytes: &[u8], dest: &Path) -> Result<ApplyStats, ArchiveError> {
    crate::apply_layer(bytes, dest, &Limits::default())
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

pub(crate) fn lmeta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).expect("getxattr")
}

/// Creates an overlayfs whiteout (0:0 character device) at `path`.
pub(crate) fn mknod_whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .expect("mknod whiteout");
}

/// Everything about a tree that an archive round trip must preserve, keyed by relative path.
/// Hard links are recorded as the first path (sorted) of their inode.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, String>,
    inodes: &mut BTreeMap<(u64, u64), String>,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = path
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let m = lmeta(&path);
        let ft = m.file_type();
        let mut xattrs: Vec<String> = xattr::list(&path)
            .expect("listxattr")
            .filter(|n| !n.as_bytes().starts_with(b"security.selinux"))
            .map(|n| {
                let v = xattr::get(&path, &n).expect("getxattr").unwrap_or_default();
                format!("{}={}", n.to_string_lossy(), String::from_utf8_lossy(&v))
            })
            .collect();
        xattrs.sort();
        let common = format!(
            "mode={:o} uid={} gid={} mtime={} xattrs={:?}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            m.mtime(),
            xattrs
        );
        let what = if ft.is_dir() {
            walk(root, &path, out, inodes);
            "dir".to_string()
        } else if ft.is_symlink() {
            format!(
                "symlink->{}",
                fs::read_link(&path).expect("readlink").display()
            )
        } else if ft.is_file() {
            let first = inodes
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| rel.clone())
                .clone();
            let data = fs::read(&path).expect("read");
            format!(
                "file size={} data={:?} inode-of={first}",
                m.size(),
                String::from_utf8_lossy(&data)
            )
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else if ft.is_char_device() {
            format!("chardev {}", m.rdev())
        } else {
            "other".to_string()
        };
        out.insert(rel, format!("{what} {common}"));
    }
}

/// Whether a directory is empty.
pub(crate) fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).expect("read_dir").next().is_none()
}

pub(crate) fn os(s: &[u8]) -> &OsStr {
    OsStr::from_bytes(s)
}
