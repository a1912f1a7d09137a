//! `docker pull`: resolve the reference to an image manifest for the platform, then fetch config
//! and layers into the image store and commit.
//!
//! Layers download `max_concurrent_downloads` at a time. Each download streams through a bounded
//! channel into a blocking task that writes the blob to its resumable ingest file and unpacks it
//! at the same time ([`berth_image::IngestSession::unpack_stream`]): decompression, path-safe
//! extraction, the diff id and the blob digest are all checked on the stream, and the blob digest
//! before anything is published. Present blobs and snapshots are skipped. A connection that
//! fails or closes early is retried with back-off and resumed with `Range: bytes=<have>-` (the
//! ingest file survives cancellation and restarts too); a server that ignores `Range` gets a
//! fresh start. Bad content (digest mismatch, bombs, escaping tars) is not retried: the pull
//! fails and sweeps what it stored.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_image::media::{self, Manifest};
use berth_image::{
    BlobIngest, ImageError, ImageStore, IngestSession, LayerTarget, Platform, PulledImage,
    PulledLayer, Reference, UnpackLimits,
};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::RANGE;
use reqwest::StatusCode;
use tokio::sync::mpsc;

use crate::client::{repo_scope, status_error};
use crate::error::{blocking, lift_content_error, DistError};
use crate::manifest::{check_manifest, choose_platform, parse, sha256, Parsed, Repo};
use crate::progress::{Event, Progress};
use crate::RegistryClient;

/// How a pull behaves.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Layers downloaded at once (`max-concurrent-downloads`).
    pub max_concurrent_downloads: usize,
    /// Caps on what one layer may unpack to.
    pub limits: UnpackLimits,
    /// Largest manifest or index accepted (Docker: 4 MiB).
    pub max_manifest_size: u64,
    /// Largest image config accepted.
    pub max_config_size: u64,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            max_concurrent_downloads: 3,
            limits: UnpackLimits::default(),
            max_manifest_size: 4 << 20,
            max_config_size: 32 << 20,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub image: berth_image::Image,
    /// The repo digest: the digest of the manifest or index the reference resolved to.
    pub digest: String,
    /// False when the reference already named this image (`Image is up to date`).
    pub updated: bool,
}

fn cancelled() -> DistError {
    DistError::Task {
        reason: CANCELLED.to_string(),
    }
}

/// Feeds the blocking unpacker from the download.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
    remaining: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
                None if self.remaining > 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "download ended before the whole blob arrived",
                    ))
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

struct Ctx<'a> {
    repo: Repo<'a>,
    store: ImageStore,
    session: IngestSession,
    opts: &'a PullOptions,
    progress: ProgressFn<'a>,
    /// Set when a layer failed: the other downloads stop and wait for their unpackers, so the
    /// pull returns only once nothing is writing any more.
    cancelled: AtomicBool,
}

/// Why a layer download stopped early because another layer failed.
const CANCELLED: &str = "cancelled because another layer failed";

/// Pulls `reference` for `platform` into `store`; see the module documentation.
pub async fn pull(
    store: &ImageStore,
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    opts: &PullOptions,
    progress: impl Fn(Progress) + Send + Sync,
) -> Result<PullOutcome, DistError> {
    let result = pull_inner(store, client, reference, platform, opts, &progress).await;
    if let Err(e) = &result {
        if e.is_bad_content() {
            let s = store.clone();
            if let Err(gc) = blocking(move || s.collect_garbage()).await {
                tracing::warn!(error = %gc, "sweeping after a failed pull");
            }
        }
    }
    result
}

