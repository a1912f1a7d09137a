//! `start`: turn the record into an OCI bundle, hand it to a new shim, wire the shim's output to attached
//! clients and watch for the exit.

use super::{now_rfc3339, Handle, Output, Status};
use crate::error::{EngineError, Result};
use crate::shim_client::ShimConn;
use crate::Engine;
use berth_runtime::proto::{ExitStatus, Kind, LogConfig, Request, ShimConfig};
use berth_runtime::spec::{self, SpecInput};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long after a start its container's end is waited for before the spares are made anyway.
const SPARES_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

impl Engine {
    pub async fn start(&self, name_or_id: &str) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        let _op = h.op.lock().await;
        match h.record().state.status {
            Status::Running => return Err(EngineError::NotModified("started")),
            Status::Paused => {
                return Err(EngineError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    h.id
                )))
            }
            _ => {}
        }
        let started = self.start_locked(&h).await;
        self.refill_spares_after(&h, started.is_ok());
        match started {
            Ok(()) => Ok(()),
            Err(e) => {
                let undo = self.network_teardown(&h).await;
                if !undo.is_empty() {
                    tracing::warn!(id = %h.id, "undoing the network of a failed start: {}", undo.join("; "));
                }
                // Docker records a failed start on the container: exit code 127/126 for a missing or
                // non-executable command, 128 otherwise.
                let msg = e.to_string();
                let code = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                {
                    127
                } else if msg.contains("permission denied") {
                    126
                } else {
                    128
                };
                h.update(|r| {
                    r.state.status = if r.state.status == Status::Created {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    r.state.exit_code = code;
                    r.state.error = msg.clone();
                });
                let _ = self.save(&h);
                h.publish_wait();
                // Docker removes an auto-remove container whose start failed (`run --rm` clients wait for
                // that); once this start has let go of the container.
                if h.record().host_config.auto_remove == Some(true) {
                    let engine = self.clone();
                    let id = h.id.clone();
                    tokio::spawn(async move {
                        let _ = engine.remove(&id, true, true).await;
                    });
                }
                Err(e)
            }
        }
    }

    /// The next start's shim and network namespace are made once this start no longer needs the CPU: when
    /// its container has ended, or been removed if it is removed at its end (a short one's end is on its
    /// client's path: a `run --rm` waits for the removal) or
    /// after [`SPARES_AFTER`], whichever comes first; at once after a failed start.
    fn refill_spares_after(&self, h: &Arc<Handle>, started: bool) {
        let engine = self.clone();
        let mut wait = h.wait.subscribe();
        let auto_remove = h.record().host_config.auto_remove == Some(true);
        tokio::spawn(async move {
            if started {
                // An auto-remove container's client waits for its removal: after that.
                let ended = wait.wait_for(|w| w.removed || (!w.running && !auto_remove));
                let _ = tokio::time::timeout(SPARES_AFTER, ended).await;
                // The client's answer, woken by the same change, goes out first.
                tokio::task::yield_now().await;
            }
            engine.inner.spare_shims.refill();
            engine.inner.spare_netns.refill();
        });
    }

    pub(crate) async fn start_locked(&self, h: &Arc<Handle>) -> Result<()> {
        // A restart: the last shim may still be unmounting the root this start mounts again.
        self.shim_gone(h).await;
        let t0 = std::time::Instant::now();
        let rec = h.record();
        let paths = self.paths(&rec.id);
        // The image's layers and the user's ids, while the create's directory is finished.
        let (view, made) = tokio::join!(
            self.image_view(
                &rec.image_id,
                rec.config.user.as_deref().unwrap_or_default()
            ),
            self.dir_made(h)
        );
        made?;
        let ImageView { lower, ids } = view?;
        let lower = super::init_layer::lower(&self.inner.init_layer, lower);

        let t_image = t0.elapsed();
        let network = self.network_setup(h).await?;
        // A spare namespace is released once the init has joined it (or will never join it).
        let spare = match &network {
            spec::NetworkMode::Path(p) if self.inner.spare_netns.owns(p) => Some(SpareGuard {
                engine: self.clone(),
                path: p.clone(),
            }),
            _ => None,
        };
        let rec = h.record();
        let t_net = t0.elapsed();
        let input = spec_input(self, &rec, &paths.dir, &ids, network)?;
        let mut oci = spec::generate(&input).map_err(|e| EngineError::Invalid(e.to_string()))?;
        // The seccomp filter is compiled once per profile, here, instead of in every container's init (see
        // `berth_runtime::filter`); the shim loads the compiled program.
        let filter = berth_runtime::filter::precompile(&oci)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // No state dir: a previous run's exit file must not be mistaken for this one's. It is made by what
        // first writes into it (the shim's `exit.json`, an exec's process file): a `run --rm` makes none.
        let _ = std::fs::remove_dir_all(&paths.state);
        if let Some(dir) = paths.socket.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::io("create shim socket dir", e))?;
        }
        // For OCI tools and execs (the shim is handed the spec): written once the shim has its
        // configuration, and in place (a reused directory, `dir_pool`, holds an emptied one whose inode
        // this keeps).
        let bundle_cfg = paths.dir.join("config.json");
        let bundle = paths.dir.clone();
        // The shim gets the spec with its configuration, without the seccomp section it has compiled
        // (three fifths of the spec's JSON, hundreds of strings to parse); `config.json` has it whole, and
        // is encoded once the shim has its configuration.
        let seccomp_section = if filter.is_some() {
            oci.linux_mut()
                .as_mut()
                .and_then(|linux| linux.seccomp_mut().take())
        } else {
            None
        };
        let seccomp = match filter {
            Some(f) => {
                let program = self.seccomp_program_file(&f.program)?;
                Some(berth_runtime::proto::SeccompFilter {
                    program,
                    flags: f.flags,
                    compile_ahead: f.compile_ahead,
                })
            }
            None => None,
        };
        let mut oom_event_files = Vec::new();
        let cg = &self.inner.cfg.cgroup_root;
        let rel = input.cgroups_path.trim_start_matches('/');
        oom_event_files.push(cg.join("memory").join(rel).join("memory.oom_control"));
        oom_event_files.push(cg.join(rel).join("memory.events"));
        let log_max_size = log_opt(&rec, "max-size")
            .map(|s| parse_size(&s))
            .unwrap_or(Ok(self.inner.cfg.log_max_size))?;
        let log_max_files = match log_opt(&rec, "max-file") {
            Some(s) => s
                .parse()
                .map_err(|_| EngineError::Invalid(format!("invalid value for max-file: {s}")))?,
            None => self.inner.cfg.log_max_files,
        };
        let mut shim_cfg = ShimConfig {
            id: rec.id.clone(),
            bundle,
            rootfs: paths.dir.join("rootfs"),
            lower,
            upper: paths.dir.join("upper"),
            work: paths.dir.join("work"),
            // A `--rm` container's root is thrown away at its end: it need not survive a crash.
            volatile: rec.host_config.auto_remove == Some(true),
            socket: paths.socket.clone(),
            exit_file: paths.exit_file(),
            log: (super::create::log_driver(&rec.host_config) != "none").then(|| LogConfig {
                path: PathBuf::from(&rec.log_path),
                max_size: log_max_size,
                max_files: log_max_files,
            }),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            tty: rec.config.tty.unwrap_or(false),
            console_size: console_size(rec.host_config.console_size.as_deref()),
            oom_event_files,
            seccomp,
            spec: Some(oci),
        };
        let shim_json = serde_json::to_vec(&shim_cfg)
            .map_err(|e| EngineError::Internal(format!("encode the shim's configuration: {e}")))?;
        self.copy_up_volumes(&rec, &shim_cfg).await?;
        let mut full_spec = shim_cfg.spec.take();
        let t_spec = t0.elapsed();
        // The shim is handed the container and creates it while the interfaces are plugged in: its
        // process only runs after `Start`, and by then both are done.
        // And a record not on disk yet (see `create`) is put there meanwhile: before the process runs.
        let (handed, plumbed, synced, written) = tokio::join!(
            hand_to_shim(&self.inner.spare_shims, &paths.state, &shim_json),
            self.network_plumb(h),
            self.sync_record(h),
            async {
                let mut spec = full_spec.take().unwrap_or_default();
                if let Some(linux) = spec.linux_mut() {
                    if seccomp_section.is_some() {
                        linux.set_seccomp(seccomp_section);
                    }
                }
                let json = serde_json::to_vec(&spec).map_err(|e| {
                    EngineError::Internal(format!("encode {}: {e}", bundle_cfg.display()))
                })?;
                super::write_in_place(&bundle_cfg, &json)
                    .map_err(|e| EngineError::io(format!("write {}", bundle_cfg.display()), e))
            }
        );
        let mut conn = handed?;
        // A start that fails from here ends the container and waits until its shim has cleaned up and
        // gone, so that a removal or the next start finds its directories free.
        if let Err(e) = plumbed.and(synced).and(written) {
            let _ = conn.send_requests(&[Request::Kill { signal: 9 }]).await;
            drain_until_closed(&mut conn).await;
            return Err(e);
        }
        let cmd = &input.args[0];
        // Attach and start without waiting for the shim's answer: it serves them in order once the
        // container is created, so no output is missed. The init execs the program at start, where a
        // program that cannot run is refused, in the runtime's words (as Docker's runtime refuses it at
        // create: the container is not started).
        let attach = Request::Attach {
            stdout: true,
            stderr: true,
            stdin: shim_cfg.open_stdin,
        };
        let sent = conn.send_requests(&[attach, Request::Start]).await;
        // The shim's account of the creation: the init has joined its namespaces.
        let created = conn.reply().await.and_then(|reply| {
            if reply.ok {
                reply
                    .pid
                    .ok_or_else(|| EngineError::Internal("the shim gave no pid".into()))
            } else {
                Err(EngineError::Internal(format!(
                    "failed to create task for container: {}",
                    reply.error.unwrap_or_default()
                )))
            }
        });
        // A shim that could not create the container has ended it and gone.
        let pid = created.map_err(|e| docker_wording(e, cmd))?;
        let t_shim = t0.elapsed();
        let started = match sent {
            Ok(()) => match (conn.reply().await, conn.reply().await) {
                (Ok(attached), Ok(started)) => {
                    expect_ok(attached).and_then(|()| expect_ok(started))
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
            Err(e) => Err(e),
        };
        // The daemon lets go of the spare namespace the init has joined (a descriptor closed).
        drop(spare);
        if let Err(e) = started {
            let _ = conn.request(&Request::Kill { signal: 9 }).await;
            drain_until_closed(&mut conn).await;
            return Err(docker_wording(e, cmd));
        }
        let t_started = t0.elapsed();
        h.update(|r| {
            r.manually_stopped = false;
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.started_at = now_rfc3339();
            r.state.finished_at = super::ZERO_TIME.into();
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
        });
        // Without network endpoints (whose addresses only the record keeps) this need not wait for the
        // disk: after a crash, start-up finds the started shim and adopts it, or its record of the exit.
        let saved = if h.record().endpoints.is_empty() {
            self.save_lazily(h)
        } else {
            self.save(h)
        };
        if let Err(e) = saved {
            // It runs: watched like any other, it is recorded when it ends.
            tracing::warn!(id = %rec.id, "save the started container: {e}");
        }
        tracing::debug!(
            id = %rec.id,
            image_ms = t_image.as_secs_f64() * 1e3,
            net_ms = t_net.as_secs_f64() * 1e3,
            spec_ms = t_spec.as_secs_f64() * 1e3,
            shim_ms = t_shim.as_secs_f64() * 1e3,
            started_ms = t_started.as_secs_f64() * 1e3,
            saved_ms = t0.elapsed().as_secs_f64() * 1e3,
            "container started"
        );
        // `start` before the watcher runs: a short container's exit may be waiting on the connection
        // already, and its `die` (and an auto-removed one's `destroy`) must come after.
        self.volume_mount_events(&rec, "mount");
        self.container_event(h, "start", &[]);
        // The watcher next: it makes stdin writable, and waiters woken below may write at once.
        self.watch(h.clone(), conn);
        self.start_health(h);
        h.publish_wait();
        Ok(())
    }

    /// Puts the container's record on disk if it is not there yet, or its last commit was not durable (see
    /// `Handle::unsynced`).
    async fn sync_record(&self, h: &Handle) -> Result<()> {
        if !h.unsynced.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let store = self.inner.store.clone();
        let rec = h.record();
        let synced = tokio::task::spawn_blocking(move || store.put_with(&rec, true))
            .await
            .map_err(EngineError::join)
            .and_then(|r| r);
        if synced.is_err() {
            h.unsynced.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        synced
    }

    /// Docker's copy-up for empty volumes: mount the container's root here (the shim finds it mounted) and
    /// copy the image's content at each volume's path. Nothing to do, and no mount, in the common case.
    async fn copy_up_volumes(&self, rec: &super::Record, shim_cfg: &ShimConfig) -> Result<()> {
        let todo: Vec<(String, PathBuf)> = super::mounts::copy_up_candidates(&rec.mounts)
            .into_iter()
            .map(|m| (m.destination.clone(), PathBuf::from(&m.source)))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let ov = berth_sys::mount::Overlay {
            lower: shim_cfg.lower.clone(),
            upper: shim_cfg.upper.clone(),
            work: shim_cfg.work.clone(),
            volatile: shim_cfg.volatile,
        };
        let rootfs = shim_cfg.rootfs.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            if !berth_sys::mount::is_mounted(&rootfs) {
                berth_sys::mount::mount_overlay(&ov, &rootfs)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
            }
            for (dest, dir) in todo {
                super::mounts::copy_up(&rootfs, &dest, &dir)?;
            }
            Ok(())
        })
        .await
        .map_err(EngineError::join)?
    }

    /// Follow a running container's shim connection: fan output out to attached clients, record the exit.
    pub(crate) fn watch(&self, h: Arc<Handle>, mut conn: ShimConn) {
        let engine = self.clone();
        let (stdin_tx, mut stdin_rx) = tokio::sync::mpsc::channel::<Option<bytes::Bytes>>(64);
        if let Ok(mut s) = h.stdin.lock() {
            *s = Some(stdin_tx);
        }
        let (gone_tx, gone_rx) = tokio::sync::watch::channel(false);
        if let Ok(mut g) = h.shim_gone.lock() {
            *g = Some(gone_rx);
        }
        tokio::spawn(async move {
            let exit: Option<ExitStatus> = loop {
                tokio::select! {
                    frame = conn.next() => match frame {
                        Ok(Some((Kind::Stdout, d))) => h.output.send(&h.id, Output::Stdout(d.into())).await,
                        Ok(Some((Kind::Stderr, d))) => h.output.send(&h.id, Output::Stderr(d.into())).await,
                        Ok(Some((Kind::Exit, d))) => break serde_json::from_slice(&d).ok(),
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break None,
                    },
                    input = stdin_rx.recv() => match input {
                        Some(Some(data)) => { let _ = conn.send(Kind::Stdin, &data).await; }
                        Some(None) => {
                            let body = serde_json::to_vec(&Request::CloseStdin).unwrap_or_default();
                            let _ = conn.send(Kind::Control, &body).await;
                        }
                        None => {}
                    }
                }
            };
            // The shim cleans up after sending the exit, then closes the connection.
            tokio::spawn(async move {
                drain_until_closed(&mut conn).await;
                let _ = gone_tx.send(true);
            });
            engine.record_exit(&h, exit).await;
        });
    }

    /// Record how a container ended (from the shim's exit frame, or its exit file when the connection broke).
    pub(crate) async fn record_exit(&self, h: &Arc<Handle>, exit: Option<ExitStatus>) {
        let paths = self.paths(&h.id);
        let status = match exit {
            Some(s) => s,
            None => {
                // Give a shim that is finishing a moment to write its record (an auto-remove container's
                // shim writes none).
                let mut found = None;
                let tries = if h.record().host_config.auto_remove == Some(true) {
                    0
                } else {
                    50
                };
                for _ in 0..tries {
                    if paths.exit_file().exists() {
                        found = paths.read_exit();
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                found.unwrap_or(ExitStatus {
                    exit_code: 255,
                    oom_killed: false,
                    finished_at: now_rfc3339(),
                    error: Some("the container's shim exited without recording a status".into()),
                    started: true,
                })
            }
        };
        if let Ok(mut s) = h.stdin.lock() {
            *s = None;
        }
        h.update(|r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = status.exit_code;
            r.state.oom_killed = status.oom_killed;
            r.state.finished_at = status.finished_at.clone();
            r.state.error = status.error.clone().unwrap_or_default();
            r.exits += 1;
        });
        let undo = self.network_teardown(h).await;
        if !undo.is_empty() {
            tracing::warn!(id = %h.id, "network teardown: {}", undo.join("; "));
        }
        // An auto-removed container's end is not saved at all: its record is deleted next (a removal or
        // start that came first saves its own state), and after a crash start-up finds the shim's
        // `exit.json` and removes an auto-remove container that is not running.
        // (Auto-remove and a restart policy never go together: create refuses that.)
        if h.record().host_config.auto_remove != Some(true) {
            let _ = self.save(h);
        }
        self.drop_execs(&h.id);
        if status.oom_killed {
            self.container_event(h, "oom", &[]);
        }
        self.container_event(h, "die", &[("exitCode", status.exit_code.to_string())]);
        self.volume_mount_events(&h.record(), "unmount");
        h.output.finish(&h.id, Output::Exit(status.exit_code));
        h.publish_wait();
        if self.maybe_restart(h, status.exit_code) {
            return;
        }
        if h.record().host_config.auto_remove == Some(true) {
            self.auto_remove(h).await;
        }
    }
}

