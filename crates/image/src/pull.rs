//! The store side of a registry pull: an [`IngestSession`] leases what the pull assembles,
//! downloads blobs resumably ([`BlobIngest`]), unpacks layers while they stream in, and finally
//! records the image, its tag and its repo digest in one transaction ([`IngestSession::commit_pulled`]).
//!
//! A layer streamed through [`IngestSession::unpack_stream`] is decompressed, extracted (path-safe,
//! by `berth_archive::apply_layer`) and hashed against its diff id while the compressed bytes are
//! written to the ingest; the blob digest is verified before the snapshot is renamed into place, so
//! a tampered blob leaves neither a blob nor a snapshot. Layers do not read their parents while
//! unpacking (whiteouts are kept as overlay markers), so the layers of one image unpack in
//! parallel. Everything here blocks; async callers use `spawn_blocking`.
//!
//! What a failed or cancelled pull leaves behind: partial downloads (resumed by the next pull),
//! and complete blobs and snapshots that no image references yet. The latter are reused by a pull
//! that comes before the next GC (any removal, prune, or the next open) and swept by it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::ImageConfig;
use crate::content::sha256_digest;
use crate::error::ImageError;
use crate::ingest::{BlobIngest, Counting, RatioGuard, Tee};
use crate::lease::Lease;
use crate::meta::{ImageRecord, LayerRecord, ManifestRef, MetaRead, SnapshotRecord};
use crate::reference::Reference;
use crate::snapshot::{chain_ids, SnapshotError, UnpackTarget};
use crate::store::{Image, ImageStore, NewImage};

/// Bounds on unpacking one pulled layer, against decompression and tar bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Largest sum of file sizes in one layer.
    pub max_bytes: u64,
    /// Largest number of entries in one layer.
    pub max_entries: u64,
    /// Largest uncompressed/compressed size ratio (gzip cannot exceed ~1032 on real data).
    pub max_ratio: u64,
    /// Uncompressed bytes every layer may have regardless of the ratio.
    pub ratio_slack: u64,
}

impl Default for UnpackLimits {
    /// 64 GiB, two million entries, ratio 500 after 64 MiB.
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
            max_ratio: 500,
            ratio_slack: 64 << 20,
        }
    }
}

/// A layer to unpack: the blob and the snapshot it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTarget {
    /// Digest of the (compressed) blob.
    pub digest: String,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar, from the image config.
    pub diff_id: String,
    /// Chain id of the snapshot.
    pub chain_id: String,
    /// Chain id of the layer below, if any.
    pub parent: Option<String>,
}

impl LayerTarget {
    /// The targets of an image's layers: blob digests and sizes with the config's diff ids.
    pub fn for_image(
        blobs: &[(String, u64)],
        diff_ids: &[String],
    ) -> Result<Vec<LayerTarget>, ImageError> {
        if blobs.len() != diff_ids.len() {
            return Err(ImageError::InvalidImage {
                reference: String::new(),
                reason: format!(
                    "the manifest lists {} layers but the config has {} diff ids",
                    blobs.len(),
                    diff_ids.len()
                ),
            });
        }
        let chains = chain_ids(diff_ids);
        Ok(blobs
            .iter()
            .enumerate()
            .map(|(i, (digest, size))| LayerTarget {
                digest: digest.clone(),
                size: *size,
                diff_id: diff_ids[i].clone(),
                chain_id: chains[i].clone(),
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
            })
            .collect())
    }
}

/// What unpacking a layer made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackedLayer {
    /// Bytes of unpacked file content.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub diff_size: u64,
}

/// One layer of a pulled image, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// Everything [`IngestSession::commit_pulled`] records.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference pulled (with a tag, or by digest).
    pub reference: Reference,
    /// Digest of the manifest or index the reference resolved to (the repo digest).
    pub repo_digest: String,
    /// The image manifest's bytes (stored, and sent back unchanged by push).
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    /// The config blob's bytes.
    pub config: Vec<u8>,
    pub layers: Vec<PulledLayer>,
}

/// The image recorded by a pull.
#[derive(Debug, Clone)]
pub struct PullCommit {
    pub image: Image,
    /// False when the reference already named this image (Docker's `Image is up to date`).
    pub updated: bool,
}

/// Leases everything a pull assembles until it is committed or dropped (cheap to clone; share
/// one per pull between its layer tasks).
#[derive(Debug, Clone)]
pub struct IngestSession {
    store: ImageStore,
    lease: Arc<Mutex<Lease>>,
}

impl ImageStore {
    /// Starts a pull: see [`IngestSession`].
    pub fn begin_ingest(&self) -> IngestSession {
        IngestSession {
            store: self.clone(),
            lease: Arc::new(Mutex::new(self.inner.leases.lease())),
        }
    }

    /// Whether blob `digest` is stored.
    pub fn has_blob(&self, digest: &str) -> Result<bool, ImageError> {
        Ok(self.inner.content.blob_path(digest)?.is_file())
    }

