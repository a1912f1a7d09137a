//! The crate's one error type.

/// What went wrong while setting up or tearing down networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An I/O failure with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A namespace or other kernel operation from berth-sys.
    #[error(transparent)]
    Sys(#[from] berth_sys::SysError),
    /// A netlink request the kernel refused.
    #[error("{context}: {message}")]
    Netlink { context: String, message: String },
    /// Applying the firewall rule set failed.
    #[error("firewall: {0}")]
    Firewall(String),
    /// The caller asked for something impossible (bad subnet, address outside the subnet...).
    #[error("{0}")]
    Invalid(String),
    /// An address, subnet or port is already taken.
    #[error("{0}")]
    Conflict(String),
    /// No free subnet or address is left.
    #[error("{0}")]
    Exhausted(String),
}

impl NetworkError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetworkError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, NetworkError>;