/// A command the runtime cannot run (at create, or when the init execs it at start), said the way Docker's
/// runtime says it, which is what clients match on (exit code 127 for a missing command, 126 for one that
/// cannot be executed).
fn docker_wording(e: EngineError, cmd: &str) -> EngineError {
    let msg = e.to_string();
    // Only the runtime's account of the exec itself; a mount that failed says so in its own words.
    if !msg.contains("exec: \"") {
        return e;
    }
    let prefix = "failed to create task for container: OCI runtime create failed: unable to start container process";
    if msg.contains("not found in $PATH") || msg.contains("executable file not found") {
        EngineError::Invalid(format!(
            "{prefix}: exec: \"{cmd}\": executable file not found in $PATH"
        ))
    } else if msg.contains("No such file or directory") || msg.contains("no such file or directory")
    {
        EngineError::Invalid(format!(
            "{prefix}: exec: \"{cmd}\": stat {cmd}: no such file or directory"
        ))
    } else if msg.contains("Permission denied") || msg.contains("permission denied") {
        EngineError::Invalid(format!("{prefix}: exec: \"{cmd}\": permission denied"))
    } else {
        e
    }
}

fn expect_ok(reply: berth_runtime::proto::Reply) -> Result<()> {
    if reply.ok {
        Ok(())
    } else {
        Err(EngineError::Internal(
            reply.error.unwrap_or_else(|| "the shim refused".into()),
        ))
    }
}

