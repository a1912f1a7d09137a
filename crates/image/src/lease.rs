//! In-process leases: keep blobs and snapshots that an operation is still assembling safe from GC.
//!
//! An operation takes a lease on a digest or chain id *before* it checks whether the object exists
//! and before it renames a new object into place. GC holds the lease table's lock for its whole
//! mark-and-sweep pass, so an object is always either leased or referenced by a committed image
//! while GC looks at it. Dropping a [`Lease`] releases everything it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The table of leased keys (digests and chain ids) with their holder counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Leases {
    table: Arc<Mutex<HashMap<String, usize>>>,
}

impl Leases {
    /// Starts an empty lease.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            leases: self.clone(),
            keys: Vec::new(),
        }
    }

    /// Locks the table; GC holds this guard while it marks and sweeps.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // A poisoned lock only means another thread panicked while holding it; the counts stay valid.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A set of keys protected from GC until the lease is dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    leases: Leases,
    keys: Vec<String>,
}

impl Lease {
    /// Protects `key` (a blob digest or a chain id) until this lease is dropped.
    pub(crate) fn add(&mut self, key: &str) {
        *self.leases.lock().entry(key.to_string()).or_insert(0) += 1;
        self.keys.push(key.to_string());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut table = self.leases.lock();
        for k in self.keys.drain(..) {
            if let Some(n) = table.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    table.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_release() {
        let leases = Leases::default();
        let mut a = leases.lease();
        a.add("x");
        let mut b = leases.lease();
        b.add("x");
        b.add("y");
        assert_eq!(leases.lock().get("x"), Some(&2));
        drop(b);
        assert_eq!(leases.lock().get("x"), Some(&1));
        assert!(!leases.lock().contains_key("y"));
        drop(a);
        assert!(leases.lock().is_empty());
    }
}
