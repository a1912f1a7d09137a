//! Image metadata in the daemon's shared redb database.
//!
//! Schema (version 1; every table name starts with `berth.image.`):
//!
//! | table | key | value |
//! |---|---|---|
//! | `berth.image.meta` | `"schema_version"` | `u64`, checked at open (1) |
//! | `berth.image.images` | image id `sha256:<hex>` (digest of the config blob) | JSON [`ImageRecord`] |
//! | `berth.image.tags` | full reference (`docker.io/library/busybox:latest`, or `...@sha256:<hex>` for repo digests) | image id |
//! | `berth.image.snapshots` | chain id `sha256:<hex>` | JSON [`SnapshotRecord`] |
//!
//! Images, their snapshot records and tag moves are written in one write transaction. Snapshot and
//! blob reference counts are not stored: GC computes the live set from the images table.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorKind;

const META: TableDefinition<&str, u64> = TableDefinition::new("berth.image.meta");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("berth.image.images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("berth.image.tags");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("berth.image.snapshots");
const SCHEMA_KEY: &str = "schema_version";
/// The schema version this code reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// Errors of the metadata database.
#[derive(Debug, Error)]
pub enum MetaError {
    /// A redb operation failed.
    #[error("image metadata: {op}")]
    Db {
        op: &'static str,
        #[source]
        source: redb::Error,
    },
    /// A stored record does not parse.
    #[error("image metadata: corrupt record {key} in {table}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The database was written by another schema version.
    #[error("image metadata: schema version {found} is not supported (expected {expected})")]
    SchemaVersion { found: u64, expected: u64 },
}

impl MetaError {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

fn db<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> MetaError {
    move |e| MetaError::Db {
        op,
        source: e.into(),
    }
}

/// A manifest an image was loaded or pulled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    pub digest: String,
    pub media_type: String,
}

/// One layer of an image as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as received (compressed or not).
    pub digest: String,
    /// Media type of that blob.
    pub media_type: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Size of the blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
}

/// An image as stored in `berth.image.images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the config blob (equal to the image id).
    pub config_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestRef>,
    pub layers: Vec<LayerRecord>,
    /// When this store recorded the image.
    pub created: DateTime<Utc>,
    /// Local parent image id (builder), empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
}

/// An unpacked layer as stored in `berth.image.snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub diff_id: String,
    /// Bytes of the layer's unpacked files.
    pub size: u64,
}

/// The image tables of a shared database.
#[derive(Debug, Clone)]
pub struct MetaStore {
    db: Arc<Database>,
}

fn decode<T: DeserializeOwned>(table: &'static str, key: &str, v: &[u8]) -> Result<T, MetaError> {
    serde_json::from_slice(v).map_err(|source| MetaError::Corrupt {
        table,
        key: key.to_string(),
        source,
    })
}

fn encode<T: Serialize>(table: &'static str, key: &str, v: &T) -> Result<Vec<u8>, MetaError> {
    serde_json::to_vec(v).map_err(|source| MetaError::Corrupt {
        table,
        key: key.to_string(),
        source,
    })
}

fn get_json<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
) -> Result<Option<T>, MetaError> {
    match t.get(key).map_err(db("reading"))? {
        Some(v) => Ok(Some(decode(name, key, v.value())?)),
        None => Ok(None),
    }
}

fn all_json<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<(String, T)>, MetaError> {
    let mut out = Vec::new();
    for item in t.iter().map_err(db("iterating"))? {
        let (k, v) = item.map_err(db("iterating"))?;
        let key = k.value().to_string();
        let rec = decode(name, &key, v.value())?;
        out.push((key, rec));
    }
    Ok(out)
}

