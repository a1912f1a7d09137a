//! `docker push`: upload an image's blobs, then its manifest under the tag.
//!
//! Blobs upload `max_concurrent_uploads` at a time. Each is first checked with `HEAD` (present:
//! `Layer already exists`); then, when the image is known under another repository of the same
//! registry, a cross-repository mount is asked for (`POST .../blobs/uploads/?mount=&from=`, 201:
//! `Mounted from`); otherwise the upload session the registry opened is used: one monolithic
//! `PUT ?digest=` streamed from the content store, or, with `chunk_size`, `PATCH` chunks with
//! `Content-Range` and a final empty `PUT`. A failed upload starts over with back-off. The config
//! goes last, then the manifest: the exact bytes [`berth_image::ImageStore::push_manifest`] gives,
//! whose digest must be the one the registry answers with in `Docker-Content-Digest`. The repo
//! digest is recorded on the image, as Docker does.

use std::io::Read;
use std::time::Duration;

use berth_image::{BlobRef, ImageStore, Reference};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use crate::client::{repo_scope, status_error};
use crate::error::{blocking, DistError};
use crate::manifest::Repo;
use crate::progress::{Event, Progress};
use crate::RegistryClient;

/// How a push behaves.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploaded at once (`max-concurrent-uploads`).
    pub max_concurrent_uploads: usize,
    /// Upload in `PATCH` chunks of this many bytes instead of one `PUT`.
    pub chunk_size: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            max_concurrent_uploads: 5,
            chunk_size: None,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The manifest digest the registry stored.
    pub digest: String,
    /// The manifest's size.
    pub size: u64,
    pub tag: String,
    /// Blobs uploaded, mounted, and already present.
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
}

/// How one blob got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Uploaded,
    Mounted,
    Existing,
}

type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

struct Ctx<'a> {
    repo: Repo<'a>,
    store: ImageStore,
    opts: &'a PushOptions,
    mount_from: Vec<String>,
    progress: ProgressFn<'a>,
}

/// Pushes the image `reference` names (it must have a tag) to its registry.
pub async fn push(
    store: &ImageStore,
    client: &RegistryClient,
    reference: &Reference,
    opts: &PushOptions,
    progress: impl Fn(Progress) + Send + Sync,
) -> Result<PushOutcome, DistError> {
    if reference.digest().is_some() {
        return Err(DistError::Invalid {
            what: format!("push reference {reference}"),
            reason: "cannot push a digest reference".to_string(),
        });
    }
    let tag = reference
        .tag()
        .unwrap_or(berth_image::reference::DEFAULT_TAG)
        .to_string();
    let name = reference.familiar();
    let s = store.clone();
    let n = name.clone();
    let (pm, image) = blocking(move || Ok((s.push_manifest(&n)?, s.resolve(&n)?))).await?;
    // Other repositories of the same registry that hold this image: mount sources.
    let mut mount_from = Vec::new();
    for r in image.repo_tags.iter().chain(image.repo_digests.iter()) {
        if let Ok(other) = Reference::parse_named(r) {
            if other.domain() == reference.domain()
                && other.path() != reference.path()
                && !mount_from.iter().any(|m| m == other.path())
            {
                mount_from.push(other.path().to_string());
            }
        }
    }
    mount_from.truncate(3);
    let mut scopes = vec![repo_scope(reference.path(), "pull,push")];
    scopes.extend(mount_from.iter().map(|m| repo_scope(m, "pull")));
    let ep = client
        .endpoints(reference.domain(), false)
        .await?
        .pop()
        .ok_or_else(|| DistError::InvalidRegistry {
            name: reference.domain().to_string(),
            reason: "no endpoint".to_string(),
        })?;
    let ctx = Ctx {
        repo: Repo {
            client,
            ep,
            path: reference.path().to_string(),
            scopes,
            action: "push",
            display: reference.familiar_repository(),
        },
        store: store.clone(),
        opts,
        mount_from,
        progress: &progress,
    };
    progress(Progress::image(Event::PushRefersTo(reference.repository())));
    for l in &pm.layers {
        progress(Progress::layer(&l.digest, Event::Preparing));
    }
    let results: Vec<Sent> = futures_util::stream::iter(
        pm.layers
            .iter()
            .map(
                |l| -> futures_util::future::BoxFuture<'_, Result<Sent, DistError>> {
                    Box::pin(ctx.send_blob(l, true))
                },
            )
            .collect::<Vec<_>>(),
    )
    .buffer_unordered(opts.max_concurrent_uploads.max(1))
    .try_collect()
    .await?;
    let config = ctx.send_blob(&pm.config, false).await?;
    let count = |k: Sent| results.iter().chain([&config]).filter(|s| **s == k).count();

    let url = ctx.repo.url(&format!("manifests/{tag}"));
    let what = format!("manifest {}", pm.digest);
    let (bytes, media_type) = (pm.bytes.clone(), pm.media_type.clone());
    let resp = client
        .send(&ctx.repo.ep, &ctx.repo.req(&what, true), &|http| {
            http.put(&url)
                .header(CONTENT_TYPE, media_type.clone())
                .body(bytes.clone())
        })
        .await?;
    if !resp.status().is_success() {
        return Err(status_error(&ctx.repo.ep, resp, &what, "push", &ctx.repo.display).await);
    }
    if let Some(d) = resp
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
    {
        if d != pm.digest {
            return Err(DistError::PushRejected {
                what,
                reason: format!("the registry stored digest {d}, we sent {}", pm.digest),
            });
        }
    }
    let (s, r, d, id) = (
        store.clone(),
        reference.clone(),
        pm.digest.clone(),
        pm.image_id,
    );
    blocking(move || s.add_repo_digest(&r, &d, &id)).await?;
    let size = pm.bytes.len() as u64;
    progress(Progress::image(Event::PushDigest {
        tag: tag.clone(),
        digest: pm.digest.clone(),
        size,
    }));
    Ok(PushOutcome {
        digest: pm.digest,
        size,
        tag,
        uploaded: count(Sent::Uploaded),
        mounted: count(Sent::Mounted),
        existing: count(Sent::Existing),
    })
}

