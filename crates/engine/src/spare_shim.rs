//! Spare shims: one shim started ahead of its container, so that a start does not wait for a process to
//! be made, the shim's program to be loaded and its runtime to set itself up (most of a millisecond of a
//! `run`'s path). A shim runs `<shim-program> shim - [<cgroup-parent>]` with one end of a socket pair as its
//! standard input ([`berth_runtime::shim::main_args`]); the daemon keeps the other. A start writes the
//! container's state directory and configuration there, a line each, and from then on that socket is the
//! daemon's connection to the container's shim (its first answer says whether the container was made). A
//! new spare is started after the start that took the last one (when its container has ended, or a moment
//! after the start).
//!
//! A spare holds nothing of a container's: no files, no mounts. On cgroup v1 it makes a cgroup ahead
//! (`<cgroup-parent>/spare-<pid>` in each hierarchy), which the container's start renames, and clones its
//! container's init ahead in it (`berth_sys::container::clone_ahead`). When the daemon stops or dies its
//! end of the socket closes and the spare kills that init, removes the cgroup and exits; start-up removes
//! the cgroups of spares that were killed (their inits die with them).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// How many shims are kept ready: starts come one at a time from a client; a burst of concurrent starts
/// starts the others' shims as before.
const SPARES: usize = 1;

pub(crate) struct SpareShims {
    program: PathBuf,
    /// The daemon's cgroup parent: a spare makes its container's cgroup ahead under it (cgroup v1).
    cgroup_parent: String,
    /// Where shims' control sockets are: a spare binds its own there ahead (see
    /// `berth_runtime::shim::PREBOUND_PREFIX`), and the start renames it.
    socket_dir: PathBuf,
    ready: Mutex<Vec<Shim>>,
}

/// A shim process and the daemon's end of its input.
pub(crate) struct Shim {
    child: Child,
    conn: UnixStream,
}

impl SpareShims {
    /// Spares of `program`; the sockets spares bound ahead and left behind (killed) are removed.
    pub fn new(program: PathBuf, cgroup_parent: String, socket_dir: PathBuf) -> SpareShims {
        for e in std::fs::read_dir(&socket_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name()
                .to_string_lossy()
                .starts_with(berth_runtime::shim::PREBOUND_PREFIX)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
        SpareShims {
            program,
            cgroup_parent,
            socket_dir,
            ready: Mutex::new(Vec::new()),
        }
    }

    /// A shim for the state directory `state_dir`, handed it with `config` (the shim's configuration,
    /// `ShimConfig` as one line of JSON), and the daemon's connection to it: a spare, or, with none ready
    /// (or one that has gone), a new one. Returns at once: the shim creates the container while the caller
    /// goes on, and says how that went in its first answer on the connection.
    pub async fn shim_for(
        &self,
        state_dir: &Path,
        config: &[u8],
    ) -> std::io::Result<(Child, tokio::net::UnixStream)> {
        while let Some(spare) = self.take() {
            if let Ok(handed) = handed(spare, state_dir, config).await {
                return Ok(handed);
            }
            // It died while it waited: it is reaped with the dropped handle; try the next one.
        }
        let shim = self.spawn(None)?;
        handed(shim, state_dir, config).await
    }

    /// Starts spares up to [`SPARES`] (call from within the runtime).
    pub fn refill(&self) {
        let Ok(mut ready) = self.ready.lock() else {
            return;
        };
        while ready.len() < SPARES {
            match self.spawn(Some(&self.cgroup_parent)) {
                Ok(shim) => ready.push(shim),
                Err(e) => {
                    tracing::warn!(program = %self.program.display(), "start a spare shim: {e}");
                    break;
                }
            }
        }
    }

    /// Lets every spare go: each reads the end of its input and exits (shutdown).
    pub fn clear(&self) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.clear();
        }
    }

    fn take(&self) -> Option<Shim> {
        self.ready.lock().ok()?.pop()
    }

    /// Starts `PROGRAM shim - [<cgroup-parent>]` (given the parent, a spare makes its cgroup ahead) with one
    /// end of a socket pair as its input.
    fn spawn(&self, cgroup_parent: Option<&str>) -> std::io::Result<Shim> {
        let (conn, theirs) = UnixStream::pair()?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("shim").arg(berth_runtime::shim::SPARE);
        if let Some(parent) = cgroup_parent {
            cmd.arg(parent);
            if std::fs::create_dir_all(&self.socket_dir).is_ok() {
                cmd.arg(&self.socket_dir);
            }
        }
        cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false);
        Ok(Shim {
            child: cmd.spawn()?,
            conn,
        })
    }
}

/// Hands a shim its state directory and its configuration, a line each; returns it with the daemon's
/// connection to it.
async fn handed(
    mut shim: Shim,
    state_dir: &Path,
    config: &[u8],
) -> std::io::Result<(Child, tokio::net::UnixStream)> {
    if shim.child.try_wait()?.is_some() {
        return Err(std::io::Error::other("the spare shim has exited"));
    }
    let mut line = state_dir.as_os_str().as_encoded_bytes().to_vec();
    if line.is_empty() || line.contains(&b'\n') || config.contains(&b'\n') {
        return Err(std::io::Error::other(
            "an empty state directory, or one or a configuration with a newline",
        ));
    }
    line.push(b'\n');
    line.extend_from_slice(config);
    line.push(b'\n');
    shim.conn.set_nonblocking(true)?;
    let mut conn = tokio::net::UnixStream::from_std(shim.conn)?;
    conn.write_all(&line).await?;
    // A spare readies itself at the lowest priority (see `berth_runtime::shim::main_args`): from now on the
    // client waits for it, and for the init it cloned ahead (in its process group until handed its
    // container). After the write: a spare that had not lowered itself yet finds its container waiting,
    // and does not.
    if let Some(pid) = shim.child.id() {
        let nice = berth_sys::process::nice_of(std::process::id() as i32).unwrap_or(0);
        let _ = berth_sys::process::set_group_nice(pid as i32, nice);
    }
    Ok((shim.child, conn))
}
