//! Start-up: load every container record and reconcile it with what is really there. A container whose shim
//! still answers is reattached (its output flows to new attach clients again); one that ended while the daemon
//! was away gets the status its shim recorded.

use super::start::drain_until_closed;
use super::{Handle, Status};
use crate::error::{EngineError, Result};
use crate::shim_client::ShimConn;
use crate::Engine;
use berth_runtime::proto::Request;

impl Engine {
    pub(crate) async fn recover(&self) -> Result<()> {
        let (records, unreadable) = self.inner.store.all()?;
        // Every record's id, an unreadable one's too: its files are kept for it.
        let known: std::collections::HashSet<String> = records
            .iter()
            .map(|r| r.id.clone())
            .chain(unreadable)
            .collect();
        self.remove_orphan_files(&known).await;
        let mut handles = Vec::new();
        for rec in records {
            // A create commits its record while it makes the directory: a crash between the two is
            // completed here (the files come last).
            if !self.paths(&rec.id).dir.join("resolv.conf").exists() {
                let make = self.dir_maker(&rec, false);
                let made = tokio::task::spawn_blocking(move || make(None))
                    .await
                    .map_err(EngineError::join)
                    .and_then(|r| r);
                if let Err(e) = made {
                    tracing::warn!(id = %rec.id, "complete the container's directory: {e}");
                }
            }
            let h = Handle::new(rec.clone());
            self.inner
                .containers
                .write()
                .await
                .insert(rec.id.clone(), h.clone());
            match rec.state.status {
                Status::Running | Status::Paused | Status::Restarting => {
                    let socket = self.paths(&rec.id).socket;
                    let reattached = async {
                        let mut conn = ShimConn::connect(&socket).await.ok()?;
                        let reply = conn
                            .request(&Request::Attach {
                                stdout: true,
                                stderr: true,
                                stdin: rec.config.open_stdin.unwrap_or(false),
                            })
                            .await
                            .ok()?;
                        reply.ok.then_some(conn)
                    }
                    .await;
                    match reattached {
                        Some(conn) => {
                            tracing::info!(id = %rec.id, "reattached to running container");
                            self.watch(h.clone(), conn);
                        }
                        None => {
                            tracing::info!(id = %rec.id, "container ended while the daemon was down");
                            self.record_exit(&h, None).await;
                        }
                    }
                }
                Status::Removing => {
                    let _ = self.remove(&rec.id, true, false).await;
                }
                Status::Created | Status::Exited | Status::Dead => {
                    // A daemon killed in the middle of a start leaves a shim the record does not know about.
                    self.adopt_or_end_stray_shim(&h).await;
                }
            }
            handles.push(h);
        }
        // As dockerd does: an auto-remove container that is not running now is removed (its end, or the
        // removal itself, was not on disk yet when the daemon stopped).
        for h in handles {
            let rec = h.record();
            if rec.host_config.auto_remove == Some(true)
                && matches!(
                    rec.state.status,
                    Status::Created | Status::Exited | Status::Dead
                )
            {
                if let Err(e) = self.remove(&h.id, true, true).await {
                    tracing::warn!(id = %h.id, "remove an auto-remove container at start-up: {e}");
                }
            }
        }
        self.restart_on_boot().await;
        Ok(())
    }

    /// If a shim still answers for a container recorded as not running: when its process was started, the
    /// start happened and only its record was lost, so the container is running and is reattached; otherwise
    /// the half-made container is ended (its shim then cleans up and exits).
    async fn adopt_or_end_stray_shim(&self, h: &std::sync::Arc<Handle>) {
        let paths = self.paths(&h.id);
        let state = match ShimConn::connect(&paths.socket).await {
            Ok(mut conn) => match conn.request(&Request::State).await {
                Ok(state) => Some((conn, state)),
                // Answering but not serving: the shim is finishing; its exit record follows.
                Err(_) => {
                    let drained = drain_until_closed(&mut conn);
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drained).await;
                    None
                }
            },
            Err(_) => None,
        };
        let Some((mut conn, state)) = state else {
            // A start that was not on disk yet, of a container that has ended since: its shim's record says
            // the program was started, and it is not the exit recorded last.
            let exit = paths.read_exit();
            let rec = h.record();
            if let Some(exit) = exit.filter(|e| e.started && e.finished_at != rec.state.finished_at)
            {
                tracing::info!(id = %h.id, "a container started just before the daemon stopped has ended");
                h.update(|r| {
                    r.state.status = Status::Running;
                    r.manually_stopped = false;
                });
                self.record_exit(h, Some(exit)).await;
            }
            return;
        };
        if state.started {
            let stdin = h.record().config.open_stdin.unwrap_or(false);
            if let Ok(reply) = conn
                .request(&Request::Attach {
                    stdout: true,
                    stderr: true,
                    stdin,
                })
                .await
            {
                if reply.ok {
                    tracing::info!(id = %h.id, "adopted a container started just before the daemon stopped");
                    h.update(|r| {
                        r.state.status = Status::Running;
                        r.manually_stopped = false;
                        r.state.pid = state.pid.unwrap_or(0);
                        r.state.started_at = super::now_rfc3339();
                        r.state.exit_code = 0;
                        r.state.error.clear();
                    });
                    let _ = self.save(h);
                    self.watch(h.clone(), conn);
                    h.publish_wait();
                    return;
                }
            }
        }
        tracing::info!(id = %h.id, "ending a container whose start was interrupted");
        let _ = conn.request(&Request::Kill { signal: 9 }).await;
        // Until the shim has cleaned up and gone: a removal may follow.
        drain_until_closed(&mut conn).await;
    }
}
