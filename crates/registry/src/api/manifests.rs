//! Manifest, tag, catalog and referrers endpoints.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::{empty, finish, header_value, page_params, query, ApiError, AppState};
use crate::manifest::OCI_INDEX;
use crate::registry::{Page, RegistryError};

/// GET or HEAD of a manifest. A reference that is not a valid tag (nor a digest) names no manifest, so
/// it is answered `404 MANIFEST_UNKNOWN` as the spec requires for a manifest not found (and as the OCI
/// conformance suites check with `.INVALID_MANIFEST_NAME`); a PUT to it is still `400 TAG_INVALID`.
pub(super) async fn get(
    st: &AppState,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, ApiError> {
    let reg = &st.registry;
    let unknown = |e: RegistryError| match e {
        RegistryError::TagInvalid(t) => RegistryError::ManifestUnknown(t),
        e => e,
    };
    let (digest, link, body) = if head {
        let (d, l) = reg.manifest_link(name, reference).await.map_err(unknown)?;
        (d, l, None)
    } else {
        let m = reg.manifest(name, reference).await.map_err(unknown)?;
        (m.digest, m.link, Some(m.body))
    };
    let b = empty(StatusCode::OK)
        .header(header::CONTENT_TYPE, header_value(&link.media_type))
        .header(header::CONTENT_LENGTH, link.size)
        .header("docker-content-digest", header_value(&digest.to_string()))
        .header(header::ETAG, header_value(&format!("\"{digest}\"")));
    Ok(finish(b, body.map(Body::from).unwrap_or_else(Body::empty)))
}

/// Reads a whole body of at most `limit` bytes, or fails with 413.
pub(crate) async fn read_limited(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge(limit as u64));
    }
    match http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::BodyTooLarge(limit as u64))
        }
        Err(e) => Err(ApiError::BadRequest {
            code: "MANIFEST_INVALID",
            message: format!("reading the request body: {e}"),
        }),
    }
}

pub(super) async fn put(
    st: &AppState,
    name: &str,
    reference: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(req, st.registry.options().max_manifest_bytes).await?;
    let res = st
        .registry
        .put_manifest(name, reference, ct.as_deref(), body)
        .await?;
    let mut b = empty(StatusCode::CREATED)
        .header(
            header::LOCATION,
            header_value(&format!("/v2/{name}/manifests/{}", res.digest)),
        )
        .header(header::CONTENT_LENGTH, 0)
        .header(
            "docker-content-digest",
            header_value(&res.digest.to_string()),
        );
    if let Some(s) = &res.subject {
        b = b.header("oci-subject", header_value(&s.to_string()));
    }
    Ok(finish(b, Body::empty()))
}

pub(super) async fn delete(
    st: &AppState,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    st.registry.delete_manifest(name, reference).await?;
    Ok(finish(
        empty(StatusCode::ACCEPTED).header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    ))
}

fn paged(json: serde_json::Value, page: &Page, next_path: &str, n: Option<usize>) -> Response {
    let mut resp = axum::Json(json).into_response();
    if page.more {
        if let (Some(last), Some(n)) = (page.items.last(), n) {
            let q = serde_urlencoded::to_string([("n", n.to_string()), ("last", last.clone())])
                .unwrap_or_default();
            resp.headers_mut().insert(
                header::LINK,
                header_value(&format!("<{next_path}?{q}>; rel=\"next\"")),
            );
        }
    }
    resp
}

pub(super) async fn tags(st: &AppState, name: &str, req: Request) -> Result<Response, ApiError> {
    let q = query(req.uri());
    let (n, last) = page_params(&q)?;
    let page = st.registry.tags(name, n, last.as_deref()).await?;
    let json = serde_json::json!({"name": name, "tags": page.items});
    Ok(paged(json, &page, &format!("/v2/{name}/tags/list"), n))
}

pub(super) async fn catalog(st: &AppState, req: Request) -> Result<Response, ApiError> {
    let q = query(req.uri());
    let (n, last) = page_params(&q)?;
    let page = st.registry.catalog(n, last.as_deref()).await?;
    let json = serde_json::json!({"repositories": page.items});
    Ok(paged(json, &page, "/v2/_catalog", n))
}

pub(super) async fn referrers(
    st: &AppState,
    name: &str,
    digest: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query(req.uri());
    let filter = q.get("artifactType").filter(|s| !s.is_empty());
    let list = match st
        .registry
        .referrers(name, digest, filter.map(String::as_str))
        .await
    {
        Ok(l) => l,
        Err(RegistryError::NameUnknown(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list});
    let mut b = empty(StatusCode::OK).header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    Ok(finish(
        b,
        Body::from(serde_json::to_vec(&body).unwrap_or_default()),
    ))
}
