//! Containers: the record we persist, the in-memory handle, and one module per verb.

pub mod archive;
mod attach;
pub mod changes;
pub mod commit;
mod create;
pub mod devices;
pub(crate) mod dir_pool;
pub mod health;
pub(crate) mod init_layer;
pub mod list;
mod logs;
pub mod mounts;
mod recover;
mod remove;
pub mod restart;
mod start;
pub(crate) use start::ImageViews;
mod stop;
pub mod update;

pub use attach::{AttachStream, Output};
pub use create::CreateRequest;
pub use list::{ListOptions, Summary};
pub use logs::{LogLine, LogsOptions};
pub use mounts::{parse_bind, MountPoint, MountType};
pub use remove::dir_size as remove_dir_size;
pub(crate) use start::bounding_caps;
pub use start::console_size;
pub use start::parse_size;
pub use stop::{parse_signal, WaitCondition};

use crate::error::{EngineError, Result};
use crate::Engine;
use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Docker's zero time, shown for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A container's lifecycle state, with Docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
            health: None,
        }
    }
}

/// What is persisted for a container (one JSON value in the `berth.containers` table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// With Docker's leading slash: `/web`.
    pub name: String,
    pub created: String,
    /// `sha256:...` of the image config.
    pub image_id: String,
    /// The image as the user named it.
    pub image: String,
    /// The effective command: `path` then `args`.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    pub restart_count: i64,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// How many times it has exited (`next-exit` waiters count these).
    #[serde(default)]
    pub exits: u64,
    /// Stopped or killed by a user: restart policies leave it alone (Docker's HasBeenManuallyStopped).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Binds, volumes and `--mount`s, resolved at create (Docker's `Mounts`).
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Attached networks by name (Docker's `NetworkSettings.Networks`).
    #[serde(default)]
    pub endpoints: BTreeMap<String, crate::network::Endpoint>,
    /// The bound network namespace while running (Docker's `SandboxKey`).
    #[serde(default)]
    pub sandbox_key: String,
    /// Published ports bound while running (`NetworkSettings.Ports`), by `80/tcp`.
    #[serde(default)]
    pub ports: BTreeMap<String, Vec<crate::network::endpoint::HostPort>>,
}

impl Record {
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    /// The labels of the container, for events and filters.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
}

/// What waiters see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WaitState {
    pub running: bool,
    pub exit_code: i32,
    pub exits: u64,
    pub removed: bool,
    pub error: String,
}

/// The live part of a container: its record behind a lock, its output fan-out and its waiters.
pub struct Handle {
    pub id: String,
    pub(crate) record: Mutex<Record>,
    pub(crate) output: attach::Fanout,
    pub(crate) wait: watch::Sender<WaitState>,
    /// Serialises start, stop, kill-and-remove on one container.
    pub(crate) op: tokio::sync::Mutex<()>,
    /// Stdin frames for the running container's shim (when it keeps stdin open).
    pub(crate) stdin: Mutex<Option<tokio::sync::mpsc::Sender<Option<bytes::Bytes>>>>,
    /// The restart policy's current back-off.
    pub(crate) restart_delay: Mutex<std::time::Duration>,
    /// Becomes true when the last shim's connection has closed: the shim sends a container's exit before
    /// it removes the cgroup and unmounts the root (not an auto-remove container's: its removal may keep it
    /// mounted, `dir_pool`), so a new start or a removal waits for this.
    pub(crate) shim_gone: Mutex<Option<watch::Receiver<bool>>>,
    /// Its record is not on disk yet (an auto-remove container's create puts none: start-up would remove it
    /// anyway after a crash), or its last commit was not durable. Its start puts it on disk before the
    /// container's process runs.
    pub(crate) unsynced: std::sync::atomic::AtomicBool,
    /// The making of its directory, which a create does not wait for (see `Engine::dir_made`).
    pub(crate) dir_made: Mutex<Option<DirMade>>,
}

