//! Resumable blob downloads into the content store.
//!
//! A [`BlobIngest`] writes blob `sha256:<hex>` to `content/ingest/<hex>.partial`, hashing as it
//! goes. The file is keyed by digest and survives errors, cancellation and daemon restarts (the
//! content store's open keeps fresh partials), so the next attempt reopens it, re-hashes what is
//! there and asks the registry only for the rest (HTTP `Range`). [`BlobIngest::commit`] fsyncs,
//! verifies size and digest and renames the file into `blobs/sha256/`; a digest mismatch deletes the
//! partial, since its bytes cannot be trusted. One writer per digest at a time: opening a blob that
//! is already being written fails with [`ImageError::IngestBusy`].
//!
//! The readers here let a layer be unpacked while it downloads: [`Tee`] replays the partial's bytes
//! and then passes the network stream through, writing every byte it hands on into the ingest, and
//! [`RatioGuard`] stops a decompression bomb long before it fills the disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::content::{digest_hex, ContentError};
use crate::error::ImageError;
use crate::store::ImageStore;

/// Buffer between the network stream and the partial file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Whether an ingest ends committed, kept for a later resume, or deleted as junk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Keep,
    Committed,
    Discard,
}

/// A (possibly resumed) download of one blob; see the module documentation.
#[derive(Debug)]
pub struct BlobIngest {
    store: ImageStore,
    digest: String,
    expected_size: u64,
    path: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    written: u64,
    end: End,
}

fn content_io(op: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> ContentError {
    let path = path.to_path_buf();
    move |source| ContentError::Io { op, path, source }
}

impl BlobIngest {
    /// Opens (or resumes) the download of `digest`, expected to be `size` bytes.
    pub(crate) fn open(
        store: &ImageStore,
        digest: &str,
        size: u64,
    ) -> Result<BlobIngest, ImageError> {
        digest_hex(digest)?;
        {
            let mut busy = store
                .inner
                .ingesting
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !busy.insert(digest.to_string()) {
                return Err(ImageError::IngestBusy {
                    digest: digest.to_string(),
                });
            }
        }
        // From here on, dropping `ingest` releases the claim.
        let mut ingest = BlobIngest {
            store: store.clone(),
            digest: digest.to_string(),
            expected_size: size,
            path: store.inner.content.partial_path(digest)?,
            file: None,
            hasher: Sha256::new(),
            written: 0,
            end: End::Keep,
        };
        let path = ingest.path.clone();
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(content_io("opening ingest file", &path))?;
        let len = file
            .metadata()
            .map_err(content_io("reading metadata of", &path))?
            .len();
        if len > size {
            file.set_len(0).map_err(content_io("truncating", &path))?;
        } else if len > 0 {
            let copied = io::copy(
                &mut (&mut file).take(len),
                &mut HashWriter(&mut ingest.hasher),
            )
            .map_err(content_io("reading", &path))?;
            ingest.written = copied;
            if copied > 0 {
                tracing::debug!(digest, bytes = copied, "resuming blob download");
            }
        }
        file.seek(SeekFrom::Start(ingest.written))
            .map_err(content_io("seeking", &path))?;
        ingest.file = Some(BufWriter::with_capacity(WRITE_BUFFER, file));
        Ok(ingest)
    }

    /// The blob's digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Bytes already present: ask the registry for the blob from here on.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// The size the blob must have.
    pub fn expected_size(&self) -> u64 {
        self.expected_size
    }

    /// Forgets what was there (the server ignored the `Range` request and sends everything).
    pub fn restart(&mut self) -> Result<(), ImageError> {
        let path = self.path.clone();
        let file = self.writer()?;
        file.flush().map_err(content_io("flushing", &path))?;
        let f = file.get_mut();
        f.set_len(0).map_err(content_io("truncating", &path))?;
        f.seek(SeekFrom::Start(0))
            .map_err(content_io("seeking", &path))?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, ContentError> {
        let path = self.path.clone();
        self.file.as_mut().ok_or_else(|| ContentError::Io {
            op: "writing",
            path,
            source: io::Error::other("ingest already closed"),
        })
    }

    /// The partial file, to replay what an earlier attempt stored.
    pub(crate) fn reopen_prefix(&mut self) -> Result<io::Take<File>, ContentError> {
        let path = self.path.clone();
        self.writer()?
            .flush()
            .map_err(content_io("flushing", &path))?;
        let f = File::open(&path).map_err(content_io("opening", &path))?;
        Ok(f.take(self.written))
    }

    /// Fsyncs, verifies size and digest, and moves the blob into the content store. A short blob
    /// stays a partial (the next attempt resumes it); a wrong one is deleted.
    pub fn commit(mut self) -> Result<(), ContentError> {
        let path = self.path.clone();
        let mut w = self.file.take().ok_or_else(|| ContentError::Io {
            op: "committing",
            path: path.clone(),
            source: io::Error::other("ingest already closed"),
        })?;
        w.flush().map_err(content_io("flushing", &path))?;
        let f = w.into_inner().map_err(|e| ContentError::Io {
            op: "flushing",
            path: path.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(content_io("syncing", &path))?;
        drop(f);
        if self.written != self.expected_size {
            if self.written > self.expected_size {
                self.end = End::Discard;
            }
            return Err(ContentError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.expected_size,
                actual: self.written,
            });
        }
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if actual != self.digest {
            self.end = End::Discard;
            return Err(ContentError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        self.store.inner.content.publish(&path, &self.digest)?;
        self.end = End::Committed;
        Ok(())
    }
}

impl Write for BlobIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.expected_size {
            self.end = End::Discard;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than the {} bytes its descriptor declares",
                    self.digest, self.expected_size
                ),
            ));
        }
        let file = self.writer().map_err(io::Error::other)?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().map_err(io::Error::other)?.flush()
    }
}

