//! `docker load`: image archives in the formats `docker save` and other tools write.
//!
//! Accepted (the outer tar itself may be gzip/zstd compressed):
//! - `docker save` v25+: `manifest.json` plus an OCI layout (`oci-layout`, `index.json`, `blobs/`);
//! - the older docker-archive: `manifest.json`, `<hex>.json` configs, `<id>/layer.tar` (symlinks
//!   allowed), `repositories` (ignored);
//! - a pure OCI image layout tar: `index.json` whose entries carry `io.containerd.image.name` or
//!   `org.opencontainers.image.ref.name` annotations; nested indexes are followed and the host
//!   platform chosen.
//!
//! A tar stream can be read once and its member order is not fixed, so every regular member is
//! first spooled into the content store (members named `blobs/sha256/<hex>` are verified against
//! their name). Then images are planned and checked (config parses, layer count matches
//! `rootfs.diff_ids`), every layer is unpacked or verified against its diff id, and only when all
//! of that succeeded are all images and tags committed in one transaction. On failure nothing is
//! tagged and GC sweeps whatever was spooled or unpacked.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};

use serde::de::DeserializeOwned;

use crate::config::{ImageConfig, Platform};
use crate::content::digest_hex;
use crate::error::ImageError;
use crate::lease::Lease;
use crate::media::{self, ArchiveManifestEntry, Descriptor, Index, Manifest};
use crate::meta::{ImageRecord, LayerRecord, ManifestRef, SnapshotRecord};
use crate::reference::Reference;
use crate::snapshot::chain_ids;
use crate::store::{copy_stream, CopyFail, ImageStore, LoadedImage, NewImage, MAX_JSON_BLOB};

const MAX_LINK_HOPS: usize = 16;
const MAX_INDEX_DEPTH: usize = 4;

/// A spooled regular member.
#[derive(Debug, Clone)]
struct Member {
    digest: String,
    size: u64,
}

enum Node {
    File(Member),
    /// A symlink or hard link, with its target as an archive path.
    Link(String),
}

/// The archive's members by normalised path.
struct Spool {
    nodes: HashMap<String, Node>,
}

impl Spool {
    fn has(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    fn file(&self, name: &str) -> Result<&Member, ImageError> {
        let mut current = normalize(name).unwrap_or_default();
        for _ in 0..MAX_LINK_HOPS {
            match self.nodes.get(&current) {
                Some(Node::File(m)) => return Ok(m),
                Some(Node::Link(t)) => current = t.clone(),
                None => return Err(ImageError::archive(format!("missing member {name}"))),
            }
        }
        Err(ImageError::archive(format!(
            "too many links resolving {name}"
        )))
    }

    fn blob(&self, desc: &Descriptor) -> Result<&Member, ImageError> {
        let hex = digest_hex(&desc.digest)
            .map_err(|_| ImageError::archive(format!("unsupported digest {}", desc.digest)))?;
        let m = self.file(&format!("blobs/sha256/{hex}"))?;
        if desc.size > 0 && m.size != desc.size as u64 {
            return Err(ImageError::archive(format!(
                "blob {} has {} bytes, its descriptor says {}",
                desc.digest, m.size, desc.size
            )));
        }
        Ok(m)
    }
}

/// Normalises an archive path (`./a//b/../c` → `a/c`); `None` for the root or an escape.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// `blobs/sha256/<hex>` → `sha256:<hex>`.
fn named_digest(name: &str) -> Option<String> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    crate::reference::is_full_hex_id(hex).then(|| format!("sha256:{hex}"))
}

/// An image to record, before its layers are unpacked.
struct Plan {
    config_digest: String,
    config: ImageConfig,
    layers: Vec<PlanLayer>,
    tags: Vec<Reference>,
    manifest: Option<ManifestRef>,
}

struct PlanLayer {
    blob: String,
    media_type: Option<String>,
    size: u64,
}

fn repo_tag(t: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse_named(t)?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(ImageError::archive(format!("invalid tag {t:?}")));
    }
    Ok(r)
}

fn check_os(config: &ImageConfig, id: &str) -> Result<(), ImageError> {
    if !config.os.is_empty() && config.os != "linux" {
        return Err(ImageError::archive(format!(
            "image {id} is for {}, cannot load it on linux",
            config.os
        )));
    }
    Ok(())
}

