//! `docker save`: write images as the archive Docker v25+ writes.
//!
//! Members: `blobs/sha256/<config>`, `blobs/sha256/<layer>` (plain tars, named by diff id; a
//! compressed stored blob is decompressed on the fly), one OCI manifest blob per image,
//! `index.json` (one entry per tag with `io.containerd.image.name` and
//! `org.opencontainers.image.ref.name`, or one unnamed entry), `manifest.json`, `oci-layout` and
//! `repositories`. Both docker-archive readers (`manifest.json`) and OCI layout readers
//! (`index.json`) can read it. All timestamps are zero so the output is reproducible.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use serde::Serialize;

use crate::content::{digest_hex, sha256_digest};
use crate::error::ImageError;
use crate::media::{self, ArchiveManifestEntry, Descriptor, Index, Manifest, OciLayout};
use crate::meta::{ImageRecord, MetaRead};
use crate::reference::Reference;
use crate::store::{is_image_id_prefix, resolve_id, ImageStore};

/// Reads exactly `remaining` bytes from `inner` and fails if it has fewer or more.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
    what: String,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is longer than recorded", self.what),
                )),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than recorded", self.what),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// One image to write and the references it is saved under.
struct SaveItem {
    id: String,
    refs: Vec<Reference>,
}

fn add_item(items: &mut Vec<SaveItem>, id: String, r: Option<Reference>) {
    let pos = match items.iter().position(|i| i.id == id) {
        Some(p) => p,
        None => {
            items.push(SaveItem {
                id,
                refs: Vec::new(),
            });
            items.len() - 1
        }
    };
    if let Some(r) = r {
        if !items[pos].refs.contains(&r) {
            items[pos].refs.push(r);
        }
    }
}

struct TarOut<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> TarOut<W> {
    fn dir(&mut self, path: &str) -> Result<(), ImageError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        self.builder
            .append_data(&mut h, path, io::empty())
            .map_err(|source| ImageError::SaveWrite {
                member: path.to_string(),
                source,
            })
    }

    fn file(&mut self, path: &str, size: u64, data: impl Read) -> Result<(), ImageError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        self.builder
            .append_data(&mut h, path, data)
            .map_err(|source| ImageError::SaveWrite {
                member: path.to_string(),
                source,
            })
    }

    fn json(&mut self, path: &str, v: &impl Serialize) -> Result<(), ImageError> {
        let bytes = to_json(v)?;
        self.file(path, bytes.len() as u64, bytes.as_slice())
    }
}

fn to_json(v: &impl Serialize) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(v).map_err(|source| ImageError::Corrupt {
        image: "archive".to_string(),
        reason: format!("serialising json: {source}"),
    })
}

fn blob_path(digest: &str) -> Result<String, ImageError> {
    Ok(format!("blobs/sha256/{}", digest_hex(digest)?))
}

impl ImageStore {
    /// Writes the images `names` designate as one archive. A repository name without tag saves
    /// every tag of that repository; an id saves the image without names.
    pub fn save(&self, names: &[String], writer: impl Write) -> Result<(), ImageError> {
        let r = self.inner.meta.read()?;
        let items = self.save_items(&r, names)?;
        let mut out = TarOut {
            builder: tar::Builder::new(writer),
        };
        out.dir("blobs/")?;
        out.dir("blobs/sha256/")?;
        let mut written: HashSet<String> = HashSet::new();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
        };
        let mut archive_manifest: Vec<ArchiveManifestEntry> = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

        for item in &items {
            let rec = r.image(&item.id)?.ok_or_else(|| ImageError::NotFound {
                reference: item.id.clone(),
            })?;
            let (manifest_desc, layer_paths) =
                self.write_image(&mut out, &item.id, &rec, &mut written)?;
            let config_path = blob_path(&item.id)?;
            if item.refs.is_empty() {
                index.manifests.push(manifest_desc.clone());
            }
            for reference in &item.refs {
                let mut d = manifest_desc.clone();
                let mut ann = BTreeMap::new();
                ann.insert(media::ANNOTATION_IMAGE_NAME.to_string(), reference.full());
                if let Some(tag) = reference.tag() {
                    ann.insert(media::ANNOTATION_REF_NAME.to_string(), tag.to_string());
                    if let Some(top) = rec.layers.last() {
                        repositories
                            .entry(reference.familiar_repository())
                            .or_default()
                            .insert(tag.to_string(), digest_hex(&top.diff_id)?.to_string());
                    }
                }
                d.annotations = Some(ann);
                index.manifests.push(d);
            }
            let tags: Vec<String> = item.refs.iter().map(Reference::familiar).collect();
            archive_manifest.push(ArchiveManifestEntry {
                config: config_path,
                repo_tags: if tags.is_empty() { None } else { Some(tags) },
                layers: layer_paths,
            });
        }

