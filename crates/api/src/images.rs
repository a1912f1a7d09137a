//! `/images/...`: list, inspect, import (`create?fromSrc`), load, save (`get`), tag, remove, history, prune.

use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query as Q, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_image::{Image, ImportOptions, Reference, RemoveAction};
use futures_util::TryStreamExt;
use serde_json::{json, Value};

/// The request body as a blocking `Read` (used on the image store's blocking threads).
fn body_reader(body: Body) -> impl std::io::Read + Send + 'static {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

fn created_unix(i: &Image) -> i64 {
    i.created.map(|c| c.timestamp()).unwrap_or(0)
}

fn summary(i: &Image, containers: i64) -> Value {
    json!({
        "Id": i.id,
        "ParentId": i.parent,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": created_unix(i),
        "Size": i.size,
        "SharedSize": -1,
        "VirtualSize": i.size,
        "Labels": i.config.config.labels.clone().unwrap_or_default(),
        "Containers": containers,
    })
}

/// Docker's `reference` filter: a glob on `repo` or `repo:tag` (familiar form).
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let repo = tag.rsplit_once(':').map(|(r, _)| r).unwrap_or(tag);
    glob(pattern, tag) || glob(pattern, repo)
}

fn glob(p: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                rec(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && rec(p, &s[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &s[1..]),
            _ => false,
        }
    }
    rec(p.as_bytes(), s.as_bytes())
}

pub async fn list(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Vec<Value>>> {
    let filters = params::filters(&q)?;
    for k in filters.keys() {
        if !["dangling", "label", "reference", "before", "since", "until"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let images = st.engine.list_images().await?;
    let mut out = Vec::new();
    for i in &images {
        if let Some(d) = filters.get("dangling").and_then(|d| d.first()) {
            let dangling = i.repo_tags.is_empty();
            match d.as_str() {
                "true" | "1" if !dangling => continue,
                "false" | "0" if dangling => continue,
                "true" | "1" | "false" | "0" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter 'dangling={other}'"
                    )))
                }
            }
        }
        if let Some(refs) = filters.get("reference") {
            if !refs
                .iter()
                .any(|p| i.repo_tags.iter().any(|t| reference_matches(p, t)))
            {
                continue;
            }
        }
        if let Some(labels) = filters.get("label") {
            let have: std::collections::BTreeMap<String, String> = i
                .config
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            if !berth_engine::container::list::labels_match(&have, labels) {
                continue;
            }
        }
        let mut v = summary(i, -1);
        if filters.contains_key("reference") {
            // Docker lists only the matching tags.
            let refs = filters["reference"].clone();
            v["RepoTags"] = json!(i
                .repo_tags
                .iter()
                .filter(|t| refs.iter().any(|p| reference_matches(p, t)))
                .collect::<Vec<_>>());
        }
        out.push(v);
    }
    out.sort_by(|a, b| b["Created"].as_i64().cmp(&a["Created"].as_i64()));
    Ok(Json(out))
}

