//! The HTTP API: the OCI distribution endpoints under `/v2/`, the token endpoint, `/v1/search`, `/metrics`
//! and the web directory. Repository names contain `/`, so paths are routed here by hand
//! ([`Route::parse`]) rather than by a path router; every handler turns its request into typed
//! [`Registry`](crate::registry::Registry) calls, and every failure becomes an [`ApiError`] answered in one place.

mod blobs;
pub mod error;
mod manifests;
mod token;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

pub use error::ApiError;

use crate::auth::{Action, Auth, Refusal, Resource};
use crate::metrics::Metrics;
use crate::registry::Registry;

/// Everything a request handler needs.
pub struct AppState {
    /// The registry service.
    pub registry: Arc<Registry>,
    /// The auth policy.
    pub auth: Auth,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether the listener is TLS (for URLs in challenges).
    pub tls: bool,
    /// The directory's cache of manifest summaries.
    pub summaries: crate::web::Summaries,
}

/// The axum application.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

/// A parsed `/v2/` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/` (the id is empty) or `/v2/<name>/blobs/uploads/<id>`.
    Upload(String, String),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(String, String),
}

impl Route {
    /// Parses a path below `/v2`; `None` for anything else. The name is not validated here.
    pub fn parse(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Route::Base);
        }
        let rest = rest.strip_prefix('/')?;
        if rest == "_catalog" {
            return Some(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags(name.to_string()));
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let join = |k: usize| segs[..k].join("/");
        if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            return Some(Route::Upload(join(n - 3), segs[n - 1].to_string()));
        }
        if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            return Some(Route::Upload(join(n - 2), String::new()));
        }
        if n >= 3 {
            let (kind, last) = (segs[n - 2], segs[n - 1].to_string());
            let name = join(n - 2);
            return match kind {
                "manifests" => Some(Route::Manifest(name, last)),
                "blobs" => Some(Route::Blob(name, last)),
                "referrers" => Some(Route::Referrers(name, last)),
                _ => None,
            };
        }
        None
    }
}

/// Query parameters (the last of repeated keys wins; see `query_all`).
pub(crate) fn query(req_uri: &axum::http::Uri) -> HashMap<String, String> {
    query_all(req_uri).into_iter().collect()
}

pub(crate) fn query_all(req_uri: &axum::http::Uri) -> Vec<(String, String)> {
    req_uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

/// `scheme://host` of a request, for absolute URLs.
pub(crate) fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{}://{host}", if st.tls { "https" } else { "http" })
}

/// Checks access; turns a refusal into the error to send.
pub(crate) fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    resource: &Resource,
    actions: &[Action],
) -> Result<crate::auth::Principal, ApiError> {
    st.auth
        .check(headers, &base_url(st, headers), resource, actions)
        .map_err(|r| match r {
            Refusal::Unauthorized(challenge) => ApiError::Unauthorized { challenge },
            Refusal::Denied => ApiError::Denied,
        })
}

pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    st.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let result = if path == "/v2" || path.starts_with("/v2/") {
        v2(&st, req).await
    } else if path == "/token" {
        token::handle(&st, req).await
    } else if path == "/v1/search" {
        crate::web::search(&st, req).await
    } else if path == "/metrics" && method == Method::GET {
        Ok((
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            st.metrics.render(st.registry.uploads().in_flight()),
        )
            .into_response())
    } else if path == "/healthz" {
        Ok("ok".into_response())
    } else {
        crate::web::page(&st, req).await
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    if path.starts_with("/v2") {
        resp.headers_mut().insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
    }
    st.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let took = started.elapsed();
    let status = resp.status().as_u16();
    st.metrics.observe(method.as_str(), status, took);
    // The path only: query strings and headers (credentials) are never logged.
    if (method == Method::GET || method == Method::HEAD) && status < 400 {
        tracing::debug!(method = %method, path = %path, status, micros = took.as_micros() as u64, "request");
    } else {
        tracing::info!(method = %method, path = %path, status, micros = took.as_micros() as u64, "request");
    }
    resp
}

