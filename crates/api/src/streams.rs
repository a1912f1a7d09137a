//! Streams: hijacked attach (containers and execs), and logs.
//!
//! Attach upgrades the connection (`101 Switching Protocols`, `Upgrade: tcp`) when asked, or answers 200 and
//! streams the body (old clients). Without a TTY every chunk is framed with Docker's 8-byte stdcopy header
//! (stream 1 stdout, 2 stderr); with a TTY the bytes go raw. Stdin read from the client is forwarded to the
//! process; a half-close closes its stdin; the detach keys (default ctrl-p ctrl-q) end the attachment and
//! leave the process running.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query as Q, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::container::{LogsOptions, Output};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// ctrl-p ctrl-q, Docker's default.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let l = (data.len() as u32).to_be_bytes();
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0, l[0], l[1], l[2], l[3]]);
    v.extend_from_slice(data);
    v
}

pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The bytes to send for one piece of output, or None when that stream is not wanted.
pub fn encode_output(o: &Output, tty: bool, want_out: bool, want_err: bool) -> Option<Vec<u8>> {
    match o {
        Output::Stdout(d) if want_out => Some(if tty { d.to_vec() } else { frame(1, d) }),
        Output::Stderr(d) if want_err => Some(if tty { d.to_vec() } else { frame(2, d) }),
        _ => None,
    }
}

/// Docker's detach-key syntax: comma-separated `ctrl-X` or single characters.
pub fn parse_detach_keys(s: &str) -> ApiResult<Vec<u8>> {
    let bad = || ApiError::bad_request(format!("Invalid detach keys ({s}) provided"));
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        if let Some(k) = p.strip_prefix("ctrl-") {
            let mut c = k.chars();
            let (Some(ch), None) = (c.next(), c.next()) else {
                return Err(bad());
            };
            let code = match ch {
                'a'..='z' => ch as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(bad()),
            };
            out.push(code);
        } else if p.len() == 1 && p.is_ascii() {
            out.push(p.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Scans stdin for the detach sequence, holding back a partial match.
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }
    /// The bytes to pass on, and whether the sequence was completed (the rest is then dropped).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    if self.keys.len() == 1 {
                        return (out, true);
                    }
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Pump a hijacked connection: output from `output` to the client, the client's input to `stdin`.
pub async fn attach_io<IO: AsyncRead + AsyncWrite + Send + 'static>(
    io: IO,
    mut output: mpsc::Receiver<Output>,
    stdin: Option<mpsc::Sender<Option<Bytes>>>,
    tty: bool,
    want_out: bool,
    want_err: bool,
    detach_keys: Vec<u8>,
) {
    let (mut rd, mut wr) = tokio::io::split(io);
    // Detaching is signalled explicitly; a finished stdin (or none at all) is not a detach.
    let detach = std::sync::Arc::new(tokio::sync::Notify::new());
    let detach_tx = detach.clone();
    let input = stdin.map(|tx| {
        tokio::spawn(async move {
            let mut scanner = DetachScanner::new(detach_keys);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None).await;
                        return;
                    }
                    Ok(n) => {
                        let (pass, detached) = scanner.feed(&buf[..n]);
                        if !pass.is_empty() && tx.send(Some(Bytes::from(pass))).await.is_err() {
                            return;
                        }
                        if detached {
                            detach_tx.notify_one();
                            return;
                        }
                    }
                }
            }
        })
    });
    loop {
        tokio::select! {
            o = output.recv() => match o {
                Some(Output::Exit(_)) | None => break,
                Some(o) => {
                    if let Some(b) = encode_output(&o, tty, want_out, want_err) {
                        if wr.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                }
            },
            _ = detach.notified() => break,
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    if let Some(t) = input {
        t.abort();
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
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => parse_detach_keys(k)?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    let rec = st.engine.inspect(&id).await?;
    let tty = rec.config.tty.unwrap_or(false);
    // Output: the past (logs=1) first, then the live stream (stream=1), through one channel.
    let (out_tx, out_rx) = mpsc::channel::<Output>(256);
    let past = if logs {
        Some(
            st.engine
                .logs(
                    &id,
                    LogsOptions {
                        stdout: want_stdout,
                        stderr: want_stderr,
                        ..Default::default()
                    },
                )
                .await?,
        )
    } else {
        None
    };
    let live = if stream {
        Some(st.engine.attach(&id).await?)
    } else {
        None
    };
    // Docker closes the container's stdin when this client's input ends only for `StdinOnce` containers
    // (`run -i`); other clients just leave.
    // With a terminal Docker never closes it this way: a client's input ending (or a detach the client
    // handled itself) must not end the shell.
    let stdin_once = rec.config.stdin_once.unwrap_or(false) && !tty;
    let stdin = match (&live, want_stdin) {
        (Some(att), true) => {
            let handle = att.handle.clone();
            let (tx, mut rx) = mpsc::channel::<Option<Bytes>>(64);
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    let end = chunk.is_none();
                    if end && !stdin_once {
                        return;
                    }
                    if handle.write_stdin(chunk).await.is_err() || end {
                        return;
                    }
                }
            });
            Some(tx)
        }
        _ => None,
    };
    tokio::spawn(async move {
        if let Some(mut past) = past {
            while let Some(l) = past.recv().await {
                let o = if l.stderr {
                    Output::Stderr(l.data.into())
                } else {
                    Output::Stdout(l.data.into())
                };
                if out_tx.send(o).await.is_err() {
                    return;
                }
            }
        }
        if let Some(mut att) = live {
            while let Some(o) = att.next().await {
                if out_tx.send(o).await.is_err() {
                    return;
                }
            }
        }
    });
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if upgrade {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                attach_io(io, out_rx, stdin, tty, want_stdout, want_stderr, keys).await;
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
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let mut out_rx = out_rx;
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            if let Some(b) = encode_output(&o, tty, want_stdout, want_stderr) {
                if tx.send(Ok(b)).await.is_err() {
                    return;
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
    let (tx, body) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
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
    use super::*;

    #[test]
    fn frames_have_docker_header() {
        assert_eq!(frame(2, b"ab"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-\\").unwrap(), vec![28]);
        for bad in ["", "ctrl-", "ctrl-1", "abc", "ctrl-pq"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_detach_sequence_is_caught_across_reads_and_partial_matches_pass_on() {
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11tail"), (vec![], true));
    }
}
