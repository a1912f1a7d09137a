//! `/containers/...` (except the streams: attach and logs live in `streams`).

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::container::{ListOptions, Record, Status, WaitCondition};
use bollard_stubs::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use serde_json::{json, Value};

pub async fn create(
    State(st): State<AppState>,
    Q(q): Q<Query>,
    body: Bytes,
) -> ApiResult<Response> {
    let parsed: ContainerCreateBody = params::json_body(&body)?;
    let mut v = serde_json::to_value(&parsed).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let host_config: HostConfig = match v.as_object_mut().and_then(|o| o.remove("HostConfig")) {
        Some(h) => serde_json::from_value(h)
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
        None => HostConfig::default(),
    };
    let mut endpoints = std::collections::BTreeMap::new();
    if let Some(nc) = v.as_object_mut().and_then(|o| o.remove("NetworkingConfig")) {
        if let Some(eps) = nc["EndpointsConfig"].as_object() {
            for (name, ep) in eps {
                endpoints.insert(name.clone(), endpoint_request(ep));
            }
        }
    }
    let config: ContainerConfig =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let req = berth_engine::container::CreateRequest {
        name: q.get("name").cloned(),
        config,
        host_config,
        endpoints,
    };
    let rec = st.engine.create(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": rec.id, "Warnings": []})),
    )
        .into_response())
}

/// An `EndpointSettings` object (create's `NetworkingConfig`, `network connect`) as the engine's request.
pub fn endpoint_request(ep: &Value) -> berth_engine::network::endpoint::EndpointRequest {
    let s = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    berth_engine::network::endpoint::EndpointRequest {
        aliases: ep["Aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        ipv4: s(&ep["IPAMConfig"]["IPv4Address"]),
        mac: s(&ep["MacAddress"]),
    }
}

/// `NetworkSettings` of inspect: the endpoints by network, published ports, and the deprecated top-level
/// fields that mirror the default bridge's endpoint.
fn network_settings(r: &Record, nets: &[berth_engine::network::Network]) -> Value {
    let mut networks = serde_json::Map::new();
    let mut top = json!({"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""});
    for (name, ep) in &r.endpoints {
        let net = nets.iter().find(|n| n.id == ep.network_id);
        let dns_names: Value = match net {
            Some(n) if n.user_defined() => {
                json!(berth_engine::network::resolver::dns_names(r, &ep.aliases))
            }
            _ => Value::Null,
        };
        let running = ep.ip.is_some();
        let v = json!({
            "IPAMConfig": ep.requested_ip.map(|ip| json!({"IPv4Address": ip.to_string()})),
            "Links": null,
            "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
            "MacAddress": ep.mac,
            "DriverOpts": null,
            "GwPriority": 0,
            "NetworkID": ep.network_id,
            "EndpointID": if running { ep.endpoint_id.clone() } else { String::new() },
            "Gateway": ep.gateway.map(|g| g.to_string()).unwrap_or_default(),
            "IPAddress": ep.ip.map(|g| g.to_string()).unwrap_or_default(),
            "IPPrefixLen": ep.prefix_len,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": dns_names,
        });
        if name == "bridge" {
            for k in [
                "EndpointID",
                "Gateway",
                "IPAddress",
                "IPPrefixLen",
                "MacAddress",
            ] {
                top[k] = v[k].clone();
            }
        }
        networks.insert(name.clone(), v);
    }
    let mut ports = serde_json::Map::new();
    // Like dockerd: ports are listed only while the container has its network (exposed ones as null).
    let running = !r.sandbox_key.is_empty();
    for k in r.config.exposed_ports.clone().unwrap_or_default() {
        if running {
            ports.insert(k, Value::Null);
        }
    }
    for (k, binds) in &r.ports {
        ports.insert(k.clone(), json!(binds));
    }
    json!({
        "Bridge": "", "SandboxID": if r.sandbox_key.is_empty() { String::new() } else { r.id.clone() },
        "SandboxKey": r.sandbox_key, "Ports": ports, "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": top["EndpointID"], "Gateway": top["Gateway"], "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": top["IPAddress"], "IPPrefixLen": top["IPPrefixLen"], "IPv6Gateway": "", "MacAddress": top["MacAddress"],
        "Networks": networks,
    })
}

/// The `Ports` of a container summary: published bindings, and exposed ports without a binding.
fn summary_ports(r: &Record) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (k, binds) in &r.ports {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        let private: u64 = port.parse().unwrap_or(0);
        for b in binds {
            out.push(json!({"IP": b.host_ip, "PrivatePort": private, "PublicPort": b.host_port.parse::<u64>().unwrap_or(0), "Type": proto}));
        }
        seen.insert(k.clone());
    }
    for k in r.config.exposed_ports.clone().unwrap_or_default() {
        if seen.contains(&k) {
            continue;
        }
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        out.push(json!({"PrivatePort": port.parse::<u64>().unwrap_or(0), "Type": proto}));
    }
    out
}

fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if (s as f64 / 3600.0).round() as i64 == 1 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", (s as f64 / 3600.0).round() as i64),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / (24 * 3600)),
        s if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 24 * 3600)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 24 * 3600)),
        s => format!("{} years", s / (365 * 24 * 3600)),
    }
}