/// The names an index entry gives its image.
fn names_of(desc: &Descriptor) -> Vec<Reference> {
    let Some(ann) = &desc.annotations else {
        return Vec::new();
    };
    let candidate = match (
        ann.get(media::ANNOTATION_IMAGE_NAME),
        ann.get(media::ANNOTATION_REF_NAME),
    ) {
        (Some(full), _) => full.as_str(),
        // A bare tag (`latest`) names no repository: the image stays unnamed.
        (None, Some(r)) if r.contains(['/', ':']) => r.as_str(),
        _ => return Vec::new(),
    };
    match repo_tag(candidate) {
        Ok(r) => vec![r],
        Err(e) => {
            tracing::warn!(name = candidate, error = %e, "ignoring image name annotation");
            Vec::new()
        }
    }
}

fn is_attestation(desc: &Descriptor) -> bool {
    let by_annotation = desc
        .annotations
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let by_platform = desc.platform.as_ref().is_some_and(|p| p.os == "unknown");
    by_annotation || by_platform
}

fn choose_platform<'a>(
    manifests: &'a [Descriptor],
    host: &Platform,
) -> Result<&'a Descriptor, ImageError> {
    let candidates: Vec<&Descriptor> = manifests.iter().filter(|d| !is_attestation(d)).collect();
    let matching: Vec<&Descriptor> = candidates
        .iter()
        .copied()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| host.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .collect();
    let exact = matching
        .iter()
        .copied()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.clone()) == host.variant);
    if let Some(d) = exact.or_else(|| matching.first().copied()) {
        return Ok(d);
    }
    match candidates.as_slice() {
        [only] if only.platform.is_none() => Ok(only),
        _ => Err(ImageError::archive(format!(
            "no matching manifest for {}/{} in the manifest list entries",
            host.os, host.architecture
        ))),
    }
}

impl ImageStore {
    /// Loads every image of an archive; `progress` gets Docker's `Loaded image: ...` lines.
    pub fn load(
        &self,
        reader: impl Read + Send,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let mut lease = self.inner.leases.lease();
        let result = self.load_inner(reader, progress, &mut lease);
        drop(lease);
        // Spooled members nobody references (and, after a failure, everything) go now.
        if let Err(e) = self.gc() {
            tracing::warn!(error = %e, "collecting garbage after load");
        }
        result
    }

    fn load_inner(
        &self,
        reader: impl Read + Send,
        progress: &mut dyn FnMut(&str),
        lease: &mut Lease,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let spool = self.spool(reader, lease)?;
        let plans = if spool.has("manifest.json") {
            self.docker_plans(&spool)?
        } else if spool.has("index.json") {
            self.oci_plans(&spool)?
        } else {
            return Err(ImageError::archive("no manifest.json or index.json found"));
        };
        if plans.is_empty() {
            return Err(ImageError::archive("no images found"));
        }
        let mut images = Vec::with_capacity(plans.len());
        for plan in plans {
            images.push(self.unpack_plan(plan, lease)?);
        }
        let (moves, _) = self.commit(&images)?;
        for m in moves {
            progress(&format!(
                "The image {} already exists, renaming the old one with ID {} to empty string",
                m.reference, m.old_id
            ));
        }
        let mut loaded = Vec::with_capacity(images.len());
        for img in images {
            let tags: Vec<String> = img.tags.iter().map(Reference::familiar).collect();
            if tags.is_empty() {
                progress(&format!("Loaded image ID: {}", img.id));
            }
            for t in &tags {
                progress(&format!("Loaded image: {t}"));
            }
            loaded.push(LoadedImage { id: img.id, tags });
        }
        Ok(loaded)
    }

