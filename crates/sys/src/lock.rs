//! Exclusive lock files (`flock`), used so that two daemons never share a data root.

use crate::{Result, SysError};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Holds an exclusive `flock` on a file for as long as it lives. The file records the holder's pid.
#[derive(Debug)]
pub struct LockFile {
    _lock: Flock<File>,
}

impl LockFile {
    /// Take the lock without waiting; fail with [`SysError::Locked`] naming the holder's pid when it is held.
    pub fn try_acquire(path: &Path, what: &str) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| SysError::io("open lock file", path.display(), e))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, nix::Error::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                return Err(SysError::Locked {
                    what: what.to_string(),
                    holder: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder
                    },
                });
            }
            Err((_, e)) => return Err(SysError::os("flock", path.display(), e)),
        };
        lock.set_len(0)
            .map_err(|e| SysError::io("truncate lock file", path.display(), e))?;
        lock.seek(SeekFrom::Start(0))
            .map_err(|e| SysError::io("seek lock file", path.display(), e))?;
        write!(lock, "{}", std::process::id())
            .map_err(|e| SysError::io("write lock file", path.display(), e))?;
        Ok(LockFile { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let first = LockFile::try_acquire(&p, "data root").unwrap();
        let err = LockFile::try_acquire(&p, "data root").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("data root is already locked"), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        drop(first);
        LockFile::try_acquire(&p, "data root").unwrap();
    }
}
