//! berth-distribution: the registry client. Pulls images into, and pushes them from, berth's
//! image store over the OCI distribution API and Docker's registry API v2.
//!
//! - [`RegistryClient`] (`client`): endpoints (`docker.io` → `registry-1.docker.io`, after the
//!   `registry-mirrors`), TLS with the system roots, `insecure-registries` and loopback treated as
//!   insecure like Docker does, Bearer token auth (realm/service/scope, anonymous tokens too) and
//!   Basic auth with a token cache per scope (`auth`), credentials from `~/.docker/config.json`
//!   and `docker-credential-*` helpers (`credentials`), retries with back-off, and
//!   [`RegistryClient::login`].
//! - [`pull()`]: Docker schema 2 manifests and manifest lists, OCI manifests and indexes, platform
//!   selection, parallel layer downloads streamed straight into verification and unpacking,
//!   resumable with HTTP `Range` (see the `pull` module).
//! - [`push()`]: parallel uploads, `HEAD` to skip present blobs, cross-repository mounts,
//!   monolithic or chunked uploads, the manifest sent byte for byte as stored.
//! - [`Progress`]: typed per-layer events in Docker's words, for the daemon's JSON progress.
//!
//! # Why reqwest rather than oci-client
//! The design notes suggested `oci-client` behind our own trait. We use `reqwest` (rustls with
//! the `ring` provider only, the one the rest of the workspace pins, and the system roots)
//! directly because what makes berth's pull fast and robust lives exactly where `oci-client`
//! decides for us: resuming a blob from a partial file with `Range` (also across restarts), a
//! per-request retry and auth policy, streaming bytes into a blocking unpacker with back-pressure,
//! checking `Docker-Content-Digest`, falling back from mirrors, sending the manifest bytes
//! unchanged (its push drops `mediaType`), chunked uploads, and Docker's error wording per status.
//! With reqwest each of those is a few lines we control and test; the protocol surface we need
//! (a dozen endpoints and the token dance) is small.
//!
//! Everything here is async (tokio); the image store is blocking and is called through
//! `spawn_blocking`. Secrets are never logged.

mod auth;
mod catalog;
mod client;
mod credentials;
mod error;
mod manifest;
mod progress;
mod pull;
mod push;
mod tls;

pub use auth::{parse_challenge, Challenge};
pub use catalog::SearchResult;
pub use client::{registry_key, ClientOptions, LoginOutcome, RegistryClient, DOCKER_HUB_HOST};
pub use credentials::{Credential, DockerConfig, DOCKER_HUB_KEY};
pub use error::DistError;
pub use manifest::{choose_platform, format_platform};
pub use progress::{short, Event, Progress};
pub use pull::{pull, PullOptions, PullOutcome};
pub use push::{push, PushOptions, PushOutcome};

/// Verifies credentials against the registry's `/v2/` and stores them (see
/// [`RegistryClient::login`]).
pub async fn login(
    client: &RegistryClient,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<LoginOutcome, DistError> {
    client.login(registry, username, password).await
}
