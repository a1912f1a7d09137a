//! berth-sys: the one crate that talks to the kernel directly.
//!
//! Everything berth does to the host — mounts, file locks, process attributes — goes through here, so the
//! rest of the workspace can `forbid(unsafe_code)` and tests can see in one place what touches the machine.
//! Most calls go through `nix`'s safe wrappers; where a raw `libc` call is needed it carries a `SAFETY:`
//! comment.

pub mod bpf;
pub mod container;
pub mod fd;
pub mod inroot;
pub mod launch;
pub mod lock;
pub mod mount;
pub mod netns;
pub mod process;
pub mod seccomp;

/// An OS-level failure with the operation and the path or object it concerned.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{op} {target}: {source}")]
    Os {
        op: &'static str,
        target: String,
        #[source]
        source: nix::Error,
    },
    #[error("{op} {target}: {source}")]
    Io {
        op: &'static str,
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is already locked by another process (pid {holder})")]
    Locked { what: String, holder: String },
}

impl SysError {
    pub(crate) fn os(op: &'static str, target: impl std::fmt::Display, source: nix::Error) -> Self {
        SysError::Os {
            op,
            target: target.to_string(),
            source,
        }
    }
    pub(crate) fn io(
        op: &'static str,
        target: impl std::fmt::Display,
        source: std::io::Error,
    ) -> Self {
        SysError::Io {
            op,
            target: target.to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, SysError>;