/// `Location` of an upload, made absolute against the endpoint.
fn absolute(base: &str, location: &str) -> Result<reqwest::Url, DistError> {
    let base_url = reqwest::Url::parse(&format!("{base}/")).map_err(|e| DistError::Invalid {
        what: "registry url".to_string(),
        reason: e.to_string(),
    })?;
    base_url.join(location).map_err(|e| DistError::Invalid {
        what: "upload location".to_string(),
        reason: e.to_string(),
    })
}

impl Ctx<'_> {
    fn report(&self, b: &BlobRef, show: bool, event: Event) {
        if show {
            (self.progress)(Progress::layer(&b.digest, event));
        }
    }

    async fn send_blob(&self, b: &BlobRef, show: bool) -> Result<Sent, DistError> {
        let what = format!("blob {}", b.digest);
        let head_url = self.repo.url(&format!("blobs/{}", b.digest));
        let head = self
            .repo
            .client
            .send(&self.repo.ep, &self.repo.req(&what, true), &|http| {
                http.head(&head_url)
            })
            .await?;
        if head.status().is_success() {
            self.report(b, show, Event::LayerAlreadyExists);
            return Ok(Sent::Existing);
        }
        if head.status() != StatusCode::NOT_FOUND {
            return Err(status_error(&self.repo.ep, head, &what, "push", &self.repo.display).await);
        }
        let attempts = self.repo.client.opts.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload(b, show, &what).await {
                Ok(sent) => return Ok(sent),
                Err(e) if attempt < attempts && retryable(&e) => {
                    tracing::info!(digest = %b.digest, error = %e, "upload failed; starting over");
                    let wait = self.repo.client.opts.retry_delay * (1 << attempt.min(5));
                    tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts an upload (or mounts), then sends the blob.
    async fn upload(&self, b: &BlobRef, show: bool, what: &str) -> Result<Sent, DistError> {
        let mut location = None;
        for from in &self.mount_from {
            let url = self
                .repo
                .url(&format!("blobs/uploads/?mount={}&from={from}", b.digest));
            let resp = self
                .repo
                .client
                .send(&self.repo.ep, &self.repo.req(what, false), &|http| {
                    http.post(&url).header(CONTENT_LENGTH, "0")
                })
                .await?;
            match resp.status() {
                StatusCode::CREATED => {
                    self.report(b, show, Event::MountedFrom(from.clone()));
                    return Ok(Sent::Mounted);
                }
                StatusCode::ACCEPTED => {
                    location = resp
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    break;
                }
                _ => {}
            }
        }
        let location = match location {
            Some(l) => l,
            None => self.start_upload(what).await?,
        };
        let mut url = absolute(&self.repo.ep.base, &location)?;
        self.report(b, show, Event::Pushing);
        if let Some(chunk) = self.opts.chunk_size.filter(|c| *c > 0) {
            url = self.patch_chunks(b, show, what, url, chunk).await?;
            url.query_pairs_mut().append_pair("digest", &b.digest);
            let resp = self
                .repo
                .client
                .send(&self.repo.ep, &self.repo.req(what, false), &|http| {
                    http.put(url.clone()).header(CONTENT_LENGTH, "0")
                })
                .await?;
            self.finish(b, resp, what).await?;
        } else {
            url.query_pairs_mut().append_pair("digest", &b.digest);
            let store = self.store.clone();
            let digest = b.digest.clone();
            let size = b.size;
            let resp =
                self.repo
                    .client
                    .send(&self.repo.ep, &self.repo.req(what, false), &|http| {
                        let body = match store.open_blob(&digest) {
                            Ok(f) => {
                                let f = tokio::fs::File::from_std(f);
                                reqwest::Body::wrap_stream(
                                    tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024),
                                )
                            }
                            // Sends nothing; the registry refuses the size and the error surfaces.
                            Err(_) => reqwest::Body::from(Vec::new()),
                        };
                        http.put(url.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, size)
                            .body(body)
                    })
                    .await?;
            self.finish(b, resp, what).await?;
        }
        if show {
            (self.progress)(Progress::bytes(&b.digest, Event::Pushing, b.size, b.size));
        }
        self.report(b, show, Event::Pushed);
        Ok(Sent::Uploaded)
    }

    async fn start_upload(&self, what: &str) -> Result<String, DistError> {
        let url = self.repo.url("blobs/uploads/");
        let resp = self
            .repo
            .client
            .send(&self.repo.ep, &self.repo.req(what, false), &|http| {
                http.post(&url).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(&self.repo.ep, resp, what, "push", &self.repo.display).await);
        }
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| DistError::PushRejected {
                what: what.to_string(),
                reason: "the registry gave no upload location".to_string(),
            })
    }

    async fn patch_chunks(
        &self,
        b: &BlobRef,
        show: bool,
        what: &str,
        mut url: reqwest::Url,
        chunk: u64,
    ) -> Result<reqwest::Url, DistError> {
        let store = self.store.clone();
        let digest = b.digest.clone();
        let mut file = blocking(move || store.open_blob(&digest)).await?;
        let mut offset = 0u64;
        while offset < b.size {
            let len = chunk.min(b.size - offset);
            let (f, data) = blocking(move || {
                let mut buf = Vec::with_capacity(len as usize);
                (&mut file).take(len).read_to_end(&mut buf).map_err(|e| {
                    berth_image::ImageError::Corrupt {
                        image: "blob".to_string(),
                        reason: format!("reading blob for upload: {e}"),
                    }
                })?;
                Ok((file, buf))
            })
            .await?;
            file = f;
            if data.len() as u64 != len {
                return Err(DistError::PushRejected {
                    what: what.to_string(),
                    reason: "the stored blob is shorter than recorded".to_string(),
                });
            }
            let range = format!("{}-{}", offset, offset + len - 1);
            let data = bytes::Bytes::from(data);
            let target = url.clone();
            let resp = self
                .repo
                .client
                .send(&self.repo.ep, &self.repo.req(what, false), &|http| {
                    http.patch(target.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header("Content-Range", range.clone())
                        .header(CONTENT_LENGTH, len)
                        .body(data.clone())
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(
                    status_error(&self.repo.ep, resp, what, "push", &self.repo.display).await,
                );
            }
            if let Some(l) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                url = absolute(&self.repo.ep.base, l)?;
            }
            offset += len;
            if show {
                (self.progress)(Progress::bytes(&b.digest, Event::Pushing, offset, b.size));
            }
        }
        Ok(url)
    }

    async fn finish(
        &self,
        b: &BlobRef,
        resp: reqwest::Response,
        what: &str,
    ) -> Result<(), DistError> {
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(&self.repo.ep, resp, what, "push", &self.repo.display).await);
        }
        if let Some(d) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != b.digest {
                return Err(DistError::PushRejected {
                    what: what.to_string(),
                    reason: format!("the registry stored digest {d}"),
                });
            }
        }
        Ok(())
    }
}

/// Whether a failed upload is worth starting over.
fn retryable(e: &DistError) -> bool {
    match e {
        DistError::Transport { source, .. } => !crate::error::is_permanent(source),
        DistError::TooManyRequests { .. } => true,
        DistError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_locations() {
        let u = absolute("http://127.0.0.1:5000", "/v2/a/blobs/uploads/x?_state=1").expect("url");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1"
        );
        let u = absolute("http://127.0.0.1:5000", "https://s3.example/up?x=1").expect("url");
        assert_eq!(u.host_str(), Some("s3.example"));
    }
}
