//! Snapshots: unpacked layers used as overlay lowerdirs, keyed by chain id.
//!
//! Layout under the snapshot root (`<data-root>/snapshots`):
//!
//! ```text
//! <chainhex>/fs           the layer's files (whiteouts in overlay form), an overlay lowerdir
//! <chainhex>/info.json    chain id, parent chain id, diff id, unpacked size, tar size
//! <chainhex>.tmp-<rand>/  a layer being unpacked; renamed to <chainhex>/ when complete
//! <chainhex>.del-<rand>/  a snapshot being deleted (renamed first, then removed)
//! ```
//!
//! Chain ids follow OCI: `chainID(L0) = diffID(L0)`, `chainID(Ln) = sha256(chainID(Ln-1) + " " +
//! diffID(Ln))`. A snapshot under its final name is always complete, because it only gets there by
//! an atomic rename after the layer was applied, its diff id verified and `info.json` written;
//! `.tmp-` and `.del-` leftovers are removed at open.

mod merged;

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::content::{random_suffix, sync_dir};
use crate::error::ErrorKind;

/// Errors of the snapshot store.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// The string is not a `sha256:<hex>` chain id.
    #[error("invalid chain id {chain_id}")]
    InvalidId { chain_id: String },
    /// No snapshot with this chain id exists.
    #[error("snapshot {chain_id} not found")]
    NotFound { chain_id: String },
    /// The layer blob could not be decompressed.
    #[error("decompressing layer {layer}")]
    Decompress {
        layer: String,
        #[source]
        source: berth_archive::ArchiveError,
    },
    /// Applying the layer tar failed.
    #[error("applying layer {layer}")]
    Apply {
        layer: String,
        #[source]
        source: berth_archive::ArchiveError,
    },
    /// Reading the layer stream failed (truncated or corrupt data).
    #[error("reading layer {layer}")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    /// The uncompressed layer does not hash to the diff id the config declares.
    #[error("layer {layer}: diff id mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    /// The layer blob itself was refused (digest or size) while it was unpacked.
    #[error("verifying layer blob {layer}")]
    Blob {
        layer: String,
        #[source]
        source: crate::content::ContentError,
    },
    /// A file read through the merged view is too large to hold in memory.
    #[error("file {path} is larger than {max} bytes")]
    FileTooLarge { path: String, max: u64 },
    /// A snapshot's `info.json` is unreadable.
    #[error("snapshot info {path} is corrupt")]
    Info {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SnapshotError {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::InvalidId { .. }
            | SnapshotError::Decompress { .. }
            | SnapshotError::Apply { .. }
            | SnapshotError::Read { .. }
            | SnapshotError::DiffIdMismatch { .. }
            | SnapshotError::FileTooLarge { .. } => ErrorKind::InvalidArgument,
            SnapshotError::Blob { source, .. } => source.kind(),
            SnapshotError::Info { .. } | SnapshotError::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The chain ids of an ordered list of diff ids (bottom layer first).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// What `info.json` records about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub chain_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub diff_id: String,
    /// Bytes of unpacked file content.
    pub size: u64,
    /// Bytes of the uncompressed layer tar.
    pub diff_size: u64,
}

/// What [`SnapshotStore::unpack_plain`] makes: the snapshot's identity and the blob it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnpackTarget<'a> {
    pub(crate) chain_id: &'a str,
    pub(crate) parent: Option<&'a str>,
    pub(crate) diff_id: &'a str,
    /// The blob's digest, named in errors.
    pub(crate) layer: &'a str,
}

/// The snapshot directory tree.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

/// Removes a temporary directory unless disarmed.
struct TmpDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = fs::remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "removing temporary snapshot");
            }
        }
    }
}

fn chain_hex(chain_id: &str) -> Result<&str, SnapshotError> {
    match chain_id.strip_prefix("sha256:") {
        Some(h) if crate::reference::is_full_hex_id(h) => Ok(h),
        _ => Err(SnapshotError::InvalidId {
            chain_id: chain_id.to_string(),
        }),
    }
}

