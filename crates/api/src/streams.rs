//! Streams: hijacked attach, and logs.
//!
//! Attach upgrades the connection (`101 Switching Protocols`, `Upgrade: tcp`) when asked, or answers 200 and
//! streams the body (old clients). Without a TTY every chunk is framed with Docker's 8-byte stdcopy header
//! (stream 1 stdout, 2 stderr); with a TTY the bytes go raw. Stdin read from the client is forwarded to the
//! container; a half-close closes the container's stdin.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query as Q, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::container::{AttachStream, LogsOptions, Output};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let l = (data.len() as u32).to_be_bytes();
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0, l[0], l[1], l[2], l[3]]);
    v.extend_from_slice(data);
    v
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

pub async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
    mut req: Request,
) -> ApiResult<Response> {
    let want_stdout = params::flag(&q, "stdout");
    let want_stderr = params::flag(&q, "stderr");
    let want_stdin = params::flag(&q, "stdin");
    let stream = params::flag(&q, "stream");
    let logs = params::flag(&q, "logs");
    let rec = st.engine.inspect(&id).await?;
    let tty = rec.config.tty.unwrap_or(false);
    let attach = if stream {
        Some(st.engine.attach(&id).await?)
    } else {
        None
    };
    let past = if logs {
        let opts = LogsOptions {
            stdout: want_stdout,
            stderr: want_stderr,
            ..Default::default()
        };
        Some(st.engine.logs(&id, opts).await?)
    } else {
        None
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let filter = move |o: &Output| -> Option<Vec<u8>> {
        match o {
            Output::Stdout(d) if want_stdout => Some(if tty { d.to_vec() } else { frame(1, d) }),
            Output::Stderr(d) if want_stderr => Some(if tty { d.to_vec() } else { frame(2, d) }),
            _ => None,
        }
    };
    if upgrade {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let io = TokioIo::new(upgraded);
            let (rd, mut wr) = tokio::io::split(io);
            if let Some(mut past) = past {
                while let Some(l) = past.recv().await {
                    let bytes = if tty {
                        l.data
                    } else {
                        frame(if l.stderr { 2 } else { 1 }, &l.data)
                    };
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
            let Some(mut att) = attach else {
                let _ = wr.shutdown().await;
                return;
            };
            let stdin_task = if want_stdin {
                Some(spawn_stdin(&att, rd))
            } else {
                None
            };
            pump(&mut att, &mut wr, filter).await;
            let _ = wr.flush().await;
            let _ = wr.shutdown().await;
            if let Some(t) = stdin_task {
                t.abort();
            }
        });
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(tty)),
        );
        return Ok(resp);
    }
    // No upgrade: stream the output as the response body.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    tokio::spawn(async move {
        if let Some(mut past) = past {
            while let Some(l) = past.recv().await {
                let bytes = if tty {
                    l.data
                } else {
                    frame(if l.stderr { 2 } else { 1 }, &l.data)
                };
                if tx.send(Ok(bytes)).await.is_err() {
                    return;
                }
            }
        }
        if let Some(mut att) = attach {
            while let Some(o) = att.next().await {
                if let Some(b) = filter(&o) {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, content_type(tty))],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}

/// Forward what the client writes to the container's stdin; the client's half-close closes it.
fn spawn_stdin<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    att: &AttachStream,
    mut rd: R,
) -> tokio::task::JoinHandle<()> {
    let handle = att.handle.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = handle.write_stdin(None).await;
                    return;
                }
                Ok(n) => {
                    if handle
                        .write_stdin(Some(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    })
}

async fn pump<W: tokio::io::AsyncWrite + Unpin>(
    att: &mut AttachStream,
    wr: &mut W,
    filter: impl Fn(&Output) -> Option<Vec<u8>>,
) {
    while let Some(o) = att.next().await {
        if let Some(b) = filter(&o) {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
    }
}

pub async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Response> {
    let stdout = params::flag(&q, "stdout");
    let stderr = params::flag(&q, "stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail value: {t}")))?
                .max(0) as usize,
        ),
    };
    let since = q
        .get("since")
        .filter(|s| !s.is_empty() && *s != "0")
        .map(|s| params::unix_nanos(s))
        .transpose()?;
    let until = q
        .get("until")
        .filter(|s| !s.is_empty() && *s != "0")
        .map(|s| params::unix_nanos(s))
        .transpose()?;
    let timestamps = params::flag(&q, "timestamps");
    let rec = st.engine.inspect(&id).await?;
    let tty = rec.config.tty.unwrap_or(false);
    let opts = LogsOptions {
        stdout,
        stderr,
        follow: params::flag(&q, "follow"),
        tail,
        since,
        until,
    };
    let mut rx = st.engine.logs(&id, opts).await?;
    let (tx, body) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    tokio::spawn(async move {
        while let Some(l) = rx.recv().await {
            let mut data = Vec::new();
            if timestamps {
                data.extend_from_slice(l.time.as_bytes());
                data.push(b' ');
            }
            data.extend_from_slice(&l.data);
            let bytes = if tty {
                data
            } else {
                frame(if l.stderr { 2 } else { 1 }, &data)
            };
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, content_type(tty))],
        Body::from_stream(crate::system::tokio_stream_from(body)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_have_docker_header() {
        assert_eq!(
            super::frame(2, b"ab"),
            vec![2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']
        );
    }
}
