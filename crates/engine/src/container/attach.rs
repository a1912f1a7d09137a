//! Attaching: a subscription to a container's output (and, when it keeps stdin open, a way to write to it).

use super::{Handle, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::broadcast;

/// One piece of a container's output, or its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The container exited with this code; no more output follows.
    Exit(i32),
}

/// A live attachment.
pub struct AttachStream {
    pub handle: Arc<Handle>,
    rx: broadcast::Receiver<Output>,
    /// Whether the container was running (or about to be started) when attached.
    pub live: bool,
}

impl AttachStream {
    /// The next output; `None` once the container has exited (or was not running when attached).
    pub async fn next(&mut self) -> Option<Output> {
        if !self.live {
            return None;
        }
        loop {
            match self.rx.recv().await {
                Ok(Output::Exit(_)) => return None,
                Ok(o) => return Some(o),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(id = %self.handle.id, "attached client fell behind; {n} chunks dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Handle {
    /// Write to the container's stdin (`None` closes it). Without an open stdin the data is dropped.
    /// Input that arrives before the container has started (a client attaches, then starts it) waits for
    /// the start.
    pub async fn write_stdin(&self, data: Option<Bytes>) -> Result<()> {
        let mut rx = self.wait.subscribe();
        loop {
            let tx = self.stdin.lock().ok().and_then(|s| s.clone());
            if let Some(tx) = tx {
                return tx
                    .send(data)
                    .await
                    .map_err(|_| EngineError::Conflict("container is not running".into()));
            }
            if !matches!(
                self.record().state.status,
                Status::Created | Status::Restarting
            ) {
                return Ok(());
            }
            if tokio::time::timeout(std::time::Duration::from_secs(60), rx.changed())
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

impl Engine {
    /// Attach to a container: created containers stream from their start, running ones from now on.
    pub async fn attach(&self, name_or_id: &str) -> Result<AttachStream> {
        let h = self.lookup(name_or_id).await?;
        let rx = h.output.subscribe();
        let status = h.record().state.status;
        let live = matches!(
            status,
            Status::Created | Status::Running | Status::Restarting
        );
        Ok(AttachStream {
            handle: h,
            rx,
            live,
        })
    }
}
