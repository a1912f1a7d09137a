//! `/networks`: create, list, inspect, remove, connect, disconnect, prune.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::Json;
use berth_engine::network::{CreateNetwork, Endpoint, Network, NetworkFilters};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Docker's `Network` object; `Containers` lists the attached containers (with their addresses while they
/// run).
fn network_json(n: &Network, users: Option<&Vec<(String, String, Endpoint)>>) -> Value {
    let config: Vec<Value> = n
        .ipam
        .map(|a| {
            let mut c = json!({"Subnet": a.subnet.to_string(), "Gateway": a.gateway.to_string()});
            if let Some(r) = a.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            vec![c]
        })
        .unwrap_or_default();
    let mut containers = serde_json::Map::new();
    // Like dockerd: the containers with an active endpoint (running ones).
    for (id, name, ep) in users
        .into_iter()
        .flatten()
        .filter(|(_, _, ep)| ep.ip.is_some())
    {
        containers.insert(
            id.clone(),
            json!({
                "Name": name,
                "EndpointID": ep.endpoint_id,
                "MacAddress": ep.mac,
                "IPv4Address": ep.ip.map(|ip| format!("{ip}/{}", ep.prefix_len)).unwrap_or_default(),
                "IPv6Address": "",
            }),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": n.driver == "bridge",
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn filters(q: &Query) -> ApiResult<NetworkFilters> {
    let f = params::filters(q)?;
    let mut out = NetworkFilters::default();
    for (k, vals) in f {
        match k.as_str() {
            "name" => out.name = vals,
            "id" => out.id = vals,
            "driver" => out.driver = vals,
            "label" => out.label = vals,
            "type" => {
                for v in vals {
                    if v != "custom" && v != "builtin" {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter: 'type'='{v}'"
                        )));
                    }
                    out.kind = Some(v);
                }
            }
            "dangling" => {
                for v in vals {
                    out.dangling = Some(match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter 'dangling={v}'"
                            )))
                        }
                    })
                }
            }
            "scope" | "until" => {}
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    Ok(out)
}

pub async fn list(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Vec<Value>>> {
    let f = filters(&q)?;
    let nets = st.engine.network_list(&f).await?;
    let users = st.engine.network_users().await;
    Ok(Json(
        nets.iter()
            .map(|n| network_json(n, users.get(&n.id)))
            .collect(),
    ))
}

pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let n = st.engine.network_lookup(&id)?;
    let users = st.engine.network_users().await;
    Ok(Json(network_json(&n, users.get(&n.id))))
}

pub async fn create(
    State(st): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: Value = params::json_body(&body)?;
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let map = |v: &Value| -> std::collections::BTreeMap<String, String> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pools: Vec<Value> = b["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    let ipam_driver = s(&b["IPAM"]["Driver"]);
    if !ipam_driver.is_empty() && ipam_driver != "default" {
        return Err(ApiError::bad_request(format!(
            "IPAM driver {ipam_driver} is not supported (only default)"
        )));
    }
    let v4: Vec<&Value> = pools
        .iter()
        .filter(|p| !s(&p["Subnet"]).contains(':'))
        .collect();
    let first = v4.first().copied().cloned().unwrap_or(Value::Null);
    let req = CreateNetwork {
        name: s(&b["Name"]),
        driver: s(&b["Driver"]),
        internal: b["Internal"].as_bool().unwrap_or(false),
        attachable: b["Attachable"].as_bool().unwrap_or(false),
        labels: map(&b["Labels"]),
        options: map(&b["Options"]),
        subnet: Some(s(&first["Subnet"])).filter(|x| !x.is_empty()),
        ip_range: Some(s(&first["IPRange"])).filter(|x| !x.is_empty()),
        gateway: Some(s(&first["Gateway"])).filter(|x| !x.is_empty()),
        extra_pools: v4.len().saturating_sub(1),
        enable_ipv6: b["EnableIPv6"].as_bool().unwrap_or(false)
            || pools.iter().any(|p| s(&p["Subnet"]).contains(':')),
    };
    let n = st.engine.network_create(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": n.id, "Warning": ""})),
    ))
}

pub async fn remove(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    st.engine.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn connect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let b: Value = params::json_body(&body)?;
    let container = b["Container"].as_str().unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let req = crate::containers::endpoint_request(&b["EndpointConfig"]);
    st.engine.network_connect(&id, &container, req).await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let b: Value = params::json_body(&body)?;
    let container = b["Container"].as_str().unwrap_or("").to_string();
    let force = b["Force"].as_bool().unwrap_or(false);
    st.engine.network_disconnect(&id, &container, force).await?;
    Ok(StatusCode::OK)
}

pub async fn prune(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Value>> {
    let f: HashMap<String, Vec<String>> = params::filters(&q)?.into_iter().collect();
    let labels = f.get("label").cloned().unwrap_or_default();
    let names = st.engine.network_prune(&labels).await?;
    Ok(Json(json!({"NetworksDeleted": names})))
}