impl SnapshotStore {
    /// Opens (creating) the store and removes half-made or half-deleted snapshots.
    pub fn open(root: &Path) -> Result<SnapshotStore, SnapshotError> {
        fs::create_dir_all(root).map_err(io_err("creating directory", root))?;
        for entry in fs::read_dir(root).map_err(io_err("reading directory", root))? {
            let entry = entry.map_err(io_err("reading directory", root))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.contains(".tmp-") || name.contains(".del-") {
                let p = entry.path();
                remove_any(&p).map_err(io_err("removing snapshot leftover", &p))?;
                tracing::info!(path = %p.display(), "removed interrupted snapshot");
            }
        }
        Ok(SnapshotStore {
            root: root.to_path_buf(),
        })
    }

    /// The lowerdir of a snapshot (whether or not it exists).
    pub fn fs_dir(&self, chain_id: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.root.join(chain_hex(chain_id)?).join("fs"))
    }

    /// Whether a complete snapshot exists.
    pub fn exists(&self, chain_id: &str) -> Result<bool, SnapshotError> {
        Ok(self
            .root
            .join(chain_hex(chain_id)?)
            .join("info.json")
            .is_file())
    }

    /// The recorded info of an existing snapshot.
    pub fn info(&self, chain_id: &str) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.root.join(chain_hex(chain_id)?).join("info.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound {
                    chain_id: chain_id.to_string(),
                })
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Info { path, source })
    }

    /// Every complete snapshot's chain id.
    pub fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("reading directory", &self.root))? {
            let entry = entry.map_err(io_err("reading directory", &self.root))?;
            let name = entry.file_name();
            if let Some(n) = name.to_str() {
                if crate::reference::is_full_hex_id(n) {
                    out.push(format!("sha256:{n}"));
                }
            }
        }
        Ok(out)
    }

    /// Unpacks a (possibly compressed) layer blob as snapshot `chain_id`, verifying that its
    /// uncompressed content hashes to `diff_id`. `layer` names the blob in errors. When the
    /// snapshot appears meanwhile (another unpack won the race) the existing one is kept.
    pub fn unpack(
        &self,
        chain_id: &str,
        parent: Option<&str>,
        diff_id: &str,
        layer: &str,
        blob: impl Read + Send,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let plain = berth_archive::decompress(BufReader::new(blob)).map_err(|source| {
            SnapshotError::Decompress {
                layer: layer.to_string(),
                source,
            }
        })?;
        let target = UnpackTarget {
            chain_id,
            parent,
            diff_id,
            layer,
        };
        self.unpack_plain(&target, plain, &berth_archive::Limits::default(), || Ok(()))
    }

    /// Unpacks an uncompressed layer stream; `before_publish` runs after the diff id was verified
    /// and before the snapshot is renamed into place (the pull verifies the blob digest there), so
    /// a failure in it leaves no snapshot.
    pub(crate) fn unpack_plain(
        &self,
        target: &UnpackTarget<'_>,
        plain: impl Read,
        limits: &berth_archive::Limits,
        before_publish: impl FnOnce() -> Result<(), SnapshotError>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let UnpackTarget {
            chain_id,
            parent,
            diff_id,
            layer,
        } = *target;
        let hex = chain_hex(chain_id)?;
        let final_dir = self.root.join(hex);
        let tmp = TmpDir {
            path: self.root.join(format!("{hex}.tmp-{}", random_suffix())),
            keep: false,
        };
        let fs_dir = tmp.path.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err("creating directory", &fs_dir))?;
        let mut reader = berth_archive::DigestReader::new(plain);
        let stats = berth_archive::apply_layer(&mut reader, &fs_dir, limits).map_err(|source| {
            SnapshotError::Apply {
                layer: layer.to_string(),
                source,
            }
        })?;
        // The digest covers the whole stream, including padding after the end-of-archive marker.
        io::copy(&mut reader, &mut io::sink()).map_err(|source| SnapshotError::Read {
            layer: layer.to_string(),
            source,
        })?;
        let diff_size = reader.bytes_read();
        let actual = reader.digest();
        if actual != diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                layer: layer.to_string(),
                expected: diff_id.to_string(),
                actual,
            });
        }
        before_publish()?;
        let info = SnapshotInfo {
            chain_id: chain_id.to_string(),
            parent: parent.map(str::to_string),
            diff_id: diff_id.to_string(),
            size: stats.bytes,
            diff_size,
        };
        let info_path = tmp.path.join("info.json");
        let json = serde_json::to_vec_pretty(&info).map_err(|source| SnapshotError::Info {
            path: info_path.clone(),
            source,
        })?;
        let mut f = File::create(&info_path).map_err(io_err("creating", &info_path))?;
        f.write_all(&json).map_err(io_err("writing", &info_path))?;
        // One syncfs makes the unpacked tree and info.json durable before the rename publishes them.
        nix::unistd::syncfs(f.as_raw_fd())
            .map_err(|e| io_err("syncing filesystem of", &info_path)(io::Error::from(e)))?;
        drop(f);
        if final_dir.exists() {
            return self.info(chain_id);
        }
        let mut tmp = tmp;
        match fs::rename(&tmp.path, &final_dir) {
            Ok(()) => tmp.keep = true,
            Err(e) if final_dir.exists() => {
                tracing::debug!(error = %e, chain_id, "snapshot appeared concurrently");
                return self.info(chain_id);
            }
            Err(e) => return Err(io_err("renaming snapshot into", &final_dir)(e)),
        }
        sync_dir(&self.root).map_err(io_err("syncing directory", &self.root))?;
        Ok(info)
    }

    /// Hashes a (possibly compressed) layer blob without unpacking it; returns the tar's size.
    pub fn verify(
        diff_id: &str,
        layer: &str,
        blob: impl Read + Send,
    ) -> Result<u64, SnapshotError> {
        let plain = berth_archive::decompress(BufReader::new(blob)).map_err(|source| {
            SnapshotError::Decompress {
                layer: layer.to_string(),
                source,
            }
        })?;
        let mut reader = berth_archive::DigestReader::new(plain);
        io::copy(&mut reader, &mut io::sink()).map_err(|source| SnapshotError::Read {
            layer: layer.to_string(),
            source,
        })?;
        let size = reader.bytes_read();
        let actual = reader.digest();
        if actual != diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                layer: layer.to_string(),
                expected: diff_id.to_string(),
                actual,
            });
        }
        Ok(size)
    }

    /// Moves a snapshot out of its final name (GC only); returns the doomed path and its size.
    /// The caller deletes the returned directory with [`remove_doomed`] outside its locks.
    pub(crate) fn doom(&self, chain_id: &str) -> Result<Option<(PathBuf, u64)>, SnapshotError> {
        let hex = chain_hex(chain_id)?;
        let dir = self.root.join(hex);
        if !dir.exists() {
            return Ok(None);
        }
        let size = self.info(chain_id).map(|i| i.size).unwrap_or(0);
        let doomed = self.root.join(format!("{hex}.del-{}", random_suffix()));
        fs::rename(&dir, &doomed).map_err(io_err("renaming snapshot for deletion", &dir))?;
        Ok(Some((doomed, size)))
    }

    /// A file's content as the merged image (`layers`: lowerdirs, top-most first) sees it;
    /// `None` when it does not exist or is not a regular file.
    pub fn read_merged(
        layers: &[PathBuf],
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, SnapshotError> {
        merged::read_file(layers, path, max)
    }
}

/// Deletes a directory returned by [`SnapshotStore::doom`]; failures are logged (open retries).
pub(crate) fn remove_doomed(path: &Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "removing deleted snapshot");
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_oci() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let want = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(ids[1], want);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn open_removes_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hex = "c".repeat(64);
        fs::create_dir_all(dir.path().join(format!("{hex}.tmp-1/fs"))).expect("mkdir");
        fs::create_dir_all(dir.path().join(format!("{hex}.del-2/fs"))).expect("mkdir");
        let store = SnapshotStore::open(dir.path()).expect("open");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
        assert!(store.list().expect("list").is_empty());
    }
}
