//! `POST /build` as the docker CLI's classic builder uses it: the context is the request body (a tar, maybe
//! compressed), options are query parameters (`t` repeats), and the answer is Docker's JSON stream (`stream`
//! text, `aux` with the image id, `errorDetail` on failure). `POST /build/prune` forgets the build cache.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::build::{BuildEvent, BuildRequest};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Decodes the query parameters.
pub fn request(pairs: &[(String, String)]) -> ApiResult<BuildRequest> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let flag = |k: &str, default: bool| match get(k).to_ascii_lowercase().as_str() {
        "" => default,
        v => matches!(v, "1" | "true" | "yes"),
    };
    if !get("remote").is_empty() {
        return Err(ApiError::bad_request(
            "remote build contexts (URLs, git repositories) are not supported: send the context as the request body",
        ));
    }
    let build_args: BTreeMap<String, Option<String>> = match get("buildargs").as_str() {
        "" => BTreeMap::new(),
        s => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid buildargs: {e}")))?,
    };
    let labels: BTreeMap<String, String> = match get("labels").as_str() {
        "" => BTreeMap::new(),
        s => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid labels: {e}")))?,
    };
    let cache_from: Vec<String> = match get("cachefrom").as_str() {
        "" => Vec::new(),
        s => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
    };
    let tags: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "t" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    for t in &tags {
        berth_image::Reference::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid reference format: {t}: {e}")))?;
    }
    Ok(BuildRequest {
        dockerfile: get("dockerfile"),
        tags,
        build_args,
        target: get("target"),
        no_cache: flag("nocache", false),
        pull: flag("pull", false),
        remove: flag("rm", true),
        force_remove: flag("forcerm", false),
        labels,
        network_mode: get("networkmode"),
        platform: get("platform"),
        quiet: flag("q", false),
        cache_from,
    })
}

fn line(v: &Value) -> Result<Vec<u8>, std::io::Error> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Ok(b)
}

pub async fn build(
    State(st): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Body,
) -> ApiResult<Response> {
    let req = request(&pairs)?;
    let quiet = req.quiet;
    // The context goes to disk as it arrives; nothing of it is held in memory.
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let engine = st.engine.clone();
    let ctx = tokio::task::spawn_blocking(move || engine.receive_build_context(reader))
        .await
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("receiving the build context: {e}"),
        })??;

    let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel::<BuildEvent>();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let engine = st.engine.clone();
    let job = tokio::spawn(async move {
        let r = engine.build(&ctx, req, etx).await;
        drop(ctx);
        r
    });
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = erx.recv() => ev,
                // The client went away (the response body was dropped) even while the build is silent.
                () = tx.closed() => return,
            };
            let Some(ev) = ev else { break };
            let msgs = match ev {
                BuildEvent::Stream(s) => vec![json!({ "stream": s })],
                BuildEvent::Aux(id) if quiet => {
                    vec![
                        json!({ "stream": format!("{id}\n") }),
                        json!({"aux": {"ID": id}}),
                    ]
                }
                BuildEvent::Aux(id) => vec![json!({"aux": {"ID": id}})],
            };
            for m in msgs {
                if tx.send(line(&m)).await.is_err() {
                    // The client left: dropping the receiver tells the build to stop.
                    return;
                }
            }
        }
        let err = match job.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("build failed: {e}")),
        };
        if let Some(msg) = err {
            let _ = tx
                .send(line(
                    &json!({"errorDetail": {"message": msg}, "error": msg}),
                ))
                .await;
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response())
}

/// `POST /build/prune`.
pub async fn prune(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let (removed, reclaimed) = st.engine.prune_build_cache().await?;
    Ok(Json(
        json!({"CachesDeleted": removed, "SpaceReclaimed": reclaimed}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_decodes_like_the_classic_builder() {
        let r = request(&pairs(&[
            ("t", "a:1"),
            ("t", "b"),
            ("buildargs", r#"{"X":"1","Y":null}"#),
            ("labels", r#"{"l":"v"}"#),
            ("nocache", "1"),
            ("rm", "0"),
            ("q", "true"),
            ("dockerfile", "sub/Dockerfile"),
        ]))
        .unwrap();
        assert_eq!(r.tags, vec!["a:1", "b"]);
        assert_eq!(r.build_args["X"].as_deref(), Some("1"));
        assert_eq!(r.build_args["Y"], None);
        assert_eq!(r.labels["l"], "v");
        assert!(r.no_cache && !r.remove && r.quiet);
        assert_eq!(r.dockerfile, "sub/Dockerfile");
        // Defaults: rm on, nothing else.
        let r = request(&[]).unwrap();
        assert!(r.remove && !r.no_cache && !r.force_remove && !r.pull);
    }

    #[test]
    fn bad_queries_are_refused() {
        assert!(request(&pairs(&[("buildargs", "{not json")])).is_err());
        assert!(request(&pairs(&[("t", "UPPER:case")])).is_err());
        assert!(request(&pairs(&[("remote", "https://x/y.git")])).is_err());
    }
}
