//! `exec`: more processes in a running container. An exec is created (its settings stored in memory, like
//! Docker's exec store), then started: the engine derives an OCI `Process` from the container's own (same
//! capabilities, seccomp, no_new_privileges, rlimits, unless `--privileged`), and asks the container's shim to
//! run it; the shim reaps it and reports its exit on that connection.

use crate::container::{Output, Status};
use crate::error::{EngineError, Result};
use crate::shim_client::ShimConn;
use crate::Engine;
use berth_runtime::proto::{ExitStatus, Kind, Request};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// What `docker exec` asks for (the `/containers/{id}/exec` body).
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub detach_keys: String,
    /// Initial terminal size (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// An exec's state, for `/exec/{id}/json`.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: watch::Sender<ExecState>,
    started: Mutex<bool>,
}

impl Exec {
    pub fn state(&self) -> ExecState {
        self.state.borrow().clone()
    }
}

/// A started exec: its output, and its stdin when attached.
pub struct ExecStream {
    pub output: mpsc::Receiver<Output>,
    pub stdin: Option<mpsc::Sender<Option<Bytes>>>,
}

#[derive(Default)]
pub(crate) struct ExecStore {
    execs: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Engine {
    fn execs(&self) -> &ExecStore {
        &self.inner.execs
    }

    pub async fn exec_create(&self, container: &str, config: ExecConfig) -> Result<String> {
        if self.cgroup_v2() {
            self.warm_cgroup_attach();
        }
        let h = self.lookup(container).await?;
        let rec = h.record();
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    rec.id
                )))
            }
        }
        if config.cmd.is_empty() {
            return Err(EngineError::Invalid("No exec command specified".into()));
        }
        let id = crate::container::new_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: rec.id.clone(),
            config,
            state: watch::channel(ExecState::default()).0,
            started: Mutex::new(false),
        });
        if let Ok(mut m) = self.execs().execs.lock() {
            m.insert(id.clone(), exec);
        }
        self.container_event(
            &h,
            &format!("exec_create: {}", exec_cmdline(self, &id)),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs()
            .execs
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| EngineError::NoSuchExec(id.to_string()))
    }

    /// Start an exec; output flows until the process ends (the stream then closes).
    pub async fn exec_start(&self, id: &str) -> Result<ExecStream> {
        let exec = self.exec_get(id)?;
        {
            let mut s = exec
                .started
                .lock()
                .map_err(|_| EngineError::Internal("exec lock".into()))?;
            if *s {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            *s = true;
        }
        let h = self.lookup(&exec.container_id).await?;
        if h.record().state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                exec.container_id
            )));
        }
        // On cgroup v2 the launcher attaches the exec'd process through `cgroup.procs`: start the kernel's
        // wait now (on v1 it moves by thread, which waits for nothing).
        if self.cgroup_v2() {
            self.warm_cgroup_attach();
        }
        let paths = self.paths(&exec.container_id);
        let process = self.exec_process(&exec, &paths).await?;
        let process_path = paths.state.join(format!("exec-{}.json", &exec.id[..16]));
        let data = serde_json::to_vec(&process)
            .map_err(|e| EngineError::Internal(format!("encode exec process: {e}")))?;
        std::fs::create_dir_all(&paths.state)
            .and_then(|()| std::fs::write(&process_path, data))
            .map_err(|e| EngineError::io(format!("write {}", process_path.display()), e))?;
        let mut conn = ShimConn::connect(&paths.socket).await?;
        let reply = conn
            .request(&Request::Exec {
                exec: exec.id.clone(),
                process: process_path.clone(),
                tty: exec.config.tty,
                stdin: exec.config.attach_stdin,
                console_size: exec.config.console_size,
            })
            .await?;
        let _ = std::fs::remove_file(&process_path);
        if !reply.ok {
            let msg = reply.error.unwrap_or_default();
            let err = exec_error(&msg, &exec.config.cmd[0]);
            let code = if err.to_string().contains("not found") {
                127
            } else {
                126
            };
            exec.state.send_modify(|s| s.exit_code = Some(code));
            return Err(err);
        }
        let pid = reply.pid.unwrap_or(0);
        exec.state.send_modify(|s| {
            s.running = true;
            s.pid = pid;
        });
        self.container_event(
            &h,
            &format!("exec_start: {}", exec.config.cmd.join(" ")),
            &[("execID", exec.id.clone())],
        );
        let (out_tx, out_rx) = mpsc::channel::<Output>(256);
        let (in_tx, mut in_rx) = mpsc::channel::<Option<Bytes>>(64);
        let engine = self.clone();
        let exec2 = exec.clone();
        tokio::spawn(async move {
            let mut stdin_open = true;
            let code = loop {
                tokio::select! {
                    frame = conn.next() => match frame {
                        Ok(Some((Kind::Stdout, d))) => { let _ = out_tx.send(Output::Stdout(d.into())).await; }
                        Ok(Some((Kind::Stderr, d))) => { let _ = out_tx.send(Output::Stderr(d.into())).await; }
                        Ok(Some((Kind::Exit, d))) => break serde_json::from_slice::<ExitStatus>(&d).map(|s| s.exit_code).unwrap_or(255),
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break 255,
                    },
                    input = in_rx.recv(), if stdin_open => match input {
                        Some(Some(data)) => { let _ = conn.send(Kind::Stdin, &data).await; }
                        Some(None) | None => {
                            stdin_open = false;
                            let body = serde_json::to_vec(&Request::CloseStdin).unwrap_or_default();
                            let _ = conn.send(Kind::Control, &body).await;
                        }
                    }
                }
            };
            exec2.state.send_modify(|s| {
                s.running = false;
                s.exit_code = Some(code);
            });
            let _ = out_tx.send(Output::Exit(code)).await;
            if let Ok(h) = engine.lookup(&exec2.container_id).await {
                engine.container_event(
                    &h,
                    "exec_die",
                    &[("execID", exec2.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
        Ok(ExecStream {
            output: out_rx,
            stdin: exec.config.attach_stdin.then_some(in_tx),
        })
    }

    /// Wait until a started exec has finished (for detached starts and tests).
    pub async fn exec_wait(&self, id: &str) -> Result<i32> {
        let exec = self.exec_get(id)?;
        let mut rx = exec.state.subscribe();
        let s = rx
            .wait_for(|s| s.exit_code.is_some())
            .await
            .map_err(|_| EngineError::Internal("exec state closed".into()))?;
        Ok(s.exit_code.unwrap_or(255))
    }

    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let exec = self.exec_get(id)?;
        let paths = self.paths(&exec.container_id);
        let mut conn = ShimConn::connect(&paths.socket).await?;
        let reply = conn
            .request(&Request::Resize {
                exec: Some(exec.id.clone()),
                rows,
                cols,
            })
            .await?;
        if reply.ok {
            Ok(())
        } else {
            Err(EngineError::Conflict(reply.error.unwrap_or_default()))
        }
    }

    /// Resize the container's own terminal.
    pub async fn resize(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        if h.record().state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                h.id
            )));
        }
        let mut conn = ShimConn::connect(&self.paths(&h.id).socket).await?;
        let reply = conn
            .request(&Request::Resize {
                exec: None,
                rows,
                cols,
            })
            .await?;
        if reply.ok || !h.record().config.tty.unwrap_or(false) {
            Ok(())
        } else {
            Err(EngineError::Conflict(reply.error.unwrap_or_default()))
        }
    }

    /// Forget the execs of a container (when it stops or is removed).
    pub(crate) fn drop_execs(&self, container_id: &str) {
        if let Ok(mut m) = self.execs().execs.lock() {
            m.retain(|_, e| e.container_id != container_id || e.state().running);
        }
    }

    /// The exec's OCI process: the container's process with the exec's command, env, cwd, user and terminal.
    async fn exec_process(&self, exec: &Exec, paths: &crate::container::Paths) -> Result<Value> {
        let dir = &paths.dir;
        let spec_path = dir.join("config.json");
        let spec: Value = serde_json::from_slice(
            &std::fs::read(&spec_path)
                .map_err(|e| EngineError::io(format!("read {}", spec_path.display()), e))?,
        )
        .map_err(|e| EngineError::Internal(format!("parse {}: {e}", spec_path.display())))?;
        let mut p = spec["process"].clone();
        let c = &exec.config;
        p["args"] = json!(c.cmd);
        p["terminal"] = json!(c.tty);
        let mut env: Vec<String> = p["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        for kv in &c.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p["env"] = json!(env);
        if !c.working_dir.is_empty() {
            p["cwd"] = json!(c.working_dir);
        }
        if !c.user.is_empty() {
            let rootfs = dir.join("rootfs");
            let ids = crate::user::resolve(&c.user, |f| {
                crate::user::resolve_in_root(&rootfs, f).and_then(|host| std::fs::read(host).ok())
            })?;
            p["user"] =
                json!({"uid": ids.uid, "gid": ids.gid, "additionalGids": ids.additional_gids});
        }
        // The shim's launcher loads the container's seccomp filter into the exec'd process itself, while
        // it still holds every capability: the process needs nothing lent for it.
        if c.privileged {
            let caps = berth_runtime::spec::resolve_capabilities(
                &[],
                &[],
                true,
                crate::container::bounding_caps(),
            )
            .map_err(|e| EngineError::Internal(e.to_string()))?;
            let caps = serde_json::to_value(&caps).unwrap_or(json!([]));
            p["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
        }
        Ok(p)
    }
}

fn exec_cmdline(engine: &Engine, id: &str) -> String {
    engine
        .exec_get(id)
        .map(|e| e.config.cmd.join(" "))
        .unwrap_or_default()
}

/// The runtime's words for a command that cannot run, as Docker says them (clients map them to 126/127).
fn exec_error(msg: &str, cmd: &str) -> EngineError {
    let prefix = "OCI runtime exec failed: exec failed: unable to start container process";
    if msg.contains("not found in $PATH")
        || msg.contains("No such file")
        || msg.contains("no such file")
    {
        EngineError::Invalid(format!(
            "{prefix}: exec: \"{cmd}\": executable file not found in $PATH: unknown"
        ))
    } else if msg.contains("ermission denied") {
        EngineError::Invalid(format!(
            "{prefix}: exec: \"{cmd}\": permission denied: unknown"
        ))
    } else {
        EngineError::Internal(format!("{prefix}: {msg}"))
    }
}