        out.json("index.json", &index)?;
        out.json("manifest.json", &archive_manifest)?;
        out.json(
            "oci-layout",
            &OciLayout {
                image_layout_version: "1.0.0".to_string(),
            },
        )?;
        if !repositories.is_empty() {
            out.json("repositories", &repositories)?;
        }
        let mut w = out
            .builder
            .into_inner()
            .map_err(|source| ImageError::SaveWrite {
                member: "end of archive".to_string(),
                source,
            })?;
        w.flush().map_err(|source| ImageError::SaveWrite {
            member: "end of archive".to_string(),
            source,
        })
    }

    fn save_items(&self, r: &impl MetaRead, names: &[String]) -> Result<Vec<SaveItem>, ImageError> {
        let tags = r.tags()?;
        let mut items: Vec<SaveItem> = Vec::new();
        for name in names {
            if let Ok(named) = Reference::parse_named(name) {
                if named.tag().is_none() && named.digest().is_none() {
                    let repo = named.repository();
                    let mut found = false;
                    for (full, id) in &tags {
                        let Ok(t) = Reference::parse_named(full) else {
                            continue;
                        };
                        if t.digest().is_none() && t.repository() == repo {
                            add_item(&mut items, id.clone(), Some(t));
                            found = true;
                        }
                    }
                    if found {
                        continue;
                    }
                }
            }
            let id = resolve_id(r, name)?;
            if is_image_id_prefix(&id, name) {
                add_item(&mut items, id, None);
                continue;
            }
            let reference = Reference::parse(name)?;
            let tagged = reference.digest().is_none().then_some(reference);
            add_item(&mut items, id, tagged);
        }
        Ok(items)
    }

    /// Writes an image's config, layers (once per archive) and manifest; returns the manifest's
    /// descriptor and the layer paths.
    fn write_image<W: Write>(
        &self,
        out: &mut TarOut<W>,
        id: &str,
        rec: &ImageRecord,
        written: &mut HashSet<String>,
    ) -> Result<(Descriptor, Vec<String>), ImageError> {
        let content = &self.inner.content;
        let config_size = content.size(&rec.config_digest)?;
        if written.insert(rec.config_digest.clone()) {
            let f = content.open_blob(&rec.config_digest)?;
            out.file(
                &blob_path(&rec.config_digest)?,
                config_size,
                ExactReader {
                    inner: f,
                    remaining: config_size,
                    what: format!("config {}", rec.config_digest),
                },
            )?;
        }
        let config = self.config(id)?;
        if config.rootfs.diff_ids.len() != rec.layers.len() {
            return Err(ImageError::Corrupt {
                image: id.to_string(),
                reason: "layer records do not match the config's diff ids".to_string(),
            });
        }
        let mut layer_descs = Vec::with_capacity(rec.layers.len());
        let mut layer_paths = Vec::with_capacity(rec.layers.len());
        for layer in &rec.layers {
            let path = blob_path(&layer.diff_id)?;
            if written.insert(layer.diff_id.clone()) {
                let f = content.open_blob(&layer.digest)?;
                let what = format!("layer {}", layer.digest);
                if layer.digest == layer.diff_id {
                    let size = content.size(&layer.digest)?;
                    let data = ExactReader {
                        inner: f,
                        remaining: size,
                        what,
                    };
                    out.file(&path, size, data)?;
                } else {
                    let plain = decompress(f, &layer.digest)?;
                    let data = ExactReader {
                        inner: plain,
                        remaining: layer.diff_size,
                        what,
                    };
                    out.file(&path, layer.diff_size, data)?;
                }
            }
            layer_descs.push(Descriptor {
                media_type: Some(media::OCI_LAYER_TAR.to_string()),
                digest: layer.diff_id.clone(),
                size: layer.diff_size as i64,
                ..Descriptor::default()
            });
            layer_paths.push(path);
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: Some(media::OCI_CONFIG.to_string()),
                digest: rec.config_digest.clone(),
                size: config_size as i64,
                ..Descriptor::default()
            },
            layers: layer_descs,
        };
        let bytes = to_json(&manifest)?;
        let digest = sha256_digest(&bytes);
        if written.insert(digest.clone()) {
            out.file(&blob_path(&digest)?, bytes.len() as u64, bytes.as_slice())?;
        }
        Ok((
            Descriptor {
                media_type: Some(media::OCI_MANIFEST.to_string()),
                digest,
                size: bytes.len() as i64,
                ..Descriptor::default()
            },
            layer_paths,
        ))
    }
}

fn decompress(f: File, digest: &str) -> Result<Box<dyn Read + Send>, ImageError> {
    berth_archive::decompress(BufReader::new(f)).map_err(|source| ImageError::Decompress {
        digest: digest.to_string(),
        source,
    })
}
