//! The one mapping from failures to the distribution spec's status codes and JSON error body
//! (`{"errors":[{"code","message","detail"}]}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::registry::RegistryError;

/// A failure of an API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Credentials are missing or wrong; carries the `WWW-Authenticate` challenge.
    #[error("authentication required")]
    Unauthorized {
        /// The challenge to send.
        challenge: String,
    },
    /// Authenticated but not allowed.
    #[error("requested access to the resource is denied")]
    Denied,
    /// A malformed request outside the registry operations (bad query, header).
    #[error("{message}")]
    BadRequest {
        /// The spec (or distribution) code.
        code: &'static str,
        /// The message.
        message: String,
    },
    /// No such endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A request body over its limit.
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(u64),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        use RegistryError as R;
        match self {
            ApiError::Registry(e) => match e {
                R::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
                R::BlobUploadUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
                R::BlobUploadInvalid(_) | R::Body(_) => {
                    (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
                }
                R::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
                R::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
                R::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
                R::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
                R::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
                R::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
                R::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
                R::RangeInvalid { .. } => {
                    (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
                }
                R::BlobRangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID"),
                R::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
                R::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
                R::Storage(_) | R::Staging(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
            },
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            ApiError::Denied => (StatusCode::FORBIDDEN, "DENIED"),
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
        }
    }

    /// The spec code, for logs and tests.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %chain(&self), "request failed");
        }
        let message = if status.is_server_error() {
            self.to_string()
        } else {
            chain(&self)
        };
        let body =
            serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        match &self {
            ApiError::Unauthorized { challenge } => {
                if let Ok(v) = HeaderValue::from_str(challenge) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::Registry(RegistryError::RangeInvalid { offset }) => {
                let end = offset.saturating_sub(1);
                if let Ok(v) = HeaderValue::from_str(&format!("0-{end}")) {
                    h.insert(header::RANGE, v);
                }
            }
            ApiError::Registry(RegistryError::BlobRangeInvalid { size }) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}