    /// The stored blob's size.
    pub fn blob_size(&self, digest: &str) -> Result<u64, ImageError> {
        Ok(self.inner.content.size(digest)?)
    }

    /// Opens a stored blob for reading (push sends layers and configs from here).
    pub fn open_blob(&self, digest: &str) -> Result<std::fs::File, ImageError> {
        Ok(self.inner.content.open_blob(digest)?)
    }

    /// Removes blobs and snapshots no image references and no operation leases (after a pull
    /// that failed on bad content); returns the bytes freed.
    pub fn collect_garbage(&self) -> Result<u64, ImageError> {
        Ok(self.gc()?.bytes)
    }
}

impl IngestSession {
    fn lease(&self) -> MutexGuard<'_, Lease> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether blob `digest` is stored; leases it first so it stays for this pull.
    pub fn has_blob(&self, digest: &str) -> Result<bool, ImageError> {
        self.lease().add(digest);
        self.store.has_blob(digest)
    }

    /// Whether snapshot `chain_id` exists; leases it first so it stays for this pull.
    pub fn has_snapshot(&self, chain_id: &str) -> Result<bool, ImageError> {
        self.lease().add(chain_id);
        Ok(self.store.inner.snapshots.exists(chain_id)?)
    }

    /// Opens or resumes the download of blob `digest` of `size` bytes.
    pub fn ingest(&self, digest: &str, size: u64) -> Result<BlobIngest, ImageError> {
        self.lease().add(digest);
        BlobIngest::open(&self.store, digest, size)
    }