/// What a start reads from an image for a user: the image's layer directories (top-most first) and the user's
/// ids (resolved in the image's `/etc/passwd` and `/etc/group`).
#[derive(Clone)]
pub(crate) struct ImageView {
    lower: Vec<PathBuf>,
    ids: crate::user::Ids,
}

/// [`ImageView`]s by image id and user: an image's content never changes (its id is its digest), so a
/// start of another container of the same image and user finds its view here instead of in the store and
/// the image's files (a trip to a blocking thread, a database read and two files read through the
/// layers: a tenth of a millisecond and more here). A view one of whose layer directories has gone (the
/// image was removed, or a snapshot is missing, which the store's lookup unpacks again) is looked up
/// again. At most [`IMAGE_VIEWS`] are kept.
pub(crate) type ImageViews =
    std::sync::Mutex<std::collections::HashMap<(String, String), ImageView>>;

const IMAGE_VIEWS: usize = 64;

impl Engine {
    async fn image_view(&self, image_id: &str, user: &str) -> Result<ImageView> {
        let key = (image_id.to_string(), user.to_string());
        let known = self
            .inner
            .image_views
            .lock()
            .ok()
            .and_then(|v| v.get(&key).cloned());
        if let Some(view) = known.filter(|v| v.lower.iter().all(|d| d.is_dir())) {
            return Ok(view);
        }
        let (id, user) = key.clone();
        let (lower, ids) = self
            .images_blocking(move |s| {
                let image = s.get(&id)?;
                let lower = s.layer_dirs(&image.id)?;
                let ids = crate::user::resolve(&user, |p| s.read_file(&image.id, p).ok().flatten());
                Ok((lower, ids))
            })
            .await?;
        // A user the image does not have is said at every start.
        let view = ImageView { lower, ids: ids? };
        if let Ok(mut views) = self.inner.image_views.lock() {
            if views.len() >= IMAGE_VIEWS {
                views.clear();
            }
            views.insert(key, view.clone());
        }
        Ok(view)
    }

