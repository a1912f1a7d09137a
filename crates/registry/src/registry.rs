//! The registry service: every distribution operation as a typed call over a [`BlobStore`] and a
//! [`MetadataStore`], with no HTTP types (the `api` module adapts requests to these calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;

use crate::digest::{Algorithm, Digest};
use crate::manifest::{self, Manifest, ManifestError};
use crate::name;
use crate::storage::uploads::{SessionHandle, UploadError, Uploads};
use crate::storage::{
    BlobStore, ByteRange, ByteStream, Descriptor, ManifestLink, MetadataStore, StorageError,
    TagLink,
};

/// Why an operation failed; each variant maps to one distribution-spec error code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Blob unknown to the repository.
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    /// Upload session unknown.
    #[error("blob upload unknown to registry: {0}")]
    BlobUploadUnknown(String),
    /// Upload cannot continue.
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    /// Digest malformed or content does not match it.
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    /// A manifest references content the repository lacks.
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(Digest),
    /// The manifest is malformed or of an unsupported type.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(#[from] ManifestError),
    /// No such manifest (or tag).
    #[error("manifest unknown to registry: {0}")]
    ManifestUnknown(String),
    /// Invalid repository name.
    #[error("invalid repository name: {0:?}")]
    NameInvalid(String),
    /// No such repository.
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    /// Invalid tag.
    #[error("invalid tag: {0:?}")]
    TagInvalid(String),
    /// A chunk out of order; carries the current offset.
    #[error("requested range not satisfiable (upload at {offset} bytes)")]
    RangeInvalid {
        /// Bytes received so far.
        offset: u64,
    },
    /// A read range outside the blob.
    #[error("requested range not satisfiable (blob is {size} bytes)")]
    BlobRangeInvalid {
        /// The blob's size.
        size: u64,
    },
    /// Disabled or unsupported operation.
    #[error("the operation is unsupported: {0}")]
    Unsupported(&'static str),
    /// Body too large.
    #[error("content exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's body failed mid-request.
    #[error("reading the request body")]
    Body(#[source] UploadError),
    /// Storage failed.
    #[error("storage failure")]
    Storage(#[from] StorageError),
    /// Staging failed.
    #[error("upload staging failure")]
    Staging(#[source] UploadError),
}

impl From<UploadError> for RegistryError {
    fn from(e: UploadError) -> RegistryError {
        match e {
            UploadError::Unknown(id) => RegistryError::BlobUploadUnknown(id),
            UploadError::OutOfOrder { offset, .. } => RegistryError::RangeInvalid { offset },
            UploadError::TooLarge { limit } => RegistryError::TooLarge { limit },
            e @ UploadError::Body(_) => RegistryError::Body(e),
            e @ UploadError::Io { .. } => RegistryError::Staging(e),
        }
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest manifest accepted.
    pub max_manifest_bytes: usize,
    /// Whether DELETE is allowed.
    pub delete_enabled: bool,
    /// Bytes of manifests kept in memory.
    pub manifest_cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_manifest_bytes: 4 << 20,
            delete_enabled: false,
            manifest_cache_bytes: 64 << 20,
        }
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a reference path segment.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|e| RegistryError::DigestInvalid(e.to_string()))
        } else if name::valid_tag(s) {
            Ok(Reference::Tag(s.to_string()))
        } else {
            Err(RegistryError::TagInvalid(s.to_string()))
        }
    }
}

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct ManifestContent {
    /// Its digest.
    pub digest: Digest,
    /// Its link (media type, size, push time, subject).
    pub link: ManifestLink,
    /// The bytes, exactly as pushed.
    pub body: Bytes,
}

/// What a manifest PUT did.
#[derive(Debug, Clone)]
pub struct PutManifest {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its subject, if any (for the `OCI-Subject` header).
    pub subject: Option<Digest>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The names.
    pub items: Vec<String>,
    /// Whether more follow.
    pub more: bool,
}

/// Pages a sorted list: names after `last`, at most `n`.
pub fn paginate(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
    let mut it: Vec<String> = all
        .into_iter()
        .filter(|x| last.is_none_or(|l| x.as_str() > l))
        .collect();
    let more = n.is_some_and(|n| it.len() > n);
    if let Some(n) = n {
        it.truncate(n);
    }
    Page { items: it, more }
}

