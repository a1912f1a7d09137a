//! `berth registry`: an OCI distribution registry (spec v1.1) that docker, podman, skopeo and berth push to and
//! pull from, with a web directory and search (`/`, `/r/<name>`, `/v1/search`), Basic or token auth, TLS,
//! Prometheus metrics and an online garbage collector.
//!
//! # Layers
//! - [`storage`]: the [`storage::BlobStore`] (content-addressed, deduplicated across repositories) and
//!   [`storage::MetadataStore`] (links, tags, referrers) traits, with a filesystem and an `object_store`
//!   implementation, and upload sessions staged on local disk;
//! - [`registry`]: every distribution operation as a typed call, no HTTP types;
//! - [`api`]: axum handlers, routing `/v2/<name>/...` by hand, one error-to-status mapping;
//! - [`auth`]: htpasswd (bcrypt), the token service (JWT) and access rules;
//! - [`web`]: the directory; [`gc`]: the collector; [`config`], [`server`], [`cli`]: operations.
//!
//! # On-disk layout (the object-store backend uses the same keys)
//! ```text
//! <root>/
//!   blobs/<alg>/<hex[0..2]>/<hex>                      blob content (layers, configs, manifests), verified
//!   repositories/<name>/_layers/<alg>/<hex>            empty: <name> holds this blob (uploaded or mounted)
//!   repositories/<name>/_manifests/revisions/<alg>/<hex>   JSON ManifestLink: <name> holds this manifest
//!   repositories/<name>/_manifests/tags/<tag>          JSON TagLink: what the tag points at
//!   repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>   JSON Descriptor of a referrer
//!   uploads/<id>/repo, uploads/<id>/data               an upload in progress (local disk only)
//! ```
//! Names never contain a component starting with `_` or `.` (see [`name`]), so `_layers`, `_manifests` and
//! `_referrers` cannot collide with a repository, and no name escapes `repositories/`. Writes go to a
//! `.tmp-*` file, are fsynced (blobs: and verified against their digest) and renamed; start-up removes
//! `.tmp-*` leftovers.
//!
//! # Metadata schema (version 1, JSON)
//! - `ManifestLink`: `{"mediaType": "<as pushed>", "size": N, "pushed": "<RFC 3339>", "subject": "<digest>"?}`
//! - `TagLink`: `{"digest": "<digest>", "pushed": "<RFC 3339>"}`
//! - `Descriptor` (referrers): `{"mediaType", "digest", "size", "artifactType"?, "annotations"?}`
//!
//! A manifest's bytes are a blob like any other; a repository serves a blob only if it links it, and a
//! manifest only if it holds its revision link. Deleting removes links; the collector ([`gc`]) removes content
//! nothing references.

pub mod api;
pub mod auth;
mod cli;
pub mod config;
pub mod digest;
pub mod gc;
pub mod manifest;
pub mod metrics;
pub mod name;
pub mod registry;
pub mod server;
pub mod storage;
pub mod web;

pub use cli::{cli_main, CliError, Server};
