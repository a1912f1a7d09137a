//! Start-up: load every container record and reconcile it with what is really there. A container whose shim
//! still answers is reattached (its output flows to new attach clients again); one that ended while the daemon
//! was away gets the status its shim recorded.

use super::{Handle, Status};
use crate::error::Result;
use crate::shim_client::ShimConn;
use crate::Engine;
use berth_runtime::proto::Request;

impl Engine {
    pub(crate) async fn recover(&self) -> Result<()> {
        let records = self.inner.store.all()?;
        for rec in records {
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
                            self.watch(h, conn);
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
        }
        self.restart_on_boot().await;
        Ok(())
    }

    /// If a shim still answers for a container recorded as not running: when its process was started, the
    /// start happened and only its record was lost, so the container is running and is reattached; otherwise
    /// the half-made container is ended (its shim then cleans up and exits).
    async fn adopt_or_end_stray_shim(&self, h: &std::sync::Arc<Handle>) {
        let socket = self.paths(&h.id).socket;
        let Ok(mut conn) = ShimConn::connect(&socket).await else {
            return;
        };
        let Ok(state) = conn.request(&Request::State).await else {
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
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Ok(Ok(Some((kind, _)))) = tokio::time::timeout_at(deadline, conn.next()).await {
            if kind == berth_runtime::proto::Kind::Exit {
                break;
            }
        }
    }
}
