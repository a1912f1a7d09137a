//! Container records in the shared redb database.
//!
//! Schema (version 1): table `berth.containers` maps the container id (64 hex) to its [`Record`] as JSON;
//! table `berth.meta` holds `containers.schema = 1`. Every state change is one write transaction, so a crash
//! leaves either the old or the new record, never half of one. Most are durable when they return; the few
//! that start-up reconciliation can redo from what is really there (see [`ContainerStore::put_with`]) are
//! not, which keeps two fsyncs out of every `run --rm`. An auto-remove container's create puts nothing: its
//! start puts the record, durably, while the shim sets the container up (`Handle::unsynced`), off the client's
//! path.

use crate::container::Record;
use crate::error::{EngineError, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::Arc;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("berth.containers");
const META: TableDefinition<&str, u64> = TableDefinition::new("berth.meta");
const SCHEMA: u64 = 1;

#[derive(Clone)]
pub struct ContainerStore {
    db: Arc<Database>,
}

impl ContainerStore {
    pub fn open(db: Arc<Database>) -> Result<Self> {
        let tx = db.begin_write().map_err(EngineError::db)?;
        {
            let mut meta = tx.open_table(META).map_err(EngineError::db)?;
            let v = meta
                .get("containers.schema")
                .map_err(EngineError::db)?
                .map(|g| g.value());
            match v {
                None => {
                    meta.insert("containers.schema", SCHEMA).map_err(EngineError::db)?;
                }
                Some(SCHEMA) => {}
                Some(other) => {
                    return Err(EngineError::Internal(format!(
                        "container metadata schema {other} is newer than this berth understands ({SCHEMA}): upgrade berth"
                    )))
                }
            }
            tx.open_table(CONTAINERS).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)?;
        Ok(ContainerStore { db })
    }

    pub fn put(&self, rec: &Record) -> Result<()> {
        self.put_with(rec, true)
    }

    /// A write transaction, on disk when it returns (`durable`) or only with the next durable commit: for
    /// changes that start-up reconciliation finds again from what is really there (a started container's
    /// shim, an auto-removed container's end), so that a crash loses nothing a client was told.
    fn begin(&self, durable: bool) -> Result<redb::WriteTransaction> {
        let mut tx = self.db.begin_write().map_err(EngineError::db)?;
        if !durable {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| EngineError::Internal(format!("container store: {e}")))?;
        }
        Ok(tx)
    }

    pub fn put_with(&self, rec: &Record, durable: bool) -> Result<()> {
        let json = serde_json::to_vec(rec)
            .map_err(|e| EngineError::Internal(format!("encode record: {e}")))?;
        let tx = self.begin(durable)?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(EngineError::db)?;
            t.insert(rec.id.as_str(), json.as_slice())
                .map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.delete_with(id, true)
    }

    pub fn delete_with(&self, id: &str, durable: bool) -> Result<()> {
        let tx = self.begin(durable)?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(EngineError::db)?;
            t.remove(id).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    /// Puts every earlier non-durable commit on disk (an empty durable commit), at shutdown.
    pub fn sync(&self) -> Result<()> {
        self.begin(true)?.commit().map_err(EngineError::db)
    }

    /// Every record, and the ids of those that cannot be decoded (skipped, with a warning).
    pub fn all(&self) -> Result<(Vec<Record>, Vec<String>)> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(CONTAINERS).map_err(EngineError::db)?;
        let (mut out, mut unreadable) = (Vec::new(), Vec::new());
        for item in t.iter().map_err(EngineError::db)? {
            let (k, v) = item.map_err(EngineError::db)?;
            match serde_json::from_slice::<Record>(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(id = k.value(), "skipping unreadable container record: {e}");
                    unreadable.push(k.value().to_string());
                }
            }
        }
        Ok((out, unreadable))
    }
}
