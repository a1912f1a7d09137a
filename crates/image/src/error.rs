//! The image store's error type and the coarse [`ErrorKind`] the API maps to HTTP statuses.

use std::path::PathBuf;

use thiserror::Error;

use crate::changes::ChangeError;
use crate::config::ConfigError;
use crate::content::ContentError;
use crate::meta::MetaError;
use crate::reference::ReferenceError;
use crate::snapshot::SnapshotError;

/// Coarse category of an error: the API maps it to 404/409/400/500 in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// The request or its input is malformed (400).
    InvalidArgument,
    /// Something failed on our side (500).
    Internal,
}

/// Errors of [`crate::ImageStore`] operations.
#[derive(Debug, Error)]
pub enum ImageError {
    /// A reference string was refused.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Unpacking or reading a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// An image config or a platform was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A `--change` instruction was refused.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// No image matches the name or id (Docker's wording).
    #[error("No such image: {reference}")]
    NotFound { reference: String },
    /// A short id matches several images.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    AmbiguousId { prefix: String },
    /// Deleting by id an image that several repositories reference needs force.
    #[error("conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { image: String },
    /// A container uses the image; the engine words the final message.
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is being used by a container"
    )]
    ImageInUse { image: String },
    /// Another local image names this one as its parent.
    #[error(
        "conflict: unable to delete {image} (cannot be forced) - image has dependent child images"
    )]
    HasChildren { image: String },
    /// `tag` was given a target with a digest.
    #[error("refusing to create a tag with a digest reference")]
    DigestTag { reference: String },
    /// An archive given to `load` is malformed.
    #[error("invalid archive: {reason}")]
    InvalidArchive { reason: String },
    /// An archive member could not be read.
    #[error("invalid archive: reading member {member}")]
    ArchiveRead {
        member: String,
        #[source]
        source: std::io::Error,
    },
    /// A JSON document of an archive (manifest, index, config) does not parse.
    #[error("invalid archive: {member} is not valid json")]
    ArchiveJson {
        member: String,
        #[source]
        source: serde_json::Error,
    },
    /// The input to `import` could not be read or decompressed.
    #[error("reading import source")]
    ImportRead {
        #[source]
        source: berth_archive::ArchiveError,
    },
    /// A blob could not be decompressed while saving.
    #[error("decompressing layer {digest}")]
    Decompress {
        digest: String,
        #[source]
        source: berth_archive::ArchiveError,
    },
    /// Writing the output of `save` failed.
    #[error("writing image archive member {member}")]
    SaveWrite {
        member: String,
        #[source]
        source: std::io::Error,
    },
    /// A stored record is inconsistent with the files on disk.
    #[error("image {image} is corrupt: {reason}")]
    Corrupt { image: String, reason: String },
    /// Another download of the same blob is in progress.
    #[error("blob {digest} is already being downloaded")]
    IngestBusy { digest: String },
    /// A layer expands far more than any real layer does.
    #[error("layer {layer} expands more than {max_ratio} times its compressed size (decompression bomb)")]
    DecompressionBomb { layer: String, max_ratio: u64 },
    /// A pulled image's parts do not fit together.
    #[error("invalid image {reference}: {reason}")]
    InvalidImage { reference: String, reason: String },
    /// A filesystem operation outside the sub-stores failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    /// The coarse category, for the API's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Reference(e) => e.kind(),
            ImageError::Content(e) => e.kind(),
            ImageError::Meta(e) => e.kind(),
            ImageError::Snapshot(e) => e.kind(),
            ImageError::Config(e) => e.kind(),
            ImageError::Change(e) => e.kind(),
            ImageError::NotFound { .. } => ErrorKind::NotFound,
            ImageError::MultipleRepositories { .. }
            | ImageError::ImageInUse { .. }
            | ImageError::HasChildren { .. }
            | ImageError::IngestBusy { .. } => ErrorKind::Conflict,
            ImageError::AmbiguousId { .. }
            | ImageError::DigestTag { .. }
            | ImageError::InvalidArchive { .. }
            | ImageError::ArchiveRead { .. }
            | ImageError::ArchiveJson { .. }
            | ImageError::ImportRead { .. }
            | ImageError::DecompressionBomb { .. }
            | ImageError::InvalidImage { .. } => ErrorKind::InvalidArgument,
            ImageError::Decompress { .. }
            | ImageError::SaveWrite { .. }
            | ImageError::Corrupt { .. }
            | ImageError::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn archive(reason: impl Into<String>) -> Self {
        ImageError::InvalidArchive {
            reason: reason.into(),
        }
    }
}