/// The making of a container's directory on a blocking thread: awaited by whatever uses the directory. It
/// gives the root the daemon mounted in it, if it did (`create::RootMounter`).
pub(crate) type DirMade = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, std::result::Result<Option<dir_pool::Root>, String>>,
>;

impl Handle {
    pub(crate) fn new(rec: Record) -> Arc<Handle> {
        let ws = WaitState {
            running: matches!(
                rec.state.status,
                Status::Running | Status::Restarting | Status::Paused
            ),
            exit_code: rec.state.exit_code,
            exits: rec.exits,
            removed: false,
            error: rec.state.error.clone(),
        };
        let (wait, _) = watch::channel(ws);
        Arc::new(Handle {
            id: rec.id.clone(),
            record: Mutex::new(rec),
            output: attach::Fanout::default(),
            wait,
            op: tokio::sync::Mutex::new(()),
            stdin: Mutex::new(None),
            restart_delay: Mutex::new(std::time::Duration::ZERO),
            shim_gone: Mutex::new(None),
            unsynced: std::sync::atomic::AtomicBool::new(false),
            dir_made: Mutex::new(None),
        })
    }

    pub fn record(&self) -> Record {
        self.record
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut g = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub(crate) fn publish_wait(&self) {
        let r = self.record();
        self.wait.send_modify(|w| {
            w.running = matches!(
                r.state.status,
                Status::Running | Status::Restarting | Status::Paused
            );
            w.exit_code = r.state.exit_code;
            w.exits = r.exits;
            w.error = r.state.error.clone();
        });
    }
}

/// Paths of one container.
pub(crate) struct Paths {
    pub dir: PathBuf,
    pub state: PathBuf,
    /// The shim's control socket. Unix socket paths are limited to 108 bytes, so it lives in a short
    /// directory and is named by a 96-bit prefix of the id (like containerd's `/run/containerd/s/`).
    pub socket: PathBuf,
}

impl Paths {
    /// Where the shim records how the container ended.
    pub(crate) fn exit_file(&self) -> PathBuf {
        self.state.join("exit.json")
    }

    /// The shim's record of how the container ended, if there is a readable one.
    pub(crate) fn read_exit(&self) -> Option<berth_runtime::proto::ExitStatus> {
        let data = std::fs::read(self.exit_file()).ok()?;
        serde_json::from_slice(&data).ok()
    }
}

impl Engine {
    /// The directories that hold every container's [`Paths::dir`] and [`Paths::state`].
    pub(crate) fn container_roots(&self) -> [PathBuf; 2] {
        [
            self.inner.cfg.data_root.join("containers"),
            self.inner.cfg.exec_root.join("containers"),
        ]
    }

    pub(crate) fn paths(&self, id: &str) -> Paths {
        let [dir, state] = self.container_roots();
        Paths {
            dir: dir.join(id),
            state: state.join(id),
            socket: self
                .inner
                .cfg
                .exec_root
                .join("s")
                .join(&id[..id.len().min(24)]),
        }
    }

