//! The image store: lookup, listing, tagging, history and the shared plumbing of the verbs.
//!
//! Verbs live in sibling modules (`import`, `load`, `save`, `remove`); they all go through the
//! helpers here: [`ImageStore::ensure_snapshot`] to unpack a layer once, and
//! [`ImageStore::commit`] to record new images, their snapshots and tags in one transaction.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::config::{parse_time, ImageConfig};
use crate::content::ContentStore;
use crate::error::ImageError;
use crate::lease::{Lease, Leases};
use crate::meta::{ImageRecord, MetaRead, MetaStore, SnapshotRecord};
use crate::reference::{is_full_hex_id, Reference};
use crate::snapshot::{chain_ids, SnapshotInfo, SnapshotStore};

/// Largest config/manifest/index blob read into memory.
pub(crate) const MAX_JSON_BLOB: u64 = 64 << 20;
/// Largest file `read_file` returns.
const MAX_READ_FILE: u64 = 64 << 20;

/// An image as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `sha256:<hex>`, the digest of the config blob.
    pub id: String,
    /// Familiar tags, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    /// Familiar digest references, e.g. `busybox@sha256:...`.
    pub repo_digests: Vec<String>,
    pub config: ImageConfig,
    /// Sum of the unpacked layer sizes.
    pub size: u64,
    pub created: Option<DateTime<Utc>>,
    /// Local parent image id, empty when none.
    pub parent: String,
    pub diff_ids: Vec<String>,
    pub chain_ids: Vec<String>,
}

/// Options of [`ImageStore::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag to give the image (`latest` is added when it has no tag).
    pub reference: Option<Reference>,
    /// Dockerfile-style changes (`CMD ["sh"]`, `ENV A=b`, ...).
    pub changes: Vec<String>,
    /// History comment; `Imported from -` when empty.
    pub message: String,
    /// `os/arch[/variant]`; the host platform when absent.
    pub platform: Option<String>,
}

/// One step of a removal, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveAction {
    /// A familiar reference was removed.
    Untagged(String),
    /// An image id (or a layer chain id) was deleted.
    Deleted(String),
}

/// An image recorded by `load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar tags it got.
    pub tags: Vec<String>,
}

/// Filters of [`ImageStore::prune`].
#[derive(Debug, Clone, Default)]
pub struct PruneFilters {
    /// Only images created before this time.
    pub until: Option<DateTime<Utc>>,
    /// Labels that must be present: `key` or `key=value`.
    pub label: Vec<String>,
    /// Labels that must be absent: `key` or `key=value`.
    pub label_not: Vec<String>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<RemoveAction>,
    /// Bytes freed on disk (snapshots and blobs).
    pub space_reclaimed: u64,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id for the top entry (and local parents), `<missing>` otherwise.
    pub id: String,
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

/// The image store (cheap to clone; blocking API).
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) content: ContentStore,
    pub(crate) snapshots: SnapshotStore,
    pub(crate) meta: MetaStore,
    pub(crate) leases: Leases,
    configs: Mutex<HashMap<String, Arc<ImageConfig>>>,
    /// Digests with a [`crate::BlobIngest`] open (one writer per partial file).
    pub(crate) ingesting: Mutex<std::collections::HashSet<String>>,
}

/// Snapshot sizes and references read once for listing many images.
struct Bulk {
    sizes: HashMap<String, u64>,
    tags: HashMap<String, Vec<String>>,
}

/// A new image ready to be recorded by [`ImageStore::commit`].
pub(crate) struct NewImage {
    pub(crate) id: String,
    pub(crate) record: ImageRecord,
    pub(crate) snapshots: Vec<(String, SnapshotRecord)>,
    pub(crate) tags: Vec<Reference>,
}

/// A tag that pointed to another image before a commit.
pub(crate) struct TagMove {
    pub(crate) reference: String,
    pub(crate) old_id: String,
}

/// Whether `s` names `image_id` by id or id prefix (Docker's `isImageIDPrefix`).
pub(crate) fn is_image_id_prefix(image_id: &str, s: &str) -> bool {
    image_id.starts_with(s)
        || image_id
            .split_once(':')
            .is_some_and(|(_, hex)| hex.starts_with(s))
}

