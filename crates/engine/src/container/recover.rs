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
                _ => {}
            }
        }
        self.restart_on_boot().await;
        Ok(())
    }
}