    /// Find a container by full id, name (with or without `/`), or unique id prefix, like Docker.
    pub async fn lookup(&self, name_or_id: &str) -> Result<Arc<Handle>> {
        let map = self.inner.containers.read().await;
        if let Some(h) = map.get(name_or_id) {
            return Ok(h.clone());
        }
        let want_name = format!("/{}", name_or_id.trim_start_matches('/'));
        if let Some(h) = map.values().find(|h| h.record().name == want_name) {
            return Ok(h.clone());
        }
        if !name_or_id.is_empty() && name_or_id.chars().all(|c| c.is_ascii_hexdigit()) {
            let found: Vec<_> = map
                .values()
                .filter(|h| h.id.starts_with(name_or_id))
                .collect();
            match found.len() {
                1 => return Ok(found[0].clone()),
                0 => {}
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    )))
                }
            }
        }
        Err(EngineError::NoSuchContainer(name_or_id.to_string()))
    }

    /// The record of a container (inspect).
    pub async fn inspect(&self, name_or_id: &str) -> Result<Record> {
        Ok(self.lookup(name_or_id).await?.record())
    }

    pub(crate) fn save(&self, h: &Handle) -> Result<()> {
        self.inner.store.put(&h.record())
    }

    /// Waits until the container's directory is made: a create answers while it is being made (its files are
    /// needed first by the start, which the client asks for next).
    pub(crate) async fn dir_made(&self, h: &Handle) -> Result<()> {
        self.dir_root(h).await.map(drop)
    }

    /// [`Engine::dir_made`], and the root the daemon mounted in the directory if it did.
    pub(crate) async fn dir_root(&self, h: &Handle) -> Result<Option<dir_pool::Root>> {
        let pending = h.dir_made.lock().ok().and_then(|g| g.clone());
        match pending {
            None => Ok(None),
            Some(made) => made
                .await
                .map_err(|e| EngineError::Internal(format!("make the container's directory: {e}"))),
        }
    }

    /// Saves a change that start-up reconciliation redoes from the shims if a crash loses it (see
    /// `ContainerStore::put_with`): on disk with the next durable commit.
    pub(crate) fn save_lazily(&self, h: &Handle) -> Result<()> {
        self.inner.store.put_with(&h.record(), false)
    }

    /// Waits (up to 30 s) until the container's last shim has finished: its cgroup removed, its root
    /// unmounted, its connection closed.
    pub(crate) async fn shim_gone(&self, h: &Handle) {
        let rx = h.shim_gone.lock().ok().and_then(|g| g.clone());
        if let Some(mut rx) = rx {
            let wait = rx.wait_for(|gone| *gone);
            if tokio::time::timeout(std::time::Duration::from_secs(30), wait)
                .await
                .is_err()
            {
                tracing::warn!(id = %h.id, "the container's shim has not finished in 30 s: going on");
            }
        }
    }

    pub(crate) fn container_event(&self, h: &Handle, action: &str, extra: &[(&str, String)]) {
        let r = h.record();
        let mut attrs = r.labels();
        attrs.insert("name".into(), r.short_name().to_string());
        attrs.insert("image".into(), r.image.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.inner.events.publish("container", action, &r.id, attrs);
    }

    /// Whether any container uses the image `id` (for rmi).
    pub async fn image_in_use(&self, image_id: &str) -> Option<(String, bool)> {
        let map = self.inner.containers.read().await;
        map.values()
            .map(|h| h.record())
            .find(|r| r.image_id == image_id)
            .map(|r| {
                let running = r.state.status == Status::Running;
                (r.id, running)
            })
    }
}

/// Writes `content` to the file at `path` in place, unless it holds exactly that already. The files bound
/// into containers (`/etc/hosts`...) must keep their inode, and the same bytes written again would only
/// free and take the file's blocks again (a discard on filesystems mounted with it).
pub(crate) fn write_in_place(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(content)?;
    f.set_len(content.len() as u64)
}

/// A new 64-hex id that does not read as a number in its short form (Docker's rule).
pub(crate) fn new_id() -> String {
    use rand::Rng;
    loop {
        let bytes: [u8; 32] = rand::thread_rng().gen();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !id[..12].chars().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_file_is_written_in_place_and_only_when_it_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hosts");
        super::write_in_place(&p, b"127.0.0.1\tlocalhost\nlonger line\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        let mtime = std::fs::metadata(&p).unwrap().mtime_nsec();
        std::thread::sleep(std::time::Duration::from_millis(20));
        super::write_in_place(&p, b"127.0.0.1\tlocalhost\nlonger line\n").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().mtime_nsec(),
            mtime,
            "the same bytes are not written again"
        );
        super::write_in_place(&p, b"short\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"short\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().ino(),
            ino,
            "the inode a bind mount holds stays"
        );
    }
}