fn since(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| chrono::Utc::now().timestamp() - d.timestamp())
        .unwrap_or(0)
}

/// Docker's `Status` column text.
pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Running => {
            let health = match r.state.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)".to_string(),
                Some(s) if !s.is_empty() => format!(" ({s})"),
                _ => String::new(),
            };
            format!("Up {}{health}", human_duration(since(&r.state.started_at)))
        }
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&r.state.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(since(&r.state.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if r.state.finished_at.starts_with("0001") => "Created".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(since(&r.state.finished_at))
        ),
    }
}

fn created_unix(r: &Record) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

fn command(r: &Record) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().cloned());
    parts.join(" ")
}

pub fn summary_json(
    r: &Record,
    nets: &[berth_engine::network::Network],
    size_rw: Option<u64>,
    size_root_fs: Option<u64>,
) -> Value {
    let mut v = json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command(r),
        "Created": created_unix(r),
        "Ports": summary_ports(r),
        "Labels": r.labels(),
        "State": r.state.status.as_str(),
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": r.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": network_settings(r, nets)["Networks"]},
        "Mounts": mounts_json(r),
    });
    if let Some(s) = size_rw {
        v["SizeRw"] = json!(s);
    }
    if let Some(s) = size_root_fs {
        v["SizeRootFs"] = json!(s);
    }
    v
}

fn mounts_json(r: &Record) -> Vec<Value> {
    use berth_engine::container::MountType;
    r.mounts
        .iter()
        .map(|m| {
            let mut v = json!({"Type": m.kind.as_str()});
            if m.kind == MountType::Volume {
                v["Name"] = json!(m.name);
            }
            v["Source"] = json!(m.source);
            v["Destination"] = json!(m.destination);
            if m.kind == MountType::Volume {
                v["Driver"] = json!(m.driver);
            }
            v["Mode"] = json!(m.mode);
            v["RW"] = json!(m.rw);
            v["Propagation"] = json!(m.propagation);
            v
        })
        .collect()
}