/// Reading failed or writing failed, kept apart so each gets the right error.
pub(crate) enum CopyFail {
    Read(io::Error),
    Write(io::Error),
}

/// Copies until end of input; returns the byte count.
pub(crate) fn copy_stream(r: &mut dyn Read, w: &mut dyn Write) -> Result<u64, CopyFail> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFail::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyFail::Write)?;
        total += n as u64;
    }
}

/// The id an exact id string names: `sha256:<64hex>` or `<64hex>`.
fn exact_id(s: &str) -> Option<String> {
    match s.strip_prefix("sha256:") {
        Some(h) if is_full_hex_id(h) => Some(s.to_string()),
        None if is_full_hex_id(s) => Some(format!("sha256:{s}")),
        _ => None,
    }
}

/// Resolves a name or id to an image id, as Docker's `GetImage` does.
pub(crate) fn resolve_id(r: &impl MetaRead, s: &str) -> Result<String, ImageError> {
    if let Some(id) = exact_id(s) {
        return match r.image(&id)? {
            Some(_) => Ok(id),
            None => Err(ImageError::NotFound {
                reference: s.to_string(),
            }),
        };
    }
    let prefix = s.strip_prefix("sha256:").unwrap_or(s);
    let looks_like_prefix = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let display = match Reference::parse(s) {
        Ok(reference) => {
            if let Some(id) = r.tag(&reference.full())? {
                if r.image(&id)?.is_some() {
                    return Ok(id);
                }
            }
            if let Some(d) = reference.digest() {
                for (id, rec) in r.images()? {
                    if rec.manifest.as_ref().is_some_and(|m| m.digest == d) {
                        return Ok(id);
                    }
                }
            }
            reference.familiar()
        }
        Err(e) if !looks_like_prefix => return Err(e.into()),
        Err(_) => s.to_string(),
    };
    if looks_like_prefix {
        let matches: Vec<String> = r
            .images()?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| {
                id.strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(prefix))
            })
            .collect();
        match matches.as_slice() {
            [] => {}
            [only] => return Ok(only.clone()),
            _ => {
                return Err(ImageError::AmbiguousId {
                    prefix: s.to_string(),
                })
            }
        }
    }
    Err(ImageError::NotFound { reference: display })
}

