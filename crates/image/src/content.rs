//! Content store: immutable blobs addressed by their sha256 digest.
//!
//! Layout under the store root (`<data-root>/content`):
//!
//! ```text
//! blobs/sha256/<hex>   verified blobs (configs, manifests, layers as received)
//! ingest/<random>      blobs being written; whatever is left here at open is a crash leftover
//! ingest/<hex>.partial a download of blob sha256:<hex> (see `ingest`): kept at open so a later
//!                      pull resumes it with an HTTP Range request; dropped after a week
//! ```
//!
//! A write goes to `ingest/<random>`, is fsynced, its digest (and size when known) verified, then
//! renamed into `blobs/sha256/` and the directory fsynced. Committing a blob that already exists is a
//! no-op success; a digest mismatch is an error that leaves nothing behind. Blobs are deleted only
//! by the store's GC (see [`crate::ImageStore`]).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::error::ErrorKind;
use crate::lease::Lease;

/// Errors of the content store.
#[derive(Debug, Error)]
pub enum ContentError {
    /// The string is not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {digest}")]
    InvalidDigest { digest: String },
    /// No blob with this digest is stored.
    #[error("blob {digest} not found")]
    NotFound { digest: String },
    /// The written content does not hash to the expected digest.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// The written content does not have the expected size.
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// A blob read into memory is larger than allowed.
    #[error("blob {digest} is larger than {max} bytes")]
    TooLarge { digest: String, max: u64 },
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ContentError {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::InvalidDigest { .. }
            | ContentError::DigestMismatch { .. }
            | ContentError::SizeMismatch { .. }
            | ContentError::TooLarge { .. } => ErrorKind::InvalidArgument,
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:<64 hex>` digest, or an error for anything else.
pub fn digest_hex(digest: &str) -> Result<&str, ContentError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if crate::reference::is_full_hex_id(h) => Ok(h),
        _ => Err(ContentError::InvalidDigest {
            digest: digest.to_string(),
        }),
    }
}

/// The 12-hex short form Docker prints for an id (`sha256:` stripped).
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// How long a partial download is kept for a later pull to resume.
const PARTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Whether an ingest entry is a resumable download young enough to keep.
fn is_fresh_partial(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name();
    let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".partial")) else {
        return false;
    };
    if !crate::reference::is_full_hex_id(hex) {
        return false;
    }
    let Ok(meta) = entry.metadata() else {
        return false;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .unwrap_or_default();
    meta.is_file() && age < PARTIAL_MAX_AGE
}

/// Fsyncs a directory so a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A random suffix for temporary names.
pub(crate) fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The blob store rooted at `<data-root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

/// What a successful commit stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl ContentStore {
    /// Opens (creating) the store and removes ingest files a crash left behind.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(io_err("creating directory", d))?;
        }
        for entry in fs::read_dir(&ingest).map_err(io_err("reading directory", &ingest))? {
            let entry = entry.map_err(io_err("reading directory", &ingest))?;
            let path = entry.path();
            if is_fresh_partial(&entry) {
                continue;
            }
            let removed = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io_err("removing ingest leftover", &path))?;
            tracing::info!(path = %path.display(), "removed interrupted ingest");
        }
        Ok(ContentStore { blobs, ingest })
    }

    /// Where a resumable download of `digest` is kept.
    pub(crate) fn partial_path(&self, digest: &str) -> Result<PathBuf, ContentError> {
        Ok(self.ingest.join(format!("{}.partial", digest_hex(digest)?)))
    }

    /// Renames a verified, synced file into place as blob `digest` (a no-op success when the blob
    /// exists; the file is then removed).
    pub(crate) fn publish(&self, file: &Path, digest: &str) -> Result<(), ContentError> {
        let dest = self.blob_path(digest)?;
        if dest.is_file() {
            if let Err(e) = fs::remove_file(file) {
                tracing::warn!(path = %file.display(), error = %e, "removing duplicate ingest");
            }
            return Ok(());
        }
        fs::rename(file, &dest).map_err(io_err("renaming blob into", &dest))?;
        sync_dir(&self.blobs).map_err(io_err("syncing directory", &self.blobs))
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ContentError> {
        Ok(self.blobs.join(digest_hex(digest)?))
    }

    /// The stored blob's size.
    pub fn size(&self, digest: &str) -> Result<u64, ContentError> {
        let p = self.blob_path(digest)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound {
                digest: digest.to_string(),
            }),
            Err(e) => Err(io_err("reading metadata of", &p)(e)),
        }
    }

    /// Opens the blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File, ContentError> {
        let p = self.blob_path(digest)?;
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound {
                digest: digest.to_string(),
            }),
            Err(e) => Err(io_err("opening", &p)(e)),
        }
    }

    /// Reads a whole blob of at most `max` bytes into memory.
    pub fn read_blob(&self, digest: &str, max: u64) -> Result<Vec<u8>, ContentError> {
        let p = self.blob_path(digest)?;
        let f = self.open_blob(digest)?;
        let mut buf = Vec::new();
        f.take(max + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("reading", &p))?;
        if buf.len() as u64 > max {
            return Err(ContentError::TooLarge {
                digest: digest.to_string(),
                max,
            });
        }
        Ok(buf)
    }

    /// Starts writing a new blob into the ingest directory.
    pub fn writer(&self) -> Result<IngestWriter, ContentError> {
        let path = self.ingest.join(random_suffix());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("creating ingest file", &path))?;
        Ok(IngestWriter {
            file,
            path,
            blobs: self.blobs.clone(),
            hasher: Sha256::new(),
            size: 0,
            done: false,
        })
    }

    /// Writes `data` as a blob (no-op when it exists) and leases it.
    pub fn write_blob(&self, data: &[u8], lease: &mut Lease) -> Result<Committed, ContentError> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(io_err("writing", &self.ingest))?;
        w.commit(None, Some(data.len() as u64), lease)
    }

    /// Deletes a blob (GC only); returns the bytes freed, 0 when it was already gone.
    pub(crate) fn remove(&self, digest: &str) -> Result<u64, ContentError> {
        let p = self.blob_path(digest)?;
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&p) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err("removing blob", &p)(e)),
        }
    }

    /// Every stored blob as (digest, size); names that are not digests are skipped.
    pub fn list(&self) -> Result<Vec<(String, u64)>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err("reading directory", &self.blobs))? {
            let entry = entry.map_err(io_err("reading directory", &self.blobs))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !crate::reference::is_full_hex_id(name) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((format!("sha256:{name}"), size));
        }
        Ok(out)
    }
}