pub async fn list(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Vec<Value>>> {
    let mut limit: usize = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(0) as usize;
    if params::flag(&q, "latest") {
        limit = 1;
    }
    let opts = ListOptions {
        all: params::flag(&q, "all"),
        limit,
        size: params::flag(&q, "size"),
        filters: params::filters(&q)?,
    };
    let list = st.engine.list(&opts).await?;
    let nets = st.engine.networks_all()?;
    Ok(Json(
        list.iter()
            .map(|s| summary_json(&s.record, &nets, s.size_rw, s.size_root_fs))
            .collect(),
    ))
}

pub fn inspect_json(r: &Record, nets: &[berth_engine::network::Network]) -> Value {
    let s = &r.state;
    let mut host_config = serde_json::to_value(&r.host_config).unwrap_or(json!({}));
    if let Some(o) = host_config.as_object_mut() {
        o.entry("LogConfig")
            .or_insert(json!({"Type": "json-file", "Config": {}}));
        o.entry("RestartPolicy")
            .or_insert(json!({"Name": "no", "MaximumRetryCount": 0}));
        o.entry("Binds").or_insert(Value::Null);
        o.entry("AutoRemove").or_insert(json!(false));
        o.entry("Privileged").or_insert(json!(false));
        o.entry("ReadonlyRootfs").or_insert(json!(false));
        o.entry("Memory").or_insert(json!(0));
        o.entry("NanoCpus").or_insert(json!(0));
        o.entry("CpuShares").or_insert(json!(0));
        o.entry("PidsLimit").or_insert(Value::Null);
    }
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status == Status::Running || s.status == Status::Paused,
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Health": s.health.as_ref().map(|h| json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|p| json!({"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output})).collect::<Vec<_>>(),
            })),
        },
        "Image": r.image_id,
        "ResolvConfPath": r.resolv_conf_path,
        "HostnamePath": r.hostname_path,
        "HostsPath": r.hosts_path,
        "LogPath": r.log_path,
        "Name": r.name,
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "Mounts": mounts_json(r),
        "Config": serde_json::to_value(&r.config).unwrap_or(json!({})),
        "NetworkSettings": network_settings(r, nets),
    })
}

pub async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Json<Value>> {
    let r = st.engine.inspect(&id).await?;
    let nets = st.engine.networks_all()?;
    let mut v = inspect_json(&r, &nets);
    if params::flag(&q, "size") {
        let rw = berth_engine::container::remove_dir_size(
            &std::path::PathBuf::from(&r.log_path).with_file_name("upper"),
        );
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw);
    }
    Ok(Json(v))
}

pub async fn start(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    st.engine.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn timeout(q: &Query) -> ApiResult<Option<i64>> {
    q.get("t")
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}")))
        })
        .transpose()
}

pub async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    st.engine
        .stop(
            &id,
            timeout(&q)?,
            q.get("signal").cloned().filter(|s| !s.is_empty()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    st.engine
        .restart(
            &id,
            timeout(&q)?,
            q.get("signal").cloned().filter(|s| !s.is_empty()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    st.engine
        .kill(&id, q.get("signal").map(String::as_str).unwrap_or("KILL"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Response> {
    let cond = match q.get("condition").map(String::as_str).unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )))
        }
    };
    // Resolve now so an unknown container is a 404 before the 200 header goes out.
    st.engine.lookup(&id).await?;
    let engine = st.engine.clone();
    // Docker sends the header at once and the body when the condition is met; the CLI relies on that to
    // know the wait is registered before it starts the container.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        let body = match engine.wait(&id, cond).await {
            Ok(w) => {
                let err = if w.error.is_empty() {
                    Value::Null
                } else {
                    json!({"Message": w.error})
                };
                json!({"StatusCode": w.exit_code, "Error": err})
            }
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        let _ = tx.send(Ok(bytes)).await;
    });
    let stream = crate::system::tokio_stream_from(rx);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

pub async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    let name = q.get("name").cloned().unwrap_or_default();
    st.engine.rename(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let u: HostConfig = params::json_body(&body)?;
    let warnings = st.engine.update(&id, u).await?;
    Ok(Json(json!({"Warnings": warnings})))
}

pub async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    st.engine
        .remove(&id, params::flag(&q, "force"), params::flag(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Value>> {
    let f = params::filters(&q)?;
    let labels = f.get("label").cloned().unwrap_or_default();
    let (ids, space) = st.engine.prune_containers(&labels).await?;
    Ok(Json(
        json!({"ContainersDeleted": ids, "SpaceReclaimed": space}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
