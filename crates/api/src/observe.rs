//! `pause`, `unpause`, `top` and `stats` of running containers.

use crate::error::ApiResult;
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query as Q, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::container::Record;
use berth_engine::stats::Sample;
use serde_json::{json, Value};

pub async fn pause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    st.engine.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    st.engine.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn top(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Json<Value>> {
    let (titles, rows) = st
        .engine
        .top(&id, q.get("ps_args").map(String::as_str).unwrap_or(""))
        .await?;
    Ok(Json(json!({"Titles": titles, "Processes": rows})))
}

fn cpu_json(s: &Sample) -> Value {
    json!({
        "cpu_usage": {"total_usage": s.cpu_total_ns, "usage_in_kernelmode": s.cpu_kernel_ns, "usage_in_usermode": s.cpu_user_ns},
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// Docker's stats JSON from two samples.
pub fn stats_json(rec: &Record, pre: Option<(&str, &Sample)>, now: (&str, &Sample)) -> Value {
    let (read, s) = now;
    let (preread, precpu) = match pre {
        Some((t, p)) => (t.to_string(), cpu_json(p)),
        None => (
            "0001-01-01T00:00:00Z".to_string(),
            json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
        ),
    };
    json!({
        "read": read,
        "preread": preread,
        "id": rec.id,
        "name": rec.name,
        "pids_stats": {"current": s.pids, "limit": s.pids_limit},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": s.blkio_read},
            {"major": 0, "minor": 0, "op": "write", "value": s.blkio_write},
        ]},
        "num_procs": 0,
        "cpu_stats": cpu_json(s),
        "precpu_stats": precpu,
        "memory_stats": {
            "usage": s.memory_usage,
            "limit": s.memory_limit,
            "stats": {"inactive_file": s.memory_inactive_file, "total_inactive_file": s.memory_inactive_file},
        },
        "networks": {},
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub async fn stats(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Response> {
    let stream = !matches!(
        q.get("stream").map(String::as_str),
        Some("0" | "false" | "False")
    );
    let one_shot = params::flag(&q, "one-shot");
    let (rec, first) = st.engine.stats(&id).await?;
    let t0 = now();
    if !stream {
        if one_shot {
            return Ok(Json(stats_json(&rec, None, (&t0, &first))).into_response());
        }
        // Like dockerd, a single answer carries a previous sample so the client can compute CPU %.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (rec, second) = st.engine.stats(&id).await?;
        return Ok(Json(stats_json(&rec, Some((&t0, &first)), (&now(), &second))).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let engine = st.engine.clone();
    tokio::spawn(async move {
        let mut prev: Option<(String, Sample)> = None;
        let mut current = (t0, first, rec);
        loop {
            let (t, s, r) = &current;
            let mut line = serde_json::to_vec(&stats_json(
                r,
                prev.as_ref().map(|(pt, ps)| (pt.as_str(), ps)),
                (t, s),
            ))
            .unwrap_or_default();
            line.push(b'\n');
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let Ok((r, s)) = engine.stats(&id).await else {
                return;
            };
            let running = matches!(
                r.state.status,
                berth_engine::container::Status::Running | berth_engine::container::Status::Paused
            );
            prev = Some((current.0.clone(), current.1.clone()));
            current = (now(), s, r);
            if !running {
                let (t, s, r) = &current;
                let mut line = serde_json::to_vec(&stats_json(
                    r,
                    prev.as_ref().map(|(pt, ps)| (pt.as_str(), ps)),
                    (t, s),
                ))
                .unwrap_or_default();
                line.push(b'\n');
                let _ = tx.send(Ok(line)).await;
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}

pub async fn changes(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let c = st.engine.diff(&id).await?;
    Ok(Json(Value::Array(
        c.into_iter()
            .map(|c| json!({"Path": c.path, "Kind": c.kind}))
            .collect(),
    )))
}

pub async fn export(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.engine.lookup(&id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let engine = st.engine.clone();
    let err_tx = tx.clone();
    tokio::spawn(async move {
        if let Err(e) = engine.export(&id, crate::system::ChannelWriter(tx)).await {
            let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}