    /// Stores a small blob held in memory, verifying it against `digest`.
    pub fn write_blob(&self, digest: &str, data: &[u8]) -> Result<(), ImageError> {
        let actual = sha256_digest(data);
        if actual != digest {
            return Err(crate::ContentError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            }
            .into());
        }
        let mut lease = self.lease();
        self.store.inner.content.write_blob(data, &mut lease)?;
        Ok(())
    }

    /// Unpacks a layer while its blob streams in: `ingest` holds what earlier attempts stored,
    /// `rest` yields the blob from `ingest.offset()` on. The blob is committed (verified) before
    /// the snapshot is published. When the snapshot already exists the blob is only stored.
    pub fn unpack_stream(
        &self,
        mut ingest: BlobIngest,
        target: &LayerTarget,
        rest: impl std::io::Read + Send,
        limits: &UnpackLimits,
    ) -> Result<UnpackedLayer, ImageError> {
        {
            let mut lease = self.lease();
            lease.add(&target.chain_id);
            lease.add(&target.digest);
        }
        let snaps = &self.store.inner.snapshots;
        if snaps.exists(&target.chain_id)? {
            let mut tee = Tee {
                prefix: None,
                rest,
                ingest: Some(ingest),
                consumed: Arc::new(AtomicU64::new(0)),
            };
            tee.drain().map_err(|source| SnapshotError::Read {
                layer: target.digest.clone(),
                source,
            })?;
            if let Some(i) = tee.ingest.take() {
                i.commit()?;
            }
            let info = snaps.info(&target.chain_id)?;
            return Ok(UnpackedLayer {
                size: info.size,
                diff_size: info.diff_size,
            });
        }
        let consumed = Arc::new(AtomicU64::new(0));
        let prefix = if ingest.offset() > 0 {
            Some(ingest.reopen_prefix()?)
        } else {
            None
        };
        let tee = Arc::new(Mutex::new(Tee {
            prefix,
            rest,
            ingest: Some(ingest),
            consumed: consumed.clone(),
        }));
        let hook_tee = tee.clone();
        let layer = target.digest.clone();
        let finish = move || -> Result<(), SnapshotError> {
            let mut t = hook_tee.lock().unwrap_or_else(|p| p.into_inner());
            t.drain().map_err(|source| SnapshotError::Read {
                layer: layer.clone(),
                source,
            })?;
            match t.ingest.take() {
                Some(i) => i
                    .commit()
                    .map_err(|source| SnapshotError::Blob { layer, source }),
                None => Ok(()),
            }
        };
        self.unpack_guarded(target, SharedTee(tee), consumed, limits, finish)
    }

    /// Unpacks a layer whose blob is already stored.
    pub fn unpack_stored(
        &self,
        target: &LayerTarget,
        limits: &UnpackLimits,
    ) -> Result<UnpackedLayer, ImageError> {
        {
            let mut lease = self.lease();
            lease.add(&target.chain_id);
            lease.add(&target.digest);
        }
        let snaps = &self.store.inner.snapshots;
        if snaps.exists(&target.chain_id)? {
            let info = snaps.info(&target.chain_id)?;
            return Ok(UnpackedLayer {
                size: info.size,
                diff_size: info.diff_size,
            });
        }
        let consumed = Arc::new(AtomicU64::new(0));
        let blob = Counting {
            inner: self.store.inner.content.open_blob(&target.digest)?,
            count: consumed.clone(),
        };
        self.unpack_guarded(target, blob, consumed, limits, || Ok(()))
    }

    fn unpack_guarded(
        &self,
        target: &LayerTarget,
        compressed: impl std::io::Read + Send,
        consumed: Arc<AtomicU64>,
        limits: &UnpackLimits,
        finish: impl FnOnce() -> Result<(), SnapshotError>,
    ) -> Result<UnpackedLayer, ImageError> {
        let plain =
            berth_archive::decompress(std::io::BufReader::new(compressed)).map_err(|source| {
                SnapshotError::Decompress {
                    layer: target.digest.clone(),
                    source,
                }
            })?;
        let tripped = Arc::new(AtomicBool::new(false));
        let guarded = RatioGuard {
            inner: plain,
            compressed: consumed,
            plain: 0,
            max_ratio: limits.max_ratio,
            slack: limits.ratio_slack,
            tripped: tripped.clone(),
        };
        let archive_limits = berth_archive::Limits {
            max_total_bytes: limits.max_bytes,
            max_entries: limits.max_entries,
        };
        let unpack_target = UnpackTarget {
            chain_id: &target.chain_id,
            parent: target.parent.as_deref(),
            diff_id: &target.diff_id,
            layer: &target.digest,
        };
        let result = self.store.inner.snapshots.unpack_plain(
            &unpack_target,
            guarded,
            &archive_limits,
            finish,
        );
        match result {
            Ok(info) => Ok(UnpackedLayer {
                size: info.size,
                diff_size: info.diff_size,
            }),
            Err(_) if tripped.load(Ordering::Relaxed) => Err(ImageError::DecompressionBomb {
                layer: target.digest.clone(),
                max_ratio: limits.max_ratio,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a pulled image: stores its config and manifest, checks every layer's blob and
    /// snapshot, and writes the image record, the tag (when the reference has one) and the repo
    /// digest `name@sha256:...` in one transaction.
    pub fn commit_pulled(&self, pulled: &PulledImage) -> Result<PullCommit, ImageError> {
        let invalid = |reason: String| ImageError::InvalidImage {
            reference: pulled.reference.familiar(),
            reason,
        };
        let content = &self.store.inner.content;
        let (config_digest, manifest_digest) = {
            let mut lease = self.lease();
            let c = content.write_blob(&pulled.config, &mut lease)?;
            let m = content.write_blob(&pulled.manifest, &mut lease)?;
            (c.digest, m.digest)
        };
        let config = ImageConfig::from_slice(&pulled.config, &config_digest)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != pulled.layers.len() {
            return Err(invalid(format!(
                "the manifest lists {} layers but the config has {} diff ids",
                pulled.layers.len(),
                diff_ids.len()
            )));
        }
        let chains = chain_ids(diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        let mut snapshots = Vec::with_capacity(chains.len());
        for (i, l) in pulled.layers.iter().enumerate() {
            if !self.has_blob(&l.digest)? {
                return Err(invalid(format!("layer {} was not downloaded", l.digest)));
            }
            if !self.has_snapshot(&chains[i])? {
                return Err(invalid(format!("layer {} was not unpacked", l.digest)));
            }
            let info = self.store.inner.snapshots.info(&chains[i])?;
            layers.push(LayerRecord {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                diff_id: diff_ids[i].clone(),
                size: l.size,
                diff_size: info.diff_size,
            });
            snapshots.push((
                chains[i].clone(),
                SnapshotRecord {
                    parent: i.checked_sub(1).map(|p| chains[p].clone()),
                    diff_id: diff_ids[i].clone(),
                    size: info.size,
                },
            ));
        }
        let digest_ref = Reference::parse_named(&format!(
            "{}@{}",
            pulled.reference.repository(),
            pulled.repo_digest
        ))?;
        let mut tags = Vec::with_capacity(2);
        if let Some(tag) = pulled.reference.tag() {
            tags.push(pulled.reference.name_only().with_tag(tag)?);
        }
        tags.push(digest_ref);
        let main_ref = tags[0].full();
        let before = self.store.inner.meta.read()?.tag(&main_ref)?;
        let updated = before.as_deref() != Some(config_digest.as_str());
        let image = NewImage {
            id: config_digest.clone(),
            record: ImageRecord {
                config_digest: config_digest.clone(),
                manifest: Some(ManifestRef {
                    digest: manifest_digest,
                    media_type: pulled.manifest_media_type.clone(),
                }),
                layers,
                created: chrono::Utc::now(),
                parent: String::new(),
            },
            snapshots,
            tags,
        };
        let (_, mut committed) = self.store.commit(&[image])?;
        let image = committed.pop().ok_or(ImageError::NotFound {
            reference: config_digest,
        })?;
        Ok(PullCommit { image, updated })
    }
}

/// A [`Tee`] shared between the unpacker (reading) and the publish hook (draining, committing).
struct SharedTee<R>(Arc<Mutex<Tee<R>>>);

impl<R: std::io::Read> std::io::Read for SharedTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).read(buf)
    }
}