    /// The file a compiled seccomp program is read from by the shims: one per distinct program, named by its
    /// digest in [`Engine::seccomp_dir`] and written once (through a temporary file and a rename), instead
    /// of a copy in every container's state directory.
    fn seccomp_program_file(&self, program: &berth_runtime::filter::Program) -> Result<PathBuf> {
        let dir = self.seccomp_dir();
        let path = dir.join(format!("{}.bpf", program.digest));
        if path.exists() {
            return Ok(path);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        let tmp = dir.join(format!(".{}-{}.tmp", std::process::id(), super::new_id()));
        std::fs::write(&tmp, &program.bytes)
            .map_err(|e| EngineError::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EngineError::io(format!("rename {}", path.display()), e)
        })?;
        Ok(path)
    }

    /// Where compiled seccomp programs are kept (emptied at start-up: shims read them only as they start).
    pub(crate) fn seccomp_dir(&self) -> PathBuf {
        self.inner.cfg.exec_root.join("seccomp")
    }
}

/// Lets go of a spare network namespace (the daemon's descriptor) when the start is past the point where
/// the init joins it.
struct SpareGuard {
    engine: Engine,
    path: PathBuf,
}

impl Drop for SpareGuard {
    fn drop(&mut self) {
        self.engine.inner.spare_netns.release(&self.path);
    }
}

