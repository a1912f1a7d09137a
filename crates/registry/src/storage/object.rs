//! The `object_store` backend: blobs and metadata as objects in any [`ObjectStore`] (in memory, local files,
//! and S3-compatible stores with the `s3` feature), with the same key layout as the filesystem backend. Several
//! registry replicas can share one bucket. Object stores cannot change a modification time, so "touching" a
//! blob writes an empty marker under `_touched/`; the garbage collector takes the later of the two times.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{BlobStore, ByteRange, ByteStream, Kv, Result, StorageError};
use crate::digest::{Algorithm, Digest, Hasher};

/// Part size for multipart uploads of committed blobs.
const PART: usize = 8 * 1024 * 1024;

fn obj_err(op: &'static str, key: &str, e: object_store::Error) -> StorageError {
    StorageError::Object {
        op,
        key: key.to_string(),
        message: e.to_string(),
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// [`Kv`] on an object store.
#[derive(Clone)]
pub struct ObjectKv {
    store: Arc<dyn ObjectStore>,
}

impl ObjectKv {
    /// Wraps a store.
    pub fn new(store: Arc<dyn ObjectStore>) -> ObjectKv {
        ObjectKv { store }
    }
}

#[async_trait]
impl Kv for ObjectKv {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&ObjPath::from(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| obj_err("read", key, e)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(obj_err("get", key, e)),
        }
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<()> {
        self.store
            .put(&ObjPath::from(key), PutPayload::from(value))
            .await
            .map(|_| ())
            .map_err(|e| obj_err("put", key, e))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let p = ObjPath::from(key);
        match self.store.head(&p).await {
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(obj_err("head", key, e)),
            Ok(_) => {}
        }
        match self.store.delete(&p).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(obj_err("delete", key, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&ObjPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(obj_err("head", key, e)),
        }
    }

    async fn children(&self, prefix: &str) -> Result<Vec<String>> {
        let p = ObjPath::from(prefix);
        let res = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| obj_err("list", prefix, e))?;
        let mut out = Vec::new();
        for cp in res.common_prefixes {
            if let Some(last) = cp.filename() {
                out.push(last.to_string());
            }
        }
        for o in res.objects {
            if let Some(last) = o.location.filename() {
                out.push(last.to_string());
            }
        }
        Ok(out)
    }
}

/// [`BlobStore`] on an object store.
#[derive(Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
}

impl ObjectBlobStore {
    /// Wraps a store.
    pub fn new(store: Arc<dyn ObjectStore>) -> ObjectBlobStore {
        ObjectBlobStore { store }
    }

    fn key(d: &Digest) -> String {
        format!(
            "blobs/{}/{}/{}",
            d.algorithm().name(),
            &d.hex()[..2],
            d.hex()
        )
    }

    fn touch_key(d: &Digest) -> String {
        format!("_touched/{}/{}", d.algorithm().name(), d.hex())
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        let key = Self::key(digest);
        match self.store.head(&ObjPath::from(key.as_str())).await {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(obj_err("head", &key, e)),
        }
    }

    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<Option<ByteStream>> {
        let key = Self::key(digest);
        let opts = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end + 1)),
            ..GetOptions::default()
        };
        // A zero-length object cannot be fetched with a range; there is nothing to stream anyway.
        if range.is_none() && self.stat(digest).await? == Some(0) {
            return Ok(Some(Box::pin(futures_util::stream::empty())));
        }
        match self
            .store
            .get_opts(&ObjPath::from(key.as_str()), opts)
            .await
        {
            Ok(r) => {
                let s = r.into_stream().map_err(std::io::Error::other);
                Ok(Some(Box::pin(s)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(obj_err("get", &key, e)),
        }
    }

    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>> {
        ObjectKv::new(self.store.clone())
            .get(&Self::key(digest))
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
        if self.stat(digest).await?.is_some() {
            return Ok(());
        }
        ObjectKv::new(self.store.clone())
            .put(&Self::key(digest), data)
            .await
    }

    async fn commit_file(
        &self,
        digest: &Digest,
        staged: &Path,
        hashed: Option<&Digest>,
    ) -> Result<()> {
        let key = Self::key(digest);
        if let Some(h) = hashed.filter(|h| h.algorithm() == digest.algorithm() && *h != digest) {
            let _ = tokio::fs::remove_file(staged).await;
            return Err(StorageError::DigestMismatch {
                expected: digest.clone(),
                actual: h.clone(),
            });
        }
        let mut f = tokio::fs::File::open(staged)
            .await
            .map_err(|e| StorageError::io("open", staged, e))?;
        let upload = self
            .store
            .put_multipart(&ObjPath::from(key.as_str()))
            .await
            .map_err(|e| obj_err("start upload", &key, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut h = Hasher::new(digest.algorithm());
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(StorageError::io("read", staged, e));
                }
            };
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if let Err(e) = w.wait_for_capacity(4).await {
                return Err(obj_err("upload", &key, e));
            }
            w.write(&buf[..n]);
        }
        let actual = h.finish();
        if &actual != digest {
            let _ = w.abort().await;
            let _ = tokio::fs::remove_file(staged).await;
            return Err(StorageError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        w.finish()
            .await
            .map_err(|e| obj_err("finish upload", &key, e))?;
        tokio::fs::remove_file(staged)
            .await
            .map_err(|e| StorageError::io("remove", staged, e))
    }

    async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>> {
        let head = |key: String| async move {
            match self.store.head(&ObjPath::from(key.as_str())).await {
                Ok(m) => Ok(Some(SystemTime::from(m.last_modified))),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(obj_err("head", &key, e)),
            }
        };
        let Some(written) = head(Self::key(digest)).await? else {
            return Ok(None);
        };
        let touched = head(Self::touch_key(digest)).await?;
        Ok(Some(touched.map_or(written, |t| t.max(written))))
    }

    async fn touch(&self, digest: &Digest) -> Result<()> {
        ObjectKv::new(self.store.clone())
            .put(&Self::touch_key(digest), Bytes::new())
            .await
    }

    async fn delete(&self, digest: &Digest) -> Result<bool> {
        let kv = ObjectKv::new(self.store.clone());
        kv.delete(&Self::touch_key(digest)).await?;
        kv.delete(&Self::key(digest)).await
    }

    async fn list(&self) -> Result<Vec<(Digest, SystemTime)>> {
        let mut touched = std::collections::HashMap::new();
        let mut s = self.store.list(Some(&ObjPath::from("_touched")));
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| obj_err("list", "_touched", e))?;
            touched.insert(m.location.to_string(), SystemTime::from(m.last_modified));
        }
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&ObjPath::from("blobs")));
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| obj_err("list", "blobs", e))?;
            let parts: Vec<&str> = m.location.as_ref().split('/').collect();
            let [_, alg, _, hex] = parts[..] else {
                continue;
            };
            let alg = match alg {
                "sha256" => Algorithm::Sha256,
                "sha512" => Algorithm::Sha512,
                _ => continue,
            };
            let Ok(d) = Digest::from_parts(alg, hex) else {
                continue;
            };
            let mut t = SystemTime::from(m.last_modified);
            if let Some(tt) = touched.get(&Self::touch_key(&d)) {
                t = t.max(*tt);
            }
            out.push((d, t));
        }
        Ok(out)
    }
}