impl ImageStore {
    /// Opens the store under the daemon data-root `root`, with its tables in `db`; removes what a
    /// crash left behind (ingest files, half-made snapshots, unreferenced blobs and snapshots).
    pub fn open(root: &Path, db: Arc<redb::Database>) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(&root.join("content"))?;
        let snapshots = SnapshotStore::open(&root.join("snapshots"))?;
        let meta = MetaStore::open(db)?;
        let store = ImageStore {
            inner: Arc::new(Inner {
                content,
                snapshots,
                meta,
                leases: Leases::default(),
                configs: Mutex::new(HashMap::new()),
                ingesting: Mutex::new(std::collections::HashSet::new()),
            }),
        };
        store.gc()?;
        Ok(store)
    }

    /// Finds an image by full id, bare hex id, unique id prefix, reference or `name@digest`.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image, ImageError> {
        let r = self.inner.meta.read()?;
        let id = resolve_id(&r, name_or_id)?;
        self.image(&r, &id, None)
    }

    /// The image with this exact id (`sha256:<hex>` or `<hex>`).
    pub fn get(&self, id: &str) -> Result<Image, ImageError> {
        let not_found = || ImageError::NotFound {
            reference: id.to_string(),
        };
        let id = exact_id(id).ok_or_else(not_found)?;
        let r = self.inner.meta.read()?;
        if r.image(&id)?.is_none() {
            return Err(not_found());
        }
        self.image(&r, &id, None)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let r = self.inner.meta.read()?;
        let mut bulk = Bulk {
            sizes: r
                .snapshots()?
                .into_iter()
                .map(|(k, v)| (k, v.size))
                .collect(),
            tags: HashMap::new(),
        };
        for (full, id) in r.tags()? {
            bulk.tags.entry(id).or_default().push(full);
        }
        for v in bulk.tags.values_mut() {
            v.sort();
        }
        let mut out = Vec::new();
        for (id, _) in r.images()? {
            out.push(self.image(&r, &id, Some(&bulk))?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Points `target` (tag `latest` added when missing) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let target = Reference::parse(target)?;
        if target.digest().is_some() {
            return Err(ImageError::DigestTag {
                reference: target.familiar(),
            });
        }
        self.inner.meta.update(|t| {
            let id = resolve_id(t, source)?;
            t.set_tag(&target.full(), &id)?;
            Ok::<_, ImageError>(())
        })
    }

    /// The image's history, newest first, as `docker history` shows it.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let img = self.resolve(name_or_id)?;
        let r = self.inner.meta.read()?;
        let mut layer = 0usize;
        let mut entries = Vec::new();
        for h in &img.config.history {
            let size = if h.empty_layer.unwrap_or(false) {
                0
            } else {
                let s = match img.chain_ids.get(layer) {
                    Some(c) => r.snapshot(c)?.map(|s| s.size).unwrap_or(0),
                    None => 0,
                };
                layer += 1;
                s
            };
            entries.push(HistoryEntry {
                id: "<missing>".to_string(),
                created: parse_time(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        // Local images along the parent chain name the entry that made them (their last one); a build's
        // config-only steps have no image of their own and stay `<missing>`, as with Docker.
        let total = entries.len();
        let mut current = Some(img);
        let mut seen = 0;
        while let Some(cur) = current.take() {
            let n = cur.config.history.len();
            if n == 0 || n > total || seen > total {
                break;
            }
            let e = &mut entries[n - 1];
            if e.id == "<missing>" {
                e.id = cur.id.clone();
                e.tags = cur.repo_tags.clone();
            }
            seen += 1;
            if !cur.parent.is_empty() {
                current = self.get(&cur.parent).ok();
            }
        }
        entries.reverse();
        Ok(entries)
    }

    /// The metadata record of the image `id`; `reference` is how the caller named it (for the error).
    pub(crate) fn record_of(
        &self,
        id: &str,
        reference: &str,
    ) -> Result<crate::meta::ImageRecord, ImageError> {
        self.inner
            .meta
            .read()?
            .image(id)?
            .ok_or_else(|| ImageError::NotFound {
                reference: reference.to_string(),
            })
    }

    /// Overlay lowerdirs of the image, top-most layer first (re-unpacking a missing snapshot from
    /// its blob).
    pub fn layer_dirs(&self, image_id: &str) -> Result<Vec<PathBuf>, ImageError> {
        let img = self.get(image_id)?;
        let rec = self.record_of(&img.id, image_id)?;
        let mut dirs = Vec::with_capacity(img.chain_ids.len());
        let mut lease = self.inner.leases.lease();
        for (i, chain) in img.chain_ids.iter().enumerate() {
            if !self.inner.snapshots.exists(chain)? {
                let layer = rec.layers.get(i).ok_or_else(|| ImageError::Corrupt {
                    image: img.id.clone(),
                    reason: format!("no layer record for diff id {}", img.diff_ids[i]),
                })?;
                let parent = if i == 0 {
                    None
                } else {
                    Some(img.chain_ids[i - 1].as_str())
                };
                tracing::warn!(chain_id = %chain, image = %img.id, "snapshot missing; unpacking again");
                self.ensure_snapshot(chain, parent, &img.diff_ids[i], &layer.digest, &mut lease)?;
            }
            dirs.push(self.inner.snapshots.fs_dir(chain)?);
        }
        dirs.reverse();
        Ok(dirs)
    }

    /// A file's content as the merged image sees it (`None` when absent or not a regular file).
    pub fn read_file(&self, image_id: &str, path: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let dirs = self.layer_dirs(image_id)?;
        Ok(SnapshotStore::read_merged(&dirs, path, MAX_READ_FILE)?)
    }

    /// Bytes used by the store: unpacked snapshots plus stored blobs.
    pub fn disk_usage(&self) -> Result<u64, ImageError> {
        let r = self.inner.meta.read()?;
        let snaps: u64 = r.snapshots()?.iter().map(|(_, s)| s.size).sum();
        let blobs: u64 = self.inner.content.list()?.iter().map(|(_, s)| s).sum();
        Ok(snaps + blobs)
    }

    /// The parsed config of image `id` (cached; configs are immutable).
    pub(crate) fn config(&self, id: &str) -> Result<Arc<ImageConfig>, ImageError> {
        let mut cache = self.inner.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(id) {
            return Ok(c.clone());
        }
        let bytes = self.inner.content.read_blob(id, MAX_JSON_BLOB)?;
        let c = Arc::new(ImageConfig::from_slice(&bytes, id)?);
        cache.insert(id.to_string(), c.clone());
        Ok(c)
    }

    /// Drops a deleted image's config from the cache.
    pub(crate) fn forget_config(&self, id: &str) {
        let mut cache = self.inner.configs.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(id);
    }

    fn image(&self, r: &impl MetaRead, id: &str, bulk: Option<&Bulk>) -> Result<Image, ImageError> {
        let rec = r.image(id)?.ok_or_else(|| ImageError::NotFound {
            reference: id.to_string(),
        })?;
        let config = self.config(&rec.config_digest)?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        let refs = match bulk {
            Some(b) => b.tags.get(id).cloned().unwrap_or_default(),
            None => r.tags_of(id)?,
        };
        for full in refs {
            match Reference::parse_named(&full) {
                Ok(reference) if reference.digest().is_some() => {
                    repo_digests.push(reference.familiar())
                }
                Ok(reference) => repo_tags.push(reference.familiar()),
                Err(e) => {
                    tracing::warn!(reference = %full, error = %e, "skipping stored reference")
                }
            }
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        let chains = chain_ids(&diff_ids);
        let mut size = 0;
        for c in &chains {
            size += match bulk {
                Some(b) => b.sizes.get(c).copied().unwrap_or(0),
                None => r.snapshot(c)?.map(|s| s.size).unwrap_or(0),
            };
        }
        Ok(Image {
            id: id.to_string(),
            repo_tags,
            repo_digests,
            created: config.created_time(),
            config: (*config).clone(),
            size,
            parent: rec.parent.clone(),
            diff_ids,
            chain_ids: chains,
        })
    }

    /// Makes sure snapshot `chain_id` exists, unpacking blob `blob` when it does not; verifies
    /// the blob's diff id either way (unless the blob is the plain tar itself).
    pub(crate) fn ensure_snapshot(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        diff_id: &str,
        blob: &str,
        lease: &mut Lease,
    ) -> Result<SnapshotInfo, ImageError> {
        lease.add(chain_id);
        let snaps = &self.inner.snapshots;
        if snaps.exists(chain_id)? {
            if blob != diff_id {
                let f = self.inner.content.open_blob(blob)?;
                SnapshotStore::verify(diff_id, blob, f)?;
            }
            return Ok(snaps.info(chain_id)?);
        }
        let f = self.inner.content.open_blob(blob)?;
        Ok(snaps.unpack(chain_id, parent, diff_id, blob, f)?)
    }

    /// Records new images, their snapshots and their tags in one transaction. An image that
    /// already exists keeps its record. Returns the tags that moved from another image and the
    /// images as committed (read inside the transaction, so a concurrent prune cannot race it).
    pub(crate) fn commit(
        &self,
        images: &[NewImage],
    ) -> Result<(Vec<TagMove>, Vec<Image>), ImageError> {
        self.inner.meta.update(|t| {
            let mut moves = Vec::new();
            for img in images {
                for (chain, rec) in &img.snapshots {
                    t.put_snapshot(chain, rec)?;
                }
                if t.image(&img.id)?.is_none() {
                    t.put_image(&img.id, &img.record)?;
                }
                for reference in &img.tags {
                    if let Some(old) = t.set_tag(&reference.full(), &img.id)? {
                        if old != img.id {
                            moves.push(TagMove {
                                reference: reference.familiar(),
                                old_id: old,
                            });
                        }
                    }
                }
            }
            let mut committed = Vec::with_capacity(images.len());
            for img in images {
                committed.push(self.image(t, &img.id, None)?);
            }
            Ok::<_, ImageError>((moves, committed))
        })
    }

    /// A reference given by a caller, normalised to carry a tag.
    pub(crate) fn tag_reference(r: &Reference) -> Result<Reference, ImageError> {
        if r.digest().is_some() {
            return Err(ImageError::DigestTag {
                reference: r.familiar(),
            });
        }
        Ok(match r.tag() {
            Some(_) => r.clone(),
            None => r.with_tag(crate::reference::DEFAULT_TAG)?,
        })
    }
}