/// Reads a shim's connection until the shim closes it (it has cleaned up and is exiting), for up to a
/// minute (a shim that takes longer is stuck; what waits for it goes on).
pub(crate) async fn drain_until_closed(conn: &mut ShimConn) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, conn.next()).await {}
}

/// Hands the container to a shim (a spare, or one started now) and returns the connection its answer will
/// come on; the shim is reaped whenever it ends.
async fn hand_to_shim(
    shims: &crate::spare_shim::SpareShims,
    state_dir: &Path,
    config: &[u8],
) -> Result<ShimConn> {
    let (mut child, stream) = shims
        .shim_for(state_dir, config)
        .await
        .map_err(|e| EngineError::io("run the shim", e))?;
    // Reap the shim whenever it ends, so it never lingers as a zombie of the daemon.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(ShimConn::from_stream(stream))
}

fn log_opt(rec: &super::Record, key: &str) -> Option<String> {
    rec.host_config
        .log_config
        .as_ref()?
        .config
        .as_ref()?
        .get(key)
        .cloned()
}

/// Docker's `ConsoleSize` ([height, width]) as (rows, columns), when both are set.
pub fn console_size(v: Option<&[usize]>) -> Option<(u16, u16)> {
    match v {
        Some([h, w]) if *h > 0 && *w > 0 => Some((
            (*h).min(u16::MAX as usize) as u16,
            (*w).min(u16::MAX as usize) as u16,
        )),
        _ => None,
    }
}

