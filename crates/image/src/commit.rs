//! `docker commit`: a new image made of a parent image plus one layer (a container's changes).
//!
//! The caller writes the layer tar (an overlay upper directory turned into an OCI diff) into the content store
//! through the closure it passes; the blob is stored uncompressed (its digest is the diff id, as for imports),
//! unpacked as a snapshot on top of the parent's chain, and recorded with a config derived from the parent's
//! (the container's config, a history entry, `created`, `author`, `container`) in one transaction with the tag.
//! Like Docker, a diff with no entries adds no layer: only a history entry marked `empty_layer`.

use std::io::{BufWriter, Write};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::config::{ContainerConfig, History, ImageConfig};
use crate::error::ImageError;
use crate::media::DOCKER_LAYER_TAR;
use crate::meta::{LayerRecord, MetaRead, SnapshotRecord};
use crate::reference::Reference;
use crate::snapshot::chain_ids;
use crate::store::{ImageStore, NewImage};

/// The size of a tar stream with no entries (just the end-of-archive marker).
const EMPTY_TAR_SIZE: u64 = 1024;

/// What [`ImageStore::commit_layer`] records besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The parent image id (`sha256:...`).
    pub parent: String,
    /// The new image's runtime config.
    pub config: ContainerConfig,
    /// History comment (and the config's `comment`).
    pub comment: String,
    pub author: String,
    /// History `created_by` (Docker: the container's command).
    pub created_by: String,
    /// The container the layer comes from (`container` in the config).
    pub container_id: String,
    /// Tag to give the image (`latest` added when it has none).
    pub reference: Option<Reference>,
}

