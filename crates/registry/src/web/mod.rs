//! The directory: a server-rendered web page listing repositories (tags, sizes, platforms, last push, the
//! pull command to copy, a search box), a page per repository (its tags, each manifest's layers and config),
//! and `/v1/search`, the search API `docker search` speaks. When authentication is on, only repositories
//! anonymous users may pull are shown.

mod html;
mod summary;

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};

pub use summary::{Summaries, Summary};

use crate::api::{ApiError, AppState};
use crate::auth::{Action, Principal};

/// Repositories the directory may show.
async fn visible(st: &AppState) -> Result<Vec<String>, ApiError> {
    let all = st
        .registry
        .meta()
        .repositories()
        .await
        .map_err(crate::registry::RegistryError::from)?;
    if !st.auth.enabled() {
        return Ok(all);
    }
    Ok(all
        .into_iter()
        .filter(|r| {
            st.auth
                .rules
                .allowed(&Principal::Anonymous, r)
                .contains(&Action::Pull)
        })
        .collect())
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost")
        .to_string()
}

/// `GET /v1/search?q=&n=&page=`.
pub(crate) async fn search(st: &AppState, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let q = crate::api::query(req.uri());
    let term = q.get("q").cloned().unwrap_or_default();
    let n = q
        .get("n")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(25)
        .min(100);
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let needle = term.to_ascii_lowercase();
    let hits: Vec<String> = visible(st)
        .await?
        .into_iter()
        .filter(|r| r.contains(&needle))
        .collect();
    let total = hits.len();
    let mut results = Vec::new();
    for name in hits.into_iter().skip((page - 1) * n).take(n) {
        let tags = st
            .registry
            .meta()
            .tags(&name)
            .await
            .map_err(crate::registry::RegistryError::from)?;
        let description = match tags.len() {
            0 => String::new(),
            1 => "1 tag".to_string(),
            k => format!("{k} tags"),
        };
        results.push(serde_json::json!({
            "name": name, "description": description, "star_count": 0,
            "is_official": false, "is_automated": false,
        }));
    }
    Ok(axum::Json(serde_json::json!({
        "num_results": total, "query": term, "page": page, "page_size": n,
        "num_pages": total.div_ceil(n).max(1), "results": results,
    }))
    .into_response())
}

/// `GET /` and `GET /r/<name>`.
pub(crate) async fn page(st: &AppState, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    let path = req.uri().path().to_string();
    let host = host(req.headers());
    if path == "/" {
        let q = crate::api::query(req.uri()).remove("q").unwrap_or_default();
        let mut cards = Vec::new();
        for name in visible(st).await? {
            if !q.is_empty() && !name.contains(&q.to_ascii_lowercase()) {
                continue;
            }
            cards.push(summary::repository(st, &name).await?);
        }
        return Ok(html::index(&host, &q, &cards).into_response());
    }
    if let Some(name) = path.strip_prefix("/r/") {
        if !crate::name::valid_repository(name) || !visible(st).await?.iter().any(|r| r == name) {
            return Ok((axum::http::StatusCode::NOT_FOUND, html::not_found(name)).into_response());
        }
        let repo = summary::repository(st, name).await?;
        let mut manifests = Vec::new();
        for t in &repo.tags {
            if !manifests
                .iter()
                .any(|(d, _): &(crate::digest::Digest, Summary)| *d == t.digest)
            {
                manifests.push((
                    t.digest.clone(),
                    summary::manifest(st, name, &t.digest).await?,
                ));
            }
        }
        return Ok(html::repository(&host, &repo, &manifests).into_response());
    }
    Err(ApiError::NotFound)
}