/// `10m`, `512k`, `1g`, plain bytes (Docker's `max-size` units, 1000-based like go-units FromHumanSize).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000u64),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        Some('g') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as u64)
        .ok_or_else(|| EngineError::Invalid(format!("invalid size: '{s}'")))
}

fn spec_input(
    engine: &Engine,
    rec: &super::Record,
    dir: &Path,
    ids: &crate::user::Ids,
    network: spec::NetworkMode,
) -> Result<SpecInput> {
    let hc = &rec.host_config;
    let cfg = &rec.config;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let mut mounts = engine.spec_mounts(&rec.mounts)?;
    for (dest, opts) in hc.tmpfs.clone().unwrap_or_default() {
        mounts.push(spec::MountSpec {
            destination: dest,
            source: "tmpfs".into(),
            kind: spec::MountKind::Tmpfs,
            readonly: false,
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
            propagation: None,
        });
    }
    let sec = hc.security_opt.clone().unwrap_or_default();
    let mut seccomp = spec::SeccompMode::Default;
    let mut no_new_privileges = false;
    for s in &sec {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s.as_str(), ""));
        match k {
            "no-new-privileges" => no_new_privileges = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => seccomp = spec::SeccompMode::Unconfined,
            "seccomp" => {
                // The docker CLI sends the profile's content; a path (from our own CLI or the API) is read here.
                seccomp = if v.trim_start().starts_with('{') {
                    spec::SeccompMode::Custom(v.to_string())
                } else {
                    spec::SeccompMode::Custom(std::fs::read_to_string(v).map_err(|e| {
                        EngineError::Invalid(format!("opening seccomp profile ({v}) failed: {e}"))
                    })?)
                }
            }
            "apparmor" | "label" => {}
            _ => {
                return Err(EngineError::Invalid(format!(
                    "invalid --security-opt: {s:?}"
                )))
            }
        }
    }
    let ulimits: Vec<spec::Ulimit> = hc
        .ulimits
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|u| spec::Ulimit {
            name: u.name.unwrap_or_default(),
            soft: u.soft.unwrap_or(0),
            hard: u.hard.unwrap_or(0),
        })
        .collect();
    check_ulimits(&ulimits)?;
    let dev_root = &engine.inner.cfg.dev_root;
    let mut devices = if hc.privileged == Some(true) {
        super::devices::host_devices(dev_root)
    } else {
        Vec::new()
    };
    for m in hc.devices.iter().flatten() {
        devices.extend(super::devices::mapped_devices(dev_root, m)?);
    }
    let mut env = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) && !ids.home.is_empty() {
        env.push(format!("HOME={}", ids.home));
    }
    Ok(SpecInput {
        id: rec.id.clone(),
        rootfs: dir.join("rootfs"),
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        args,
        env,
        cwd: cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        uid: ids.uid,
        gid: ids.gid,
        additional_gids: ids.additional_gids.clone(),
        hostname: cfg.hostname.clone().unwrap_or_default(),
        tty: cfg.tty.unwrap_or(false),
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        no_new_privileges,
        seccomp,
        mounts,
        resources: spec::Resources {
            memory: hc.memory.unwrap_or(0),
            memory_swap: hc.memory_swap.unwrap_or(0),
            memory_reservation: hc.memory_reservation.unwrap_or(0),
            nano_cpus: hc.nano_cpus.unwrap_or(0),
            cpu_shares: hc.cpu_shares.unwrap_or(0),
            cpu_quota: hc.cpu_quota.unwrap_or(0),
            cpu_period: hc.cpu_period.unwrap_or(0),
            cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: hc.cpuset_mems.clone().unwrap_or_default(),
            pids_limit: hc.pids_limit.filter(|p| *p != 0),
            blkio_weight: hc.blkio_weight.unwrap_or(0),
            oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
            memory_swappiness: hc.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64),
        },
        ulimits,
        cgroups_path: format!(
            "{}/{}",
            engine.inner.cfg.cgroup_parent.trim_end_matches('/'),
            rec.id
        ),
        network,
        sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
        shm_size: hc.shm_size.unwrap_or(0).max(0) as u64,
        devices,
        etc_files: vec![
            (
                PathBuf::from(&rec.resolv_conf_path),
                "/etc/resolv.conf".into(),
            ),
            (PathBuf::from(&rec.hostname_path), "/etc/hostname".into()),
            (PathBuf::from(&rec.hosts_path), "/etc/hosts".into()),
        ],
        available_capabilities: bounding_caps(),
        init_binary: if hc.init == Some(true) {
            engine.inner.cfg.init_binary.clone()
        } else {
            None
        },
        ..Default::default()
    })
}