/// A blob being written: hashes what passes through; removed on drop unless committed.
#[derive(Debug)]
pub struct IngestWriter {
    file: File,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
    done: bool,
}

impl IngestWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fsyncs, verifies and renames the blob into place, leasing its digest first.
    pub fn commit(
        mut self,
        expected: Option<&str>,
        expected_size: Option<u64>,
        lease: &mut Lease,
    ) -> Result<Committed, ContentError> {
        self.file.flush().map_err(io_err("flushing", &self.path))?;
        self.file
            .sync_all()
            .map_err(io_err("syncing", &self.path))?;
        let digest = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if let Some(e) = expected {
            digest_hex(e)?;
            if e != digest {
                return Err(ContentError::DigestMismatch {
                    expected: e.to_string(),
                    actual: digest,
                });
            }
        }
        if let Some(s) = expected_size {
            if s != self.size {
                return Err(ContentError::SizeMismatch {
                    digest,
                    expected: s,
                    actual: self.size,
                });
            }
        }
        // Lease before looking at the destination so GC cannot remove it under us.
        lease.add(&digest);
        let dest = self.blobs.join(digest_hex(&digest)?);
        if dest.is_file() {
            return Ok(Committed {
                digest,
                size: self.size,
            });
        }
        fs::rename(&self.path, &dest).map_err(io_err("renaming blob into", &dest))?;
        self.done = true;
        sync_dir(&self.blobs).map_err(io_err("syncing directory", &self.blobs))?;
        Ok(Committed {
            digest,
            size: self.size,
        })
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "removing ingest file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Leases;

    #[test]
    fn write_verify_and_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let leases = Leases::default();
        let mut lease = leases.lease();
        let c = store.write_blob(b"hello", &mut lease).expect("write");
        assert_eq!(c.digest, sha256_digest(b"hello"));
        assert_eq!(store.read_blob(&c.digest, 10).expect("read"), b"hello");
        // Writing it again is a no-op success.
        let again = store.write_blob(b"hello", &mut lease).expect("rewrite");
        assert_eq!(again, c);
        // A wrong digest leaves nothing.
        let wrong = sha256_digest(b"other");
        let mut w = store.writer().expect("writer");
        w.write_all(b"hello!").expect("write");
        let err = w
            .commit(Some(&wrong), None, &mut lease)
            .expect_err("mismatch");
        assert!(matches!(err, ContentError::DigestMismatch { .. }));
        assert!(!store.blob_path(&wrong).expect("path").exists());
        assert_eq!(
            fs::read_dir(dir.path().join("ingest")).expect("ls").count(),
            0
        );
        assert!(matches!(
            store.read_blob(&c.digest, 2),
            Err(ContentError::TooLarge { .. })
        ));
        assert!(matches!(
            store.blob_path("sha256:xyz"),
            Err(ContentError::InvalidDigest { .. })
        ));
    }
}