impl Drop for BlobIngest {
    fn drop(&mut self) {
        if let Some(mut f) = self.file.take() {
            if let Err(e) = f.flush() {
                tracing::warn!(path = %self.path.display(), error = %e, "flushing partial blob");
            }
        }
        if self.end == End::Discard {
            if let Err(e) = fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "removing bad blob");
                }
            }
        }
        let mut busy = self
            .store
            .inner
            .ingesting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.digest);
    }
}

/// Feeds a hasher from `io::copy`.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Replays an ingest's stored prefix, then reads the network rest and writes it into the ingest.
pub(crate) struct Tee<R> {
    pub(crate) prefix: Option<io::Take<File>>,
    pub(crate) rest: R,
    pub(crate) ingest: Option<BlobIngest>,
    /// Compressed bytes handed on so far (for [`RatioGuard`]).
    pub(crate) consumed: Arc<AtomicU64>,
}

impl<R: Read> Tee<R> {
    /// Reads the rest of the network stream into the ingest (bytes after the end of the tar).
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = &mut self.prefix {
            let n = p.read(buf)?;
            if n > 0 {
                self.consumed.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            self.prefix = None;
        }
        let n = loop {
            match self.rest.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n > 0 {
            let ingest = self
                .ingest
                .as_mut()
                .ok_or_else(|| io::Error::other("ingest already committed"))?;
            ingest.write_all(&buf[..n])?;
            self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Counts the bytes read through it.
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Fails once the uncompressed stream outgrows `max_ratio` times the compressed bytes consumed
/// (after a `slack` every layer may use).
pub(crate) struct RatioGuard<R> {
    pub(crate) inner: R,
    pub(crate) compressed: Arc<AtomicU64>,
    pub(crate) plain: u64,
    pub(crate) max_ratio: u64,
    pub(crate) slack: u64,
    pub(crate) tripped: Arc<AtomicBool>,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.plain += n as u64;
        let allowed = self
            .compressed
            .load(Ordering::Relaxed)
            .saturating_mul(self.max_ratio)
            .saturating_add(self.slack);
        if self.plain > allowed {
            self.tripped.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "layer expands more than {} times its compressed size",
                    self.max_ratio
                ),
            ));
        }
        Ok(n)
    }
}
