//! The metadata of an archive entry (mode, owner, times, xattrs) and applying it to what was created.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::fs::{self as rfs, AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::error::show;
use crate::fsat::Tree;
use crate::ArchiveError;

/// PAX key prefix of extended attributes (the one Docker, Go and GNU tar write).
pub(crate) const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Whether an xattr name belongs to overlayfs. An archive may never set these (a layer could otherwise
/// fake opaque directories, redirects or metacopy files), and we never write them into an archive.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Extended attributes as (name, value) pairs.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// What an entry says about the object it describes.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Timespec,
    pub(crate) xattrs: Xattrs,
    /// Set the owner (false: leave whoever created the object as its owner).
    pub(crate) chown: bool,
}

impl Meta {
    /// Reads the metadata of `entry` (header fields, overridden by PAX records). `raw` is the entry
    /// name for errors; `offset` the stream position for corruption errors.
    pub(crate) fn read<E: Read>(
        entry: &mut tar::Entry<'_, E>,
        raw: &[u8],
        offset: u64,
    ) -> Result<Meta, ArchiveError> {
        let corrupt = |source| ArchiveError::Corrupt { offset, source };
        let header = entry.header();
        let mode = header.mode().map_err(corrupt)? & 0o7777;
        let uid = id(header.uid().map_err(corrupt)?, raw, "uid")?;
        let gid = id(header.gid().map_err(corrupt)?, raw, "gid")?;
        // A header mtime that does not parse (a negative base-256 value) is not worth refusing a layer.
        let mut mtime = Timespec {
            tv_sec: header
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(corrupt)? {
            for ext in extensions {
                let ext = ext.map_err(corrupt)?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            chown: true,
        })
    }

    pub(crate) fn timestamps(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        if !self.chown {
            return (None, None);
        }
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }

    /// Sets owner, then mode (a chown clears set-id bits), then xattrs (a chown also clears
    /// `security.capability`) on an open file or directory; times are set by the caller.
    pub(crate) fn apply_fd(
        &self,
        fd: &impl AsFd,
        tree: &Tree,
        rel: &[u8],
    ) -> Result<(), ArchiveError> {
        let (uid, gid) = self.owner();
        rfs::fchown(fd, uid, gid)
            .map_err(|e| ArchiveError::io("set owner of", tree.full(rel), e))?;
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))
            .map_err(|e| ArchiveError::io("set mode of", tree.full(rel), e))?;
        for (name, value) in self.wanted_xattrs(rel) {
            let res = rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty());
            xattr_result(res, tree, rel, name)?;
        }
        Ok(())
    }

    /// The same for an object that cannot be opened (symlink, FIFO, whiteout device): owner without
    /// following symlinks, mode unless it is a symlink, xattrs through `/proc/self/fd`, then times.
    pub(crate) fn apply_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        is_symlink: bool,
        tree: &Tree,
        rel: &[u8],
    ) -> Result<(), ArchiveError> {
        let (uid, gid) = self.owner();
        rfs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ArchiveError::io("set owner of", tree.full(rel), e))?;
        if !is_symlink {
            rfs::chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty())
                .map_err(|e| ArchiveError::io("set mode of", tree.full(rel), e))?;
        }
        let wanted: Vec<_> = self.wanted_xattrs(rel).collect();
        if !wanted.is_empty() {
            // The directory is held open, so this path names exactly `name` inside it, and lsetxattr
            // does not follow a symlink in the last component.
            let mut path = OsString::from(format!("/proc/self/fd/{}/", dir.as_raw_fd())).into_vec();
            path.extend_from_slice(name.as_bytes());
            let path = OsString::from_vec(path);
            for (xname, value) in wanted {
                let res =
                    rfs::lsetxattr(&path, OsStr::from_bytes(xname), value, XattrFlags::empty());
                xattr_result(res, tree, rel, xname)?;
            }
        }
        rfs::utimensat(dir, name, &self.timestamps(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| ArchiveError::io("set times of", tree.full(rel), e))
    }

    fn wanted_xattrs<'a>(&'a self, rel: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.xattrs.iter().filter_map(move |(name, value)| {
            if is_overlay_xattr(name) {
                tracing::warn!(
                    entry = %show(rel),
                    xattr = %show(name),
                    "ignoring overlay xattr carried by the archive"
                );
                None
            } else {
                Some((name.as_slice(), value.as_slice()))
            }
        })
    }
}

/// As Docker: a file system without xattr support (or a refused namespace) only costs the xattr.
fn xattr_result(
    res: rustix::io::Result<()>,
    tree: &Tree,
    rel: &[u8],
    name: &[u8],
) -> Result<(), ArchiveError> {
    match res {
        Ok(()) => Ok(()),
        Err(e @ (Errno::OPNOTSUPP | Errno::PERM)) => {
            tracing::warn!(entry = %show(rel), xattr = %show(name), error = %e, "xattr not applied");
            Ok(())
        }
        Err(e) => Err(ArchiveError::io(
            "set extended attribute on",
            tree.full(rel),
            e,
        )),
    }
}

/// A uid or gid as the kernel takes it; `u32::MAX` is "no change" to chown and so refused.
fn id(value: u64, raw: &[u8], what: &'static str) -> Result<u32, ArchiveError> {
    match u32::try_from(value) {
        Ok(v) if v != u32::MAX => Ok(v),
        _ => Err(ArchiveError::InvalidEntry {
            path: show(raw),
            reason: if what == "uid" {
                "uid out of range"
            } else {
                "gid out of range"
            },
        }),
    }
}

/// Parses a PAX time (`"1700000000"`, `"1700000000.5"`, `"-1.25"`).
pub(crate) fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let (negative, rest) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (secs, frac) = match rest.iter().position(|b| *b == b'.') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    if secs.is_empty() && frac.is_empty() {
        return None;
    }
    if !secs.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let secs: i64 = if secs.is_empty() {
        0
    } else {
        std::str::from_utf8(secs).ok()?.parse().ok()?
    };
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(if !negative {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        }
    } else if nanos == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(i64, i64)> {
        parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec))
    }

    #[test]
    fn pax_times() {
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("12.123456789123"), Some((12, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t(""), None);
        assert_eq!(t("x1"), None);
        assert_eq!(t("1.2.3"), None);
    }

    #[test]
    fn overlay_xattrs_are_recognised() {
        assert!(is_overlay_xattr(b"trusted.overlay.opaque"));
        assert!(is_overlay_xattr(b"user.overlay.redirect"));
        assert!(!is_overlay_xattr(b"security.capability"));
        assert!(!is_overlay_xattr(b"trusted.other"));
    }
}