    /// Copies every regular member into the content store and records links.
    fn spool(&self, reader: impl Read + Send, lease: &mut Lease) -> Result<Spool, ImageError> {
        let plain = berth_archive::decompress(BufReader::new(reader))
            .map_err(|source| ImageError::ImportRead { source })?;
        let mut archive = tar::Archive::new(plain);
        let read_err = |member: &str| {
            let member = member.to_string();
            move |source| ImageError::ArchiveRead { member, source }
        };
        let mut nodes = HashMap::new();
        for entry in archive.entries().map_err(read_err("archive"))? {
            let mut entry = entry.map_err(read_err("archive"))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = normalize(&raw) else {
                continue;
            };
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let expected_size = entry.size();
                    let mut w = self.inner.content.writer()?;
                    let ingest = w.path().to_path_buf();
                    copy_stream(&mut entry, &mut w).map_err(|e| match e {
                        CopyFail::Read(source) => ImageError::ArchiveRead {
                            member: raw.clone(),
                            source,
                        },
                        CopyFail::Write(source) => ImageError::io("writing", ingest, source),
                    })?;
                    if w.size() != expected_size {
                        return Err(ImageError::ArchiveRead {
                            member: raw,
                            source: io::Error::from(io::ErrorKind::UnexpectedEof),
                        });
                    }
                    let c = w.commit(named_digest(&name).as_deref(), None, lease)?;
                    nodes.insert(
                        name,
                        Node::File(Member {
                            digest: c.digest,
                            size: c.size,
                        }),
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let joined = match (kind, name.rsplit_once('/')) {
                        (tar::EntryType::Symlink, Some((dir, _))) if !target.starts_with('/') => {
                            format!("{dir}/{target}")
                        }
                        _ => target,
                    };
                    if let Some(t) = normalize(&joined) {
                        nodes.insert(name, Node::Link(t));
                    }
                }
                _ => {}
            }
        }
        Ok(Spool { nodes })
    }

    fn member_json<T: DeserializeOwned>(&self, spool: &Spool, name: &str) -> Result<T, ImageError> {
        let m = spool.file(name)?;
        let bytes = self.inner.content.read_blob(&m.digest, MAX_JSON_BLOB)?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::ArchiveJson {
            member: name.to_string(),
            source,
        })
    }

    fn plan_config(&self, member: &Member) -> Result<(String, ImageConfig), ImageError> {
        let bytes = self
            .inner
            .content
            .read_blob(&member.digest, MAX_JSON_BLOB)?;
        let config = ImageConfig::from_slice(&bytes, &member.digest)?;
        check_os(&config, &member.digest)?;
        Ok((member.digest.clone(), config))
    }

    /// Plans from `manifest.json` (docker-archive).
    fn docker_plans(&self, spool: &Spool) -> Result<Vec<Plan>, ImageError> {
        let entries: Vec<ArchiveManifestEntry> = self.member_json(spool, "manifest.json")?;
        let mut plans = Vec::new();
        for e in entries {
            let (config_digest, config) = self.plan_config(spool.file(&e.config)?)?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let m = spool.file(l)?;
                layers.push(PlanLayer {
                    blob: m.digest.clone(),
                    media_type: None,
                    size: m.size,
                });
            }
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| repo_tag(t))
                .collect::<Result<Vec<_>, _>>()?;
            plans.push(Plan {
                config_digest,
                config,
                layers,
                tags,
                manifest: None,
            });
        }
        Ok(merge_plans(plans))
    }

    /// Plans from `index.json` (OCI image layout).
    fn oci_plans(&self, spool: &Spool) -> Result<Vec<Plan>, ImageError> {
        let index: Index = self.member_json(spool, "index.json")?;
        let host = Platform::host();
        let mut plans = Vec::new();
        for desc in &index.manifests {
            if let Some(p) = &desc.platform {
                if !p.os.is_empty() && !host.matches(&p.os, &p.architecture, p.variant.as_deref()) {
                    continue;
                }
            }
            let (mref, manifest) = self.resolve_manifest(spool, desc, &host, 0)?;
            let (config_digest, config) = self.plan_config(spool.blob(&manifest.config)?)?;
            let mut layers = Vec::new();
            for l in &manifest.layers {
                let mt = l.media_type.clone();
                if mt.as_deref().is_some_and(media::is_foreign) && spool.blob(l).is_err() {
                    return Err(ImageError::archive(format!(
                        "foreign layer {} is not included",
                        l.digest
                    )));
                }
                let m = spool.blob(l)?;
                layers.push(PlanLayer {
                    blob: m.digest.clone(),
                    media_type: mt,
                    size: m.size,
                });
            }
            plans.push(Plan {
                config_digest,
                config,
                layers,
                tags: names_of(desc),
                manifest: Some(mref),
            });
        }
        if plans.is_empty() && !index.manifests.is_empty() {
            return Err(ImageError::archive(format!(
                "no matching manifest for {}/{} in the manifest list entries",
                host.os, host.architecture
            )));
        }
        Ok(merge_plans(plans))
    }

    /// Follows indexes down to an image manifest for the host platform.
    fn resolve_manifest(
        &self,
        spool: &Spool,
        desc: &Descriptor,
        host: &Platform,
        depth: usize,
    ) -> Result<(ManifestRef, Manifest), ImageError> {
        if depth > MAX_INDEX_DEPTH {
            return Err(ImageError::archive("indexes nested too deeply"));
        }
        let m = spool.blob(desc)?;
        let bytes = self.inner.content.read_blob(&m.digest, MAX_JSON_BLOB)?;
        let json_err = |source| ImageError::ArchiveJson {
            member: desc.digest.clone(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(json_err)?;
        let media_type = desc.media_type.clone().or_else(|| {
            value
                .get("mediaType")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        let index_like = match &media_type {
            Some(mt) => media::is_index(mt),
            None => value.get("manifests").is_some(),
        };
        if index_like {
            let index: Index = serde_json::from_value(value).map_err(json_err)?;
            let chosen = choose_platform(&index.manifests, host)?;
            return self.resolve_manifest(spool, chosen, host, depth + 1);
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(json_err)?;
        Ok((
            ManifestRef {
                digest: desc.digest.clone(),
                media_type: media_type.unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
            },
            manifest,
        ))
    }

    /// Unpacks (or verifies) every layer of a plan and builds its records.
    fn unpack_plan(&self, plan: Plan, lease: &mut Lease) -> Result<NewImage, ImageError> {
        let diff_ids = &plan.config.rootfs.diff_ids;
        if diff_ids.len() != plan.layers.len() {
            return Err(ImageError::archive(format!(
                "image {}: config lists {} diff ids but there are {} layers",
                plan.config_digest,
                diff_ids.len(),
                plan.layers.len()
            )));
        }
        let chains = chain_ids(diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        let mut snapshots = Vec::with_capacity(chains.len());
        for (i, l) in plan.layers.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| chains[p].clone());
            let info =
                self.ensure_snapshot(&chains[i], parent.as_deref(), &diff_ids[i], &l.blob, lease)?;
            let media_type = match &l.media_type {
                Some(mt) => mt.clone(),
                None => self.detect_media_type(&l.blob)?,
            };
            layers.push(LayerRecord {
                digest: l.blob.clone(),
                media_type,
                diff_id: diff_ids[i].clone(),
                size: l.size,
                diff_size: info.diff_size,
            });
            snapshots.push((
                chains[i].clone(),
                SnapshotRecord {
                    parent,
                    diff_id: diff_ids[i].clone(),
                    size: info.size,
                },
            ));
        }
        lease.add(&plan.config_digest);
        Ok(NewImage {
            id: plan.config_digest.clone(),
            record: ImageRecord {
                config_digest: plan.config_digest,
                manifest: plan.manifest,
                layers,
                created: chrono::Utc::now(),
                parent: String::new(),
            },
            snapshots,
            tags: plan.tags,
        })
    }

    fn detect_media_type(&self, blob: &str) -> Result<String, ImageError> {
        let f = self.inner.content.open_blob(blob)?;
        let mut r = BufReader::new(f);
        let c = berth_archive::detect(&mut r).map_err(|source| ImageError::Decompress {
            digest: blob.to_string(),
            source,
        })?;
        Ok(media::layer_media_type(&c).to_string())
    }
}

/// Merges plans of the same image (listed twice with different tags).
fn merge_plans(plans: Vec<Plan>) -> Vec<Plan> {
    let mut out: Vec<Plan> = Vec::new();
    for p in plans {
        match out.iter_mut().find(|o| o.config_digest == p.config_digest) {
            Some(o) => {
                for t in p.tags {
                    if !o.tags.contains(&t) {
                        o.tags.push(t);
                    }
                }
            }
            None => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_member_paths() {
        assert_eq!(
            normalize("./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(normalize("a//b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalize("../etc/passwd"), None);
        assert_eq!(normalize("./"), None);
        assert_eq!(
            named_digest(&format!("blobs/sha256/{}", "a".repeat(64))),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(named_digest("blobs/sha256/abc"), None);
    }

    #[test]
    fn names_from_annotations() {
        let mut d = Descriptor::default();
        let mut ann = std::collections::BTreeMap::new();
        ann.insert(media::ANNOTATION_REF_NAME.to_string(), "latest".to_string());
        d.annotations = Some(ann.clone());
        assert!(names_of(&d).is_empty());
        ann.insert(
            media::ANNOTATION_REF_NAME.to_string(),
            "busybox:1".to_string(),
        );
        d.annotations = Some(ann.clone());
        assert_eq!(names_of(&d)[0].full(), "docker.io/library/busybox:1");
        ann.insert(
            media::ANNOTATION_IMAGE_NAME.to_string(),
            "localhost:5000/x/y:2".to_string(),
        );
        d.annotations = Some(ann);
        assert_eq!(names_of(&d)[0].familiar(), "localhost:5000/x/y:2");
    }
}