#[cfg(all(test, feature = "s3"))]
#[path = "../../tests/common/moto.rs"]
mod moto;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{conformance, KvMetadata};
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn object_blob_store_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectBlobStore::new(Arc::new(InMemory::new()));
        conformance::blob_store(&store, dir.path()).await;
    }

    #[tokio::test]
    async fn object_metadata_conformance() {
        conformance::metadata_store(&KvMetadata::new(ObjectKv::new(Arc::new(InMemory::new()))))
            .await;
    }

    /// The same suites on a real S3 protocol: `object_store`'s AWS client against moto's S3 server.
    #[cfg(feature = "s3")]
    fn s3_store(m: &super::moto::Moto, bucket: &str) -> Arc<dyn ObjectStore> {
        m.create_bucket(bucket);
        let s = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&m.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region(super::moto::REGION)
            .with_access_key_id(super::moto::ACCESS_KEY)
            .with_secret_access_key(super::moto::SECRET_KEY)
            .build()
            .expect("S3 client");
        Arc::new(s)
    }

    #[cfg(feature = "s3")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_blob_and_metadata_conformance() {
        let m = tokio::task::spawn_blocking(super::moto::Moto::start)
            .await
            .expect("start moto");
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = ObjectBlobStore::new(s3_store(&m, "blobs"));
        conformance::blob_store(&blobs, dir.path()).await;
        conformance::metadata_store(&KvMetadata::new(ObjectKv::new(s3_store(&m, "meta")))).await;

        // A staged blob larger than one multipart part goes up in parts and comes back whole.
        let big: Vec<u8> = (0..(PART + PART / 2)).map(|i| (i % 251) as u8).collect();
        let d = Algorithm::Sha256.digest(&big);
        let staged = dir.path().join("big");
        std::fs::write(&staged, &big).expect("stage");
        blobs
            .commit_file(&d, &staged, None)
            .await
            .expect("multipart commit");
        assert_eq!(blobs.stat(&d).await.expect("stat"), Some(big.len() as u64));
        let back = blobs.get(&d).await.expect("get").expect("present");
        assert!(
            back[..] == big[..],
            "the multipart blob reads back byte for byte"
        );
        let mut parts = Vec::new();
        let mut s = blobs
            .open(
                &d,
                Some(ByteRange {
                    start: PART as u64 - 2,
                    end: PART as u64 + 1,
                }),
            )
            .await
            .expect("open range")
            .expect("present");
        while let Some(c) = s.next().await {
            parts.extend_from_slice(&c.expect("range chunk"));
        }
        assert_eq!(
            parts,
            big[PART - 2..PART + 2],
            "a range across the part boundary"
        );

        // A staged file whose content does not match: rejected, the multipart upload aborted, nothing stored.
        let wrong = Algorithm::Sha256.digest(b"not this");
        std::fs::write(&staged, &big).expect("stage");
        let err = blobs
            .commit_file(&wrong, &staged, None)
            .await
            .expect_err("mismatch");
        assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
        assert_eq!(blobs.stat(&wrong).await.expect("stat"), None);
    }
}
