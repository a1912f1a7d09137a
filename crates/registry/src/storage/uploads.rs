//! Upload sessions: blob uploads in progress, staged as files under `<root>/uploads/<id>/` on the local disk
//! (the filesystem backend renames them into `blobs/`, so both live on one filesystem). A session's state is
//! its files (`repo` names the repository, `data` is what was received so far, its length the offset), so
//! sessions survive a restart: a client may resume after a crash. Abandoned sessions are removed by the
//! garbage collector after a day.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::digest::{Algorithm, Digest, Hasher};

/// An upload-session failure.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such session (or it belongs to another repository).
    #[error("upload {0} is unknown")]
    Unknown(String),
    /// A chunk did not start where the upload ends.
    #[error("chunk starts at {start}, upload is at {offset}")]
    OutOfOrder {
        /// Where the chunk starts.
        start: u64,
        /// Bytes received so far.
        offset: u64,
    },
    /// The upload grew past the configured limit.
    #[error("upload exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's body failed (for instance it disconnected); what arrived before is kept.
    #[error("reading the request body")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A local file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> UploadError + 'a {
    move |source| UploadError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One session; hold its lock while writing.
pub struct Session {
    /// The session id (32 hex digits).
    pub id: String,
    /// The repository it uploads to.
    pub repo: String,
    /// Bytes received so far.
    pub offset: u64,
    dir: PathBuf,
    /// sha256 of the data so far, while every byte went through this process (not after a reload).
    hasher: Option<Hasher>,
}

impl Session {
    /// The staged data file.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The sha256 of everything received, if computed while receiving it. Ends the incremental hash.
    pub fn take_sha256(&mut self) -> Option<Digest> {
        self.hasher.take().map(Hasher::finish)
    }
}

/// A shared handle to a session.
pub type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

/// All sessions of one registry process.
pub struct Uploads {
    dir: PathBuf,
    max_size: u64,
    live: Mutex<HashMap<String, SessionHandle>>,
}

fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Uploads {
    /// Sessions live in `dir`; no upload may exceed `max_size` bytes.
    pub fn new(dir: impl Into<PathBuf>, max_size: u64) -> Uploads {
        Uploads {
            dir: dir.into(),
            max_size,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Where sessions are staged.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionHandle>> {
        // A poisoned map only means a panic elsewhere; its entries are still consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `repo`.
    pub async fn create(&self, repo: &str) -> Result<SessionHandle, UploadError> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let dir = self.dir.join(&id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io("create", &dir))?;
        let repo_file = dir.join("repo");
        tokio::fs::write(&repo_file, repo.as_bytes())
            .await
            .map_err(io("write", &repo_file))?;
        let data = dir.join("data");
        tokio::fs::File::create(&data)
            .await
            .map_err(io("create", &data))?;
        let s = Arc::new(tokio::sync::Mutex::new(Session {
            id: id.clone(),
            repo: repo.to_string(),
            offset: 0,
            dir,
            hasher: Some(Hasher::new(Algorithm::Sha256)),
        }));
        self.live().insert(id, s.clone());
        Ok(s)
    }

    /// Finds a session of `repo`, reloading it from disk after a restart.
    pub async fn get(&self, repo: &str, id: &str) -> Result<SessionHandle, UploadError> {
        if !valid_id(id) {
            return Err(UploadError::Unknown(id.to_string()));
        }
        let found = self.live().get(id).cloned();
        if let Some(s) = found {
            if s.lock().await.repo == repo {
                return Ok(s);
            }
            return Err(UploadError::Unknown(id.to_string()));
        }
        let dir = self.dir.join(id);
        let owner = tokio::fs::read_to_string(dir.join("repo"))
            .await
            .map_err(|_| UploadError::Unknown(id.to_string()))?;
        if owner != repo {
            return Err(UploadError::Unknown(id.to_string()));
        }
        let offset = tokio::fs::metadata(dir.join("data"))
            .await
            .map_err(|_| UploadError::Unknown(id.to_string()))?
            .len();
        let s = Arc::new(tokio::sync::Mutex::new(Session {
            id: id.to_string(),
            repo: repo.to_string(),
            offset,
            dir,
            hasher: None,
        }));
        Ok(self.live().entry(id.to_string()).or_insert(s).clone())
    }

    /// Appends a body to a session. `start`, if given, must equal the current offset. What arrives is written
    /// even if the body then fails, and the offset reflects it.
    pub async fn append<S, E>(
        &self,
        s: &mut Session,
        start: Option<u64>,
        body: S,
    ) -> Result<u64, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(start) = start {
            if start != s.offset {
                return Err(UploadError::OutOfOrder {
                    start,
                    offset: s.offset,
                });
            }
        }
        let path = s.data_path();
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(io("open", &path))?;
        let mut body = std::pin::pin!(body);
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(UploadError::Body(Box::new(e)));
                    break;
                }
            };
            if s.offset + chunk.len() as u64 > self.max_size {
                failure = Some(UploadError::TooLarge {
                    limit: self.max_size,
                });
                break;
            }
            if let Err(e) = f.write_all(&chunk).await {
                // The file may hold part of the chunk: resynchronise the offset with it, and let the
                // commit hash the file.
                s.hasher = None;
                let _ = f.flush().await;
                s.offset = tokio::fs::metadata(&path)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(s.offset);
                return Err(io("write", &path)(e));
            }
            if let Some(h) = s.hasher.as_mut() {
                h.update(&chunk);
            }
            s.offset += chunk.len() as u64;
        }
        f.flush().await.map_err(io("write", &path))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(s.offset),
        }
    }

    /// Forgets a session and removes its files.
    pub async fn remove(&self, s: &Session) {
        self.live().remove(&s.id);
        if let Err(e) = tokio::fs::remove_dir_all(&s.dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(upload = %s.id, error = %e, "cannot remove upload session");
            }
        }
    }

    /// Sessions open in this process.
    pub fn in_flight(&self) -> usize {
        self.live().len()
    }

    /// Removes sessions untouched for `max_age` (by their data file's modification time). Returns their ids.
    pub async fn sweep(&self, max_age: Duration, dry_run: bool) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(mut rd) = tokio::fs::read_dir(&self.dir).await else {
            return out;
        };
        let now = SystemTime::now();
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if !valid_id(&name) {
                continue;
            }
            let mtime = tokio::fs::metadata(e.path().join("data"))
                .await
                .and_then(|m| m.modified())
                .or_else(|_| std::fs::metadata(e.path()).and_then(|m| m.modified()));
            let Ok(mtime) = mtime else { continue };
            if now.duration_since(mtime).unwrap_or_default() < max_age {
                continue;
            }
            if !dry_run {
                self.live().remove(&name);
                let _ = tokio::fs::remove_dir_all(e.path()).await;
            }
            out.push(name);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn chunks_in_order_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = Uploads::new(dir.path(), 1 << 20);
        let h = up.create("a/b").await.expect("create");
        let id = {
            let mut s = h.lock().await;
            assert_eq!(
                up.append(&mut s, Some(0), body(&[b"abc", b"de"]))
                    .await
                    .expect("append"),
                5
            );
            let err = up
                .append(&mut s, Some(2), body(&[b"x"]))
                .await
                .expect_err("out of order");
            assert!(matches!(
                err,
                UploadError::OutOfOrder {
                    start: 2,
                    offset: 5
                }
            ));
            s.id.clone()
        };
        // A new process finds the session on disk.
        let up2 = Uploads::new(dir.path(), 1 << 20);
        assert!(matches!(
            up2.get("other", &id).await,
            Err(UploadError::Unknown(_))
        ));
        assert!(matches!(
            up2.get("a/b", "../../etc").await,
            Err(UploadError::Unknown(_))
        ));
        let h2 = up2.get("a/b", &id).await.expect("reload");
        let mut s = h2.lock().await;
        assert_eq!(s.offset, 5);
        assert!(
            s.take_sha256().is_none(),
            "after a reload the commit must hash the file"
        );
        up2.append(&mut s, None, body(&[b"f"]))
            .await
            .expect("append");
        assert_eq!(std::fs::read(s.data_path()).expect("read"), b"abcdef");
        up2.remove(&s).await;
        assert!(matches!(
            up2.get("a/b", &id).await,
            Err(UploadError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn a_failing_body_keeps_what_arrived() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = Uploads::new(dir.path(), 8);
        let h = up.create("r").await.expect("create");
        let mut s = h.lock().await;
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("client went away")),
        ]);
        assert!(matches!(
            up.append(&mut s, None, failing).await,
            Err(UploadError::Body(_))
        ));
        assert_eq!(s.offset, 3);
        let err = up
            .append(&mut s, None, body(&[b"0123456789"]))
            .await
            .expect_err("limit");
        assert!(matches!(err, UploadError::TooLarge { limit: 8 }));
        assert_eq!(s.offset, 3);
        assert_eq!(
            s.take_sha256(),
            Some(Algorithm::Sha256.digest(b"abc")),
            "hash of what was written"
        );
        assert_eq!(up.sweep(Duration::from_secs(3600), false).await.len(), 0);
        assert_eq!(
            up.sweep(Duration::ZERO, true).await.len(),
            1,
            "dry run reports"
        );
        assert_eq!(up.sweep(Duration::ZERO, false).await.len(), 1);
        assert_eq!(up.in_flight(), 0);
    }
}