impl ImageStore {
    /// Records a new image: `opts.parent` plus the layer `write_layer` writes (an uncompressed layer tar).
    pub fn commit_layer(
        &self,
        opts: CommitOptions,
        write_layer: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<crate::Image, ImageError> {
        let result = self.commit_layer_inner(opts, write_layer);
        if result.is_err() {
            self.sweep_after_failure();
        }
        result
    }

    fn commit_layer_inner(
        &self,
        opts: CommitOptions,
        write_layer: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<crate::Image, ImageError> {
        let parent = self.get(&opts.parent)?;
        let tag = opts
            .reference
            .as_ref()
            .map(Self::tag_reference)
            .transpose()?;
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut config = parent.config.clone();
        config.author = non_empty(&opts.author);
        config.config = opts.config;
        config.container = non_empty(&opts.container_id);
        config.container_config = None;
        config.history.push(History {
            created_by: non_empty(&opts.created_by),
            author: non_empty(&opts.author),
            comment: non_empty(&opts.comment),
            ..History::default()
        });
        config.extra.remove("id");
        config.extra.remove("parent");
        match non_empty(&opts.comment) {
            Some(c) => config.extra.insert("comment".to_string(), Value::String(c)),
            None => config.extra.remove("comment"),
        };
        self.add_image_on(Some(&parent), config, Some(write_layer), tag)
    }

    /// Records a build step's image: `parent` (none for `FROM scratch`) plus the layer `write_layer` writes, if
    /// any, with `config` as the caller made it (its last history entry describes the step; `created` times,
    /// `rootfs` and `empty_layer` are filled in here). No tag; the builder tags the final image.
    pub fn add_step_image(
        &self,
        parent: Option<&str>,
        config: ImageConfig,
        write_layer: Option<impl FnOnce(&mut dyn Write) -> std::io::Result<()>>,
    ) -> Result<crate::Image, ImageError> {
        let parent = parent.map(|p| self.get(p)).transpose()?;
        let result = self.add_image_on(parent.as_ref(), config, write_layer, None);
        if result.is_err() {
            self.sweep_after_failure();
        }
        result
    }

    /// Records an image made of the first `layers` layers of the local image `source` (a build's `--cache-from`
    /// hit: the layers are already in the store), with `parent` as its parent and `config` as the caller made it
    /// (`rootfs` and `created` are filled in here).
    pub fn add_image_from_layers(
        &self,
        parent: Option<&str>,
        mut config: ImageConfig,
        source: &str,
        layers: usize,
    ) -> Result<crate::Image, ImageError> {
        let src = self.get(source)?;
        let rec = self.record_of(&src.id, &src.id)?;
        if layers > rec.layers.len() || layers > src.diff_ids.len() {
            return Err(ImageError::NotFound {
                reference: format!("{source} (layer {layers})"),
            });
        }
        let mut lease = self.inner.leases.lease();
        let now = Utc::now();
        stamp(&mut config, now, src.diff_ids[..layers].to_vec());
        let config_blob = self
            .inner
            .content
            .write_blob(&config.to_vec()?, &mut lease)?;
        let id = config_blob.digest;
        let record = crate::meta::ImageRecord {
            config_digest: id.clone(),
            manifest: None,
            layers: rec.layers[..layers].to_vec(),
            created: now,
            parent: parent.map(str::to_string).unwrap_or_default(),
        };
        let (_, mut committed) = self.commit(&[NewImage {
            id: id.clone(),
            record,
            snapshots: Vec::new(),
            tags: Vec::new(),
        }])?;
        drop(lease);
        committed
            .pop()
            .ok_or(ImageError::NotFound { reference: id })
    }

    fn add_image_on(
        &self,
        parent: Option<&crate::Image>,
        mut config: ImageConfig,
        write_layer: Option<impl FnOnce(&mut dyn Write) -> std::io::Result<()>>,
        tag: Option<Reference>,
    ) -> Result<crate::Image, ImageError> {
        let mut layers = match parent {
            Some(parent) => {
                self.inner
                    .meta
                    .read()?
                    .image(&parent.id)?
                    .ok_or_else(|| ImageError::NotFound {
                        reference: parent.id.clone(),
                    })?
                    .layers
            }
            None => Vec::new(),
        };
        let mut diff_ids = parent.map(|p| p.diff_ids.clone()).unwrap_or_default();
        let parent_chain = parent.and_then(|p| p.chain_ids.last().cloned());

        let mut lease = self.inner.leases.lease();
        let mut snapshots = Vec::new();
        let mut empty = true;
        if let Some(write_layer) = write_layer {
            let mut writer = self.inner.content.writer()?;
            let ingest = writer.path().to_path_buf();
            {
                let mut buffered = BufWriter::new(&mut writer);
                write_layer(&mut buffered)
                    .and_then(|()| buffered.flush())
                    .map_err(|e| ImageError::io("writing the layer into", &ingest, e))?;
            }
            empty = writer.size() <= EMPTY_TAR_SIZE;
            if !empty {
                let blob = writer.commit(None, None, &mut lease)?;
                let diff_id = blob.digest.clone();
                diff_ids.push(diff_id.clone());
                let chains = chain_ids(&diff_ids);
                let chain = chains.last().cloned().unwrap_or_else(|| diff_id.clone());
                let info = self.ensure_snapshot(
                    &chain,
                    parent_chain.as_deref(),
                    &diff_id,
                    &blob.digest,
                    &mut lease,
                )?;
                snapshots.push((
                    chain,
                    SnapshotRecord {
                        parent: parent_chain.clone(),
                        diff_id: diff_id.clone(),
                        size: info.size,
                    },
                ));
                layers.push(LayerRecord {
                    digest: blob.digest.clone(),
                    media_type: DOCKER_LAYER_TAR.to_string(),
                    diff_id: diff_id.clone(),
                    size: blob.size,
                    diff_size: blob.size,
                });
            }
        }

        let now = Utc::now();
        let created = stamp(&mut config, now, diff_ids);
        if let Some(h) = config.history.last_mut() {
            h.created = Some(created);
            h.empty_layer = empty.then_some(true);
        }
        let config_blob = self
            .inner
            .content
            .write_blob(&config.to_vec()?, &mut lease)?;
        let id = config_blob.digest;

        let record = crate::meta::ImageRecord {
            config_digest: id.clone(),
            manifest: None,
            layers,
            created: now,
            parent: parent.map(|p| p.id.clone()).unwrap_or_default(),
        };
        let (_, mut committed) = self.commit(&[NewImage {
            id: id.clone(),
            record,
            snapshots,
            tags: tag.into_iter().collect(),
        }])?;
        drop(lease);
        committed
            .pop()
            .ok_or(ImageError::NotFound { reference: id })
    }
}

/// Fills in what a new image's config records about its making: `created` (also on history entries that have
/// no date) and the layers' diff ids. Returns the timestamp as written.
fn stamp(config: &mut ImageConfig, now: chrono::DateTime<Utc>, diff_ids: Vec<String>) -> String {
    let created = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    config.created = Some(created.clone());
    config.rootfs.diff_ids = diff_ids;
    for h in config.history.iter_mut().filter(|h| h.created.is_none()) {
        h.created = Some(created.clone());
    }
    created
}
