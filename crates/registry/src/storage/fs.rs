//! The filesystem backend: blobs as files under `blobs/<alg>/<hex[..2]>/<hex>`, metadata as small JSON files
//! under `repositories/`. Every write goes to a temp file in the destination directory, is fsynced, verified
//! (blobs) and renamed into place, and the directory is fsynced: a crash leaves either nothing or the whole
//! object, plus at worst a `.tmp-*` file that start-up removes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobStore, ByteRange, ByteStream, Kv, Result, StorageError};
use crate::digest::{Algorithm, Digest, Hasher};

/// Read buffer for streamed blobs.
const CHUNK: usize = 256 * 1024;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StorageError::Join)?
}

fn tmp_name() -> String {
    format!(".tmp-{:016x}", rand::random::<u64>())
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync the directory.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
    let tmp = dir.join(tmp_name());
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| StorageError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| StorageError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StorageError::io("rename", path, e))?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

fn not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Removes `.tmp-*` files a crash left behind under `dir` (recursively). Best effort.
pub fn remove_temp_files(dir: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with(".tmp-")
                && std::fs::remove_file(&p).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// [`Kv`] on a directory: one file per key.
#[derive(Clone)]
pub struct FsKv {
    root: PathBuf,
}

impl FsKv {
    /// Keys live below `root`.
    pub fn new(root: impl Into<PathBuf>) -> FsKv {
        FsKv { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

#[async_trait]
impl Kv for FsKv {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let p = self.path(key);
        blocking(move || match std::fs::read(&p) {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(StorageError::io("read", &p, e)),
        })
        .await
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<()> {
        let p = self.path(key);
        blocking(move || write_atomic(&p, &value)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let p = self.path(key);
        blocking(move || match std::fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(StorageError::io("remove", &p, e)),
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let p = self.path(key);
        blocking(move || match std::fs::symlink_metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(StorageError::io("stat", &p, e)),
        })
        .await
    }

    async fn children(&self, prefix: &str) -> Result<Vec<String>> {
        let p = self.path(prefix);
        blocking(move || {
            let rd = match std::fs::read_dir(&p) {
                Ok(rd) => rd,
                Err(e) if not_found(&e) || e.kind() == std::io::ErrorKind::NotADirectory => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(StorageError::io("list", &p, e)),
            };
            let mut out = Vec::new();
            for e in rd {
                let e = e.map_err(|e| StorageError::io("list", &p, e))?;
                let n = e.file_name().to_string_lossy().into_owned();
                if !n.starts_with(".tmp-") {
                    out.push(n);
                }
            }
            Ok(out)
        })
        .await
    }
}

/// [`BlobStore`] on a directory.
#[derive(Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Blobs live in `root/blobs/`.
    pub fn new(root: impl Into<PathBuf>) -> FsBlobStore {
        FsBlobStore { root: root.into() }
    }

    /// Where a blob's file is.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(&d.hex()[..2])
            .join(d.hex())
    }
}

/// Hashes a file with `alg`.
pub(crate) fn hash_file(path: &Path, alg: Algorithm) -> Result<Digest> {
    let mut f = std::fs::File::open(path).map_err(|e| StorageError::io("open", path, e))?;
    let mut h = Hasher::new(alg);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| StorageError::io("read", path, e))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        let p = self.path(digest);
        blocking(move || match std::fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(StorageError::io("stat", &p, e)),
        })
        .await
    }

    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<Option<ByteStream>> {
        let p = self.path(digest);
        let opened = blocking(move || {
            let mut f = match std::fs::File::open(&p) {
                Ok(f) => f,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(StorageError::io("open", &p, e)),
            };
            let len = f
                .metadata()
                .map_err(|e| StorageError::io("stat", &p, e))?
                .len();
            let (start, count) = match range {
                Some(r) => (r.start, r.end.saturating_sub(r.start) + 1),
                None => (0, len),
            };
            f.seek(SeekFrom::Start(start))
                .map_err(|e| StorageError::io("seek", &p, e))?;
            Ok(Some((f, count)))
        })
        .await?;
        let Some((f, count)) = opened else {
            return Ok(None);
        };
        let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(f), count);
        Ok(Some(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader, CHUNK,
        ))))
    }

    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>> {
        let p = self.path(digest);
        blocking(move || match std::fs::read(&p) {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(StorageError::io("read", &p, e)),
        })
        .await
    }

    async fn put(&self, digest: &Digest, data: Bytes) -> Result<()> {
        let actual = digest.algorithm().digest(&data);
        if &actual != digest {
            return Err(StorageError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let p = self.path(digest);
        blocking(move || {
            if p.exists() {
                return Ok(());
            }
            write_atomic(&p, &data)
        })
        .await
    }

    async fn commit_file(
        &self,
        digest: &Digest,
        staged: &Path,
        hashed: Option<&Digest>,
    ) -> Result<()> {
        let p = self.path(digest);
        let staged = staged.to_path_buf();
        let digest = digest.clone();
        let hashed = hashed
            .filter(|h| h.algorithm() == digest.algorithm())
            .cloned();
        blocking(move || {
            let actual = match hashed {
                Some(h) => h,
                None => hash_file(&staged, digest.algorithm())?,
            };
            if actual != digest {
                let _ = std::fs::remove_file(&staged);
                return Err(StorageError::DigestMismatch {
                    expected: digest,
                    actual,
                });
            }
            let f =
                std::fs::File::open(&staged).map_err(|e| StorageError::io("open", &staged, e))?;
            f.sync_all()
                .map_err(|e| StorageError::io("fsync", &staged, e))?;
            let dir = p.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::io("create directory", dir, e))?;
            std::fs::rename(&staged, &p).map_err(|e| StorageError::io("rename", &p, e))?;
            sync_dir(dir)
        })
        .await
    }

    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>> {
        let p = self.path(digest);
        blocking(
            move || match std::fs::metadata(&p).and_then(|m| m.modified()) {
                Ok(t) => Ok(Some(t)),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(StorageError::io("stat", &p, e)),
            },
        )
        .await
    }

    async fn touch(&self, digest: &Digest) -> Result<()> {
        let p = self.path(digest);
        blocking(move || {
            let f = std::fs::File::open(&p).map_err(|e| StorageError::io("open", &p, e))?;
            f.set_modified(SystemTime::now())
                .map_err(|e| StorageError::io("touch", &p, e))
        })
        .await
    }

    async fn delete(&self, digest: &Digest) -> Result<bool> {
        let p = self.path(digest);
        blocking(move || match std::fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(StorageError::io("remove", &p, e)),
        })
        .await
    }

    async fn list(&self) -> Result<Vec<(Digest, SystemTime)>> {
        let root = self.root.join("blobs");
        blocking(move || {
            let mut out = Vec::new();
            for alg in [Algorithm::Sha256, Algorithm::Sha512] {
                let adir = root.join(alg.name());
                let Ok(prefixes) = std::fs::read_dir(&adir) else {
                    continue;
                };
                for pre in prefixes.flatten() {
                    let Ok(files) = std::fs::read_dir(pre.path()) else {
                        continue;
                    };
                    for f in files.flatten() {
                        let name = f.file_name().to_string_lossy().into_owned();
                        let Ok(d) = Digest::from_parts(alg, &name) else {
                            continue;
                        };
                        let mtime = f
                            .metadata()
                            .and_then(|m| m.modified())
                            .map_err(|e| StorageError::io("stat", &f.path(), e))?;
                        out.push((d, mtime));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{conformance, KvMetadata};

    #[tokio::test]
    async fn fs_blob_store_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        conformance::blob_store(&FsBlobStore::new(dir.path()), dir.path()).await;
        assert_eq!(
            remove_temp_files(dir.path()),
            0,
            "no temp files left behind"
        );
    }

    #[tokio::test]
    async fn fs_metadata_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        conformance::metadata_store(&KvMetadata::new(FsKv::new(dir.path()))).await;
    }

    #[test]
    fn start_up_removes_crash_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("blobs/sha256/ab");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(".tmp-123"), b"partial").expect("write");
        std::fs::write(sub.join("keep"), b"x").expect("write");
        assert_eq!(remove_temp_files(dir.path()), 1);
        assert!(sub.join("keep").exists());
    }
}
