//! Spare shims: one shim started ahead of its container, so that a start does not wait for a process to
//! be made, the shim's program to be loaded and its runtime to set itself up (most of a millisecond of a
//! `run`'s path). The spare runs `<shim-program> shim - <cgroup-parent>` and blocks reading its stdin
//! ([`berth_runtime::shim::main_args`]); a start writes the container's state directory there and closes
//! the pipe, and from then on the spare is that container's shim, exactly as if it had been started with
//! the directory as its argument. A new spare is started after the start that took the last one (when
//! its container has ended, or a moment after the start).
//!
//! A spare holds nothing of a container's: no files, no mounts. On cgroup v1 it makes a cgroup ahead
//! (`<cgroup-parent>/spare-<pid>` in each hierarchy, empty), which the container's start renames. When the
//! daemon stops or dies its end of the pipe closes and the spare removes that cgroup and exits; start-up
//! removes the cgroups of spares that were killed.

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
    ready: Mutex<Vec<Child>>,
}

impl SpareShims {
    pub fn new(program: PathBuf, cgroup_parent: String) -> SpareShims {
        SpareShims {
            program,
            cgroup_parent,
            ready: Mutex::new(Vec::new()),
        }
    }

    /// A shim for the state directory `state_dir`, its stdout on a pipe for its one-line answer: a spare
    /// handed the directory, or, with none ready (or one that has gone), a new one.
    ///
    /// `config` is the shim's configuration (`ShimConfig` as one line of JSON): a spare is handed it on its
    /// input with the state directory; for a shim started now it is written to `<state-dir>/shim.json`.
    pub async fn shim_for(&self, state_dir: &Path, config: &[u8]) -> std::io::Result<Child> {
        while let Some(mut spare) = self.take() {
            if handed(&mut spare, state_dir, config).await.is_ok() {
                return Ok(spare);
            }
            // It died while it waited: it is reaped with the dropped handle; try the next one.
        }
        let path = state_dir.join("shim.json");
        let tmp = state_dir.join("shim.tmp");
        std::fs::write(&tmp, config)?;
        std::fs::rename(&tmp, &path)?;
        self.command(Some(state_dir)).spawn()
    }

    /// Starts spares up to [`SPARES`] (call from within the runtime).
    pub fn refill(&self) {
        let Ok(mut ready) = self.ready.lock() else {
            return;
        };
        while ready.len() < SPARES {
            match self.command(None).spawn() {
                Ok(child) => ready.push(child),
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

    fn take(&self) -> Option<Child> {
        self.ready.lock().ok()?.pop()
    }

    /// `PROGRAM shim <state-dir>`, or `PROGRAM shim -` for a spare (the directory comes on stdin).
    fn command(&self, state_dir: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("shim");
        match state_dir {
            Some(dir) => cmd.arg(dir).stdin(std::process::Stdio::null()),
            None => cmd
                .arg(berth_runtime::shim::SPARE)
                .arg(&self.cgroup_parent)
                .stdin(std::process::Stdio::piped()),
        };
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(false);
        cmd
    }
}

/// Hands a spare its state directory and its configuration: a line each, then the end of its input.
async fn handed(spare: &mut Child, state_dir: &Path, config: &[u8]) -> std::io::Result<()> {
    if spare.try_wait()?.is_some() {
        return Err(std::io::Error::other("the spare shim has exited"));
    }
    let mut stdin = spare
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the spare shim has no stdin"))?;
    let mut line = state_dir.as_os_str().as_encoded_bytes().to_vec();
    if line.contains(&b'\n') || config.contains(&b'\n') {
        return Err(std::io::Error::other(
            "a state directory or a configuration with a newline",
        ));
    }
    line.push(b'\n');
    line.extend_from_slice(config);
    line.push(b'\n');
    stdin.write_all(&line).await?;
    stdin.flush().await
}
