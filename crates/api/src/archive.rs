//! `HEAD`, `GET` and `PUT /containers/{id}/archive` (`docker cp`): a path's stat in the
//! `X-Docker-Container-Path-Stat` header (base64 of Docker's JSON), its tar, and uploads extracted into a
//! directory. Uploads are always read to their end, also when they are refused, so that the client sees the
//! daemon's message rather than a broken pipe.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query as Q, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::container::archive::{ExtractRequest, PathStat};
use bytes::Bytes;
use futures_util::StreamExt;

/// The response header carrying a path's stat.
pub const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// The header value: base64 (standard alphabet) of the stat's JSON.
pub fn encode_stat(stat: &PathStat) -> String {
    let json = serde_json::to_vec(stat).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

fn stat_value(stat: &PathStat) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(&encode_stat(stat)).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("encode path stat: {e}"),
    })
}

fn path_of(q: &Query) -> String {
    q.get("path").cloned().unwrap_or_default()
}

pub async fn head(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Response> {
    let stat = st.engine.stat_path(&id, &path_of(&q)).await?;
    Ok(([(STAT_HEADER, stat_value(&stat)?)], ()).into_response())
}

pub async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Response> {
    let path = path_of(&q);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let engine = st.engine.clone();
    let err_tx = tx.clone();
    tokio::spawn(async move {
        let writer = crate::system::ChannelWriter(tx);
        if let Err(e) = engine.archive_path(&id, &path, ready_tx, writer).await {
            // The client sees a cut stream (no end-of-archive marker), never a complete-looking tar.
            let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stat = ready_rx.await.map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "the archive task ended early".into(),
    })??;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            ),
            (
                header::HeaderName::from_static("x-docker-container-path-stat"),
                stat_value(&stat)?,
            ),
        ],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}

pub async fn put(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
    body: Body,
) -> ApiResult<StatusCode> {
    let req = ExtractRequest {
        path: path_of(&q),
        no_overwrite_dir_non_dir: params::flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: params::flag(&q, "copyUIDGID"),
    };
    let (reader, drained) = draining_reader(body);
    let res = st.engine.extract_to_dir(&id, req, reader).await;
    if res.is_err() {
        let _ = drained.await;
    }
    res?;
    Ok(StatusCode::OK)
}

/// A blocking reader of a request body. The body is pulled by a task that keeps reading (and discarding) it
/// when the reader is dropped early; the handle resolves once the whole body was read.
pub fn draining_reader(body: Body) -> (ChannelReader, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let task = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut forward = true;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other);
            let failed = chunk.is_err();
            if forward && tx.send(chunk).await.is_err() {
                forward = false;
            }
            if failed {
                return;
            }
        }
    });
    (
        ChannelReader {
            rx,
            buf: Bytes::new(),
        },
        task,
    )
}

/// The reading end of [`draining_reader`]; use it from a blocking thread.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    buf: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_header_decodes_like_dockers_client() {
        let stat = PathStat {
            name: "etc".into(),
            size: 4096,
            mode: 0x8000_01ed,
            mtime: "2024-01-02T03:04:05Z".into(),
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encode_stat(&stat))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "etc");
        assert_eq!(v["mode"], 2_147_484_141u64);
        assert_eq!(v["linkTarget"], "");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_abandoned_upload_is_still_read_to_its_end() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..100).map(|_| Ok(Bytes::from(vec![7u8; 1000]))).collect();
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let (mut reader, drained) = draining_reader(body);
        let first = tokio::task::spawn_blocking(move || {
            let mut b = [0u8; 10];
            std::io::Read::read_exact(&mut reader, &mut b).map(|()| b)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(first, [7u8; 10]);
        tokio::time::timeout(std::time::Duration::from_secs(5), drained)
            .await
            .expect("drained")
            .unwrap();
    }
}
