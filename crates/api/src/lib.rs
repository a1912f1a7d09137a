//! berth-api: the Docker Engine API over HTTP/1.1 on a unix socket (or TCP), on top of [`berth_engine`].
//!
//! Handlers decode requests into typed engine calls and encode answers in Docker's JSON shapes; errors map to
//! status codes in ONE place ([`error::ApiError`]). Version prefixes (`/v1.24/` … `/v1.47/`) are stripped
//! before routing. Streams: attach is hijacked (`Upgrade: tcp`, 101) and multiplexed with Docker's 8-byte
//! header when the container has no TTY; logs, events, load and import progress are chunked bodies.

#![recursion_limit = "256"]

mod archive;
mod build;
mod commit;
mod containers;
pub mod error;
mod exec;
mod images;
mod networks;
mod observe;
mod params;
mod registry;
pub mod streams;
mod system;
mod volumes;

use axum::extract::Request;
use axum::routing::{get, post};
use axum::Router;
use berth_engine::Engine;
use tower::ServiceExt;

/// The newest API version served in full; the CLI negotiates down to it.
pub const API_VERSION: &str = "1.47";
/// The oldest accepted.
pub const MIN_API_VERSION: &str = "1.24";

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub version: String,
}

/// The router, without the version-prefix rewrite (see [`service`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/auth", post(registry::auth))
        .route("/system/df", get(system::df))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/resize", post(exec::container_resize))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/containers/{id}/logs", get(streams::logs))
        .route("/containers/{id}/pause", post(observe::pause))
        .route("/containers/{id}/unpause", post(observe::unpause))
        .route("/containers/{id}/top", get(observe::top))
        .route("/containers/{id}/stats", get(observe::stats))
        .route("/containers/{id}/changes", get(observe::changes))
        .route("/containers/{id}/export", get(observe::export))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/commit", post(commit::commit))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/containers/{id}/attach", post(streams::attach))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/images/json", get(images::list))
        .route("/images/search", get(registry::search))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .fallback(system::not_found)
        .with_state(state)
}

/// Strip a `/v1.xx` prefix, refusing versions outside what we serve, like dockerd.
fn rewrite_version(mut req: Request) -> Result<Request, error::ApiError> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some((ver, tail)) = rest.split_once('/') {
            if ver
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                && ver.contains('.')
            {
                if version_cmp(ver, API_VERSION) == std::cmp::Ordering::Greater {
                    return Err(error::ApiError::bad_request(format!(
                        "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
                    )));
                }
                if version_cmp(ver, MIN_API_VERSION) == std::cmp::Ordering::Less {
                    return Err(error::ApiError::bad_request(format!(
                        "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    )));
                }
                let new_path = format!("/{tail}");
                let pq = match req.uri().query() {
                    Some(q) => format!("{new_path}?{q}"),
                    None => new_path,
                };
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = pq.parse().ok();
                if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    Ok(req)
}

/// Compare dotted versions numerically.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let p = |s: &str| {
        s.split('.')
            .map(|x| x.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    p(a).cmp(&p(b))
}

/// The whole HTTP service: version rewrite in front of the router.
pub fn service(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let router = router(state);
    tower::service_fn(move |req: Request| {
        let router = router.clone();
        async move {
            match rewrite_version(req) {
                Ok(req) => router.oneshot(req).await,
                Err(e) => Ok(axum::response::IntoResponse::into_response(e)),
            }
        }
    })
}

/// Serve the API on a unix socket until `shutdown` resolves.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let svc = service(state);
    let make = axum::ServiceExt::<Request>::into_make_service(svc);
    axum::serve(listener, make)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serve the API on TCP until `shutdown` resolves.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let svc = service(state);
    let make = axum::ServiceExt::<Request>::into_make_service(svc);
    axum::serve(listener, make)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(version_cmp("1.9", "1.24"), std::cmp::Ordering::Less);
        assert_eq!(version_cmp("1.47", "1.47"), std::cmp::Ordering::Equal);
        assert_eq!(version_cmp("1.48", "1.47"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn version_prefix_is_stripped_and_checked() {
        let req = Request::builder()
            .uri("/v1.45/containers/json?all=1")
            .body(axum::body::Body::empty())
            .unwrap();
        let req = rewrite_version(req).unwrap();
        assert_eq!(req.uri().path(), "/containers/json");
        assert_eq!(req.uri().query(), Some("all=1"));
        let req = Request::builder()
            .uri("/v1.99/info")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(rewrite_version(req).is_err());
        let req = Request::builder()
            .uri("/v1.12/info")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(rewrite_version(req).is_err());
        let req = Request::builder()
            .uri("/volumes")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(rewrite_version(req).unwrap().uri().path(), "/volumes");
    }
}
