//! The store side of a registry push: the manifest to send for an image and the repo digest to
//! record once the registry accepted it.
//!
//! An image that came with a manifest (pulled, or loaded from an OCI layout) is pushed with the
//! stored manifest bytes, unchanged, so its digest stays the one the registry reported. Other
//! images (imported, committed, loaded from a docker-archive) get an OCI manifest built from their
//! records; the bytes are deterministic, so pushing twice yields the same digest.

use crate::content::sha256_digest;
use crate::error::ImageError;
use crate::media::{self, Descriptor, Manifest};
use crate::meta::MetaRead;
use crate::reference::Reference;
use crate::store::{ImageStore, MAX_JSON_BLOB};

/// A blob a manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// The manifest of a stored image, ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushManifest {
    /// The image id (config digest).
    pub image_id: String,
    pub media_type: String,
    /// The exact bytes to send.
    pub bytes: Vec<u8>,
    /// `sha256:` of `bytes`.
    pub digest: String,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
}

/// The OCI media type for a stored layer blob's media type.
fn oci_layer_type(mt: &str) -> &str {
    match mt {
        media::DOCKER_LAYER_TAR => media::OCI_LAYER_TAR,
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP,
        other => other,
    }
}

fn blob_ref(d: &Descriptor, fallback: &str) -> Result<BlobRef, ImageError> {
    Ok(BlobRef {
        digest: d.digest.clone(),
        size: u64::try_from(d.size).map_err(|_| ImageError::Corrupt {
            image: d.digest.clone(),
            reason: "negative size in the stored manifest".to_string(),
        })?,
        media_type: d.media_type.clone().unwrap_or_else(|| fallback.to_string()),
    })
}

impl ImageStore {
    /// The manifest `push` sends for the image `name_or_id` names.
    pub fn push_manifest(&self, name_or_id: &str) -> Result<PushManifest, ImageError> {
        let img = self.resolve(name_or_id)?;
        let rec = self.record_of(&img.id, name_or_id)?;
        if let Some(m) = &rec.manifest {
            if self.has_blob(&m.digest)? {
                let bytes = self.inner.content.read_blob(&m.digest, MAX_JSON_BLOB)?;
                let manifest: Manifest =
                    serde_json::from_slice(&bytes).map_err(|e| ImageError::Corrupt {
                        image: img.id.clone(),
                        reason: format!("stored manifest {} does not parse: {e}", m.digest),
                    })?;
                let layers = manifest
                    .layers
                    .iter()
                    .map(|l| blob_ref(l, media::OCI_LAYER_GZIP))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(PushManifest {
                    image_id: img.id.clone(),
                    media_type: m.media_type.clone(),
                    digest: m.digest.clone(),
                    bytes,
                    config: blob_ref(&manifest.config, media::OCI_CONFIG)?,
                    layers,
                });
            }
        }
        let config = BlobRef {
            digest: rec.config_digest.clone(),
            size: self.inner.content.size(&rec.config_digest)?,
            media_type: media::OCI_CONFIG.to_string(),
        };
        let layers: Vec<BlobRef> = rec
            .layers
            .iter()
            .map(|l| BlobRef {
                digest: l.digest.clone(),
                size: l.size,
                media_type: oci_layer_type(&l.media_type).to_string(),
            })
            .collect();
        let desc = |b: &BlobRef| Descriptor {
            media_type: Some(b.media_type.clone()),
            digest: b.digest.clone(),
            size: b.size as i64,
            ..Descriptor::default()
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: desc(&config),
            layers: layers.iter().map(desc).collect(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| ImageError::Corrupt {
            image: img.id.clone(),
            reason: format!("serialising manifest: {e}"),
        })?;
        Ok(PushManifest {
            image_id: img.id,
            media_type: media::OCI_MANIFEST.to_string(),
            digest: sha256_digest(&bytes),
            bytes,
            config,
            layers,
        })
    }

    /// Before a push, as Docker does: layers stored uncompressed (imported, committed, built) become gzip blobs,
    /// and the image's record points at them from then on (the image id, a digest of the config, is unchanged;
    /// later pushes reuse the compressed blobs, and GC takes the uncompressed ones once nothing uses them).
    /// Images that came with a manifest are pushed as they came. Returns how many layers were compressed.
    pub fn compress_layers_for_push(&self, name_or_id: &str) -> Result<usize, ImageError> {
        let img = self.resolve(name_or_id)?;
        let rec = self.record_of(&img.id, name_or_id)?;
        if rec.manifest.is_some() {
            return Ok(0);
        }
        let plain = |mt: &str| mt == media::DOCKER_LAYER_TAR || mt == media::OCI_LAYER_TAR;
        if !rec.layers.iter().any(|l| plain(&l.media_type)) {
            return Ok(0);
        }
        let mut lease = self.inner.leases.lease();
        let mut layers = rec.layers.clone();
        let mut done = 0;
        for l in layers.iter_mut().filter(|l| plain(&l.media_type)) {
            let mut src = self.inner.content.open_blob(&l.digest)?;
            let mut writer = self.inner.content.writer()?;
            let ingest = writer.path().to_path_buf();
            {
                let mut gz = flate2::write::GzEncoder::new(
                    std::io::BufWriter::new(&mut writer),
                    flate2::Compression::fast(),
                );
                std::io::copy(&mut src, &mut gz)
                    .and_then(|_| gz.finish())
                    .and_then(|mut w| std::io::Write::flush(&mut w))
                    .map_err(|e| ImageError::io("compressing a layer into", &ingest, e))?;
            }
            let blob = writer.commit(None, None, &mut lease)?;
            l.diff_size = l.size;
            l.digest = blob.digest;
            l.size = blob.size;
            l.media_type = media::DOCKER_LAYER_GZIP.to_string();
            done += 1;
        }
        let new = crate::meta::ImageRecord { layers, ..rec };
        self.inner.meta.update(|t| {
            if t.image(&img.id)?.is_none() {
                return Err(ImageError::NotFound {
                    reference: img.id.clone(),
                });
            }
            t.put_image(&img.id, &new)?;
            Ok(())
        })?;
        drop(lease);
        Ok(done)
    }

    /// Records `repository@digest` for image `image_id` (after a push, as Docker does).
    pub fn add_repo_digest(
        &self,
        repository: &Reference,
        digest: &str,
        image_id: &str,
    ) -> Result<(), ImageError> {
        let r = Reference::parse_named(&format!("{}@{digest}", repository.repository()))?;
        self.inner.meta.update(|t| {
            if t.image(image_id)?.is_none() {
                return Err(ImageError::NotFound {
                    reference: image_id.to_string(),
                });
            }
            t.set_tag(&r.full(), image_id)?;
            Ok(())
        })
    }
}
