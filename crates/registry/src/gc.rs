//! Online garbage collection. Mark: every manifest any repository holds, and every blob those manifests
//! reference. Sweep: every other blob not written or touched within the grace period, then the repository
//! links to blobs that are gone, and abandoned upload sessions.
//!
//! Why it can run while the registry serves pushes: the registry touches a blob whenever it creates a
//! reference to it (upload commit, mount, manifest push), while holding the registry's GC lock shared; the
//! collector re-reads each candidate's modification time under the lock held exclusively just before
//! deleting it, and keeps it if it was touched since the collection started (or within the grace period). So
//! a blob is never deleted after a push has checked it, and a push that comes after a
//! deletion sees the blob missing and asks the client for it. A collector in another process (`berth registry
//! gc` next to a running server) cannot take the lock; the grace period (default one hour) covers it: a push
//! would have to check a blob that went unreferenced over an hour ago in the very moment it is deleted.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::manifest;
use crate::registry::{Registry, RegistryError};

/// Collector settings.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Blobs written or touched more recently than this are kept.
    pub grace: Duration,
    /// Upload sessions idle for longer than this are removed.
    pub upload_max_age: Duration,
    /// Report only.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            grace: Duration::from_secs(3600),
            upload_max_age: Duration::from_secs(24 * 3600),
            dry_run: false,
        }
    }
}

/// What a collection did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Repositories scanned.
    pub repositories: usize,
    /// Manifests scanned.
    pub manifests: usize,
    /// Blobs referenced.
    pub marked: usize,
    /// Blobs deleted.
    pub deleted: Vec<Digest>,
    /// Bytes they held.
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are recent.
    pub kept_recent: usize,
    /// Repository links removed.
    pub links_removed: usize,
    /// Upload sessions removed.
    pub uploads_removed: usize,
}

/// Runs one collection.
pub async fn collect(reg: &Registry, opts: &GcOptions) -> Result<GcReport, RegistryError> {
    // Anything written or touched after this instant was referenced after marking began: keep it,
    // whatever the grace period.
    let started = SystemTime::now();
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    let repos = reg.meta().repositories().await?;
    report.repositories = repos.len();
    for repo in &repos {
        for d in reg.meta().manifests(repo).await? {
            report.manifests += 1;
            marked.insert(d.clone());
            let Some(link) = reg.meta().manifest(repo, &d).await? else {
                continue;
            };
            let Ok(body) = reg.manifest_bytes(&d).await else {
                continue;
            };
            let Ok(m) = manifest::parse(Some(&link.media_type), &body) else {
                continue;
            };
            for desc in m
                .config
                .iter()
                .chain(m.layers.iter())
                .chain(m.manifests.iter())
            {
                marked.insert(desc.digest.clone());
            }
        }
    }
    report.marked = marked.len();
    let now = SystemTime::now();
    let young =
        |t: SystemTime| t >= started || now.duration_since(t).unwrap_or_default() < opts.grace;
    let mut gone: HashSet<Digest> = HashSet::new();
    for (d, mtime) in reg.blobs().list().await? {
        if marked.contains(&d) {
            continue;
        }
        if young(mtime) {
            report.kept_recent += 1;
            continue;
        }
        let _exclusive = reg.gc_lock.write().await;
        // A push may have referenced it since the listing: decide on the current time stamp.
        match reg.blobs().modified(&d).await? {
            Some(t) if !young(t) => {}
            _ => {
                report.kept_recent += 1;
                continue;
            }
        }
        let size = reg.blobs().stat(&d).await?.unwrap_or(0);
        if !opts.dry_run {
            reg.blobs().delete(&d).await?;
        }
        report.bytes_freed += size;
        report.deleted.push(d.clone());
        gone.insert(d);
    }
    if !gone.is_empty() {
        for repo in &repos {
            for d in reg.meta().blob_links(repo).await? {
                if gone.contains(&d) {
                    if !opts.dry_run {
                        reg.meta().unlink_blob(repo, &d).await?;
                    }
                    report.links_removed += 1;
                }
            }
        }
    }
    report.uploads_removed = reg
        .uploads()
        .sweep(opts.upload_max_age, opts.dry_run)
        .await
        .len();
    report.deleted.sort();
    Ok(report)
}
