//! Attaching: a subscription to a container's output (and, when it keeps stdin open, a way to write to it).

use super::{Handle, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// One piece of a container's output, or its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The container exited with this code; no more output follows.
    Exit(i32),
}

/// How many chunks (up to 64 KiB each) wait for one attached client before the container's output waits.
const QUEUE: usize = 64;
/// How long the container's output waits for an attached client that takes nothing before that client is
/// dropped (its stream ends; the log keeps everything). Shorter than the shim's own timeout for the daemon.
const STALL: Duration = Duration::from_secs(5);

/// A container's output fan-out. Each attached client has its own queue, and when one is full the output
/// waits for that client, as Docker's does: an attached client that is merely slower than the container
/// receives every byte (the container's writes are slowed down instead). A client that takes nothing for
/// [`STALL`] is dropped, so that a stuck client cannot stop a container.
#[derive(Default)]
pub(crate) struct Fanout {
    subs: Mutex<Vec<mpsc::Sender<Output>>>,
}

impl Fanout {
    pub(crate) fn subscribe(&self) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut subs) = self.subs.lock() {
            subs.push(tx);
        }
        rx
    }

    /// Hand `o` to every attached client, waiting for those whose queue is full, all within one [`STALL`]
    /// (so that however many clients are stuck, the shim's writes never wait for longer).
    pub(crate) async fn send(&self, id: &str, o: Output) {
        let subs: Vec<mpsc::Sender<Output>> = match self.subs.lock() {
            Ok(mut subs) => {
                subs.retain(|s| !s.is_closed());
                subs.clone()
            }
            Err(_) => return,
        };
        let deadline = tokio::time::Instant::now() + STALL;
        let mut dropped = Vec::new();
        for s in &subs {
            let o = match s.try_send(o.clone()) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Closed(_)) => continue,
                Err(mpsc::error::TrySendError::Full(o)) => o,
            };
            if !matches!(
                tokio::time::timeout_at(deadline, s.send(o)).await,
                Ok(Ok(()))
            ) {
                warn_stalled(id);
                dropped.push(s.clone());
            }
        }
        if !dropped.is_empty() {
            if let Ok(mut subs) = self.subs.lock() {
                subs.retain(|s| !dropped.iter().any(|d| d.same_channel(s)));
            }
        }
    }

    /// Hand the container's exit to every attached client and let them go: an attachment ends at the exit. It
    /// does not wait: a client whose queue is full gets the exit once it has taken what is queued, or is
    /// detached after [`STALL`], without holding up the recording of the exit.
    pub(crate) fn finish(&self, id: &str, o: Output) {
        let subs = match self.subs.lock() {
            Ok(mut subs) => std::mem::take(&mut *subs),
            Err(_) => return,
        };
        for s in subs {
            if let Err(mpsc::error::TrySendError::Full(o)) = s.try_send(o.clone()) {
                let id = id.to_string();
                tokio::spawn(async move {
                    if tokio::time::timeout(STALL, s.send(o)).await.is_err() {
                        warn_stalled(&id);
                    }
                });
            }
        }
    }
}

fn warn_stalled(id: &str) {
    tracing::warn!(%id, "an attached client took no output for {}s: detached it", STALL.as_secs());
}

/// A live attachment.
pub struct AttachStream {
    pub handle: Arc<Handle>,
    rx: mpsc::Receiver<Output>,
    /// Whether the container was running (or about to be started) when attached.
    pub live: bool,
}

impl AttachStream {
    /// The next output; `None` once the container has exited (or was not running when attached).
    pub async fn next(&mut self) -> Option<Output> {
        if !self.live {
            return None;
        }
        match self.rx.recv().await {
            Some(Output::Exit(_)) | None => None,
            Some(o) => Some(o),
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