fn inspect_json(i: &Image) -> Value {
    let c = &i.config;
    json!({
        "Id": i.id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Parent": i.parent,
        "Comment": c.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": c.created.clone().unwrap_or_default(),
        "DockerVersion": c.docker_version.clone().unwrap_or_default(),
        "Author": c.author.clone().unwrap_or_default(),
        "Config": serde_json::to_value(&c.config).unwrap_or(json!({})),
        "Architecture": c.architecture,
        "Variant": c.variant,
        "Os": c.os,
        "Size": i.size,
        "VirtualSize": i.size,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {"Type": "layers", "Layers": i.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

pub async fn get_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let i = st.engine.resolve_image(name).await?;
        return Ok(Json(inspect_json(&i)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let h = st.engine.image_history(name).await?;
        let v: Vec<Value> = h
            .iter()
            .map(|e| {
                json!({"Id": e.id, "Created": e.created.map(|c| c.timestamp()).unwrap_or(0), "CreatedBy": e.created_by,
                       "Tags": e.tags, "Size": e.size, "Comment": e.comment})
            })
            .collect();
        return Ok(Json(Value::Array(v)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(st, vec![name.to_string()]).await;
    }
    Err(ApiError::not_found(format!(
        "page not found: GET /images/{rest}"
    )))
}

pub async fn post_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    Q(q): Q<Query>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = q.get("repo").cloned().unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let target = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        Reference::parse(&target).map_err(|e| ApiError::bad_request(e.to_string()))?;
        st.engine.tag_image(name, &target).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return crate::registry::push(st, name.to_string(), q.get("tag").cloned(), &headers).await;
    }
    Err(ApiError::not_found(format!(
        "page not found: POST /images/{rest}"
    )))
}

pub async fn save_many(
    State(st): State<AppState>,
    Q(pairs): Q<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let names: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given: use names=IMAGE"));
    }
    save(st, names).await
}

async fn save(st: AppState, names: Vec<String>) -> ApiResult<Response> {
    for n in &names {
        st.engine.resolve_image(n).await?;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let engine = st.engine.clone();
    let err_tx = tx.clone();
    tokio::spawn(async move {
        if let Err(e) = engine
            .save_images(names, crate::system::ChannelWriter(tx))
            .await
        {
            let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}

fn progress_line(v: Value) -> Result<Vec<u8>, std::io::Error> {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Ok(b)
}

pub async fn create(
    State(st): State<AppState>,
    Q(q): Q<Query>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(image) = q.get("fromImage").filter(|s| !s.is_empty()) {
        return crate::registry::pull(
            st,
            image.clone(),
            q.get("tag").cloned(),
            q.get("platform").cloned(),
            &headers,
        )
        .await;
    }
    let src = q.get("fromSrc").cloned().unwrap_or_default();
    if src != "-" {
        return Err(ApiError::bad_request(if src.is_empty() {
            "one of fromImage or fromSrc is required".to_string()
        } else {
            format!("importing from a URL ({src}) is not supported: send the tarball in the request body with fromSrc=-")
        }));
    }
    let repo = q.get("repo").cloned().unwrap_or_default();
    let reference = if repo.is_empty() {
        None
    } else {
        let full = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        Some(Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?)
    };
    // `changes` may repeat; the docker CLI sends each as its own parameter.
    let changes: Vec<String> = q
        .get("changes")
        .map(|c| vec![c.clone()])
        .unwrap_or_default();
    let opts = ImportOptions {
        reference,
        changes,
        message: q.get("message").cloned().unwrap_or_default(),
        platform: q.get("platform").cloned().filter(|p| !p.is_empty()),
    };
    let img = st.engine.import_image(body_reader(body), opts).await?;
    let line = progress_line(json!({"status": img.id}));
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter([line])),
    )
        .into_response())
}

pub async fn load(State(st): State<AppState>, body: Body) -> ApiResult<Response> {
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = body_reader(body);
    let res = st.engine.load_images(reader, ptx).await;
    let mut lines = Vec::new();
    while let Ok(l) = prx.try_recv() {
        lines.push(progress_line(json!({"stream": format!("{l}\n")})));
    }
    match res {
        Ok(_) => {}
        Err(e) if lines.is_empty() => return Err(e.into()),
        Err(e) => lines.push(progress_line(
            json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
        )),
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(lines)),
    )
        .into_response())
}

pub async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> ApiResult<Json<Vec<Value>>> {
    let actions = st
        .engine
        .remove_image(
            &name,
            params::flag(&q, "force"),
            params::flag(&q, "noprune"),
        )
        .await?;
    Ok(Json(actions.iter().map(action_json).collect()))
}

fn action_json(a: &RemoveAction) -> Value {
    match a {
        RemoveAction::Untagged(r) => json!({"Untagged": r}),
        RemoveAction::Deleted(id) => json!({"Deleted": id}),
    }
}

pub async fn prune(State(st): State<AppState>, Q(q): Q<Query>) -> ApiResult<Json<Value>> {
    let f = params::filters(&q)?;
    let all = f
        .get("dangling")
        .and_then(|d| d.first())
        .is_some_and(|d| d == "false" || d == "0");
    let filters = berth_image::PruneFilters {
        label: f.get("label").cloned().unwrap_or_default(),
        ..Default::default()
    };
    let report = st.engine.prune_images(all, filters).await?;
    Ok(Json(json!({
        "ImagesDeleted": report.deleted.iter().map(action_json).collect::<Vec<_>>(),
        "SpaceReclaimed": report.space_reclaimed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs_like_docker() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(!reference_matches("*", "library/busybox:latest"));
        assert!(reference_matches("*/*", "library/busybox:latest"));
    }
}