fn all_tags(
    t: &impl ReadableTable<&'static str, &'static str>,
) -> Result<Vec<(String, String)>, MetaError> {
    let mut out = Vec::new();
    for item in t.iter().map_err(db("iterating"))? {
        let (k, v) = item.map_err(db("iterating"))?;
        out.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(out)
}

/// Read access shared by read and write transactions.
pub trait MetaRead {
    /// The record of image `id`.
    fn image(&self, id: &str) -> Result<Option<ImageRecord>, MetaError>;
    /// Every image record.
    fn images(&self) -> Result<Vec<(String, ImageRecord)>, MetaError>;
    /// Every (full reference, image id) pair.
    fn tags(&self) -> Result<Vec<(String, String)>, MetaError>;
    /// The image a full reference points to.
    fn tag(&self, reference: &str) -> Result<Option<String>, MetaError>;
    /// The record of snapshot `chain_id`.
    fn snapshot(&self, chain_id: &str) -> Result<Option<SnapshotRecord>, MetaError>;
    /// Every snapshot record.
    fn snapshots(&self) -> Result<Vec<(String, SnapshotRecord)>, MetaError>;

    /// The full references that point to `id`, sorted.
    fn tags_of(&self, id: &str) -> Result<Vec<String>, MetaError> {
        let mut v: Vec<String> = self
            .tags()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect();
        v.sort();
        Ok(v)
    }
}

/// A consistent read-only view.
pub struct MetaReader {
    txn: ReadTransaction,
}

impl MetaRead for MetaReader {
    fn image(&self, id: &str) -> Result<Option<ImageRecord>, MetaError> {
        let t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        get_json(&t, "images", id)
    }
    fn images(&self) -> Result<Vec<(String, ImageRecord)>, MetaError> {
        let t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        all_json(&t, "images")
    }
    fn tags(&self) -> Result<Vec<(String, String)>, MetaError> {
        let t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        all_tags(&t)
    }
    fn tag(&self, reference: &str) -> Result<Option<String>, MetaError> {
        let t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        let v = t.get(reference).map_err(db("reading tag"))?;
        Ok(v.map(|g| g.value().to_string()))
    }
    fn snapshot(&self, chain_id: &str) -> Result<Option<SnapshotRecord>, MetaError> {
        let t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        get_json(&t, "snapshots", chain_id)
    }
    fn snapshots(&self) -> Result<Vec<(String, SnapshotRecord)>, MetaError> {
        let t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        all_json(&t, "snapshots")
    }
}

/// A write transaction over the image tables; commits when the closure given to
/// [`MetaStore::update`] returns `Ok`.
pub struct MetaTxn<'a> {
    txn: &'a WriteTransaction,
}

impl MetaRead for MetaTxn<'_> {
    fn image(&self, id: &str) -> Result<Option<ImageRecord>, MetaError> {
        let t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        get_json(&t, "images", id)
    }
    fn images(&self) -> Result<Vec<(String, ImageRecord)>, MetaError> {
        let t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        all_json(&t, "images")
    }
    fn tags(&self) -> Result<Vec<(String, String)>, MetaError> {
        let t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        all_tags(&t)
    }
    fn tag(&self, reference: &str) -> Result<Option<String>, MetaError> {
        let t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        let v = t.get(reference).map_err(db("reading tag"))?;
        Ok(v.map(|g| g.value().to_string()))
    }
    fn snapshot(&self, chain_id: &str) -> Result<Option<SnapshotRecord>, MetaError> {
        let t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        get_json(&t, "snapshots", chain_id)
    }
    fn snapshots(&self) -> Result<Vec<(String, SnapshotRecord)>, MetaError> {
        let t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        all_json(&t, "snapshots")
    }
}

impl MetaTxn<'_> {
    /// Inserts or replaces an image record.
    pub fn put_image(&self, id: &str, rec: &ImageRecord) -> Result<(), MetaError> {
        let bytes = encode("images", id, rec)?;
        let mut t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        t.insert(id, bytes.as_slice())
            .map_err(db("writing image"))?;
        Ok(())
    }

    /// Removes an image record; true when it existed.
    pub fn remove_image(&self, id: &str) -> Result<bool, MetaError> {
        let mut t = self.txn.open_table(IMAGES).map_err(db("opening images"))?;
        let old = t.remove(id).map_err(db("removing image"))?;
        Ok(old.is_some())
    }

    /// Points a full reference at an image; returns the image it pointed to before.
    pub fn set_tag(&self, reference: &str, id: &str) -> Result<Option<String>, MetaError> {
        let mut t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        let old = t.insert(reference, id).map_err(db("writing tag"))?;
        Ok(old.map(|g| g.value().to_string()))
    }

    /// Removes a reference; returns the image it pointed to.
    pub fn remove_tag(&self, reference: &str) -> Result<Option<String>, MetaError> {
        let mut t = self.txn.open_table(TAGS).map_err(db("opening tags"))?;
        let old = t.remove(reference).map_err(db("removing tag"))?;
        Ok(old.map(|g| g.value().to_string()))
    }

    /// Records a snapshot unless a record exists.
    pub fn put_snapshot(&self, chain_id: &str, rec: &SnapshotRecord) -> Result<(), MetaError> {
        let bytes = encode("snapshots", chain_id, rec)?;
        let mut t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        let exists = t.get(chain_id).map_err(db("reading snapshot"))?.is_some();
        if !exists {
            t.insert(chain_id, bytes.as_slice())
                .map_err(db("writing snapshot"))?;
        }
        Ok(())
    }

    /// Removes a snapshot record.
    pub fn remove_snapshot(&self, chain_id: &str) -> Result<(), MetaError> {
        let mut t = self
            .txn
            .open_table(SNAPSHOTS)
            .map_err(db("opening snapshots"))?;
        t.remove(chain_id).map_err(db("removing snapshot"))?;
        Ok(())
    }
}