async fn pull_inner(
    store: &ImageStore,
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<PullOutcome, DistError> {
    let wanted = reference
        .digest()
        .or(reference.tag())
        .unwrap_or(berth_image::reference::DEFAULT_TAG)
        .to_string();
    let display = reference.familiar_repository();
    let endpoints = client.endpoints(reference.domain(), true).await?;
    let mut last_err = None;
    let mut found = None;
    for ep in endpoints {
        let repo = Repo {
            client,
            ep,
            path: reference.path().to_string(),
            scopes: vec![repo_scope(reference.path(), "pull")],
            action: "pull",
            display: display.clone(),
        };
        let what = format!("manifest for {}", reference.familiar());
        match repo
            .fetch_manifest(&wanted, &what, opts.max_manifest_size)
            .await
        {
            Ok(f) => {
                found = Some((repo, f));
                break;
            }
            Err(e) if repo.ep.mirror => {
                tracing::info!(mirror = %repo.ep.base, error = %e, "mirror failed; trying the next endpoint");
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((repo, top)) = found else {
        return Err(last_err.unwrap_or_else(|| DistError::InvalidRegistry {
            name: reference.domain().to_string(),
            reason: "no endpoint".to_string(),
        }));
    };
    progress(Progress {
        id: Some(wanted.clone()),
        event: Event::PullingFrom(reference.path().to_string()),
        current: None,
        total: None,
    });
    let familiar = reference.familiar();
    let (manifest_doc, manifest) = match parse(&top, &familiar)? {
        Parsed::Manifest(m) => (top.clone(), m),
        Parsed::Index(index) => {
            let chosen = choose_platform(&index, platform)?;
            let what = format!("manifest {} of {familiar}", chosen.digest);
            let child = repo
                .fetch_manifest(&chosen.digest, &what, opts.max_manifest_size)
                .await?;
            match parse(&child, &familiar)? {
                Parsed::Manifest(m) => (child, m),
                Parsed::Index(_) => {
                    return Err(DistError::Invalid {
                        what: format!("index of {familiar}"),
                        reason: "an index entry for the platform is another index".to_string(),
                    })
                }
            }
        }
    };
    check_manifest(&manifest, &familiar)?;
    let ctx = Ctx {
        repo,
        store: store.clone(),
        session: store.begin_ingest(),
        opts,
        progress,
        cancelled: AtomicBool::new(false),
    };
    let config = ctx.config(&manifest).await?;
    let parsed =
        berth_image::ImageConfig::from_slice(&config, &manifest.config.digest).map_err(|e| {
            DistError::Invalid {
                what: format!("config of {familiar}"),
                reason: e.to_string(),
            }
        })?;
    let blobs: Vec<(String, u64)> = manifest
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size as u64))
        .collect();
    let targets = LayerTarget::for_image(&blobs, &parsed.rootfs.diff_ids).map_err(|e| {
        DistError::Invalid {
            what: format!("image {familiar}"),
            reason: e.to_string(),
        }
    })?;
    ctx.fetch_layers(&targets).await?;
    let pulled = PulledImage {
        reference: reference.clone(),
        repo_digest: top.digest.clone(),
        manifest: manifest_doc.bytes,
        manifest_media_type: manifest_doc.media_type,
        config,
        layers: manifest
            .layers
            .iter()
            .map(|l| PulledLayer {
                digest: l.digest.clone(),
                media_type: l
                    .media_type
                    .clone()
                    .unwrap_or_else(|| media::OCI_LAYER_GZIP.to_string()),
                size: l.size as u64,
            })
            .collect(),
    };
    let session = ctx.session.clone();
    let commit = blocking(move || session.commit_pulled(&pulled)).await?;
    progress(Progress::image(Event::Digest(top.digest.clone())));
    progress(Progress::image(if commit.updated {
        Event::DownloadedNewer(familiar)
    } else {
        Event::UpToDate(familiar)
    }));
    Ok(PullOutcome {
        image: commit.image,
        digest: top.digest,
        updated: commit.updated,
    })
}

impl Ctx<'_> {
    /// The config blob, from the store when present, else downloaded and verified.
    async fn config(&self, manifest: &Manifest) -> Result<Vec<u8>, DistError> {
        let digest = manifest.config.digest.clone();
        let max = self.opts.max_config_size;
        if manifest.config.size < 0 || manifest.config.size as u64 > max {
            return Err(DistError::TooLarge {
                what: format!("config {digest}"),
                max,
            });
        }
        if self.session.has_blob(&digest)? {
            let store = self.store.clone();
            let d = digest.clone();
            return blocking(move || {
                let mut buf = Vec::new();
                store
                    .open_blob(&d)?
                    .take(max + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| ImageError::Corrupt {
                        image: d.clone(),
                        reason: format!("reading config blob: {e}"),
                    })?;
                Ok(buf)
            })
            .await;
        }
        let what = format!("config {digest}");
        let resp = self.get_blob(&digest, 0, &what).await?;
        if !resp.status().is_success() {
            return Err(status_error(&self.repo.ep, resp, &what, "pull", &self.repo.display).await);
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| DistError::Transport {
            registry: self.repo.ep.registry.clone(),
            what: what.clone(),
            source,
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(DistError::TooLarge { what, max });
            }
        }
        let actual = sha256(&bytes);
        if actual != digest {
            return Err(DistError::DigestMismatch {
                what,
                expected: digest,
                actual,
            });
        }
        Ok(bytes)
    }

    async fn get_blob(
        &self,
        digest: &str,
        offset: u64,
        what: &str,
    ) -> Result<reqwest::Response, DistError> {
        let url = self.repo.url(&format!("blobs/{digest}"));
        self.repo
            .client
            .send(&self.repo.ep, &self.repo.req(what, true), &|http| {
                let r = http.get(&url);
                if offset > 0 {
                    r.header(RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await
    }

    async fn fetch_layers(&self, targets: &[LayerTarget]) -> Result<(), DistError> {
        let mut todo = Vec::new();
        for t in targets {
            if self.session.has_blob(&t.digest)? && self.session.has_snapshot(&t.chain_id)? {
                (self.progress)(Progress::layer(&t.digest, Event::AlreadyExists));
            } else {
                (self.progress)(Progress::layer(&t.digest, Event::PullingFsLayer));
                todo.push(t);
            }
        }
        let results: Vec<Result<(), DistError>> =
            // Boxed and collected first: a stream type that still holds the closure would make callers
            // unable to prove the pull `Send` when they spawn it (a higher-ranked lifetime limitation).
            futures_util::stream::iter(
                todo.into_iter()
                    .map(|t| -> futures_util::future::BoxFuture<'_, Result<(), DistError>> {
                        Box::pin(async move {
                            let r = self.fetch_layer(t).await;
                            if r.is_err() {
                                self.cancelled.store(true, Ordering::Relaxed);
                            }
                            r
                        })
                    })
                    .collect::<Vec<_>>(),
            )
            .buffer_unordered(self.opts.max_concurrent_downloads.max(1))
            .collect()
            .await;
        let mut first = None;
        for r in results {
            match r {
                Ok(()) => {}
                Err(DistError::Task { reason }) if reason == CANCELLED => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None if self.cancelled.load(Ordering::Relaxed) => Err(cancelled()),
            None => Ok(()),
        }
    }

    /// Opens the blob's ingest; waits while another pull downloads the same blob. `None` when the
    /// blob turned up meanwhile.
    async fn open_ingest(&self, t: &LayerTarget) -> Result<Option<BlobIngest>, DistError> {
        // Bounded: ten minutes of waiting for another download of the same blob.
        for _ in 0..2400 {
            if self.cancelled.load(Ordering::Relaxed) {
                return Err(cancelled());
            }
            if self.session.has_blob(&t.digest)? {
                return Ok(None);
            }
            let session = self.session.clone();
            let (d, s) = (t.digest.clone(), t.size);
            match blocking(move || session.ingest(&d, s)).await {
                Err(DistError::Image(ImageError::IngestBusy { .. })) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => return other.map(Some),
            }
        }
        Err(DistError::Image(ImageError::IngestBusy {
            digest: t.digest.clone(),
        }))
    }

    async fn fetch_layer(&self, t: &LayerTarget) -> Result<(), DistError> {
        let attempts = self.repo.client.opts.max_attempts.max(1);
        let what = format!("layer {}", t.digest);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(mut ingest) = self.open_ingest(t).await? else {
                return self.unpack_stored(t).await;
            };
            let offset = ingest.offset();
            let resp = if offset == t.size {
                // Everything arrived before an interruption: only verify and unpack.
                None
            } else {
                Some(self.get_blob(&t.digest, offset, &what).await?)
            };
            let status = resp.as_ref().map_or(StatusCode::OK, |r| r.status());
            match status {
                StatusCode::PARTIAL_CONTENT if offset > 0 => {}
                StatusCode::OK => {
                    if offset > 0 && resp.is_some() {
                        tracing::debug!(digest = %t.digest, "registry ignored Range; starting over");
                        ingest = blocking(move || {
                            let mut i = ingest;
                            i.restart()?;
                            Ok(i)
                        })
                        .await?;
                    }
                }
                StatusCode::RANGE_NOT_SATISFIABLE => {
                    blocking(move || {
                        let mut i = ingest;
                        i.restart()
                    })
                    .await?;
                    continue;
                }
                _ => {
                    let Some(resp) = resp else { continue };
                    return Err(status_error(
                        &self.repo.ep,
                        resp,
                        &what,
                        "pull",
                        &self.repo.display,
                    )
                    .await);
                }
            }
            let start = ingest.offset();
            let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(16);
            let reader = ChannelReader {
                rx,
                buf: Bytes::new(),
                remaining: t.size.saturating_sub(start),
            };
            let session = self.session.clone();
            let target = t.clone();
            let limits = self.opts.limits;
            let unpack = tokio::task::spawn_blocking(move || {
                session.unpack_stream(ingest, &target, reader, &limits)
            });
            let (received, failure) = match resp {
                Some(resp) => self.pump(t, resp, start, &tx).await,
                None => (start, None),
            };
            if let Some(reason) = &failure {
                // The unpacker sees the failure as a read error; the partial file stays.
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        reason.clone(),
                    )))
                    .await;
            }
            drop(tx);
            let result = unpack.await.map_err(|e| DistError::Task {
                reason: e.to_string(),
            })?;
            match result {
                Ok(_) => {
                    (self.progress)(Progress::layer(&t.digest, Event::VerifyingChecksum));
                    (self.progress)(Progress::layer(&t.digest, Event::DownloadComplete));
                    (self.progress)(Progress::bytes(
                        &t.digest,
                        Event::Extracting,
                        t.size,
                        t.size,
                    ));
                    (self.progress)(Progress::layer(&t.digest, Event::PullComplete));
                    return Ok(());
                }
                Err(e) => {
                    let Some(reason) = failure else {
                        return Err(lift_content_error(e));
                    };
                    if reason == CANCELLED {
                        return Err(cancelled());
                    }
                    if attempt >= attempts {
                        tracing::warn!(digest = %t.digest, %reason, "giving up on layer");
                        return Err(DistError::Interrupted {
                            digest: t.digest.clone(),
                            received,
                            size: t.size,
                        });
                    }
                    let wait = Duration::from_millis(
                        (self.repo.client.opts.retry_delay.as_millis() as u64)
                            .saturating_mul(1 << attempt.min(5)),
                    );
                    tracing::info!(digest = %t.digest, %reason, received, "download interrupted; resuming");
                    (self.progress)(Progress::layer(
                        &t.digest,
                        Event::RetryingIn(wait.as_secs().max(1)),
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Forwards the body to the unpacker; returns the bytes the blob now has and why the download
    /// failed, if it did.
    async fn pump(
        &self,
        t: &LayerTarget,
        resp: reqwest::Response,
        start: u64,
        tx: &mpsc::Sender<io::Result<Bytes>>,
    ) -> (u64, Option<String>) {
        let mut got = start;
        let mut last_report = start;
        let mut stream = resp.bytes_stream();
        while let Some(item) = stream.next().await {
            if self.cancelled.load(Ordering::Relaxed) {
                return (got, Some(CANCELLED.to_string()));
            }
            match item {
                Ok(b) => {
                    got += b.len() as u64;
                    if tx.send(Ok(b)).await.is_err() {
                        // The unpacker stopped (bad content); its error tells why.
                        return (got, None);
                    }
                    if got - last_report >= 512 * 1024 || got >= t.size {
                        last_report = got;
                        (self.progress)(Progress::bytes(
                            &t.digest,
                            Event::Downloading,
                            got,
                            t.size,
                        ));
                    }
                }
                Err(e) => return (got, Some(format!("reading the blob: {e}"))),
            }
        }
        if got < t.size {
            return (
                got,
                Some(format!("connection closed after {got} of {} bytes", t.size)),
            );
        }
        (got, None)
    }

    async fn unpack_stored(&self, t: &LayerTarget) -> Result<(), DistError> {
        let session = self.session.clone();
        let target = t.clone();
        let limits = self.opts.limits;
        (self.progress)(Progress::bytes(&t.digest, Event::Extracting, 0, t.size));
        blocking(move || session.unpack_stored(&target, &limits)).await?;
        (self.progress)(Progress::layer(&t.digest, Event::PullComplete));
        Ok(())
    }
}
