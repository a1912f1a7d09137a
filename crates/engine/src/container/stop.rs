//! `stop`, `kill`, `restart`, `wait`.

use super::{Handle, Status, WaitState};
use crate::error::{EngineError, Result};
use crate::shim_client::ShimConn;
use crate::Engine;
use berth_runtime::proto::Request;
use std::sync::Arc;
use std::time::Duration;

/// What `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// Signal names and numbers as Docker accepts them (`KILL`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<i32> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(libc_sig::SIGKILL);
    }
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    nix::sys::signal::Signal::iterator()
        .find(|sig| sig.as_str().trim_start_matches("SIG") == name)
        .map(|sig| sig as i32)
        .ok_or_else(|| EngineError::Invalid(format!("Invalid signal: {s}")))
}

mod libc_sig {
    pub const SIGKILL: i32 = 9;
    pub const SIGTERM: i32 = 15;
}

impl Engine {
    async fn signal(&self, h: &Handle, signal: i32) -> Result<()> {
        let socket = self.paths(&h.id).socket;
        let mut conn = ShimConn::connect(&socket)
            .await
            .map_err(|_| EngineError::Conflict(format!("container {} is not running", h.id)))?;
        let reply = conn.request(&Request::Kill { signal }).await?;
        if reply.ok {
            Ok(())
        } else {
            Err(EngineError::Conflict(format!(
                "cannot kill container: {}: {}",
                h.id,
                reply.error.unwrap_or_default()
            )))
        }
    }

    pub async fn kill(&self, name_or_id: &str, signal: &str) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        if h.record().state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {name_or_id}: container {} is not running",
                h.id
            )));
        }
        let sig = parse_signal(signal)?;
        // Like dockerd: a container the user killed is not brought back by its restart policy.
        h.update(|r| r.manually_stopped = true);
        let _ = self.save(&h);
        self.signal(&h, sig).await?;
        self.container_event(&h, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Stop: the stop signal, then SIGKILL after the timeout (seconds; negative waits forever).
    pub async fn stop(
        &self,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        let _op = h.op.lock().await;
        self.stop_locked(&h, timeout, signal).await
    }

    pub(crate) async fn stop_locked(
        &self,
        h: &Arc<Handle>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        h.update(|r| r.manually_stopped = true);
        if h.record().state.status == Status::Restarting {
            // A pending restart is cancelled: the container stays down.
            h.update(|r| r.state.status = Status::Exited);
            let _ = self.save(h);
            h.publish_wait();
            return Ok(());
        }
        let rec = h.record();
        if rec.state.status != Status::Running {
            return Err(EngineError::NotModified("stopped"));
        }
        let sig = match signal.or(rec.config.stop_signal.clone()) {
            Some(s) => parse_signal(&s)?,
            None => libc_sig::SIGTERM,
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let mut rx = h.wait.subscribe();
        let _ = self.signal(h, sig).await;
        self.container_event(h, "kill", &[("signal", sig.to_string())]);
        let exited = async {
            let _ = rx.wait_for(|w| !w.running).await;
        };
        let done = if timeout < 0 {
            exited.await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), exited)
                .await
                .is_ok()
        };
        if !done {
            let mut rx = h.wait.subscribe();
            let _ = self.signal(h, libc_sig::SIGKILL).await;
            self.container_event(h, "kill", &[("signal", libc_sig::SIGKILL.to_string())]);
            let _ =
                tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|w| !w.running)).await;
        }
        self.container_event(h, "stop", &[]);
        Ok(())
    }

    pub async fn restart(
        &self,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        {
            let _op = h.op.lock().await;
            match self.stop_locked(&h, timeout, signal).await {
                Ok(()) | Err(EngineError::NotModified(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.start(&h.id).await?;
        self.container_event(&h, "restart", &[]);
        Ok(())
    }

    /// Wait for `condition`; returns the exit code and the error text of a failed start (if any).
    pub async fn wait(&self, name_or_id: &str, condition: WaitCondition) -> Result<WaitState> {
        let h = self.lookup(name_or_id).await?;
        let mut rx = h.wait.subscribe();
        let now = rx.borrow().clone();
        let target = match condition {
            WaitCondition::NotRunning if !now.running => return Ok(now),
            WaitCondition::NotRunning => rx.wait_for(|w| !w.running || w.removed).await,
            WaitCondition::NextExit => rx.wait_for(|w| w.exits > now.exits || w.removed).await,
            WaitCondition::Removed => rx.wait_for(|w| w.removed).await,
        };
        match target {
            Ok(w) => Ok(w.clone()),
            // The handle was dropped: the container is gone; report the last known state.
            Err(_) => Ok(WaitState {
                removed: true,
                ..now
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGHUP").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("").unwrap(), 9);
        assert_eq!(
            parse_signal("BOGUS").unwrap_err().to_string(),
            "Invalid signal: BOGUS"
        );
        assert!(parse_signal("99").is_err());
    }
}

impl Engine {
    /// Freeze a running container (`docker pause`).
    pub async fn pause(&self, name_or_id: &str) -> Result<()> {
        self.freeze(name_or_id, true).await
    }

    /// Thaw a paused container (`docker unpause`).
    pub async fn unpause(&self, name_or_id: &str) -> Result<()> {
        self.freeze(name_or_id, false).await
    }

    async fn freeze(&self, name_or_id: &str, pause: bool) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        let _op = h.op.lock().await;
        let status = h.record().state.status;
        match (pause, status) {
            (true, Status::Running) | (false, Status::Paused) => {}
            (true, Status::Paused) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
                    h.id
                )))
            }
            (false, _) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not paused",
                    h.id
                )))
            }
            (true, _) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    h.id
                )))
            }
        }
        let mut conn = ShimConn::connect(&self.paths(&h.id).socket).await?;
        let reply = conn
            .request(if pause {
                &Request::Pause
            } else {
                &Request::Resume
            })
            .await?;
        if !reply.ok {
            return Err(EngineError::Internal(reply.error.unwrap_or_default()));
        }
        h.update(|r| {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            }
        });
        self.save(&h)?;
        h.publish_wait();
        self.container_event(&h, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }
}

