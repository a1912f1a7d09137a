//! `/containers/{id}/exec`, `/exec/{id}/start`, `/exec/{id}/resize`, `/exec/{id}/json`.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::streams::{attach_io, content_type, parse_detach_keys, DEFAULT_DETACH_KEYS};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as Q, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::exec::ExecConfig;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ExecBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
    console_size: Option<Vec<usize>>,
}

pub async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ExecBody = params::json_body(&body)?;
    if !b.detach_keys.is_empty() {
        parse_detach_keys(&b.detach_keys)?;
    }
    let cfg = ExecConfig {
        cmd: b.cmd.unwrap_or_default(),
        env: b.env.unwrap_or_default(),
        working_dir: b.working_dir,
        user: b.user,
        tty: b.tty,
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        privileged: b.privileged,
        detach_keys: b.detach_keys,
        console_size: berth_engine::container::console_size(b.console_size.as_deref()),
    };
    let exec_id = st.engine.exec_create(&id, cfg).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
}

pub async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let b: StartBody = params::json_body(&body)?;
    let exec = st.engine.exec_get(&id)?;
    let tty = exec.config.tty;
    let keys = if exec.config.detach_keys.is_empty() {
        DEFAULT_DETACH_KEYS.to_vec()
    } else {
        parse_detach_keys(&exec.config.detach_keys)?
    };
    let (want_out, want_err) = (exec.config.attach_stdout, exec.config.attach_stderr);
    match (b.detach, on_upgrade) {
        (true, _) => {
            let stream = st.engine.exec_start(&id).await?;
            // Nobody reads the output: drain it so the process is never blocked on a full pipe.
            let mut out = stream.output;
            tokio::spawn(async move { while out.recv().await.is_some() {} });
            Ok(StatusCode::OK.into_response())
        }
        (false, Some(on_upgrade)) => {
            // Like dockerd: switch protocols first, then start; a start that fails is reported on the stream
            // (and in the exec's exit code, 126 or 127), which is where the client reads.
            let engine = st.engine.clone();
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                match engine.exec_start(&id).await {
                    Ok(stream) => {
                        attach_io(
                            io,
                            stream.output,
                            stream.stdin,
                            tty,
                            want_out,
                            want_err,
                            keys,
                        )
                        .await
                    }
                    Err(e) => {
                        use tokio::io::AsyncWriteExt;
                        let msg = format!("{e}\r\n");
                        let bytes = if tty {
                            msg.into_bytes()
                        } else {
                            crate::streams::frame(2, msg.as_bytes())
                        };
                        let _ = io.write_all(&bytes).await;
                        let _ = io.shutdown().await;
                    }
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
            Ok(resp)
        }
        (false, None) => {
            let stream = st.engine.exec_start(&id).await?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
            let mut out = stream.output;
            tokio::spawn(async move {
                while let Some(o) = out.recv().await {
                    if let Some(b) = crate::streams::encode_output(&o, tty, want_out, want_err) {
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
    }
}

fn size(q: &Query) -> ApiResult<(u16, u16)> {
    let n = |k: &str| -> ApiResult<u16> {
        q.get(k)
            .map(|v| {
                v.parse::<u16>()
                    .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v}")))
            })
            .unwrap_or(Ok(0))
    };
    Ok((n("h")?, n("w")?))
}

pub async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    let (h, w) = size(&q)?;
    st.engine.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

pub async fn container_resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    let (h, w) = size(&q)?;
    st.engine.resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let e = st.engine.exec_get(&id)?;
    let s = e.state();
    let c = &e.config;
    Ok(Json(json!({
        "ID": e.id,
        "Running": s.running,
        "ExitCode": s.exit_code,
        "ProcessConfig": {
            "tty": c.tty, "entrypoint": c.cmd.first(), "arguments": c.cmd.get(1..).unwrap_or_default(),
            "privileged": c.privileged, "user": c.user,
        },
        "OpenStdin": c.attach_stdin,
        "OpenStderr": c.attach_stderr,
        "OpenStdout": c.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": c.detach_keys,
        "Pid": s.pid,
    })))
}