/// A hard limit above the daemon's own can only be set with CAP_SYS_RESOURCE; without it the runtime fails
/// with a bare EPERM, so say what is wrong before trying.
fn check_ulimits(ulimits: &[spec::Ulimit]) -> Result<()> {
    const CAP_SYS_RESOURCE: u64 = 1 << 24;
    let can_raise = effective_caps().is_some_and(|c| c & CAP_SYS_RESOURCE != 0);
    if can_raise {
        return Ok(());
    }
    for u in ulimits {
        let Some(res) = rlimit_resource(&u.name) else {
            continue;
        };
        let Ok((_, hard)) = nix::sys::resource::getrlimit(res) else {
            continue;
        };
        let want = u.hard.max(u.soft);
        if want >= 0 && hard != nix::sys::resource::RLIM_INFINITY && want as u64 > hard {
            return Err(EngineError::Invalid(format!(
                "ulimit {}={}:{} is above the daemon's hard limit {hard}, and the daemon lacks CAP_SYS_RESOURCE to raise it: ask for at most {hard}",
                u.name, u.soft, u.hard
            )));
        }
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource::*;
    Some(match name {
        "nofile" => RLIMIT_NOFILE,
        "nproc" => RLIMIT_NPROC,
        "core" => RLIMIT_CORE,
        "memlock" => RLIMIT_MEMLOCK,
        "stack" => RLIMIT_STACK,
        "fsize" => RLIMIT_FSIZE,
        "data" => RLIMIT_DATA,
        "as" => RLIMIT_AS,
        "cpu" => RLIMIT_CPU,
        "locks" => RLIMIT_LOCKS,
        "sigpending" => RLIMIT_SIGPENDING,
        "msgqueue" => RLIMIT_MSGQUEUE,
        "nice" => RLIMIT_NICE,
        "rtprio" => RLIMIT_RTPRIO,
        "rttime" => RLIMIT_RTTIME,
        "rss" => RLIMIT_RSS,
        _ => return None,
    })
}

/// The daemon's effective capabilities (`CapEff`).
fn effective_caps() -> Option<u64> {
    static CAPS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| own_caps("CapEff:"))
}

