//! `docker import`: a (possibly compressed) root filesystem tar becomes a one-layer image.
//!
//! The tar is decompressed while it streams into the content store, so the stored blob is the
//! plain tar (media type `application/vnd.docker.image.rootfs.diff.tar`, as Docker stores import
//! layers) and its digest is the diff id. The snapshot is unpacked from the stored blob, then a
//! config is built (host platform unless one is given, `created` now with nanoseconds, one history
//! entry with the message, `--change`s applied) and the image and its tag are committed together.

use std::io::{BufReader, Read};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::changes::apply_changes;
use crate::config::{ContainerConfig, History, ImageConfig, Platform, RootFs};
use crate::error::ImageError;
use crate::media::DOCKER_LAYER_TAR;
use crate::meta::{ImageRecord, LayerRecord, SnapshotRecord};
use crate::store::{copy_stream, CopyFail, ImageStore, ImportOptions, NewImage};

const DEFAULT_MESSAGE: &str = "Imported from -";

impl ImageStore {
    /// Imports a root filesystem tar (plain, gzip or zstd) as a new image.
    pub fn import(
        &self,
        reader: impl Read + Send,
        opts: ImportOptions,
    ) -> Result<crate::Image, ImageError> {
        let result = self.import_inner(reader, opts);
        if result.is_err() {
            self.sweep_after_failure();
        }
        result
    }

    fn import_inner(
        &self,
        reader: impl Read + Send,
        opts: ImportOptions,
    ) -> Result<crate::Image, ImageError> {
        // Validate everything cheap before reading the stream.
        let platform = match &opts.platform {
            Some(p) if !p.is_empty() => Platform::parse(p)?,
            _ => Platform::host(),
        };
        let mut container = ContainerConfig::default();
        apply_changes(&mut container, &opts.changes)?;
        let tag = opts
            .reference
            .as_ref()
            .map(Self::tag_reference)
            .transpose()?;

        let mut lease = self.inner.leases.lease();
        let mut plain = berth_archive::decompress(BufReader::new(reader))
            .map_err(|source| ImageError::ImportRead { source })?;
        let mut writer = self.inner.content.writer()?;
        let ingest = writer.path().to_path_buf();
        copy_stream(&mut plain, &mut writer).map_err(|e| match e {
            CopyFail::Read(source) => ImageError::ArchiveRead {
                member: "import source".to_string(),
                source,
            },
            CopyFail::Write(source) => ImageError::io("writing", ingest, source),
        })?;
        let blob = writer.commit(None, None, &mut lease)?;
        let diff_id = blob.digest.clone();
        let chain_id = diff_id.clone();
        let info = self.ensure_snapshot(&chain_id, None, &diff_id, &blob.digest, &mut lease)?;

        let now = Utc::now();
        let created = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let message = if opts.message.is_empty() {
            DEFAULT_MESSAGE.to_string()
        } else {
            opts.message.clone()
        };
        let mut config = ImageConfig {
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            created: Some(created.clone()),
            config: container,
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(message.clone()),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        config
            .extra
            .insert("comment".to_string(), Value::String(message));
        let config_blob = self
            .inner
            .content
            .write_blob(&config.to_vec()?, &mut lease)?;
        let id = config_blob.digest;

        let record = ImageRecord {
            config_digest: id.clone(),
            manifest: None,
            layers: vec![LayerRecord {
                digest: blob.digest,
                media_type: DOCKER_LAYER_TAR.to_string(),
                diff_id: diff_id.clone(),
                size: blob.size,
                diff_size: blob.size,
            }],
            created: now,
            parent: String::new(),
        };
        let (_, mut committed) = self.commit(&[NewImage {
            id: id.clone(),
            record,
            snapshots: vec![(
                chain_id,
                SnapshotRecord {
                    parent: None,
                    diff_id,
                    size: info.size,
                },
            )],
            tags: tag.into_iter().collect(),
        }])?;
        drop(lease);
        committed
            .pop()
            .ok_or(ImageError::NotFound { reference: id })
    }
}