/// The registry service.
pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    uploads: Uploads,
    opts: Options,
    cache: Mutex<(usize, HashMap<Digest, Bytes>)>,
    /// Held shared by operations that create references, exclusively by the collector while it deletes.
    pub(crate) gc_lock: tokio::sync::RwLock<()>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Registry {
    /// Assembles the service.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        uploads: Uploads,
        opts: Options,
    ) -> Registry {
        Registry {
            blobs,
            meta,
            uploads,
            opts,
            cache: Mutex::new((0, HashMap::new())),
            gc_lock: tokio::sync::RwLock::new(()),
        }
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The metadata store.
    pub fn meta(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    /// The upload sessions.
    pub fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Validates a repository name.
    pub fn check_name(repo: &str) -> Result<()> {
        if name::valid_repository(repo) {
            Ok(())
        } else {
            Err(RegistryError::NameInvalid(repo.to_string()))
        }
    }

    fn parse_digest(s: &str) -> Result<Digest> {
        s.parse()
            .map_err(|e: crate::digest::DigestError| RegistryError::DigestInvalid(e.to_string()))
    }

    // ---- blobs ----

    /// The size of a blob the repository holds.
    pub async fn blob_size(&self, repo: &str, digest: &str) -> Result<(Digest, u64)> {
        Self::check_name(repo)?;
        let d = Self::parse_digest(digest)?;
        if !self.meta.blob_linked(repo, &d).await? {
            return Err(RegistryError::BlobUnknown(d.to_string()));
        }
        match self.blobs.stat(&d).await? {
            Some(size) => Ok((d, size)),
            None => Err(RegistryError::BlobUnknown(d.to_string())),
        }
    }

    /// Streams a blob, or a range of it; returns the size of the whole blob too.
    pub async fn read_blob(
        &self,
        repo: &str,
        digest: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(Digest, u64, Option<ByteRange>, ByteStream)> {
        let (d, size) = self.blob_size(repo, digest).await?;
        let range = match range {
            None => None,
            Some((start, end)) => {
                let end = end
                    .unwrap_or(size.saturating_sub(1))
                    .min(size.saturating_sub(1));
                if size == 0 || start > end {
                    return Err(RegistryError::BlobRangeInvalid { size });
                }
                Some(ByteRange { start, end })
            }
        };
        match self.blobs.open(&d, range).await? {
            Some(s) => Ok((d, size, range, s)),
            None => Err(RegistryError::BlobUnknown(d.to_string())),
        }
    }

    /// Removes a blob from a repository (the content goes when no repository references it: see `gc`).
    pub async fn delete_blob(&self, repo: &str, digest: &str) -> Result<()> {
        Self::check_name(repo)?;
        let d = Self::parse_digest(digest)?;
        if !self.opts.delete_enabled {
            return Err(RegistryError::Unsupported("deletion is disabled"));
        }
        if self.meta.unlink_blob(repo, &d).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(d.to_string()))
        }
    }

    /// Links a blob `from` holds into `repo`, if it does. `false` means the client must upload it.
    pub async fn mount(&self, repo: &str, from: &str, digest: &str) -> Result<Option<Digest>> {
        Self::check_name(repo)?;
        let d = Self::parse_digest(digest)?;
        if !name::valid_repository(from) || !self.meta.blob_linked(from, &d).await? {
            return Ok(None);
        }
        let _g = self.gc_lock.read().await;
        if self.blobs.stat(&d).await?.is_none() {
            return Ok(None);
        }
        self.blobs.touch(&d).await?;
        self.meta.link_blob(repo, &d).await?;
        Ok(Some(d))
    }

    // ---- uploads ----

    /// Starts an upload.
    pub async fn start_upload(&self, repo: &str) -> Result<SessionHandle> {
        Self::check_name(repo)?;
        Ok(self.uploads.create(repo).await?)
    }

    /// Finds an upload.
    pub async fn upload(&self, repo: &str, id: &str) -> Result<SessionHandle> {
        Self::check_name(repo)?;
        Ok(self.uploads.get(repo, id).await?)
    }

    /// Appends a chunk; `start` (from `Content-Range`) must be the current offset. Returns the new offset.
    pub async fn append<S, E>(&self, h: &SessionHandle, start: Option<u64>, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut s = h.lock().await;
        match self.uploads.append(&mut s, start, body).await {
            Ok(n) => Ok(n),
            Err(e @ UploadError::TooLarge { .. }) => {
                self.uploads.remove(&s).await;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Completes an upload with an optional last chunk: verifies the digest and commits the blob, or fails
    /// with `DIGEST_INVALID` and stores nothing. Either way the session ends.
    pub async fn finish_upload<S, E>(
        &self,
        h: &SessionHandle,
        digest: &str,
        last: S,
    ) -> Result<Digest>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut s = h.lock().await;
        let d = match Self::parse_digest(digest) {
            Ok(d) => d,
            Err(e) => {
                self.uploads.remove(&s).await;
                return Err(e);
            }
        };
        if let Err(e) = self.uploads.append(&mut s, None, last).await {
            if !matches!(e, UploadError::Body(_)) {
                self.uploads.remove(&s).await;
            }
            return Err(e.into());
        }
        let hashed = s.take_sha256();
        let _g = self.gc_lock.read().await;
        let res = self
            .blobs
            .commit_file(&d, &s.data_path(), hashed.as_ref())
            .await;
        self.uploads.remove(&s).await;
        match res {
            Ok(()) => {}
            Err(StorageError::DigestMismatch { expected, actual }) => {
                return Err(RegistryError::DigestInvalid(format!(
                    "expected {expected}, got {actual}"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.meta.link_blob(&s.repo, &d).await?;
        Ok(d)
    }

    /// Cancels an upload.
    pub async fn cancel_upload(&self, h: &SessionHandle) {
        let s = h.lock().await;
        self.uploads.remove(&s).await;
    }

    // ---- manifests ----

    async fn resolve(&self, repo: &str, reference: &str) -> Result<Digest> {
        match Reference::parse(reference)? {
            Reference::Digest(d) => Ok(d),
            Reference::Tag(t) => match self.meta.tag(repo, &t).await? {
                Some(link) => Ok(link.digest),
                None => Err(RegistryError::ManifestUnknown(t)),
            },
        }
    }

    /// A manifest's link without its content (HEAD).
    pub async fn manifest_link(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Digest, ManifestLink)> {
        Self::check_name(repo)?;
        let d = self.resolve(repo, reference).await?;
        match self.meta.manifest(repo, &d).await? {
            Some(l) => Ok((d, l)),
            None => Err(RegistryError::ManifestUnknown(reference.to_string())),
        }
    }

    /// A manifest with its content.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<ManifestContent> {
        let (digest, link) = self.manifest_link(repo, reference).await?;
        let body = self.manifest_bytes(&digest).await?;
        Ok(ManifestContent { digest, link, body })
    }

    /// A manifest's bytes by digest, from the cache or the blob store.
    pub async fn manifest_bytes(&self, digest: &Digest) -> Result<Bytes> {
        if let Some(b) = self.cache_get(digest) {
            return Ok(b);
        }
        let Some(body) = self.blobs.get(digest).await? else {
            return Err(RegistryError::ManifestUnknown(digest.to_string()));
        };
        self.cache_put(digest, &body);
        Ok(body)
    }

    fn cache_get(&self, d: &Digest) -> Option<Bytes> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .get(d)
            .cloned()
    }

    fn cache_put(&self, d: &Digest, body: &Bytes) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 + body.len() > self.opts.manifest_cache_bytes {
            c.1.clear();
            c.0 = 0;
        }
        if body.len() <= self.opts.manifest_cache_bytes
            && c.1.insert(d.clone(), body.clone()).is_none()
        {
            c.0 += body.len();
        }
    }

    /// Stores a manifest pushed to `repo` under `reference` (tag or digest), checking that everything it
    /// references is present.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<PutManifest> {
        Self::check_name(repo)?;
        let reference = Reference::parse(reference)?;
        if body.len() > self.opts.max_manifest_bytes {
            return Err(RegistryError::TooLarge {
                limit: self.opts.max_manifest_bytes as u64,
            });
        }
        let m = manifest::parse(content_type, &body)?;
        let digest = match &reference {
            Reference::Digest(want) => {
                let got = want.algorithm().digest(&body);
                if &got != want {
                    return Err(RegistryError::DigestInvalid(format!(
                        "expected {want}, got {got}"
                    )));
                }
                got
            }
            Reference::Tag(_) => Algorithm::Sha256.digest(&body),
        };
        let _g = self.gc_lock.read().await;
        self.check_references(repo, &m).await?;
        self.blobs.put(&digest, body.clone()).await?;
        let subject = m.subject.as_ref().map(|s| s.digest.clone());
        let pushed = now();
        let link = ManifestLink {
            media_type: m.media_type.clone(),
            size: body.len() as u64,
            pushed: pushed.clone(),
            subject: subject.clone(),
        };
        self.meta.put_manifest(repo, &digest, &link).await?;
        if let Reference::Tag(t) = &reference {
            let tl = TagLink {
                digest: digest.clone(),
                pushed,
            };
            self.meta.put_tag(repo, t, &tl).await?;
        }
        if let Some(s) = &subject {
            let desc = Descriptor {
                media_type: m.media_type.clone(),
                digest: digest.clone(),
                size: body.len() as u64,
                artifact_type: m.artifact_type.clone(),
                annotations: m.annotations.clone(),
            };
            self.meta.add_referrer(repo, s, &desc).await?;
        }
        self.cache_put(&digest, &body);
        Ok(PutManifest { digest, subject })
    }

    async fn check_references(&self, repo: &str, m: &Manifest) -> Result<()> {
        for child in &m.manifests {
            if self.meta.manifest(repo, &child.digest).await?.is_none() {
                return Err(RegistryError::ManifestBlobUnknown(child.digest.clone()));
            }
        }
        let blobs = m.config.iter().chain(
            m.layers
                .iter()
                .filter(|l| l.urls.as_ref().is_none_or(Vec::is_empty)),
        );
        for b in blobs {
            if !self.meta.blob_linked(repo, &b.digest).await?
                || self.blobs.stat(&b.digest).await?.is_none()
            {
                return Err(RegistryError::ManifestBlobUnknown(b.digest.clone()));
            }
            self.blobs.touch(&b.digest).await?;
        }
        Ok(())
    }

    /// Deletes a manifest by digest (with its tags and referrer entry), or only a tag.
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<()> {
        Self::check_name(repo)?;
        let reference = Reference::parse(reference)?;
        if !self.opts.delete_enabled {
            return Err(RegistryError::Unsupported("deletion is disabled"));
        }
        match reference {
            Reference::Tag(t) => {
                if self.meta.delete_tag(repo, &t).await? {
                    Ok(())
                } else {
                    Err(RegistryError::ManifestUnknown(t))
                }
            }
            Reference::Digest(d) => {
                let Some(link) = self.meta.manifest(repo, &d).await? else {
                    return Err(RegistryError::ManifestUnknown(d.to_string()));
                };
                for (t, tl) in self.meta.tags(repo).await? {
                    if tl.digest == d {
                        self.meta.delete_tag(repo, &t).await?;
                    }
                }
                if let Some(s) = &link.subject {
                    self.meta.remove_referrer(repo, s, &d).await?;
                }
                self.meta.delete_manifest(repo, &d).await?;
                Ok(())
            }
        }
    }

    // ---- listings ----

    /// Tags of a repository, paged.
    pub async fn tags(&self, repo: &str, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        Self::check_name(repo)?;
        let tags: Vec<String> = self
            .meta
            .tags(repo)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        if tags.is_empty() && self.meta.manifests(repo).await?.is_empty() {
            return Err(RegistryError::NameUnknown(repo.to_string()));
        }
        Ok(paginate(tags, n, last))
    }

    /// Repositories, paged.
    pub async fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        Ok(paginate(self.meta.repositories().await?, n, last))
    }

    /// Manifests referring to `subject`, optionally only those of one artifact type.
    pub async fn referrers(
        &self,
        repo: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        Self::check_name(repo)?;
        let d = Self::parse_digest(subject)?;
        let mut all = self.meta.referrers(repo, &d).await?;
        if let Some(at) = artifact_type {
            all.retain(|r| r.artifact_type.as_deref() == Some(at));
        }
        Ok(all)
    }
}
