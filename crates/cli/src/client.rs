//! A small Engine API client over a unix socket (HTTP/1.1 with hyper): JSON calls, streamed bodies, and the
//! hijacked attach connection.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;

/// The API version berth's CLI speaks.
pub const API_VERSION: &str = "1.47";

/// A daemon error: status and Docker's message.
#[derive(Debug, thiserror::Error)]
#[error("Error response from daemon: {message}")]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub socket: PathBuf,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| {
                format!(
                    "Cannot connect to the berth daemon at unix://{}. Is the berth daemon running?",
                    self.socket.display()
                )
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender.send_request(req).await?)
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: &str,
    ) -> Result<Request<Body>> {
        Ok(Request::builder()
            .method(method)
            .uri(format!("http://berth/v{API_VERSION}{path}"))
            .header("Host", "berth")
            .header("Content-Type", content_type)
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            )
            .body(body)?)
    }

    async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
        if resp.status().is_success()
            || resp.status() == StatusCode::SWITCHING_PROTOCOLS
            || resp.status() == StatusCode::NOT_MODIFIED
        {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
        Err(DaemonError { status, message }.into())
    }

    /// A request with an optional JSON body; the whole answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let body = match json {
            Some(v) => full(serde_json::to_vec(v)?),
            None => full(Bytes::new()),
        };
        let resp = Self::check(
            self.send(self.build(method, path, body, "application/json")?)
                .await?,
        )
        .await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let (_, b) = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&b).map_err(|e| anyhow!("bad answer from daemon: {e}"))
    }

    pub async fn post_json(
        &self,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (_, b) = self.call(Method::POST, path, json).await?;
        if b.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&b).map_err(|e| anyhow!("bad answer from daemon: {e}"))
    }

    /// A request whose body is streamed from `reader` (import, load); returns the streamed answer.
    pub async fn upload(
        &self,
        path: &str,
        content_type: &str,
        reader: impl tokio::io::AsyncRead + Send + Sync + 'static,
    ) -> Result<Response<Incoming>> {
        let stream = tokio_util_stream(reader);
        let body = StreamBody::new(stream).boxed();
        Self::check(
            self.send(self.build(Method::POST, path, body, content_type)?)
                .await?,
        )
        .await
    }

    /// A request of any method whose body is the chunks received on `rx` (an `Err` aborts the upload); returns
    /// the streamed answer (`docker cp` uploads with `PUT`).
    pub async fn send_stream(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    ) -> Result<Response<Incoming>> {
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
        });
        let body = StreamBody::new(stream).boxed();
        Self::check(
            self.send(self.build(method, path, body, content_type)?)
                .await?,
        )
        .await
    }

    /// A request whose answer is streamed, with an `X-Registry-Auth` header (pull, push).
    pub async fn stream_with_auth(
        &self,
        method: Method,
        path: &str,
        auth: Option<String>,
    ) -> Result<Response<Incoming>> {
        let mut req = self.build(method, path, full(Bytes::new()), "application/json")?;
        if let Some(a) = auth {
            req.headers_mut().insert("X-Registry-Auth", a.parse()?);
        }
        Self::check(self.send(req).await?).await
    }

    /// A GET whose answer is streamed (logs, events, save).
    pub async fn stream(&self, method: Method, path: &str) -> Result<Response<Incoming>> {
        Self::check(
            self.send(self.build(method, path, full(Bytes::new()), "application/json")?)
                .await?,
        )
        .await
    }

    /// Attach with `Upgrade: tcp`; the returned stream is the raw connection after `101`.
    pub async fn hijack(
        &self,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let (body, ct) = match json {
            Some(v) => (full(serde_json::to_vec(v)?), "application/json"),
            None => (full(Bytes::new()), "text/plain"),
        };
        let mut req = self.build(Method::POST, path, body, ct)?;
        req.headers_mut().insert("Connection", "Upgrade".parse()?);
        req.headers_mut().insert("Upgrade", "tcp".parse()?);
        let resp = Self::check(self.send(req).await?).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(anyhow!(
                "the daemon did not upgrade the attach connection ({})",
                resp.status()
            ));
        }
        Ok(TokioIo::new(hyper::upgrade::on(resp).await?))
    }
}

fn tokio_util_stream(
    reader: impl tokio::io::AsyncRead + Send + Sync + 'static,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync + 'static
{
    use tokio::io::AsyncReadExt;
    let reader = Box::pin(reader);
    futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

/// Read the next chunk of a streamed body.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::enc("a b/c:{\"x\"}"), "a%20b%2Fc%3A%7B%22x%22%7D");
    }
}
