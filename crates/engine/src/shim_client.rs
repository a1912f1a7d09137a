//! The daemon's side of the shim protocol ([`berth_runtime::proto`]) over tokio.

use crate::error::{EngineError, Result};
use berth_runtime::proto::{self, Decoder, Kind, Reply, Request};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub struct ShimConn {
    stream: UnixStream,
    decoder: Decoder,
    pending: std::collections::VecDeque<(Kind, Vec<u8>)>,
}

impl ShimConn {
    pub async fn connect(socket: &Path) -> Result<ShimConn> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| EngineError::io(format!("connect to shim {}", socket.display()), e))?;
        Ok(ShimConn::from_stream(stream))
    }

    /// A connection already made: the one a shim is handed its container on.
    pub fn from_stream(stream: UnixStream) -> ShimConn {
        ShimConn {
            stream,
            decoder: Decoder::default(),
            pending: Default::default(),
        }
    }

    /// Send a request and wait for its reply; output frames that arrive meanwhile are kept for [`Self::next`].
    pub async fn request(&mut self, req: &Request) -> Result<Reply> {
        let body = serde_json::to_vec(req)
            .map_err(|e| EngineError::Internal(format!("encode shim request: {e}")))?;
        self.send(Kind::Control, &body).await?;
        self.reply().await
    }

    /// Sends `reqs` in one write without waiting for their replies (read them with [`Self::reply`]).
    pub async fn send_requests(&mut self, reqs: &[Request]) -> Result<()> {
        let mut frames = Vec::new();
        for req in reqs {
            let body = serde_json::to_vec(req)
                .map_err(|e| EngineError::Internal(format!("encode shim request: {e}")))?;
            frames.extend_from_slice(&proto::encode(Kind::Control, &body));
        }
        self.stream
            .write_all(&frames)
            .await
            .map_err(|e| EngineError::io("write to shim", e))
    }

    /// The reply to the oldest request not yet answered (output frames read meanwhile are kept); on the
    /// connection a shim was handed its container on, the first is the shim's account of the creation.
    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            match self.read_frame().await? {
                Some((Kind::Control, payload)) => {
                    return serde_json::from_slice(&payload)
                        .map_err(|e| EngineError::Internal(format!("bad reply from shim: {e}")));
                }
                Some(other) => self.pending.push_back(other),
                None => {
                    return Err(EngineError::Internal(
                        "the container's shim went away".into(),
                    ))
                }
            }
        }
    }

    pub async fn send(&mut self, kind: Kind, data: &[u8]) -> Result<()> {
        self.stream
            .write_all(&proto::encode(kind, data))
            .await
            .map_err(|e| EngineError::io("write to shim", e))
    }

    /// The next frame (output or exit); `None` at end of stream.
    pub async fn next(&mut self) -> Result<Option<(Kind, Vec<u8>)>> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        self.read_frame().await
    }

    async fn read_frame(&mut self) -> Result<Option<(Kind, Vec<u8>)>> {
        loop {
            if let Some(f) = self
                .decoder
                .next_frame()
                .map_err(|e| EngineError::Internal(format!("shim protocol: {e}")))?
            {
                return Ok(Some(f));
            }
            let buf = self.decoder.buffer();
            buf.reserve(64 * 1024);
            let n = self
                .stream
                .read_buf(buf)
                .await
                .map_err(|e| EngineError::io("read from shim", e))?;
            if n == 0 {
                return Ok(None);
            }
        }
    }
}
