//! The engine's error type. Each error has a coarse [`ErrorKind`] that the API maps to an HTTP status in one
//! place; the message is what the user sees, worded like Docker's where clients depend on it.

use berth_image::ImageError;

/// Coarse categories; the API turns them into 404, 409, 400, 304, 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    NotModified,
    Forbidden,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("{0}")]
    Conflict(String),
    /// Refused by policy (Docker answers 403: removing a predefined network, duplicate endpoints).
    #[error("{0}")]
    Forbidden(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Something else that does not exist, worded by the caller.
    #[error("{0}")]
    NotFoundMsg(String),
    #[error("{0}")]
    Invalid(String),
    #[error("container already {0}")]
    NotModified(&'static str),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Distribution(#[from] berth_distribution::DistError),
    #[error("{0}")]
    Internal(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NoSuchContainer(_)
            | EngineError::NoSuchNetwork(_)
            | EngineError::NoSuchVolume(_)
            | EngineError::NotFoundMsg(_)
            | EngineError::NoSuchExec(_) => ErrorKind::NotFound,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::Invalid(_) => ErrorKind::InvalidArgument,
            EngineError::NotModified(_) => ErrorKind::NotModified,
            EngineError::Image(e) => match e.kind() {
                berth_image::ErrorKind::NotFound => ErrorKind::NotFound,
                berth_image::ErrorKind::Conflict => ErrorKind::Conflict,
                berth_image::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                berth_image::ErrorKind::Internal => ErrorKind::Internal,
            },
            EngineError::Distribution(e) => match e.kind() {
                berth_image::ErrorKind::NotFound => ErrorKind::NotFound,
                berth_image::ErrorKind::Conflict => ErrorKind::Conflict,
                berth_image::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                berth_image::ErrorKind::Internal => ErrorKind::Internal,
            },
            EngineError::Internal(_) | EngineError::Io { .. } => ErrorKind::Internal,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn join(e: tokio::task::JoinError) -> Self {
        EngineError::Internal(format!("background task failed: {e}"))
    }

    pub(crate) fn db(e: impl std::fmt::Display) -> Self {
        EngineError::Internal(format!("metadata database: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