impl Engine {
    /// The container's cgroup.
    pub fn cgroup_of(&self, id: &str) -> crate::stats::CgroupLocation {
        crate::stats::CgroupLocation::new(
            &self.inner.cfg.cgroup_root,
            &self.inner.cfg.cgroup_parent,
            id,
        )
    }

    /// One resource sample of a running container (`docker stats`).
    pub async fn stats(&self, name_or_id: &str) -> Result<(super::Record, crate::stats::Sample)> {
        let h = self.lookup(name_or_id).await?;
        let rec = h.record();
        let loc = self.cgroup_of(&rec.id);
        let proc_root = self.inner.cfg.proc_root.clone();
        let sample = if matches!(rec.state.status, Status::Running | Status::Paused) {
            tokio::task::spawn_blocking(move || loc.sample(&proc_root))
                .await
                .map_err(EngineError::join)?
        } else {
            crate::stats::Sample::default()
        };
        Ok((rec, sample))
    }

    /// `docker top`: `ps` with the caller's options, limited to the container's processes.
    pub async fn top(
        &self,
        name_or_id: &str,
        ps_args: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let h = self.lookup(name_or_id).await?;
        if !matches!(h.record().state.status, Status::Running | Status::Paused) {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                h.id
            )));
        }
        let pids = self.cgroup_of(&h.id).pids();
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(str::to_string).collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::io("run ps", e))?;
        if !out.status.success() {
            return Err(EngineError::Invalid(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Keep the `ps` lines whose PID column is one of `pids`; the last column takes the rest of the line.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod top_tests {
    #[test]
    fn ps_output_is_filtered_by_pid() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 100 --long\n";
        let (t, rows) = super::parse_ps(out, &[42]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(
            rows,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 100 --long"
            ]]
        );
        assert!(super::parse_ps("USER COMMAND\nx y\n", &[1]).is_err());
    }
}
