//! berth-image: the image store.
//!
//! - [`reference`]: Docker reference parsing and normalisation (`busybox` →
//!   `docker.io/library/busybox:latest`), with Docker's error messages;
//! - `content`: blobs by sha256 digest under `<root>/content`, written temp → fsync → verify →
//!   rename;
//! - `meta`: the `berth.image.*` tables in the daemon's shared redb database (schema in that
//!   module's documentation);
//! - `snapshot`: unpacked layers under `<root>/snapshots/<chainhex>/fs` used as overlay lowerdirs,
//!   and reading files through the merged view;
//! - [`ImageStore`]: the verbs (`import`, `load`, `save`, `tag`, `remove`, `prune`, `history`,
//!   ...) built on those, with GC by references: nothing is deleted directly, GC removes what no
//!   image references and no in-flight operation leases.
//!
//! - `commit`: a parent image plus one layer written by the caller (`docker commit`).
//! - `pull`/`push`: the registry side (resumable ingest into `content/ingest/<hex>.partial`, layers
//!   unpacked while they download, pulled images committed with their repo digest; the manifest
//!   and blobs a push sends).
//!
//! The API is blocking; the engine calls it from `spawn_blocking`. Every error has a coarse
//! [`ErrorKind`] that the API maps to an HTTP status in one place.

mod changes;
mod commit;
mod config;
mod content;
mod error;
mod import;
mod ingest;
mod lease;
mod load;
pub mod media;
mod meta;
mod pull;
mod push;
pub mod reference;
mod remove;
mod save;
mod snapshot;
mod store;

pub use changes::{apply_changes, ChangeError};
pub use commit::CommitOptions;
pub use config::{
    ConfigError, ContainerConfig, HealthConfig, History, ImageConfig, Platform, RootFs,
};
pub use content::{short_id, ContentError};
pub use error::{ErrorKind, ImageError};
pub use ingest::BlobIngest;
pub use meta::{MetaError, SCHEMA_VERSION};
pub use pull::{
    IngestSession, LayerTarget, PullCommit, PulledImage, PulledLayer, UnpackLimits, UnpackedLayer,
};
pub use push::{BlobRef, PushManifest};
pub use reference::{Reference, ReferenceError};
pub use snapshot::{chain_ids, SnapshotError};
pub use store::{
    HistoryEntry, Image, ImageStore, ImportOptions, LoadedImage, PruneFilters, PruneReport,
    RemoveAction,
};