async fn v2(st: &AppState, req: Request) -> Result<Response, ApiError> {
    let Some(route) = Route::parse(req.uri().path()) else {
        return Err(ApiError::NotFound);
    };
    let method = req.method().clone();
    match route {
        Route::Base => {
            authorize(st, req.headers(), &Resource::Base, &[])?;
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        Route::Catalog => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            authorize(st, req.headers(), &Resource::Catalog, &[])?;
            manifests::catalog(st, req).await
        }
        Route::Tags(name) => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Registry::check_name(&name)?;
            authorize(
                st,
                req.headers(),
                &Resource::Repository(name.clone()),
                &[Action::Pull],
            )?;
            manifests::tags(st, &name, req).await
        }
        Route::Referrers(name, digest) => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Registry::check_name(&name)?;
            authorize(
                st,
                req.headers(),
                &Resource::Repository(name.clone()),
                &[Action::Pull],
            )?;
            manifests::referrers(st, &name, &digest, req).await
        }
        Route::Manifest(name, reference) => {
            Registry::check_name(&name)?;
            let action = action_for(&method)?;
            authorize(
                st,
                req.headers(),
                &Resource::Repository(name.clone()),
                &action,
            )?;
            match method {
                Method::GET | Method::HEAD => {
                    manifests::get(st, &name, &reference, method == Method::HEAD).await
                }
                Method::PUT => manifests::put(st, &name, &reference, req).await,
                Method::DELETE => manifests::delete(st, &name, &reference).await,
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        Route::Blob(name, digest) => {
            Registry::check_name(&name)?;
            let action = action_for(&method)?;
            authorize(
                st,
                req.headers(),
                &Resource::Repository(name.clone()),
                &action,
            )?;
            match method {
                Method::GET | Method::HEAD => {
                    blobs::get(st, &name, &digest, method == Method::HEAD, req).await
                }
                Method::DELETE => blobs::delete(st, &name, &digest).await,
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        Route::Upload(name, id) => {
            Registry::check_name(&name)?;
            let action = if method == Method::GET {
                vec![Action::Pull]
            } else {
                vec![Action::Pull, Action::Push]
            };
            authorize(
                st,
                req.headers(),
                &Resource::Repository(name.clone()),
                &action,
            )?;
            blobs::upload(st, &name, &id, req).await
        }
    }
}

fn action_for(m: &Method) -> Result<Vec<Action>, ApiError> {
    Ok(match *m {
        Method::GET | Method::HEAD => vec![Action::Pull],
        Method::PUT | Method::POST | Method::PATCH => vec![Action::Pull, Action::Push],
        Method::DELETE => vec![Action::Delete],
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

/// `n` and `last` from a query.
pub(crate) fn page_params(
    q: &HashMap<String, String>,
) -> Result<(Option<usize>, Option<String>), ApiError> {
    let n = match q.get("n") {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| ApiError::BadRequest {
            code: "PAGINATION_NUMBER_INVALID",
            message: format!("invalid page size {s:?}"),
        })?),
    };
    Ok((n, q.get("last").cloned()))
}

pub(crate) fn empty(status: StatusCode) -> axum::http::response::Builder {
    Response::builder().status(status)
}

pub(crate) fn finish(b: axum::http::response::Builder, body: Body) -> Response {
    b.body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn routes() {
        let r = |p: &str| Route::parse(p);
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2"), Some(Route::Base));
        assert_eq!(r("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(r("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            r("/v2/a/b/manifests/latest"),
            Some(Route::Manifest("a/b".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/sha256:x"),
            Some(Route::Blob("a".into(), "sha256:x".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads/"),
            Some(Route::Upload("a".into(), String::new()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads"),
            Some(Route::Upload("a".into(), String::new()))
        );
        assert_eq!(
            r("/v2/a/b/blobs/uploads/abc"),
            Some(Route::Upload("a/b".into(), "abc".into()))
        );
        assert_eq!(
            r("/v2/blobs/blobs/blobs/x"),
            Some(Route::Blob("blobs/blobs".into(), "x".into()))
        );
        assert_eq!(
            r("/v2/a/referrers/sha256:x"),
            Some(Route::Referrers("a".into(), "sha256:x".into()))
        );
        assert_eq!(r("/v2/a/other/x"), None);
        assert_eq!(r("/v2x"), None);
        assert_eq!(
            r("/v2/../etc/manifests/x"),
            Some(Route::Manifest("../etc".into(), "x".into()))
        );
    }
}
