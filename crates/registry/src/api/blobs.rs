//! Blob endpoints: GET/HEAD (with `Range`), DELETE, and uploads (monolithic, chunked, single-POST,
//! cross-repository mount).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;

use super::{authorize, empty, finish, header_value, query, ApiError, AppState};
use crate::auth::{Action, Resource};
use crate::registry::RegistryError;
use crate::storage::uploads::SessionHandle;

/// Parses `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (suffix: needs the size).
fn parse_range(headers: &HeaderMap) -> Result<Option<RangeSpec>, ApiError> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest {
        code: "RANGE_INVALID",
        message: "malformed range header".into(),
    };
    let s = v.to_str().map_err(|_| bad())?;
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') {
        return Err(bad());
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |x: &str| x.trim().parse::<u64>().map_err(|_| bad());
    Ok(Some(match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => RangeSpec::Suffix(num(b)?),
        (false, true) => RangeSpec::From(num(a)?, None),
        (false, false) => RangeSpec::From(num(a)?, Some(num(b)?)),
        (true, true) => return Err(bad()),
    }))
}

enum RangeSpec {
    From(u64, Option<u64>),
    Suffix(u64),
}

pub(super) async fn get(
    st: &AppState,
    name: &str,
    digest: &str,
    head: bool,
    req: Request,
) -> Result<Response, ApiError> {
    let reg = &st.registry;
    if head {
        let (d, size) = reg.blob_size(name, digest).await?;
        let b = empty(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::ACCEPT_RANGES, "bytes")
            .header("docker-content-digest", header_value(&d.to_string()))
            .header(header::ETAG, header_value(&format!("\"{d}\"")));
        return Ok(finish(b, Body::empty()));
    }
    let range = match parse_range(req.headers())? {
        None => None,
        Some(RangeSpec::From(a, b)) => Some((a, b)),
        Some(RangeSpec::Suffix(n)) => {
            let (_, size) = reg.blob_size(name, digest).await?;
            if n == 0 {
                return Err(RegistryError::BlobRangeInvalid { size }.into());
            }
            Some((size.saturating_sub(n), None))
        }
    };
    let (d, size, r, stream) = reg.read_blob(name, digest, range).await?;
    let metrics = st.metrics.clone();
    let stream = stream.inspect_ok(move |b| {
        metrics
            .bytes_sent
            .fetch_add(b.len() as u64, Ordering::Relaxed);
    });
    let mut b = empty(if r.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    })
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .header(header::ACCEPT_RANGES, "bytes")
    .header("docker-content-digest", header_value(&d.to_string()))
    .header(header::ETAG, header_value(&format!("\"{d}\"")));
    b = match r {
        Some(r) => b
            .header(header::CONTENT_LENGTH, r.end - r.start + 1)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            ),
        None => b.header(header::CONTENT_LENGTH, size),
    };
    Ok(finish(b, Body::from_stream(stream)))
}

pub(super) async fn delete(st: &AppState, name: &str, digest: &str) -> Result<Response, ApiError> {
    st.registry.delete_blob(name, digest).await?;
    Ok(finish(
        empty(StatusCode::ACCEPTED).header(header::CONTENT_LENGTH, 0),
        Body::empty(),
    ))
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn progress(status: StatusCode, name: &str, id: &str, offset: u64) -> Response {
    let b = empty(status)
        .header(header::LOCATION, header_value(&upload_location(name, id)))
        .header(header::RANGE, format!("0-{}", offset.saturating_sub(1)))
        .header(header::CONTENT_LENGTH, 0)
        .header("docker-upload-uuid", header_value(id));
    finish(b, Body::empty())
}

fn created(name: &str, digest: &crate::digest::Digest) -> Response {
    let b = empty(StatusCode::CREATED)
        .header(
            header::LOCATION,
            header_value(&format!("/v2/{name}/blobs/{digest}")),
        )
        .header(header::CONTENT_LENGTH, 0)
        .header("docker-content-digest", header_value(&digest.to_string()));
    finish(b, Body::empty())
}

/// `Content-Range: <start>-<end>` of a PATCH (the spec's form, no unit).
fn content_range(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let start = s
        .split_once('-')
        .and_then(|(a, _)| a.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::BadRequest {
            code: "BLOB_UPLOAD_INVALID",
            message: format!("malformed content-range {s:?}"),
        })?;
    Ok(Some(start))
}

fn body_stream(
    st: &AppState,
    req: Request,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, axum::Error>> + Send {
    let metrics: Arc<crate::metrics::Metrics> = st.metrics.clone();
    req.into_body().into_data_stream().inspect_ok(move |b| {
        metrics
            .bytes_received
            .fetch_add(b.len() as u64, Ordering::Relaxed);
    })
}

pub(super) async fn upload(
    st: &AppState,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let reg = &st.registry;
    let method = req.method().clone();
    if id.is_empty() {
        if method != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        let q = query(req.uri());
        if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
            let may_pull = authorize(
                st,
                req.headers(),
                &Resource::Repository(from.clone()),
                &[Action::Pull],
            )
            .is_ok();
            if may_pull {
                if let Some(d) = reg.mount(name, from, mount).await? {
                    return Ok(created(name, &d));
                }
            }
        }
        let h = reg.start_upload(name).await?;
        if let Some(digest) = q.get("digest") {
            let d = reg.finish_upload(&h, digest, body_stream(st, req)).await?;
            return Ok(created(name, &d));
        }
        let id = h.lock().await.id.clone();
        return Ok(progress(StatusCode::ACCEPTED, name, &id, 0));
    }
    let h: SessionHandle = reg.upload(name, id).await?;
    match method {
        Method::GET => {
            let offset = h.lock().await.offset;
            Ok(progress(StatusCode::NO_CONTENT, name, id, offset))
        }
        Method::PATCH => {
            let start = content_range(req.headers())?;
            let offset = reg.append(&h, start, body_stream(st, req)).await?;
            Ok(progress(StatusCode::ACCEPTED, name, id, offset))
        }
        Method::PUT => {
            let q = query(req.uri());
            let Some(digest) = q.get("digest").cloned() else {
                reg.cancel_upload(&h).await;
                return Err(RegistryError::DigestInvalid("digest parameter missing".into()).into());
            };
            if let Some(start) = content_range(req.headers())? {
                let offset = h.lock().await.offset;
                if start != offset {
                    return Err(RegistryError::RangeInvalid { offset }.into());
                }
            }
            let d = reg.finish_upload(&h, &digest, body_stream(st, req)).await?;
            Ok(created(name, &d))
        }
        Method::DELETE => {
            reg.cancel_upload(&h).await;
            Ok(finish(
                empty(StatusCode::NO_CONTENT).header(header::CONTENT_LENGTH, 0),
                Body::empty(),
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}
