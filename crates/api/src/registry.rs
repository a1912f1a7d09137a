//! Pull (`/images/create?fromImage=`), push (`/images/{name}/push`) and `/auth`, with Docker's JSON progress
//! stream and `X-Registry-Auth`.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use berth_distribution::{Credential, Event, Progress};
use serde::Deserialize;
use serde_json::{json, Value};

/// The credentials a client sent in `X-Registry-Auth` (base64url JSON), if any.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<Credential>> {
    let Some(raw) = headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(None);
    };
    let raw = raw.trim();
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
        })
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not base64"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) || bytes == b"{}" {
        return Ok(None);
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct AuthConfig {
        username: String,
        password: String,
        auth: String,
        identitytoken: String,
    }
    let a: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    let (mut user, mut pass) = (a.username, a.password);
    if user.is_empty() && !a.auth.is_empty() {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&a.auth) {
            if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                user = u.to_string();
                pass = p.to_string();
            }
        }
    }
    if user.is_empty() && a.identitytoken.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: user,
        password: pass,
        identity_token: (!a.identitytoken.is_empty()).then_some(a.identitytoken),
    }))
}

/// One progress event as Docker's JSON message.
pub fn progress_json(p: &Progress) -> Value {
    let mut v = json!({"status": p.status()});
    if let Some(id) = &p.id {
        v["id"] = json!(id);
    }
    match (&p.event, p.current, p.total) {
        (Event::Downloading | Event::Extracting | Event::Pushing, Some(c), t) => {
            v["progressDetail"] = json!({"current": c, "total": t.unwrap_or(0)});
        }
        (
            Event::PullingFsLayer
            | Event::Waiting
            | Event::Preparing
            | Event::PullComplete
            | Event::Pushed,
            _,
            _,
        ) => {
            v["progressDetail"] = json!({});
        }
        _ => {}
    }
    v
}

/// The messages for one event: the push's digest line is followed by Docker's `aux` message (which clients
/// read as data, not text).
pub fn progress_messages(p: &Progress) -> Vec<Value> {
    let mut out = vec![progress_json(p)];
    if let Event::PushDigest { tag, digest, size } = &p.event {
        out.push(
            json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
        );
    }
    out
}

fn line(v: &Value) -> Result<Vec<u8>, std::io::Error> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Ok(b)
}

/// Stream a pull or push: progress lines while it runs, then its error (if any) as Docker's `errorDetail`.
fn progress_stream<F>(
    run: impl FnOnce(tokio::sync::mpsc::UnboundedSender<Progress>) -> F + Send + 'static,
) -> Response
where
    F: std::future::Future<Output = Result<(), berth_engine::EngineError>> + Send + 'static,
{
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let job = tokio::spawn(run(ptx));
    tokio::spawn(async move {
        while let Some(p) = prx.recv().await {
            for m in progress_messages(&p) {
                if tx.send(line(&m)).await.is_err() {
                    // The client left; the job goes on (a pull the client gave up on still completes).
                    return;
                }
            }
        }
        let err = match job.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("pull failed: {e}")),
        };
        if let Some(msg) = err {
            let _ = tx
                .send(line(
                    &json!({"errorDetail": {"message": msg}, "error": msg}),
                ))
                .await;
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(crate::system::tokio_stream_from(rx)),
    )
        .into_response()
}

pub async fn pull(
    st: AppState,
    image: String,
    tag: Option<String>,
    platform: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let tag = tag.filter(|t| !t.is_empty());
    let parsed = berth_image::Reference::parse_named(&image)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cred = registry_auth(headers)?;
    // No tag anywhere: the docker CLI's `pull --all-tags` (a plain `pull` always sends one).
    if tag.is_none() && parsed.tag().is_none() && parsed.digest().is_none() && !image.contains('@')
    {
        let engine = st.engine.clone();
        return Ok(progress_stream(move |ptx| async move {
            engine
                .pull_all_tags(&image, platform.as_deref(), cred, ptx)
                .await
                .map(|_| ())
        }));
    }
    let name = match tag {
        Some(t) if !image.contains('@') => format!("{image}:{t}"),
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        _ => image,
    };
    berth_image::Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if berth_engine::hello::is_hello(&name) && cred.is_none() {
        // The embedded image: present without a registry.
        st.engine.resolve_image(&name).await?;
        let lines = [
            line(&json!({"status": "Using the hello-world image built into berth"})),
            line(&json!({"status": format!("Status: Image is up to date for {name}")})),
        ];
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(futures_util::stream::iter(lines)),
        )
            .into_response());
    }
    let engine = st.engine.clone();
    Ok(progress_stream(move |ptx| async move {
        engine
            .pull(&name, platform.as_deref(), cred, ptx)
            .await
            .map(|_| ())
    }))
}

pub async fn push(
    st: AppState,
    name: String,
    tag: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let full = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name,
    };
    berth_image::Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    st.engine.resolve_image(&full).await?;
    let cred = registry_auth(headers)?;
    let engine = st.engine.clone();
    Ok(progress_stream(move |ptx| async move {
        engine.push(&full, cred, ptx).await.map(|_| ())
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthBody {
    username: String,
    password: String,
    serveraddress: String,
}

pub async fn auth(State(st): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: AuthBody = crate::params::json_body(&body)?;
    let server = if b.serveraddress.is_empty() {
        "https://index.docker.io/v1/".to_string()
    } else {
        b.serveraddress
    };
    let status = st
        .engine
        .login(&server, &b.username, &b.password)
        .await
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::UNAUTHORIZED,
            message: e.to_string(),
        })?;
    Ok(Json(json!({"Status": status, "IdentityToken": ""})))
}

/// `GET /images/search?term=&limit=`: the registry's `/v1/search`, as Docker's list of results.
pub async fn search(
    axum::extract::State(st): axum::extract::State<AppState>,
    axum::extract::Query(q): axum::extract::Query<crate::params::Query>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let term = q.get("term").cloned().unwrap_or_default();
    if term.is_empty() {
        return Err(ApiError::bad_request("term is required"));
    }
    let limit: usize = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid limit {l}: must be between 1 and 100"))
            })?,
        None => 25,
    };
    let f = crate::params::filters(&q)?;
    let cred = registry_auth(&headers)?;
    let mut results = st.engine.search(&term, limit, cred).await?;
    for (k, vals) in &f {
        for v in vals {
            match k.as_str() {
                "is-official" => {
                    let want = v == "true";
                    results.retain(|r| r.is_official == want)
                }
                "is-automated" => {
                    let want = v == "true";
                    results.retain(|r| r.is_automated == want)
                }
                "stars" => {
                    let n: u64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid filter 'stars={v}'"))
                    })?;
                    results.retain(|r| r.star_count >= n)
                }
                _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            }
        }
    }
    Ok(Json(serde_json::to_value(results).unwrap_or(Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_header_decodes_both_forms() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p","serveraddress":"r"}"#);
        h.insert("X-Registry-Auth", v.parse().unwrap());
        let c = registry_auth(&h).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:secret");
        let v = base64::engine::general_purpose::URL_SAFE.encode(format!(r#"{{"auth":"{auth}"}}"#));
        h.insert("X-Registry-Auth", v.parse().unwrap());
        let c = registry_auth(&h).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "secret")
        );
        h.insert("X-Registry-Auth", "e30=".parse().unwrap());
        assert!(registry_auth(&h).unwrap().is_none());
        h.insert("X-Registry-Auth", "!!!".parse().unwrap());
        assert!(registry_auth(&h).is_err());
    }
}
