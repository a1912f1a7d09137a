//! The build cache: a step's key (its parent's key, the instruction as it ran, and the content of what it
//! copied) to the image it produced. Kept in redb (`berth.buildcache`), so it survives daemon restarts; the
//! images themselves live in the image store as untagged images whose parents are the previous steps'.

use crate::error::{EngineError, Result};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const CACHE: TableDefinition<&str, &str> = TableDefinition::new("berth.buildcache");

/// The chain of cache keys of one stage: each key covers everything before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub String);

impl Key {
    /// The first key of a stage: its base image.
    pub fn base(image: &str) -> Key {
        Key(hash(&["base", image]))
    }

    /// The key of a step after `self`, made of `parts` (instruction, content digests...).
    pub fn then(&self, parts: &[&str]) -> Key {
        let mut all = vec![self.0.as_str()];
        all.extend_from_slice(parts);
        Key(hash(&all))
    }
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Clone)]
pub struct CacheStore {
    db: Arc<Database>,
}

impl CacheStore {
    pub fn open(db: Arc<Database>) -> Result<CacheStore> {
        let tx = db.begin_write().map_err(EngineError::db)?;
        tx.open_table(CACHE).map_err(EngineError::db)?;
        tx.commit().map_err(EngineError::db)?;
        Ok(CacheStore { db })
    }

    pub fn get(&self, key: &Key) -> Result<Option<String>> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(CACHE).map_err(EngineError::db)?;
        let v = t.get(key.0.as_str()).map_err(EngineError::db)?;
        Ok(v.map(|v| v.value().to_string()))
    }

    pub fn put(&self, key: &Key, image: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        {
            let mut t = tx.open_table(CACHE).map_err(EngineError::db)?;
            t.insert(key.0.as_str(), image).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    /// Every image the cache refers to.
    pub fn images(&self) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(CACHE).map_err(EngineError::db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(EngineError::db)? {
            let (_, v) = item.map_err(EngineError::db)?;
            out.push(v.value().to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Forgets every entry; returns how many there were.
    pub fn clear(&self) -> Result<usize> {
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        let n;
        {
            let mut t = tx.open_table(CACHE).map_err(EngineError::db)?;
            n = t.len().map_err(EngineError::db)? as usize;
            t.retain(|_, _| false).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_separate_parts() {
        let a = Key::base("sha256:1");
        assert_ne!(a, Key::base("sha256:2"));
        assert_eq!(a.then(&["RUN x"]), a.then(&["RUN x"]));
        assert_ne!(a.then(&["RUN x"]), a.then(&["RUN y"]));
        // Part boundaries count: ("ab", "c") is not ("a", "bc").
        assert_ne!(a.then(&["ab", "c"]), a.then(&["a", "bc"]));
    }

    #[test]
    fn entries_survive_reopen_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let k = Key::base("x").then(&["y"]);
        {
            let s = CacheStore::open(Arc::new(Database::create(&path).unwrap())).unwrap();
            s.put(&k, "sha256:abc").unwrap();
        }
        let s = CacheStore::open(Arc::new(Database::create(&path).unwrap())).unwrap();
        assert_eq!(s.get(&k).unwrap().as_deref(), Some("sha256:abc"));
        assert_eq!(s.images().unwrap(), vec!["sha256:abc"]);
        assert_eq!(s.clear().unwrap(), 1);
        assert_eq!(s.get(&k).unwrap(), None);
    }
}
