//! Storage: a content-addressed [`BlobStore`] and a [`MetadataStore`] of links (which repository holds which
//! blobs and manifests, tags, referrers), with a filesystem implementation ([`fs`]) and one on any
//! `object_store` backend ([`object`], S3-compatible stores with the `s3` feature).
//!
//! Both implementations share one key layout (see the crate docs). Metadata values are small JSON documents;
//! a blob only becomes visible once its whole content was verified against its digest.

pub mod fs;
mod kv;
#[cfg(feature = "object-store")]
pub mod object;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
pub use kv::{Kv, KvMetadata};

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("object store {op} {key}: {message}")]
    Object {
        /// What was being done.
        op: &'static str,
        /// On which key.
        key: String,
        /// The cause, as text (object_store errors are not `Sync` across all versions).
        message: String,
    },
    /// Content did not hash to the digest it was committed under.
    #[error("content does not match digest {expected} (got {actual})")]
    DigestMismatch {
        /// The digest claimed.
        expected: Digest,
        /// The digest computed.
        actual: Digest,
    },
    /// A stored metadata document could not be decoded.
    #[error("corrupt metadata at {key}")]
    Corrupt {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("storage task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of storage operations.
pub type Result<T> = std::result::Result<T, StorageError>;

/// An inclusive byte range `start..=end` of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

/// Content-addressed blob storage, shared by all repositories (deduplicated).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of a blob, or `None` if absent.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Streams a blob (or a range of it). `None` if absent.
    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<Option<ByteStream>>;
    /// Reads a whole (small) blob. `None` if absent.
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>>;
    /// Stores bytes under their digest, verifying them first. Storing what exists is not an error.
    async fn put(&self, digest: &Digest, data: Bytes) -> Result<()>;
    /// Commits a staged local file (already fully written) under `digest`: verifies it, makes it durable and
    /// visible atomically. The staged file is consumed. `hashed` is the digest of the staged bytes when the
    /// caller computed it while writing them (it is then compared instead of reading the file again).
    async fn commit_file(
        &self,
        digest: &Digest,
        staged: &Path,
        hashed: Option<&Digest>,
    ) -> Result<()>;
    /// When a blob was last written or touched; `None` if absent.
    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>>;
    /// Marks a blob as recently used (the garbage collector spares recently used blobs).
    async fn touch(&self, digest: &Digest) -> Result<()>;
    /// Deletes a blob; `false` if it was absent.
    async fn delete(&self, digest: &Digest) -> Result<bool>;
    /// Every blob with its last-modified time.
    async fn list(&self) -> Result<Vec<(Digest, SystemTime)>>;
}

/// What the registry records when a repository holds a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLink {
    /// The media type as pushed (served back as `Content-Type`).
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was pushed (RFC 3339).
    pub pushed: String,
    /// The `subject` digest, for artifacts and signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
}

/// What a tag points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLink {
    /// The manifest digest.
    pub digest: Digest,
    /// When the tag was last pushed (RFC 3339).
    pub pushed: String,
}

/// An OCI descriptor, as listed by the referrers API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The artifact type, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Per-repository metadata: links to blobs and manifests, tags and referrers.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Every repository that holds at least one manifest, sorted.
    async fn repositories(&self) -> Result<Vec<String>>;
    /// Records that `repo` holds blob `digest`.
    async fn link_blob(&self, repo: &str, digest: &Digest) -> Result<()>;
    /// Whether `repo` holds blob `digest`.
    async fn blob_linked(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Removes the link; `false` if absent.
    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Every blob `repo` holds.
    async fn blob_links(&self, repo: &str) -> Result<Vec<Digest>>;
    /// Records that `repo` holds manifest `digest`.
    async fn put_manifest(&self, repo: &str, digest: &Digest, link: &ManifestLink) -> Result<()>;
    /// The manifest link, if `repo` holds `digest`.
    async fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<ManifestLink>>;
    /// Removes a manifest link; `false` if absent.
    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Every manifest `repo` holds.
    async fn manifests(&self, repo: &str) -> Result<Vec<Digest>>;
    /// Points `tag` at a manifest.
    async fn put_tag(&self, repo: &str, tag: &str, link: &TagLink) -> Result<()>;
    /// What `tag` points at.
    async fn tag(&self, repo: &str, tag: &str) -> Result<Option<TagLink>>;
    /// Removes a tag; `false` if absent.
    async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool>;
    /// Every tag of `repo`, sorted by name.
    async fn tags(&self, repo: &str) -> Result<Vec<(String, TagLink)>>;
    /// Records that `referrer` refers to `subject`.
    async fn add_referrer(&self, repo: &str, subject: &Digest, referrer: &Descriptor)
        -> Result<()>;
    /// Forgets a referrer.
    async fn remove_referrer(&self, repo: &str, subject: &Digest, referrer: &Digest) -> Result<()>;
    /// Every manifest that refers to `subject`.
    async fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<Descriptor>>;
}

#[cfg(test)]
pub(crate) mod conformance;
