//! `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=` (body: a container config whose set
//! fields override the container's) → `201 {"Id": "sha256:..."}`.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_engine::container::commit::CommitRequest;
use serde_json::{json, Value};

/// Decodes the query (where `changes` may repeat, one per `--change`) and the body.
pub fn request(pairs: &[(String, String)], body: &[u8]) -> ApiResult<CommitRequest> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let container = get("container").unwrap_or_default();
    if container.is_empty() {
        return Err(ApiError::bad_request("No container name or ID supplied"));
    }
    // Docker: pausing is the default since API 1.13; an explicit false turns it off.
    let pause = match get("pause").as_deref() {
        None | Some("") => true,
        Some(v) => matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
    };
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
        )
    };
    Ok(CommitRequest {
        container,
        repo: get("repo").unwrap_or_default(),
        tag: get("tag").unwrap_or_default(),
        comment: get("comment").unwrap_or_default(),
        author: get("author").unwrap_or_default(),
        pause,
        changes: pairs
            .iter()
            .filter(|(k, v)| k == "changes" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        config,
    })
}

pub async fn commit(
    State(st): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = request(&pairs, &body)?;
    let img = st.engine.commit(req).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": img.id }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn queries_decode_like_dockerd() {
        let r = request(
            &pairs("container=web&repo=app&tag=v1&changes=A&changes=B"),
            b"null",
        )
        .unwrap();
        assert_eq!(
            (r.container.as_str(), r.repo.as_str(), r.tag.as_str()),
            ("web", "app", "v1")
        );
        assert!(r.pause, "pause defaults to true");
        assert_eq!(r.changes, vec!["A", "B"]);
        assert_eq!(r.config, Some(Value::Null));
        let r = request(&pairs("container=web&pause=0"), b"").unwrap();
        assert!(!r.pause);
        assert!(r.config.is_none());
        assert!(request(&pairs("repo=x"), b"").is_err());
        assert!(request(&pairs("container=x"), b"{bad").is_err());
    }
}
