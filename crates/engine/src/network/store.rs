//! Network records in the shared redb database: table `berth.networks`, id -> JSON [`Network`].

use super::Network;
use crate::error::{EngineError, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::Arc;

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("berth.networks");

#[derive(Clone)]
pub struct NetworkStore {
    db: Arc<Database>,
}

impl NetworkStore {
    pub fn open(db: Arc<Database>) -> Result<Self> {
        let tx = db.begin_write().map_err(EngineError::db)?;
        tx.open_table(NETWORKS).map_err(EngineError::db)?;
        tx.commit().map_err(EngineError::db)?;
        Ok(NetworkStore { db })
    }

    pub fn put(&self, n: &Network) -> Result<()> {
        let json = serde_json::to_vec(n)
            .map_err(|e| EngineError::Internal(format!("encode network: {e}")))?;
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        {
            let mut t = tx.open_table(NETWORKS).map_err(EngineError::db)?;
            t.insert(n.id.as_str(), json.as_slice())
                .map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        {
            let mut t = tx.open_table(NETWORKS).map_err(EngineError::db)?;
            t.remove(id).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    pub fn all(&self) -> Result<Vec<Network>> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(NETWORKS).map_err(EngineError::db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(EngineError::db)? {
            let (_, v) = item.map_err(EngineError::db)?;
            if let Ok(n) = serde_json::from_slice::<Network>(v.value()) {
                out.push(n);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("m.redb")).unwrap());
        let s = NetworkStore::open(db).unwrap();
        let n = Network {
            id: "abc".into(),
            name: "app".into(),
            driver: "bridge".into(),
            ..Default::default()
        };
        s.put(&n).unwrap();
        assert_eq!(s.all().unwrap(), vec![n]);
        s.delete("abc").unwrap();
        assert!(s.all().unwrap().is_empty());
    }
}
