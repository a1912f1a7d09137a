//! `/volumes`: create, list, inspect, remove, prune.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::StatusCode;
use axum::Json;
use berth_engine::volumes::{CreateVolume, Volume, VolumeFilters};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Docker's `Volume` object.
pub fn volume_json(st: &AppState, v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": st.engine.volume_mountpoint(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Driver")]
    driver: Option<String>,
    #[serde(rename = "DriverOpts")]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

pub async fn create(
    State(st): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: CreateBody = params::json_body(&body)?;
    let v = st
        .engine
        .volume_create(CreateVolume {
            name: b.name,
            driver: b.driver,
            driver_opts: b.driver_opts.unwrap_or_default(),
            labels: b.labels.unwrap_or_default(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(volume_json(&st, &v))))
}

fn filters(q: &Query) -> ApiResult<VolumeFilters> {
    let f = params::filters(q)?;
    let mut out = VolumeFilters::default();
    for (k, vals) in f {
        match k.as_str() {
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
            "name" => out.name = vals,
            "label" => out.label = vals,
            "driver" => out.driver = vals,
            "all" => {}
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    Ok(out)
}

pub async fn list(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Value>> {
    let f = filters(&q)?;
    let vols = st.engine.volume_list(&f).await?;
    let list: Vec<Value> = vols.iter().map(|v| volume_json(&st, v)).collect();
    Ok(Json(json!({"Volumes": list, "Warnings": []})))
}

pub async fn inspect(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let v = st.engine.volume_inspect(&name).await?;
    Ok(Json(volume_json(&st, &v)))
}

pub async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<StatusCode> {
    st.engine
        .volume_remove(&name, params::flag(&q, "force"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Value>> {
    let f = params::filters(&q)?;
    let all = f
        .get("all")
        .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
    let labels = f.get("label").cloned().unwrap_or_default();
    let (names, space) = st.engine.volume_prune(all, &labels).await?;
    Ok(Json(
        json!({"VolumesDeleted": names, "SpaceReclaimed": space}),
    ))
}
