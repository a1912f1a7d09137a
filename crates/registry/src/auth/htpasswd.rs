//! htpasswd files with bcrypt hashes (`user:$2y$...`), as Apache's `htpasswd -B` and distribution use.
//! Verified credentials are remembered (by a hash of user, password and stored hash, never in clear) for a few
//! minutes, so Basic auth does not cost a bcrypt round per request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Why an htpasswd file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// It cannot be read.
    #[error("read htpasswd file {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `user:bcrypt-hash`.
    #[error("htpasswd file {path} line {line}: expected user:bcrypt-hash")]
    Syntax {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;

/// A loaded htpasswd file.
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Htpasswd {
    /// Loads a file.
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Htpasswd::parse(&text).map_err(|line| HtpasswdError::Syntax {
            path: path.to_path_buf(),
            line,
        })
    }

    /// Parses file content; the error is the offending line number.
    pub fn parse(text: &str) -> Result<Htpasswd, usize> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((u, h)) = line.split_once(':') else {
                return Err(i + 1);
            };
            if u.is_empty()
                || !(h.starts_with("$2y$") || h.starts_with("$2b$") || h.starts_with("$2a$"))
            {
                return Err(i + 1);
            }
            users.insert(u.to_string(), h.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `password` is `user`'s. Runs bcrypt (slow on purpose) unless recently verified.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            // Spend the same time as for a real user, so timing does not reveal who exists.
            let _ = bcrypt::verify(
                password,
                "$2y$10$aaaaaaaaaaaaaaaaaaaaaOaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            );
            return false;
        };
        let mut h = Sha256::new();
        for part in [user, password, hash] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let key: [u8; 32] = h.finalize().into();
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if cache.get(&key).is_some_and(|t| t.elapsed() < CACHE_TTL) {
                return true;
            }
        }
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return false;
        }
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, t| t.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, Instant::now());
        true
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_bcrypt_only() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let hp = Htpasswd::parse(&format!("# users\nalice:{hash}\n")).expect("parse");
        assert_eq!(hp.len(), 1);
        assert!(hp.verify("alice", "s3cret"));
        assert!(hp.verify("alice", "s3cret"), "cached");
        assert!(!hp.verify("alice", "wrong"));
        assert!(!hp.verify("bob", "s3cret"));
        assert_eq!(Htpasswd::parse("bob:{SHA}abc").err(), Some(1));
        assert_eq!(Htpasswd::parse("\nnocolon").err(), Some(2));
    }
}
