//! The distribution error type: every registry answer a user can meet gets its own variant and a
//! message in Docker's words where Docker has one.

use std::path::PathBuf;

use berth_image::{ErrorKind, ImageError, ReferenceError};
use thiserror::Error;

/// Errors of pull, push, login and the registry client.
#[derive(Debug, Error)]
pub enum DistError {
    /// A reference or registry name was refused.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The image store refused or failed an operation.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The registry wants credentials we do not have, or refused the ones we sent (401).
    #[error("{action} access denied for {repository}, repository does not exist or may require 'docker login': {detail}")]
    AccessDenied {
        action: &'static str,
        repository: String,
        detail: String,
    },
    /// `login` was refused.
    #[error("login to {registry} failed: unauthorized: incorrect username or password")]
    LoginFailed { registry: String },
    /// The registry refused the operation for these credentials (403).
    #[error("denied: requested access to {what} is denied: {detail}")]
    Forbidden { what: String, detail: String },
    /// The manifest or blob does not exist (404).
    #[error("{what} not found: {detail}")]
    NotFound { what: String, detail: String },
    /// Rate limited (429) after every retry.
    #[error("toomanyrequests: {registry} is rate limiting requests; try again later")]
    TooManyRequests { registry: String },
    /// Another unexpected status, after every retry for server errors.
    #[error("{registry} answered {status} to {what}: {detail}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    /// The registry could not be reached or the connection failed, after every retry.
    #[error("{what} from {registry}: {}", causes(source))]
    Transport {
        registry: String,
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry's `certs.d` directory holds something we cannot use.
    #[error("invalid TLS configuration for {registry} in {}: {reason}", path.display())]
    TlsConfig {
        registry: String,
        path: PathBuf,
        reason: String,
    },
    /// The connection closed before the whole blob arrived, after every retry (what arrived is
    /// kept and the next pull resumes it).
    #[error("downloading {digest}: connection closed after {received} of {size} bytes")]
    Interrupted {
        digest: String,
        received: u64,
        size: u64,
    },
    /// A manifest list or index has no entry for the platform.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    /// A media type we cannot pull.
    #[error("unsupported media type {media_type} for {what}")]
    UnsupportedMediaType { what: String, media_type: String },
    /// Schema 1 manifests are gone from Docker too.
    #[error("support for Docker Image Format v1 and Docker Image manifest version 2, schema 1 has been removed: {reference}")]
    Schema1 { reference: String },
    /// A manifest or config is larger than we accept.
    #[error("{what} is larger than {max} bytes")]
    TooLarge { what: String, max: u64 },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, index or config that does not parse or does not fit together.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    /// The registry's answer to a push does not match what we sent.
    #[error("push of {what} failed: {reason}")]
    PushRejected { what: String, reason: String },
    /// `config.json` could not be read or written.
    #[error("{op} docker config {path}")]
    Config {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `config.json` does not parse.
    #[error("docker config {path} is not valid json")]
    ConfigJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper}: {reason}")]
    CredentialHelper { helper: String, reason: String },
    /// A registry name or mirror URL is not usable.
    #[error("invalid registry {name}: {reason}")]
    InvalidRegistry { name: String, reason: String },
    /// A blocking store task panicked or was cancelled.
    #[error("image store task failed: {reason}")]
    Task { reason: String },
}

/// A transport error with its causes ("error sending request for url (...): client error
/// (Connect): invalid peer certificate: UnknownIssuer"): the top message alone hides why.
fn causes(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// Whether a transport error cannot heal by retrying: a TLS failure (an untrusted or expired
/// certificate, a refused client certificate) says the same thing every time.
pub(crate) fn is_permanent(e: &reqwest::Error) -> bool {
    is_tls_failure(e)
}

fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // An io::Error's `source()` skips the error it wraps (and hyper wraps io errors in io
        // errors), so look inside each layer.
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = c.source();
    }
    false
}

impl DistError {
    /// The coarse category, for the API's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DistError::Reference(e) => e.kind(),
            DistError::Image(e) => e.kind(),
            DistError::NotFound { .. } | DistError::NoMatchingPlatform { .. } => {
                ErrorKind::NotFound
            }
            DistError::AccessDenied { .. }
            | DistError::LoginFailed { .. }
            | DistError::Forbidden { .. }
            | DistError::UnsupportedMediaType { .. }
            | DistError::Schema1 { .. }
            | DistError::TooLarge { .. }
            | DistError::DigestMismatch { .. }
            | DistError::Invalid { .. }
            | DistError::InvalidRegistry { .. } => ErrorKind::InvalidArgument,
            DistError::TooManyRequests { .. }
            | DistError::Status { .. }
            | DistError::Transport { .. }
            | DistError::Interrupted { .. }
            | DistError::PushRejected { .. }
            | DistError::Config { .. }
            | DistError::TlsConfig { .. }
            | DistError::ConfigJson { .. }
            | DistError::CredentialHelper { .. }
            | DistError::Task { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the content itself was bad (what was stored for it should be swept).
    pub fn is_bad_content(&self) -> bool {
        match self {
            DistError::DigestMismatch { .. } | DistError::Invalid { .. } => true,
            DistError::Image(e) => e.kind() == ErrorKind::InvalidArgument,
            _ => false,
        }
    }
}

/// Lifts a digest or size mismatch found while storing a blob out of the store's error chain, so
/// the user reads it first.
pub(crate) fn lift_content_error(e: ImageError) -> DistError {
    use berth_image::{ContentError, SnapshotError};
    let content = match &e {
        ImageError::Content(c) => Some(c),
        ImageError::Snapshot(SnapshotError::Blob { source, .. }) => Some(source),
        _ => None,
    };
    match content {
        Some(ContentError::DigestMismatch { expected, actual }) => DistError::DigestMismatch {
            what: format!("blob {expected}"),
            expected: expected.clone(),
            actual: actual.clone(),
        },
        Some(ContentError::SizeMismatch {
            digest,
            expected,
            actual,
        }) => DistError::Invalid {
            what: format!("blob {digest}"),
            reason: format!("expected {expected} bytes, got {actual}"),
        },
        _ => DistError::Image(e),
    }
}

/// Runs a blocking image-store call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, DistError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(DistError::from),
        Err(e) => Err(DistError::Task {
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_found_inside_nested_io_errors() {
        // What hyper hands reqwest for an untrusted certificate.
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls);
        let outer = std::io::Error::other(inner);
        assert!(is_tls_failure(&outer));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_tls_failure(&std::io::Error::other(refused)));
    }
}
