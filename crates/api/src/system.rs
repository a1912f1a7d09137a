//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::{AppState, API_VERSION, MIN_API_VERSION};
use axum::body::Body;
use axum::extract::{Query as Q, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

fn common_headers(resp: &mut Response, version: &str) {
    let h = resp.headers_mut();
    h.insert("API-Version", HeaderValue::from_static(API_VERSION));
    h.insert("OSType", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    // The classic builder's protocol (`POST /build` with a tar context); BuildKit's session API is not served.
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    if let Ok(v) = HeaderValue::from_str(&format!("berth/{version} (linux)")) {
        h.insert(header::SERVER, v);
    }
}

pub async fn ping(State(st): State<AppState>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
        ],
        "OK",
    )
        .into_response();
    common_headers(&mut resp, &st.version);
    resp
}

pub async fn not_found(req: axum::extract::Request) -> ApiError {
    ApiError::not_found(format!(
        "page not found: {} {}",
        req.method(),
        req.uri().path()
    ))
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn version(State(st): State<AppState>) -> Response {
    let body = json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": st.version, "Details": {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch(),
            "KernelVersion": kernel(), "GitCommit": "", "GoVersion": "rust", "BuildTime": "", "Experimental": "false"}}],
        "Version": st.version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel(),
        "BuildTime": "",
    });
    let mut resp = Json(body).into_response();
    common_headers(&mut resp, &st.version);
    resp
}

pub async fn info(State(st): State<AppState>) -> ApiResult<Response> {
    let i = st.engine.info().await?;
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into());
    let body = json!({
        "ID": i.daemon_id,
        "Containers": i.containers, "ContainersRunning": i.running, "ContainersPaused": i.paused, "ContainersStopped": i.stopped,
        "Images": i.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": [], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true,
        "PidsLimit": true, "OomKillDisable": i.cgroup_version == "1", "IPv4Forwarding": true, "Debug": false,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": kernel(),
        "OperatingSystem": os, "OSVersion": "", "OSType": "linux", "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem,
        "DockerRootDir": i.data_root,
        "Name": host,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": st.version,
        "Runtimes": {"berth": {"path": "berth shim"}},
        "DefaultRuntime": "berth",
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "docker-init",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Warnings": i.warnings,
        "DefaultAddressPools": [],
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
    });
    Ok(Json(body).into_response())
}

pub async fn events(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    let since = q.get("since").map(|s| params::unix_nanos(s)).transpose()?;
    let until = q.get("until").map(|s| params::unix_nanos(s)).transpose()?;
    let (past, mut rx) = st.engine.events().subscribe(since);
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |e: &berth_engine::events::Event| {
            let mut v = serde_json::to_vec(e).unwrap_or_default();
            v.push(b'\n');
            v
        };
        for e in past
            .iter()
            .filter(|e| berth_engine::events::matches(e, &filters))
        {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if tx.send(Ok(line(e))).await.is_err() {
                return;
            }
        }
        loop {
            let next = match until {
                Some(u) => {
                    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                    if now >= u {
                        return;
                    }
                    match tokio::time::timeout(
                        std::time::Duration::from_nanos((u - now) as u64),
                        rx.recv(),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                None => tokio::select! {
                    r = rx.recv() => r,
                    _ = tx.closed() => return,
                },
            };
            match next {
                Ok(e) if berth_engine::events::matches(&e, &filters) => {
                    if tx.send(Ok(line(&e))).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let stream = tokio_stream_from(body_rx);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A blocking `Write` whose bytes become a streamed response body (save, export).
pub struct ChannelWriter(pub tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A body stream from a channel of chunks.
pub fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub async fn df(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let du = st.engine.disk_usage().await?;
    let nets = st.engine.networks_all()?;
    let containers_per_image = |id: &str| {
        du.containers
            .iter()
            .filter(|(r, _)| r.image_id == id)
            .count()
    };
    let images: Vec<Value> = du
        .images
        .iter()
        .map(|i| {
            json!({
                "Id": i.id, "ParentId": i.parent, "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
                "Created": i.created.map(|c| c.timestamp()).unwrap_or(0), "Size": i.size, "SharedSize": -1,
                "VirtualSize": i.size, "Labels": i.config.config.labels, "Containers": containers_per_image(&i.id),
            })
        })
        .collect();
    let containers: Vec<Value> = du
        .containers
        .iter()
        .map(|(r, size)| crate::containers::summary_json(r, &nets, Some(*size), None))
        .collect();
    let volumes: Vec<Value> = st
        .engine
        .volume_usage()
        .await?
        .iter()
        .map(|(v, size, refs)| {
            let mut j = crate::volumes::volume_json(&st, v);
            j["UsageData"] = json!({"Size": size, "RefCount": refs});
            j
        })
        .collect();
    Ok(Json(json!({
        "LayersSize": du.layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}