impl MetaStore {
    /// Creates the tables if needed and checks the schema version.
    pub fn open(database: Arc<Database>) -> Result<MetaStore, MetaError> {
        let txn = database.begin_write().map_err(db("beginning write"))?;
        {
            let mut meta = txn.open_table(META).map_err(db("opening meta"))?;
            let found = meta
                .get(SCHEMA_KEY)
                .map_err(db("reading schema version"))?
                .map(|g| g.value());
            match found {
                Some(v) if v != SCHEMA_VERSION => {
                    return Err(MetaError::SchemaVersion {
                        found: v,
                        expected: SCHEMA_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                        .map_err(db("writing schema version"))?;
                }
            }
            txn.open_table(IMAGES).map_err(db("creating images"))?;
            txn.open_table(TAGS).map_err(db("creating tags"))?;
            txn.open_table(SNAPSHOTS)
                .map_err(db("creating snapshots"))?;
        }
        txn.commit().map_err(db("committing"))?;
        Ok(MetaStore { db: database })
    }

    /// A consistent snapshot of the tables for reading.
    pub fn read(&self) -> Result<MetaReader, MetaError> {
        let txn = self.db.begin_read().map_err(db("beginning read"))?;
        Ok(MetaReader { txn })
    }

    /// Runs `f` in one write transaction, committing when it returns `Ok` and aborting otherwise.
    pub fn update<T, E: From<MetaError>>(
        &self,
        f: impl FnOnce(&MetaTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.db.begin_write().map_err(db("beginning write"))?;
        let out = f(&MetaTxn { txn: &txn });
        match out {
            Ok(v) => {
                txn.commit().map_err(db("committing"))?;
                Ok(v)
            }
            Err(e) => {
                if let Err(abort) = txn.abort() {
                    tracing::warn!(error = %abort, "aborting image metadata transaction");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MetaStore, Arc<Database>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Database::create(dir.path().join("m.redb")).expect("db"));
        let m = MetaStore::open(db.clone()).expect("open");
        (dir, m, db)
    }

    #[test]
    fn tags_move_in_one_transaction() {
        let (_d, m, _db) = store();
        m.update(|t| -> Result<(), MetaError> {
            assert_eq!(t.set_tag("docker.io/library/a:latest", "sha256:1")?, None);
            assert_eq!(
                t.set_tag("docker.io/library/a:latest", "sha256:2")?,
                Some("sha256:1".to_string())
            );
            Ok(())
        })
        .expect("update");
        let r = m.read().expect("read");
        assert_eq!(
            r.tag("docker.io/library/a:latest").expect("tag"),
            Some("sha256:2".into())
        );
        // A failing closure leaves nothing.
        let res: Result<(), MetaError> = m.update(|t| {
            t.set_tag("docker.io/library/b:latest", "sha256:3")?;
            Err(MetaError::SchemaVersion {
                found: 0,
                expected: 1,
            })
        });
        assert!(res.is_err());
        assert_eq!(
            m.read()
                .expect("read")
                .tag("docker.io/library/b:latest")
                .expect("tag"),
            None
        );
    }

    #[test]
    fn schema_version_is_checked() {
        let (_d, _m, db) = store();
        let txn = db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .insert(SCHEMA_KEY, 7u64)
            .expect("insert");
        txn.commit().expect("commit");
        assert!(matches!(
            MetaStore::open(db),
            Err(MetaError::SchemaVersion { found: 7, .. })
        ));
    }
}
