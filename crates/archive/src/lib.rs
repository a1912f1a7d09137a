//! berth-archive: safe handling of layer tarballs.
//!
//! * [`decompress`] sniffs gzip / zstd / plain tar ([`detect`]) and returns a reader of the plain tar
//!   stream.
//! * [`DigestReader`] hashes (sha256) everything read through it, for diff ids and blob digests.
//! * [`apply_layer`] extracts an OCI/Docker layer tar into a snapshot directory so that the directory can be
//!   used directly as an overlayfs lowerdir: whiteouts (`.wh.NAME`) become 0:0 character devices, opaque
//!   markers (`.wh..wh..opq`) become the `trusted.overlay.opaque=y` xattr, and no entry can ever write
//!   outside `dest` (`../`, absolute paths, symlinked parents, hard links out, device nodes, bombs).
//!   [`extract_plain`] does the same for a flat rootfs tar, without whiteout conversion.
//! * [`write_dir_tar`] writes a directory tree as a tar stream (save, export, commit), and
//!   [`write_overlay_diff`] writes an overlay upper directory as a layer diff, turning whiteout devices and
//!   opaque directories back into `.wh.` entries; [`write_container_diff`] leaves out the runtime's
//!   mount point placeholders (commit).
//! * [`write_resource`] and [`extract_resource`] copy one file or tree out of or into a directory
//!   reached through a descriptor, with Docker's archive-endpoint naming and an all-or-nothing
//!   extraction (staged in a fresh directory, then moved into place): `docker cp`.
//!
//! Everything is blocking; callers on an async runtime run it in a blocking thread. Work inside a
//! destination or source tree goes through directory file descriptors and never follows a symlink
//! that the tree contains (see the `fsat` module); only the `dest`/`src` path given by the caller is
//! resolved normally. Extraction needs root (ownership, xattrs in the `trusted.` namespace, whiteout
//! devices).
//!
//! Unlike Docker, we refuse character and block devices in archives, cap the metadata (PAX records,
//! GNU long names) of one entry at 4 MiB, require the end-of-archive marker, and accept a hard link
//! only to an existing regular file.

mod apply;
mod compression;
mod copy;
mod digest;
mod error;
mod fsat;
mod guard;
mod meta;
mod path;
mod write;

#[cfg(test)]
mod tests;

pub use apply::{apply_layer, extract_plain, Ownership};
pub use compression::{decompress, detect, Compression};
pub use copy::{extract_resource, write_resource, ExtractOptions, Resource, ResourceOptions};
pub use digest::DigestReader;
pub use error::{ArchiveError, LimitKind};
pub use write::{write_container_diff, write_dir_tar, write_overlay_diff};

/// Bounds on what one archive may make us do, against decompression and tar bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest sum of entry data sizes (and, separately, of bytes after the end-of-archive marker).
    pub max_total_bytes: u64,
    /// Largest number of archive members (files, directories, links, whiteouts, PAX global headers).
    pub max_entries: u64,
}

impl Default for Limits {
    /// 64 GiB and two million entries.
    fn default() -> Self {
        Limits {
            max_total_bytes: 64 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Archive members processed (files, directories, links, whiteouts, PAX global headers).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub bytes: u64,
}
