//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which of the [`Limits`](crate::Limits) a stream went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The sum of the entries' data (plus any trailing bytes after the end of the archive).
    TotalBytes,
    /// The number of entries.
    Entries,
    /// The extension headers (PAX, GNU long names) describing a single entry.
    Metadata,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::TotalBytes => "total size",
            LimitKind::Entries => "entry count",
            LimitKind::Metadata => "per-entry header size",
        })
    }
}

/// Everything that can go wrong while reading, applying or writing a tar stream.
///
/// Entry paths (`path`, `target`) are the names as written in the archive (lossy UTF-8); file system
/// paths (`PathBuf`) are full paths on this machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// An entry name or hard link target climbs above the root of the archive with `..`.
    #[error("unsafe path {path:?} escapes the destination")]
    UnsafePath { path: String },
    /// An absolute entry name or link target where only relative ones are accepted (uploads).
    #[error("entry {path:?} refused: absolute names are not accepted")]
    AbsolutePath { path: String },
    /// Extracting would replace an existing directory with a non-directory.
    #[error("cannot overwrite directory {path:?} with non-directory {dest:?}")]
    OverwriteDirectory { path: String, dest: String },
    /// Extracting would replace an existing non-directory with a directory.
    #[error("cannot overwrite non-directory {path:?} with directory {dest:?}")]
    OverwriteNonDirectory { path: String, dest: String },
    /// A parent directory of the entry is a symlink: we never write through symlinks.
    #[error("entry {path:?} has a symlink among its parent directories")]
    SymlinkInPath { path: String },
    /// A parent of the entry exists and is neither a directory nor a symlink.
    #[error("a parent of entry {path:?} is not a directory")]
    NotADirectory { path: String },
    /// A hard link whose target is missing, not a regular file, or the link itself.
    #[error("hard link {path:?} to {target:?} refused: {reason}")]
    BadHardLink {
        path: String,
        target: String,
        reason: &'static str,
    },
    /// Character and block devices are never created from an archive.
    #[error("device node {path:?} refused: archives may not create devices")]
    DeviceNode { path: String },
    /// An entry type we do not extract (GNU volume headers, multi-volume continuations...).
    #[error("entry {path:?} has unsupported type {kind:?}")]
    UnsupportedEntry { path: String, kind: char },
    /// An entry field we cannot represent (uid above 2^32, path longer than `PATH_MAX`...).
    #[error("entry {path:?} is invalid: {reason}")]
    InvalidEntry { path: String, reason: &'static str },
    /// The stream went over one of the [`Limits`](crate::Limits).
    #[error("archive exceeds its {what} limit of {max}")]
    TooLarge { what: LimitKind, max: u64 },
    /// The stream is not a valid tar (bad checksum, truncated data, bad compression, missing end).
    #[error("corrupt or truncated tar stream near byte {offset}")]
    Corrupt {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// A file system operation on `path` failed.
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the (compressed) input stream failed before any tar parsing.
    #[error("cannot read the layer stream")]
    Read {
        #[source]
        source: io::Error,
    },
    /// Writing the output tar stream failed.
    #[error("cannot write the tar stream")]
    Write {
        #[source]
        source: io::Error,
    },
    /// A file changed size or type while it was being archived.
    #[error("{path} changed while it was being archived")]
    Changed { path: PathBuf },
    /// The source tree uses something the writer cannot represent in a tar (overlay metacopy,
    /// redirect_dir).
    #[error("{path} cannot be archived: {reason}")]
    Unsupported { path: PathBuf, reason: &'static str },
}

impl ArchiveError {
    pub(crate) fn io(op: &'static str, path: PathBuf, source: impl Into<io::Error>) -> Self {
        ArchiveError::Io {
            op,
            path,
            source: source.into(),
        }
    }
}

/// Lossy display form of a raw entry name.
pub(crate) fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}