/// The capability bounding set of this process (`CapBnd`): a container can never get more, and hosts
/// like this one lack some (CAP_SYS_RESOURCE), so privileged containers ask only for what exists.
pub(crate) fn bounding_caps() -> Option<u64> {
    static CAPS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| own_caps("CapBnd:"))
}

/// A capability set of this process from `/proc/self/status` (`field` is `CapEff:`, `CapBnd:`...). Read
/// once per set by the callers: the daemon never changes its capabilities, and reading and parsing the
/// file at every start was a tenth of the start's work here.
fn own_caps(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix(field))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// `-v /host:/ctr[:ro|rw][,propagation]` → a bind mount.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker_log_opts() {
        assert_eq!(parse_size("10m").unwrap(), 10_000_000);
        assert_eq!(parse_size("1k").unwrap(), 1000);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn commands_that_cannot_run_get_the_runtime_wording() {
        // What the init says when its exec fails (`berth_sys::launch`), as the start's error.
        let said = |msg: &str| EngineError::Internal(format!("start: {msg}"));
        let prefix = "failed to create task for container: OCI runtime create failed: unable to start container process: ";
        let cases = [
            (
                "nope",
                "exec: \"nope\": executable file not found in $PATH",
                "exec: \"nope\": executable file not found in $PATH",
            ),
            (
                "/bin/nope",
                "exec: \"/bin/nope\": no such file or directory",
                "exec: \"/bin/nope\": stat /bin/nope: no such file or directory",
            ),
            (
                "/etc",
                "exec: \"/etc\": permission denied",
                "exec: \"/etc\": permission denied",
            ),
        ];
        for (cmd, init, docker) in cases {
            let e = docker_wording(said(init), cmd).to_string();
            assert_eq!(e, format!("{prefix}{docker}"));
        }
        // Anything else keeps its own words.
        let e = docker_wording(said("mount /proc: operation not permitted"), "true").to_string();
        assert!(e.ends_with("mount /proc: operation not permitted"), "{e}");
    }
}
