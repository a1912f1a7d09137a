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
        let rec = self
            .inner
            .meta
            .read()?
            .image(&img.id)?
            .ok_or_else(|| ImageError::NotFound {
                reference: name_or_id.to_string(),
            })?;
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
